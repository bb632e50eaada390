//! Deribit API v2 wire types and transport: the JSON-RPC envelope, methods, error codes,
//! fixed-point numbers, typed decode, authentication, rate-limit credits, reconnect backoff
//! and the WebSocket connection.
//!
//! Nothing here can place an order on its own: request building for trading methods lives
//! in [`crate::dispatch`], whose trading client is `pub(crate)`, and
//! [`conn::Connection::send_request`] refuses matching-engine methods.
//!
//! How the pieces fit (market-data / query side):
//!
//! ```text
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let mut conn = Connection::connect_with_backoff(&ConnConfig::new(url), &clock,
//!                    &mut Backoff::new(), &mut JitterRng::new(seed), 10, &mut thread::sleep)?;
//! conn.authenticate(&Credentials::from_file(path)?, AuthGrant::ClientSignature, None, t)?;
//! conn.set_heartbeat(30, t)?;                       // test_requests are then answered in poll
//! conn.subscribe(&["book.BTC-25JUL25-110000-C.100ms"], t, &mut |_| {})?;
//! loop {
//!     conn.poll(timeout, &mut |inc| if let Message::Notification(n) = inc.msg {
//!         if let NotificationData::Book(u) = &n.data { let _ = book.apply(u); }
//!     })?;
//!     if book.resubscribe_needed() { /* unsubscribe + subscribe */ book.resubscribe_sent(); }
//!     conn.refresh_if_due(t)?;
//! }
//! ```
//!
//! Numbers: prices, amounts and fees are [`Decimal8`] (value × 10^8 in an i64), exact for
//! every number the venue prints; greeks and implied vols stay `f64` (statistics, never
//! order fields).

mod book_tape;
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
