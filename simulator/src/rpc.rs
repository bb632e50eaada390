//! JSON-RPC: envelopes, errors, parameter parsing, authentication, scopes, rate limits and
//! the method table. Transport-independent: WebSocket and HTTP both call `handle_text` /
//! `handle_call`.

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::accounts::{Access, Scopes};
use crate::book::Side;
use crate::engine::{parse_order_id, Auth, CrossKnowledge, Engine, NewOrder, OrderState, Tif};
use crate::instruments::{Currency, Kind};
use crate::journal;
use crate::util::{amt, px, round_to};

/// API version reported by `public/test` and `public/hello`.
pub const API_VERSION: &str = "1.2.26";
/// Largest request the venue accepts (bytes).
pub const REQUEST_BYTES_MAX: usize = 32 * 1024;
/// Channels per subscribe call.
pub const CHANNELS_PER_SUBSCRIBE_MAX: usize = 500;
/// Label length limit.
pub const LABEL_CHARS_MAX: usize = 64;

/// A venue error reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// Code.
    pub code: i64,
    /// Message.
    pub message: String,
    /// Optional data.
    pub data: Option<Value>,
}

impl RpcError {
    /// Error with a code and message.
    pub fn new(code: i64, message: &str) -> RpcError {
        RpcError { code, message: message.to_string(), data: None }
    }

    /// -32602 Invalid params with reason and param.
    pub fn invalid_param(param: &str, reason: &str) -> RpcError {
        RpcError {
            code: -32602,
            message: "Invalid params".into(),
            data: Some(json!({"reason": reason, "param": param})),
        }
    }

    fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let (Some(d), Some(m)) = (&self.data, e.as_object_mut()) {
            m.insert("data".into(), d.clone());
        }
        e
    }
}

/// Transport of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket.
    Ws,
    /// HTTP.
    Http,
}

/// Per-connection context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Session id (WS) or request id (HTTP).
    pub session: u64,
    /// Transport.
    pub transport: Transport,
    /// Connection-level authorisation.
    pub auth: Option<Auth>,
    /// Peer IP (unauthenticated rate limits).
    pub peer: String,
    /// Heartbeat interval set by `public/set_heartbeat`.
    pub heartbeat_s: Option<u64>,
    /// A `public/test` arrived since the last `test_request`.
    pub test_seen: bool,
    /// The server must close the connection after sending the reply (10028, logout).
    pub close_after: bool,
    /// Skip cancel-on-disconnect on close (clean logout).
    pub skip_cod: bool,
    /// Minimum heartbeat interval accepted.
    pub heartbeat_min_s: u64,
    /// HTTP status to use (429 for 10028).
    pub http_status: u16,
    /// The reply must not be sent: the connection dies instead (`LoseNextOrderAck`).
    pub drop_reply: bool,
    /// The last reply was an error (HTTP answers it with status 400).
    pub last_was_error: bool,
}

impl Ctx {
    /// New context.
    pub fn new(session: u64, transport: Transport, peer: String, heartbeat_min_s: u64) -> Ctx {
        Ctx {
            session,
            transport,
            auth: None,
            peer,
            heartbeat_s: None,
            test_seen: true,
            close_after: false,
            skip_cod: false,
            heartbeat_min_s,
            http_status: 200,
            drop_reply: false,
            last_was_error: false,
        }
    }
}

fn envelope(
    id: &Value,
    body: Result<Value, RpcError>,
    us_in: i64,
    us_out: i64,
    testnet: bool,
) -> String {
    let mut v = json!({"jsonrpc": "2.0", "id": id});
    if let Some(m) = v.as_object_mut() {
        match body {
            Ok(r) => {
                m.insert("result".into(), r);
            }
            Err(e) => {
                m.insert("error".into(), e.to_json());
            }
        }
        m.insert("usIn".into(), json!(us_in));
        m.insert("usOut".into(), json!(us_out));
        m.insert("usDiff".into(), json!(us_out - us_in));
        m.insert("testnet".into(), json!(testnet));
    }
    v.to_string()
}

/// Handles one request text (a WebSocket frame or an HTTP POST body). Never panics on input.
pub fn handle_text(eng: &std::sync::Mutex<Engine>, ctx: &mut Ctx, text: &str) -> String {
    let us_in = lock(eng).now_us();
    let out = handle_text_inner(eng, ctx, text, us_in);
    ctx.last_was_error = out.1;
    out.0
}

fn handle_text_inner(
    eng: &std::sync::Mutex<Engine>,
    ctx: &mut Ctx,
    text: &str,
    us_in: i64,
) -> (String, bool) {
    if text.len() > REQUEST_BYTES_MAX {
        let e = RpcError::new(-32600, "request entity too large");
        return finish(eng, &Value::Null, Err(e), us_in);
    }
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return finish(eng, &Value::Null, Err(RpcError::new(-32700, "Parse error")), us_in)
        }
    };
    let Some(obj) = v.as_object() else {
        // Batch arrays and bare values are not supported by the venue.
        return finish(eng, &Value::Null, Err(RpcError::new(-32600, "Invalid Request")), us_in);
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return finish(eng, &id, Err(RpcError::invalid_param("method", "must be present")), us_in);
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return finish(
                eng,
                &id,
                Err(RpcError::invalid_param("params", "must be an object")),
                us_in,
            )
        }
    };
    let method = method.to_string();
    let res = handle_call(eng, ctx, &method, &params);
    finish(eng, &id, res, us_in)
}

fn finish(
    eng: &std::sync::Mutex<Engine>,
    id: &Value,
    res: Result<Value, RpcError>,
    us_in: i64,
) -> (String, bool) {
    let (us_out, testnet) = {
        let e = lock(eng);
        (e.now_us(), e.cfg.testnet)
    };
    let is_err = res.is_err();
    (envelope(id, res, us_in, us_out.max(us_in), testnet), is_err)
}

/// Locks the engine, surviving a poisoned lock (a panic elsewhere must not take the venue down).
pub fn lock(eng: &std::sync::Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    eng.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parameter accessors that accept what HTTP query strings carry (numbers and booleans as
/// strings) as well as JSON types.
struct P<'a>(&'a Map<String, Value>);

impl P<'_> {
    fn str_opt(&self, k: &str) -> Result<Option<String>, RpcError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(RpcError::invalid_param(k, "invalid format")),
        }
    }

    fn str_req(&self, k: &str) -> Result<String, RpcError> {
        self.str_opt(k)?.ok_or_else(|| RpcError::invalid_param(k, "must be present"))
    }

    fn f64_opt(&self, k: &str) -> Result<Option<f64>, RpcError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_f64().map(Some).ok_or_else(|| RpcError::invalid_param(k, "invalid format"))
            }
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| RpcError::invalid_param(k, "invalid format")),
            Some(_) => Err(RpcError::invalid_param(k, "invalid format")),
        }
    }

    fn i64_opt(&self, k: &str) -> Result<Option<i64>, RpcError> {
        match self.f64_opt(k)? {
            None => Ok(None),
            #[allow(clippy::cast_possible_truncation)]
            Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(Some(x as i64)),
            Some(_) => Err(RpcError::invalid_param(k, "invalid format")),
        }
    }

    fn bool_opt(&self, k: &str) -> Result<Option<bool>, RpcError> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(RpcError::invalid_param(k, "invalid format")),
        }
    }

    fn currency_req(&self, k: &str) -> Result<Option<Currency>, RpcError> {
        let s = self.str_req(k)?;
        currency_or_any(&s, k)
    }
}

