//! Shared harness for the group-executor tests: a fixture market (real metadata decoded from
//! venue JSON, fresh books), leg builders, and a driver that collects records/actions and lets
//! a test answer each sent order like the venue would.
#![allow(dead_code)]

use std::collections::VecDeque;

use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::domain::units::{Price, Qty, Usd};
use hotpath::emergency::{EmergencyConfig, HedgeQuote, PriceInputs};
use hotpath::gates::{BookLevel, BookView};
use hotpath::group::{
    AtomicGroup, GroupAction, GroupInput, GroupMarket, GroupRecord, LegPlan, OrderRole,
    PendingExposureBudget,
};
use hotpath::sync::Arc;

#[path = "../phase1_fixtures/mod.rs"]
mod phase1_fixtures;
pub use phase1_fixtures::{cache, price, qty, usd, NOW_MS};

pub const CALL: &str = "BTC-27DEC24-60000-C";
pub const PUT: &str = "BTC-27DEC24-100000-P";
pub const PERP: &str = "BTC-PERPETUAL";

pub fn name(text: &str) -> InstrumentName {
    Instrument::parse(text).expect("instrument").name()
}

fn lvl(p: &str, q: &str) -> BookLevel {
    BookLevel { price: price(p), qty: qty(q) }
}

pub fn book(instrument: &str, bid: &str, ask: &str, at_ms: i64) -> BookView {
    BookView::from_levels(name(instrument), &[lvl(bid, "50")], &[lvl(ask, "50")], at_ms, false)
}

/// The test market: fixture metadata, one fresh book per instrument, a rescue verdict and an
/// optional hedge quote (perpetual, 3000 USD per unit of residual option).
pub struct Market {
    pub cache: InstrumentCache,
    pub books: Vec<BookView>,
    pub rescue_verdict: Result<(), RejectReasonCode>,
    pub hedge: bool,
}

impl Market {
    pub fn new() -> Self {
        Self {
            cache: cache(),
            books: vec![
                book(CALL, "0.045", "0.0455", NOW_MS - 100),
                book(PUT, "0.43", "0.4305", NOW_MS - 100),
                book(PERP, "99999.5", "100000", NOW_MS - 100),
            ],
            rescue_verdict: Ok(()),
            hedge: true,
        }
    }

    /// Moves every book's timestamp to `now_ms - 100` (kept fresh as the clock advances).
    pub fn refresh(&mut self, now_ms: i64) {
        for b in &mut self.books {
            b.last_update_ms = now_ms - 100;
        }
    }
}

impl Default for Market {
    fn default() -> Self {
        Self::new()
    }
}

impl GroupMarket for Market {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.cache.get(instrument)
    }
    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        PriceInputs {
            book: self.books.iter().find(|b| b.instrument == instrument).copied(),
            ticker: None,
        }
    }
    fn permit_rescue(&self, _intent: &OrderIntent) -> Result<(), RejectReasonCode> {
        self.rescue_verdict
    }
    fn hedge_for(&self, _instrument: &Instrument, residual: Qty) -> Option<HedgeQuote> {
        if !self.hedge || residual.raw() == 0 {
            return None;
        }
        // 3000 USD of perp per unit of option residual, on the 10 USD contract grid.
        let whole = i128::from(residual.raw()).abs() * 3_000 / 100_000_000;
        let whole = i64::try_from((whole / 10).max(1) * 10).unwrap();
        let qty = Qty::from_whole_checked(whole).unwrap();
        let side = if residual.raw() > 0 { Side::Sell } else { Side::Buy };
        Some(HedgeQuote { instrument: Instrument::parse(PERP).unwrap(), side, qty })
    }
}

pub fn strategy() -> StrategyId {
    StrategyId::new_checked("vertical_btc").unwrap()
}

pub fn leg(group: GroupId, index: u8, instrument: &str, side: Side, q: &str, p: &str) -> LegPlan {
    let fields = IntentFields {
        strategy_id: strategy(),
        group_id: group,
        leg_index: index,
        instrument: Instrument::parse(instrument).unwrap(),
        side,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
        reduce_only: false,
        linked_order_type: None,
        trigger_price: None,
        qty: qty(q),
        limit_price: Some(price(p)),
        contracts: None,
        emergency_close: false,
    };
    let cache = cache();
    let intent = OrderIntent::new_quantized(fields, cache.get(instrument)).expect("leg quantizes");
    LegPlan { intent, exposure_usd: usd("1000") }
}

