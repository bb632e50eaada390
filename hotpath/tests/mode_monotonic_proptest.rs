//! Property: whatever sequence of input changes, evaluations, direct tightens, emergency
//! requests, reconciliations and unauthenticated-by-construction attempts happens, the
//! published mode never lowers except on a successful authenticated operator relax — and a
//! successful relax only ever happens when no reason above its target is present.

use hotpath::domain::reason_codes::{ModeReasonCode, RiskState, TradingMode};
use hotpath::mode::{
    CortexOverride, F1CertState, OperatorAction, OperatorAuthenticated, OperatorSecret,
    PolicyGuard, PolicyInputs, ReconcileReport, Sampled,
};
use proptest::prelude::*;

const T0: i64 = 1_764_000_000_000;
const TOKEN: &[u8] = b"proptest-operator-token-000000";

#[derive(Debug, Clone)]
enum Step {
    /// Turn condition `n` on or off in the inputs.
    Set(usize, bool),
    /// Time passes (inputs keep their timestamps unless refreshed).
    Advance(i64),
    /// Every producer reports fresh values.
    Refresh,
    Evaluate,
    DirectTighten(usize),
    Emergency,
    Reconcile(bool),
    Relax(TradingMode),
    /// A relax attempt with a wrong token: must not even produce a capability.
    ForgedRelax,
}

const CONDITIONS: usize = 14;

fn set_condition(i: &mut PolicyInputs, n: usize, on: bool) {
    let now = i.now_ms;
    match n {
        0 => i.risk_state = if on { RiskState::Kill } else { RiskState::Healthy },
        1 => i.risk_state = if on { RiskState::Degraded } else { RiskState::Healthy },
        2 => i.bunker_mode_active = on,
        3 => i.mm_util = Some(Sampled::new(if on { 0.9 } else { 0.1 }, now)),
        4 => i.mm_util = Some(Sampled::new(if on { 0.97 } else { 0.1 }, now)),
        5 => i.cortex_override = if on { CortexOverride::ForceKill } else { CortexOverride::None },
        6 => i.f1_cert = if on { F1CertState::Stale } else { F1CertState::Pass },
        7 => i.book_gap_detected = on,
        8 => {
            i.rate_limit_session_kill_active = Some(on);
            i.count_10028_5m = Some(if on { 3 } else { 0 });
        }
        9 => i.hotpath_backpressure = on,
        10 => i.watchdog_last_heartbeat_ts_ms = if on { None } else { Some(now) },
        11 => i.fee_model_cache_age_s = Some(if on { 5_000 } else { 0 }),
        12 => i.clock_drift_ms = Some(if on { 120 } else { 3 }),
        13 => i.daily_loss_limit_breached = on,
        _ => unreachable!("condition index out of range"),
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..CONDITIONS, any::<bool>()).prop_map(|(n, on)| Step::Set(n, on)),
        1 => (1i64..400_000).prop_map(Step::Advance),
        2 => Just(Step::Refresh),
        4 => Just(Step::Evaluate),
        1 => (0..ModeReasonCode::ALL.len()).prop_map(Step::DirectTighten),
        1 => Just(Step::Emergency),
        2 => any::<bool>().prop_map(Step::Reconcile),
        3 => prop::sample::select(TradingMode::ALL.to_vec()).prop_map(Step::Relax),
        1 => Just(Step::ForgedRelax),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mode_never_lowers_without_an_operator_relax(steps in prop::collection::vec(step(), 1..80)) {
        let secret = OperatorSecret::from_token(TOKEN).unwrap();
        let mut guard = PolicyGuard::at_start();
        let mut inputs = PolicyInputs::all_healthy(T0);
        for step in steps {
            let before = guard.cell().load();
            let mut relaxed_to = None;
            match step {
                Step::Set(n, on) => set_condition(&mut inputs, n, on),
                Step::Advance(ms) => inputs.now_ms += ms,
                Step::Refresh => {
                    let now = inputs.now_ms;
                    inputs.mm_util = inputs.mm_util.map(|s| Sampled::new(s.value, now));
                    inputs.disk_used_pct = inputs.disk_used_pct.map(|s| Sampled::new(s.value, now));
                    inputs.disk_used_pct_secondary =
                        inputs.disk_used_pct_secondary.map(|s| Sampled::new(s.value, now));
                    inputs.watchdog_last_heartbeat_ts_ms = inputs.watchdog_last_heartbeat_ts_ms.map(|_| now);
                    inputs.loop_tick_last_ts_ms = Some(now);
                    inputs.exchange_health_last_ok_ts_ms = Some(now);
                    inputs.policy_generated_ts_ms = Some(now);
                }
                Step::Evaluate => {
                    let d = guard.evaluate(&inputs);
                    prop_assert!(d.mode >= d.computed_mode, "published below computed: {d:?}");
                    prop_assert!(d.mode_reasons.iter().all(|r| r.tier() == d.mode));
                    prop_assert_eq!(d.mode_reasons.is_empty(), d.mode == TradingMode::Active);
                }
                Step::DirectTighten(n) => {
                    guard.cell().tighten(ModeReasonCode::ALL[n]);
                }
                Step::Emergency => {
                    let auth = OperatorAuthenticated::verify(&secret, TOKEN, "ops").unwrap();
                    guard.emergency_reduce_only(&auth, "prop", inputs.now_ms).unwrap();
                }
                Step::Reconcile(ok) => {
                    let ticket = guard.latch().begin_reconcile();
                    let report = ReconcileReport {
                        intents_match_open_orders: true,
                        positions_match: ok,
                        no_missing_trades: true,
                    };
                    let _ = guard.latch().complete_reconcile(ticket, &report);
                }
                Step::Relax(target) => {
                    let auth = OperatorAuthenticated::verify(&secret, TOKEN, "ops").unwrap();
                    let action = OperatorAction::relax(auth, target, "prop").unwrap();
                    if let Ok(record) = guard.operator_relax(action, &inputs) {
                        prop_assert_eq!(record.to, target);
                        prop_assert!(target < record.from);
                        // Nothing above the target was present in that snapshot.
                        let present = PolicyGuard::resolve(
                            &inputs,
                            guard.thresholds(),
                            guard.latch().is_latched(),
                            guard.emergency(inputs.now_ms).is_some(),
                        );
                        prop_assert!(present.above(target).is_empty(), "relaxed over {:?}", present.to_vec());
                        relaxed_to = Some(target);
                    }
                }
                Step::ForgedRelax => {
                    prop_assert!(OperatorAuthenticated::verify(&secret, b"forged-token-forged-token", "x").is_err());
                }
            }
            let after = guard.cell().load();
            match relaxed_to {
                Some(target) => prop_assert_eq!(after.mode(), target),
                None => {
                    prop_assert!(after.mode() >= before.mode(), "{:?} lowered {:?} -> {:?}", step_name(&after), before.mode(), after.mode());
                    prop_assert!(after.reasons().is_superset(before.reasons()), "sticky reasons dropped");
                }
            }
        }
    }
}

fn step_name(word: &hotpath::mode::ModeWord) -> Vec<ModeReasonCode> {
    word.mode_reasons().to_vec()
}
