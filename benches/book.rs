//! L2 book update cost: applying a two-level change (one `change`, one `new`/`delete`
//! pair alternating) to a 50-level book, with change-id continuity checks.
//!
//! Run: `cargo bench -p stoic --bench book`.

use std::hint::black_box;
use std::time::Instant;

use hotpath::feed::L2Book;
use hotpath::venue::messages::{BookKind, BookUpdate, Level, LevelAction};
use hotpath::venue::Decimal8;

const ROUNDS: usize = 15;
const ITERS: usize = 100_000;
const DEPTH: i64 = 50;

fn lvl(action: LevelAction, price: i64, amount: i64) -> Level {
    Level { action, price: Decimal8::from_raw(price), amount: Decimal8::from_raw(amount) }
}

fn main() {
    let tick = 50_000; // 0.0005
    let bids: Vec<Level> =
        (0..DEPTH).map(|i| lvl(LevelAction::New, 1_600_000 - i * tick, 100_000_000)).collect();
    let asks: Vec<Level> =
        (0..DEPTH).map(|i| lvl(LevelAction::New, 1_650_000 + i * tick, 100_000_000)).collect();
    let mut book = L2Book::new("BTC-25JUL25-110000-C", 256);
    let snap = BookUpdate {
        instrument_name: "BTC-25JUL25-110000-C",
        kind: BookKind::Snapshot,
        change_id: 1,
        prev_change_id: None,
        timestamp: 0,
        bids: &bids,
        asks: &asks,
    };
    book.apply(&snap).unwrap();
    // Alternate: insert a level between the bests, then delete it; change a deep level.
    let mid = 1_625_000;
    let ins_bid = [
        lvl(LevelAction::Change, 1_600_000 - 20 * tick, 200_000_000),
        lvl(LevelAction::New, mid, 50_000_000),
    ];
    let del_bid = [
        lvl(LevelAction::Change, 1_600_000 - 20 * tick, 100_000_000),
        lvl(LevelAction::Delete, mid, 0),
    ];
    let mut change_id = 1u64;
    let mut step = |book: &mut L2Book, i: usize| {
        let prev = change_id;
        change_id += 2;
        let u = BookUpdate {
            instrument_name: "BTC-25JUL25-110000-C",
            kind: BookKind::Change,
            change_id,
            prev_change_id: Some(prev),
            timestamp: 0,
            bids: if i % 2 == 0 { &ins_bid } else { &del_bid },
            asks: &[],
        };
        black_box(book.apply(&u).is_ok());
    };
    for i in 0..ITERS {
        step(&mut book, i);
    }
    let mut per: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..ITERS {
                step(&mut book, i);
            }
            t.elapsed().as_nanos() as f64 / ITERS as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    assert!(book.is_live(), "the bench must measure successful applies");
    println!(
        "L2 book apply (2-level change, {DEPTH}-level sides): {:.1} ns/update (median of {ROUNDS})",
        per[ROUNDS / 2]
    );
}
