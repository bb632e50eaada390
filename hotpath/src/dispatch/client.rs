//! The trading client: the only type in the crate that can send orders, edits and
//! cancels. It is `pub(crate)` and only `crate::dispatch` can construct it, so every
//! order leaves through the dispatch stage (after the gates and the WAL).
//!
//! Requests are written from plain parameters into the connection's reusable buffer.
//! Sends are non-blocking: each returns the request id, and the reply arrives through
//! [`TradingClient::poll`] tagged with the method it answers.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::venue::auth::{AuthGrant, Credentials};
use crate::venue::conn::{ConnConfig, ConnError, Connection, Incoming};
use crate::venue::methods;
use crate::venue::request::RequestBuf;
use crate::venue::Decimal8;

/// Deribit's label limit (§8.1).
pub const LABEL_BYTES_MAX: usize = 64;

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `private/buy`.
    Buy,
    /// `private/sell`.
    Sell,
}

/// Order type sent to the venue (only the ones this engine uses; preflight forbids the
/// rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderType {
    /// Limit.
    Limit,
    /// Market (never for options: preflight rejects it before it gets here).
    Market,
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeInForce {
    /// `good_til_cancelled`.
    GoodTilCancelled,
    /// `good_til_day`.
    GoodTilDay,
    /// `fill_or_kill`.
    FillOrKill,
    /// `immediate_or_cancel`.
    ImmediateOrCancel,
}

impl TimeInForce {
    const fn as_str(self) -> &'static str {
        match self {
            Self::GoodTilCancelled => "good_til_cancelled",
            Self::GoodTilDay => "good_til_day",
            Self::FillOrKill => "fill_or_kill",
            Self::ImmediateOrCancel => "immediate_or_cancel",
        }
    }
}

/// A new order, in plain parameters.
#[derive(Debug, Clone, Copy)]
pub struct OrderParams<'a> {
    /// Instrument name.
    pub instrument: &'a str,
    /// Amount in the instrument's units.
    pub amount: Decimal8,
    /// Limit price (required for limit orders, refused for market orders).
    pub price: Option<Decimal8>,
    /// Our label (intent id), ≤ 64 bytes.
    pub label: &'a str,
    /// Type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Post-only.
    pub post_only: bool,
    /// With post-only: reject instead of repricing (11054).
    pub reject_post_only: bool,
    /// Reduce-only.
    pub reduce_only: bool,
}

/// An order edit.
#[derive(Debug, Clone, Copy)]
pub struct EditParams<'a> {
    /// Venue order id.
    pub order_id: &'a str,
    /// New amount.
    pub amount: Decimal8,
    /// New price.
    pub price: Decimal8,
    /// Post-only.
    pub post_only: bool,
    /// Reject instead of repricing.
    pub reject_post_only: bool,
    /// Reduce-only.
    pub reduce_only: bool,
}

/// Why an order request was not sent.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Label empty or longer than 64 bytes.
    #[error("label must be 1..=64 bytes")]
    BadLabel,
    /// Amount not positive.
    #[error("amount must be positive")]
    BadAmount,
    /// Limit without price, market with price, or a non-positive price.
    #[error("price does not fit the order type")]
    BadPrice,
    /// `reject_post_only` without `post_only`, or post-only with a non-GTC time in force.
    #[error("post-only flags are inconsistent")]
    BadPostOnly,
    /// Empty instrument, order id or currency.
    #[error("missing identifier")]
    MissingId,
    /// The connection refused or failed.
    #[error(transparent)]
    Conn(#[from] ConnError),
}

