//! Wait strategies: what a stage does when a turn found no work. Configuration, not code
//! paths: `Pinned` stages spin, `Compact` stages spin briefly and then park (see
//! `docs/concurrency.md`; on this 2-vCPU guest four spinning threads cost 8–23 ms p50).

use crate::limits::{WAIT_PARK_TIMEOUT_US_DEFAULT, WAIT_SPIN_ITERS_DEFAULT};
use crate::sync::{spin_loop, yield_now};
use std::time::Duration;

/// What an idle stage does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Busy-spin forever (a pinned stage on an isolated core).
    Spin,
    /// Spin `spin_iters` idle polls, then yield the time slice on each further idle poll.
    SpinThenYield {
        /// Idle polls spent spinning first.
        spin_iters: u32,
    },
    /// Spin `spin_iters` idle polls, then park up to `park_timeout` per idle poll (a sender
    /// may unpark earlier). The only strategy tests use.
    SpinThenPark {
        /// Idle polls spent spinning first.
        spin_iters: u32,
        /// Longest sleep per idle poll; bounds the cost of a missed wake-up.
        park_timeout: Duration,
    },
}

impl WaitStrategy {
    /// The `compact` default: spin [`WAIT_SPIN_ITERS_DEFAULT`], then park up to
    /// [`WAIT_PARK_TIMEOUT_US_DEFAULT`] µs.
    pub const COMPACT_DEFAULT: Self = Self::SpinThenPark {
        spin_iters: WAIT_SPIN_ITERS_DEFAULT,
        park_timeout: Duration::from_micros(WAIT_PARK_TIMEOUT_US_DEFAULT),
    };
}

/// What one idle call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleAction {
    /// Spun once.
    Spun,
    /// Yielded the time slice.
    Yielded,
    /// Parked (until unparked or the timeout).
    Parked,
}

/// Per-stage state of a wait strategy: how many consecutive idle polls so far.
#[derive(Debug, Clone)]
pub struct Waiter {
    strategy: WaitStrategy,
    idle_polls: u32,
}

impl Waiter {
    /// A waiter following `strategy`.
    #[must_use]
    pub fn new(strategy: WaitStrategy) -> Self {
        Self { strategy, idle_polls: 0 }
    }

    /// The strategy in force.
    #[must_use]
    pub fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Called after a turn that found no work.
    pub fn idle(&mut self) -> IdleAction {
        let polls = self.idle_polls;
        self.idle_polls = polls.saturating_add(1);
        match self.strategy {
            WaitStrategy::Spin => {
                spin_loop();
                IdleAction::Spun
            }
            WaitStrategy::SpinThenYield { spin_iters } if polls < spin_iters => {
                spin_loop();
                IdleAction::Spun
            }
            WaitStrategy::SpinThenYield { .. } => {
                yield_now();
                IdleAction::Yielded
            }
            WaitStrategy::SpinThenPark { spin_iters, .. } if polls < spin_iters => {
                spin_loop();
                IdleAction::Spun
            }
            WaitStrategy::SpinThenPark { park_timeout, .. } => {
                std::thread::park_timeout(park_timeout);
                IdleAction::Parked
            }
        }
    }

    /// Called after a turn that did work: the next idle period starts spinning again.
    pub fn reset(&mut self) {
        self.idle_polls = 0;
    }
}
