//! The open-permission latch (CP-001).

use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode as Op, TradingMode};
use hotpath::mode::{
    F1CertState, LatchClearRefusal, OpenPermissionLatch, PolicyGuard, PolicyInputs, ReconcileCheck,
    ReconcileReport,
};

const ALL_OK: ReconcileReport = ReconcileReport {
    intents_match_open_orders: true,
    positions_match: true,
    no_missing_trades: true,
};

#[test]
fn starts_latched_with_restart_reconcile_required() {
    // AT-430.
    let latch = OpenPermissionLatch::new_at_start();
    assert!(latch.is_latched() && latch.requires_reconcile());
    assert_eq!(latch.open_permission_reason_codes(), vec![Op::RestartReconcileRequired]);
}

#[test]
fn clears_only_on_a_successful_reconciliation() {
    let latch = OpenPermissionLatch::new_at_start();
    latch.set(Op::WsTradesGapReconcileRequired);
    let ticket = latch.begin_reconcile();
    let failed = ReconcileReport { positions_match: false, ..ALL_OK };
    assert_eq!(
        latch.complete_reconcile(ticket, &failed).unwrap_err(),
        LatchClearRefusal::ChecksFailed { failed: vec![ReconcileCheck::PositionsMatch] }
    );
    assert!(latch.is_latched());
    let cleared = latch.complete_reconcile(ticket, &ALL_OK).unwrap();
    assert_eq!(
        cleared.resolved,
        vec![Op::RestartReconcileRequired, Op::WsTradesGapReconcileRequired]
    );
    assert!(!latch.is_latched() && !latch.requires_reconcile());
    assert!(latch.open_permission_reason_codes().is_empty());
}

#[test]
fn a_reason_raised_during_reconciliation_is_not_erased() {
    let latch = OpenPermissionLatch::new_at_start();
    let ticket = latch.begin_reconcile();
    latch.set(Op::WsBookGapReconcileRequired);
    assert_eq!(
        latch.complete_reconcile(ticket, &ALL_OK).unwrap_err(),
        LatchClearRefusal::ReasonSetDuringReconcile {
            current: vec![Op::RestartReconcileRequired, Op::WsBookGapReconcileRequired]
        }
    );
    // Even re-raising a code that was already set invalidates the ticket.
    let ticket = latch.begin_reconcile();
    assert!(!latch.set(Op::RestartReconcileRequired), "already set");
    assert!(latch.complete_reconcile(ticket, &ALL_OK).is_err());
    let ticket = latch.begin_reconcile();
    latch.complete_reconcile(ticket, &ALL_OK).unwrap();
    assert!(!latch.is_latched());
}

#[test]
fn codes_are_in_registry_order() {
    let latch = OpenPermissionLatch::new_at_start();
    let ticket = latch.begin_reconcile();
    latch.complete_reconcile(ticket, &ALL_OK).unwrap();
    for code in Op::ALL.into_iter().rev() {
        latch.set(code);
    }
    assert_eq!(latch.open_permission_reason_codes(), Op::ALL.to_vec());
}

#[test]
fn latch_drives_reduce_only_and_gap_inputs_set_it() {
    let mut guard = PolicyGuard::at_start();
    let mut inputs = PolicyInputs::all_healthy(1_000_000);
    let ticket = guard.latch().begin_reconcile();
    guard.latch().complete_reconcile(ticket, &ALL_OK).unwrap();
    inputs.trades_gap_detected = true;
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode, TradingMode::ReduceOnly);
    // AT-1052: latch only ⇒ exactly [REDUCEONLY_OPEN_PERMISSION_LATCHED].
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::ReduceonlyOpenPermissionLatched]);
    assert_eq!(d.open_permission.to_vec(), vec![Op::WsTradesGapReconcileRequired]);
    assert!(!d.permissions().permits(hotpath::mode::ActionClass::Open));
    inputs.ws_zombie_tripped = true;
    inputs.inventory_mismatch_detected = true;
    inputs.book_gap_detected = true;
    let d = guard.evaluate(&inputs);
    assert_eq!(
        d.open_permission.to_vec(),
        vec![
            Op::WsBookGapReconcileRequired,
            Op::WsTradesGapReconcileRequired,
            Op::WsDataStaleReconcileRequired,
            Op::InventoryMismatchReconcileRequired
        ]
    );
}

#[test]
fn f1_and_evidence_failures_never_enter_the_latch() {
    // AT-411.
    let mut guard = PolicyGuard::at_start();
    let ticket = guard.latch().begin_reconcile();
    guard.latch().complete_reconcile(ticket, &ALL_OK).unwrap();
    let mut inputs = PolicyInputs::all_healthy(1_000_000);
    inputs.f1_cert = F1CertState::Invalid;
    inputs.enforced_profile = hotpath::mode::EnforcedProfile::Full;
    inputs.evidence_chain_green = None;
    let d = guard.evaluate(&inputs);
    assert!(!guard.latch().is_latched());
    assert!(d.open_permission.is_empty());
    assert_eq!(
        d.present.to_vec(),
        vec![
            ModeReasonCode::ReduceonlyF1CertInvalid,
            ModeReasonCode::ReduceonlyEvidenceChainNotGreen
        ]
    );
}
