//! Capital supremacy (DESIGN invariant 6, ruling 1): in every mode and fault state — each
//! ModeReasonCode, the open-permission latch, the rate-limit breaker open, stale/gapped data,
//! WAL append failure — while exposure exists a reducing action is permitted by
//! ModePermissions and by the GateChain, and the emergency planner yields a reduce-only order.
//! A control in each state shows that a risk-increasing order is still refused whenever the
//! mode is not Active, so the test can tell the two apart.

mod phase1_fixtures;

use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::{GroupId, OrderIntent, Side, TimeInForce};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::reason_codes::{ModeReasonCode, RiskState, TradingMode};
use hotpath::domain::units::Qty;
use hotpath::emergency::{
    plan_emergency_close, CloseIdentity, CreditReserve, EmergencyConfig, EmergencyMarket,
    ExposedPosition, L1Ticker, PriceInputs, PriceSource,
};
use hotpath::gates::{BookView, GateChain, PositionView};
use hotpath::mode::{ActionClass, ModePermissions, PolicyGuard, PolicyInputs, ReasonSet};
use phase1_fixtures::{
    cache, context, fields, option_book, perp_book, policy, price, qty, strategy, NOW_MS,
};

const CALL: &str = "BTC-27DEC24-60000-C";
const PERP: &str = "BTC-PERPETUAL";

/// Market data faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    FreshBook,
    /// Book older than 1000 ms, fresh ticker (ruling 7 fallback).
    StaleBookFreshTicker,
    /// Book gapped (change-id gap), fresh ticker.
    GappedBookFreshTicker,
}

struct Market {
    cache: InstrumentCache,
    data: Data,
}

fn ticker(book: &BookView) -> L1Ticker {
    L1Ticker {
        instrument: book.instrument,
        best_bid: book.best_bid().unwrap().price,
        best_ask: book.best_ask().unwrap().price,
        ts_ms: NOW_MS - 50,
    }
}

impl Market {
    fn book(&self, instrument: InstrumentName) -> BookView {
        let mut book = if instrument.as_str() == CALL { option_book() } else { perp_book() };
        match self.data {
            Data::FreshBook => {}
            Data::StaleBookFreshTicker => book.last_update_ms = NOW_MS - 5_000,
            Data::GappedBookFreshTicker => book.gapped = true,
        }
        book
    }
}

impl EmergencyMarket for Market {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.cache.get(instrument)
    }
    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        let book = self.book(instrument);
        let fresh = if instrument.as_str() == CALL { option_book() } else { perp_book() };
        PriceInputs { book: Some(book), ticker: Some(ticker(&fresh)) }
    }
}

/// A mode/fault state: what the gate sees.
#[derive(Debug, Clone)]
struct State {
    name: String,
    mode: TradingMode,
    risk_state: RiskState,
    latched: bool,
}

fn risk_state_of(code: ModeReasonCode) -> RiskState {
    match code {
        ModeReasonCode::KillRiskstateKill => RiskState::Kill,
        ModeReasonCode::ReduceonlyRiskstateMaintenance => RiskState::Maintenance,
        ModeReasonCode::ReduceonlyRiskstateDegraded => RiskState::Degraded,
        _ => RiskState::Healthy,
    }
}

/// One input fault applied to an all-healthy snapshot.
type Fault = Box<dyn Fn(&mut PolicyInputs)>;

/// Every ModeReasonCode alone (latched and not), plus PolicyGuard-resolved fault snapshots.
fn states() -> Vec<State> {
    let mut out = Vec::new();
    for code in ModeReasonCode::ALL {
        for latched in [false, true] {
            out.push(State {
                name: format!("{code:?} latched={latched}"),
                mode: ReasonSet::of(code).mode(),
                risk_state: risk_state_of(code),
                latched,
            });
        }
    }
    let faults: Vec<(&str, Fault)> = vec![
        ("wal_append_failed", Box::new(|i| i.wal_append_healthy = false)),
        ("book_gap", Box::new(|i| i.book_gap_detected = true)),
        ("trades_gap", Box::new(|i| i.trades_gap_detected = true)),
        ("instrument_cache_stale", Box::new(|i| i.instrument_cache_age_s = Some(100_000))),
        ("mm_util_missing", Box::new(|i| i.mm_util = None)),
        (
            "session_kill_10028x3",
            Box::new(|i| {
                i.rate_limit_session_kill_active = Some(true);
                i.count_10028_5m = Some(3);
            }),
        ),
        (
            "watchdog_silent",
            Box::new(|i| {
                i.watchdog_last_heartbeat_ts_ms = Some(i.now_ms - 60_000);
                i.loop_tick_last_ts_ms = Some(i.now_ms - 60_000);
            }),
        ),
        ("risk_state_kill", Box::new(|i| i.risk_state = RiskState::Kill)),
        ("clock_drift", Box::new(|i| i.clock_drift_ms = Some(10_000))),
    ];
    for (name, fault) in faults {
        let mut inputs = PolicyInputs::all_healthy(NOW_MS);
        fault(&mut inputs);
        let mut guard = PolicyGuard::at_start();
        let decision = guard.evaluate(&inputs);
        assert_ne!(decision.mode, TradingMode::Active, "{name}: the fault must tighten");
        out.push(State {
            name: format!("guard:{name}"),
            mode: decision.mode,
            risk_state: inputs.risk_state,
            latched: guard.latch().is_latched(),
        });
    }
    out
}

fn positions() -> Vec<ExposedPosition> {
    vec![
        ExposedPosition { instrument: Instrument::parse(CALL).unwrap(), position: qty("1.5") },
        ExposedPosition { instrument: Instrument::parse(PERP).unwrap(), position: qty("-3000") },
    ]
}

