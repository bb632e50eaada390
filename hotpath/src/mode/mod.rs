//! TradingMode authority: the mode cell, PolicyGuard and the open-permission latch.
//!
//! - [`TradingModeCell`]: the published mode, an atomic word any thread reads lock-free and
//!   any component may *tighten* with a reason code. It never lowers on its own.
//! - [`PolicyGuard`]: the only code that computes which [`ModeReasonCode`]s are present from
//!   one immutable [`PolicyInputs`] snapshot, publishes them into the cell, and performs the
//!   authenticated operator relax (refused while any reason above the target is present).
//! - [`OpenPermissionLatch`] (CP-001): latched at every start with `RESTART_RECONCILE_REQUIRED`,
//!   cleared only by a successful reconciliation.
//! - [`OperatorAuthenticated`]: the capability an operator action needs; only
//!   [`OperatorAuthenticated::verify`] makes one, and only for the right bearer token.
//! - [`ModePermissions`]: what each mode lets through (Kill keeps emergency close, ruling 1).
//!
//! See `docs/policy_guard.md` for the inputs → reasons → mode table.
//!
//! [`ModeReasonCode`]: crate::domain::reason_codes::ModeReasonCode

mod cell;
mod guard;
mod inputs;
mod latch;
mod operator;
mod permissions;
mod reasons;

pub use cell::{ModeWord, TradingModeCell};
pub use guard::{
    EmergencyError, EmergencyOutcome, EmergencyReduceOnly, ModeDecision, PolicyGuard, RelaxRecord,
    RelaxRefusal,
};
pub use inputs::{
    CortexOverride, EnforcedProfile, F1CertState, PolicyInputs, PolicyThresholds, Sampled,
};
pub use latch::{
    LatchClearRefusal, LatchCleared, OpenPermissionLatch, OpenPermissionSet, ReconcileCheck,
    ReconcileReport, ReconcileTicket,
};
pub use operator::{AuthError, OperatorAction, OperatorAuthenticated, OperatorSecret};
pub use permissions::{ActionClass, ModePermissions};
pub use reasons::ReasonSet;
