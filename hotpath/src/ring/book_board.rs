//! The feed → trading handoff for market data: one seqlock slot per instrument holding its
//! latest book, a bounded `rtrb` notice ring saying which slot changed, and atomics the cold
//! path reads (notice counts, overflows, ring depth, index prices).
//!
//! ```text
//! feed thread                                   trading thread
//!   L2Book::apply ─▶ BookWriter::publish(slot) ──▶ slot[i] (Snapshot<PackedBook>)
//!                                       └─ push i ─▶ notice ring ─▶ BookReader::drain
//!                                                                   (reads slot i if its
//!                                                                    version moved)
//! ```
//!
//! # Overflow policy: market data conflates, the feed never blocks
//! The book itself never queues: each publication overwrites the instrument's slot, so the
//! trading thread always reads the *latest* book of an instrument and never a stale
//! intermediate one ("latest book per instrument wins"). The notice ring only says "slot i
//! changed". When it is full, the notice is dropped, [`FeedCounters::notice_overflows`] is
//! incremented and the feed carries on; the change is not lost, because the trading thread
//! also calls [`BookReader::sweep`] every tick, which compares every slot's version with the
//! one it last read (one atomic load per slot). A full ring therefore costs latency for that
//! instrument (until the next sweep), never data, and never blocks the feed.
//!
//! # Allocation
//! [`book_board`] allocates the slots, the ring and the reader's tables once. `publish`,
//! `drain`, `sweep` and `index` allocate nothing.
//!
//! # Loom
//! No new lock-free code: the slots are [`Snapshot`] (modelled in `loom_tests/tests/seqlock.rs`),
//! the ring is `rtrb`, the counters are single atomics each read on their own (a monotonic
//! count or a last-value price: no invariant spans two of them).

use crate::domain::instrument::InstrumentName;
use crate::domain::units::{Price, Qty};
use crate::gates::market::{BookLevel, BookView, BOOK_VIEW_DEPTH};
use crate::ring::seqlock::{Plain, Snapshot, SnapshotReader, SnapshotWriter};
use crate::strategy::IndexPrices;
use crate::sync::{Arc, AtomicBool, AtomicI64, AtomicU64, Ordering};
use core::mem::size_of;

/// Notices the feed → trading ring holds (one per book change not yet drained).
pub const BOOK_NOTICE_RING_CAPACITY: usize = 1_024;
/// Most instruments one board carries (slot indices are `u16`).
pub const BOOK_BOARD_SLOTS_MAX: usize = 256;

/// A [`BookView`] as plain words, so a seqlock can publish it (the view itself has padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct PackedBook {
    bid_px: [i64; BOOK_VIEW_DEPTH],
    bid_qty: [i64; BOOK_VIEW_DEPTH],
    ask_px: [i64; BOOK_VIEW_DEPTH],
    ask_qty: [i64; BOOK_VIEW_DEPTH],
    last_update_ms: i64,
    /// bits 0..8 bid count, 8..16 ask count, bit 16 gapped, bit 17 "ever published".
    flags: u64,
}
const _: () = assert!(size_of::<PackedBook>() == (4 * BOOK_VIEW_DEPTH + 2) * 8);
// SAFETY: repr(C), only `i64`/`u64` fields and arrays of them (size asserted above), so no
// padding and every byte of a value is initialised.
unsafe impl Plain for PackedBook {}

const FLAG_GAPPED: u64 = 1 << 16;
const FLAG_PUBLISHED: u64 = 1 << 17;

impl PackedBook {
    const EMPTY: Self = Self {
        bid_px: [0; BOOK_VIEW_DEPTH],
        bid_qty: [0; BOOK_VIEW_DEPTH],
        ask_px: [0; BOOK_VIEW_DEPTH],
        ask_qty: [0; BOOK_VIEW_DEPTH],
        last_update_ms: 0,
        flags: 0,
    };

