//! The control-plane HTTP server: `/api/v1/health`, `/api/v1/status`,
//! `POST /api/v1/emergency/{reduce_only,kill,close}`, `/metrics`, `/api/v1/reason_text` and the owner
//! dashboard at `/`.
//!
//! A cold-path server, deliberately small: blocking std sockets, one thread per connection,
//! `httparse` for the request head, one request per connection (`Connection: close`).
//! Every resource is bounded so that a slow, malformed or hostile client cannot stall it:
//! - at most `max_connections` connections at once; the next one gets `503` and is closed;
//! - a request (head + body) larger than `max_request_bytes` gets `413`;
//! - the whole request must arrive within `request_timeout` (a slowloris client is cut off
//!   and only ever holds its own thread); writes time out after `write_timeout`.
//!
//! The server never touches the hot loop: it reads state through [`StatusSource`] (published
//! snapshots) and sends its commands ([`ControlCommand`]) through [`ControlSink`] (the control
//! ring).
//! Nothing served here can loosen risk: there is no endpoint that sets Active.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::metrics::MetricsRegistry;
use crate::status::{now_ms, HealthSnapshot, StatusSnapshot};

/// Default port of the status server (and of `stoic health`/`stoic status`).
pub const DEFAULT_STATUS_PORT: u16 = 8787;
/// Longest accepted `reason` in an emergency request, in characters (ruling 8).
pub const REASON_CHARS_MAX: usize = 200;
/// Longest accepted `requested_by`, in characters.
pub const REQUESTED_BY_CHARS_MAX: usize = 64;
/// Shortest bearer token the server will accept to configure; a short token is refused
/// so that a typo'd or empty token file never becomes an easy password.
pub const TOKEN_BYTES_MIN: usize = 16;
/// Largest token file read (a token is a line, not a document).
const TOKEN_FILE_BYTES_MAX: u64 = 4096;
/// At most this many headers are parsed; more is a malformed request.
const HEADERS_MAX: usize = 32;

static DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// Where the server reads the state it serves. Implemented by the engine over its published
/// snapshots; must be cheap and must never block on the hot loop.
pub trait StatusSource: Send + Sync {
    /// A fresh, self-consistent snapshot (call [`StatusSnapshot::derive`] before returning).
    fn status(&self) -> StatusSnapshot;
    /// Appends engine-specific metrics (Prometheus text) after the registry's; optional.
    fn metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// Where the server sends the commands it accepts.
pub trait ControlSink: Send + Sync {
    /// Latches emergency ReduceOnly (`REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE`) and returns the
    /// status *after* the change. Must record `req` (who, when, why) in the WAL before
    /// returning Ok, and be idempotent within the cooldown (a repeat call while latched
    /// changes nothing but is still recorded).
    ///
    /// # Errors
    /// [`ControlError`] when the command could not be delivered or recorded; the server
    /// answers 503 and the caller must retry or use another break-glass path.
    fn emergency_reduce_only(&self, req: EmergencyRequest) -> Result<StatusSnapshot, ControlError>;

    /// Carries out `cmd` (every one tightens or contains; none loosens, contract §7.0) and
    /// returns the status after it. Same recording rules as [`Self::emergency_reduce_only`].
    /// The default knows only reduce-only, so a sink without the other commands answers 501.
    ///
    /// # Errors
    /// [`ControlError`]; [`ControlError::Unsupported`] for a command this sink lacks.
    fn command(
        &self,
        cmd: ControlCommand,
        req: EmergencyRequest,
    ) -> Result<StatusSnapshot, ControlError> {
        match cmd {
            ControlCommand::ReduceOnly => self.emergency_reduce_only(req),
            other => Err(ControlError::Unsupported(other)),
        }
    }
}

/// A control-plane command (`POST /api/v1/emergency/<path>`). Relaxing is deliberately not
/// one: nothing may loosen risk over HTTP (contract §7.0); see `docs/control_plane.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlCommand {
    /// `reduce_only`: latch emergency ReduceOnly for the cooldown (ruling 8).
    ReduceOnly,
    /// `kill`: operator asserts Kill (RiskState Kill ⇒ `KILL_RISKSTATE_KILL`, RS-005) and the
    /// engine cancels its risk-increasing orders.
    Kill,
    /// `close`: run the deterministic emergency close (contract B §3.1) now.
    EmergencyClose,
}

