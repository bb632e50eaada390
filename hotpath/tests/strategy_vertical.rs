//! The call-vertical taker: exactly two legs under one group id, IOC limits within the
//! slippage bound, entry only on edge and depth, close and repair as reduce-only legs,
//! determinism, and every intent passing the real gate chain.

mod strategy_common;

use hotpath::domain::intent::{GroupId, OrderIntent, Side, StrategyId, TimeInForce};
use hotpath::gates::{BookView, IntentClass};
use hotpath::strategy::vertical::{Vertical, VerticalConfigError, VerticalParams};
use hotpath::strategy::Strategy;
use strategy_common::*;

fn vertical(params: VerticalParams) -> Vertical {
    Vertical::new(StrategyId::new_checked("vertical").unwrap(), 3, name(K1), name(K2), params)
        .unwrap()
}

/// Debit 0.0405 - 0.0160 = 0.0245 = 27 % of the width (10 000 / 110 000 = 0.0909 BTC).
fn cheap() -> [BookView; 2] {
    [book(K1, "0.04", "0.0405"), book(K2, "0.016", "0.0165")]
}

/// Debit 0.0955 - 0.0160 = 87 % of the width.
fn dear() -> [BookView; 2] {
    [book(K1, "0.095", "0.0955"), book(K2, "0.016", "0.0165")]
}

/// Credit 0.075 - 0.0165 = 64 % of the width.
fn rich() -> [BookView; 2] {
    [book(K1, "0.075", "0.0755"), book(K2, "0.016", "0.0165")]
}

fn group(intents: &[OrderIntent]) -> GroupId {
    intents[0].fields().group_id
}

#[test]
fn entry_is_two_ioc_legs_under_one_group_within_the_slippage_bound_and_passes_the_gates() {
    let (policy, cache) = (policy(), cache());
    let books = cheap();
    let mut world = Loopback::default();
    let mut v = vertical(VerticalParams::default());
    let legs = places(&world.tick(&mut v, &cache, &books, NOW_MS));
    assert_eq!(legs.len(), 2, "{legs:?}");
    let (l0, l1) = (legs[0].fields(), legs[1].fields());
    assert_eq!(l0.group_id, l1.group_id, "one group");
    assert_eq!((l0.leg_index, l1.leg_index), (0, 1));
    assert_eq!((l0.instrument.as_str(), l0.side), (K1, Side::Buy));
    assert_eq!((l1.instrument.as_str(), l1.side), (K2, Side::Sell));
    // One tick (0.0005) through the best: the slippage bound.
    assert_eq!(l0.limit_price, Some(px("0.041")));
    assert_eq!(l1.limit_price, Some(px("0.0155")));
    for f in [l0, l1] {
        assert_eq!(f.time_in_force, TimeInForce::ImmediateOrCancel);
        assert!(!f.post_only && !f.reduce_only);
        assert_eq!(f.qty, qty("0.1"));
    }
    for leg in &legs {
        let accepted = gate(&policy, &cache, &world.exposure, &books, leg);
        let accepted = accepted.unwrap_or_else(|r| panic!("{r:?}"));
        assert_eq!(accepted.class, IntentClass::Open);
        assert!(accepted.advisory.is_none());
    }
    assert_eq!(v.attempts(), 1);
}

#[test]
fn no_entry_without_edge_depth_or_usable_books() {
    let cache = cache();
    let nothing = |books: &[BookView], params: VerticalParams| {
        let mut v = vertical(params);
        Loopback::default().tick(&mut v, &cache, books, NOW_MS).is_empty()
    };
    let defaults = VerticalParams::default();
    assert!(!nothing(&cheap(), defaults), "the control enters");
    assert!(nothing(&dear(), defaults), "debit 87 % of width > 30 %");
    assert!(!nothing(&dear(), VerticalParams { entry_debit_bps_of_width_max: 9_000, ..defaults }));
    // 101 lots = 10.1 BTC > the 10 BTC at the top: the IOC would sweep; no entry.
    assert!(nothing(&cheap(), VerticalParams { lots: 101, ..defaults }));
    assert!(!nothing(&cheap(), VerticalParams { lots: 100, ..defaults }));
    let [k1, k2] = cheap();
    let gapped =
        BookView::from_levels(k2.instrument, k2.bids(), k2.asks(), k2.last_update_ms, true);
    assert!(nothing(&[k1, gapped], defaults));
    assert!(nothing(&[k1], defaults), "K2 book missing");
    let stale = book_at(K2, "0.016", "0.0165", NOW_MS - 5_000);
    assert!(nothing(&[k1, stale], defaults));
}

