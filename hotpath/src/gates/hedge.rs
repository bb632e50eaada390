//! The hedge gate: a delta hedge in a perpetual/future is *not* reduce-only (it opens in the
//! hedge instrument), so the per-instrument classification of the gate chain calls it an Open
//! and ReduceOnly/Kill would refuse it. Capital supremacy (DESIGN invariant 6, contract A
//! §2.2.3.6: containment = close, then reduce-only hedge) needs it through exactly when it makes
//! the book safer: in ReduceOnly/Kill a hedge passes only if it strictly reduces the absolute
//! portfolio delta of its currency, computed here from positions — never from the caller's
//! claim that it is a hedge.
//!
//! Delta per instrument, in coin of the base currency (1e-8 fixed point at the boundary):
//! - perpetual / future: 1 per coin. Inverse contracts are sized in USD, so `amount / index`;
//!   linear ones are sized in coin already.
//! - option: the Black-76 delta `N(d1)` (call) / `N(d1) − 1` (put) on the index, per coin of
//!   amount. Volatility is implied from the book mid when a fresh two-sided book exists
//!   (bisection, bounded), else [`HEDGE_VOL_FALLBACK`]. The premium term of inverse options is
//!   ignored: it is below the hedge instrument's amount step for any option worth hedging.
//!
//! Floats live only inside the option model; every input and output is fixed point.

use crate::domain::instrument::{Instrument, InstrumentKind, OptionRight};
use crate::domain::intent::{OrderIntent, Side};
use crate::domain::reason_codes::{RejectReasonCode, TradingMode};
use crate::domain::units::AmountUnit;
use crate::domain::units::{Qty, FIXED_SCALE};
use crate::gates::market::BookView;
use crate::strategy::IndexPrices;

/// Volatility used when no fresh two-sided option book gives an implied one (annualised).
pub const HEDGE_VOL_FALLBACK: f64 = 0.80;
/// Bisection steps of the implied-volatility search (bounded; 2⁻⁴⁰ of the bracket).
pub const IMPLIED_VOL_STEPS_MAX: u32 = 40;
/// Implied-volatility bracket.
const VOL_MIN: f64 = 0.01;
const VOL_MAX: f64 = 5.0;
/// Option books older than this do not give a volatility (ms).
pub const DELTA_BOOK_AGE_MS_MAX: i64 = 5_000;
const MS_PER_YEAR: f64 = 365.0 * 86_400_000.0;
#[allow(clippy::cast_precision_loss)]
const SCALE: f64 = FIXED_SCALE as f64;

/// What the delta computation reads.
#[derive(Debug, Clone, Copy)]
pub struct DeltaInputs<'a> {
    /// Now (ms).
    pub now_ms: i64,
    /// Index prices.
    pub index: IndexPrices,
    /// Books (for option implied volatility).
    pub books: &'a [BookView],
}

/// What the hedge gate decided (for logs and the WAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgeVerdict {
    /// Portfolio delta of the hedge's currency before the hedge (1e-8 coin).
    pub delta_before: i64,
    /// After the hedge fills completely (1e-8 coin).
    pub delta_after: i64,
}

#[allow(clippy::cast_precision_loss)]
fn to_f64(raw: i64) -> f64 {
    raw as f64 / SCALE
}

/// Standard normal CDF (Abramowitz–Stegun 26.2.17, |error| < 7.5e-8).
#[must_use]
pub fn norm_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * x.abs());
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let upper = pdf * poly;
    if x >= 0.0 {
        1.0 - upper
    } else {
        upper
    }
}

fn d1(forward: f64, strike: f64, t: f64, vol: f64) -> f64 {
    ((forward / strike).ln() + 0.5 * vol * vol * t) / (vol * t.sqrt())
}

/// Black-76 delta per unit of underlying (call `N(d1)`, put `N(d1) − 1`); at or after expiry
/// the intrinsic step.
#[must_use]
pub fn option_delta(right: OptionRight, forward: f64, strike: f64, t_years: f64, vol: f64) -> f64 {
    let call = if t_years <= 0.0 || vol <= 0.0 {
        if forward > strike {
            1.0
        } else {
            0.0
        }
    } else {
        norm_cdf(d1(forward, strike, t_years, vol))
    };
    match right {
        OptionRight::Call => call,
        OptionRight::Put => call - 1.0,
    }
}

