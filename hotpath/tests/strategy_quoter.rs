//! The single-leg quoter: determinism, skew direction, inventory limit, requote on a mid
//! move and on age, pulling quotes from a gapped/missing/stale/crossed book, never crossing
//! as post-only, and every intent passing the real gate chain.

mod strategy_common;

use hotpath::domain::intent::{Side, StrategyId, TimeInForce};
use hotpath::domain::units::{Price, Qty};
use hotpath::gates::BookView;
use hotpath::strategy::quoter::{Quoter, QuoterConfigError, QuoterParams};
use hotpath::strategy::{Strategy, StrategyAction};
use strategy_common::*;

fn quoter(params: QuoterParams) -> Quoter {
    Quoter::new(StrategyId::new_checked("quoter").unwrap(), 7, &[name(K2)], params).unwrap()
}

/// (bid, ask) prices of the places in `actions`.
fn quotes(actions: &[StrategyAction]) -> (Option<Price>, Option<Price>) {
    let p = places(actions);
    let side = |s| p.iter().find(|i| i.fields().side == s).and_then(|i| i.fields().limit_price);
    (side(Side::Buy), side(Side::Sell))
}

fn quotes_with_position(lots: i64) -> (Option<Price>, Option<Price>) {
    let cache = cache();
    let mut world = Loopback::default();
    world.exposure.set_position(name(K2), Qty::from_raw(lots * qty("0.1").raw()));
    let mut q = quoter(QuoterParams::default());
    quotes(&world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS))
}

#[test]
fn flat_quotes_are_post_only_gtc_around_the_mid_and_pass_the_gates() {
    let (policy, cache) = (policy(), cache());
    let books = [book(K2, "0.016", "0.0165")];
    let mut world = Loopback::default();
    let mut q = quoter(QuoterParams::default());
    let actions = world.tick(&mut q, &cache, &books, NOW_MS);
    assert_eq!(actions.len(), 2, "{actions:?}");
    // mid 0.01625, tick 0.0005, two ticks away: 0.01525 -> 0.0150 (down), 0.01725 -> 0.0175 (up).
    assert_eq!(quotes(&actions), (Some(px("0.015")), Some(px("0.0175"))));
    for intent in places(&actions) {
        let f = intent.fields();
        assert!(f.post_only && !f.reduce_only);
        assert_eq!(f.time_in_force, TimeInForce::GoodTilCancelled);
        assert_eq!(f.qty, qty("0.1"), "one lot of min_trade_amount");
        let accepted = gate(&policy, &cache, &world.exposure, &books, &intent);
        assert!(accepted.is_ok(), "{:?}", accepted.err());
    }
    assert_eq!(q.quote_seq(), 2);
}

#[test]
fn inventory_skews_quotes_against_the_position() {
    let (flat_bid, flat_ask) = quotes_with_position(0);
    let (long_bid, long_ask) = quotes_with_position(3);
    let (short_bid, short_ask) = quotes_with_position(-3);
    // Long: both quotes lower (sell sooner, buy later). Short: both higher.
    assert!(long_bid.unwrap() < flat_bid.unwrap() && long_ask.unwrap() < flat_ask.unwrap());
    assert!(short_bid.unwrap() > flat_bid.unwrap() && short_ask.unwrap() > flat_ask.unwrap());
    // Still never crossing: the skewed ask stays above the best bid, the bid below the ask.
    assert!(long_ask.unwrap() > px("0.016"));
    assert!(short_bid.unwrap() < px("0.0165"));
}

#[test]
fn the_side_that_would_pass_the_inventory_limit_is_not_quoted() {
    // inventory_lots_max = 5, quote 1 lot: long 5 => a bid fill would make 6.
    assert_eq!(quotes_with_position(5).0, None);
    assert!(quotes_with_position(5).1.is_some());
    assert_eq!(quotes_with_position(-5).1, None);
    assert!(quotes_with_position(-5).0.is_some());
    // Long 4: a bid fill reaches exactly 5, allowed.
    assert!(quotes_with_position(4).0.is_some());
    // Pending buys count: long 3 + pending 2 lots => no bid either.
    let cache = cache();
    let mut world = Loopback::default();
    world.exposure.set_position(name(K2), qty("0.3"));
    let mut q = quoter(QuoterParams::default());
    let first = world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS);
    assert!(quotes(&first).0.is_some());
    // Reaching the limit later pulls the live bid and keeps the ask.
    world.exposure.set_position(name(K2), qty("0.5"));
    let later = world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS + 10);
    let bid_label = places(&first)
        .iter()
        .find(|i| i.fields().side == Side::Buy)
        .map(|i| hotpath::domain::label::Label::for_intent(i).unwrap());
    assert!(cancels(&later).contains(&bid_label.unwrap()), "{later:?}");
    assert!(quotes(&later).0.is_none());
}