#[test]
fn retries_wait_and_pending_legs_block_new_attempts() {
    let (policy, cache) = (policy(), cache());
    let books = cheap();
    let mut world = Loopback::default();
    let mut v = vertical(VerticalParams::default());
    let first = places(&world.tick(&mut v, &cache, &books, NOW_MS));
    // Legs rejected or unfilled (IOC, nothing pending, still flat): wait for retry_ms.
    assert!(world.tick(&mut v, &cache, &books, NOW_MS + 4_999).is_empty());
    let fresh = [
        book_at(K1, "0.04", "0.0405", NOW_MS + 4_990),
        book_at(K2, "0.016", "0.0165", NOW_MS + 4_990),
    ];
    let second = places(&world.tick(&mut v, &cache, &fresh, NOW_MS + 5_000));
    assert_eq!(second.len(), 2);
    assert_ne!(group(&first), group(&second), "a new attempt is a new group");
    // Accepted legs reserve pending exposure: no new attempt while they are in flight.
    for leg in &second {
        let accepted = gate(&policy, &cache, &world.exposure, &books, leg).unwrap();
        world.exposure.reserve(&accepted);
    }
    let later = [
        book_at(K1, "0.04", "0.0405", NOW_MS + 20_000),
        book_at(K2, "0.016", "0.0165", NOW_MS + 20_000),
    ];
    assert!(world.tick(&mut v, &cache, &later, NOW_MS + 20_000).is_empty());
}

#[test]
fn a_held_spread_is_closed_with_reduce_only_legs_when_rich_or_expiring() {
    let (policy, cache) = (policy(), cache());
    let mut world = Loopback::default();
    world.exposure.set_position(name(K1), qty("0.1"));
    world.exposure.set_position(name(K2), qty("-0.1"));
    let mut v = vertical(VerticalParams::default());
    // Not rich enough (credit 26 % < 60 %), not expiring: hold.
    assert!(world.tick(&mut v, &cache, &cheap(), NOW_MS).is_empty());
    let books = rich();
    let legs = places(&world.tick(&mut v, &cache, &books, NOW_MS + 1));
    assert_eq!(legs.len(), 2);
    let (l0, l1) = (legs[0].fields(), legs[1].fields());
    assert_eq!(l0.group_id, l1.group_id);
    assert_eq!((l0.instrument.as_str(), l0.side, l0.leg_index), (K1, Side::Sell, 0));
    assert_eq!((l1.instrument.as_str(), l1.side, l1.leg_index), (K2, Side::Buy, 1));
    assert_eq!((l0.limit_price, l1.limit_price), (Some(px("0.0745")), Some(px("0.017"))));
    for leg in &legs {
        let f = leg.fields();
        assert!(f.reduce_only && f.time_in_force == TimeInForce::ImmediateOrCancel);
        assert_eq!(f.qty, qty("0.1"));
        // The gates, not the strategy, say what it is: both legs take a position to zero.
        let accepted = gate(&policy, &cache, &world.exposure, &books, leg).unwrap();
        assert_eq!(accepted.class, IntentClass::Close);
    }
    // Expiring: close whatever the credit, one hour before expiry (default).
    let expiry = meta(&cache, K1).expiration_timestamp_ms.unwrap();
    let t = expiry - 3_600_000;
    let mut v = vertical(VerticalParams::default());
    let near = [book_at(K1, "0.04", "0.0405", t), book_at(K2, "0.016", "0.0165", t)];
    assert!(Loopback { exposure: world.exposure.clone(), open_orders: Vec::new() }
        .tick(&mut v, &cache, &near, t - 1)
        .is_empty());
    let legs = places(&world.tick(&mut v, &cache, &near, t));
    assert_eq!(legs.len(), 2);
    assert!(legs.iter().all(|l| l.fields().reduce_only));
}

