//! Stoic's cold path: everything that must never block the hot loop. It reads hot state
//! through published snapshots and talks back only through control rings.
//!
//! - [`status`]: the `/api/v1/status` and `/api/v1/health` payloads and their schema rules.
//! - [`server`]: the control-plane HTTP server, the owner dashboard, and the
//!   [`server::StatusSource`] / [`server::ControlSink`] traits the engine implements.
//! - [`metrics`]: the atomic metrics registry rendered at `/metrics`.
//! - [`reason_text`]: plain-language sentences for every reason code.
//! - [`client`]: the tiny HTTP client behind `stoic health` / `stoic status`.
//! - [`tracesink`]: the cold end of the hot path's trace ring (log lines + metrics).
//! - [`fixture`]: an in-memory status source for tests and the dashboard demo (not the engine).
#![forbid(unsafe_code)]

pub mod client;
pub mod fixture;
pub mod metrics;
pub mod reason_text;
pub mod reconcile;
pub mod server;
pub mod status;
pub mod tracesink;
