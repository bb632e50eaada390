//! Deterministic emergency close (contract B §3.1, rulings 1 and 7, DESIGN invariant 6).
//!
//! Two layers:
//! - a pure **planner** ([`plan_close_order`], [`plan_emergency_close`]): positions + price
//!   inputs + mode permissions + credit reserve ⇒ cancel-all and one reduce-only IOC limit
//!   close per exposed instrument, priced through the touch with a bounded, doubling buffer
//!   (5, 10, 20 ticks), never a market order;
//! - a **driver loop** ([`run_emergency_close`]) over the [`EmergencyDriver`] trait: cancel-all,
//!   up to [`CLOSE_ATTEMPTS_MAX`] close rounds on the remaining quantity, then a hedge fallback
//!   for whatever is still exposed, and exactly one [`NakedReport`] per run.
//!
//! The planner runs in every mode: [`ModePermissions::permits_emergency_close`] is true in Kill
//! (ruling 1). When the rate-limit breaker is open, orders draw on a reserved credit budget
//! ([`CreditReserve`]) that ordinary traffic can never spend.

mod price;

pub use price::{
    buffer_ticks, cross_price, select_touch, L1Ticker, PriceInputs, PriceSource, Touch,
    CLOSE_ATTEMPTS_MAX, CLOSE_BUFFER_TICKS, CLOSE_SLIPPAGE_BPS_MAX, L2_BOOK_SNAPSHOT_MAX_AGE_MS,
};

use crate::clock::Clock;
use crate::domain::instrument::{Instrument, InstrumentName};
use crate::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use crate::domain::metadata::InstrumentMeta;
use crate::domain::reason_codes::{RejectReasonCode, TradingMode};
use crate::domain::units::Qty;
use crate::mode::ModePermissions;

/// Credits one emergency order costs against the reserve (Deribit matching-engine requests
/// cost one credit unit each in our limiter model).
pub const EMERGENCY_ORDER_CREDITS: u32 = 1;
/// Credits reserved for containment while the rate-limit breaker is open: cancel-all plus
/// three close rounds over [`EMERGENCY_POSITIONS_MAX`] instruments plus their hedges.
pub const EMERGENCY_RESERVED_CREDITS: u32 = 1 + (CLOSE_ATTEMPTS_MAX as u32 + 1) * 16;
/// Instruments one emergency run handles (a bound, not a guess: the run fails closed above it).
pub const EMERGENCY_POSITIONS_MAX: usize = 16;

/// Emergency-close parameters (Appendix A defaults in [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyConfig {
    /// `close_buffer_ticks` (5): the first attempt's buffer; doubles per retry.
    pub close_buffer_ticks: i64,
    /// IOC close rounds before the hedge (3).
    pub close_attempts_max: u8,
    /// Price freshness limit (`l2_book_snapshot_max_age_ms`, 1000).
    pub price_age_ms_max: i64,
    /// Slippage bound of a close in bps of the touch ([`CLOSE_SLIPPAGE_BPS_MAX`]).
    pub slippage_bps_max: i64,
}

impl Default for EmergencyConfig {
    fn default() -> Self {
        Self {
            close_buffer_ticks: CLOSE_BUFFER_TICKS,
            close_attempts_max: CLOSE_ATTEMPTS_MAX,
            price_age_ms_max: L2_BOOK_SNAPSHOT_MAX_AGE_MS,
            slippage_bps_max: CLOSE_SLIPPAGE_BPS_MAX,
        }
    }
}

/// One exposed instrument: a signed position (long positive), in `amount` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposedPosition {
    /// Instrument.
    pub instrument: Instrument,
    /// Signed position.
    pub position: Qty,
}

impl ExposedPosition {
    /// The side that reduces this position (`None` when flat).
    #[must_use]
    pub fn closing_side(&self) -> Option<Side> {
        match self.position.raw() {
            0 => None,
            r if r > 0 => Some(Side::Sell),
            _ => Some(Side::Buy),
        }
    }
}

/// Who an emergency order belongs to (its label's strategy and group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseIdentity {
    /// Strategy id (the group's, or the engine's own containment id).
    pub strategy_id: StrategyId,
    /// Group id (the failed group's, or one derived for a portfolio-wide run).
    pub group_id: GroupId,
}

