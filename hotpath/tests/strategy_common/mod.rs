//! Shared fixtures of the strategy tests: real metadata (from the venue sample of
//! `public/get_instruments`), the real `config/policy.json`, books, and a loopback "engine"
//! that keeps the strategy's open orders the way the pipeline does (a place rests until
//! cancelled, a cancel removes it).
#![allow(dead_code)]

use std::path::PathBuf;

use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::OrderIntent;
use hotpath::domain::label::Label;
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::policy::Policy;
use hotpath::domain::reason_codes::{RiskState, TradingMode};
use hotpath::domain::units::{Price, Qty, Usd};
use hotpath::gates::{
    Accepted, BookLevel, BookView, EdgeInputs, ExposureBook, GateChain, GateContext,
    OrderRateBucket, PolicySlot, Rejection,
};
use hotpath::strategy::{
    ActionBuffer, IndexPrices, MarketSnapshot, OpenOrderView, PositionsSnapshot, Strategy,
    StrategyAction,
};

/// The fixture snapshot's venue time (2025-07-10): both fixture calls are listed and live.
pub const NOW_MS: i64 = 1_752_139_804_003;
pub const K1: &str = "BTC-25JUL25-100000-C";
pub const K2: &str = "BTC-25JUL25-110000-C";
pub const PUT: &str = "BTC-25JUL25-95000-P";

pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn policy() -> Policy {
    Policy::load_from_path(&repo_root().join("config/policy.json")).expect("config/policy.json")
}

/// The venue sample's instruments plus a 100000 call of the same expiry (same fields as the
/// sample's 110000 call, strike and name changed), fetched a minute before [`NOW_MS`].
pub fn cache() -> InstrumentCache {
    let path = repo_root().join("tests/fixtures/venue_samples/get_instruments_option_btc.json");
    let text = std::fs::read_to_string(path).expect("venue sample");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let list = doc["result"].as_array_mut().expect("result array");
    let mut k1 = list.iter().find(|v| v["instrument_name"] == K2).expect("110000 call").clone();
    k1["instrument_name"] = K1.into();
    k1["strike"] = 100_000.into();
    list.push(k1);
    let mut cache = InstrumentCache::new();
    cache.load_get_instruments(&doc, NOW_MS - 60_000).expect("metadata loads");
    cache
}

pub fn meta<'a>(cache: &'a InstrumentCache, name: &str) -> &'a InstrumentMeta {
    cache.get(name).expect("fixture instrument")
}

pub fn name(text: &str) -> InstrumentName {
    Instrument::parse(text).expect("instrument").name()
}

pub fn px(text: &str) -> Price {
    Price::from_decimal_str(text).expect("price")
}

pub fn qty(text: &str) -> Qty {
    Qty::from_decimal_str(text).expect("qty")
}

pub fn lvl(p: &str, q: &str) -> BookLevel {
    BookLevel { price: px(p), qty: qty(q) }
}

/// A fresh two-level book with the given top.
pub fn book(instrument: &str, bid: &str, ask: &str) -> BookView {
    book_at(instrument, bid, ask, NOW_MS - 50)
}

/// A two-level book with the given top, last updated at `updated_ms`.
pub fn book_at(instrument: &str, bid: &str, ask: &str, updated_ms: i64) -> BookView {
    levels_at(instrument, px(bid), px(ask), updated_ms)
}

/// A two-level book from raw prices.
pub fn levels_at(instrument: &str, b: Price, a: Price, updated_ms: i64) -> BookView {
    let tick = px("0.0005").raw();
    BookView::from_levels(
        name(instrument),
        &[
            BookLevel { price: b, qty: qty("10") },
            BookLevel { price: Price::from_raw(b.raw() - tick), qty: qty("20") },
        ],
        &[
            BookLevel { price: a, qty: qty("10") },
            BookLevel { price: Price::from_raw(a.raw() + tick), qty: qty("20") },
        ],
        updated_ms,
        false,
    )
}

pub fn index() -> IndexPrices {
    IndexPrices { btc: Some(px("110000")), eth: None }
}

/// The strategy's world as the engine would keep it, minus the venue.
#[derive(Debug, Default)]
pub struct Loopback {
    pub exposure: ExposureBook,
    pub open_orders: Vec<OpenOrderView>,
}