impl ControlCommand {
    /// Every command, in endpoint order.
    pub const ALL: [Self; 3] = [Self::ReduceOnly, Self::Kill, Self::EmergencyClose];

    /// The endpoint path.
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Self::ReduceOnly => "/api/v1/emergency/reduce_only",
            Self::Kill => "/api/v1/emergency/kill",
            Self::EmergencyClose => "/api/v1/emergency/close",
        }
    }

    /// The name used in logs and the WAL.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReduceOnly => "reduce_only",
            Self::Kill => "kill",
            Self::EmergencyClose => "close",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.path() == path)
    }
}

/// An authenticated emergency reduce-only request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyRequest {
    /// Why (≤ 200 chars), if the caller said.
    pub reason: Option<String>,
    /// Who (≤ 64 chars of `[A-Za-z0-9._@-]`), if the caller said.
    pub requested_by: Option<String>,
    /// The TCP peer the request came from.
    pub peer: SocketAddr,
    /// When the server accepted it (epoch ms).
    pub received_at_ms: i64,
}

/// Why the sink could not carry out a command.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The control ring was full or the engine is not running.
    #[error("control path unavailable: {0}")]
    Unavailable(String),
    /// The command could not be recorded durably (so it was not applied).
    #[error("could not record the command: {0}")]
    RecordFailed(String),
    /// The sink does not implement this command.
    #[error("command {} not supported by this engine", .0.as_str())]
    Unsupported(ControlCommand),
    /// The engine applied the command's record but could not carry it out (e.g. an
    /// emergency close that left exposure); the body says what remains.
    #[error("command failed: {0}")]
    Failed(String),
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; loopback by default. Port 0 picks a free port (see [`ServerHandle::local_addr`]).
    pub addr: SocketAddr,
    /// File holding the bearer token for the emergency endpoint (first line, trimmed).
    /// Read on every POST so that rotation needs no restart. `None`, unreadable, or shorter
    /// than [`TOKEN_BYTES_MIN`] ⇒ the endpoint refuses every call (503) and nothing changes.
    pub token_file: Option<PathBuf>,
    /// Concurrent connections served; excess get 503.
    pub max_connections: usize,
    /// Largest request (head + body) accepted; larger gets 413.
    pub max_request_bytes: usize,
    /// Time allowed for a whole request to arrive.
    pub request_timeout: Duration,
    /// Time allowed for each socket write.
    pub write_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], DEFAULT_STATUS_PORT)),
            token_file: None,
            max_connections: 32,
            max_request_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// The running server. Dropping it stops the accept loop (open connections finish on their
/// own, bounded by the timeouts).
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (the real port when configured with port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and joins the accept thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks in accept(); one local connection wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.local_addr, Duration::from_millis(200));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Shared {
    config: ServerConfig,
    source: Arc<dyn StatusSource>,
    sink: Arc<dyn ControlSink>,
    metrics: Arc<MetricsRegistry>,
    active: AtomicUsize,
}

/// Binds `config.addr` and serves on background threads.
///
/// # Errors
/// The bind error (address in use, permission).
pub fn start(
    config: ServerConfig,
    source: Arc<dyn StatusSource>,
    sink: Arc<dyn ControlSink>,
    metrics: Arc<MetricsRegistry>,
) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(config.addr)?;
    let local_addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared { config, source, sink, metrics, active: AtomicUsize::new(0) });
    let stop2 = Arc::clone(&stop);
    let accept_thread = std::thread::Builder::new()
        .name("status-http".into())
        .spawn(move || accept_loop(&listener, &shared, &stop2))?;
    tracing::info!(target: "stoic::status", %local_addr, "status server listening");
    Ok(ServerHandle { local_addr, stop, accept_thread: Some(accept_thread) })
}

