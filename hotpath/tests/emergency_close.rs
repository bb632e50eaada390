//! Deterministic emergency close (contract B §3.1): price-source priority (AT-937/938), the
//! doubling buffer (5/10/20 ticks), bounded slippage, bounded attempts then hedge (AT-235),
//! exactly one report per run, and Kill does not stop it (ruling 1).

mod phase1_fixtures;

use std::collections::BTreeMap;

use hotpath::clock::FrozenClock;
use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::{GroupId, OrderIntent, Side};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::reason_codes::{RejectReasonCode, TradingMode};
use hotpath::domain::units::{Price, Qty};
use hotpath::emergency::{
    buffer_ticks, cross_price, plan_close_order, run_emergency_close, select_touch, CloseIdentity,
    CreditReserve, DriverError, EmergencyConfig, EmergencyDriver, EmergencyMarket, ExposedPosition,
    HedgeQuote, L1Ticker, PriceInputs, PriceSource, Touch,
};
use hotpath::gates::BookView;
use phase1_fixtures::{cache, option_book, perp_book, price, qty, strategy, NOW_MS};

const CALL: &str = "BTC-27DEC24-60000-C";
const PERP: &str = "BTC-PERPETUAL";

fn name(s: &str) -> InstrumentName {
    Instrument::parse(s).unwrap().name()
}

fn identity() -> CloseIdentity {
    CloseIdentity { strategy_id: strategy(), group_id: GroupId::derive(&strategy(), b"ec") }
}

fn ticker(instrument: &str, bid: &str, ask: &str, ts_ms: i64) -> L1Ticker {
    L1Ticker { instrument: name(instrument), best_bid: price(bid), best_ask: price(ask), ts_ms }
}

#[test]
fn price_source_priority_at_937_938() {
    let fresh = option_book();
    let mut stale = option_book();
    stale.last_update_ms = NOW_MS - 1_001;
    let t = ticker(CALL, "0.044", "0.047", NOW_MS - 10);
    let max = 1_000;
    let touch =
        select_touch(name(CALL), &PriceInputs { book: Some(fresh), ticker: Some(t) }, NOW_MS, max);
    assert_eq!(touch.unwrap().source, PriceSource::Book);
    // AT-937: stale L2 + fresh L1 ⇒ the ticker prices it.
    let touch =
        select_touch(name(CALL), &PriceInputs { book: Some(stale), ticker: Some(t) }, NOW_MS, max)
            .unwrap();
    assert_eq!(
        (touch.source, touch.bid, touch.ask),
        (PriceSource::Ticker, price("0.044"), price("0.047"))
    );
    // AT-938: nothing fresh ⇒ EmergencyCloseNoPrice and no order.
    let old = ticker(CALL, "0.044", "0.047", NOW_MS - 1_001);
    let none = PriceInputs { book: Some(stale), ticker: Some(old) };
    assert_eq!(
        select_touch(name(CALL), &none, NOW_MS, max),
        Err(RejectReasonCode::EmergencyCloseNoPrice)
    );
    let pos = ExposedPosition { instrument: Instrument::parse(CALL).unwrap(), position: qty("1") };
    let cache = cache();
    let cfg = EmergencyConfig::default();
    assert_eq!(
        plan_close_order(&pos, cache.get(CALL), &none, 0, &cfg, NOW_MS, &identity(), 0),
        Err(RejectReasonCode::EmergencyCloseNoPrice)
    );
    // Inverted ticker, another instrument's book, a gapped book: no price either.
    let crossed = ticker(CALL, "0.05", "0.04", NOW_MS);
    assert!(select_touch(
        name(CALL),
        &PriceInputs { book: None, ticker: Some(crossed) },
        NOW_MS,
        max
    )
    .is_err());
    assert!(select_touch(
        name(CALL),
        &PriceInputs { book: Some(perp_book()), ticker: None },
        NOW_MS,
        max
    )
    .is_err());
    // Freshness is symmetric: a timestamp slightly ahead of our clock is fine, far ahead is not.
    let mut ahead = option_book();
    ahead.last_update_ms = NOW_MS + 500;
    assert!(select_touch(
        name(CALL),
        &PriceInputs { book: Some(ahead), ticker: None },
        NOW_MS,
        max
    )
    .is_ok());
    ahead.last_update_ms = NOW_MS + 1_001;
    assert!(select_touch(
        name(CALL),
        &PriceInputs { book: Some(ahead), ticker: None },
        NOW_MS,
        max
    )
    .is_err());
    let mut gapped = option_book();
    gapped.gapped = true;
    assert!(select_touch(
        name(CALL),
        &PriceInputs { book: Some(gapped), ticker: None },
        NOW_MS,
        max
    )
    .is_err());
}