    /// Packs a view (the instrument is implied by the slot).
    #[must_use]
    pub fn pack(view: &BookView) -> Self {
        let mut p = Self::EMPTY;
        for (i, l) in view.bids().iter().enumerate() {
            p.bid_px[i] = l.price.raw();
            p.bid_qty[i] = l.qty.raw();
        }
        for (i, l) in view.asks().iter().enumerate() {
            p.ask_px[i] = l.price.raw();
            p.ask_qty[i] = l.qty.raw();
        }
        p.last_update_ms = view.last_update_ms;
        // Both counts are <= BOOK_VIEW_DEPTH (10), so they fit their 8 bits.
        p.flags = view.bids().len() as u64 | (view.asks().len() as u64) << 8 | FLAG_PUBLISHED;
        if view.gapped {
            p.flags |= FLAG_GAPPED;
        }
        p
    }

    /// The view of `instrument` this packs; `None` if nothing was ever published.
    #[must_use]
    pub fn unpack(&self, instrument: InstrumentName) -> Option<BookView> {
        if self.flags & FLAG_PUBLISHED == 0 {
            return None;
        }
        let level =
            |px: i64, qty: i64| BookLevel { price: Price::from_raw(px), qty: Qty::from_raw(qty) };
        let mut bids = [BookLevel::default(); BOOK_VIEW_DEPTH];
        let mut asks = [BookLevel::default(); BOOK_VIEW_DEPTH];
        let nb = usize::try_from(self.flags & 0xff).unwrap_or(0).min(BOOK_VIEW_DEPTH);
        let na = usize::try_from((self.flags >> 8) & 0xff).unwrap_or(0).min(BOOK_VIEW_DEPTH);
        for (i, slot) in bids.iter_mut().take(nb).enumerate() {
            *slot = level(self.bid_px[i], self.bid_qty[i]);
        }
        for (i, slot) in asks.iter_mut().take(na).enumerate() {
            *slot = level(self.ask_px[i], self.ask_qty[i]);
        }
        Some(BookView::from_levels(
            instrument,
            &bids[..nb],
            &asks[..na],
            self.last_update_ms,
            self.flags & FLAG_GAPPED != 0,
        ))
    }
}

/// Hot state of the feed that the cold path reads (metrics, progress lines, tests).
/// Each field is its own atomic; none is read together with another as one fact.
///
/// Layout: aligned to 128 B (the adjacent-line prefetcher pulls line pairs on x86-64), so the
/// block the feed writes on every change does not false-share with its neighbours.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct FeedCounters {
    /// Book publications (every applied change or snapshot).
    pub books_published: AtomicU64,
    /// Notices pushed into the ring.
    pub notices_pushed: AtomicU64,
    /// Notices the trading thread popped.
    pub notices_popped: AtomicU64,
    /// Notices dropped because the ring was full (the book itself is still in its slot).
    pub notice_overflows: AtomicU64,
    /// Book gaps repaired by resubscribing.
    pub resubscribes: AtomicU64,
    /// Market-data (re)connections made by the feed thread.
    pub connects: AtomicU64,
    /// Whether the market-data session is up right now.
    pub connected: AtomicBool,
    /// `btc_usd` index price (raw 1e-8; 0 = not seen yet).
    pub index_btc_raw: AtomicI64,
    /// `eth_usd` index price (raw 1e-8; 0 = not seen yet).
    pub index_eth_raw: AtomicI64,
}

impl FeedCounters {
    /// Notices waiting in the ring (pushed − popped; a racy but monotone-bounded reading).
    #[must_use]
    pub fn ring_depth(&self) -> u64 {
        let pushed = self.notices_pushed.load(Ordering::Relaxed);
        pushed.saturating_sub(self.notices_popped.load(Ordering::Relaxed))
    }

    /// The index prices as last published.
    #[must_use]
    pub fn index(&self) -> IndexPrices {
        let price = |raw: i64| (raw != 0).then(|| Price::from_raw(raw));
        IndexPrices {
            btc: price(self.index_btc_raw.load(Ordering::Acquire)),
            eth: price(self.index_eth_raw.load(Ordering::Acquire)),
        }
    }
}

/// The feed's end: writes slots, pushes notices. One per board (SPSC), not `Clone`.
#[derive(Debug)]
pub struct BookWriter {
    slots: Vec<SnapshotWriter<PackedBook>>,
    notices: rtrb::Producer<u16>,
    counters: Arc<FeedCounters>,
    wake: Option<std::thread::Thread>,
}

