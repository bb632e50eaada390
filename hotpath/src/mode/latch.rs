//! The open-permission latch (CP-001): no "false-safe" opens after a restart, a WebSocket gap
//! or a session termination until reconciliation has proven the local truth.
//!
//! # Representation and protocol
//! One `AtomicU64`: the low 8 bits are the set of [`OpenPermissionReasonCode`]s, the rest a
//! generation number bumped by every [`OpenPermissionLatch::set`]. Any thread may set a reason
//! (`AcqRel` CAS loop). Clearing is two-phase so that a reason raised *during* a
//! reconciliation is never erased by it:
//! 1. [`OpenPermissionLatch::begin_reconcile`] loads the word (`Acquire`) into a ticket;
//! 2. the reconciler compares ledger, venue orders, positions and trades;
//! 3. [`OpenPermissionLatch::complete_reconcile`] clears with one compare-exchange against
//!    the ticket's word. If any `set` happened in between, the generation differs, the
//!    exchange fails and the latch stays set: the caller reconciles again.
//!
//! The latch starts set with `RESTART_RECONCILE_REQUIRED` at every start (no persistence).

use crate::domain::reason_codes::OpenPermissionReasonCode;
use crate::sync::{AtomicU64, Ordering};

const CODE_COUNT: usize = OpenPermissionReasonCode::ALL.len();
const CODE_BITS: u32 = 8;
const _: () = assert!(CODE_COUNT <= CODE_BITS as usize, "latch codes fit the low byte");
const CODE_MASK: u64 = (1 << CODE_BITS) - 1;

/// A set of open-permission reason codes; iteration is in registry order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OpenPermissionSet(u8);

impl OpenPermissionSet {
    /// No reasons: opens are permitted (as far as the latch is concerned).
    pub const EMPTY: Self = Self(0);

    /// The set holding just `code`.
    #[must_use]
    pub const fn of(code: OpenPermissionReasonCode) -> Self {
        Self(1 << code as u8)
    }

    /// Whether `code` is in the set.
    #[must_use]
    pub const fn contains(self, code: OpenPermissionReasonCode) -> bool {
        self.0 & (1 << code as u8) != 0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The codes in registry order.
    pub fn iter(self) -> impl Iterator<Item = OpenPermissionReasonCode> {
        OpenPermissionReasonCode::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// The codes in registry order, as a vector (`/status.open_permission_reason_codes`).
    #[must_use]
    pub fn to_vec(self) -> Vec<OpenPermissionReasonCode> {
        self.iter().collect()
    }
}

/// One check of a reconciliation (CP-001 clear conditions a–c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ReconcileCheck {
    /// (a) every non-terminal ledger intent matched a venue open order by label (or was
    /// resolved as absent), and no venue order is unknown to the ledger.
    IntentsMatchOpenOrders,
    /// (b) venue positions equal ledger cumulative fills within `position_reconcile_epsilon`.
    PositionsMatch,
    /// (c) no trade missing over `reconcile_trade_lookback_sec` (REST `get_user_trades`).
    NoMissingTrades,
}

/// What a reconciliation found; the reconciler (coldpath) fills it from its comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Check (a).
    pub intents_match_open_orders: bool,
    /// Check (b).
    pub positions_match: bool,
    /// Check (c).
    pub no_missing_trades: bool,
}

impl ReconcileReport {
    /// The checks that failed, in order (a, b, c).
    #[must_use]
    pub fn failed_checks(&self) -> Vec<ReconcileCheck> {
        [
            (self.intents_match_open_orders, ReconcileCheck::IntentsMatchOpenOrders),
            (self.positions_match, ReconcileCheck::PositionsMatch),
            (self.no_missing_trades, ReconcileCheck::NoMissingTrades),
        ]
        .into_iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, check)| check)
        .collect()
    }
}

/// The latch word a reconciliation started from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "pass the ticket to complete_reconcile"]
pub struct ReconcileTicket {
    word: u64,
}

impl ReconcileTicket {
    /// The codes that were set when the reconciliation began.
    #[must_use]
    pub fn codes(&self) -> OpenPermissionSet {
        codes_of(self.word)
    }
}

