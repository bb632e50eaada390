//! Control ring: FIFO delivery, budget, and the overflow policy.

use hotpath::domain::reason_codes::{ModeReasonCode, TradingMode};
use hotpath::mode::{ReasonSet, TradingModeCell};
use hotpath::ring::{control_ring, ControlCommand, ControlFull, SendOutcome};
use std::sync::Arc;

fn active_cell() -> Arc<TradingModeCell> {
    Arc::new(TradingModeCell::with_reasons(ReasonSet::EMPTY))
}

#[test]
fn full_ring_hands_the_command_back() {
    let cell = active_cell();
    let (mut tx, mut rx) = control_ring(2, Arc::clone(&cell));
    tx.try_send(ControlCommand::CancelAllOpens).unwrap();
    tx.try_send(ControlCommand::EmergencyClose).unwrap();
    assert_eq!(tx.slots(), 0);
    let cmd = ControlCommand::TightenMode(ModeReasonCode::KillCortexForceKill);
    assert_eq!(tx.try_send(cmd), Err(ControlFull(cmd)));
    assert_eq!(cell.mode(), TradingMode::Active, "try_send itself changes nothing");
    let mut got = Vec::new();
    assert_eq!(rx.drain(8, |c| got.push(c)), 2);
    assert_eq!(got, vec![ControlCommand::CancelAllOpens, ControlCommand::EmergencyClose]);
}

#[test]
fn overflow_escalates_through_the_mode_cell_and_sticky_flags() {
    let cell = active_cell();
    let (mut tx, mut rx) = control_ring(1, Arc::clone(&cell));
    assert_eq!(
        tx.send(ControlCommand::TightenMode(ModeReasonCode::ReduceonlyBunkerModeActive)),
        SendOutcome::Queued
    );

    // Full: a tighten goes straight to the cell, plus the backpressure reason.
    let outcome = tx.send(ControlCommand::TightenMode(ModeReasonCode::KillDiskWatermarkKill));
    let SendOutcome::Escalated(word) = outcome else {
        panic!("expected escalation, got {outcome:?}")
    };
    assert_eq!(word.mode(), TradingMode::Kill);
    assert!(word.reasons().contains(ModeReasonCode::KillDiskWatermarkKill));
    assert!(word.reasons().contains(ModeReasonCode::ReduceonlyHotpathBackpressure));

    // Full: cancel-all and emergency close become sticky flags, delivered first, once each.
    assert!(matches!(tx.send(ControlCommand::CancelAllOpens), SendOutcome::Escalated(_)));
    assert!(matches!(tx.send(ControlCommand::EmergencyClose), SendOutcome::Escalated(_)));
    assert!(matches!(tx.send(ControlCommand::CancelAllOpens), SendOutcome::Escalated(_)));
    assert!(rx.has_pending());
    let mut got = Vec::new();
    assert_eq!(rx.drain(8, |c| got.push(c)), 3);
    assert_eq!(
        got,
        vec![
            ControlCommand::EmergencyClose,
            ControlCommand::CancelAllOpens,
            ControlCommand::TightenMode(ModeReasonCode::ReduceonlyBunkerModeActive),
        ]
    );
    assert!(!rx.has_pending());
    assert_eq!(rx.drain(8, |_| panic!("nothing left")), 0);
}

#[test]
fn drain_respects_its_budget_and_fifo_order() {
    let (mut tx, mut rx) = control_ring(16, active_cell());
    let reasons = &ModeReasonCode::ALL[..10];
    for r in reasons {
        assert_eq!(tx.send(ControlCommand::TightenMode(*r)), SendOutcome::Queued);
    }
    let mut got = Vec::new();
    assert_eq!(rx.drain(4, |c| got.push(c)), 4);
    assert_eq!(rx.drain(100, |c| got.push(c)), 6);
    let expected: Vec<_> = reasons.iter().map(|r| ControlCommand::TightenMode(*r)).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_sender_on_another_thread_loses_nothing_under_overflow() {
    const SENT: usize = 5_000;
    let cell = active_cell();
    let (mut tx, mut rx) = control_ring(4, Arc::clone(&cell));
    let sender = std::thread::spawn(move || {
        let mut escalated = 0usize;
        for n in 0..SENT {
            let cmd = if n % 2 == 0 {
                ControlCommand::CancelAllOpens
            } else {
                ControlCommand::EmergencyClose
            };
            if let SendOutcome::Escalated(_) = tx.send(cmd) {
                escalated += 1;
            }
            if n % 64 == 0 {
                std::thread::yield_now();
            }
        }
        escalated
    });
    let mut delivered = 0usize;
    while !sender.is_finished() {
        delivered += rx.drain(2, |_| {});
        std::thread::yield_now();
    }
    let escalated = sender.join().unwrap();
    delivered += rx.drain(usize::MAX, |_| {});
    // Every queued command is delivered; escalations coalesce into at most one per flag per
    // drain, so delivered >= queued and every escalation tightened the mode.
    assert!(delivered >= SENT - escalated, "delivered {delivered}, queued {}", SENT - escalated);
    if escalated > 0 {
        assert!(cell.load().reasons().contains(ModeReasonCode::ReduceonlyHotpathBackpressure));
    } else {
        assert_eq!(cell.mode(), TradingMode::Active);
    }
}
