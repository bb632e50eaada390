//! The chaos suite (issue 8, contract §3.3–§3.5, §8.2 chaos bindings AT-328/AT-329/AT-330):
//! the real `stoic run --headless` binary against the simulator, one fault per test. Each
//! test injects the fault, asserts the TradingMode transitions and the reason codes seen in
//! `GET /api/v1/status`, the containment outcome (zero duplicates and zero illegal orders by
//! the simulator's journal, no opens while contained, exposure within tolerance, engine
//! positions equal the venue's) and the recovery after the fault clears (Active again, latch
//! clear, trading again). Each writes `evidence/phase2/chaos/<scenario>.md`; the suite keeps
//! `evidence/phase2/chaos/summary.json`.
//!
//! Recovery relies on the run's operator token (simulator/paper runs relax after a clean
//! reconciliation exactly as they do at start-up); a live run waits for an operator.

mod chaos_support;
mod crash_support;
mod sim_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chaos_support::{is_contained, probe_take_resting, Chaos, CONTAINMENT_SETTLE, DEADLINE};
use serde_json::json;
use simulator::Fault;

fn probe(c: &Chaos) -> simulator::client::WsClient {
    let mut p = simulator::client::WsClient::connect(c.sim().addr()).unwrap();
    p.auth("sim-probe-trade", "sim-probe-trade-secret-0003").unwrap();
    p
}

fn reconcile_count(c: &Chaos, key: &str) -> u64 {
    c.status().map_or(0, |v| v["reconcile"][key].as_u64().unwrap_or(0))
}

fn assert_left_active(c: &Chaos) {
    let modes = c.modes_seen();
    assert!(modes.contains("ReduceOnly"), "[{}] never left Active: {modes:?}", c.name);
}