/// A successful clear: which codes it resolved (for the WAL and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatchCleared {
    /// The codes the reconciliation resolved, registry order.
    pub resolved: Vec<OpenPermissionReasonCode>,
}

/// Why a reconciliation did not clear the latch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LatchClearRefusal {
    /// The reconciliation found differences; the latch stays set.
    #[error("reconciliation failed checks {failed:?}; latch stays set")]
    ChecksFailed {
        /// The failed checks.
        failed: Vec<ReconcileCheck>,
    },
    /// A reason was set after the reconciliation began; reconcile again.
    #[error("latch reasons {current:?} were set during the reconciliation; reconcile again")]
    ReasonSetDuringReconcile {
        /// The codes set now.
        current: Vec<OpenPermissionReasonCode>,
    },
}

fn codes_of(word: u64) -> OpenPermissionSet {
    // The mask keeps the low 8 bits only, so the truncation is exact.
    #[allow(clippy::cast_possible_truncation)]
    OpenPermissionSet((word & CODE_MASK) as u8)
}

/// The CP-001 latch, shared by every thread (`Arc<OpenPermissionLatch>`).
#[derive(Debug)]
pub struct OpenPermissionLatch {
    word: AtomicU64,
}

impl OpenPermissionLatch {
    /// The latch at process start: set with `RESTART_RECONCILE_REQUIRED`.
    #[must_use]
    pub fn new_at_start() -> Self {
        let restart = OpenPermissionSet::of(OpenPermissionReasonCode::RestartReconcileRequired);
        Self { word: AtomicU64::new(u64::from(restart.0)) }
    }

    /// Sets `code` (any thread, any time). Returns whether it was newly set.
    pub fn set(&self, code: OpenPermissionReasonCode) -> bool {
        let bit = u64::from(OpenPermissionSet::of(code).0);
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let generation = (current >> CODE_BITS).wrapping_add(1);
            let next = (generation << CODE_BITS) | (current & CODE_MASK) | bit;
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return current & bit == 0,
                Err(actual) => current = actual,
            }
        }
    }

    /// `open_permission_blocked_latch`: true ⇒ OPEN blocked.
    #[must_use]
    pub fn is_latched(&self) -> bool {
        !self.codes().is_empty()
    }

    /// `open_permission_requires_reconcile`: equal to the latch (all codes are reconcile-class).
    #[must_use]
    pub fn requires_reconcile(&self) -> bool {
        self.is_latched()
    }

    /// The set codes (one `Acquire` load).
    #[must_use]
    pub fn codes(&self) -> OpenPermissionSet {
        codes_of(self.word.load(Ordering::Acquire))
    }

    /// `/status.open_permission_reason_codes`: registry order, `[]` iff not latched.
    #[must_use]
    pub fn open_permission_reason_codes(&self) -> Vec<OpenPermissionReasonCode> {
        self.codes().to_vec()
    }

    /// Starts a reconciliation: remembers the exact latch word.
    pub fn begin_reconcile(&self) -> ReconcileTicket {
        ReconcileTicket { word: self.word.load(Ordering::Acquire) }
    }

    /// Clears the latch if the reconciliation passed every check and no reason was set since
    /// `ticket` was taken. This is the only way the latch clears.
    ///
    /// # Errors
    /// [`LatchClearRefusal::ChecksFailed`] when any check failed (the latch is untouched);
    /// [`LatchClearRefusal::ReasonSetDuringReconcile`] when a reason was set in between.
    pub fn complete_reconcile(
        &self,
        ticket: ReconcileTicket,
        report: &ReconcileReport,
    ) -> Result<LatchCleared, LatchClearRefusal> {
        let failed = report.failed_checks();
        if !failed.is_empty() {
            return Err(LatchClearRefusal::ChecksFailed { failed });
        }
        // Keep the generation, drop the codes: a later set still bumps past this word.
        let cleared = ticket.word & !CODE_MASK;
        match self.word.compare_exchange(ticket.word, cleared, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(LatchCleared { resolved: ticket.codes().to_vec() }),
            Err(actual) => Err(LatchClearRefusal::ReasonSetDuringReconcile {
                current: codes_of(actual).to_vec(),
            }),
        }
    }
}
