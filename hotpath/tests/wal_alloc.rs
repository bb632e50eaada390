//! The journal path (encode + stage + pwrite + fdatasync) allocates nothing after open:
//! counted with a global allocator over many append+sync rounds of a life-cycle record whose
//! ledger update needs no new string (cumulative fill; the trade id reuses its buffer).

mod wal_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use hotpath::wal::{Record, SyncMode};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn append_and_sync_do_not_allocate_after_warm_up() {
    for mode in [SyncMode::PwriteFdatasync, SyncMode::MmapMsync] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = wal_common::open(dir.path(), wal_common::cfg(256 * 1024, mode));
        wal.prepare_spare().unwrap();
        let l = wal_common::label(0);
        wal.append(0, &wal_common::intent(0, &l, b"canonical")).unwrap();
        wal.append(0, &Record::Sent { intent_hash: 0x1000 }).unwrap();
        let _ = wal.sync().unwrap();
        let before = ALLOCS.load(Ordering::Relaxed);
        for q in 1..=200i64 {
            let seq = wal
                .append(
                    q,
                    &Record::PartiallyFilled { intent_hash: 0x1000, filled_qty: q, trade_id: "" },
                )
                .unwrap();
            if q % 4 == 0 {
                assert!(wal.sync().unwrap().covers(seq));
            }
        }
        let _ = wal.sync().unwrap();
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        assert_eq!(allocs, 0, "{mode:?}: {allocs} allocations on the append/sync path");
        assert_eq!(wal.ledger().get(0x1000).unwrap().filled_qty, 200);
    }
}
