//! The reference two-leg taker: a call vertical (buy the K1 call, sell the K2 call, same
//! expiry, K1 < K2) submitted as one group — both legs share a [`GroupId`], leg 0 is the buy,
//! leg 1 the sell — with immediate-or-cancel limits priced through the top of book by at most
//! `slippage_ticks` ticks. It only enters when the books show an edge, and it closes the
//! spread later with reduce-only legs. Executing the group atomically (and unwinding a lone
//! leg) is the group executor's job; this strategy only proposes the intents.
//!
//! ## Entry (flat, nothing pending, retry delay elapsed)
//! Both books usable (see [`super::quoter::usable_top`]), an index price known, and
//! - debit = ask(K1) − bid(K2) ≤ `entry_debit_bps_of_width_max` × width / 10 000, where width
//!   = (K2 − K1) / index is the spread's maximum payoff in coin (inverse options are priced in
//!   coin);
//! - both top levels hold the whole size (so the IOC fills at the best price: no sweep).
//!
//! ## Exit (holding a balanced spread, nothing pending)
//! Credit = bid(K1) − ask(K2) ≥ `exit_credit_bps_of_width_min` × width / 10 000, or the
//! expiry is within `exit_before_expiry_ms`: sell K1, buy K2, reduce-only IOC, same sizing.
//!
//! ## Repair (legs unbalanced: one leg filled, the other did not)
//! The excess on one leg is closed alone, reduce-only IOC (single-leg group), whatever the
//! edge: capital before opinion.
//!
//! Whether an intent opens or reduces is decided by the gates from the engine's positions;
//! `reduce_only` here only asks the venue to refuse an increase.
//!
//! Determinism: `GroupId::derive(id, seed ‖ "v" ‖ K1 ‖ K2 ‖ action ‖ attempt)`; the attempt
//! counter is the only state besides the retry deadline. No allocation in `on_tick`.

use crate::domain::instrument::{Instrument, InstrumentKind, InstrumentName, OptionRight};
use crate::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use crate::domain::metadata::InstrumentMeta;
use crate::domain::units::{Price, Qty, Usd, FIXED_SCALE};
use crate::gates::market::BookLevel;
use crate::gates::positions::PositionView;

use super::quoter::{usable_top, DecisionKey};
use super::{ActionBuffer, MarketSnapshot, PositionsSnapshot, Strategy, StrategyAction};

/// Actions one tick produces at most (two legs).
pub const VERTICAL_ACTIONS_PER_TICK_MAX: usize = 2;

/// Why a vertical configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerticalConfigError {
    /// A leg is not a call option.
    #[error("vertical legs must be call options")]
    NotACall,
    /// The legs differ in expiry or currency, or K1 ≥ K2.
    #[error("vertical legs must share expiry and currency with K1 < K2")]
    Shape,
    /// A parameter is out of range.
    #[error("vertical parameter out of range: {0}")]
    Param(&'static str),
}

/// Vertical parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerticalParams {
    /// Spread size in lots of `min_trade_amount` (≥ 1).
    pub lots: i64,
    /// How far through the best price each IOC limit may go, in ticks (≥ 0): the slippage
    /// bound.
    pub slippage_ticks: i64,
    /// Enter when the debit is at most this share of the width, in bps (1..=10 000).
    pub entry_debit_bps_of_width_max: i64,
    /// Close when the credit is at least this share of the width, in bps (1..=10 000).
    pub exit_credit_bps_of_width_min: i64,
    /// Close unconditionally this long before expiry (ms, ≥ 0).
    pub exit_before_expiry_ms: i64,
    /// Wait at least this long between attempts (ms, ≥ 1).
    pub retry_ms: i64,
    /// Ignore books older than this (ms, ≥ 1).
    pub book_age_ms_max: i64,
}

impl Default for VerticalParams {
    fn default() -> Self {
        Self {
            lots: 1,
            slippage_ticks: 1,
            entry_debit_bps_of_width_max: 3_000,
            exit_credit_bps_of_width_min: 6_000,
            exit_before_expiry_ms: 3_600_000,
            retry_ms: 5_000,
            book_age_ms_max: 1_000,
        }
    }
}

