//! Client-side rate-limit accounting (protocol §11) and the rate-limit breaker.
//!
//! The venue meters requests with leaky credit buckets and, on exhaustion, answers 10028
//! and ends the session. We keep our own buckets, sized a safety margin below the
//! venue's, so a request that would overdraw waits here instead of killing the session.

use super::error::VenueErrorCode;
use super::messages::RateBurst;
use super::methods::{credit_pool, CreditPool};

/// Share of the venue's capacity we allow ourselves (per mille): headroom for clock skew
/// between our refill and the venue's.
pub const CREDIT_SAFETY_PER_MILLE: u64 = 900;
/// Window in which repeated 10028s escalate (spec ruling 2: 3 in 5 minutes ⇒ Kill).
pub const BREAKER_WINDOW_MS: i64 = 300_000;
/// Trips in the window that escalate.
pub const BREAKER_ESCALATE_TRIPS: usize = 3;
/// How long the breaker stays open after a trip before a probe is allowed.
pub const BREAKER_OPEN_MS: i64 = 5_000;

/// One leaky bucket, in credits.
#[derive(Debug, Clone)]
pub struct CreditBucket {
    cap: u64,
    refill_per_s: u64,
    cost: u64,
    credits: u64,
    last_ms: i64,
}

impl CreditBucket {
    /// A full bucket. `cap` and `refill_per_s` are the venue's numbers; the safety margin
    /// is applied here.
    #[must_use]
    pub fn new(cap: u64, refill_per_s: u64, cost: u64, now_ms: i64) -> Self {
        let cap = cap * CREDIT_SAFETY_PER_MILLE / 1000;
        let refill_per_s = refill_per_s * CREDIT_SAFETY_PER_MILLE / 1000;
        Self { cap, refill_per_s, cost, credits: cap, last_ms: now_ms }
    }

    /// From a `rate` (requests/s) and `burst` (requests) pair.
    #[must_use]
    pub fn from_rate_burst(rb: RateBurst, now_ms: i64) -> Self {
        // One request = 1000 credits, so fractional rates after the margin stay exact.
        let rate = u64::try_from(rb.rate.max(1)).unwrap_or(1);
        let burst = u64::try_from(rb.burst.max(1)).unwrap_or(1);
        Self::new(burst * 1000, rate * 1000, 1000, now_ms)
    }

    fn refill(&mut self, now_ms: i64) {
        if now_ms <= self.last_ms {
            return; // clock went backwards or no time passed: never mint credits
        }
        let elapsed = u64::try_from(now_ms - self.last_ms).unwrap_or(0);
        let add = elapsed.saturating_mul(self.refill_per_s) / 1000;
        if add > 0 {
            self.credits = (self.credits + add).min(self.cap);
            // Advance only by the time that produced whole credits, so slow refill rates
            // are not lost to rounding.
            let used_ms = if self.credits == self.cap {
                elapsed
            } else {
                add * 1000 / self.refill_per_s.max(1)
            };
            self.last_ms += i64::try_from(used_ms).unwrap_or(0);
        }
    }

    /// Takes one request's cost if available; otherwise returns how long to wait (ms).
    ///
    /// # Errors
    /// `Err(wait_ms)` when the request would overdraw the bucket.
    pub fn try_take(&mut self, now_ms: i64) -> Result<(), u64> {
        self.refill(now_ms);
        if self.credits >= self.cost {
            self.credits -= self.cost;
            Ok(())
        } else {
            let missing = self.cost - self.credits;
            Err((missing * 1000).div_ceil(self.refill_per_s.max(1)))
        }
    }

    /// Credits available now.
    pub fn available(&mut self, now_ms: i64) -> u64 {
        self.refill(now_ms);
        self.credits
    }
}

/// A pool as admission control sees it (brownout classes, contract §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolView {
    /// Credits available now.
    pub available: u64,
    /// Pool capacity (after the safety margin).
    pub capacity: u64,
    /// Cost of one request.
    pub cost: u64,
    /// Milliseconds until one request's cost is available (0 when it is).
    pub wait_ms: u64,
}

impl CreditBucket {
    /// The bucket's state now.
    pub fn view(&mut self, now_ms: i64) -> PoolView {
        self.refill(now_ms);
        let missing = self.cost.saturating_sub(self.credits);
        PoolView {
            available: self.credits,
            capacity: self.cap,
            cost: self.cost,
            wait_ms: (missing * 1000).div_ceil(self.refill_per_s.max(1)),
        }
    }
}

/// Both venue pools plus the separate `get_instruments` limit.
#[derive(Debug, Clone)]
pub struct CreditLimiter {
    non_matching: CreditBucket,
    matching: CreditBucket,
    instruments: CreditBucket,
}

