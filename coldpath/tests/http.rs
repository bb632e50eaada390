//! Endpoint-level tests of the control-plane server, run over real loopback sockets against
//! `coldpath::fixture::FixtureEngine` (a test fixture standing in for the engine's state).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coldpath::client;
use coldpath::fixture::FixtureEngine;
use coldpath::metrics::{MetricsRegistry, RingId};
use coldpath::server::{start, ServerConfig, ServerHandle};
use coldpath::status::{F1CertState, StatusSnapshot};
use hotpath::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RejectReasonCode, RiskState, TradingMode,
};
use serde_json::Value;

const TOKEN: &str = "test-token-0123456789abcdef";
const T: Duration = Duration::from_secs(5);

struct Harness {
    server: ServerHandle,
    engine: Arc<FixtureEngine>,
    metrics: Arc<MetricsRegistry>,
    _dir: tempfile::TempDir,
    url: String,
}

fn harness_with(tweak: impl FnOnce(&mut ServerConfig, &std::path::Path)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, format!("{TOKEN}\n")).unwrap();
    let mut cfg = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        token_file: Some(token_path),
        ..ServerConfig::default()
    };
    tweak(&mut cfg, dir.path());
    let engine = Arc::new(FixtureEngine::new_active("test-build"));
    let metrics = Arc::new(MetricsRegistry::new("test-run"));
    let server = start(cfg, engine.clone(), engine.clone(), metrics.clone()).unwrap();
    let url = format!("http://{}", server.local_addr());
    Harness { server, engine, metrics, _dir: dir, url }
}

fn harness() -> Harness {
    harness_with(|_, _| {})
}

