//! Behaviour of the venue over a real loopback WebSocket/HTTP client.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use simulator::journal::Summary;
use simulator::Fault;

fn hmac_hex(secret: &str, msg: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}

#[test]
fn envelope_and_public_methods() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    let r = c.call("public/get_time", json!({}));
    for k in ["jsonrpc", "id", "result", "usIn", "usOut", "usDiff", "testnet"] {
        assert!(r.get(k).is_some(), "envelope lacks {k}: {r}");
    }
    assert_eq!(
        r["usDiff"].as_i64(),
        Some(r["usOut"].as_i64().unwrap() - r["usIn"].as_i64().unwrap())
    );
    let all = c.ok("public/get_instruments", json!({"currency": "any"}));
    let btc_opts = c.ok("public/get_instruments", json!({"currency": "BTC", "kind": "option"}));
    assert!(btc_opts.as_array().unwrap().len() < all.as_array().unwrap().len());
    assert!(btc_opts
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["kind"] == "option" && i["base_currency"] == "BTC"));
    let perp = c.ok("public/get_instrument", json!({"instrument_name": "BTC-PERPETUAL"}));
    assert_eq!(perp["contract_size"], json!(10.0));
    assert_eq!(perp["min_trade_amount"], json!(10.0));
    assert_eq!(c.ok("public/test", json!({}))["version"], json!("1.2.26"));
    assert_eq!(c.ok("public/status", json!({}))["locked"], json!("false"));
    assert_eq!(c.err("public/get_order_book", json!({"instrument_name": "NOPE"})), 13020);
    let s =
        c.ok("public/get_book_summary_by_currency", json!({"currency": "ETH", "kind": "future"}));
    assert!(s.as_array().unwrap().iter().any(|x| x["instrument_name"] == "ETH-PERPETUAL"));
}

#[test]
fn malformed_input_gets_error_envelopes_and_the_connection_survives() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.send_text("{not json");
    assert_eq!(c.next().unwrap()["error"]["code"], json!(-32700));
    c.send_text("[1,2,3]");
    assert_eq!(c.next().unwrap()["error"]["code"], json!(-32600));
    c.send_text(r#"{"jsonrpc":"2.0","id":5,"method":"public/get_time","params":[1]}"#);
    let r = c.next().unwrap();
    assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (json!(5), json!(-32602)));
    assert_eq!(c.err("public/no_such_method", json!({})), -32601);
    assert_eq!(c.err("private/submit_transfer_to_user", json!({})), -32601);
    // A served private method without auth is 10000, whatever its params (tests/wallet.rs).
    assert_eq!(c.err("private/withdraw", json!({})), 10000);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":6,"method":"public/test","params":{{"pad":"{}"}}}}"#,
        "x".repeat(40_000)
    );
    c.send_text(&big);
    assert_eq!(c.next().unwrap()["error"]["code"], json!(-32600));
    assert_eq!(c.err("public/get_order_book", json!({"instrument_name": 5})), -32602);
    c.auth(DEV_TRADE);
    assert_eq!(c.err("private/buy", json!({"instrument_name": "BTC-PERPETUAL"})), -32602);
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": "ten", "price": 1})
        ),
        -32602
    );
    // Still usable.
    assert!(c.ok("public/get_time", json!({})).as_i64().unwrap() > 0);
}

#[test]
fn scopes_are_enforced_per_method() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    assert_eq!(c.err("private/get_positions", json!({"currency": "BTC"})), 10000);
    let a = c.auth(DEV_READ);
    assert!(a["scope"].as_str().unwrap().contains("trade:read"));
    assert!(!a["scope"].as_str().unwrap().contains("trade:read_write"));
    assert!(c.ok("private/get_open_orders_by_currency", json!({"currency": "BTC"})).is_array());
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 50000})
        ),
        13021
    );
    assert_eq!(c.err("private/cancel_all", json!({})), 13021);
    assert_eq!(c.err("private/enable_cancel_on_disconnect", json!({})), 13021);
    let mut n = Client::connect(sim.handle.addr());
    n.auth(PROBE_NONE);
    assert_eq!(n.err("private/get_account_summary", json!({"currency": "BTC"})), 13021);
    assert_eq!(n.err("private/get_positions", json!({"currency": "BTC"})), 13021);
    // A token asked with narrower scopes is narrowed.
    let mut t = Client::connect(sim.handle.addr());
    let r = t.ok("public/auth", json!({"grant_type": "client_credentials", "client_id": DEV_TRADE.0, "client_secret": DEV_TRADE.1, "scope": "trade:read"}));
    assert!(r["scope"].as_str().unwrap().contains("trade:read "));
    assert_eq!(
        t.err(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 50000})
        ),
        13021
    );
    assert_eq!(t.err("public/auth", json!({"grant_type": "client_credentials", "client_id": DEV_TRADE.0, "client_secret": "wrong-secret"})), 13004);
}

