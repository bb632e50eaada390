//! Atomic groups in the engine (contract A §5.6, B §3.1; docs/group_executor.md).
//!
//! A strategy emits a multi-leg group by giving every leg the same group id (it is in every
//! leg's label as `gid12`). Such a group never takes the single-intent path:
//! 1. **Gates as a unit**: every leg runs the whole gate chain against the exposure book with
//!    the earlier legs already reserved; one refusal refuses the group, nothing is written.
//!    NetEdge uses the strategy's edge claim for the structure when it gives one.
//! 2. **Reserve**: [`AtomicGroup::accept`] takes the group's worst-case USD exposure from the
//!    shared [`PendingExposureBudget`]; while the group is not terminal, [`GroupDesk::reserve_into`]
//!    puts the legs' unfilled quantity (and every live follow-up order) into the exposure book
//!    each tick, so a second group sees the first one's pending exposure against every cap.
//! 3. **Journal, then send**: the group intent (`GroupEvent group_intent`) and every leg's
//!    `IntentRecorded` are appended and synced once before the first leg is written to the
//!    socket; a persist failure sends nothing (AT-939).
//! 4. **Drive the state machine**: execution reports, ticks (timeouts), disconnects and
//!    reconciliation answers are fed to the group; its steps are journaled (order life-cycle
//!    records by `reports.rs`, everything else as `GroupEvent`), then its actions run: sends
//!    (rescues, reduce-only closes, hedges — each `IntentRecorded` durable first), by-label
//!    reconciliation, the ReduceOnly hold (the group's registry reason, tightened through the
//!    PolicyGuard's mode cell), escalation.
//! 5. **Hedges** pass [`hotpath::gates::hedge::gate_hedge`]: in ReduceOnly/Kill only if they
//!    shrink |portfolio delta|; a refused hedge is never sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use hotpath::dispatch::{BatchInputs, OutboundIntent, SendOutcome};
use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::{GroupId, IntentHash, OrderIntent};
use hotpath::domain::label::Label;
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::policy::{Policy, PolicyError};
use hotpath::domain::reason_codes::{RejectReasonCode, RiskState, TradingMode};
use hotpath::domain::units::{Price, Qty, Usd};
use hotpath::emergency::{EmergencyConfig, HedgeQuote, PriceInputs};
use hotpath::gates::chain::{Accepted, GateChain, GateContext, PolicySlot, Rejection};
use hotpath::gates::checks::{check_edge, EdgeInputs};
use hotpath::gates::hedge::{gate_hedges, position_delta, DeltaInputs};
use hotpath::gates::liquidity::check_liquidity;
use hotpath::gates::market::BookView;
use hotpath::gates::positions::{ExposureBook, PortfolioView, PositionView};
use hotpath::gates::rate::OrderRateBucket;
use hotpath::group::{
    AtomicGroup, GroupAction, GroupInput, GroupMarket, GroupRecord, GroupState, LegPlan,
    OrderEvent, OrderRole, OrderStatus, PendingExposureBudget, Step, GROUP_HOLD_REASON,
};
use hotpath::strategy::IndexPrices;
use hotpath::trace::{TraceEvent, TraceKind};
use hotpath::wal::{IntentState, Record};

use super::{edge, Engine, EngineError, LiveIntent};

/// Group ids are keyed by their label form (`gid12`).
type GroupKey = String;
/// Reports held back while the latch is set (see [`GroupDesk`]).
const DEFERRED_REPORTS_MAX: usize = 4_096;

/// What the engine counts about groups (progress lines, tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Groups that passed the gates and were journaled.
    pub accepted: u64,
    /// Groups refused as a unit (a leg failed a gate, or the budget).
    pub refused: u64,
    /// Groups that ended `Complete`.
    pub complete: u64,
    /// Groups that ended `Flattened` (after a failure).
    pub flattened: u64,
    /// Groups whose containment was exhausted.
    pub escalated: u64,
    /// Hedges the hedge gate refused.
    pub hedges_refused: u64,
}

#[derive(Debug)]
struct ActiveGroup {
    group: AtomicGroup,
    /// The legs' gate verdicts (their reservations while the group lives).
    legs: Vec<Accepted>,
    /// The strategy's edge claim for the whole structure.
    claim: Option<Usd>,
    /// Orders the state machine asked to reconcile by label.
    reconcile: Vec<(IntentHash, Label)>,
    /// Labels of in-doubt orders found live at the venue whose cancel was sent.
    cancelled: Vec<String>,
}

/// The engine's atomic groups: the active ones, the label index, the shared budget.
#[derive(Debug)]
pub struct GroupDesk {
    budget: Arc<PendingExposureBudget>,
    active: BTreeMap<GroupKey, ActiveGroup>,
    by_label: BTreeMap<String, (GroupKey, IntentHash)>,
    /// Reports for group orders that arrived while the open-permission latch was set (during a
    /// reconnect's reconciliation): applied once it is done, so no group sends anything before
    /// every in-doubt intent is resolved (DESIGN invariant 8). Bounded by the orders of the
    /// active groups times the reports per order the venue sends.
    deferred: Vec<hotpath::dispatch::ExecReport>,
    /// Groups whose containment was exhausted: the portfolio emergency close runs for them at
    /// the next tick (outside any group step, since it polls reports itself).
    escalations: Vec<GroupKey>,
    /// Counters.
    pub stats: GroupStats,
}

fn key_of(group: GroupId) -> GroupKey {
    String::from_utf8_lossy(&group.gid12()).into_owned()
}

impl GroupDesk {
    /// A desk whose pending-exposure budget is the policy's gross-notional cap (0 without a
    /// valid policy: every group is refused, fail closed).
    #[must_use]
    pub fn new(policy: &Result<Policy, PolicyError>) -> Self {
        let cap =
            policy.as_ref().map_or(Usd::ZERO, |p| p.effective_risk_limits().max_gross_notional_usd);
        Self {
            budget: Arc::new(PendingExposureBudget::new(cap)),
            active: BTreeMap::new(),
            by_label: BTreeMap::new(),
            deferred: Vec::new(),
            escalations: Vec::new(),
            stats: GroupStats::default(),
        }
    }

