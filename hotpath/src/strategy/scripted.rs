//! `scripted`: a test strategy that places a fixed sequence of orders, so a test can make the
//! engine break one specific policy limit against a real venue. Not a trading idea.
//!
//! A script is JSON:
//! ```json
//! {"steps": [
//!   {"instrument": "BTC-PERPETUAL", "side": "buy", "amount": "30", "price": "bid",
//!    "post_only": true, "count": 1}
//! ]}
//! ```
//! - `price`: `"bid"` / `"ask"` (the touch when the step fires) or a decimal limit price;
//! - `time_in_force`: `"gtc"` (default) or `"ioc"`; `post_only`, `reduce_only`: default false;
//! - `count` (1..=16, default 1): orders of this step placed in the same tick (the order-rate
//!   test bursts with it);
//! - `delay_ms` (default 0): the step fires only after the strategy has been idle this long
//!   (lets venue-side consequences of the previous step, such as a price move, land first).
//!
//! A step fires once, only when the strategy is idle (no live order, no pending exposure) and
//! every instrument of the script has a two-sided book; then the next step waits for idle
//! again. So a resting order holds the script until it fills or is cancelled, which is how a
//! test interleaves venue-side events (fills, price moves) with the next step. Deterministic:
//! group ids hash the step index, the order index and the tick time.

use crate::domain::instrument::{Instrument, InstrumentName};
use crate::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use crate::domain::units::{Price, Qty};

use super::{ActionBuffer, MarketSnapshot, PositionsSnapshot, Strategy, StrategyAction};

/// Most orders one step may place (the engine's action buffer per tick).
pub const STEP_COUNT_MAX: u32 = 16;

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("read {path}: {error}")]
    Read {
        /// Script path.
        path: String,
        /// I/O error.
        error: String,
    },
    /// Not valid JSON or not the script shape.
    #[error("script JSON: {0}")]
    Json(String),
    /// A step is invalid.
    #[error("step {index}: {why}")]
    Step {
        /// Step index (0-based).
        index: usize,
        /// What is wrong.
        why: String,
    },
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    steps: Vec<StepFile>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    instrument: String,
    side: String,
    amount: String,
    price: String,
    #[serde(default)]
    time_in_force: Option<String>,
    #[serde(default)]
    post_only: bool,
    #[serde(default)]
    reduce_only: bool,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    delay_ms: Option<i64>,
}

/// Where a step's limit price comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRule {
    /// Best bid when the step fires.
    Bid,
    /// Best ask when the step fires.
    Ask,
    /// A fixed price.
    Fixed(Price),
}

/// One step of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Instrument.
    pub instrument: Instrument,
    /// Side.
    pub side: Side,
    /// Amount (the instrument's amount unit).
    pub amount: Qty,
    /// Limit price rule.
    pub price: PriceRule,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Post-only flag.
    pub post_only: bool,
    /// Reduce-only flag.
    pub reduce_only: bool,
    /// Orders placed in the same tick.
    pub count: u32,
    /// Idle time before the step fires, ms.
    pub delay_ms: i64,
}

fn parse_step(index: usize, s: &StepFile) -> Result<Step, ScriptError> {
    let bad = |why: String| ScriptError::Step { index, why };
    let instrument =
        Instrument::parse(&s.instrument).map_err(|e| bad(format!("instrument: {e:?}")))?;
    let side = match s.side.as_str() {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(bad(format!("side {other:?} (buy|sell)"))),
    };
    let amount = Qty::from_decimal_str(&s.amount).map_err(|e| bad(format!("amount: {e}")))?;
    if !amount.is_positive() {
        return Err(bad("amount must be positive".into()));
    }
    let price = match s.price.as_str() {
        "bid" => PriceRule::Bid,
        "ask" => PriceRule::Ask,
        text => {
            PriceRule::Fixed(Price::from_decimal_str(text).map_err(|e| bad(format!("price: {e}")))?)
        }
    };
    let time_in_force = match s.time_in_force.as_deref().unwrap_or("gtc") {
        "gtc" => TimeInForce::GoodTilCancelled,
        "ioc" => TimeInForce::ImmediateOrCancel,
        other => return Err(bad(format!("time_in_force {other:?} (gtc|ioc)"))),
    };
    let count = s.count.unwrap_or(1);
    if count == 0 || count > STEP_COUNT_MAX {
        return Err(bad(format!("count must be 1..={STEP_COUNT_MAX}")));
    }
    let delay_ms = s.delay_ms.unwrap_or(0);
    if !(0..=3_600_000).contains(&delay_ms) {
        return Err(bad("delay_ms must be 0..=3600000".into()));
    }
    Ok(Step {
        delay_ms,
        instrument,
        side,
        amount,
        price,
        time_in_force,
        post_only: s.post_only,
        reduce_only: s.reduce_only,
        count,
    })
}