#[test]
fn client_signature_and_refresh_token_auth() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    let ts = now_ms();
    let sig = hmac_hex(DEV_TRADE.1, &format!("{ts}\nabcd1234\n"));
    let r = c.ok("public/auth", json!({"grant_type": "client_signature", "client_id": DEV_TRADE.0, "timestamp": ts, "nonce": "abcd1234", "data": "", "signature": sig}));
    assert_eq!(r["token_type"], json!("bearer"));
    // Same nonce again is refused; a wrong signature is refused; a stale timestamp is refused.
    assert_ne!(c.call("public/auth", json!({"grant_type": "client_signature", "client_id": DEV_TRADE.0, "timestamp": ts, "nonce": "abcd1234", "data": "", "signature": sig}))["error"], Value::Null);
    let bad = hmac_hex(DEV_TRADE.1, &format!("{ts}\nzzzz9999")); // the classic missing "\n"
    assert_eq!(c.err("public/auth", json!({"grant_type": "client_signature", "client_id": DEV_TRADE.0, "timestamp": ts, "nonce": "zzzz9999", "signature": bad})), 13009);
    let old = ts - 120_000;
    let sig_old = hmac_hex(DEV_TRADE.1, &format!("{old}\nyyyy8888\n"));
    assert_eq!(c.err("public/auth", json!({"grant_type": "client_signature", "client_id": DEV_TRADE.0, "timestamp": old, "nonce": "yyyy8888", "signature": sig_old})), -32602);
    let r2 = c.ok(
        "public/auth",
        json!({"grant_type": "refresh_token", "refresh_token": r["refresh_token"]}),
    );
    assert_ne!(r2["access_token"], r["access_token"]);
    assert_eq!(
        c.err(
            "public/auth",
            json!({"grant_type": "refresh_token", "refresh_token": r["refresh_token"]})
        ),
        13009
    );
    // A token passed as a parameter authorises a request on an unauthenticated socket.
    let mut d = Client::connect(sim.handle.addr());
    assert!(d
        .ok("private/get_positions", json!({"currency": "BTC", "access_token": r2["access_token"]}))
        .is_array());
    assert_eq!(
        d.err("private/get_positions", json!({"currency": "BTC", "access_token": "nope"})),
        13009
    );
}

#[test]
fn http_auth_schemes() {
    use base64::Engine as _;
    let sim = start();
    let addr = sim.handle.addr();
    let (st, body) = http(addr, "GET", "/api/v2/public/get_time", &[], "");
    assert_eq!(st, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["result"].as_i64().is_some());
    let target = "/api/v2/private/get_account_summary?currency=BTC";
    let (st, body) = http(addr, "GET", target, &[], "");
    assert_eq!(
        (st, serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone()),
        (400, json!(10000))
    );
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", DEV_TRADE.0, DEV_TRADE.1));
    let (st, body) = http(addr, "GET", target, &[("Authorization", format!("Basic {basic}"))], "");
    assert_eq!(st, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"]["currency"], json!("BTC"));
    let ts = now_ms();
    let sig = hmac_hex(DEV_TRADE.1, &format!("{ts}\nn0nce001\nGET\n{target}\n\n"));
    let hdr = format!("deri-hmac-sha256 id={},ts={ts},sig={sig},nonce=n0nce001", DEV_TRADE.0);
    let (st, body) = http(addr, "GET", target, &[("Authorization", hdr)], "");
    assert_eq!(st, 200, "{body}");
    let bad = format!(
        "deri-hmac-sha256 id={},ts={ts},sig={},nonce=n0nce002",
        DEV_TRADE.0,
        "0".repeat(64)
    );
    let (_, body) = http(addr, "GET", target, &[("Authorization", bad)], "");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], json!(13009));
    // POST with a JSON-RPC body and a bearer token from public/auth.
    let (_, body) = http(
        addr,
        "GET",
        &format!(
            "/api/v2/public/auth?grant_type=client_credentials&client_id={}&client_secret={}",
            DEV_TRADE.0, DEV_TRADE.1
        ),
        &[],
        "",
    );
    let tok = serde_json::from_str::<Value>(&body).unwrap()["result"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let req = json!({"jsonrpc": "2.0", "id": 9, "method": "private/get_positions", "params": {"currency": "BTC"}}).to_string();
    let (st, body) = http(
        addr,
        "POST",
        "/api/v2/private/get_positions",
        &[("Authorization", format!("Bearer {tok}")), ("Content-Type", "application/json".into())],
        &req,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["id"], json!(9));
    // WebSocket-only methods over HTTP.
    let (_, body) = http(addr, "GET", "/api/v2/public/subscribe?channels=x", &[], "");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], json!(10030));
}

