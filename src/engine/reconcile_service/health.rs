//! The health side of the reconciliation service: what PolicyGuard is fed besides the
//! passes — market-data liveness and clock drift (published by the feed thread), venue
//! maintenance, the rate-limit breaker's session-kill input and counts — the brownout
//! admission of opens, the session-loss handling, and the mode-change record for `/status`.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use coldpath::reconcile::ratelimit::{admit, Admission, BucketView, RequestClass};
use coldpath::reconcile::TriggerKind;
use hotpath::clock::Clock;
use hotpath::dispatch::{DispatchError, DispatcherError};
use hotpath::domain::reason_codes::{OpenPermissionReasonCode, RiskState, TradingMode};
use hotpath::mode::PolicyInputs;
use hotpath::venue::conn::ConnError;
use hotpath::venue::credits::{BreakerState, BREAKER_OPEN_MS};
use hotpath::venue::error::VenueErrorCode;

use super::TRANSITIONS_MAX;
use crate::engine::{Engine, EngineError};

/// `ws_zombie_silence_ms` (Appendix A): market data silent this long trips the zombie rule.
pub const ZOMBIE_SILENCE_MS: i64 = 15_000;
/// Market data counts as resumed once its lag is at most this (registry AUTO unblock).
pub const MD_RESUMED_LAG_MS: i64 = 500;
/// Drift samples kept (venue timestamp vs local receive time).
pub const DRIFT_SAMPLES: usize = 32;
/// Samples needed before drift is judged (one late first message must not trip it).
pub const DRIFT_SAMPLES_MIN: usize = 8;

/// Wall-clock milliseconds: liveness, schedules and rate-limit windows are about the network,
/// which `stoic paper` does not accelerate, so they never read the engine's trading clock.
pub(super) fn wall_ms() -> i64 {
    hotpath::clock::SystemClock.now_ms()
}

/// What the feed thread publishes for the engine thread (atomics; no lock either side).
#[derive(Debug, Default)]
pub struct SharedMdHealth {
    last_event_ms: AtomicI64,
    events: AtomicU64,
    drift_ms: AtomicI64,
    maintenance: AtomicBool,
}

impl SharedMdHealth {
    /// Wall ms of the last book/index message (0: none yet).
    pub fn last_event_ms(&self) -> i64 {
        self.last_event_ms.load(Ordering::Acquire)
    }

    /// Book/index messages seen.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Drift estimate, ms.
    pub fn drift_ms(&self) -> i64 {
        self.drift_ms.load(Ordering::Relaxed)
    }

    /// Venue maintenance.
    pub fn maintenance(&self) -> bool {
        self.maintenance.load(Ordering::Relaxed)
    }

    /// The engine saw a maintenance reject (11051) before the `platform_state` notice.
    pub fn set_maintenance(&self) {
        self.maintenance.store(true, Ordering::Relaxed);
    }
}

/// Market-data health, fed by every decoded market-data message on the feed thread, which
/// publishes it into the [`SharedMdHealth`] the engine reads.
#[derive(Debug, Default)]
pub struct MdHealth {
    last_event_ms: i64,
    events: u64,
    drift: [i64; DRIFT_SAMPLES],
    drift_len: usize,
    drift_next: usize,
    maintenance: bool,
    shared: Option<Arc<SharedMdHealth>>,
}

impl MdHealth {
    /// Publishes into `shared` from now on.
    pub fn attach(&mut self, shared: Arc<SharedMdHealth>) {
        self.shared = Some(shared);
    }

    fn publish(&self) {
        if let Some(s) = &self.shared {
            s.last_event_ms.store(self.last_event_ms, Ordering::Release);
            s.events.store(self.events, Ordering::Relaxed);
            s.drift_ms.store(self.drift_ms(), Ordering::Relaxed);
        }
    }

    /// A book or index message arrived at trading time `now_ms`, stamped `venue_ts_ms` by the
    /// venue (drift compares the two; liveness uses the wall clock).
    pub fn on_event(&mut self, now_ms: i64, venue_ts_ms: i64) {
        self.last_event_ms = wall_ms();
        self.events += 1;
        if venue_ts_ms > 0 {
            self.drift[self.drift_next] = now_ms.saturating_sub(venue_ts_ms);
            self.drift_next = (self.drift_next + 1) % DRIFT_SAMPLES;
            self.drift_len = (self.drift_len + 1).min(DRIFT_SAMPLES);
        }
        self.publish();
    }