/// An instrument, currency or order id the venue needs: empty is a caller bug, refused
/// before a byte is written.
fn check_id(id: &str) -> Result<(), DispatchError> {
    if id.is_empty() {
        return Err(DispatchError::MissingId);
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), DispatchError> {
    if label.is_empty() || label.len() > LABEL_BYTES_MAX {
        return Err(DispatchError::BadLabel);
    }
    Ok(())
}

/// Validates an order's parameters (shape only; policy is the gates' job).
pub(crate) fn validate_order(p: &OrderParams<'_>) -> Result<(), DispatchError> {
    check_id(p.instrument)?;
    check_label(p.label)?;
    if p.amount.raw <= 0 {
        return Err(DispatchError::BadAmount);
    }
    match (p.order_type, p.price) {
        (OrderType::Limit, Some(px)) if px.raw > 0 => {}
        (OrderType::Market, None) => {}
        _ => return Err(DispatchError::BadPrice),
    }
    if p.reject_post_only && !p.post_only {
        return Err(DispatchError::BadPostOnly);
    }
    if p.post_only && p.time_in_force != TimeInForce::GoodTilCancelled {
        return Err(DispatchError::BadPostOnly);
    }
    Ok(())
}

/// Writes `private/buy`/`sell` params.
pub(crate) fn write_order_params(b: &mut RequestBuf, p: &OrderParams<'_>) {
    b.str("instrument_name", p.instrument).dec("amount", p.amount);
    b.str(
        "type",
        match p.order_type {
            OrderType::Limit => "limit",
            OrderType::Market => "market",
        },
    );
    if let Some(px) = p.price {
        b.dec("price", px);
    }
    b.str("label", p.label).str("time_in_force", p.time_in_force.as_str());
    if p.post_only {
        b.bool("post_only", true);
        if p.reject_post_only {
            b.bool("reject_post_only", true);
        }
    }
    if p.reduce_only {
        b.bool("reduce_only", true);
    }
}

/// Writes `private/edit` params.
pub(crate) fn write_edit_params(b: &mut RequestBuf, p: &EditParams<'_>) {
    b.str("order_id", p.order_id).dec("amount", p.amount).dec("price", p.price);
    if p.post_only {
        b.bool("post_only", true);
        if p.reject_post_only {
            b.bool("reject_post_only", true);
        }
    }
    if p.reduce_only {
        b.bool("reduce_only", true);
    }
}

/// Proof that the caller is this module: only code in `dispatch::client` can build one
/// (the field is private), and `Connection::send_any` requires it for trading methods.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TradingToken {
    _private: (),
}

const TOKEN: TradingToken = TradingToken { _private: () };

/// The trading connection: authenticated, heartbeating, cancel-on-disconnect enabled.
#[derive(Debug)]
pub(crate) struct TradingClient {
    conn: Connection,
}

// Not every query is used by the dispatcher yet (edit, account summary, ...).
#[cfg_attr(not(test), allow(dead_code))]
impl TradingClient {
    /// Connects, authenticates (needs `trade:read_write`), sets the heartbeat and enables
    /// connection-scoped cancel-on-disconnect. Only `crate::dispatch` may call this.
    pub(in crate::dispatch) fn connect(
        cfg: &ConnConfig,
        clock: Arc<dyn Clock>,
        creds: &Credentials,
        grant: AuthGrant,
        heartbeat_s: u32,
        timeout: Duration,
    ) -> Result<Self, ConnError> {
        let mut conn = Connection::connect(cfg, clock)?;
        conn.authenticate(creds, grant, None, timeout)?;
        conn.set_heartbeat(heartbeat_s, timeout)?;
        conn.enable_cancel_on_disconnect(timeout)?;
        Ok(Self { conn })
    }

    /// Wraps a connection that is only authenticated (no heartbeat, no cancel-on-disconnect):
    /// for `scope_probe`, whose keys must NOT be able to trade and so may lack the
    /// `account:read_write` that enabling cancel-on-disconnect needs.
    pub(in crate::dispatch) fn from_authenticated(conn: Connection) -> Self {
        Self { conn }
    }

    /// The underlying connection (reads, polling, breaker state).
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The underlying connection, read-only.
    pub(crate) fn connection_ref(&self) -> &Connection {
        &self.conn
    }

