//! The hot side of traceability never allocates: pushing records (including onto a full
//! ring, the overflow path) and the mode/latch change detectors run under a counting global
//! allocator (this test binary only, measuring thread only) and must count zero. A control
//! proves the counter sees an allocation made inside the measured window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode, TradingMode};
use hotpath::trace::{trace_ring, TraceEvent, TraceKind};

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
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

fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn trace_push_and_change_detection_do_not_allocate() {
    let (mut p, mut c) = trace_ring(64);
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            p.push(TraceEvent::new(TraceKind::Sent, i, 1).with_value(i));
            let mode = if i % 2 == 0 { TradingMode::Active } else { TradingMode::ReduceOnly };
            let reasons = ModeReasonCode::ALL.into_iter().take(usize::from(i % 3 == 0));
            p.observe_mode(mode, reasons, 1);
            let latch = OpenPermissionReasonCode::ALL.into_iter().take(usize::from(i % 5 == 0));
            p.observe_latch(latch, 1);
        }
    });
    assert_eq!(n, 0, "the hot side allocated");
    assert!(p.overflowed() > 0, "the ring filled, so the overflow path ran too");
    assert_eq!(c.depth(), 64);
    assert!(c.pop().is_some());
}

#[test]
fn control_the_counter_sees_allocations() {
    let n = allocations_in(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(16));
    });
    assert_eq!(n, 1);
}
