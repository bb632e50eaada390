//! Atomic Group Executor (contract A §5.6, B §3.1): a deterministic, I/O-free state machine.
//!
//! The caller (the engine loop) feeds [`GroupInput`]s — persistence results, leg reports, time
//! ticks, disconnects, reconciliation results — and gets back a [`Step`]: WAL-shaped
//! [`GroupRecord`]s to append **first**, then [`GroupAction`]s to perform in order. Nothing in
//! here touches a socket, a file or the clock.
//!
//! ```text
//!  New ──Persisted──▶ Dispatched ──all legs filled──▶ Complete
//!   │                    │
//!   │PersistFailed       │first failure (reject, partial, unfilled, timeout, disconnect)
//!   ▼                    ▼
//!  Flattened (0 legs)  MixedFailed ──rescue filled every leg──▶ Complete
//!                        │ (≤ 2 rescue rounds, gated, ask+2 ticks / bid−2 ticks)
//!                        ▼
//!                     Flattening ──legs flat──▶ Flattened
//!                        │ (≤ 3 reduce-only IOC closes: 5, 10, 20 ticks)
//!                        └──still exposed──▶ hedge (≤ 2 rounds) ──filled──▶ Flattened
//!                                                  └─exhausted──▶ Escalate (stays Flattening)
//! ```
//!
//! Invariants: the first failure is recorded once and never overwritten; `Complete` only when
//! every order is terminal and every leg is filled to its requested quantity; at most
//! [`RESCUE_ATTEMPTS_MAX`] rescue rounds; every order, follow-ups included, has the group id in
//! its label; the pending-exposure reservation taken at acceptance is released exactly once, on
//! the terminal transition.

mod budget;
mod pricer;

pub use budget::{PendingExposureBudget, Reservation, RESERVE_CAS_ATTEMPTS_MAX};
pub use pricer::{ioc_limit_price, PricerInput};

use std::sync::Arc;

use crate::domain::instrument::{Instrument, InstrumentName};
use crate::domain::intent::{GroupId, IntentFields, IntentHash, OrderIntent, Side, StrategyId};
use crate::domain::label::Label;
use crate::domain::metadata::InstrumentMeta;
use crate::domain::reason_codes::{ModeReasonCode, RejectReasonCode};
use crate::domain::units::{Qty, Usd};
use crate::emergency::{
    buffer_ticks, cross_price, ioc_fields, select_touch, CloseIdentity, EmergencyConfig,
    HedgeQuote, PriceInputs,
};
use crate::wal::record::Record;

/// Rescue rounds at most (contract A §5.6 Step A).
pub const RESCUE_ATTEMPTS_MAX: u8 = 2;
/// `rescue_cross_spread_ticks` (Appendix A).
pub const RESCUE_CROSS_SPREAD_TICKS: i64 = 2;
/// Hedge rounds after the closes are exhausted.
pub const HEDGE_ATTEMPTS_MAX: u8 = 2;
/// Pause between containment rounds (close retries, hedge rounds): an IOC that just took
/// the book's liquidity leaves our view of that book stale until the venue's next update, and
/// a retry priced off the old touch cannot fill. Bounds time-to-neutral to ~4 gaps.
pub const FOLLOW_UP_ROUND_GAP_MS: i64 = 300;
/// A leg counts as hedged when the filled hedge is within this share of its target (bps).
pub const HEDGE_RESIDUAL_MAX_BPS: u64 = 200;
/// Legs per group (`leg_idx` is 0 or 1 in the label contract).
pub const GROUP_LEGS_MAX: usize = 2;
/// Orders one group may ever create: legs + rescues + closes + hedges (each per leg).
pub const GROUP_ORDERS_MAX: usize = GROUP_LEGS_MAX
    * (1 + RESCUE_ATTEMPTS_MAX as usize
        + crate::emergency::CLOSE_ATTEMPTS_MAX as usize
        + HEDGE_ATTEMPTS_MAX as usize);
/// How long an IOC order may stay without a terminal report before it is in doubt. The contract
/// gives no number; an IOC is terminal within one venue round trip, so one second is generous.
pub const ORDER_REPORT_TIMEOUT_MS: i64 = 1_000;
/// How long (from the first close round that found no price) containment waits for a fresh
/// price before blocked rounds count as attempts anyway (B §3.1: no price ⇒ no dispatch; the
/// hedge and escalation still follow). Time, not input count: ticks arrive every few ms, and a
/// book whose liquidity was just pulled needs the venue's next quote refresh.
pub const CLOSE_PRICE_WAIT_MS_MAX: i64 = 2_000;
/// Rescue orders cross by ticks only; this bps bound is wide enough never to bind them.
const RESCUE_SLIPPAGE_BPS_MAX: i64 = 10_000;
/// The mode reason the executor holds while a group is contained or exposed (ruling 6: the
/// group mechanism's own ReduceOnly code). The engine maps the hold onto
/// `PolicyInputs::group_lock_timeout`.
pub const GROUP_HOLD_REASON: ModeReasonCode = ModeReasonCode::ReduceonlyGroupLockTimeout;

/// Group states (contract A §5.6 `GroupState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupState {
    /// Accepted and reserved; waiting for the group intent to be durable.
    New,
    /// Legs sent.
    Dispatched,
    /// Every leg filled as requested.
    Complete,
    /// A failure was observed; containment (rescue) in progress.
    MixedFailed,
    /// Closing the filled legs (then hedging).
    Flattening,
    /// Exposure neutralized (closed, hedged, or nothing was ever filled).
    Flattened,
}

impl GroupState {
    /// Stable string form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Dispatched => "Dispatched",
            Self::Complete => "Complete",
            Self::MixedFailed => "MixedFailed",
            Self::Flattening => "Flattening",
            Self::Flattened => "Flattened",
        }
    }

    /// Complete or Flattened.
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Flattened)
    }
}

