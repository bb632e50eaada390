//! Table tests of the pure three-way reconciliation: one scenario per finding kind, the
//! §1.1.2 tie-breaks, the sweeper thresholds, determinism, and the latch hand-off.

use std::collections::BTreeMap;

use coldpath::reconcile::sweeper::{sweep, ZombieReason};
use coldpath::reconcile::{
    reconcile, CancelReason, Finding, FindingKind, IntentDetail, LabelLookup, LedgerIntent,
    LedgerRepair, LedgerSnapshot, LocalPositions, OrphanReason, ReconcileConfig, RepairAction,
    UnresolvedReason, VenueOrder, VenuePosition, VenueSnapshot, VenueTrade,
};
use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode};
use hotpath::mode::OpenPermissionLatch;
use hotpath::venue::messages::{Direction, OrderState};
use hotpath::wal::IntentState;

const NOW: i64 = 1_700_000_000_000;
const ONE: i64 = 100_000_000; // 1.0 in Decimal8 raw
const INST: &str = "BTC-27DEC26-100000-C";
const INST2: &str = "ETH-27DEC26-3500-P";

fn label(gid: u64, leg: u8, ih: u64) -> String {
    format!("s4:0badcafe:{:012x}:{leg}:{:016x}", gid, ih)
}

fn intent(h: u64, label: &str, state: IntentState) -> LedgerIntent {
    LedgerIntent {
        intent_hash: h,
        label: label.to_owned(),
        state,
        venue_order_id: None,
        filled_amount: 0,
        updated_ms: NOW - 60_000,
        detail: Some(IntentDetail {
            instrument: INST.to_owned(),
            direction: Direction::Buy,
            amount: ONE,
            reduce_only: false,
        }),
    }
}

fn order(id: &str, label: &str) -> VenueOrder {
    VenueOrder {
        order_id: id.to_owned(),
        instrument: INST.to_owned(),
        direction: Direction::Buy,
        amount: ONE,
        filled_amount: 0,
        label: label.to_owned(),
        state: OrderState::Open,
        reduce_only: false,
        creation_ms: NOW - 1_000,
    }
}

fn trade(id: &str, order_id: &str, label: &str, amount: i64) -> VenueTrade {
    VenueTrade {
        trade_id: id.to_owned(),
        order_id: order_id.to_owned(),
        instrument: INST.to_owned(),
        direction: Direction::Buy,
        amount,
        price: 5_000_000,
        label: label.to_owned(),
        timestamp_ms: NOW - 2_000,
    }
}

fn venue() -> VenueSnapshot {
    VenueSnapshot { trades_complete: true, fetched_ms: NOW, ..VenueSnapshot::default() }
}

fn ledger(intents: Vec<LedgerIntent>) -> LedgerSnapshot {
    LedgerSnapshot { intents, ..LedgerSnapshot::default() }
}

fn pos(inst: &str, size: i64) -> VenuePosition {
    VenuePosition { instrument: inst.to_owned(), size }
}

fn run(
    l: &LedgerSnapshot,
    local: &LocalPositions,
    v: &VenueSnapshot,
) -> coldpath::reconcile::ReconcileReport {
    reconcile(l, local, v, &ReconcileConfig::default())
}

fn kinds(r: &coldpath::reconcile::ReconcileReport) -> Vec<FindingKind> {
    r.findings.iter().map(Finding::kind).collect()
}

#[test]
fn clean_state_is_clean_and_clears_the_latch() {
    let l1 = label(1, 0, 11);
    let mut it = intent(11, &l1, IntentState::Acknowledged);
    it.venue_order_id = Some("o1".into());
    let mut v = venue();
    v.open_orders.push(order("o1", &l1));
    let r = run(&ledger(vec![it]), &LocalPositions::default(), &v);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.is_clean());
    assert_eq!(r.summary().result, "clean");
    assert!(r.summary().failed_checks.is_empty());
    let latch = OpenPermissionLatch::new_at_start();
    let ticket = latch.begin_reconcile();
    latch.complete_reconcile(ticket, &r.latch_report()).expect("clean report clears");
    assert!(!latch.is_latched());
}

