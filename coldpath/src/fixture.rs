//! **Test fixture, not the engine.** An in-memory stand-in for PolicyGuard's published state,
//! used by the HTTP tests, the CLI tests and `examples/status_fixture.rs` (the dashboard's
//! browser test) until `stoic run` serves the real thing. It implements [`StatusSource`] and
//! [`ControlSink`] with the semantics the engine must have: the emergency call latches
//! ReduceOnly with `REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE` for the cooldown, repeats within the
//! cooldown change nothing, and every accepted call is kept in an audit list (where the engine
//! writes a WAL record). Nothing here trades, reconciles or computes a mode from real inputs.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use hotpath::domain::reason_codes::{ModeReasonCode, TradingMode};

use crate::server::{ControlError, ControlSink, EmergencyRequest, StatusSource};
use crate::status::{
    now_ms, F1CertState, ModeTransitionView, OpenOrderView, PositionView, StatusSnapshot,
};

/// Emergency reduce-only cooldown (contract default `emergency_reduceonly_cooldown_s`).
pub const EMERGENCY_COOLDOWN_MS: i64 = 300_000;
/// Audit entries kept in memory.
const AUDIT_MAX: usize = 1000;

#[derive(Debug)]
struct State {
    base: StatusSnapshot,
    emergency_until_ms: Option<i64>,
    audit: VecDeque<EmergencyRequest>,
    fail_control: bool,
}

/// The fixture. Starts Active and healthy (latch clear, F1 PASS) so that a switch to
/// ReduceOnly is visible.
#[derive(Debug)]
pub struct FixtureEngine {
    state: Mutex<State>,
}

impl FixtureEngine {
    /// A healthy, Active fixture with one position and one resting order to display.
    #[must_use]
    pub fn new_active(build_id: &str) -> Self {
        let now = now_ms();
        let mut s = StatusSnapshot::startup(build_id, "fixture-config-hash", "DEV", now);
        s.trading_mode = TradingMode::Active;
        s.mode_reasons.clear();
        s.open_permission_blocked_latch = false;
        s.open_permission_reason_codes.clear();
        s.f1_cert_state = F1CertState::Pass;
        s.f1_cert_expires_at = Some(now + 86_400_000);
        s.wal_queue_capacity = 4096;
        s.disk_used_pct = 0.41;
        s.disk_used_pct_secondary = 0.41;
        s.disk_used_last_update_ts_ms = now;
        s.disk_used_secondary_last_update_ts_ms = now;
        s.mm_util = 0.12;
        s.mm_util_last_update_ts_ms = now;
        s.deribit_http_p95_ms = 3.5;
        s.positions.push(PositionView {
            instrument_name: "BTC-27DEC26-100000-C".into(),
            size: 0.5,
            average_price: 0.0425,
            mark_price: Some(0.0431),
            unrealized_pnl_usd: Some(28.5),
        });
        s.open_orders.push(OpenOrderView {
            label: "s4:fixture:g1:l0:0123abcd".into(),
            instrument_name: "BTC-27DEC26-110000-C".into(),
            side: "sell".into(),
            price: 0.021,
            amount: 0.5,
            filled_amount: 0.0,
            reduce_only: false,
        });
        s.mode_transitions.push(ModeTransitionView {
            ts_ms: now,
            from: TradingMode::ReduceOnly,
            to: TradingMode::Active,
            reasons: Vec::new(),
        });
        s.derive(now);
        Self {
            state: Mutex::new(State {
                base: s,
                emergency_until_ms: None,
                audit: VecDeque::new(),
                fail_control: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this fixture; keep serving.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the engine's own liveness verdict (to force "unhealthy" in tests).
    pub fn set_ok(&self, ok: bool) {
        self.lock().base.ok = ok;
    }

    /// Makes the next emergency calls fail as if the control ring were full.
    pub fn set_control_fails(&self, fail: bool) {
        self.lock().fail_control = fail;
    }

    /// Replaces the base snapshot wholesale (tests that need a specific or broken state).
    pub fn set_snapshot(&self, s: StatusSnapshot) {
        self.lock().base = s;
    }

    /// Accepted emergency calls, oldest first.
    #[must_use]
    pub fn audit(&self) -> Vec<EmergencyRequest> {
        self.lock().audit.iter().cloned().collect()
    }

    fn snapshot_locked(st: &State, now: i64) -> StatusSnapshot {
        let mut s = st.base.clone();
        s.loop_tick_last_ts_ms = now;
        if st.emergency_until_ms.is_some_and(|until| now < until)
            && s.trading_mode != TradingMode::Kill
        {
            s.trading_mode = TradingMode::ReduceOnly;
            s.mode_reasons.push(ModeReasonCode::ReduceonlyEmergencyReduceonlyActive);
        }
        s.derive(now);
        s
    }
}

impl StatusSource for FixtureEngine {
    fn status(&self) -> StatusSnapshot {
        Self::snapshot_locked(&self.lock(), now_ms())
    }

    fn metrics(&self, out: &mut String) {
        out.push_str("# HELP stoic_fixture_info Served by the status fixture, not the engine.\n# TYPE stoic_fixture_info gauge\nstoic_fixture_info 1\n");
    }
}

impl ControlSink for FixtureEngine {
    fn emergency_reduce_only(&self, req: EmergencyRequest) -> Result<StatusSnapshot, ControlError> {
        let mut st = self.lock();
        if st.fail_control {
            return Err(ControlError::Unavailable("fixture: control ring full".into()));
        }
        let now = req.received_at_ms;
        let already = st.emergency_until_ms.is_some_and(|until| now < until);
        if st.audit.len() == AUDIT_MAX {
            st.audit.pop_front();
        }
        st.audit.push_back(req);
        // Idempotent within the cooldown: a repeat is recorded but does not extend the latch.
        if !already {
            st.emergency_until_ms = Some(now + EMERGENCY_COOLDOWN_MS);
            let before = Self::snapshot_locked(
                &State {
                    emergency_until_ms: None,
                    audit: VecDeque::new(),
                    base: st.base.clone(),
                    fail_control: false,
                },
                now,
            );
            let from = before.trading_mode;
            let after = Self::snapshot_locked(&st, now);
            if after.trading_mode != from {
                st.base.mode_transitions.push(ModeTransitionView {
                    ts_ms: now,
                    from,
                    to: after.trading_mode,
                    reasons: after.mode_reasons,
                });
            }
        }
        Ok(Self::snapshot_locked(&st, now))
    }
}
