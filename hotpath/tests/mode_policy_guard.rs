//! PolicyGuard: every ModeReasonCode moves the mode to its tier and shows in mode_reasons;
//! the operator relax; the emergency window; ruling 2; permissions under Kill (ruling 1).

use hotpath::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RiskState, TradingMode,
};
use hotpath::mode::{
    ActionClass, CortexOverride, EmergencyOutcome, EnforcedProfile, F1CertState, ModeDecision,
    ModePermissions, OperatorAction, OperatorAuthenticated, OperatorSecret, PolicyGuard,
    PolicyInputs, ReasonSet, ReconcileReport, RelaxRefusal, Sampled,
};

const T0: i64 = 1_764_000_000_000;
const TOKEN: &[u8] = b"test-operator-token-0123456789";

fn auth() -> OperatorAuthenticated {
    let secret = OperatorSecret::from_token(TOKEN).unwrap();
    OperatorAuthenticated::verify(&secret, TOKEN, "ops-alice").unwrap()
}

fn relax(
    guard: &mut PolicyGuard,
    target: TradingMode,
    inputs: &PolicyInputs,
) -> Result<hotpath::mode::RelaxRecord, RelaxRefusal> {
    guard.operator_relax(OperatorAction::relax(auth(), target, "test relax").unwrap(), inputs)
}

const ALL_OK: ReconcileReport = ReconcileReport {
    intents_match_open_orders: true,
    positions_match: true,
    no_missing_trades: true,
};

/// A guard past start-up: latch reconciled and the start-up ReduceOnly relaxed, so it is Active.
fn active_guard() -> PolicyGuard {
    let mut guard = PolicyGuard::at_start();
    let healthy = PolicyInputs::all_healthy(T0);
    let d = guard.evaluate(&healthy);
    assert_eq!(d.mode, TradingMode::ReduceOnly);
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::ReduceonlyOpenPermissionLatched]);
    let ticket = guard.latch().begin_reconcile();
    guard.latch().complete_reconcile(ticket, &ALL_OK).unwrap();
    relax(&mut guard, TradingMode::Active, &healthy).unwrap();
    let d = guard.evaluate(&healthy);
    assert_eq!((d.mode, d.mode_reasons), (TradingMode::Active, ReasonSet::EMPTY));
    guard
}

/// Breaks exactly the input behind `code` (exhaustive: a new code fails to compile here).
fn trigger(code: ModeReasonCode, guard: &mut PolicyGuard, i: &mut PolicyInputs) {
    use ModeReasonCode as R;
    let now = i.now_ms;
    match code {
        R::KillWatchdogHeartbeatStale => {
            i.watchdog_last_heartbeat_ts_ms = Some(now - 10_001);
            i.loop_tick_last_ts_ms = Some(now - 10_001);
        }
        R::KillRiskstateKill => i.risk_state = RiskState::Kill,
        R::KillMarginMmUtilCritical => i.mm_util = Some(Sampled::new(0.95, now)),
        R::KillRateLimitSessionTermination => {
            i.rate_limit_session_kill_active = Some(true);
            i.count_10028_5m = Some(3);
        }
        R::KillDiskWatermarkKill => {
            i.disk_used_pct = Some(Sampled::new(0.92, now));
            i.disk_used_pct_secondary = Some(Sampled::new(0.95, now));
        }
        R::KillCortexForceKill => i.cortex_override = CortexOverride::ForceKill,
        R::ReduceonlyRiskstateMaintenance => i.risk_state = RiskState::Maintenance,
        R::ReduceonlyEmergencyReduceonlyActive => {
            guard.emergency_reduce_only(&auth(), "drill", now).unwrap();
        }
        R::ReduceonlyOpenPermissionLatched => i.book_gap_detected = true,
        R::ReduceonlyBunkerModeActive => i.bunker_mode_active = true,
        R::ReduceonlyF1CertInvalid => i.f1_cert = F1CertState::Fail,
        R::ReduceonlyEvidenceChainNotGreen => {
            i.enforced_profile = EnforcedProfile::Gop;
            i.evidence_chain_green = Some(false);
        }
        R::ReduceonlyCortexForceReduceOnly => i.cortex_override = CortexOverride::ForceReduceOnly,
        R::ReduceonlyFeeModelHardStale => i.fee_model_cache_age_s = Some(901),
        R::ReduceonlyRiskstateDegraded => i.risk_state = RiskState::Degraded,
        R::ReduceonlyPolicyStale => i.policy_generated_ts_ms = Some(now - 300_001),
        R::ReduceonlyMarginMmUtilHigh => i.mm_util = Some(Sampled::new(0.85, now)),
        R::ReduceonlyInputMissingOrStale => i.mm_util = None,
        R::ReduceonlyWatchdogUnconfirmed => i.watchdog_last_heartbeat_ts_ms = Some(now - 10_001),
        R::ReduceonlyDiskKillUnconfirmed => {
            i.disk_used_pct = Some(Sampled::new(0.93, now));
            i.disk_used_pct_secondary = Some(Sampled::new(0.50, now));
        }
        R::ReduceonlySessionKillUnconfirmed => {
            i.rate_limit_session_kill_active = Some(true);
            i.count_10028_5m = Some(1);
        }
        R::ReduceonlyGroupLockTimeout => i.group_lock_timeout = true,
        R::ReduceonlyHotpathBackpressure => i.hotpath_backpressure = true,
    }
}

