//! Test helpers: start a simulator, a real WebSocket client (tungstenite) and a raw HTTP/1.1
//! client over loopback.
#![allow(dead_code, clippy::needless_pass_by_value)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use simulator::{SimConfig, SimHandle, Simulator};
use tungstenite::{Message, WebSocket};

pub const DEV_TRADE: (&str, &str) = ("sim-dev-trade", "sim-dev-trade-secret-0001");
pub const DEV_READ: (&str, &str) = ("sim-dev-read", "sim-dev-read-secret-0002");
pub const PROBE_TRADE: (&str, &str) = ("sim-probe-trade", "sim-probe-trade-secret-0003");
pub const PROBE_NONE: (&str, &str) = ("sim-probe-none", "sim-probe-none-secret-0004");
pub const BENCH: (&str, &str) = ("sim-bench", "sim-bench-secret-0005");

pub struct Sim {
    pub handle: SimHandle,
    pub dir: tempfile::TempDir,
}

pub fn start_with(f: impl FnOnce(&mut SimConfig)) -> Sim {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = SimConfig {
        journal: dir.path().join("journal.jsonl"),
        tick_ms: 20,
        heartbeat_min_s: 1,
        ..SimConfig::default()
    };
    f(&mut cfg);
    let handle = Simulator::start(cfg).expect("sim starts");
    Sim { handle, dir }
}

pub fn start() -> Sim {
    start_with(|_| {})
}

pub struct Client {
    pub ws: WebSocket<TcpStream>,
    next_id: u64,
    pub notes: VecDeque<Value>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (ws, _) =
            tungstenite::client(format!("ws://{addr}/ws/api/v2"), stream).expect("ws handshake");
        Client { ws, next_id: 1, notes: VecDeque::new() }
    }

    pub fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_string())).expect("send");
    }

    /// Next message of any kind (None on timeout/close).
    pub fn next(&mut self) -> Option<Value> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Waits for the reply with `id`, keeping notifications.
    pub fn reply(&mut self, id: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let m = self.next().expect("connection open while waiting for a reply");
            if m.get("id") == Some(id) && m.get("method").is_none() {
                return m;
            }
            if m.get("method").is_some() {
                self.notes.push_back(m);
            }
        }
        panic!("no reply for {id}");
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_text(&req.to_string());
        self.reply(&json!(id))
    }

    /// Calls and returns `result`, panicking on an error reply.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params.clone());
        match r.get("result") {
            Some(v) => v.clone(),
            None => panic!("{method} {params} failed: {r}"),
        }
    }

    /// Calls and returns the error code (panics on success).
    pub fn err(&mut self, method: &str, params: Value) -> i64 {
        let r = self.call(method, params.clone());
        r["error"]["code"].as_i64().unwrap_or_else(|| panic!("{method} {params} should fail: {r}"))
    }

    pub fn auth(&mut self, key: (&str, &str)) -> Value {
        self.ok(
            "public/auth",
            json!({"grant_type": "client_credentials", "client_id": key.0, "client_secret": key.1}),
        )
    }

    /// Next notification on a channel (from the backlog first).
    pub fn note(&mut self, channel_prefix: &str, timeout: Duration) -> Option<Value> {
        if let Some(pos) = self.notes.iter().position(|n| {
            n["params"]["channel"].as_str().is_some_and(|c| c.starts_with(channel_prefix))
        }) {
            return self.notes.remove(pos);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let m = self.next()?;
            if m["params"]["channel"].as_str().is_some_and(|c| c.starts_with(channel_prefix)) {
                return Some(m);
            }
            if m.get("method").is_some() {
                self.notes.push_back(m);
            }
        }
        None
    }
}

/// One HTTP/1.1 request; returns (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    (status, body)
}

/// A BTC option near the money with a two-sided book: (name, best bid, best ask, tick above 0.005).
pub fn pick_option(c: &mut Client) -> (String, f64, f64) {
    let insts = c.ok("public/get_instruments", json!({"currency": "BTC", "kind": "option"}));
    for i in insts.as_array().unwrap() {
        let name = i["instrument_name"].as_str().unwrap().to_string();
        if !name.ends_with("-C") {
            continue;
        }
        let ob = c.ok("public/get_order_book", json!({"instrument_name": name}));
        let (b, a) = (
            ob["best_bid_price"].as_f64().unwrap_or(0.0),
            ob["best_ask_price"].as_f64().unwrap_or(0.0),
        );
        if b > 0.006 && a > b {
            return (name, b, a);
        }
    }
    panic!("no two-sided option book");
}
