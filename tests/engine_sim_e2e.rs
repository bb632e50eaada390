//! Engine ↔ simulator end to end, with the real `stoic run --headless` binary against an
//! in-process simulator: orders placed, a resting order filled by an outside taker (the
//! simulator's `probe` account) and the position closed again, cancels, a venue-side
//! disconnect (reconnect + reconcile before trading again), and a book gap (resubscribe).

mod sim_support;
use sim_support::journal;
mod crash_support;

use std::process::Command;
use std::time::{Duration, Instant};

use crash_support::{check_no_ghost_state, Proc, BIN};
use serde_json::{json, Value};

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn last_progress_field(p: &Proc, field: &str) -> u64 {
    let lines = p.lines.lock().unwrap();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("progress:"))
        .map_or(0, |l| crash_support::reconciled_field(l, field))
}

#[test]
fn test_engine_sim_place_fill_cancel_reconnect_resubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: dir.path().join("journal.jsonl"),
        ..simulator::SimConfig::default()
    })
    .unwrap();
    let wal = dir.path().join("wal");
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--headless", "--venue-url"])
        .arg(sim.ws_url())
        .arg("--wal-dir")
        .arg(&wal)
        .args(["--strategy", "churn", "--seed", "5"])
        .env_remove("STOIC_FAILPOINT");
    let mut engine = Proc::spawn(cmd);
    engine.wait_line("trading:", Duration::from_secs(30)).expect("engine started trading");

    // Place: the venue receives orders from the engine's key.
    let jpath = sim.journal_path().to_owned();
    let ours = |e: &Value| e["key"] == "sim-dev-trade";
    wait_for("first order", Duration::from_secs(15), || {
        journal::<Value>(&jpath).iter().any(|e| {
            ours(e) && e["method"] == "private/buy" || ours(e) && e["method"] == "private/sell"
        })
    });

    // Cancel: unfilled opens are cancelled by label after they rested.
    wait_for("a cancel by label", Duration::from_secs(15), || {
        journal::<Value>(&jpath).iter().any(|e| ours(e) && e["method"] == "private/cancel_by_label")
    });

    // Fill: an outside taker hits the engine's resting order; the engine then closes the
    // position with a reduce-only order.
    let mut probe = simulator::client::WsClient::connect(sim.addr()).unwrap();
    probe.auth("sim-probe-trade", "sim-probe-trade-secret-0003").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while last_progress_field(&engine, "fills") == 0 {
        assert!(Instant::now() < deadline, "no fill reached the engine:\n{}", engine.output());
        let j = journal::<Value>(&jpath);
        let resting = j.iter().rev().find(|e| {
            ours(e)
                && matches!(e["method"].as_str(), Some("private/buy" | "private/sell"))
                && e["result"]["order_state"] == "open"
        });
        if let Some(o) = resting {
            n += 1;
            let method = if o["side"] == "buy" { "private/sell" } else { "private/buy" };
            let _ = probe.call(
                method,
                &json!({
                    "instrument_name": o["instrument"],
                    "amount": 100_000,
                    "type": "limit",
                    "price": o["price"],
                    "time_in_force": "immediate_or_cancel",
                    "label": format!("probe-{n}"),
                }),
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for("a reduce-only close", Duration::from_secs(15), || {
        journal::<Value>(&jpath).iter().any(|e| ours(e) && e["flags"]["reduce_only"] == true)
    });

    // Reconnect: the venue drops every session; the engine reconciles before trading again.
    let orders_before = journal::<Value>(&jpath).len();
    sim.faults().disconnect_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let l = engine.lines.lock().unwrap();
            if count(&l, "reconnect:") >= 1 && count(&l, "reconciled:") >= 2 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no reconnect + reconcile:\n{}", engine.output());
        std::thread::sleep(Duration::from_millis(25));
    }
    wait_for("orders after the reconnect", Duration::from_secs(15), || {
        journal::<Value>(&jpath).len() > orders_before + 2
    });

    // Gap: dropped book messages are detected and the book is resubscribed.
    sim.faults().drop_book_messages(3, Some("BTC-PERPETUAL"));
    wait_for("resubscribe after the gap", Duration::from_secs(30), || {
        count(&engine.lines.lock().unwrap(), "resubscribed: book.BTC-PERPETUAL") >= 1
    });

    // Clean stop on SIGTERM.
    let pid = engine.pid().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    let st = engine.wait_exit(Duration::from_secs(30));
    assert!(st.is_some_and(|s| s.success()), "clean shutdown: {st:?}\n{}", engine.output());

    let s = simulator::journal::Summary::from_file(&jpath).unwrap();
    assert_eq!(s.duplicate_dispatch_count, 0, "{:?}", s.duplicate_labels);
    assert_eq!(s.illegal_order_attempts, 0, "{:?}", s.illegal_seqs);
    let mut labels = std::collections::BTreeMap::new();
    for e in journal::<Value>(&jpath) {
        if ours(&e) && matches!(e["method"].as_str(), Some("private/buy" | "private/sell")) {
            *labels.entry(e["label"].as_str().unwrap_or("").to_owned()).or_insert(0) += 1;
        }
    }
    let (_, seen) = check_no_ghost_state(&wal, &labels);
    assert!(seen > 0);
    sim.shutdown();
}