/// Decrements the live-connection count when a connection thread ends, however it ends.
struct ConnSlot(Arc<Shared>);
impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, stop: &AtomicBool) {
    // Runs until the handle is dropped; each iteration handles exactly one accept.
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning on the error.
                tracing::warn!(target: "stoic::status", error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_write_timeout(Some(shared.config.write_timeout));
        let prev = shared.active.fetch_add(1, Ordering::SeqCst);
        let slot = ConnSlot(Arc::clone(shared));
        if prev >= shared.config.max_connections {
            // Over the limit: answer on the accept thread. The response is tiny and the
            // socket is fresh, so the write lands in the kernel buffer and cannot block long.
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let mut s = stream;
            let _ = write_response(
                &mut s,
                503,
                "Service Unavailable",
                "text/plain; charset=utf-8",
                b"too many connections\n",
                &[],
            );
            drop(slot);
            continue;
        }
        let spawned = std::thread::Builder::new().name("status-conn".into()).spawn(move || {
            let slot = slot;
            let mut stream = stream;
            handle_connection(&slot.0, &mut stream, peer);
            let _ = stream.shutdown(Shutdown::Both);
        });
        if let Err(e) = spawned {
            tracing::warn!(target: "stoic::status", error = %e, "could not spawn connection thread");
        }
    }
}

/// A parsed request: method, path (query stripped), headers we use, body.
struct Request {
    method: String,
    path: String,
    authorization: Option<Vec<u8>>,
    body: Vec<u8>,
}

enum ReadError {
    /// Client went away or timed out: nothing to answer.
    Gone,
    /// 400 with a reason.
    Bad(&'static str),
    /// 413.
    TooLarge,
}

fn read_request(stream: &mut TcpStream, cfg: &ServerConfig) -> Result<Request, ReadError> {
    let deadline = Instant::now() + cfg.request_timeout;
    let mut buf = vec![0u8; cfg.max_request_bytes];
    let mut len = 0usize;
    // Read until the head parses; bounded by the buffer size and the deadline.
    let (head_len, method, path, authorization, content_length) = loop {
        if len == buf.len() {
            return Err(ReadError::TooLarge);
        }
        let n = read_some(stream, &mut buf[len..], deadline)?;
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or_default().to_owned();
                let target = req.path.unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default().to_owned();
                let mut authorization = None;
                let mut content_length = 0usize;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("authorization") {
                        authorization = Some(h.value.to_vec());
                    } else if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value)
                            .map_err(|_| ReadError::Bad("bad Content-Length"))?;
                        content_length =
                            v.trim().parse().map_err(|_| ReadError::Bad("bad Content-Length"))?;
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(ReadError::Bad(
                            "Transfer-Encoding is not supported; send Content-Length",
                        ));
                    }
                }
                break (head_len, method, path, authorization, content_length);
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(ReadError::Bad("too many headers")),
            Err(_) => return Err(ReadError::Bad("malformed request")),
        }
    };
    let total = head_len.checked_add(content_length).ok_or(ReadError::TooLarge)?;
    if total > buf.len() {
        return Err(ReadError::TooLarge);
    }
    while len < total {
        len += read_some(stream, &mut buf[len..total], deadline)?;
    }
    Ok(Request { method, path, authorization, body: buf[head_len..total].to_vec() })
}

/// One read with the time left until `deadline`; EOF, timeout or error ⇒ `Gone`.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, ReadError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ReadError::Gone);
    }
    stream.set_read_timeout(Some(left)).map_err(|_| ReadError::Gone)?;
    match stream.read(buf) {
        Ok(0) | Err(_) => Err(ReadError::Gone),
        Ok(n) => Ok(n),
    }
}

