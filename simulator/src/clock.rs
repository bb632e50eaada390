//! Venue time: the wall clock (every test, `stoic sim`, `stoic run`) or stepped simulated time
//! (`stoic paper`), where each market tick moves the venue's clock forward by a fixed step.
//!
//! Why stepped and not a continuously scaled wall clock: at a few thousand times real speed a
//! scaled clock turns the milliseconds a book update spends on loopback into simulated
//! minutes, so every freshness check of the engine would see stale data. With steps, venue
//! time stands still between market ticks (a book is "fresh" until the next tick) and the
//! simulated path depends only on the seed and the tick count, not on host load.
//!
//! Only market-facing time is simulated (timestamps, expiries, delayed fills, the index walk).
//! Transport time (token lifetimes, signature windows, credits, heartbeats) stays on the wall
//! clock: the network is not accelerated. See [`crate::engine::Engine::transport_ms`].

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Where the venue reads "now".
#[derive(Debug, Clone, Default)]
pub enum VenueClock {
    /// The host's wall clock.
    #[default]
    Wall,
    /// Simulated time advanced by the market thread, one step per tick.
    Stepped(SteppedTime),
}

impl VenueClock {
    /// Venue time in µs since the epoch (before injected skew).
    #[must_use]
    pub fn now_us(&self) -> i64 {
        match self {
            VenueClock::Wall => crate::util::wall_us(),
            VenueClock::Stepped(t) => t.now_us(),
        }
    }
}

/// Shared simulated time: cheap to clone, readable from any thread (the embedding engine
/// reads the same value through its own clock trait).
#[derive(Debug, Clone)]
pub struct SteppedTime {
    now_us: Arc<AtomicI64>,
    step_us: i64,
    running: Arc<AtomicBool>,
    end_us: Arc<AtomicI64>,
}

/// Largest step: one simulated day per tick is already coarser than any test needs.
pub const STEP_MS_MAX: i64 = 86_400_000;

impl SteppedTime {
    /// Simulated time starting at `origin_ms`, advancing `step_ms` per market tick once
    /// [`SteppedTime::set_running`] says so (it starts held, so an embedding engine can connect
    /// and reconcile before the first simulated minute passes).
    ///
    /// # Errors
    /// `step_ms` outside `1..=STEP_MS_MAX`, or a negative origin.
    pub fn new(origin_ms: i64, step_ms: i64) -> Result<SteppedTime, String> {
        if !(1..=STEP_MS_MAX).contains(&step_ms) {
            return Err(format!("step_ms must be 1..={STEP_MS_MAX}, got {step_ms}"));
        }
        if origin_ms < 0 {
            return Err(format!("origin_ms must not be negative, got {origin_ms}"));
        }
        Ok(SteppedTime {
            now_us: Arc::new(AtomicI64::new(origin_ms.saturating_mul(1000))),
            step_us: step_ms * 1000,
            running: Arc::new(AtomicBool::new(false)),
            end_us: Arc::new(AtomicI64::new(i64::MAX)),
        })
    }

    /// Current simulated time in µs.
    #[must_use]
    pub fn now_us(&self) -> i64 {
        self.now_us.load(Ordering::Acquire)
    }

    /// Current simulated time in ms.
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.now_us().div_euclid(1000)
    }

    /// The step in ms.
    #[must_use]
    pub fn step_ms(&self) -> i64 {
        self.step_us / 1000
    }

    /// Starts (`true`) or holds (`false`) the steps.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    /// Time never steps past `end_ms` (the last step is shortened to land on it), so a run
    /// of N simulated days ends at exactly N days whatever the step.
    pub fn set_end_ms(&self, end_ms: i64) {
        self.end_us.store(end_ms.saturating_mul(1000), Ordering::Release);
    }

    /// Moves time one step forward when running (the market thread, under the venue lock;
    /// the only writer, so load-then-store cannot lose a step).
    pub fn advance(&self) {
        if self.running.load(Ordering::Acquire) {
            let now = self.now_us.load(Ordering::Acquire);
            let end = self.end_us.load(Ordering::Acquire);
            self.now_us
                .store(now.saturating_add(self.step_us).min(end.max(now)), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepped_time_moves_only_when_advanced() {
        let t = SteppedTime::new(1_000, 500).unwrap();
        let c = VenueClock::Stepped(t.clone());
        assert_eq!(c.now_us(), 1_000_000);
        t.advance();
        assert_eq!(c.now_us(), 1_000_000, "held until started");
        t.set_running(true);
        t.advance();
        assert_eq!(t.now_ms(), 1_500);
        assert_eq!(c.now_us(), 1_500_000);
    }

    #[test]
    fn stepped_time_lands_exactly_on_its_end() {
        let t = SteppedTime::new(0, 400).unwrap();
        t.set_end_ms(1_000);
        t.set_running(true);
        for _ in 0..5 {
            t.advance();
        }
        assert_eq!(t.now_ms(), 1_000);
    }

    #[test]
    fn bad_steps_are_refused() {
        assert!(SteppedTime::new(0, 0).is_err());
        assert!(SteppedTime::new(0, STEP_MS_MAX + 1).is_err());
        assert!(SteppedTime::new(-1, 10).is_err());
    }
}