impl Loopback {
    /// Runs one tick and applies its actions as a loopback venue would (every place rests,
    /// every cancel succeeds). Returns the actions.
    pub fn tick(
        &mut self,
        strategy: &mut dyn Strategy,
        cache: &InstrumentCache,
        books: &[BookView],
        now_ms: i64,
    ) -> Vec<StrategyAction> {
        self.tick_bounded(strategy, cache, books, now_ms, 64)
    }

    /// [`Self::tick`] with an output buffer of `capacity` actions.
    pub fn tick_bounded(
        &mut self,
        strategy: &mut dyn Strategy,
        cache: &InstrumentCache,
        books: &[BookView],
        now_ms: i64,
        capacity: usize,
    ) -> Vec<StrategyAction> {
        let mut sorted = books.to_vec();
        sorted.sort_by_key(|b| b.instrument);
        let mut out = ActionBuffer::with_capacity(capacity);
        let market = MarketSnapshot { now_ms, instruments: cache, books: &sorted, index: index() };
        let positions =
            PositionsSnapshot { exposure: &self.exposure, open_orders: &self.open_orders };
        strategy.on_tick(&market, &positions, &mut out);
        let actions: Vec<StrategyAction> = out.as_slice().to_vec();
        for action in &actions {
            match action {
                StrategyAction::Place(intent) => {
                    let f = intent.fields();
                    self.open_orders.push(OpenOrderView {
                        label: Label::for_intent(intent).expect("label"),
                        instrument: f.instrument.name(),
                        side: f.side,
                        price: f.limit_price.expect("limit"),
                        remaining: f.qty,
                    });
                }
                StrategyAction::Cancel(label) => self.open_orders.retain(|o| o.label != *label),
            }
        }
        self.open_orders.sort_by(|a, b| a.label.as_str().cmp(b.label.as_str()));
        actions
    }
}

pub fn places(actions: &[StrategyAction]) -> Vec<OrderIntent> {
    actions
        .iter()
        .filter_map(|a| match a {
            StrategyAction::Place(i) => Some(*i),
            StrategyAction::Cancel(_) => None,
        })
        .collect()
}

pub fn cancels(actions: &[StrategyAction]) -> Vec<Label> {
    actions
        .iter()
        .filter_map(|a| match a {
            StrategyAction::Cancel(l) => Some(*l),
            StrategyAction::Place(_) => None,
        })
        .collect()
}

/// Canonical bytes of every place and the text of every cancel, in order: what "the same
/// intents" means.
pub fn transcript(actions: &[StrategyAction]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .map(|a| match a {
            StrategyAction::Place(i) => i.canonical_bytes().as_bytes().to_vec(),
            StrategyAction::Cancel(l) => l.as_str().as_bytes().to_vec(),
        })
        .collect()
}

/// Gates an intent in a healthy context with the real policy, the intent's own book and the
/// loopback's exposure.
pub fn gate(
    policy: &Policy,
    cache: &InstrumentCache,
    exposure: &ExposureBook,
    books: &[BookView],
    intent: &OrderIntent,
) -> Result<Accepted, Rejection> {
    let usd = |t: &str| Usd::from_decimal_str(t).expect("usd");
    let instrument = intent.fields().instrument.name();
    let ctx = GateContext {
        now_ms: NOW_MS,
        policy: PolicySlot::Loaded(policy),
        instruments: cache,
        book: books.iter().find(|b| b.instrument == instrument),
        index_price: Some(px("110000")),
        position: exposure.view(instrument.as_str()),
        portfolio: exposure.portfolio(),
        fee_model_updated_ms: Some(NOW_MS - 1_000),
        edge: Some(EdgeInputs {
            gross_edge_usd: Some(usd("50")),
            fee_usd: Some(usd("5")),
            expected_slippage_usd: Some(usd("1")),
        }),
        risk_state: RiskState::Healthy,
        trading_mode: TradingMode::Active,
        open_permission_latched: false,
        order_rate: OrderRateBucket::full(policy.risk_limits.order_rate_burst, NOW_MS),
    };
    GateChain::new().evaluate(intent, &ctx)
}