fn assert_tier_pure_and_ordered(d: &ModeDecision) {
    let reasons = d.mode_reasons.to_vec();
    assert_eq!(reasons.is_empty(), d.mode == TradingMode::Active, "{d:?}");
    assert!(reasons.iter().all(|r| r.tier() == d.mode), "tier-pure: {d:?}");
    assert!(reasons.windows(2).all(|w| (w[0] as usize) < (w[1] as usize)), "registry order");
}

#[test]
fn every_mode_reason_code_moves_the_mode_to_its_tier() {
    for code in ModeReasonCode::ALL {
        let mut guard = active_guard();
        let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
        trigger(code, &mut guard, &mut inputs);
        let d = guard.evaluate(&inputs);
        assert_eq!(d.mode, code.tier(), "{code}");
        assert!(d.mode_reasons.contains(code), "{code} missing from {:?}", d.mode_reasons.to_vec());
        assert!(d.present.contains(code), "{code}");
        assert_tier_pure_and_ordered(&d);
        // Each trigger breaks one thing, so it is the only reason of its tier — except a
        // session-kill flag, which also latches SESSION_TERMINATION_RECONCILE_REQUIRED.
        let expected = match code {
            ModeReasonCode::ReduceonlySessionKillUnconfirmed => {
                vec![ModeReasonCode::ReduceonlyOpenPermissionLatched, code]
            }
            _ => vec![code],
        };
        assert_eq!(d.mode_reasons.to_vec(), expected, "{code}");
        assert_eq!(guard.cell().mode(), code.tier(), "published cell agrees for {code}");
    }
}

#[test]
fn reasons_of_the_losing_tier_never_show() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    inputs.bunker_mode_active = true;
    inputs.risk_state = RiskState::Kill;
    inputs.f1_cert = F1CertState::Missing;
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode, TradingMode::Kill);
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::KillRiskstateKill]);
    assert_eq!(d.present.len(), 3);
}

#[test]
fn thresholds_are_exclusive_where_the_spec_says_greater_than() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    // AT-336: policy age exactly at 300 s is not stale; one ms more is.
    inputs.policy_generated_ts_ms = Some(inputs.now_ms - 300_000);
    inputs.fee_model_cache_age_s = Some(900);
    inputs.mm_util = Some(Sampled::new(0.8499, inputs.now_ms));
    assert_eq!(guard.evaluate(&inputs).mode, TradingMode::Active);
    inputs.policy_generated_ts_ms = Some(inputs.now_ms - 300_001);
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::ReduceonlyPolicyStale]);
}

#[test]
fn missing_critical_inputs_fail_closed_one_at_a_time() {
    // AT-413: each critical input missing alone ⇒ ReduceOnly + INPUT_MISSING_OR_STALE.
    let breakers: [fn(&mut PolicyInputs); 6] = [
        |i| i.mm_util = None,
        |i| i.mm_util = Some(Sampled::new(0.1, i.now_ms - 30_001)),
        |i| i.disk_used_pct = None,
        |i| i.watchdog_last_heartbeat_ts_ms = None,
        |i| i.loop_tick_last_ts_ms = None,
        |i| i.rate_limit_session_kill_active = None,
    ];
    for (n, breaker) in breakers.into_iter().enumerate() {
        let mut guard = active_guard();
        let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
        breaker(&mut inputs);
        let d = guard.evaluate(&inputs);
        assert_eq!(d.mode, TradingMode::ReduceOnly, "breaker {n}");
        assert_eq!(
            d.mode_reasons.to_vec(),
            vec![ModeReasonCode::ReduceonlyInputMissingOrStale],
            "breaker {n}"
        );
    }
}

