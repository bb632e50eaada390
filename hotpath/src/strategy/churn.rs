//! `churn`: a load generator, not a trading idea. It keeps opening and closing small
//! positions on a few liquid instruments, which is the order flow the crash and restart tests
//! need: opens rest post-only at the touch (maker: they fill when the market walks through
//! them, and their edge against the mid is honestly non-negative), are cancelled after
//! [`REST_MS`] if unfilled, and a position is closed at once with a reduce-only
//! immediate-or-cancel limit at the opposite touch.
//!
//! Per instrument and tick: nothing while an order of ours is live or exposure is pending;
//! flat ⇒ open the minimum size (1–3 lots) on a side drawn from the seed; not flat ⇒ close the
//! whole position. Deterministic in (seed, inputs, own counter): the
//! decision key hashes the seed, the tick time, the decision counter and the instrument, so
//! every decision gets a fresh group id (and label) even across restarts (time moves on).

use crate::domain::instrument::{Instrument, InstrumentName};
use crate::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use crate::domain::units::Qty;
use std::collections::BTreeMap;

use super::{ActionBuffer, MarketSnapshot, PositionsSnapshot, Strategy, StrategyAction};

/// Default instruments of the churn load.
pub const CHURN_INSTRUMENTS: [&str; 2] = ["BTC-PERPETUAL", "ETH-PERPETUAL"];

/// How long an unfilled open rests before churn cancels it.
pub const REST_MS: i64 = 400;

/// The churn strategy.
#[derive(Debug)]
pub struct Churn {
    id: StrategyId,
    seed: u64,
    instruments: Vec<InstrumentName>,
    parsed: Vec<Instrument>,
    decisions: u64,
    /// Our live orders: label → first tick they were seen live.
    seen: BTreeMap<String, (i64, bool)>,
}

/// Why a churn strategy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    /// An instrument name did not parse.
    #[error("bad instrument {0:?}")]
    BadInstrument(String),
    /// The strategy id did not validate.
    #[error("bad strategy id")]
    BadId,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: a fixed, well-distributed bijection.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Churn {
    /// Churn over [`CHURN_INSTRUMENTS`].
    ///
    /// # Errors
    /// Never for the defaults; see [`Self::with_instruments`].
    pub fn new(seed: u64) -> Result<Self, ChurnError> {
        Self::with_instruments(seed, &CHURN_INSTRUMENTS)
    }

    /// Churn over `names` (sorted; they must parse as Deribit instruments).
    ///
    /// # Errors
    /// [`ChurnError`].
    pub fn with_instruments(seed: u64, names: &[&str]) -> Result<Self, ChurnError> {
        let mut sorted: Vec<&str> = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut parsed = Vec::new();
        for n in sorted {
            parsed.push(Instrument::parse(n).map_err(|_| ChurnError::BadInstrument(n.into()))?);
        }
        Ok(Self {
            id: StrategyId::new_checked("churn").map_err(|_| ChurnError::BadId)?,
            seed,
            instruments: parsed.iter().map(Instrument::name).collect(),
            parsed,
            decisions: 0,
            seen: BTreeMap::new(),
        })
    }

    fn decide(
        &mut self,
        inst: Instrument,
        market: &MarketSnapshot<'_>,
        positions: &PositionsSnapshot<'_>,
    ) -> Option<OrderIntent> {
        let name = inst.name();
        if positions.open_orders.iter().any(|o| o.instrument == name) {
            return None;
        }
        let view = positions.exposure.view(name.as_str());
        if view.pending_buy.is_positive() || view.pending_sell.is_positive() {
            return None;
        }
        let meta = market.instruments.get(name.as_str())?;
        let book = market.book(name.as_str())?;
        if book.gapped {
            return None;
        }
        let (bid, ask) = (book.best_bid()?, book.best_ask()?);
        self.decisions += 1;
        let key_word = mix(self.seed
            ^ mix(market.now_ms as u64)
            ^ mix(self.decisions.wrapping_mul(0x100_0000_01B3))
            ^ mix(u64::from(
                name.as_bytes()
                    .iter()
                    .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(*b))),
            )));
        let mut key = [0u8; 24];
        key[..8].copy_from_slice(&key_word.to_le_bytes());
        key[8..16].copy_from_slice(&self.decisions.to_le_bytes());
        key[16..].copy_from_slice(&market.now_ms.to_le_bytes());
        let group_id = GroupId::derive(&self.id, &key);
        let (side, qty, reduce_only) = if view.position.raw() == 0 {
            let lots = 1 + (key_word >> 8) % 3;
            let qty = Qty::from_raw(meta.min_trade_amount.raw().checked_mul(lots as i64)?);
            let side = if key_word & 1 == 0 { Side::Buy } else { Side::Sell };
            (side, qty, false)
        } else if view.position.raw() > 0 {
            (Side::Sell, view.position, true)
        } else {
            (Side::Buy, view.position.abs(), true)
        };
        // Opens rest at our side's touch (post-only); closes cross to the other side's touch.
        let price = match (side, reduce_only) {
            (Side::Buy, false) | (Side::Sell, true) => bid.price,
            (Side::Sell, false) | (Side::Buy, true) => ask.price,
        };
        let (time_in_force, post_only) = if reduce_only {
            (TimeInForce::ImmediateOrCancel, false)
        } else {
            (TimeInForce::GoodTilCancelled, true)
        };
        let fields = IntentFields {
            strategy_id: self.id,
            group_id,
            leg_index: 0,
            instrument: inst,
            side,
            order_type: OrderType::Limit,
            time_in_force,
            post_only,
            reduce_only,
            linked_order_type: None,
            trigger_price: None,
            qty,
            limit_price: Some(price),
            contracts: None,
            emergency_close: false,
        };
        OrderIntent::new_quantized(fields, Some(meta)).ok()
    }
}

