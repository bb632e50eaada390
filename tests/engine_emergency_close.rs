//! Issue 7 "Emergency close", engine level (AT-338 Kill + exposure ⇒ containment; AT-346
//! session/rate-limit trouble still allows containment; AT-1049 Kill + exposure ⇒ a reducing
//! dispatch is allowed, OPEN 0). The real `stoic run --headless` binary against the in-process
//! simulator, with the `runaway` strategy building a position:
//! positions exist → a wrong token changes nothing (401) → operator Kill over HTTP → emergency
//! close over HTTP with the rate-limit breaker tripped as it starts (feature `failpoints`) →
//! the venue (asked directly) is flat, the simulator journal shows only reduce-only IOC orders
//! after the Kill, and `journal::Summary` finds no duplicate and no illegal order.
#![cfg(feature = "failpoints")]

mod crash_support;
mod sim_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crash_support::{Proc, BIN};
use serde_json::{json, Value};
use sim_support::{free_port, journal, status};

const TOKEN: &str = "engine-emergency-close-test-token-0001";

/// The control plane's POST with this test's reason.
fn post(url: &str, path: &str, token: &str) -> (u16, Value) {
    sim_support::post(url, path, token, "engine emergency close test", Duration::from_secs(40))
}

fn now_ms() -> i64 {
    coldpath::status::now_ms()
}

fn exposed(st: &Value) -> bool {
    st["positions"].as_array().is_some_and(|v| v.iter().any(|p| p["size"].as_f64() != Some(0.0)))
}

fn is_new_order(e: &Value) -> bool {
    matches!(e["method"].as_str(), Some("private/buy" | "private/sell"))
}

