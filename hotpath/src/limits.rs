//! Every bound in the hot path, named once. Queues, retries, batch sizes and buffers are
//! sized from these at start-up; nothing on the hot path grows past them.

// ---- WAL (hotpath/src/wal) ----

/// Default size of one preallocated, pre-zeroed WAL segment file.
pub const WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest segment size accepted by `WalConfig` (tests use tiny segments to force roll-over).
pub const WAL_SEGMENT_BYTES_MIN: u64 = 4096;
/// Largest segment size accepted by `WalConfig` (offsets inside a segment stay below 2^32).
pub const WAL_SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Largest payload of one WAL record (a checkpoint is the biggest record kind).
pub const WAL_RECORD_PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Default staging buffer of the pwrite sync mode: appends between two syncs that fit here
/// reach the file in one `pwrite`; more is written in several.
pub const WAL_WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// Longest intent label (Deribit allows 64 characters).
pub const WAL_LABEL_BYTES_MAX: usize = 64;
/// Longest canonical intent encoding stored in an `IntentRecorded` record.
pub const WAL_CANONICAL_BYTES_MAX: usize = 4096;
/// Longest free-text field (venue order id, trade id, reason, operator name).
pub const WAL_TEXT_BYTES_MAX: usize = 1024;
/// Intent-ledger entries allocated when the WAL opens (`WalConfig::ledger_entries`): appends
/// allocate nothing for the ledger while it holds at most this many. At the bound the next
/// intent checkpoints first (pruning terminal entries); still full of open intents ⇒ the
/// intent is refused (`WalError::LedgerFull`). ~8 MiB with the entries' buffers.
pub const WAL_LEDGER_ENTRIES_PRESIZED: usize = 16_384;
/// Most non-terminal intents a checkpoint can carry; beyond this the checkpoint is skipped
/// (start-up then reads from an older checkpoint, which is slower but still correct).
pub const WAL_CHECKPOINT_ENTRIES_MAX: usize = 65_536;
/// Most segment files a WAL directory may hold before `open` refuses (bounds the directory scan).
pub const WAL_SEGMENTS_MAX: usize = 1_000_000;
/// Attempts to take the WAL directory lock before reporting `Locked` (a process forked by
/// another thread holds a copy of the lock's descriptor until its `exec`; the retry waits that
/// out instead of failing start-up).
pub const WAL_LOCK_ATTEMPTS: u32 = 50;
/// Pause between two lock attempts (ms); with `WAL_LOCK_ATTEMPTS`, at most ~0.5 s.
pub const WAL_LOCK_RETRY_MS: u64 = 10;

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
