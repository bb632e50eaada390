//! Issue 5, runtime: the `pinned` layout's three stage threads, wired for real — the feed
//! thread (market-data session against the in-process simulator), the strategy thread (the
//! quoter, fed by the book board, handing action batches over an `rtrb` ring) and the trading
//! thread (this test's thread: gate, WAL, dispatch, reports, state published back). Every
//! stage uses a parking/blocking wait (tests never spin; the machine has 2 cores), which is
//! the only difference from `stoic run --topology pinned` on a host with enough cores.
//!
//! What it proves: quotes decided on the strategy thread reach the simulator through the
//! trading thread's gates and WAL and are acknowledged; the batch/state sequence protocol
//! keeps the strategy from deciding on stale open orders (it never has more than one bid
//! and one ask per instrument live, the quoter's own bound); no label reaches the venue twice
//! (the simulator's journal is the oracle); shutdown cancels the quotes and joins the threads.

use std::time::{Duration, Instant};

use hotpath::venue::auth::{Credentials, Secret};
use stoic::engine::{strategies, Engine, EngineOptions};

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The stage tests' engine against the in-process simulator: feed and strategy threads
/// (plus the dispatch thread when `dispatch_thread`), every stage with a parking wait.
fn stage_options(
    sim: &simulator::SimHandle,
    dir: &std::path::Path,
    (client_id, secret): (&str, &str),
    policy: &str,
    strategy: strategies::StrategyFactory,
    dispatch_thread: bool,
    run_id: &str,
) -> EngineOptions {
    EngineOptions {
        venue_url: sim.ws_url(),
        credentials: Credentials {
            client_id: client_id.into(),
            client_secret: Secret::new(secret.into()),
        },
        wal_dir: dir.join("wal"),
        policy_path: repo(policy),
        strategy,
        topology: hotpath::ring::Topology::Compact,
        cores: [None; 4],
        spawn_feed: true,
        strategy_thread: true,
        strategy_wait: hotpath::ring::WaitStrategy::COMPACT_DEFAULT,
        dispatch_thread,
        dispatch_wait: hotpath::ring::WaitStrategy::COMPACT_DEFAULT,
        max_intents: None,
        tick: Duration::from_millis(20),
        startup_operator_token: Some("engine-stages-operator-token-0001".into()),
        taker_fee_bps: 5.0,
        maker_fee_bps: 0.0,
        run_id: run_id.into(),
        // No sink: records beyond the ring's capacity are dropped and counted.
        trace: hotpath::trace::trace_ring(hotpath::trace::TRACE_RING_CAPACITY).0,
    }
}

#[test]
fn test_strategy_thread_quotes_through_trading_thread_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: journal.clone(),
        ..simulator::SimConfig::default()
    })
    .expect("simulator");
    let mut engine = Engine::new(stage_options(
        &sim,
        dir.path(),
        ("sim-dev-trade", "sim-dev-trade-secret-0001"),
        "config/policy_paper.json",
        strategies::factory("quoter", 3),
        false,
        "stages",
    ))
    .expect("engine");
    engine.start().expect("start: reconcile, then feed + strategy threads");
    let books = engine.market_instruments().len();
    assert!(books > 0);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut acked_at: Option<Instant> = None;
    let mut live_max = 0;
    let mut batches = 0_u64;
    loop {
        engine.poll_exec_once(Duration::from_millis(1)).expect("trading session");
        if engine.service_strategy_stage().expect("carry out a batch") {
            batches += 1;
        }
        let live = engine.snapshot().live_orders;
        live_max = live_max.max(live);
        let stats = engine.stats();
        if acked_at.is_none() && stats.acked >= 4 {
            acked_at = Some(Instant::now());
        }
        // Keep trading a while after the first quotes rest: requotes go through the loop too.
        if acked_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            break;
        }
        assert!(Instant::now() < deadline, "no quotes acknowledged: {stats:?}");
    }
    let stats = engine.stats();
    engine.shutdown();
    sim.shutdown();
    println!("stats: {stats:?} batches={batches} live_max={live_max}");
    assert!(stats.market_events > 0, "the strategy thread consumed book notices: {stats:?}");
    assert!(stats.ticks > 0 && stats.actions > 0, "{stats:?}");
    assert!(batches > 0 && stats.intents > 0 && stats.sent > 0, "{stats:?}");
    assert_eq!(stats.intent_ring_full, 0, "one batch in flight never fills the ring");
    assert!(
        live_max <= 2 * books,
        "the strategy decided on stale open orders: {live_max} live for {books} books"
    );
    let summary = simulator::journal::Summary::from_file(&journal).expect("journal");
    assert_eq!(summary.duplicate_dispatch_count, 0, "{:?}", summary.duplicate_labels);
}