/// The credit reserve for containment (B §3.3: EMERGENCY_CLOSE has top priority). With the
/// breaker closed, emergency orders go through the ordinary limiter and the reserve is
/// untouched; with the breaker open, every emergency request draws on the reserve, and when it
/// is spent the remaining orders wait (reported as `RateLimitBrownout`), never the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditReserve {
    /// Whether the rate-limit breaker is open.
    pub breaker_open: bool,
    /// Credits left in the reserve.
    pub remaining: u32,
    /// Credits drawn from the reserve so far.
    pub drawn: u32,
}

impl CreditReserve {
    /// A full reserve of [`EMERGENCY_RESERVED_CREDITS`].
    #[must_use]
    pub const fn new(breaker_open: bool) -> Self {
        Self { breaker_open, remaining: EMERGENCY_RESERVED_CREDITS, drawn: 0 }
    }

    /// Takes `credits` for one emergency request.
    ///
    /// # Errors
    /// `RateLimitBrownout` when the breaker is open and the reserve cannot cover it.
    pub fn take(&mut self, credits: u32) -> Result<(), RejectReasonCode> {
        if !self.breaker_open {
            return Ok(());
        }
        if self.remaining < credits {
            return Err(RejectReasonCode::RateLimitBrownout);
        }
        self.remaining -= credits;
        self.drawn += credits;
        Ok(())
    }
}

/// Builds the reduce-only IOC limit close of `pos` for attempt `attempt` (0-based).
///
/// # Errors
/// `EmergencyCloseNoPrice` (no fresh source), `InstrumentMetadataMissing`,
/// `TooSmallAfterQuantization`/`QtyNotPositive` (nothing closable), or a pricing error.
#[allow(clippy::too_many_arguments)] // each input is distinct and named; a struct would only rename them
pub fn plan_close_order(
    pos: &ExposedPosition,
    meta: Option<&InstrumentMeta>,
    prices: &PriceInputs,
    attempt: u8,
    cfg: &EmergencyConfig,
    now_ms: i64,
    identity: &CloseIdentity,
    leg_index: u8,
) -> Result<OrderIntent, RejectReasonCode> {
    let side = pos.closing_side().ok_or(RejectReasonCode::QtyNotPositive)?;
    let meta = meta.ok_or(RejectReasonCode::InstrumentMetadataMissing)?;
    let touch = select_touch(pos.instrument.name(), prices, now_ms, cfg.price_age_ms_max)?;
    let ticks = buffer_ticks(cfg.close_buffer_ticks, attempt);
    let limit = cross_price(meta, side, &touch, ticks, cfg.slippage_bps_max)?;
    let fields = ioc_fields(identity, leg_index, pos.instrument, side, pos.position.abs(), true);
    OrderIntent::new_quantized(IntentFields { limit_price: Some(limit), ..fields }, Some(meta))
}

/// IOC limit fields with the emergency flag; `reduce_only` as given.
#[must_use]
pub fn ioc_fields(
    identity: &CloseIdentity,
    leg_index: u8,
    instrument: Instrument,
    side: Side,
    qty: Qty,
    reduce_only: bool,
) -> IntentFields {
    IntentFields {
        strategy_id: identity.strategy_id,
        group_id: identity.group_id,
        leg_index,
        instrument,
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
        reduce_only,
        linked_order_type: None,
        trigger_price: None,
        qty,
        limit_price: None,
        contracts: None,
        emergency_close: true,
    }
}

/// The market the planner reads: metadata and price inputs per instrument.
pub trait EmergencyMarket {
    /// Instrument metadata.
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta>;
    /// Book and ticker of an instrument.
    fn prices(&self, instrument: InstrumentName) -> PriceInputs;
}

/// One planned close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedClose {
    /// The reduce-only IOC order.
    pub intent: OrderIntent,
    /// Which price source priced it.
    pub source: PriceSource,
}

/// What a planning round yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyPlan {
    /// Cancel every open order first (first round only).
    pub cancel_all: bool,
    /// Orders to send now, in instrument-name order.
    pub orders: Vec<PlannedClose>,
    /// Exposed instruments no order could be planned for, and why.
    pub blocked: Vec<(InstrumentName, RejectReasonCode)>,
}

