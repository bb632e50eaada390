//! The stage runner: the loop every hot stage thread runs. Each turn it (1) checks the stop
//! flag, (2) delivers up to [`CONTROL_COMMANDS_PER_TURN_MAX`] control commands, (3) lets the
//! stage handle at most [`STAGE_WORK_BUDGET_PER_TURN`] events, then (4) waits per its
//! [`WaitStrategy`] if the turn found nothing to do. The budget keeps one busy input from
//! starving the stop flag and the control mailbox.

use crate::limits::{CONTROL_COMMANDS_PER_TURN_MAX, STAGE_WORK_BUDGET_PER_TURN};
use crate::ring::control::{ControlCommand, ControlReceiver};
use crate::ring::wait::{WaitStrategy, Waiter};
use crate::sync::{Arc, AtomicBool, Ordering};

/// One hot stage (feed decode, strategy, gate, dispatch).
pub trait Stage {
    /// Handles at most `budget` pending events; returns how many it handled (≤ `budget`).
    fn turn(&mut self, budget: usize) -> usize;
    /// Acts on a control command from the cold side.
    fn on_command(&mut self, command: ControlCommand);
}

/// The process stop flag ("kill flag": stop the thread — not `TradingMode::Kill`).
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is not set.
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    /// Asks every runner holding this flag to return after its current turn.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Why [`StageRunner::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageExit {
    /// The stop flag was set; the number of turns run.
    Stopped {
        /// Turns completed.
        turns: u64,
    },
    /// The turn limit was reached (tests, benchmarks).
    TurnLimit {
        /// Turns completed.
        turns: u64,
    },
}

/// Drives one [`Stage`] (see the module docs).
#[derive(Debug)]
pub struct StageRunner {
    stop: StopFlag,
    control: Option<ControlReceiver>,
    waiter: Waiter,
    work_budget: usize,
}

impl StageRunner {
    /// A runner with [`STAGE_WORK_BUDGET_PER_TURN`].
    #[must_use]
    pub fn new(stop: StopFlag, control: Option<ControlReceiver>, wait: WaitStrategy) -> Self {
        Self { stop, control, waiter: Waiter::new(wait), work_budget: STAGE_WORK_BUDGET_PER_TURN }
    }

    /// The same runner with another per-turn work budget.
    ///
    /// # Panics
    /// If `budget` is zero (the stage could never make progress).
    #[must_use]
    pub fn with_work_budget(mut self, budget: usize) -> Self {
        assert!(budget > 0, "a zero budget never makes progress");
        self.work_budget = budget;
        self
    }

    /// One turn: control commands, then bounded work. Returns whether anything happened.
    ///
    /// # Panics
    /// If the stage reports more work than its budget (a stage bug).
    pub fn turn_once(&mut self, stage: &mut impl Stage) -> bool {
        let commands = match &mut self.control {
            Some(control) => control.drain(CONTROL_COMMANDS_PER_TURN_MAX, |c| stage.on_command(c)),
            None => 0,
        };
        let work = stage.turn(self.work_budget);
        assert!(work <= self.work_budget, "stage exceeded its work budget");
        commands + work > 0
    }

    /// Runs turns until the stop flag is set (a loop meant to run for the life of the
    /// thread; the flag is checked at the start of every turn).
    pub fn run(&mut self, stage: &mut impl Stage) -> StageExit {
        self.run_turns(stage, u64::MAX)
    }

    /// Runs at most `max_turns` turns, or until the stop flag is set.
    pub fn run_turns(&mut self, stage: &mut impl Stage, max_turns: u64) -> StageExit {
        let mut turns = 0;
        while turns < max_turns {
            if self.stop.is_stopped() {
                return StageExit::Stopped { turns };
            }
            if self.turn_once(stage) {
                self.waiter.reset();
            } else {
                self.waiter.idle();
            }
            turns += 1;
        }
        StageExit::TurnLimit { turns }
    }
}
