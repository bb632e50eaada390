//! Gate-chain behaviour: risk state and mode, preflight, lifecycle, liquidity, fees, the POLICY
//! edge gate, caps, order rate and classification. AT ids from contract digest A are in the
//! test names or docs.

mod phase1_fixtures;

use hotpath::domain::intent::{LinkedOrderType, OrderIntent, OrderType, Side, TimeInForce};
use hotpath::domain::metadata::InstrumentMeta;
use hotpath::domain::reason_codes::{RejectReasonCode as R, RiskState, TradingMode};
use hotpath::gates::{
    classify, BookView, GateChain, GateName, IntentClass, PortfolioView, PositionView,
};
use phase1_fixtures::{
    cache, context, fields, level, option_book, perp_book, policy, price, qty, usd, NOW_MS,
};

const OPTION: &str = "BTC-27DEC24-60000-C";

/// A named mutation of an intent and the code the chain must answer with.
type MutationCase = (&'static str, Box<dyn Fn(&mut hotpath::domain::intent::IntentFields)>, R);

fn option_buy() -> OrderIntent {
    OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.0455", b"k1"))
}

fn long_option(amount: &str) -> PositionView {
    PositionView { position: qty(amount), ..PositionView::default() }
}

/// AT-229: Degraded (and every other non-Healthy state) blocks opens; closes still pass.
#[test]
fn test_riskstate_not_healthy_blocks_open() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let chain = GateChain::new();
    let healthy = context(&policy, &cache, Some(&book));
    assert!(chain.evaluate(&option_buy(), &healthy).is_ok(), "control: a Healthy open passes");

    for state in [RiskState::Degraded, RiskState::Maintenance, RiskState::Kill] {
        let mut ctx = context(&policy, &cache, Some(&book));
        ctx.risk_state = state;
        let rejection = chain.evaluate(&option_buy(), &ctx).expect_err("open must be rejected");
        assert_eq!(rejection.code, R::RiskStateNotHealthy, "{state}");
        assert_eq!(rejection.gate, GateName::RiskMode);
        assert_eq!(rejection.class, Some(IntentClass::Open));
    }

    // A close of a long 1.0 is allowed while Degraded/Maintenance.
    for state in [RiskState::Degraded, RiskState::Maintenance] {
        let mut ctx = context(&policy, &cache, Some(&book));
        ctx.risk_state = state;
        ctx.position = long_option("1");
        let close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"k2"));
        let accepted = chain.evaluate(&close, &ctx).expect("close passes while not Healthy");
        assert_eq!(accepted.class, IntentClass::Close);
    }
}

/// Kill: nothing passes except emergency-close intents that really reduce (ruling 1).
#[test]
fn kill_mode_allows_only_emergency_reductions() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let chain = GateChain::new();
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.trading_mode = TradingMode::Kill;
    ctx.position = long_option("1");

    let plain_close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"k"));
    assert_eq!(chain.evaluate(&plain_close, &ctx).unwrap_err().code, R::TradingModeKill);

    let mut emergency = fields(OPTION, Side::Sell, "1", "0.045", b"k");
    emergency.emergency_close = true;
    assert!(chain.evaluate(&OrderIntent::new(emergency), &ctx).is_ok());

    // The flag does not open anything: an emergency-flagged buy on a long is an Open.
    let mut fake = fields(OPTION, Side::Buy, "1", "0.0455", b"k");
    fake.emergency_close = true;
    let rejection = chain.evaluate(&OrderIntent::new(fake), &ctx).unwrap_err();
    assert_eq!(rejection.class, Some(IntentClass::Open));
}

#[test]
fn reduce_only_mode_and_latch_block_opens_only() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let chain = GateChain::new();
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.trading_mode = TradingMode::ReduceOnly;
    assert_eq!(chain.evaluate(&option_buy(), &ctx).unwrap_err().code, R::TradingModeReduceOnly);
    ctx.position = long_option("2");
    let reduce = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"k"));
    assert_eq!(chain.evaluate(&reduce, &ctx).unwrap().class, IntentClass::Reduce);

    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.open_permission_latched = true;
    assert_eq!(chain.evaluate(&option_buy(), &ctx).unwrap_err().code, R::OpenPermissionLatched);
}

