//! The host-local operator socket: the one way to *relax* the trading mode of a running
//! engine (`stoic mode relax`). Contract §7.0 forbids loosening risk over HTTP, and the launch
//! policy says only an operator acting on the host may relax; a Unix socket with mode 0600 in
//! the WAL directory is reachable only by that host's engine user, and the request must still
//! carry the operator token, which the engine verifies itself (`OperatorAuthenticated`).
//!
//! Protocol: one JSON line in, one JSON line out, one request per connection.
//! ```text
//! → {"command":"relax","target":"ReduceOnly"|"Active","token":"…","requested_by":"…","reason":"…"}
//! ← {"ok":true,"status":{…status JSON after the change…}}
//! ← {"ok":false,"code":401|400|409|503,"error":"…"}
//! ```
//! Bounded like the HTTP server: requests over [`REQUEST_BYTES_MAX`] are refused, a client
//! gets [`IO_TIMEOUT`] to send its line, and connections are served one at a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coldpath::server::{ControlError, EmergencyRequest, REASON_CHARS_MAX, REQUESTED_BY_CHARS_MAX};
use hotpath::domain::reason_codes::TradingMode;
use serde::{Deserialize, Serialize};

use super::status::{ControlCmd, EngineControl};

/// Largest request line accepted.
pub const REQUEST_BYTES_MAX: u64 = 4096;
/// Time a client gets to send its request and read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The socket's file name inside the WAL directory.
pub const SOCKET_FILE: &str = "control.sock";

/// A request on the operator socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketRequest {
    /// Only `relax`.
    pub command: String,
    /// `ReduceOnly` or `Active`.
    pub target: TradingMode,
    /// The operator token (first line of the token file).
    pub token: String,
    /// Who (1..=64 of `[A-Za-z0-9._@-]`).
    pub requested_by: String,
    /// Why (≤ 200 characters).
    pub reason: String,
}

/// The answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SocketReply {
    /// Whether the relax was applied.
    pub ok: bool,
    /// HTTP-like code on failure: 400 bad request, 401 token, 409 refused, 503 unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The status after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

impl SocketReply {
    fn refused(code: u16, error: impl Into<String>) -> Self {
        Self { ok: false, code: Some(code), error: Some(error.into()), status: None }
    }
}

/// The running socket server; dropping it does not stop the thread (it ends with the process)
/// but [`OperatorSocket::path`] is removed by [`OperatorSocket::remove`].
#[derive(Debug)]
pub struct OperatorSocket {
    path: PathBuf,
}

impl OperatorSocket {
    /// Binds `<wal_dir>/control.sock` (mode 0600, a stale file from a dead process replaced)
    /// and serves relax requests through `control` on a background thread.
    ///
    /// # Errors
    /// The socket cannot be created.
    pub fn start(wal_dir: &Path, control: Arc<EngineControl>) -> std::io::Result<Self> {
        let path = wal_dir.join(SOCKET_FILE);
        if path.exists() && UnixStream::connect(&path).is_err() {
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        std::thread::Builder::new().name("operator-socket".into()).spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let reply = serve_one(&mut stream, &control);
                if let Ok(mut line) = serde_json::to_vec(&reply) {
                    line.push(b'\n');
                    let _ = stream.write_all(&line);
                }
            }
        })?;
        Ok(Self { path })
    }

    /// The socket's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file (clean shutdown).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve_one(stream: &mut UnixStream, control: &EngineControl) -> SocketReply {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = String::new();
    let mut reader = BufReader::new(Read::by_ref(stream).take(REQUEST_BYTES_MAX));
    if reader.read_line(&mut line).is_err() || !line.ends_with('\n') {
        return SocketReply::refused(
            400,
            "one JSON line (≤ 4096 bytes, newline-terminated) expected",
        );
    }
    let req: SocketRequest = match serde_json::from_str(line.trim_end()) {
        Ok(r) => r,
        Err(e) => return SocketReply::refused(400, format!("bad request: {e}")),
    };
    if req.command != "relax" {
        return SocketReply::refused(
            400,
            "the operator socket only relaxes; use the HTTP endpoints to tighten",
        );
    }
    if let Err(why) = check_fields(&req) {
        return SocketReply::refused(400, why);
    }
    let er = EmergencyRequest {
        reason: Some(req.reason.clone()),
        requested_by: Some(req.requested_by.clone()),
        // A Unix socket has no IP peer; record the loopback "host itself".
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        received_at_ms: coldpath::status::now_ms(),
    };
    tracing::warn!(target: "stoic::control", requested_by = %req.requested_by, reason = %req.reason, target_mode = ?req.target, "operator relax requested on the host socket");
    match control.submit(ControlCmd::Relax { target: req.target, token: req.token }, er) {
        Ok(status) => SocketReply {
            ok: true,
            code: None,
            error: None,
            status: serde_json::to_value(&status).ok(),
        },
        Err(ControlError::RecordFailed(e)) if e.contains("token rejected") => {
            SocketReply::refused(401, e)
        }
        Err(ControlError::RecordFailed(e)) => SocketReply::refused(409, e),
        Err(e) => SocketReply::refused(503, e.to_string()),
    }
}