/// The first failure a group saw (seeds `MixedFailed`; never overwritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// `append_group_intent` failed: zero legs were sent.
    PersistFailed,
    /// The venue rejected a leg.
    LegRejected {
        /// Leg.
        leg: u8,
        /// Venue error code.
        code: i64,
    },
    /// A leg filled partly.
    PartialFill {
        /// Leg.
        leg: u8,
    },
    /// A leg's IOC expired with nothing filled.
    Unfilled {
        /// Leg.
        leg: u8,
    },
    /// No terminal report within [`ORDER_REPORT_TIMEOUT_MS`].
    Timeout {
        /// Leg.
        leg: u8,
    },
    /// The venue connection dropped with orders in flight.
    Disconnect,
}

impl FailureCause {
    /// Stable string form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PersistFailed => "persist_failed",
            Self::LegRejected { .. } => "leg_rejected",
            Self::PartialFill { .. } => "partial_fill",
            Self::Unfilled { .. } => "unfilled",
            Self::Timeout { .. } => "timeout",
            Self::Disconnect => "disconnect",
        }
    }
}

/// Why an order exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderRole {
    /// An original leg.
    Leg,
    /// A rescue of the missing quantity (round 1 or 2).
    Rescue(u8),
    /// A reduce-only emergency close of a filled leg (attempt 1..=3).
    Close(u8),
    /// A delta hedge in the hedge instrument (round 1..=2).
    Hedge(u8),
}

/// The life of one order (contract A §6.1 TLSM, plus `InDoubt` for timeouts/disconnects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Sent, nothing heard.
    Sent,
    /// Acknowledged.
    Acked,
    /// Partly filled, still live.
    PartiallyFilled,
    /// Fully filled (terminal).
    Filled,
    /// IOC remainder cancelled (terminal; `filled` may be > 0).
    Canceled,
    /// Rejected by the venue (terminal).
    Rejected,
    /// No terminal report in time, or the connection dropped: ask the venue by label.
    InDoubt,
}

impl OrderStatus {
    /// Terminal (no further fills possible).
    #[must_use]
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Canceled | Self::Rejected)
    }
}

/// One order of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedOrder {
    /// The intent.
    pub intent: OrderIntent,
    /// The leg it belongs to (0/1).
    pub leg: u8,
    /// Why it exists.
    pub role: OrderRole,
    /// Status.
    pub status: OrderStatus,
    /// Cumulative filled quantity.
    pub filled: Qty,
    /// When it becomes in doubt without a terminal report.
    pub deadline_ms: i64,
}

/// One leg as planned: an IOC limit intent and its worst-case exposure for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegPlan {
    /// The leg intent (IOC limit, not reduce-only, group id and leg index set).
    pub intent: OrderIntent,
    /// Worst-case exposure of the leg in USD (reserved at acceptance).
    pub exposure_usd: Usd,
}

impl LegPlan {
    /// Builds a leg as the executor requires it: an IOC limit (never market, never post-only or
    /// reduce-only) priced by the §5.10 pricer, then quantized (BUY rounds down, SELL up).
    /// `fields` supplies identity, instrument, side and quantity; `pricer.side`/`pricer.qty`
    /// must match them.
    ///
    /// # Errors
    /// `NetEdgeTooLow`, `QtyNotPositive`, `LimitPriceInvalid` from the pricer, or a quantization
    /// code.
    pub fn ioc_priced(
        fields: IntentFields,
        pricer: &PricerInput,
        meta: Option<&InstrumentMeta>,
        exposure_usd: Usd,
    ) -> Result<Self, RejectReasonCode> {
        if pricer.side != fields.side || pricer.qty != fields.qty {
            return Err(RejectReasonCode::LimitPriceInvalid);
        }
        let limit = ioc_limit_price(pricer)?;
        let fields = IntentFields {
            order_type: crate::domain::intent::OrderType::Limit,
            time_in_force: crate::domain::intent::TimeInForce::ImmediateOrCancel,
            post_only: false,
            reduce_only: false,
            emergency_close: false,
            linked_order_type: None,
            trigger_price: None,
            limit_price: Some(limit),
            ..fields
        };
        Ok(Self { intent: OrderIntent::new_quantized(fields, meta)?, exposure_usd })
    }
}

/// Why a group was refused at acceptance (nothing reserved, nothing recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// No legs, or more than [`GROUP_LEGS_MAX`].
    #[error("a group has 1..={GROUP_LEGS_MAX} legs")]
    LegCount,
    /// Legs disagree on group id / strategy, or leg indices are not 0..n in order.
    #[error("legs do not share one group id and strategy with indices 0..n")]
    LegIdentity,
    /// A leg is not an IOC limit order without reduce-only.
    #[error("legs must be IOC limit orders (never market)")]
    LegShape,
    /// A leg's label does not fit.
    #[error("label too long")]
    Label,
    /// The pending-exposure budget refused the reservation.
    #[error("pending exposure budget exceeded")]
    Budget,
}

impl GroupError {
    /// The registry code an intent rejection carries.
    #[must_use]
    pub const fn reject_code(self) -> RejectReasonCode {
        match self {
            Self::Budget => RejectReasonCode::PendingExposureBudgetExceeded,
            Self::Label => RejectReasonCode::LabelTooLong,
            Self::LegCount | Self::LegIdentity | Self::LegShape => {
                RejectReasonCode::OrderTypeNotAllowed
            }
        }
    }
}

/// What the caller reports to the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInput {
    /// The group intent and leg intents are durable in the WAL.
    Persisted,
    /// `append_group_intent` failed: abort with zero legs sent (AT-939).
    PersistFailed,
    /// Venue acknowledged an order.
    Ack {
        /// Order.
        order: IntentHash,
        /// Venue order id.
        venue_order_id: String,
    },
    /// A fill; `cumulative` is the order's total filled so far (fill-before-ack is legal).
    Fill {
        /// Order.
        order: IntentHash,
        /// Cumulative filled quantity.
        cumulative: Qty,
    },
    /// The IOC finished; the remainder (if any) was cancelled.
    Done {
        /// Order.
        order: IntentHash,
        /// Final filled quantity.
        filled: Qty,
    },
    /// The venue rejected an order.
    Rejected {
        /// Order.
        order: IntentHash,
        /// Venue error code.
        code: i64,
    },
    /// Time passed (checks report deadlines).
    Tick,
    /// The venue connection dropped.
    Disconnected,
    /// Reconciliation by label found the order's final filled quantity (0 = never reached the
    /// venue or nothing filled).
    Reconciled {
        /// Order.
        order: IntentHash,
        /// Final filled quantity.
        filled: Qty,
    },
}