/// `BTC`/`ETH` → Some, `any` → None; other venue currencies (USDC...) are valid but empty
/// here, which callers see as an impossible filter.
fn currency_or_any(s: &str, k: &str) -> Result<Option<Currency>, RpcError> {
    if s.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    match Currency::parse(s) {
        Some(c) => Ok(Some(c)),
        None if matches!(s, "USDC" | "USDT" | "EURR") => Err(RpcError::new(0, "empty")),
        None => Err(RpcError::invalid_param(k, "wrong format")),
    }
}

/// Methods served, and which are matching-engine.
const PUBLIC: &[&str] = &[
    "auth",
    "get_time",
    "test",
    "status",
    "hello",
    "set_heartbeat",
    "disable_heartbeat",
    "get_currencies",
    "get_instruments",
    "get_instrument",
    "get_order_book",
    "ticker",
    "get_last_trades_by_instrument",
    "get_book_summary_by_currency",
    "get_index_price",
    "subscribe",
    "unsubscribe",
    "unsubscribe_all",
];
const PRIVATE: &[&str] = &[
    "buy",
    "sell",
    "edit",
    "edit_by_label",
    "get_open_orders_by_label",
    "cancel",
    "cancel_all",
    "cancel_all_by_instrument",
    "cancel_all_by_currency",
    "cancel_by_label",
    "get_open_orders_by_currency",
    "get_open_orders_by_instrument",
    "get_open_orders",
    "get_order_state",
    "get_order_state_by_label",
    "get_order_history_by_currency",
    "get_order_history_by_instrument",
    "get_user_trades_by_currency",
    "get_user_trades_by_instrument",
    "get_user_trades_by_order",
    "get_position",
    "get_positions",
    "get_account_summary",
    "get_account_summaries",
    "enable_cancel_on_disconnect",
    "disable_cancel_on_disconnect",
    "get_cancel_on_disconnect",
    "withdraw",
    "get_withdrawals",
    "subscribe",
    "unsubscribe",
    "unsubscribe_all",
    "logout",
];
const MATCHING_ENGINE: &[&str] = &[
    "buy",
    "sell",
    "edit",
    "edit_by_label",
    "cancel",
    "cancel_all",
    "cancel_all_by_instrument",
    "cancel_all_by_currency",
    "cancel_by_label",
];
const WS_ONLY: &[&str] = &[
    "public/set_heartbeat",
    "public/disable_heartbeat",
    "public/hello",
    "public/subscribe",
    "public/unsubscribe",
    "public/unsubscribe_all",
    "private/subscribe",
    "private/unsubscribe",
    "private/unsubscribe_all",
    "private/logout",
];

/// Permission a private method needs.
fn required_scope(m: &str) -> Option<(&'static str, Access)> {
    match m {
        "buy"
        | "sell"
        | "edit"
        | "edit_by_label"
        | "cancel"
        | "cancel_all"
        | "cancel_all_by_instrument"
        | "cancel_all_by_currency"
        | "cancel_by_label" => Some(("trade", Access::ReadWrite)),
        "get_account_summary" | "get_account_summaries" | "get_cancel_on_disconnect" => {
            Some(("account", Access::Read))
        }
        "enable_cancel_on_disconnect" | "disable_cancel_on_disconnect" => {
            Some(("account", Access::ReadWrite))
        }
        "withdraw" => Some(("wallet", Access::ReadWrite)),
        "get_withdrawals" => Some(("wallet", Access::Read)),
        "subscribe" | "unsubscribe" | "unsubscribe_all" | "logout" => None,
        _ => Some(("trade", Access::Read)),
    }
}

/// Runs one call: storm/rate limit, auth and scopes, the method, the journal.
pub fn handle_call(
    eng: &std::sync::Mutex<Engine>,
    ctx: &mut Ctx,
    method: &str,
    params: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let mut e = lock(eng);
    let (scope_kind, name) = match method.split_once('/') {
        Some(("public", n)) if PUBLIC.contains(&n) => ("public", n),
        Some(("private", n)) if PRIVATE.contains(&n) => ("private", n),
        _ => return Err(RpcError::new(-32601, "Method not found")),
    };
    let journaled = scope_kind == "private" && MATCHING_ENGINE.contains(&name);
    e.last_cross = None;
    let res = call_inner(&mut e, ctx, scope_kind, name, method, params);
    if journaled {
        let entry = journal_entry(&e, ctx, method, params, &res);
        e.journal.append(entry);
    }
    if res.is_ok() && ctx.transport == Transport::Ws && matches!(name, "buy" | "sell") {
        let instrument = params.get("instrument_name").and_then(Value::as_str).unwrap_or("");
        if e.faults.take_lost_ack(instrument) {
            ctx.drop_reply = true;
        }
    }
    let res = res.map(|(v, _)| v);
    if let Err(err) = &res {
        if err.code == 10028 {
            ctx.close_after = true;
            ctx.http_status = 429;
        }
    }
    res
}

/// Extra facts about an order call for the journal.
#[derive(Debug, Default, Clone)]
struct OrderFacts {
    order_id: Option<String>,
    state: Option<&'static str>,
    count: Option<usize>,
    post_only_crossed: bool,
}

