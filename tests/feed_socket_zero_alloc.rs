//! Issue 5: the feed thread's whole receive path allocates nothing per market event after
//! warm-up — socket read, TLS-less WebSocket framing (tungstenite's reused buffers), the
//! decoder's tape and the book notification it yields — measured on a real market-data
//! session to the in-process simulator on loopback, with the engine's own channels
//! (`book.{instrument}.100ms`) and a grouped top-N book.
//!
//! A counting global allocator counts on this thread only, inside `Connection::poll`, after
//! a 2 s warm-up. `tests/engine_zero_alloc.rs` covers what happens to the event after the
//! decode (book apply, publish, the trading stage); this file covers what comes before it.
//! The control plants one allocation per book message in the callback and must see exactly
//! that many.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::venue::conn::{ConnConfig, Connection};
use hotpath::venue::Message;

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
// flag and counter, no allocation of its own).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract for `alloc` is passed through unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as for `dealloc`; `new_size` is the caller's, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const WARM_UP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(8);
/// Book messages the measured window must hold (the simulator requotes each book about
/// every 300 ms: ~80 expected over three channels).
const BOOKS_MIN: u64 = 40;

/// (book messages measured, allocations counted while polling them).
fn run(leak_per_book: bool) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: dir.path().join("journal.jsonl"),
        ..simulator::SimConfig::default()
    })
    .expect("simulator");
    let clock: Arc<dyn hotpath::clock::Clock> = Arc::new(hotpath::clock::SystemClock);
    let mut md = Connection::connect(&ConnConfig::new(&sim.ws_url()), clock).expect("connect");
    let channels = [
        "book.BTC-PERPETUAL.100ms",
        "book.ETH-PERPETUAL.100ms",
        "book.BTC-PERPETUAL.none.10.100ms",
    ];
    let confirmed =
        md.subscribe(&channels, Duration::from_secs(5), &mut |_| {}).expect("subscribe");
    assert_eq!(confirmed, channels.len());
    let started = Instant::now();
    let (mut books, mut allocations) = (0_u64, 0_u64);
    while started.elapsed() < WARM_UP + MEASURE {
        let measuring = started.elapsed() > WARM_UP;
        let mut seen = 0_u64;
        ALLOCATIONS.with(|a| a.set(0));
        COUNTING.with(|c| c.set(measuring));
        let polled = md.poll(Duration::from_millis(5), &mut |inc| {
            if let Message::Notification(n) = inc.msg {
                if n.channel.starts_with("book.") {
                    seen += 1;
                    if leak_per_book {
                        std::hint::black_box(Vec::<u8>::with_capacity(8));
                    }
                }
            }
        });
        COUNTING.with(|c| c.set(false));
        polled.expect("market-data session");
        if measuring {
            books += seen;
            allocations += ALLOCATIONS.with(Cell::get);
        }
    }
    md.close();
    sim.shutdown();
    (books, allocations)
}

#[test]
fn feed_session_receive_path_allocates_nothing_per_book_message_after_warm_up() {
    let (books, allocations) = run(false);
    println!("feed receive path: {allocations} allocations over {books} book messages");
    assert!(books >= BOOKS_MIN, "too few book messages measured: {books}");
    assert_eq!(
        allocations, 0,
        "allocations on the feed's receive path: {allocations} over {books}"
    );
}

#[test]
fn control_an_allocation_per_book_message_is_counted() {
    let (books, allocations) = run(true);
    assert!(books >= BOOKS_MIN, "{books}");
    assert_eq!(allocations, books, "one planted allocation per book message");
}
