//! The durable intent write-ahead log: segments, framing + CRC32C, group commit, recovery,
//! the intent ledger. Format and rules: `docs/wal_format.md`.
//!
//! Typical use by the gate stage (group commit, durable before send):
//! ```no_run
//! # use hotpath::wal::{Wal, WalConfig, Record};
//! # fn demo(dir: &std::path::Path) -> Result<(), hotpath::wal::WalError> {
//! let (mut wal, report) = Wal::open(dir, WalConfig::default(), 0)?;
//! for e in wal.ledger().in_doubt() { /* resolve with the venue by e.label first */ }
//! let seq = wal.append(1, &Record::IntentRecorded { intent_hash: 42, label: "s4:x", canonical: b"..." })?;
//! let durable = wal.sync()?;          // one fdatasync for the whole batch
//! assert!(durable.covers(seq));       // only now may the batch be sent
//! # Ok(()) }
//! ```

pub mod error;
pub mod failpoint;
pub mod format;
pub mod ledger;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod writer;

pub use error::WalError;
pub use format::{FrameFault, RecordHeader, SegmentHeader, FORMAT_VERSION};
pub use ledger::{IntentEntry, IntentLedger, IntentState, LedgerCounts, LedgerError};
pub use record::{
    CheckpointEntry, CheckpointView, OperatorActionKind, PayloadError, Record, RecordKind,
};
pub use recovery::{RecoveryReport, ReplayEvent, TornTail, VerifyReport, WalReader};
pub use writer::{DurableSeq, Seq, SyncMode, Wal, WalConfig, WalFaults};
