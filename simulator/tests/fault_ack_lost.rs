//! `LoseNextOrderAck`: the venue applies the order, the connection dies before the reply
//! (and before any notification of it); a new connection finds the order by its label.

mod common;

use common::*;
use serde_json::json;
use simulator::Fault;

#[test]
fn lost_ack_applies_the_order_and_drops_the_connection_without_a_reply() {
    let sim = start();
    let mut a = Client::connect(sim.handle.addr());
    a.auth(DEV_TRADE);
    a.ok("private/subscribe", json!({"channels": ["user.orders.future.BTC.raw"]}));
    // Armed for ETH only: a BTC order is answered as usual.
    sim.handle
        .faults()
        .apply(&Fault::LoseNextOrderAck { instrument: Some("ETH-PERPETUAL".into()) });
    a.ok(
        "private/buy",
        json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 50000, "label": "kept"}),
    );
    a.send_text(
        &json!({"jsonrpc": "2.0", "id": 99, "method": "private/buy", "params": {
            "instrument_name": "ETH-PERPETUAL", "amount": 10, "price": 1000, "label": "lost"}})
        .to_string(),
    );
    // Nothing answers id 99 and no notification of the order arrives: the connection ends.
    while let Some(m) = a.next() {
        assert_ne!(m.get("id"), Some(&json!(99)), "the reply was delivered: {m}");
        assert_ne!(m["params"]["data"]["label"], json!("lost"), "a notification leaked: {m}");
    }
    // Ended by the venue, not by the read timeout: the socket is closed.
    if let Err(tungstenite::Error::Io(e)) = a.ws.read() {
        assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the connection is still open"
        );
    }
    let mut b = Client::connect(sim.handle.addr());
    b.auth(DEV_TRADE);
    let st = b.ok("private/get_order_state_by_label", json!({"currency": "ETH", "label": "lost"}));
    let orders = st.as_array().expect("orders by label");
    assert_eq!(orders.len(), 1, "the venue applied the order once: {st}");
    // One-shot: the next order's reply comes back.
    b.ok(
        "private/buy",
        json!({"instrument_name": "ETH-PERPETUAL", "amount": 10, "price": 1000, "label": "after"}),
    );
    sim.handle.with_engine(|e| e.check_invariants()).unwrap();
}