/// The scripted strategy.
#[derive(Debug)]
pub struct Scripted {
    id: StrategyId,
    seed: u64,
    steps: Vec<Step>,
    instruments: Vec<InstrumentName>,
    next: usize,
    idle_since: Option<i64>,
}

impl Scripted {
    /// Parses a script (see the module docs).
    ///
    /// # Errors
    /// [`ScriptError`] for bad JSON or an invalid step; an empty script is refused too.
    pub fn from_json(seed: u64, text: &str) -> Result<Self, ScriptError> {
        let file: ScriptFile =
            serde_json::from_str(text).map_err(|e| ScriptError::Json(e.to_string()))?;
        if file.steps.is_empty() {
            return Err(ScriptError::Json("no steps".into()));
        }
        let steps = file
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| parse_step(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut instruments: Vec<InstrumentName> =
            steps.iter().map(|s| s.instrument.name()).collect();
        instruments.sort_unstable();
        instruments.dedup();
        Ok(Self {
            id: StrategyId::new_checked("scripted")
                .map_err(|e| ScriptError::Json(format!("{e:?}")))?,
            seed,
            steps,
            instruments,
            next: 0,
            idle_since: None,
        })
    }

    /// Loads a script file.
    ///
    /// # Errors
    /// [`ScriptError`].
    pub fn from_file(seed: u64, path: &std::path::Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        Self::from_json(seed, &text)
    }

    /// Steps not yet fired.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.steps.len() - self.next
    }

    fn idle(&self, positions: &PositionsSnapshot<'_>) -> bool {
        positions.open_orders.is_empty()
            && positions
                .exposure
                .iter()
                .all(|(_, v)| !v.pending_buy.is_positive() && !v.pending_sell.is_positive())
    }

    fn intent(&self, step: &Step, order: u32, market: &MarketSnapshot<'_>) -> Option<OrderIntent> {
        let name = step.instrument.name();
        let meta = market.instruments.get(name.as_str())?;
        let book = market.book(name.as_str())?;
        let price = match step.price {
            PriceRule::Bid => book.best_bid()?.price,
            PriceRule::Ask => book.best_ask()?.price,
            PriceRule::Fixed(p) => p,
        };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&(self.next as u64).to_le_bytes());
        key[16..24].copy_from_slice(&u64::from(order).to_le_bytes());
        key[24..].copy_from_slice(&market.now_ms.to_le_bytes());
        let fields = IntentFields {
            strategy_id: self.id,
            group_id: GroupId::derive(&self.id, &key),
            leg_index: 0,
            instrument: step.instrument,
            side: step.side,
            order_type: OrderType::Limit,
            time_in_force: step.time_in_force,
            post_only: step.post_only,
            reduce_only: step.reduce_only,
            linked_order_type: None,
            trigger_price: None,
            qty: step.amount,
            limit_price: Some(price),
            contracts: None,
            emergency_close: false,
        };
        OrderIntent::new_quantized(fields, Some(meta)).ok()
    }
}