impl VerticalParams {
    fn validate(&self) -> Result<(), VerticalConfigError> {
        let checks = [
            (self.lots >= 1, "lots"),
            (self.slippage_ticks >= 0, "slippage_ticks"),
            ((1..=10_000).contains(&self.entry_debit_bps_of_width_max), "entry_debit_bps"),
            ((1..=10_000).contains(&self.exit_credit_bps_of_width_min), "exit_credit_bps"),
            (self.exit_before_expiry_ms >= 0, "exit_before_expiry_ms"),
            (self.retry_ms >= 1, "retry_ms"),
            (self.book_age_ms_max >= 1, "book_age_ms_max"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, name)) => Err(VerticalConfigError::Param(name)),
            None => Ok(()),
        }
    }
}

/// What a group does (part of the decision key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Open = 1,
    Close = 2,
    Repair = 3,
}

/// One leg as proposed.
#[derive(Debug, Clone, Copy)]
struct Leg<'m> {
    meta: &'m InstrumentMeta,
    side: Side,
    price: Price,
    qty: Qty,
    reduce_only: bool,
}

/// The call-vertical taker (see the module docs).
#[derive(Debug)]
pub struct Vertical {
    id: StrategyId,
    seed: u64,
    params: VerticalParams,
    /// `[K1, K2]`: the low strike (bought on entry) first, as given.
    legs: [InstrumentName; 2],
    /// Both legs and the currency's perpetual (the group executor's hedge instrument needs a
    /// live book), sorted, for [`Strategy::instruments`].
    sorted: [InstrumentName; 3],
    width_strike: Price,
    attempt: u64,
    next_attempt_ms: i64,
    /// The last opening group and its edge claim (see [`Strategy::group_edge_usd`]).
    last_claim: Option<(GroupId, Usd)>,
}

impl Vertical {
    /// A vertical buying `low` and selling `high` (both calls, same expiry and currency,
    /// strike(low) < strike(high)).
    ///
    /// # Errors
    /// [`VerticalConfigError`].
    pub fn new(
        id: StrategyId,
        seed: u64,
        low: InstrumentName,
        high: InstrumentName,
        params: VerticalParams,
    ) -> Result<Self, VerticalConfigError> {
        params.validate()?;
        let parse = |n: InstrumentName| Instrument::parse(n.as_str()).ok();
        let (Some(a), Some(b)) = (parse(low), parse(high)) else {
            return Err(VerticalConfigError::NotACall);
        };
        let is_call = |i: &Instrument| {
            i.kind() == InstrumentKind::Option && i.option_right() == Some(OptionRight::Call)
        };
        if !is_call(&a) || !is_call(&b) {
            return Err(VerticalConfigError::NotACall);
        }
        let (Some(k1), Some(k2)) = (a.strike(), b.strike()) else {
            return Err(VerticalConfigError::NotACall);
        };
        if a.expiry() != b.expiry()
            || a.base_currency() != b.base_currency()
            || a.settlement() != b.settlement()
            || k1 >= k2
        {
            return Err(VerticalConfigError::Shape);
        }
        let perpetual = Instrument::parse(&format!("{}-PERPETUAL", a.base_currency().as_str()))
            .map_err(|_| VerticalConfigError::Shape)?;
        let mut sorted = [low, high, perpetual.name()];
        sorted.sort_unstable();
        Ok(Self {
            id,
            seed,
            params,
            legs: [low, high],
            sorted,
            width_strike: Price::from_raw(k2.raw() - k1.raw()),
            attempt: 0,
            next_attempt_ms: i64::MIN,
            last_claim: None,
        })
    }

    /// Most actions per tick: size the [`ActionBuffer`] with this.
    #[must_use]
    pub const fn actions_per_tick_max(&self) -> usize {
        VERTICAL_ACTIONS_PER_TICK_MAX
    }

    /// Attempts made so far.
    #[must_use]
    pub const fn attempts(&self) -> u64 {
        self.attempt
    }

