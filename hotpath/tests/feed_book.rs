//! L2 book continuity against the sample messages, plus synthetic level edge cases.

use std::path::PathBuf;

use hotpath::feed::{BookError, BookState, L2Book, TradeTape};
use hotpath::venue::messages::{BookKind, BookUpdate, Level, LevelAction, NotificationData};
use hotpath::venue::{Decimal8, Decoder, Message};

fn sample(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/venue_samples")
        .join(name);
    std::fs::read(p).unwrap()
}

fn d(s: &str) -> Decimal8 {
    Decimal8::parse_str(s).unwrap()
}

fn apply_sample(book: &mut L2Book, dec: &mut Decoder, name: &str) -> Result<(), BookError> {
    let mut b = sample(name);
    let Message::Notification(n) = dec.decode(&mut b).unwrap() else { panic!("{name}") };
    let NotificationData::Book(u) = n.data else { panic!("{name}") };
    book.apply(&u)
}

#[test]
fn snapshot_change_then_gap_from_samples() {
    let mut dec = Decoder::new();
    let mut book = L2Book::new("BTC-25JUL25-110000-C", 16);
    assert_eq!(book.state(), BookState::Empty);
    // A change before any snapshot is refused, not applied.
    assert_eq!(
        apply_sample(&mut book, &mut dec, "book_option_change.json"),
        Err(BookError::NotLive)
    );

    apply_sample(&mut book, &mut dec, "book_option_snapshot.json").unwrap();
    assert!(book.is_live());
    let bids_before = book.bids().len();
    let asks_before = book.asks().len();
    apply_sample(&mut book, &mut dec, "book_option_change.json").unwrap();
    assert_eq!(book.last_change_id(), Some(69_871_234_509));
    // change 0.016 → 2.4, new 0.0165; delete ask 0.0175.
    assert_eq!(book.bids().len(), bids_before + 1);
    assert_eq!(book.asks().len(), asks_before - 1);
    assert_eq!(book.best_bid(), Some((d("0.0165"), d("5"))));
    assert!(book.bids().contains(&(d("0.016"), d("2.4"))));
    assert!(!book.is_crossed());

    let r = apply_sample(&mut book, &mut dec, "book_option_change_gap.json");
    assert_eq!(r, Err(BookError::Gap { expected: 69_871_234_509, got: 69_871_234_517 }));
    assert!(book.is_gapped());
    assert!(book.resubscribe_needed());
    assert_eq!(book.gaps_total(), 1);
    // Further changes stay refused while gapped; a snapshot heals it.
    assert_eq!(
        apply_sample(&mut book, &mut dec, "book_option_change.json"),
        Err(BookError::NotLive)
    );
    book.resubscribe_sent();
    assert!(!book.resubscribe_needed());
    assert!(book.is_gapped());
    apply_sample(&mut book, &mut dec, "book_option_snapshot.json").unwrap();
    assert!(book.is_live());
}

#[test]
fn unrelated_real_captures_are_detected_as_a_gap() {
    let mut dec = Decoder::new();
    let mut b = sample("book_snapshot.json");
    let Message::Notification(n) = dec.decode(&mut b).unwrap() else { panic!() };
    let NotificationData::Book(u) = n.data else { panic!() };
    let mut book = L2Book::new(u.instrument_name, 32);
    book.apply(&u).unwrap();
    let mut b = sample("book_change.json");
    let Message::Notification(n) = dec.decode(&mut b).unwrap() else { panic!() };
    let NotificationData::Book(u) = n.data else { panic!() };
    // The two captures were taken at different times: the change does not chain.
    let prev = u.prev_change_id.unwrap();
    assert_eq!(book.apply(&u), Err(BookError::Gap { expected: 1_550_694_837, got: prev }));
    assert!(book.resubscribe_needed());
}

fn upd<'a>(
    kind: BookKind,
    change_id: u64,
    prev: Option<u64>,
    bids: &'a [Level],
    asks: &'a [Level],
) -> BookUpdate<'a> {
    BookUpdate {
        instrument_name: "X",
        kind,
        change_id,
        prev_change_id: prev,
        timestamp: 1,
        bids,
        asks,
    }
}