/// The trading thread's end: pops notices, reads changed slots into a view table.
#[derive(Debug)]
pub struct BookReader {
    names: Vec<InstrumentName>,
    slots: Vec<SnapshotReader<PackedBook>>,
    seen: Vec<u64>,
    notices: rtrb::Consumer<u16>,
    counters: Arc<FeedCounters>,
}

/// A board for `names` (slot `i` is `names[i]`) with a notice ring of `notice_capacity`.
///
/// # Panics
/// No instruments, more than [`BOOK_BOARD_SLOTS_MAX`], or a zero ring (start-up bugs).
#[must_use]
pub fn book_board(names: &[InstrumentName], notice_capacity: usize) -> (BookWriter, BookReader) {
    assert!(!names.is_empty() && names.len() <= BOOK_BOARD_SLOTS_MAX, "1..=256 instruments");
    assert!(notice_capacity > 0, "a notice ring needs room for one notice");
    let (producer, consumer) = rtrb::RingBuffer::new(notice_capacity);
    let counters = Arc::new(FeedCounters::default());
    let (writers, readers): (Vec<_>, Vec<_>) =
        names.iter().map(|_| Snapshot::new(PackedBook::EMPTY)).unzip();
    let seen = readers.iter().map(|r| r.read_versioned().0).collect();
    (
        BookWriter {
            slots: writers,
            notices: producer,
            counters: Arc::clone(&counters),
            wake: None,
        },
        BookReader { names: names.to_vec(), slots: readers, seen, notices: consumer, counters },
    )
}

impl BookWriter {
    /// Unpark `thread` after each publication (a parked trading thread wakes at once).
    pub fn set_wake(&mut self, thread: std::thread::Thread) {
        self.wake = Some(thread);
    }

    /// Publishes slot `slot`'s latest book and pushes a notice; a full ring drops the notice
    /// and counts it (module docs). Returns whether the notice was queued. Never blocks.
    ///
    /// # Panics
    /// `slot` out of range (a wiring bug).
    pub fn publish(&mut self, slot: usize, view: &BookView) -> bool {
        self.slots[slot].publish(PackedBook::pack(view));
        self.counters.books_published.fetch_add(1, Ordering::Relaxed);
        // slot < BOOK_BOARD_SLOTS_MAX (256) by construction.
        let queued = self.notices.push(slot as u16).is_ok();
        if queued {
            self.counters.notices_pushed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters.notice_overflows.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(t) = &self.wake {
            t.unpark();
        }
        queued
    }

    /// Publishes an index price (`None` = unknown).
    pub fn set_index(&self, currency: &str, price: Option<Price>) {
        let raw = price.map_or(0, Price::raw);
        match currency {
            "BTC" => self.counters.index_btc_raw.store(raw, Ordering::Release),
            "ETH" => self.counters.index_eth_raw.store(raw, Ordering::Release),
            _ => {}
        }
    }

    /// The shared counters (the feed updates connection fields through them).
    #[must_use]
    pub fn counters(&self) -> &FeedCounters {
        &self.counters
    }

    /// Free notice slots right now.
    #[must_use]
    pub fn notice_slots_free(&self) -> usize {
        self.notices.slots()
    }
}

impl BookReader {
    /// Instruments by slot.
    #[must_use]
    pub fn names(&self) -> &[InstrumentName] {
        &self.names
    }

    /// The shared counters.
    #[must_use]
    pub fn counters(&self) -> &FeedCounters {
        &self.counters
    }

    /// The counters for a cold thread to read on its own schedule (metrics).
    #[must_use]
    pub fn shared_counters(&self) -> Arc<FeedCounters> {
        Arc::clone(&self.counters)
    }

    /// The index prices the feed last published.
    #[must_use]
    pub fn index(&self) -> IndexPrices {
        self.counters.index()
    }

    fn refresh(&mut self, slot: usize, views: &mut [Option<BookView>]) -> bool {
        let (version, packed) = self.slots[slot].read_versioned();
        if version == self.seen[slot] {
            return false;
        }
        self.seen[slot] = version;
        views[slot] = packed.unpack(self.names[slot]);
        true
    }

