//! Rate-limit breaker reaction (contract §3.3, spec rulings 2 and 3), as pure policy on top
//! of `hotpath::venue` (which already has the credit buckets, the breaker's open/half-open
//! timing and the reconnect [`Backoff`]).
//!
//! What this adds:
//! - **Brownout admission** per request class (`EMERGENCY_CLOSE`, `CANCEL`, `HEDGE`, `OPEN`,
//!   `DATA`): a reserve of the bucket is kept for the critical classes; under pressure DATA
//!   is shed first, OPEN is rejected with `RateLimitBrownout`, critical traffic is served.
//! - **Windowed counters** `429_count_5m` / `10028_count_5m` (the only canonical ones), kept
//!   apart (the hotpath breaker counts both as trips).
//! - **Reaction**: 429 ⇒ Degraded; first 10028 ⇒ ReduceOnly
//!   (`REDUCEONLY_SESSION_KILL_UNCONFIRMED`), latch `SESSION_TERMINATION_RECONCILE_REQUIRED`,
//!   full reconcile after reconnect; ≥ `rate_limit_kill_min_10028` (3) in 5 min ⇒ Kill
//!   (`KILL_RATE_LIMIT_SESSION_TERMINATION`, ruling 2). ReduceOnly while the breaker is open.
//! - **Recovery of its own reasons only**: the monitor withdraws only the AUTO reasons it
//!   raised itself, once the window is clear and the breaker closed; the Kill reason is
//!   MANUAL (registry) and the latch clears only through a clean reconcile.

use std::collections::VecDeque;

use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode, RejectReasonCode};
use hotpath::venue::backoff::Backoff;
use hotpath::venue::credits::BreakerState;

/// The 5-minute window of the canonical counters, ms.
pub const RATE_LIMIT_WINDOW_MS: i64 = 300_000;
/// `rate_limit_kill_min_10028` (Appendix A).
pub const RATE_LIMIT_KILL_MIN_10028: usize = 3;
/// Share of a bucket reserved for CANCEL / EMERGENCY_CLOSE / HEDGE, per cent.
pub const CRITICAL_RESERVE_PCT: u64 = 20;
/// Events remembered per counter (bounds memory; far above any trip threshold).
pub const EVENTS_MAX: usize = 1024;

/// Brownout request classes (§3.3), most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestClass {
    /// Emergency close.
    EmergencyClose,
    /// Cancels.
    Cancel,
    /// Reduce-only hedges.
    Hedge,
    /// Risk-increasing orders.
    Open,
    /// Data refresh (queries, reconciliation).
    Data,
}

impl RequestClass {
    /// Whether it is always preserved.
    #[must_use]
    pub const fn is_critical(self) -> bool {
        matches!(self, Self::EmergencyClose | Self::Cancel | Self::Hedge)
    }
}

/// What the limiter may do with a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it.
    Admit,
    /// Wait this long, then ask again (critical classes never get rejected).
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// Drop it (DATA under pressure; it will be refreshed later).
    Shed,
    /// Reject the intent with this code (OPEN under pressure or while the breaker is open).
    Reject(RejectReasonCode),
}

/// Inputs of one admission decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketView {
    /// Credits available now.
    pub available: u64,
    /// Bucket capacity.
    pub capacity: u64,
    /// Cost of one request.
    pub cost: u64,
    /// Milliseconds until one request's cost is available (0 when it is).
    pub wait_ms: u64,
}

/// Admission (§3.3 brownout table). `breaker` is the hotpath breaker's state.
#[must_use]
pub fn admit(
    class: RequestClass,
    breaker: BreakerState,
    bucket: BucketView,
    now_ms: i64,
) -> Admission {
    if let BreakerState::Open { until_ms } = breaker {
        return match class {
            c if c.is_critical() => Admission::Wait {
                ms: u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0).max(1),
            },
            RequestClass::Open => Admission::Reject(RejectReasonCode::RateLimitBrownout),
            _ => Admission::Shed,
        };
    }
    let reserve = bucket.capacity.saturating_mul(CRITICAL_RESERVE_PCT) / 100;
    let pressure =
        breaker == BreakerState::HalfOpen || bucket.available < reserve.saturating_add(bucket.cost);
    if class.is_critical() {
        return if bucket.available >= bucket.cost {
            Admission::Admit
        } else {
            Admission::Wait { ms: bucket.wait_ms.max(1) }
        };
    }
    if pressure {
        return match class {
            RequestClass::Open => Admission::Reject(RejectReasonCode::RateLimitBrownout),
            _ => Admission::Shed,
        };
    }
    Admission::Admit
}

/// What the engine must do after [`BreakerMonitor::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BreakerReaction {
    /// Mode reasons to raise (the monitor's own).
    pub raise: Vec<ModeReasonCode>,
    /// Mode reasons the monitor raised earlier and now withdraws (AUTO ones only).
    pub withdraw: Vec<ModeReasonCode>,
    /// Latch code to set.
    pub set_latch: Option<OpenPermissionReasonCode>,
    /// `RiskState::Degraded` required.
    pub risk_degraded: bool,
    /// `rate_limit_session_kill_active` for PolicyInputs.
    pub session_kill_active: bool,
    /// `10028_count_5m`.
    pub count_10028_5m: usize,
    /// `429_count_5m`.
    pub count_429_5m: usize,
    /// A full reconcile must run after the reconnect (10028 seen since the last one).
    pub full_reconcile_required: bool,
}