fn check_fields(req: &SocketRequest) -> Result<(), String> {
    if req.target == TradingMode::Kill {
        return Err("relax target must be ReduceOnly or Active".into());
    }
    let who_ok = !req.requested_by.is_empty()
        && req.requested_by.chars().count() <= REQUESTED_BY_CHARS_MAX
        && req.requested_by.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if !who_ok {
        return Err(format!(
            "requested_by must be 1..={REQUESTED_BY_CHARS_MAX} chars of [A-Za-z0-9._@-]"
        ));
    }
    if req.reason.trim().is_empty() || req.reason.chars().count() > REASON_CHARS_MAX {
        return Err(format!("reason must be 1..={REASON_CHARS_MAX} characters"));
    }
    Ok(())
}

/// Client side (`stoic mode relax`): sends one request and reads the answer.
///
/// # Errors
/// The socket cannot be reached or answered nothing readable.
pub fn call(socket: &Path, req: &SocketRequest) -> std::io::Result<SocketReply> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream.take(4 * 1024 * 1024)).read_line(&mut answer)?;
    serde_json::from_str(answer.trim_end()).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: TradingMode, who: &str, reason: &str, command: &str) -> SocketRequest {
        SocketRequest {
            command: command.into(),
            target,
            token: "t".repeat(32),
            requested_by: who.into(),
            reason: reason.into(),
        }
    }

    /// A socket whose engine answers every relax with `answer`, counting what it saw.
    fn serve(
        answer: Result<(), String>,
    ) -> (tempfile::TempDir, OperatorSocket, std::sync::mpsc::Receiver<ControlCmd>) {
        let dir = tempfile::tempdir().unwrap();
        let (control, mut port) =
            super::super::status::control_channel(super::super::status::Published::default());
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while !port.rx.is_abandoned() {
                match port.rx.pop() {
                    Ok(m) => {
                        let _ = seen_tx.send(m.cmd.clone());
                        let _ = m.reply.send(answer.clone());
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
        });
        let control = Arc::new(control);
        let sock = OperatorSocket::start(dir.path(), control).unwrap();
        (dir, sock, seen_rx)
    }

    #[test]
    fn bad_requests_never_reach_the_engine() {
        let (_dir, sock, seen) = serve(Ok(()));
        for bad in [
            request(TradingMode::Active, "ops", "why", "kill"),
            request(TradingMode::Kill, "ops", "why", "relax"),
            request(TradingMode::Active, "", "why", "relax"),
            request(TradingMode::Active, "ops with space", "why", "relax"),
            request(TradingMode::Active, "ops", "", "relax"),
            request(TradingMode::Active, "ops", &"x".repeat(201), "relax"),
        ] {
            let r = call(sock.path(), &bad).unwrap();
            assert!(!r.ok);
            assert_eq!(r.code, Some(400), "{bad:?} → {r:?}");
        }
        assert!(seen.try_recv().is_err(), "a refused request reached the engine");
        let meta = std::fs::metadata(sock.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn engine_verdicts_map_to_codes_and_the_token_is_passed_through() {
        let (_dir, sock, seen) = serve(Err("operator token rejected".into()));
        let r = call(sock.path(), &request(TradingMode::Active, "ops", "why", "relax")).unwrap();
        assert_eq!((r.ok, r.code), (false, Some(401)));
        let got = seen.recv().unwrap();
        assert_eq!(got, ControlCmd::Relax { target: TradingMode::Active, token: "t".repeat(32) });
        assert!(!format!("{got:?}").contains("tttt"), "Debug must not print the token");

        let (_dir2, sock2, _seen2) = serve(Err("reasons present: [X]".into()));
        let r =
            call(sock2.path(), &request(TradingMode::ReduceOnly, "ops", "why", "relax")).unwrap();
        assert_eq!((r.ok, r.code), (false, Some(409)));

        let (_dir3, sock3, _seen3) = serve(Ok(()));
        let r = call(sock3.path(), &request(TradingMode::Active, "ops", "why", "relax")).unwrap();
        assert!(r.ok, "{r:?}");
        assert!(r.status.is_some());
    }
}