#[test]
fn rate_limit_10028_closes_the_connection() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE); // matching engine: burst 100
    let mut saw = None;
    let t0 = std::time::Instant::now();
    for i in 0..400 {
        let r = c.call("private/cancel", json!({"order_id": "1"}));
        if r["error"]["code"] == json!(10028) {
            saw = Some(i);
            break;
        }
        assert_eq!(r["error"]["code"], json!(10004));
    }
    let i = saw.expect("10028 within 400 requests");
    // Burst 100, refilled at 30/s while the loop ran.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let refill = (t0.elapsed().as_secs_f64() * 30.0).ceil() as usize;
    assert!(
        i >= 100 && i <= 100 + refill + 1,
        "burst of 100 (+{refill} refilled) before 10028, got {i}"
    );
    assert!(c.next().is_none(), "the venue closes the session after 10028");
    // The journal saw every cancel including the refused one.
    let text = std::fs::read_to_string(sim.handle.journal_path()).unwrap();
    assert!(text.lines().any(|l| l.contains("\"error\":10028")));
}

#[test]
fn storm_fault_gives_10028() {
    let sim = start();
    sim.handle.faults().apply(&Fault::RateLimitStorm { seconds: 5.0 });
    let mut c = Client::connect(sim.handle.addr());
    assert_eq!(c.err("public/get_time", json!({})), 10028);
    assert!(c.next().is_none());
    sim.handle.faults().clear();
    let mut c = Client::connect(sim.handle.addr());
    assert!(c.ok("public/get_time", json!({})).is_i64());
}

#[test]
fn post_only_reprice_reject_and_label_checks() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    sim.handle.faults().apply(&Fault::FreezeMarketData { on: true });
    let (name, _bid, ask) = pick_option(&mut c);
    let code = c.err("private/buy", json!({"instrument_name": name, "amount": 0.5, "price": ask, "post_only": true, "reject_post_only": true, "label": "po-rej"}));
    assert_eq!(code, 11054);
    let r = c.ok("private/buy", json!({"instrument_name": name, "amount": 0.5, "price": ask, "post_only": true, "label": "po-rep"}));
    let p = r["order"]["price"].as_f64().unwrap();
    assert!(p < ask, "repriced below the best ask: {p} vs {ask}");
    assert_eq!(r["order"]["order_state"], json!("open"));
    assert!(r["trades"].as_array().unwrap().is_empty());
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": name, "amount": 0.5, "price": 0.0052, "label": "tick"})
        ),
        10043
    );
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": name, "amount": 0.05, "price": 0.005, "label": "min"})
        ),
        10002
    );
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": name, "amount": 0.5, "price": 0.005, "label": "x".repeat(65)})
        ),
        -32602
    );
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 15, "price": 90000})
        ),
        10021
    );
    // Market and stop orders are accepted, as the venue does; the journal flags them.
    let m = c.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "market", "label": "mkt"}),
    );
    assert_eq!(m["order"]["price"], json!("market_price"));
    let s = c.ok("private/sell", json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "stop_market", "trigger": "mark_price", "trigger_price": 1000.0, "label": "stop"}));
    assert_eq!(s["order"]["order_state"], json!("untriggered"));
    c.ok(
        "private/buy",
        json!({"instrument_name": name, "amount": 0.5, "price": 0.0005, "label": "dup"}),
    );
    c.ok(
        "private/buy",
        json!({"instrument_name": name, "amount": 0.5, "price": 0.0005, "label": "dup"}),
    );
    let sum = Summary::from_file(sim.handle.journal_path()).unwrap();
    assert_eq!(sum.duplicate_dispatch_count, 1, "{sum:?}");
    assert_eq!(sum.duplicate_labels, vec!["dup".to_string()]);
    // Market + stop are illegal. po-rej (crossed) and po-rep (crossed, repriced) crossed a
    // book this client was never sent (it did not subscribe): races, not illegal.
    assert_eq!(sum.illegal_order_attempts, 2, "{sum:?}");
    assert_eq!(sum.post_only_in_flight_races, 2, "{sum:?}");
    assert_eq!(c.ok("private/cancel_by_label", json!({"label": "dup"})), json!(2));
    assert_eq!(
        c.err(
            "private/cancel",
            json!({"order_id": r["order"]["order_id"].as_str().unwrap().to_string() + "9"})
        ),
        10004
    );
}

