//! Groups pass the gates as a unit and hold their reservation until terminal, so two groups
//! that each fit a cap cannot breach it together (contract A §5.13, AT-225/AT-910).

use super::*;
use hotpath::domain::intent::{IntentFields, OrderType, Side, StrategyId, TimeInForce};
use hotpath::domain::units::FIXED_SCALE;
use hotpath::gates::market::BookLevel;

/// 2026-01-01 00:00 UTC.
const NOW: i64 = 1_767_225_600_000;
/// 2026-12-25 08:00 UTC.
const EXPIRY: i64 = 1_798_185_600_000;
const K1: &str = "BTC-25DEC26-100000-C";
const K2: &str = "BTC-25DEC26-110000-C";

fn policy(gross_cap_usd: u32) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.json"),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data_limits"]["max_spread_bps_open"] = 2_000.into();
    v["risk_limits"]["max_gross_notional_usd"] = gross_cap_usd.into();
    Policy::from_json_str(&v.to_string())
}

fn instruments() -> InstrumentCache {
    let option = |name: &str, strike: u64| {
        serde_json::json!({
            "instrument_name": name, "kind": "option", "instrument_type": "reversed",
            "tick_size": 0.0001, "tick_size_steps": [{"above_price": 0.005, "tick_size": 0.0005}],
            "min_trade_amount": 0.1, "contract_size": 1, "strike": strike, "option_type": "call",
            "expiration_timestamp": EXPIRY, "creation_timestamp": NOW - 86_400_000,
            "is_active": true, "base_currency": "BTC", "quote_currency": "BTC"
        })
    };
    let mut cache = InstrumentCache::new();
    let listing = serde_json::json!({ "result": [option(K1, 100_000), option(K2, 110_000)] });
    cache.load_get_instruments(&listing, NOW - 60_000).unwrap();
    cache
}

fn price(coin: &str) -> Price {
    Price::from_raw((coin.parse::<f64>().unwrap() * 1e8).round() as i64)
}

fn book(name: &str, bid: &str, ask: &str) -> BookView {
    let level = |p: &str| BookLevel { price: price(p), qty: Qty::from_raw(5 * FIXED_SCALE) };
    BookView::from_levels(
        Instrument::parse(name).unwrap().name(),
        &[level(bid)],
        &[level(ask)],
        NOW - 10,
        false,
    )
}

/// A vertical: buy 0.1 K1 at its ask, sell 0.1 K2 at its bid; `attempt` makes the group id.
fn vertical(cache: &InstrumentCache, attempt: u8) -> Vec<OrderIntent> {
    let sid = StrategyId::new_checked("vertical").unwrap();
    let gid = GroupId::derive(&sid, &[attempt]);
    let leg = |i: u8, name: &str, side: Side, limit: &str| {
        let meta = cache.get(name).unwrap();
        let f = IntentFields {
            strategy_id: sid,
            group_id: gid,
            leg_index: i,
            instrument: meta.instrument,
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::ImmediateOrCancel,
            post_only: false,
            reduce_only: false,
            linked_order_type: None,
            trigger_price: None,
            qty: Qty::from_raw(FIXED_SCALE / 10),
            limit_price: Some(price(limit)),
            contracts: None,
            emergency_close: false,
        };
        OrderIntent::new_quantized(f, Some(meta)).unwrap()
    };
    vec![leg(0, K1, Side::Buy, "0.1100"), leg(1, K2, Side::Sell, "0.0700")]
}

struct Fixture {
    policy: Result<Policy, PolicyError>,
    cache: InstrumentCache,
    books: Vec<BookView>,
    index: IndexPrices,
}

impl Fixture {
    fn new(gross_cap_usd: u32) -> Self {
        Self {
            policy: policy(gross_cap_usd),
            cache: instruments(),
            books: vec![book(K1, "0.1000", "0.1100"), book(K2, "0.0700", "0.0780")],
            index: IndexPrices { btc: Some(Price::from_raw(100_000 * FIXED_SCALE)), eth: None },
        }
    }

    fn gate(
        &self,
        legs: &[OrderIntent],
        ex: &ExposureBook,
    ) -> Result<Vec<Accepted>, RejectReasonCode> {
        let edge_model = |i: &OrderIntent, b: Option<&BookView>, idx: Option<Price>| {
            edge::estimate(i, b, idx, 5.0)
        };
        let rate = OrderRateBucket::full(20, NOW);
        let inputs = BatchInputs {
            base: GateContext {
                now_ms: NOW,
                policy: PolicySlot::from_result(&self.policy),
                instruments: &self.cache,
                book: None,
                index_price: None,
                position: PositionView::default(),
                portfolio: PortfolioView::default(),
                fee_model_updated_ms: Some(NOW - 60_000),
                edge: None,
                risk_state: RiskState::Healthy,
                trading_mode: TradingMode::Active,
                open_permission_latched: false,
                order_rate: rate,
            },
            books: &self.books,
            index: self.index,
            edge: &edge_model,
        };
        // The structure's claim: enough to clear fees (the vertical states it per group).
        let claim = Some(Usd::from_raw(1_000 * FIXED_SCALE));
        gate_group(legs, ex, &inputs, rate, claim).map(|(a, _)| a).map_err(|r| r.1.code)
    }

    fn market(&self) -> EngineMarket<'_> {
        EngineMarket {
            now_ms: NOW,
            instruments: &self.cache,
            books: &self.books,
            index: self.index,
            policy: &self.policy,
            // No rescue may go out: a failed group goes straight to Step B.
            mode_without_hold: TradingMode::Kill,
            risk_state: RiskState::Healthy,
            claim_per_qty: None,
            taker_fee_bps: 5.0,
        }
    }
}

