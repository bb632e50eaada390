//! Market data: L2 books with change-id continuity, ticker and trade state.
//!
//! The decoding itself lives in [`crate::venue::messages`]; this module keeps the state
//! the strategy reads, in buffers sized once.

pub mod book;
pub mod market;

pub use book::{BookError, BookState, L2Book};
pub use market::{LastTicker, TradeTape};
