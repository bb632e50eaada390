//! The tick-to-send pipeline end to end on one thread (no spinning): Deribit frames in,
//! JSON-RPC request bytes out — what the bytes say, that every place was journaled and synced
//! before its bytes existed, and that a change-id gap in the real feed pulls the quotes.

use hotpath::domain::label::Label;
use hotpath::domain::policy::Policy;
use hotpath::strategy::pipeline::{
    bench_wal, scenario_frames, scenario_pipeline, scenario_quoter, SCENARIO_INSTRUMENT,
};
use serde_json::Value;

fn policy() -> Policy {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/policy.json");
    Policy::load_from_path(std::path::Path::new(path)).expect("config/policy.json")
}

fn requests(wire: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(wire)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("the wire holds concatenated JSON-RPC requests")
}

#[test]
fn frames_become_journaled_post_only_quotes_and_cancels_by_label() {
    let dir = tempfile::tempdir().unwrap();
    let mut p =
        scenario_pipeline(&policy(), scenario_quoter(), Some(bench_wal(dir.path()).unwrap()));
    let frames = scenario_frames(4);
    let mut previous_labels: Vec<String> = Vec::new();
    let mut last_id = 0;
    for (k, frame) in frames.iter().enumerate() {
        let ready = p.on_frame(frame).unwrap();
        let reqs = requests(p.gate.wire());
        assert_eq!(reqs.len(), ready);
        assert_eq!(ready, if k == 0 { 2 } else { 4 }, "tick {k}");
        let (cancels, places): (Vec<&Value>, Vec<&Value>) =
            reqs.iter().partition(|r| r["method"] == "private/cancel_by_label");
        // Cancels name exactly the previous tick's quotes.
        let mut cancelled: Vec<String> =
            cancels.iter().map(|r| r["params"]["label"].as_str().unwrap().to_owned()).collect();
        cancelled.sort();
        assert_eq!(cancelled, previous_labels, "tick {k}");
        let mut methods: Vec<&str> = places.iter().map(|r| r["method"].as_str().unwrap()).collect();
        methods.sort_unstable();
        assert_eq!(methods, ["private/buy", "private/sell"]);
        previous_labels.clear();
        for r in &reqs {
            assert_eq!(r["jsonrpc"], "2.0");
            let id = r["id"].as_u64().unwrap();
            assert!(id > last_id, "request ids increase");
            last_id = id;
        }
        for r in places {
            let params = &r["params"];
            assert_eq!(params["instrument_name"], SCENARIO_INSTRUMENT);
            assert_eq!(params["type"], "limit");
            assert_eq!(params["post_only"], true);
            assert_eq!(params["time_in_force"], "good_til_cancelled");
            assert_eq!(params["amount"].as_f64(), Some(0.1));
            let label = params["label"].as_str().unwrap();
            let parts = Label::parse(label).expect("a Stoic label");
            // Durable before send: the intent is in the WAL ledger and synced.
            let wal = p.gate.wal().unwrap();
            let entry = wal.ledger().get(parts.intent_hash.value()).expect("journaled");
            assert_eq!(entry.label, label);
            assert!(wal.durable_through() >= entry.recorded_seq && entry.recorded_seq > 0);
            previous_labels.push(label.to_owned());
        }
        previous_labels.sort();
    }
    let counts = p.gate.counts();
    assert_eq!((counts.accepted, counts.cancels, counts.rejected), (10, 8, 0));
    assert_eq!(p.strategy.open_orders().len(), 2);
}

#[test]
fn a_change_id_gap_in_the_feed_pulls_the_quotes_until_a_new_snapshot() {
    let mut p = scenario_pipeline(&policy(), scenario_quoter(), None);
    let frames = scenario_frames(5);
    assert_eq!(p.on_frame(&frames[0]).unwrap(), 2);
    assert_eq!(p.on_frame(&frames[1]).unwrap(), 4);
    // Frame 2 is lost: frame 3's prev_change_id does not chain.
    let ready = p.on_frame(&frames[3]).unwrap();
    let reqs = requests(p.gate.wire());
    assert_eq!(ready, 2, "{reqs:?}");
    assert!(reqs.iter().all(|r| r["method"] == "private/cancel_by_label"), "{reqs:?}");
    assert!(p.strategy.open_orders().is_empty());
    // Still gapped: nothing, and no repeated cancels.
    assert_eq!(p.on_frame(&frames[4]).unwrap(), 0);
    // A fresh snapshot (the resubscribe's) makes the book live again: quotes come back.
    assert_eq!(p.on_frame(&frames[0]).unwrap(), 2);
    assert_eq!(p.strategy.open_orders().len(), 2);
}

#[test]
fn frames_that_are_not_book_notifications_do_nothing() {
    let mut p = scenario_pipeline(&policy(), scenario_quoter(), None);
    for frame in [
        &br#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}"#[..],
        b"not json",
        br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"snapshot","timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":1,"bids":[],"asks":[]}}}"#,
    ] {
        assert_eq!(p.on_frame(frame).unwrap(), 0);
    }
    assert_eq!(p.gate.counts().requests, 0);
}
