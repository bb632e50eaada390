//! Conformance: every sample message in `tests/fixtures/venue_samples/` decodes, and the
//! decoded key fields match what the file says.

use std::path::PathBuf;

use hotpath::venue::messages::{
    BookKind, HeartbeatKind, LevelAction, NotificationData, OrderPrice, OrderState, RequestId,
    ResultPayload,
};
use hotpath::venue::{Decimal8, Decoder, Message, VenueErrorCode};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/venue_samples")
}

/// The sample as compact single-line bytes (samples are pretty-printed).
fn sample(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(samples_dir().join(name)).expect("sample readable");
    let v: serde_json::Value = serde_json::from_str(&text).expect("sample is JSON");
    serde_json::to_vec(&v).expect("re-serialise")
}

fn d(s: &str) -> Decimal8 {
    Decimal8::parse_str(s).unwrap()
}

#[test]
fn every_sample_decodes() {
    let mut names: Vec<_> = std::fs::read_dir(samples_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 79, "INDEX.md lists 79 samples");
    let mut dec = Decoder::new();
    let mut failures = Vec::new();
    for name in &names {
        // Decode the raw (pretty-printed) bytes too: whitespace must not matter.
        for mut bytes in [sample(name), std::fs::read(samples_dir().join(name)).unwrap()] {
            if let Err(e) = dec.decode(&mut bytes) {
                failures.push(format!("{name}: {e:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "samples failing to decode:\n{}", failures.join("\n"));
}

#[test]
fn book_change_fields() {
    let mut dec = Decoder::new();
    let mut b = sample("book_option_change.json");
    let Message::Notification(n) = dec.decode(&mut b).unwrap() else { panic!("kind") };
    assert_eq!(n.channel, "book.BTC-25JUL25-110000-C.100ms");
    let NotificationData::Book(book) = n.data else { panic!("data") };
    assert_eq!(book.kind, BookKind::Change);
    assert_eq!(book.change_id, 69_871_234_509);
    assert_eq!(book.prev_change_id, Some(69_871_234_501));
    assert_eq!(book.bids.len(), 2);
    assert_eq!(book.bids[0].action, LevelAction::Change);
    assert_eq!(book.bids[0].price, d("0.016"));
    assert_eq!(book.bids[0].amount, d("2.4"));
    assert_eq!(book.asks[0].action, LevelAction::Delete);
}

#[test]
fn grouped_book_is_top_n() {
    let mut dec = Decoder::new();
    let mut b = sample("book_grouped_depth.json");
    let Message::Notification(n) = dec.decode(&mut b).unwrap() else { panic!("kind") };
    let NotificationData::Book(book) = n.data else { panic!("data") };
    assert_eq!(book.kind, BookKind::TopN);
    assert_eq!(book.bids[0].price, d("160"));
    assert_eq!(book.asks[0].amount, d("20"));
}

#[test]
fn heartbeats() {
    let mut dec = Decoder::new();
    let mut b = sample("heartbeat_test_request.json");
    assert!(matches!(dec.decode(&mut b).unwrap(), Message::Heartbeat(HeartbeatKind::TestRequest)));
    let mut b = sample("heartbeat_heartbeat.json");
    assert!(matches!(dec.decode(&mut b).unwrap(), Message::Heartbeat(HeartbeatKind::Heartbeat)));
}

#[test]
fn errors_map_to_codes() {
    let cases = [
        ("error_10002_qty_too_low.json", VenueErrorCode::QtyTooLow),
        ("error_10004_order_not_found.json", VenueErrorCode::OrderNotFound),
        ("error_10009_not_enough_funds.json", VenueErrorCode::NotEnoughFunds),
        ("error_10028_too_many_requests.json", VenueErrorCode::TooManyRequests),
        ("error_10041_settlement_in_progress.json", VenueErrorCode::SettlementInProgress),
        ("error_10043_price_wrong_tick.json", VenueErrorCode::PriceWrongTick),
        ("error_11044_not_open_order.json", VenueErrorCode::NotOpenOrder),
        ("error_11051_system_maintenance.json", VenueErrorCode::SystemMaintenance),
        ("error_11054_post_only_reject.json", VenueErrorCode::PostOnlyReject),
        ("error_13009_unauthorized.json", VenueErrorCode::Unauthorized),
        ("error_invalid_params.json", VenueErrorCode::InvalidParams),
    ];
    let mut dec = Decoder::new();
    for (file, code) in cases {
        let mut b = sample(file);
        let Message::Error(e) = dec.decode(&mut b).unwrap() else { panic!("{file}") };
        assert_eq!(e.code, code, "{file}");
    }
    let mut b = sample("error_invalid_params.json");
    let Message::Error(e) = dec.decode(&mut b).unwrap() else { panic!() };
    assert_eq!(e.id, Some(RequestId::Num(1)));
    assert_eq!(e.param, Some("nonce"));
    assert_eq!(e.meta.us_diff, Some(56));
}

#[test]
fn market_order_and_fill() {
    let mut dec = Decoder::new();
    let mut b = sample("private_buy_response.json");
    let Message::Response(r) = dec.decode(&mut b).unwrap() else { panic!() };
    let ResultPayload::OrderWithTrades(o, trades) = r.result else { panic!("{:?}", r.result) };
    assert_eq!(o.price, OrderPrice::Market);
    assert_eq!(o.order_state, OrderState::Filled);
    assert_eq!(o.label, "market0000234");
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].fee, Some(d("0.000139")));
    assert_eq!(trades[0].price, d("143.81"));
}

#[test]
fn result_shapes() {
    type Check = fn(&ResultPayload<'_>) -> bool;
    let cases: &[(&str, Check)] = &[
        ("auth_response.json", |r| matches!(r, ResultPayload::Auth(_))),
        ("set_heartbeat_response.json", |r| matches!(r, ResultPayload::Ok)),
        ("public_test_response.json", |r| matches!(r, ResultPayload::Version(_))),
        ("get_time_response.json", |r| matches!(r, ResultPayload::Integer(_))),
        ("subscribe_response.json", |r| matches!(r, ResultPayload::Channels(_))),
        ("get_open_orders_by_currency_response.json", |r| matches!(r, ResultPayload::Orders(_))),
        ("get_order_state_response.json", |r| matches!(r, ResultPayload::Order(_))),
        ("private_cancel_all_response.json", |r| matches!(r, ResultPayload::Integer(_))),
        (
            "get_user_trades_by_currency_response.json",
            |r| matches!(r, ResultPayload::UserTrades(t, true) if t.len() == 2),
        ),
        ("get_positions_option.json", |r| matches!(r, ResultPayload::Positions(_))),
        ("get_account_summary_response.json", |r| matches!(r, ResultPayload::AccountSummary(_))),
        ("get_instruments_option_btc.json", |r| matches!(r, ResultPayload::Instruments(_))),
        ("get_order_book_option.json", |r| matches!(r, ResultPayload::OrderBook(..))),
        ("ticker_option_response.json", |r| matches!(r, ResultPayload::Ticker(_))),
    ];
    let mut dec = Decoder::new();
    for (file, check) in cases {
        let mut b = sample(file);
        let Message::Response(r) = dec.decode(&mut b).unwrap() else { panic!("{file}") };
        assert!(check(&r.result), "{file}: {:?}", r.result);
    }
}

#[test]
fn auth_debug_redacts_tokens() {
    let mut dec = Decoder::new();
    let mut b = sample("auth_response.json");
    let Message::Response(r) = dec.decode(&mut b).unwrap() else { panic!() };
    let ResultPayload::Auth(a) = r.result else { panic!() };
    let dbg = format!("{a:?}");
    assert!(!dbg.contains(a.access_token), "{dbg}");
    assert!(dbg.contains("<redacted>"));
    assert!(a.scope.contains("trade:read_write"));
}

#[test]
fn instrument_tick_steps_are_exact() {
    let mut dec = Decoder::new();
    let mut b = sample("get_instruments_option_btc.json");
    let Message::Response(r) = dec.decode(&mut b).unwrap() else { panic!() };
    let ResultPayload::Instruments(list) = r.result else { panic!() };
    let i = &list[0];
    assert_eq!(i.tick_size, d("0.0001"));
    assert_eq!(i.tick_size_steps[0].above_price, d("0.005"));
    assert_eq!(i.tick_size_steps[0].tick_size, d("0.0005"));
    assert_eq!(i.min_trade_amount, d("0.1"));
}

#[test]
fn user_orders_object_and_array() {
    let mut dec = Decoder::new();
    for (file, n) in
        [("user_orders_update.json", 1), ("user_orders_update_option_cancelled_cod.json", 1)]
    {
        let mut b = sample(file);
        let Message::Notification(m) = dec.decode(&mut b).unwrap() else { panic!() };
        let NotificationData::Orders(o) = m.data else { panic!("{file}") };
        assert_eq!(o.len(), n);
    }
    let mut b = sample("user_orders_update_option_cancelled_cod.json");
    let Message::Notification(m) = dec.decode(&mut b).unwrap() else { panic!() };
    let NotificationData::Orders(o) = m.data else { panic!() };
    assert_eq!(o[0].cancel_reason, Some("cancel_on_disconnect"));
    assert_eq!(o[0].order_state, OrderState::Cancelled);
}

/// `get_user_trades_by_order` answers a plain array of trades (§8.4); trades carry
/// `order_id` too, so they must not be read as orders. Built from the real sample's trades.
#[test]
fn user_trades_by_order_plain_array() {
    let v: serde_json::Value =
        serde_json::from_slice(&sample("get_user_trades_by_currency_response.json")).unwrap();
    let mut text = serde_json::to_vec(
        &serde_json::json!({"jsonrpc": "2.0", "id": 5, "result": v["result"]["trades"]}),
    )
    .unwrap();
    let mut dec = Decoder::new();
    let Message::Response(r) = dec.decode(&mut text).unwrap() else { panic!("not a response") };
    match &r.result {
        ResultPayload::UserTrades(t, has_more) => {
            assert_eq!(t.len(), 2);
            assert!(!has_more);
            assert_eq!(t[0].trade_id, "ETH-34066");
            assert_eq!(t[1].order_id, "ETH-334607");
            assert_eq!(t[1].fee, Some(d("0.000055")));
        }
        other => panic!("{other:?}"),
    }
    // The wrapped form keeps `has_more`.
    let mut text = sample("get_user_trades_by_currency_response.json");
    let Message::Response(r) = dec.decode(&mut text).unwrap() else { panic!("not a response") };
    assert!(matches!(&r.result, ResultPayload::UserTrades(t, true) if t.len() == 2));
    // Fees in exponent form at the venue's 8 decimals decode exactly (§0: `2.5e-7`).
    let mut text = br#"{"jsonrpc":"2.0","id":6,"result":{"trades":[{"trade_id":"1","order_id":"2","instrument_name":"BTC-PERPETUAL","timestamp":1,"direction":"buy","price":100020.0,"amount":100.0,"fee":5.0e-7,"label":"x"}],"has_more":false}}"#.to_vec();
    let Message::Response(r) = dec.decode(&mut text).unwrap() else { panic!("not a response") };
    assert!(
        matches!(&r.result, ResultPayload::UserTrades(t, false) if t[0].fee == Some(d("0.0000005")))
    );
}
