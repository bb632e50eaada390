//! The pure three-way reconciliation (contract §3.4, §3.5, CP-001 clear conditions):
//! ledger view × venue snapshot × local positions → findings + repair actions.
//!
//! Source-of-truth precedence: venue trades > venue orders > venue positions > ledger.
//! Output is deterministic: findings and actions are sorted, inputs are sorted first.

use std::collections::{BTreeMap, BTreeSet};

use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode};
use hotpath::mode::ReconcileReport as LatchReport;
use hotpath::venue::messages::{Direction, OrderState};
use hotpath::wal::IntentState;

use super::label_match::{Matcher, Resolution, VenueKey};
use super::model::{
    signed, AmountRaw, LedgerIntent, LedgerSnapshot, LocalPositions, VenueOrder, VenueSnapshot,
    VenueTrade,
};
use super::sweeper::{classify, OrderVerdict, ZombieReason};

/// Reconciliation settings; defaults are contract Appendix A / §3.4–§3.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// `position_reconcile_epsilon` = 1e-6 (raw `Decimal8` 100). A difference strictly above
    /// it is a mismatch (see docs/reconciliation.md on `min_amount`).
    pub position_epsilon_raw: AmountRaw,
    /// `stale_order_sec` = 30 s.
    pub stale_order_ms: i64,
    /// `reconcile_trade_lookback_sec` = 300 s.
    pub trade_lookback_ms: i64,
    /// A live intent updated more recently than this before the snapshot and absent at the
    /// venue may still be in flight: it is left unresolved (never abandoned) this pass.
    pub in_flight_grace_ms: i64,
}

/// `position_reconcile_epsilon` (1e-6) in raw `Decimal8` units.
pub const POSITION_EPSILON_RAW: AmountRaw = 100;
/// `stale_order_sec` (Appendix A), ms.
pub const STALE_ORDER_MS: i64 = 30_000;
/// `reconcile_trade_lookback_sec` (Appendix A), ms.
pub const TRADE_LOOKBACK_MS: i64 = 300_000;
/// Grace for in-flight intents, ms.
pub const IN_FLIGHT_GRACE_MS: i64 = 5_000;

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            position_epsilon_raw: POSITION_EPSILON_RAW,
            stale_order_ms: STALE_ORDER_MS,
            trade_lookback_ms: TRADE_LOOKBACK_MS,
            in_flight_grace_ms: IN_FLIGHT_GRACE_MS,
        }
    }
}

/// Why an order is to be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CancelReason {
    /// Sweeper zombie rule.
    Zombie(ZombieReason),
    /// Sweeper stale rule (no replace).
    Stale,
}

/// A cancel for the engine's dispatch (`CancelStaleOrder(order_id)`): by order id, with the
/// label for `cancel_by_label` fallback and logging.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CancelOrder {
    /// Venue order id.
    pub order_id: String,
    /// Label.
    pub label: String,
    /// Instrument.
    pub instrument: String,
    /// Why.
    pub reason: CancelReason,
}

impl CancelOrder {
    /// For a venue order.
    #[must_use]
    pub fn of(o: &VenueOrder, reason: CancelReason) -> Self {
        Self {
            order_id: o.order_id.clone(),
            label: o.label.clone(),
            instrument: o.instrument.clone(),
            reason,
        }
    }
}

/// A WAL record the engine must append (quantities as amounts; the engine converts to qty
/// steps with its instrument metadata). One intent gets at most an `Acknowledged` followed
/// by one fill/terminal record; sorting the actions keeps that order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerRepair {
    /// The venue has the order: learn its id.
    Acknowledged {
        /// Intent.
        intent_hash: u64,
        /// Venue order id.
        venue_order_id: String,
    },
    /// Still working, more filled than the ledger knew.
    PartiallyFilled {
        /// Intent.
        intent_hash: u64,
        /// Instrument.
        instrument: String,
        /// Cumulative filled amount.
        filled_amount: AmountRaw,
        /// Latest trade id ("" when the fill is known only from the order).
        trade_id: String,
    },
    /// Completely filled.
    Filled {
        /// Intent.
        intent_hash: u64,
        /// Instrument ("" when unknown).
        instrument: String,
        /// Final filled amount.
        filled_amount: AmountRaw,
        /// Latest trade id.
        trade_id: String,
    },
    /// Over at the venue with this much filled (IOC remainder, cancel, unknown at venue after
    /// an ack).
    Cancelled {
        /// Intent.
        intent_hash: u64,
        /// Instrument ("" when unknown).
        instrument: String,
        /// Filled before the end.
        filled_amount: AmountRaw,
    },
    /// The venue refused it.
    Rejected {
        /// Intent.
        intent_hash: u64,
    },
    /// The venue never saw it (no order, no trade, lookup empty): closed, never resent.
    Abandoned {
        /// Intent.
        intent_hash: u64,
    },
}

