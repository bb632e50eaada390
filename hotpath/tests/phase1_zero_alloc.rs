//! `GateChain::evaluate`, `OrderIntent::new` and `Label::for_intent` allocate nothing: the hot
//! path must not touch the allocator per intent. A counting global allocator (this test binary
//! only) measures it for accepted and rejected intents alike.

mod phase1_fixtures;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hotpath::domain::intent::{OrderIntent, OrderType, Side};
use hotpath::domain::label::Label;
use hotpath::domain::reason_codes::RiskState;
use hotpath::gates::GateChain;
use phase1_fixtures::{cache, context, fields, option_book, policy};

struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn evaluate_allocates_nothing() {
    let (policy, cache, book) = (policy(), cache(), option_book());
    let chain = GateChain::new();
    let accepted_fields = fields("BTC-27DEC24-60000-C", Side::Buy, "0.3", "0.0455", b"z");
    let mut market_fields = accepted_fields;
    market_fields.order_type = OrderType::Market;
    let ok_ctx = context(&policy, &cache, Some(&book));
    let mut degraded_ctx = ok_ctx;
    degraded_ctx.risk_state = RiskState::Degraded;

    // Warm up (first-use lazies, if any, are not per-intent costs).
    let warm = OrderIntent::new(accepted_fields);
    assert!(chain.evaluate(&warm, &ok_ctx).is_ok());

    COUNTING.store(true, Ordering::SeqCst);
    let mut outcomes = [false; 3];
    for _ in 0..100 {
        let intent = OrderIntent::new(accepted_fields);
        let label = Label::for_intent(&intent);
        outcomes[0] = chain.evaluate(&intent, &ok_ctx).is_ok() && label.is_ok();
        outcomes[1] = chain.evaluate(&OrderIntent::new(market_fields), &ok_ctx).is_err();
        outcomes[2] = chain.evaluate(&intent, &degraded_ctx).is_err();
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(outcomes, [true; 3]);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "allocations during evaluate");

    // The counter works: a Vec allocation is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let v: Vec<u8> = Vec::with_capacity(16);
    COUNTING.store(false, Ordering::SeqCst);
    drop(v);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > 0);
}