fn handle_connection(shared: &Shared, stream: &mut TcpStream, peer: SocketAddr) {
    let req = match read_request(stream, &shared.config) {
        Ok(r) => r,
        Err(ReadError::Gone) => return,
        Err(ReadError::Bad(why)) => {
            let _ = write_response(
                stream,
                400,
                "Bad Request",
                "text/plain; charset=utf-8",
                format!("{why}\n").as_bytes(),
                &[],
            );
            return;
        }
        Err(ReadError::TooLarge) => {
            let _ = write_response(
                stream,
                413,
                "Payload Too Large",
                "text/plain; charset=utf-8",
                b"request too large\n",
                &[],
            );
            return;
        }
    };
    let resp = route(shared, &req, peer);
    let _ = write_response(
        stream,
        resp.code,
        resp.reason,
        resp.content_type,
        &resp.body,
        resp.extra_headers,
    );
}

struct Response {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    extra_headers: &'static [(&'static str, &'static str)],
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

fn json_response(code: u16, reason: &'static str, v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => Response { code, reason, content_type: JSON, body, extra_headers: &[] },
        Err(e) => text(500, "Internal Server Error", &format!("serialisation failed: {e}")),
    }
}

fn text(code: u16, reason: &'static str, msg: &str) -> Response {
    Response {
        code,
        reason,
        content_type: TEXT,
        body: format!("{msg}\n").into_bytes(),
        extra_headers: &[],
    }
}

fn error_json(code: u16, reason: &'static str, msg: &str) -> Response {
    json_response(code, reason, &serde_json::json!({"error": msg}))
}

fn method_not_allowed(allow: &'static [(&'static str, &'static str)]) -> Response {
    Response { extra_headers: allow, ..text(405, "Method Not Allowed", "method not allowed") }
}

const ALLOW_GET: &[(&str, &str)] = &[("Allow", "GET")];
const ALLOW_POST: &[(&str, &str)] = &[("Allow", "POST")];

fn route(shared: &Shared, req: &Request, peer: SocketAddr) -> Response {
    let get = req.method == "GET";
    if let Some(cmd) = ControlCommand::from_path(&req.path) {
        if req.method == "POST" {
            return emergency(shared, req, peer, cmd);
        }
        return method_not_allowed(ALLOW_POST);
    }
    match req.path.as_str() {
        "/api/v1/health" if get => {
            json_response(200, "OK", &HealthSnapshot::from_status(&shared.source.status()))
        }
        "/api/v1/status" if get => json_response(200, "OK", &shared.source.status()),
        "/api/v1/reason_text" if get => {
            json_response(200, "OK", &crate::reason_text::reason_text_json())
        }
        "/metrics" if get => {
            let mut out = String::with_capacity(16 * 1024);
            shared.metrics.render(now_ms(), &mut out);
            shared.source.metrics(&mut out);
            Response {
                code: 200,
                reason: "OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: out.into_bytes(),
                extra_headers: &[],
            }
        }
        "/" | "/index.html" if get => Response {
            code: 200,
            reason: "OK",
            content_type: "text/html; charset=utf-8",
            body: DASHBOARD_HTML.as_bytes().to_vec(),
            extra_headers: &[("Cache-Control", "no-store")],
        },
        "/api/v1/health"
        | "/api/v1/status"
        | "/api/v1/reason_text"
        | "/metrics"
        | "/"
        | "/index.html" => method_not_allowed(ALLOW_GET),
        _ => text(404, "Not Found", "not found"),
    }
}

/// Optional body of the emergency call (ruling 8). Unknown keys are refused so that a
/// typo ("reson") is not silently dropped from the audit record.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmergencyBody {
    reason: Option<String>,
    requested_by: Option<String>,
}