fn call_inner(
    e: &mut Engine,
    ctx: &mut Ctx,
    kind: &str,
    name: &str,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(Value, OrderFacts), RpcError> {
    let now = e.now_ms();
    if ctx.transport == Transport::Http && WS_ONLY.contains(&method) {
        return Err(RpcError::new(10030, "must_be_websocket_request"));
    }
    // A 10028 storm hits every request.
    if crate::util::wall_us() / 1000 < e.faults.storm_until_ms {
        return Err(RpcError::new(10028, "too_many_requests"));
    }
    // Resolve the caller: connection auth, else a token in params.
    let mut auth = ctx.auth.clone();
    if let Some(tok) = params.get("access_token").and_then(Value::as_str) {
        match e.tokens.get(tok) {
            Some(t) if t.expires_ms > e.transport_ms() => auth = Some(t.auth.clone()),
            _ => return Err(RpcError::new(13009, "unauthorized")),
        }
    }
    if kind == "private" {
        let Some(a) = &auth else { return Err(RpcError::new(10000, "authorization_required")) };
        if let Some((group, need)) = required_scope(name) {
            if a.scopes.get(group) < need {
                return Err(RpcError::new(13021, "forbidden"));
            }
        }
    }
    // Credits: per account when authenticated, per source IP otherwise.
    let wall = crate::util::wall_us() / 1000;
    let me = kind == "private" && MATCHING_ENGINE.contains(&name);
    let ok = match &auth {
        Some(a) => {
            let acc = &mut e.accounts[a.account];
            if me {
                acc.me_bucket.try_take(wall)
            } else {
                acc.nme_bucket.try_take(wall)
            }
        }
        None => e.ip_take(&ctx.peer, wall, name == "get_instruments"),
    };
    if !ok {
        return Err(RpcError::new(10028, "too_many_requests"));
    }
    let p = P(params);
    let plain = |v: Value| Ok((v, OrderFacts::default()));
    match (kind, name) {
        ("public", "auth") => plain(auth_method(e, ctx, &p)?),
        ("public", "get_time") => plain(json!(now)),
        ("public", "test") => {
            ctx.test_seen = true;
            if p.str_opt("expected_result")?.as_deref() == Some("exception") {
                return Err(RpcError::new(11094, "internal_server_error"));
            }
            plain(json!({"version": API_VERSION}))
        }
        ("public", "hello") => plain(json!({"version": API_VERSION})),
        ("public", "status") => {
            let locked = &e.faults.locked_indices;
            let state = if e.faults.maintenance || locked.len() >= 2 {
                "true"
            } else if locked.is_empty() {
                "false"
            } else {
                "partial"
            };
            plain(json!({"locked": state, "locked_indices": locked}))
        }
        ("public", "set_heartbeat") => {
            let iv = p
                .f64_opt("interval")?
                .ok_or_else(|| RpcError::invalid_param("interval", "must be present"))?;
            #[allow(clippy::cast_precision_loss)]
            if !(iv >= ctx.heartbeat_min_s as f64 && iv <= 3600.0) {
                return Err(RpcError::invalid_param("interval", "interval too small"));
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                ctx.heartbeat_s = Some(iv as u64);
            }
            ctx.test_seen = true;
            plain(json!("ok"))
        }
        ("public", "disable_heartbeat") => {
            ctx.heartbeat_s = None;
            plain(json!("ok"))
        }
        ("public", "get_currencies") => {
            plain(json!(Currency::ALL.iter().map(|c| currency_json(*c)).collect::<Vec<_>>()))
        }
        ("public", "get_instruments") => {
            let ccy = match p.str_opt("currency")? {
                None => None,
                Some(s) => match currency_or_any(&s, "currency") {
                    Ok(c) => c,
                    Err(err) if err.code == 0 => return plain(json!([])),
                    Err(err) => return Err(err),
                },
            };
            let kind_f = p.str_opt("kind")?;
            if let Some(k) = &kind_f {
                if !matches!(
                    k.as_str(),
                    "future" | "option" | "spot" | "future_combo" | "option_combo"
                ) {
                    return Err(RpcError::invalid_param("kind", "wrong format"));
                }
            }
            let expired = p.bool_opt("expired")?.unwrap_or(false);
            let v: Vec<Value> = e
                .instruments
                .iter()
                .filter(|i| ccy.is_none_or(|c| i.currency == c))
                .filter(|i| kind_f.as_deref().is_none_or(|k| k == i.kind.as_str()))
                .filter(|i| (i.expiry_ms <= now) == expired)
                .map(|i| i.to_json(now))
                .collect();
            plain(json!(v))
        }
        ("public", "get_instrument") => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            plain(e.instruments[i].to_json(now))
        }
        ("public", "get_order_book") => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            let depth = p.i64_opt("depth")?.unwrap_or(20).clamp(1, 10_000);
            plain(e.order_book_json(i, usize::try_from(depth).unwrap_or(20), now))
        }
        ("public", "ticker") => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            plain(e.ticker_json(i, now))
        }
        ("public", "get_index_price") => {
            let n = p.str_req("index_name")?;
            let c = Currency::from_index(&n)
                .ok_or_else(|| RpcError::invalid_param("index_name", "wrong format"))?;
            let v = e.index[usize::from(c == Currency::Eth)];
            plain(
                json!({"index_price": round_to(v, 2), "estimated_delivery_price": round_to(v, 2)}),
            )
        }
        ("public", "get_last_trades_by_instrument") => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            let count =
                usize::try_from(p.i64_opt("count")?.unwrap_or(10).clamp(1, 1000)).unwrap_or(10);
            let asc = p.str_opt("sorting")?.as_deref() == Some("asc");
            let all = &e.md[i].trades;
            let mut v: Vec<Value> = all.iter().rev().take(count).cloned().collect();
            if asc {
                v.reverse();
            }
            plain(json!({"trades": v, "has_more": all.len() > count}))
        }
        ("public", "get_book_summary_by_currency") => {
            let ccy = match currency_or_any(&p.str_req("currency")?, "currency") {
                Ok(c) => c,
                Err(err) if err.code == 0 => return plain(json!([])),
                Err(err) => return Err(err),
            };
            let kind_f = p.str_opt("kind")?;
            let v: Vec<Value> = (0..e.instruments.len())
                .filter(|&i| ccy.is_none_or(|c| e.instruments[i].currency == c))
                .filter(|&i| kind_f.as_deref().is_none_or(|k| k == e.instruments[i].kind.as_str()))
                .map(|i| book_summary(e, i, now))
                .collect();
            plain(json!(v))
        }
        ("public" | "private", "subscribe") => {
            if kind == "private" || ctx.auth.is_some() || auth.is_some() {
                // fallthrough below
            }
            let chans = match params.get("channels") {
                Some(Value::Array(a)) => a,
                None => return Err(RpcError::invalid_param("channels", "must be present")),
                _ => return Err(RpcError::invalid_param("channels", "invalid format")),
            };
            if chans.len() > CHANNELS_PER_SUBSCRIBE_MAX {
                return Err(RpcError::invalid_param("channels", "too many channels"));
            }
            let acct = auth.as_ref().map(|a| a.account);
            let mut ok = Vec::new();
            for c in chans {
                let Some(ch) = c.as_str() else { continue };
                let private_ch = ch.starts_with("user.");
                if private_ch && kind == "public" {
                    continue;
                }
                if private_ch {
                    let need = if ch.starts_with("user.portfolio") { "account" } else { "trade" };
                    if auth.as_ref().is_none_or(|a| a.scopes.get(need) < Access::Read) {
                        continue;
                    }
                }
                if e.subscribe(ctx.session, ch, acct)? {
                    ok.push(json!(ch));
                }
            }
            if let (Some(a), Some(slot)) = (acct, e.sessions.get_mut(&ctx.session)) {
                slot.account = Some(a);
            }
            plain(json!(ok))
        }
        ("public" | "private", "unsubscribe") => {
            let chans = match params.get("channels") {
                Some(Value::Array(a)) => a.clone(),
                _ => return Err(RpcError::invalid_param("channels", "must be present")),
            };
            for c in chans.iter().filter_map(Value::as_str) {
                e.unsubscribe(ctx.session, c);
            }
            let rest: Vec<String> = e
                .sessions
                .get(&ctx.session)
                .map(|s| s.subs.iter().cloned().collect())
                .unwrap_or_default();
            plain(json!(rest))
        }
        ("public" | "private", "unsubscribe_all") => {
            let all: Vec<String> = e
                .sessions
                .get(&ctx.session)
                .map(|s| s.subs.iter().cloned().collect())
                .unwrap_or_default();
            for c in all {
                e.unsubscribe(ctx.session, &c);
            }
            plain(json!("ok"))
        }
        ("private", m) => {
            let Some(a) = auth else { return Err(RpcError::new(10000, "authorization_required")) };
            private_method(e, ctx, &a, m, &p, now)
        }
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

