//! Binding policy (issue 6): each limit of the launch policy is broken against the simulator
//! by the real engine (`stoic run --headless` with the `scripted:` test strategy and a
//! small-limit policy file written here), and the engine is seen to refuse with the
//! enumerated gate reason code — or, for the daily loss, to go to Kill with
//! `KILL_RISKSTATE_KILL` — on `GET /api/v1/status`. The simulator's journal is the oracle
//! that no order breaking a limit reached the venue.
//!
//! Fills are made by the venue, not faked: a resting post-only buy is filled when the
//! simulator's `move_index` fault drops the index through it (the market "moves through"
//! the order), which also moves the marks the daily PnL reads.

mod sim_support;
use sim_support::journal;
mod crash_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crash_support::{Proc, BIN};
use serde_json::{json, Value};
use simulator::journal::Entry;

const OUR_KEY: &str = "sim-dev-trade";

struct Run {
    dir: tempfile::TempDir,
    sim: simulator::SimHandle,
    engine: Proc,
    status_url: String,
}

fn policy_with(edit: impl FnOnce(&mut Value)) -> Value {
    let base = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/policy.json"),
    )
    .unwrap();
    let mut p: Value = serde_json::from_str(&base).unwrap();
    edit(&mut p);
    p
}

fn start(policy: &Value, steps: &Value) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: dir.path().join("journal.jsonl"),
        ..simulator::SimConfig::default()
    })
    .unwrap();
    let policy_path = dir.path().join("policy.json");
    std::fs::write(&policy_path, serde_json::to_vec_pretty(policy).unwrap()).unwrap();
    let script_path = dir.path().join("script.json");
    std::fs::write(&script_path, serde_json::to_vec(&json!({ "steps": steps })).unwrap()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--headless", "--venue-url"])
        .arg(sim.ws_url())
        .arg("--wal-dir")
        .arg(dir.path().join("wal"))
        .arg("--policy")
        .arg(&policy_path)
        .arg("--strategy")
        .arg(format!("scripted:{}", script_path.display()))
        .args(["--status-addr", "127.0.0.1:0"])
        .env_remove("STOIC_FAILPOINT");
    let engine = Proc::spawn(cmd);
    let line = engine
        .wait_line("status: http://", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no status server:\n{}", engine.output()));
    let status_url = line.split_whitespace().nth(1).unwrap().trim_end_matches('/').to_owned();
    engine
        .wait_line("trading:", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("engine did not start trading:\n{}", engine.output()));
    Run { dir, sim, engine, status_url }
}

impl Run {
    fn status(&self) -> Value {
        let r = coldpath::client::get(&self.status_url, "/api/v1/status", Duration::from_secs(5))
            .expect("GET /api/v1/status");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).unwrap()
    }

    fn wait_status(&self, what: &str, mut ok: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {s:#}\nengine:\n{}",
                self.engine.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Our new-order requests as the venue received them.
    fn our_orders(&self) -> Vec<Entry> {
        journal::<Entry>(self.sim.journal_path())
            .into_iter()
            .filter(|e| {
                e.key == OUR_KEY && matches!(e.method.as_str(), "private/buy" | "private/sell")
            })
            .collect()
    }

    fn wait_orders_open(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.our_orders().iter().filter(|e| e.result["order_state"] == "open").count() < n {
            assert!(Instant::now() < deadline, "order not resting:\n{}", self.engine.output());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Drops `index` by `pct` %: resting buys the move went through fill at their price.
    fn move_index(&self, index: &str, pct: f64) {
        self.sim.faults().apply(&simulator::Fault::MoveIndex { index: index.into(), pct });
    }

    fn stop(mut self) {
        let pid = self.engine.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let st = self.engine.wait_exit(Duration::from_secs(30));
        assert!(st.is_some_and(|s| s.success()), "clean stop: {st:?}\n{}", self.engine.output());
        let s = simulator::journal::Summary::from_file(self.sim.journal_path()).unwrap();
        assert_eq!(s.duplicate_dispatch_count, 0);
        assert_eq!(s.illegal_order_attempts, 0);
    }
}

fn rejects(s: &Value, code: &str) -> u64 {
    s["rejects_by_reason"][code].as_u64().unwrap_or(0)
}

fn position(s: &Value, instrument: &str) -> f64 {
    s["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["instrument_name"] == instrument)
        .map_or(0.0, |p| p["size"].as_f64().unwrap())
}

fn buy(instrument: &str, amount: &str) -> Value {
    json!({"instrument": instrument, "side": "buy", "amount": amount, "price": "bid",
           "post_only": true})
}

/// Allowlist: with only ETH allowed, a BTC open is refused `InstrumentNotAllowed` and never
/// reaches the venue.
#[test]
fn test_policy_limit_instrument_allowlist() {
    let policy = policy_with(|p| p["allowed_currencies"] = json!(["ETH"]));
    let run = start(&policy, &json!([buy("BTC-PERPETUAL", "10")]));
    let s = run.wait_status("InstrumentNotAllowed", |s| rejects(s, "InstrumentNotAllowed") == 1);
    assert_eq!(s["trading_mode"], "Active");
    assert!(s["last_gate_reject"].as_str().unwrap().ends_with("InstrumentNotAllowed"));
    assert!(run.our_orders().is_empty(), "a disallowed instrument reached the venue");
    run.stop();
}

/// Per-instrument cap (50 USD of BTC-PERPETUAL): the first 30 fills, the second 30 would make
/// 60 and is refused `PositionLimitExceeded`; only the first reached the venue.
#[test]
fn test_policy_limit_position_per_instrument() {
    let policy = policy_with(|p| p["risk_limits"]["max_position_usd_per_instrument"] = json!(50.0));
    let steps = json!([buy("BTC-PERPETUAL", "30"), buy("BTC-PERPETUAL", "30")]);
    let run = start(&policy, &steps);
    run.wait_orders_open(1);
    run.move_index("btc_usd", -1.0);
    let s = run.wait_status("PositionLimitExceeded", |s| rejects(s, "PositionLimitExceeded") == 1);
    assert_eq!(position(&s, "BTC-PERPETUAL"), 30.0);
    let orders = run.our_orders();
    assert_eq!(orders.len(), 1, "only the order within the cap reached the venue");
    assert_eq!(orders[0].amount, Some(30.0));
    run.stop();
}

/// Total cap (50 USD gross): 30 USD of BTC-PERPETUAL held, 30 USD of ETH-PERPETUAL more would
/// make 60 gross and is refused `PositionLimitExceeded`.
#[test]
fn test_policy_limit_position_total() {
    let policy = policy_with(|p| p["risk_limits"]["max_gross_notional_usd"] = json!(50.0));
    let steps = json!([buy("BTC-PERPETUAL", "30"), buy("ETH-PERPETUAL", "30")]);
    let run = start(&policy, &steps);
    run.wait_orders_open(1);
    run.move_index("btc_usd", -1.0);
    let s = run.wait_status("PositionLimitExceeded", |s| rejects(s, "PositionLimitExceeded") == 1);
    assert_eq!(position(&s, "BTC-PERPETUAL"), 30.0);
    assert_eq!(position(&s, "ETH-PERPETUAL"), 0.0);
    let orders = run.our_orders();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0].instrument.as_deref(), Some("BTC-PERPETUAL"));
    run.stop();
}

/// Order notional (20 USD): a 30 USD order is refused `OrderNotionalTooLarge`.
#[test]
fn test_policy_limit_order_notional() {
    let policy = policy_with(|p| p["risk_limits"]["max_order_notional_usd"] = json!(20.0));
    let run = start(&policy, &json!([buy("BTC-PERPETUAL", "30")]));
    let s = run.wait_status("OrderNotionalTooLarge", |s| rejects(s, "OrderNotionalTooLarge") == 1);
    assert_eq!(s["trading_mode"], "Active");
    assert!(run.our_orders().is_empty());
    run.stop();
}

/// Order rate (token bucket: 6/min, burst 3): five orders in one tick, three pass, two are
/// refused `OrderRateLimitExceeded`; the venue sees exactly three.
#[test]
fn test_policy_limit_order_rate() {
    let policy = policy_with(|p| {
        p["risk_limits"]["max_orders_per_minute"] = json!(6);
        p["risk_limits"]["order_rate_burst"] = json!(3);
    });
    let mut step = buy("BTC-PERPETUAL", "10");
    step["count"] = json!(5);
    let run = start(&policy, &json!([step]));
    let s =
        run.wait_status("OrderRateLimitExceeded", |s| rejects(s, "OrderRateLimitExceeded") == 2);
    assert_eq!(s["counters"]["intents"], 3);
    run.wait_orders_open(3);
    assert_eq!(run.our_orders().len(), 3);
    run.stop();
}

/// Daily loss (20 USD): 1000 USD long BTC-PERPETUAL, the index drops 10 % through the order
/// (filled) and the mark with it: the day's PnL is about -100 USD, the engine goes to Kill
/// with `KILL_RISKSTATE_KILL`, contains the exposure by itself (AT-338: reduce-only IOC close,
/// flat), and the next open (scripted after the drop) never reaches the venue
/// (`TradingModeKill`). Neither a reconnect (reconcile + start-up relax) nor an operator
/// relax lifts it that day.
#[test]
fn test_policy_limit_daily_loss_kills() {
    let policy = policy_with(|p| p["risk_limits"]["max_daily_loss_usd"] = json!(20.0));
    let mut second = buy("BTC-PERPETUAL", "10");
    second["delay_ms"] = json!(1_500);
    let run = start(&policy, &json!([buy("BTC-PERPETUAL", "1000"), second]));
    run.wait_orders_open(1);
    let before = run.status();
    assert_eq!(before["trading_mode"], "Active");
    run.move_index("btc_usd", -10.0);
    let s = run.wait_status("Kill", |s| s["trading_mode"] == "Kill");
    assert_eq!(s["mode_reasons"], json!(["KILL_RISKSTATE_KILL"]));
    let pnl = &s["daily_pnl"];
    let total = pnl["total_usd"].as_f64().unwrap();
    assert!(total <= -20.0, "daily pnl {pnl}");
    assert!(total > -150.0, "a 10 % drop on 1000 USD is about -100 USD: {pnl}");
    assert_eq!(pnl["max_daily_loss_usd"], 20.0);
    let last = s["mode_transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("Active"), Some("Kill")));
    assert_eq!(last["reasons"], json!(["KILL_RISKSTATE_KILL"]));
    // Kill with exposure ⇒ containment (AT-338): the engine closes the position by itself
    // with reduce-only IOC orders, and the scripted open is still refused.
    let s = run.wait_status("the scripted open refused and the position contained", |s| {
        rejects(s, "TradingModeKill") >= 1 && position(s, "BTC-PERPETUAL") == 0.0
    });
    assert!(!s["is_trading_allowed"].as_bool().unwrap());
    assert_eq!(s["trading_mode"], "Kill", "containment does not relax: {s:#}");
    // Units end to end: the engine's PnL agrees with what the venue's own trade list says the
    // round trip made (each trade's `profit_loss` in BTC, less its fee, times the index). The
    // index walks between fills and reads, hence the tolerance.
    let mut venue = simulator::client::WsClient::connect(run.sim.addr()).unwrap();
    venue.auth(OUR_KEY, "sim-dev-trade-secret-0001").unwrap();
    let trades = venue
        .call(
            "private/get_user_trades_by_instrument",
            &json!({"instrument_name": "BTC-PERPETUAL", "count": 100}),
        )
        .unwrap();
    let trades = trades["trades"].as_array().cloned().unwrap_or_default();
    assert!(trades.len() >= 2, "an open and a close at the venue: {trades:?}");
    let (mut coin, mut net) = (0.0, 0.0);
    for t in &trades {
        // The venue's own realised PnL of each trade (BTC), less its fee.
        coin += t["profit_loss"].as_f64().unwrap() - t["fee"].as_f64().unwrap_or(0.0);
        let amount = t["amount"].as_f64().unwrap();
        net += if t["direction"] == "buy" { amount } else { -amount };
    }
    assert_eq!(net, 0.0, "the venue's trades net to flat: {trades:?}");
    let index = run.sim.state()["index"]["btc_usd"].as_f64().unwrap();
    let venue_usd = coin * index;
    let ours = s["daily_pnl"]["total_usd"].as_f64().unwrap();
    assert!(
        (ours - venue_usd).abs() <= 2.0 + venue_usd.abs() * 0.03,
        "engine {ours} vs venue {venue_usd}: {trades:?}"
    );
    // The journal: one open (before the Kill); everything after it reduce-only IOC.
    let orders = run.our_orders();
    let contained = orders.len();
    assert!(contained >= 2, "the containment close reached the venue: {orders:?}");
    for e in &orders[1..] {
        assert_eq!(e.flags["reduce_only"], true, "only reduce-only orders after Kill: {e:?}");
        assert_eq!(e.flags["time_in_force"], "immediate_or_cancel", "{e:?}");
    }
    assert!(run.engine.output().contains("capital stop:"));
    // A reconnect reconciles and tries the start-up relax again: the capital stop holds.
    run.sim.faults().disconnect_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    while run.engine.output().matches("reconciled:").count() < 2 {
        assert!(Instant::now() < deadline, "no reconcile after the reconnect");
        std::thread::sleep(Duration::from_millis(25));
    }
    let s = run.wait_status("the loop after the reconnect", |s| s["counters"]["reconnects"] == 1);
    assert_eq!(s["trading_mode"], "Kill", "{s:#}");
    assert_eq!(s["mode_reasons"], json!(["KILL_RISKSTATE_KILL"]));
    assert!(
        run.engine.output().contains("start-up relax skipped: Kill needs an operator"),
        "{}",
        run.engine.output()
    );
    let to_active =
        s["mode_transitions"].as_array().unwrap().iter().filter(|t| t["to"] == "Active");
    assert_eq!(to_active.count(), 1, "only the start-up relax: {s:#}");
    // The operator relax (host-local socket) is refused while the day's loss holds the stop.
    let wal = run.dir.path().join("wal");
    let out = Command::new(BIN)
        .args(["mode", "relax", "--to", "active", "--socket"])
        .arg(wal.join("control.sock"))
        .arg("--token-file")
        .arg(wal.join("control_token"))
        .args(["--reason", "policy_limits_sim: try to lift the capital stop"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "relax must be refused: {text}");
    assert!(text.contains("KillRiskstateKill"), "{text}");
    assert_eq!(run.status()["trading_mode"], "Kill");
    assert_eq!(run.our_orders().len(), contained, "flat in Kill: nothing more was sent");
    run.stop();
}

/// A policy that fails the strict loader: the engine does not trade — Kill with
/// `KILL_RISKSTATE_KILL` (launch policy: "policy missing or invalid at start"), the start-up
/// relax refused, the scripted open refused `ConfigMissingOrInvalid` (the config gate is the
/// first), nothing reaches the venue.
#[test]
fn test_policy_invalid_at_start_kills() {
    let policy = policy_with(|p| p["risk_limits"]["max_daily_loss_usd"] = json!(-1.0));
    let run = start(&policy, &json!([buy("BTC-PERPETUAL", "10")]));
    let s = run.wait_status("Kill", |s| s["trading_mode"] == "Kill");
    assert_eq!(s["mode_reasons"], json!(["KILL_RISKSTATE_KILL"]));
    assert!(!s["is_trading_allowed"].as_bool().unwrap());
    assert!(s["daily_pnl"]["max_daily_loss_usd"].is_null());
    run.wait_status("the scripted open refused", |s| rejects(s, "ConfigMissingOrInvalid") == 1);
    assert!(run.engine.output().contains("mode: start-up relax skipped"));
    assert!(run.our_orders().is_empty());
    // Issue 6: an engine whose policy did not load is not ok; health and status say so and
    // exit 1 (reachable, NOT ok), status with the reason.
    let health = std::process::Command::new(env!("CARGO_BIN_EXE_stoic"))
        .args(["health", "--url", &run.status_url])
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(1), "{}", String::from_utf8_lossy(&health.stderr));
    assert!(String::from_utf8_lossy(&health.stdout).contains("ok:               false"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_stoic"))
        .args(["status", "--url", &run.status_url])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(text.contains("policy did not load"), "{text}");
    run.stop();
}

/// F1 binding (contract §8 / AT-020): in STAGING (as in LIVE) a build without a release
/// certificate — none exists before Phase 4 — is held in ReduceOnly with
/// `REDUCEONLY_F1_CERT_INVALID`, and nothing relaxes it by itself (no unattended relax outside
/// DEV/PAPER): the scripted open is refused and the venue sees no order.
#[test]
fn test_policy_staging_without_f1_certificate_holds_reduce_only() {
    let policy = policy_with(|p| p["environment"] = json!("STAGING"));
    let run = start(&policy, &json!([buy("BTC-PERPETUAL", "10")]));
    let s = run.wait_status("REDUCEONLY_F1_CERT_INVALID", |s| {
        s["mode_reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "REDUCEONLY_F1_CERT_INVALID"))
    });
    assert_eq!(s["trading_mode"], "ReduceOnly", "{s:#}");
    assert_eq!(s["f1_cert_state"], "MISSING", "{s:#}");
    assert!(
        run.engine.output().contains("start-up relax skipped: not a simulated environment"),
        "{}",
        run.engine.output()
    );
    run.wait_status("the scripted open refused", |s| {
        s["counters"]["gate_rejects"].as_u64().is_some_and(|n| n >= 1)
    });
    assert_eq!(run.status()["trading_mode"], "ReduceOnly");
    assert!(run.our_orders().is_empty(), "{:?}", run.our_orders());
    run.stop();
}

/// A DEV/PAPER policy (simulated venue, unattended relax) pointed at a venue that is not on
/// this host is refused before anything connects: a real venue needs a STAGING/LIVE policy.
#[test]
fn test_policy_paper_environment_refuses_a_remote_venue() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["run", "--headless", "--venue-url", "wss://www.deribit.com/ws/api/v2"])
        .arg("--wal-dir")
        .arg(dir.path().join("wal"))
        .arg("--policy")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/policy.json"))
        .args(["--status-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("environment PAPER (simulated venue only)"), "{err}");
    assert!(!dir.path().join("wal").join("control.sock").exists(), "nothing started");
}