/// Windowed 10028/429 history and the reasons the breaker itself has raised.
#[derive(Debug, Clone, Default)]
pub struct BreakerMonitor {
    events_10028: VecDeque<i64>,
    events_429: VecDeque<i64>,
    raised: Vec<ModeReasonCode>,
    reconcile_pending: bool,
}

fn push_bounded(q: &mut VecDeque<i64>, t: i64) {
    if q.len() == EVENTS_MAX {
        q.pop_front();
    }
    q.push_back(t);
}

fn in_window(q: &VecDeque<i64>, now_ms: i64) -> usize {
    q.iter().filter(|&&t| now_ms.saturating_sub(t) < RATE_LIMIT_WINDOW_MS).count()
}

impl BreakerMonitor {
    /// No history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A 10028 / `too_many_requests` / "session terminated" was seen.
    pub fn on_10028(&mut self, now_ms: i64) {
        push_bounded(&mut self.events_10028, now_ms);
        self.reconcile_pending = true;
    }

    /// An HTTP 429 was seen.
    pub fn on_429(&mut self, now_ms: i64) {
        push_bounded(&mut self.events_429, now_ms);
    }

    /// The full reconcile after the reconnect passed clean.
    pub fn on_reconciled(&mut self) {
        self.reconcile_pending = false;
    }

    /// The reaction now. `breaker` is the hotpath breaker's state.
    pub fn evaluate(&mut self, breaker: BreakerState, now_ms: i64) -> BreakerReaction {
        let n10028 = in_window(&self.events_10028, now_ms);
        let n429 = in_window(&self.events_429, now_ms);
        let open = matches!(breaker, BreakerState::Open { .. });
        let mut want: Vec<ModeReasonCode> = Vec::new();
        if n10028 >= RATE_LIMIT_KILL_MIN_10028 {
            want.push(ModeReasonCode::KillRateLimitSessionTermination);
        }
        if n10028 > 0 || (open && n429 == 0) {
            want.push(ModeReasonCode::ReduceonlySessionKillUnconfirmed);
        }
        if n429 > 0 {
            want.push(ModeReasonCode::ReduceonlyRiskstateDegraded);
        }
        // The Kill reason is MANUAL: once raised it is never withdrawn here.
        let manual = |c: &ModeReasonCode| *c == ModeReasonCode::KillRateLimitSessionTermination;
        let raise: Vec<ModeReasonCode> =
            want.iter().copied().filter(|c| !self.raised.contains(c)).collect();
        let withdraw: Vec<ModeReasonCode> = self
            .raised
            .iter()
            .copied()
            .filter(|c| !want.contains(c) && !manual(c) && !open && !self.reconcile_pending)
            .collect();
        self.raised.extend(raise.iter().copied());
        self.raised.retain(|c| !withdraw.contains(c));
        self.raised.sort();
        BreakerReaction {
            raise,
            withdraw,
            set_latch: (n10028 > 0)
                .then_some(OpenPermissionReasonCode::SessionTerminationReconcileRequired),
            risk_degraded: n10028 > 0 || n429 > 0,
            session_kill_active: n10028 > 0,
            count_10028_5m: n10028,
            count_429_5m: n429,
            full_reconcile_required: self.reconcile_pending,
        }
    }

    /// `(10028_count_5m, 429_count_5m)` at `now_ms`, without building a reaction (no
    /// allocation: the engine reads it every loop turn).
    #[must_use]
    pub fn counts(&self, now_ms: i64) -> (usize, usize) {
        (in_window(&self.events_10028, now_ms), in_window(&self.events_429, now_ms))
    }

    /// A 10028 was seen and the full reconcile after it has not passed yet.
    #[must_use]
    pub const fn reconcile_pending(&self) -> bool {
        self.reconcile_pending
    }

    /// Reasons currently held by the monitor.
    #[must_use]
    pub fn raised(&self) -> &[ModeReasonCode] {
        &self.raised
    }
}

