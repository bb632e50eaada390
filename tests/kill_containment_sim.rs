//! Issue 7, AT-338 family (contract A §2.2.3.6): Kill with exposure ⇒ the engine attempts
//! bounded containment by itself — nobody runs `stoic emergency close`. The real
//! `stoic run --headless` binary against the in-process simulator; a position is seeded on the
//! engine's account before it starts (adopted at start-up reconciliation), so the tests do not
//! wait for a market to walk into resting orders. The simulator's order journal is the
//! independent oracle: after the Kill, no opening order; reduce-only IOC closes went out; the
//! venue (asked directly) ends flat.
//!
//! - AT-338: operator Kill + exposure ⇒ containment (reduce-only IOC), venue flat.
//! - AT-340 (feature `failpoints`): the WAL fails the containment's first append ⇒ the closes
//!   still go out (unjournaled-reduce path), venue flat.
//! - Hedge fallback through the hedge gate: the option close is rejected by the venue three
//!   times ⇒ the emergency close's perpetual hedge passes `gate_hedges` in Kill and is sent.
//! - Kill persists across SIGKILL + restart until the operator relaxes it (task 3).

mod crash_support;
mod sim_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crash_support::{Proc, BIN};
use serde_json::{json, Value};
use sim_support::{account_positions, free_port, journal, resting_opens, status, ENGINE_ACCOUNT};

const TOKEN: &str = "kill-containment-test-token-000000001";
const KEY: &str = "sim-dev-trade";
const SECRET: &str = "sim-dev-trade-secret-0001";

/// The control plane's POST with this test's reason.
fn post(url: &str, path: &str, token: &str) -> (u16, Value) {
    sim_support::post(url, path, token, "kill containment test", Duration::from_secs(60))
}

fn now_ms() -> i64 {
    coldpath::status::now_ms()
}

/// A new order of the engine's account.
fn ours(e: &Value) -> bool {
    e["key"] == KEY && matches!(e["method"].as_str(), Some("private/buy" | "private/sell"))
}

fn reduce_only(e: &Value) -> bool {
    e["flags"]["reduce_only"] == true
}

fn ioc(e: &Value) -> bool {
    e["flags"]["time_in_force"] == "immediate_or_cancel"
}