#[test]
fn requotes_when_the_mid_moves_past_the_threshold_and_not_before() {
    let cache = cache();
    let mut world = Loopback::default();
    let mut q = quoter(QuoterParams::default());
    let first = world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS);
    let first_labels: Vec<_> = places(&first)
        .iter()
        .map(|i| hotpath::domain::label::Label::for_intent(i).unwrap())
        .collect();
    // Same book: nothing to do.
    assert!(world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS + 1).is_empty());
    // Mid 0.01625 -> 0.0165: half a tick (threshold 1 tick): keep the quotes.
    assert!(world.tick(&mut q, &cache, &[book(K2, "0.016", "0.017")], NOW_MS + 2).is_empty());
    // Mid -> 0.01725: two ticks: cancel both, then place both at the new prices.
    let moved = world.tick(&mut q, &cache, &[book(K2, "0.017", "0.0175")], NOW_MS + 3);
    let mut cancelled = cancels(&moved);
    cancelled.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut expected = first_labels.clone();
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(cancelled, expected);
    assert_eq!(quotes(&moved), (Some(px("0.016")), Some(px("0.0185"))));
    // Cancels come before the places that replace them.
    let first_place = moved.iter().position(|a| matches!(a, StrategyAction::Place(_))).unwrap();
    assert!(moved[..first_place].iter().all(|a| matches!(a, StrategyAction::Cancel(_))));
    assert_eq!(world.open_orders.len(), 2);
}

#[test]
fn stale_quotes_are_replaced() {
    let cache = cache();
    let params = QuoterParams { quote_age_ms_max: 5_000, ..QuoterParams::default() };
    let mut world = Loopback::default();
    let mut q = quoter(params);
    assert_eq!(world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS).len(), 2);
    let t = NOW_MS + 5_000;
    let fresh = [book_at(K2, "0.016", "0.0165", t - 10)];
    assert!(world.tick(&mut q, &cache, &fresh, t).is_empty(), "exactly at the age limit: keep");
    let t = NOW_MS + 5_001;
    let fresh = [book_at(K2, "0.016", "0.0165", t - 10)];
    let again = world.tick(&mut q, &cache, &fresh, t);
    assert_eq!((cancels(&again).len(), places(&again).len()), (2, 2));
    // Same prices, new quote sequence: new group ids, new labels.
    assert_eq!(quotes(&again), (Some(px("0.015")), Some(px("0.0175"))));
}

fn pulled_by(bad: &[BookView], now_ms: i64) {
    let cache = cache();
    let mut world = Loopback::default();
    let mut q = quoter(QuoterParams::default());
    world.tick(&mut q, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS);
    assert_eq!(world.open_orders.len(), 2);
    let actions = world.tick(&mut q, &cache, bad, now_ms);
    assert_eq!(cancels(&actions).len(), 2, "{actions:?}");
    assert!(places(&actions).is_empty());
    assert!(world.open_orders.is_empty());
    // Nothing more while the book stays bad (cancels are not re-sent).
    assert!(world.tick(&mut q, &cache, bad, now_ms + 1).is_empty());
}

#[test]
fn quotes_are_pulled_when_the_book_is_gapped_missing_stale_or_crossed() {
    let good = book(K2, "0.016", "0.0165");
    let gapped =
        BookView::from_levels(good.instrument, good.bids(), good.asks(), good.last_update_ms, true);
    pulled_by(&[gapped], NOW_MS + 1);
    pulled_by(&[], NOW_MS + 1);
    pulled_by(&[good], NOW_MS + 2_000); // 2 s old > book_age_ms_max 1 s
    pulled_by(&[book(K2, "0.0165", "0.0165")], NOW_MS + 1); // locked
    pulled_by(&[book(K2, "0.017", "0.0165")], NOW_MS + 1); // crossed
    let one_sided = BookView::from_levels(good.instrument, good.bids(), &[], NOW_MS, false);
    pulled_by(&[one_sided], NOW_MS + 1);
}

