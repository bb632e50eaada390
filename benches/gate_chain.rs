//! Gate chain cost per intent: a fully accepted open (every gate runs), a reduction that passes
//! with a liquidity advisory, and an early preflight reject.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use hotpath::domain::instrument::Instrument;
use hotpath::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta, TickStep};
use hotpath::domain::policy::Policy;
use hotpath::domain::reason_codes::{RiskState, TradingMode};
use hotpath::domain::units::{Price, Qty, Usd};
use hotpath::gates::{
    BookLevel, BookView, EdgeInputs, GateChain, GateContext, OrderRateBucket, PolicySlot,
    PortfolioView, PositionView,
};

const NOW_MS: i64 = 1_733_011_200_000;
const OPTION: &str = "BTC-27DEC24-60000-C";

fn price(text: &str) -> Price {
    Price::from_decimal_str(text).expect("price")
}
fn qty(text: &str) -> Qty {
    Qty::from_decimal_str(text).expect("qty")
}

fn intent(side: Side, amount: &str, limit: &str, order_type: OrderType) -> OrderIntent {
    let strategy_id = StrategyId::new_checked("strangle_btc_low_vol").expect("id");
    OrderIntent::new(IntentFields {
        strategy_id,
        group_id: GroupId::derive(&strategy_id, b"bench"),
        leg_index: 0,
        instrument: Instrument::parse(OPTION).expect("instrument"),
        side,
        order_type,
        time_in_force: TimeInForce::GoodTilCancelled,
        post_only: false,
        reduce_only: false,
        linked_order_type: None,
        trigger_price: None,
        qty: qty(amount),
        limit_price: Some(price(limit)),
        contracts: None,
        emergency_close: false,
    })
}

fn bench(c: &mut Criterion) {
    let policy_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.json");
    let policy = Policy::load_from_path(&policy_path).expect("config/policy.json");
    let mut cache = InstrumentCache::new();
    let meta = InstrumentMeta::new_checked(
        Instrument::parse(OPTION).expect("instrument"),
        price("0.0001"),
        &[TickStep { above_price: price("0.005"), tick_size: price("0.0005") }],
        qty("0.1"),
        qty("1"),
        Some(1_735_286_400_000),
        0,
        true,
        NOW_MS - 60_000,
    )
    .expect("meta");
    cache.upsert(meta).expect("room");
    let level = |p: &str, q: &str| BookLevel { price: price(p), qty: qty(q) };
    let book = BookView::from_levels(
        Instrument::parse(OPTION).expect("instrument").name(),
        &[level("0.045", "10"), level("0.0445", "5")],
        &[level("0.0455", "10"), level("0.046", "5")],
        NOW_MS - 100,
        false,
    );
    let usd = |text: &str| Usd::from_decimal_str(text).expect("usd");
    let ctx = GateContext {
        now_ms: NOW_MS,
        policy: PolicySlot::Loaded(&policy),
        instruments: &cache,
        book: Some(&book),
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
    };
    let chain = GateChain::new();

    let open = intent(Side::Buy, "0.3", "0.0455", OrderType::Limit);
    assert!(chain.evaluate(&open, &ctx).is_ok(), "bench fixture: open must pass every gate");
    c.bench_function("gate_chain/accepted_open_all_gates", |b| {
        b.iter(|| chain.evaluate(black_box(&open), black_box(&ctx)));
    });

    let mut reducing_ctx = ctx;
    reducing_ctx.position = PositionView { position: qty("1"), ..PositionView::default() };
    reducing_ctx.book = None;
    let close = intent(Side::Sell, "0.5", "0.045", OrderType::Limit);
    assert!(chain.evaluate(&close, &reducing_ctx).is_ok_and(|a| a.advisory.is_some()));
    c.bench_function("gate_chain/reduce_with_liquidity_advisory", |b| {
        b.iter(|| chain.evaluate(black_box(&close), black_box(&reducing_ctx)));
    });

    let market = intent(Side::Buy, "0.3", "0.0455", OrderType::Market);
    assert!(chain.evaluate(&market, &ctx).is_err());
    c.bench_function("gate_chain/preflight_reject_market", |b| {
        b.iter(|| chain.evaluate(black_box(&market), black_box(&ctx)));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