#[test]
fn fills_positions_and_account() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    sim.handle.faults().apply(&Fault::FreezeMarketData { on: true });
    let (name, _bid, ask) = pick_option(&mut c);
    let before = c.ok("private/get_account_summary", json!({"currency": "BTC"}));
    let r = c.ok("private/buy", json!({"instrument_name": name, "amount": 1.0, "price": ask, "time_in_force": "immediate_or_cancel", "label": "ioc"}));
    let trades = r["trades"].as_array().unwrap();
    assert!(!trades.is_empty());
    let filled: f64 = trades.iter().map(|t| t["amount"].as_f64().unwrap()).sum();
    assert!((filled - r["order"]["filled_amount"].as_f64().unwrap()).abs() < 1e-12);
    let fee: f64 = trades.iter().map(|t| t["fee"].as_f64().unwrap()).sum();
    let expect_fee: f64 = trades
        .iter()
        .map(|t| {
            (0.0003 * t["amount"].as_f64().unwrap())
                .min(0.125 * t["price"].as_f64().unwrap() * t["amount"].as_f64().unwrap())
        })
        .sum();
    assert!((fee - expect_fee).abs() < 1e-9, "fee {fee} vs {expect_fee}");
    let pos = c.ok("private/get_position", json!({"instrument_name": name}));
    assert!((pos["size"].as_f64().unwrap() - filled).abs() < 1e-12);
    assert_eq!(pos["direction"], json!("buy"));
    let after = c.ok("private/get_account_summary", json!({"currency": "BTC"}));
    let paid: f64 =
        trades.iter().map(|t| t["price"].as_f64().unwrap() * t["amount"].as_f64().unwrap()).sum();
    let bal_drop = before["balance"].as_f64().unwrap() - after["balance"].as_f64().unwrap();
    assert!(
        (bal_drop - paid - fee).abs() < 1e-8,
        "balance moved {bal_drop}, premium {paid} + fee {fee}"
    );
    let ut = c.ok("private/get_user_trades_by_instrument", json!({"instrument_name": name}));
    assert_eq!(ut["trades"].as_array().unwrap().len(), trades.len());
    let by_order =
        c.ok("private/get_user_trades_by_order", json!({"order_id": r["order"]["order_id"]}));
    assert_eq!(by_order.as_array().unwrap().len(), trades.len());
    // FOK larger than the book: cancelled, nothing filled.
    let f = c.ok("private/buy", json!({"instrument_name": name, "amount": 100.0, "price": ask, "time_in_force": "fill_or_kill"}));
    assert_eq!(f["order"]["order_state"], json!("cancelled"));
    assert_eq!(f["order"]["filled_amount"], json!(0.0));
    // Reduce-only sell of more than the position is clipped to it.
    let ro = c.ok("private/sell", json!({"instrument_name": name, "amount": filled + 5.0, "price": 0.0001, "reduce_only": true, "time_in_force": "immediate_or_cancel"}));
    assert!(ro["order"]["amount"].as_f64().unwrap() <= filled + 1e-12);
    // Edit: size down keeps the order, price change moves it.
    let o = c.ok("private/buy", json!({"instrument_name": name, "amount": 2.0, "price": 0.0005}));
    let id = o["order"]["order_id"].clone();
    let e = c.ok("private/edit", json!({"order_id": id, "amount": 1.0, "price": 0.0005}));
    assert_eq!(
        (e["order"]["amount"].clone(), e["order"]["replaced"].clone()),
        (json!(1.0), json!(true))
    );
    let e = c.ok("private/edit", json!({"order_id": id, "amount": 1.0, "price": 0.0006}));
    assert_eq!(e["order"]["price"], json!(0.0006));
    c.ok("private/cancel", json!({"order_id": id}));
    assert_eq!(c.err("private/cancel", json!({"order_id": id})), 11044);
    assert_eq!(
        c.err("private/edit", json!({"order_id": id, "amount": 1.0, "price": 0.0006})),
        11044
    );
    let st = c.ok("private/get_order_state", json!({"order_id": id}));
    assert_eq!(
        (st["order_state"].clone(), st["cancel_reason"].clone()),
        (json!("cancelled"), json!("user_request"))
    );
    sim.handle.with_engine(|e| e.check_invariants()).unwrap();
}