impl LedgerRepair {
    /// The intent it applies to.
    #[must_use]
    pub fn intent_hash(&self) -> u64 {
        match self {
            Self::Acknowledged { intent_hash, .. }
            | Self::PartiallyFilled { intent_hash, .. }
            | Self::Filled { intent_hash, .. }
            | Self::Cancelled { intent_hash, .. }
            | Self::Rejected { intent_hash }
            | Self::Abandoned { intent_hash } => *intent_hash,
        }
    }

    /// The ledger state after it.
    #[must_use]
    pub fn target_state(&self) -> IntentState {
        match self {
            Self::Acknowledged { .. } => IntentState::Acknowledged,
            Self::PartiallyFilled { .. } => IntentState::PartiallyFilled,
            Self::Filled { .. } => IntentState::Filled,
            Self::Cancelled { .. } => IntentState::Cancelled,
            Self::Rejected { .. } => IntentState::Rejected,
            Self::Abandoned { .. } => IntentState::Abandoned,
        }
    }

    /// Cumulative filled amount it sets, if it carries one.
    #[must_use]
    pub fn filled_amount(&self) -> Option<AmountRaw> {
        match self {
            Self::PartiallyFilled { filled_amount, .. }
            | Self::Filled { filled_amount, .. }
            | Self::Cancelled { filled_amount, .. } => Some(*filled_amount),
            _ => None,
        }
    }
}

/// What the engine must do. Sorted: ledger records, fill adoptions, position adoptions,
/// cancels, latch codes, mode reasons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepairAction {
    /// Append this WAL record.
    Ledger(LedgerRepair),
    /// Add a venue fill the position book has not seen (signed `delta`), and remember the
    /// trade ids as processed (AT-121 dedup).
    AdoptFill {
        /// Instrument.
        instrument: String,
        /// Signed amount.
        delta: AmountRaw,
        /// Venue trade ids covered (may be empty when known only from an order).
        trade_ids: Vec<String>,
    },
    /// Set the local position to the venue's (applied after every `AdoptFill`).
    AdoptPosition {
        /// Instrument.
        instrument: String,
        /// Venue size, signed.
        size: AmountRaw,
    },
    /// Send this cancel through dispatch.
    Cancel(CancelOrder),
    /// Set this open-permission latch code.
    SetLatch(OpenPermissionReasonCode),
    /// Raise this mode reason (PolicyGuard input).
    RaiseMode(ModeReasonCode),
}

/// Why an orphan fill has no ledger transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrphanReason {
    /// `s4:` label, no intent.
    UnknownIntent,
    /// The intent is terminal in the ledger (e.g. abandoned) yet filled more.
    TerminalIntent,
}

/// Why a live intent stays unresolved this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnresolvedReason {
    /// Updated within the in-flight grace: maybe still on its way.
    InFlight,
    /// Absent at the venue but no by-label lookup was done for it.
    LookupMissing,
    /// The lookup says the order is open though the open-orders list lacked it (race).
    VenueRace,
}