/// Black-76 price in USD per unit of underlying.
fn option_price_usd(right: OptionRight, forward: f64, strike: f64, t: f64, vol: f64) -> f64 {
    let d1 = d1(forward, strike, t, vol);
    let d2 = d1 - vol * t.sqrt();
    let call = forward * norm_cdf(d1) - strike * norm_cdf(d2);
    match right {
        OptionRight::Call => call,
        OptionRight::Put => call - forward + strike,
    }
}

/// Volatility implied by a coin-denominated option price (inverse options quote in coin), by
/// bounded bisection; `None` when the price is outside the model's range.
#[must_use]
pub fn implied_vol(
    right: OptionRight,
    forward: f64,
    strike: f64,
    t_years: f64,
    price_coin: f64,
) -> Option<f64> {
    if t_years <= 0.0 || forward <= 0.0 || strike <= 0.0 || price_coin <= 0.0 {
        return None;
    }
    let target = price_coin * forward;
    let at = |v: f64| option_price_usd(right, forward, strike, t_years, v);
    if target <= at(VOL_MIN) || target >= at(VOL_MAX) {
        return None;
    }
    let (mut lo, mut hi) = (VOL_MIN, VOL_MAX);
    for _ in 0..IMPLIED_VOL_STEPS_MAX {
        let mid = 0.5 * (lo + hi);
        if at(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

fn option_vol(
    instrument: &Instrument,
    forward: f64,
    strike: f64,
    t: f64,
    d: &DeltaInputs<'_>,
) -> f64 {
    let name = instrument.name();
    let Some(right) = instrument.option_right() else { return HEDGE_VOL_FALLBACK };
    let mid = d
        .books
        .iter()
        .find(|b| b.instrument == name && !b.gapped)
        .filter(|b| d.now_ms.saturating_sub(b.last_update_ms) <= DELTA_BOOK_AGE_MS_MAX)
        .and_then(|b| Some((b.best_bid()?.price.raw() + b.best_ask()?.price.raw()) / 2));
    mid.and_then(|m| implied_vol(right, forward, strike, t, to_f64(m)))
        .unwrap_or(HEDGE_VOL_FALLBACK)
}

/// Coin delta of `qty` (signed, the instrument's amount units) of `instrument`, 1e-8 coin.
///
/// # Errors
/// `IndexPriceMissing` without an index for the currency.
pub fn position_delta(
    instrument: &Instrument,
    qty: Qty,
    d: &DeltaInputs<'_>,
) -> Result<i64, RejectReasonCode> {
    let index = d
        .index
        .for_currency(instrument.base_currency().as_str())
        .filter(|p| p.is_positive())
        .ok_or(RejectReasonCode::IndexPriceMissing)?;
    match instrument.kind() {
        InstrumentKind::Perpetual | InstrumentKind::Future => match instrument.amount_unit() {
            AmountUnit::Usd => {
                let coin =
                    i128::from(qty.raw()) * i128::from(FIXED_SCALE) / i128::from(index.raw());
                Ok(i64::try_from(coin).unwrap_or(if coin < 0 { i64::MIN } else { i64::MAX }))
            }
            AmountUnit::Coin => Ok(qty.raw()),
        },
        InstrumentKind::Option => {
            let (Some(strike), Some(expiry), Some(right)) =
                (instrument.strike(), instrument.expiry(), instrument.option_right())
            else {
                return Err(RejectReasonCode::InstrumentMetadataMissing);
            };
            let forward = to_f64(index.raw());
            let strike = to_f64(strike.raw());
            #[allow(clippy::cast_precision_loss)]
            let t = (expiry.expiry_ms().saturating_sub(d.now_ms)) as f64 / MS_PER_YEAR;
            let vol = option_vol(instrument, forward, strike, t, d);
            let delta = option_delta(right, forward, strike, t, vol);
            #[allow(clippy::cast_possible_truncation)]
            let raw = (to_f64(qty.raw()) * delta * SCALE).round() as i64;
            Ok(raw)
        }
    }
}

/// Net coin delta of the positions in `currency` (1e-8 coin).
///
/// # Errors
/// `IndexPriceMissing` when a position of the currency cannot be valued.
pub fn portfolio_delta<'p>(
    currency: &str,
    positions: impl IntoIterator<Item = (&'p Instrument, Qty)>,
    d: &DeltaInputs<'_>,
) -> Result<i64, RejectReasonCode> {
    let mut total: i64 = 0;
    for (instrument, qty) in positions {
        if instrument.base_currency().as_str() != currency || qty.raw() == 0 {
            continue;
        }
        total = total.saturating_add(position_delta(instrument, qty, d)?);
    }
    Ok(total)
}

/// The hedge rule as a pure decision over deltas: in `Active` every hedge passes this gate (the
/// chain's ordinary gates apply); in ReduceOnly/Kill only one that strictly reduces |delta|.
///
/// # Errors
/// `TradingModeReduceOnly` / `TradingModeKill` when the hedge would not reduce |delta|.
pub fn check_hedge_delta(
    mode: TradingMode,
    delta_before: i64,
    delta_after: i64,
) -> Result<(), RejectReasonCode> {
    let reduces = delta_after.unsigned_abs() < delta_before.unsigned_abs();
    match mode {
        TradingMode::Active => Ok(()),
        TradingMode::ReduceOnly if reduces => Ok(()),
        TradingMode::Kill if reduces => Ok(()),
        TradingMode::ReduceOnly => Err(RejectReasonCode::TradingModeReduceOnly),
        TradingMode::Kill => Err(RejectReasonCode::TradingModeKill),
    }
}

/// Gates a hedge intent against the positions: the delta of its currency before and after it
/// fills completely, then [`check_hedge_delta`]. Only perpetuals and futures hedge; a hedge is
/// an IOC limit (never market) — anything else is refused.
///
/// # Errors
/// `OrderTypeNotAllowed` for a non-IOC/non-limit or option "hedge"; `IndexPriceMissing`;
/// the mode's code when |delta| would not shrink.
pub fn gate_hedge<'p>(
    intent: &OrderIntent,
    mode: TradingMode,
    positions: impl IntoIterator<Item = (&'p Instrument, Qty)>,
    d: &DeltaInputs<'_>,
) -> Result<HedgeVerdict, RejectReasonCode> {
    gate_hedges(std::slice::from_ref(intent), mode, positions, d)
}

/// Gates hedges sent together (one containment round hedges each exposed leg; legs of a
/// spread offset each other, so only their sum may be judged): every one must be a
/// perp/future IOC limit of the same currency, and together they must shrink |delta|.
///
/// # Errors
/// As [`gate_hedge`]; `OrderTypeNotAllowed` also for an empty set or mixed currencies.
pub fn gate_hedges<'p>(
    intents: &[OrderIntent],
    mode: TradingMode,
    positions: impl IntoIterator<Item = (&'p Instrument, Qty)>,
    d: &DeltaInputs<'_>,
) -> Result<HedgeVerdict, RejectReasonCode> {
    use crate::domain::intent::{OrderType, TimeInForce};
    let first = intents.first().ok_or(RejectReasonCode::OrderTypeNotAllowed)?;
    let currency = first.fields().instrument.base_currency();
    let mut change: i64 = 0;
    for intent in intents {
        let f = intent.fields();
        let instrument = f.instrument;
        let shape_ok = f.order_type == OrderType::Limit
            && f.time_in_force == TimeInForce::ImmediateOrCancel
            && f.limit_price.is_some()
            && !f.post_only
            && instrument.base_currency() == currency
            && matches!(instrument.kind(), InstrumentKind::Perpetual | InstrumentKind::Future);
        if !shape_ok {
            return Err(RejectReasonCode::OrderTypeNotAllowed);
        }
        let signed = match f.side {
            Side::Buy => f.qty,
            Side::Sell => Qty::from_raw(-f.qty.raw()),
        };
        change = change.saturating_add(position_delta(&instrument, signed, d)?);
    }
    let delta_before = portfolio_delta(currency.as_str(), positions, d)?;
    let delta_after = delta_before.saturating_add(change);
    check_hedge_delta(mode, delta_before, delta_after)?;
    Ok(HedgeVerdict { delta_before, delta_after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::intent::{GroupId, IntentFields, OrderType, StrategyId, TimeInForce};
    use crate::domain::units::Price;

    fn ins(name: &str) -> Instrument {
        Instrument::parse(name).unwrap()
    }

    fn q(coin: f64) -> Qty {
        #[allow(clippy::cast_possible_truncation)]
        Qty::from_raw((coin * SCALE).round() as i64)
    }

    fn inputs(now_ms: i64) -> DeltaInputs<'static> {
        DeltaInputs {
            now_ms,
            index: IndexPrices {
                btc: Some(Price::from_raw(100_000 * FIXED_SCALE)),
                eth: Some(Price::from_raw(4_000 * FIXED_SCALE)),
            },
            books: &[],
        }
    }

    /// 2026-01-01 00:00 UTC; the options below expire 2026-12-25.
    const NOW: i64 = 1_767_225_600_000;

    fn hedge(name: &str, side: Side, qty: Qty) -> OrderIntent {
        let f = IntentFields {
            strategy_id: StrategyId::new_checked("vertical").unwrap(),
            group_id: GroupId::derive(&StrategyId::new_checked("vertical").unwrap(), b"g"),
            leg_index: 0,
            instrument: ins(name),
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::ImmediateOrCancel,
            post_only: false,
            reduce_only: false,
            linked_order_type: None,
            trigger_price: None,
            qty,
            limit_price: Some(Price::from_raw(100_000 * FIXED_SCALE)),
            contracts: None,
            emergency_close: true,
        };
        OrderIntent::new(f)
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((norm_cdf(-1.96) - 0.024_997_9).abs() < 1e-6);
    }

    #[test]
    fn call_and_put_deltas_are_bounded_and_put_call_parity_holds() {
        let c = option_delta(OptionRight::Call, 100_000.0, 100_000.0, 0.25, 0.6);
        let p = option_delta(OptionRight::Put, 100_000.0, 100_000.0, 0.25, 0.6);
        assert!(c > 0.5 && c < 0.6, "ATM call delta {c}");
        assert!((c - p - 1.0).abs() < 1e-12);
        assert!(option_delta(OptionRight::Call, 100_000.0, 50_000.0, 0.25, 0.6) > 0.99);
        assert!(option_delta(OptionRight::Call, 100_000.0, 300_000.0, 0.25, 0.6) < 0.01);
        // Expired: intrinsic.
        assert!(
            (option_delta(OptionRight::Call, 100_000.0, 90_000.0, 0.0, 0.6) - 1.0).abs() < 1e-12
        );
    }

    #[test]
    fn implied_vol_recovers_the_model_vol() {
        let price_usd = option_price_usd(OptionRight::Call, 100_000.0, 110_000.0, 0.5, 0.55);
        let v = implied_vol(OptionRight::Call, 100_000.0, 110_000.0, 0.5, price_usd / 100_000.0)
            .unwrap();
        assert!((v - 0.55).abs() < 1e-6, "{v}");
        assert_eq!(implied_vol(OptionRight::Call, 100_000.0, 110_000.0, 0.5, 0.0), None);
    }

    #[test]
    fn perpetual_delta_is_one_per_coin_and_inverse_is_sized_in_usd() {
        let d = inputs(NOW);
        // 50 000 USD of BTC-PERPETUAL at 100 000 = 0.5 coin.
        let perp = position_delta(&ins("BTC-PERPETUAL"), Qty::from_raw(50_000 * FIXED_SCALE), &d);
        assert_eq!(perp, Ok(FIXED_SCALE / 2));
        let short = position_delta(&ins("ETH-PERPETUAL"), Qty::from_raw(-4_000 * FIXED_SCALE), &d);
        assert_eq!(short, Ok(-FIXED_SCALE));
    }

    #[test]
    fn missing_index_fails_closed() {
        let d = DeltaInputs { index: IndexPrices::default(), ..inputs(NOW) };
        assert_eq!(
            position_delta(&ins("BTC-PERPETUAL"), q(1.0), &d),
            Err(RejectReasonCode::IndexPriceMissing)
        );
    }

    #[test]
    fn hedge_rule_per_mode() {
        assert_eq!(check_hedge_delta(TradingMode::Active, 0, 5), Ok(()));
        assert_eq!(check_hedge_delta(TradingMode::ReduceOnly, 10, -5), Ok(()));
        assert_eq!(check_hedge_delta(TradingMode::Kill, -10, -1), Ok(()));
        assert_eq!(
            check_hedge_delta(TradingMode::ReduceOnly, 10, 10),
            Err(RejectReasonCode::TradingModeReduceOnly)
        );
        // Overshooting to the same size on the other side does not reduce.
        assert_eq!(
            check_hedge_delta(TradingMode::Kill, 10, -10),
            Err(RejectReasonCode::TradingModeKill)
        );
        assert_eq!(
            check_hedge_delta(TradingMode::Kill, 0, 1),
            Err(RejectReasonCode::TradingModeKill)
        );
    }

    #[test]
    fn a_short_perp_hedge_of_a_long_call_passes_in_reduce_only_and_kill() {
        let d = inputs(NOW);
        let call = ins("BTC-25DEC26-100000-C");
        let positions = [(&call, q(1.0))];
        let before = portfolio_delta("BTC", positions, &d).unwrap();
        assert!(before > 0);
        // Sell about the call's delta in USD (perp amount is USD).
        let usd = i64::try_from(i128::from(before) * 100_000 / i128::from(FIXED_SCALE)).unwrap();
        let sell = hedge("BTC-PERPETUAL", Side::Sell, Qty::from_raw(usd / 10 * 10 * FIXED_SCALE));
        for mode in [TradingMode::ReduceOnly, TradingMode::Kill, TradingMode::Active] {
            let v = gate_hedge(&sell, mode, positions, &d).unwrap();
            assert!(v.delta_after.unsigned_abs() < v.delta_before.unsigned_abs());
        }
        // The same size bought adds delta: refused outside Active.
        let buy = hedge("BTC-PERPETUAL", Side::Buy, sell.fields().qty);
        assert_eq!(
            gate_hedge(&buy, TradingMode::ReduceOnly, positions, &d),
            Err(RejectReasonCode::TradingModeReduceOnly)
        );
        assert_eq!(
            gate_hedge(&buy, TradingMode::Kill, positions, &d),
            Err(RejectReasonCode::TradingModeKill)
        );
        assert!(gate_hedge(&buy, TradingMode::Active, positions, &d).is_ok());
    }

    #[test]
    fn a_hedge_that_overshoots_is_refused_outside_active() {
        let d = inputs(NOW);
        let perp = ins("BTC-PERPETUAL");
        // Long 0.1 coin (10 000 USD); selling 30 000 USD leaves −0.2: |delta| grows.
        let positions = [(&perp, Qty::from_raw(10_000 * FIXED_SCALE))];
        let sell = hedge("BTC-PERPETUAL", Side::Sell, Qty::from_raw(30_000 * FIXED_SCALE));
        assert_eq!(
            gate_hedge(&sell, TradingMode::ReduceOnly, positions, &d),
            Err(RejectReasonCode::TradingModeReduceOnly)
        );
        let half = hedge("BTC-PERPETUAL", Side::Sell, Qty::from_raw(15_000 * FIXED_SCALE));
        assert!(gate_hedge(&half, TradingMode::Kill, positions, &d).is_ok());
    }

    #[test]
    fn offsetting_hedges_of_a_spread_are_judged_together() {
        let d = inputs(NOW);
        let k1 = ins("BTC-25DEC26-100000-C");
        let k2 = ins("BTC-25DEC26-110000-C");
        let positions = [(&k1, q(1.0)), (&k2, q(-1.0))];
        let net = portfolio_delta("BTC", positions, &d).unwrap();
        let leg1 = position_delta(&k1, q(1.0), &d).unwrap();
        let leg2 = position_delta(&k2, q(-1.0), &d).unwrap();
        assert!(net > 0 && leg1 > net, "a call spread's delta is below its long leg's");
        // Coin delta at 100 000 USD, in whole 10 USD contracts.
        let usd = |coin: i64| {
            let raw = i128::from(coin.abs()) * 100_000 / 1_000_000_000 * 1_000_000_000;
            Qty::from_raw(i64::try_from(raw).unwrap())
        };
        let sell = hedge("BTC-PERPETUAL", Side::Sell, usd(leg1));
        let buy = hedge("BTC-PERPETUAL", Side::Buy, usd(leg2));
        // Alone, the long leg's hedge overshoots the spread's delta.
        assert_eq!(
            gate_hedge(&sell, TradingMode::ReduceOnly, positions, &d),
            Err(RejectReasonCode::TradingModeReduceOnly)
        );
        // Together they hedge the spread.
        let v = gate_hedges(&[sell, buy], TradingMode::ReduceOnly, positions, &d).unwrap();
        assert!(v.delta_after.unsigned_abs() < v.delta_before.unsigned_abs(), "{v:?}");
        let eth = hedge("ETH-PERPETUAL", Side::Buy, Qty::from_raw(10 * FIXED_SCALE));
        assert_eq!(
            gate_hedges(&[sell, eth], TradingMode::Kill, positions, &d),
            Err(RejectReasonCode::OrderTypeNotAllowed)
        );
        assert_eq!(
            gate_hedges(&[], TradingMode::Kill, positions, &d),
            Err(RejectReasonCode::OrderTypeNotAllowed)
        );
    }

    #[test]
    fn other_currencies_do_not_count_and_options_cannot_hedge() {
        let d = inputs(NOW);
        let eth = ins("ETH-PERPETUAL");
        let positions = [(&eth, Qty::from_raw(4_000 * FIXED_SCALE))];
        assert_eq!(portfolio_delta("BTC", positions, &d), Ok(0));
        let opt = hedge("BTC-25DEC26-100000-C", Side::Sell, q(1.0));
        assert_eq!(
            gate_hedge(&opt, TradingMode::Kill, positions, &d),
            Err(RejectReasonCode::OrderTypeNotAllowed)
        );
    }
}
