//! `stoic decode`: venue messages in (one JSON message per line), one JSON summary line
//! out per message. Uses the engine's own decoder, so what it accepts is what the engine
//! accepts.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use hotpath::venue::messages::{
    NotificationData, Order, OrderPrice, RequestId, ResultPayload, UserTrade,
};
use hotpath::venue::{Decimal8, Decoder, Message};
use serde_json::{json, Map, Value};

/// Longest input line accepted; longer lines are reported as `LINE_TOO_LONG`.
const LINE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Arguments of `stoic decode`.
///
/// Reads Deribit JSON-RPC messages, one per line (pretty-printed JSON must be compacted
/// first), and prints one JSON line per message:
/// `{"ok":true,"kind":...,"method":...,"channel":...,"instrument":...,...}` with the key
/// fields (books: type, change ids, level counts; orders and trades: ids, labels, states,
/// amounts), or `{"ok":false,"error":"<CODE>","line":N}`. Blank lines are skipped.
/// Exit status 0 only when every message decoded, 1 otherwise.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// File to read; standard input when omitted or `-`.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Runs `stoic decode`.
///
/// # Errors
/// When the input file cannot be opened or output cannot be written.
// The CLI dispatcher fixes this signature (every subcommand takes its Args by value).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = match args.file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", p.display()))?,
        ),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let all_ok = run(BufReader::new(input), &mut out)?;
    out.flush()?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run<R: BufRead, W: Write>(mut input: R, out: &mut W) -> anyhow::Result<bool> {
    let mut dec = Decoder::new();
    let mut line = Vec::with_capacity(4096);
    let mut all_ok = true;
    let mut n = 0u64;
    loop {
        line.clear();
        let read = (&mut input).take(LINE_BYTES_MAX as u64 + 1).read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        n += 1;
        let too_long = line.len() > LINE_BYTES_MAX && line.last() != Some(&b'\n');
        if too_long {
            // Skip the rest of the oversized line so the next one starts cleanly.
            let mut sink = Vec::new();
            input.read_until(b'\n', &mut sink)?;
            all_ok = false;
            writeln!(out, "{}", json!({"ok": false, "error": "LINE_TOO_LONG", "line": n}))?;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let summary = match dec.decode(&mut line) {
            Ok(m) => summarize(&m),
            Err(e) => {
                all_ok = false;
                let mut o = json!({"ok": false, "error": e.name(), "line": n});
                if let Some(f) = e.field() {
                    o["field"] = json!(f);
                }
                o
            }
        };
        writeln!(out, "{summary}")?;
    }
    Ok(all_ok)
}

fn dec(d: Decimal8) -> Value {
    // Exact decimal text: JSON floats would reintroduce the rounding we removed.
    Value::String(d.to_string())
}

fn opt_dec(d: Option<Decimal8>) -> Value {
    d.map_or(Value::Null, dec)
}

fn order_json(o: &Order<'_>) -> Value {
    json!({
        "order_id": o.order_id,
        "instrument": o.instrument_name,
        "label": o.label,
        "state": o.order_state.as_str(),
        "direction": o.direction.as_str(),
        "order_type": o.order_type,
        "amount": dec(o.amount),
        "filled_amount": dec(o.filled_amount),
        "price": match o.price { OrderPrice::Limit(p) => dec(p), OrderPrice::Market => json!("market_price") },
        "post_only": o.post_only,
        "reduce_only": o.reduce_only,
        "cancel_reason": o.cancel_reason,
    })
}

fn trade_json(t: &UserTrade<'_>) -> Value {
    json!({
        "trade_id": t.trade_id,
        "order_id": t.order_id,
        "instrument": t.instrument_name,
        "label": t.label,
        "state": t.state,
        "direction": t.direction.as_str(),
        "price": dec(t.price),
        "amount": dec(t.amount),
        "fee": opt_dec(t.fee),
        "liquidity": t.liquidity,
    })
}

fn id_json(id: Option<RequestId<'_>>) -> Value {
    match id {
        None => Value::Null,
        Some(RequestId::Num(n)) => json!(n),
        Some(RequestId::Str(s)) => json!(s),
    }
}

/// The one-line JSON summary of a decoded message (shared with `stoic replay`).
pub(crate) fn summarize(m: &Message<'_>) -> Value {
    let mut o = Map::new();
    o.insert("ok".into(), json!(true));
    o.insert("kind".into(), json!(m.kind()));
    let (mut method, mut channel, mut instrument) = (Value::Null, Value::Null, Value::Null);
    match m {
        Message::Request(r) => {
            method = json!(r.method);
            instrument = json!(r.instrument);
            o.insert("id".into(), id_json(r.id));
            o.insert("label".into(), json!(r.label));
            o.insert("amount".into(), opt_dec(r.amount));
            o.insert("price".into(), opt_dec(r.price));
            if let Some(c) = r.channels {
                o.insert("channels".into(), json!(c));
            }
        }
        Message::Error(e) => {
            o.insert("id".into(), id_json(e.id));
            o.insert("code".into(), json!(e.code.code()));
            o.insert("venue_error".into(), json!(e.code.name()));
            o.insert("category".into(), json!(format!("{:?}", e.code.category())));
            o.insert("message".into(), json!(e.message));
        }
        Message::Heartbeat(k) => {
            method = json!("heartbeat");
            o.insert(
                "type".into(),
                json!(match k {
                    hotpath::venue::messages::HeartbeatKind::Heartbeat => "heartbeat",
                    hotpath::venue::messages::HeartbeatKind::TestRequest => "test_request",
                }),
            );
        }
        Message::Response(r) => {
            o.insert("id".into(), id_json(r.id));
            summarize_result(&r.result, &mut o, &mut instrument);
        }
        Message::Notification(n) => {
            method = json!("subscription");
            channel = json!(n.channel);
            summarize_notification(&n.data, &mut o, &mut instrument);
        }
    }
    o.insert("method".into(), method);
    o.insert("channel".into(), channel);
    o.insert("instrument".into(), instrument);
    Value::Object(o)
}

fn summarize_result(r: &ResultPayload<'_>, o: &mut Map<String, Value>, instrument: &mut Value) {
    let (name, extra): (&str, Value) = match r {
        ResultPayload::Ok => ("ok", Value::Null),
        ResultPayload::Text(t) => ("text", json!(t)),
        ResultPayload::Integer(n) => ("integer", json!(n)),
        ResultPayload::Auth(a) => ("auth", json!({"expires_in": a.expires_in, "scope": a.scope})),
        ResultPayload::Version(v) => ("version", json!(v)),
        ResultPayload::OrderWithTrades(ord, trades) => {
            *instrument = json!(ord.instrument_name);
            o.insert("order".into(), order_json(ord));
            o.insert("trades".into(), trades.iter().map(trade_json).collect());
            ("order_with_trades", Value::Null)
        }
        ResultPayload::Order(ord) => {
            *instrument = json!(ord.instrument_name);
            o.insert("order".into(), order_json(ord));
            ("order", Value::Null)
        }
        ResultPayload::Orders(v) => {
            o.insert("orders".into(), v.iter().map(order_json).collect());
            ("orders", Value::Null)
        }
        ResultPayload::UserTrades(v, more) => {
            o.insert("trades".into(), v.iter().map(trade_json).collect());
            ("user_trades", json!({"has_more": more}))
        }
        ResultPayload::Positions(v) => (
            "positions",
            v.iter().map(|p| json!({"instrument": p.instrument_name, "size": dec(p.size), "direction": p.direction.as_str()})).collect(),
        ),
        ResultPayload::Position(p) => {
            *instrument = json!(p.instrument_name);
            ("position", json!({"size": dec(p.size), "direction": p.direction.as_str()}))
        }
        ResultPayload::AccountSummary(a) => (
            "account_summary",
            json!({"currency": a.currency, "equity": opt_dec(a.equity), "available_funds": opt_dec(a.available_funds)}),
        ),
        ResultPayload::Instruments(v) => ("instruments", json!({"count": v.len()})),
        ResultPayload::Instrument(i) => {
            *instrument = json!(i.instrument_name);
            ("instrument", json!({"tick_size": dec(i.tick_size)}))
        }
        ResultPayload::OrderBook(b, _) => {
            *instrument = json!(b.instrument_name);
            o.insert("change_id".into(), json!(b.change_id));
            o.insert("bids".into(), json!(b.bids.len()));
            o.insert("asks".into(), json!(b.asks.len()));
            ("order_book", Value::Null)
        }
        ResultPayload::Ticker(t) => {
            *instrument = json!(t.instrument_name);
            ("ticker", json!({"best_bid": opt_dec(t.best_bid_price), "best_ask": opt_dec(t.best_ask_price)}))
        }
        ResultPayload::Channels(c) => ("channels", json!(c)),
        ResultPayload::EmptyList => ("empty_list", Value::Null),
        ResultPayload::Other => ("other", Value::Null),
    };
    o.insert("result".into(), json!(name));
    if !extra.is_null() {
        o.insert("value".into(), extra);
    }
}

fn summarize_notification(
    d: &NotificationData<'_>,
    o: &mut Map<String, Value>,
    instrument: &mut Value,
) {
    let data = match d {
        NotificationData::Book(b) => {
            *instrument = json!(b.instrument_name);
            o.insert("type".into(), json!(b.kind.as_str()));
            o.insert("change_id".into(), json!(b.change_id));
            o.insert("prev_change_id".into(), json!(b.prev_change_id));
            o.insert("bids".into(), json!(b.bids.len()));
            o.insert("asks".into(), json!(b.asks.len()));
            "book"
        }
        NotificationData::Ticker(t) => {
            *instrument = json!(t.instrument_name);
            o.insert("best_bid".into(), opt_dec(t.best_bid_price));
            o.insert("best_ask".into(), opt_dec(t.best_ask_price));
            o.insert("mark_price".into(), opt_dec(t.mark_price));
            "ticker"
        }
        NotificationData::Trades(v) => {
            if let Some(t) = v.first() {
                *instrument = json!(t.instrument_name);
            }
            o.insert(
                "trades".into(),
                v.iter()
                    .map(|t| json!({"trade_id": t.trade_id, "direction": t.direction.as_str(), "price": dec(t.price), "amount": dec(t.amount)}))
                    .collect(),
            );
            "trades"
        }
        NotificationData::Orders(v) => {
            if let Some(x) = v.first() {
                *instrument = json!(x.instrument_name);
            }
            o.insert("orders".into(), v.iter().map(order_json).collect());
            "orders"
        }
        NotificationData::UserTrades(v) => {
            if let Some(x) = v.first() {
                *instrument = json!(x.instrument_name);
            }
            o.insert("trades".into(), v.iter().map(trade_json).collect());
            "user_trades"
        }
        NotificationData::Portfolio(a) => {
            o.insert("currency".into(), json!(a.currency));
            o.insert("equity".into(), opt_dec(a.equity));
            "portfolio"
        }
        NotificationData::UserChanges { instrument_name, orders, trades, positions } => {
            *instrument = json!(instrument_name);
            o.insert("orders".into(), orders.iter().map(order_json).collect());
            o.insert("trades".into(), trades.iter().map(trade_json).collect());
            o.insert("positions".into(), json!(positions.len()));
            "user_changes"
        }
        NotificationData::PriceIndex { index_name, price, .. } => {
            o.insert("index_name".into(), json!(index_name));
            o.insert("price".into(), dec(*price));
            "price_index"
        }
        NotificationData::MarkPrices(v) => {
            o.insert("count".into(), json!(v.len()));
            "mark_prices"
        }
        NotificationData::PlatformState(p) => {
            o.insert("maintenance".into(), json!(p.maintenance));
            o.insert("price_index".into(), json!(p.price_index));
            o.insert("locked".into(), json!(p.locked));
            "platform_state"
        }
        NotificationData::Other => "other",
    };
    o.insert("data".into(), json!(data));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_str(s: &str) -> (bool, Vec<Value>) {
        let mut out = Vec::new();
        let ok = run(s.as_bytes(), &mut out).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (ok, lines)
    }

    #[test]
    fn good_and_bad_lines() {
        let input = "{\"jsonrpc\":\"2.0\",\"method\":\"heartbeat\",\"params\":{\"type\":\"test_request\"}}\n\n{oops\n{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"ok\"}";
        let (ok, lines) = run_str(input);
        assert!(!ok);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["kind"], "heartbeat");
        assert_eq!(lines[0]["type"], "test_request");
        assert_eq!(lines[1], json!({"ok": false, "error": "INVALID_JSON", "line": 3}));
        assert_eq!(lines[2]["result"], "ok");
        assert_eq!(lines[2]["id"], 3);
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let ok = run(&b"{\"a\":\"\xff\xfe\"}\n"[..], &mut out).unwrap();
        assert!(!ok);
        assert!(String::from_utf8(out).unwrap().contains("INVALID_JSON"));
    }
}
