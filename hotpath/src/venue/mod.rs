//! Deribit API v2 wire types and transport: the JSON-RPC envelope, methods, error codes,
//! fixed-point numbers, typed decode, authentication, rate-limit credits, reconnect backoff
//! and the WebSocket connection.
//!
//! Nothing here can place an order on its own: request building for trading methods lives
//! in [`crate::dispatch`], whose trading client is `pub(crate)`.

pub mod decimal;
pub mod error;
pub mod messages;
pub mod methods;

pub use decimal::{Decimal8, DecimalError};
pub use error::{ErrorCategory, VenueErrorCode};
pub use messages::{DecodeError, Decoder, Message};

pub mod auth;
pub mod backoff;
pub mod conn;
pub mod credits;
pub mod request;