#[test]
fn orphan_orders_of_the_strategy_are_cancelled() {
    // A rebuilt quoter (restart) finds live orders it did not place in this life.
    let cache = cache();
    let mut world = Loopback::default();
    let mut old = quoter(QuoterParams::default());
    world.tick(&mut old, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS);
    let mut fresh = quoter(QuoterParams::default());
    let actions = world.tick(&mut fresh, &cache, &[book(K2, "0.016", "0.0165")], NOW_MS + 1);
    assert_eq!(cancels(&actions).len(), 2);
    assert_eq!(places(&actions).len(), 2);
}

#[test]
fn post_only_quotes_never_cross_any_book_and_pass_the_gates_when_the_book_is_tradable() {
    let (policy, cache) = (policy(), cache());
    let meta = meta(&cache, K2);
    let bids = ["0.0001", "0.0004", "0.0045", "0.0049", "0.005", "0.0055", "0.016", "0.1", "0.5"];
    let mut checked = 0;
    for bid_text in bids {
        let bid = px(bid_text);
        for spread_ticks in 1..=4 {
            let ask_raw = bid.raw() + spread_ticks * meta.tick_at(bid).raw();
            let tick_up = meta.tick_at(Price::from_raw(ask_raw)).raw();
            let ask = Price::from_raw(
                ask_raw.div_euclid(tick_up) * tick_up
                    + if ask_raw % tick_up == 0 { 0 } else { tick_up },
            );
            for lots in -4..=4 {
                for half_spread_ticks in [1, 3] {
                    let params = QuoterParams {
                        half_spread_ticks,
                        skew_ticks_per_lot: 2,
                        ..QuoterParams::default()
                    };
                    let mut world = Loopback::default();
                    world
                        .exposure
                        .set_position(name(K2), Qty::from_raw(lots * meta.min_trade_amount.raw()));
                    let books = [levels_at(K2, bid, ask, NOW_MS - 10)];
                    let mut q = quoter(params);
                    let actions = world.tick(&mut q, &cache, &books, NOW_MS);
                    for intent in places(&actions) {
                        let f = intent.fields();
                        let price = f.limit_price.unwrap();
                        assert!(meta.is_on_tick(price), "{price} off tick");
                        match f.side {
                            Side::Buy => assert!(price < ask, "bid {price} crosses ask {ask}"),
                            Side::Sell => assert!(price > bid, "ask {price} crosses bid {bid}"),
                        }
                        let verdict = gate(&policy, &cache, &world.exposure, &books, &intent);
                        let spread_bps = (ask.raw() - bid.raw()) * 20_000 / (ask.raw() + bid.raw());
                        match verdict {
                            Ok(_) => {}
                            Err(r) => {
                                assert_ne!(r.code, hotpath::domain::reason_codes::RejectReasonCode::PostOnlyWouldCross);
                                assert!(
                                    spread_bps > policy.data_limits.max_spread_bps_open,
                                    "{r:?} on a tradable book {bid}/{ask}"
                                );
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 400, "only {checked} quotes checked");
}

fn script(q: &mut Quoter) -> Vec<Vec<u8>> {
    let cache = cache();
    let mut world = Loopback::default();
    let mut out = Vec::new();
    let steps: [(&str, &str, i64, &str); 6] = [
        ("0.016", "0.0165", 0, "0"),
        ("0.016", "0.0165", 5, "0"),
        ("0.017", "0.0175", 10, "0"),
        ("0.017", "0.0175", 20, "0.3"),
        ("0.016", "0.0165", 30, "-0.2"),
        ("0.0155", "0.016", 40, "0.5"),
    ];
    for (bid, ask, dt, position) in steps {
        world.exposure.set_position(name(K2), qty(position));
        let t = NOW_MS + dt;
        out.extend(transcript(&world.tick(q, &cache, &[book_at(K2, bid, ask, t)], t)));
    }
    out
}

#[test]
fn same_inputs_and_state_give_the_same_intents() {
    let a = script(&mut quoter(QuoterParams::default()));
    let b = script(&mut quoter(QuoterParams::default()));
    assert!(a.len() >= 10, "the script exercises requotes: {}", a.len());
    assert_eq!(a, b, "a rebuilt quoter fed the same inputs differs");
    // And the seed is an input: another seed, other group ids, so other bytes.
    let mut other = Quoter::new(
        StrategyId::new_checked("quoter").unwrap(),
        8,
        &[name(K2)],
        QuoterParams::default(),
    )
    .unwrap();
    assert_ne!(a, script(&mut other));
    // Pinned across runs and builds (xxh64 with fixed seeds): the first quote's intent hash.
    let cache = cache();
    let mut world = Loopback::default();
    let first = places(&world.tick(
        &mut quoter(QuoterParams::default()),
        &cache,
        &[book(K2, "0.016", "0.0165")],
        NOW_MS,
    ));
    let hashes: Vec<String> = first.iter().map(|i| i.hash().to_string()).collect();
    let again: Vec<String> = places(&Loopback::default().tick(
        &mut quoter(QuoterParams::default()),
        &cache,
        &[book(K2, "0.016", "0.0165")],
        NOW_MS,
    ))
    .iter()
    .map(|i| i.hash().to_string())
    .collect();
    assert_eq!(hashes, again);
    // Golden values: a change here means the decision key, the quantization or the intent
    // layout changed, which changes every label after a restart. Do it on purpose or not at all.
    assert_eq!(hashes, ["0cd323f42395fa8a", "b403094f91708045"]);
}

#[test]
fn configuration_is_checked() {
    let id = StrategyId::new_checked("quoter").unwrap();
    assert_eq!(
        Quoter::new(id, 0, &[], QuoterParams::default()).err(),
        Some(QuoterConfigError::InstrumentCount)
    );
    assert_eq!(
        Quoter::new(id, 0, &[name("BTC-PERPETUAL")], QuoterParams::default()).err(),
        Some(QuoterConfigError::NotAnOption)
    );
    assert_eq!(
        Quoter::new(id, 0, &[name(K2), name(K2)], QuoterParams::default()).err(),
        Some(QuoterConfigError::Duplicate)
    );
    let bad = QuoterParams { half_spread_ticks: 0, ..QuoterParams::default() };
    assert_eq!(
        Quoter::new(id, 0, &[name(K2)], bad).err(),
        Some(QuoterConfigError::Param("half_spread_ticks"))
    );
    let q = Quoter::new(id, 0, &[name(K2), name(K1)], QuoterParams::default()).unwrap();
    assert_eq!(q.instruments(), &[name(K1), name(K2)], "sorted");
    assert_eq!(q.actions_per_tick_max(), 12);
}

#[test]
fn output_is_bounded_by_the_buffer_and_resumes_next_tick() {
    let cache = cache();
    let books = [book(K2, "0.016", "0.0165")];
    let mut world = Loopback::default();
    let mut q = quoter(QuoterParams::default());
    let first = world.tick_bounded(&mut q, &cache, &books, NOW_MS, 1);
    assert_eq!(places(&first).len(), 1, "one slot, one action");
    assert_eq!(q.quote_seq(), 1, "only what went out advances the state");
    let second = world.tick_bounded(&mut q, &cache, &books, NOW_MS + 1, 1);
    assert_eq!(places(&second).len(), 1);
    assert_ne!(places(&first)[0].fields().side, places(&second)[0].fields().side);
    assert!(world.tick_bounded(&mut q, &cache, &books, NOW_MS + 2, 1).is_empty());
    // A move with room for one action: one cancel goes out, the rest waits for the next tick.
    let moved = [book(K2, "0.017", "0.0175")];
    let step = world.tick_bounded(&mut q, &cache, &moved, NOW_MS + 3, 1);
    assert_eq!(cancels(&step).len(), 1);
    let mut rest = Vec::new();
    for t in 4..10 {
        rest.extend(world.tick_bounded(&mut q, &cache, &moved, NOW_MS + t, 1));
    }
    assert_eq!((cancels(&rest).len(), places(&rest).len()), (1, 2), "{rest:?}");
    assert_eq!(world.open_orders.len(), 2);
}
