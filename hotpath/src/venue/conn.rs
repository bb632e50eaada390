//! One WebSocket JSON-RPC session with the venue: a non-blocking socket polled with mio,
//! tungstenite for the WebSocket codec, rustls (webpki roots) for `wss://`.
//!
//! The connection owns the session-level protocol so callers cannot get it wrong:
//! request ids and the bounded in-flight table, client-side credits and the rate-limit
//! breaker, answering heartbeat `test_request`s with `public/test`, and the auth token.
//! It does not reconnect by itself; the owner drives [`super::backoff::Backoff`].
//!
//! Nothing in this type places orders: trading request builders live in
//! `crate::dispatch`, whose client is the only one allowed to send them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message as WsMessage, WebSocket};

use super::auth::{self, AuthGrant, Credentials, TokenState};
use super::credits::{CreditLimiter, RateLimitBreaker};
use super::error::VenueErrorCode;
use super::messages::{DecodeError, Decoder, HeartbeatKind, Message, RequestId, ResultPayload};
use super::methods;
use super::request::RequestBuf;
use crate::clock::Clock;

/// Bytes of the reused outgoing payload buffer (every request the engine sends fits).
const OUT_PAYLOAD_BYTES: usize = 4096;
/// Requests awaiting a reply, at most (ids map to slots `id % IN_FLIGHT_MAX`).
pub const IN_FLIGHT_MAX: usize = 256;
/// Largest inbound message accepted (Deribit's instrument lists run to a few MB).
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest single mio wait: bounds how long a missed edge (rustls may leave bytes in the
/// kernel buffer after WouldBlock) can delay a read. This is a park, not a spin.
const POLL_SLICE: Duration = Duration::from_millis(50);
const SOCKET: Token = Token(0);

/// Why a connection operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The URL is not `ws://host[:port][/path]` or `wss://...`.
    #[error("bad venue URL")]
    BadUrl,
    /// Socket-level failure.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// TLS setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The WebSocket upgrade failed.
    #[error("websocket handshake: {0}")]
    Handshake(String),
    /// WebSocket protocol error.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The venue closed the connection.
    #[error("connection closed")]
    Closed,
    /// No reply within the deadline.
    #[error("timed out")]
    Timeout,
    /// The in-flight table has no free slot for the next id.
    #[error("too many requests in flight")]
    InFlightFull,
    /// Sending now would exceed the venue's credit limit; retry after `wait_ms`.
    #[error("client-side rate limit: wait {wait_ms} ms")]
    Throttled {
        /// How long until credits suffice.
        wait_ms: u64,
    },
    /// The rate-limit breaker is open (a 10028/429 was seen recently).
    #[error("rate-limit breaker open")]
    BreakerOpen,
    /// The venue answered with an error.
    #[error("venue error {0:?}")]
    Venue(VenueErrorCode),
    /// A reply did not have the expected shape.
    #[error("unexpected reply")]
    UnexpectedReply,
    /// A frame did not decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// A trading (matching-engine) method was sent through the public API.
    #[error("trading methods are only available to the dispatch module")]
    TradingMethodRefused,
    /// A private call was attempted without a token.
    #[error("not authenticated")]
    NotAuthenticated,
    /// Nothing arrived for longer than the heartbeat allows (a half-open socket or a venue
    /// that stopped talking): the session is declared dead so the owner reconnects and
    /// reconciles, instead of waiting on a socket that may never speak again.
    #[error("session silent for {silent_ms} ms (heartbeat lost)")]
    HeartbeatLost {
        /// How long nothing arrived.
        silent_ms: u64,
    },
}

/// Heartbeat intervals that may pass without a frame before the session is declared dead.
pub const HEARTBEAT_MISSES_MAX: u32 = 3;

/// A parsed venue URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueUrl {
    /// True for `wss://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path (starts with `/`).
    pub path: String,
}

