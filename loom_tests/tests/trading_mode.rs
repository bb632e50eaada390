//! loom models of `hotpath::mode::TradingModeCell` and the operator relax: concurrent
//! tightens never lower the mode (final = max), and a relax never erases a tighten it did
//! not see.
#![cfg(loom)]

use hotpath::domain::reason_codes::{ModeReasonCode as R, TradingMode};
use hotpath::mode::OpenPermissionLatch;
use hotpath::mode::{
    OperatorAction, OperatorAuthenticated, OperatorSecret, PolicyGuard, PolicyInputs,
    PolicyThresholds, ReasonSet, ReconcileReport, TradingModeCell,
};
use loom::sync::Arc;
use loom::thread;

#[test]
fn concurrent_tightens_never_lower_and_end_at_the_max() {
    loom::model(|| {
        let cell = Arc::new(TradingModeCell::with_reasons(ReasonSet::EMPTY));
        let a = Arc::clone(&cell);
        let ta = thread::spawn(move || a.tighten(R::ReduceonlyBunkerModeActive));
        let b = Arc::clone(&cell);
        let tb = thread::spawn(move || b.tighten(R::KillRiskstateKill));
        let first = cell.mode();
        let second = cell.mode();
        assert!(second >= first, "read went down: {first} then {second}");
        let (before_a, after_a) = ta.join().unwrap();
        let (before_b, after_b) = tb.join().unwrap();
        assert!(after_a.mode() >= before_a.mode() && after_b.mode() >= before_b.mode());
        assert_eq!(cell.mode(), TradingMode::Kill);
        let reasons = cell.load().reasons();
        assert!(
            reasons.contains(R::ReduceonlyBunkerModeActive)
                && reasons.contains(R::KillRiskstateKill)
        );
        assert_eq!(cell.load().seq(), 2, "both tightens counted");
    });
}

const TOKEN: &[u8] = b"loom-operator-token-0123456789";

/// One operator relax racing one hot-path tighten of an already-set reason; `relax_spawned`
/// puts the relax on the spawned thread instead of the main one, so loom's first schedule
/// and its backtracking points cover both orders (tighten before the relax loads the cell,
/// between its load and its compare-exchange, after it).
fn relax_vs_tighten(relax_spawned: bool) {
    loom::model(move || {
        let cell = Arc::new(TradingModeCell::with_reasons(ReasonSet::of(
            R::ReduceonlyHotpathBackpressure,
        )));
        let latch = Arc::new(OpenPermissionLatch::new_at_start());
        let ticket = latch.begin_reconcile();
        let ok = ReconcileReport {
            intents_match_open_orders: true,
            positions_match: true,
            no_missing_trades: true,
        };
        latch.complete_reconcile(ticket, &ok).unwrap();
        let mut guard = PolicyGuard::new(Arc::clone(&cell), latch, PolicyThresholds::default());
        let mut relax = move || {
            let healthy = PolicyInputs::all_healthy(1_000_000);
            let secret = OperatorSecret::from_token(TOKEN).unwrap();
            let auth = OperatorAuthenticated::verify(&secret, TOKEN, "ops").unwrap();
            let action = OperatorAction::relax(auth, TradingMode::Active, "loom").unwrap();
            guard.operator_relax(action, &healthy)
        };
        let hot = Arc::clone(&cell);
        let overflow = move || hot.tighten(R::ReduceonlyHotpathBackpressure).1;
        let (relaxed, tightened) = if relax_spawned {
            let t = thread::spawn(relax);
            let tightened = overflow();
            (t.join().unwrap(), tightened)
        } else {
            let t = thread::spawn(overflow);
            let relaxed = relax();
            (relaxed, t.join().unwrap())
        };

        // The tighten survives unless it is ordered before the very word the relax validated
        // (then the relax saw it, and the snapshot said its cause had cleared). A tighten the
        // relax did not see is never erased: it either lands after the relax or makes the
        // relax's compare-exchange fail.
        let survives = cell.load().reasons().contains(R::ReduceonlyHotpathBackpressure);
        match &relaxed {
            Ok(record) if !survives => {
                assert!(tightened.seq() <= record.validated_seq, "relax erased an unseen tighten");
                assert_eq!(record.mode_seq, record.validated_seq.wrapping_add(1));
                assert_eq!(cell.mode(), TradingMode::Active);
            }
            Ok(_) | Err(_) => {
                assert!(survives, "refused relax must leave the mode as it was");
                assert_eq!(cell.mode(), TradingMode::ReduceOnly);
            }
        }
    });
}

#[test]
fn relax_never_erases_a_concurrent_tighten() {
    relax_vs_tighten(false);
}

#[test]
fn relax_never_erases_a_concurrent_tighten_relax_on_spawned_thread() {
    relax_vs_tighten(true);
}