#[test]
fn cancel_on_disconnect_cancels_that_connections_orders() {
    let sim = start();
    let mut a = Client::connect(sim.handle.addr());
    a.auth(DEV_TRADE);
    assert_eq!(a.ok("private/enable_cancel_on_disconnect", json!({})), json!("ok"));
    let o = a.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 98000, "label": "cod-a"}),
    );
    let mut b = Client::connect(sim.handle.addr());
    b.auth(DEV_TRADE);
    b.ok("private/subscribe", json!({"channels": ["user.orders.future.BTC.raw"]}));
    let keep = b.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 98000, "label": "cod-b"}),
    );
    drop(a);
    let n = b.note("user.orders.future.BTC.raw", Duration::from_secs(5));
    // The first note may be b's own order; look for the COD cancel.
    let mut found = false;
    let mut cur = n;
    for _ in 0..10 {
        let Some(m) = cur else { break };
        let d = &m["params"]["data"];
        if d["order_id"] == o["order"]["order_id"] {
            assert_eq!(d["order_state"], json!("cancelled"));
            assert_eq!(d["cancel_reason"], json!("cancel_on_disconnect"));
            found = true;
            break;
        }
        cur = b.note("user.orders.future.BTC.raw", Duration::from_secs(5));
    }
    assert!(found, "no cancel_on_disconnect notification");
    let st = b.ok("private/get_order_state", json!({"order_id": keep["order"]["order_id"]}));
    assert_eq!(st["order_state"], json!("open"), "other connection's order survives");
}

#[test]
fn book_subscription_snapshot_changes_and_injected_gap() {
    let sim = start_with(|c| c.tick_ms = 10);
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    let ch = "book.BTC-PERPETUAL.raw";
    assert_eq!(c.ok("public/subscribe", json!({"channels": [ch, "book.NOPE.raw"]})), json!([ch]));
    let snap = c.note(ch, Duration::from_secs(5)).expect("snapshot");
    assert_eq!(snap["params"]["data"]["type"], json!("snapshot"));
    assert!(snap["params"]["data"].get("prev_change_id").is_none());
    let mut last = snap["params"]["data"]["change_id"].as_u64().unwrap();
    for _ in 0..5 {
        let m = c.note(ch, Duration::from_secs(5)).expect("change");
        let d = &m["params"]["data"];
        assert_eq!(d["type"], json!("change"));
        assert_eq!(d["prev_change_id"].as_u64(), Some(last), "continuity");
        last = d["change_id"].as_u64().unwrap();
    }
    sim.handle.faults().drop_book_messages(1, Some("BTC-PERPETUAL"));
    let m = c.note(ch, Duration::from_secs(5)).expect("change after drop");
    assert_ne!(
        m["params"]["data"]["prev_change_id"].as_u64(),
        Some(last),
        "an injected drop shows as a gap"
    );
    // Resubscribe gives a fresh snapshot.
    c.ok("public/unsubscribe", json!({"channels": [ch]}));
    c.notes.clear();
    c.ok("public/subscribe", json!({"channels": [ch]}));
    let s2 = c.note(ch, Duration::from_secs(5)).unwrap();
    assert_eq!(s2["params"]["data"]["type"], json!("snapshot"));
    // Unauthenticated raw subscription is refused.
    let mut u = Client::connect(sim.handle.addr());
    assert_eq!(u.err("public/subscribe", json!({"channels": [ch]})), 13778);
    assert_eq!(
        u.ok(
            "public/subscribe",
            json!({"channels": ["book.BTC-PERPETUAL.100ms", "deribit_price_index.btc_usd"]})
        )
        .as_array()
        .unwrap()
        .len(),
        2
    );
    assert!(u.note("deribit_price_index.btc_usd", Duration::from_secs(5)).is_some());
}