fn currency_json(c: Currency) -> Value {
    let (long, coin) = match c {
        Currency::Btc => ("Bitcoin", "BITCOIN"),
        Currency::Eth => ("Ethereum", "ETHER"),
    };
    json!({"currency": c.code(), "currency_long": long, "coin_type": coin, "fee_precision": 4, "min_confirmations": 1, "min_withdrawal_fee": 0.0001, "withdrawal_fee": 0.0001, "withdrawal_priorities": [], "in_cross_collateral_pool": true, "apr": 0.0})
}

fn book_summary(e: &Engine, i: usize, now: i64) -> Value {
    let t = e.ticker_json(i, now);
    let b = &e.books[i];
    let (bid, ask) = (b.best_bid().map(px), b.best_ask().map(px));
    let mid = match (bid, ask) {
        (Some(x), Some(y)) => Some((x + y) / 2.0),
        _ => None,
    };
    let ins = &e.instruments[i];
    let g = |k: &str| t.get(k).cloned().unwrap_or(Value::Null);
    let stats = t.get("stats").cloned().unwrap_or(Value::Null);
    let s = |k: &str| stats.get(k).cloned().unwrap_or(Value::Null);
    let mut v = json!({
        "instrument_name": ins.name, "base_currency": ins.currency.code(), "quote_currency": if ins.kind == Kind::Option { ins.currency.code() } else { "USD" },
        "bid_price": bid, "ask_price": ask, "mid_price": mid, "mark_price": g("mark_price"), "last": g("last_price"),
        "high": s("high"), "low": s("low"), "volume": s("volume"), "volume_usd": s("volume_usd"), "price_change": s("price_change"),
        "open_interest": g("open_interest"), "estimated_delivery_price": g("estimated_delivery_price"),
        "creation_timestamp": now, "interest_rate": 0.0,
    });
    if let Some(m) = v.as_object_mut() {
        if ins.kind == Kind::Option {
            m.insert("mark_iv".into(), g("mark_iv"));
            m.insert("underlying_price".into(), g("underlying_price"));
            m.insert("underlying_index".into(), g("underlying_index"));
        } else if ins.perpetual {
            m.insert("current_funding".into(), json!(0.0));
            m.insert("funding_8h".into(), json!(0.0));
        }
    }
    v
}