#[test]
fn a_lone_leg_is_repaired_with_one_reduce_only_leg() {
    let (policy, cache) = (policy(), cache());
    let books = cheap();
    for (k1_pos, k2_pos, instrument, side, amount) in [
        ("0.1", "0", K1, Side::Sell, "0.1"),
        ("0", "-0.1", K2, Side::Buy, "0.1"),
        ("0.3", "-0.1", K1, Side::Sell, "0.2"),
        ("0.1", "-0.4", K2, Side::Buy, "0.3"),
        ("-0.2", "0", K1, Side::Buy, "0.2"),
        ("0", "0.2", K2, Side::Sell, "0.2"),
    ] {
        let mut world = Loopback::default();
        world.exposure.set_position(name(K1), qty(k1_pos));
        world.exposure.set_position(name(K2), qty(k2_pos));
        let mut v = vertical(VerticalParams::default());
        let legs = places(&world.tick(&mut v, &cache, &books, NOW_MS));
        assert_eq!(legs.len(), 1, "{k1_pos}/{k2_pos}: {legs:?}");
        let f = legs[0].fields();
        assert_eq!(
            (f.instrument.as_str(), f.side, f.qty, f.leg_index),
            (instrument, side, qty(amount), 0)
        );
        assert!(f.reduce_only);
        let accepted = gate(&policy, &cache, &world.exposure, &books, &legs[0]).unwrap();
        assert!(accepted.class.is_risk_reducing(), "{k1_pos}/{k2_pos}");
    }
}

fn script(v: &mut Vertical) -> Vec<Vec<u8>> {
    let cache = cache();
    let mut world = Loopback::default();
    let mut out = Vec::new();
    let at = |books: [BookView; 2], t: i64| {
        books.map(|b| BookView::from_levels(b.instrument, b.bids(), b.asks(), t - 5, false))
    };
    out.extend(transcript(&world.tick(v, &cache, &at(cheap(), NOW_MS), NOW_MS)));
    world.exposure.set_position(name(K1), qty("0.1"));
    world.exposure.set_position(name(K2), qty("-0.1"));
    let t = NOW_MS + 6_000;
    out.extend(transcript(&world.tick(v, &cache, &at(rich(), t), t)));
    world.exposure.set_position(name(K2), qty("0"));
    let t = NOW_MS + 12_000;
    out.extend(transcript(&world.tick(v, &cache, &at(dear(), t), t)));
    out
}

#[test]
fn same_inputs_and_state_give_the_same_intents() {
    let a = script(&mut vertical(VerticalParams::default()));
    let b = script(&mut vertical(VerticalParams::default()));
    assert_eq!(a.len(), 5, "open (2) + close (2) + repair (1)");
    assert_eq!(a, b);
    let mut other = Vertical::new(
        StrategyId::new_checked("vertical").unwrap(),
        4,
        name(K1),
        name(K2),
        VerticalParams::default(),
    )
    .unwrap();
    assert_ne!(a, script(&mut other), "the seed is part of the decision key");
}

#[test]
fn configuration_is_checked() {
    let id = StrategyId::new_checked("vertical").unwrap();
    let p = VerticalParams::default();
    assert_eq!(Vertical::new(id, 0, name(K2), name(K1), p).err(), Some(VerticalConfigError::Shape));
    assert_eq!(
        Vertical::new(id, 0, name(PUT), name(K2), p).err(),
        Some(VerticalConfigError::NotACall)
    );
    assert_eq!(
        Vertical::new(id, 0, name(K1), name("BTC-26SEP25-110000-C"), p).err(),
        Some(VerticalConfigError::Shape)
    );
    let bad = VerticalParams { lots: 0, ..p };
    assert_eq!(
        Vertical::new(id, 0, name(K1), name(K2), bad).err(),
        Some(VerticalConfigError::Param("lots"))
    );
    let v = Vertical::new(id, 0, name(K1), name(K2), p).unwrap();
    // The legs and the currency's perpetual (the group executor's hedge needs its book).
    assert_eq!(v.instruments(), &[name(K1), name(K2), name("BTC-PERPETUAL")]);
}
