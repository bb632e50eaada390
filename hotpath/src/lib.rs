//! Stoic's hot path: everything between a market event arriving and an order's bytes
//! leaving for the venue. Modules are grouped by noun and own one thing each:
//!
//! - [`domain`]: instruments, fixed-point units, quantization, intents, hashing, labels,
//!   reason codes, typed policy and config.
//! - [`gates`]: pure accept/reject decisions over (intent, snapshot, policy, clock).
//! - [`mode`]: the TradingMode cell, PolicyGuard and the open-permission latch.
//! - [`ring`]: stages, wait strategies, thread topology and pinning.
//! - [`wal`]: the durable intent write-ahead log and the intent ledger.
//! - [`feed`]: market-data decode and L2 books with change-id continuity.
//! - [`venue`]: Deribit wire types (JSON-RPC envelope, methods, error codes).
//! - [`dispatch`]: THE chokepoint; the only module that owns a trading-capable client.
//! - [`strategy`]: the Strategy trait and reference strategies.
//! - [`trace`]: fixed-size event records on a bounded ring, drained by the cold-side sink.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
pub mod dispatch;
pub mod domain;
pub mod emergency;
pub mod feed;
pub mod gates;
pub mod group;
pub mod limits;
pub mod mode;
pub mod ring;
pub mod strategy;
pub mod sync;
pub mod trace;
pub mod venue;
pub mod wal;
