//! Issue 5: after warm-up the hot path does no heap allocation. A counting global allocator
//! (this test binary only, counting on the measuring thread only) runs 1e5 Deribit book
//! changes through the tick-to-send pipeline of `hotpath::strategy::pipeline`:
//!
//! decode (simd-json tape, reused) → book apply → BookView → strategy (quoter) → gate chain
//! → label → JSON-RPC request bytes
//!
//! and asserts zero allocations after warm-up, decode included (counted in its own bucket
//! so a regression names its stage). Controls prove the counter sees allocations made
//! inside the measured window, and sees the allocations of a decode that builds a DOM (a
//! non-book message, the general path).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hotpath::domain::intent::StrategyId;
use hotpath::domain::policy::Policy;
use hotpath::gates::{BookLevel, BookView, ExposureBook};
use hotpath::strategy::pipeline::{
    scenario_frames, scenario_instruments, scenario_pipeline, scenario_quoter,
};
use hotpath::strategy::vertical::{Vertical, VerticalParams};
use hotpath::strategy::{ActionBuffer, IndexPrices, MarketSnapshot, PositionsSnapshot, Strategy};
use hotpath::venue::messages::NotificationData;
use hotpath::venue::{Decoder, Message};

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if counting {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
    }
}

struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; only counts (thread-local
// cells with const initialisers, which never allocate).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes on this thread.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.with(Cell::get) - before)
}

const EVENTS: usize = 100_000;
const WARM_UP: usize = 1_000;

fn policy() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/policy.json");
    Policy::load_from_path(std::path::Path::new(path)).expect("config/policy.json")
}

/// What one run over the scenario measured.
#[derive(Debug)]
struct Run {
    hot_allocations: u64,
    decode_allocations: u64,
    requests: u64,
    rejected: u64,
    wire_bytes: u64,
}

fn run(strategy: Box<dyn Strategy>, events: usize) -> Run {
    let frames = scenario_frames(events);
    let mut pipeline = scenario_pipeline(&policy(), strategy, None);
    let mut decoder = Decoder::with_levels_max(256);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let (mut hot, mut decode, mut wire_bytes) = (0, 0, 0_u64);
    for (k, frame) in frames.iter().enumerate() {
        buf.clear();
        buf.extend_from_slice(frame);
        let (message, decode_allocs) = counted(|| decoder.decode(&mut buf));
        let Ok(Message::Notification(n)) = message else { panic!("frame {k} did not decode") };
        let NotificationData::Book(update) = n.data else { panic!("frame {k} is not a book") };
        let (ready, hot_allocs) = counted(|| pipeline.on_update(&update).expect("no WAL"));
        if k >= WARM_UP {
            hot += hot_allocs;
            decode += decode_allocs;
            wire_bytes += pipeline.gate.wire().len() as u64;
        }
        assert!(ready > 0, "event {k} produced no request: the scenario requotes on every change");
    }
    let counts = pipeline.gate.counts();
    Run {
        hot_allocations: hot,
        decode_allocations: decode,
        requests: counts.requests,
        rejected: counts.rejected,
        wire_bytes,
    }
}

#[test]
fn book_to_request_bytes_allocates_nothing_after_warm_up_over_1e5_events() {
    let r = run(scenario_quoter(), EVENTS);
    // The path did the real work: 2 places for the snapshot, then 2 cancels + 2 places per
    // change, every place accepted by every gate, every request encoded.
    assert_eq!(r.requests, 2 + 4 * EVENTS as u64, "{r:?}");
    assert_eq!(r.rejected, 0, "{r:?}");
    assert!(r.wire_bytes > 100 * EVENTS as u64, "{r:?}");
    assert_eq!(r.hot_allocations, 0, "allocations on the hot path after warm-up: {r:?}");
    assert_eq!(r.decode_allocations, 0, "allocations decoding book changes after warm-up: {r:?}");
    let measured = (EVENTS + 1 - WARM_UP) as u64;
    println!("hot path: 0 allocations over {measured} events, decode included");
}

/// A strategy that allocates once per tick: the control.
struct Leaky(Box<dyn Strategy>);

impl Strategy for Leaky {
    fn id(&self) -> &StrategyId {
        self.0.id()
    }
    fn instruments(&self) -> &[hotpath::domain::instrument::InstrumentName] {
        self.0.instruments()
    }
    fn on_tick(
        &mut self,
        m: &MarketSnapshot<'_>,
        p: &PositionsSnapshot<'_>,
        out: &mut ActionBuffer,
    ) {
        std::hint::black_box(Vec::<u8>::with_capacity(16));
        self.0.on_tick(m, p, out);
    }
}

#[test]
fn control_an_allocating_strategy_is_detected() {
    let r = run(Box::new(Leaky(scenario_quoter())), 5_000);
    assert_eq!(r.hot_allocations, (5_001 - WARM_UP) as u64, "{r:?}");
    assert_eq!(r.rejected, 0);
}