fn get_json(url: &str, path: &str) -> (u16, Value) {
    let r = client::get(url, path, T).unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn post(url: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
    let h;
    let headers: Vec<(&str, &str)> = match auth {
        Some(a) => {
            h = a.to_owned();
            vec![("Authorization", h.as_str()), ("Content-Type", "application/json")]
        }
        None => vec![("Content-Type", "application/json")],
    };
    let r =
        client::request("POST", url, "/api/v1/emergency/reduce_only", &headers, body.as_bytes(), T)
            .unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

/// Sends raw bytes and returns the status code of the reply (0 if the server closed without one).
fn raw(addr: SocketAddr, bytes: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The repo's status schema with ruling 5 applied (`risk_state` includes `Kill`), compiled
/// by a real JSON Schema (2020-12) validator.
fn schema_validator() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/status_schema.json");
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let risk = schema["properties"]["risk_state"]["enum"].as_array_mut().unwrap();
    if !risk.iter().any(|v| v == "Kill") {
        risk.push(Value::from("Kill"));
    }
    jsonschema::validator_for(&schema).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, inst: &Value) {
    let errors: Vec<String> = v.iter_errors(inst).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}\n{inst:#}");
}

#[test]
fn health_is_ok_and_minimal() {
    let h = harness();
    let (code, v) = get_json(&h.url, "/api/v1/health");
    assert_eq!(code, 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["build_id"], "test-build");
    assert_eq!(v["contract_version"], "5.2");
    h.engine.set_ok(false);
    let (code, v) = get_json(&h.url, "/api/v1/health");
    assert_eq!(code, 200, "health always answers; ok carries the verdict");
    assert_eq!(v["ok"], false);
}

#[test]
fn status_validates_against_schema_in_every_mode() {
    let h = harness();
    let validator = schema_validator();
    let (code, v) = get_json(&h.url, "/api/v1/status");
    assert_eq!(code, 200);
    assert!(v.as_object().unwrap().len() >= 33);
    assert_valid(&validator, &v);
    assert_eq!(v["trading_mode"], "Active");
    assert_eq!(v["is_trading_allowed"], true);

    // ReduceOnly through the real endpoint.
    let (code, v) = post(&h.url, Some(&format!("Bearer {TOKEN}")), "");
    assert_eq!(code, 200);
    assert_valid(&validator, &v);

    // Startup (latched, F1 MISSING) and a Kill state with risk_state Kill (ruling 5).
    let start = StatusSnapshot::startup("b", "c", "PAPER", 1_000);
    assert_valid(&validator, &serde_json::to_value(&start).unwrap());
    let mut kill = start;
    kill.trading_mode = TradingMode::Kill;
    kill.risk_state = RiskState::Kill;
    kill.mode_reasons = vec![ModeReasonCode::KillRiskstateKill];
    kill.f1_cert_state = F1CertState::Pass;
    kill.f1_cert_expires_at = Some(99);
    kill.derive(2_000);
    assert_eq!(kill.check(), Ok(()));
    h.engine.set_snapshot(kill);
    let (_, v) = get_json(&h.url, "/api/v1/status");
    assert_eq!(v["trading_mode"], "Kill");
    assert_valid(&validator, &v);
}

#[test]
fn schema_validator_rejects_inconsistent_status() {
    // Guards the test above against a validator that accepts anything.
    let validator = schema_validator();
    let mut s = StatusSnapshot::startup("b", "c", "PAPER", 1_000);
    s.trading_mode = TradingMode::Active; // with reasons and the latch set: two rule breaks
    let v = serde_json::to_value(&s).unwrap();
    assert!(!validator.is_valid(&v));
    assert!(s.check().is_err(), "check() must agree with the schema");
    let mut v = serde_json::to_value(StatusSnapshot::startup("b", "c", "PAPER", 1)).unwrap();
    v.as_object_mut().unwrap().remove("429_count_5m");
    assert!(!validator.is_valid(&v), "a missing required key must fail");
}

#[test]
fn unhealthy_when_status_breaks_its_own_rules() {
    let h = harness();
    let mut s = StatusSnapshot::startup("b", "c", "PAPER", 1_000);
    s.wal_queue_depth = 10; // > capacity 1: the one rule JSON Schema cannot express
    h.engine.set_snapshot(s);
    let (_, v) = get_json(&h.url, "/api/v1/health");
    assert_eq!(v["ok"], false);
}

#[test]
fn unknown_path_wrong_method_and_malformed() {
    let h = harness();
    let addr = h.server.local_addr();
    assert_eq!(client::get(&h.url, "/nope", T).unwrap().status, 404);
    assert_eq!(
        client::request("POST", &h.url, "/api/v1/status", &[], b"{}", T).unwrap().status,
        405
    );
    assert_eq!(
        client::request("DELETE", &h.url, "/api/v1/health", &[], b"", T).unwrap().status,
        405
    );
    assert_eq!(client::get(&h.url, "/api/v1/emergency/reduce_only", T).unwrap().status, 405);
    assert_eq!(raw(addr, b"GARBAGE\x01\x02 / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(raw(addr, b"GET /api/v1/health HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
    assert_eq!(raw(addr, b"POST /api/v1/emergency/reduce_only HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
    // None of that changed anything.
    assert_eq!(get_json(&h.url, "/api/v1/status").1["trading_mode"], "Active");
    assert!(h.engine.audit().is_empty());
}

#[test]
fn oversized_request_gets_413() {
    let h = harness();
    let addr = h.server.local_addr();
    let big_head = format!("GET /api/v1/health HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(raw(addr, big_head.as_bytes()), 413);
    let big_body = format!("POST /api/v1/emergency/reduce_only HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000000\r\n\r\n");
    assert_eq!(raw(addr, big_body.as_bytes()), 413);
    assert_eq!(get_json(&h.url, "/api/v1/status").1["trading_mode"], "Active");
}

#[test]
fn emergency_requires_the_bearer_token_and_changes_nothing_without_it() {
    let h = harness();
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789abcdef"),
        Some(TOKEN),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer "),
    ] {
        let (code, _) = post(&h.url, auth, "");
        assert_eq!(code, 401, "auth {auth:?}");
    }
    assert_eq!(get_json(&h.url, "/api/v1/status").1["trading_mode"], "Active");
    assert!(h.engine.audit().is_empty());
}

#[test]
fn emergency_latches_reduce_only_records_who_and_is_idempotent() {
    let h = harness();
    let auth = format!("Bearer {TOKEN}");
    let (code, v) =
        post(&h.url, Some(&auth), r#"{"reason":"drill: operator test","requested_by":"alice"}"#);
    assert_eq!(code, 200);
    assert_eq!(v["trading_mode"], "ReduceOnly");
    assert_eq!(v["mode_reasons"], serde_json::json!(["REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE"]));
    assert_eq!(v["is_trading_allowed"], false);
    let transitions = v["mode_transitions"].as_array().unwrap().len();
    let audit = h.engine.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].requested_by.as_deref(), Some("alice"));
    assert_eq!(audit[0].reason.as_deref(), Some("drill: operator test"));
    assert!(audit[0].peer.ip().is_loopback());

    // Repeat within the cooldown: same state, recorded again, no new transition.
    let (code, v2) = post(&h.url, Some(&auth), "");
    assert_eq!(code, 200);
    assert_eq!(v2["trading_mode"], "ReduceOnly");
    assert_eq!(v2["mode_transitions"].as_array().unwrap().len(), transitions);
    assert_eq!(h.engine.audit().len(), 2);
    // GET agrees with the POST response.
    assert_eq!(get_json(&h.url, "/api/v1/status").1["trading_mode"], "ReduceOnly");
}

#[test]
fn emergency_body_is_validated() {
    let h = harness();
    let auth = format!("Bearer {TOKEN}");
    let long = format!(r#"{{"reason":"{}"}}"#, "x".repeat(201));
    for body in [
        "{not json",
        r#"{"reson":"typo"}"#,
        &long,
        r#"{"requested_by":"bad name; rm -rf"}"#,
        r#"{"reason":5}"#,
    ] {
        let (code, _) = post(&h.url, Some(&auth), body);
        assert_eq!(code, 400, "body {body}");
    }
    let ok200 = format!(r#"{{"reason":"{}"}}"#, "é".repeat(200));
    assert_eq!(post(&h.url, Some(&auth), &ok200).0, 200, "200 characters (not bytes) are allowed");
}

#[test]
fn missing_or_weak_token_file_disables_the_endpoint() {
    let h = harness_with(|cfg, dir| cfg.token_file = Some(dir.join("does-not-exist")));
    let (code, v) = post(&h.url, Some(&format!("Bearer {TOKEN}")), "");
    assert_eq!(code, 503);
    assert!(v["error"].as_str().unwrap().contains("disabled"));
    assert_eq!(get_json(&h.url, "/api/v1/status").1["trading_mode"], "Active");

    let h = harness_with(|cfg, dir| {
        std::fs::write(dir.join("short"), "abc\n").unwrap();
        cfg.token_file = Some(dir.join("short"));
    });
    assert_eq!(post(&h.url, Some("Bearer abc"), "").0, 503);
    let h = harness_with(|cfg, _| cfg.token_file = None);
    assert_eq!(post(&h.url, Some("Bearer "), "").0, 503);
    assert!(h.engine.audit().is_empty());
}

#[test]
fn sink_failure_is_503() {
    let h = harness();
    h.engine.set_control_fails(true);
    assert_eq!(post(&h.url, Some(&format!("Bearer {TOKEN}")), "").0, 503);
    assert_eq!(get_json(&h.url, "/api/v1/status").1["trading_mode"], "Active");
}

#[test]
fn metrics_parse_with_a_prometheus_parser() {
    let h = harness();
    h.metrics.record_reject(RejectReasonCode::NetEdgeTooLow);
    h.metrics.record_reject(RejectReasonCode::NetEdgeTooLow);
    h.metrics.record_mode_transition(
        TradingMode::ReduceOnly,
        &[ModeReasonCode::ReduceonlyEmergencyReduceonlyActive],
    );
    h.metrics.set_latch(&[OpenPermissionReasonCode::WsBookGapReconcileRequired]);
    h.metrics.wal_sync_latency.observe_ns(120_000);
    h.metrics.tick_to_send.observe_ns(40_000);
    h.metrics.set_ring_depth(RingId::GateToDispatch, 7);
    h.metrics.record_reconcile_result("repaired");
    h.metrics.record_reconcile_result("clean");
    h.metrics.record_reconcile_result("clean");
    h.metrics.record_ring_overflow(RingId::EvidenceLog);
    h.metrics.set_engine_state(coldpath::metrics::EngineStateMetrics {
        positions: vec![coldpath::metrics::PositionMetric {
            instrument: "BTC-PERPETUAL".into(),
            amount: -20.0,
            pending_buy: 10.0,
            pending_sell: 0.0,
        }],
        counters: vec![("intents", 5), ("fills", 2)],
        last_book_ms: 1_795_600_000_000,
        rings: vec![(RingId::Control, 1, 0)],
    });
    let r = client::get(&h.url, "/metrics", T).unwrap();
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let find = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no sample {name} {label:?}"))
    };
    let scalar = |v: &prometheus_parse::Value| match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        other => panic!("not scalar: {other:?}"),
    };
    for s in &scrape.samples {
        if s.metric != "stoic_fixture_info" {
            assert_eq!(s.labels.get("run_id"), Some("test-run"), "{} lacks run_id", s.metric);
        }
    }
    assert_eq!(scalar(&find("duplicate_dispatch_count", None).value), 0.0);
    assert_eq!(scalar(&find("illegal_order_attempts", None).value), 0.0);
    assert_eq!(
        scalar(&find("stoic_rejects_total", Some(("reason_code", "NetEdgeTooLow"))).value),
        2.0
    );
    assert_eq!(
        scalar(&find("stoic_rejects_total", Some(("reason_code", "LabelTooLong"))).value),
        0.0
    );
    assert_eq!(
        scalar(
            &find(
                "stoic_mode_transitions_total",
                Some(("reason_code", "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE"))
            )
            .value
        ),
        1.0
    );
    assert_eq!(scalar(&find("stoic_trading_mode", Some(("mode", "ReduceOnly"))).value), 1.0);
    assert_eq!(scalar(&find("stoic_open_permission_latch", None).value), 1.0);
    assert_eq!(scalar(&find("stoic_ring_depth", Some(("ring", "gate_to_dispatch"))).value), 7.0);
    assert_eq!(
        scalar(&find("stoic_ring_overflow_total", Some(("ring", "evidence_log"))).value),
        1.0
    );
    assert!(scalar(&find("stoic_last_reconcile_age_seconds", None).value).is_infinite());
    // Reconcile results: counted per result, the last one flagged.
    for (name, n, last) in [("repaired", 1.0, 0.0), ("clean", 2.0, 1.0), ("error", 0.0, 0.0)] {
        let r = Some(("result", name));
        assert_eq!(scalar(&find("stoic_reconcile_passes_total", r).value), n, "{name}");
        assert_eq!(scalar(&find("stoic_last_reconcile_result", r).value), last, "{name}");
    }
    assert_eq!(
        scalar(&find("stoic_position_amount", Some(("instrument", "BTC-PERPETUAL"))).value),
        -20.0
    );
    let pending = |side: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "stoic_pending_amount" && s.labels.get("side") == Some(side))
            .map(|s| scalar(&s.value))
    };
    assert_eq!((pending("buy"), pending("sell")), (Some(10.0), Some(0.0)));
    assert_eq!(scalar(&find("stoic_engine_events_total", Some(("counter", "fills"))).value), 2.0);
    assert_eq!(scalar(&find("stoic_last_book_update_ms", None).value), 1_795_600_000_000.0);
    match &find("stoic_wal_sync_latency_seconds", None).value {
        prometheus_parse::Value::Histogram(buckets) => {
            let le_250us = buckets.iter().find(|b| (b.less_than - 0.00025).abs() < 1e-12).unwrap();
            assert_eq!(le_250us.count, 1.0);
            let le_100us = buckets.iter().find(|b| (b.less_than - 0.0001).abs() < 1e-12).unwrap();
            assert_eq!(le_100us.count, 0.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(matches!(
        find("stoic_tick_to_send_seconds", None).value,
        prometheus_parse::Value::Histogram(_)
    ));
}

#[test]
fn connection_limit_answers_503_and_recovers() {
    let h = harness_with(|cfg, _| {
        cfg.max_connections = 2;
        cfg.request_timeout = Duration::from_secs(2);
    });
    let addr = h.server.local_addr();
    // Two idle clients hold both slots (they never send a request).
    let a = TcpStream::connect(addr).unwrap();
    let b = TcpStream::connect(addr).unwrap();
    // No sleep needed: the accept loop takes connections in order, so a and b hold their
    // slots before the third connection is even accepted.
    assert_eq!(raw(addr, b"GET /api/v1/health HTTP/1.1\r\n\r\n"), 503);
    drop((a, b));
    // Slots are released when the idle connections end (closed, or cut off at the timeout).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if client::get(&h.url, "/api/v1/health", T).is_ok_and(|r| r.status == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "server did not recover after idle clients left");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slowloris_does_not_block_others_and_is_cut_off() {
    let h = harness_with(|cfg, _| cfg.request_timeout = Duration::from_secs(3));
    let addr = h.server.local_addr();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\n").unwrap();
    // While the slow client dribbles, others are served without waiting for it: each answer
    // comes well before the slow client's 3 s deadline would have released a blocked server.
    for _ in 0..5 {
        slow.write_all(b"X").unwrap();
        let t0 = Instant::now();
        assert_eq!(client::get(&h.url, "/api/v1/health", T).unwrap().status, 200);
        assert!(t0.elapsed() < Duration::from_millis(1500), "health took {:?}", t0.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Past the request deadline the server drops the slow client without answering.
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the server to close the slow connection");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn dashboard_and_reason_text() {
    let h = harness();
    let r = client::get(&h.url, "/", T).unwrap();
    assert_eq!(r.status, 200);
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains("/api/v1/status") && html.contains("setInterval(poll, 1000)"));
    let (code, t) = get_json(&h.url, "/api/v1/reason_text");
    assert_eq!(code, 200);
    // Every code in the spec registry has a plain sentence.
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/reason_codes.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let keys = |v: &Value| -> Vec<String> {
        v.as_object().unwrap().keys().filter(|k| !k.starts_with('_')).cloned().collect()
    };
    let mut n = 0;
    for tier in ["Kill", "ReduceOnly"] {
        for code in keys(&spec["ModeReasonCode"][tier]) {
            assert!(
                t["mode_reasons"][&code]["plain"].as_str().is_some_and(|s| !s.is_empty()),
                "{code}"
            );
            assert_eq!(t["mode_reasons"][&code]["tier"], tier);
            n += 1;
        }
    }
    assert!(n >= 21);
    for code in keys(&spec["OpenPermissionReasonCode"]) {
        assert!(t["open_permission"][&code]["plain"].is_string(), "{code}");
    }
    for code in keys(&spec["OwnerStateCode"]) {
        assert!(t["owner_states"][&code]["plain"].is_string(), "{code}");
    }
    for m in ["Active", "ReduceOnly", "Kill"] {
        assert!(t["modes"][m]["headline"].is_string());
    }
}