    /// `platform_state` said maintenance on or off.
    pub fn on_platform_state(&mut self, maintenance: Option<bool>) {
        if let Some(m) = maintenance {
            self.maintenance = m;
            if let Some(s) = &self.shared {
                s.maintenance.store(m, Ordering::Relaxed);
            }
        }
    }

    /// Clock drift estimate, ms: the smallest (receive − venue stamp) of the recent samples.
    /// Queueing only ever adds delay, so the minimum is the offset plus the least delay; a
    /// venue clock ahead of ours shows negative. 0 until enough samples.
    #[must_use]
    pub fn drift_ms(&self) -> i64 {
        if self.drift_len < DRIFT_SAMPLES_MIN {
            return 0;
        }
        self.drift[..self.drift_len].iter().copied().min().unwrap_or(0)
    }
}

/// Whether an engine error carries a venue 10028 (`too_many_requests`, session terminated).
pub fn is_10028(e: &EngineError) -> bool {
    let c = match e {
        EngineError::Conn(ConnError::Venue(c))
        | EngineError::Dispatch(
            DispatcherError::Conn(ConnError::Venue(c))
            | DispatcherError::Dispatch(DispatchError::Conn(ConnError::Venue(c))),
        ) => *c,
        _ => return false,
    };
    c == VenueErrorCode::TooManyRequests
}

impl Engine {
    pub(in crate::engine) fn note_10028(&mut self, events: u64) {
        let now = wall_ms();
        for _ in 0..events.min(8) {
            self.recon.breaker.on_10028(now);
        }
        self.recon.last_10028_ms = now;
        // AT-240: a 10028 makes the RiskState Degraded at once, until a clean pass after it.
        self.recon.degraded = true;
        self.fire(TriggerKind::SessionTermination);
        println!("rate-limit: 10028 x{events} (run_id={})", self.run_id);
    }

    /// Brownout admission (§3.3, AT-239/AT-919) before the gates: with the matching-engine
    /// credits below the critical reserve, or the breaker open or half-open, opens are refused
    /// (`RateLimitBrownout`); reduce-only intents (closes, hedges) always pass, so the reserve
    /// stays for them and for cancels.
    pub(in crate::engine) fn brownout(
        &mut self,
        intents: &mut Vec<hotpath::domain::intent::OrderIntent>,
    ) {
        let now = wall_ms();
        let Some((pool, breaker)) = self.credit_view(now) else { return };
        let bucket = BucketView {
            available: pool.available,
            capacity: pool.capacity,
            cost: pool.cost,
            wait_ms: pool.wait_ms,
        };
        let admitted = |i: &hotpath::domain::intent::OrderIntent| {
            let class =
                if i.fields().reduce_only { RequestClass::Hedge } else { RequestClass::Open };
            !matches!(admit(class, breaker, bucket, now), Admission::Reject(_) | Admission::Shed)
        };
        // Each refusal is counted by code and traced with its intent id, like the gates'.
        let mode = self.guard.cell().mode();
        let trace_now = self.clock.now_ms();
        for i in intents.iter().filter(|i| !admitted(i)) {
            self.recon.view.brownout_rejects += 1;
            let r = brownout_rejection();
            self.count_gate_refusal(&r);
            let why = hotpath::dispatch::Refusal::Gate(r);
            self.trace_refusal(i.hash().value(), &why, mode, trace_now);
        }
        intents.retain(|i| admitted(i));
    }

    /// A connect attempt failed: a 10028 there counts toward the breaker.
    pub(in crate::engine) fn note_connect_error(&mut self, e: &EngineError) {
        if is_10028(e) {
            self.note_10028(1);
        }
    }

    /// The reconnect delay (ruling 3: 250 ms base, ×2, 30 s cap, full jitter).
    pub(in crate::engine) fn reconnect_delay_ms(&mut self) -> u64 {
        let r = self.recon.rng.next_u64();
        self.recon.backoff.next_delay_ms(r)
    }

