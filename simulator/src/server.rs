//! Transport: one TCP listener on loopback serving HTTP (`/api/v2/...`, `/sim/...`) and
//! WebSocket (`/ws/api/v2`) on the same port.
//!
//! Threading model: thread-per-connection with blocking sockets, at most
//! `SimConfig::connections_max` at once (the venue allows 32 per IP; the 33rd gets HTTP 429).
//! A WebSocket thread reads with a short timeout (`WS_POLL`) and, between reads, drains its
//! bounded outbound queue, which the engine fills with notifications. This keeps one owner
//! per socket (tungstenite's `WebSocket` is not split) at the cost of up to `WS_POLL` of
//! notification latency and one wake-up per `WS_POLL` per idle connection; the simulator is
//! not the hot path, and this avoids any busy spinning.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::engine::{Engine, Outbound, SESSION_QUEUE_MAX};
use crate::faults::Fault;
use crate::rpc::{self, lock, Ctx, Transport, REQUEST_BYTES_MAX};

/// Poll interval of a WebSocket thread (read timeout between outbound drains).
pub const WS_POLL: Duration = Duration::from_millis(5);
/// Largest HTTP header block.
pub const HTTP_HEADER_BYTES_MAX: usize = 16 * 1024;
/// Largest WebSocket frame/message accepted at all; frames over `REQUEST_BYTES_MAX` but
/// under this get the venue's -32600 reply and the connection stays usable; beyond it the
/// connection is closed (a bound on memory per connection).
pub const WS_MESSAGE_BYTES_MAX: usize = 1 << 20;
/// Outbound messages written per poll turn before reading again (a fixed work budget so one
/// busy feed cannot starve a session's requests).
pub const OUTBOUND_PER_TURN_MAX: usize = 4_096;
/// Idle HTTP keep-alive connections are closed after this.
pub const HTTP_IDLE: Duration = Duration::from_secs(60);

/// State shared by the listener, connection threads and the tick thread.
#[derive(Debug)]
pub struct Shared {
    /// The venue.
    pub engine: Mutex<Engine>,
    /// Set on shutdown.
    pub stop: AtomicBool,
    /// Live connections.
    pub conns: AtomicUsize,
    /// Limit.
    pub conns_max: usize,
    /// Minimum heartbeat interval.
    pub heartbeat_min_s: u64,
}