    /// Receives replies and notifications (see [`Connection::poll`]).
    pub(crate) fn poll(
        &mut self,
        timeout: Duration,
        handler: &mut dyn FnMut(Incoming<'_>),
    ) -> Result<usize, ConnError> {
        self.conn.poll(timeout, handler)
    }

    fn order(&mut self, side: Side, p: &OrderParams<'_>) -> Result<u64, DispatchError> {
        validate_order(p)?;
        let method = match side {
            Side::Buy => methods::BUY,
            Side::Sell => methods::SELL,
        };
        Ok(self.conn.send_any(TOKEN, method, |b| write_order_params(b, p))?)
    }

    /// `private/buy`; returns the request id.
    pub(crate) fn buy(&mut self, p: &OrderParams<'_>) -> Result<u64, DispatchError> {
        self.order(Side::Buy, p)
    }

    /// `private/sell`; returns the request id.
    pub(crate) fn sell(&mut self, p: &OrderParams<'_>) -> Result<u64, DispatchError> {
        self.order(Side::Sell, p)
    }

    /// `private/edit`.
    pub(crate) fn edit(&mut self, p: &EditParams<'_>) -> Result<u64, DispatchError> {
        check_id(p.order_id)?;
        if p.amount.raw <= 0 {
            return Err(DispatchError::BadAmount);
        }
        if p.price.raw <= 0 {
            return Err(DispatchError::BadPrice);
        }
        if p.reject_post_only && !p.post_only {
            return Err(DispatchError::BadPostOnly);
        }
        Ok(self.conn.send_any(TOKEN, methods::EDIT, |b| write_edit_params(b, p))?)
    }

    /// `private/cancel`.
    pub(crate) fn cancel(&mut self, order_id: &str) -> Result<u64, DispatchError> {
        check_id(order_id)?;
        Ok(self.conn.send_any(TOKEN, methods::CANCEL, |b| {
            b.str("order_id", order_id);
        })?)
    }

    /// `private/cancel_by_label` (optionally limited to a currency).
    pub(crate) fn cancel_by_label(
        &mut self,
        label: &str,
        currency: Option<&str>,
    ) -> Result<u64, DispatchError> {
        check_label(label)?;
        Ok(self.conn.send_any(TOKEN, methods::CANCEL_BY_LABEL, |b| {
            b.str("label", label);
            if let Some(c) = currency {
                b.str("currency", c);
            }
        })?)
    }

    /// `private/cancel_all`.
    pub(crate) fn cancel_all(&mut self) -> Result<u64, DispatchError> {
        Ok(self.conn.send_any(TOKEN, methods::CANCEL_ALL, |_| {})?)
    }

    /// `private/get_order_state`.
    pub(crate) fn get_order_state(&mut self, order_id: &str) -> Result<u64, DispatchError> {
        check_id(order_id)?;
        Ok(self.conn.send_request(methods::GET_ORDER_STATE, |b| {
            b.str("order_id", order_id);
        })?)
    }

    /// `private/get_order_state_by_label` (the in-doubt intent resolver's question).
    pub(crate) fn get_order_state_by_label(
        &mut self,
        currency: &str,
        label: &str,
    ) -> Result<u64, DispatchError> {
        check_label(label)?;
        check_id(currency)?;
        Ok(self.conn.send_request(methods::GET_ORDER_STATE_BY_LABEL, |b| {
            b.str("currency", currency).str("label", label);
        })?)
    }

    /// `private/get_open_orders_by_currency`.
    pub(crate) fn open_orders_by_currency(
        &mut self,
        currency: &str,
        kind: Option<&str>,
    ) -> Result<u64, DispatchError> {
        check_id(currency)?;
        Ok(self.conn.send_request(methods::GET_OPEN_ORDERS_BY_CURRENCY, |b| {
            b.str("currency", currency);
            if let Some(k) = kind {
                b.str("kind", k);
            }
        })?)
    }

    /// `private/get_open_orders_by_instrument`.
    pub(crate) fn open_orders_by_instrument(
        &mut self,
        instrument: &str,
    ) -> Result<u64, DispatchError> {
        check_id(instrument)?;
        Ok(self.conn.send_request(methods::GET_OPEN_ORDERS_BY_INSTRUMENT, |b| {
            b.str("instrument_name", instrument);
        })?)
    }

    /// `private/get_user_trades_by_currency` (newest `count`).
    pub(crate) fn user_trades_by_currency(
        &mut self,
        currency: &str,
        count: u16,
    ) -> Result<u64, DispatchError> {
        check_id(currency)?;
        Ok(self.conn.send_request(methods::GET_USER_TRADES_BY_CURRENCY, |b| {
            b.str("currency", currency).int("count", i64::from(count.max(1)));
        })?)
    }

    /// `private/get_positions`.
    pub(crate) fn positions(
        &mut self,
        currency: &str,
        kind: Option<&str>,
    ) -> Result<u64, DispatchError> {
        check_id(currency)?;
        Ok(self.conn.send_request(methods::GET_POSITIONS, |b| {
            b.str("currency", currency);
            if let Some(k) = kind {
                b.str("kind", k);
            }
        })?)
    }

    /// `private/get_account_summary`.
    pub(crate) fn account_summary(&mut self, currency: &str) -> Result<u64, DispatchError> {
        check_id(currency)?;
        Ok(self.conn.send_request(methods::GET_ACCOUNT_SUMMARY, |b| {
            b.str("currency", currency);
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal8 {
        Decimal8::parse_str(s).unwrap()
    }

    fn sample(name: &str) -> serde_json::Value {
        let p = format!("{}/../tests/fixtures/venue_samples/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn option_buy_matches_the_sample_request() {
        let s = sample("private_buy_request_option.json");
        let p = &s["params"];
        let params = OrderParams {
            instrument: p["instrument_name"].as_str().unwrap(),
            amount: Decimal8::parse_str(&p["amount"].to_string()).unwrap(),
            price: Some(Decimal8::parse_str(&p["price"].to_string()).unwrap()),
            label: p["label"].as_str().unwrap(),
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: true,
            reject_post_only: true,
            reduce_only: false,
        };
        validate_order(&params).unwrap();
        let mut b = RequestBuf::default();
        b.begin(s["id"].as_u64().unwrap(), methods::BUY);
        write_order_params(&mut b, &params);
        let ours: serde_json::Value = serde_json::from_slice(b.finish()).unwrap();
        // Every parameter the sample sends, we send with the same value.
        for (k, v) in p.as_object().unwrap() {
            if k == "reduce_only" && v == false {
                continue; // omitted when false: the venue's default
            }
            assert_eq!(&ours["params"][k], v, "param {k}");
        }
        assert_eq!(ours["method"], "private/buy");
    }

    #[test]
    fn shape_validation() {
        let ok = OrderParams {
            instrument: "BTC-25JUL25-110000-C",
            amount: d("0.1"),
            price: Some(d("0.0165")),
            label: "s1-g2-l0-abcdef",
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: true,
            reject_post_only: true,
            reduce_only: false,
        };
        validate_order(&ok).unwrap();
        let long = "x".repeat(65);
        let cases = [
            (OrderParams { label: "", ..ok }, "BadLabel"),
            (OrderParams { label: &long, ..ok }, "BadLabel"),
            (OrderParams { amount: Decimal8::ZERO, ..ok }, "BadAmount"),
            (OrderParams { price: None, ..ok }, "BadPrice"),
            (OrderParams { order_type: OrderType::Market, ..ok }, "BadPrice"),
            (OrderParams { post_only: false, ..ok }, "BadPostOnly"),
            (OrderParams { time_in_force: TimeInForce::ImmediateOrCancel, ..ok }, "BadPostOnly"),
            (OrderParams { instrument: "", ..ok }, "MissingId"),
        ];
        for (p, want) in cases {
            let e = validate_order(&p).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{e:?} vs {want}");
        }
        let mkt = OrderParams {
            order_type: OrderType::Market,
            price: None,
            post_only: false,
            reject_post_only: false,
            ..ok
        };
        validate_order(&mkt).unwrap();
    }

    /// Over a real socket: connect sets up auth + heartbeat + COD, and a buy goes out with
    /// its parameters and is correlated with its reply. The server thread is a transport
    /// test double answering with sample replies, not the simulator.
    #[test]
    fn trading_client_over_loopback() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/ws/api/v2", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut ws = tungstenite::accept(stream).unwrap();
            while let Ok(m) = ws.read() {
                let tungstenite::Message::Text(t) = m else { continue };
                let req: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                let file = match req["method"].as_str().unwrap() {
                    "public/auth" => "auth_response.json",
                    "public/set_heartbeat" => "set_heartbeat_response.json",
                    "private/enable_cancel_on_disconnect" => {
                        "enable_cancel_on_disconnect_response.json"
                    }
                    "private/buy" => "private_buy_response_option_resting.json",
                    "private/edit" => "private_edit_response.json",
                    "private/cancel" => "private_cancel_response.json",
                    "private/cancel_by_label" => "private_cancel_by_label_response.json",
                    "private/cancel_all" => "private_cancel_all_response.json",
                    "private/get_order_state" => "get_order_state_response.json",
                    "private/get_open_orders_by_currency" => {
                        "get_open_orders_by_currency_response.json"
                    }
                    "private/get_user_trades_by_currency" => {
                        "get_user_trades_by_currency_response.json"
                    }
                    "private/get_positions" => "get_positions_option.json",
                    "private/get_account_summary" => "get_account_summary_response.json",
                    _ => "error_invalid_params.json",
                };
                let mut r = sample(file);
                r["id"] = req["id"].clone();
                let _ = tx.send(req);
                if ws.send(tungstenite::Message::text(r.to_string())).is_err() {
                    return;
                }
            }
        });
        let creds = Credentials {
            client_id: "id".into(),
            client_secret: crate::venue::auth::Secret::new("secret".into()),
        };
        let t = Duration::from_secs(5);
        let mut tc = TradingClient::connect(
            &ConnConfig::new(&url),
            Arc::new(crate::clock::SystemClock),
            &creds,
            AuthGrant::ClientCredentials,
            10,
            t,
        )
        .unwrap();
        let setup: Vec<String> =
            (0..3).map(|_| rx.recv_timeout(t).unwrap()["method"].to_string()).collect();
        assert_eq!(
            setup,
            [
                r#""public/auth""#,
                r#""public/set_heartbeat""#,
                r#""private/enable_cancel_on_disconnect""#
            ]
        );
        let p = OrderParams {
            instrument: "BTC-25JUL25-110000-C",
            amount: d("0.1"),
            price: Some(d("0.0165")),
            label: "lbl-1",
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: true,
            reject_post_only: true,
            reduce_only: false,
        };
        let id = tc.buy(&p).unwrap();
        let sent = rx.recv_timeout(t).unwrap();
        assert_eq!(sent["params"]["price"], 0.0165);
        assert_eq!(sent["params"]["label"], "lbl-1");
        let mut answered = None;
        let deadline = std::time::Instant::now() + t;
        while answered.is_none() && std::time::Instant::now() < deadline {
            tc.poll(Duration::from_millis(100), &mut |inc| {
                if let crate::venue::Message::Response(r) = inc.msg {
                    if r.id == Some(crate::venue::messages::RequestId::Num(id)) {
                        answered = inc.method;
                    }
                }
            })
            .unwrap();
        }
        assert_eq!(answered, Some(methods::BUY));
        assert!(matches!(tc.sell(&OrderParams { label: "", ..p }), Err(DispatchError::BadLabel)));

        // Every other call goes out under its own method and is correlated back to it.
        let e = EditParams {
            order_id: "1",
            amount: d("1"),
            price: d("0.02"),
            post_only: false,
            reject_post_only: false,
            reduce_only: false,
        };
        let mut want = std::collections::HashMap::new();
        want.insert(tc.edit(&e).unwrap(), methods::EDIT);
        want.insert(tc.cancel("1").unwrap(), methods::CANCEL);
        want.insert(tc.cancel_by_label("lbl-1", Some("BTC")).unwrap(), methods::CANCEL_BY_LABEL);
        want.insert(tc.cancel_all().unwrap(), methods::CANCEL_ALL);
        want.insert(tc.get_order_state("1").unwrap(), methods::GET_ORDER_STATE);
        want.insert(
            tc.get_order_state_by_label("BTC", "lbl-1").unwrap(),
            methods::GET_ORDER_STATE_BY_LABEL,
        );
        want.insert(
            tc.open_orders_by_currency("BTC", Some("option")).unwrap(),
            methods::GET_OPEN_ORDERS_BY_CURRENCY,
        );
        want.insert(
            tc.open_orders_by_instrument("BTC-PERPETUAL").unwrap(),
            methods::GET_OPEN_ORDERS_BY_INSTRUMENT,
        );
        want.insert(
            tc.user_trades_by_currency("BTC", 10).unwrap(),
            methods::GET_USER_TRADES_BY_CURRENCY,
        );
        want.insert(tc.positions("BTC", Some("option")).unwrap(), methods::GET_POSITIONS);
        want.insert(tc.account_summary("BTC").unwrap(), methods::GET_ACCOUNT_SUMMARY);
        let mut got = std::collections::HashMap::new();
        let deadline = std::time::Instant::now() + t;
        while got.len() < want.len() && std::time::Instant::now() < deadline {
            tc.poll(Duration::from_millis(100), &mut |inc| {
                let id = match inc.msg {
                    crate::venue::Message::Response(r) => r.id,
                    crate::venue::Message::Error(e) => e.id,
                    _ => None,
                };
                if let (Some(crate::venue::messages::RequestId::Num(id)), Some(m)) =
                    (id, inc.method)
                {
                    got.insert(id, m);
                }
            })
            .unwrap();
        }
        assert_eq!(got, want);
        for _ in 0..want.len() {
            let _ = rx.recv_timeout(t).unwrap();
        }
        assert_eq!(tc.connection().in_flight(), 0);
        tc.connection().close();
        drop(tc);
        server.join().unwrap();
    }

    #[test]
    fn edit_writes_exact_numbers() {
        let mut b = RequestBuf::default();
        b.begin(3, methods::EDIT);
        write_edit_params(
            &mut b,
            &EditParams {
                order_id: "438994",
                amount: d("4"),
                price: d("0.0005"),
                post_only: false,
                reject_post_only: false,
                reduce_only: true,
            },
        );
        let text = String::from_utf8(b.finish().to_vec()).unwrap();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":3,"method":"private/edit","params":{"order_id":"438994","amount":4,"price":0.0005,"reduce_only":true}}"#
        );
    }
}
