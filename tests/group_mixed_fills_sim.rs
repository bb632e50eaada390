//! Mixed fills never persist (contract A §5.6, AT-116/117/118/220/939): the real `stoic run
//! --headless --strategy vertical` against an in-process simulator, one failure shape per test,
//! injected with the simulator's faults before the engine starts trading:
//! - leg A partial / leg B rejected,
//! - both legs partial,
//! - leg B rejected three times (leg + both rescues) ⇒ ≤ 2 rescues, then the filled leg closed,
//! - leg B silent (timeout ⇒ in doubt ⇒ reconciled by label),
//! - venue disconnect while leg B is live.
//!
//! After each: the venue's positions hold no naked leg (long K1 = short K2, or both flat, or
//! a hedge within tolerance), the WAL holds every step (group intent, every transition, every
//! order's `IntentRecorded` before the venue saw it and a terminal record after), the
//! simulator's journal shows zero duplicate dispatches and zero illegal orders, and the mode
//! went ReduceOnly with `REDUCEONLY_GROUP_LOCK_TIMEOUT` on the first failure.

mod sim_support;
use sim_support::journal;
mod crash_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crash_support::{Proc, BIN};
use serde_json::Value;
use simulator::Fault;

const OUR_KEY: &str = "sim-dev-trade";
/// Net delta allowed after a hedge (coin): a tenth of one 0.2-coin leg's delta.
const HEDGE_DELTA_TOLERANCE_COIN: f64 = 0.01;

fn is_new_order(e: &Value) -> bool {
    e["key"] == OUR_KEY && matches!(e["method"].as_str(), Some("private/buy" | "private/sell"))
}

/// Two BTC calls of the nearest expiry at least a day out, adjacent strikes around the
/// perpetual's mark (K1 < K2).
fn choose_legs(sim: &simulator::SimHandle) -> (String, String) {
    sim.with_engine(|e| {
        let now = e.now_ms();
        let spot = e
            .by_name
            .get("BTC-PERPETUAL")
            .map(|&i| e.md[i].mark)
            .expect("the simulator lists BTC-PERPETUAL");
        let calls: Vec<&simulator::instruments::Instrument> = e
            .instruments
            .iter()
            .filter(|i| i.name.starts_with("BTC-") && i.name.ends_with("-C"))
            .filter(|i| i.expiry_ms > now + 86_400_000)
            .collect();
        let expiry = calls.iter().map(|i| i.expiry_ms).min().expect("a BTC call expiry");
        let mut strikes: Vec<&simulator::instruments::Instrument> =
            calls.into_iter().filter(|i| i.expiry_ms == expiry).collect();
        strikes.sort_by(|a, b| a.strike.total_cmp(&b.strike));
        let above = strikes.iter().position(|i| i.strike > spot).unwrap_or(strikes.len() - 1);
        let hi = above.max(1);
        (strikes[hi - 1].name.clone(), strikes[hi].name.clone())
    })
}

/// The repo policy with option-friendly liquidity limits: the simulator's LP quotes options
/// 6 % wide, above the 5 % open limit, and a rescue 2 ticks through an option's touch is
/// more than 10 bps from it.
fn policy_file(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/policy.json"),
    )
    .unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["data_limits"]["max_spread_bps_open"] = 2_000.into();
    v["data_limits"]["max_slippage_bps"] = 2_000.into();
    let path = dir.join("policy_groups.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

struct Run {
    _dir: tempfile::TempDir,
    sim: simulator::SimHandle,
    engine: Proc,
    wal: PathBuf,
    jpath: PathBuf,
    legs: (String, String),
}

fn start(faults: impl FnOnce(&simulator::SimHandle, &(String, String))) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: dir.path().join("journal.jsonl"),
        ..simulator::SimConfig::default()
    })
    .unwrap();
    let legs = choose_legs(&sim);
    faults(&sim, &legs);
    let wal = dir.path().join("wal");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--headless", "--venue-url"])
        .arg(sim.ws_url())
        .arg("--wal-dir")
        .arg(&wal)
        .arg("--policy")
        .arg(policy_file(dir.path()))
        .args(["--strategy", "vertical", "--seed", "7", "--lots", "2", "--topology", "compact"])
        .args(["--entry-debit-bps", "10000"])
        .arg("--legs")
        .arg(format!("{},{}", legs.0, legs.1))
        .env_remove("STOIC_FAILPOINT")
        .env_remove("STOIC_FAILPOINT_AFTER");
    let engine = Proc::spawn(cmd);
    engine.wait_line("trading:", Duration::from_secs(30)).expect("engine started trading");
    let jpath = sim.journal_path().to_owned();
    Run { _dir: dir, sim, engine, wal, jpath, legs }
}