    /// Whether anything group-related must run this tick (active groups, held-back reports,
    /// pending escalations).
    #[must_use]
    pub fn busy(&self) -> bool {
        !self.active.is_empty() || !self.deferred.is_empty() || !self.escalations.is_empty()
    }

    /// Whether any group holds ReduceOnly (contained or exposed): the PolicyGuard input
    /// `group_lock_timeout` (the group mechanism's registry reason, ruling 6).
    #[must_use]
    pub fn holding(&self) -> bool {
        self.active.values().any(|a| a.group.first_failure().is_some())
    }

    /// Puts every active group's pending exposure into `ex`: each leg's quantity not yet filled
    /// by its leg and rescue orders, and every live follow-up order (close, hedge). Released
    /// when the group is terminal (it leaves the desk).
    pub fn reserve_into(&self, ex: &mut ExposureBook) {
        for a in self.active.values() {
            for (i, acc) in a.legs.iter().enumerate() {
                let filled: i64 = a
                    .group
                    .orders()
                    .iter()
                    .filter(|o| usize::from(o.leg) == i)
                    .filter(|o| matches!(o.role, OrderRole::Leg | OrderRole::Rescue(_)))
                    .map(|o| o.filled.raw())
                    .sum();
                let rest = acc.qty.raw() - filled;
                if rest > 0 {
                    let mut part = *acc;
                    part.qty = Qty::from_raw(rest);
                    ex.reserve(&part);
                }
            }
            for o in a.group.orders() {
                if o.status.is_terminal() || matches!(o.role, OrderRole::Leg | OrderRole::Rescue(_))
                {
                    continue;
                }
                let f = o.intent.fields();
                let rest = f.qty.raw() - o.filled.raw();
                if rest > 0 {
                    if let Some(template) = a.legs.first() {
                        let mut part = *template;
                        part.instrument = f.instrument.name();
                        part.side = f.side;
                        part.qty = Qty::from_raw(rest);
                        // Follow-ups reduce risk; only their quantity is pending.
                        part.class = hotpath::gates::positions::IntentClass::Reduce;
                        part.notional_usd = None;
                        ex.reserve(&part);
                    }
                }
            }
        }
    }
}

/// Splits a tick's intents into single intents and multi-leg groups (≥ 2 IOC limit legs
/// sharing a group id, none reduce-only or post-only; legs in leg order). A reduce-only pair (a strategy closing a spread)
/// stays on the single path: each leg can only reduce, and a lone fill is a smaller position,
/// never a naked new one.
#[must_use]
pub fn split_groups(intents: Vec<OrderIntent>) -> (Vec<OrderIntent>, Vec<Vec<OrderIntent>>) {
    // The common tick (quotes, single orders): no two intents share a group id. Decided
    // without allocating.
    let shared = intents
        .iter()
        .enumerate()
        .any(|(i, a)| intents[i + 1..].iter().any(|b| b.fields().group_id == a.fields().group_id));
    if !shared {
        return (intents, Vec::new());
    }
    let mut by_group: BTreeMap<GroupId, Vec<OrderIntent>> = BTreeMap::new();
    for i in &intents {
        by_group.entry(i.fields().group_id).or_default().push(*i);
    }
    // Only what the executor can run: IOC limit legs (no post-only quotes that happen to share
    // an id), none reduce-only.
    let is_group = |legs: &Vec<OrderIntent>| {
        legs.len() >= 2
            && legs.iter().all(|l| {
                let f = l.fields();
                !f.reduce_only
                    && !f.post_only
                    && f.order_type == hotpath::domain::intent::OrderType::Limit
                    && f.time_in_force == hotpath::domain::intent::TimeInForce::ImmediateOrCancel
            })
    };
    let singles =
        intents.into_iter().filter(|i| !by_group.get(&i.fields().group_id).is_some_and(is_group));
    let singles: Vec<OrderIntent> = singles.collect();
    let mut groups: Vec<Vec<OrderIntent>> = by_group.into_values().filter(is_group).collect();
    for g in &mut groups {
        g.sort_by_key(|l| l.fields().leg_index);
    }
    (singles, groups)
}

/// The group's NetEdge inputs: the strategy's claim for the structure as the gross edge, the
/// engine's fee estimate summed over the legs, slippage zero (every leg is a limit order, the
/// limit caps it). `None` without a claim.
fn group_edge(
    legs: &[OrderIntent],
    claim: Option<Usd>,
    inputs: &BatchInputs<'_>,
) -> Option<EdgeInputs> {
    let claim = claim?;
    // A leg the engine cannot estimate a fee for leaves the fee unknown: NetEdgeInputMissing.
    let mut fee = Some(Usd::ZERO);
    for l in legs {
        let f = l.fields();
        let name = f.instrument.name();
        let book = inputs.books.iter().find(|b| b.instrument == name);
        let idx = inputs.index.for_currency(f.instrument.base_currency().as_str());
        let leg_fee = (inputs.edge)(l, book, idx).and_then(|e| e.fee_usd);
        fee = fee.zip(leg_fee).and_then(|(a, b)| a.checked_add(b));
    }
    Some(EdgeInputs {
        gross_edge_usd: Some(claim),
        fee_usd: fee,
        expected_slippage_usd: Some(Usd::ZERO),
    })
}

/// Every leg's verdict and the order-rate bucket after the group.
pub type GroupVerdict = (Vec<Accepted>, OrderRateBucket);