fn admit(desk: &mut GroupDesk, legs: &[OrderIntent], accepted: Vec<Accepted>) -> GroupKey {
    let plans: Vec<LegPlan> = legs
        .iter()
        .zip(&accepted)
        .map(|(l, a)| LegPlan { intent: *l, exposure_usd: a.notional_usd.unwrap_or(Usd::ZERO) })
        .collect();
    let (group, _) =
        AtomicGroup::accept(&plans, Arc::clone(&desk.budget), EmergencyConfig::default(), NOW)
            .unwrap();
    let key = key_of(legs[0].fields().group_id);
    desk.active.insert(
        key.clone(),
        ActiveGroup {
            group,
            legs: accepted,
            claim: None,
            reconcile: Vec::new(),
            cancelled: Vec::new(),
        },
    );
    key
}

fn pending(desk: &GroupDesk) -> ExposureBook {
    let mut ex = ExposureBook::new();
    desk.reserve_into(&mut ex);
    ex
}

/// AT-225 / AT-910: 2 legs × 0.1 BTC at 100 000 = 20 000 USD per group against a 30 000 USD
/// gross cap: the first group is accepted and reserved, the second is refused while the first
/// lives — by the caps gate on the reserved legs and by the shared pending-exposure budget —
/// and accepted once the first reached a terminal state.
#[test]
fn concurrent_groups_cannot_jointly_breach_a_cap_at_225() {
    let fx = Fixture::new(30_000);
    let mut desk = GroupDesk::new(&fx.policy);
    let a = vertical(&fx.cache, 1);
    let b = vertical(&fx.cache, 2);

    // Alone, each group fits.
    let accepted_a = fx.gate(&a, &ExposureBook::new()).expect("group A fits the cap");
    assert!(fx.gate(&b, &ExposureBook::new()).is_ok(), "group B alone fits too");
    let key_a = admit(&mut desk, &a, accepted_a);

    // While A lives, its legs are pending: B breaches the gross cap as a unit.
    let ex = pending(&desk);
    assert_eq!(ex.view(K1).pending_buy, Qty::from_raw(FIXED_SCALE / 10));
    assert_eq!(ex.view(K2).pending_sell, Qty::from_raw(FIXED_SCALE / 10));
    // (the gate chain reports a gross-notional breach as `PositionLimitExceeded`)
    assert_eq!(fx.gate(&b, &ex), Err(RejectReasonCode::PositionLimitExceeded));
    // And the executor's budget refuses it even past the gate (all-or-nothing reservation).
    let plans: Vec<LegPlan> = b
        .iter()
        .map(|l| LegPlan { intent: *l, exposure_usd: Usd::from_raw(10_000 * FIXED_SCALE) })
        .collect();
    let refused =
        AtomicGroup::accept(&plans, Arc::clone(&desk.budget), EmergencyConfig::default(), NOW);
    assert_eq!(refused.err(), Some(hotpath::group::GroupError::Budget));

    // A: legs out, both rejected, no rescue permitted ⇒ Flattened with nothing filled.
    let market = fx.market();
    let active = desk.active.get_mut(&key_a).unwrap();
    let _ = active.group.on_input(GroupInput::Persisted, NOW, &market);
    for leg in &a {
        let _ = active.group.on_input(
            GroupInput::Rejected { order: leg.hash(), code: 11030 },
            NOW,
            &market,
        );
    }
    assert_eq!(active.group.state(), GroupState::Flattened);
    assert!(!active.group.holds_reservation());
    desk.active.remove(&key_a); // the engine drops terminal groups

    // Released: B fits again, at the gate and in the budget.
    let ex = pending(&desk);
    assert_eq!(ex.view(K1), PositionView::default());
    let accepted_b = fx.gate(&b, &ex).expect("B fits once A is terminal");
    let _ = admit(&mut desk, &b, accepted_b);
}

/// One refused leg refuses the whole group: leg 0 passes alone, leg 1 would sweep the book, and
/// nothing of the group is reserved.
#[test]
fn a_group_is_gated_as_a_unit() {
    let fx = Fixture::new(500_000);
    let mut legs = vertical(&fx.cache, 3);
    assert!(fx.gate(&legs[..1], &ExposureBook::new()).is_ok(), "leg 0 alone passes");
    let mut f = *legs[1].fields();
    f.qty = Qty::from_raw(6 * FIXED_SCALE); // more than the 5 BTC the book holds
    legs[1] = OrderIntent::new(f);
    let ex = ExposureBook::new();
    assert_eq!(fx.gate(&legs, &ex), Err(RejectReasonCode::LiquidityGateDepthTooThin));
    assert_eq!(ex, ExposureBook::new());
}

#[test]
fn split_keeps_singles_and_reduce_only_pairs_apart_from_groups() {
    let cache = instruments();
    let group = vertical(&cache, 4);
    let mut closing = vertical(&cache, 5);
    for l in &mut closing {
        let mut f = *l.fields();
        f.reduce_only = true;
        *l = OrderIntent::new(f);
    }
    let single = vertical(&cache, 6).remove(0);
    let mut all = vec![single];
    all.extend(group.iter().rev().copied());
    all.extend(closing.iter().copied());
    let (singles, groups) = split_groups(all);
    assert_eq!(singles.len(), 3, "the lone leg and the reduce-only pair stay single");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0], group, "legs in leg order");
}
