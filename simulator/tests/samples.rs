//! Conformance: the simulator's replies and notifications have the shapes of the venue
//! samples in tests/fixtures/venue_samples (a copy of ../shared/venue/samples) (every key the sample has, recursively, is present).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use simulator::Fault;

fn samples_dir() -> PathBuf {
    if let Ok(p) = std::env::var("STOIC_SAMPLES") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/venue_samples")
}

fn sample(name: &str) -> Value {
    let p = samples_dir().join(name);
    let t = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (set STOIC_SAMPLES)", p.display()));
    serde_json::from_str(&t).unwrap()
}

/// Keys a sample carries that the simulator deliberately does not emit (old field names
/// or fields of features it does not model).
const NOT_MODELLED: &[&str] = &["stop_price", "implv", "advanced"];

/// Every key of `want` exists in `got`, recursively (arrays: first elements).
fn shape(want: &Value, got: &Value, path: &str, missing: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                if NOT_MODELLED.contains(&k.as_str()) {
                    continue;
                }
                match g.get(k) {
                    Some(gv) => shape(wv, gv, &format!("{path}.{k}"), missing),
                    None => missing.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if let (Some(w0), Some(g0)) = (w.first(), g.first()) {
                shape(w0, g0, &format!("{path}[0]"), missing);
            }
        }
        (Value::Object(_), other) | (Value::Array(_), other) => {
            missing.push(format!("{path}: expected container, got {other}"));
        }
        _ => {}
    }
}

fn check(sample_name: &str, got: &Value) {
    let want = sample(sample_name);
    // Compare result/params.data (envelope keys of doc examples vary by age).
    let (w, g) = if want.get("result").is_some() {
        (&want["result"], &got["result"])
    } else if want.get("error").is_some() {
        (&want["error"], &got["error"])
    } else {
        (&want["params"]["data"], &got["params"]["data"])
    };
    let mut missing = Vec::new();
    shape(w, g, "", &mut missing);
    assert!(missing.is_empty(), "{sample_name}: missing {missing:?}\n got {got}");
    if want.get("usIn").is_some() || want.get("result").is_some() || want.get("error").is_some() {
        for k in ["jsonrpc", "id", "usIn", "usOut", "usDiff", "testnet"] {
            if got.get("method").is_none() {
                assert!(got.get(k).is_some(), "{sample_name}: envelope lacks {k}");
            }
        }
    }
}