/// One discrepancy. Every variant is enumerated in docs/reconciliation.md.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    /// Venue has the order, ledger never saw the ack (ledger Recorded/Sent).
    LateAck {
        /// Intent.
        intent_hash: u64,
        /// Label.
        label: String,
        /// Venue order id.
        order_id: String,
    },
    /// Venue filled more than the ledger knows for a live intent (AT-210) → adopt.
    LateFill {
        /// Intent.
        intent_hash: u64,
        /// Label.
        label: String,
        /// Instrument.
        instrument: String,
        /// Ledger's cumulative fill.
        ledger_filled: AmountRaw,
        /// Venue's cumulative fill.
        venue_filled: AmountRaw,
    },
    /// A fill with no live intent to own it → adopt into positions + flag.
    OrphanFill {
        /// Intent when the label resolved to a terminal one.
        intent_hash: Option<u64>,
        /// Label.
        label: String,
        /// Instrument.
        instrument: String,
        /// Signed amount not accounted for.
        amount: AmountRaw,
        /// Trade ids.
        trade_ids: Vec<String>,
        /// Why.
        reason: OrphanReason,
    },
    /// Open at the venue with our prefix but no live intent (or a duplicate) → cancel.
    ZombieOrder {
        /// Venue order id.
        order_id: String,
        /// Label.
        label: String,
        /// Instrument.
        instrument: String,
        /// Intent when the label resolved.
        intent_hash: Option<u64>,
        /// Why.
        reason: ZombieReason,
    },
    /// Live order older than `stale_order_sec`, not reduce-only → cancel (no replace).
    StaleOrder {
        /// Venue order id.
        order_id: String,
        /// Label.
        label: String,
        /// Intent.
        intent_hash: u64,
        /// Age, ms.
        age_ms: i64,
    },
    /// Ledger says live; the venue has no open order and no fill → close in the ledger.
    GhostIntent {
        /// Intent.
        intent_hash: u64,
        /// Label.
        label: String,
        /// Ledger state.
        ledger_state: IntentState,
        /// State written.
        resolved_to: IntentState,
    },
    /// Venue position ≠ local position (after adopted fills) → adopt venue, latch.
    PositionMismatch {
        /// Instrument.
        instrument: String,
        /// Local position plus adopted fills.
        local: AmountRaw,
        /// Venue position.
        venue: AmountRaw,
    },
    /// No `s4:` label → left alone, reported.
    ForeignOrder {
        /// Venue order id.
        order_id: String,
        /// Label.
        label: String,
        /// Instrument.
        instrument: String,
    },
    /// §1.1.2 could not decide → Degraded, opens blocked, nothing touched.
    AmbiguousLabel {
        /// Label.
        label: String,
        /// Venue order or trade id.
        venue_id: String,
        /// Candidate intents.
        candidates: Vec<u64>,
    },
    /// A live intent that could not be resolved this pass.
    Unresolved {
        /// Intent.
        intent_hash: u64,
        /// Label.
        label: String,
        /// Why.
        reason: UnresolvedReason,
    },
    /// Trade pagination stopped at its bound: trades may be missing.
    TradesIncomplete,
}

/// Finding kinds, for counting and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// [`Finding::LateAck`].
    LateAck,
    /// [`Finding::LateFill`].
    LateFill,
    /// [`Finding::OrphanFill`].
    OrphanFill,
    /// [`Finding::ZombieOrder`].
    ZombieOrder,
    /// [`Finding::StaleOrder`].
    StaleOrder,
    /// [`Finding::GhostIntent`].
    GhostIntent,
    /// [`Finding::PositionMismatch`].
    PositionMismatch,
    /// [`Finding::ForeignOrder`].
    ForeignOrder,
    /// [`Finding::AmbiguousLabel`].
    AmbiguousLabel,
    /// [`Finding::Unresolved`].
    Unresolved,
    /// [`Finding::TradesIncomplete`].
    TradesIncomplete,
}

impl FindingKind {
    /// Stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LateAck => "LateAck",
            Self::LateFill => "LateFill",
            Self::OrphanFill => "OrphanFill",
            Self::ZombieOrder => "ZombieOrder",
            Self::StaleOrder => "StaleOrder",
            Self::GhostIntent => "GhostIntent",
            Self::PositionMismatch => "PositionMismatch",
            Self::ForeignOrder => "ForeignOrder",
            Self::AmbiguousLabel => "AmbiguousLabel",
            Self::Unresolved => "Unresolved",
            Self::TradesIncomplete => "TradesIncomplete",
        }
    }
}