impl CreditLimiter {
    /// Venue defaults (§11): non-ME 500 credits per call, cap 50 000, refill 10 000/s;
    /// ME tier 4 (5 req/s, burst 20) until the account's own limits are known;
    /// get_instruments 1 per 10 s, burst 5.
    #[must_use]
    pub fn with_defaults(now_ms: i64) -> Self {
        Self {
            non_matching: CreditBucket::new(50_000, 10_000, 500, now_ms),
            matching: CreditBucket::from_rate_burst(RateBurst { rate: 5, burst: 20 }, now_ms),
            // 0.1 per second = 100 credits/s with 1000 per call.
            instruments: CreditBucket::new(5_000, 100, 1000, now_ms),
        }
    }

    /// Adopts the account's reported limits (`get_account_summary.limits`), which the
    /// protocol notes call authoritative.
    pub fn apply_account_limits(
        &mut self,
        non_matching: Option<RateBurst>,
        matching: Option<RateBurst>,
        now_ms: i64,
    ) {
        if let Some(rb) = non_matching {
            self.non_matching = CreditBucket::from_rate_burst(rb, now_ms);
        }
        if let Some(rb) = matching {
            self.matching = CreditBucket::from_rate_burst(rb, now_ms);
        }
    }

    /// The matching-engine pool (orders, cancels) now.
    pub fn matching_view(&mut self, now_ms: i64) -> PoolView {
        self.matching.view(now_ms)
    }

    /// Charges `method` now, or says how long to wait.
    ///
    /// # Errors
    /// `Err(wait_ms)` when sending now could exceed the venue's limit.
    pub fn try_acquire(&mut self, method: &str, now_ms: i64) -> Result<(), u64> {
        match credit_pool(method) {
            CreditPool::MatchingEngine => self.matching.try_take(now_ms),
            CreditPool::NonMatchingEngine => self.non_matching.try_take(now_ms),
            CreditPool::Instruments => self.instruments.try_take(now_ms),
        }
    }
}

/// The breaker's state, readable by the mode logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Normal.
    Closed,
    /// Tripped: send nothing until `until_ms`.
    Open {
        /// When a probe becomes allowed.
        until_ms: i64,
    },
    /// Cool-down over: the next success closes it, another 10028 reopens it.
    HalfOpen,
}

/// How serious the recent rate-limit history is (spec ruling 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerSeverity {
    /// No 10028/429 in the window.
    Normal,
    /// At least one in the window: ReduceOnly (`REDUCEONLY_SESSION_KILL_UNCONFIRMED`).
    SessionTerminated,
    /// Three or more in the window: Kill (`KILL_RATE_LIMIT_SESSION_TERMINATION`).
    Repeated,
}

impl BreakerSeverity {
    /// The mode reason the axis resolver should see (ruling 2), if any.
    #[must_use]
    pub const fn mode_reason(self) -> Option<crate::domain::reason_codes::ModeReasonCode> {
        use crate::domain::reason_codes::ModeReasonCode as M;
        match self {
            Self::Normal => None,
            Self::SessionTerminated => Some(M::ReduceonlySessionKillUnconfirmed),
            Self::Repeated => Some(M::KillRateLimitSessionTermination),
        }
    }
}

/// Rate-limit breaker: 10028 or HTTP 429 trips it.
#[derive(Debug, Clone)]
pub struct RateLimitBreaker {
    state: BreakerState,
    trips_ms: [i64; BREAKER_ESCALATE_TRIPS],
    trips_len: usize,
    trips_total: u64,
}