#[test]
fn control_decode_allocations_are_seen_by_the_counter() {
    // The same decoder, warmed up on book changes, then fed a user-orders notification (the
    // general path builds a DOM and the orders vector): the counter must see those.
    let frames = scenario_frames(2_000);
    let mut decoder = Decoder::with_levels_max(256);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    for frame in &frames {
        buf.clear();
        buf.extend_from_slice(frame);
        assert!(decoder.decode(&mut buf).is_ok());
    }
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/venue_samples/user_orders_update.json"
    );
    let orders = std::fs::read(sample).expect("user_orders_update sample");
    buf.clear();
    buf.extend_from_slice(&orders);
    let (decoded, allocations) = counted(|| decoder.decode(&mut buf).is_ok());
    assert!(decoded, "the sample decodes");
    assert!(allocations > 0, "a DOM decode allocates and the counter sees it");
}

#[test]
fn vertical_on_tick_allocates_nothing_after_warm_up() {
    let cache = {
        // The scenario call is K2; a 100000 call of the same expiry is K1.
        let mut cache = scenario_instruments();
        let k2 = *cache.get("BTC-25JUL25-110000-C").unwrap();
        let k1_instrument =
            hotpath::domain::instrument::Instrument::parse("BTC-25JUL25-100000-C").unwrap();
        let k1 = hotpath::domain::metadata::InstrumentMeta::new_checked(
            k1_instrument,
            k2.tick_size,
            k2.tick_steps(),
            k2.min_trade_amount,
            k2.contract_size,
            k2.expiration_timestamp_ms,
            k2.creation_timestamp_ms,
            true,
            k2.fetched_at_ms,
        )
        .unwrap();
        cache.upsert(k1).unwrap();
        cache
    };
    let k1 = cache.get("BTC-25JUL25-100000-C").unwrap().instrument.name();
    let k2 = cache.get("BTC-25JUL25-110000-C").unwrap().instrument.name();
    let params = VerticalParams { retry_ms: 1, ..VerticalParams::default() };
    let mut v =
        Vertical::new(StrategyId::new_checked("vertical").unwrap(), 0, k1, k2, params).unwrap();
    let px = |t: &str| hotpath::domain::units::Price::from_decimal_str(t).unwrap();
    let q = hotpath::domain::units::Qty::from_decimal_str("10").unwrap();
    let lvl = |p: &str| BookLevel { price: px(p), qty: q };
    let mut exposure = ExposureBook::new();
    let mut out = ActionBuffer::with_capacity(v.actions_per_tick_max());
    let start = hotpath::strategy::pipeline::SCENARIO_START_MS;
    let (mut opens, mut closes, mut repairs) = (0_u64, 0_u64, 0_u64);
    let mut total = 0_u64;
    for k in 0..EVENTS as i64 {
        let now = start + k;
        // Rotate flat / long spread / lone leg so open, close and repair all run. Index
        // 30 000: width 10 000 / 30 000 = 0.333 BTC. Flat: debit 0.0755 - 0.016 = 18 % of
        // the width (enter). Long spread: K1 bid 0.25, credit 0.2335 = 70 % (close).
        let (p1, p2, k1_bid, k1_ask) = match k % 3 {
            0 => ("0", "0", "0.075", "0.0755"),
            1 => ("0.1", "-0.1", "0.25", "0.2505"),
            _ => ("0.1", "0", "0.075", "0.0755"),
        };
        exposure.set_position(k1, hotpath::domain::units::Qty::from_decimal_str(p1).unwrap());
        exposure.set_position(k2, hotpath::domain::units::Qty::from_decimal_str(p2).unwrap());
        let books = [
            BookView::from_levels(k1, &[lvl(k1_bid)], &[lvl(k1_ask)], now, false),
            BookView::from_levels(k2, &[lvl("0.016")], &[lvl("0.0165")], now, false),
        ];
        let index = IndexPrices { btc: Some(px("30000")), eth: None };
        let market = MarketSnapshot { now_ms: now, instruments: &cache, books: &books, index };
        let positions = PositionsSnapshot { exposure: &exposure, open_orders: &[] };
        out.clear();
        let ((), allocs) = counted(|| v.on_tick(&market, &positions, &mut out));
        let reduce = out.as_slice().iter().any(
            |a| matches!(a, hotpath::strategy::StrategyAction::Place(i) if i.fields().reduce_only),
        );
        match (out.len(), reduce) {
            (2, false) => opens += 1,
            (2, true) => closes += 1,
            (1, true) => repairs += 1,
            (0, _) => {}
            other => panic!("unexpected output {other:?}"),
        }
        if k >= WARM_UP as i64 {
            total += allocs;
        }
    }
    let third = EVENTS as u64 / 3;
    assert_eq!((opens, closes, repairs), (third + 1, third, third), "every tick acted");
    assert_eq!(total, 0, "allocations in Vertical::on_tick");
}