    /// The trading session died: count its rate-limit trips, latch, evaluate and publish
    /// before the (blocking) reconnect, so `/status` shows the containment.
    pub(in crate::engine) fn on_session_lost(&mut self, why: &EngineError) {
        let now = self.clock.now_ms();
        // The market-data session lives on the feed thread and reconnects on its own; the
        // trading session's trips are the ones that end our session.
        self.reclaim_dispatch();
        let trips = self.disp.as_mut().map_or(0, |d| d.rate_limit_trips());
        let trips = trips.max(u64::from(is_10028(why)));
        if trips > 0 {
            self.note_10028(trips);
        }
        self.recon.backoff.on_disconnected(wall_ms());
        self.recon.session_up = false;
        self.recon.pos_gen += 1;
        self.recon.job = None;
        self.recon.suspects.clear();
        self.fire(TriggerKind::PrivateGap);
        self.latch_set(OpenPermissionReasonCode::SessionTerminationReconcileRequired);
        self.evaluate_mode(now);
        self.publish_snapshot();
    }

    /// PolicyGuard inputs from the engine's state (what is not measured here is healthy).
    pub(in crate::engine) fn policy_inputs(&mut self, now: i64) -> PolicyInputs {
        // The capital stop, a policy that failed to load and the WAL (`kill_inputs`), then
        // what this service measures.
        let mut i = self.kill_inputs(now);
        if i.risk_state == RiskState::Healthy && self.recon.degraded {
            i.risk_state = RiskState::Degraded;
        }
        i.exchange_maintenance_imminent = self.recon.md.maintenance();
        let wall = wall_ms();
        let until_ms = self.recon.last_10028_ms.saturating_add(BREAKER_OPEN_MS);
        let breaker =
            if wall < until_ms { BreakerState::Open { until_ms } } else { BreakerState::Closed };
        let (count_10028, _) = self.recon.breaker.counts(wall);
        // Session killed until the reconnect's full reconciliation passed (ruling 2); the
        // windowed count decides ReduceOnly (unconfirmed) or Kill.
        i.rate_limit_session_kill_active = Some(
            self.recon.breaker.reconcile_pending() || matches!(breaker, BreakerState::Open { .. }),
        );
        i.count_10028_5m = Some(u32::try_from(count_10028).unwrap_or(u32::MAX));
        self.recon.view.count_10028_5m = count_10028 as u64;
        i.clock_drift_ms = Some(self.recon.md.drift_ms());
        i.ws_zombie_tripped = self.recon.zombie;
        // An atomic group holding after a failure keeps REDUCEONLY_GROUP_LOCK_TIMEOUT present.
        i.group_lock_timeout = self.groups.holding();
        i
    }

    pub(in crate::engine) fn evaluate_mode(&mut self, now: i64) {
        let inputs = self.policy_inputs(now);
        let d = self.guard.evaluate(&inputs);
        let bad = !d.present.above(TradingMode::Active).is_empty()
            && (inputs.clock_drift_ms.is_some_and(|x| x.unsigned_abs() > 50)
                || inputs.exchange_maintenance_imminent
                || inputs.rate_limit_session_kill_active == Some(true)
                || inputs.ws_zombie_tripped);
        if self.recon.health_bad && !bad {
            // A health reason cleared: a clean pass (and the run's relax) brings trading back.
            self.fire(TriggerKind::Manual);
        }
        self.recon.health_bad = bad;
        self.record_mode(now);
    }