/// Why the planner refused to plan at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmergencyError {
    /// The mode table does not permit emergency close (never true today; kept so a future
    /// table change fails loudly rather than silently).
    #[error("emergency close not permitted in {0:?}")]
    NotPermitted(TradingMode),
    /// More exposed instruments than [`EMERGENCY_POSITIONS_MAX`].
    #[error("more than {EMERGENCY_POSITIONS_MAX} exposed instruments")]
    TooManyPositions,
    /// The driver failed (I/O).
    #[error("driver failed: {0}")]
    Driver(DriverError),
}

/// Plans one round: a reduce-only IOC close for every non-flat position (name order), drawing
/// credits from `credits`.
///
/// # Errors
/// [`EmergencyError::NotPermitted`] / [`EmergencyError::TooManyPositions`].
#[allow(clippy::too_many_arguments)] // each input is distinct and named; a struct would only rename them
pub fn plan_emergency_close(
    positions: &[ExposedPosition],
    market: &dyn EmergencyMarket,
    permissions: ModePermissions,
    mode: TradingMode,
    credits: &mut CreditReserve,
    attempt: u8,
    cfg: &EmergencyConfig,
    now_ms: i64,
    identity: &CloseIdentity,
) -> Result<EmergencyPlan, EmergencyError> {
    if !permissions.permits_emergency_close() {
        return Err(EmergencyError::NotPermitted(mode));
    }
    if positions.len() > EMERGENCY_POSITIONS_MAX {
        return Err(EmergencyError::TooManyPositions);
    }
    let mut sorted: Vec<&ExposedPosition> =
        positions.iter().filter(|p| p.position.raw() != 0).collect();
    sorted.sort_by_key(|p| p.instrument.name());
    let cancel_all = attempt == 0;
    if cancel_all {
        // A cancel-all is one request; it is never the reason a close cannot go out, so a
        // spent reserve only defers it (the closes below still try).
        let _ = credits.take(EMERGENCY_ORDER_CREDITS);
    }
    let mut plan = EmergencyPlan { cancel_all, orders: Vec::new(), blocked: Vec::new() };
    for (index, pos) in sorted.into_iter().enumerate() {
        let name = pos.instrument.name();
        let leg = u8::try_from(index).unwrap_or(u8::MAX);
        let planned = plan_close_order(
            pos,
            market.meta(name.as_str()),
            &market.prices(name),
            attempt,
            cfg,
            now_ms,
            identity,
            leg,
        )
        .and_then(|intent| {
            credits.take(EMERGENCY_ORDER_CREDITS)?;
            let source =
                select_touch(name, &market.prices(name), now_ms, cfg.price_age_ms_max)?.source;
            Ok(PlannedClose { intent, source })
        });
        match planned {
            Ok(close) => plan.orders.push(close),
            Err(code) => plan.blocked.push((name, code)),
        }
    }
    Ok(plan)
}

/// A driver failure (the transport's own error, flattened to an enumerated kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The venue is unreachable.
    #[error("venue unreachable")]
    Unreachable,
    /// The venue refused the request with this code.
    #[error("venue refused with code {0}")]
    Refused(i64),
}

/// The hedge the driver proposes for a residual position: an instrument (perpetual/future)
/// and a delta-equivalent quantity on the side that neutralizes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgeQuote {
    /// Hedge instrument.
    pub instrument: Instrument,
    /// Side that neutralizes the residual delta.
    pub side: Side,
    /// Quantity in the hedge instrument's `amount` units.
    pub qty: Qty,
}

/// What the emergency routine needs from the outside world. The engine implements it over
/// dispatch (the only door to the venue); tests implement it over the simulator.
pub trait EmergencyDriver {
    /// Cancels every open order.
    ///
    /// # Errors
    /// Transport failure.
    fn cancel_all(&mut self) -> Result<(), DriverError>;
    /// Current positions.
    ///
    /// # Errors
    /// Transport failure.
    fn positions(&mut self) -> Result<Vec<ExposedPosition>, DriverError>;
    /// Sends one IOC order and returns the filled quantity.
    ///
    /// # Errors
    /// Transport failure or a venue refusal.
    fn send_ioc(&mut self, intent: &OrderIntent) -> Result<Qty, DriverError>;
    /// The hedge for a residual position, if the engine has one (delta sizing lives there).
    fn hedge_for(&mut self, residual: &ExposedPosition) -> Option<HedgeQuote>;
}

