//! Credit buckets (leaky bucket) as the venue models rate limits (notes §11).

use crate::accounts::RateSpec;

/// Credits charged per request; capacity and refill are `burst` and `rate` requests worth.
pub const COST: f64 = 500.0;

/// One bucket.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    credits: f64,
    cap: f64,
    refill_per_ms: f64,
    last_ms: i64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(spec: RateSpec, now_ms: i64) -> Bucket {
        let cap = spec.burst * COST;
        Bucket { credits: cap, cap, refill_per_ms: spec.rate * COST / 1000.0, last_ms: now_ms }
    }

    /// Takes one request's credits; false when the bucket is empty (⇒ 10028).
    pub fn try_take(&mut self, now_ms: i64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let dt = (now_ms - self.last_ms).max(0) as f64;
        self.last_ms = self.last_ms.max(now_ms);
        self.credits = (self.credits + dt * self.refill_per_ms).min(self.cap);
        if self.credits >= COST {
            self.credits -= COST;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut b = Bucket::new(RateSpec { rate: 10.0, burst: 3.0 }, 0);
        assert!(b.try_take(0) && b.try_take(0) && b.try_take(0));
        assert!(!b.try_take(0));
        assert!(b.try_take(100)); // 10/s ⇒ one request per 100 ms
        assert!(!b.try_take(100));
    }
}