/// What the caller must do (after appending the step's records).
// Steps are produced per venue event, not per market tick; copying an intent is cheaper than a
// heap box here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAction {
    /// Dispatch this IOC order (its `IntentRecorded` record is in the same step).
    Send {
        /// Order.
        intent: OrderIntent,
        /// Leg.
        leg: u8,
        /// Role.
        role: OrderRole,
    },
    /// Ask the venue for this order's fate by label before anything else (DESIGN invariant 8).
    Reconcile {
        /// Order.
        order: IntentHash,
        /// Its label.
        label: Label,
    },
    /// Hold ReduceOnly with this reason while the group is contained/exposed.
    HoldReduceOnly(ModeReasonCode),
    /// The group no longer needs the hold.
    ReleaseReduceOnly(ModeReasonCode),
    /// Containment is exhausted with exposure left: the portfolio-wide emergency close
    /// (`crate::emergency`) must take over; the hold stays.
    Escalate {
        /// Per-leg residual (signed) exposure.
        residual: [Qty; GROUP_LEGS_MAX],
    },
}

/// An order event in WAL terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    /// Acknowledged.
    Acked {
        /// Venue order id.
        venue_order_id: String,
    },
    /// Cumulative partial fill.
    PartiallyFilled {
        /// Cumulative filled.
        filled: Qty,
    },
    /// Fully filled.
    Filled {
        /// Final filled.
        filled: Qty,
    },
    /// IOC remainder cancelled.
    Cancelled {
        /// Filled before the cancel.
        filled: Qty,
    },
    /// Venue reject.
    Rejected {
        /// Venue code.
        code: i64,
    },
    /// No terminal report in time / disconnected: reconcile by label.
    InDoubt,
    /// A report that changed nothing (late/duplicate/unknown); logged, never panicked on.
    Anomaly(&'static str),
}

/// A record the caller appends to the WAL before performing the step's actions.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    /// The group intent (`append_group_intent`): written at acceptance, before any leg.
    GroupIntent {
        /// Group.
        group_id: GroupId,
        /// Strategy.
        strategy_id: StrategyId,
        /// Leg intent hashes, in leg order.
        legs: Vec<IntentHash>,
        /// Reserved worst-case exposure.
        reserved_usd: Usd,
    },
    /// An order about to be dispatched (maps to `Record::IntentRecorded`).
    OrderRecorded {
        /// The order.
        intent: OrderIntent,
        /// Its label.
        label: Label,
        /// Leg.
        leg: u8,
        /// Role.
        role: OrderRole,
    },
    /// An order's life-cycle event (maps to the matching WAL kind where one exists).
    Order {
        /// Order.
        order: IntentHash,
        /// Event.
        event: OrderEvent,
    },
    /// A rescue round was not sent: a leg's rescue failed a gate (or had no price); Step B
    /// follows (AT-936).
    RescueRefused {
        /// Leg.
        leg: u8,
        /// Why.
        code: RejectReasonCode,
    },
    /// A close could not be planned for a leg (`EmergencyCloseNoPrice`, metadata, quantization).
    CloseBlocked {
        /// Leg.
        leg: u8,
        /// Why.
        code: RejectReasonCode,
    },
    /// A group state transition.
    Transition {
        /// Group.
        group_id: GroupId,
        /// From.
        from: GroupState,
        /// To.
        to: GroupState,
        /// The (first) failure, if any.
        cause: Option<FailureCause>,
    },
    /// The `AtomicNakedEvent` of a contained group (B §3.1), exactly one per failed group.
    Naked {
        /// Group.
        group_id: GroupId,
        /// Strategy.
        strategy_id: StrategyId,
        /// Close attempts used (0..=3).
        close_attempts: u8,
        /// Whether the hedge ran.
        hedge_used: bool,
        /// Why.
        cause: &'static str,
        /// When the first failure was observed (ms, the caller's clock).
        incident_ts_ms: i64,
        /// From the incident to this event (delta neutral, or escalation).
        time_to_delta_neutral_ms: i64,
        /// Signed per-leg exposure left in the leg instruments (zero unless hedged/escalated).
        residual: [Qty; GROUP_LEGS_MAX],
    },
}

impl GroupRecord {
    /// The WAL record this maps onto, where the WAL has a kind for it. Group-level records
    /// (`GroupIntent`, `Transition`, `Naked`) and `InDoubt`/`Anomaly` have no WAL kind yet; the
    /// engine writes them to the group journal / log sink until one is added.
    #[must_use]
    pub fn to_wal(&self) -> Option<Record<'_>> {
        match self {
            Self::OrderRecorded { intent, label, .. } => Some(Record::IntentRecorded {
                intent_hash: intent.hash().value(),
                label: label.as_str(),
                canonical: intent.canonical_bytes().as_bytes(),
            }),
            Self::Order { order, event } => {
                let intent_hash = order.value();
                match event {
                    OrderEvent::Acked { venue_order_id } => {
                        Some(Record::Acknowledged { intent_hash, venue_order_id })
                    }
                    OrderEvent::PartiallyFilled { filled } => Some(Record::PartiallyFilled {
                        intent_hash,
                        filled_qty: filled.raw(),
                        trade_id: "",
                    }),
                    OrderEvent::Filled { filled } => {
                        Some(Record::Filled { intent_hash, filled_qty: filled.raw(), trade_id: "" })
                    }
                    OrderEvent::Cancelled { filled } => {
                        Some(Record::Cancelled { intent_hash, filled_qty: filled.raw() })
                    }
                    OrderEvent::Rejected { code } => Some(Record::Rejected {
                        intent_hash,
                        code: i32::try_from(*code).unwrap_or(i32::MIN),
                        reason: "venue_reject",
                    }),
                    OrderEvent::InDoubt | OrderEvent::Anomaly(_) => None,
                }
            }
            Self::GroupIntent { .. }
            | Self::RescueRefused { .. }
            | Self::CloseBlocked { .. }
            | Self::Transition { .. }
            | Self::Naked { .. } => None,
        }
    }
}