/// AT-913/914/915/916 and AT-016..019: forbidden order types never reach the venue.
#[test]
fn preflight_rejects_forbidden_order_types() {
    let (policy, cache, opt_book, perp) = (policy(), cache(), option_book(), perp_book());
    let chain = GateChain::new();
    let cases: Vec<MutationCase> = vec![
        (
            "AT-016 option market",
            Box::new(|f| f.order_type = OrderType::Market),
            R::OrderTypeMarketForbidden,
        ),
        ("limit without price", Box::new(|f| f.limit_price = None), R::OrderTypeMarketForbidden),
        (
            "market_limit",
            Box::new(|f| f.order_type = OrderType::MarketLimit),
            R::OrderTypeMarketForbidden,
        ),
        (
            "AT-018 stop_market",
            Box::new(|f| f.order_type = OrderType::StopMarket),
            R::OrderTypeStopForbidden,
        ),
        (
            "stop_limit",
            Box::new(|f| f.order_type = OrderType::StopLimit),
            R::OrderTypeStopForbidden,
        ),
        (
            "take_limit",
            Box::new(|f| f.order_type = OrderType::TakeLimit),
            R::OrderTypeStopForbidden,
        ),
        (
            "trailing",
            Box::new(|f| f.order_type = OrderType::TrailingStop),
            R::OrderTypeStopForbidden,
        ),
        (
            "trigger on limit",
            Box::new(|f| f.trigger_price = Some(price("0.05"))),
            R::OrderTypeStopForbidden,
        ),
        (
            "AT-004 OCO",
            Box::new(|f| f.linked_order_type = Some(LinkedOrderType::OneCancelsOther)),
            R::LinkedOrderTypeForbidden,
        ),
        (
            "OTOCO",
            Box::new(|f| f.linked_order_type = Some(LinkedOrderType::OneTriggersOneCancelsOther)),
            R::LinkedOrderTypeForbidden,
        ),
        (
            "post-only IOC",
            Box::new(|f| {
                f.post_only = true;
                f.time_in_force = TimeInForce::ImmediateOrCancel;
            }),
            R::OrderTypeNotAllowed,
        ),
        (
            "AT-916 post-only crossing",
            Box::new(|f| {
                f.post_only = true;
                f.limit_price = Some(price("0.0455"));
            }),
            R::PostOnlyWouldCross,
        ),
        (
            "negative price",
            Box::new(|f| f.limit_price = Some(price("-0.0455"))),
            R::LimitPriceInvalid,
        ),
        ("zero qty", Box::new(|f| f.qty = qty("0")), R::QtyNotPositive),
        ("off tick", Box::new(|f| f.limit_price = Some(price("0.04555"))), R::PriceOffTick),
        (
            "off tick above step",
            Box::new(|f| f.limit_price = Some(price("0.0453"))),
            R::PriceOffTick,
        ),
        ("off step", Box::new(|f| f.qty = qty("0.35")), R::QtyOffStep),
        ("below min", Box::new(|f| f.qty = qty("0.05")), R::TooSmallAfterQuantization),
        ("reduce-only opening", Box::new(|f| f.reduce_only = true), R::ReduceOnlyWouldIncrease),
        (
            "AT-920 contracts mismatch",
            Box::new(|f| f.contracts = Some(2)),
            R::ContractsAmountMismatch,
        ),
    ];
    for (name, mutate, expected) in &cases {
        let mut f = fields(OPTION, Side::Buy, "0.3", "0.045", b"k");
        mutate(&mut f);
        let ctx = context(&policy, &cache, Some(&opt_book));
        let rejection = chain.evaluate(&OrderIntent::new(f), &ctx).expect_err(name);
        assert_eq!(rejection.code, *expected, "{name}");
        assert_eq!(rejection.gate, GateName::Preflight, "{name}");
    }
    // AT-017 / AT-019: the same for a perpetual.
    for (order_type, expected) in [
        (OrderType::Market, R::OrderTypeMarketForbidden),
        (OrderType::StopMarket, R::OrderTypeStopForbidden),
    ] {
        let mut f = fields("BTC-PERPETUAL", Side::Buy, "100", "99999.5", b"k");
        f.order_type = order_type;
        let ctx = context(&policy, &cache, Some(&perp));
        assert_eq!(chain.evaluate(&OrderIntent::new(f), &ctx).unwrap_err().code, expected);
    }
    // Control: the unmutated intent passes, and the contracts check accepts a match.
    let ok = fields(OPTION, Side::Buy, "0.3", "0.045", b"k");
    let accepted = GateChain::new()
        .evaluate(&OrderIntent::new(ok), &context(&policy, &cache, Some(&opt_book)));
    assert!(accepted.is_ok(), "{accepted:?}");
    let mut perp_ok = fields("BTC-PERPETUAL", Side::Buy, "100", "99999.5", b"k");
    perp_ok.contracts = Some(10);
    let accepted = GateChain::new()
        .evaluate(&OrderIntent::new(perp_ok), &context(&policy, &cache, Some(&perp)));
    assert!(accepted.is_ok(), "{accepted:?}");
}

