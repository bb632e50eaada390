//! Endpoint-level tests of the kill and emergency-close commands (contract §7.0: every new
//! endpoint has at least one endpoint test), over real loopback sockets with a recording
//! `ControlSink`: the bearer-token rules of reduce-only apply unchanged (401 and nothing
//! reaches the sink), GET is 405, a sink that lacks a command answers 501, and no endpoint
//! relaxes the mode.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coldpath::client;
use coldpath::fixture::FixtureEngine;
use coldpath::metrics::MetricsRegistry;
use coldpath::server::{
    start, ControlCommand, ControlError, ControlSink, EmergencyRequest, ServerConfig, StatusSource,
};
use coldpath::status::StatusSnapshot;
use hotpath::domain::reason_codes::{ModeReasonCode, TradingMode};
use serde_json::Value;

const TOKEN: &str = "control-commands-token-0123456789";
const T: Duration = Duration::from_secs(5);

/// A command as the sink saw it: what, who, why.
type Seen = (ControlCommand, Option<String>, Option<String>);

/// Records every command it receives and answers like an engine would.
struct Recorder {
    fixture: FixtureEngine,
    seen: Mutex<Vec<Seen>>,
}

impl ControlSink for Recorder {
    fn emergency_reduce_only(&self, req: EmergencyRequest) -> Result<StatusSnapshot, ControlError> {
        self.command(ControlCommand::ReduceOnly, req)
    }

    fn command(
        &self,
        cmd: ControlCommand,
        req: EmergencyRequest,
    ) -> Result<StatusSnapshot, ControlError> {
        self.seen.lock().unwrap().push((cmd, req.requested_by, req.reason));
        let mut st = self.fixture.status();
        if cmd == ControlCommand::Kill {
            st.trading_mode = TradingMode::Kill;
            st.mode_reasons = vec![ModeReasonCode::KillRiskstateKill];
            st.derive(st.loop_tick_last_ts_ms);
        }
        Ok(st)
    }
}

fn serve(
    sink: Arc<dyn ControlSink>,
) -> (coldpath::server::ServerHandle, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, format!("{TOKEN}\n")).unwrap();
    let cfg = ServerConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        token_file: Some(token_path),
        ..ServerConfig::default()
    };
    let source = Arc::new(FixtureEngine::new_active("test-build"));
    let server =
        start(cfg, source, sink, Arc::new(MetricsRegistry::new("control-commands"))).unwrap();
    let url = format!("http://{}", server.local_addr());
    (server, url, dir)
}

fn call(url: &str, method: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = bearer.as_deref() {
        headers.push(("Authorization", b));
    }
    let body = br#"{"reason":"endpoint test","requested_by":"ops.test"}"#;
    let r = client::request(method, url, path, &headers, body, T).unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

#[test]
fn kill_and_close_need_the_token_and_reach_the_sink_with_who_and_why() {
    let rec = Arc::new(Recorder {
        fixture: FixtureEngine::new_active("test-build"),
        seen: Mutex::new(Vec::new()),
    });
    let (_server, url, _dir) = serve(rec.clone());
    for path in ["/api/v1/emergency/kill", "/api/v1/emergency/close"] {
        assert_eq!(call(&url, "POST", path, None).0, 401, "{path}");
        assert_eq!(call(&url, "POST", path, Some("wrong-token-wrong-token")).0, 401, "{path}");
        assert_eq!(call(&url, "GET", path, Some(TOKEN)).0, 405, "{path}");
    }
    assert!(rec.seen.lock().unwrap().is_empty(), "a refused call reached the engine");

    let (code, st) = call(&url, "POST", "/api/v1/emergency/kill", Some(TOKEN));
    assert_eq!(code, 200);
    assert_eq!(st["trading_mode"], "Kill", "the reply is the status after the change");
    assert_eq!(st["is_trading_allowed"], false);
    let (code, _) = call(&url, "POST", "/api/v1/emergency/close", Some(TOKEN));
    assert_eq!(code, 200);
    let seen = rec.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (ControlCommand::Kill, Some("ops.test".into()), Some("endpoint test".into())),
            (ControlCommand::EmergencyClose, Some("ops.test".into()), Some("endpoint test".into())),
        ]
    );
}

#[test]
fn a_sink_without_the_command_answers_501_and_no_endpoint_relaxes() {
    let (_server, url, _dir) = serve(Arc::new(FixtureEngine::new_active("test-build")));
    assert_eq!(call(&url, "POST", "/api/v1/emergency/kill", Some(TOKEN)).0, 501);
    assert_eq!(call(&url, "POST", "/api/v1/emergency/close", Some(TOKEN)).0, 501);
    for path in ["/api/v1/emergency/relax", "/api/v1/mode/relax", "/api/v1/emergency/active"] {
        assert_eq!(call(&url, "POST", path, Some(TOKEN)).0, 404, "{path}");
    }
    assert_eq!(
        ControlCommand::ALL.map(ControlCommand::path),
        ["/api/v1/emergency/reduce_only", "/api/v1/emergency/kill", "/api/v1/emergency/close"]
    );
}