/// Accept loop. Returns when `stop` is set (the handle wakes it with a connection).
pub fn serve(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let n = shared.conns.fetch_add(1, Ordering::AcqRel);
        if n >= shared.conns_max {
            shared.conns.fetch_sub(1, Ordering::AcqRel);
            let mut s = stream;
            let _ = s.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            continue;
        }
        let sh = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name("sim-conn".into()).spawn(move || {
            let peer = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
            connection(stream, &peer, &sh);
            sh.conns.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            shared.conns.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A parsed HTTP request head.
#[derive(Debug)]
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one request head; returns it and any bytes read past it.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Head, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            match req.parse(&buf[..pos + 4]) {
                Ok(httparse::Status::Complete(_)) => {}
                _ => return None,
            }
            let head = Head {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect(),
            };
            let rest = buf[pos + 4..].to_vec();
            buf.clear();
            return Some((head, rest));
        }
        if buf.len() > HTTP_HEADER_BYTES_MAX {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn respond(stream: &mut TcpStream, status: u16, body: &str, keep_alive: bool) -> bool {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let msg = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{body}", body.len());
    stream.write_all(msg.as_bytes()).is_ok() && stream.flush().is_ok()
}

fn connection(mut stream: TcpStream, peer: &str, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HTTP_IDLE));
    let mut buf = Vec::new();
    // HTTP keep-alive loop; a WebSocket upgrade leaves it for good.
    for _ in 0..1_000_000u32 {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let Some((head, rest)) = read_head(&mut stream, &mut buf) else { return };
        let path = head.target.split('?').next().unwrap_or("").to_string();
        let upgrade = head.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        if upgrade && (path == "/ws/api/v2" || path == "/ws/api/v2/") {
            websocket(stream, &head, rest, peer, shared);
            return;
        }
        // Body.
        let len: usize =
            head.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        if len > REQUEST_BYTES_MAX {
            let e = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "request entity too large"}, "testnet": false});
            respond(&mut stream, 413, &e.to_string(), false);
            return;
        }
        let mut body = rest;
        while body.len() < len {
            let mut chunk = vec![0u8; (len - body.len()).min(8192)];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        buf = body.split_off(len.min(body.len()));
        let body = String::from_utf8_lossy(&body).into_owned();
        let keep = !head.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let (status, out) = route(&head, &path, &body, peer, shared);
        if !respond(&mut stream, status, &out, keep) || !keep {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn route(head: &Head, path: &str, body: &str, peer: &str, shared: &Arc<Shared>) -> (u16, String) {
    match (head.method.as_str(), path) {
        ("POST", "/sim/fault") => match serde_json::from_str::<Fault>(body) {
            Ok(f) => {
                lock(&shared.engine).apply_fault(&f);
                (200, json!({"ok": true, "applied": f}).to_string())
            }
            Err(e) => (400, json!({"ok": false, "error": e.to_string()}).to_string()),
        },
        ("GET", "/sim/state") => (200, lock(&shared.engine).state_json().to_string()),
        ("GET" | "POST", p) if p.starts_with("/api/v2/") || p == "/api/v2" => {
            api(head, p, body, peer, shared)
        }
        _ => (404, json!({"error": "not found"}).to_string()),
    }
}

/// Decodes `%XX` and `+` in a query component.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn api(head: &Head, path: &str, body: &str, peer: &str, shared: &Arc<Shared>) -> (u16, String) {
    let sid = lock(&shared.engine).http_session_id();
    let mut ctx = Ctx::new(sid, Transport::Http, peer.to_string(), shared.heartbeat_min_s);
    if let Some(h) = head.header("authorization") {
        let res = {
            let mut e = lock(&shared.engine);
            rpc::http_auth(&mut e, h, &head.method, &head.target, body)
        };
        match res {
            Ok(a) => ctx.auth = Some(a),
            Err(err) => {
                let mut e = json!({"jsonrpc": "2.0", "id": null, "error": {"code": err.code, "message": err.message}, "testnet": false});
                if let (Some(d), Some(m)) =
                    (err.data, e.get_mut("error").and_then(Value::as_object_mut))
                {
                    m.insert("data".into(), d);
                }
                return (400, e.to_string());
            }
        }
    }
    let path_method = path.trim_start_matches("/api/v2").trim_start_matches('/').to_string();
    let text = if head.method == "GET" {
        let mut params = Map::new();
        if let Some((_, q)) = head.target.split_once('?') {
            for kv in q.split('&').filter(|s| !s.is_empty()).take(256) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                params.insert(url_decode(k), Value::String(url_decode(v)));
            }
        }
        // `channels` style array params are not used over HTTP; everything stays a string
        // and the accessors convert numbers and booleans.
        json!({"jsonrpc": "2.0", "id": null, "method": path_method, "params": params}).to_string()
    } else {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(mut m)) if !path_method.is_empty() && !m.contains_key("method") => {
                m.insert("method".into(), json!(path_method));
                Value::Object(m).to_string()
            }
            _ => body.to_string(),
        }
    };
    let out = rpc::handle_text(&shared.engine, &mut ctx, &text);
    let status = if ctx.http_status != 200 {
        ctx.http_status
    } else if ctx.last_was_error {
        400
    } else {
        200
    };
    (status, out)
}

