//! Stages, wait strategies, thread topology and pinning, and the lock-free handoffs between
//! the hot stages and the cold threads.
//!
//! - [`seqlock`]: [`Snapshot`], a single-writer/many-reader seqlock publication cell for hot
//!   state the cold path reads (mode, positions, counters, last book times).
//! - [`book_board`]: the feed → trading market-data handoff (per-instrument seqlock slots
//!   + an `rtrb` notice ring that conflates on overflow) and the feed's hot counters.
//! - [`control`]: [`ControlSender`]/[`ControlReceiver`], the SPSC cold → hot command ring
//!   (rtrb) with its overflow policy: a full ring hands the command back, and `send`
//!   escalates through the mode cell and sticky flags, which always work.
//! - [`wait`]: [`WaitStrategy`] (`Spin`, `SpinThenYield`, `SpinThenPark`) and [`Waiter`].
//! - [`topology`]: [`Topology`] (`Pinned`, `Compact`), [`choose_topology`], core pinning.
//! - [`stage`]: [`StageRunner`], the per-turn loop: stop flag, control mailbox, bounded work.
//!
//! Every handoff, its memory-ordering argument and its loom model: `docs/concurrency.md`.

pub mod book_board;
pub mod control;
pub mod hot_state;
pub mod lend;
pub mod seqlock;
pub mod stage;
pub mod topology;
pub mod wait;

pub use book_board::{
    book_board, BookReader, BookWriter, FeedCounters, PackedBook, BOOK_NOTICE_RING_CAPACITY,
};
pub use control::{
    control_ring, ControlCommand, ControlFull, ControlReceiver, ControlSender, SendOutcome,
};
pub use seqlock::{Plain, Snapshot, SnapshotReader, SnapshotWriter};
pub use stage::{Stage, StageExit, StageRunner, StopFlag};
pub use topology::{
    available_cores, choose_topology, core_plan, pin_current_thread, Topology, TopologyChoice,
};
pub use wait::{IdleAction, WaitStrategy, Waiter};