/// One step's output: append `records`, then perform `actions` in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Records to append first.
    pub records: Vec<GroupRecord>,
    /// Actions to perform after the records are appended.
    pub actions: Vec<GroupAction>,
}

/// What the executor reads from the market: metadata, prices, the rescue gates (liquidity gate
/// + net edge ≥ min edge, A §5.6 Step A) and the hedge sizing (delta lives in the engine).
pub trait GroupMarket {
    /// Instrument metadata.
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta>;
    /// Book and ticker of an instrument.
    fn prices(&self, instrument: InstrumentName) -> PriceInputs;
    /// Whether a rescue order passes the liquidity gate and net-edge gate.
    ///
    /// # Errors
    /// The gate's reject code.
    fn permit_rescue(&self, intent: &OrderIntent) -> Result<(), RejectReasonCode>;
    /// The hedge for a residual (signed) position in `instrument`.
    fn hedge_for(&self, instrument: &Instrument, residual: Qty) -> Option<HedgeQuote>;
}

/// One atomic group.
#[derive(Debug)]
pub struct AtomicGroup {
    group_id: GroupId,
    strategy_id: StrategyId,
    legs: Vec<LegPlan>,
    orders: Vec<TrackedOrder>,
    state: GroupState,
    first_failure: Option<FailureCause>,
    rescues: u8,
    closes: u8,
    hedges: u8,
    hedge_used: bool,
    escalated: bool,
    close_blocked_since_ms: Option<i64>,
    hedge_blocked_since_ms: Option<i64>,
    /// When the last close/hedge round went out.
    last_follow_up_ms: Option<i64>,
    /// Latest signed hedge target per leg (hedge instrument units).
    hedge_target: [i64; GROUP_LEGS_MAX],
    now_ms: i64,
    incident_ts_ms: i64,
    holding: bool,
    budget: Arc<PendingExposureBudget>,
    reservation: Option<Reservation>,
    cfg: EmergencyConfig,
}

fn signed(side: Side, qty: Qty) -> i64 {
    match side {
        Side::Buy => qty.raw(),
        Side::Sell => -qty.raw(),
    }
}

impl AtomicGroup {
    /// Validates the legs, reserves their exposure all-or-nothing, and returns the group in
    /// `New` with the records to persist (`GroupIntent` + each leg's `OrderRecorded`). No leg
    /// is sent until [`GroupInput::Persisted`].
    ///
    /// # Errors
    /// [`GroupError`]; nothing is reserved on error.
    pub fn accept(
        legs: &[LegPlan],
        budget: Arc<PendingExposureBudget>,
        cfg: EmergencyConfig,
        now_ms: i64,
    ) -> Result<(Self, Step), GroupError> {
        let first = legs.first().ok_or(GroupError::LegCount)?;
        if legs.len() > GROUP_LEGS_MAX {
            return Err(GroupError::LegCount);
        }
        let (group_id, strategy_id) =
            (first.intent.fields().group_id, first.intent.fields().strategy_id);
        let mut labels = Vec::with_capacity(legs.len());
        let mut total = Usd::ZERO;
        for (index, leg) in legs.iter().enumerate() {
            let f = leg.intent.fields();
            if f.group_id != group_id
                || f.strategy_id != strategy_id
                || usize::from(f.leg_index) != index
            {
                return Err(GroupError::LegIdentity);
            }
            let ioc_limit = f.order_type == crate::domain::intent::OrderType::Limit
                && f.time_in_force == crate::domain::intent::TimeInForce::ImmediateOrCancel
                && f.limit_price.is_some()
                && !f.reduce_only
                && !f.post_only
                && f.qty.is_positive();
            if !ioc_limit {
                return Err(GroupError::LegShape);
            }
            labels.push(Label::for_intent(&leg.intent).map_err(|_| GroupError::Label)?);
            total = total.checked_add(leg.exposure_usd.abs()).ok_or(GroupError::Budget)?;
        }
        let reservation = budget.try_reserve(total).map_err(|_| GroupError::Budget)?;
        let mut step = Step::default();
        step.records.push(GroupRecord::GroupIntent {
            group_id,
            strategy_id,
            legs: legs.iter().map(|l| l.intent.hash()).collect(),
            reserved_usd: total,
        });
        let mut orders = Vec::with_capacity(GROUP_ORDERS_MAX);
        for (index, (leg, label)) in legs.iter().zip(labels).enumerate() {
            let leg_index = u8::try_from(index).unwrap_or(u8::MAX);
            step.records.push(GroupRecord::OrderRecorded {
                intent: leg.intent,
                label,
                leg: leg_index,
                role: OrderRole::Leg,
            });
            orders.push(TrackedOrder {
                intent: leg.intent,
                leg: leg_index,
                role: OrderRole::Leg,
                status: OrderStatus::Sent,
                filled: Qty::ZERO,
                deadline_ms: now_ms.saturating_add(ORDER_REPORT_TIMEOUT_MS),
            });
        }
        let group = Self {
            group_id,
            strategy_id,
            legs: legs.to_vec(),
            orders,
            state: GroupState::New,
            first_failure: None,
            rescues: 0,
            closes: 0,
            hedges: 0,
            hedge_used: false,
            escalated: false,
            close_blocked_since_ms: None,
            hedge_blocked_since_ms: None,
            last_follow_up_ms: None,
            hedge_target: [0; GROUP_LEGS_MAX],
            now_ms,
            incident_ts_ms: now_ms,
            holding: false,
            budget,
            reservation: Some(reservation),
            cfg,
        };
        Ok((group, step))
    }

