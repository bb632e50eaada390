//! Conformance: the real client (`hotpath::venue::conn::Connection`) against the in-process
//! simulator. Every query method the client supports must decode into its typed payload,
//! never `Other` / a decode error (a dropped reply). Trades are created with the
//! simulator's own test client (`simulator::client`, test set-up only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::venue::auth::{AuthGrant, Credentials, Secret};
use hotpath::venue::conn::{ConnConfig, Connection};
use hotpath::venue::messages::{Message, NotificationData, ResultPayload};
use hotpath::venue::methods;
use hotpath::venue::request::RequestBuf;
use serde_json::json;
use simulator::{SimConfig, Simulator};

const T: Duration = Duration::from_secs(10);

fn creds(id: &str, secret: &str) -> Credentials {
    Credentials { client_id: id.into(), client_secret: Secret::new(secret.into()) }
}

/// The variant name of a reply (or `Error`/`Unexpected`), plus a check closure's verdict.
fn kind_of(r: &ResultPayload<'_>) -> String {
    let s = format!("{r:?}");
    s.split(['(', ' ', '{']).next().unwrap_or("").to_owned()
}

fn query(
    c: &mut Connection,
    method: &'static str,
    fill: impl FnOnce(&mut RequestBuf),
    check: impl Fn(&ResultPayload<'_>) -> bool,
) -> String {
    c.call(
        method,
        fill,
        T,
        |m| match m {
            Message::Response(r) => {
                let k = kind_of(&r.result);
                assert!(check(&r.result), "{method}: unexpected payload {:?}", r.result);
                Ok(k)
            }
            other => panic!("{method}: not a response: {other:?}"),
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{method}: {e:?} (reply dropped or refused)"))
}

#[test]
fn client_decodes_every_simulator_query_reply() {
    let sim = Simulator::start(SimConfig { tick_ms: 50, ..SimConfig::default() }).unwrap();

    // Set-up: trades for the dev account, through the simulator's own test client.
    let mut tc = simulator::client::WsClient::connect(sim.addr()).unwrap();
    tc.auth("sim-dev-trade", "sim-dev-trade-secret-0001").unwrap();
    let r = tc
        .call(
            "private/buy",
            &json!({"instrument_name": "BTC-PERPETUAL", "amount": 100, "type": "market", "label": "conf-fill-1"}),
        )
        .unwrap();
    assert!(!r["trades"].as_array().unwrap().is_empty(), "market buy did not fill: {r}");
    let order_id = r["order"]["order_id"].as_str().unwrap().to_owned();
    // A resting order, for the open-orders and by-label queries.
    let book =
        tc.call("public/get_order_book", &json!({"instrument_name": "BTC-PERPETUAL"})).unwrap();
    let bid = book["best_bid_price"].as_f64().unwrap();
    tc.call(
        "private/buy",
        &json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": (bid * 0.9).round(), "post_only": true, "label": "conf-rest-1"}),
    )
    .unwrap();

    // The real client, read-only key.
    let mut c =
        Connection::connect(&ConnConfig::new(&sim.ws_url()), Arc::new(hotpath::clock::SystemClock))
            .unwrap();
    c.authenticate(
        &creds("sim-dev-read", "sim-dev-read-secret-0002"),
        AuthGrant::ClientSignature,
        None,
        T,
    )
    .unwrap();

    let mut seen = Vec::new();
    seen.push(query(&mut c, methods::GET_TIME, |_| {}, |r| matches!(r, ResultPayload::Integer(_))));
    seen.push(query(
        &mut c,
        methods::GET_INSTRUMENTS,
        |b| {
            b.str("currency", "BTC");
        },
        |r| matches!(r, ResultPayload::Instruments(v) if !v.is_empty()),
    ));
    seen.push(query(
        &mut c,
        methods::GET_ORDER_BOOK,
        |b| {
            b.str("instrument_name", "BTC-PERPETUAL");
        },
        |r| matches!(r, ResultPayload::OrderBook(..)),
    ));
    seen.push(query(
        &mut c,
        methods::TICKER,
        |b| {
            b.str("instrument_name", "BTC-PERPETUAL");
        },
        |r| matches!(r, ResultPayload::Ticker(_)),
    ));
    seen.push(query(
        &mut c,
        methods::GET_POSITIONS,
        |b| {
            b.str("currency", "BTC");
        },
        |r| {
            matches!(r, ResultPayload::Positions(v)
                if v.iter().any(|p| p.instrument_name == "BTC-PERPETUAL"))
        },
    ));
    seen.push(query(
        &mut c,
        methods::GET_ACCOUNT_SUMMARY,
        |b| {
            b.str("currency", "BTC");
        },
        |r| matches!(r, ResultPayload::AccountSummary(_)),
    ));
    seen.push(query(
        &mut c,
        methods::GET_OPEN_ORDERS_BY_CURRENCY,
        |b| {
            b.str("currency", "BTC");
        },
        |r| matches!(r, ResultPayload::Orders(v) if v.iter().any(|o| o.label == "conf-rest-1")),
    ));
    seen.push(query(
        &mut c,
        methods::GET_OPEN_ORDERS_BY_INSTRUMENT,
        |b| {
            b.str("instrument_name", "BTC-PERPETUAL");
        },
        |r| matches!(r, ResultPayload::Orders(v) if !v.is_empty()),
    ));
    seen.push(query(
        &mut c,
        methods::GET_ORDER_STATE_BY_LABEL,
        |b| {
            b.str("currency", "BTC").str("label", "conf-fill-1");
        },
        |r| matches!(r, ResultPayload::Orders(v) if v.iter().any(|o| o.label == "conf-fill-1")),
    ));
    seen.push(query(
        &mut c,
        methods::GET_ORDER_STATE,
        |b| {
            b.str("order_id", &order_id);
        },
        |r| matches!(r, ResultPayload::Order(o) if o.label == "conf-fill-1"),
    ));
    seen.push(query(
        &mut c,
        methods::GET_USER_TRADES_BY_CURRENCY,
        |b| {
            b.str("currency", "BTC").int("count", 100);
        },
        |r| {
            matches!(r, ResultPayload::UserTrades(v, _)
                if v.iter().any(|t| t.label == "conf-fill-1"))
        },
    ));
    seen.push(query(
        &mut c,
        methods::GET_USER_TRADES_BY_INSTRUMENT,
        |b| {
            b.str("instrument_name", "BTC-PERPETUAL").int("count", 100);
        },
        |r| {
            matches!(r, ResultPayload::UserTrades(v, _)
                if v.iter().any(|t| t.label == "conf-fill-1"))
        },
    ));
    seen.push(query(
        &mut c,
        methods::GET_USER_TRADES_BY_ORDER,
        |b| {
            b.str("order_id", &order_id);
        },
        |r| {
            matches!(r, ResultPayload::UserTrades(v, _)
                if !v.is_empty() && v.iter().all(|t| t.label == "conf-fill-1"))
        },
    ));
    // No trades on ETH: an empty but typed reply.
    seen.push(query(
        &mut c,
        methods::GET_USER_TRADES_BY_CURRENCY,
        |b| {
            b.str("currency", "ETH");
        },
        |r| matches!(r, ResultPayload::UserTrades(v, false) if v.is_empty()),
    ));
    assert!(!seen.iter().any(|k| k == "Other"), "{seen:?}");

    // Book subscription: a snapshot, then a change continuing its change id. The snapshot can
    // arrive in the same read as the subscribe reply, so the subscribe call gets the same
    // handler as the polls (a no-op there would swallow it under load).
    let snapshot = std::cell::Cell::new(None);
    let change = std::cell::Cell::new(false);
    let mut on_book = |inc: hotpath::venue::conn::Incoming<'_>| {
        if let Message::Notification(nt) = inc.msg {
            if let NotificationData::Book(b) = &nt.data {
                assert_eq!(nt.channel, "book.BTC-PERPETUAL.raw");
                match (snapshot.get(), b.prev_change_id) {
                    (None, None) => snapshot.set(Some(b.change_id)),
                    (Some(_), Some(_)) => change.set(true),
                    _ => {}
                }
            }
        }
    };
    let n = c.subscribe(&["book.BTC-PERPETUAL.raw"], T, &mut on_book).unwrap();
    assert_eq!(n, 1);
    let deadline = Instant::now() + T;
    while !change.get() && Instant::now() < deadline {
        c.poll(Duration::from_millis(100), &mut on_book).unwrap();
    }
    let (snapshot, change) = (snapshot.get(), change.get());
    assert!(snapshot.is_some() && change, "book snapshot {snapshot:?}, change {change}");
    c.close();
}

/// The engine's in-doubt resolution against the simulator: an intent the engine journaled
/// as sent, whose order filled at the venue, resolves as `Filled` with the venue's fill
/// (the user-trades reply now decodes, so the trade history is read, not skipped).
#[test]
fn in_doubt_intent_that_filled_resolves_filled() {
    use hotpath::dispatch::{Dispatcher, DispatcherConfig, Resolution};
    use hotpath::wal::{IntentLedger, Record};

    let sim = Simulator::start(SimConfig { tick_ms: 50, ..SimConfig::default() }).unwrap();
    let mut canonical = vec![1u8, 1, 13];
    canonical.extend_from_slice(b"BTC-PERPETUAL");
    canonical.push(1);
    let mut ledger = IntentLedger::new();
    for (seq, rec) in [
        Record::IntentRecorded { intent_hash: 41, label: "conf-doubt-fill", canonical: &canonical },
        Record::Sent { intent_hash: 41 },
        Record::IntentRecorded { intent_hash: 42, label: "conf-doubt-none", canonical: &canonical },
    ]
    .iter()
    .enumerate()
    {
        ledger.apply(seq as u64 + 1, 1, rec).unwrap();
    }
    // The "lost" send: the order reached the venue and filled.
    let mut tc = simulator::client::WsClient::connect(sim.addr()).unwrap();
    tc.auth("sim-dev-trade", "sim-dev-trade-secret-0001").unwrap();
    let r = tc
        .call(
            "private/buy",
            &json!({"instrument_name": "BTC-PERPETUAL", "amount": 200, "type": "market", "label": "conf-doubt-fill"}),
        )
        .unwrap();
    let trade_ids: Vec<String> = r["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trade_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!trade_ids.is_empty(), "{r}");

    let mut d = Dispatcher::connect(
        &DispatcherConfig::new(&sim.ws_url()),
        Arc::new(hotpath::clock::SystemClock),
        &creds("sim-dev-trade", "sim-dev-trade-secret-0001"),
    )
    .unwrap();
    let mut other = Vec::new();
    let res = d.resolve_in_doubt(&ledger, &mut other).unwrap();
    assert_eq!(res.len(), 2, "{res:?}");
    let mut seen = 0;
    for r in &res {
        match r {
            Resolution::Filled { intent_hash: 41, filled, trade_id, .. } => {
                assert_eq!(filled.to_string(), "200", "{r:?}");
                // The trade id only comes from the trade history: "" if it went unread.
                assert!(trade_ids.contains(trade_id), "{r:?} vs {trade_ids:?}");
                seen += 1;
            }
            Resolution::NeverSeen { intent_hash: 42 } => seen += 1,
            other => panic!("unexpected resolution {other:?}"),
        }
    }
    assert_eq!(seen, 2);
    d.close();
}