/// Runs every leg through the gate chain as one unit: each leg sees the earlier legs reserved
/// and the order-rate bucket they used. Returns every leg's verdict and the bucket after, or
/// the first refusal (nothing reserved: `ex` is not touched).
///
/// # Errors
/// The refused leg and its [`Rejection`].
pub fn gate_group(
    legs: &[OrderIntent],
    ex: &ExposureBook,
    inputs: &BatchInputs<'_>,
    order_rate: OrderRateBucket,
    claim: Option<Usd>,
) -> Result<GroupVerdict, Box<(OrderIntent, Rejection)>> {
    let chain = GateChain::new();
    let mut scratch = ex.clone();
    let mut rate = order_rate;
    let mut out = Vec::with_capacity(legs.len());
    let structure_edge = group_edge(legs, claim, inputs);
    for leg in legs {
        let f = leg.fields();
        let name = f.instrument.name();
        let book = inputs.books.iter().find(|b| b.instrument == name);
        let index_price = inputs.index.for_currency(f.instrument.base_currency().as_str());
        let ctx = GateContext {
            book,
            index_price,
            position: scratch.view(name.as_str()),
            portfolio: scratch.portfolio(),
            edge: structure_edge.or_else(|| (inputs.edge)(leg, book, index_price)),
            order_rate: rate,
            ..inputs.base
        };
        let accepted = chain.evaluate(leg, &ctx).map_err(|r| Box::new((*leg, r)))?;
        scratch.reserve(&accepted);
        rate = accepted.order_rate_after;
        out.push(accepted);
    }
    Ok((out, rate))
}

/// The market as one group sees it (borrowed from the engine for one step).
struct EngineMarket<'a> {
    now_ms: i64,
    instruments: &'a InstrumentCache,
    books: &'a [BookView],
    index: IndexPrices,
    policy: &'a Result<Policy, PolicyError>,
    /// Mode from reasons other than the groups' own hold (rescues open risk: only in Active).
    mode_without_hold: TradingMode,
    risk_state: RiskState,
    claim_per_qty: Option<(Usd, Qty)>,
    taker_fee_bps: f64,
}

impl GroupMarket for EngineMarket<'_> {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.instruments.get(instrument)
    }

    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        PriceInputs {
            book: self.books.iter().find(|b| b.instrument == instrument).cloned(),
            ticker: None,
        }
    }

    /// A rescue completes an accepted structure: it needs the mode the group was accepted in
    /// (ignoring the group's own hold), a healthy risk state, the liquidity gate and NetEdge
    /// ≥ min edge — the structure's claim pro rata minus the fee and the cost of crossing the
    /// spread (rescues go through the touch by 2 ticks).
    fn permit_rescue(&self, intent: &OrderIntent) -> Result<(), RejectReasonCode> {
        match self.mode_without_hold {
            TradingMode::Active => {}
            TradingMode::ReduceOnly => return Err(RejectReasonCode::TradingModeReduceOnly),
            TradingMode::Kill => return Err(RejectReasonCode::TradingModeKill),
        }
        if self.risk_state != RiskState::Healthy {
            return Err(RejectReasonCode::RiskStateNotHealthy);
        }
        let policy = self.policy.as_ref().map_err(|_| RejectReasonCode::ConfigMissingOrInvalid)?;
        let f = intent.fields();
        let book = self.books.iter().find(|b| b.instrument == f.instrument.name());
        check_liquidity(intent, book, self.now_ms, &policy.data_limits)?;
        let idx = self.index.for_currency(f.instrument.base_currency().as_str());
        let per_order = edge::estimate(intent, book, idx, self.taker_fee_bps)
            .ok_or(RejectReasonCode::NetEdgeInputMissing)?;
        let crossing = book.zip(idx).and_then(|(b, i)| crossing_cost_usd(intent, b, i));
        let gross = match self.claim_per_qty {
            Some((claim, leg_qty)) if leg_qty.is_positive() => {
                let share =
                    i128::from(claim.raw()) * i128::from(f.qty.raw()) / i128::from(leg_qty.raw());
                Some(Usd::from_raw(i64::try_from(share).unwrap_or(0)))
            }
            _ => per_order.gross_edge_usd,
        };
        let inputs = EdgeInputs {
            gross_edge_usd: gross,
            fee_usd: per_order.fee_usd,
            expected_slippage_usd: if self.claim_per_qty.is_some() {
                crossing
            } else {
                Some(Usd::ZERO)
            },
        };
        check_edge(Some(&inputs), &policy.edge_policy)
    }

    /// Neutralizes the coin delta of a residual option/future position with the currency's
    /// perpetual (inverse: sized in USD at the index).
    fn hedge_for(&self, instrument: &Instrument, residual: Qty) -> Option<HedgeQuote> {
        let d = DeltaInputs { now_ms: self.now_ms, index: self.index, books: self.books };
        let delta = position_delta(instrument, residual, &d).ok()?;
        if delta == 0 {
            return None;
        }
        let perp = Instrument::parse(&format!("{}-PERPETUAL", instrument.base_currency().as_str()))
            .ok()?;
        self.instruments.get(perp.as_str())?;
        let side = if delta > 0 {
            hotpath::domain::intent::Side::Sell
        } else {
            hotpath::domain::intent::Side::Buy
        };
        let coin = Qty::from_raw(delta.abs());
        let qty = match perp.amount_unit() {
            hotpath::domain::units::AmountUnit::Usd => {
                let index = self.index.for_currency(perp.base_currency().as_str())?;
                let usd = i128::from(coin.raw()) * i128::from(index.raw())
                    / i128::from(hotpath::domain::units::FIXED_SCALE);
                Qty::from_raw(i64::try_from(usd).ok()?)
            }
            hotpath::domain::units::AmountUnit::Coin => coin,
        };
        Some(HedgeQuote { instrument: perp, side, qty })
    }
}

/// What an IOC limit pays against the book's mid, in USD: `|limit − mid| × qty`, valued at the
/// index for coin-quoted options (price in coin per coin of amount) and as a share of the
/// amount for futures and perpetuals (price in USD).
fn crossing_cost_usd(intent: &OrderIntent, book: &BookView, index: Price) -> Option<Usd> {
    use hotpath::domain::instrument::InstrumentKind;
    use hotpath::domain::units::FIXED_SCALE;
    let f = intent.fields();
    let mid =
        (i128::from(book.best_bid()?.price.raw()) + i128::from(book.best_ask()?.price.raw())) / 2;
    let limit = i128::from(f.limit_price?.raw());
    let diff = (limit - mid).abs();
    let qty = i128::from(f.qty.raw());
    let scale = i128::from(FIXED_SCALE);
    let usd = match f.instrument.kind() {
        InstrumentKind::Option => diff * qty / scale * i128::from(index.raw()) / scale,
        InstrumentKind::Future | InstrumentKind::Perpetual => {
            if mid <= 0 {
                return None;
            }
            match f.instrument.amount_unit() {
                hotpath::domain::units::AmountUnit::Usd => qty * diff / mid,
                hotpath::domain::units::AmountUnit::Coin => diff * qty / scale,
            }
        }
    };
    i64::try_from(usd).ok().map(Usd::from_raw)
}