#[test]
fn late_ack_records_the_order_id() {
    let l1 = label(1, 0, 11);
    let mut v = venue();
    v.open_orders.push(order("o1", &l1));
    let r = run(&ledger(vec![intent(11, &l1, IntentState::Sent)]), &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::LateAck]);
    assert_eq!(
        r.actions,
        vec![RepairAction::Ledger(LedgerRepair::Acknowledged {
            intent_hash: 11,
            venue_order_id: "o1".into()
        })]
    );
    assert!(!r.checks.intents_match_open_orders && !r.is_clean());
}

#[test]
fn late_fill_at210_sent_then_filled_is_adopted() {
    let l1 = label(1, 0, 11);
    let mut v = venue();
    v.trades.push(trade("t1", "o1", &l1, ONE));
    v.positions.push(pos(INST, ONE));
    let r = run(&ledger(vec![intent(11, &l1, IntentState::Sent)]), &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::LateFill]);
    assert_eq!(
        r.actions,
        vec![
            RepairAction::Ledger(LedgerRepair::Filled {
                intent_hash: 11,
                instrument: INST.into(),
                filled_amount: ONE,
                trade_id: "t1".into()
            }),
            RepairAction::AdoptFill {
                instrument: INST.into(),
                delta: ONE,
                trade_ids: vec!["t1".into()]
            },
        ]
    );
    assert!(!r.checks.no_missing_trades);
    assert!(r.checks.positions_match, "the adopted fill explains the venue position");
}

#[test]
fn late_partial_fill_on_a_working_order() {
    let l1 = label(1, 0, 11);
    let mut it = intent(11, &l1, IntentState::Acknowledged);
    it.venue_order_id = Some("o1".into());
    let mut o = order("o1", &l1);
    o.filled_amount = ONE / 2;
    let mut v = venue();
    v.open_orders.push(o);
    v.trades.push(trade("t1", "o1", &l1, ONE / 2));
    v.positions.push(pos(INST, ONE / 2));
    let r = run(&ledger(vec![it]), &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::LateFill]);
    assert!(r.actions.contains(&RepairAction::Ledger(LedgerRepair::PartiallyFilled {
        intent_hash: 11,
        instrument: INST.into(),
        filled_amount: ONE / 2,
        trade_id: "t1".into()
    })));
}

#[test]
fn orphan_fill_unknown_label_adopted_and_deduped() {
    let stray = label(9, 0, 99);
    let mut v = venue();
    v.trades.push(trade("t9", "o9", &stray, ONE));
    v.positions.push(pos(INST, ONE));
    let mut l = ledger(vec![]);
    let r = run(&l, &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::OrphanFill]);
    assert!(matches!(
        &r.findings[0],
        Finding::OrphanFill { reason: OrphanReason::UnknownIntent, amount, .. } if *amount == ONE
    ));
    assert!(r.checks.positions_match);
    // AT-121: once processed (and positions adopted), the same trade is ignored.
    l.processed_trade_ids.insert("t9".into());
    let local = LocalPositions(BTreeMap::from([(INST.to_owned(), ONE)]));
    assert!(run(&l, &local, &v).is_clean());
}

#[test]
fn orphan_fill_for_abandoned_intent_is_flagged() {
    let l1 = label(1, 0, 11);
    let mut v = venue();
    v.trades.push(trade("t1", "o1", &l1, ONE));
    v.positions.push(pos(INST, ONE));
    let r =
        run(&ledger(vec![intent(11, &l1, IntentState::Abandoned)]), &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::OrphanFill]);
    assert!(matches!(
        &r.findings[0],
        Finding::OrphanFill { reason: OrphanReason::TerminalIntent, intent_hash: Some(11), .. }
    ));
    assert!(!r.actions.iter().any(|a| matches!(a, RepairAction::Ledger(_))));
}