    /// `bps` of the width in coin at `index`: `(K2 − K1) / index × bps / 10 000`, 1e-8 units.
    fn width_share(&self, index: Price, bps: i64) -> Option<i64> {
        if !index.is_positive() {
            return None;
        }
        let width_coin =
            i128::from(self.width_strike.raw()) * i128::from(FIXED_SCALE) / i128::from(index.raw());
        i64::try_from(width_coin * i128::from(bps) / 10_000).ok()
    }

    /// Emits the legs as one group; all or nothing (checks buffer room first). Returns the
    /// group id when the legs went out.
    fn emit(
        &mut self,
        action: Action,
        legs: &[Leg<'_>],
        now_ms: i64,
        out: &mut ActionBuffer,
    ) -> Option<GroupId> {
        if out.capacity() - out.len() < legs.len() {
            return None;
        }
        let mut key = DecisionKey::new(self.seed, b"v");
        key.put_field(self.legs[0].as_bytes())
            .put_field(self.legs[1].as_bytes())
            .put_i64(action as i64)
            .put_i64(i64::try_from(self.attempt).unwrap_or(i64::MAX));
        let group_id = GroupId::derive(&self.id, key.as_bytes());
        let mut intents: [Option<OrderIntent>; VERTICAL_ACTIONS_PER_TICK_MAX] = [None; 2];
        for (slot, (leg_index, leg)) in intents.iter_mut().zip(legs.iter().enumerate()) {
            let fields = IntentFields {
                strategy_id: self.id,
                group_id,
                // At most two legs.
                leg_index: u8::try_from(leg_index).unwrap_or(u8::MAX),
                instrument: leg.meta.instrument,
                side: leg.side,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::ImmediateOrCancel,
                post_only: false,
                reduce_only: leg.reduce_only,
                linked_order_type: None,
                trigger_price: None,
                qty: leg.qty,
                limit_price: Some(leg.price),
                contracts: None,
                emergency_close: false,
            };
            match OrderIntent::new_quantized(fields, Some(leg.meta)) {
                Ok(intent) => *slot = Some(intent),
                // A leg that cannot be built voids the whole group.
                Err(_) => return None,
            }
        }
        for intent in intents.into_iter().flatten() {
            // Room was checked above.
            let _ = out.push(StrategyAction::Place(intent));
        }
        self.attempt += 1;
        self.next_attempt_ms = now_ms.saturating_add(self.params.retry_ms);
        Some(group_id)
    }
}

/// `price` moved `ticks` ticks in the taker's direction (through the book), on the grid.
fn through(meta: &InstrumentMeta, side: Side, price: Price, ticks: i64) -> Price {
    let tick = meta.tick_at(price).raw();
    let raw = match side {
        Side::Buy => price.raw().saturating_add(ticks.saturating_mul(tick)),
        Side::Sell => price.raw().saturating_sub(ticks.saturating_mul(tick)),
    };
    Price::from_raw(raw.max(meta.tick_size.raw()))
}

fn nothing_pending(v: &PositionView) -> bool {
    v.pending_buy.raw() == 0 && v.pending_sell.raw() == 0
}

impl Strategy for Vertical {
    fn id(&self) -> &StrategyId {
        &self.id
    }

    fn instruments(&self) -> &[InstrumentName] {
        &self.sorted
    }

    fn group_edge_usd(&self, group: GroupId) -> Option<Usd> {
        self.last_claim.filter(|(g, _)| *g == group).map(|(_, usd)| usd)
    }