impl Finding {
    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> FindingKind {
        match self {
            Self::LateAck { .. } => FindingKind::LateAck,
            Self::LateFill { .. } => FindingKind::LateFill,
            Self::OrphanFill { .. } => FindingKind::OrphanFill,
            Self::ZombieOrder { .. } => FindingKind::ZombieOrder,
            Self::StaleOrder { .. } => FindingKind::StaleOrder,
            Self::GhostIntent { .. } => FindingKind::GhostIntent,
            Self::PositionMismatch { .. } => FindingKind::PositionMismatch,
            Self::ForeignOrder { .. } => FindingKind::ForeignOrder,
            Self::AmbiguousLabel { .. } => FindingKind::AmbiguousLabel,
            Self::Unresolved { .. } => FindingKind::Unresolved,
            Self::TradesIncomplete => FindingKind::TradesIncomplete,
        }
    }
}

/// The result of one reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Venue snapshot time, ms.
    pub fetched_ms: i64,
    /// Discrepancies, sorted.
    pub findings: Vec<Finding>,
    /// Repairs for the engine, sorted (apply in order).
    pub actions: Vec<RepairAction>,
    /// CP-001 checks (a)–(c) as found *before* repair: a pass with repairs never clears the
    /// latch; the engine applies the repairs and the next clean pass clears it.
    pub checks: LatchReport,
    /// True when the pass requires `RiskState::Degraded` (ambiguous label).
    pub risk_degraded: bool,
}

impl ReconcileReport {
    /// Findings of one kind.
    pub fn of_kind(&self, kind: FindingKind) -> impl Iterator<Item = &Finding> + '_ {
        self.findings.iter().filter(move |f| f.kind() == kind)
    }

    /// Count of one kind.
    #[must_use]
    pub fn count(&self, kind: FindingKind) -> usize {
        self.of_kind(kind).count()
    }

    /// The cancels to send.
    pub fn cancels(&self) -> impl Iterator<Item = &CancelOrder> + '_ {
        self.actions.iter().filter_map(|a| match a {
            RepairAction::Cancel(c) => Some(c),
            _ => None,
        })
    }

    /// Clean: every check passed, nothing to repair, not degraded (foreign orders are only
    /// reported). Only a clean report may be handed to `complete_reconcile` with success.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.checks.failed_checks().is_empty() && self.actions.is_empty() && !self.risk_degraded
    }

    /// The report for `OpenPermissionLatch::complete_reconcile`.
    #[must_use]
    pub fn latch_report(&self) -> LatchReport {
        if self.is_clean() {
            self.checks
        } else {
            LatchReport {
                intents_match_open_orders: self.checks.intents_match_open_orders
                    && !self.risk_degraded
                    && self.actions.is_empty(),
                ..self.checks
            }
        }
    }
}

/// The last pass in a form `/status` can carry (`reconcile` object; extra keys are allowed by
/// `status_csp_min`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileSummary {
    /// Venue snapshot time of the pass, ms.
    pub ts_ms: i64,
    /// `clean` or `repairs_required`.
    pub result: &'static str,
    /// Failed CP-001 checks.
    pub failed_checks: Vec<hotpath::mode::ReconcileCheck>,
    /// Findings by kind (only non-zero ones), in kind order.
    pub findings: BTreeMap<&'static str, usize>,
    /// Repair actions emitted.
    pub actions: usize,
    /// Degraded required.
    pub risk_degraded: bool,
}

impl ReconcileReport {
    /// The summary for `/status` and logs.
    #[must_use]
    pub fn summary(&self) -> ReconcileSummary {
        let mut findings = BTreeMap::new();
        for f in &self.findings {
            *findings.entry(f.kind().as_str()).or_insert(0) += 1;
        }
        ReconcileSummary {
            ts_ms: self.fetched_ms,
            result: if self.is_clean() { "clean" } else { "repairs_required" },
            failed_checks: self.latch_report().failed_checks(),
            findings,
            actions: self.actions.len(),
            risk_degraded: self.risk_degraded,
        }
    }
}

/// Per live-or-terminal intent, what the venue says.
#[derive(Debug, Default)]
struct VenueSide<'v> {
    open: Vec<&'v VenueOrder>,
    trades: Vec<&'v VenueTrade>,
}