#[test]
fn process_kill_then_emergency_close_flattens_on_the_credit_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: dir.path().join("journal.jsonl"),
        ..simulator::SimConfig::default()
    })
    .unwrap();
    // A position the engine does not stream: a dated future bought before the engine starts
    // (adopted at start-up reconciliation). Closing it needs the ticker price source (B §3.1
    // priority 2, AT-937), since the engine has no book for it.
    let mut seed = simulator::client::WsClient::connect(sim.addr()).unwrap();
    seed.auth("sim-dev-trade", "sim-dev-trade-secret-0001").unwrap();
    let listed =
        seed.call("public/get_instruments", &json!({"currency": "BTC", "kind": "future"})).unwrap();
    let dated = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["instrument_name"].as_str())
        .find(|n| !n.ends_with("PERPETUAL"))
        .expect("a dated BTC future")
        .to_owned();
    let book = seed.call("public/get_order_book", &json!({"instrument_name": dated})).unwrap();
    let ask = book["best_ask_price"].as_f64().expect("an ask");
    let bought = seed
        .call(
            "private/buy",
            &json!({"instrument_name": dated, "amount": 10, "type": "limit", "price": ask,
                    "time_in_force": "immediate_or_cancel", "label": "test-seed-dated-future"}),
        )
        .unwrap();
    assert_eq!(bought["order"]["order_state"], "filled", "{bought}");
    // And an option: the engine loads only futures' metadata at start, so the close must fetch
    // the option listing itself.
    let options =
        seed.call("public/get_instruments", &json!({"currency": "BTC", "kind": "option"})).unwrap();
    let option = options
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["instrument_name"].as_str().map(str::to_owned))
        .find(|n| {
            seed.call("public/get_order_book", &json!({"instrument_name": n}))
                .is_ok_and(|b| b["best_ask_price"].as_f64().is_some_and(|a| a > 0.0))
        })
        .expect("a BTC option with an ask");
    let book = seed.call("public/get_order_book", &json!({"instrument_name": option})).unwrap();
    let ask = book["best_ask_price"].as_f64().unwrap();
    let bought = seed
        .call(
            "private/buy",
            &json!({"instrument_name": option, "amount": 0.1, "type": "limit", "price": ask,
                    "time_in_force": "immediate_or_cancel", "label": "test-seed-option"}),
        )
        .unwrap();
    assert_eq!(bought["order"]["order_state"], "filled", "{bought}");
    let token_file = dir.path().join("control_token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--headless", "--venue-url"])
        .arg(sim.ws_url())
        .arg("--wal-dir")
        .arg(dir.path().join("wal"))
        .args(["--strategy", "runaway", "--seed", "1", "--policy"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy_churn.json"))
        .args(["--status-addr", &format!("127.0.0.1:{port}"), "--control-token-file"])
        .arg(&token_file)
        .env_remove("STOIC_FAILPOINT")
        .env("STOIC_TRIP_BREAKER_BEFORE_CLOSE", "1");
    let engine = Proc::spawn(cmd);
    engine.wait_line("trading:", Duration::from_secs(30)).expect("engine started trading");

    // The runaway's opens get filled as the market walks through them.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if status(&url).is_some_and(|st| exposed(&st)) {
            break;
        }
        assert!(Instant::now() < deadline, "no position built:\n{}", engine.output());
        std::thread::sleep(Duration::from_millis(200));
    }

    // A wrong token: 401 and nothing changes.
    let (code, _) = post(&url, "/api/v1/emergency/kill", "wrong-token-wrong-token-wrong");
    assert_eq!(code, 401);
    let (code, _) = post(&url, "/api/v1/emergency/close", "wrong-token-wrong-token-wrong");
    assert_eq!(code, 401);
    assert_eq!(status(&url).unwrap()["trading_mode"], "Active", "a refused call changed the mode");

    let (code, after_kill) = post(&url, "/api/v1/emergency/kill", TOKEN);
    assert_eq!(code, 200, "{after_kill}");
    let kill_ack_ms = now_ms();
    assert_eq!(after_kill["trading_mode"], "Kill");
    assert_eq!(after_kill["mode_reasons"], json!(["KILL_RISKSTATE_KILL"]));
    assert_eq!(after_kill["is_trading_allowed"], false);

    // The runaway keeps deciding opens for a while; none may reach the venue.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, after_close) = post(&url, "/api/v1/emergency/close", TOKEN);
    assert_eq!(code, 200, "{after_close}\n{}", engine.output());
    assert_eq!(after_close["trading_mode"], "Kill", "the close does not relax");
    assert!(!exposed(&after_close), "{after_close}");
    let line = engine.wait_line("emergency close by", Duration::from_secs(5)).unwrap();
    assert!(engine.output().contains("test fault: rate-limit breaker tripped"));
    let drawn: u32 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("reserve_drawn="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(drawn > 0, "the close ran on the reserve with the breaker open: {line}");
    assert!(line.contains("residual=[]"), "{line}");

    // The venue's own word: flat.
    let mut venue = simulator::client::WsClient::connect(sim.addr()).unwrap();
    venue.auth("sim-dev-trade", "sim-dev-trade-secret-0001").unwrap();
    for ccy in ["BTC", "ETH"] {
        let pos = venue.call("private/get_positions", &json!({"currency": ccy})).unwrap();
        for p in pos.as_array().unwrap() {
            assert_eq!(p["size"].as_f64(), Some(0.0), "venue position left: {p}");
        }
    }

    // The journal: after the Kill, only reduce-only IOC orders; at least one filled, and the
    // unstreamed future was closed too.
    let entries = journal::<Value>(sim.journal_path());
    assert!(
        entries.iter().any(|e| is_new_order(e)
            && e["instrument"] == dated.as_str()
            && e["flags"]["reduce_only"] == true
            && e["ts_ms"].as_i64() > Some(kill_ack_ms)),
        "no close for {dated}\n{}",
        engine.output()
    );
    assert!(
        entries.iter().any(|e| is_new_order(e)
            && e["instrument"] == option.as_str()
            && e["flags"]["reduce_only"] == true
            && e["ts_ms"].as_i64() > Some(kill_ack_ms)),
        "no close for {option}\n{}",
        engine.output()
    );
    let after: Vec<&Value> = entries
        .iter()
        .filter(|e| is_new_order(e) && e["ts_ms"].as_i64() > Some(kill_ack_ms))
        .collect();
    assert!(!after.is_empty(), "no close reached the venue");
    for e in &after {
        assert_eq!(e["flags"]["reduce_only"], true, "non-reduce-only order after Kill: {e}");
        assert_eq!(e["flags"]["time_in_force"], "immediate_or_cancel", "{e}");
    }
    assert!(after.iter().any(|e| e["result"]["order_state"] == "filled"));
    let before_opens =
        entries.iter().filter(|e| is_new_order(e) && e["flags"]["reduce_only"] != true).count();
    assert!(before_opens > 0);
    let sum = simulator::journal::Summary::from_file(sim.journal_path()).unwrap();
    assert_eq!(sum.duplicate_dispatch_count, 0, "{:?}", sum.duplicate_labels);
    assert_eq!(sum.illegal_order_attempts, 0, "{:?}", sum.illegal_seqs);

    // Relax is host-only (operator socket), authenticated, and refused while a reason holds.
    let socket = dir.path().join("wal").join("control.sock");
    let relax = |token_file: &Path| {
        Command::new(BIN)
            .args(["mode", "relax", "--to", "active", "--socket"])
            .arg(&socket)
            .arg("--token-file")
            .arg(token_file)
            .args(["--reason", "test over", "--requested-by", "test-operator"])
            .output()
            .unwrap()
    };
    let wrong = dir.path().join("wrong_token");
    std::fs::write(&wrong, "not-the-operator-token-at-all\n").unwrap();
    let out = relax(&wrong);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(&url).unwrap()["trading_mode"], "Kill");
    let (code, ro) = post(&url, "/api/v1/emergency/reduce_only", TOKEN);
    assert_eq!(code, 200, "{ro}");
    let out = relax(&token_file);
    assert_eq!(out.status.code(), Some(1), "relax must be refused inside the reduce-only window");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE")
            || String::from_utf8_lossy(&out.stderr).contains("ReduceonlyEmergencyReduceonlyActive"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&url).unwrap()["trading_mode"], "Kill", "a refused relax changed nothing");

    // The Kill and the close are in the WAL as operator actions.
    drop(engine);
    let out = Command::new(BIN)
        .args(["wal", "inspect", "--dir"])
        .arg(dir.path().join("wal"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Kill"), "{text}");
    assert!(text.contains("EmergencyClose"), "{text}");
    // The accepted HTTP reduce-only is journaled with who asked and why (issue 6); the refused
    // relaxes left no ModeRelax record.
    let reduce_only = text
        .lines()
        .find(|l| l.contains("action=EmergencyReduceOnly"))
        .unwrap_or_else(|| panic!("no EmergencyReduceOnly record:\n{text}"));
    assert!(reduce_only.contains("test-operator"), "{reduce_only}");
    assert!(reduce_only.contains("engine emergency close test"), "{reduce_only}");
    assert!(
        !text.lines().any(|l| l.contains("action=ModeRelax") && l.contains("test-operator")),
        "a refused relax was journaled:\n{text}"
    );
}