#[test]
fn session_termination_follows_ruling_2() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    inputs.rate_limit_session_kill_active = Some(true);
    inputs.count_10028_5m = Some(1);
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode, TradingMode::ReduceOnly);
    assert!(d.mode_reasons.contains(ModeReasonCode::ReduceonlySessionKillUnconfirmed));
    assert!(d
        .open_permission
        .contains(OpenPermissionReasonCode::SessionTerminationReconcileRequired));
    inputs.count_10028_5m = Some(2);
    assert_eq!(guard.evaluate(&inputs).mode, TradingMode::ReduceOnly);
    inputs.count_10028_5m = Some(3);
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::KillRateLimitSessionTermination]);
}

#[test]
fn relax_is_refused_while_reasons_are_present_and_allowed_once_cleared() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    inputs.bunker_mode_active = true;
    assert_eq!(guard.evaluate(&inputs).mode, TradingMode::ReduceOnly);

    let refused = relax(&mut guard, TradingMode::Active, &inputs).unwrap_err();
    assert_eq!(
        refused,
        RelaxRefusal::ReasonsPresent {
            target: TradingMode::Active,
            reasons: vec![ModeReasonCode::ReduceonlyBunkerModeActive]
        }
    );
    assert_eq!(guard.cell().mode(), TradingMode::ReduceOnly, "refusal changes nothing");

    // The cause clears; the mode does not come down by itself.
    inputs.bunker_mode_active = false;
    let d = guard.evaluate(&inputs);
    assert_eq!((d.mode, d.computed_mode), (TradingMode::ReduceOnly, TradingMode::Active));
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::ReduceonlyBunkerModeActive]);

    let record = relax(&mut guard, TradingMode::Active, &inputs).unwrap();
    assert_eq!(record.operator_id, "ops-alice");
    assert_eq!((record.from, record.to), (TradingMode::ReduceOnly, TradingMode::Active));
    assert_eq!(record.cleared_reasons, vec![ModeReasonCode::ReduceonlyBunkerModeActive]);
    assert!(record.kept_reasons.is_empty());
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["to"], "Active");
    assert_eq!(guard.evaluate(&inputs).mode, TradingMode::Active);
}

#[test]
fn relax_from_kill_to_reduce_only_keeps_the_present_reduce_only_reasons() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    inputs.risk_state = RiskState::Kill;
    inputs.bunker_mode_active = true;
    assert_eq!(guard.evaluate(&inputs).mode, TradingMode::Kill);
    assert!(matches!(
        relax(&mut guard, TradingMode::ReduceOnly, &inputs),
        Err(RelaxRefusal::ReasonsPresent { reasons, .. }) if reasons == vec![ModeReasonCode::KillRiskstateKill]
    ));
    inputs.risk_state = RiskState::Healthy;
    assert_eq!(guard.evaluate(&inputs).mode, TradingMode::Kill, "Kill stays until relaxed");
    assert!(matches!(
        relax(&mut guard, TradingMode::Active, &inputs),
        Err(RelaxRefusal::ReasonsPresent { reasons, .. }) if reasons == vec![ModeReasonCode::ReduceonlyBunkerModeActive]
    ));
    let record = relax(&mut guard, TradingMode::ReduceOnly, &inputs).unwrap();
    assert_eq!(record.cleared_reasons, vec![ModeReasonCode::KillRiskstateKill]);
    assert_eq!(record.kept_reasons, vec![ModeReasonCode::ReduceonlyBunkerModeActive]);
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode_reasons.to_vec(), vec![ModeReasonCode::ReduceonlyBunkerModeActive]);
}

#[test]
fn relax_refusals_are_enumerated() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    assert_eq!(
        relax(&mut guard, TradingMode::Active, &inputs).unwrap_err(),
        RelaxRefusal::NotARelax { published: TradingMode::Active, target: TradingMode::Active }
    );
    inputs.risk_state = RiskState::Kill;
    guard.evaluate(&inputs);
    inputs.risk_state = RiskState::Healthy;
    assert_eq!(
        relax(&mut guard, TradingMode::ReduceOnly, &inputs).unwrap_err(),
        RelaxRefusal::NoReasonForTarget { target: TradingMode::ReduceOnly }
    );
    assert_eq!(guard.cell().mode(), TradingMode::Kill);
}