/// Runs the reconciliation. Pure and deterministic.
#[must_use]
pub fn reconcile(
    ledger: &LedgerSnapshot,
    local: &LocalPositions,
    venue: &VenueSnapshot,
    cfg: &ReconcileConfig,
) -> ReconcileReport {
    let mut intents = ledger.intents.clone();
    intents.sort_by_key(|i| i.intent_hash);
    let matcher = Matcher::new(&intents);
    let mut orders = venue.open_orders.clone();
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    orders.dedup_by(|a, b| a.order_id == b.order_id);
    let mut trades = venue.trades.clone();
    trades.sort_by(|a, b| (a.timestamp_ms, &a.trade_id).cmp(&(b.timestamp_ms, &b.trade_id)));
    let mut seen = BTreeSet::new();
    trades.retain(|t| seen.insert(t.trade_id.clone()));

    let mut findings: Vec<Finding> = Vec::new();
    let mut actions: Vec<RepairAction> = Vec::new();
    let mut degraded = false;
    let mut per: BTreeMap<usize, VenueSide<'_>> = BTreeMap::new();
    // Adopted signed deltas per instrument (fills the position book has not seen).
    let mut adopted: BTreeMap<String, AmountRaw> = BTreeMap::new();

    // ---- open orders (sweeper) ----
    let verdicts = classify(&matcher, &orders, venue.fetched_ms, cfg);
    for (o, v) in orders.iter().zip(verdicts) {
        match v {
            OrderVerdict::Foreign => findings.push(Finding::ForeignOrder {
                order_id: o.order_id.clone(),
                label: o.label.clone(),
                instrument: o.instrument.clone(),
            }),
            OrderVerdict::Live(i) => per.entry(i).or_default().open.push(o),
            OrderVerdict::Stale { intent, age_ms } => {
                per.entry(intent).or_default().open.push(o);
                findings.push(Finding::StaleOrder {
                    order_id: o.order_id.clone(),
                    label: o.label.clone(),
                    intent_hash: intents[intent].intent_hash,
                    age_ms,
                });
                actions.push(RepairAction::Cancel(CancelOrder::of(o, CancelReason::Stale)));
            }
            OrderVerdict::Zombie { reason, intent } => {
                findings.push(Finding::ZombieOrder {
                    order_id: o.order_id.clone(),
                    label: o.label.clone(),
                    instrument: o.instrument.clone(),
                    intent_hash: intent.map(|i| intents[i].intent_hash),
                    reason,
                });
                actions
                    .push(RepairAction::Cancel(CancelOrder::of(o, CancelReason::Zombie(reason))));
                // Fills of a zombie still count: attribute them through its trades below.
            }
            OrderVerdict::Ambiguous(candidates) => {
                degraded = true;
                findings.push(Finding::AmbiguousLabel {
                    label: o.label.clone(),
                    venue_id: o.order_id.clone(),
                    candidates,
                });
            }
        }
    }

    // ---- trades ----
    let mut unknown: BTreeMap<(String, String), Vec<&VenueTrade>> = BTreeMap::new();
    for t in &trades {
        let key = VenueKey {
            order_id: &t.order_id,
            label: &t.label,
            instrument: &t.instrument,
            direction: t.direction,
            amount: None,
        };
        match matcher.resolve(&key) {
            Resolution::Foreign => {} // explained by positions only
            Resolution::Unknown => {
                unknown.entry((t.label.clone(), t.instrument.clone())).or_default().push(t);
            }
            Resolution::Ambiguous(candidates) => {
                degraded = true;
                findings.push(Finding::AmbiguousLabel {
                    label: t.label.clone(),
                    venue_id: t.trade_id.clone(),
                    candidates,
                });
            }
            Resolution::Intent(i) => per.entry(i).or_default().trades.push(t),
        }
    }
    for ((label, instrument), ts) in unknown {
        let fresh: Vec<&VenueTrade> =
            ts.into_iter().filter(|t| !ledger.processed_trade_ids.contains(&t.trade_id)).collect();
        orphan(&mut findings, &mut actions, &mut adopted, None, label, instrument, &fresh);
    }

    // ---- intents ----
    for (i, it) in intents.iter().enumerate() {
        let side = per.remove(&i).unwrap_or_default();
        resolve_intent(it, &side, venue, ledger, cfg, &mut findings, &mut actions, &mut adopted);
    }

    // ---- positions ----
    let mut venue_pos: BTreeMap<&str, AmountRaw> = BTreeMap::new();
    for p in &venue.positions {
        let e = venue_pos.entry(p.instrument.as_str()).or_insert(0);
        *e = e.saturating_add(p.size);
    }
    let mut instruments: BTreeSet<&str> = venue_pos.keys().copied().collect();
    instruments.extend(local.0.keys().map(String::as_str));
    instruments.extend(adopted.keys().map(String::as_str));
    let mut mismatch = false;
    for inst in instruments {
        let expected = local.get(inst).saturating_add(adopted.get(inst).copied().unwrap_or(0));
        let v = venue_pos.get(inst).copied().unwrap_or(0);
        if expected.saturating_sub(v).saturating_abs() > cfg.position_epsilon_raw {
            mismatch = true;
            findings.push(Finding::PositionMismatch {
                instrument: inst.to_owned(),
                local: expected,
                venue: v,
            });
            actions.push(RepairAction::AdoptPosition { instrument: inst.to_owned(), size: v });
        }
    }
    if mismatch {
        actions.push(RepairAction::SetLatch(
            OpenPermissionReasonCode::InventoryMismatchReconcileRequired,
        ));
    }
    if !venue.trades_complete {
        findings.push(Finding::TradesIncomplete);
    }
    if degraded {
        actions.push(RepairAction::RaiseMode(ModeReasonCode::ReduceonlyRiskstateDegraded));
    }

    findings.sort();
    findings.dedup();
    actions.sort();
    actions.dedup();
    let checks = checks_of(&findings, degraded);
    ReconcileReport {
        fetched_ms: venue.fetched_ms,
        findings,
        actions,
        checks,
        risk_degraded: degraded,
    }
}