/// Call buy 1.0 + put sell 1.0 (a two-option structure).
pub fn option_pair(key: &[u8]) -> Vec<LegPlan> {
    let g = GroupId::derive(&strategy(), key);
    vec![leg(g, 0, CALL, Side::Buy, "1", "0.0455"), leg(g, 1, PUT, Side::Sell, "1", "0.43")]
}

/// Option buy 1.0 + perp sell 3000 USD (delta hedge).
pub fn option_and_perp(key: &[u8]) -> Vec<LegPlan> {
    let g = GroupId::derive(&strategy(), key);
    vec![leg(g, 0, CALL, Side::Buy, "1", "0.0455"), leg(g, 1, PERP, Side::Sell, "3000", "99999.5")]
}

/// Drives one group and keeps every record and action.
pub struct Harness {
    pub group: AtomicGroup,
    pub market: Market,
    pub budget: Arc<PendingExposureBudget>,
    pub now_ms: i64,
    pub records: Vec<GroupRecord>,
    pub actions: Vec<GroupAction>,
    /// Sent orders not yet answered by the test, oldest first.
    pub outbox: VecDeque<(OrderIntent, u8, OrderRole)>,
}

impl Harness {
    pub fn start(legs: &[LegPlan]) -> Self {
        let budget =
            Arc::new(PendingExposureBudget::new(Usd::from_whole_checked(1_000_000).unwrap()));
        Self::start_with(legs, budget, Market::new())
    }

    pub fn start_with(
        legs: &[LegPlan],
        budget: Arc<PendingExposureBudget>,
        market: Market,
    ) -> Self {
        let (group, step) =
            AtomicGroup::accept(legs, Arc::clone(&budget), EmergencyConfig::default(), NOW_MS)
                .expect("group accepted");
        assert!(step.actions.is_empty(), "nothing is sent before the group intent is durable");
        let mut h = Self {
            group,
            market,
            budget,
            now_ms: NOW_MS,
            records: step.records,
            actions: Vec::new(),
            outbox: VecDeque::new(),
        };
        h.feed(GroupInput::Persisted);
        h
    }

    pub fn feed(&mut self, input: GroupInput) {
        let step = self.group.on_input(input, self.now_ms, &self.market);
        for action in &step.actions {
            if let GroupAction::Send { intent, leg, role } = action {
                self.outbox.push_back((*intent, *leg, *role));
            }
        }
        self.records.extend(step.records);
        self.actions.extend(step.actions);
    }

    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        self.market.refresh(self.now_ms);
        self.feed(GroupInput::Tick);
    }

    /// Pops the oldest unanswered order; when none is out yet, lets time pass in steps of
    /// the executor's pause between containment rounds (bounded).
    pub fn next(&mut self) -> (OrderIntent, u8, OrderRole) {
        for _ in 0..8 {
            if !self.outbox.is_empty() {
                break;
            }
            self.advance(hotpath::group::FOLLOW_UP_ROUND_GAP_MS);
        }
        self.outbox.pop_front().expect("an order is waiting for a report")
    }

    pub fn fill_all(&mut self, o: &OrderIntent) {
        self.feed(GroupInput::Done { order: o.hash(), filled: o.fields().qty });
    }

    pub fn fill_part(&mut self, o: &OrderIntent, q: &str) {
        self.feed(GroupInput::Done { order: o.hash(), filled: qty(q) });
    }

    pub fn reject(&mut self, o: &OrderIntent) {
        self.feed(GroupInput::Rejected { order: o.hash(), code: 10_041 });
    }

    pub fn sends(&self) -> Vec<(OrderIntent, OrderRole)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                GroupAction::Send { intent, role, .. } => Some((*intent, *role)),
                _ => None,
            })
            .collect()
    }

    pub fn rescue_count(&self) -> usize {
        self.sends().iter().filter(|(_, r)| matches!(r, OrderRole::Rescue(_))).count()
    }
}

pub fn p(text: &str) -> Price {
    price(text)
}