/// The `AtomicNakedEvent`-shaped summary of one run (B §3.1), exactly one per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NakedReport {
    /// Close rounds used (1..=3; 0 when nothing was exposed).
    pub close_attempts: u8,
    /// Whether the hedge fallback ran.
    pub hedge_used: bool,
    /// Positions before.
    pub before: Vec<ExposedPosition>,
    /// Positions still exposed after the closes (before hedging).
    pub residual: Vec<ExposedPosition>,
    /// Every order sent, in order.
    pub sent: Vec<OrderIntent>,
    /// Instruments that could not be closed, and why (last round's verdicts).
    pub blocked: Vec<(InstrumentName, RejectReasonCode)>,
    /// `atomic_legging_failure` / `emergency_close_exhausted` / `hedge_fallback` / `flat`.
    pub cause: &'static str,
    /// Mode at the event.
    pub trading_mode_at_event: TradingMode,
}

/// Runs the deterministic emergency close against `driver`: cancel-all, up to
/// `cfg.close_attempts_max` rounds of reduce-only IOC closes on what remains, then a hedge for
/// each residual position. The clock is read once per round, so prices fetched for a round are
/// judged against that round's time.
///
/// # Errors
/// [`EmergencyError`] when planning is refused or the driver fails to list positions.
#[allow(clippy::too_many_arguments)]
pub fn run_emergency_close(
    driver: &mut dyn EmergencyDriver,
    market: &dyn EmergencyMarket,
    mode: TradingMode,
    latched: bool,
    credits: &mut CreditReserve,
    cfg: &EmergencyConfig,
    clock: &dyn Clock,
    identity: &CloseIdentity,
) -> Result<NakedReport, EmergencyError> {
    let permissions = ModePermissions::with_latch(mode, latched);
    let before = driver.positions().map_err(EmergencyError::Driver)?;
    let mut report = NakedReport {
        close_attempts: 0,
        hedge_used: false,
        before: before.clone(),
        residual: Vec::new(),
        sent: Vec::new(),
        blocked: Vec::new(),
        cause: "flat",
        trading_mode_at_event: mode,
    };
    let mut positions = before;
    for attempt in 0..cfg.close_attempts_max {
        if positions.iter().all(|p| p.position.raw() == 0) {
            break;
        }
        let plan = plan_emergency_close(
            &positions,
            market,
            permissions,
            mode,
            credits,
            attempt,
            cfg,
            clock.now_ms(),
            identity,
        )?;
        report.close_attempts = attempt + 1;
        if plan.cancel_all {
            // A failed cancel-all must not stop the closes (reduce-only orders cannot add risk).
            let _ = driver.cancel_all();
        }
        for close in &plan.orders {
            report.sent.push(close.intent);
            // A refused close is retried next round with a wider buffer.
            let _ = driver.send_ioc(&close.intent);
        }
        report.blocked = plan.blocked;
        positions = driver.positions().map_err(EmergencyError::Driver)?;
    }
    report.residual = positions.iter().filter(|p| p.position.raw() != 0).copied().collect();
    if report.residual.is_empty() {
        report.cause = if report.close_attempts == 0 { "flat" } else { "atomic_legging_failure" };
        return Ok(report);
    }
    report.cause = "emergency_close_exhausted";
    for residual in report.residual.clone() {
        let Some(quote) = driver.hedge_for(&residual) else { continue };
        let hedge_pos = ExposedPosition {
            instrument: quote.instrument,
            position: match quote.side {
                Side::Sell => quote.qty,
                Side::Buy => quote.qty.neg(),
            },
        };
        let name = quote.instrument.name();
        let planned = plan_close_order(
            &hedge_pos,
            market.meta(name.as_str()),
            &market.prices(name),
            cfg.close_attempts_max.saturating_sub(1),
            cfg,
            clock.now_ms(),
            identity,
            u8::MAX,
        )
        .map(|intent| {
            // A hedge opens in the hedge instrument, so the venue's reduce_only flag would be
            // refused there; it stays flagged emergency_close (class Hedge in the mode table).
            OrderIntent::new(IntentFields { reduce_only: false, ..*intent.fields() })
        })
        .and_then(|intent| credits.take(EMERGENCY_ORDER_CREDITS).map(|()| intent));
        match planned {
            Ok(intent) => {
                report.sent.push(intent);
                report.hedge_used = true;
                report.cause = "hedge_fallback";
                let _ = driver.send_ioc(&intent);
            }
            Err(code) => report.blocked.push((name, code)),
        }
    }
    Ok(report)
}
