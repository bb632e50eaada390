//! Gates: pure functions of (intent, snapshot, policy, clock) -> accept or an enumerated reject.
//!
//! Nothing in here writes: reservations ([`positions::ExposureBook::reserve`]), token
//! consumption ([`chain::Accepted::order_rate_after`]) and WAL records happen after the last
//! gate accepted, and only with the [`chain::Accepted`] value it returns (DESIGN invariant 3).

pub mod chain;
pub mod checks;
pub mod hedge;
pub mod liquidity;
pub mod market;
pub mod positions;
pub mod preflight;
pub mod rate;

pub use chain::{Accepted, GateChain, GateContext, GateName, PolicySlot, Rejection};
pub use checks::EdgeInputs;
pub use market::{BookLevel, BookView, BOOK_VIEW_DEPTH};
pub use positions::{
    classify, ExposureBook, ExposureUndo, IntentClass, PortfolioView, PositionView,
};
pub use rate::OrderRateBucket;
