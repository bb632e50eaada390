//! Phase 0 (P0-E) command tests: the real `stoic` binary run against the real status server
//! (started in-process on port 0 over `coldpath::fixture::FixtureEngine`, a test fixture
//! standing in for the engine's published state).

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::Arc;

use coldpath::fixture::FixtureEngine;
use coldpath::metrics::MetricsRegistry;
use coldpath::server::{start, ServerConfig, ServerHandle};
use coldpath::status::StatusSnapshot;
use serde_json::Value;

const TOKEN: &str = "cli-test-token-0123456789";

fn serve() -> (ServerHandle, Arc<FixtureEngine>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let cfg = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        token_file: Some(token),
        ..ServerConfig::default()
    };
    let engine = Arc::new(FixtureEngine::new_active("fixture-build"));
    let server =
        start(cfg, engine.clone(), engine.clone(), Arc::new(MetricsRegistry::new("cli-test")))
            .unwrap();
    let url = format!("http://{}", server.local_addr());
    (server, engine, url, dir)
}

/// A loopback URL where nothing listens (bound, then released).
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

fn stoic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stoic")).args(args).output().unwrap()
}

fn out(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn test_health_command_behavior() {
    let (_server, engine, url, _dir) = serve();

    // Healthy: required fields, exit 0.
    let (code, stdout, stderr) = out(&stoic(&["health", "--url", &url]));
    assert_eq!(code, 0, "stdout {stdout} stderr {stderr}");
    assert!(stdout.contains("ok:               true"), "{stdout}");
    assert!(stdout.contains("build_id:         fixture-build"));
    assert!(stdout.contains("contract_version: 5.2"));

    let (code, stdout, _) = out(&stoic(&["health", "--url", &url, "--json"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"ok": true, "build_id": "fixture-build", "contract_version": "5.2"})
    );

    // Forced unhealthy: exit 1 with the reason on stderr.
    engine.set_ok(false);
    let (code, stdout, stderr) = out(&stoic(&["health", "--url", &url]));
    assert_eq!(code, 1);
    assert!(stdout.contains("ok:               false"));
    assert!(stderr.contains("NOT OK") && stderr.contains("ok=false"), "{stderr}");

    // Unreachable: exit 3, says why, and --json still prints a machine-readable verdict.
    let dead = dead_url();
    let (code, _, stderr) = out(&stoic(&["health", "--url", &dead]));
    assert_eq!(code, 3);
    assert!(stderr.contains("cannot get a status answer") && stderr.contains(&dead), "{stderr}");
    let (code, stdout, _) = out(&stoic(&["health", "--url", &dead, "--json"]));
    assert_eq!(code, 3);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["reachable"], false);

    // Something that is not a status server (404 on the health path): exit 3.
    let (code, _, stderr) = out(&stoic(&["health", "--url", &format!("{url}/not-here")]));
    assert_eq!(code, 3, "{stderr}");
}

#[test]
fn test_status_command_behavior() {
    let (_server, engine, url, _dir) = serve();

    let (code, stdout, stderr) = out(&stoic(&["status", "--url", &url]));
    assert_eq!(code, 0, "stdout {stdout} stderr {stderr}");
    for line in [
        "ok:                 true",
        "trading_mode:       Active",
        "is_trading_allowed: true",
        "mode_reasons:       (none)",
        "contract_version:   5.2",
        "build_id:           fixture-build",
        "timestamp_utc:      20",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    // Schema fields are listed too.
    for key in [
        "429_count_5m:",
        "10028_count_5m:",
        "wal_queue_capacity:",
        "f1_cert_state:",
        "runtime_config_hash:",
    ] {
        assert!(stdout.contains(key), "missing {key} in\n{stdout}");
    }

    // Switch to ReduceOnly through the real endpoint; status shows it with the reason in words.
    let auth = format!("Bearer {TOKEN}");
    let resp = coldpath::client::request(
        "POST",
        &url,
        "/api/v1/emergency/reduce_only",
        &[("Authorization", auth.as_str())],
        br#"{"requested_by":"cli-test"}"#,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    let (code, stdout, _) = out(&stoic(&["status", "--url", &url]));
    assert_eq!(code, 0, "ReduceOnly on a healthy engine is not a failure");
    assert!(stdout.contains("trading_mode:       ReduceOnly"), "{stdout}");
    assert!(stdout.contains("is_trading_allowed: false"));
    assert!(stdout.contains(
        "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE: An operator pressed the emergency Reduce-only switch"
    ));

    let (code, stdout, _) = out(&stoic(&["status", "--url", &url, "--json"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["trading_mode"], "ReduceOnly");
    assert_eq!(v["is_trading_allowed"], false);
    assert!(v["timestamp_utc"].is_string());

    // Forced unhealthy.
    engine.set_ok(false);
    let (code, _, stderr) = out(&stoic(&["status", "--url", &url]));
    assert_eq!(code, 1);
    assert!(stderr.contains("NOT OK"), "{stderr}");
    engine.set_ok(true);

    // A status that breaks its own contract is NOT OK even though the engine says ok.
    let mut broken = StatusSnapshot::startup("b", "c", "PAPER", 1);
    broken.wal_queue_depth = 5;
    engine.set_snapshot(broken);
    let (code, _, stderr) = out(&stoic(&["status", "--url", &url]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("STATE_UNHEALTHY_STATUS_SCHEMA") && stderr.contains("wal_queue_depth"),
        "{stderr}"
    );

    // Unreachable.
    let (code, _, stderr) = out(&stoic(&["status", "--url", &dead_url()]));
    assert_eq!(code, 3);
    assert!(stderr.contains("Is the engine"), "{stderr}");
}

#[test]
fn health_and_status_help_name_their_options() {
    for cmd in ["health", "status"] {
        let (code, stdout, _) = out(&stoic(&[cmd, "--help"]));
        assert_eq!(code, 0);
        assert!(
            stdout.contains("--url")
                && stdout.contains("--json")
                && stdout.contains("http://127.0.0.1:8787"),
            "{stdout}"
        );
    }
}
