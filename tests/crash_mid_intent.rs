//! Kill the real `stoic run --headless` at each named crash point (SIGKILL from inside, via
//! `STOIC_FAILPOINT`), restart it on the same WAL, and check from the venue's side (the
//! simulator journal) that nothing was sent twice and nothing illegal was sent, and from the
//! WAL that no ghost state is left.

mod crash_support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use crash_support::{
    check_no_ghost_state, engine_cmd, reconciled_field, require_failpoints, Proc, Sim,
};

const POINTS: [&str; 4] = [
    "wal_after_append_before_sync",
    "after_sync_before_send",
    "after_send_before_ack_record",
    "mid_batch",
];

#[test]
fn test_crash_mid_intent_no_duplicate_dispatch() {
    require_failpoints();
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path());
    for (i, point) in POINTS.iter().enumerate() {
        let wal = dir.path().join(format!("wal-{point}"));
        let seed = 100 + i as u64;
        // 1. Crash at the point, after a few hits so orders flow first.
        let mut cmd = engine_cmd(&sim, &wal, seed, None);
        cmd.env("STOIC_FAILPOINT", point).env("STOIC_FAILPOINT_AFTER", "3");
        let mut p = Proc::spawn(cmd);
        let st = p.wait_exit(Duration::from_secs(60)).unwrap_or_else(|| {
            panic!("{point}: the engine did not reach its crash point; output:\n{}", p.output())
        });
        assert_eq!(st.signal(), Some(9), "{point}: expected death by SIGKILL, got {st:?}");
        let before = sim.summary();
        assert_eq!(before.duplicate_dispatch_count, 0, "{point}: duplicates before restart");

        // 2. Restart on the same WAL without the crash point, bounded work.
        let mut p = Proc::spawn(engine_cmd(&sim, &wal, seed, Some(6)));
        let rec = p
            .wait_line("reconciled:", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{point}: no reconciliation; output:\n{}", p.output()));
        let st = p.wait_exit(Duration::from_secs(90));
        assert!(
            st.is_some_and(|s| s.success()),
            "{point}: restarted engine did not finish cleanly: {st:?}\n{}",
            p.output()
        );
        // Reconciliation came before any trading in the restarted process.
        let out = p.output();
        let rec_at = out.find("reconciled:").unwrap();
        let trade_at = out.find("trading:").expect("trading line");
        assert!(rec_at < trade_at, "{point}: traded before reconciling");
        let in_doubt = reconciled_field(&rec, "in_doubt");
        let abandoned = reconciled_field(&rec, "abandoned");
        match *point {
            // The batch was never made durable: nothing to doubt, nothing was sent.
            "wal_after_append_before_sync" => {}
            // Durable but never sent: in doubt, and the venue never saw it => abandoned.
            "after_sync_before_send" => {
                assert!(in_doubt >= 1 && abandoned >= 1, "{point}: {rec}");
            }
            // On the wire, not journaled as sent: in doubt, and the venue did see it.
            "after_send_before_ack_record" => {
                assert!(in_doubt >= 1 && in_doubt > abandoned, "{point}: {rec}");
            }
            // First order of the batch sent, the rest not.
            "mid_batch" => assert!(in_doubt >= 2 && abandoned >= 1, "{point}: {rec}"),
            _ => unreachable!(),
        }

        // 3. The oracle and the WAL.
        let s = sim.summary();
        assert_eq!(s.duplicate_dispatch_count, 0, "{point}: {:?}", s.duplicate_labels);
        assert_eq!(s.illegal_order_attempts, 0, "{point}: {:?}", s.illegal_seqs);
        assert!(
            s.new_order_requests > before.new_order_requests,
            "{point}: no order after restart"
        );
        let (abandoned_in_wal, seen) = check_no_ghost_state(&wal, &sim.label_counts());
        assert!(abandoned_in_wal as u64 >= abandoned, "{point}");
        assert!(seen > 0, "{point}: the venue saw nothing of this WAL");
        println!("{point}: {rec}; abandoned={abandoned_in_wal} seen={seen}");
    }
}