    fn on_tick(
        &mut self,
        market: &MarketSnapshot<'_>,
        positions: &PositionsSnapshot<'_>,
        out: &mut ActionBuffer,
    ) {
        let now = market.now_ms;
        if now < self.next_attempt_ms {
            return;
        }
        let [low, high] = self.legs;
        let (Some(m1), Some(m2)) =
            (market.instruments.get(low.as_str()), market.instruments.get(high.as_str()))
        else {
            return;
        };
        let p1 = positions.exposure.view(low.as_str());
        let p2 = positions.exposure.view(high.as_str());
        if !nothing_pending(&p1) || !nothing_pending(&p2) {
            // Something is in flight: decide again once the engine has settled it.
            return;
        }
        let age = self.params.book_age_ms_max;
        let top1 = usable_top(market.book(low.as_str()), now, age);
        let top2 = usable_top(market.book(high.as_str()), now, age);
        let lot = m1.min_trade_amount.raw().max(m2.min_trade_amount.raw());
        let size = Qty::from_raw(self.params.lots.saturating_mul(lot));
        let slip = self.params.slippage_ticks;
        let long = p1.position.raw();
        let short = -p2.position.raw();

        if long == 0 && short == 0 {
            let (Some((_, ask1)), Some((bid2, _))) = (top1, top2) else { return };
            let index = market.index.for_currency(m1.instrument.base_currency().as_str());
            let Some(debit_max) =
                index.and_then(|i| self.width_share(i, self.params.entry_debit_bps_of_width_max))
            else {
                return;
            };
            let debit = ask1.price.raw() - bid2.price.raw();
            let deep = |l: BookLevel| l.qty >= size;
            if debit > debit_max || !deep(ask1) || !deep(bid2) {
                return;
            }
            let legs = [
                Leg {
                    meta: m1,
                    side: Side::Buy,
                    price: through(m1, Side::Buy, ask1.price, slip),
                    qty: size,
                    reduce_only: false,
                },
                Leg {
                    meta: m2,
                    side: Side::Sell,
                    price: through(m2, Side::Sell, bid2.price, slip),
                    qty: size,
                    reduce_only: false,
                },
            ];
            // The claim: what the entry rule says the spread is worth above its debit, in USD
            // (debit and threshold are coin per unit; size is coin; the index converts).
            let claim = index.and_then(|i| {
                let coin = i128::from(debit_max - debit) * i128::from(size.raw())
                    / i128::from(FIXED_SCALE);
                i64::try_from(coin * i128::from(i.raw()) / i128::from(FIXED_SCALE)).ok()
            });
            if let Some(group) = self.emit(Action::Open, &legs, now, out) {
                self.last_claim = claim.map(|c| (group, Usd::from_raw(c)));
            }
            return;
        }

        if long > 0 && long == short {
            let (Some((bid1, _)), Some((_, ask2))) = (top1, top2) else { return };
            let index = market.index.for_currency(m1.instrument.base_currency().as_str());
            let credit_min =
                index.and_then(|i| self.width_share(i, self.params.exit_credit_bps_of_width_min));
            let credit = bid1.price.raw() - ask2.price.raw();
            let expiring = m1
                .expiration_timestamp_ms
                .is_some_and(|e| now >= e.saturating_sub(self.params.exit_before_expiry_ms));
            let rich = credit_min.is_some_and(|min| credit >= min);
            if !(rich || expiring) {
                return;
            }
            let qty = Qty::from_raw(long.min(size.raw()));
            let legs = [
                Leg {
                    meta: m1,
                    side: Side::Sell,
                    price: through(m1, Side::Sell, bid1.price, slip),
                    qty,
                    reduce_only: true,
                },
                Leg {
                    meta: m2,
                    side: Side::Buy,
                    price: through(m2, Side::Buy, ask2.price, slip),
                    qty,
                    reduce_only: true,
                },
            ];
            let _ = self.emit(Action::Close, &legs, now, out);
            return;
        }

        // Unbalanced (a leg filled alone, or anything else): one reduce-only leg towards the
        // balanced spread. A leg on the wrong side is closed first, else the larger leg is
        // cut down to the smaller one.
        let (meta, top, side, excess) = if long < 0 {
            (m1, top1, Side::Buy, -long)
        } else if short < 0 {
            (m2, top2, Side::Sell, -short)
        } else if long > short {
            (m1, top1, Side::Sell, long - short)
        } else {
            (m2, top2, Side::Buy, short - long)
        };
        let Some((bid, ask)) = top else { return };
        let best = if side == Side::Sell { bid.price } else { ask.price };
        let leg = Leg {
            meta,
            side,
            price: through(meta, side, best, slip),
            qty: Qty::from_raw(excess),
            reduce_only: true,
        };
        let _ = self.emit(Action::Repair, &[leg], now, out);
    }
}