#[test]
fn heartbeat_test_request_and_disconnect_when_unanswered() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    assert_eq!(c.err("public/set_heartbeat", json!({"interval": 0})), -32602);
    assert_eq!(c.ok("public/set_heartbeat", json!({"interval": 1})), json!("ok"));
    let m = c.note("", Duration::from_secs(0)).or_else(|| c.next()).expect("test_request");
    assert_eq!(m["method"], json!("heartbeat"));
    assert_eq!(m["params"]["type"], json!("test_request"));
    c.ok("public/test", json!({}));
    let m = c.next().expect("second test_request");
    assert_eq!(m["params"]["type"], json!("test_request"));
    // Not answering: the next tick closes the connection.
    let t0 = std::time::Instant::now();
    assert!(c.next().is_none());
    assert!(t0.elapsed() < Duration::from_secs(4));
}

#[test]
fn maintenance_and_reject_next_faults() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    c.ok("public/subscribe", json!({"channels": ["platform_state"]}));
    let (st, _) =
        http(sim.handle.addr(), "POST", "/sim/fault", &[], r#"{"kind":"maintenance","on":true}"#);
    assert_eq!(st, 200);
    let n = c.note("platform_state", Duration::from_secs(5)).unwrap();
    assert_eq!(n["params"]["data"], json!({"maintenance": true}));
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 98000})
        ),
        11051
    );
    let (st, _) = http(sim.handle.addr(), "POST", "/sim/fault", &[], r#"{"kind":"clear"}"#);
    assert_eq!(st, 200);
    let (st, _) = http(sim.handle.addr(), "POST", "/sim/fault", &[], r#"{"kind":"bogus"}"#);
    assert_eq!(st, 400);
    sim.handle
        .faults()
        .apply(&Fault::RejectNextOrder { instrument: "BTC-PERPETUAL".into(), code: None });
    assert_eq!(
        c.err(
            "private/buy",
            json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 98000})
        ),
        11030
    );
    assert!(c.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 98000})
    )["order"]
        .is_object());
    sim.handle.faults().apply(&Fault::ClockSkew { ms: 3_600_000 });
    let t = c.ok("public/get_time", json!({})).as_i64().unwrap();
    assert!(t - now_ms() > 3_500_000);
    let (st, body) = http(sim.handle.addr(), "GET", "/sim/state", &[], "");
    assert_eq!(st, 200);
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["accounts"][0]["open_orders"].as_array().unwrap().len(), 1);
}

#[test]
fn delayed_fills_arrive_late_on_user_channels() {
    let sim = start_with(|c| c.tick_ms = 10);
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    c.ok("private/subscribe", json!({"channels": ["user.trades.future.BTC.raw"]}));
    sim.handle.faults().apply(&Fault::DelayFills { ms: 200 });
    let ob = c.ok("public/get_order_book", json!({"instrument_name": "BTC-PERPETUAL"}));
    let ask = ob["best_ask_price"].as_f64().unwrap();
    let r = c.ok("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": ask + 50.0, "label": "late"}));
    assert_eq!(r["order"]["order_state"], json!("open"));
    assert!(r["trades"].as_array().unwrap().is_empty());
    let t = c.note("user.trades.future.BTC.raw", Duration::from_secs(5)).expect("late fill");
    assert_eq!(t["params"]["data"][0]["label"], json!("late"));
}

