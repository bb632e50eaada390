//! `to_status`: the engine snapshot becomes a status payload that passes every schema rule
//! (`StatusSnapshot::check`) and carries positions, orders, PnL and transitions as the engine
//! knows them.

use std::sync::{Arc, Mutex};

use hotpath::domain::instrument::Instrument;
use hotpath::domain::reason_codes::{ModeReasonCode, RiskState, TradingMode};
use hotpath::domain::units::Usd;

use super::pnl::{HoldingView, PnlView};
use super::risk_watch::ModeTransition;
use super::status::{to_status, to_status_at, LOOP_STALL_MS};
use super::{EngineSnapshot, EngineStats, OpenOrderRow, ReconcileSummary};

const X: i64 = 100_000_000;

fn killed_snapshot() -> EngineSnapshot {
    let perp = Instrument::parse("BTC-PERPETUAL").unwrap().name();
    EngineSnapshot {
        run_id: "r".into(),
        mode: TradingMode::Kill,
        risk_state: RiskState::Healthy,
        latched: false,
        stats: EngineStats { intents: 2, sent: 1, gate_rejects: 1, ..EngineStats::default() },
        positions: vec![("BTC-PERPETUAL".into(), 1_000 * X)],
        live_orders: 1,
        in_doubt: 0,
        mode_reasons: vec![ModeReasonCode::KillRiskstateKill],
        latch_codes: vec![],
        at_ms: 1_795_600_000_000,
        published_wall_ms: coldpath::status::now_ms(),
        policy_error: None,
        last_gate_reject: Some("risk_mode:TradingModeKill".into()),
        cash_flow: 0,
        pnl_mark: 0,
        daily_pnl: PnlView {
            day_start_ms: 1_795_564_800_000,
            realised_usd: Usd::from_raw(0),
            fees_usd: Usd::from_raw(0),
            unrealised_usd: Usd::from_raw(-100 * X),
            total_usd: Usd::from_raw(-100 * X),
            complete: true,
            holdings: vec![HoldingView {
                instrument: perp,
                size: 1_000 * X,
                avg_price: Some(99_980 * X),
                mark: Some(90_000 * X),
                unrealised_usd: Some(-100 * X),
            }],
        },
        mode_transitions: vec![
            ModeTransition {
                at_ms: 1,
                from: TradingMode::ReduceOnly,
                to: TradingMode::Active,
                reasons: vec![],
            },
            ModeTransition {
                at_ms: 2,
                from: TradingMode::Active,
                to: TradingMode::Kill,
                reasons: vec![ModeReasonCode::KillRiskstateKill],
            },
        ],
        open_orders: vec![OpenOrderRow {
            label: "l".into(),
            instrument: "BTC-PERPETUAL".into(),
            buy: false,
            price: 90_000 * X,
            amount: 1_000 * X,
            filled: 0,
            reducing: true,
        }],
        last_reconcile: ReconcileSummary { in_doubt: 1, abandoned: 1, ..Default::default() },
        last_reconcile_ms: Some(0),
        rejects_by_code: vec![("TradingModeKill", 1)],
        environment: Some("PAPER"),
        config_hash: "abc".into(),
        max_daily_loss_usd: Some(Usd::from_raw(20 * X)),
        recon: crate::engine::reconcile_service::ReconView::default(),
    }
}

#[test]
fn kill_snapshot_maps_to_a_consistent_status() {
    let st = to_status(&Arc::new(Mutex::new(Some(killed_snapshot()))));
    assert_eq!(st.check(), Ok(()));
    assert_eq!(st.trading_mode, TradingMode::Kill);
    assert!(!st.is_trading_allowed);
    let p = &st.positions[0];
    assert_eq!((p.size, p.average_price, p.mark_price), (1000.0, 99_980.0, Some(90_000.0)));
    assert_eq!(p.unrealized_pnl_usd, Some(-100.0));
    assert_eq!(st.open_orders[0].side, "sell");
    assert!(st.open_orders[0].reduce_only);
    assert_eq!(st.mode_transitions.len(), 2);
    assert_eq!(st.mode_transitions[1].reasons, vec![ModeReasonCode::KillRiskstateKill]);
    let d = st.daily_pnl.as_ref().unwrap();
    assert_eq!((d.total_usd, d.max_daily_loss_usd), (-100.0, Some(20.0)));
    assert_eq!(d.day_start_utc, "2026-11-25T00:00:00.000Z");
    assert_eq!(st.last_reconcile.as_ref().unwrap().abandoned, 1);
    assert_eq!(st.counters["gate_rejects"], 1);
    assert_eq!(st.rejects_by_reason["TradingModeKill"], 1);
    let json = serde_json::to_value(&st).unwrap();
    for key in ["daily_pnl", "last_reconcile", "counters", "rejects_by_reason", "mode_transitions"]
    {
        assert!(!json[key].is_null(), "{key}");
    }
}