impl VenueUrl {
    /// Parses `ws://host[:port][/path]` / `wss://...`.
    ///
    /// # Errors
    /// [`ConnError::BadUrl`].
    pub fn parse(url: &str) -> Result<Self, ConnError> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(ConnError::BadUrl);
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| ConnError::BadUrl)?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('@') {
            return Err(ConnError::BadUrl);
        }
        Ok(Self { tls, host: host.to_owned(), port, path: path.to_owned() })
    }

    /// Text form.
    #[must_use]
    pub fn to_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// The socket under the WebSocket: plain for loopback, rustls for the real venue.
#[derive(Debug)]
enum Stream {
    Plain(mio::net::TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, mio::net::TcpStream>>),
}

impl Stream {
    fn tcp(&mut self) -> &mut mio::net::TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &mut s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// TCP connect + WebSocket/TLS handshake deadline.
    pub connect_timeout: Duration,
    /// Largest inbound message.
    pub message_bytes_max: usize,
}

impl ConnConfig {
    /// Defaults for `url`: 10 s connect, [`MESSAGE_BYTES_MAX`].
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            connect_timeout: Duration::from_secs(10),
            message_bytes_max: MESSAGE_BYTES_MAX,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u64,
    method: &'static str,
    sent_ms: i64,
}

/// One inbound message as handed to the caller.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The decoded message.
    pub msg: &'a Message<'a>,
    /// For replies: the method of the request it answers (from the in-flight table).
    pub method: Option<&'static str>,
    /// The raw frame text, as received.
    pub raw: &'a str,
    /// Receive time, ns since the Unix epoch.
    pub recv_ns: u128,
}

/// What a frame means for the session, extracted while the decoded message is borrowed.
enum After {
    Nothing,
    AnswerTestRequest,
    Token(TokenState),
    Breaker(VenueErrorCode),
}

/// Counters for status and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnStats {
    /// Frames received (text or binary).
    pub frames_in: u64,
    /// Requests sent.
    pub requests_out: u64,
    /// Frames that failed to decode.
    pub decode_errors: u64,
    /// `test_request`s answered.
    pub test_requests_answered: u64,
    /// Heartbeats seen.
    pub heartbeats: u64,
    /// Sessions declared dead because nothing arrived within the heartbeat limit.
    pub heartbeat_losses: u64,
    /// Replies whose id was not in flight.
    pub uncorrelated_replies: u64,
}

/// A live WebSocket JSON-RPC session.
pub struct Connection {
    ws: WebSocket<Stream>,
    poll: Poll,
    events: Events,
    decoder: Decoder,
    scratch: Vec<u8>,
    req: RequestBuf,
    /// Outgoing payloads are split off this shared buffer (see `write_current`).
    out_payload: bytes::BytesMut,
    next_id: u64,
    in_flight: Box<[Option<InFlight>; IN_FLIGHT_MAX]>,
    in_flight_len: usize,
    limiter: CreditLimiter,
    breaker: RateLimitBreaker,
    /// Requests the containment credit reserve paid for: they pass an open breaker and the
    /// limiter (B §3.3, emergency close has top priority). Granted only by `crate::dispatch`.
    reserved_passes: u32,
    token: Option<TokenState>,
    clock: Arc<dyn Clock>,
    stats: ConnStats,
    closed: bool,
    raw_tap: Option<RawTap>,
    /// When the last frame was read, and how long silence may last (`None`: no heartbeat
    /// was asked for, so silence is not an error).
    last_frame_at: Instant,
    silence_limit: Option<Duration>,
}

