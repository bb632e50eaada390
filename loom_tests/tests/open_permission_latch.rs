//! loom model of `hotpath::mode::OpenPermissionLatch`: a reason set concurrently with a
//! reconciliation is never erased by it.
#![cfg(loom)]

use hotpath::domain::reason_codes::OpenPermissionReasonCode as Op;
use hotpath::mode::{OpenPermissionLatch, ReconcileReport};
use loom::sync::Arc;
use loom::thread;

#[test]
fn a_gap_during_reconciliation_survives_it() {
    loom::model(|| {
        let latch = Arc::new(OpenPermissionLatch::new_at_start());
        let feed = Arc::clone(&latch);
        let gap = thread::spawn(move || feed.set(Op::WsBookGapReconcileRequired));
        let ticket = latch.begin_reconcile();
        let ok = ReconcileReport {
            intents_match_open_orders: true,
            positions_match: true,
            no_missing_trades: true,
        };
        let cleared = latch.complete_reconcile(ticket, &ok);
        gap.join().unwrap();
        let gap_resolved =
            cleared.as_ref().is_ok_and(|c| c.resolved.contains(&Op::WsBookGapReconcileRequired));
        let gap_latched = latch.codes().contains(Op::WsBookGapReconcileRequired);
        // Either the reconciliation covered the gap (it was set before the ticket), or the
        // gap is still latched. Never both, never neither.
        assert!(gap_resolved ^ gap_latched, "resolved={gap_resolved} latched={gap_latched}");
    });
}
