//! Hot-side traceability: fixed-size [`TraceEvent`] records pushed onto a bounded SPSC ring,
//! drained and formatted by a cold-side sink (`coldpath::tracesink`).
//!
//! The hot side never blocks, allocates or formats to log: an event is a `Copy` value of a
//! few words (kind, intent id, registry codes, small numbers, a `&'static str` detail). When
//! the ring is full the record is dropped and an atomic overflow counter is incremented; the
//! sink exports it as `stoic_ring_overflow_total{ring="evidence_log"}`. Dropping (not
//! blocking) is the policy because the ring sits between the order path and a log writer: a
//! slow disk must never delay an order or a reduction. The WAL, not the trace, is the record
//! of truth; the trace is for humans and dashboards.
//!
//! `run_id` is not in the record: the sink owns the run id of its process and stamps it on
//! every line and metric it emits.

mod event;
mod ring;

pub use event::{bits_of, SendErrorClass, TraceEvent, TraceKind};
pub use ring::{trace_ring, TraceConsumer, TraceProducer, TRACE_RING_CAPACITY};