fn hmac_hex(secret: &str, msg: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time-ish comparison of two hex strings (length leak only).
fn eq_ct(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies a `client_signature` / `deri-hmac-sha256` signature and nonce freshness.
pub fn verify_signature(
    e: &mut Engine,
    client_id: &str,
    ts: i64,
    nonce: &str,
    signed: &str,
    sig: &str,
) -> Result<Auth, RpcError> {
    let now = e.transport_ms();
    let &(ai, ki) =
        e.keys.get(client_id).ok_or_else(|| RpcError::new(13004, "invalid_credentials"))?;
    if (now - ts).abs() > 60_000 {
        return Err(RpcError::invalid_param("timestamp", "timestamp out of window"));
    }
    if nonce.is_empty() || nonce.len() > 128 {
        return Err(RpcError::invalid_param("nonce", "invalid format"));
    }
    let secret = e.specs.accounts[ai].keys[ki].client_secret.clone();
    if !eq_ct(&hmac_hex(&secret, signed), &sig.to_ascii_lowercase()) {
        return Err(RpcError::new(13009, "unauthorized"));
    }
    let nkey = format!("{client_id}\n{nonce}");
    e.nonces.retain(|_, t| *t > now - 120_000);
    if e.nonces.len() > 100_000 || e.nonces.contains_key(&nkey) {
        return Err(RpcError::invalid_param("nonce", "nonce already used"));
    }
    e.nonces.insert(nkey, now);
    Ok(key_auth(e, ai, ki, None))
}

/// Authorisation of a key with its full scopes, optionally narrowed by a request.
pub fn key_auth(e: &Engine, ai: usize, ki: usize, requested: Option<&str>) -> Auth {
    let k = &e.specs.accounts[ai].keys[ki];
    let max = Scopes::parse(&k.scopes);
    let scopes = match requested {
        Some(r) => max.narrow(&Scopes::parse(r)),
        None => max,
    };
    Auth { account: ai, client_id: k.client_id.clone(), scopes }
}

/// Basic auth: client id + secret.
pub fn verify_secret(e: &Engine, client_id: &str, secret: &str) -> Result<Auth, RpcError> {
    let &(ai, ki) =
        e.keys.get(client_id).ok_or_else(|| RpcError::new(13004, "invalid_credentials"))?;
    if !eq_ct(&e.specs.accounts[ai].keys[ki].client_secret, secret) {
        return Err(RpcError::new(13004, "invalid_credentials"));
    }
    Ok(key_auth(e, ai, ki, None))
}

fn auth_method(e: &mut Engine, ctx: &mut Ctx, p: &P<'_>) -> Result<Value, RpcError> {
    let grant = p.str_req("grant_type")?;
    let requested = p.str_opt("scope")?;
    let (auth, session_name) = match grant.as_str() {
        "client_credentials" => {
            let id = p.str_req("client_id")?;
            let secret = p.str_req("client_secret")?;
            let mut a = verify_secret(e, &id, &secret)?;
            if let Some(r) = &requested {
                a.scopes = Scopes::parse(&e.specs.accounts[a.account].keys[e.keys[&id].1].scopes)
                    .narrow(&Scopes::parse(r));
            }
            (a, requested.clone())
        }
        "client_signature" => {
            let id = p.str_req("client_id")?;
            let ts = p
                .i64_opt("timestamp")?
                .ok_or_else(|| RpcError::invalid_param("timestamp", "must be present"))?;
            let sig = p.str_req("signature")?;
            let nonce = p.str_req("nonce")?;
            let data = p.str_opt("data")?.unwrap_or_default();
            let mut a =
                verify_signature(e, &id, ts, &nonce, &format!("{ts}\n{nonce}\n{data}"), &sig)?;
            if let Some(r) = &requested {
                a.scopes = Scopes::parse(&e.specs.accounts[a.account].keys[e.keys[&id].1].scopes)
                    .narrow(&Scopes::parse(r));
            }
            (a, requested.clone())
        }
        "refresh_token" => {
            let rt = p.str_req("refresh_token")?;
            let now = e.transport_ms();
            let t = e
                .refresh_tokens
                .remove(&rt)
                .filter(|t| t.expires_ms > now)
                .ok_or_else(|| RpcError::new(13009, "unauthorized"))?;
            (t.auth, Some(t.scope_str))
        }
        _ => return Err(RpcError::invalid_param("grant_type", "wrong format")),
    };
    let req = session_name.unwrap_or_default();
    let session_scope =
        req.split_whitespace().find(|t| t.starts_with("session:")).map(str::to_string);
    let expires = req
        .split_whitespace()
        .find_map(|t| t.strip_prefix("expires:").and_then(|x| x.parse::<i64>().ok()))
        .unwrap_or(if ctx.transport == Transport::Ws && session_scope.is_none() {
            31_536_000
        } else {
            900
        })
        .clamp(60, 31_536_000);
    let binding = session_scope.clone().unwrap_or_else(|| "connection".to_string());
    let key_name = e.specs.accounts[auth.account]
        .keys
        .iter()
        .find(|k| k.client_id == auth.client_id)
        .map(|k| k.name.clone())
        .unwrap_or_default();
    let mut scope_str = format!("{} {binding} mainaccount", auth.scopes.to_wire());
    if !key_name.is_empty() {
        scope_str.push_str(&format!(" name:{key_name}"));
    }
    let bound = if ctx.transport == Transport::Ws && session_scope.is_none() {
        Some(ctx.session)
    } else {
        None
    };
    let (access, refresh) = e.issue_token(auth.clone(), scope_str.clone(), bound, expires);
    if ctx.transport == Transport::Ws {
        ctx.auth = Some(auth.clone());
        if let Some(slot) = e.sessions.get_mut(&ctx.session) {
            slot.account = Some(auth.account);
            if e.accounts[auth.account].cod_account {
                slot.cod = true;
            }
        }
    }
    let mut v = json!({"access_token": access, "refresh_token": refresh, "expires_in": expires, "scope": scope_str, "token_type": "bearer", "enabled_features": []});
    if let (Some(st), Some(m)) = (p.str_opt("state")?, v.as_object_mut()) {
        m.insert("state".into(), json!(st));
    }
    if let (Some(s), Some(m)) = (session_scope, v.as_object_mut()) {
        m.insert("sid".into(), json!(s));
    }
    Ok(v)
}

fn parse_new_order(p: &P<'_>, side: Side, e: &Engine) -> Result<NewOrder, RpcError> {
    let instrument = p.str_req("instrument_name")?;
    let label = p.str_opt("label")?.unwrap_or_default();
    if label.chars().count() > LABEL_CHARS_MAX {
        return Err(RpcError::invalid_param("label", "string too long"));
    }
    let order_type = p.str_opt("type")?.unwrap_or_else(|| "limit".into());
    if !matches!(
        order_type.as_str(),
        "limit"
            | "market"
            | "stop_limit"
            | "stop_market"
            | "take_limit"
            | "take_market"
            | "market_limit"
            | "trailing_stop"
    ) {
        return Err(RpcError::invalid_param("type", "wrong format"));
    }
    let cs = e.inst(&instrument).map_or(1.0, |i| amt(e.instruments[i].contract_size));
    let amount = match (p.f64_opt("amount")?, p.f64_opt("contracts")?) {
        (Some(a), Some(c)) => {
            if (a - c * cs).abs() > 1e-9 * a.abs().max(1.0) {
                return Err(RpcError::invalid_param(
                    "contracts",
                    "contracts and amount do not match",
                ));
            }
            a
        }
        (Some(a), None) => a,
        (None, Some(c)) => c * cs,
        (None, None) => return Err(RpcError::invalid_param("amount", "must be present")),
    };
    let price = match p.0.get("price") {
        Some(Value::String(s)) if s == "market_price" => None,
        _ => p.f64_opt("price")?,
    };
    let tif = match p.str_opt("time_in_force")? {
        None => Tif::Gtc,
        Some(s) => Tif::parse(&s)
            .ok_or_else(|| RpcError::invalid_param("time_in_force", "wrong format"))?,
    };
    if p.str_opt("advanced")?.is_some() {
        // usd/implv pricing is not modelled: refuse rather than misprice.
        return Err(RpcError::new(11047, "unsupported_arg_combination"));
    }
    let post_only = p.bool_opt("post_only")?.unwrap_or(false);
    let reject_post_only = p.bool_opt("reject_post_only")?.unwrap_or(false);
    Ok(NewOrder {
        instrument,
        side,
        amount,
        order_type,
        price,
        tif,
        post_only,
        reject_post_only: post_only && reject_post_only,
        reduce_only: p.bool_opt("reduce_only")?.unwrap_or(false),
        label,
        trigger: p.str_opt("trigger")?,
        trigger_price: p.f64_opt("trigger_price")?.or(p.f64_opt("stop_price")?),
    })
}

fn order_type_filter(ty: Option<&str>, o: &crate::engine::Order) -> bool {
    match ty.unwrap_or("all") {
        "all" => true,
        "limit" => o.order_type == "limit",
        "trigger_all" => o.trigger_price.is_some(),
        "stop_all" => o.order_type.starts_with("stop"),
        "take_all" => o.order_type.starts_with("take"),
        "trailing_all" => o.order_type == "trailing_stop",
        t => o.order_type == t,
    }
}

#[allow(clippy::too_many_lines)]
fn private_method(
    e: &mut Engine,
    ctx: &mut Ctx,
    a: &Auth,
    m: &str,
    p: &P<'_>,
    now: i64,
) -> Result<(Value, OrderFacts), RpcError> {
    let acct = a.account;
    let plain = |v: Value| Ok((v, OrderFacts::default()));
    let count_facts = |n: usize| OrderFacts { count: Some(n), ..OrderFacts::default() };
    match m {
        "buy" | "sell" => {
            let side = if m == "buy" { Side::Buy } else { Side::Sell };
            let no = parse_new_order(p, side, e)?;
            let placed = e.place(acct, ctx.session, &no).map_err(|mut err| {
                if err.code == 11054 {
                    err.data = Some(json!({"post_only_crossed": true}));
                }
                err
            })?;
            let facts = OrderFacts {
                order_id: Some(
                    placed.order.get("order_id").and_then(Value::as_str).unwrap_or("").to_string(),
                ),
                state: Some(state_str(placed.state)),
                count: None,
                post_only_crossed: placed.post_only_crossed,
            };
            Ok((json!({"order": placed.order, "trades": placed.trades}), facts))
        }
        "edit" | "edit_by_label" => {
            let id = if m == "edit" {
                p.str_req("order_id")?
            } else {
                // The single open order with this label (13032 when ambiguous).
                let label = p.str_req("label")?;
                let inst = p.str_opt("instrument_name")?;
                let ids: Vec<String> = e
                    .orders_of(acct, true, |o, ins| {
                        o.label == label && inst.as_deref().is_none_or(|n| n == ins.name)
                    })
                    .iter()
                    .filter_map(|o| o["order_id"].as_str().map(str::to_string))
                    .collect();
                match ids.as_slice() {
                    [one] => one.clone(),
                    [] => return Err(RpcError::new(10004, "order_not_found")),
                    _ => return Err(RpcError::new(13032, "non_unique_order_label")),
                }
            };
            let amount = match (p.f64_opt("amount")?, p.f64_opt("contracts")?) {
                (Some(x), _) => Some(x),
                (None, Some(c)) => {
                    let cs = parse_order_id(&id)
                        .and_then(|oid| e.orders.get(&oid))
                        .map_or(1.0, |o| amt(e.instruments[o.inst].contract_size));
                    Some(c * cs)
                }
                (None, None) => None,
            };
            if p.str_opt("advanced")?.is_some() {
                return Err(RpcError::new(11047, "unsupported_arg_combination"));
            }
            let placed = e.edit(
                acct,
                &id,
                amount,
                p.f64_opt("price")?,
                p.bool_opt("post_only")?,
                p.bool_opt("reject_post_only")?,
            )?;
            let facts = OrderFacts {
                order_id: Some(id),
                state: Some(state_str(placed.state)),
                count: None,
                post_only_crossed: placed.post_only_crossed,
            };
            Ok((json!({"order": placed.order, "trades": placed.trades}), facts))
        }
        "cancel" => {
            let id = p.str_req("order_id")?;
            let o = e.cancel(acct, &id, "user_request")?;
            let facts = OrderFacts {
                order_id: Some(id),
                state: Some("cancelled"),
                ..OrderFacts::default()
            };
            Ok((o, facts))
        }
        "cancel_all" => {
            let v = e.cancel_where(acct, "user_request", |_, _| true);
            let n = v.len();
            Ok((detailed(p, &v, n)?, count_facts(n)))
        }
        "cancel_all_by_instrument" => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            let ty = p.str_opt("type")?;
            let v = e.cancel_where(acct, "user_request", |o, _| {
                o.inst == i && order_type_filter(ty.as_deref(), o)
            });
            let c = v.len();
            Ok((detailed(p, &v, c)?, count_facts(c)))
        }
        "cancel_all_by_currency" => {
            let ccy = p.currency_req("currency").or_else(|err| {
                if err.code == 0 {
                    Ok(Some(Currency::Btc)).map(|_| None)
                } else {
                    Err(err)
                }
            })?;
            let kind_f = p.str_opt("kind")?;
            let ty = p.str_opt("type")?;
            let v = e.cancel_where(acct, "user_request", |o, ins| {
                ccy.is_none_or(|c| ins.currency == c)
                    && kind_f.as_deref().is_none_or(|k| k == "any" || k == ins.kind.as_str())
                    && order_type_filter(ty.as_deref(), o)
            });
            let c = v.len();
            Ok((detailed(p, &v, c)?, count_facts(c)))
        }
        "cancel_by_label" => {
            let label = p.str_req("label")?;
            let ccy = match p.str_opt("currency")? {
                Some(s) => currency_or_any(&s, "currency").unwrap_or(None),
                None => None,
            };
            let v = e.cancel_where(acct, "user_request", |o, ins| {
                o.label == label && ccy.is_none_or(|c| ins.currency == c)
            });
            let c = v.len();
            Ok((detailed(p, &v, c)?, count_facts(c)))
        }
        "get_open_orders_by_currency" | "get_open_orders" => {
            let ccy = match p.str_opt("currency")? {
                Some(s) => match currency_or_any(&s, "currency") {
                    Ok(c) => c,
                    Err(err) if err.code == 0 => return plain(json!([])),
                    Err(err) => return Err(err),
                },
                None if m == "get_open_orders" => None,
                None => return Err(RpcError::invalid_param("currency", "must be present")),
            };
            let kind_f = p.str_opt("kind")?;
            let ty = p.str_opt("type")?;
            plain(json!(e.orders_of(acct, true, |o, ins| ccy.is_none_or(|c| ins.currency == c)
                && kind_f.as_deref().is_none_or(|k| k == "any" || k == ins.kind.as_str())
                && order_type_filter(ty.as_deref(), o))))
        }
        "get_open_orders_by_instrument" => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            let ty = p.str_opt("type")?;
            plain(json!(
                e.orders_of(acct, true, |o, _| o.inst == i && order_type_filter(ty.as_deref(), o))
            ))
        }
        "get_order_state" => {
            let id = p.str_req("order_id")?;
            let oid = parse_order_id(&id).ok_or_else(|| RpcError::new(10004, "order_not_found"))?;
            match e.orders.get(&oid) {
                Some(o) if o.account == acct => plain(e.order_json(o)),
                _ => Err(RpcError::new(10004, "order_not_found")),
            }
        }
        "get_open_orders_by_label" => {
            let label = p.str_req("label")?;
            let ccy = match p.str_opt("currency")? {
                Some(s) => currency_or_any(&s, "currency").unwrap_or(None),
                None => None,
            };
            plain(json!(e.orders_of(acct, true, |o, ins| {
                o.label == label && ccy.is_none_or(|c| ins.currency == c)
            })))
        }
        "get_order_state_by_label" => {
            let label = p.str_req("label")?;
            let ccy = match p.str_opt("currency")? {
                Some(s) => currency_or_any(&s, "currency").unwrap_or(None),
                None => None,
            };
            let mut v = e.orders_of(acct, true, |o, ins| {
                o.label == label && ccy.is_none_or(|c| ins.currency == c)
            });
            v.extend(e.orders_of(acct, false, |o, ins| {
                o.label == label && ccy.is_none_or(|c| ins.currency == c)
            }));
            plain(json!(v))
        }
        "get_order_history_by_currency" | "get_order_history_by_instrument" => {
            let count =
                usize::try_from(p.i64_opt("count")?.unwrap_or(20).clamp(1, 1000)).unwrap_or(20);
            let offset =
                usize::try_from(p.i64_opt("offset")?.unwrap_or(0).clamp(0, 1_000_000)).unwrap_or(0);
            let v = if m.ends_with("currency") {
                let ccy = match currency_or_any(&p.str_req("currency")?, "currency") {
                    Ok(c) => c,
                    Err(err) if err.code == 0 => return plain(json!([])),
                    Err(err) => return Err(err),
                };
                let kind_f = p.str_opt("kind")?;
                e.orders_of(acct, false, |o, ins| {
                    o.state != OrderState::Rejected
                        && ccy.is_none_or(|c| ins.currency == c)
                        && kind_f.as_deref().is_none_or(|k| k == "any" || k == ins.kind.as_str())
                })
            } else {
                let n = p.str_req("instrument_name")?;
                let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
                e.orders_of(acct, false, |o, _| o.inst == i)
            };
            plain(json!(v.into_iter().skip(offset).take(count).collect::<Vec<_>>()))
        }
        "get_user_trades_by_currency"
        | "get_user_trades_by_instrument"
        | "get_user_trades_by_order" => {
            let count =
                usize::try_from(p.i64_opt("count")?.unwrap_or(10).clamp(1, 1000)).unwrap_or(10);
            let asc = p.str_opt("sorting")?.as_deref() == Some("asc");
            let filter: Box<dyn Fn(&crate::engine::TradeRec) -> bool> = match m {
                "get_user_trades_by_currency" => {
                    let ccy = match currency_or_any(&p.str_req("currency")?, "currency") {
                        Ok(c) => c,
                        Err(err) if err.code == 0 => {
                            return plain(json!({"trades": [], "has_more": false}))
                        }
                        Err(err) => return Err(err),
                    };
                    let kind_f = p.str_opt("kind")?;
                    let insts: Vec<(Currency, &'static str)> =
                        e.instruments.iter().map(|i| (i.currency, i.kind.as_str())).collect();
                    Box::new(move |t| {
                        let (c, k) = insts[t.inst];
                        ccy.is_none_or(|x| x == c)
                            && kind_f.as_deref().is_none_or(|kk| kk == "any" || kk == k)
                    })
                }
                "get_user_trades_by_instrument" => {
                    let n = p.str_req("instrument_name")?;
                    let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
                    Box::new(move |t| t.inst == i)
                }
                _ => {
                    let id = p.str_req("order_id")?;
                    let oid = parse_order_id(&id)
                        .ok_or_else(|| RpcError::new(10004, "order_not_found"))?;
                    Box::new(move |t| t.order_id == oid)
                }
            };
            let start_ts = p.i64_opt("start_timestamp")?;
            let end_ts = p.i64_opt("end_timestamp")?;
            let all: Vec<&crate::engine::TradeRec> = e.accounts[acct]
                .trades
                .iter()
                .filter(|t| {
                    filter(t)
                        && start_ts.is_none_or(|s| t.ts >= s)
                        && end_ts.is_none_or(|x| t.ts <= x)
                })
                .collect();
            if m == "get_user_trades_by_order" {
                let mut v: Vec<Value> = all.iter().map(|t| t.json.clone()).collect();
                if !asc {
                    v.reverse();
                }
                return plain(json!(v));
            }
            let has_more = all.len() > count;
            let mut v: Vec<Value> = if asc {
                all.iter().take(count).map(|t| t.json.clone()).collect()
            } else {
                all.iter().rev().take(count).map(|t| t.json.clone()).collect()
            };
            if !asc {
                v.truncate(count);
            }
            plain(json!({"trades": v, "has_more": has_more}))
        }
        "get_position" => {
            let n = p.str_req("instrument_name")?;
            let i = e.inst(&n).ok_or_else(|| RpcError::new(13020, "not_found"))?;
            plain(crate::position_lag::answer(e, acct, |e| e.position_json(acct, i, now)))
        }
        "get_positions" => {
            let ccy = match p.str_opt("currency")? {
                Some(s) => match currency_or_any(&s, "currency") {
                    Ok(c) => c,
                    Err(err) if err.code == 0 => return plain(json!([])),
                    Err(err) => return Err(err),
                },
                None => None,
            };
            let kind_f = p.str_opt("kind")?;
            let v: Vec<Value> = crate::position_lag::answer(e, acct, |e| {
                e.accounts[acct]
                    .positions
                    .iter()
                    .filter(|(i, pos)| {
                        pos.size != 0
                            && ccy.is_none_or(|c| e.instruments[**i].currency == c)
                            && kind_f
                                .as_deref()
                                .is_none_or(|k| k == "any" || k == e.instruments[**i].kind.as_str())
                    })
                    .map(|(i, _)| e.position_json(acct, *i, now))
                    .collect()
            });
            plain(json!(v))
        }
        "get_account_summary" => {
            let s = p.str_req("currency")?;
            let c = Currency::parse(&s)
                .ok_or_else(|| RpcError::invalid_param("currency", "wrong format"))?;
            plain(e.account_summary_json(acct, c, p.bool_opt("extended")?.unwrap_or(false), now))
        }
        "get_account_summaries" => {
            let ext = p.bool_opt("extended")?.unwrap_or(false);
            let sums: Vec<Value> =
                Currency::ALL.iter().map(|c| e.account_summary_json(acct, *c, ext, now)).collect();
            let ac = &e.accounts[acct];
            plain(
                json!({"id": ac.user_id, "username": ac.username, "system_name": ac.username, "type": "main", "email": format!("{}@sim.invalid", ac.username), "summaries": sums}),
            )
        }
        "enable_cancel_on_disconnect" | "disable_cancel_on_disconnect" => {
            let on = m.starts_with("enable");
            let scope = p.str_opt("scope")?.unwrap_or_else(|| "connection".into());
            match scope.as_str() {
                "connection" => {
                    if ctx.transport == Transport::Http {
                        return Err(RpcError::new(10030, "must_be_websocket_request"));
                    }
                    if let Some(s) = e.sessions.get_mut(&ctx.session) {
                        s.cod = on;
                        s.account = Some(acct);
                    }
                }
                "account" => {
                    e.accounts[acct].cod_account = on;
                    for s in e.sessions.values_mut().filter(|s| s.account == Some(acct)) {
                        s.cod = on;
                    }
                }
                _ => return Err(RpcError::invalid_param("scope", "wrong format")),
            }
            plain(json!("ok"))
        }
        "get_cancel_on_disconnect" => {
            let acc_scope = e.accounts[acct].cod_account;
            let conn = e.sessions.get(&ctx.session).is_some_and(|s| s.cod);
            plain(
                json!({"enabled": acc_scope || conn, "scope": if acc_scope { "account" } else { "connection" }}),
            )
        }
        "withdraw" => {
            let req = crate::wallet::WithdrawRequest::parse(
                &p.str_req("currency")?,
                p.str_req("address")?,
                p.f64_opt("amount")?
                    .ok_or_else(|| RpcError::invalid_param("amount", "must be present"))?,
                p.str_opt("priority")?.as_deref(),
            )?;
            plain(crate::wallet::withdraw(e, acct, req, now)?)
        }
        "get_withdrawals" => plain(crate::wallet::get_withdrawals(
            e,
            acct,
            &p.str_req("currency")?,
            p.i64_opt("count")?,
            p.i64_opt("offset")?,
        )?),
        "logout" => {
            ctx.close_after = true;
            ctx.skip_cod = true;
            plain(json!("ok"))
        }
        _ => Err(RpcError::new(-32601, "Method not found")),
    }
}

fn detailed(p: &P<'_>, orders: &[Value], n: usize) -> Result<Value, RpcError> {
    if p.bool_opt("detailed")?.unwrap_or(false) {
        Ok(json!([{"type": "limit", "result": orders}]))
    } else {
        Ok(json!(n))
    }
}

fn state_str(s: OrderState) -> &'static str {
    match s {
        OrderState::Open => "open",
        OrderState::Filled => "filled",
        OrderState::Cancelled => "cancelled",
        OrderState::Rejected => "rejected",
        OrderState::Untriggered => "untriggered",
    }
}