fn event_of(record: &GroupRecord) -> Option<(&'static str, String)> {
    Some(match record {
        GroupRecord::GroupIntent { legs, reserved_usd, strategy_id, .. } => {
            let legs: Vec<String> = legs.iter().map(|h| format!("{:016x}", h.value())).collect();
            (
                "group_intent",
                format!(
                    "strategy={} legs={} reserved_usd={}",
                    strategy_id.as_str(),
                    legs.join(","),
                    reserved_usd.raw()
                ),
            )
        }
        GroupRecord::Transition { from, to, cause, .. } => (
            "transition",
            format!(
                "from={} to={} cause={}",
                from.as_str(),
                to.as_str(),
                cause.map_or("none", |c| c.as_str())
            ),
        ),
        GroupRecord::Order { order, event: OrderEvent::InDoubt } => {
            ("in_doubt", format!("intent={:016x}", order.value()))
        }
        GroupRecord::CloseBlocked { leg, code } => {
            ("close_blocked", format!("leg={leg} code={}", code.as_str()))
        }
        GroupRecord::RescueRefused { leg, code } => {
            ("rescue_refused", format!("leg={leg} code={}", code.as_str()))
        }
        GroupRecord::Naked {
            close_attempts,
            hedge_used,
            cause,
            incident_ts_ms,
            time_to_delta_neutral_ms,
            residual,
            ..
        } => (
            "naked",
            format!(
                "cause={cause} close_attempts={close_attempts} hedge_used={hedge_used} \
                 incident_ts_ms={incident_ts_ms} time_to_delta_neutral_ms={time_to_delta_neutral_ms} \
                 residual={},{}",
                residual[0].raw(),
                residual[1].raw()
            ),
        ),
        // Order life-cycle records are journaled by the report path (reports.rs);
        // `OrderRecorded` is the order's own `IntentRecorded`; anomalies go to the log.
        GroupRecord::OrderRecorded { .. } | GroupRecord::Order { .. } => return None,
    })
}

fn role_str(role: OrderRole) -> String {
    match role {
        OrderRole::Leg => "leg".into(),
        OrderRole::Rescue(n) => format!("rescue{n}"),
        OrderRole::Close(n) => format!("close{n}"),
        OrderRole::Hedge(n) => format!("hedge{n}"),
    }
}

impl Engine {
    fn group_event(&mut self, key: &str, event: &str, detail: &str, now: i64) {
        let rec = Record::GroupEvent { group: key, event, detail };
        if let Err(e) = self.wal.append(now, &rec) {
            tracing::error!(run_id = %self.run_id, group = key, event, error = %e, "group event not journaled");
        }
    }

    /// Admits this tick's multi-leg groups (before the single intents, so they see the
    /// groups' reservations in `ex`).
    pub(super) fn tick_groups(
        &mut self,
        groups: Vec<Vec<OrderIntent>>,
        now: i64,
        books: &[BookView],
        ex: &mut ExposureBook,
    ) -> Result<(), EngineError> {
        for legs in groups {
            let Some(first) = legs.first() else { continue };
            let group_id = first.fields().group_id;
            let key = key_of(group_id);
            if self.groups.active.contains_key(&key)
                || legs.iter().any(|l| self.wal.ledger().contains(l.hash().value()))
            {
                continue; // the same decision again: never a second group
            }
            // Compact topology: the strategy is here to ask. Pinned: it lives on its own thread
            // and its claim does not cross the ring (the legs' own edge estimates apply).
            let claim = self.strategy.as_ref().and_then(|s| s.group_edge_usd(group_id));
            let verdict = {
                let (taker, maker) = (self.taker_fee_bps, self.maker_fee_bps);
                let edge_model =
                    move |i: &OrderIntent, b: Option<&BookView>, idx: Option<Price>| {
                        let fee_bps = if i.fields().post_only { maker } else { taker };
                        edge::estimate(i, b, idx, fee_bps)
                    };
                let inputs = BatchInputs {
                    base: GateContext {
                        now_ms: now,
                        policy: PolicySlot::from_result(&self.policy),
                        instruments: &self.instruments,
                        book: None,
                        index_price: None,
                        position: PositionView::default(),
                        portfolio: PortfolioView::default(),
                        fee_model_updated_ms: Some(self.instruments_ms),
                        edge: None,
                        risk_state: self.pipeline.risk_state,
                        trading_mode: self.guard.cell().mode(),
                        open_permission_latched: self.guard.latch().is_latched(),
                        order_rate: self.pipeline.order_rate,
                    },
                    books,
                    index: self.index,
                    edge: &edge_model,
                };
                gate_group(&legs, ex, &inputs, self.pipeline.order_rate, claim)
            };
            let (accepted, rate) = match verdict {
                Ok(v) => v,
                Err(refused) => {
                    let (leg, r) = *refused;
                    self.groups.stats.refused += 1;
                    self.stats.gate_rejects += 1;
                    self.last_gate_reject = Some((r.code, r.gate));
                    let mode = self.guard.cell().mode();
                    self.trace.push(TraceEvent::gate_reject(leg.hash().value(), &r, mode, now));
                    continue;
                }
            };
            let plans: Vec<LegPlan> = legs
                .iter()
                .zip(&accepted)
                .map(|(l, a)| LegPlan {
                    intent: *l,
                    exposure_usd: a.notional_usd.unwrap_or(Usd::ZERO),
                })
                .collect();
            let (group, step) = match AtomicGroup::accept(
                &plans,
                Arc::clone(&self.groups.budget),
                EmergencyConfig::default(),
                now,
            ) {
                Ok(v) => v,
                Err(e) => {
                    self.groups.stats.refused += 1;
                    self.stats.gate_rejects += 1;
                    self.last_gate_reject =
                        Some((e.reject_code(), hotpath::gates::chain::GateName::Caps));
                    tracing::debug!(run_id = %self.run_id, group = %key, error = %e, "group refused by the executor");
                    continue;
                }
            };
            for a in &accepted {
                ex.reserve(a);
            }
            self.pipeline.order_rate = rate;
            self.groups.stats.accepted += 1;
            for l in &legs {
                if let Ok(label) = Label::for_intent(l) {
                    self.groups.by_label.insert(label.as_str().to_owned(), (key.clone(), l.hash()));
                }
            }
            self.groups.active.insert(
                key.clone(),
                ActiveGroup {
                    group,
                    legs: accepted,
                    claim,
                    reconcile: Vec::new(),
                    cancelled: Vec::new(),
                },
            );
            println!("group: accepted gid={key} legs={} (run_id={})", legs.len(), self.run_id);
            let persisted = self.persist_accept(&key, &step, now);
            let input = if persisted { GroupInput::Persisted } else { GroupInput::PersistFailed };
            self.group_feed(&key, input, now, books)?;
        }
        Ok(())
    }

