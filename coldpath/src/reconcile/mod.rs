//! Continuous three-way reconciliation (contract §3.4), the zombie sweeper (§3.5) and the
//! rate-limit breaker reaction (§3.3, ruling 2). Rules, triggers, repair table and defaults:
//! `docs/reconciliation.md`.
//!
//! - [`model`]: the inputs — ledger view, local positions, venue snapshot (owned data).
//! - [`label_match`]: venue item → ledger intent (§1.1.2 parse + disambiguation).
//! - [`sweeper`]: open-order verdicts (zombie, duplicate, stale, foreign, ambiguous).
//! - [`three_way`]: the pure core, [`reconcile`] → [`ReconcileReport`] (findings + repairs).
//! - [`service`]: the cold-path [`Reconciler`] (own read-only connection, paginated REST
//!   fetches, credit share) and its non-blocking [`Triggers`].
//! - [`ratelimit`]: the breaker policy (brownout classes, reserved credits, mode reasons).

pub mod label_match;
pub mod model;
pub mod ratelimit;
pub mod service;
pub mod sweeper;
pub mod three_way;

pub use model::{
    AmountRaw, IntentDetail, LabelLookup, LedgerIntent, LedgerSnapshot, LocalPositions, VenueOrder,
    VenuePosition, VenueSnapshot, VenueTrade,
};
pub use service::{ReconcileError, Reconciler, ReconcilerConfig, TriggerKind, Triggers};
pub use three_way::{
    ghost_candidates, reconcile, CancelOrder, CancelReason, Finding, FindingKind, LedgerRepair,
    OrphanReason, ReconcileConfig, ReconcileReport, ReconcileSummary, RepairAction,
    UnresolvedReason,
};