#[test]
fn zombie_orders_are_cancelled_foreign_ones_left_alone() {
    let unknown = label(7, 0, 77);
    let dead = label(1, 0, 11);
    let live = label(2, 1, 22);
    let mut live_it = intent(22, &live, IntentState::Acknowledged);
    live_it.venue_order_id = Some("o-live".into());
    let l = ledger(vec![intent(11, &dead, IntentState::Cancelled), live_it]);
    let mut v = venue();
    v.open_orders.push(order("o-unknown", &unknown));
    v.open_orders.push(order("o-dead", &dead));
    v.open_orders.push(order("o-live", &live));
    let mut dup = order("o-dup", &live);
    dup.creation_ms = NOW - 500;
    v.open_orders.push(dup);
    v.open_orders.push(order("o-manual", "manual-hedge"));
    v.open_orders.push(order("o-nolabel", ""));
    v.open_orders.push(order("o-s4ish", "s4x:not-ours"));
    let r = run(&l, &LocalPositions::default(), &v);
    let cancels: Vec<(&str, CancelReason)> =
        r.cancels().map(|c| (c.order_id.as_str(), c.reason)).collect();
    assert_eq!(
        cancels,
        vec![
            ("o-dead", CancelReason::Zombie(ZombieReason::IntentTerminal)),
            ("o-dup", CancelReason::Zombie(ZombieReason::Duplicate)),
            ("o-unknown", CancelReason::Zombie(ZombieReason::NoIntent)),
        ]
    );
    assert_eq!(r.count(FindingKind::ZombieOrder), 3);
    assert_eq!(r.count(FindingKind::ForeignOrder), 3);
    // The sweeper alone agrees.
    let swept: Vec<String> = sweep(&l, &v.open_orders, NOW, &ReconcileConfig::default())
        .into_iter()
        .map(|c| c.order_id)
        .collect();
    assert_eq!(swept, vec!["o-dead", "o-dup", "o-unknown"]);
}

#[test]
fn foreign_orders_only_still_clean() {
    let mut v = venue();
    v.open_orders.push(order("o-manual", "manual"));
    let r = run(&ledger(vec![]), &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::ForeignOrder]);
    assert!(r.is_clean() && r.actions.is_empty());
}

#[test]
fn stale_order_thresholds_at124() {
    let l1 = label(1, 0, 11);
    let mut it = intent(11, &l1, IntentState::Acknowledged);
    it.venue_order_id = Some("o1".into());
    let l = ledger(vec![it]);
    for (age, reduce_only, stale) in [
        (29_999, false, false),
        (30_000, false, false),
        (30_001, false, true),
        (90_000, true, false),
    ] {
        let mut o = order("o1", &l1);
        o.creation_ms = NOW - age;
        o.reduce_only = reduce_only;
        let mut v = venue();
        v.open_orders.push(o);
        let r = run(&l, &LocalPositions::default(), &v);
        assert_eq!(
            r.count(FindingKind::StaleOrder),
            usize::from(stale),
            "age {age} ro {reduce_only}"
        );
        assert_eq!(r.cancels().count(), usize::from(stale));
        assert!(r.cancels().all(|c| c.reason == CancelReason::Stale));
    }
}

