//! THE dispatch chokepoint: the only module that owns a trading-capable venue client.
//!
//! [`client`]'s `TradingClient` is `pub(crate)` and can only be constructed from inside
//! this module; the public [`crate::venue::conn::Connection`] refuses matching-engine
//! methods, so code outside `dispatch` has no way to send an order. [`scope_probe`] is the
//! one order that is not the engine's: the key-scope probe's, meant to be refused.

pub(crate) mod client;
pub mod dispatcher;
pub mod pipeline;
pub mod scope_probe;

pub use client::{
    DispatchError, EditParams, OrderParams, OrderType, Side, TimeInForce, LABEL_BYTES_MAX,
};
pub use dispatcher::{
    currency_of_instrument, instrument_of_canonical, DispatchStats, Dispatcher, DispatcherConfig,
    DispatcherError, ExecReport, FillReport, OrderReport, OutboundIntent, Resolution, SendOutcome,
    VenuePosition,
};
pub use pipeline::{
    check_event_order, BatchInputs, BatchOutcome, IntentPipeline, PipelineEvent, Refusal, Staged,
    UnjournaledReduce, UnjournaledStaged,
};