impl Run {
    fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        self.engine
            .wait_line(needle, timeout)
            .unwrap_or_else(|| panic!("no line {needle:?}:\n{}", self.engine.output()))
    }

    /// The first group's terminal line (`to=Complete` / `to=Flattened`) or its escalation.
    fn wait_terminal(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self.engine.lines.lock().unwrap().iter().find_map(|l| {
                (l.starts_with("group: gid=")
                    && (l.contains("to=Complete")
                        || l.contains("to=Flattened")
                        || l.contains("ESCALATED")))
                .then(|| l.clone())
            });
            if let Some(l) = found {
                return l;
            }
            assert!(Instant::now() < deadline, "group never ended:\n{}", self.engine.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        let pid = self.engine.pid().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let st = self.engine.wait_exit(Duration::from_secs(30));
        assert!(st.is_some_and(|s| s.success()), "clean stop: {st:?}\n{}", self.engine.output());
    }

    fn positions(&self) -> BTreeMap<String, i64> {
        self.sim.with_engine(|e| {
            let (acct, _) = e.keys[OUR_KEY];
            e.accounts[acct]
                .positions
                .iter()
                .filter(|(_, p)| p.size != 0)
                .map(|(&i, p)| (e.instruments[i].name.clone(), p.size))
                .collect()
        })
    }

    /// The account's net coin delta by the simulator's own greeks (an oracle independent of
    /// the engine's model): options `size × delta`, inverse futures `size_usd / mark`.
    fn venue_delta_coin(&self) -> f64 {
        self.sim.with_engine(|e| {
            let (acct, _) = e.keys[OUR_KEY];
            e.accounts[acct]
                .positions
                .iter()
                .map(|(&i, p)| {
                    let size = simulator::util::amt(p.size);
                    match e.instruments[i].kind {
                        simulator::instruments::Kind::Option => {
                            size * e.md[i].greeks.map_or(0.0, |g| g.delta)
                        }
                        simulator::instruments::Kind::Future => size / e.md[i].mark.max(1.0),
                    }
                })
                .sum()
        })
    }

    fn wal_records(&self) -> Vec<Value> {
        let out = Command::new(BIN)
            .args(["wal", "inspect", "--json", "--dir"])
            .arg(&self.wal)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "record")
            .collect()
    }
}