#[test]
fn contracts_mismatch_sets_degraded_flag() {
    let (policy, cache, book) = (policy(), cache(), perp_book());
    let mut f = fields("BTC-PERPETUAL", Side::Buy, "100", "99999.5", b"k");
    f.contracts = Some(11); // 11 * 10 USD != 100 USD
    let rejection = GateChain::new()
        .evaluate(&OrderIntent::new(f), &context(&policy, &cache, Some(&book)))
        .unwrap_err();
    assert_eq!(rejection.code, R::ContractsAmountMismatch);
    assert!(rejection.sets_degraded());
}

#[test]
fn unknown_instrument_is_metadata_missing() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let f = fields("BTC-27DEC24-70000-C", Side::Buy, "1", "0.045", b"k");
    let rejection = GateChain::new()
        .evaluate(&OrderIntent::new(f), &context(&policy, &cache, Some(&book)))
        .unwrap_err();
    assert_eq!(rejection.code, R::InstrumentMetadataMissing);
}

/// AT-950 (inside the 60 s buffer ⇒ reject) and AT-965 (120 s before ⇒ pass); closes pass.
#[test]
fn expiry_delist_buffer_at_950_at_965() {
    let (policy, cache) = (policy(), cache());
    let expiry_ms = 1_735_286_400_000_i64;
    let mut book = option_book();
    let chain = GateChain::new();
    for (now, expect_ok) in [(expiry_ms - 30_000, false), (expiry_ms - 120_000, true)] {
        book.last_update_ms = now - 100;
        let mut ctx = context(&policy, &cache, Some(&book));
        ctx.now_ms = now;
        ctx.fee_model_updated_ms = Some(now);
        // Metadata fetched a minute ago relative to `now`, so staleness is not what decides.
        let mut fresh = cache.clone();
        for meta in phase1_fixtures::metas(now - 60_000) {
            fresh.upsert(meta).unwrap();
        }
        ctx.instruments = &fresh;
        let verdict = chain.evaluate(&option_buy(), &ctx);
        if expect_ok {
            assert!(verdict.is_ok(), "AT-965: {verdict:?}");
        } else {
            assert_eq!(verdict.unwrap_err().code, R::InstrumentExpiredOrDelisted, "AT-950");
            ctx.position = long_option("1");
            let close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"c"));
            assert!(chain.evaluate(&close, &ctx).is_ok(), "close inside the buffer");
        }
    }
}