fn websocket(mut stream: TcpStream, head: &Head, rest: Vec<u8>, peer: &str, shared: &Arc<Shared>) {
    let Some(key) = head.header("sec-websocket-key") else {
        respond(&mut stream, 400, "{\"error\":\"missing Sec-WebSocket-Key\"}", false);
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    if stream.write_all(resp.as_bytes()).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(WS_POLL));
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(WS_MESSAGE_BYTES_MAX))
        .max_frame_size(Some(WS_MESSAGE_BYTES_MAX))
        .write_buffer_size(0)
        .read_buffer_size(16 * 1024);
    let mut ws = WebSocket::from_partially_read(stream, rest, Role::Server, Some(cfg));
    let (tx, rx) = sync_channel::<Outbound>(SESSION_QUEUE_MAX);
    let sid = lock(&shared.engine).add_session(tx);
    let mut ctx = Ctx::new(sid, Transport::Ws, peer.to_string(), shared.heartbeat_min_s);
    let mut last_hb = Instant::now();
    let mut close_reason: Option<&'static str> = None;
    // Runs until the peer closes, an I/O error, a close request or shutdown.
    loop {
        if shared.stop.load(Ordering::Acquire) {
            close_reason = Some("shutdown");
            break;
        }
        match ws.read() {
            Ok(Message::Text(t)) => {
                let out = rpc::handle_text(&shared.engine, &mut ctx, t.as_str());
                if ctx.drop_reply {
                    // The order is applied; the connection dies before its reply is written.
                    break;
                }
                if ws.send(Message::text(out)).is_err() {
                    break;
                }
                if ctx.close_after {
                    close_reason = Some("closed by server");
                    // Deliver what is queued before closing.
                    drain(&mut ws, &rx);
                    break;
                }
            }
            Ok(Message::Binary(b)) => {
                let out = match std::str::from_utf8(&b) {
                    Ok(t) => rpc::handle_text(&shared.engine, &mut ctx, t),
                    Err(_) => rpc::handle_text(&shared.engine, &mut ctx, "\u{0}"),
                };
                if ctx.drop_reply {
                    break;
                }
                if ws.send(Message::text(out)).is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            // tungstenite queues the pong; push it out now rather than with the next write.
            Ok(Message::Ping(_)) => {
                let _ = ws.flush();
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        match drain(&mut ws, &rx) {
            Drain::Ok => {}
            Drain::Close(r) => {
                close_reason = Some(r);
                break;
            }
            Drain::Dead => break,
        }
        if let Some(iv) = ctx.heartbeat_s {
            if last_hb.elapsed() >= Duration::from_secs(iv) {
                last_hb = Instant::now();
                if !ctx.test_seen {
                    // The previous test_request went unanswered: the venue drops the connection.
                    close_reason = Some("heartbeat timeout");
                    break;
                }
                ctx.test_seen = false;
                let hb = json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}).to_string();
                if ws.send(Message::text(hb)).is_err() {
                    break;
                }
            }
        } else {
            last_hb = Instant::now();
        }
    }
    if let Some(r) = close_reason {
        let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: r.into(),
        }));
        let _ = ws.flush();
    }
    let _ = ws.get_mut().shutdown(Shutdown::Both);
    let mut e = lock(&shared.engine);
    e.remove_session(sid, !ctx.skip_cod);
    let now = e.now_ms();
    e.flush(now);
}

enum Drain {
    Ok,
    Close(&'static str),
    Dead,
}

fn drain(ws: &mut WebSocket<TcpStream>, rx: &std::sync::mpsc::Receiver<Outbound>) -> Drain {
    let mut wrote = false;
    for _ in 0..OUTBOUND_PER_TURN_MAX {
        match rx.try_recv() {
            Ok(Outbound::Text(t)) => {
                if ws.write(Message::text(t.to_string())).is_err() {
                    return Drain::Dead;
                }
                wrote = true;
            }
            Ok(Outbound::Close(r)) => {
                let _ = ws.flush();
                return Drain::Close(r);
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    if wrote && ws.flush().is_err() {
        return Drain::Dead;
    }
    Drain::Ok
}

/// Address helper for the handle.
pub fn local_addr(l: &TcpListener) -> std::io::Result<SocketAddr> {
    l.local_addr()
}