fn checks_of(findings: &[Finding], degraded: bool) -> LatchReport {
    let mut c = LatchReport {
        intents_match_open_orders: !degraded,
        positions_match: true,
        no_missing_trades: true,
    };
    for f in findings {
        match f.kind() {
            FindingKind::LateAck
            | FindingKind::ZombieOrder
            | FindingKind::GhostIntent
            | FindingKind::Unresolved
            | FindingKind::AmbiguousLabel => c.intents_match_open_orders = false,
            FindingKind::PositionMismatch => c.positions_match = false,
            FindingKind::LateFill | FindingKind::OrphanFill | FindingKind::TradesIncomplete => {
                c.no_missing_trades = false;
            }
            FindingKind::StaleOrder | FindingKind::ForeignOrder => {}
        }
    }
    c
}

fn orphan(
    findings: &mut Vec<Finding>,
    actions: &mut Vec<RepairAction>,
    adopted: &mut BTreeMap<String, AmountRaw>,
    intent_hash: Option<u64>,
    label: String,
    instrument: String,
    fresh: &[&VenueTrade],
) {
    if fresh.is_empty() {
        return;
    }
    let amount = fresh.iter().fold(0_i64, |s, t| s.saturating_add(t.signed_amount()));
    let trade_ids: Vec<String> = fresh.iter().map(|t| t.trade_id.clone()).collect();
    let e = adopted.entry(instrument.clone()).or_insert(0);
    *e = e.saturating_add(amount);
    actions.push(RepairAction::AdoptFill {
        instrument: instrument.clone(),
        delta: amount,
        trade_ids: trade_ids.clone(),
    });
    let reason = if intent_hash.is_some() {
        OrphanReason::TerminalIntent
    } else {
        OrphanReason::UnknownIntent
    };
    findings.push(Finding::OrphanFill {
        intent_hash,
        label,
        instrument,
        amount,
        trade_ids,
        reason,
    });
}

