//! THE dispatch chokepoint: the only module that owns a trading-capable venue client.
//!
//! [`client`]'s `TradingClient` is `pub(crate)` and can only be constructed from inside
//! this module; the public [`crate::venue::conn::Connection`] refuses matching-engine
//! methods, so code outside `dispatch` has no way to send an order.

pub(crate) mod client;

pub use client::{
    DispatchError, EditParams, OrderParams, OrderType, Side, TimeInForce, LABEL_BYTES_MAX,
};
