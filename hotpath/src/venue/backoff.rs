//! Reconnect backoff (spec ruling 3): exponential from 250 ms, ×2 per attempt, capped at
//! 30 s, full jitter; the attempt counter resets once a connection stayed healthy 60 s.
//! Pure: time and randomness come in as arguments.

/// First delay ceiling.
pub const BACKOFF_BASE_MS: u64 = 250;
/// Largest delay ceiling.
pub const BACKOFF_CAP_MS: u64 = 30_000;
/// A connection up this long counts as healthy and resets the attempts.
pub const BACKOFF_HEALTHY_RESET_MS: i64 = 60_000;

/// The reconnect policy's state.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    connected_since_ms: Option<i64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// Fresh policy (next delay ceiling = base).
    #[must_use]
    pub const fn new() -> Self {
        Self { attempt: 0, connected_since_ms: None }
    }

    /// The ceiling for the next delay: `min(cap, base × 2^attempt)`.
    #[must_use]
    pub fn ceiling_ms(&self) -> u64 {
        // 2^7 × 250 = 32 000 > cap already; clamping the shift keeps it overflow-free.
        let shift = self.attempt.min(16);
        (BACKOFF_BASE_MS << shift).min(BACKOFF_CAP_MS)
    }

    /// The delay before the next connect attempt, uniformly in `[0, ceiling]` ("full
    /// jitter", so many clients never reconnect in lockstep). `random` is any uniformly
    /// distributed u64. Advances the attempt counter.
    pub fn next_delay_ms(&mut self, random: u64) -> u64 {
        let ceiling = self.ceiling_ms();
        self.attempt = self.attempt.saturating_add(1);
        random % (ceiling + 1)
    }

    /// The connection came up at `now_ms`.
    pub fn on_connected(&mut self, now_ms: i64) {
        self.connected_since_ms = Some(now_ms);
    }

    /// Reports time passing while connected; resets once healthy for 60 s.
    pub fn on_healthy_tick(&mut self, now_ms: i64) {
        if let Some(since) = self.connected_since_ms {
            if now_ms.saturating_sub(since) >= BACKOFF_HEALTHY_RESET_MS {
                self.attempt = 0;
            }
        }
    }

    /// The connection dropped at `now_ms`.
    pub fn on_disconnected(&mut self, now_ms: i64) {
        self.on_healthy_tick(now_ms);
        self.connected_since_ms = None;
    }

    /// Attempts since the last reset.
    #[must_use]
    pub const fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// A small deterministic jitter source (xorshift64*): seeded, so tests and replays
/// reproduce; not for cryptography.
#[derive(Debug, Clone)]
pub struct JitterRng(u64);

impl JitterRng {
    /// Seeded generator (a zero seed is replaced, xorshift cannot leave zero).
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_to_the_cap() {
        let mut b = Backoff::new();
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling_ms());
            b.next_delay_ms(0);
        }
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        for _ in 0..100 {
            b.next_delay_ms(u64::MAX);
        }
        assert_eq!(b.ceiling_ms(), 30_000);
    }

    #[test]
    fn full_jitter_stays_within_zero_and_ceiling() {
        let mut rng = JitterRng::new(7);
        let mut b = Backoff::new();
        let (mut min, mut max) = (u64::MAX, 0);
        for _ in 0..2000 {
            let mut fresh = Backoff::new();
            let d = fresh.next_delay_ms(rng.next_u64());
            min = min.min(d);
            max = max.max(d);
            assert!(d <= 250);
        }
        assert!(min < 25 && max > 225, "jitter spans the range: {min}..{max}");
        assert_eq!(b.next_delay_ms(250), 250);
        assert_eq!(b.next_delay_ms(501), 0);
    }

    #[test]
    fn resets_only_after_sixty_healthy_seconds() {
        let mut b = Backoff::new();
        for _ in 0..5 {
            b.next_delay_ms(1);
        }
        b.on_connected(1_000);
        b.on_disconnected(60_999);
        assert_eq!(b.attempt(), 5, "59.999 s is not healthy enough");
        b.on_connected(100_000);
        b.on_healthy_tick(160_000);
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling_ms(), 250);
    }
}