#[test]
fn buffer_doubles_and_slippage_is_bounded() {
    assert_eq!([buffer_ticks(5, 0), buffer_ticks(5, 1), buffer_ticks(5, 2)], [5, 10, 20]);
    let cache = cache();
    let perp = cache.get(PERP).unwrap();
    let touch = Touch { bid: price("99999.5"), ask: price("100000"), source: PriceSource::Book };
    // Perp tick 0.5: sell-to-close at bid − 5/10/20 ticks, buy-to-close at ask + ticks.
    assert_eq!(cross_price(perp, Side::Sell, &touch, 5, 500), Ok(price("99997")));
    assert_eq!(cross_price(perp, Side::Sell, &touch, 20, 500), Ok(price("99989.5")));
    assert_eq!(cross_price(perp, Side::Buy, &touch, 10, 500), Ok(price("100005")));
    // A 1 bps bound caps the buffer at 10 USD from the touch.
    assert_eq!(cross_price(perp, Side::Buy, &touch, 1_000, 1), Ok(price("100010")));
    // At least one tick always crosses, even with a zero bound.
    assert_eq!(cross_price(perp, Side::Sell, &touch, 5, 0), Ok(price("99999")));
}

/// A venue model: one book per instrument with finite depth; IOC orders walk it.
struct FakeVenue {
    cache: InstrumentCache,
    positions: BTreeMap<String, Qty>,
    /// Fillable quantity per instrument per order (thin book).
    depth: BTreeMap<String, Qty>,
    cancels: u32,
    sent: Vec<OrderIntent>,
    hedge: bool,
}

impl FakeVenue {
    fn new(depth_call: &str) -> Self {
        let mut positions = BTreeMap::new();
        positions.insert(CALL.to_string(), qty("2"));
        let mut depth = BTreeMap::new();
        depth.insert(CALL.to_string(), qty(depth_call));
        depth.insert(PERP.to_string(), qty("1000000"));
        Self { cache: cache(), positions, depth, cancels: 0, sent: Vec::new(), hedge: true }
    }
}

impl EmergencyMarket for FakeVenue {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.cache.get(instrument)
    }
    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        let book: BookView = if instrument.as_str() == CALL { option_book() } else { perp_book() };
        PriceInputs { book: Some(book), ticker: None }
    }
}

struct Driver<'a>(&'a std::cell::RefCell<FakeVenue>);

impl EmergencyDriver for Driver<'_> {
    fn cancel_all(&mut self) -> Result<(), DriverError> {
        self.0.borrow_mut().cancels += 1;
        Ok(())
    }
    fn positions(&mut self) -> Result<Vec<ExposedPosition>, DriverError> {
        Ok(self
            .0
            .borrow()
            .positions
            .iter()
            .map(|(k, v)| ExposedPosition {
                instrument: Instrument::parse(k).unwrap(),
                position: *v,
            })
            .collect())
    }
    fn send_ioc(&mut self, intent: &OrderIntent) -> Result<Qty, DriverError> {
        let mut v = self.0.borrow_mut();
        v.sent.push(*intent);
        let f = intent.fields();
        let key = f.instrument.as_str().to_string();
        let depth = v.depth.get(&key).copied().unwrap_or(Qty::ZERO);
        let fill = f.qty.min(depth);
        let pos = v.positions.entry(key).or_insert(Qty::ZERO);
        *pos = match f.side {
            Side::Buy => pos.checked_add(fill).unwrap(),
            Side::Sell => pos.checked_sub(fill).unwrap(),
        };
        Ok(fill)
    }
    fn hedge_for(&mut self, residual: &ExposedPosition) -> Option<HedgeQuote> {
        if !self.0.borrow().hedge {
            return None;
        }
        let side = if residual.position.is_positive() { Side::Sell } else { Side::Buy };
        Some(HedgeQuote { instrument: Instrument::parse(PERP).unwrap(), side, qty: qty("600") })
    }
}

