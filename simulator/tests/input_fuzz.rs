//! Never panic on input: arbitrary text and arbitrary JSON-RPC calls (every served method,
//! random parameter names and values) get a well-formed reply envelope, and the matching
//! invariants still hold afterwards.

use std::sync::Mutex;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use simulator::engine::{Engine, EngineCfg};
use simulator::journal::Journal;
use simulator::rpc::{handle_text, key_auth, Ctx, Transport};
use simulator::AccountsFile;

const METHODS: &[&str] = &[
    "public/auth",
    "public/get_time",
    "public/test",
    "public/status",
    "public/set_heartbeat",
    "public/get_currencies",
    "public/get_instruments",
    "public/get_instrument",
    "public/get_order_book",
    "public/ticker",
    "public/get_last_trades_by_instrument",
    "public/get_book_summary_by_currency",
    "public/subscribe",
    "public/unsubscribe",
    "private/buy",
    "private/sell",
    "private/edit",
    "private/cancel",
    "private/cancel_all",
    "private/cancel_all_by_instrument",
    "private/cancel_all_by_currency",
    "private/cancel_by_label",
    "private/get_open_orders_by_currency",
    "private/get_open_orders_by_instrument",
    "private/get_order_state",
    "private/get_order_state_by_label",
    "private/get_order_history_by_currency",
    "private/get_user_trades_by_currency",
    "private/get_user_trades_by_order",
    "private/get_position",
    "private/get_positions",
    "private/get_account_summary",
    "private/enable_cancel_on_disconnect",
    "private/subscribe",
    "private/logout",
    "public/nope",
    "",
];
const PARAMS: &[&str] = &[
    "instrument_name",
    "amount",
    "contracts",
    "price",
    "type",
    "label",
    "time_in_force",
    "post_only",
    "reject_post_only",
    "reduce_only",
    "order_id",
    "currency",
    "kind",
    "count",
    "depth",
    "channels",
    "grant_type",
    "client_id",
    "client_secret",
    "timestamp",
    "nonce",
    "signature",
    "refresh_token",
    "interval",
    "scope",
    "detailed",
    "trigger_price",
    "sorting",
    "access_token",
];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(0.0001),
            Just(0.005),
            Just(10.0),
            Just(98_000.0),
            Just(1e300),
            Just(-5.0),
            Just(0.1)
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just("BTC-PERPETUAL".to_string()),
            Just("ETH-PERPETUAL".to_string()),
            Just("BTC".to_string()),
            Just("any".to_string()),
            Just("market".to_string()),
            Just("limit".to_string()),
            Just("stop_market".to_string()),
            Just("fill_or_kill".to_string()),
            Just("10000000".to_string()),
            Just("ETH-10000001".to_string()),
            Just("book.BTC-PERPETUAL.raw".to_string()),
            ".{0,80}",
        ]
        .prop_map(Value::from),
        prop::collection::vec(".{0,30}".prop_map(Value::from), 0..4).prop_map(Value::from),
    ]
}

fn call() -> impl Strategy<Value = String> {
    (
        prop::sample::select(METHODS),
        prop::collection::vec((prop::sample::select(PARAMS), value()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(m, ps, with_id)| {
            let mut params = Map::new();
            for (k, v) in ps {
                params.insert(k.to_string(), v);
            }
            let mut req = json!({"jsonrpc": "2.0", "method": m, "params": params});
            if with_id {
                req["id"] = json!(7);
            }
            req.to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_input_gets_an_envelope(texts in prop::collection::vec(prop_oneof![call(), ".{0,200}"], 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(&dir.path().join("j.jsonl")).unwrap();
        let eng = Mutex::new(Engine::new(EngineCfg { seed: 3, spot_btc: 100_000.0, spot_eth: 3_500.0, tick_ms: 100, testnet: false }, AccountsFile::builtin(), j));
        let mut ctx = Ctx::new(1, Transport::Ws, "127.0.0.1".into(), 10);
        ctx.auth = Some(key_auth(&eng.lock().unwrap(), 2, 0, None)); // the bench key: no credit limits
        for t in texts {
            let out = handle_text(&eng, &mut ctx, &t);
            let v: Value = serde_json::from_str(&out).expect("reply is JSON");
            prop_assert_eq!(&v["jsonrpc"], &json!("2.0"));
            prop_assert!(v.get("result").is_some() != v.get("error").is_some(), "exactly one of result/error: {}", out);
            prop_assert!(v.get("usIn").is_some() && v.get("usOut").is_some());
            if let Some(e) = v.get("error") {
                prop_assert!(e["code"].is_i64() && e["message"].is_string());
            }
        }
        prop_assert_eq!(eng.lock().unwrap().check_invariants(), Ok(()));
    }
}