fn position_view(instrument: &str) -> PositionView {
    let p = positions().into_iter().find(|p| p.instrument.as_str() == instrument).unwrap();
    PositionView { position: p.position, ..PositionView::default() }
}

#[test]
fn reducing_path_open_in_every_mode_and_fault() {
    let (policy, cache) = (policy(), cache());
    let chain = GateChain::new();
    let identity = CloseIdentity {
        strategy_id: strategy(),
        group_id: GroupId::derive(&strategy(), b"capital-supremacy"),
    };
    let mut checked = 0;
    for state in states() {
        let permissions = ModePermissions::with_latch(state.mode, state.latched);
        for action in [
            ActionClass::Close,
            ActionClass::Hedge,
            ActionClass::EmergencyClose,
            ActionClass::Cancel,
        ] {
            assert!(permissions.permits(action), "{}: {action:?} must stay permitted", state.name);
        }
        assert!(permissions.permits_emergency_close(), "{}", state.name);
        for data in [Data::FreshBook, Data::StaleBookFreshTicker, Data::GappedBookFreshTicker] {
            for breaker_open in [false, true] {
                let market = Market { cache: cache.clone(), data };
                let mut credits = CreditReserve::new(breaker_open);
                let plan = plan_emergency_close(
                    &positions(),
                    &market,
                    permissions,
                    state.mode,
                    &mut credits,
                    0,
                    &EmergencyConfig::default(),
                    NOW_MS,
                    &identity,
                )
                .expect("planner runs in every mode");
                let case = format!("{} {data:?} breaker_open={breaker_open}", state.name);
                assert!(plan.blocked.is_empty(), "{case}: {:?}", plan.blocked);
                assert_eq!(plan.orders.len(), 2, "{case}");
                assert!(plan.cancel_all, "{case}");
                if breaker_open {
                    assert_eq!(credits.drawn, 3, "{case}: cancel-all + 2 closes from the reserve");
                }
                let want_source =
                    if data == Data::FreshBook { PriceSource::Book } else { PriceSource::Ticker };
                for close in &plan.orders {
                    let f = close.intent.fields();
                    assert_eq!(close.source, want_source, "{case}");
                    assert!(f.reduce_only && f.emergency_close, "{case}");
                    assert_eq!(f.time_in_force, TimeInForce::ImmediateOrCancel);
                    assert!(f.limit_price.is_some(), "{case}: never a market order");
                    // The gate chain, fed the same mode/fault state, accepts it as a reduction.
                    let book = market.book(f.instrument.name());
                    let mut ctx = context(&policy, &cache, Some(&book));
                    ctx.trading_mode = state.mode;
                    ctx.risk_state = state.risk_state;
                    ctx.open_permission_latched = state.latched;
                    ctx.position = position_view(f.instrument.as_str());
                    let accepted = chain
                        .evaluate(&close.intent, &ctx)
                        .unwrap_or_else(|r| panic!("{case}: close refused {r:?}"));
                    assert!(accepted.class.is_risk_reducing(), "{case}");

                    // Control: adding to the position is refused whenever the mode is not Active.
                    let add_side = match f.side {
                        Side::Buy => Side::Sell,
                        Side::Sell => Side::Buy,
                    };
                    let limit = if f.instrument.as_str() == CALL { "0.0455" } else { "100000" };
                    let q = if f.instrument.as_str() == CALL { "0.3" } else { "100" };
                    let add =
                        OrderIntent::new(fields(f.instrument.as_str(), add_side, q, limit, b"add"));
                    if state.mode != TradingMode::Active || state.latched {
                        assert!(chain.evaluate(&add, &ctx).is_err(), "{case}: an open got through");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= (23 * 2 + 9) * 3 * 2 * 2, "every state × data × breaker × order: {checked}");
}

/// With the reserve spent while the breaker is open, closes are deferred with an enumerated
/// code (never silently dropped); with the breaker closed the reserve is not touched.
#[test]
fn spent_reserve_defers_with_brownout_code() {
    let cache = cache();
    let market = Market { cache, data: Data::FreshBook };
    let identity =
        CloseIdentity { strategy_id: strategy(), group_id: GroupId::derive(&strategy(), b"r") };
    let mut spent = CreditReserve { breaker_open: true, remaining: 1, drawn: 0 };
    let plan = plan_emergency_close(
        &positions(),
        &market,
        ModePermissions::for_mode(TradingMode::Kill),
        TradingMode::Kill,
        &mut spent,
        0,
        &EmergencyConfig::default(),
        NOW_MS,
        &identity,
    )
    .unwrap();
    // The one remaining credit went to cancel-all; both closes wait for credits.
    assert_eq!(plan.orders.len(), 0);
    assert_eq!(plan.blocked.len(), 2);
    assert!(plan
        .blocked
        .iter()
        .all(|(_, c)| *c == hotpath::domain::reason_codes::RejectReasonCode::RateLimitBrownout));
    let mut closed = CreditReserve { breaker_open: false, remaining: 0, drawn: 0 };
    let plan = plan_emergency_close(
        &positions(),
        &market,
        ModePermissions::for_mode(TradingMode::Kill),
        TradingMode::Kill,
        &mut closed,
        1,
        &EmergencyConfig::default(),
        NOW_MS,
        &identity,
    )
    .unwrap();
    assert_eq!(plan.orders.len(), 2);
    assert_eq!(closed.drawn, 0);
    let _ = (price("1"), Qty::ZERO);
}