    /// Journals the acceptance step (group intent + every leg's `IntentRecorded`) and syncs.
    /// On any failure the legs already recorded are journaled `Abandoned`: none was sent.
    fn persist_accept(&mut self, key: &str, step: &Step, now: i64) -> bool {
        let mut recorded: Vec<u64> = Vec::new();
        let mut ok = true;
        for r in &step.records {
            match r {
                GroupRecord::OrderRecorded { intent, label, .. } => {
                    let rec = Record::IntentRecorded {
                        intent_hash: intent.hash().value(),
                        label: label.as_str(),
                        canonical: intent.canonical_bytes().as_bytes(),
                    };
                    match self.wal.append(now, &rec) {
                        Ok(_) => recorded.push(intent.hash().value()),
                        Err(e) => {
                            tracing::error!(run_id = %self.run_id, group = key, error = %e, "group leg not journaled: group aborted");
                            ok = false;
                            break;
                        }
                    }
                }
                other => {
                    if let Some((event, detail)) = event_of(other) {
                        let rec = Record::GroupEvent { group: key, event, detail: &detail };
                        if self.wal.append(now, &rec).is_err() {
                            ok = false;
                            break;
                        }
                    }
                }
            }
        }
        if ok && self.wal.sync().is_err() {
            ok = false;
        }
        if !ok {
            self.pipeline.risk_state = RiskState::Degraded;
            for h in recorded {
                let _ = self.append_checked(
                    now,
                    &Record::Abandoned { intent_hash: h, reason: "group persist failed: not sent" },
                );
            }
        }
        ok
    }