#[test]
fn ghost_intents_resolved_by_lookup_at123() {
    let cases = [
        (IntentState::Sent, IntentState::Abandoned),
        (IntentState::Recorded, IntentState::Abandoned),
        (IntentState::Acknowledged, IntentState::Cancelled),
    ];
    for (state, to) in cases {
        let l1 = label(1, 0, 11);
        let mut v = venue();
        v.label_lookups.insert(l1.clone(), LabelLookup::default());
        let r = run(&ledger(vec![intent(11, &l1, state)]), &LocalPositions::default(), &v);
        assert_eq!(kinds(&r), vec![FindingKind::GhostIntent], "{state:?}");
        assert!(
            matches!(&r.findings[0], Finding::GhostIntent { resolved_to, .. } if *resolved_to == to)
        );
        assert_eq!(r.actions.len(), 1);
        assert!(matches!(&r.actions[0], RepairAction::Ledger(rep) if rep.target_state() == to));
    }
    // The lookup says the venue cancelled it: Cancelled, not Abandoned.
    let l1 = label(1, 0, 11);
    let mut closed = order("o1", &l1);
    closed.state = OrderState::Cancelled;
    let mut v = venue();
    v.label_lookups.insert(l1.clone(), LabelLookup { orders: vec![closed] });
    let r = run(&ledger(vec![intent(11, &l1, IntentState::Sent)]), &LocalPositions::default(), &v);
    assert!(r.actions.contains(&RepairAction::Ledger(LedgerRepair::Cancelled {
        intent_hash: 11,
        instrument: INST.into(),
        filled_amount: 0
    })));
}

#[test]
fn unresolved_when_in_flight_or_not_looked_up() {
    let l1 = label(1, 0, 11);
    let mut fresh = intent(11, &l1, IntentState::Sent);
    fresh.updated_ms = NOW - 100;
    let mut v = venue();
    v.label_lookups.insert(l1.clone(), LabelLookup::default());
    let r = run(&ledger(vec![fresh]), &LocalPositions::default(), &v);
    assert!(matches!(
        &r.findings[..],
        [Finding::Unresolved { reason: UnresolvedReason::InFlight, .. }]
    ));
    assert!(r.actions.is_empty(), "never abandon an intent that may be in flight");
    let r = run(
        &ledger(vec![intent(11, &l1, IntentState::Sent)]),
        &LocalPositions::default(),
        &venue(),
    );
    assert!(matches!(
        &r.findings[..],
        [Finding::Unresolved { reason: UnresolvedReason::LookupMissing, .. }]
    ));
    assert!(!r.checks.intents_match_open_orders);
}

#[test]
fn position_mismatch_adopts_venue_and_latches() {
    let mut v = venue();
    v.positions.push(pos(INST2, -3 * ONE));
    let local = LocalPositions(BTreeMap::from([(INST.to_owned(), ONE)]));
    let r = run(&ledger(vec![]), &local, &v);
    assert_eq!(kinds(&r), vec![FindingKind::PositionMismatch, FindingKind::PositionMismatch]);
    assert_eq!(
        r.actions,
        vec![
            RepairAction::AdoptPosition { instrument: INST.into(), size: 0 },
            RepairAction::AdoptPosition { instrument: INST2.into(), size: -3 * ONE },
            RepairAction::SetLatch(OpenPermissionReasonCode::InventoryMismatchReconcileRequired),
        ]
    );
    assert!(!r.checks.positions_match);
    let summary = serde_json::to_value(r.summary()).expect("json");
    assert_eq!(summary["result"], "repairs_required");
    assert_eq!(summary["findings"]["PositionMismatch"], 2);
    assert_eq!(
        summary["failed_checks"],
        serde_json::json!(["IntentsMatchOpenOrders", "PositionsMatch"])
    );
    let latch = OpenPermissionLatch::new_at_start();
    let ticket = latch.begin_reconcile();
    assert!(latch.complete_reconcile(ticket, &r.latch_report()).is_err());
    // Within epsilon (1e-6 = 100 raw): no mismatch.
    let mut v = venue();
    v.positions.push(pos(INST, ONE + 100));
    assert!(run(&ledger(vec![]), &local, &v).is_clean());
    v.positions[0].size = ONE + 101;
    assert_eq!(run(&ledger(vec![]), &local, &v).count(FindingKind::PositionMismatch), 1);
}