    /// Current state.
    #[must_use]
    pub const fn state(&self) -> GroupState {
        self.state
    }

    /// The first failure (never overwritten).
    #[must_use]
    pub const fn first_failure(&self) -> Option<FailureCause> {
        self.first_failure
    }

    /// Rescue rounds used.
    #[must_use]
    pub const fn rescues(&self) -> u8 {
        self.rescues
    }

    /// Close attempts used.
    #[must_use]
    pub const fn close_attempts(&self) -> u8 {
        self.closes
    }

    /// Whether the hedge fallback ran.
    #[must_use]
    pub const fn hedge_used(&self) -> bool {
        self.hedge_used
    }

    /// Whether containment was exhausted and handed to the portfolio emergency close.
    #[must_use]
    pub const fn escalated(&self) -> bool {
        self.escalated
    }

    /// Whether the pending-exposure reservation is still held.
    #[must_use]
    pub const fn holds_reservation(&self) -> bool {
        self.reservation.is_some()
    }

    /// Every order so far.
    #[must_use]
    pub fn orders(&self) -> &[TrackedOrder] {
        &self.orders
    }

    /// Group id.
    #[must_use]
    pub const fn group_id(&self) -> GroupId {
        self.group_id
    }

    /// Net signed filled exposure per leg in the leg's instrument (legs + rescues − closes).
    #[must_use]
    pub fn leg_exposure(&self) -> [Qty; GROUP_LEGS_MAX] {
        let mut net = [0_i64; GROUP_LEGS_MAX];
        for order in self.orders.iter().filter(|o| !matches!(o.role, OrderRole::Hedge(_))) {
            let slot = &mut net[usize::from(order.leg)];
            *slot = slot.saturating_add(signed(order.intent.fields().side, order.filled));
        }
        net.map(Qty::from_raw)
    }

    /// Net signed filled quantity of the hedge orders per leg (in the hedge instrument).
    #[must_use]
    pub fn hedge_exposure(&self) -> [Qty; GROUP_LEGS_MAX] {
        let mut net = [0_i64; GROUP_LEGS_MAX];
        for order in self.orders.iter().filter(|o| matches!(o.role, OrderRole::Hedge(_))) {
            let slot = &mut net[usize::from(order.leg)];
            *slot = slot.saturating_add(signed(order.intent.fields().side, order.filled));
        }
        net.map(Qty::from_raw)
    }

    fn in_flight(&self) -> bool {
        self.orders.iter().any(|o| !o.status.is_terminal())
    }

    fn seed(&mut self, cause: FailureCause, step: &mut Step) {
        if self.first_failure.is_none() {
            self.first_failure = Some(cause);
            self.incident_ts_ms = self.now_ms;
        }
        if !self.holding {
            self.holding = true;
            step.actions.push(GroupAction::HoldReduceOnly(GROUP_HOLD_REASON));
        }
        if self.state == GroupState::Dispatched {
            self.transition(GroupState::MixedFailed, step);
        }
    }