impl Default for RateLimitBreaker {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimitBreaker {
    /// Closed, no history.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            state: BreakerState::Closed,
            trips_ms: [0; BREAKER_ESCALATE_TRIPS],
            trips_len: 0,
            trips_total: 0,
        }
    }

    /// Records a trip (10028 received or HTTP 429).
    pub fn trip(&mut self, now_ms: i64) {
        // Keep only the newest BREAKER_ESCALATE_TRIPS timestamps: enough to decide
        // "≥ 3 within the window" without a growing list.
        if self.trips_len < BREAKER_ESCALATE_TRIPS {
            self.trips_ms[self.trips_len] = now_ms;
            self.trips_len += 1;
        } else {
            self.trips_ms.rotate_left(1);
            self.trips_ms[BREAKER_ESCALATE_TRIPS - 1] = now_ms;
        }
        self.trips_total += 1;
        self.state = BreakerState::Open { until_ms: now_ms.saturating_add(BREAKER_OPEN_MS) };
    }

    /// Feeds a venue error: trips on 10028.
    pub fn on_venue_error(&mut self, code: VenueErrorCode, now_ms: i64) {
        if code == VenueErrorCode::TooManyRequests {
            self.trip(now_ms);
        }
    }

    /// Feeds an HTTP status: trips on 429.
    pub fn on_http_status(&mut self, status: u16, now_ms: i64) {
        if status == 429 {
            self.trip(now_ms);
        }
    }

    /// A request succeeded: a half-open breaker closes.
    pub fn on_success(&mut self, now_ms: i64) {
        if self.state(now_ms) == BreakerState::HalfOpen {
            self.state = BreakerState::Closed;
        }
    }

    /// Current state (moves Open → HalfOpen once the cool-down passed).
    pub fn state(&mut self, now_ms: i64) -> BreakerState {
        if let BreakerState::Open { until_ms } = self.state {
            if now_ms >= until_ms {
                self.state = BreakerState::HalfOpen;
            }
        }
        self.state
    }

    /// True when requests may be sent now.
    pub fn allows_requests(&mut self, now_ms: i64) -> bool {
        !matches!(self.state(now_ms), BreakerState::Open { .. })
    }

    /// Trips within the last [`BREAKER_WINDOW_MS`].
    #[must_use]
    pub fn trips_in_window(&self, now_ms: i64) -> usize {
        self.trips_ms[..self.trips_len]
            .iter()
            .filter(|&&t| now_ms.saturating_sub(t) < BREAKER_WINDOW_MS)
            .count()
    }

    /// Severity for the mode logic.
    #[must_use]
    pub fn severity(&self, now_ms: i64) -> BreakerSeverity {
        match self.trips_in_window(now_ms) {
            0 => BreakerSeverity::Normal,
            n if n >= BREAKER_ESCALATE_TRIPS => BreakerSeverity::Repeated,
            _ => BreakerSeverity::SessionTerminated,
        }
    }

    /// Trips since construction.
    #[must_use]
    pub const fn trips_total(&self) -> u64 {
        self.trips_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_view_reports_credits_and_wait() {
        let mut b = CreditBucket::from_rate_burst(RateBurst { rate: 5, burst: 2 }, 0);
        let v = b.view(0);
        assert_eq!((v.available, v.capacity, v.cost, v.wait_ms), (1_800, 1_800, 1_000, 0));
        assert_eq!(b.try_take(0), Ok(()));
        let v = b.view(0);
        assert_eq!(v.available, 800);
        // 200 credits missing at 4 500 credits/s (5 req/s after the 10 % margin).
        assert_eq!(v.wait_ms, 45);
    }

    #[test]
    fn non_matching_burst_then_refill() {
        let mut l = CreditLimiter::with_defaults(0);
        // Cap 50 000 × 0.9 = 45 000 ⇒ 90 calls of 500 credits back to back.
        let mut sent = 0;
        while l.try_acquire("public/get_time", 0).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 90);
        // Refill 9 000/s ⇒ 500 credits take 56 ms (rounded up).
        assert_eq!(l.try_acquire("public/get_time", 0), Err(56));
        assert_eq!(l.try_acquire("public/get_time", 55), Err(1));
        assert_eq!(l.try_acquire("public/get_time", 56), Ok(()));
    }

    #[test]
    fn sustained_rate_stays_under_the_venue_limit() {
        // Simulate the venue's own bucket next to ours for 10 s of greedy sending.
        let mut ours = CreditLimiter::with_defaults(0);
        let mut venue_credits: i64 = 50_000;
        let mut venue_last = 0i64;
        for now in 0..10_000 {
            venue_credits = (venue_credits + (now - venue_last) * 10).min(50_000);
            venue_last = now;
            while ours.try_acquire("private/get_positions", now).is_ok() {
                venue_credits -= 500;
                assert!(venue_credits >= 0, "venue would answer 10028 at {now} ms");
            }
        }
    }

    #[test]
    fn matching_engine_uses_its_own_pool() {
        let mut l = CreditLimiter::with_defaults(0);
        let mut sent = 0;
        while l.try_acquire("private/buy", 0).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 18, "burst 20 with the 10% margin");
        assert!(l.try_acquire("public/get_time", 0).is_ok(), "non-ME pool untouched");
        l.apply_account_limits(None, Some(RateBurst { rate: 30, burst: 100 }), 1);
        assert!(l.try_acquire("private/sell", 1).is_ok());
    }

    #[test]
    fn breaker_trips_opens_half_opens_and_escalates() {
        let mut b = RateLimitBreaker::new();
        assert_eq!(b.state(0), BreakerState::Closed);
        b.on_venue_error(VenueErrorCode::NotEnoughFunds, 0);
        assert_eq!(b.state(0), BreakerState::Closed);
        b.on_venue_error(VenueErrorCode::TooManyRequests, 1_000);
        assert_eq!(b.state(1_000), BreakerState::Open { until_ms: 6_000 });
        assert!(!b.allows_requests(5_999));
        assert_eq!(b.severity(1_000), BreakerSeverity::SessionTerminated);
        assert_eq!(b.state(6_000), BreakerState::HalfOpen);
        b.on_success(6_001);
        assert_eq!(b.state(6_001), BreakerState::Closed);
        b.on_http_status(429, 100_000);
        b.on_http_status(200, 100_001);
        b.trip(200_000);
        assert_eq!(b.severity(200_000), BreakerSeverity::Repeated);
        // The first trip leaves the 5-minute window.
        assert_eq!(b.severity(301_000), BreakerSeverity::SessionTerminated);
        assert_eq!(b.trips_total(), 3);
        assert_eq!(BreakerSeverity::Normal.mode_reason(), None);
        assert_eq!(
            BreakerSeverity::Repeated
                .mode_reason()
                .map(crate::domain::reason_codes::ModeReasonCode::as_str),
            Some("KILL_RATE_LIMIT_SESSION_TERMINATION")
        );
    }
}