    /// Feeds one input to a group and runs the resulting steps (and the inputs they cause)
    /// until the group waits for the venue.
    pub(super) fn group_feed(
        &mut self,
        key: &str,
        input: GroupInput,
        now: i64,
        books: &[BookView],
    ) -> Result<(), EngineError> {
        let mut queue: VecDeque<(GroupKey, GroupInput)> = VecDeque::new();
        queue.push_back((key.to_owned(), input));
        // Bounded: every input either changes a bounded group (≤ GROUP_ORDERS_MAX orders,
        // terminal states) or is an anomaly; the cap is a backstop against a logic error.
        for _ in 0..256 {
            let Some((key, input)) = queue.pop_front() else { return Ok(()) };
            let mode_word = self.guard.cell().load();
            let mut others = mode_word.mode_reasons();
            others = others.difference(hotpath::mode::ReasonSet::of(GROUP_HOLD_REASON));
            let Some(active) = self.groups.active.get_mut(&key) else { continue };
            let leg_qty = active.legs.first().map_or(Qty::ZERO, |a| a.qty);
            let market = EngineMarket {
                now_ms: now,
                instruments: &self.instruments,
                books,
                index: self.index,
                policy: &self.policy,
                mode_without_hold: others.mode(),
                risk_state: self.pipeline.risk_state,
                claim_per_qty: active.claim.map(|c| (c, leg_qty)),
                taker_fee_bps: self.taker_fee_bps,
            };
            let step = active.group.on_input(input, now, &market);
            self.apply_group_step(&key, step, now, books, &mut queue)?;
        }
        tracing::error!(run_id = %self.run_id, group = key, "group step budget exhausted");
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn apply_group_step(
        &mut self,
        key: &str,
        step: Step,
        now: i64,
        books: &[BookView],
        queue: &mut VecDeque<(GroupKey, GroupInput)>,
    ) -> Result<(), EngineError> {
        // The hold first: the mode is ReduceOnly before any containment order leaves.
        for a in &step.actions {
            if let GroupAction::HoldReduceOnly(reason) = a {
                let (before, after) = self.guard.cell().tighten(*reason);
                self.group_event(key, "hold", &format!("reason={}", reason.as_str()), now);
                // Also when another reason (a latch after a disconnect) tightened first: the
                // hold's own reason is news either way.
                if before.mode() != after.mode() || !before.reasons().contains(*reason) {
                    println!(
                        "mode: {:?} -> {:?} reason={} (group {key}, run_id={})",
                        before.mode(),
                        after.mode(),
                        reason.as_str(),
                        self.run_id
                    );
                }
            }
        }
        // Hedges pass the hedge gate: a refused one is neither journaled nor sent.
        let mode = self.guard.cell().mode();
        let positions: Vec<(Instrument, Qty)> = self
            .positions
            .iter()
            .filter_map(|(n, q)| Instrument::parse(n.as_str()).ok().map(|i| (i, *q)))
            .collect();
        let delta_inputs = DeltaInputs { now_ms: now, index: self.index, books };
        let mut refused: Vec<IntentHash> = Vec::new();
        let hedges: Vec<OrderIntent> = step
            .actions
            .iter()
            .filter_map(|a| match a {
                GroupAction::Send { intent, role: OrderRole::Hedge(_), .. } => Some(*intent),
                _ => None,
            })
            .collect();
        if !hedges.is_empty() {
            // One round's hedges (one per exposed leg) offset each other: judged as a set.
            let held = positions.iter().map(|(i, q)| (i, *q));
            match gate_hedges(&hedges, mode, held, &delta_inputs) {
                Ok(v) => {
                    let detail = format!(
                        "orders={} delta_before={} delta_after={}",
                        hedges.len(),
                        v.delta_before,
                        v.delta_after
                    );
                    self.group_event(key, "hedge_permitted", &detail, now);
                }
                Err(code) => {
                    for h in &hedges {
                        refused.push(h.hash());
                        self.groups.stats.hedges_refused += 1;
                        let detail =
                            format!("intent={:016x} code={}", h.hash().value(), code.as_str());
                        self.group_event(key, "hedge_refused", &detail, now);
                    }
                }
            }
        }
        let mut journaled_now = false;
        for r in &step.records {
            match r {
                GroupRecord::OrderRecorded { intent, label, .. } => {
                    if refused.contains(&intent.hash()) {
                        continue;
                    }
                    let rec = Record::IntentRecorded {
                        intent_hash: intent.hash().value(),
                        label: label.as_str(),
                        canonical: intent.canonical_bytes().as_bytes(),
                    };
                    match self.wal.append(now, &rec) {
                        Ok(_) => journaled_now = true,
                        Err(e) => {
                            tracing::error!(run_id = %self.run_id, group = key, error = %e, "group order not journaled: not sent");
                            refused.push(intent.hash());
                        }
                    }
                }
                GroupRecord::Order { order, event: OrderEvent::Anomaly(what) } => {
                    tracing::debug!(run_id = %self.run_id, group = key, intent_id = %format!("{:016x}", order.value()), what, "group report anomaly");
                }
                GroupRecord::Transition { to, .. } => {
                    if let Some((event, detail)) = event_of(r) {
                        self.group_event(key, event, &detail, now);
                    }
                    println!("group: gid={key} {}", event_of(r).map_or(String::new(), |e| e.1));
                    match to {
                        GroupState::Complete => self.groups.stats.complete += 1,
                        GroupState::Flattened => self.groups.stats.flattened += 1,
                        _ => {}
                    }
                }
                other => {
                    if let Some((event, detail)) = event_of(other) {
                        self.group_event(key, event, &detail, now);
                    }
                }
            }
        }
        // Every order to send: its `IntentRecorded` is in the WAL (this step's, or the
        // acceptance step's for the legs) and must be durable before the socket sees it.
        let mut recorded: Vec<(OrderIntent, Label, OrderRole)> = Vec::new();
        for a in &step.actions {
            if let GroupAction::Send { intent, role, .. } = a {
                let journaled = self.wal.ledger().contains(intent.hash().value());
                if refused.contains(&intent.hash()) || !journaled {
                    continue;
                }
                if let Ok(label) = Label::for_intent(intent) {
                    recorded.push((*intent, label, *role));
                }
            }
        }
        let durable = if recorded.is_empty() && !journaled_now {
            None
        } else {
            match self.wal.sync() {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(run_id = %self.run_id, group = key, error = %e, "WAL sync failed: group orders not sent");
                    self.pipeline.risk_state = RiskState::Degraded;
                    for (intent, _, _) in recorded.drain(..) {
                        let h = intent.hash().value();
                        let _ = self.append_checked(
                            now,
                            &Record::Abandoned {
                                intent_hash: h,
                                reason: "group order: WAL sync failed",
                            },
                        );
                        refused.push(intent.hash());
                    }
                    None
                }
            }
        };
        for h in &refused {
            // Never sent: nothing can fill.
            queue.push_back((
                key.to_owned(),
                GroupInput::Reconciled { order: *h, filled: Qty::ZERO },
            ));
        }
        if let (Some(durable), false) = (durable, recorded.is_empty()) {
            for (intent, label, role) in &recorded {
                self.groups
                    .by_label
                    .insert(label.as_str().to_owned(), (key.to_owned(), intent.hash()));
                self.live.insert(*label, LiveIntent::of(intent, None));
                let f = intent.fields();
                let detail = format!(
                    "intent={:016x} role={} instrument={} side={:?} qty={} reduce_only={}",
                    intent.hash().value(),
                    role_str(*role),
                    f.instrument.as_str(),
                    f.side,
                    f.qty.raw(),
                    f.reduce_only
                );
                self.group_event(key, "send", &detail, now);
            }
            let batch: Vec<OutboundIntent<'_>> = recorded
                .iter()
                .map(|(intent, label, _)| OutboundIntent {
                    intent,
                    label: label.as_str(),
                    record_seq: durable.seq(),
                })
                .collect();
            self.reclaim_dispatch();
            let results = match self.disp.as_mut() {
                Some(d) => d.send_batch(&batch, durable),
                None => Vec::new(),
            };
            let mut results = results.into_iter();
            for (intent, label, _) in &recorded {
                let h = intent.hash().value();
                self.stats.intents += 1;
                match results.next() {
                    Some(SendOutcome::Sent { .. }) => {
                        self.stats.sent += 1;
                        self.trace_sent(h, now, 0); // group sends are not tick-to-send samples
                        self.append_checked(now, &Record::Sent { intent_hash: h })?;
                    }
                    Some(SendOutcome::Failed(e)) if !e.certainly_not_sent() => {
                        // Maybe on the wire: the group's report deadline puts it in doubt and
                        // reconciliation by label decides.
                        self.trace_send_failed(TraceKind::SendInDoubt, h, now, &e);
                    }
                    _ => {
                        self.append_checked(
                            now,
                            &Record::Abandoned {
                                intent_hash: h,
                                reason: "group order: refused before the socket",
                            },
                        )?;
                        self.stats.abandoned += 1;
                        self.trace.push(TraceEvent::new(TraceKind::Abandoned, h, now));
                        self.live.remove(label.as_str());
                        queue.push_back((
                            key.to_owned(),
                            GroupInput::Reconciled { order: intent.hash(), filled: Qty::ZERO },
                        ));
                    }
                }
            }
        }
        for a in step.actions {
            match a {
                GroupAction::Reconcile { order, label } => {
                    if let Some(active) = self.groups.active.get_mut(key) {
                        if !active.reconcile.iter().any(|(h, _)| *h == order) {
                            active.reconcile.push((order, label));
                        }
                    }
                }
                GroupAction::Send { .. } | GroupAction::HoldReduceOnly(_) => {}
                GroupAction::ReleaseReduceOnly(reason) => {
                    // The group no longer needs the hold; the mode stays where it is until an
                    // operator relaxes it (DESIGN invariant 5).
                    self.group_event(key, "release", &format!("reason={}", reason.as_str()), now);
                }
                GroupAction::Escalate { residual } => {
                    self.groups.stats.escalated += 1;
                    let detail = format!("residual={},{}", residual[0].raw(), residual[1].raw());
                    self.group_event(key, "escalate", &detail, now);
                    println!("group: gid={key} ESCALATED {detail} (run_id={})", self.run_id);
                    self.groups.escalations.push(key.to_owned());
                }
            }
        }
        // Terminal, or handed to the portfolio emergency close: the group leaves the desk (its
        // budget reservation is already released; the mode stays tightened).
        let terminal = self
            .groups
            .active
            .get(key)
            .is_some_and(|a| a.group.state().is_terminal() || a.group.escalated());
        if terminal {
            if let Some(done) = self.groups.active.remove(key) {
                for o in done.group.orders() {
                    if let Ok(l) = Label::for_intent(&o.intent) {
                        self.groups.by_label.remove(l.as_str());
                    }
                }
            }
        }
        Ok(())
    }

