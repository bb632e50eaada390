//! A minimal blocking Deribit JSON-RPC WebSocket client for tests, benches and demos
//! against the simulator. It is NOT the engine's trading client (that lives in `hotpath`
//! and is the only trading-capable door to a venue); it exists so that the simulator crate
//! can exercise itself without depending on `hotpath`.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket or WebSocket failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The venue answered an error.
    #[error("venue error {code}: {message}")]
    Venue {
        /// Code.
        code: i64,
        /// Message.
        message: String,
    },
    /// No reply in time.
    #[error("timeout")]
    Timeout,
}

/// A connected client.
#[derive(Debug)]
pub struct WsClient {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Notifications received while waiting for replies (bounded to `NOTES_MAX`).
    pub notes: VecDeque<Value>,
}

/// Notifications kept while waiting for replies.
pub const NOTES_MAX: usize = 100_000;

impl WsClient {
    /// Connects to `ws://addr/ws/api/v2`.
    ///
    /// # Errors
    /// Connect or handshake failure.
    pub fn connect(addr: SocketAddr) -> Result<WsClient, ClientError> {
        let stream = TcpStream::connect(addr).map_err(|e| ClientError::Transport(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (ws, _) = tungstenite::client(format!("ws://{addr}/ws/api/v2"), stream)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(WsClient { ws, next_id: 1, notes: VecDeque::new() })
    }

    /// Reads the next message (None on timeout or close).
    pub fn next_message(&mut self) -> Option<Value> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Sends a request and waits for its reply; returns `result`.
    ///
    /// # Errors
    /// Transport failure, timeout, or the venue's error.
    pub fn call(&mut self, method: &str, params: &Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::text(req.to_string()))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let m = self.next_message().ok_or(ClientError::Timeout)?;
            if m.get("id") == Some(&json!(id)) {
                if let Some(r) = m.get("result") {
                    return Ok(r.clone());
                }
                return Err(ClientError::Venue {
                    code: m["error"]["code"].as_i64().unwrap_or(0),
                    message: m["error"]["message"].as_str().unwrap_or("").to_string(),
                });
            }
            if m.get("method").is_some() && self.notes.len() < NOTES_MAX {
                self.notes.push_back(m);
            }
        }
        Err(ClientError::Timeout)
    }

    /// `public/auth` with client credentials.
    ///
    /// # Errors
    /// As `call`.
    pub fn auth(&mut self, client_id: &str, secret: &str) -> Result<Value, ClientError> {
        self.call("public/auth", &json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}))
    }
}