#[test]
fn not_yet_listed_and_inactive_instruments() {
    let (policy, book) = (policy(), option_book());
    let mut cache = cache();
    let base = *cache.get(OPTION).unwrap();
    let listed_later = InstrumentMeta::new_checked(
        base.instrument,
        base.tick_size,
        base.tick_steps(),
        base.min_trade_amount,
        base.contract_size,
        base.expiration_timestamp_ms,
        NOW_MS + 1,
        true,
        base.fetched_at_ms,
    )
    .unwrap();
    cache.upsert(listed_later).unwrap();
    let ctx = context(&policy, &cache, Some(&book));
    assert_eq!(
        GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err().code,
        R::InstrumentNotYetListed
    );

    let mut cache = phase1_fixtures::cache();
    let mut inactive = base;
    inactive.is_active = false;
    cache.upsert(inactive).unwrap();
    let ctx = context(&policy, &cache, Some(&book));
    assert_eq!(
        GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err().code,
        R::InstrumentExpiredOrDelisted
    );
}

/// AT-104: stale metadata blocks opens; close is not blocked by staleness.
#[test]
fn stale_metadata_blocks_opens_only_at_104() {
    let (policy, book) = (policy(), option_book());
    let ttl_ms = policy.data_limits.instrument_cache_ttl_s * 1_000;
    let mut cache = hotpath::domain::metadata::InstrumentCache::new();
    for meta in phase1_fixtures::metas(NOW_MS - ttl_ms - 1) {
        cache.upsert(meta).unwrap();
    }
    let mut ctx = context(&policy, &cache, Some(&book));
    assert_eq!(
        GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err().code,
        R::InstrumentMetadataStale
    );
    ctx.position = long_option("1");
    let close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"c"));
    assert!(GateChain::new().evaluate(&close, &ctx).is_ok());
    // Exactly at the TTL is still fresh.
    let mut cache = hotpath::domain::metadata::InstrumentCache::new();
    for meta in phase1_fixtures::metas(NOW_MS - ttl_ms) {
        cache.upsert(meta).unwrap();
    }
    let ctx = context(&policy, &cache, Some(&book));
    assert!(GateChain::new().evaluate(&option_buy(), &ctx).is_ok());
}

#[test]
fn allowlist_blocks_opens_not_closes() {
    let (mut policy, cache, book) = (policy(), cache(), option_book());
    policy.allowed_currencies.retain(|c| c.as_str() != "BTC");
    let mut ctx = context(&policy, &cache, Some(&book));
    assert_eq!(
        GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err().code,
        R::InstrumentNotAllowed
    );
    ctx.position = long_option("1");
    let close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"c"));
    assert!(GateChain::new().evaluate(&close, &ctx).is_ok());
}

