//! End to end against the real simulator (in-process): the test sets up venue state with the
//! simulator's own test client and the dev *trade* key — (a) an `s4:` order the ledger does
//! not know (zombie), (b) a fill for a label the ledger thinks is only `Sent` (late fill),
//! (c) a position the local book does not have — then runs the [`Reconciler`] with the
//! *read-only* key and checks the findings. The zombie cancel is executed through the test
//! client (the engine's dispatch does it in production); the re-run is clean.

use std::collections::BTreeMap;
use std::sync::Arc;

use coldpath::reconcile::sweeper::ZombieReason;
use coldpath::reconcile::{
    CancelReason, Finding, FindingKind, IntentDetail, LedgerIntent, LedgerRepair, LedgerSnapshot,
    LocalPositions, ReconcileError, Reconciler, ReconcilerConfig, RepairAction,
};
use hotpath::clock::{Clock, SystemClock};
use hotpath::domain::reason_codes::OpenPermissionReasonCode;
use hotpath::mode::OpenPermissionLatch;
use hotpath::venue::auth::{Credentials, Secret};
use hotpath::venue::messages::Direction;
use hotpath::venue::Decimal8;
use hotpath::wal::IntentState;
use serde_json::{json, Value};
use simulator::client::WsClient;
use simulator::{SimConfig, Simulator};

const READ_ID: &str = "sim-dev-read";
const READ_SECRET: &str = "sim-dev-read-secret-0002";
const TRADE_ID: &str = "sim-dev-trade";
const TRADE_SECRET: &str = "sim-dev-trade-secret-0001";

const ZOMBIE_LABEL: &str = "s4:0badcafe:00000000000a:0:000000000000000a";
const LATE_LABEL: &str = "s4:0badcafe:00000000000b:0:000000000000000b";
const LATE_HASH: u64 = 0xb;

fn creds(id: &str, secret: &str) -> Credentials {
    Credentials { client_id: id.to_owned(), client_secret: Secret::new(secret.to_owned()) }
}

