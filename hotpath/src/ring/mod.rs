//! Stages, wait strategies, thread topology and pinning, and the lock-free handoffs between
//! the hot stages and the cold threads.
//!
//! - [`seqlock`]: [`Snapshot`], a single-writer/many-reader seqlock publication cell for hot
//!   state the cold path reads (mode, positions, counters, last book times).
//! - [`control`]: [`ControlSender`]/[`ControlReceiver`], the SPSC cold → hot command ring
//!   (rtrb) with its overflow policy: a full ring hands the command back, and `send`
//!   escalates through the mode cell and sticky flags, which always work.
//! - [`wait`]: [`WaitStrategy`] (`Spin`, `SpinThenYield`, `SpinThenPark`) and [`Waiter`].
//! - [`topology`]: [`Topology`] (`Pinned`, `Compact`), [`choose_topology`], core pinning.
//! - [`stage`]: [`StageRunner`], the per-turn loop: stop flag, control mailbox, bounded work.
//!
//! Every handoff, its memory-ordering argument and its loom model: `docs/concurrency.md`.

pub mod control;
pub mod seqlock;
pub mod stage;
pub mod topology;
pub mod wait;

pub use control::{
    control_ring, ControlCommand, ControlFull, ControlReceiver, ControlSender, SendOutcome,
};
pub use seqlock::{Plain, Snapshot, SnapshotReader, SnapshotWriter};
pub use stage::{Stage, StageExit, StageRunner, StopFlag};
pub use topology::{
    available_cores, choose_topology, core_plan, pin_current_thread, Topology, TopologyChoice,
};
pub use wait::{IdleAction, WaitStrategy, Waiter};