    /// Pops up to `budget` notices and refreshes the slots they name into `views` (indexed
    /// like [`Self::names`]). Returns how many notices were handled. Never blocks.
    ///
    /// # Panics
    /// `views` shorter than the board (a wiring bug).
    pub fn drain(&mut self, budget: usize, views: &mut [Option<BookView>]) -> usize {
        assert!(views.len() >= self.names.len(), "one view per slot");
        let mut handled = 0;
        while handled < budget {
            let Ok(slot) = self.notices.pop() else { break };
            handled += 1;
            let slot = usize::from(slot);
            if slot < self.names.len() {
                self.refresh(slot, views);
            }
        }
        if handled > 0 {
            self.counters.notices_popped.fetch_add(handled as u64, Ordering::Relaxed);
        }
        handled
    }

    /// Compares every slot's version with the last one read and refreshes the changed ones
    /// (catches changes whose notice was dropped on overflow). Returns how many changed.
    ///
    /// # Panics
    /// `views` shorter than the board (a wiring bug).
    pub fn sweep(&mut self, views: &mut [Option<BookView>]) -> usize {
        assert!(views.len() >= self.names.len(), "one view per slot");
        (0..self.names.len()).filter(|&slot| self.refresh(slot, views)).count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::domain::instrument::Instrument;

    fn name(s: &str) -> InstrumentName {
        Instrument::parse(s).unwrap().name()
    }

    fn view(n: InstrumentName, bid: i64, gapped: bool) -> BookView {
        let l = |p: i64| BookLevel { price: Price::from_raw(p), qty: Qty::from_raw(100) };
        BookView::from_levels(n, &[l(bid), l(bid - 1)], &[l(bid + 5)], 42, gapped)
    }

    #[test]
    fn pack_round_trips_and_unpublished_is_none() {
        let n = name("BTC-PERPETUAL");
        assert_eq!(PackedBook::EMPTY.unpack(n), None);
        for gapped in [false, true] {
            let v = view(n, 1_000, gapped);
            assert_eq!(PackedBook::pack(&v).unpack(n), Some(v));
        }
    }

    #[test]
    fn full_notice_ring_conflates_latest_book_wins_and_sweep_recovers() {
        let names = [name("BTC-PERPETUAL"), name("ETH-PERPETUAL")];
        let (mut w, mut r) = book_board(&names, 2);
        let mut views = [None; 2];
        assert!(w.publish(0, &view(names[0], 100, false)));
        assert!(w.publish(1, &view(names[1], 200, false)));
        // Ring full: the notice is dropped and counted, the book is not lost.
        assert!(!w.publish(0, &view(names[0], 300, false)));
        assert_eq!(w.counters().notice_overflows.load(Ordering::Relaxed), 1);
        assert_eq!(r.counters().ring_depth(), 2);
        assert_eq!(r.drain(16, &mut views), 2);
        // The notice for slot 0 already reads the latest (300): latest book wins.
        assert_eq!(views[0].unwrap().best_bid().unwrap().price.raw(), 300);
        assert_eq!(r.sweep(&mut views), 0, "nothing newer than what drain read");
        // Three changes of slot 1 into a ring with room for two: one notice overflows, and
        // the sweep alone reads the latest book without popping anything.
        w.publish(1, &view(names[1], 250, false));
        w.publish(1, &view(names[1], 260, false));
        assert!(!w.publish(1, &view(names[1], 270, false)));
        assert_eq!(w.counters().notice_overflows.load(Ordering::Relaxed), 2);
        assert_eq!(r.sweep(&mut views), 1);
        assert_eq!(views[1].unwrap().best_bid().unwrap().price.raw(), 270);
        assert_eq!(r.counters().ring_depth(), 2);
        assert_eq!(r.drain(16, &mut views), 2, "stale notices are popped, nothing re-read");
        assert_eq!(views[1].unwrap().best_bid().unwrap().price.raw(), 270);
    }

    #[test]
    fn index_prices_round_trip() {
        let (w, r) = book_board(&[name("BTC-PERPETUAL")], 4);
        assert_eq!(r.index(), IndexPrices::default());
        w.set_index("BTC", Some(Price::from_raw(7)));
        assert_eq!(r.index().btc, Some(Price::from_raw(7)));
        w.set_index("BTC", None);
        assert_eq!(r.index().btc, None);
    }
}