#[test]
fn replies_have_the_sample_shapes() {
    let sim = start();
    let f = sim.handle.faults();
    f.apply(&Fault::FreezeMarketData { on: true });
    let mut c = Client::connect(sim.handle.addr());
    check("get_time_response.json", &c.call("public/get_time", json!({})));
    check("public_test_response.json", &c.call("public/test", json!({})));
    let auth = c.call("public/auth", json!({"grant_type": "client_credentials", "client_id": DEV_TRADE.0, "client_secret": DEV_TRADE.1}));
    check("auth_response.json", &auth);
    check("auth_response_doc_example.json", &auth);
    check("set_heartbeat_response.json", &c.call("public/set_heartbeat", json!({"interval": 30})));
    check(
        "enable_cancel_on_disconnect_response.json",
        &c.call("private/enable_cancel_on_disconnect", json!({})),
    );
    check(
        "get_instruments_option_btc.json",
        &c.call("public/get_instruments", json!({"currency": "BTC", "kind": "option"})),
    );
    check(
        "get_instruments_option_eth.json",
        &c.call("public/get_instruments", json!({"currency": "ETH", "kind": "option"})),
    );
    let perp = c.call("public/get_instruments", json!({"currency": "BTC", "kind": "future"}));
    check("get_instruments_perpetual_btc.json", &perp);
    check("get_instruments_future_btc_doc.json", &perp);
    let (opt, _bid, ask) = pick_option(&mut c);
    check(
        "get_order_book_option.json",
        &c.call("public/get_order_book", json!({"instrument_name": opt})),
    );
    check(
        "get_order_book_perpetual_doc.json",
        &c.call("public/get_order_book", json!({"instrument_name": "BTC-PERPETUAL"})),
    );
    check("ticker_option_response.json", &c.call("public/ticker", json!({"instrument_name": opt})));
    check("subscribe_response.json", &c.call("private/subscribe", json!({"channels": [
        "user.orders.option.BTC.raw", "user.orders.future.BTC.100ms", "user.trades.future.BTC.100ms", "user.changes.future.BTC.raw",
        "user.portfolio.btc", "user.orders.any.any.raw", "platform_state", "deribit_price_index.btc_usd",
        format!("book.{opt}.100ms"), format!("book.{opt}.none.10.100ms"), format!("ticker.{opt}.100ms"), "trades.option.BTC.100ms"
    ]})));
    let snap = c.note(&format!("book.{opt}.100ms"), Duration::from_secs(5)).unwrap();
    check("book_option_snapshot.json", &snap);
    check("book_snapshot_doc.json", &snap);
    check(
        "book_option_none_10_100ms.json",
        &c.note(&format!("book.{opt}.none.10.100ms"), Duration::from_secs(5)).unwrap(),
    );
    check(
        "subscription_ticker_option.json",
        &c.note(&format!("ticker.{opt}.100ms"), Duration::from_secs(5)).unwrap(),
    );

    // Orders: a resting post-only option order, an IOC that fills, a perp fill.
    let rest = c.call("private/buy", json!({"instrument_name": opt, "amount": 1.5, "type": "limit", "price": 0.0005, "time_in_force": "good_til_cancelled", "post_only": true, "reject_post_only": true, "label": "q-7f3a:b"}));
    check("private_buy_response_option_resting.json", &rest);
    let book_change = c.note(&format!("book.{opt}.100ms"), Duration::from_secs(5)).unwrap();
    check("book_option_change.json", &book_change);
    check("book_change_doc.json", &book_change);
    check(
        "user_orders_update.json",
        &c.note("user.orders.any.any.raw", Duration::from_secs(5)).unwrap(),
    );
    let filled = c.call("private/buy", json!({"instrument_name": opt, "amount": 1.0, "price": ask, "time_in_force": "immediate_or_cancel", "label": "hedge-1"}));
    check("private_buy_response_option_filled.json", &filled);
    check(
        "subscription_trades_option.json",
        &c.note("trades.option.BTC.100ms", Duration::from_secs(5)).unwrap(),
    );
    let ob = c.ok("public/get_order_book", json!({"instrument_name": "BTC-PERPETUAL"}));
    let pask = ob["best_ask_price"].as_f64().unwrap();
    let pf = c.call("private/buy", json!({"instrument_name": "BTC-PERPETUAL", "amount": 40, "type": "market", "label": "market0000234"}));
    check("private_buy_response.json", &pf);
    check(
        "user_trades_update.json",
        &c.note("user.trades.future.BTC.100ms", Duration::from_secs(5)).unwrap(),
    );
    check(
        "user_changes.json",
        &c.note("user.changes.future.BTC.raw", Duration::from_secs(5)).unwrap(),
    );
    check("user_portfolio.json", &c.note("user.portfolio.btc", Duration::from_secs(5)).unwrap());
    let po = c.call(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 120, "price": pask - 500.0}),
    );
    check(
        "user_orders_update_100ms.json",
        &c.note("user.orders.future.BTC.100ms", Duration::from_secs(5)).unwrap(),
    );
    let oid = po["result"]["order"]["order_id"].clone();
    check(
        "get_order_state_response.json",
        &c.call("private/get_order_state", json!({"order_id": oid})),
    );
    check(
        "get_open_orders_by_currency_response.json",
        &c.call("private/get_open_orders_by_currency", json!({"currency": "BTC"})),
    );
    check(
        "private_edit_response.json",
        &c.call("private/edit", json!({"order_id": oid, "amount": 100, "price": pask - 600.0})),
    );
    check(
        "get_user_trades_by_currency_response.json",
        &c.call(
            "private/get_user_trades_by_currency",
            json!({"currency": "BTC", "kind": "option"}),
        ),
    );
    check(
        "get_positions_response.json",
        &c.call("private/get_positions", json!({"currency": "BTC", "kind": "future"})),
    );
    let short = c.call("private/sell", json!({"instrument_name": opt, "amount": 3.0, "price": 0.0001, "time_in_force": "immediate_or_cancel"}));
    assert!(short.get("result").is_some(), "{short}");
    check(
        "get_positions_option.json",
        &c.call("private/get_positions", json!({"currency": "BTC", "kind": "option"})),
    );
    check(
        "get_account_summary_response.json",
        &c.call("private/get_account_summary", json!({"currency": "BTC"})),
    );
    check(
        "private_cancel_by_label_response.json",
        &c.call("private/cancel_by_label", json!({"label": "q-7f3a:b", "currency": "BTC"})),
    );
    check("private_cancel_all_response.json", &c.call("private/cancel_all", json!({})));

    // Errors.
    check(
        "error_10004_order_not_found.json",
        &c.call("private/cancel", json!({"order_id": "123"})),
    );
    check("error_11044_not_open_order.json", &c.call("private/cancel", json!({"order_id": oid})));
    check(
        "error_10043_price_wrong_tick.json",
        &c.call("private/buy", json!({"instrument_name": opt, "amount": 1, "price": 0.0052})),
    );
    check(
        "error_10002_qty_too_low.json",
        &c.call("private/buy", json!({"instrument_name": opt, "amount": 0.05, "price": 0.005})),
    );
    check("error_11054_post_only_reject.json", &c.call("private/buy", json!({"instrument_name": opt, "amount": 1, "price": ask, "post_only": true, "reject_post_only": true})));
    check(
        "error_10009_not_enough_funds.json",
        &c.call("private/sell", json!({"instrument_name": opt, "amount": 5000, "price": 0.5})),
    );
    check("error_invalid_params.json", &c.call("public/auth", json!({"grant_type": "client_signature", "client_id": DEV_TRADE.0, "timestamp": 1, "signature": "00", "nonce": ""})));
    f.apply(&Fault::Maintenance { on: true });
    check(
        "platform_state_maintenance.json",
        &c.note("platform_state", Duration::from_secs(5)).unwrap(),
    );
    check(
        "error_11051_system_maintenance.json",
        &c.call("private/buy", json!({"instrument_name": opt, "amount": 1, "price": 0.005})),
    );
    f.apply(&Fault::Clear);
    f.apply(&Fault::Settlement { on: true });
    check(
        "error_10041_settlement_in_progress.json",
        &c.call("private/buy", json!({"instrument_name": opt, "amount": 1, "price": 0.005})),
    );
    f.apply(&Fault::LockIndex { index: "btc_usd".into(), locked: true });
    let mut saw_lock = false;
    for _ in 0..3 {
        if let Some(n) = c.note("platform_state", Duration::from_secs(5)) {
            if n["params"]["data"].get("price_index").is_some() {
                check("platform_state_index_locked.json", &n);
                saw_lock = true;
                break;
            }
        }
    }
    assert!(saw_lock);
    f.apply(&Fault::Clear);
    f.apply(&Fault::FreezeMarketData { on: false });
    check(
        "deribit_price_index.json",
        &c.note("deribit_price_index.btc_usd", Duration::from_secs(5)).unwrap(),
    );
    let mut u = Client::connect(sim.handle.addr());
    check(
        "error_13009_unauthorized.json",
        &u.call("private/get_positions", json!({"currency": "BTC", "access_token": "expired"})),
    );
    f.apply(&Fault::RateLimitStorm { seconds: 2.0 });
    check("error_10028_too_many_requests.json", &u.call("public/get_time", json!({})));
}