/// Sees every inbound text frame before decoding (recording): `(frame, recv_ns)`.
pub type RawTap = Box<dyn FnMut(&str, u128) + Send>;

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("in_flight", &self.in_flight_len)
            .field("authenticated", &self.token.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    // The ring provider supports the default protocol versions; failure would be a
    // build-configuration bug, and falling back to an empty config makes the handshake
    // fail loudly instead of panicking here.
    Arc::new(cfg.unwrap_or_else(|_| {
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    }))
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Connection {
    /// Connects, upgrades to WebSocket (TLS for `wss://`) and returns the session.
    ///
    /// # Errors
    /// [`ConnError`] for a bad URL, unreachable host, TLS or handshake failure, timeout.
    pub fn connect(cfg: &ConnConfig, clock: Arc<dyn Clock>) -> Result<Self, ConnError> {
        let url = VenueUrl::parse(&cfg.url)?;
        let deadline = Instant::now() + cfg.connect_timeout;
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
        let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no address");
        let mut std_stream = None;
        for a in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            match std::net::TcpStream::connect_timeout(&a, left.max(Duration::from_millis(1))) {
                Ok(s) => {
                    std_stream = Some(s);
                    break;
                }
                Err(e) => last_err = e,
            }
        }
        let std_stream = std_stream.ok_or(last_err)?;
        std_stream.set_nodelay(true)?;
        std_stream.set_nonblocking(true)?;
        let tcp = mio::net::TcpStream::from_std(std_stream);
        let mut stream = if url.tls {
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|_| ConnError::BadUrl)?;
            let conn = rustls::ClientConnection::new(tls_config(), name)
                .map_err(|e| ConnError::Tls(e.to_string()))?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        let poll = Poll::new()?;
        poll.registry().register(stream.tcp(), SOCKET, Interest::READABLE | Interest::WRITABLE)?;
        let mut events = Events::with_capacity(16);
        let ws_cfg = WebSocketConfig::default()
            .max_message_size(Some(cfg.message_bytes_max))
            .max_frame_size(Some(cfg.message_bytes_max));
        let mut poll = poll;
        let mut hs = tungstenite::client::client_with_config(url.to_url(), stream, Some(ws_cfg));
        let ws = loop {
            match hs {
                Ok((ws, _resp)) => break ws,
                Err(HandshakeError::Interrupted(mid)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ConnError::Timeout);
                    }
                    poll.poll(&mut events, Some(left.min(POLL_SLICE)))?;
                    hs = mid.handshake();
                }
                Err(HandshakeError::Failure(e)) => return Err(ConnError::Handshake(e.to_string())),
            }
        };
        let now = clock.now_ms();
        Ok(Self {
            ws,
            poll,
            events,
            decoder: Decoder::new(),
            scratch: Vec::with_capacity(64 * 1024),
            req: RequestBuf::default(),
            out_payload: bytes::BytesMut::with_capacity(OUT_PAYLOAD_BYTES),
            next_id: 1,
            in_flight: Box::new([None; IN_FLIGHT_MAX]),
            in_flight_len: 0,
            limiter: CreditLimiter::with_defaults(now),
            breaker: RateLimitBreaker::new(),
            reserved_passes: 0,
            token: None,
            clock,
            stats: ConnStats::default(),
            closed: false,
            raw_tap: None,
            last_frame_at: Instant::now(),
            silence_limit: None,
        })
    }

    /// Connects with the reconnect policy: on failure waits `backoff`'s next jittered delay
    /// (through `sleep`, so tests and the runtime choose how to wait) and tries again, at
    /// most `attempts_max` times. Returns the last error when all attempts fail.
    ///
    /// # Errors
    /// The last [`ConnError`] after `attempts_max` failures.
    pub fn connect_with_backoff(
        cfg: &ConnConfig,
        clock: &Arc<dyn Clock>,
        backoff: &mut super::backoff::Backoff,
        rng: &mut super::backoff::JitterRng,
        attempts_max: u32,
        sleep: &mut dyn FnMut(Duration),
    ) -> Result<Self, ConnError> {
        let mut last = ConnError::Timeout;
        for attempt in 0..attempts_max.max(1) {
            if attempt > 0 {
                sleep(Duration::from_millis(backoff.next_delay_ms(rng.next_u64())));
            }
            match Self::connect(cfg, Arc::clone(clock)) {
                Ok(c) => {
                    backoff.on_connected(clock.now_ms());
                    return Ok(c);
                }
                // A malformed URL will not heal by waiting.
                Err(ConnError::BadUrl) => return Err(ConnError::BadUrl),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Installs (or removes) a tap that sees every inbound text frame, decodable or not,
    /// before the session handles it.
    pub fn set_raw_tap(&mut self, tap: Option<RawTap>) {
        self.raw_tap = tap;
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> ConnStats {
        self.stats
    }

    /// The rate-limit breaker (the mode logic reads its state and severity).
    pub fn breaker(&mut self) -> &mut RateLimitBreaker {
        &mut self.breaker
    }

    /// Lets the next `passes` requests through an open breaker without charging the limiter
    /// (the caller drew them from the containment reserve). `0` revokes what is left.
    pub(crate) fn set_reserved_passes(&mut self, passes: u32) {
        self.reserved_passes = passes;
    }

    /// The session clock's time (ms).
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The credit limiter (e.g. to apply the account's reported limits).
    pub fn limiter(&mut self) -> &mut CreditLimiter {
        &mut self.limiter
    }

    /// The current token, when authenticated.
    #[must_use]
    pub const fn token(&self) -> Option<&TokenState> {
        self.token.as_ref()
    }

    /// Requests awaiting a reply.
    #[must_use]
    pub const fn in_flight(&self) -> usize {
        self.in_flight_len
    }

    /// Age of the oldest unanswered request, ms (0 when none).
    #[must_use]
    pub fn oldest_in_flight_age_ms(&self) -> i64 {
        let now = self.clock.now_ms();
        self.in_flight.iter().flatten().map(|f| now.saturating_sub(f.sent_ms)).max().unwrap_or(0)
    }

    /// Forgets requests unanswered for longer than `age_ms` (their replies, if they ever
    /// come, count as uncorrelated) and returns how many were dropped. The caller decides
    /// what an unanswered order request means (reconcile by label, never resend blindly).
    pub fn expire_in_flight(&mut self, age_ms: i64) -> usize {
        let now = self.clock.now_ms();
        let mut n = 0;
        for slot in self.in_flight.iter_mut() {
            if slot.is_some_and(|f| now.saturating_sub(f.sent_ms) > age_ms) {
                *slot = None;
                n += 1;
            }
        }
        self.in_flight_len -= n;
        n
    }

    /// True once the venue closed the socket or a fatal error occurred.
    #[must_use]
    pub const fn is_closed(&self) -> bool {
        self.closed
    }

    /// Builds and sends one request. `fill` writes the params (the envelope is done here).
    /// Checks, in order: trading refusal, breaker, in-flight slot, credits.
    ///
    /// Matching-engine methods (orders, edits, cancels) are refused here: only the
    /// crate's dispatch module may send them, through its trading client.
    ///
    /// # Errors
    /// [`ConnError::TradingMethodRefused`], [`ConnError::BreakerOpen`],
    /// [`ConnError::InFlightFull`], [`ConnError::Throttled`], or a socket error.
    pub fn send_request(
        &mut self,
        method: &'static str,
        fill: impl FnOnce(&mut RequestBuf),
    ) -> Result<u64, ConnError> {
        if methods::credit_pool(method) == methods::CreditPool::MatchingEngine {
            return Err(ConnError::TradingMethodRefused);
        }
        self.send_unchecked(method, fill)
    }

    /// [`Self::send_request`] without the trading refusal. The token can only be made
    /// inside `crate::dispatch::client`, so no other module can reach this even though
    /// Rust visibility alone could not express "dispatch only" from here.
    pub(crate) fn send_any(
        &mut self,
        _token: crate::dispatch::client::TradingToken,
        method: &'static str,
        fill: impl FnOnce(&mut RequestBuf),
    ) -> Result<u64, ConnError> {
        self.send_unchecked(method, fill)
    }

    fn send_unchecked(
        &mut self,
        method: &'static str,
        fill: impl FnOnce(&mut RequestBuf),
    ) -> Result<u64, ConnError> {
        let now = self.clock.now_ms();
        let pass = breaker_pass(method, self.breaker.allows_requests(now), self.reserved_passes);
        if pass == BreakerPass::Refused {
            return Err(ConnError::BreakerOpen);
        }
        let reserved = pass == BreakerPass::Reserved;
        let id = self.next_id;
        let slot = usize::try_from(id % IN_FLIGHT_MAX as u64).unwrap_or(0);
        if self.in_flight[slot].is_some() {
            return Err(ConnError::InFlightFull);
        }
        if reserved {
            self.reserved_passes -= 1;
        } else {
            self.limiter
                .try_acquire(method, now)
                .map_err(|wait_ms| ConnError::Throttled { wait_ms })?;
        }
        self.req.begin(id, method);
        fill(&mut self.req);
        self.req.finish();
        self.write_current()?;
        self.next_id += 1;
        self.in_flight[slot] = Some(InFlight { id, method, sent_ms: now });
        self.in_flight_len += 1;
        self.stats.requests_out += 1;
        Ok(id)
    }

    fn write_current(&mut self) -> Result<(), ConnError> {
        // tungstenite owns outgoing payloads (`Bytes`). Each request is copied into the free
        // tail of one shared buffer and split off it; tungstenite drops its handle once the
        // frame is in its write buffer, so when the tail runs out `reserve` finds the buffer
        // unique again and reclaims it from the start: no allocation per request (the first
        // split makes the buffer shared, once; a frame still held elsewhere, as after a full
        // write buffer, makes `reserve` allocate a fresh one).
        let req = self.req.as_bytes();
        self.out_payload.reserve(req.len());
        self.out_payload.extend_from_slice(req);
        let payload = self.out_payload.split().freeze();
        let text = match tungstenite::Utf8Bytes::try_from(payload) {
            Ok(t) => t,
            Err(_) => tungstenite::Utf8Bytes::from(String::from_utf8_lossy(req).into_owned()),
        };
        let sent = self.ws.send(WsMessage::Text(text));
        match sent {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                // Queued in tungstenite's write buffer; the next poll flushes it.
                Ok(())
            }
            Err(e) => Err(self.fatal(e)),
        }
    }

    fn fatal(&mut self, e: tungstenite::Error) -> ConnError {
        self.closed = true;
        match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                ConnError::Closed
            }
            tungstenite::Error::Io(e) => ConnError::Io(e),
            other => ConnError::WebSocket(other.to_string()),
        }
    }

    /// Handles every frame already buffered; when there was none, parks up to `timeout`
    /// (at most 50 ms per call, so callers' own deadlines stay responsive) and handles
    /// what arrived. Session duties (heartbeats, token, breaker) run around `handler`.
    /// Returns frames handled.
    ///
    /// # Errors
    /// [`ConnError::Closed`] or a socket/WebSocket error (the session is then dead).
    pub fn poll(
        &mut self,
        timeout: Duration,
        handler: &mut dyn FnMut(Incoming<'_>),
    ) -> Result<usize, ConnError> {
        if self.closed {
            return Err(ConnError::Closed);
        }
        let mut handled = self.drain(handler)?;
        if handled == 0 {
            self.poll.poll(&mut self.events, Some(timeout.min(POLL_SLICE)))?;
            handled = self.drain(handler)?;
        }
        if handled == 0 {
            self.check_silence()?;
        }
        Ok(handled)
    }

    /// Declares the session dead after [`Self::expect_frames_within`] passed with no frame.
    fn check_silence(&mut self) -> Result<(), ConnError> {
        let Some(limit) = self.silence_limit else { return Ok(()) };
        let silent = self.last_frame_at.elapsed();
        if silent <= limit {
            return Ok(());
        }
        self.closed = true;
        self.stats.heartbeat_losses += 1;
        Err(ConnError::HeartbeatLost {
            silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// From now on, a [`Self::poll`] that finds no frame after `limit` without one fails the
    /// session with [`ConnError::HeartbeatLost`]. `set_heartbeat` arms it at
    /// [`HEARTBEAT_MISSES_MAX`] intervals (the venue sends a heartbeat or a `test_request`
    /// every interval).
    pub fn expect_frames_within(&mut self, limit: Duration) {
        self.last_frame_at = Instant::now();
        self.silence_limit = Some(limit);
    }

    fn drain(&mut self, handler: &mut dyn FnMut(Incoming<'_>)) -> Result<usize, ConnError> {
        match self.ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(self.fatal(e)),
        }
        let mut n = 0;
        loop {
            let frame = match self.ws.read() {
                Ok(f) => f,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(n)
                }
                Err(e) => return Err(self.fatal(e)),
            };
            let recv_ns = now_ns();
            let text = match &frame {
                WsMessage::Text(t) => t.as_str(),
                WsMessage::Binary(b) => match std::str::from_utf8(b) {
                    Ok(s) => s,
                    Err(_) => {
                        self.stats.decode_errors += 1;
                        continue;
                    }
                },
                WsMessage::Close(_) => {
                    self.closed = true;
                    return Err(ConnError::Closed);
                }
                // tungstenite answers pings itself.
                _ => continue,
            };
            self.stats.frames_in += 1;
            self.last_frame_at = Instant::now();
            n += 1;
            if let Some(tap) = self.raw_tap.as_mut() {
                tap(text, recv_ns);
            }
            let after = self.handle_frame(text, recv_ns, handler);
            self.apply_after(after)?;
        }
    }

    fn handle_frame(
        &mut self,
        text: &str,
        recv_ns: u128,
        handler: &mut dyn FnMut(Incoming<'_>),
    ) -> After {
        let now = self.clock.now_ms();
        self.scratch.clear();
        self.scratch.extend_from_slice(text.as_bytes());
        let Ok(msg) = self.decoder.decode(&mut self.scratch) else {
            self.stats.decode_errors += 1;
            return After::Nothing;
        };
        let id = match &msg {
            Message::Response(r) => r.id,
            Message::Error(e) => e.id,
            _ => None,
        };
        let method = match id {
            Some(RequestId::Num(id)) => {
                let slot = usize::try_from(id % IN_FLIGHT_MAX as u64).unwrap_or(0);
                match self.in_flight[slot] {
                    Some(f) if f.id == id => {
                        self.in_flight[slot] = None;
                        self.in_flight_len -= 1;
                        Some(f.method)
                    }
                    _ => {
                        self.stats.uncorrelated_replies += 1;
                        None
                    }
                }
            }
            _ => None,
        };
        let after = match &msg {
            Message::Heartbeat(HeartbeatKind::TestRequest) => After::AnswerTestRequest,
            Message::Heartbeat(HeartbeatKind::Heartbeat) => {
                self.stats.heartbeats += 1;
                After::Nothing
            }
            Message::Response(r) => match (&r.result, method) {
                (ResultPayload::Auth(a), Some(methods::AUTH)) => {
                    After::Token(TokenState::new(a, now))
                }
                _ => After::Nothing,
            },
            Message::Error(e) => After::Breaker(e.code),
            _ => After::Nothing,
        };
        if matches!(msg, Message::Response(_)) {
            self.breaker.on_success(now);
        }
        handler(Incoming { msg: &msg, method, raw: text, recv_ns });
        after
    }

    fn apply_after(&mut self, after: After) -> Result<(), ConnError> {
        match after {
            After::Nothing => Ok(()),
            After::Token(t) => {
                self.token = Some(t);
                Ok(())
            }
            After::Breaker(code) => {
                self.breaker.on_venue_error(code, self.clock.now_ms());
                Ok(())
            }
            After::AnswerTestRequest => {
                // Not answering closes the session (and fires cancel-on-disconnect), so
                // this bypasses the client-side credit check; it still uses an id slot.
                let id = self.next_id;
                self.next_id += 1;
                let slot = usize::try_from(id % IN_FLIGHT_MAX as u64).unwrap_or(0);
                if self.in_flight[slot].is_none() {
                    let sent_ms = self.clock.now_ms();
                    self.in_flight[slot] = Some(InFlight { id, method: methods::TEST, sent_ms });
                    self.in_flight_len += 1;
                }
                self.req.begin(id, methods::TEST);
                self.req.finish();
                self.write_current()?;
                self.stats.test_requests_answered += 1;
                self.stats.requests_out += 1;
                Ok(())
            }
        }
    }

    /// Sends a request and waits for its reply; other traffic meanwhile goes to `other`.
    /// `map` turns the reply into the caller's value; a venue error becomes
    /// [`ConnError::Venue`].
    ///
    /// # Errors
    /// Whatever sending fails with, [`ConnError::Timeout`], [`ConnError::Venue`], or the
    /// error `map` returns.
    pub fn call<T>(
        &mut self,
        method: &'static str,
        fill: impl FnOnce(&mut RequestBuf),
        timeout: Duration,
        mut map: impl FnMut(&Message<'_>) -> Result<T, ConnError>,
        other: &mut dyn FnMut(Incoming<'_>),
    ) -> Result<T, ConnError> {
        let id = self.send_request(method, fill)?;
        let deadline = Instant::now() + timeout;
        let mut out: Option<Result<T, ConnError>> = None;
        while out.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnError::Timeout);
            }
            self.poll(left, &mut |inc: Incoming<'_>| {
                let mine = match inc.msg {
                    Message::Response(r) => r.id == Some(RequestId::Num(id)),
                    Message::Error(e) => e.id == Some(RequestId::Num(id)),
                    _ => false,
                };
                if mine && out.is_none() {
                    out = Some(match inc.msg {
                        Message::Error(e) => Err(ConnError::Venue(e.code)),
                        m => map(m),
                    });
                } else {
                    other(inc);
                }
            })?;
        }
        out.unwrap_or(Err(ConnError::Timeout))
    }

    /// Authenticates the socket (connection-scoped unless `scope` says otherwise).
    ///
    /// # Errors
    /// As [`Self::call`]; [`ConnError::UnexpectedReply`] if the reply is not an auth
    /// result.
    pub fn authenticate(
        &mut self,
        creds: &Credentials,
        grant: AuthGrant,
        scope: Option<&str>,
        timeout: Duration,
    ) -> Result<(), ConnError> {
        let now_ms = self.clock.now_ms();
        let nonce = auth::make_nonce(now_ns(), self.next_id);
        self.call(
            methods::AUTH,
            |b| auth::write_auth_params(b, creds, grant, now_ms, &nonce, scope),
            timeout,
            |m| match m {
                Message::Response(r) if matches!(r.result, ResultPayload::Auth(_)) => Ok(()),
                _ => Err(ConnError::UnexpectedReply),
            },
            &mut |_| {},
        )
    }

    /// Refreshes the token when it is due; returns whether a refresh was done.
    ///
    /// # Errors
    /// As [`Self::call`]; [`ConnError::NotAuthenticated`] without a token.
    pub fn refresh_if_due(&mut self, timeout: Duration) -> Result<bool, ConnError> {
        let Some(token) = &self.token else { return Err(ConnError::NotAuthenticated) };
        if !token.needs_refresh(self.clock.now_ms()) {
            return Ok(false);
        }
        let refresh = auth::Secret::new(token.refresh_token.expose().to_owned());
        self.call(
            methods::AUTH,
            |b| auth::write_refresh_params(b, &refresh),
            timeout,
            |m| match m {
                Message::Response(r) if matches!(r.result, ResultPayload::Auth(_)) => Ok(()),
                _ => Err(ConnError::UnexpectedReply),
            },
            &mut |_| {},
        )?;
        Ok(true)
    }

    /// `public/set_heartbeat` (seconds, venue minimum 10).
    ///
    /// # Errors
    /// As [`Self::call`].
    pub fn set_heartbeat(&mut self, interval_s: u32, timeout: Duration) -> Result<(), ConnError> {
        let interval_s = interval_s.max(10);
        self.call(
            methods::SET_HEARTBEAT,
            |b| {
                b.int("interval", i64::from(interval_s));
            },
            timeout,
            expect_ok,
            &mut |_| {},
        )?;
        self.expect_frames_within(Duration::from_secs(u64::from(
            interval_s * HEARTBEAT_MISSES_MAX,
        )));
        Ok(())
    }

    /// Subscribes (`private/subscribe` when authenticated, else `public/subscribe`) and
    /// returns how many of `channels` the venue confirmed; a channel missing from the
    /// reply was NOT subscribed (§9.1).
    ///
    /// # Errors
    /// As [`Self::call`].
    pub fn subscribe(
        &mut self,
        channels: &[&str],
        timeout: Duration,
        other: &mut dyn FnMut(Incoming<'_>),
    ) -> Result<usize, ConnError> {
        let method = if self.token.is_some() {
            methods::PRIVATE_SUBSCRIBE
        } else {
            methods::PUBLIC_SUBSCRIBE
        };
        self.call(
            method,
            |b| {
                b.str_array("channels", channels);
            },
            timeout,
            |m| match m {
                Message::Response(r) => match &r.result {
                    ResultPayload::Channels(c) => {
                        Ok(channels.iter().filter(|ch| c.contains(ch)).count())
                    }
                    ResultPayload::EmptyList => Ok(0),
                    _ => Err(ConnError::UnexpectedReply),
                },
                _ => Err(ConnError::UnexpectedReply),
            },
            other,
        )
    }

    /// `private/enable_cancel_on_disconnect` with connection scope: the trading
    /// connection's orders die with it.
    ///
    /// # Errors
    /// As [`Self::call`]; [`ConnError::NotAuthenticated`] without a token.
    pub fn enable_cancel_on_disconnect(&mut self, timeout: Duration) -> Result<(), ConnError> {
        if self.token.is_none() {
            return Err(ConnError::NotAuthenticated);
        }
        self.call(
            methods::ENABLE_COD,
            |b| {
                b.str("scope", "connection");
            },
            timeout,
            expect_ok,
            &mut |_| {},
        )
    }

    /// Closes the WebSocket politely (best effort).
    pub fn close(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        self.closed = true;
    }
}

fn expect_ok(m: &Message<'_>) -> Result<(), ConnError> {
    match m {
        Message::Response(r) if matches!(r.result, ResultPayload::Ok) => Ok(()),
        _ => Err(ConnError::UnexpectedReply),
    }
}

/// How a request gets past the rate-limit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerPass {
    /// The breaker is closed: ordinary credit accounting.
    Ordinary,
    /// Open, but containment drew a reserved pass for it (emergency close, hedge).
    Reserved,
    /// Open, and the request is a cancel: always preserved (contract B §3.3 brownout table:
    /// CANCEL, HEDGE and EMERGENCY_CLOSE are never shed), still paid from the credits.
    Preserved,
    /// Open: held back client-side.
    Refused,
}

/// Cancels only ever take risk off the book, so an open breaker never holds them back;
/// everything else waits for the breaker or for a reserved pass.
fn breaker_pass(method: &str, breaker_closed: bool, reserved_passes: u32) -> BreakerPass {
    if breaker_closed {
        BreakerPass::Ordinary
    } else if reserved_passes > 0 {
        BreakerPass::Reserved
    } else if is_cancel(method) {
        BreakerPass::Preserved
    } else {
        BreakerPass::Refused
    }
}

fn is_cancel(method: &str) -> bool {
    matches!(
        method,
        "private/cancel"
            | "private/cancel_by_label"
            | "private/cancel_all"
            | "private/cancel_all_by_instrument"
            | "private/cancel_all_by_currency"
            | "private/cancel_all_by_kind_or_type"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let u = VenueUrl::parse("wss://www.deribit.com/ws/api/v2").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "www.deribit.com", 443, "/ws/api/v2")
        );
        let u = VenueUrl::parse("ws://127.0.0.1:8080").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/"));
        assert_eq!(u.to_url(), "ws://127.0.0.1:8080/");
        for bad in ["http://x", "ws://", "ws://h:notaport/", "ws://user@h/", "ws://h:99999/"] {
            assert!(VenueUrl::parse(bad).is_err(), "{bad}");
        }
    }

    /// AT-239 / contract B §3.3: an open breaker holds back opens and data requests, but
    /// cancels are always preserved (paid from credits), and containment's reserved passes
    /// go first.
    #[test]
    fn open_breaker_preserves_cancels_and_reserved_passes_only() {
        for m in ["private/cancel", "private/cancel_by_label", "private/cancel_all"] {
            assert_eq!(breaker_pass(m, false, 0), BreakerPass::Preserved, "{m}");
            assert_eq!(breaker_pass(m, true, 0), BreakerPass::Ordinary, "{m}");
        }
        for m in ["private/buy", "private/sell", "private/edit", "public/get_order_book"] {
            assert_eq!(breaker_pass(m, false, 0), BreakerPass::Refused, "{m}");
            assert_eq!(breaker_pass(m, false, 2), BreakerPass::Reserved, "{m}");
            assert_eq!(breaker_pass(m, true, 2), BreakerPass::Ordinary, "{m}");
        }
    }
}