#[test]
fn label_tie_breaks_at217() {
    // Two intents share gid12 + leg; the venue label's ih16 matches neither.
    let a = label(5, 0, 0xa);
    let b = label(5, 0, 0xb);
    let venue_label = label(5, 0, 0xc);
    let mut ia = intent(0xa, &a, IntentState::Acknowledged);
    let mut ib = intent(0xb, &b, IntentState::Acknowledged);
    ia.venue_order_id = Some("oa".into());
    ib.venue_order_id = Some("ob".into());
    // B) instrument decides.
    if let Some(d) = ib.detail.as_mut() {
        d.instrument = INST2.into();
    }
    let mut v = venue();
    v.open_orders.push(order("oa", &a));
    let mut ob = order("ob", &b);
    ob.instrument = INST2.into();
    v.open_orders.push(ob);
    let mut stray = order("ox", &venue_label);
    stray.instrument = INST2.into();
    v.open_orders.push(stray);
    let r = run(&ledger(vec![ia.clone(), ib.clone()]), &LocalPositions::default(), &v);
    // ox resolves to intent b, which already has ob: a duplicate, cancelled; no ambiguity.
    assert!(!r.risk_degraded);
    assert_eq!(r.cancels().map(|c| c.order_id.as_str()).collect::<Vec<_>>(), vec!["ox"]);
    // Nothing distinguishes them: ambiguous ⇒ Degraded, opens blocked, nothing cancelled.
    if let Some(d) = ib.detail.as_mut() {
        d.instrument = INST.into();
    }
    let mut v = venue();
    v.open_orders.push(order("oa", &a));
    v.open_orders.push(order("ob", &b));
    v.open_orders.push(order("ox", &venue_label));
    let r = run(&ledger(vec![ia, ib]), &LocalPositions::default(), &v);
    assert!(r.risk_degraded);
    assert_eq!(r.count(FindingKind::AmbiguousLabel), 1);
    assert!(matches!(
        r.findings.iter().find(|f| f.kind() == FindingKind::AmbiguousLabel),
        Some(Finding::AmbiguousLabel { candidates, .. }) if candidates == &vec![0xa, 0xb]
    ));
    assert_eq!(r.cancels().count(), 0);
    assert!(r
        .actions
        .contains(&RepairAction::RaiseMode(ModeReasonCode::ReduceonlyRiskstateDegraded)));
    assert!(!r.latch_report().intents_match_open_orders);
}

#[test]
fn incomplete_trades_fail_check_c() {
    let mut v = venue();
    v.trades_complete = false;
    let r = run(&ledger(vec![]), &LocalPositions::default(), &v);
    assert_eq!(kinds(&r), vec![FindingKind::TradesIncomplete]);
    assert!(!r.checks.no_missing_trades && !r.is_clean());
}

#[test]
fn output_is_deterministic_under_input_order() {
    let l1 = label(1, 0, 11);
    let l2 = label(2, 0, 22);
    let z = label(3, 0, 33);
    let intents = vec![intent(11, &l1, IntentState::Sent), intent(22, &l2, IntentState::Recorded)];
    let mut v = venue();
    v.open_orders = vec![order("o2", &l2), order("oz", &z), order("of", "foreign")];
    v.trades = vec![trade("t1", "o1", &l1, ONE), trade("tz", "oz", &z, ONE / 10)];
    v.positions = vec![pos(INST, ONE), pos(INST2, ONE)];
    let a = run(&ledger(intents.clone()), &LocalPositions::default(), &v);
    let mut rev = intents;
    rev.reverse();
    v.open_orders.reverse();
    v.trades.reverse();
    v.positions.reverse();
    let b = run(&ledger(rev), &LocalPositions::default(), &v);
    assert_eq!(a, b);
    let mut sorted = a.findings.clone();
    sorted.sort();
    assert_eq!(a.findings, sorted);
}