fn journal_entry(
    e: &Engine,
    ctx: &Ctx,
    method: &str,
    params: &Map<String, Value>,
    res: &Result<(Value, OrderFacts), RpcError>,
) -> journal::Entry {
    let p = P(params);
    let gs = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_string);
    let gf = |k: &str| p.f64_opt(k).ok().flatten();
    let is_new = method == "private/buy" || method == "private/sell";
    let mut flags = Map::new();
    for k in ["post_only", "reject_post_only", "reduce_only"] {
        if let Ok(Some(b)) = p.bool_opt(k) {
            flags.insert(k.into(), json!(b));
        }
    }
    for k in ["time_in_force", "trigger", "linked_order_type", "advanced"] {
        if let Some(v) = params.get(k).filter(|v| !v.is_null()) {
            flags.insert(k.into(), v.clone());
        }
    }
    if let Some(v) =
        params.get("trigger_price").or_else(|| params.get("stop_price")).filter(|v| !v.is_null())
    {
        flags.insert("trigger_price".into(), v.clone());
    }
    if params.get("otoco_config").is_some_and(|v| !v.is_null()) {
        flags.insert("linked_order_type".into(), json!("otoco_config"));
    }
    let ty = if is_new { Some(gs("type").unwrap_or_else(|| "limit".into())) } else { gs("type") };
    let price = gf("price");
    if is_new
        && price.is_none()
        && ty.as_deref().is_some_and(|t| matches!(t, "limit" | "stop_limit" | "take_limit"))
    {
        flags.insert("price_missing".into(), json!(true));
    }
    // How long the venue had published a top of book that this order crosses: the oracle
    // tells an engine that ignored its book from one that raced a change in flight.
    match e.last_cross {
        Some(CrossKnowledge::Unpublished) => {
            flags.insert("post_only_cross_unpublished".into(), json!(true));
        }
        Some(CrossKnowledge::PublishedFor(ms)) => {
            flags.insert("post_only_cross_published_ms".into(), json!(ms));
        }
        None => {}
    }
    let result = match res {
        Ok((_, f)) => {
            if f.post_only_crossed {
                flags.insert("post_only_crossed".into(), json!(true));
            }
            match f.count {
                Some(n) => json!({"count": n}),
                None => json!({"order_id": f.order_id, "order_state": f.state}),
            }
        }
        Err(err) => {
            if err.code == 11054 {
                flags.insert("post_only_crossed".into(), json!(true));
            }
            json!({"error": err.code, "message": err.message})
        }
    };
    let order_id = gs("order_id");
    let instrument = gs("instrument_name").or_else(|| {
        order_id
            .as_deref()
            .and_then(parse_order_id)
            .and_then(|id| e.orders.get(&id))
            .map(|o| e.instruments[o.inst].name.clone())
    });
    journal::Entry {
        seq: 0,
        ts_ms: e.now_ms(),
        session: ctx.session,
        key: ctx
            .auth
            .as_ref()
            .map(|a| a.client_id.clone())
            .or_else(|| {
                params
                    .get("access_token")
                    .and_then(Value::as_str)
                    .and_then(|t| e.tokens.get(t))
                    .map(|t| t.auth.client_id.clone())
            })
            .unwrap_or_default(),
        method: method.to_string(),
        instrument,
        label: gs("label"),
        order_type: ty,
        side: match method {
            "private/buy" => Some("buy".into()),
            "private/sell" => Some("sell".into()),
            _ => None,
        },
        amount: gf("amount").or_else(|| gf("contracts")),
        price,
        order_id,
        flags,
        result,
    }
}