/// The reconnect delay schedule (ruling 3: 250 ms base, ×2, 30 s cap, full jitter, reset
/// after 60 s healthy) — hotpath's [`Backoff`]; this returns its ceilings for the docs/tests.
#[must_use]
pub fn backoff_ceilings_ms(attempts: usize) -> Vec<u64> {
    let mut b = Backoff::new();
    (0..attempts)
        .map(|_| {
            let c = b.ceiling_ms();
            let _ = b.next_delay_ms(0);
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: BucketView = BucketView { available: 100, capacity: 100, cost: 1, wait_ms: 0 };
    const LOW: BucketView = BucketView { available: 10, capacity: 100, cost: 1, wait_ms: 0 };
    const EMPTY: BucketView = BucketView { available: 0, capacity: 100, cost: 1, wait_ms: 40 };

    #[test]
    fn brownout_table_at239_at919() {
        let c = BreakerState::Closed;
        for class in [RequestClass::EmergencyClose, RequestClass::Cancel, RequestClass::Hedge] {
            assert_eq!(admit(class, c, LOW, 0), Admission::Admit, "{class:?}");
            assert_eq!(admit(class, c, EMPTY, 0), Admission::Wait { ms: 40 });
        }
        assert_eq!(admit(RequestClass::Open, c, FULL, 0), Admission::Admit);
        assert_eq!(admit(RequestClass::Data, c, FULL, 0), Admission::Admit);
        assert_eq!(
            admit(RequestClass::Open, c, LOW, 0),
            Admission::Reject(RejectReasonCode::RateLimitBrownout)
        );
        assert_eq!(admit(RequestClass::Data, c, LOW, 0), Admission::Shed);
        let open = BreakerState::Open { until_ms: 5_000 };
        assert_eq!(admit(RequestClass::Cancel, open, FULL, 1_000), Admission::Wait { ms: 4_000 });
        assert_eq!(
            admit(RequestClass::Open, open, FULL, 1_000),
            Admission::Reject(RejectReasonCode::RateLimitBrownout)
        );
        assert_eq!(admit(RequestClass::Data, open, FULL, 1_000), Admission::Shed);
        assert_eq!(admit(RequestClass::Data, BreakerState::HalfOpen, FULL, 0), Admission::Shed);
    }

    #[test]
    fn first_10028_reduce_only_third_kills_ruling2() {
        let mut m = BreakerMonitor::new();
        m.on_10028(0);
        let r = m.evaluate(BreakerState::Open { until_ms: 5_000 }, 0);
        assert_eq!(r.raise, vec![ModeReasonCode::ReduceonlySessionKillUnconfirmed]);
        assert_eq!(
            r.set_latch,
            Some(OpenPermissionReasonCode::SessionTerminationReconcileRequired)
        );
        assert!(r.risk_degraded && r.session_kill_active && r.full_reconcile_required);
        m.on_10028(1_000);
        let r = m.evaluate(BreakerState::Open { until_ms: 6_000 }, 1_000);
        assert!(r.raise.is_empty() && r.count_10028_5m == 2);
        m.on_10028(2_000);
        let r = m.evaluate(BreakerState::Open { until_ms: 7_000 }, 2_000);
        assert_eq!(r.raise, vec![ModeReasonCode::KillRateLimitSessionTermination]);
    }

    #[test]
    fn recovers_only_its_own_auto_reasons() {
        let mut m = BreakerMonitor::new();
        m.on_10028(0);
        let _ = m.evaluate(BreakerState::Open { until_ms: 5_000 }, 0);
        // Window over but the full reconcile has not passed yet: nothing withdrawn.
        let r = m.evaluate(BreakerState::Closed, RATE_LIMIT_WINDOW_MS + 1);
        assert!(r.withdraw.is_empty());
        m.on_reconciled();
        let r = m.evaluate(BreakerState::Closed, RATE_LIMIT_WINDOW_MS + 2);
        assert_eq!(r.withdraw, vec![ModeReasonCode::ReduceonlySessionKillUnconfirmed]);
        assert!(m.raised().is_empty());
        // Kill is manual: stays raised after the window.
        for t in 0..3 {
            m.on_10028(1_000_000 + t);
        }
        let _ = m.evaluate(BreakerState::Closed, 1_000_010);
        m.on_reconciled();
        let r = m.evaluate(BreakerState::Closed, 1_000_010 + RATE_LIMIT_WINDOW_MS);
        assert_eq!(r.withdraw, vec![ModeReasonCode::ReduceonlySessionKillUnconfirmed]);
        assert_eq!(m.raised(), &[ModeReasonCode::KillRateLimitSessionTermination]);
    }

    #[test]
    fn counts_and_pending_without_a_reaction() {
        let mut m = BreakerMonitor::new();
        assert_eq!(m.counts(0), (0, 0));
        m.on_10028(0);
        m.on_429(10);
        assert_eq!(m.counts(100), (1, 1));
        assert!(m.reconcile_pending());
        assert_eq!(m.counts(RATE_LIMIT_WINDOW_MS + 10), (0, 0));
        m.on_reconciled();
        assert!(!m.reconcile_pending());
    }

    #[test]
    fn http_429_degrades_and_recovers() {
        let mut m = BreakerMonitor::new();
        m.on_429(0);
        let r = m.evaluate(BreakerState::Open { until_ms: 5_000 }, 0);
        assert_eq!(r.raise, vec![ModeReasonCode::ReduceonlyRiskstateDegraded]);
        assert!(r.risk_degraded && !r.session_kill_active && r.set_latch.is_none());
        let r = m.evaluate(BreakerState::Closed, RATE_LIMIT_WINDOW_MS);
        assert_eq!(r.withdraw, vec![ModeReasonCode::ReduceonlyRiskstateDegraded]);
    }

    #[test]
    fn backoff_schedule_ruling3() {
        assert_eq!(
            backoff_ceilings_ms(9),
            vec![250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
    }
}
