//! `FreezePositionSnapshot`: position queries answer the frozen snapshot while trading moves
//! on; the venue's own state (and the snapshot-free `/sim/state`) stays live.

mod common;

use common::*;
use serde_json::json;
use simulator::Fault;

#[test]
fn frozen_position_snapshot_lags_the_trades_until_turned_off() {
    let sim = start();
    let mut c = Client::connect(sim.handle.addr());
    c.auth(DEV_TRADE);
    sim.handle.faults().apply(&Fault::FreezeMarketData { on: true });
    let (name, bid, ask) = pick_option(&mut c);
    let ioc = |side: &str, price: f64, label: &str| {
        (
            format!("private/{side}"),
            json!({"instrument_name": name, "amount": 1.0, "price": price,
                   "time_in_force": "immediate_or_cancel", "label": label}),
        )
    };
    let (m, p) = ioc("buy", ask, "open");
    let r = c.ok(&m, p);
    let bought = r["order"]["filled_amount"].as_f64().unwrap();
    assert!(bought > 0.0, "the open filled: {r}");
    sim.handle.faults().apply(&Fault::FreezePositionSnapshot { on: true });
    let (m, mut p) = ioc("sell", bid, "close");
    p["reduce_only"] = json!(true);
    let r = c.ok(&m, p);
    assert!(r["order"]["filled_amount"].as_f64().unwrap() > 0.0, "the close filled: {r}");
    let size = |c: &mut Client| {
        let one = c.ok("private/get_position", json!({"instrument_name": name}));
        let all = c.ok("private/get_positions", json!({"currency": "BTC"}));
        let listed = all
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["instrument_name"] == name.as_str())
            .map_or(0.0, |p| p["size"].as_f64().unwrap());
        (one["size"].as_f64().unwrap(), listed)
    };
    // The queries still show the position the trades closed.
    assert_eq!(size(&mut c), (bought, bought));
    let live = sim.handle.with_engine(|e| {
        let i = e.by_name[&name];
        e.accounts.iter().map(|a| a.positions.get(&i).map_or(0, |p| p.size)).sum::<i64>()
    });
    let closed = bought - r["order"]["filled_amount"].as_f64().unwrap();
    assert!((simulator::util::amt(live) - closed).abs() < 1e-9, "the venue's state is live");
    sim.handle.faults().apply(&Fault::FreezePositionSnapshot { on: false });
    let (one, listed) = size(&mut c);
    assert!((one - closed).abs() < 1e-9 && (listed - closed).abs() < 1e-9, "caught up");
    sim.handle.with_engine(|e| e.check_invariants()).unwrap();
}
