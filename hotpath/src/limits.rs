//! Every bound in the hot path, named once. Queues, retries, batch sizes and buffers are
//! sized from these at start-up; nothing on the hot path grows past them.

// ---- ring/ and mode/ (cold → hot control, hot → cold publication, stage turns) ----

/// Capacity of each cold → hot control ring (commands per stage). A full ring hands the
/// command back and the sender escalates (see `ring::control`).
pub const CONTROL_RING_CAPACITY: usize = 64;
/// Control commands a stage handles per turn before doing its own work.
pub const CONTROL_COMMANDS_PER_TURN_MAX: usize = 16;
/// Events a stage handles per turn before it checks the stop flag and its control ring again,
/// so one busy source cannot starve the rest (tokio's coop budget, TigerBeetle's bounds).
pub const STAGE_WORK_BUDGET_PER_TURN: usize = 256;
/// Largest value a seqlock snapshot publishes, in bytes; bounds the writer's critical section
/// and therefore how long a reader can be made to retry.
pub const SNAPSHOT_BYTES_MAX: usize = 4_096;
/// Failed seqlock read attempts a reader spins through before it yields its time slice.
pub const SEQLOCK_READ_SPINS_BEFORE_YIELD: u32 = 64;
/// Idle polls a `SpinThenYield`/`SpinThenPark` stage spins through before yielding/parking.
pub const WAIT_SPIN_ITERS_DEFAULT: u32 = 2_000;
/// How long a parked stage sleeps at most before polling again (µs); bounds a lost wake-up.
pub const WAIT_PARK_TIMEOUT_US_DEFAULT: u64 = 200;
/// Cores left to the OS and the cold threads before any stage is pinned.
pub const TOPOLOGY_RESERVED_COLD_CORES: usize = 1;