impl Strategy for Scripted {
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
        let Some(step) = self.steps.get(self.next).copied() else { return };
        if !self.idle(positions) {
            self.idle_since = None;
            return;
        }
        let since = *self.idle_since.get_or_insert(market.now_ms);
        if market.now_ms.saturating_sub(since) < step.delay_ms {
            return;
        }
        let books_ready = self.instruments.iter().all(|n| {
            market
                .book(n.as_str())
                .is_some_and(|b| !b.gapped && b.best_bid().is_some() && b.best_ask().is_some())
        });
        if !books_ready {
            return;
        }
        let intents: Vec<OrderIntent> =
            (0..step.count).filter_map(|k| self.intent(&step, k, market)).collect();
        if intents.len() != step.count as usize {
            return; // metadata not loaded yet: try again next tick
        }
        for i in intents {
            if out.push(StrategyAction::Place(i)).is_err() {
                break;
            }
        }
        self.next += 1;
        self.idle_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metadata::InstrumentCache;
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
             "instrument_type":"reversed","option_type":null,"strike":null}
        ]);
        c.load_get_instruments(&v, 0).unwrap();
        c
    }

    fn book() -> BookView {
        let lvl = |p: f64| BookLevel {
            price: Price::from_f64_checked(p).unwrap(),
            qty: Qty::from_f64_checked(1000.0).unwrap(),
        };
        BookView::from_levels(
            Instrument::parse("BTC-PERPETUAL").unwrap().name(),
            &[lvl(99_999.5)],
            &[lvl(100_000.0)],
            0,
            false,
        )
    }

    fn tick(s: &mut Scripted, now_ms: i64) -> Vec<StrategyAction> {
        let c = cache();
        let books = [book()];
        let m = MarketSnapshot {
            now_ms,
            instruments: &c,
            books: &books,
            index: IndexPrices::default(),
        };
        let ex = ExposureBook::new();
        let p = PositionsSnapshot { exposure: &ex, open_orders: &[] };
        let mut out = ActionBuffer::with_capacity(16);
        s.on_tick(&m, &p, &mut out);
        out.drain().collect()
    }

    const SCRIPT: &str = r#"{"steps":[
        {"instrument":"BTC-PERPETUAL","side":"buy","amount":"30","price":"bid","post_only":true,"count":2},
        {"instrument":"BTC-PERPETUAL","side":"sell","amount":"10","price":"ask","delay_ms":500}]}"#;

    #[test]
    fn deterministic_one_step_per_idle_tick_and_delay_respected() {
        let run = || {
            let mut s = Scripted::from_json(7, SCRIPT).unwrap();
            let first = tick(&mut s, 1_000);
            let early = tick(&mut s, 1_100);
            let later = tick(&mut s, 1_600);
            let after = tick(&mut s, 5_000);
            (first, early, later, after)
        };
        let (first, early, later, after) = run();
        assert_eq!(run().0, first, "same inputs, same intents");
        assert_eq!(first.len(), 2, "count places that many in one tick");
        let StrategyAction::Place(a) = &first[0] else { panic!() };
        let StrategyAction::Place(b) = &first[1] else { panic!() };
        assert_ne!(a.hash(), b.hash(), "each order of a step is its own intent");
        assert_eq!(a.fields().limit_price.unwrap(), Price::from_f64_checked(99_999.5).unwrap());
        assert!(a.fields().post_only);
        // The delay counts from the first idle tick after the step before (1 100 ms).
        assert!(early.is_empty());
        assert_eq!(later.len(), 1);
        let StrategyAction::Place(c) = &later[0] else { panic!() };
        assert_eq!(c.fields().side, Side::Sell);
        assert_eq!(c.fields().limit_price.unwrap(), Price::from_f64_checked(100_000.0).unwrap());
        assert!(after.is_empty(), "the script is done");
    }

    #[test]
    fn parses_and_refuses_bad_steps() {
        let ok = r#"{"steps":[{"instrument":"BTC-PERPETUAL","side":"buy","amount":"30",
            "price":"bid","post_only":true,"count":3},
            {"instrument":"ETH-PERPETUAL","side":"sell","amount":"1","price":"3500.5",
            "time_in_force":"ioc"}]}"#;
        let s = Scripted::from_json(1, ok).unwrap();
        assert_eq!(s.remaining(), 2);
        assert_eq!(s.instruments().len(), 2);
        assert_eq!(s.steps[0].count, 3);
        assert_eq!(s.steps[1].price, PriceRule::Fixed(Price::from_decimal_str("3500.5").unwrap()));
        for bad in [
            r#"{"steps":[]}"#,
            r#"{"steps":[{"instrument":"BTC-PERPETUAL","side":"hold","amount":"1","price":"bid"}]}"#,
            r#"{"steps":[{"instrument":"BTC-PERPETUAL","side":"buy","amount":"0","price":"bid"}]}"#,
            r#"{"steps":[{"instrument":"BTC-PERPETUAL","side":"buy","amount":"1","price":"bid","count":17}]}"#,
            r#"{"steps":[{"instrument":"NOPE","side":"buy","amount":"1","price":"bid"}]}"#,
            r#"{"steps":[{"instrument":"BTC-PERPETUAL","side":"buy","amount":"1","price":"x"}]}"#,
            r#"{"steps":[{"instrument":"BTC-PERPETUAL","side":"buy","amount":"1","price":"bid","extra":1}]}"#,
        ] {
            assert!(Scripted::from_json(1, bad).is_err(), "{bad}");
        }
    }
}