/// AT-329 (WS drop after send): the venue drops every session while orders are live.
#[test]
fn chaos_disconnect_mid_flight() {
    let mut c = Chaos::start("disconnect_mid_flight", 11);
    let mark = c.journal_mark();
    c.wait_orders_after(mark, 2, "orders in flight before the disconnect");
    // The sessions that carried our orders before the drop: an order on any other session
    // was sent after it.
    let before = c.journal_mark();
    let old: BTreeSet<u64> = c
        .journal()
        .iter()
        .filter(|e| e["key"] == chaos_support::OUR_KEY && e["seq"].as_u64() <= Some(before))
        .filter_map(|e| e["session"].as_u64())
        .collect();
    c.fault(&Fault::DisconnectAll);
    c.wait_code("SESSION_TERMINATION_RECONCILE_REQUIRED");
    c.wait_code("REDUCEONLY_OPEN_PERMISSION_LATCHED");
    c.assert_recovered("recovery after the reconnect and reconciliation");
    assert!(c.modes_seen().contains("ReduceOnly"), "modes {:?}", c.modes_seen());
    // `/status` and the metric show the last reconciliation: a clean pass after recovery.
    let st = c.wait_status("a clean continuous pass", |v| {
        v["reconcile"]["last_result"] == "clean" && v["reconcile"]["clean_runs"].as_u64() >= Some(1)
    });
    assert!(st["reconcile"]["last_ts_ms"].as_i64().unwrap_or(0) > 0);
    let metrics = chaos_support::http_get_text(&c.status_addr, "/metrics").unwrap_or_default();
    let age = metrics
        .lines()
        .find(|l| l.starts_with("stoic_last_reconcile_age_seconds"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(age.is_some_and(f64::is_finite), "reconcile age metric: {age:?}");
    c.notes.push(
        "`/status` reconcile.last_result clean; stoic_last_reconcile_age_seconds finite".into(),
    );
    c.assert_contained();
    // The containment lasts milliseconds (reconnect, in-doubt resolution, reconciliation):
    // checked in WAL order after the engine stopped. The fault's place in the WAL: after the
    // last intent that went out on a dropped session.
    c.stop_engine();
    let on_old = |e: &serde_json::Value| e["session"].as_u64().is_some_and(|s| old.contains(&s));
    let old_labels: Vec<String> = c
        .journal()
        .iter()
        .filter(|e| e["key"] == chaos_support::OUR_KEY && on_old(e))
        .filter_map(|e| e["label"].as_str().map(str::to_owned))
        .collect();
    let boundary = c
        .wal_records()
        .iter()
        .filter(|r| r["kind"] == "IntentRecorded")
        .filter(|r| {
            r["fields"]["label"].as_str().is_some_and(|l| old_labels.iter().any(|o| o == l))
        })
        .filter_map(|r| r["seq"].as_u64())
        .max()
        .expect("intents sent before the disconnect");
    let new_opens = c.open_labels(|e| !on_old(e));
    c.assert_no_opens_before_relax("after the disconnect, until the relax", boundary, &new_opens);
    c.write_evidence(
        "`DisconnectAll` while orders rest at the venue (cancel-on-disconnect runs).",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

const KILL_10028: &str = "KILL_RATE_LIMIT_SESSION_TERMINATION";
const UNCONFIRMED_10028: &str = "REDUCEONLY_SESSION_KILL_UNCONFIRMED";

/// AT-330 / ruling 2: a 10028 storm ends the sessions; ReduceOnly (unconfirmed, < 3 in
/// 5 min) or Kill (≥ 3), backoff reconnect, full reconcile before resuming. ReduceOnly
/// (unconfirmed) relaxes by itself after the clean reconciliation; the Kill's unblock is
/// MANUAL (registry), so from Kill the engine resumes only after an authenticated
/// `stoic mode relax` over the operator socket, once the reconciliation is clean. First one
/// storm (whichever reason it raises, the result records it and the path taken), then more
/// storms until three fell in the window, which must Kill and need the operator.
#[test]
fn chaos_rate_limit_storm() {
    let mut c = Chaos::start("rate_limit_storm", 12);
    // The storm lasts until the engine has met it (its next request answers 10028), then the
    // venue calms down: no dependence on when the engine happens to send.
    c.fault(&Fault::RateLimitStorm { seconds: 60.0 });
    c.wait_code("SESSION_TERMINATION_RECONCILE_REQUIRED");
    c.fault(&Fault::Clear);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, r) = c.codes_seen();
        if r.contains(KILL_10028) || r.contains(UNCONFIRMED_10028) {
            break;
        }
        assert!(Instant::now() < deadline, "no rate-limit reason:\n{}", c.tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    c.assert_any_code_seen(&[KILL_10028, UNCONFIRMED_10028]);
    // One storm can already be met three times (reconnects during it): then it Kills.
    let (first_kill, _) = storm_phase(&mut c, "first storm", false);
    if !first_kill {
        // More storms until three fell in the 5-minute window. Short ones (2 s): an engine
        // reconnecting into a storm that outlasts it stays blocked in the connect (see the
        // report), so each storm ends by itself and is repeated if the engine missed it.
        let count = |c: &Chaos| c.status().map_or(0, |v| v["10028_count_5m"].as_u64().unwrap_or(0));
        let deadline = Instant::now() + 2 * DEADLINE;
        while count(&c) < 3 {
            assert!(Instant::now() < deadline, "three 10028 never counted:\n{}", c.tail());
            let n = count(&c);
            c.fault(&Fault::RateLimitStorm { seconds: 2.0 });
            let until = Instant::now() + Duration::from_secs(4);
            while count(&c) <= n && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        c.fault(&Fault::Clear);
        c.wait_status("Kill at three 10028 in 5 minutes", |v| v["trading_mode"] == "Kill");
        let (kill, _) = storm_phase(&mut c, "repeated storms", true);
        assert!(kill, "three 10028 in 5 minutes without Kill");
    }
    c.wait_code(KILL_10028);
    // The windowed count stays (5 minutes) while the breaker's own session reason cleared.
    let st = c.status().unwrap();
    assert!(st["10028_count_5m"].as_u64().unwrap_or(0) >= 3);
    c.notes.push("10028_count_5m >= 3 after recovery (the windowed counter is kept)".into());
    c.assert_contained();
    let modes: &[&str] = if first_kill {
        &["Active", "Kill (first storm; 10028_count_5m >= 3)", "Active (operator relax)"]
    } else {
        &[
            "Active",
            "ReduceOnly (first storm; 10028_count_5m < 3)",
            "Active",
            "Kill (repeated storms; 10028_count_5m >= 3)",
            "Active (operator relax)",
        ]
    };
    c.write_evidence(
        "`RateLimitStorm`: every request answers 10028 and the session closes, until the \
         engine has met it (then `Clear`); if that left fewer than three in 5 minutes, again \
         until three fell.",
        modes,
    );
    c.finish();
}

/// One storm's containment and recovery: no opens while contained, then the recovery: by
/// itself from ReduceOnly (unconfirmed), by the operator from Kill. `in_kill`: the caller
/// saw this storm Kill. Returns whether it Killed and the path, both recorded under `phase`.
fn storm_phase(c: &mut Chaos, phase: &str, in_kill: bool) -> (bool, &'static str) {
    let kills_before = !in_kill && c.modes_seen().contains("Kill");
    c.assert_no_opens_while_contained(&format!("{phase}, until recovery"), None);
    let path = recover_from_storm(c);
    let kill = in_kill || (!kills_before && c.modes_seen().contains("Kill"));
    let reason = if kill { KILL_10028 } else { UNCONFIRMED_10028 };
    if kill {
        assert!(path.contains("operator"), "a Kill relaxed without the operator: {path}");
    } else {
        let (_, r) = c.codes_seen();
        assert!(r.contains(UNCONFIRMED_10028), "{r:?}");
    }
    c.facts.insert(format!("{phase}: mode_reason"), json!(reason));
    c.facts.insert(format!("{phase}: recovery_path"), json!(path));
    c.notes.push(format!("{phase}: `{reason}` raised; recovery: {path}"));
    c.assert_recovered(&format!("recovery after the {phase}"));
    (kill, path)
}

/// Waits out a storm's containment: ReduceOnly relaxes by itself after the clean
/// reconciliation; from Kill, once the reconciliation is clean (latch clear), relaxes through
/// the operator socket, retrying while the engine still refuses (the breaker's measured
/// inputs hold the reason until the reconnect's full reconciliation has passed).
fn recover_from_storm(c: &Chaos) -> &'static str {
    let deadline = Instant::now() + DEADLINE;
    let mut refusals = Vec::new();
    loop {
        if let Some(st) = c.status() {
            if !is_contained(&st) {
                return "automatic relax after the clean reconciliation";
            }
            let clean = st["reconcile"]["last_result"] == "clean"
                && st["open_permission_blocked_latch"] == false;
            if st["trading_mode"] == "Kill" && clean {
                match c.try_operator_relax("chaos: storm over, reconciliation clean") {
                    Ok(()) => {
                        return "operator relax (`stoic mode relax`) after the clean reconciliation"
                    }
                    Err(e) => refusals.push(e),
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "never recovered from the storm; relax refusals {refusals:?}\n{}",
            c.tail()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// AT-408 / AT-210: a book change-id gap, then private notifications lost while a resting
/// order fills (late fill): the reconciliation latches opens, adopts the fill, and positions
/// equal the venue's.
#[test]
fn chaos_ws_gap_late_fills() {
    let mut c = Chaos::start("ws_gap_late_fills", 13);
    c.fault(&Fault::DropBookMessages { count: 3, instrument: Some("BTC-PERPETUAL".into()) });
    c.wait_code("WS_BOOK_GAP_RECONCILE_REQUIRED");
    c.wait_active("recovery from the book gap");
    eprintln!("[ws_gap_late_fills] book gap recovered");
    let mut p = probe(&c);
    let adopted = |c: &Chaos| {
        reconcile_count(c, "late_fills_adopted")
            + reconcile_count(c, "orphan_fills_adopted")
            + reconcile_count(c, "positions_adopted")
    };
    // Detection is the engine's periodic pass (a lost notification fires no trigger), then a
    // confirming pass; passes voided by concurrent trading repeat. Generous bound. Stops at
    // the containment (latch) so that its window can be watched.
    let deadline = Instant::now() + 2 * DEADLINE;
    let mut n = 0;
    'fault: loop {
        assert!(Instant::now() < deadline, "no late fill detected:\n{}", c.tail());
        c.fault(&Fault::DropUserNotifications { count: 40 });
        n += 1;
        let took = probe_take_resting(&c, &mut p, n, None);
        eprintln!("[ws_gap_late_fills] attempt {n}: take sent {took}");
        for _ in 0..30 {
            if c.status().is_some_and(|v| is_contained(&v)) || adopted(&c) > 0 {
                break 'fault;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    c.fault(&Fault::DropUserNotifications { count: 0 });
    c.assert_no_opens_while_contained("the late fill detected, until adopted", None);
    let deadline = Instant::now() + 2 * DEADLINE;
    while adopted(&c) == 0 {
        assert!(Instant::now() < deadline, "no late fill adopted:\n{}", c.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    let which = c.assert_any_code_seen(&[
        "WS_TRADES_GAP_RECONCILE_REQUIRED",
        "INVENTORY_MISMATCH_RECONCILE_REQUIRED",
    ]);
    c.facts.insert("latch_codes".into(), json!(which));
    c.assert_recovered("recovery after the late fills were adopted");
    c.notes.push("late fill adopted by reconciliation: yes".into());
    assert_left_active(&c);
    c.assert_contained();
    c.write_evidence(
        "`DropBookMessages` 3 on BTC-PERPETUAL, then `DropUserNotifications` while an outside \
         taker fills a resting order (the fill is never notified).",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

/// The single-order counterpart of AT-328 (the two-leg group case is
/// `chaos_group_leg_a_partial_leg_b_rejected`): churn trades two instruments independently;
/// "leg A" is its BTC-PERPETUAL order flow, "leg B" its ETH-PERPETUAL one. An outside taker
/// fills a resting BTC order (exposure), the reduce-only close fills only partially
/// (`PartialFill` 0.5) and is followed by a close of the rest, and the next ETH order is
/// rejected. Exposure stays within tolerance, no mismatch is left behind, the engine's
/// positions equal the venue's.
#[test]
fn chaos_partial_fill_leg_a_reject_leg_b() {
    let mut c = Chaos::start("partial_fill_leg_a_reject_leg_b", 14);
    let mark = c.journal_mark();
    c.fault(&Fault::PartialFill { fraction: 0.5 });
    c.fault(&Fault::RejectNextOrder { instrument: "ETH-PERPETUAL".into(), code: None });
    let mut p = probe(&c);
    let reduce_only_after = |c: &Chaos| {
        c.journal()
            .iter()
            .filter(|e| e["seq"].as_u64().unwrap_or(0) > mark && e["key"] == chaos_support::OUR_KEY)
            .filter(|e| e["flags"]["reduce_only"] == true && e["instrument"] == "BTC-PERPETUAL")
            .count()
    };
    let rejected = |c: &Chaos| {
        c.journal().iter().any(|e| {
            e["seq"].as_u64().unwrap_or(0) > mark
                && e["key"] == chaos_support::OUR_KEY
                && e["instrument"] == "ETH-PERPETUAL"
                && e["result"]["error"].is_number()
        })
    };
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    // A partially filled close is followed by another close of the rest.
    while reduce_only_after(&c) < 2 || !rejected(&c) {
        assert!(Instant::now() < deadline, "no partial close / leg B reject:\n{}", c.tail());
        n += 1;
        if reduce_only_after(&c) < 2 {
            // BTC only: the injected reject is meant for the engine's ETH order.
            probe_take_resting(&c, &mut p, n, Some("BTC-PERPETUAL"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    c.notes.push(
        "BTC-PERPETUAL (leg A): a reduce-only close filled partially, the remainder closed by a \
         further reduce-only order"
            .into(),
    );
    c.notes.push("ETH-PERPETUAL (leg B): the venue rejected the order (11030)".into());
    c.fault(&Fault::Clear);
    c.assert_recovered("trading after the reject");
    // A reject and a partial fill are ordinary reports: no mismatch, no gap.
    c.assert_codes_absent(&[
        "INVENTORY_MISMATCH_RECONCILE_REQUIRED",
        "WS_TRADES_GAP_RECONCILE_REQUIRED",
    ]);
    c.assert_contained();
    c.write_evidence(
        "`PartialFill` 0.5 (takers fill half) while an outside taker creates exposure on \
         BTC-PERPETUAL, and `RejectNextOrder` on ETH-PERPETUAL. Single orders of the churn \
         strategy on two instruments, not an atomic group: the two-leg group with the same \
         faults is `group_leg_a_partial_leg_b_rejected`.",
        &["Active"],
    );
    c.finish();
}

/// Two BTC calls of the nearest expiry at least a day out, adjacent strikes around the
/// perpetual's mark (K1 < K2): the vertical's legs.
fn vertical_legs(sim: &simulator::SimHandle) -> (String, String) {
    sim.with_engine(|e| {
        let now = e.now_ms();
        let spot = e.by_name.get("BTC-PERPETUAL").map(|&i| e.md[i].mark).expect("perpetual");
        let mut calls: Vec<&simulator::instruments::Instrument> = e
            .instruments
            .iter()
            .filter(|i| i.name.starts_with("BTC-") && i.name.ends_with("-C"))
            .filter(|i| i.expiry_ms > now + 86_400_000)
            .collect();
        let expiry = calls.iter().map(|i| i.expiry_ms).min().expect("a BTC call expiry");
        calls.retain(|i| i.expiry_ms == expiry);
        calls.sort_by(|a, b| a.strike.total_cmp(&b.strike));
        let above = calls.iter().position(|i| i.strike > spot).unwrap_or(calls.len() - 1);
        let hi = above.max(1);
        (calls[hi - 1].name.clone(), calls[hi].name.clone())
    })
}

/// Net delta a contained group may leave (BTC): a tenth of the smallest option lot (0.1) at
/// delta 1. A naked near-the-money lot is about 0.05; a perpetual hedge is off by its 10 USD
/// amount step (≈ 0.0002 BTC) and the group's 2 % hedge residual.
const NET_DELTA_TOLERANCE_BTC: f64 = 0.01;

/// Net BTC delta of `positions` at the simulator's current greeks and marks: options by
/// their delta, the inverse BTC perpetual by its USD amount over the mark.
fn net_btc_delta(
    sim: &simulator::SimHandle,
    positions: &std::collections::BTreeMap<String, f64>,
) -> f64 {
    sim.with_engine(|e| {
        positions
            .iter()
            .filter(|(name, _)| name.starts_with("BTC-"))
            .map(|(name, size)| {
                let Some(&i) = e.by_name.get(name.as_str()) else { return 0.0 };
                let md = &e.md[i];
                if chaos_support::is_option(name) {
                    md.greeks.map_or(0.0, |g| g.delta) * size
                } else if md.mark > 0.0 {
                    size / md.mark
                } else {
                    0.0
                }
            })
            .sum()
    })
}

/// AT-328 / AT-116 with the engine's atomic group execution: the vertical's leg A fills half,
/// leg B is rejected. The group holds ReduceOnly (`REDUCEONLY_GROUP_LOCK_TIMEOUT`), rescues
/// or flattens, and no naked option leg is left; the hold is lifted only by an operator.
#[test]
fn chaos_group_leg_a_partial_leg_b_rejected() {
    let args: Vec<String> = ["--strategy", "vertical", "--seed", "7", "--lots", "2"]
        .iter()
        .chain(&["--topology", "compact", "--entry-debit-bps", "10000"])
        .map(|s| (*s).to_owned())
        .collect();
    let mut legs = None;
    let mut c = Chaos::start_with("group_leg_a_partial_leg_b_rejected", 7, args, |sim, dir| {
        let (a, b) = vertical_legs(sim);
        sim.faults().apply(&Fault::PartialFillNext { instrument: a.clone(), fraction: 0.5 });
        sim.faults().apply(&Fault::RejectNextOrder { instrument: b.clone(), code: None });
        // Option-friendly liquidity limits (the simulator quotes options 6 % wide).
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.json"),
        )
        .unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["data_limits"]["max_spread_bps_open"] = 2_000.into();
        v["data_limits"]["max_slippage_bps"] = 2_000.into();
        let policy = dir.join("policy_groups.json");
        std::fs::write(&policy, serde_json::to_string_pretty(&v).unwrap()).unwrap();
        legs = Some((a.clone(), b.clone()));
        vec!["--policy".into(), policy.display().to_string(), "--legs".into(), format!("{a},{b}")]
    });
    let (a, b) = legs.expect("legs chosen");
    c.wait_code("REDUCEONLY_GROUP_LOCK_TIMEOUT");
    assert!(c.modes_seen().contains("Active"), "traded Active before the hold");
    let deadline = Instant::now() + 2 * DEADLINE;
    loop {
        let ended = c.engine().lines.lock().unwrap().iter().any(|l| {
            l.starts_with("group: gid=")
                && (l.contains("to=Complete")
                    || l.contains("to=Flattened")
                    || l.contains("ESCALATED"))
        });
        if ended {
            break;
        }
        assert!(Instant::now() < deadline, "the group never ended:\n{}", c.tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_left_active(&c);
    c.assert_no_opens_while_contained("the group hold, before the operator relax", None);
    // Containment while held, checked whatever the positions: what is left beyond a balanced
    // spread (long K1 = short K2) plus any perpetual hedge must be delta-flat. A naked leg
    // (about 0.05 BTC delta per 0.1 lot near the money) fails; a hedged one passes.
    let pos = c.wait_positions_match();
    let k = |n: &str| pos.get(n).copied().unwrap_or(0.0);
    let (ka, kb) = (k(&a), k(&b));
    let spread = if ka * kb < 0.0 { ka.abs().min(kb.abs()) * ka.signum() } else { 0.0 };
    let mut residual = pos.clone();
    residual.insert(a.clone(), ka - spread);
    residual.insert(b.clone(), kb + spread);
    let delta = net_btc_delta(c.sim(), &residual);
    let hedged = pos.contains_key("BTC-PERPETUAL");
    assert!(
        delta.abs() <= NET_DELTA_TOLERANCE_BTC,
        "a naked leg persists: residual delta {delta} BTC beyond the balanced spread, \
         positions {pos:?}"
    );
    c.notes.push(format!(
        "after the group ended: option legs {}, perpetual hedge {}; residual delta beyond a \
         balanced spread within {NET_DELTA_TOLERANCE_BTC} BTC: yes",
        if (ka + kb).abs() < 1e-9 { "balanced" } else { "unbalanced" },
        if hedged { "present" } else { "none" },
    ));
    c.facts.insert("legs_balanced".into(), json!((ka + kb).abs() < 1e-9));
    c.facts.insert("perpetual_hedge".into(), json!(hedged));
    // The hold is the group's: the reconcile service never lifts it; an operator does.
    assert_ne!(c.status().unwrap()["trading_mode"], "Active");
    c.operator_relax("chaos: group contained, legs balanced");
    c.assert_recovered("Active after the operator relax");
    c.assert_contained();
    c.write_evidence(
        "Vertical spread (atomic group, IOC legs): `PartialFillNext` 0.5 on leg A and \
         `RejectNextOrder` on leg B before the engine starts.",
        &["Active", "ReduceOnly (group hold)", "Active (operator relax)"],
    );
    c.finish();
}

/// AT-941 / CSP-004: SIGKILL of the real binary with orders in flight, restart on the same
/// WAL: in-doubt intents resolved by label, nothing resent.
#[test]
fn chaos_crash_restart_mid_flight() {
    let mut c = Chaos::start("crash_restart_mid_flight", 15);
    c.fault(&Fault::DelayFills { ms: 1_500 });
    let mark = c.journal_mark();
    c.wait_orders_after(mark, 3, "orders in flight before the crash");
    c.kill9();
    // What the killed process had already written to its sockets reaches the venue first;
    // everything after this mark is the new process's. Its WAL ends at `boundary`.
    std::thread::sleep(CONTAINMENT_SETTLE);
    let mark = c.journal_mark();
    let boundary = c.wal_last_seq();
    c.spawn_engine();
    // The watcher and the sticky sets are the new process's only (`kill9` forgot the first).
    c.wait_code("RESTART_RECONCILE_REQUIRED");
    c.fault(&Fault::DelayFills { ms: 0 });
    c.assert_recovered("recovery after the restart");
    let restarted = c.engine().wait_line("reconciled:", Duration::from_secs(5));
    assert!(restarted.is_some(), "no start-up reconciliation line");
    assert_left_active(&c);
    c.assert_contained();
    // The restarted process's latch lasts as long as its start-up reconciliation: checked in
    // WAL order (its opens against its start-up relax) after it stopped.
    c.stop_engine();
    let opens = c.open_labels(|e| e["seq"].as_u64().unwrap_or(0) > mark);
    c.assert_no_opens_before_relax("the restarted process, while latched", boundary, &opens);
    c.write_evidence(
        "`DelayFills` 1.5 s, SIGKILL of `stoic run` with orders in flight, restart on the same WAL.",
        &["ReduceOnly (start, latched)", "Active"],
    );
    c.finish();
}

/// §3.4.D zombie socket: market data frozen with exposure or recent activity trips after
/// `ws_zombie_silence_ms` (15 s); opens stop, the latch holds until data resumes and a clean
/// reconciliation passes.
#[test]
fn chaos_stale_data_liquidity_gate() {
    let mut c = Chaos::start("stale_data_liquidity_gate", 16);
    let lines_before = c.engine().lines.lock().unwrap().len();
    c.fault(&Fault::MuteMarketData { on: true });
    // Before the zombie rule: books older than `l2_book_snapshot_max_age_ms` (1 s) fail the
    // liquidity gate, so no open leaves while the data is merely stale.
    std::thread::sleep(Duration::from_millis(1_500));
    let deadline = Instant::now() + DEADLINE;
    while !c.engine().lines.lock().unwrap()[lines_before..]
        .iter()
        .any(|l| l.contains("last_gate_reject=liquidity:LiquidityGateNoL2"))
    {
        assert!(
            Instant::now() < deadline,
            "liquidity gate never refused a stale book:\n{}",
            c.tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mark = c.journal_mark();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.opens_after(mark), 0, "opens on stale books");
    c.notes.push("opens on stale books (liquidity gate, LiquidityGateNoL2): 0".into());
    c.wait_code("WS_DATA_STALE_RECONCILE_REQUIRED");
    c.wait_code("REDUCEONLY_OPEN_PERMISSION_LATCHED");
    c.assert_no_opens_while_contained("stale market data latched", None);
    c.fault(&Fault::MuteMarketData { on: false });
    c.assert_recovered("recovery after market data resumed");
    assert_left_active(&c);
    c.assert_contained();
    c.write_evidence(
        "`MuteMarketData` on (no book, ticker or index notification) for longer than `ws_zombie_silence_ms`.",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

/// AT-314: the venue clock drifts 5 s from ours: Degraded ⇒ ReduceOnly, no new risk; back
/// in range ⇒ reconcile and relax.
#[test]
fn chaos_clock_drift_halts_new_risk() {
    let mut c = Chaos::start("clock_drift", 17);
    c.fault(&Fault::ClockSkew { ms: 5_000 });
    c.wait_code("REDUCEONLY_RISKSTATE_DEGRADED");
    c.wait_status("ReduceOnly under drift", |v| v["trading_mode"] != "Active");
    let st = c.status().unwrap();
    let drift = st["reconcile"]["clock_drift_ms"].as_i64().unwrap_or(0);
    assert!(drift.abs() > 50, "drift shown {drift}");
    c.assert_no_opens_while_contained("the clock drifted", None);
    c.fault(&Fault::ClockSkew { ms: 0 });
    c.assert_recovered("recovery after the clock came back");
    assert_left_active(&c);
    c.assert_contained();
    c.write_evidence(
        "`ClockSkew` +5000 ms on every venue timestamp (drift > `time_drift_threshold_ms` 50).",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

/// Venue maintenance: `platform_state` maintenance ⇒ ReduceOnly (Maintenance), matching-engine
/// requests answer 11051; maintenance over ⇒ reconcile and relax.
#[test]
fn chaos_exchange_maintenance() {
    let mut c = Chaos::start("exchange_maintenance", 18);
    c.fault(&Fault::Maintenance { on: true });
    c.wait_code("REDUCEONLY_RISKSTATE_MAINTENANCE");
    c.wait_status("ReduceOnly in maintenance", |v| v["trading_mode"] != "Active");
    c.assert_no_opens_while_contained("venue maintenance", None);
    c.fault(&Fault::Maintenance { on: false });
    c.assert_recovered("recovery after maintenance");
    assert_left_active(&c);
    c.assert_contained();
    c.write_evidence(
        "`Maintenance` on: `platform_state {maintenance: true}`, private matching-engine requests answer 11051.",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

/// AT-121 dedup: the venue repeats fill notifications (same trade id): the repeat is ignored,
/// nothing is double counted, no mismatch, the mode never moves.
#[test]
fn chaos_duplicate_fill_notification() {
    let mut c = Chaos::start("duplicate_fill_notification", 19);
    let mut p = probe(&c);
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    while reconcile_count(&c, "duplicate_fills_ignored") == 0 {
        assert!(Instant::now() < deadline, "no repeated fill seen:\n{}", c.tail());
        c.fault(&Fault::DuplicateFillNotifications { count: 4 });
        n += 1;
        probe_take_resting(&c, &mut p, n, None);
        std::thread::sleep(Duration::from_millis(700));
    }
    c.fault(&Fault::Clear);
    // Every venue trade counted once: distinct fills applied == the venue's trades.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ours, venue) = (reconcile_count(&c, "fills_applied"), c.venue_trade_count());
        if ours == venue {
            c.notes.push("fills applied by the engine == trades at the venue".into());
            break;
        }
        assert!(Instant::now() < deadline, "fills {ours} != venue trades {venue}\n{}", c.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    // A repeated notification must not look like a mismatch.
    c.assert_codes_absent(&[
        "WS_TRADES_GAP_RECONCILE_REQUIRED",
        "INVENTORY_MISMATCH_RECONCILE_REQUIRED",
    ]);
    c.assert_recovered("still trading");
    c.notes.push("repeated fill notifications ignored (by trade id): yes".into());
    c.assert_contained();
    c.write_evidence(
        "`DuplicateFillNotifications`: each fill notification is delivered twice.",
        &["Active"],
    );
    c.finish();
}

/// AT-122 / §3.5: an order with our label prefix that no ledger intent owns (left by a
/// process whose WAL was lost) is cancelled through dispatch, and the mismatch latches opens
/// until a clean reconciliation.
#[test]
fn chaos_zombie_order_swept() {
    let mut c = Chaos::start("zombie_order_swept", 20);
    let mut t = simulator::client::WsClient::connect(c.sim().addr()).unwrap();
    t.auth("sim-dev-trade", "sim-dev-trade-secret-0001").unwrap();
    let ob = t.call("public/get_order_book", &json!({"instrument_name": "BTC-PERPETUAL"})).unwrap();
    let bid = ob["best_bid_price"].as_f64().unwrap();
    let label = "s4:c0ffee00:0123456789ab:0:0123456789abcdef";
    // Set-up through the simulator's test client (not engine code): the stray order.
    t.call(
        "private/buy",
        &json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit",
                "price": (bid * 0.8).round(), "post_only": true, "label": label}),
    )
    .unwrap();
    c.wait_code("INVENTORY_MISMATCH_RECONCILE_REQUIRED");
    c.wait_code("REDUCEONLY_OPEN_PERMISSION_LATCHED");
    c.assert_no_opens_while_contained("the zombie's mismatch latched", None);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let open =
            t.call("private/get_open_orders_by_currency", &json!({"currency": "BTC"})).unwrap();
        let still = open.as_array().into_iter().flatten().any(|o| o["label"] == label);
        if !still {
            break;
        }
        assert!(Instant::now() < deadline, "zombie never cancelled:\n{}", c.tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    let cancelled_by_dispatch =
        c.journal().iter().any(|e| e["method"] == "private/cancel_by_label" && e["label"] == label);
    assert!(cancelled_by_dispatch, "the cancel went through the engine's dispatch");
    assert!(reconcile_count(&c, "zombies_cancelled") >= 1);
    c.assert_recovered("recovery after the sweep");
    c.notes.push("zombie cancelled through dispatch (cancel_by_label): yes".into());
    assert_left_active(&c);
    c.assert_contained();
    c.write_evidence(
        "An open order labelled `s4:...` at the venue that no ledger intent owns.",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

/// Order ack lost (AT-329 / CSP-004 shape, a venue fault of its own): the venue applies one
/// of our orders, then the connection dies before the reply or any notification of it. The
/// engine does not know the order's fate: it latches opens, reconnects, resolves the
/// in-doubt intent by label (never a resend), reconciles, and resumes. No duplicate of the
/// order at the venue, its fate learned and journaled, positions equal the venue's.
#[test]
fn chaos_order_ack_lost() {
    let mut c = Chaos::start("order_ack_lost", 21);
    let resolved = |c: &Chaos| {
        c.status().map_or(0, |v| v["counters"]["in_doubt_resolved"].as_u64().unwrap_or(0))
    };
    let resolved_before = resolved(&c);
    let mark = c.journal_mark();
    c.fault(&Fault::LoseNextOrderAck { instrument: None });
    // The order the fault hit: our first new order the venue accepted after the mark.
    let deadline = Instant::now() + DEADLINE;
    let (label, session) = loop {
        let hit = c.journal().into_iter().find(|e| {
            e["seq"].as_u64().unwrap_or(0) > mark
                && e["key"] == chaos_support::OUR_KEY
                && matches!(e["method"].as_str(), Some("private/buy" | "private/sell"))
                && e["result"]["error"].is_null()
        });
        if let Some(e) = hit {
            break (e["label"].as_str().unwrap_or("").to_owned(), e["session"].as_u64());
        }
        assert!(Instant::now() < deadline, "no order after the fault:\n{}", c.tail());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!label.is_empty(), "the lost order has a label");
    c.wait_code("SESSION_TERMINATION_RECONCILE_REQUIRED");
    c.assert_recovered("recovery after the reconnect and the in-doubt resolution");
    let after = c.wait_status("the in-doubt intent resolved", |v| {
        v["counters"]["in_doubt_resolved"].as_u64().unwrap_or(0) > resolved_before
    });
    assert!(after["counters"]["in_doubt_resolved"].as_u64() > Some(resolved_before));
    c.notes.push("in-doubt intents resolved by label after the reconnect: yes".into());
    // Sent once: the label appears on exactly one new order at the venue.
    let sends = c
        .journal()
        .iter()
        .filter(|e| matches!(e["method"].as_str(), Some("private/buy" | "private/sell")))
        .filter(|e| e["label"] == label.as_str())
        .count();
    assert_eq!(sends, 1, "the order whose ack was lost was sent {sends} times");
    c.notes.push("the order whose reply was lost reached the venue once (no resend)".into());
    c.assert_contained();
    c.stop_engine();
    // Its fate is in the WAL: a record after `Sent` that only the venue could tell (by label).
    let wal = c.wal_records();
    let rec = wal
        .iter()
        .find(|r| r["kind"] == "IntentRecorded" && r["fields"]["label"] == label.as_str())
        .expect("the lost order's intent in the WAL");
    let (hash, boundary) = (rec["fields"]["intent_hash"].clone(), rec["seq"].as_u64().unwrap());
    let fate: Vec<String> = wal
        .iter()
        .filter(|r| r["fields"]["intent_hash"] == hash)
        .filter_map(|r| r["kind"].as_str().map(str::to_owned))
        .filter(|k| !matches!(k.as_str(), "IntentRecorded" | "Sent"))
        .collect();
    assert!(!fate.is_empty(), "the lost order's fate never reached the WAL");
    let terminal =
        |k: &String| matches!(k.as_str(), "Filled" | "Cancelled" | "Rejected" | "Abandoned");
    assert!(fate.iter().any(terminal), "the lost order left non-terminal: {fate:?}");
    assert!(!fate.iter().any(|k| k == "Abandoned"), "the venue had it; never abandoned");
    c.facts.insert(
        "lost_order_wal_fate".into(),
        json!(fate.iter().filter(|k| terminal(k)).collect::<Vec<_>>()),
    );
    c.notes.push(format!(
        "its fate journaled from the venue's answer by label: {}",
        fate.iter().filter(|k| terminal(k)).cloned().collect::<Vec<_>>().join(", ")
    ));
    let new_opens = c.open_labels(|e| e["session"].as_u64() != session);
    c.assert_no_opens_before_relax("after the lost reply, until the relax", boundary, &new_opens);
    c.write_evidence(
        "`LoseNextOrderAck`: the venue applies our next order, then the connection dies \
         before the reply and before any notification of it (cancel-on-disconnect runs).",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}

/// Position snapshot lagging trades (issue 8's list): the venue's position service freezes
/// while we hold a position; the engine closes it (trades and the venue's state say flat),
/// position queries keep answering the old size. Asserted: the reconciliation notices
/// (`INVENTORY_MISMATCH_RECONCILE_REQUIRED`), the real exposure at the venue stays within
/// tolerance while the snapshot lies, 0 duplicates / illegal orders, and after the fault
/// clears the engine's positions equal the venue's and it trades again. Measured, NOT
/// asserted (a known gap, see the report): whether the engine adopted the lagging snapshot
/// over its trades and went back to Active with it.
#[test]
fn chaos_position_snapshot_lagging_trades() {
    let mut c = Chaos::start("position_snapshot_lagging_trades", 22);
    let mut p = probe(&c);
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    while c.venue_positions().is_empty() {
        assert!(Instant::now() < deadline, "no position to freeze:\n{}", c.tail());
        n += 1;
        probe_take_resting(&c, &mut p, n, None);
        std::thread::sleep(Duration::from_millis(100));
    }
    c.fault(&Fault::FreezePositionSnapshot { on: true });
    // What position queries now answer (non-zero sizes, as the venue reports them).
    let frozen: std::collections::BTreeMap<String, f64> = c.sim().with_engine(|e| {
        let acct = e.accounts.iter().position(|a| a.username == sim_support::ENGINE_ACCOUNT);
        let snap = acct.and_then(|a| e.faults.frozen_positions.as_ref().map(|f| f[a].clone()));
        snap.unwrap_or_default()
            .iter()
            .filter(|(_, p)| p.size != 0)
            .map(|(i, p)| (e.instruments[*i].name.clone(), simulator::util::amt(p.size)))
            .collect()
    });
    assert!(!frozen.is_empty(), "the snapshot froze a position");
    c.wait_code("INVENTORY_MISMATCH_RECONCILE_REQUIRED");
    // Watch the lie for a while: the venue's real exposure, and what the engine believes.
    let mut adopted_lag_while_active = false;
    let mut worst = 0.0_f64;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let venue = c.venue_positions();
        worst = venue.values().fold(worst, |m, s| m.max(s.abs()));
        if let Some(st) = c.status() {
            let ours = Chaos::engine_positions(&st);
            if st["trading_mode"] == "Active" && ours == frozen && venue != frozen {
                adopted_lag_while_active = true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        worst <= chaos_support::EXPOSURE_TOLERANCE,
        "real exposure while the snapshot lagged: {worst}"
    );
    c.notes.push(format!(
        "real exposure at the venue while the snapshot lagged within tolerance \
         ({}): yes",
        chaos_support::EXPOSURE_TOLERANCE
    ));
    c.facts.insert("engine_active_with_lagged_positions".into(), json!(adopted_lag_while_active));
    c.notes.push(format!(
        "KNOWN GAP, measured not asserted: the engine adopted the lagging snapshot and was \
         Active holding the snapshot's positions while the venue's differed: {}",
        if adopted_lag_while_active { "yes" } else { "no" }
    ));
    c.fault(&Fault::FreezePositionSnapshot { on: false });
    c.assert_recovered("trading after the snapshot caught up");
    c.assert_contained();
    c.write_evidence(
        "`FreezePositionSnapshot` on while we hold a position: `get_positions` / \
         `get_position` keep answering it after the engine closed it; then off.",
        &["Active", "ReduceOnly", "Active"],
    );
    c.finish();
}
