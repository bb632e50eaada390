//! Simulator throughput on loopback: orders/s (post-only place + cancel round trips over one
//! WebSocket client, sequential) and market-data messages/s (one client subscribed to every
//! book and ticker at a 1 ms market tick).
//!
//! `cargo bench --bench simulator` for the full run; `cargo test --bench simulator` runs a
//! short smoke version. Prints one line per measurement.

use std::time::{Duration, Instant};

use serde_json::json;
use simulator::client::WsClient;
use simulator::{SimConfig, Simulator};

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (orders, md_secs) = if quick { (200, 1) } else { (5_000, 5) };
    let dir = std::env::temp_dir().join(format!("stoic-sim-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);

    // Orders/s: the bench account has effectively unlimited credits.
    let sim = Simulator::start(SimConfig {
        journal: dir.join("orders.jsonl"),
        tick_ms: 1_000,
        ..SimConfig::default()
    })
    .expect("sim");
    let mut c = WsClient::connect(sim.addr()).expect("connect");
    c.auth("sim-bench", "sim-bench-secret-0005").expect("auth");
    let ob = c
        .call("public/get_order_book", &json!({"instrument_name": "BTC-PERPETUAL"}))
        .expect("book");
    let px = (ob["best_bid_price"].as_f64().unwrap_or(100_000.0) * 0.9 / 0.5).floor() * 0.5;
    let mut lat_us: Vec<u64> = Vec::with_capacity(orders * 2);
    let t0 = Instant::now();
    for i in 0..orders {
        let t = Instant::now();
        let r = c
            .call("private/buy", &json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": px, "post_only": true, "label": format!("bench-{i}")}))
            .expect("buy");
        lat_us.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
        let t = Instant::now();
        c.call("private/cancel", &json!({"order_id": r["order"]["order_id"]})).expect("cancel");
        lat_us.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    let el = t0.elapsed().as_secs_f64();
    lat_us.sort_unstable();
    let pct = |p: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((lat_us.len() as f64 - 1.0) * p) as usize;
        lat_us[i]
    };
    #[allow(clippy::cast_precision_loss)]
    let rate = (orders * 2) as f64 / el;
    println!("simulator orders: {} requests (place+cancel) in {el:.2}s = {rate:.0} req/s; round trip p50 {} us p99 {} us", orders * 2, pct(0.5), pct(0.99));
    drop(c);
    sim.shutdown();

    // Market data: every book (raw) and ticker (100ms) at a 1 ms tick.
    let sim = Simulator::start(SimConfig {
        journal: dir.join("md.jsonl"),
        tick_ms: 1,
        ..SimConfig::default()
    })
    .expect("sim");
    let mut c = WsClient::connect(sim.addr()).expect("connect");
    c.auth("sim-bench", "sim-bench-secret-0005").expect("auth");
    let insts = c.call("public/get_instruments", &json!({"currency": "any"})).expect("instruments");
    let mut chans = Vec::new();
    for i in insts.as_array().into_iter().flatten() {
        let n = i["instrument_name"].as_str().unwrap_or_default();
        chans.push(format!("book.{n}.raw"));
        chans.push(format!("ticker.{n}.100ms"));
    }
    for chunk in chans.chunks(400) {
        c.call("private/subscribe", &json!({"channels": chunk})).expect("subscribe");
    }
    let start = Instant::now();
    let mut n: u64 = u64::try_from(c.notes.len()).unwrap_or(0);
    c.notes.clear();
    while start.elapsed() < Duration::from_secs(md_secs) {
        if c.next_message().is_some() {
            n += 1;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let mps = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "simulator market data: {n} messages in {md_secs}s = {mps:.0} msg/s ({} channels)",
        chans.len()
    );
    drop(c);
    sim.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