/// Reads the configured token: the first line of the file, trimmed.
fn load_token(cfg: &ServerConfig) -> Result<Vec<u8>, String> {
    let path = cfg.token_file.as_ref().ok_or("no token file configured")?;
    let f = std::fs::File::open(path)
        .map_err(|e| format!("token file {} unreadable: {e}", path.display()))?;
    let mut raw = Vec::new();
    f.take(TOKEN_FILE_BYTES_MAX)
        .read_to_end(&mut raw)
        .map_err(|e| format!("token file unreadable: {e}"))?;
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let token = line.trim_ascii().to_vec();
    if token.len() < TOKEN_BYTES_MIN {
        return Err(format!("token in {} is shorter than {TOKEN_BYTES_MIN} bytes", path.display()));
    }
    Ok(token)
}

/// Compares in time that depends only on the lengths, not on where the bytes differ.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

fn emergency(shared: &Shared, req: &Request, peer: SocketAddr, cmd: ControlCommand) -> Response {
    let command = cmd.as_str();
    let token = match load_token(&shared.config) {
        Ok(t) => t,
        Err(why) => {
            tracing::error!(target: "stoic::control", %peer, command, %why, "control command refused: endpoint has no usable token");
            return error_json(
                503,
                "Service Unavailable",
                &format!("emergency endpoint disabled: {why}"),
            );
        }
    };
    let presented = req
        .authorization
        .as_deref()
        .and_then(|v| v.strip_prefix(b"Bearer ".as_slice()))
        .map(<[u8]>::trim_ascii);
    let authorised = presented.is_some_and(|p| constant_time_eq(p, &token));
    if !authorised {
        tracing::warn!(target: "stoic::control", %peer, command, "control command refused: missing or wrong bearer token");
        return Response {
            extra_headers: &[("WWW-Authenticate", "Bearer")],
            ..error_json(401, "Unauthorized", "missing or wrong bearer token")
        };
    }
    let body: EmergencyBody = if req.body.iter().all(u8::is_ascii_whitespace) {
        EmergencyBody::default()
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(e) => {
                return error_json(
                    400,
                    "Bad Request",
                    &format!("body must be {{\"reason\": str, \"requested_by\": str}}: {e}"),
                )
            }
        }
    };
    if body.reason.as_ref().is_some_and(|r| r.chars().count() > REASON_CHARS_MAX) {
        return error_json(
            400,
            "Bad Request",
            &format!("reason longer than {REASON_CHARS_MAX} characters"),
        );
    }
    if let Some(who) = &body.requested_by {
        let ok = !who.is_empty()
            && who.chars().count() <= REQUESTED_BY_CHARS_MAX
            && who.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
        if !ok {
            return error_json(
                400,
                "Bad Request",
                &format!(
                    "requested_by must be 1..={REQUESTED_BY_CHARS_MAX} chars of [A-Za-z0-9._@-]"
                ),
            );
        }
    }
    let er = EmergencyRequest {
        reason: body.reason,
        requested_by: body.requested_by,
        peer,
        received_at_ms: now_ms(),
    };
    tracing::warn!(
        target: "stoic::control",
        %peer,
        requested_by = er.requested_by.as_deref().unwrap_or("-"),
        reason = er.reason.as_deref().unwrap_or("-"),
        at_ms = er.received_at_ms,
        command,
        "control command accepted"
    );
    match shared.sink.command(cmd, er) {
        Ok(status) => json_response(200, "OK", &status),
        Err(ControlError::Unsupported(_)) => {
            error_json(501, "Not Implemented", &format!("command {command} not supported"))
        }
        Err(e) => {
            tracing::error!(target: "stoic::control", %peer, command, error = %e, "control command could not be applied");
            error_json(503, "Service Unavailable", &e.to_string())
        }
    }
}

fn write_response(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abcdef0123456789", b"abcdef0123456789"));
        assert!(!constant_time_eq(b"abcdef0123456789", b"abcdef012345678"));
        assert!(!constant_time_eq(b"abcdef0123456789", b"abcdef0123456788"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
