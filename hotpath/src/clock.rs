//! The determinism seam for time: everything that needs "now" takes a [`Clock`].
//! Replay and tests use [`FrozenClock`]; production uses [`SystemClock`].

use crate::sync::{AtomicI64, Ordering};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The operating system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since_epoch =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to: replay, tests and the paper-run scheduler.
#[derive(Debug)]
pub struct FrozenClock {
    now_ms: AtomicI64,
}

impl FrozenClock {
    /// A clock frozen at `now_ms`.
    #[must_use]
    pub fn new(now_ms: i64) -> Self {
        Self { now_ms: AtomicI64::new(now_ms) }
    }

    /// Moves the clock to `now_ms` (it may go backwards; tests use that for skew).
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::Release);
    }

    /// Moves the clock forward by `delta_ms`.
    pub fn advance_ms(&self, delta_ms: i64) {
        self.now_ms.fetch_add(delta_ms, Ordering::AcqRel);
    }
}

impl Clock for FrozenClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::Acquire)
    }
}