/// Everything every shape must show afterwards. Returns the group's transitions
/// (`from->to cause`) in order.
fn check_invariants(run: &Run, expected_cause: &[&str]) -> Vec<String> {
    // Oracle: no duplicate dispatch, no illegal order.
    let s = simulator::journal::Summary::from_file(&run.jpath).unwrap();
    assert_eq!(s.duplicate_dispatch_count, 0, "{:?}", s.duplicate_labels);
    assert_eq!(s.illegal_order_attempts, 0, "{:?}", s.illegal_seqs);

    // Net exposure: no naked option leg; a perpetual hedge only with the hedge fallback.
    let pos = run.positions();
    let k1 = pos.get(&run.legs.0).copied().unwrap_or(0);
    let k2 = pos.get(&run.legs.1).copied().unwrap_or(0);
    let records = run.wal_records();
    let events: Vec<&Value> = records.iter().filter(|r| r["kind"] == "GroupEvent").collect();
    let hedged = events.iter().any(|e| {
        e["fields"]["event"] == "naked"
            && e["fields"]["detail"].as_str().unwrap_or("").contains("hedge_used=true")
    });
    if hedged {
        // Hedged in the perpetual: the delta is neutral within one 10 USD contract and the
        // gap between the engine's and the venue's greeks.
        let delta = run.venue_delta_coin();
        assert!(delta.abs() <= HEDGE_DELTA_TOLERANCE_COIN, "hedged delta {delta}: {pos:?}");
    } else {
        assert_eq!(
            k1 + k2,
            0,
            "a naked option leg persists: {pos:?}\n{}\n{}",
            run.engine.output(),
            records
                .iter()
                .map(|r| format!("{} {}", r["kind"], r["fields"]))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            !pos.contains_key("BTC-PERPETUAL"),
            "a perpetual position without a hedge: {pos:?}"
        );
    }

    // WAL: the group intent, the transitions, and every order the venue saw journaled before
    // it and terminal after.
    assert!(events.iter().any(|e| e["fields"]["event"] == "group_intent"), "no group intent");
    let transitions: Vec<String> = events
        .iter()
        .filter(|e| e["fields"]["event"] == "transition")
        .map(|e| e["fields"]["detail"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(transitions[0].starts_with("from=New to=Dispatched"), "{transitions:?}");
    let failed = transitions.iter().find(|t| t.contains("to=MixedFailed"));
    let failed = failed.unwrap_or_else(|| panic!("no first failure: {transitions:?}"));
    assert!(
        expected_cause.iter().any(|c| failed.ends_with(&format!("cause={c}"))),
        "first failure {failed:?}, expected one of {expected_cause:?}\n{}\n{}",
        run.engine.output(),
        records
            .iter()
            .map(|r| format!("{} {}", r["kind"], r["fields"]))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        transitions.last().is_some_and(|t| t.contains("to=Complete") || t.contains("to=Flattened")),
        "group not terminal: {transitions:?}\n{}\n{}",
        run.engine.output(),
        records
            .iter()
            .map(|r| format!("{} {}", r["kind"], r["fields"]))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let sends: Vec<String> = events
        .iter()
        .filter(|e| e["fields"]["event"] == "send")
        .map(|e| e["fields"]["detail"].as_str().unwrap_or("").to_owned())
        .collect();
    eprintln!("transitions: {transitions:?}\nsends: {sends:#?}\nvenue positions: {pos:?}");
    let recorded: BTreeMap<String, u64> = records
        .iter()
        .filter(|r| r["kind"] == "IntentRecorded")
        .map(|r| {
            (r["fields"]["label"].as_str().unwrap_or("").to_owned(), r["seq"].as_u64().unwrap_or(0))
        })
        .collect();
    let hash_of: BTreeMap<String, String> = records
        .iter()
        .filter(|r| r["kind"] == "IntentRecorded")
        .map(|r| {
            (
                r["fields"]["label"].as_str().unwrap_or("").to_owned(),
                r["fields"]["intent_hash"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let terminal: BTreeSet<String> = records
        .iter()
        .filter(|r| {
            matches!(r["kind"].as_str(), Some("Filled" | "Cancelled" | "Rejected" | "Abandoned"))
        })
        .map(|r| r["fields"]["intent_hash"].as_str().unwrap_or("").to_owned())
        .collect();
    let sent: Vec<Value> = journal::<Value>(&run.jpath).into_iter().filter(is_new_order).collect();
    assert!(sent.len() >= 2, "the legs never reached the venue");
    for o in &sent {
        let label = o["label"].as_str().unwrap_or("");
        assert!(recorded.contains_key(label), "order {label} reached the venue unjournaled");
        let h = &hash_of[label];
        assert!(terminal.contains(h), "order {label} has no terminal WAL record");
        // Only IOC limit orders (never market); follow-ups carry the group id.
        assert_eq!(o["flags"]["time_in_force"], "immediate_or_cancel", "{o}");
    }
    let gids: BTreeSet<&str> =
        sent.iter().filter_map(|o| o["label"].as_str()?.split(':').nth(2)).collect();
    assert_eq!(gids.len(), 1, "every order of the group carries its id: {gids:?}");

    // Mode: ReduceOnly with the group's registry reason, held from the first failure.
    assert!(
        events.iter().any(|e| e["fields"]["event"] == "hold"
            && e["fields"]["detail"] == "reason=REDUCEONLY_GROUP_LOCK_TIMEOUT"),
        "no ReduceOnly hold journaled"
    );
    let out = run.engine.output();
    assert!(
        out.contains("-> ReduceOnly reason=REDUCEONLY_GROUP_LOCK_TIMEOUT"),
        "mode never tightened:\n{out}"
    );
    transitions
}

fn rescues_sent(run: &Run) -> usize {
    run.wal_records()
        .iter()
        .filter(|r| {
            r["kind"] == "GroupEvent"
                && r["fields"]["event"] == "send"
                && r["fields"]["detail"].as_str().unwrap_or("").contains("role=rescue")
        })
        .count()
}

/// AT-116 shape: leg A fills half, leg B is rejected.
#[test]
fn process_group_leg_a_partial_leg_b_rejected() {
    let mut run = start(|sim, (a, b)| {
        sim.faults().apply(&Fault::PartialFillNext { instrument: a.clone(), fraction: 0.5 });
        sim.faults().apply(&Fault::RejectNextOrder { instrument: b.clone(), code: None });
    });
    run.wait_terminal();
    run.stop();
    let t = check_invariants(&run, &["partial_fill", "leg_rejected"]);
    assert!(rescues_sent(&run) <= 4, "at most 2 rescue rounds of 2 legs: {t:?}");
}

/// Both legs fill half.
#[test]
fn process_group_both_legs_partial() {
    let mut run = start(|sim, (a, b)| {
        sim.faults().apply(&Fault::PartialFillNext { instrument: a.clone(), fraction: 0.5 });
        sim.faults().apply(&Fault::PartialFillNext { instrument: b.clone(), fraction: 0.5 });
    });
    run.wait_terminal();
    run.stop();
    check_invariants(&run, &["partial_fill"]);
}

/// AT-117 shape: leg B is refused on the leg and on both rescues ⇒ exactly 2 rescue rounds,
/// then the filled leg A is closed reduce-only (Flattened, both legs flat).
#[test]
fn process_group_rescues_exhausted_then_flatten() {
    let mut run = start(|sim, (_, b)| {
        for _ in 0..3 {
            sim.faults().apply(&Fault::RejectNextOrder { instrument: b.clone(), code: None });
        }
    });
    let end = run.wait_terminal();
    run.stop();
    let t = check_invariants(&run, &["leg_rejected"]);
    assert!(end.contains("to=Flattened"), "{end}");
    assert!(t.iter().any(|x| x.contains("to=Flattening")), "{t:?}");
    assert_eq!(
        rescues_sent(&run),
        2,
        "two rescue rounds of leg B: {t:?}\n{}",
        run.wal_records()
            .iter()
            .map(|r| format!("{} {}", r["kind"], r["fields"]))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let pos = run.positions();
    assert!(!pos.contains_key(&run.legs.0) && !pos.contains_key(&run.legs.1), "{pos:?}");
    let closes = journal::<Value>(&run.jpath)
        .into_iter()
        .filter(is_new_order)
        .filter(|o| o["flags"]["reduce_only"] == true)
        .count();
    assert!(closes >= 1, "the filled leg was closed reduce-only");
}

/// Leg B goes quiet: its report deadline expires, it is reconciled by label (found live,
/// cancelled), and the group contains the mixed fill.
#[test]
fn process_group_leg_timeout() {
    let mut run = start(|sim, (_, b)| {
        sim.faults().apply(&Fault::DelayOrdersOn { instrument: b.clone(), ms: 4_000 });
    });
    run.wait_for_line("cause=timeout", Duration::from_secs(30));
    run.sim.faults().apply(&Fault::DelayOrdersOn { instrument: run.legs.1.clone(), ms: 0 });
    run.wait_terminal();
    run.stop();
    check_invariants(&run, &["timeout"]);
    let events = run.wal_records();
    assert!(
        events.iter().any(|r| r["kind"] == "GroupEvent" && r["fields"]["event"] == "in_doubt"),
        "the silent leg went in doubt"
    );
}

/// The venue drops every session while leg B is live: the engine reconnects, reconciles by
/// label before sending anything, and the group contains what filled.
#[test]
fn process_group_venue_disconnect_mid_group() {
    let mut run = start(|sim, (_, b)| {
        sim.faults().apply(&Fault::DelayOrdersOn { instrument: b.clone(), ms: 5_000 });
    });
    let b = run.legs.1.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal::<Value>(&run.jpath)
        .iter()
        .any(|e| is_new_order(e) && e["instrument"] == b.as_str())
    {
        assert!(Instant::now() < deadline, "leg B never sent:\n{}", run.engine.output());
        std::thread::sleep(Duration::from_millis(10));
    }
    run.sim.faults().disconnect_all();
    run.sim.faults().apply(&Fault::DelayOrdersOn { instrument: b, ms: 0 });
    run.wait_for_line("reconnect:", Duration::from_secs(30));
    run.wait_terminal();
    run.stop();
    check_invariants(&run, &["disconnect", "timeout"]);
}

/// AT-118 shape: leg B goes quiet and is then refused on both rescues, and every reduce-only
/// close of the filled leg A is refused too ⇒ 3 close attempts, then the delta hedge in the
/// perpetual (not reduce-only: it passes the hedge gate in ReduceOnly because it shrinks
/// |delta|); the group ends Flattened with the hedge and the account delta-neutral.
#[test]
fn process_group_closes_fail_then_perp_hedge() {
    let mut run = start(|sim, (_, b)| {
        sim.faults().apply(&Fault::DelayOrdersOn { instrument: b.clone(), ms: 4_000 });
    });
    let (a, b) = run.legs.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal::<Value>(&run.jpath)
        .iter()
        .any(|e| is_new_order(e) && e["instrument"] == b.as_str())
    {
        assert!(Instant::now() < deadline, "leg B never sent:\n{}", run.engine.output());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Leg B's report deadline (1 s) has not expired yet: arm the refusals of what follows.
    let f = run.sim.faults();
    f.apply(&Fault::DelayOrdersOn { instrument: b.clone(), ms: 0 });
    for _ in 0..2 {
        f.apply(&Fault::RejectNextOrder { instrument: b.clone(), code: None });
    }
    for _ in 0..3 {
        f.apply(&Fault::RejectNextOrder { instrument: a.clone(), code: None });
    }
    let end = run.wait_terminal();
    run.stop();
    let t = check_invariants(&run, &["timeout"]);
    assert!(end.contains("to=Flattened"), "{end}\n{t:?}");
    let records = run.wal_records();
    let naked = records
        .iter()
        .find(|r| r["kind"] == "GroupEvent" && r["fields"]["event"] == "naked")
        .map(|r| r["fields"]["detail"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    assert!(naked.contains("hedge_used=true") && naked.contains("close_attempts=3"), "{naked}");
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "GroupEvent" && r["fields"]["event"] == "hedge_permitted"),
        "the hedge gate judged the hedge"
    );
    let pos = run.positions();
    assert!(pos.contains_key("BTC-PERPETUAL"), "the hedge is a perpetual position: {pos:?}");
    let hedges: Vec<Value> = journal::<Value>(&run.jpath)
        .into_iter()
        .filter(|o| is_new_order(o) && o["instrument"] == "BTC-PERPETUAL")
        .collect();
    assert!(!hedges.is_empty());
    assert!(hedges.iter().all(|o| o["flags"]["reduce_only"] != true), "a hedge opens");
}

/// Containment exhausted (AT-118 → escalation): rescues, the three closes and both hedge
/// rounds are all refused ⇒ the group escalates to the engine's single emergency-close routine
/// (`src/engine/emergency.rs`), which closes the filled leg reduce-only; the account ends flat.
#[test]
fn process_group_containment_exhausted_escalates_to_emergency_close() {
    let mut run = start(|sim, (_, b)| {
        sim.faults().apply(&Fault::DelayOrdersOn { instrument: b.clone(), ms: 4_000 });
    });
    let (a, b) = run.legs.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal::<Value>(&run.jpath)
        .iter()
        .any(|e| is_new_order(e) && e["instrument"] == b.as_str())
    {
        assert!(Instant::now() < deadline, "leg B never sent:\n{}", run.engine.output());
        std::thread::sleep(Duration::from_millis(10));
    }
    let f = run.sim.faults();
    f.apply(&Fault::DelayOrdersOn { instrument: b.clone(), ms: 0 });
    for _ in 0..2 {
        f.apply(&Fault::RejectNextOrder { instrument: b.clone(), code: None });
        f.apply(&Fault::RejectNextOrder { instrument: "BTC-PERPETUAL".into(), code: None });
    }
    for _ in 0..3 {
        f.apply(&Fault::RejectNextOrder { instrument: a.clone(), code: None });
    }
    let end = run.wait_terminal();
    assert!(end.contains("ESCALATED"), "{end}");
    run.wait_for_line("emergency close by group-executor", Duration::from_secs(30));
    run.stop();

    let s = simulator::journal::Summary::from_file(&run.jpath).unwrap();
    assert_eq!(s.duplicate_dispatch_count, 0, "{:?}", s.duplicate_labels);
    assert_eq!(s.illegal_order_attempts, 0, "{:?}", s.illegal_seqs);
    let pos = run.positions();
    assert!(pos.is_empty(), "the emergency close left exposure: {pos:?}\n{}", run.engine.output());
    let records = run.wal_records();
    let event = |name: &str| {
        records.iter().any(|r| r["kind"] == "GroupEvent" && r["fields"]["event"] == name)
    };
    assert!(event("escalate") && event("emergency_close") && event("naked"));
    assert!(
        records.iter().any(|r| r["kind"] == "OperatorAction"
            && r["fields"]["action"] == "EmergencyClose"
            && r["fields"]["who"] == "group-executor"),
        "the emergency close is journaled"
    );
    assert!(run.engine.output().contains("-> ReduceOnly reason=REDUCEONLY_GROUP_LOCK_TIMEOUT"));
}