struct View<'a> {
    venue: &'a std::cell::RefCell<FakeVenue>,
    cache: InstrumentCache,
}

impl<'a> View<'a> {
    fn new(venue: &'a std::cell::RefCell<FakeVenue>) -> Self {
        Self { venue, cache: cache() }
    }
}

impl EmergencyMarket for View<'_> {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.cache.get(instrument)
    }
    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        self.venue.borrow().prices(instrument)
    }
}

#[test]
fn deep_book_closes_in_one_round_even_in_kill() {
    let venue = std::cell::RefCell::new(FakeVenue::new("10"));
    let mut credits = CreditReserve::new(false);
    let report = run_emergency_close(
        &mut Driver(&venue),
        &View::new(&venue),
        TradingMode::Kill,
        true,
        &mut credits,
        &EmergencyConfig::default(),
        &FrozenClock::new(NOW_MS),
        &identity(),
    )
    .unwrap();
    assert_eq!(report.close_attempts, 1);
    assert!(!report.hedge_used);
    assert!(report.residual.is_empty());
    assert_eq!(report.trading_mode_at_event, TradingMode::Kill);
    let v = venue.borrow();
    assert_eq!(v.cancels, 1, "cancel-all first");
    assert_eq!(v.positions[CALL], Qty::ZERO);
    let f = v.sent[0].fields();
    assert!(f.reduce_only && f.emergency_close && f.side == Side::Sell);
}

/// AT-235: a thin book ⇒ 3 bounded attempts on the remaining quantity, widening buffer, then a
/// perp hedge; exactly one report.
#[test]
fn thin_book_three_attempts_then_hedge_at_235() {
    let venue = std::cell::RefCell::new(FakeVenue::new("0.5"));
    let mut credits = CreditReserve::new(true);
    let report = run_emergency_close(
        &mut Driver(&venue),
        &View::new(&venue),
        TradingMode::ReduceOnly,
        false,
        &mut credits,
        &EmergencyConfig::default(),
        &FrozenClock::new(NOW_MS),
        &identity(),
    )
    .unwrap();
    assert_eq!(report.close_attempts, 3);
    assert_eq!(report.residual.len(), 1);
    assert_eq!(report.residual[0].position, qty("0.5"));
    assert!(report.hedge_used);
    assert_eq!(report.cause, "hedge_fallback");
    let v = venue.borrow();
    let closes: Vec<_> = v.sent.iter().filter(|o| o.fields().instrument.as_str() == CALL).collect();
    assert_eq!(
        closes.iter().map(|o| o.fields().qty).collect::<Vec<_>>(),
        vec![qty("2"), qty("1.5"), qty("1")]
    );
    let prices: Vec<Price> = closes.iter().map(|o| o.fields().limit_price.unwrap()).collect();
    assert!(prices.windows(2).all(|w| w[1] <= w[0]), "sell buffer widens: {prices:?}");
    let hedge = v.sent.last().unwrap().fields();
    assert_eq!((hedge.instrument.as_str(), hedge.side, hedge.qty), (PERP, Side::Sell, qty("600")));
    assert_eq!(v.positions[PERP], qty("-600"));
    assert_eq!(
        credits.drawn,
        1 + 3 + 1,
        "breaker open: cancel-all, 3 closes, 1 hedge from the reserve"
    );
}

#[test]
fn flat_book_reports_flat_and_sends_nothing() {
    let venue = std::cell::RefCell::new(FakeVenue::new("1"));
    venue.borrow_mut().positions.insert(CALL.to_string(), Qty::ZERO);
    let report = run_emergency_close(
        &mut Driver(&venue),
        &View::new(&venue),
        TradingMode::Active,
        false,
        &mut CreditReserve::new(false),
        &EmergencyConfig::default(),
        &FrozenClock::new(NOW_MS),
        &identity(),
    )
    .unwrap();
    assert_eq!((report.close_attempts, report.cause, report.sent.len()), (0, "flat", 0));
}