/// AT-909 / AT-344 and the Stoic book-quality codes: opens blocked; reductions pass with the
/// verdict recorded (ruling 7).
#[test]
fn liquidity_gate_blocks_opens_records_for_reductions() {
    let (policy, cache) = (policy(), cache());
    let fresh = option_book();
    let mut stale = fresh;
    stale.last_update_ms = NOW_MS - policy.data_limits.l2_book_snapshot_max_age_ms - 1;
    let mut gapped = fresh;
    gapped.gapped = true;
    let wide = BookView::from_levels(
        phase1_fixtures::name(OPTION),
        &[level("0.03", "10")],
        &[level("0.0455", "10")],
        NOW_MS,
        false,
    );
    let thin = BookView::from_levels(
        phase1_fixtures::name(OPTION),
        &[level("0.045", "10")],
        &[level("0.0455", "0.2")],
        NOW_MS,
        false,
    );
    let sweep = BookView::from_levels(
        phase1_fixtures::name(OPTION),
        &[level("0.045", "10")],
        &[level("0.0455", "0.2"), level("0.047", "10")],
        NOW_MS,
        false,
    );
    let cases: [(Option<&BookView>, &str, R); 6] = [
        (None, "0.0455", R::LiquidityGateNoL2),
        (Some(&stale), "0.0455", R::LiquidityGateNoL2),
        (Some(&gapped), "0.0455", R::LiquidityGateBookGapped),
        (Some(&wide), "0.0455", R::LiquidityGateSpreadTooWide),
        (Some(&thin), "0.0455", R::LiquidityGateDepthTooThin),
        (Some(&sweep), "0.047", R::ExpectedSlippageTooHigh),
    ];
    for (book, limit, expected) in cases {
        let ctx = context(&policy, &cache, book);
        let open = OrderIntent::new(fields(OPTION, Side::Buy, "0.3", limit, b"o"));
        let rejection = GateChain::new().evaluate(&open, &ctx).unwrap_err();
        assert_eq!((rejection.code, rejection.gate), (expected, GateName::Liquidity));

        let mut ctx = context(&policy, &cache, book);
        ctx.position = PositionView { position: qty("-0.3"), ..PositionView::default() };
        let cover = OrderIntent::new(fields(OPTION, Side::Buy, "0.3", limit, b"r"));
        let accepted = GateChain::new().evaluate(&cover, &ctx).expect("reduction passes");
        assert_eq!(accepted.class, IntentClass::Close);
        assert_eq!(accepted.advisory, Some(expected));
    }
    // A resting (non-marketable) buy below the ask is not a sweep.
    let ctx = context(&policy, &cache, Some(&thin));
    let resting = OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.0450", b"o"));
    assert!(GateChain::new().evaluate(&resting, &ctx).is_ok());
}

#[test]
fn fee_staleness_blocks_opens() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.fee_model_updated_ms = Some(NOW_MS - policy.data_limits.fee_cache_hard_s * 1_000 - 1);
    let rejection = GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err();
    assert_eq!((rejection.code, rejection.gate), (R::FeeCacheStale, GateName::FeeStaleness));
    ctx.fee_model_updated_ms = None;
    assert_eq!(GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err().code, R::FeeCacheStale);
    ctx.position = long_option("1");
    let close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"c"));
    assert!(GateChain::new().evaluate(&close, &ctx).is_ok());
}

/// AT-015 / AT-932 / AT-327: edge is a POLICY gate with its version in the reject; never
/// blocks a reduction.
#[test]
fn edge_gate_is_policy_versioned_and_never_blocks_reductions() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.edge = Some(hotpath::gates::EdgeInputs {
        gross_edge_usd: Some(usd("5")),
        fee_usd: Some(usd("5")),
        expected_slippage_usd: Some(usd("1")),
    });
    let rejection = GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err();
    assert_eq!((rejection.code, rejection.gate), (R::NetEdgeTooLow, GateName::EdgePolicy));
    assert_eq!(rejection.edge_policy_version, Some(policy.edge_policy.version));
    ctx.edge = None;
    assert_eq!(
        GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err().code,
        R::NetEdgeInputMissing
    );
    ctx.position = long_option("1");
    let close = OrderIntent::new(fields(OPTION, Side::Sell, "1", "0.045", b"c"));
    assert!(GateChain::new().evaluate(&close, &ctx).is_ok());
}

