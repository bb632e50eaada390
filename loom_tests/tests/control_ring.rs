//! loom model of the control ring's overflow protocol (`hotpath::ring::control`): the rtrb
//! ring itself is upstream; modelled here is what Stoic adds around it — escalation through
//! the mode cell and the sticky flag word, drained concurrently by the hot side. The tighten
//! goes first so that, unless the hot side drains in time, both later commands escalate into
//! the flag word and race the drain's take-and-clear.
#![cfg(loom)]

use hotpath::domain::reason_codes::ModeReasonCode as R;
use hotpath::mode::{ReasonSet, TradingModeCell};
use hotpath::ring::{control_ring, ControlCommand as C, SendOutcome};
use loom::sync::Arc;
use loom::thread;

#[test]
fn no_command_effect_is_lost_under_overflow() {
    loom::model(|| {
        let cell = Arc::new(TradingModeCell::with_reasons(ReasonSet::EMPTY));
        let (mut tx, mut rx) = control_ring(1, Arc::clone(&cell));
        let cold = thread::spawn(move || {
            [C::TightenMode(R::ReduceonlyBunkerModeActive), C::CancelAllOpens, C::EmergencyClose]
                .map(|c| matches!(tx.send(c), SendOutcome::Escalated(_)))
        });
        let mut got = Vec::new();
        rx.drain(4, |c| got.push(c));
        let escalated = cold.join().unwrap();
        rx.drain(4, |c| got.push(c));

        assert!(got.contains(&C::CancelAllOpens), "cancel-all lost: {got:?}");
        assert!(got.contains(&C::EmergencyClose), "emergency close lost: {got:?}");
        let tighten_delivered = got.contains(&C::TightenMode(R::ReduceonlyBunkerModeActive));
        let tighten_applied = cell.load().reasons().contains(R::ReduceonlyBunkerModeActive);
        assert!(tighten_delivered || tighten_applied, "tighten lost");
        if escalated.contains(&true) {
            assert!(cell.load().reasons().contains(R::ReduceonlyHotpathBackpressure));
        }
        assert!(!rx.has_pending());
    });
}