fn wait_flat(sim: &simulator::SimHandle, limit: Duration, engine: &Proc) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let left = account_positions(sim, ENGINE_ACCOUNT);
        if left.is_empty() {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "still exposed at the venue after {limit:?}: {left:?}\n{}",
            engine.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Buys `amount` of `instrument` on the engine's account at the ask (IOC), before it starts.
fn seed(addr: std::net::SocketAddr, instrument: &str, amount: f64, label: &str) {
    let mut c = simulator::client::WsClient::connect(addr).unwrap();
    c.auth(KEY, SECRET).unwrap();
    let book = c.call("public/get_order_book", &json!({"instrument_name": instrument})).unwrap();
    let ask = book["best_ask_price"].as_f64().expect("an ask");
    let r = c
        .call(
            "private/buy",
            &json!({"instrument_name": instrument, "amount": amount, "type": "limit",
                    "price": ask, "time_in_force": "immediate_or_cancel", "label": label}),
        )
        .unwrap();
    assert_eq!(r["order"]["order_state"], "filled", "{r}");
}

struct Run {
    sim: simulator::SimHandle,
    dir: tempfile::TempDir,
    url: String,
    token_file: PathBuf,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().unwrap();
        let sim = simulator::Simulator::start(simulator::SimConfig {
            journal: dir.path().join("journal.jsonl"),
            ..simulator::SimConfig::default()
        })
        .unwrap();
        let token_file = dir.path().join("control_token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let url = format!("http://127.0.0.1:{}", free_port());
        Run { sim, dir, url, token_file }
    }

    fn wal(&self) -> PathBuf {
        self.dir.path().join("wal")
    }

    fn engine(&self, env: &[(&str, &str)]) -> Proc {
        let port = self.url.rsplit(':').next().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--headless", "--venue-url"])
            .arg(self.sim.ws_url())
            .arg("--wal-dir")
            .arg(self.wal())
            .args(["--strategy", "runaway", "--seed", "1", "--policy"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy_churn.json"))
            .args(["--status-addr", &format!("127.0.0.1:{port}"), "--control-token-file"])
            .arg(&self.token_file)
            .env_remove("STOIC_FAILPOINT")
            .env_remove("STOIC_WAL_FAULT_ON_REDUCE")
            .env_remove("STOIC_TRIP_BREAKER_BEFORE_CLOSE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let p = Proc::spawn(cmd);
        p.wait_line("trading:", Duration::from_secs(45))
            .unwrap_or_else(|| panic!("engine did not start trading:\n{}", p.output()));
        p
    }

    /// Operator Kill over HTTP; returns (sent_ms, acknowledged_ms).
    fn kill(&self) -> (i64, i64) {
        let sent = now_ms();
        let (code, after) = post(&self.url, "/api/v1/emergency/kill", TOKEN);
        let ack = now_ms();
        assert_eq!(code, 200, "{after}");
        assert_eq!(after["trading_mode"], "Kill");
        (sent, ack)
    }

    fn relax(&self) -> std::process::Output {
        Command::new(BIN)
            .args(["mode", "relax", "--to", "active", "--socket"])
            .arg(self.wal().join("control.sock"))
            .arg("--token-file")
            .arg(&self.token_file)
            .args(["--reason", "kill containment test over", "--requested-by", "test-operator"])
            .output()
            .unwrap()
    }
}

/// The first journal entry the Kill caused on the engine's trading session: its cancel of a
/// risk-increasing order, or containment's cancel-all / first reduce-only order. The session's
/// requests are handled in the order they were written, so an open written after the Kill
/// would have a higher `seq` (journal time alone is not enough: an open written just before
/// the Kill may be handled after the HTTP reply reached the test on a loaded machine).
fn kill_mark_seq(entries: &[Value], sent_ms: i64) -> Option<u64> {
    entries
        .iter()
        .filter(|e| e["key"] == KEY && e["ts_ms"].as_i64() >= Some(sent_ms))
        .filter(|e| {
            e["method"].as_str().is_some_and(|m| m.starts_with("private/cancel"))
                || (ours(e) && reduce_only(e))
        })
        .filter_map(|e| e["seq"].as_u64())
        .min()
}

/// The journal after the Kill: no opening order after the Kill's first request on the
/// session (see [`kill_mark_seq`]) nor after the acknowledgement plus that ordering, and at
/// least one reduce-only IOC order after the request was sent; returns those.
fn check_after_kill(run: &Run, sent_ms: i64, _ack_ms: i64, engine: &Proc) -> Vec<Value> {
    let entries = journal::<Value>(run.sim.journal_path());
    let mark = kill_mark_seq(&entries, sent_ms)
        .unwrap_or_else(|| panic!("no request of the Kill in the journal:\n{}", engine.output()));
    let opens_after: Vec<&Value> = entries
        .iter()
        .filter(|e| ours(e) && !reduce_only(e) && e["seq"].as_u64() > Some(mark))
        .collect();
    assert!(
        opens_after.is_empty(),
        "opening orders after the Kill (seq > {mark}): {opens_after:?}"
    );
    let closes: Vec<Value> = entries
        .iter()
        .filter(|e| ours(e) && reduce_only(e) && e["ts_ms"].as_i64() >= Some(sent_ms))
        .cloned()
        .collect();
    assert!(!closes.is_empty(), "no reduce-only order after the Kill:\n{}", engine.output());
    for e in &closes {
        assert!(ioc(e), "containment orders are IOC: {e}");
        assert_ne!(e["type"], "market", "never a market order: {e}");
    }
    assert!(
        closes.iter().any(|e| e["result"]["order_state"] == "filled"),
        "a close filled: {closes:?}"
    );
    let sum = simulator::journal::Summary::from_file(run.sim.journal_path()).unwrap();
    assert_eq!(sum.duplicate_dispatch_count, 0, "{:?}", sum.duplicate_labels);
    assert_eq!(sum.illegal_order_attempts, 0, "{:?}", sum.illegal_seqs);
    closes
}

#[test]
fn test_at338_kill_with_exposure_attempts_containment() {
    let run = Run::new();
    seed(run.sim.addr(), "BTC-PERPETUAL", 500.0, "test-seed-perp");
    seed(run.sim.addr(), "ETH-PERPETUAL", 300.0, "test-seed-eth-perp");
    let engine = run.engine(&[]);
    assert_eq!(status(&run.url).unwrap()["trading_mode"], "Active");
    let (sent, ack) = run.kill();
    let t_kill = Instant::now();
    // Nobody runs `stoic emergency close`: the engine contains on its own.
    let flat_at = wait_flat(&run.sim, Duration::from_secs(60), &engine);
    let closes = check_after_kill(&run, sent, ack, &engine);
    let line = engine.wait_line("kill containment: run 1 done", Duration::from_secs(10)).unwrap();
    assert!(line.contains("flat=true"), "{line}");
    assert!(engine.output().contains("emergency close by kill-containment"));
    eprintln!(
        "AT-338: Kill -> venue flat observed after {} ms; {} reduce-only IOC order(s); {line}",
        flat_at.duration_since(t_kill).as_millis(),
        closes.len()
    );
    // Still Kill: containment never relaxes.
    std::thread::sleep(Duration::from_millis(300));
    let st = status(&run.url).unwrap();
    assert_eq!(st["trading_mode"], "Kill", "{st}");
    // Flat and nothing risky resting: no further containment run (exposure == 0 ⇒ nothing).
    let n = journal::<Value>(run.sim.journal_path()).iter().filter(|e| ours(e)).count();
    std::thread::sleep(Duration::from_secs(3));
    let m = journal::<Value>(run.sim.journal_path()).iter().filter(|e| ours(e)).count();
    assert_eq!(n, m, "orders sent while Kill and flat:\n{}", engine.output());
    assert!(!engine.output().contains("kill containment: run 2"), "{}", engine.output());
}

/// AT-338, exposure == 0: Kill with nothing exposed sends no order at all.
#[test]
fn test_at338_kill_without_exposure_sends_nothing() {
    let run = Run::new();
    let engine = run.engine(&[]);
    // The runaway's post-only opens rest; none is filled in this quiet second (if one were,
    // there would be exposure and the test would say so below).
    let (sent, ack) = run.kill();
    std::thread::sleep(Duration::from_secs(3));
    let exposed = !account_positions(&run.sim, ENGINE_ACCOUNT).is_empty();
    let entries = journal::<Value>(run.sim.journal_path());
    // After the Kill's cancels on the session (or, with nothing to cancel, its request).
    let mark = kill_mark_seq(&entries, sent).unwrap_or(0);
    let after: Vec<Value> = entries
        .into_iter()
        .filter(|e| {
            ours(e)
                && if mark > 0 {
                    e["seq"].as_u64() > Some(mark)
                } else {
                    e["ts_ms"].as_i64() > Some(ack)
                }
        })
        .collect();
    if exposed {
        // A resting open filled before the Kill: then containment must have acted.
        assert!(after.iter().all(reduce_only), "{after:?}");
    } else {
        assert!(after.is_empty(), "orders after a Kill with nothing exposed: {after:?}");
        assert!(!engine.output().contains("kill containment: run"), "{}", engine.output());
    }
}

/// AT-1065 (contract §2.2.3.4.1): in ReduceOnly the engine cancels its resting
/// risk-increasing orders (the gate already stops new opens; a resting one could still fill
/// and add risk). The runaway keeps post-only opens resting on both perpetuals; after the
/// operator's reduce-only none of them is left at the venue, and the mode stays ReduceOnly.
#[test]
fn test_at1065_reduce_only_cancels_resting_risk_increasing_orders() {
    let run = Run::new();
    let engine = run.engine(&[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while resting_opens(&run.sim, ENGINE_ACCOUNT).len() < 2 {
        assert!(Instant::now() < deadline, "no resting opens:\n{}", engine.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, after) = post(&run.url, "/api/v1/emergency/reduce_only", TOKEN);
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["trading_mode"], "ReduceOnly", "{after}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = resting_opens(&run.sim, ENGINE_ACCOUNT);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "risk-increasing orders still resting in ReduceOnly: {left:?}\n{}",
            engine.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And none comes back while the mode holds.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(resting_opens(&run.sim, ENGINE_ACCOUNT), Vec::<Value>::new());
    assert_eq!(status(&run.url).unwrap()["trading_mode"], "ReduceOnly");
    assert!(
        engine.output().contains("reduce-only: cancel sent for"),
        "the engine's sweep did not cancel them:\n{}",
        engine.output()
    );
    let entries = journal::<Value>(run.sim.journal_path());
    assert!(
        entries.iter().any(|e| e["key"] == KEY
            && e["method"].as_str().is_some_and(|m| m.starts_with("private/cancel"))),
        "no cancel from the engine's key in the venue journal"
    );
}

/// Capital supremacy at engine level (issue 7): while exposure exists a reducing action goes
/// through the real engine whatever the restriction: the operator's emergency close flattens
/// in ReduceOnly, in ReduceOnly with the rate-limit breaker open (paid from the credit
/// reserve), and in ReduceOnly with the WAL failing (unjournaled reduces). Kill with each
/// fault is covered by the AT-338/340/346 tests; every mode × fault pair of the gate chain by
/// `hotpath/tests/capital_supremacy.rs`.
#[cfg(feature = "failpoints")]
#[test]
fn test_capital_supremacy_emergency_close_flattens_in_reduce_only_under_each_fault() {
    for fault in [None, Some("STOIC_TRIP_BREAKER_BEFORE_CLOSE"), Some("STOIC_WAL_FAULT_ON_REDUCE")]
    {
        let run = Run::new();
        seed(run.sim.addr(), "BTC-PERPETUAL", 500.0, "test-seed-perp");
        let env: Vec<(&str, &str)> = fault.map(|f| vec![(f, "1")]).unwrap_or_default();
        let engine = run.engine(&env);
        let (code, st) = post(&run.url, "/api/v1/emergency/reduce_only", TOKEN);
        assert_eq!(code, 200, "{fault:?}: {st}");
        assert_eq!(st["trading_mode"], "ReduceOnly", "{fault:?}: {st}");
        let mark = journal::<Value>(run.sim.journal_path())
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0);
        let (code, st) = post(&run.url, "/api/v1/emergency/close", TOKEN);
        assert_eq!(code, 200, "{fault:?}: {st}\n{}", engine.output());
        wait_flat(&run.sim, Duration::from_secs(60), &engine);
        let after: Vec<Value> = journal::<Value>(run.sim.journal_path())
            .into_iter()
            .filter(|e| ours(e) && e["seq"].as_u64() > Some(mark))
            .collect();
        assert!(after.iter().any(reduce_only), "{fault:?}: no reduce-only close: {after:?}");
        // Long 500: a buy adds risk; sells the strategy rests are reducing while the long
        // covers them (the gate counts them as pending) and are cancelled once it is gone.
        assert!(
            after.iter().all(|e| e["side"] == "sell"),
            "{fault:?}: an open in ReduceOnly: {after:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !resting_opens(&run.sim, ENGINE_ACCOUNT).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{fault:?}: orders that would now open still rest: {:?}\n{}",
                resting_opens(&run.sim, ENGINE_ACCOUNT),
                engine.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(account_positions(&run.sim, ENGINE_ACCOUNT).is_empty(), "{fault:?}");
        assert_eq!(status(&run.url).unwrap()["trading_mode"], "ReduceOnly", "{fault:?}");
        // The injected fault really happened. (The WAL's append failure may meet the close's
        // own journal record or a reducing order just before it; either way the close ran
        // with the WAL failing.)
        let evidence = match fault {
            Some("STOIC_TRIP_BREAKER_BEFORE_CLOSE") => "rate-limit breaker tripped",
            Some(_) => "wal: test fault armed",
            None => "emergency close by",
        };
        assert!(engine.output().contains(evidence), "{fault:?}: {}", engine.output());
    }
}

/// AT-340: the WAL cannot append (the containment's first batch finds it failing, poisoned
/// from then on): containment still goes out, through the unjournaled-reduce path.
#[cfg(feature = "failpoints")]
#[test]
fn test_at340_kill_with_wal_degraded_still_contains() {
    let run = Run::new();
    seed(run.sim.addr(), "BTC-PERPETUAL", 500.0, "test-seed-perp");
    let engine = run.engine(&[("STOIC_WAL_FAULT_ON_REDUCE", "1")]);
    let (sent, ack) = run.kill();
    wait_flat(&run.sim, Duration::from_secs(60), &engine);
    check_after_kill(&run, sent, ack, &engine);
    // The trace sink is a cold thread: its line may follow the venue going flat.
    let unjournaled = engine.wait_line("\"event\":\"unjournaled_sent\"", Duration::from_secs(10));
    let out = engine.output();
    assert!(out.contains("wal: test fault armed"), "{out}");
    assert!(unjournaled.is_some(), "closes went unjournaled:\n{out}");
    assert_eq!(status(&run.url).unwrap()["trading_mode"], "Kill");
}

/// AT-346 style: the rate-limit breaker is open as containment starts (a 10028 would do this):
/// every request of the run is paid from the containment reserve, and it still flattens.
#[cfg(feature = "failpoints")]
#[test]
fn test_at346_kill_with_rate_limit_breaker_open_still_contains() {
    let run = Run::new();
    seed(run.sim.addr(), "BTC-PERPETUAL", 500.0, "test-seed-perp");
    let engine = run.engine(&[("STOIC_TRIP_BREAKER_BEFORE_CLOSE", "1")]);
    let (sent, ack) = run.kill();
    wait_flat(&run.sim, Duration::from_secs(60), &engine);
    check_after_kill(&run, sent, ack, &engine);
    let line = engine.wait_line("emergency close by kill-containment", Duration::from_secs(10));
    let line = line.unwrap();
    let drawn: u32 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("reserve_drawn="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(drawn > 0, "containment ran on the reserve: {line}");
}

/// Task 2: the emergency close's hedge fallback goes through the hedge gate, so in Kill a
/// risk-reducing perpetual hedge is sent. The venue rejects the option close three times (one
/// containment run's rounds), so the run ends in the hedge; later runs close what is left.
#[test]
fn test_kill_containment_hedge_passes_hedge_gate_in_kill() {
    let run = Run::new();
    let option = {
        let mut c = simulator::client::WsClient::connect(run.sim.addr()).unwrap();
        c.auth(KEY, SECRET).unwrap();
        let options = c
            .call("public/get_instruments", &json!({"currency": "BTC", "kind": "option"}))
            .unwrap();
        options
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["instrument_name"].as_str().map(str::to_owned))
            .filter(|n| n.ends_with("-C"))
            .find(|n| {
                c.call("public/get_order_book", &json!({"instrument_name": n})).is_ok_and(|b| {
                    b["best_ask_price"].as_f64().is_some_and(|a| a > 0.0)
                        && b["best_bid_price"].as_f64().is_some_and(|a| a > 0.0)
                        && b["greeks"]["delta"].as_f64().is_some_and(|d| d > 0.2 && d < 0.8)
                })
            })
            .expect("a BTC call with a two-sided book and a middling delta")
    };
    seed(run.sim.addr(), &option, 1.0, "test-seed-option");
    let engine = run.engine(&[]);
    for _ in 0..3 {
        run.sim.faults().apply(&simulator::faults::Fault::RejectNextOrder {
            instrument: option.clone(),
            code: None,
        });
    }
    let (sent, _) = run.kill();
    wait_flat(&run.sim, Duration::from_secs(90), &engine);
    let hedge = engine.wait_line("hedge gate passed BTC", Duration::from_secs(10));
    let out = engine.output();
    assert!(hedge.is_some(), "{out}");
    assert!(out.contains("in Kill"), "{out}");
    let entries = journal::<Value>(run.sim.journal_path());
    let mark = kill_mark_seq(&entries, sent).expect("the Kill's requests in the journal");
    let after: Vec<&Value> =
        entries.iter().filter(|e| ours(e) && e["seq"].as_u64() > Some(mark)).collect();
    let hedges: Vec<&&Value> =
        after.iter().filter(|e| e["instrument"] == "BTC-PERPETUAL" && !reduce_only(e)).collect();
    assert_eq!(hedges.len(), 1, "one hedge: {after:?}\n{out}");
    let h = hedges[0];
    assert_eq!(h["side"], "sell", "a long call's delta is sold: {h}");
    assert!(ioc(h), "{h}");
    // Whether the IOC hedge fills depends on the simulated book's depth at its price; the
    // test is about the gate letting it out in Kill (the venue took it: an order id).
    assert!(h["result"]["order_id"].as_str().is_some(), "the venue accepted the hedge: {h}");
    // Every other order after the Kill reduced a position.
    for e in &after {
        if std::ptr::eq(*e, *h) {
            continue;
        }
        assert!(reduce_only(e) && ioc(e), "{e}");
    }
}

/// Task 3: a Kill survives SIGKILL + restart (same reason on /status) until the operator
/// relaxes it over the control socket.
#[test]
fn test_kill_persists_across_restart_until_operator_relax() {
    let run = Run::new();
    let mut engine = run.engine(&[]);
    // The runbook's CLI Kill.
    let out = Command::new(BIN)
        .args(["mode", "kill", "--url", &run.url, "--token-file"])
        .arg(&run.token_file)
        .args(["--reason", "persist test", "--requested-by", "test-operator"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(engine.kill9().is_some());
    assert!(run.wal().join("kill_state").exists());

    let port = run.url.rsplit(':').next().unwrap().to_owned();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--headless", "--venue-url"])
        .arg(run.sim.ws_url())
        .arg("--wal-dir")
        .arg(run.wal())
        .args(["--strategy", "runaway", "--seed", "2", "--policy"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy_churn.json"))
        .args(["--status-addr", &format!("127.0.0.1:{port}"), "--control-token-file"])
        .arg(&run.token_file)
        .env_remove("STOIC_FAILPOINT");
    let restarted = Proc::spawn(cmd);
    restarted
        .wait_line("reconciled:", Duration::from_secs(45))
        .unwrap_or_else(|| panic!("no reconcile after restart:\n{}", restarted.output()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        if let Some(st) = status(&run.url).filter(|s| s["counters"].is_object()) {
            break st;
        }
        assert!(Instant::now() < deadline, "no status:\n{}", restarted.output());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(st["trading_mode"], "Kill", "{st}\n{}", restarted.output());
    assert_eq!(st["mode_reasons"], json!(["KILL_RISKSTATE_KILL"]), "{st}");
    assert_eq!(st["is_trading_allowed"], false);
    assert!(
        restarted.wait_line("start-up relax skipped", Duration::from_secs(10)).is_some(),
        "{}",
        restarted.output()
    );
    // Stays Kill (no start-up relax lifts it later).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(&run.url).unwrap()["trading_mode"], "Kill");

    let out = run.relax();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&run.url).is_none_or(|s| s["trading_mode"] != "Active") {
        assert!(Instant::now() < deadline, "not Active after relax:\n{}", restarted.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!run.wal().join("kill_state").exists(), "the relax removed the Kill record");
    // The relax is in the WAL with the transition and the reasons it cleared.
    drop(restarted);
    let out = Command::new(BIN).args(["wal", "inspect", "--dir"]).arg(run.wal()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let relax = text
        .lines()
        .rev()
        .find(|l| l.contains("action=ModeRelax"))
        .unwrap_or_else(|| panic!("no ModeRelax record:\n{text}"));
    assert!(relax.contains("relax Kill -> Active"), "{relax}");
    assert!(relax.contains("cleared [KILL_RISKSTATE_KILL"), "{relax}");
}
