//! Atomic Group Executor (contract A §5.6, B §3.1): every mixed-fill shape ends with net
//! exposure neutral (closed or hedged), the first failure is never overwritten, at most two
//! rescue rounds, every step emits WAL-shaped records, and the pending-exposure budget is
//! reserved at acceptance and released on the terminal transition.

mod group_common;

use group_common::{
    leg, option_and_perp, option_pair, p, qty, strategy, usd, Harness, Market, CALL, NOW_MS, PERP,
};
use hotpath::domain::intent::{GroupId, Side};
use hotpath::domain::label::Label;
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::domain::units::Usd;
use hotpath::emergency::EmergencyConfig;
use hotpath::group::{
    ioc_limit_price, AtomicGroup, FailureCause, GroupAction, GroupError, GroupInput, GroupRecord,
    GroupState, OrderEvent, OrderRole, PendingExposureBudget, PricerInput, GROUP_HOLD_REASON,
    ORDER_REPORT_TIMEOUT_MS, RESCUE_ATTEMPTS_MAX,
};
use hotpath::sync::Arc;
use hotpath::wal::record::Record;

fn transitions(h: &Harness) -> Vec<(GroupState, GroupState)> {
    h.records
        .iter()
        .filter_map(|r| match r {
            GroupRecord::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn naked_count(h: &Harness) -> usize {
    h.records.iter().filter(|r| matches!(r, GroupRecord::Naked { .. })).count()
}

/// Every Send has its `OrderRecorded` record earlier in the record stream, with the group id in
/// the label, and the group intent is the very first record.
fn assert_records_precede_sends(h: &Harness) {
    assert!(matches!(h.records.first(), Some(GroupRecord::GroupIntent { .. })));
    let gid = h.group.group_id().gid12();
    let gid = std::str::from_utf8(&gid).unwrap();
    for (intent, _) in h.sends() {
        let recorded = h.records.iter().any(|r| {
            matches!(r, GroupRecord::OrderRecorded { intent: i, .. } if i.hash() == intent.hash())
        });
        assert!(recorded, "every sent order has an IntentRecorded record");
        let label = Label::for_intent(&intent).unwrap();
        assert!(label.as_str().contains(gid), "group id in every label: {}", label.as_str());
        assert!(label.as_str().len() <= 64);
    }
}

fn assert_released(h: &Harness) {
    assert!(!h.group.holds_reservation());
    assert_eq!(h.budget.used(), Usd::ZERO, "reservation released on the terminal state");
    assert!(
        h.actions.contains(&GroupAction::ReleaseReduceOnly(GROUP_HOLD_REASON))
            || h.group.first_failure().is_none()
    );
}

#[test]
fn both_legs_fill_completes_and_releases() {
    let mut h = Harness::start(&option_pair(b"happy"));
    assert_eq!(h.group.state(), GroupState::Dispatched);
    assert_eq!(h.budget.used(), usd("2000"), "both legs reserved at acceptance");
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.feed(GroupInput::Ack { order: a.hash(), venue_order_id: "o-1".into() });
    h.fill_all(&a);
    assert_eq!(h.group.state(), GroupState::Dispatched, "never Complete before the last leg");
    h.fill_all(&b);
    assert_eq!(h.group.state(), GroupState::Complete);
    assert_eq!(h.group.first_failure(), None);
    assert_eq!(h.budget.used(), Usd::ZERO);
    assert_eq!(h.sends().len(), 2);
    assert!(h.sends().iter().all(|(i, _)| i.fields().time_in_force
        == hotpath::domain::intent::TimeInForce::ImmediateOrCancel
        && i.fields().limit_price.is_some()));
    assert_records_precede_sends(&h);
    assert!(!h.actions.iter().any(|a| matches!(a, GroupAction::HoldReduceOnly(_))));
}

/// AT-116 / AT-117 / AT-118: A filled, B rejected ⇒ MixedFailed, ≤ 2 rescues, then a
/// reduce-only close of A; exposure ends at zero and exactly one naked event is recorded.
#[test]
fn a_filled_b_rejected_rescues_twice_then_flattens_at_116() {
    let mut h = Harness::start(&option_pair(b"at116"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_all(&a);
    h.reject(&b);
    assert_eq!(h.group.state(), GroupState::MixedFailed);
    assert_eq!(h.group.first_failure(), Some(FailureCause::LegRejected { leg: 1, code: 10_041 }));
    assert!(
        h.actions.contains(&GroupAction::HoldReduceOnly(GROUP_HOLD_REASON)),
        "ReduceOnly while exposed"
    );

    // Rescue 1: sell the missing put at bid − 2 ticks (0.43 − 2·0.0005).
    let (r1, leg1, role1) = h.next();
    assert_eq!((leg1, role1), (1, OrderRole::Rescue(1)));
    assert_eq!(r1.fields().side, Side::Sell);
    assert_eq!(r1.fields().qty, qty("1"));
    assert_eq!(r1.fields().limit_price, Some(p("0.429")));
    h.reject(&r1);
    let (r2, _, role2) = h.next();
    assert_eq!(role2, OrderRole::Rescue(2));
    h.fill_part(&r2, "0");
    assert_eq!(h.group.rescues(), RESCUE_ATTEMPTS_MAX);
    assert_eq!(h.group.state(), GroupState::Flattening);

    // Step B: reduce-only IOC close of leg A, priced off the bid with the 5-tick buffer,
    // bounded by the close slippage bound (500 bps of 0.045 ⇒ 0.04275, rounded up for a sell).
    let (c1, leg_c, role_c) = h.next();
    assert_eq!((leg_c, role_c), (0, OrderRole::Close(1)));
    let f = c1.fields();
    assert!(f.reduce_only && f.emergency_close);
    assert_eq!(f.side, Side::Sell);
    assert_eq!(f.qty, qty("1"));
    assert_eq!(f.limit_price, Some(p("0.043")));
    h.fill_all(&c1);
    assert_eq!(h.group.state(), GroupState::Flattened);
    assert_eq!(h.group.leg_exposure(), [qty("0"), qty("0")]);
    assert_eq!(h.rescue_count(), 2);
    assert_eq!(naked_count(&h), 1);
    assert_records_precede_sends(&h);
    assert_released(&h);
    assert_eq!(
        transitions(&h),
        vec![
            (GroupState::New, GroupState::Dispatched),
            (GroupState::Dispatched, GroupState::MixedFailed),
            (GroupState::MixedFailed, GroupState::Flattening),
            (GroupState::Flattening, GroupState::Flattened),
        ]
    );
}

/// AT-117: A fills 0.6 of 1.0, B nothing ⇒ rescue both missing quantities; a successful rescue
/// completes the group (the first failure stays recorded).
#[test]
fn a_partial_b_unfilled_rescue_completes_at_117() {
    let mut h = Harness::start(&option_pair(b"at117"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_part(&a, "0.6");
    assert_eq!(h.group.first_failure(), Some(FailureCause::PartialFill { leg: 0 }));
    h.fill_part(&b, "0");
    // The later failure of B does not overwrite the first.
    assert_eq!(h.group.first_failure(), Some(FailureCause::PartialFill { leg: 0 }));
    let (ra, la, _) = h.next();
    let (rb, lb, _) = h.next();
    assert_eq!((la, ra.fields().qty, ra.fields().limit_price), (0, qty("0.4"), Some(p("0.0465"))));
    assert_eq!((lb, rb.fields().qty), (1, qty("1")));
    assert!(
        !ra.fields().reduce_only,
        "a rescue completes the structure; it is gated, not reduce-only"
    );
    h.fill_all(&ra);
    h.fill_all(&rb);
    assert_eq!(h.group.state(), GroupState::Complete);
    assert_eq!(h.group.leg_exposure(), [qty("1"), qty("-1")]);
    assert_eq!(h.group.first_failure(), Some(FailureCause::PartialFill { leg: 0 }));
    assert_released(&h);
    assert_eq!(naked_count(&h), 0);
}

/// Both legs partial: rescues fail, both legs are closed by their own filled quantity.
#[test]
fn both_partial_then_flatten_each_leg() {
    let mut h = Harness::start(&option_pair(b"both-partial"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_part(&a, "0.3");
    h.fill_part(&b, "0.7");
    for _ in 0..RESCUE_ATTEMPTS_MAX {
        let (r0, _, _) = h.next();
        let (r1, _, _) = h.next();
        h.fill_part(&r0, "0");
        h.reject(&r1);
    }
    assert_eq!(h.group.state(), GroupState::Flattening);
    let (c0, l0, _) = h.next();
    let (c1, l1, _) = h.next();
    assert_eq!((l0, c0.fields().side, c0.fields().qty), (0, Side::Sell, qty("0.3")));
    assert_eq!((l1, c1.fields().side, c1.fields().qty), (1, Side::Buy, qty("0.7")));
    // Close 1 of leg 1 fills partly; attempt 2 retries the remainder with a doubled buffer.
    h.fill_all(&c0);
    h.fill_part(&c1, "0.5");
    let (c1b, _, role) = h.next();
    assert_eq!(role, OrderRole::Close(2));
    assert_eq!(c1b.fields().qty, qty("0.2"));
    assert!(
        c1b.fields().limit_price.unwrap() >= c1.fields().limit_price.unwrap(),
        "buy buffer widens"
    );
    h.fill_all(&c1b);
    assert_eq!(h.group.state(), GroupState::Flattened);
    assert_eq!(h.group.leg_exposure(), [qty("0"), qty("0")]);
    assert_released(&h);
}

/// Timeout: B never reports ⇒ InDoubt + Reconcile by label, Timeout seeded; the reconciled
/// fill (0) drives containment.
#[test]
fn leg_timeout_reconciles_then_contains() {
    let mut h = Harness::start(&option_pair(b"timeout"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_all(&a);
    h.advance(ORDER_REPORT_TIMEOUT_MS - 1);
    assert!(h.group.first_failure().is_none(), "not before the deadline");
    h.advance(1);
    assert_eq!(h.group.first_failure(), Some(FailureCause::Timeout { leg: 1 }));
    assert!(h
        .actions
        .iter()
        .any(|x| matches!(x, GroupAction::Reconcile { order, .. } if *order == b.hash())));
    assert!(h
        .records
        .contains(&GroupRecord::Order { order: b.hash(), event: OrderEvent::InDoubt }));
    assert!(h.outbox.is_empty(), "nothing else is sent while a leg is in doubt");
    h.market.rescue_verdict = Err(RejectReasonCode::LiquidityGateNoL2);
    h.feed(GroupInput::Reconciled { order: b.hash(), filled: qty("0") });
    let (c, _, role) = h.next();
    assert_eq!(role, OrderRole::Close(1));
    h.now_ms += 250;
    h.fill_all(&c);
    assert_eq!(h.group.state(), GroupState::Flattened);
    assert_released(&h);
    let ttdn = h.records.iter().find_map(|r| match r {
        GroupRecord::Naked { incident_ts_ms, time_to_delta_neutral_ms, .. } => {
            Some((*incident_ts_ms, *time_to_delta_neutral_ms))
        }
        _ => None,
    });
    assert_eq!(ttdn, Some((NOW_MS + ORDER_REPORT_TIMEOUT_MS, 250)), "incident at the timeout tick");
}

/// Disconnect mid-group: every live order in doubt, reconciled; a late fill found on
/// reconciliation counts (A had filled) and containment closes it.
#[test]
fn disconnect_mid_group() {
    let mut h = Harness::start(&option_and_perp(b"disconnect"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.feed(GroupInput::Ack { order: a.hash(), venue_order_id: "o-a".into() });
    h.feed(GroupInput::Disconnected);
    assert_eq!(h.group.first_failure(), Some(FailureCause::Disconnect));
    let reconciles =
        h.actions.iter().filter(|x| matches!(x, GroupAction::Reconcile { .. })).count();
    assert_eq!(reconciles, 2);
    h.market.rescue_verdict = Err(RejectReasonCode::NetEdgeTooLow);
    h.feed(GroupInput::Reconciled { order: a.hash(), filled: qty("1") });
    assert!(h.outbox.is_empty(), "containment waits for every in-doubt order");
    h.feed(GroupInput::Reconciled { order: b.hash(), filled: qty("0") });
    let (c, leg, _) = h.next();
    assert_eq!((leg, c.fields().instrument.as_str(), c.fields().side), (0, CALL, Side::Sell));
    h.fill_all(&c);
    assert_eq!(h.group.state(), GroupState::Flattened);
    assert_released(&h);
}

/// AT-936: the gates refuse the rescue ⇒ zero rescue orders and Step B runs.
#[test]
fn gated_rescue_sends_nothing_and_flattens_at_936() {
    let mut market = Market::new();
    market.rescue_verdict = Err(RejectReasonCode::ExpectedSlippageTooHigh);
    let budget = Arc::new(PendingExposureBudget::new(usd("100000")));
    let mut h = Harness::start_with(&option_pair(b"at936"), budget, market);
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_all(&a);
    h.reject(&b);
    assert_eq!(h.rescue_count(), 0);
    assert_eq!(h.group.state(), GroupState::Flattening);
    let (c, _, role) = h.next();
    assert_eq!(role, OrderRole::Close(1));
    h.fill_all(&c);
    assert_eq!(h.group.state(), GroupState::Flattened);
}

/// AT-118 / AT-235: closes that never fill ⇒ 3 bounded attempts (5, 10, 20 ticks), then a
/// hedge in the perpetual; the naked event says hedge_fallback with 3 attempts.
#[test]
fn closes_exhausted_then_perp_hedge_at_118() {
    let mut market = Market::new();
    market.rescue_verdict = Err(RejectReasonCode::NetEdgeTooLow);
    let budget = Arc::new(PendingExposureBudget::new(usd("100000")));
    let mut h = Harness::start_with(&option_pair(b"at118"), budget, market);
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_all(&a);
    h.reject(&b);
    let mut prices = Vec::new();
    for attempt in 1..=3 {
        let (c, _, role) = h.next();
        assert_eq!(role, OrderRole::Close(attempt));
        prices.push(c.fields().limit_price.unwrap());
        h.fill_part(&c, "0");
    }
    assert!(prices.windows(2).all(|w| w[1] <= w[0]), "sell buffer never narrows: {prices:?}");
    let (hedge, leg, role) = h.next();
    assert_eq!((leg, role), (0, OrderRole::Hedge(1)));
    let f = hedge.fields();
    assert_eq!((f.instrument.as_str(), f.side, f.qty), (PERP, Side::Sell, qty("3000")));
    assert!(f.emergency_close && !f.reduce_only);
    h.fill_all(&hedge);
    assert_eq!(h.group.state(), GroupState::Flattened);
    assert!(h.group.hedge_used());
    assert_eq!(h.group.hedge_exposure()[0], qty("-3000"));
    let naked: Vec<_> =
        h.records.iter().filter(|r| matches!(r, GroupRecord::Naked { .. })).collect();
    assert_eq!(naked.len(), 1);
    match naked[0] {
        GroupRecord::Naked {
            group_id,
            strategy_id,
            close_attempts,
            hedge_used,
            cause,
            incident_ts_ms,
            time_to_delta_neutral_ms,
            residual,
        } => {
            assert_eq!((*group_id, *strategy_id), (h.group.group_id(), strategy()));
            assert_eq!((*close_attempts, *hedge_used, *cause), (3, true, "hedge_fallback"));
            assert_eq!(*incident_ts_ms, NOW_MS);
            // The test clock moves only by the pauses between containment rounds (before
            // Close(2), Close(3) and Hedge(1)).
            assert_eq!(*time_to_delta_neutral_ms, 3 * hotpath::group::FOLLOW_UP_ROUND_GAP_MS);
            assert_eq!(residual[0], qty("1"), "the option stays, delta-hedged in the perp");
        }
        _ => unreachable!(),
    }
    assert_released(&h);
}

/// Hedges refused too ⇒ escalate to the portfolio emergency close; the hold stays.
#[test]
fn hedge_exhausted_escalates() {
    let mut market = Market::new();
    market.rescue_verdict = Err(RejectReasonCode::NetEdgeTooLow);
    let budget = Arc::new(PendingExposureBudget::new(usd("100000")));
    let mut h = Harness::start_with(&option_pair(b"escalate"), budget, market);
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.fill_all(&a);
    h.reject(&b);
    for _ in 0..5 {
        let (o, _, _) = h.next();
        h.reject(&o);
    }
    assert!(h.group.escalated());
    assert_eq!(h.group.state(), GroupState::Flattening);
    assert!(h
        .actions
        .iter()
        .any(|x| matches!(x, GroupAction::Escalate { residual } if residual[0] == qty("1"))));
    assert!(
        !h.actions.contains(&GroupAction::ReleaseReduceOnly(GROUP_HOLD_REASON)),
        "still exposed: hold kept"
    );
    assert_eq!(h.budget.used(), Usd::ZERO, "pending reservation converted to realised exposure");
    assert!(h.outbox.is_empty());
}

/// AT-939: the group intent cannot be persisted ⇒ zero legs sent, reservation released.
#[test]
fn persist_failure_sends_zero_legs_at_939() {
    let budget = Arc::new(PendingExposureBudget::new(usd("5000")));
    let (mut group, step) = AtomicGroup::accept(
        &option_pair(b"at939"),
        Arc::clone(&budget),
        EmergencyConfig::default(),
        NOW_MS,
    )
    .unwrap();
    assert!(step.actions.is_empty());
    assert_eq!(budget.used(), usd("2000"));
    let market = Market::new();
    let step = group.on_input(GroupInput::PersistFailed, NOW_MS, &market);
    assert!(!step.actions.iter().any(|a| matches!(a, GroupAction::Send { .. })));
    assert_eq!(group.state(), GroupState::Flattened);
    assert_eq!(group.first_failure(), Some(FailureCause::PersistFailed));
    assert_eq!(budget.used(), Usd::ZERO);
    // A late Persisted changes nothing.
    let step = group.on_input(GroupInput::Persisted, NOW_MS, &market);
    assert!(step.actions.is_empty());
}

/// AT-220 / AT-230: out-of-order events — fill before ack, late ack, duplicate fill — never
/// panic, never complete early, and are recorded as anomalies.
#[test]
fn out_of_order_events_at_220() {
    let mut h = Harness::start(&option_pair(b"at220"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.feed(GroupInput::Fill { order: b.hash(), cumulative: qty("0.5") });
    h.fill_all(&b);
    h.feed(GroupInput::Ack { order: b.hash(), venue_order_id: "late".into() });
    assert_eq!(h.group.state(), GroupState::Dispatched);
    h.feed(GroupInput::Fill { order: a.hash(), cumulative: qty("1") });
    assert_eq!(h.group.state(), GroupState::Complete);
    h.feed(GroupInput::Done { order: a.hash(), filled: qty("1") });
    let anomalies = h
        .records
        .iter()
        .filter(|r| matches!(r, GroupRecord::Order { event: OrderEvent::Anomaly(_), .. }))
        .count();
    assert_eq!(anomalies, 2, "late ack and post-terminal report");
    assert_eq!(h.group.state(), GroupState::Complete);
}

#[test]
fn records_map_onto_wal_kinds() {
    let mut h = Harness::start(&option_pair(b"wal"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.feed(GroupInput::Ack { order: a.hash(), venue_order_id: "v-1".into() });
    h.fill_part(&a, "0.4");
    h.reject(&b);
    let mut kinds = Vec::new();
    for record in &h.records {
        match record.to_wal() {
            Some(Record::IntentRecorded { intent_hash, label, canonical }) => {
                assert!(label.starts_with("s4:"));
                assert!(!canonical.is_empty());
                assert_ne!(intent_hash, 0);
                kinds.push("IntentRecorded");
            }
            Some(Record::Acknowledged { venue_order_id, .. }) => {
                assert_eq!(venue_order_id, "v-1");
                kinds.push("Acknowledged");
            }
            Some(Record::Cancelled { filled_qty, .. }) => {
                assert_eq!(filled_qty, qty("0.4").raw());
                kinds.push("Cancelled");
            }
            Some(Record::Rejected { code, .. }) => {
                assert_eq!(code, 10_041);
                kinds.push("Rejected");
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {}
        }
    }
    assert_eq!(
        &kinds[..5],
        ["IntentRecorded", "IntentRecorded", "Acknowledged", "Cancelled", "Rejected"]
    );
    // Then the rescue orders are recorded before they are sent.
    assert!(kinds[5..].iter().all(|k| *k == "IntentRecorded"));
}

#[test]
fn acceptance_validates_legs() {
    let budget = Arc::new(PendingExposureBudget::new(usd("100000")));
    let cfg = EmergencyConfig::default();
    assert_eq!(
        AtomicGroup::accept(&[], Arc::clone(&budget), cfg, NOW_MS).unwrap_err(),
        GroupError::LegCount
    );
    let mut legs = option_pair(b"v1");
    legs.extend(option_pair(b"v2"));
    assert_eq!(
        AtomicGroup::accept(&legs, Arc::clone(&budget), cfg, NOW_MS).unwrap_err(),
        GroupError::LegCount
    );
    let mixed = vec![option_pair(b"v3")[0], option_pair(b"v4")[1]];
    assert_eq!(
        AtomicGroup::accept(&mixed, Arc::clone(&budget), cfg, NOW_MS).unwrap_err(),
        GroupError::LegIdentity
    );
    let g = GroupId::derive(&strategy(), b"v5");
    let mut gtc = leg(g, 0, CALL, Side::Buy, "1", "0.0455");
    gtc.intent = hotpath::domain::intent::OrderIntent::new(hotpath::domain::intent::IntentFields {
        time_in_force: hotpath::domain::intent::TimeInForce::GoodTilCancelled,
        ..*gtc.intent.fields()
    });
    assert_eq!(
        AtomicGroup::accept(&[gtc], Arc::clone(&budget), cfg, NOW_MS).unwrap_err(),
        GroupError::LegShape
    );
    assert_eq!(budget.used(), Usd::ZERO, "nothing reserved on refusal");
}

/// AT-225 / AT-910: the budget is all-or-nothing; a second group that would breach is refused
/// with PendingExposureBudgetExceeded and fits again once the first is terminal.
#[test]
fn budget_refuses_breach_and_frees_on_terminal_at_910() {
    let budget = Arc::new(PendingExposureBudget::new(usd("3000")));
    let cfg = EmergencyConfig::default();
    let (mut first, _) =
        AtomicGroup::accept(&option_pair(b"b1"), Arc::clone(&budget), cfg, NOW_MS).unwrap();
    let err =
        AtomicGroup::accept(&option_pair(b"b2"), Arc::clone(&budget), cfg, NOW_MS).unwrap_err();
    assert_eq!(err, GroupError::Budget);
    assert_eq!(err.reject_code(), RejectReasonCode::PendingExposureBudgetExceeded);
    assert_eq!(budget.used(), usd("2000"));
    let market = Market::new();
    first.on_input(GroupInput::Persisted, NOW_MS, &market);
    for o in first.orders().to_vec() {
        first.on_input(
            GroupInput::Done { order: o.intent.hash(), filled: o.intent.fields().qty },
            NOW_MS,
            &market,
        );
    }
    assert_eq!(first.state(), GroupState::Complete);
    assert_eq!(budget.used(), Usd::ZERO);
    assert!(AtomicGroup::accept(&option_pair(b"b2"), Arc::clone(&budget), cfg, NOW_MS).is_ok());
}

/// AT-225: many groups accepted concurrently from 4 threads never jointly exceed the cap, and
/// exactly cap/size of them fit.
#[test]
fn concurrent_groups_cannot_jointly_breach_at_225() {
    let budget = Arc::new(PendingExposureBudget::new(usd("10000")));
    let accepted = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let budget = Arc::clone(&budget);
                s.spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..10 {
                        let key = format!("c-{t}-{i}");
                        if let Ok((g, _)) = AtomicGroup::accept(
                            &option_pair(key.as_bytes()),
                            Arc::clone(&budget),
                            EmergencyConfig::default(),
                            NOW_MS,
                        ) {
                            assert!(budget.used() <= budget.cap());
                            kept.push(g);
                        }
                    }
                    kept
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    let total: usize = accepted.iter().map(Vec::len).sum();
    assert_eq!(total, 5, "10000 / 2000 per group");
    assert_eq!(budget.used(), usd("10000"));
    drop(accepted);
    assert_eq!(budget.used(), Usd::ZERO, "dropping groups returns their reservations");
}

/// AT-223: the pricer never gives away more than net edge − min edge, and splits the rest.
#[test]
fn ioc_pricer_clamps_to_min_edge_at_223() {
    let base = PricerInput {
        fair_price: p("100"),
        gross_edge: p("10"),
        min_edge: p("2"),
        fee_estimate: p("2"),
        qty: qty("2"),
        side: Side::Buy,
    };
    // net 8 ⇒ 4/unit; proposed 100 − 2 = 98; max for min edge 100 − (1 + 1) = 98.
    assert_eq!(ioc_limit_price(&base), Ok(p("98")));
    let wide = PricerInput { min_edge: p("6"), ..base };
    // net 8 ⇒ proposed 98; max 100 − (3 + 1) = 96 ⇒ min(98, 96) = 96.
    assert_eq!(ioc_limit_price(&wide), Ok(p("96")));
    assert_eq!(ioc_limit_price(&PricerInput { side: Side::Sell, ..wide }), Ok(p("104")));
    assert_eq!(
        ioc_limit_price(&PricerInput { min_edge: p("9"), ..base }),
        Err(RejectReasonCode::NetEdgeTooLow)
    );
    assert_eq!(
        ioc_limit_price(&PricerInput { qty: qty("0"), ..base }),
        Err(RejectReasonCode::QtyNotPositive)
    );
    // Realised edge at the limit is at least min edge: (fair − limit)·qty − fee ≥ min_edge.
    let limit = ioc_limit_price(&wide).unwrap();
    let realised = (p("100").raw() - limit.raw()) * 2 - p("2").raw();
    assert!(realised >= p("6").raw());
}

/// Reconciliation is terminal even when it reports less than the fills already seen (fills
/// never un-happen: the larger is kept and the disagreement recorded), so an in-doubt order
/// can never stay in doubt.
#[test]
fn reconciled_below_reported_keeps_the_larger_fill() {
    let mut h = Harness::start(&option_pair(b"recon-below"));
    let (a, _, _) = h.next();
    let (b, _, _) = h.next();
    h.feed(GroupInput::Fill { order: a.hash(), cumulative: qty("0.5") });
    h.fill_all(&b);
    h.feed(GroupInput::Disconnected);
    h.market.rescue_verdict = Err(RejectReasonCode::NetEdgeTooLow);
    h.feed(GroupInput::Reconciled { order: a.hash(), filled: qty("0.3") });
    assert!(h.records.contains(&GroupRecord::Order {
        order: a.hash(),
        event: OrderEvent::Anomaly("reconciled_below_reported"),
    }));
    assert_eq!(h.group.leg_exposure(), [qty("0.5"), qty("-1")]);
    // Containment closes what really filled: sell 0.5 of A, buy back 1 of B.
    let (c0, _, _) = h.next();
    let (c1, _, _) = h.next();
    assert_eq!((c0.fields().side, c0.fields().qty), (Side::Sell, qty("0.5")));
    assert_eq!((c1.fields().side, c1.fields().qty), (Side::Buy, qty("1")));
    h.fill_all(&c0);
    h.fill_all(&c1);
    assert_eq!(h.group.state(), GroupState::Flattened);
    assert_eq!(naked_count(&h), 1);
}

/// Legs built through the pricer are IOC limits at the clamped price, quantized, and accepted.
#[test]
fn legs_priced_by_the_ioc_pricer_are_accepted() {
    let cache = group_common::cache();
    let g = GroupId::derive(&strategy(), b"priced");
    let template = leg(g, 0, CALL, Side::Buy, "1", "0.0455").intent;
    let mut fields = *template.fields();
    fields.time_in_force = hotpath::domain::intent::TimeInForce::GoodTilCancelled;
    fields.limit_price = None;
    let pricer = PricerInput {
        fair_price: p("0.05"),
        gross_edge: p("0.004"),
        min_edge: p("0.001"),
        fee_estimate: p("0.0003"),
        qty: qty("1"),
        side: Side::Buy,
    };
    let leg0 =
        hotpath::group::LegPlan::ioc_priced(fields, &pricer, cache.get(CALL), usd("100")).unwrap();
    let f = leg0.intent.fields();
    assert_eq!(f.time_in_force, hotpath::domain::intent::TimeInForce::ImmediateOrCancel);
    // net 0.0037 ⇒ proposed 0.05 − 0.00185 = 0.04815; cap 0.05 − 0.0013 = 0.0487 ⇒ 0.04815,
    // rounded down to the 0.0005 tick ⇒ 0.048.
    assert_eq!(f.limit_price, Some(p("0.048")));
    let mismatched = PricerInput { side: Side::Sell, ..pricer };
    assert!(hotpath::group::LegPlan::ioc_priced(fields, &mismatched, cache.get(CALL), usd("1"))
        .is_err());
    let budget = Arc::new(PendingExposureBudget::new(usd("1000")));
    assert!(AtomicGroup::accept(&[leg0], budget, EmergencyConfig::default(), NOW_MS).is_ok());
}

/// B §3.1: no fresh price ⇒ no close is dispatched (`CloseBlocked` with
/// `EmergencyCloseNoPrice`) and no attempt is burnt while waiting; a fresh book on a later tick
/// sends Close(1). Persistently no price ⇒ after the bounded waits the attempts run out and the
/// perp hedge (which has a price) takes over.
#[test]
fn no_price_waits_then_closes_or_hedges() {
    for recovers in [true, false] {
        let mut market = Market::new();
        market.rescue_verdict = Err(RejectReasonCode::NetEdgeTooLow);
        let budget = Arc::new(PendingExposureBudget::new(usd("100000")));
        let mut h = Harness::start_with(&option_pair(b"no-price"), budget, market);
        let (a, _, _) = h.next();
        let (b, _, _) = h.next();
        // The call's book goes stale just before containment needs it.
        h.market.books[0].last_update_ms = NOW_MS - 5_000;
        h.fill_all(&a);
        h.reject(&b);
        assert_eq!(h.group.state(), GroupState::Flattening);
        assert!(h.outbox.is_empty(), "no dispatch without a price");
        assert!(h.records.contains(&GroupRecord::CloseBlocked {
            leg: 0,
            code: RejectReasonCode::EmergencyCloseNoPrice
        }));
        assert_eq!(h.group.close_attempts(), 0);
        if recovers {
            h.advance(100); // refresh() makes every book fresh again
            let (c, _, role) = h.next();
            assert_eq!(role, OrderRole::Close(1));
            h.fill_all(&c);
            assert_eq!(h.group.state(), GroupState::Flattened);
        } else {
            for _ in 0..30 {
                // Every other book (the perpetual's too) stays fresh; the call's does not.
                h.now_ms += 100;
                let stale = h.market.books[0].last_update_ms;
                h.market.refresh(h.now_ms);
                h.market.books[0].last_update_ms = stale;
                h.feed(GroupInput::Tick);
                if !h.outbox.is_empty() {
                    break;
                }
            }
            assert_eq!(h.group.close_attempts(), 3);
            let (hedge, _, role) = h.next();
            assert_eq!((role, hedge.fields().instrument.as_str()), (OrderRole::Hedge(1), PERP));
        }
    }
}