impl Strategy for Churn {
    fn id(&self) -> &StrategyId {
        &self.id
    }

    fn instruments(&self) -> &[InstrumentName] {
        &self.instruments
    }

    fn on_tick(
        &mut self,
        market: &MarketSnapshot<'_>,
        positions: &PositionsSnapshot<'_>,
        out: &mut ActionBuffer,
    ) {
        // Forget orders that are gone; cancel opens that rested too long (once each).
        self.seen.retain(|l, _| positions.open_orders.iter().any(|o| o.label.as_str() == l));
        for o in positions.open_orders {
            // (since, _): when it was first seen, then when a cancel was last asked; a cancel
            // is asked again every REST_MS while the order is still reported live.
            let (since, asked) =
                self.seen.entry(o.label.as_str().to_owned()).or_insert((market.now_ms, false));
            if market.now_ms - *since >= REST_MS {
                if out.push(StrategyAction::Cancel(o.label)).is_err() {
                    return;
                }
                *since = market.now_ms;
                *asked = true;
            }
        }
        for i in 0..self.parsed.len() {
            let inst = self.parsed[i];
            if let Some(intent) = self.decide(inst, market, positions) {
                if out.push(StrategyAction::Place(intent)).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metadata::InstrumentCache;
    use crate::domain::units::Price;
    use crate::gates::market::{BookLevel, BookView};
    use crate::gates::positions::ExposureBook;
    use crate::strategy::IndexPrices;

    fn cache() -> InstrumentCache {
        let mut c = InstrumentCache::new();
        let v = serde_json::json!([
            {"instrument_name":"BTC-PERPETUAL","kind":"future","tick_size":0.5,"min_trade_amount":10,
             "contract_size":10,"expiration_timestamp":32503680000000_i64,"creation_timestamp":1,
             "is_active":true,"settlement_period":"perpetual","base_currency":"BTC",
             "quote_currency":"USD","settlement_currency":"BTC","counter_currency":"USD",
             "instrument_type":"reversed","option_type":null,"strike":null},
            {"instrument_name":"ETH-PERPETUAL","kind":"future","tick_size":0.05,"min_trade_amount":1,
             "contract_size":1,"expiration_timestamp":32503680000000_i64,"creation_timestamp":1,
             "is_active":true,"settlement_period":"perpetual","base_currency":"ETH",
             "quote_currency":"USD","settlement_currency":"ETH","counter_currency":"USD",
             "instrument_type":"reversed","option_type":null,"strike":null}
        ]);
        c.load_get_instruments(&v, 0).unwrap();
        c
    }

    fn book(name: &str, bid: f64, ask: f64) -> BookView {
        let lvl = |p: f64| BookLevel {
            price: Price::from_f64_checked(p).unwrap(),
            qty: Qty::from_f64_checked(1000.0).unwrap(),
        };
        BookView::from_levels(
            Instrument::parse(name).unwrap().name(),
            &[lvl(bid)],
            &[lvl(ask)],
            0,
            false,
        )
    }

    fn run(seed: u64, position: i64) -> Vec<StrategyAction> {
        let c = cache();
        let books =
            [book("BTC-PERPETUAL", 99_999.5, 100_000.0), book("ETH-PERPETUAL", 3499.95, 3500.0)];
        let mut ex = ExposureBook::new();
        ex.set_position(
            Instrument::parse("BTC-PERPETUAL").unwrap().name(),
            Qty::from_raw(position),
        );
        let m = MarketSnapshot {
            now_ms: 1_000,
            instruments: &c,
            books: &books,
            index: IndexPrices::default(),
        };
        let p = PositionsSnapshot { exposure: &ex, open_orders: &[] };
        let mut s = Churn::new(seed).unwrap();
        let mut out = ActionBuffer::with_capacity(4);
        s.on_tick(&m, &p, &mut out);
        out.drain().collect()
    }

    #[test]
    fn deterministic_and_opens_then_closes() {
        let a = run(7, 0);
        assert_eq!(a, run(7, 0));
        assert_eq!(a.len(), 2);
        let closing = run(7, 20 * 100_000_000);
        let StrategyAction::Place(i) = &closing[0] else { panic!() };
        assert_eq!(i.fields().side, Side::Sell);
        assert!(i.fields().reduce_only);
        assert_eq!(i.fields().qty.raw(), 20 * 100_000_000);
        assert_eq!(
            i.fields().limit_price.unwrap().raw(),
            Price::from_f64_checked(99_999.5).unwrap().raw()
        );
        let StrategyAction::Place(o) = &a[0] else { panic!() };
        assert!(o.fields().post_only && !o.fields().reduce_only);
        assert_ne!(run(8, 0), a, "the seed changes decisions");
    }
}