/// Trades beyond the ledger's cumulative fill (in time order), i.e. the ones it lacks.
fn beyond_ledger<'v>(ledger_filled: AmountRaw, trades: &[&'v VenueTrade]) -> Vec<&'v VenueTrade> {
    let mut covered = 0_i64;
    let mut out = Vec::new();
    for t in trades {
        if covered >= ledger_filled {
            out.push(*t);
        } else {
            covered = covered.saturating_add(t.amount);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn resolve_intent(
    it: &LedgerIntent,
    side: &VenueSide<'_>,
    venue: &VenueSnapshot,
    ledger: &LedgerSnapshot,
    cfg: &ReconcileConfig,
    findings: &mut Vec<Finding>,
    actions: &mut Vec<RepairAction>,
    adopted: &mut BTreeMap<String, AmountRaw>,
) {
    let h = it.intent_hash;
    let trade_sum = side.trades.iter().fold(0_i64, |s, t| s.saturating_add(t.amount));
    // The kept open order (the sweeper put duplicates among the zombies).
    let open = side.open.first().copied();
    let lookup = venue.label_lookups.get(&it.label);
    let looked_up: Option<&VenueOrder> = lookup.and_then(|l| {
        let mut v: Vec<&VenueOrder> = l.orders.iter().collect();
        v.sort_by(|a, b| {
            let acked = it.venue_order_id.as_deref();
            (acked != Some(a.order_id.as_str()), std::cmp::Reverse(a.creation_ms), &a.order_id).cmp(
                &(
                    acked != Some(b.order_id.as_str()),
                    std::cmp::Reverse(b.creation_ms),
                    &b.order_id,
                ),
            )
        });
        v.first().copied()
    });
    let order_filled = open.map_or(0, |o| o.filled_amount);
    let lookup_filled = looked_up.map_or(0, |o| o.filled_amount);
    let venue_filled = trade_sum.max(order_filled).max(lookup_filled);
    let instrument = open
        .map(|o| o.instrument.clone())
        .or_else(|| side.trades.first().map(|t| t.instrument.clone()))
        .or_else(|| looked_up.map(|o| o.instrument.clone()))
        .or_else(|| it.detail.as_ref().map(|d| d.instrument.clone()))
        .unwrap_or_default();
    let direction = open
        .map(|o| o.direction)
        .or_else(|| side.trades.first().map(|t| t.direction))
        .or_else(|| looked_up.map(|o| o.direction))
        .or_else(|| it.detail.as_ref().map(|d| d.direction))
        .unwrap_or(Direction::Zero);
    let beyond = beyond_ledger(it.filled_amount, &side.trades);
    let last_trade_id = side.trades.last().map(|t| t.trade_id.clone()).unwrap_or_default();

    if it.state.is_terminal() {
        // The ledger cannot move; fills beyond it are orphans (deduped by processed ids).
        let fresh: Vec<&VenueTrade> = beyond
            .into_iter()
            .filter(|t| !ledger.processed_trade_ids.contains(&t.trade_id))
            .collect();
        orphan(findings, actions, adopted, Some(h), it.label.clone(), instrument, &fresh);
        return;
    }

    // Fills the position book lacks: everything beyond the ledger, minus trades already
    // processed (applied to positions but not yet journaled).
    let missing = venue_filled.saturating_sub(it.filled_amount).max(0);
    let processed_beyond: AmountRaw = beyond
        .iter()
        .filter(|t| ledger.processed_trade_ids.contains(&t.trade_id))
        .fold(0, |s, t| s.saturating_add(t.amount));
    let adopt = missing.saturating_sub(processed_beyond).max(0);
    let adopt_ids: Vec<String> = beyond
        .iter()
        .filter(|t| !ledger.processed_trade_ids.contains(&t.trade_id))
        .map(|t| t.trade_id.clone())
        .collect();
    let mut adopt_fill = |actions: &mut Vec<RepairAction>| {
        if adopt > 0 || !adopt_ids.is_empty() {
            let delta = signed(direction, adopt);
            let e = adopted.entry(instrument.clone()).or_insert(0);
            *e = e.saturating_add(delta);
            actions.push(RepairAction::AdoptFill {
                instrument: instrument.clone(),
                delta,
                trade_ids: adopt_ids.clone(),
            });
        }
    };
    let late_fill = |findings: &mut Vec<Finding>| {
        findings.push(Finding::LateFill {
            intent_hash: h,
            label: it.label.clone(),
            instrument: instrument.clone(),
            ledger_filled: it.filled_amount,
            venue_filled,
        });
    };
    let filled_in_full =
        it.detail.as_ref().is_some_and(|d| d.amount > 0 && venue_filled >= d.amount);

    if let Some(o) = open {
        // Working at the venue.
        if matches!(it.state, IntentState::Recorded | IntentState::Sent) {
            findings.push(Finding::LateAck {
                intent_hash: h,
                label: it.label.clone(),
                order_id: o.order_id.clone(),
            });
            actions.push(RepairAction::Ledger(LedgerRepair::Acknowledged {
                intent_hash: h,
                venue_order_id: o.order_id.clone(),
            }));
        }
        if missing > 0 {
            late_fill(findings);
            adopt_fill(actions);
            actions.push(RepairAction::Ledger(LedgerRepair::PartiallyFilled {
                intent_hash: h,
                instrument: instrument.clone(),
                filled_amount: venue_filled,
                trade_id: last_trade_id,
            }));
        }
        return;
    }

    // No open order at the venue.
    let fresh = venue.fetched_ms.saturating_sub(it.updated_ms) < cfg.in_flight_grace_ms;
    let terminal: Option<LedgerRepair> = match looked_up.map(|o| o.state) {
        Some(OrderState::Open | OrderState::Untriggered) => None,
        Some(OrderState::Rejected) if venue_filled == 0 && it.filled_amount == 0 => {
            Some(LedgerRepair::Rejected { intent_hash: h })
        }
        Some(OrderState::Cancelled | OrderState::Rejected) => Some(LedgerRepair::Cancelled {
            intent_hash: h,
            instrument: instrument.clone(),
            filled_amount: venue_filled.max(it.filled_amount),
        }),
        Some(_) => Some(LedgerRepair::Filled {
            intent_hash: h,
            instrument: instrument.clone(),
            filled_amount: venue_filled.max(it.filled_amount),
            trade_id: last_trade_id.clone(),
        }),
        None if filled_in_full => Some(LedgerRepair::Filled {
            intent_hash: h,
            instrument: instrument.clone(),
            filled_amount: venue_filled.max(it.filled_amount),
            trade_id: last_trade_id.clone(),
        }),
        None if fresh => None,
        None if lookup.is_some() && venue_filled > 0 => Some(LedgerRepair::Cancelled {
            intent_hash: h,
            instrument: instrument.clone(),
            filled_amount: venue_filled.max(it.filled_amount),
        }),
        None if lookup.is_some() => Some(match it.state {
            IntentState::Recorded | IntentState::Sent => LedgerRepair::Abandoned { intent_hash: h },
            _ => LedgerRepair::Cancelled {
                intent_hash: h,
                instrument: instrument.clone(),
                filled_amount: it.filled_amount,
            },
        }),
        None => None,
    };
    if missing > 0 {
        late_fill(findings);
        adopt_fill(actions);
    }
    match terminal {
        Some(rec) => {
            if missing == 0 {
                findings.push(Finding::GhostIntent {
                    intent_hash: h,
                    label: it.label.clone(),
                    ledger_state: it.state,
                    resolved_to: rec.target_state(),
                });
            }
            actions.push(RepairAction::Ledger(rec));
        }
        None => {
            let reason = match looked_up.map(|o| o.state) {
                Some(OrderState::Open | OrderState::Untriggered) => UnresolvedReason::VenueRace,
                _ if fresh => UnresolvedReason::InFlight,
                _ => UnresolvedReason::LookupMissing,
            };
            if missing > 0 {
                actions.push(RepairAction::Ledger(LedgerRepair::PartiallyFilled {
                    intent_hash: h,
                    instrument: instrument.clone(),
                    filled_amount: venue_filled,
                    trade_id: last_trade_id,
                }));
            }
            findings.push(Finding::Unresolved { intent_hash: h, label: it.label.clone(), reason });
        }
    }
}

/// The live intents with no open order at the venue: the ones a by-label lookup should be
/// done for before [`reconcile`] (sorted by label, at most `max`).
#[must_use]
pub fn ghost_candidates(
    ledger: &LedgerSnapshot,
    open_orders: &[VenueOrder],
    max: usize,
) -> Vec<String> {
    let mut intents = ledger.intents.clone();
    intents.sort_by_key(|i| i.intent_hash);
    let matcher = Matcher::new(&intents);
    let mut has_order = BTreeSet::new();
    for o in open_orders {
        let key = VenueKey {
            order_id: &o.order_id,
            label: &o.label,
            instrument: &o.instrument,
            direction: o.direction,
            amount: Some(o.amount),
        };
        if let Resolution::Intent(i) = matcher.resolve(&key) {
            has_order.insert(i);
        }
    }
    let mut out: Vec<String> = intents
        .iter()
        .enumerate()
        .filter(|(i, it)| !it.state.is_terminal() && !has_order.contains(i))
        .map(|(_, it)| it.label.clone())
        .collect();
    out.sort();
    out.truncate(max);
    out
}