fn lvl(action: LevelAction, p: i64, a: i64) -> Level {
    Level { action, price: Decimal8::from_raw(p), amount: Decimal8::from_raw(a) }
}

#[test]
fn ordering_and_capacity_eviction() {
    use LevelAction::*;
    let mut book = L2Book::new("X", 3);
    let bids = [lvl(New, 10, 1), lvl(New, 30, 1), lvl(New, 20, 1)];
    let asks = [lvl(New, 50, 1), lvl(New, 40, 1)];
    book.apply(&upd(BookKind::Snapshot, 1, None, &bids, &asks)).unwrap();
    assert_eq!(book.bids().iter().map(|l| l.0.raw).collect::<Vec<_>>(), vec![30, 20, 10]);
    assert_eq!(book.asks().iter().map(|l| l.0.raw).collect::<Vec<_>>(), vec![40, 50]);
    // Full side: a better level evicts the worst; a worse one is dropped.
    book.apply(&upd(BookKind::Change, 2, Some(1), &[lvl(New, 35, 2)], &[])).unwrap();
    assert_eq!(book.bids().iter().map(|l| l.0.raw).collect::<Vec<_>>(), vec![35, 30, 20]);
    book.apply(&upd(BookKind::Change, 3, Some(2), &[lvl(New, 5, 2)], &[])).unwrap();
    assert_eq!(book.bids().len(), 3);
    assert!(book.is_truncated());
    // Ids jump by more than one: only chaining matters.
    book.apply(&upd(BookKind::Change, 9, Some(3), &[lvl(Delete, 35, 0)], &[])).unwrap();
    assert_eq!(book.best_bid().map(|l| l.0.raw), Some(30));
}

#[test]
fn inconsistent_actions_gap_the_book() {
    use LevelAction::*;
    let mut book = L2Book::new("X", 8);
    book.apply(&upd(BookKind::Snapshot, 1, None, &[lvl(New, 10, 1)], &[])).unwrap();
    // `change` for a price we do not hold (book not truncated) ⇒ out of sync.
    let r = book.apply(&upd(BookKind::Change, 2, Some(1), &[lvl(Change, 11, 1)], &[]));
    assert_eq!(r, Err(BookError::Inconsistent));
    assert!(book.is_gapped() && book.resubscribe_needed());
    // A `new` for an existing price is also inconsistent.
    book.apply(&upd(BookKind::Snapshot, 3, None, &[lvl(New, 10, 1)], &[])).unwrap();
    let r = book.apply(&upd(BookKind::Change, 4, Some(3), &[lvl(New, 10, 1)], &[]));
    assert_eq!(r, Err(BookError::Inconsistent));
    // Wrong instrument leaves the state alone.
    book.apply(&upd(BookKind::Snapshot, 5, None, &[], &[])).unwrap();
    let other = BookUpdate { instrument_name: "Y", ..upd(BookKind::Change, 6, Some(5), &[], &[]) };
    assert_eq!(book.apply(&other), Err(BookError::InstrumentMismatch));
    assert!(book.is_live());
}

#[test]
fn top_n_replaces() {
    let mut book = L2Book::new("X", 8);
    let a = [lvl(LevelAction::Set, 10, 1), lvl(LevelAction::Set, 9, 1)];
    book.apply(&upd(BookKind::TopN, 1, None, &a, &[])).unwrap();
    let b = [lvl(LevelAction::Set, 8, 1)];
    book.apply(&upd(BookKind::TopN, 2, None, &b, &[])).unwrap();
    assert_eq!(book.bids().len(), 1);
    assert_eq!(book.best_bid().map(|l| l.0.raw), Some(8));
}

#[test]
fn trade_tape_keeps_the_newest() {
    let mut dec = Decoder::new();
    let mut b = sample("subscription_trades.json");
    let Message::Notification(n) = dec.decode(&mut b).unwrap() else { panic!() };
    let NotificationData::Trades(trades) = n.data else { panic!() };
    let mut tape = TradeTape::new(1);
    for t in &trades {
        tape.push(t);
    }
    assert_eq!(tape.len(), 1);
    assert_eq!(tape.total(), trades.len() as u64);
    assert_eq!(tape.last().map(|t| t.price), trades.last().map(|t| t.price));
}