    /// An execution report for a group order → the group's input.
    pub(super) fn group_on_report(
        &mut self,
        r: &hotpath::dispatch::ExecReport,
    ) -> Result<(), EngineError> {
        use hotpath::dispatch::ExecReport;
        use hotpath::venue::messages::OrderState;
        let Some((key, h)) = self.groups.by_label.get(r.label()).cloned() else { return Ok(()) };
        if self.guard.latch().is_latched() {
            if self.groups.deferred.len() < DEFERRED_REPORTS_MAX {
                self.groups.deferred.push(r.clone());
            } else {
                // Dropping is safe: the group's in-doubt order settles from the ledger.
                tracing::warn!(run_id = %self.run_id, group = %key, "deferred group reports full");
            }
            return Ok(());
        }
        let Some(active) = self.groups.active.get(&key) else { return Ok(()) };
        let Some(order) = active.group.orders().iter().find(|o| o.intent.hash() == h).copied()
        else {
            return Ok(());
        };
        let mut inputs: Vec<GroupInput> = Vec::with_capacity(2);
        match r {
            ExecReport::Order(o) => {
                if order.status == OrderStatus::Sent && !o.order_id.is_empty() {
                    inputs.push(GroupInput::Ack { order: h, venue_order_id: o.order_id.clone() });
                }
                let filled = Qty::from_raw(o.filled.raw);
                match o.state {
                    OrderState::Open | OrderState::Untriggered | OrderState::Triggered => {
                        if filled > order.filled {
                            inputs.push(GroupInput::Fill { order: h, cumulative: filled });
                        }
                    }
                    OrderState::Filled | OrderState::Cancelled | OrderState::Archive => {
                        inputs.push(GroupInput::Done { order: h, filled });
                    }
                    OrderState::Rejected => inputs.push(GroupInput::Rejected { order: h, code: 0 }),
                }
            }
            ExecReport::Rejected { code, .. } => {
                inputs.push(GroupInput::Rejected { order: h, code: i64::from(*code) });
            }
            _ => {}
        }
        if inputs.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let books = self.market.books().to_vec();
        for i in inputs {
            self.group_feed(&key, i, now, &books)?;
        }
        Ok(())
    }

    /// Time passed: report deadlines (in doubt → reconcile by label).
    pub(super) fn groups_tick(&mut self, now: i64, books: &[BookView]) -> Result<(), EngineError> {
        for key in std::mem::take(&mut self.groups.escalations) {
            // Contract A §5.6 / B §3.1: containment exhausted with exposure left ⇒ the single
            // emergency-close routine (cancel all, reduce-only IOC closes, hedge).
            let outcome = self
                .emergency_close("group-executor", &format!("group {key}: containment exhausted"));
            self.group_event(&key, "emergency_close", &outcome.describe(), now);
        }
        if self.groups.active.is_empty() {
            self.groups.deferred.clear();
            return Ok(());
        }
        // The latch is clear (ticks run only then): what was held back applies now.
        for r in std::mem::take(&mut self.groups.deferred) {
            self.group_on_report(&r)?;
        }
        let keys: Vec<GroupKey> = self.groups.active.keys().cloned().collect();
        for k in &keys {
            self.group_feed(k, GroupInput::Tick, now, books)?;
        }
        self.groups_reconcile(now, books)
    }

    /// The venue connection dropped: every live group order is in doubt.
    pub(super) fn groups_disconnected(&mut self) {
        if self.groups.active.is_empty() {
            return;
        }
        let now = self.clock.now_ms();
        let books = self.market.books().to_vec();
        let keys: Vec<GroupKey> = self.groups.active.keys().cloned().collect();
        for k in &keys {
            if let Err(e) = self.group_feed(k, GroupInput::Disconnected, now, &books) {
                tracing::error!(run_id = %self.run_id, group = %k, error = %e, "group disconnect step failed");
            }
        }
    }

