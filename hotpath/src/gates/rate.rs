//! The policy order-rate token bucket (`risk_limits.max_orders_per_minute`, `order_rate_burst`).
//!
//! The bucket is plain `Copy` state passed into the gate chain; the chain returns the state
//! after taking a token inside `Accepted`, and the caller stores it only once the intent is
//! committed. A rejected intent therefore never consumes a token, and the gate stays pure.

use crate::domain::reason_codes::RejectReasonCode;

/// One token, in thousandths (integer refill without floats).
pub const TOKEN_MILLI: i64 = 1_000;

/// Token-bucket state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRateBucket {
    tokens_milli: i64,
    refilled_at_ms: i64,
}

impl OrderRateBucket {
    /// A full bucket of `burst` tokens at `now_ms`.
    #[must_use]
    pub const fn full(burst: i64, now_ms: i64) -> Self {
        Self { tokens_milli: burst.saturating_mul(TOKEN_MILLI), refilled_at_ms: now_ms }
    }

    /// Tokens available, in thousandths.
    #[must_use]
    pub const fn tokens_milli(self) -> i64 {
        self.tokens_milli
    }

    /// The bucket refilled to `now_ms`. A clock that went backwards refills nothing and keeps
    /// the later timestamp, so skew can never mint tokens.
    #[must_use]
    pub fn refilled(self, now_ms: i64, per_minute: i64, burst: i64) -> Self {
        let elapsed_ms = now_ms.saturating_sub(self.refilled_at_ms);
        if elapsed_ms <= 0 {
            return self;
        }
        // per_minute tokens per 60 000 ms = per_minute / 60 milli-tokens per ms.
        let gained = elapsed_ms.saturating_mul(per_minute) / 60;
        let capacity = burst.saturating_mul(TOKEN_MILLI);
        Self {
            tokens_milli: self.tokens_milli.saturating_add(gained).min(capacity),
            refilled_at_ms: now_ms,
        }
    }

    /// Takes one token.
    ///
    /// # Errors
    /// `OrderRateLimitExceeded` when less than one token is available.
    pub fn try_take(
        self,
        now_ms: i64,
        per_minute: i64,
        burst: i64,
    ) -> Result<Self, RejectReasonCode> {
        let refilled = self.refilled(now_ms, per_minute, burst);
        if refilled.tokens_milli < TOKEN_MILLI {
            return Err(RejectReasonCode::OrderRateLimitExceeded);
        }
        Ok(Self {
            tokens_milli: refilled.tokens_milli - TOKEN_MILLI,
            refilled_at_ms: refilled.refilled_at_ms,
        })
    }
}
