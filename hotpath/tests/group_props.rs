//! Property: random venue behaviour (acks, partial and full fills, rejects, silence ⇒ timeout,
//! disconnects, late reconciliation) never leaves a group in a persistent mixed state, never
//! sends more than two rescue rounds, never sends a non-IOC or unlabelled order, and always
//! releases the pending-exposure reservation.

mod group_common;

use group_common::{option_and_perp, option_pair, qty, Harness};
use hotpath::domain::intent::TimeInForce;
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::domain::units::{Qty, Usd};
use hotpath::group::{
    GroupAction, GroupInput, GroupState, OrderRole, GROUP_ORDERS_MAX, ORDER_REPORT_TIMEOUT_MS,
    RESCUE_ATTEMPTS_MAX,
};
use proptest::prelude::*;

/// What the venue does with one order.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Fill,
    /// Fill this many tenths (0..=9) then cancel the rest.
    Partial(u8),
    Reject,
    /// Ack, then silence (the executor times it out; reconciliation later says `tenths`).
    Silent(u8),
    /// Disconnect before answering (reconciliation later says `tenths`).
    Disconnect(u8),
    /// Fill before ack, then a duplicate terminal report.
    FillThenDuplicate,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        3 => Just(Fate::Fill),
        3 => (0_u8..10).prop_map(Fate::Partial),
        3 => Just(Fate::Reject),
        1 => (0_u8..11).prop_map(Fate::Silent),
        1 => (0_u8..11).prop_map(Fate::Disconnect),
        1 => Just(Fate::FillThenDuplicate),
    ]
}

fn tenths(requested: Qty, t: u8, step: Qty) -> Qty {
    let raw = i128::from(requested.raw()) * i128::from(t.min(10)) / 10;
    let raw = i64::try_from(raw).unwrap();
    Qty::from_raw(raw - raw % step.raw())
}

fn run(pair: bool, fates: &[Fate], gate_ok: bool) -> Result<(), TestCaseError> {
    let legs = if pair { option_pair(b"prop") } else { option_and_perp(b"prop") };
    let mut h = Harness::start(&legs);
    h.market.rescue_verdict = if gate_ok { Ok(()) } else { Err(RejectReasonCode::NetEdgeTooLow) };
    let mut next_fate = fates.iter().copied().cycle();
    let mut in_doubt: Vec<(hotpath::domain::intent::IntentHash, Qty)> = Vec::new();
    // Bounded: each iteration answers one order or resolves the in-doubt set.
    for _ in 0..(GROUP_ORDERS_MAX * 4) {
        if let Some((intent, _, _)) = h.outbox.pop_front() {
            let f = intent.fields();
            let step = h.market.cache.get(f.instrument.as_str()).unwrap().amount_step;
            match next_fate.next().unwrap() {
                Fate::Fill => h.fill_all(&intent),
                Fate::Partial(t) => h.feed(GroupInput::Done {
                    order: intent.hash(),
                    filled: tenths(f.qty, t, step),
                }),
                Fate::Reject => h.reject(&intent),
                Fate::Silent(t) => {
                    h.feed(GroupInput::Ack { order: intent.hash(), venue_order_id: "x".into() });
                    in_doubt.push((intent.hash(), tenths(f.qty, t, step)));
                }
                Fate::Disconnect(t) => {
                    in_doubt.push((intent.hash(), tenths(f.qty, t, step)));
                    h.feed(GroupInput::Disconnected);
                }
                Fate::FillThenDuplicate => {
                    h.feed(GroupInput::Fill { order: intent.hash(), cumulative: f.qty });
                    h.fill_all(&intent);
                    h.feed(GroupInput::Ack { order: intent.hash(), venue_order_id: "y".into() });
                }
            }
        } else if !in_doubt.is_empty() {
            // Time passes; the executor marks the silent orders in doubt; reconciliation
            // answers every one of them (the disconnect may have left others unanswered too).
            h.advance(ORDER_REPORT_TIMEOUT_MS);
            for (order, filled) in in_doubt.drain(..) {
                h.feed(GroupInput::Reconciled { order, filled });
            }
        } else if !h.group.state().is_terminal() && !h.group.escalated() {
            // Containment pauses between rounds (FOLLOW_UP_ROUND_GAP_MS): time passes.
            h.advance(hotpath::group::FOLLOW_UP_ROUND_GAP_MS);
        } else {
            break;
        }
        // Orders the test never answered because a disconnect cut them off: the executor asked
        // to reconcile them; answer with "nothing filled" when nothing is queued for them.
        let pending: Vec<_> = h
            .group
            .orders()
            .iter()
            .filter(|o| o.status == hotpath::group::OrderStatus::InDoubt)
            .map(|o| o.intent.hash())
            .filter(|hash| !in_doubt.iter().any(|(x, _)| x == hash))
            .filter(|hash| !h.outbox.iter().any(|(i, _, _)| i.hash() == *hash))
            .collect();
        for order in pending {
            h.feed(GroupInput::Reconciled { order, filled: qty("0") });
        }
    }

    let state = h.group.state();
    prop_assert!(h.outbox.is_empty(), "every order answered");
    prop_assert!(
        state.is_terminal() || (state == GroupState::Flattening && h.group.escalated()),
        "persistent mixed state: {state:?}"
    );
    prop_assert!(h.group.rescues() <= RESCUE_ATTEMPTS_MAX);
    let rescue_rounds = h
        .sends()
        .iter()
        .filter_map(|(_, r)| match r {
            OrderRole::Rescue(n) => Some(*n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    prop_assert!(rescue_rounds <= RESCUE_ATTEMPTS_MAX);
    prop_assert!(h.group.close_attempts() <= 3);
    prop_assert_eq!(h.budget.used(), Usd::ZERO);
    for (intent, role) in h.sends() {
        prop_assert_eq!(intent.fields().time_in_force, TimeInForce::ImmediateOrCancel);
        prop_assert!(intent.fields().limit_price.is_some());
        if matches!(role, OrderRole::Close(_)) {
            prop_assert!(intent.fields().reduce_only);
        }
    }
    let net = h.group.leg_exposure();
    match state {
        GroupState::Complete => {
            for (i, leg) in legs.iter().enumerate() {
                let f = leg.intent.fields();
                let want = match f.side {
                    hotpath::domain::intent::Side::Buy => f.qty,
                    hotpath::domain::intent::Side::Sell => f.qty.neg(),
                };
                prop_assert_eq!(net[i], want);
            }
        }
        GroupState::Flattened if !h.group.hedge_used() => {
            prop_assert!(net.iter().all(|q| q.raw() == 0), "flattened with exposure {net:?}");
        }
        GroupState::Flattened => {
            // Hedged: every leg still exposed has a filled hedge against it.
            let hedge = h.group.hedge_exposure();
            for i in 0..2 {
                if net[i].raw() != 0 {
                    prop_assert!(
                        hedge[i].raw() != 0 && hedge[i].raw().signum() != net[i].raw().signum()
                    );
                }
            }
        }
        _ => {
            let escalated = h.actions.iter().any(|a| matches!(a, GroupAction::Escalate { .. }));
            prop_assert!(escalated, "escalate action emitted");
        }
    }
    if h.group.first_failure().is_some() {
        let held = h.actions.iter().any(|a| matches!(a, GroupAction::HoldReduceOnly(_)));
        prop_assert!(held, "ReduceOnly held after a failure");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_reports_never_leave_a_mixed_state(
        pair in any::<bool>(),
        gate_ok in any::<bool>(),
        fates in proptest::collection::vec(fate(), 1..24),
    ) {
        run(pair, &fates, gate_ok)?;
    }
}