    /// After the reconnect's reconciliation (which journaled every in-doubt intent's fate and
    /// reloaded positions): each in-doubt group order learns its fate from the ledger; one
    /// still live at the venue is cancelled (an IOC past its deadline has no business there).
    pub(super) fn groups_after_reconnect(&mut self) -> Result<(), EngineError> {
        if self.groups.active.is_empty() {
            self.groups.deferred.clear();
            return Ok(());
        }
        for r in std::mem::take(&mut self.groups.deferred) {
            self.group_on_report(&r)?;
        }
        let now = self.clock.now_ms();
        let books = self.market.books().to_vec();
        let keys: Vec<GroupKey> = self.groups.active.keys().cloned().collect();
        for k in &keys {
            let Some(active) = self.groups.active.get_mut(k) else { continue };
            let pending: Vec<(IntentHash, Label)> = std::mem::take(&mut active.reconcile);
            for (h, label) in pending {
                self.settle_from_ledger(k, h, &label, now, &books)?;
            }
        }
        Ok(())
    }

    fn settle_from_ledger(
        &mut self,
        key: &str,
        h: IntentHash,
        label: &Label,
        now: i64,
        books: &[BookView],
    ) -> Result<(), EngineError> {
        let Some(e) = self.wal.ledger().get(h.value()) else {
            return self.group_feed(
                key,
                GroupInput::Reconciled { order: h, filled: Qty::ZERO },
                now,
                books,
            );
        };
        let filled = Qty::from_raw(e.filled_qty);
        if e.state.is_terminal() {
            let filled = if e.state == IntentState::Abandoned { Qty::ZERO } else { filled };
            return self.group_feed(key, GroupInput::Reconciled { order: h, filled }, now, books);
        }
        // Live at the venue (adopted): cancel it; the cancel's report ends it.
        let instrument =
            hotpath::dispatch::instrument_of_canonical(&e.canonical).map(str::to_owned);
        let Some(active) = self.groups.active.get_mut(key) else { return Ok(()) };
        if active.cancelled.iter().any(|l| l == label.as_str()) {
            return Ok(());
        }
        active.cancelled.push(label.as_str().to_owned());
        self.reclaim_dispatch();
        if let (Some(d), Some(ins)) = (self.disp.as_mut(), instrument) {
            if let Err(err) = d.cancel_by_label(label.as_str(), &ins) {
                tracing::warn!(run_id = %self.run_id, group = key, error = %err, "cancel of an in-doubt group order not sent");
            }
        }
        self.group_event(key, "cancel_in_doubt", &format!("intent={:016x}", h.value()), now);
        Ok(())
    }

    /// Resolves the in-doubt group orders with the venue by label (while connected), journals
    /// their fate and feeds it to their groups.
    fn groups_reconcile(&mut self, now: i64, books: &[BookView]) -> Result<(), EngineError> {
        let mut wanted: BTreeMap<u64, (GroupKey, Label)> = BTreeMap::new();
        for (k, a) in &mut self.groups.active {
            for (h, l) in a.reconcile.drain(..) {
                wanted.insert(h.value(), (k.clone(), l));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        self.reclaim_dispatch();
        let resolutions = match self.disp.as_mut() {
            Some(d) => d.resolve_in_doubt(self.wal.ledger(), &mut self.reports),
            None => Err(hotpath::dispatch::DispatcherError::Conn(
                hotpath::venue::conn::ConnError::Closed,
            )),
        };
        let resolutions = match resolutions {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(run_id = %self.run_id, error = %e, "group reconciliation failed; retried next tick");
                for (h, (k, l)) in wanted {
                    if let Some(a) = self.groups.active.get_mut(&k) {
                        a.reconcile.push((IntentHash::new(h), l));
                    }
                }
                return Ok(());
            }
        };
        use hotpath::dispatch::Resolution;
        for r in &resolutions {
            let h = r.intent_hash();
            let Some((key, label)) = wanted.remove(&h) else { continue };
            let before = self.wal.ledger().get(h).map_or(0, |e| e.filled_qty);
            let (record_filled, fate): (i64, Option<Record<'_>>) = match r {
                Resolution::Live { .. } => {
                    self.settle_from_ledger(&key, IntentHash::new(h), &label, now, books)?;
                    continue;
                }
                Resolution::Filled { filled, trade_id, order, .. } => {
                    if let Some(o) = order {
                        self.ack_if_needed(h, &o.order_id, now)?;
                    }
                    (
                        filled.raw,
                        Some(Record::Filled { intent_hash: h, filled_qty: filled.raw, trade_id }),
                    )
                }
                Resolution::Cancelled { order, .. } => {
                    self.ack_if_needed(h, &order.order_id, now)?;
                    let f = order.filled.raw.max(before);
                    (f, Some(Record::Cancelled { intent_hash: h, filled_qty: f }))
                }
                Resolution::Rejected { .. } => (
                    0,
                    Some(Record::Rejected {
                        intent_hash: h,
                        code: 0,
                        reason: "venue reports the order rejected",
                    }),
                ),
                Resolution::NeverSeen { .. } => (
                    0,
                    Some(Record::Abandoned {
                        intent_hash: h,
                        reason: "group order in doubt; the venue never saw it",
                    }),
                ),
            };
            if let Some(rec) = fate {
                self.append_checked(now, &rec)?;
            }
            if record_filled > before {
                if let Some(e) = self.wal.ledger().get(h) {
                    if let (Some(name), Some(side)) = (
                        hotpath::dispatch::instrument_of_canonical(&e.canonical)
                            .and_then(super::name_of),
                        self.live.get(&e.label).map(|l| l.side),
                    ) {
                        let delta = record_filled - before;
                        let signed = match side {
                            hotpath::domain::intent::Side::Buy => delta,
                            hotpath::domain::intent::Side::Sell => -delta,
                        };
                        let p = self.positions.entry(name).or_insert(Qty::ZERO);
                        *p = Qty::from_raw(p.raw().saturating_add(signed));
                    }
                }
            }
            self.live.remove(label.as_str());
            self.group_feed(
                &key,
                GroupInput::Reconciled {
                    order: IntentHash::new(h),
                    filled: Qty::from_raw(record_filled),
                },
                now,
                books,
            )?;
        }
        // Anything the venue did not mention stays wanted.
        for (h, (k, l)) in wanted {
            if let Some(a) = self.groups.active.get_mut(&k) {
                a.reconcile.push((IntentHash::new(h), l));
            }
        }
        let _ = self.wal.sync();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
