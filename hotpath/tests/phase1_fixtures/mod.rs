//! Shared fixtures for the phase-1 and domain tests: the real `config/policy.json`, a small
//! instrument universe decoded through the venue-JSON boundary, books, and a healthy context.
//! Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::PathBuf;

use hotpath::domain::instrument::Instrument;
use hotpath::domain::intent::{GroupId, IntentFields, OrderType, Side, StrategyId, TimeInForce};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::policy::Policy;
use hotpath::domain::reason_codes::{RiskState, TradingMode};
use hotpath::domain::units::{Price, Qty, Usd};
use hotpath::gates::{
    BookLevel, BookView, EdgeInputs, GateContext, OrderRateBucket, PolicySlot, PortfolioView,
    PositionView,
};

/// 2024-12-01T00:00:00Z: every fixture instrument is listed and unexpired at this instant.
pub const NOW_MS: i64 = 1_733_011_200_000;

/// The repository root (evidence and config paths hang off it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Writes an evidence file (creating its folder); content must be deterministic.
pub fn write_evidence(relative: &str, content: &str) {
    let path = repo_root().join(relative);
    let folder = path.parent().expect("evidence path has a parent");
    std::fs::create_dir_all(folder).expect("create evidence folder");
    std::fs::write(&path, content).expect("write evidence file");
}

/// `config/policy.json` as text.
pub fn policy_text() -> String {
    std::fs::read_to_string(repo_root().join("config/policy.json"))
        .expect("config/policy.json readable")
}

/// The real policy, loaded strictly.
pub fn policy() -> Policy {
    Policy::from_json_str(&policy_text()).expect("config/policy.json is valid")
}

/// `public/get_instruments` objects for the fixture universe, in the venue's field spelling.
pub fn instruments_json() -> Vec<serde_json::Value> {
    let option = |name: &str, strike: u64, kind: &str| {
        serde_json::json!({
            "instrument_name": name, "kind": "option", "instrument_type": "reversed",
            "tick_size": 0.0001, "tick_size_steps": [{"above_price": 0.005, "tick_size": 0.0005}],
            "min_trade_amount": 0.1, "contract_size": 1, "strike": strike, "option_type": kind,
            "expiration_timestamp": 1_735_286_400_000_i64, "creation_timestamp": 1_727_337_600_000_i64,
            "is_active": true, "base_currency": "BTC", "quote_currency": "BTC"
        })
    };
    vec![
        option("BTC-27DEC24-60000-C", 60_000, "call"),
        option("BTC-27DEC24-100000-P", 100_000, "put"),
        serde_json::json!({
            "instrument_name": "BTC-PERPETUAL", "kind": "future", "instrument_type": "reversed",
            "tick_size": 0.5, "tick_size_steps": [], "min_trade_amount": 10, "contract_size": 10,
            "expiration_timestamp": 32_503_708_800_000_i64, "creation_timestamp": 1_534_242_287_000_i64,
            "is_active": true, "settlement_period": "perpetual"
        }),
        serde_json::json!({
            "instrument_name": "ETH-27DEC24", "kind": "future", "instrument_type": "reversed",
            "tick_size": 0.05, "min_trade_amount": 1, "contract_size": 1,
            "expiration_timestamp": 1_735_286_400_000_i64, "creation_timestamp": 1_719_475_200_000_i64,
            "is_active": true
        }),
        serde_json::json!({
            "instrument_name": "BTC_USDC-PERPETUAL", "kind": "future", "instrument_type": "linear",
            "tick_size": 1, "min_trade_amount": 0.001, "contract_size": 0.001,
            "expiration_timestamp": 32_503_708_800_000_i64, "creation_timestamp": 1_650_000_000_000_i64,
            "is_active": true
        }),
        serde_json::json!({
            "instrument_name": "ETH-28MAR25-3500-P", "kind": "option", "instrument_type": "reversed",
            "tick_size": 0.0001, "tick_size_steps": [{"above_price": 0.005, "tick_size": 0.0005}],
            "min_trade_amount": 1, "contract_size": 1,
            "expiration_timestamp": 1_743_148_800_000_i64, "creation_timestamp": 1_727_337_600_000_i64,
            "is_active": true
        }),
    ]
}

/// Decoded metadata, fetched at `fetched_at_ms`.
pub fn metas(fetched_at_ms: i64) -> Vec<InstrumentMeta> {
    instruments_json()
        .iter()
        .map(|v| {
            InstrumentMeta::from_venue_json(v, fetched_at_ms).expect("fixture metadata decodes")
        })
        .collect()
}

/// A cache holding every fixture instrument, fetched a minute before [`NOW_MS`].
pub fn cache() -> InstrumentCache {
    let mut cache = InstrumentCache::new();
    for meta in metas(NOW_MS - 60_000) {
        cache.upsert(meta).expect("cache has room");
    }
    cache
}