#[test]
fn caps_notional_position_gross_and_daily_loss() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let chain = GateChain::new();
    // 0.6 BTC at index 100 000 = 60 000 USD > 50 000 cap.
    let ctx = context(&policy, &cache, Some(&book));
    let big = OrderIntent::new(fields(OPTION, Side::Buy, "0.6", "0.045", b"b"));
    assert_eq!(chain.evaluate(&big, &ctx).unwrap_err().code, R::OrderNotionalTooLarge);
    // Position cap 5 BTC: long 4.8 + pending 0.1 + 0.2 > 5.
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.position =
        PositionView { position: qty("4.8"), pending_buy: qty("0.1"), pending_sell: qty("0") };
    let small = OrderIntent::new(fields(OPTION, Side::Buy, "0.2", "0.045", b"s"));
    assert_eq!(chain.evaluate(&small, &ctx).unwrap_err().code, R::PositionLimitExceeded);
    // Gross notional: 490 000 + 5 000 pending + 10 000 > 500 000.
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.portfolio = PortfolioView {
        gross_notional_usd: usd("490000"),
        pending_notional_usd: usd("5000"),
        daily_pnl_usd: usd("0"),
    };
    let tenk = OrderIntent::new(fields(OPTION, Side::Buy, "0.1", "0.045", b"t"));
    assert_eq!(chain.evaluate(&tenk, &ctx).unwrap_err().code, R::PositionLimitExceeded);
    // Daily loss reached.
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.portfolio.daily_pnl_usd = usd("-5000");
    assert_eq!(chain.evaluate(&option_buy(), &ctx).unwrap_err().code, R::DailyLossLimitBreached);
    // Coin-sized open without an index price cannot be bounded.
    let mut ctx = context(&policy, &cache, Some(&book));
    ctx.index_price = None;
    assert_eq!(chain.evaluate(&option_buy(), &ctx).unwrap_err().code, R::IndexPriceMissing);
    // USD-sized perp: notional is the amount itself (50 010 > 50 000).
    let perp = perp_book();
    let ctx = context(&policy, &cache, Some(&perp));
    let over = OrderIntent::new(fields("BTC-PERPETUAL", Side::Buy, "50010", "99999.5", b"p"));
    assert_eq!(chain.evaluate(&over, &ctx).unwrap_err().code, R::OrderNotionalTooLarge);
    let under = OrderIntent::new(fields("BTC-PERPETUAL", Side::Buy, "50000", "99999.5", b"p"));
    assert_eq!(chain.evaluate(&under, &ctx).unwrap().notional_usd, Some(usd("50000")));
}

#[test]
fn order_rate_bucket_limits_and_refills() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let chain = GateChain::new();
    let mut ctx = context(&policy, &cache, Some(&book));
    let burst = policy.risk_limits.order_rate_burst;
    for i in 0..burst {
        let accepted =
            chain.evaluate(&option_buy(), &ctx).unwrap_or_else(|r| panic!("intent {i}: {r:?}"));
        ctx.order_rate = accepted.order_rate_after;
    }
    let rejection = chain.evaluate(&option_buy(), &ctx).unwrap_err();
    assert_eq!((rejection.code, rejection.gate), (R::OrderRateLimitExceeded, GateName::OrderRate));
    // 120/min ⇒ one token per 500 ms.
    ctx.now_ms += 499;
    ctx.book = None;
    let mut book2 = book;
    book2.last_update_ms = ctx.now_ms;
    ctx.book = Some(&book2);
    assert_eq!(chain.evaluate(&option_buy(), &ctx).unwrap_err().code, R::OrderRateLimitExceeded);
    ctx.now_ms += 1;
    assert!(chain.evaluate(&option_buy(), &ctx).is_ok());
    // A clock that went backwards mints nothing.
    let empty = ctx.order_rate;
    assert_eq!(empty.refilled(NOW_MS - 10_000, 120, burst), empty);
}

#[test]
fn classification_is_computed_from_position_and_pending() {
    let view = |p: &str, pb: &str, ps: &str| PositionView {
        position: qty(p),
        pending_buy: qty(pb),
        pending_sell: qty(ps),
    };
    let cases = [
        (Side::Buy, "1", view("0", "0", "0"), IntentClass::Open),
        (Side::Sell, "1", view("0", "0", "0"), IntentClass::Open),
        (Side::Sell, "1", view("2", "0", "0"), IntentClass::Reduce),
        (Side::Sell, "2", view("2", "0", "0"), IntentClass::Close),
        (Side::Sell, "3", view("2", "0", "0"), IntentClass::Open), // flip
        (Side::Sell, "1", view("2", "0", "1"), IntentClass::Close), // pending sell counts first
        (Side::Sell, "2", view("2", "0", "1"), IntentClass::Open),
        (Side::Buy, "1", view("-2", "0", "0"), IntentClass::Reduce),
        (Side::Buy, "1", view("-2", "1", "0"), IntentClass::Close),
        (Side::Buy, "1", view("2", "0", "0"), IntentClass::Open),
    ];
    for (side, amount, position, expected) in cases {
        assert_eq!(
            classify(side, qty(amount), &position),
            expected,
            "{side:?} {amount} vs {position:?}"
        );
    }
}

