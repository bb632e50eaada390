//! 100+ kill/restart cycles of the real `stoic run --headless` under order flow, SIGKILL at a
//! seeded pseudo-random instant each cycle, all on one WAL and one simulator. Each cycle
//! checks the venue-side oracle (`duplicate_dispatch_count == 0` from the simulator journal)
//! and writes a line to evidence/phase1/restart_loop/restart_100_cycles.log.

mod crash_support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crash_support::{check_no_ghost_state, engine_cmd, reconciled_field, Proc, Sim};

const CYCLES: u32 = 100;

/// A small fixed-seed generator (xorshift64*): the kill instants are the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn test_restart_loop_100_cycles_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path());
    let wal = dir.path().join("wal");
    let mut rng = Rng(0x5EED_0FC7_C1E5);
    let mut log = String::new();
    writeln!(log, "# restart loop: {CYCLES} cycles of start -> orders flow -> SIGKILL at a seeded instant -> restart").unwrap();
    writeln!(
        log,
        "# one simulator, one WAL dir; oracle = simulator journal (duplicate_dispatch_count)"
    )
    .unwrap();
    let started = Instant::now();
    let mut total_in_doubt = 0;
    let mut total_abandoned = 0;
    let mut cycles_with_flow = 0;
    for cycle in 1..=CYCLES {
        let before = sim.orders();
        let mut p = Proc::spawn(engine_cmd(&sim, &wal, u64::from(cycle), None));
        let rec = p
            .wait_line("reconciled:", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("cycle {cycle}: no reconciliation:\n{}", p.output()));
        total_in_doubt += reconciled_field(&rec, "in_doubt");
        total_abandoned += reconciled_field(&rec, "abandoned");
        // Let orders flow: until the journal grows, or a short bound.
        let deadline = Instant::now() + Duration::from_millis(500);
        while sim.orders() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if sim.orders() > before {
            cycles_with_flow += 1;
        }
        // Kill at a seeded instant 0..200 ms later.
        std::thread::sleep(Duration::from_millis(rng.next() % 200));
        let st = p.kill9();
        assert!(st.is_some(), "cycle {cycle}: could not reap the engine");
        let s = sim.summary();
        assert_eq!(
            s.duplicate_dispatch_count, 0,
            "cycle {cycle}: duplicate dispatch {:?}",
            s.duplicate_labels
        );
        assert_eq!(s.illegal_order_attempts, 0, "cycle {cycle}: {:?}", s.illegal_seqs);
        writeln!(
            log,
            "cycle={cycle} orders_in_journal={} in_doubt_resolved={} abandoned={} duplicates={}",
            s.new_order_requests,
            reconciled_field(&rec, "in_doubt"),
            reconciled_field(&rec, "abandoned"),
            s.duplicate_dispatch_count
        )
        .unwrap();
    }
    // A final clean run resolves what the last kill left and stops cleanly.
    let mut p = Proc::spawn(engine_cmd(&sim, &wal, 9_999, Some(4)));
    let rec = p.wait_line("reconciled:", Duration::from_secs(30)).expect("final reconcile");
    total_in_doubt += reconciled_field(&rec, "in_doubt");
    total_abandoned += reconciled_field(&rec, "abandoned");
    let st = p.wait_exit(Duration::from_secs(90));
    assert!(st.is_some_and(|s| s.success()), "final run: {st:?}\n{}", p.output());
    let s = sim.summary();
    assert_eq!(s.duplicate_dispatch_count, 0, "{:?}", s.duplicate_labels);
    assert_eq!(s.illegal_order_attempts, 0);
    let (abandoned_in_wal, seen) = check_no_ghost_state(&wal, &sim.label_counts());
    assert!(
        cycles_with_flow >= CYCLES * 9 / 10,
        "orders flowed in only {cycles_with_flow} of {CYCLES} cycles"
    );
    writeln!(
        log,
        "final: cycles={CYCLES} cycles_with_order_flow={cycles_with_flow} orders_in_journal={} \
         in_doubt_resolved_total={total_in_doubt} abandoned_total={total_abandoned} \
         wal_abandoned={abandoned_in_wal} wal_seen_by_venue={seen} duplicate_dispatch_count={} \
         illegal_order_attempts={}",
        s.new_order_requests, s.duplicate_dispatch_count, s.illegal_order_attempts
    )
    .unwrap();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("evidence/phase1/restart_loop");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("restart_100_cycles.log"), &log).unwrap();
    eprintln!("restart loop: {:?}", started.elapsed());
}