fn dec(v: &Value) -> i64 {
    let text = v.to_string();
    Decimal8::parse_str(&text).map(|d| d.raw).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

/// An option with a two-sided book and a mark well above one tick.
fn pick_option(c: &mut WsClient, skip: &str) -> (String, Value) {
    let list = c
        .call("public/get_instruments", &json!({"currency": "BTC", "kind": "option"}))
        .expect("instruments");
    for ins in list.as_array().expect("array") {
        let name = ins["instrument_name"].as_str().unwrap_or_default();
        if name == skip {
            continue;
        }
        let book =
            c.call("public/get_order_book", &json!({"instrument_name": name})).expect("book");
        let ask = book["best_ask_price"].as_f64().unwrap_or(0.0);
        let bid = book["best_bid_price"].as_f64().unwrap_or(0.0);
        let mark = book["mark_price"].as_f64().unwrap_or(0.0);
        if ask > 0.0 && bid > 0.0 && mark > 0.01 {
            return (name.to_owned(), book);
        }
    }
    panic!("no liquid option in the simulator");
}

#[test]
fn reconciler_refuses_a_trade_capable_key() {
    let sim = Simulator::start(SimConfig::default()).expect("sim");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let err = Reconciler::connect(
        ReconcilerConfig::new(&sim.ws_url()),
        &creds(TRADE_ID, TRADE_SECRET),
        clock,
    )
    .expect_err("trade key must be refused");
    assert!(
        matches!(err, ReconcileError::TradeCapableKey { ref scope } if scope.contains("trade:read_write"))
    );
    sim.shutdown();
}

#[test]
fn zombie_late_fill_and_foreign_position_then_clean() {
    let sim = Simulator::start(SimConfig::default()).expect("sim");
    let mut c = WsClient::connect(sim.addr()).expect("client");
    c.auth(TRADE_ID, TRADE_SECRET).expect("auth trade key");

    // (a) zombie: resting one-tick bid under our prefix, unknown to the ledger.
    let (zombie_inst, _) = pick_option(&mut c, "");
    let z = c
        .call(
            "private/buy",
            &json!({"instrument_name": zombie_inst, "amount": 0.1, "type": "limit",
                    "price": 0.0001, "label": ZOMBIE_LABEL}),
        )
        .expect("zombie order");
    let zombie_id = z["order"]["order_id"].as_str().expect("order id").to_owned();
    assert_eq!(z["order"]["order_state"], "open");

    // (b) late fill: IOC at the ask under a label the ledger has as Sent.
    let (late_inst, book) = pick_option(&mut c, &zombie_inst);
    let fill = c
        .call(
            "private/buy",
            &json!({"instrument_name": late_inst, "amount": 0.1, "type": "limit",
                    "price": book["best_ask_price"], "time_in_force": "immediate_or_cancel",
                    "label": LATE_LABEL}),
        )
        .expect("late-fill order");
    let filled = dec(&fill["order"]["filled_amount"]);
    assert!(filled > 0, "IOC at the ask must fill: {fill}");

    // (c) a position the local book lacks: a foreign-labelled perpetual buy.
    let perp = c
        .call("public/get_order_book", &json!({"instrument_name": "BTC-PERPETUAL"}))
        .expect("perp book");
    let foreign = c
        .call(
            "private/buy",
            &json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit",
                    "price": perp["best_ask_price"], "time_in_force": "immediate_or_cancel",
                    "label": "manual-hedge"}),
        )
        .expect("foreign order");
    assert!(dec(&foreign["order"]["filled_amount"]) > 0, "{foreign}");

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut rec = Reconciler::connect(
        ReconcilerConfig::new(&sim.ws_url()),
        &creds(READ_ID, READ_SECRET),
        Arc::clone(&clock),
    )
    .expect("reconciler with the read-only key");
    let scope = rec.scope().unwrap_or_default().to_owned();
    assert!(!scope.contains("read_write"), "read-only scope, got {scope}");

    let mut ledger = LedgerSnapshot {
        intents: vec![LedgerIntent {
            intent_hash: LATE_HASH,
            label: LATE_LABEL.to_owned(),
            state: IntentState::Sent,
            venue_order_id: None,
            filled_amount: 0,
            updated_ms: clock.now_ms() - 60_000,
            detail: Some(IntentDetail {
                instrument: late_inst.clone(),
                direction: Direction::Buy,
                amount: 10_000_000,
                reduce_only: false,
            }),
        }],
        ..LedgerSnapshot::default()
    };
    let mut local = LocalPositions::default();
    let latch = OpenPermissionLatch::new_at_start();
    let ticket = latch.begin_reconcile();

    let report = rec.run_once(&ledger, &local).expect("first pass");
    let kinds: Vec<FindingKind> = report.findings.iter().map(Finding::kind).collect();
    assert_eq!(
        kinds,
        vec![FindingKind::LateFill, FindingKind::ZombieOrder, FindingKind::PositionMismatch],
        "{:#?}",
        report.findings
    );
    assert!(report.findings.iter().any(|f| matches!(f,
        Finding::ZombieOrder { order_id, reason: ZombieReason::NoIntent, .. } if *order_id == zombie_id)));
    assert!(
        report.findings.iter().any(|f| matches!(f,
        Finding::LateFill { intent_hash: LATE_HASH, venue_filled, .. } if *venue_filled == filled))
    );
    assert!(report.findings.iter().any(|f| matches!(f,
        Finding::PositionMismatch { instrument, local: 0, venue, .. }
            if instrument == "BTC-PERPETUAL" && *venue > 0)));
    let cancels: Vec<_> = report.cancels().cloned().collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].order_id, zombie_id);
    assert_eq!(cancels[0].reason, CancelReason::Zombie(ZombieReason::NoIntent));
    assert!(report.actions.contains(&RepairAction::SetLatch(
        OpenPermissionReasonCode::InventoryMismatchReconcileRequired
    )));
    assert!(
        latch.complete_reconcile(ticket, &report.latch_report()).is_err(),
        "dirty ⇒ latch stays"
    );

    // The engine's part: dispatch the cancel (here the test client), apply the repairs.
    c.call("private/cancel", &json!({"order_id": zombie_id})).expect("cancel zombie");
    for a in &report.actions {
        match a {
            RepairAction::Ledger(rep) => {
                let it = ledger
                    .intents
                    .iter_mut()
                    .find(|i| i.intent_hash == rep.intent_hash())
                    .expect("repair for a known intent");
                it.state = rep.target_state();
                if let Some(f) = rep.filled_amount() {
                    it.filled_amount = f;
                }
                if let LedgerRepair::Acknowledged { venue_order_id, .. } = rep {
                    it.venue_order_id = Some(venue_order_id.clone());
                }
            }
            RepairAction::AdoptFill { instrument, delta, trade_ids } => {
                *local.0.entry(instrument.clone()).or_default() += delta;
                ledger.processed_trade_ids.extend(trade_ids.iter().cloned());
            }
            RepairAction::AdoptPosition { instrument, size } => {
                local.0.insert(instrument.clone(), *size);
            }
            RepairAction::Cancel(_) | RepairAction::SetLatch(_) | RepairAction::RaiseMode(_) => {}
        }
    }
    assert_eq!(local.get(&late_inst), filled, "late fill adopted into positions");
    assert!(ledger.intents[0].state.is_terminal());

    let ticket = latch.begin_reconcile();
    let again = rec.run_once(&ledger, &local).expect("second pass");
    assert!(again.is_clean(), "{:#?}\n{:#?}", again.findings, again.actions);
    latch.complete_reconcile(ticket, &again.latch_report()).expect("clean pass clears the latch");
    assert!(!latch.is_latched());
    assert_eq!(rec.runs(), 2);
    sim.shutdown();
}

#[test]
fn trades_paginate_across_runs_from_the_watermark() {
    let sim = Simulator::start(SimConfig::default()).expect("sim");
    let mut c = WsClient::connect(sim.addr()).expect("client");
    c.auth(TRADE_ID, TRADE_SECRET).expect("auth trade key");
    let mut bought = 0_i64;
    for _ in 0..5 {
        let perp = c
            .call("public/get_order_book", &json!({"instrument_name": "BTC-PERPETUAL"}))
            .expect("perp book");
        let r = c
            .call(
                "private/buy",
                &json!({"instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit",
                        "price": perp["best_ask_price"], "time_in_force": "immediate_or_cancel",
                        "label": "manual"}),
            )
            .expect("buy");
        bought += dec(&r["order"]["filled_amount"]);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(bought > 0);
    let mut cfg = ReconcilerConfig::new(&sim.ws_url());
    cfg.trades_page_size = 2;
    cfg.trades_pages_max = 2;
    let mut rec = Reconciler::connect(cfg, &creds(READ_ID, READ_SECRET), Arc::new(SystemClock))
        .expect("reconciler");
    let local = LocalPositions(BTreeMap::from([("BTC-PERPETUAL".to_owned(), bought)]));
    let first = rec.run_once(&LedgerSnapshot::default(), &local).expect("first pass");
    assert_eq!(first.count(FindingKind::TradesIncomplete), 1, "{:?}", first.findings);
    assert!(!first.checks.no_missing_trades);
    let second = rec.run_once(&LedgerSnapshot::default(), &local).expect("second pass");
    assert!(second.is_clean(), "{:?}", second.findings);
    sim.shutdown();
}