#[test]
fn partial_fill_fault_caps_the_fill() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    sim.handle.faults().apply(&Fault::FreezeMarketData { on: true });
    sim.handle.faults().apply(&Fault::PartialFill { fraction: 0.5 });
    let ob = c.ok("public/get_order_book", json!({"instrument_name": "BTC-PERPETUAL"}));
    let ask = ob["best_ask_price"].as_f64().unwrap();
    let r = c.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 100, "price": ask + 20.0}),
    );
    assert_eq!(r["order"]["filled_amount"], json!(50.0));
    assert_eq!(r["order"]["order_state"], json!("open"));
    sim.handle.with_engine(|e| e.check_invariants()).unwrap();
}

#[test]
fn same_seed_same_market() {
    let run = |seed: u64| {
        let sim = start_with(|c| {
            c.seed = seed;
            c.tick_ms = 60_000;
        });
        sim.handle.with_engine(|e| {
            let i = e.inst("BTC-PERPETUAL").unwrap();
            (e.books[i].levels(simulator::book::Side::Buy, 5), e.md[i].change_id)
        })
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn reorder_and_disconnect_all_faults() {
    let sim = start_with(|c| c.tick_ms = 10);
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    let ch = "book.ETH-PERPETUAL.raw";
    c.ok("private/subscribe", json!({"channels": [ch]}));
    let snap = c.note(ch, Duration::from_secs(5)).unwrap();
    let mut last = snap["params"]["data"]["change_id"].as_u64().unwrap();
    sim.handle
        .faults()
        .apply(&Fault::ReorderBookMessages { count: 1, instrument: Some("ETH-PERPETUAL".into()) });
    // Messages queued before the fault chain normally; the swapped pair breaks the chain.
    let mut broken = false;
    for _ in 0..50 {
        let m = c.note(ch, Duration::from_secs(5)).unwrap();
        let d = &m["params"]["data"];
        if d["prev_change_id"].as_u64() != Some(last) {
            broken = true;
            break;
        }
        last = d["change_id"].as_u64().unwrap();
    }
    assert!(broken, "a reordered pair shows as a chain break");
    c.ok("public/get_time", json!({}));
    sim.handle.faults().disconnect_all();
    let mut closed = false;
    for _ in 0..1000 {
        if c.next().is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "disconnect_all closes the session");
}

#[test]
fn connection_count_is_bounded() {
    let sim = start_with(|c| c.connections_max = 2);
    let mut a = Client::connect(sim.handle.addr());
    let mut b = Client::connect(sim.handle.addr());
    let (st, _) = http(sim.handle.addr(), "GET", "/api/v2/public/get_time", &[], "");
    assert_eq!(st, 429, "the connection over the limit is refused");
    assert!(a.ok("public/get_time", json!({})).is_i64());
    assert!(b.ok("public/get_time", json!({})).is_i64());
    drop(a);
    // The slot frees once the server notices the close.
    let mut ok = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(20));
        if http(sim.handle.addr(), "GET", "/api/v2/public/get_time", &[], "").0 == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok);
}

#[test]
fn journal_summary_counts_from_entries() {
    use simulator::journal::{Entry, Journal};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("j.jsonl");
    let mut j = Journal::create(&p).unwrap();
    let e = |method: &str, label: &str, ty: &str, flags: Value| Entry {
        seq: 0,
        ts_ms: 0,
        session: 1,
        key: "k".into(),
        method: method.into(),
        instrument: Some("BTC-PERPETUAL".into()),
        label: Some(label.into()),
        order_type: Some(ty.into()),
        side: Some("buy".into()),
        amount: Some(10.0),
        price: Some(1.0),
        order_id: None,
        flags: flags.as_object().cloned().unwrap_or_default(),
        result: json!({"order_id": "1", "order_state": "open"}),
    };
    j.append(e("private/buy", "a", "limit", json!({})));
    j.append(e("private/sell", "a", "limit", json!({})));
    j.append(e("private/buy", "a", "limit", json!({})));
    j.append(e("private/edit", "a", "limit", json!({})));
    j.append(e("private/buy", "", "limit", json!({})));
    j.append(e("private/buy", "", "limit", json!({})));
    j.append(e("private/buy", "b", "stop_limit", json!({})));
    j.append(e("private/buy", "c", "limit", json!({"linked_order_type": "one_triggers_other"})));
    j.append(e("private/buy", "d", "limit", json!({"post_only_crossed": true})));
    j.append(e("private/buy", "f", "limit", json!({"price_missing": true})));
    j.append(e("private/buy", "g", "limit", json!({"post_only": true})));
    // Crossing post-only orders: against a top published long enough ago (illegal), against
    // a change not yet published or published just before (races, not illegal).
    j.append(e(
        "private/buy",
        "h",
        "limit",
        json!({"post_only_crossed": true, "post_only_cross_published_ms": 1_000}),
    ));
    j.append(e(
        "private/buy",
        "i",
        "limit",
        json!({"post_only_crossed": true, "post_only_cross_published_ms": 999}),
    ));
    j.append(e(
        "private/buy",
        "k",
        "limit",
        json!({"post_only_crossed": true, "post_only_cross_unpublished": true}),
    ));
    drop(j);
    let s = Summary::from_file(&p).unwrap();
    assert_eq!(s.new_order_requests, 13);
    assert_eq!(s.duplicate_dispatch_count, 2);
    assert_eq!(s.duplicate_labels, vec!["a".to_string()]);
    assert_eq!(s.illegal_order_attempts, 5);
    assert_eq!(s.illegal_seqs, vec![7, 8, 9, 10, 12]);
    assert_eq!(s.post_only_in_flight_races, 2);
}