    fn transition(&mut self, to: GroupState, step: &mut Step) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        step.records.push(GroupRecord::Transition {
            group_id: self.group_id,
            from,
            to,
            cause: self.first_failure,
        });
        if to.is_terminal() {
            if let Some(reservation) = self.reservation.take() {
                self.budget.release(reservation);
            }
            if self.holding {
                self.holding = false;
                step.actions.push(GroupAction::ReleaseReduceOnly(GROUP_HOLD_REASON));
            }
            // Escalation already emitted the group's one naked event.
            if self.first_failure.is_some() && to == GroupState::Flattened && !self.escalated {
                step.records.push(self.naked());
            }
        }
    }

    fn naked(&self) -> GroupRecord {
        let cause = if self.hedge_used {
            "hedge_fallback"
        } else if self.escalated {
            "emergency_close_exhausted"
        } else {
            "atomic_legging_failure"
        };
        GroupRecord::Naked {
            group_id: self.group_id,
            strategy_id: self.strategy_id,
            close_attempts: self.closes,
            hedge_used: self.hedge_used,
            cause,
            incident_ts_ms: self.incident_ts_ms,
            time_to_delta_neutral_ms: self.now_ms.saturating_sub(self.incident_ts_ms),
            residual: self.leg_exposure(),
        }
    }

    /// Feeds one input at `now_ms`.
    pub fn on_input(&mut self, input: GroupInput, now_ms: i64, market: &dyn GroupMarket) -> Step {
        let mut step = Step::default();
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            GroupInput::Persisted => {
                if self.state == GroupState::New {
                    self.transition(GroupState::Dispatched, &mut step);
                    for order in &mut self.orders {
                        order.deadline_ms = now_ms.saturating_add(ORDER_REPORT_TIMEOUT_MS);
                        step.actions.push(GroupAction::Send {
                            intent: order.intent,
                            leg: order.leg,
                            role: order.role,
                        });
                    }
                }
            }
            GroupInput::PersistFailed => {
                if self.state == GroupState::New {
                    self.first_failure = Some(FailureCause::PersistFailed);
                    self.incident_ts_ms = self.now_ms;
                    // Nothing was sent: the orders are closed locally, never resent.
                    for order in &mut self.orders {
                        order.status = OrderStatus::Rejected;
                    }
                    self.transition(GroupState::Flattened, &mut step);
                }
            }
            GroupInput::Ack { order, venue_order_id } => {
                self.on_ack(order, venue_order_id, &mut step);
            }
            GroupInput::Fill { order, cumulative } => {
                self.on_fill(order, cumulative, false, false, &mut step);
            }
            GroupInput::Done { order, filled } => {
                self.on_fill(order, filled, true, false, &mut step);
            }
            GroupInput::Reconciled { order, filled } => {
                self.on_fill(order, filled, true, true, &mut step);
            }
            GroupInput::Rejected { order, code } => self.on_reject(order, code, &mut step),
            GroupInput::Tick => self.on_tick(now_ms, &mut step),
            GroupInput::Disconnected => self.on_disconnect(&mut step),
        }
        self.advance(now_ms, market, &mut step);
        step
    }

    fn find(&mut self, order: IntentHash) -> Option<usize> {
        if self.state == GroupState::New {
            return None;
        }
        self.orders.iter().position(|o| o.intent.hash() == order)
    }

    fn anomaly(order: IntentHash, what: &'static str, step: &mut Step) {
        step.records.push(GroupRecord::Order { order, event: OrderEvent::Anomaly(what) });
    }

    fn on_ack(&mut self, order: IntentHash, venue_order_id: String, step: &mut Step) {
        let Some(i) = self.find(order) else { return Self::anomaly(order, "unknown", step) };
        let o = &mut self.orders[i];
        if o.status == OrderStatus::Sent {
            o.status = OrderStatus::Acked;
            step.records
                .push(GroupRecord::Order { order, event: OrderEvent::Acked { venue_order_id } });
        } else {
            Self::anomaly(order, "late_or_duplicate_ack", step);
        }
    }

    /// `reconciled`: the venue's answer by label is authoritative and always terminal; a value
    /// below what reports already showed keeps the larger (fills never un-happen), so an
    /// in-doubt order can never stay in doubt.
    fn on_fill(
        &mut self,
        order: IntentHash,
        filled: Qty,
        done: bool,
        reconciled: bool,
        step: &mut Step,
    ) {
        let Some(i) = self.find(order) else { return Self::anomaly(order, "unknown", step) };
        let o = &mut self.orders[i];
        let requested = o.intent.fields().qty;
        if o.status.is_terminal() {
            return Self::anomaly(order, "report_after_terminal", step);
        }
        let filled = if reconciled {
            if filled < o.filled {
                step.records.push(GroupRecord::Order {
                    order,
                    event: OrderEvent::Anomaly("reconciled_below_reported"),
                });
            }
            Qty::from_raw(filled.raw().clamp(o.filled.raw(), requested.raw()))
        } else {
            filled
        };
        if filled.raw() < 0 || filled > requested || filled < o.filled {
            return Self::anomaly(order, "fill_out_of_range", step);
        }
        o.filled = filled;
        let (leg, role) = (o.leg, o.role);
        let event = if filled == requested {
            o.status = OrderStatus::Filled;
            OrderEvent::Filled { filled }
        } else if done {
            o.status = OrderStatus::Canceled;
            OrderEvent::Cancelled { filled }
        } else {
            o.status = OrderStatus::PartiallyFilled;
            OrderEvent::PartiallyFilled { filled }
        };
        step.records.push(GroupRecord::Order { order, event });
        if role == OrderRole::Leg && done && filled < requested {
            let cause = if filled.is_positive() {
                FailureCause::PartialFill { leg }
            } else {
                FailureCause::Unfilled { leg }
            };
            self.seed(cause, step);
        }
    }

    fn on_reject(&mut self, order: IntentHash, code: i64, step: &mut Step) {
        let Some(i) = self.find(order) else { return Self::anomaly(order, "unknown", step) };
        let o = &mut self.orders[i];
        if o.status.is_terminal() {
            return Self::anomaly(order, "report_after_terminal", step);
        }
        if o.filled.is_positive() {
            // A reject after a fill is a cancel of the remainder as far as exposure goes.
            o.status = OrderStatus::Canceled;
            let filled = o.filled;
            step.records
                .push(GroupRecord::Order { order, event: OrderEvent::Cancelled { filled } });
        } else {
            o.status = OrderStatus::Rejected;
            step.records.push(GroupRecord::Order { order, event: OrderEvent::Rejected { code } });
        }
        let (leg, role) = (o.leg, o.role);
        if role == OrderRole::Leg {
            self.seed(FailureCause::LegRejected { leg, code }, step);
        }
    }

    fn mark_in_doubt(&mut self, i: usize, step: &mut Step) {
        let o = &mut self.orders[i];
        if o.status.is_terminal() || o.status == OrderStatus::InDoubt {
            return;
        }
        o.status = OrderStatus::InDoubt;
        let order = o.intent.hash();
        step.records.push(GroupRecord::Order { order, event: OrderEvent::InDoubt });
        if let Ok(label) = Label::for_intent(&o.intent) {
            step.actions.push(GroupAction::Reconcile { order, label });
        }
    }

    fn on_tick(&mut self, now_ms: i64, step: &mut Step) {
        if matches!(self.state, GroupState::New) || self.state.is_terminal() {
            return;
        }
        for i in 0..self.orders.len() {
            let o = self.orders[i];
            if !o.status.is_terminal()
                && o.status != OrderStatus::InDoubt
                && now_ms >= o.deadline_ms
            {
                self.mark_in_doubt(i, step);
                if o.role == OrderRole::Leg {
                    self.seed(FailureCause::Timeout { leg: o.leg }, step);
                }
            }
        }
    }

    fn on_disconnect(&mut self, step: &mut Step) {
        if matches!(self.state, GroupState::New) || self.state.is_terminal() {
            return;
        }
        let mut any = false;
        for i in 0..self.orders.len() {
            if !self.orders[i].status.is_terminal() {
                any |= self.orders[i].role == OrderRole::Leg;
                self.mark_in_doubt(i, step);
            }
        }
        if any {
            self.seed(FailureCause::Disconnect, step);
        }
    }

    fn fully_filled(&self) -> bool {
        let net = self.leg_exposure();
        self.legs.iter().enumerate().all(|(i, leg)| {
            let f = leg.intent.fields();
            net[i].raw() == signed(f.side, f.qty)
        })
    }

    /// Runs the containment logic until it must wait for reports (bounded: each pass either
    /// sends orders, changes state, or returns).
    fn advance(&mut self, now_ms: i64, market: &dyn GroupMarket, step: &mut Step) {
        for _ in 0..8 {
            if self.in_flight() {
                return;
            }
            match self.state {
                GroupState::New | GroupState::Complete | GroupState::Flattened => return,
                GroupState::Dispatched => {
                    if self.fully_filled() {
                        self.transition(GroupState::Complete, step);
                        return;
                    }
                    // Defensive: every leg terminal, not all filled, and no cause recorded.
                    self.seed(FailureCause::Unfilled { leg: 0 }, step);
                }
                GroupState::MixedFailed => {
                    if self.fully_filled() {
                        self.transition(GroupState::Complete, step);
                        return;
                    }
                    if self.rescues < RESCUE_ATTEMPTS_MAX && self.try_rescue(now_ms, market, step) {
                        return;
                    }
                    self.transition(GroupState::Flattening, step);
                }
                GroupState::Flattening => {
                    if self.flatten_round(now_ms, market, step) {
                        return;
                    }
                }
            }
        }
    }

    /// The label leg index of the next follow-up order: `leg + 2·n` where `n` is the number of
    /// orders so far, so every order of the group has a distinct identity (and intent hash) even
    /// when two attempts share qty and price; `leg_index % 2` is the leg.
    fn next_leg_index(&self, leg: u8) -> u8 {
        // orders.len() <= GROUP_ORDERS_MAX (18) ⇒ at most 1 + 36.
        let n = u8::try_from(self.orders.len()).unwrap_or(u8::MAX / 2);
        leg.saturating_add(n.saturating_mul(GROUP_LEGS_MAX as u8))
    }

    fn identity(&self) -> CloseIdentity {
        CloseIdentity { strategy_id: self.strategy_id, group_id: self.group_id }
    }

    fn push_order(
        &mut self,
        intent: OrderIntent,
        leg: u8,
        role: OrderRole,
        now_ms: i64,
        step: &mut Step,
    ) -> bool {
        let Ok(label) = Label::for_intent(&intent) else { return false };
        if self.orders.len() >= GROUP_ORDERS_MAX {
            return false;
        }
        step.records.push(GroupRecord::OrderRecorded { intent, label, leg, role });
        step.actions.push(GroupAction::Send { intent, leg, role });
        if matches!(role, OrderRole::Close(_) | OrderRole::Hedge(_)) {
            self.last_follow_up_ms = Some(now_ms);
        }
        self.orders.push(TrackedOrder {
            intent,
            leg,
            role,
            status: OrderStatus::Sent,
            filled: Qty::ZERO,
            deadline_ms: now_ms.saturating_add(ORDER_REPORT_TIMEOUT_MS),
        });
        true
    }

    /// Step A: builds one rescue order per leg short of its requested quantity; all must pass
    /// the gates or none is sent (stop early). Returns whether orders went out.
    fn try_rescue(&mut self, now_ms: i64, market: &dyn GroupMarket, step: &mut Step) -> bool {
        let net = self.leg_exposure();
        let mut planned: Vec<(u8, OrderIntent)> = Vec::with_capacity(GROUP_LEGS_MAX);
        for (i, leg) in self.legs.iter().enumerate() {
            let f = leg.intent.fields();
            let missing = signed(f.side, f.qty) - net[i].raw();
            let missing = match f.side {
                Side::Buy => missing,
                Side::Sell => -missing,
            };
            if missing <= 0 {
                continue;
            }
            let leg_u8 = u8::try_from(i).unwrap_or(u8::MAX);
            match self.rescue_intent(leg_u8, f, Qty::from_raw(missing), now_ms, market) {
                Ok(intent) => planned.push((leg_u8, intent)),
                Err(code) => {
                    step.records.push(GroupRecord::RescueRefused { leg: leg_u8, code });
                    return false;
                }
            }
        }
        if planned.is_empty() {
            return false;
        }
        self.rescues += 1;
        let round = self.rescues;
        let mut sent = false;
        for (leg, intent) in planned {
            sent |= self.push_order(intent, leg, OrderRole::Rescue(round), now_ms, step);
        }
        sent
    }

    /// Step B: closes, then hedges. Returns true when it must wait (orders out, or escalated).
    fn flatten_round(&mut self, now_ms: i64, market: &dyn GroupMarket, step: &mut Step) -> bool {
        let net = self.leg_exposure();
        let hedged = self.hedges > 0 && self.hedge_complete();
        if net.iter().all(|q| q.raw() == 0) || hedged {
            if hedged {
                self.hedge_used = true;
            }
            self.transition(GroupState::Flattened, step);
            return true;
        }
        // Let the books catch up with the last round before another one (never delays the
        // escalation once everything is used up).
        let pausing = self
            .last_follow_up_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < FOLLOW_UP_ROUND_GAP_MS);
        if self.closes < self.cfg.close_attempts_max {
            if pausing {
                return true;
            }
            let attempt = self.closes;
            let mut planned: Vec<(u8, OrderIntent)> = Vec::with_capacity(GROUP_LEGS_MAX);
            let mut blocked: Vec<(u8, RejectReasonCode)> = Vec::new();
            for (i, leg) in self.legs.iter().enumerate() {
                if net[i].raw() == 0 {
                    continue;
                }
                let leg_u8 = u8::try_from(i).unwrap_or(u8::MAX);
                let instrument = leg.intent.fields().instrument;
                let side = if net[i].raw() > 0 { Side::Sell } else { Side::Buy };
                match self.close_intent(
                    instrument,
                    side,
                    net[i].abs(),
                    attempt,
                    leg_u8,
                    true,
                    now_ms,
                    market,
                ) {
                    Ok(intent) => planned.push((leg_u8, intent)),
                    Err(code) => blocked.push((leg_u8, code)),
                }
            }
            // Nothing could be priced (no fresh book or ticker): wait for the next input rather
            // than burn an attempt, for at most CLOSE_PRICE_WAIT_MS_MAX in all. The blocked
            // legs are recorded when the wait starts and when a round counts, not per tick.
            if planned.is_empty() {
                let first = self.close_blocked_since_ms.is_none();
                let since = *self.close_blocked_since_ms.get_or_insert(now_ms);
                if now_ms.saturating_sub(since) < CLOSE_PRICE_WAIT_MS_MAX {
                    if first {
                        for (leg, code) in &blocked {
                            step.records.push(GroupRecord::CloseBlocked { leg: *leg, code: *code });
                        }
                    }
                    return true;
                }
            }
            for (leg, code) in &blocked {
                step.records.push(GroupRecord::CloseBlocked { leg: *leg, code: *code });
            }
            self.closes += 1;
            let mut sent = false;
            for (leg, intent) in planned {
                sent |= self.push_order(intent, leg, OrderRole::Close(attempt + 1), now_ms, step);
            }
            return sent;
        }
        if self.hedges < HEDGE_ATTEMPTS_MAX {
            if pausing {
                return true;
            }
            let hedge_net = self.hedge_exposure();
            let mut planned: Vec<(u8, OrderIntent)> = Vec::with_capacity(GROUP_LEGS_MAX);
            let mut blocked: Vec<(u8, RejectReasonCode)> = Vec::new();
            for (i, leg) in self.legs.clone().iter().enumerate() {
                if net[i].raw() == 0 {
                    continue;
                }
                let leg_u8 = u8::try_from(i).unwrap_or(u8::MAX);
                let Some(quote) = market.hedge_for(&leg.intent.fields().instrument, net[i]) else {
                    continue;
                };
                let target = signed(quote.side, quote.qty);
                self.hedge_target[i] = target;
                let remaining = target - hedge_net[i].raw();
                if remaining == 0 || remaining.signum() != target.signum() {
                    continue;
                }
                match self.close_intent(
                    quote.instrument,
                    quote.side,
                    Qty::from_raw(remaining.abs()),
                    self.cfg.close_attempts_max.saturating_sub(1),
                    leg_u8,
                    false,
                    now_ms,
                    market,
                ) {
                    Ok(intent) => planned.push((leg_u8, intent)),
                    Err(code) => blocked.push((leg_u8, code)),
                }
            }
            if planned.is_empty() && !blocked.is_empty() {
                // No price for the hedge instrument: wait like a close round (time-bounded).
                let first = self.hedge_blocked_since_ms.is_none();
                let since = *self.hedge_blocked_since_ms.get_or_insert(now_ms);
                let waiting = now_ms.saturating_sub(since) < CLOSE_PRICE_WAIT_MS_MAX;
                if first || !waiting {
                    for (leg, code) in &blocked {
                        step.records.push(GroupRecord::CloseBlocked { leg: *leg, code: *code });
                    }
                }
                if waiting {
                    return true;
                }
            }
            if !planned.is_empty() {
                self.hedges += 1;
                let round = self.hedges;
                let mut sent = false;
                for (leg, intent) in planned {
                    sent |= self.push_order(intent, leg, OrderRole::Hedge(round), now_ms, step);
                }
                if sent {
                    return true;
                }
            }
        }
        if !self.escalated {
            self.escalated = true;
            if let Some(reservation) = self.reservation.take() {
                self.budget.release(reservation);
            }
            step.records.push(self.naked());
            step.actions.push(GroupAction::Escalate { residual: net });
        }
        true
    }

    /// Every leg with residual exposure is hedged to its latest target within
    /// [`HEDGE_RESIDUAL_MAX_BPS`] (an IOC hedge may leave a remainder below one useful order).
    fn hedge_complete(&self) -> bool {
        let hedge_net = self.hedge_exposure();
        let net = self.leg_exposure();
        (0..self.legs.len()).all(|i| {
            let target = self.hedge_target[i];
            net[i].raw() == 0
                || (target != 0
                    && u128::from(target.abs_diff(hedge_net[i].raw())) * 10_000
                        <= u128::from(target.unsigned_abs()) * u128::from(HEDGE_RESIDUAL_MAX_BPS))
        })
    }

    /// One leg's rescue for `missing`: IOC `rescue_cross_spread_ticks` through the touch, then
    /// the rescue gates.
    fn rescue_intent(
        &self,
        leg: u8,
        f: &IntentFields,
        missing: Qty,
        now_ms: i64,
        market: &dyn GroupMarket,
    ) -> Result<OrderIntent, RejectReasonCode> {
        let name = f.instrument.name();
        let meta = market.meta(name.as_str()).ok_or(RejectReasonCode::InstrumentMetadataMissing)?;
        let touch = select_touch(name, &market.prices(name), now_ms, self.cfg.price_age_ms_max)?;
        let limit =
            cross_price(meta, f.side, &touch, RESCUE_CROSS_SPREAD_TICKS, RESCUE_SLIPPAGE_BPS_MAX)?;
        let fields = IntentFields {
            leg_index: self.next_leg_index(leg),
            qty: missing,
            limit_price: Some(limit),
            emergency_close: false,
            ..*f
        };
        let intent = OrderIntent::new_quantized(fields, Some(meta))?;
        market.permit_rescue(&intent)?;
        Ok(intent)
    }

    #[allow(clippy::too_many_arguments)]
    fn close_intent(
        &self,
        instrument: Instrument,
        side: Side,
        qty: Qty,
        attempt: u8,
        leg: u8,
        reduce_only: bool,
        now_ms: i64,
        market: &dyn GroupMarket,
    ) -> Result<OrderIntent, RejectReasonCode> {
        let name = instrument.name();
        let meta = market.meta(name.as_str()).ok_or(RejectReasonCode::InstrumentMetadataMissing)?;
        let touch = select_touch(name, &market.prices(name), now_ms, self.cfg.price_age_ms_max)?;
        let ticks = buffer_ticks(self.cfg.close_buffer_ticks, attempt);
        let limit = cross_price(meta, side, &touch, ticks, self.cfg.slippage_bps_max)?;
        let fields = IntentFields {
            leg_index: self.next_leg_index(leg),
            limit_price: Some(limit),
            ..ioc_fields(&self.identity(), leg, instrument, side, qty, reduce_only)
        };
        OrderIntent::new_quantized(fields, Some(meta))
    }
}

impl Drop for AtomicGroup {
    fn drop(&mut self) {
        // A group dropped before a terminal state (engine shutdown) must not leak its budget.
        if let Some(reservation) = self.reservation.take() {
            self.budget.release(reservation);
        }
    }
}