/// Issue 5, runtime: all four stage threads of the `pinned` layout — feed, strategy, gate
/// (this test's thread, in the real `Engine::run_until` loop) and dispatch (the trading
/// session lent to its own thread through `hotpath::ring::lend`) — with parking waits.
///
/// What it proves: durable batches decided on the strategy thread are written by the
/// dispatch thread and their execution reports come back over the output ring (the gate
/// journals them: acks); a session failure the dispatch thread hits (the simulator drops every
/// connection) makes the gate reclaim the session, reconnect, resolve in-doubt intents and
/// lend it out again, after which quoting resumes; no label reaches the venue twice and no
/// illegal order is sent (the simulator's journal is the oracle); shutdown reclaims the
/// session, cancels the quotes and leaves nothing open at the venue.
#[test]
fn test_gate_and_dispatch_threads_split_survives_reconnect_without_duplicates() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: journal.clone(),
        ..simulator::SimConfig::default()
    })
    .expect("simulator");
    let mut engine = Engine::new(stage_options(
        &sim,
        dir.path(),
        ("sim-dev-trade", "sim-dev-trade-secret-0001"),
        "config/policy_paper.json",
        strategies::factory("quoter", 5),
        true,
        "stages4",
    ))
    .expect("engine");
    engine.start().expect("start: reconcile, then feed, strategy and dispatch threads");
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let faults = sim.faults();
    let mut dropped_at: Option<(u64, u64)> = None; // (acked, dispatch batches) at the drop
    let mut resumed = false;
    let mut progress = |snap: &stoic::engine::EngineSnapshot| {
        let s = snap.stats;
        match dropped_at {
            None if s.acked >= 4 && s.dispatch_batches > 0 => {
                faults.disconnect_all();
                dropped_at = Some((s.acked, s.dispatch_batches));
            }
            Some((acked, batches))
                if s.reconnects >= 1 && s.acked >= acked + 4 && s.dispatch_batches > batches =>
            {
                resumed = true;
                stop.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(60) {
            stop.store(true, Ordering::Relaxed);
        }
    };
    engine.run_until(&stop, &mut progress).expect("run loop");
    let stats = engine.stats();
    let state = sim.state();
    sim.shutdown();
    println!("stats: {stats:?}");
    assert!(dropped_at.is_some(), "no quotes acknowledged through the dispatch thread: {stats:?}");
    assert!(
        resumed,
        "quoting did not resume through the dispatch thread after the reconnect: {stats:?}"
    );
    assert!(stats.dispatch_batches > 0 && stats.dispatch_reports > 0, "{stats:?}");
    assert!(
        stats.dispatch_reclaims >= 2,
        "the reconnect and the shutdown each reclaim the session: {stats:?}"
    );
    assert_eq!(stats.intent_ring_full, 0, "{stats:?}");
    let summary = simulator::journal::Summary::from_file(&journal).expect("journal");
    assert_eq!(summary.duplicate_dispatch_count, 0, "{:?}", summary.duplicate_labels);
    assert_eq!(summary.illegal_order_attempts, 0, "{summary:?}");
    let open: usize = state["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["username"] == "dev")
        .map(|a| a["open_orders"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(open, 0, "shutdown left orders resting at the venue");
}

/// Issue 5, overflow policy of the gate → dispatch ring (docs/concurrency.md): with the
/// dispatch thread stalled (feature `failpoints`: `STOIC_DISPATCH_STALL_MS` sleeps before each
/// place batch) and one place batch in circulation (`STOIC_DISPATCH_SEND_BATCHES`), the
/// `runaway` strategy (one more open per instrument every tick, up to four) finds the ring
/// full at its second tick, deterministically; the gate then refuses the
/// tick's places with `IntentRingFull` **before any side effect** — counted by code, never
/// journaled (the WAL holds exactly the intents counted as journaled) and never sent — while
/// the batches already queued still reach the venue, once each.
#[cfg(feature = "failpoints")]
#[test]
fn test_full_dispatch_ring_refuses_places_with_intent_ring_full_before_the_wal() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // This test runs in its own process (nextest): the variable reaches only this engine.
    std::env::set_var("STOIC_DISPATCH_STALL_MS", "1000");
    std::env::set_var("STOIC_DISPATCH_SEND_BATCHES", "1");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: journal.clone(),
        ..simulator::SimConfig::default()
    })
    .expect("simulator");
    let mut engine = Engine::new(stage_options(
        &sim,
        dir.path(),
        // The simulator's bench account: brownout (credits) must not be what refuses.
        ("sim-bench", "sim-bench-secret-0005"),
        "config/policy_churn.json",
        strategies::factory("runaway", 11),
        true,
        "ringfull",
    ))
    .expect("engine");
    engine.start().expect("start");
    engine.adopt_matching_limits(hotpath::venue::messages::RateBurst {
        rate: 1_000_000,
        burst: 1_000_000,
    });
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let ring_full = |snap: &stoic::engine::EngineSnapshot| {
        snap.rejects_by_code.iter().find(|(c, _)| *c == "IntentRingFull").map_or(0, |(_, n)| *n)
    };
    let mut refused = 0;
    let mut progress = |snap: &stoic::engine::EngineSnapshot| {
        refused = ring_full(snap);
        if (refused > 0 && snap.stats.dispatch_batches >= 2)
            || started.elapsed() > Duration::from_secs(40)
        {
            stop.store(true, Ordering::Relaxed);
        }
    };
    engine.run_until(&stop, &mut progress).expect("run loop");
    let stats = engine.stats();
    let snap = engine.snapshot();
    sim.shutdown();
    println!(
        "stats: {stats:?} rejects: {:?} last: {:?}",
        snap.rejects_by_code, snap.last_gate_reject
    );
    assert!(ring_full(&snap) > 0, "the stalled ring never filled: {stats:?}");
    // The gate → dispatch overflow is what `/metrics` exports for that ring (hot state).
    assert!(stats.dispatch_ring_full > 0, "{stats:?}");
    let hot = engine.hot_state_reader().read_versioned().1;
    // Published every 1 ms, so at most the last turn's refusals behind.
    assert!(hot.ring_overflow[1] > 0 && hot.ring_overflow[1] <= stats.dispatch_ring_full);
    assert!(stats.dispatch_batches >= 2, "queued batches still went out: {stats:?}");
    // Refused before the WAL: the ledger holds exactly the intents this process journaled.
    drop(engine);
    let (wal, _) =
        hotpath::wal::Wal::open(&dir.path().join("wal"), hotpath::wal::WalConfig::default(), 0)
            .expect("reopen the WAL");
    assert_eq!(wal.ledger().len() as u64, stats.intents, "{stats:?}");
    let summary = simulator::journal::Summary::from_file(&journal).expect("journal");
    assert_eq!(summary.duplicate_dispatch_count, 0, "{:?}", summary.duplicate_labels);
    assert_eq!(summary.illegal_order_attempts, 0, "{summary:?}");
    assert!(summary.new_order_requests <= stats.intents, "{summary:?} {stats:?}");
}