#[test]
fn a_holding_that_does_not_match_the_engine_position_is_not_shown_as_its_price() {
    let mut s = killed_snapshot();
    s.positions[0].1 = 500 * X; // fills still in flight: sizes disagree
    let st = to_status(&Arc::new(Mutex::new(Some(s))));
    assert_eq!(st.positions[0].size, 500.0);
    assert_eq!(st.positions[0].mark_price, None);
    assert_eq!(st.check(), Ok(()));
}

#[test]
fn no_snapshot_yet_is_the_fail_closed_start_up_state() {
    let st = to_status(&Arc::new(Mutex::new(None)));
    assert_eq!(st.check(), Ok(()));
    assert_eq!(st.trading_mode, TradingMode::ReduceOnly);
    assert!(st.daily_pnl.is_none());
    assert!(!st.ok, "nothing published yet is not healthy");
    assert!(
        st.not_ok_reasons[0].contains("not published a snapshot yet"),
        "{:?}",
        st.not_ok_reasons
    );
}

/// `ok` is the engine's liveness verdict (issue 6: health/status exit non-zero when not ok):
/// a fresh snapshot of a loaded policy is ok; one the loop stopped refreshing, or one whose
/// policy did not load, is not, and says why.
#[test]
fn ok_is_false_with_a_reason_when_the_loop_stalls_or_the_policy_did_not_load() {
    let s = killed_snapshot();
    let fresh = to_status_at(Some(&s), s.published_wall_ms + 100);
    assert!(fresh.ok, "{:?}", fresh.not_ok_reasons);
    assert!(fresh.not_ok_reasons.is_empty());
    assert!(!serde_json::to_value(&fresh)
        .unwrap()
        .as_object()
        .unwrap()
        .contains_key("not_ok_reasons"));
    assert!(to_status_at(Some(&s), s.published_wall_ms + LOOP_STALL_MS).ok, "at the limit");

    let stalled = to_status_at(Some(&s), s.published_wall_ms + LOOP_STALL_MS + 1);
    assert!(!stalled.ok);
    assert!(
        stalled.not_ok_reasons[0].contains("has not published for 5001 ms"),
        "{:?}",
        stalled.not_ok_reasons
    );
    assert!(!coldpath::status::HealthSnapshot::from_status(&stalled).ok);
    assert_eq!(
        stalled.check(),
        Ok(()),
        "still a valid status: the mode is shown as last published"
    );

    let mut no_policy = killed_snapshot();
    no_policy.policy_error = Some("CONFIG_MISSING_KEY: risk_limits".into());
    let st = to_status_at(Some(&no_policy), no_policy.published_wall_ms);
    assert!(!st.ok);
    assert!(
        st.not_ok_reasons[0].contains("policy did not load (CONFIG_MISSING_KEY"),
        "{:?}",
        st.not_ok_reasons
    );
}

fn control_request() -> coldpath::server::EmergencyRequest {
    coldpath::server::EmergencyRequest {
        reason: Some("test".into()),
        requested_by: Some("ops".into()),
        peer: "127.0.0.1:1".parse().unwrap(),
        received_at_ms: 0,
    }
}

/// The control ring's overflow policy: with every slot taken by commands the engine has not
/// drained yet, a further operator command is refused at once with a clear "full" error (the
/// endpoint answers 503) — never queued unbounded, never dropped silently; the queued ones
/// are all still there, in order.
#[test]
fn a_full_control_ring_refuses_the_next_command_and_keeps_the_queued_ones() {
    use super::status::{control_channel, ControlCmd, ControlMsg, CONTROL_RING_CAPACITY};
    use coldpath::server::ControlError;
    let (control, mut port) = control_channel(super::status::Published::default());
    let mut replies = Vec::new();
    for _ in 0..CONTROL_RING_CAPACITY {
        let (reply, rx) = std::sync::mpsc::channel();
        replies.push(rx);
        let msg = ControlMsg { cmd: ControlCmd::ReduceOnly, req: control_request(), reply };
        control.tx.lock().unwrap().push(msg).unwrap();
    }
    match control.submit(ControlCmd::Kill, control_request()) {
        Err(ControlError::Unavailable(why)) => assert!(why.contains("full"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Counted for `/metrics` (ring overflow `control`), on both ends' shared counter.
    assert_eq!(port.refused_full.load(std::sync::atomic::Ordering::Relaxed), 1);
    let mut drained = 0;
    while let Ok(m) = port.rx.pop() {
        assert_eq!(m.cmd, ControlCmd::ReduceOnly, "only the queued commands, in order");
        drained += 1;
    }
    assert_eq!(drained, CONTROL_RING_CAPACITY);
    drop(port);
    match control.submit(ControlCmd::Kill, control_request()) {
        Err(ControlError::Unavailable(why)) => assert!(why.contains("stopped"), "{why}"),
        other => panic!("expected engine stopped, got {other:?}"),
    }
}