pub fn price(text: &str) -> Price {
    Price::from_decimal_str(text).expect("fixture price")
}

pub fn qty(text: &str) -> Qty {
    Qty::from_decimal_str(text).expect("fixture qty")
}

pub fn usd(text: &str) -> Usd {
    Usd::from_decimal_str(text).expect("fixture usd")
}

pub fn level(p: &str, q: &str) -> BookLevel {
    BookLevel { price: price(p), qty: qty(q) }
}

/// A validated instrument name.
pub fn name(text: &str) -> hotpath::domain::instrument::InstrumentName {
    Instrument::parse(text).expect("fixture instrument").name()
}

/// A fresh, tight BTC option book: 0.0450/0.0455.
pub fn option_book() -> BookView {
    BookView::from_levels(
        name("BTC-27DEC24-60000-C"),
        &[level("0.045", "10"), level("0.0445", "5")],
        &[level("0.0455", "10"), level("0.046", "5")],
        NOW_MS - 100,
        false,
    )
}

/// A fresh BTC-PERPETUAL book: 99 999.5 / 100 000.
pub fn perp_book() -> BookView {
    BookView::from_levels(
        name("BTC-PERPETUAL"),
        &[level("99999.5", "500000"), level("99999", "500000")],
        &[level("100000", "500000"), level("100000.5", "500000")],
        NOW_MS - 100,
        false,
    )
}

pub fn strategy() -> StrategyId {
    StrategyId::new_checked("strangle_btc_low_vol").expect("strategy id")
}

/// Limit GTC fields with no flags, group derived from `decision_key`.
pub fn fields(instrument: &str, side: Side, q: &str, p: &str, decision_key: &[u8]) -> IntentFields {
    let strategy_id = strategy();
    IntentFields {
        strategy_id,
        group_id: GroupId::derive(&strategy_id, decision_key),
        leg_index: 0,
        instrument: Instrument::parse(instrument).expect("fixture instrument"),
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::GoodTilCancelled,
        post_only: false,
        reduce_only: false,
        linked_order_type: None,
        trigger_price: None,
        qty: qty(q),
        limit_price: Some(price(p)),
        contracts: None,
        emergency_close: false,
    }
}

/// A healthy context around `policy`, `cache` and `book`: fresh fees, ample edge, flat book.
pub fn context<'a>(
    policy: &'a Policy,
    cache: &'a InstrumentCache,
    book: Option<&'a BookView>,
) -> GateContext<'a> {
    GateContext {
        now_ms: NOW_MS,
        policy: PolicySlot::Loaded(policy),
        instruments: cache,
        book,
        index_price: Some(price("100000")),
        position: PositionView::default(),
        portfolio: PortfolioView::default(),
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
    }
}

/// Everything an intent can change once accepted, as the tests model the commit step:
/// exposure reservation, the order-rate bucket, the outbound order list and the WAL.
///
/// EXTENSION POINT (WAL / dispatch): `wal_records` and `open_orders` stand in for
/// `hotpath::wal`'s intent ledger and dispatch's open-order table, which other engineers own.
/// When they land, `commit` appends to the real WAL (then dispatches) and `snapshot` includes
/// the WAL length/last sequence and the open-order count; the no-side-effect tests then cover
/// them without other changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub exposure: hotpath::gates::ExposureBook,
    pub order_rate: OrderRateBucket,
    pub open_orders: Vec<String>,
    pub wal_records: Vec<Vec<u8>>,
}

impl Ledger {
    pub fn new(order_rate: OrderRateBucket) -> Self {
        Self {
            exposure: hotpath::gates::ExposureBook::new(),
            order_rate,
            open_orders: Vec::new(),
            wal_records: Vec::new(),
        }
    }

    /// The pipeline after the gates: only an `Accepted` reaches here.
    pub fn commit(
        &mut self,
        intent: &hotpath::domain::intent::OrderIntent,
        accepted: &hotpath::gates::Accepted,
    ) {
        self.wal_records.push(intent.canonical_bytes().as_bytes().to_vec());
        self.exposure.reserve(accepted);
        self.order_rate = accepted.order_rate_after;
        self.open_orders.push(accepted.label.as_str().to_owned());
    }

    /// Gate, then commit if accepted.
    pub fn submit(
        &mut self,
        intent: &hotpath::domain::intent::OrderIntent,
        ctx: &GateContext<'_>,
    ) -> Result<hotpath::gates::Accepted, hotpath::gates::Rejection> {
        let mut ctx = *ctx;
        ctx.order_rate = self.order_rate;
        ctx.position = self.exposure.view(intent.fields().instrument.name().as_str());
        ctx.portfolio = self.exposure.portfolio();
        let verdict = hotpath::gates::GateChain::new().evaluate(intent, &ctx);
        if let Ok(accepted) = &verdict {
            self.commit(intent, accepted);
        }
        verdict
    }
}