#[test]
fn a_wrong_token_never_yields_a_capability() {
    let secret = OperatorSecret::from_token(TOKEN).unwrap();
    assert!(
        OperatorAuthenticated::verify(&secret, b"test-operator-token-0123456788", "ops").is_err()
    );
    assert!(OperatorAuthenticated::verify(
        &secret,
        b"Bearer test-operator-token-0123456789",
        "ops"
    )
    .is_err());
}

#[test]
fn emergency_reduce_only_holds_for_the_cooldown_and_is_idempotent() {
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    let start = inputs.now_ms;
    let started = guard.emergency_reduce_only(&auth(), "watchdog silence", start).unwrap();
    let EmergencyOutcome::Started(window) = started else { panic!("expected Started") };
    assert_eq!(window.until_ms, start + 300_000);
    // Same tick: the mode is already ReduceOnly before any evaluate.
    assert_eq!(guard.cell().mode(), TradingMode::ReduceOnly);
    // A repeat call inside the window does not extend it (ruling 8).
    inputs.now_ms = start + 100_000;
    let again = guard.emergency_reduce_only(&auth(), "again", inputs.now_ms).unwrap();
    assert_eq!(again, EmergencyOutcome::AlreadyActive(window.clone()));
    // AT-132: present for the full window.
    inputs.now_ms = start + 299_999;
    refresh(&mut inputs);
    assert!(guard
        .evaluate(&inputs)
        .present
        .contains(ModeReasonCode::ReduceonlyEmergencyReduceonlyActive));
    assert!(relax(&mut guard, TradingMode::Active, &inputs).is_err());
    inputs.now_ms = start + 300_000;
    refresh(&mut inputs);
    let d = guard.evaluate(&inputs);
    assert!(d.present.is_empty());
    assert_eq!(d.mode, TradingMode::ReduceOnly, "still latched until the operator relaxes");
    relax(&mut guard, TradingMode::Active, &inputs).unwrap();
    let long = "x".repeat(201);
    assert!(guard.emergency_reduce_only(&auth(), &long, inputs.now_ms).is_err());
}

fn refresh(i: &mut PolicyInputs) {
    let now = i.now_ms;
    *i = PolicyInputs { now_ms: now, ..PolicyInputs::all_healthy(now) };
}

#[test]
fn kill_keeps_emergency_close_and_hedges_but_no_new_risk() {
    let kill = ModePermissions::for_mode(TradingMode::Kill);
    assert!(kill.permits_emergency_close());
    assert!(kill.permits(ActionClass::Hedge) && kill.permits(ActionClass::Close));
    assert!(kill.permits(ActionClass::Cancel));
    assert!(!kill.permits(ActionClass::Open));
    assert!(!kill.permits(ActionClass::RiskIncreasingReplace));
    assert!(!kill.permits(ActionClass::RiskReducingReplace), "Kill blocks every replace");
    let ro = ModePermissions::for_mode(TradingMode::ReduceOnly);
    assert!(ro.permits(ActionClass::RiskReducingReplace) && !ro.permits(ActionClass::Open));
    let latched = ModePermissions::with_latch(TradingMode::Active, true);
    assert!(
        !latched.permits(ActionClass::Open) && !latched.permits(ActionClass::RiskIncreasingReplace)
    );
    assert!(ModePermissions::for_mode(TradingMode::Active).permits(ActionClass::Open));
    for mode in TradingMode::ALL {
        assert!(ModePermissions::with_latch(mode, true).permits_emergency_close(), "{mode}");
    }
    let mut guard = active_guard();
    let mut inputs = PolicyInputs::all_healthy(T0 + 1_000);
    inputs.watchdog_last_heartbeat_ts_ms = None;
    inputs.disk_used_pct = Some(Sampled::new(0.99, inputs.now_ms));
    inputs.disk_used_pct_secondary = Some(Sampled::new(0.99, inputs.now_ms));
    let d = guard.evaluate(&inputs);
    assert_eq!(d.mode, TradingMode::Kill);
    assert!(d.permissions().permits_emergency_close() && guard.cell().permits_emergency_close());
}