mod properties {
    use super::*;
    use hotpath::domain::units::{Price, Qty};
    use hotpath::gates::BookLevel;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

        /// Any intent against any book and position: the chain never panics, an accepted open
        /// respects the notional cap, and an accepted intent under ReduceOnly is reducing.
        #[test]
        fn chain_never_panics_and_accepts_only_within_caps(
            qty_raw in -1_000_000_000_i64..10_000_000_000_000,
            price_raw in -1_000_000_i64..10_000_000_000,
            position_raw in -100_000_000_000_i64..100_000_000_000,
            pending_raw in 0_i64..10_000_000_000,
            bid_raw in 1_i64..10_000_000, spread_raw in 0_i64..1_000_000,
            depth_raw in 0_i64..10_000_000_000,
            buy in any::<bool>(), post_only in any::<bool>(), reduce_only in any::<bool>(), reduce_mode in any::<bool>(),
        ) {
            let (policy, cache) = (policy(), cache());
            let book = BookView::from_levels(
                phase1_fixtures::name(OPTION),
                &[BookLevel { price: Price::from_raw(bid_raw), qty: Qty::from_raw(depth_raw) }],
                &[BookLevel { price: Price::from_raw(bid_raw + spread_raw), qty: Qty::from_raw(depth_raw) }],
                NOW_MS - 10,
                false,
            );
            let mut f = fields(OPTION, if buy { Side::Buy } else { Side::Sell }, "0.3", "0.045", b"p");
            f.qty = Qty::from_raw(qty_raw);
            f.limit_price = Some(Price::from_raw(price_raw));
            f.post_only = post_only;
            f.reduce_only = reduce_only;
            let mut ctx = context(&policy, &cache, Some(&book));
            ctx.position = PositionView { position: Qty::from_raw(position_raw), pending_buy: Qty::from_raw(pending_raw), pending_sell: Qty::from_raw(pending_raw) };
            if reduce_mode {
                ctx.trading_mode = TradingMode::ReduceOnly;
            }
            let intent = OrderIntent::new(f);
            match GateChain::new().evaluate(&intent, &ctx) {
                Ok(accepted) => {
                    prop_assert_eq!(accepted.class, classify(f.side, f.qty, &ctx.position));
                    if accepted.class == IntentClass::Open {
                        prop_assert!(!reduce_mode);
                        prop_assert!(accepted.notional_usd.is_some_and(|n| n <= policy.risk_limits.max_order_notional_usd));
                    }
                }
                Err(rejection) => {
                    if let Some(class) = rejection.class {
                        prop_assert_eq!(class, classify(f.side, f.qty, &ctx.position));
                    }
                }
            }
        }
    }
}

/// A book of another instrument is ignored: it cannot approve (or veto) this instrument's order.
#[test]
fn book_of_another_instrument_counts_as_no_book() {
    let (policy, cache) = (policy(), cache());
    let mut wrong = option_book();
    wrong.instrument = phase1_fixtures::name("BTC-27DEC24-100000-P");
    let ctx = context(&policy, &cache, Some(&wrong));
    let rejection = GateChain::new().evaluate(&option_buy(), &ctx).unwrap_err();
    assert_eq!((rejection.code, rejection.gate), (R::LiquidityGateNoL2, GateName::Liquidity));
}