/// The venue records what it had published about a crossing post-only order's price: a
/// top of book the client has held for over a second makes the order illegal in the journal
/// oracle; a client without the book (no subscription, so nothing was sent) only raced.
#[test]
fn journal_judges_crossing_post_only_by_the_book_the_client_was_sent() {
    // A market that does not tick during the test: the top the client holds stays the top.
    let sim = start_with(|c| c.tick_ms = 60_000);
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    let ask = |c: &mut Client| {
        let b = c.ok("public/get_order_book", json!({"instrument_name": "BTC-PERPETUAL"}));
        b["best_ask_price"].as_f64().unwrap()
    };
    // Nothing sent to anyone yet for this instrument: the crossing is a race.
    let a = ask(&mut c);
    let r = c.call(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": a, "post_only": true, "reject_post_only": true, "label": "race"}),
    );
    assert_eq!(r["error"]["code"], json!(11054), "{r}");
    // Subscribe, hold the snapshot well past the grace, then cross the top it showed.
    c.ok("public/subscribe", json!({"channels": ["book.BTC-PERPETUAL.100ms"]}));
    std::thread::sleep(std::time::Duration::from_millis(
        u64::try_from(simulator::journal::POST_ONLY_IN_FLIGHT_GRACE_MS).unwrap() + 300,
    ));
    let a = ask(&mut c);
    let r = c.call(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": a, "post_only": true, "reject_post_only": true, "label": "known"}),
    );
    assert_eq!(r["error"]["code"], json!(11054), "{r}");
    let s = Summary::from_file(sim.handle.journal_path()).unwrap();
    assert_eq!(s.post_only_in_flight_races, 1, "{s:?}");
    assert_eq!(s.illegal_order_attempts, 1, "{s:?}");
}

#[test]
fn label_based_queries_and_edits() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    c.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 90000, "label": "L1"}),
    );
    assert_eq!(
        c.ok("private/get_open_orders_by_label", json!({"currency": "BTC", "label": "L1"}))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let e = c.ok(
        "private/edit_by_label",
        json!({"label": "L1", "instrument_name": "BTC-PERPETUAL", "amount": 20, "price": 90000}),
    );
    assert_eq!(e["order"]["amount"], json!(20.0));
    c.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 90000, "label": "L1"}),
    );
    assert_eq!(
        c.err("private/edit_by_label", json!({"label": "L1", "amount": 20, "price": 90000})),
        13032
    );
    assert_eq!(
        c.err("private/edit_by_label", json!({"label": "none", "amount": 20, "price": 90000})),
        10004
    );
    let st = c.ok("private/get_order_state_by_label", json!({"currency": "BTC", "label": "L1"}));
    assert_eq!(st.as_array().unwrap().len(), 2);
    let text = std::fs::read_to_string(sim.handle.journal_path()).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("private/edit_by_label")).count(), 3);
}

#[test]
fn handles_are_send_for_embedding() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<simulator::SimHandle>();
    send_sync::<simulator::Faults>();
}