    /// Notes a change of the published mode (and every reason and latch code seen).
    pub(in crate::engine) fn record_mode(&mut self, now: i64) {
        // Compared as bit sets every turn (no allocation); lists are built only on a change.
        let w = self.guard.cell().load();
        let (mode, set) = (w.mode(), w.mode_reasons());
        let codes = self.guard.latch().codes();
        if self.recon.last_codes != Some(codes) {
            self.recon.last_codes = Some(codes);
            let list = codes.to_vec();
            if let Some(m) = &self.recon.metrics {
                m.set_latch(&list);
            }
            self.recon.view.latch_codes_seen.extend(list);
        }
        let previous = self.recon.last_word;
        if previous == Some((mode, set)) {
            return;
        }
        self.recon.last_word = Some((mode, set));
        // The status page's transition history sees every change this service records,
        // including the ones before a blocking reconnect.
        let _ = self.mode_history.observe(now, mode, set);
        self.recon.view.mode_reasons_seen.extend(set.iter());
        let Some((from, _)) = previous else { return };
        if from == mode {
            return;
        }
        let reasons = set.to_vec();
        if let Some(m) = &self.recon.metrics {
            m.record_mode_transition(mode, &reasons);
        }
        // A relax prints its own audit line; tightenings are printed here.
        if mode > from {
            let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
            println!("mode: {from:?} -> {mode:?} reasons={names:?} (run_id={})", self.run_id);
        }
        let t = &mut self.recon.view.transitions;
        if t.len() == TRANSITIONS_MAX {
            t.pop_front();
        }
        t.push_back((now, from, mode, reasons));
    }

    pub(in crate::engine) fn check_market_data(&mut self, wall: i64) {
        // Book gaps: the feed thread repaired them by resubscribing; the latch and a
        // reconciliation are the engine's (AT-408).
        let resubscribes =
            self.market.counters().map_or(0, |c| c.resubscribes.load(Ordering::Relaxed));
        if resubscribes > self.recon.resubscribes_seen {
            self.recon.resubscribes_seen = resubscribes;
            self.on_book_gap();
        }
        // A market-data reconnect (the feed thread's session died): reconcile.
        let connects = self.market.counters().map_or(0, |c| c.connects.load(Ordering::Relaxed));
        if connects > self.recon.md_connects_seen {
            if self.recon.md_connects_seen > 0 {
                self.fire(TriggerKind::HeartbeatLoss);
            }
            self.recon.md_connects_seen = connects;
        }
        let md = &self.recon.md;
        let last = md.last_event_ms();
        let lag = if last == 0 { 0 } else { wall.saturating_sub(last) };
        self.recon.view.md_lag_ms = lag;
        self.recon.view.clock_drift_ms = md.drift_ms();
        self.recon.view.maintenance = md.maintenance();
        let exposure = self.positions.values().any(|q| q.raw() != 0) || !self.live.is_empty();
        let had_activity = md.events() > 1;
        if lag > ZOMBIE_SILENCE_MS && (exposure || had_activity) {
            if !self.recon.zombie {
                println!(
                    "market data: silent {lag} ms: zombie rule tripped (run_id={})",
                    self.run_id
                );
                self.fire(TriggerKind::HeartbeatLoss);
            }
            self.recon.zombie = true;
            // Re-set every turn while silent: no reconciliation may clear it meanwhile.
            self.latch_set(OpenPermissionReasonCode::WsDataStaleReconcileRequired);
        } else if self.recon.zombie && lag <= MD_RESUMED_LAG_MS {
            println!("market data: resumed (run_id={})", self.run_id);
            self.recon.zombie = false;
            self.fire(TriggerKind::HeartbeatLoss);
        }
        self.recon.view.md_stale = self.recon.zombie;
    }
}

/// A refusal by brownout admission (reported as the order-rate gate's: it is a bound on the
/// order rate the venue's credits allow now).
fn brownout_rejection() -> hotpath::gates::chain::Rejection {
    hotpath::gates::chain::Rejection {
        code: hotpath::domain::reason_codes::RejectReasonCode::RateLimitBrownout,
        gate: hotpath::gates::chain::GateName::OrderRate,
        class: None,
        edge_policy_version: None,
        config_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_the_least_delay_and_waits_for_samples() {
        let mut h = MdHealth::default();
        for i in 0..(DRIFT_SAMPLES_MIN as i64 - 1) {
            h.on_event(10_000 + i, 10_000 + i - 900);
        }
        assert_eq!(h.drift_ms(), 0, "too few samples to judge");
        h.on_event(20_000, 19_990);
        assert_eq!(h.drift_ms(), 10);
        // A venue clock 5 s ahead shows negative once the window is full of such samples.
        for i in 0..DRIFT_SAMPLES as i64 {
            h.on_event(30_000 + i, 35_000 + i - 3);
        }
        assert_eq!(h.drift_ms(), -4_997);
    }
}