/// Verifies an HTTP `Authorization` header; returns the authorisation.
pub fn http_auth(
    e: &mut Engine,
    header: &str,
    http_method: &str,
    uri: &str,
    body: &str,
) -> Result<Auth, RpcError> {
    let h = header.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => {
            let now = e.transport_ms();
            match e.tokens.get(rest.trim()) {
                Some(t) if t.expires_ms > now => Ok(t.auth.clone()),
                _ => Err(RpcError::new(13009, "unauthorized")),
            }
        }
        "basic" => {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .map_err(|_| RpcError::new(13004, "invalid_credentials"))?;
            let s =
                String::from_utf8(raw).map_err(|_| RpcError::new(13004, "invalid_credentials"))?;
            let (id, secret) =
                s.split_once(':').ok_or_else(|| RpcError::new(13004, "invalid_credentials"))?;
            verify_secret(e, id, secret)
        }
        "deri-hmac-sha256" => {
            let mut id = None;
            let mut ts = None;
            let mut sig = None;
            let mut nonce = None;
            for kv in rest.split(',') {
                if let Some((k, v)) = kv.trim().split_once('=') {
                    match k.trim() {
                        "id" => id = Some(v.trim().to_string()),
                        "ts" => ts = v.trim().parse::<i64>().ok(),
                        "sig" => sig = Some(v.trim().to_string()),
                        "nonce" => nonce = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            let (Some(id), Some(ts), Some(sig), Some(nonce)) = (id, ts, sig, nonce) else {
                return Err(RpcError::new(13009, "unauthorized"));
            };
            let signed =
                format!("{ts}\n{nonce}\n{}\n{uri}\n{body}\n", http_method.to_ascii_uppercase());
            verify_signature(e, &id, ts, &nonce, &signed, &sig)
        }
        _ => Err(RpcError::new(13009, "unauthorized")),
    }
}
