//! Every way the WAL can fail, enumerated. Nothing here panics on bad input.

use std::path::PathBuf;

use super::format::{FrameFault, HeaderError};
use super::ledger::LedgerError;
use super::record::PayloadError;

/// A WAL error. The caller maps append/sync failures to
/// `RejectReasonCode::RecordedBeforeDispatchFailed` and `RiskState::Degraded`.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call failed (the writer is poisoned afterwards if it was an append or sync).
    #[error("WAL I/O error during {op} on {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// File or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The filesystem is full (ENOSPC/EDQUOT) or a new segment could not be created.
    #[error("WAL out of space during {op} on {}", path.display())]
    NoSpace {
        /// What was being done.
        op: &'static str,
        /// File or directory.
        path: PathBuf,
    },
    /// Another process holds the WAL directory.
    #[error("WAL directory {} is locked by another process", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// An earlier append or sync failed; this writer accepts nothing more until reopened.
    #[error("WAL writer is poisoned by an earlier failure ({0}); restart to recover")]
    Poisoned(&'static str),
    /// A fault injected through `WalFaults` (tests).
    #[error("injected WAL fault: {0}")]
    InjectedFault(&'static str),
    /// The configuration is unusable.
    #[error("invalid WAL config: {0}")]
    InvalidConfig(&'static str),
    /// A record that can never fit in a segment.
    #[error("WAL record of {bytes} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// Framed size.
        bytes: usize,
        /// Bound.
        max: usize,
    },
    /// A record with an out-of-bounds field (caller error; the writer is not poisoned).
    #[error("invalid WAL record: {0}")]
    InvalidRecord(#[from] PayloadError),
    /// Checkpoints are written by the WAL itself, not appended by callers.
    #[error("checkpoint records are written by the WAL itself")]
    CheckpointNotAppendable,
    /// The record breaks the intent life cycle (caller error; nothing was written).
    #[error("ledger refused record: {0}")]
    Ledger(#[from] LedgerError),
    /// A segment header is unreadable.
    #[error("WAL segment {}: bad header: {detail}", segment.display())]
    BadSegmentHeader {
        /// Segment file.
        segment: PathBuf,
        /// Why.
        detail: HeaderError,
    },
    /// A segment file does not fit its header or its neighbours.
    #[error("WAL segment {}: {detail}", segment.display())]
    BadSegment {
        /// Segment file.
        segment: PathBuf,
        /// Why.
        detail: String,
    },
    /// A segment index is missing between two present ones.
    #[error("WAL segment {missing} is missing in {} (present: {before} and {after})", dir.display())]
    MissingSegment {
        /// Directory.
        dir: PathBuf,
        /// Missing index.
        missing: u64,
        /// Index present before the gap.
        before: u64,
        /// Index present after the gap.
        after: u64,
    },
    /// Corruption followed by valid records: start-up stops here.
    #[error(
        "WAL corrupt at {}:{offset}: {fault}{}",
        segment.display(),
        valid_after.as_ref().map(|(s, o)| format!(" (a valid record follows at {}:{o})", s.display())).unwrap_or_default()
    )]
    Corrupt {
        /// Segment file.
        segment: PathBuf,
        /// Byte offset of the bad frame inside it.
        offset: u64,
        /// What is wrong there.
        fault: FrameFault,
        /// Where a later valid record was found (segment, offset), if that is why this is an error.
        valid_after: Option<(PathBuf, u64)>,
    },
    /// A valid frame with an unexpected sequence number.
    #[error("WAL sequence break at {}:{offset}: expected {expected}, found {found}", segment.display())]
    SequenceBreak {
        /// Segment file.
        segment: PathBuf,
        /// Byte offset of the frame.
        offset: u64,
        /// Expected sequence number.
        expected: u64,
        /// Sequence number found.
        found: u64,
    },
    /// A frame with a valid CRC whose payload does not decode.
    #[error("WAL record at {}:{offset} (seq {seq}) does not decode: {detail}", segment.display())]
    BadPayload {
        /// Segment file.
        segment: PathBuf,
        /// Byte offset of the frame.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// Why.
        detail: PayloadError,
    },
    /// Replaying a record into the ledger failed.
    #[error("WAL record at {}:{offset} (seq {seq}) breaks the ledger: {detail}", segment.display())]
    LedgerReplay {
        /// Segment file.
        segment: PathBuf,
        /// Byte offset of the frame.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// Why.
        detail: LedgerError,
    },
    /// The pre-sized intent ledger is full of open (non-terminal) intents even after a
    /// checkpoint pruned the terminal ones: the new intent is refused, nothing is written
    /// (bounded table, overflow policy: reject, never grow on the live path).
    #[error("WAL intent ledger full: {open} open intents (capacity {capacity}); intent refused")]
    LedgerFull {
        /// Open intents held.
        open: usize,
        /// The ledger's pre-sized capacity.
        capacity: usize,
    },
    /// The oldest retained segment is not segment 0 and carries no checkpoint to start from.
    #[error("no usable checkpoint: oldest retained segment {} does not start with one", segment.display())]
    NoCheckpoint {
        /// The oldest segment.
        segment: PathBuf,
    },
}

impl WalError {
    /// Maps an I/O error, recognising "no space" (ENOSPC, EDQUOT, EFBIG).
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Self::NoSpace { op, path },
            _ => Self::Io { op, path, source },
        }
    }

    /// Whether the error is a refusal of a bad record by the caller (nothing written, the
    /// writer stays usable), as opposed to a WAL failure.
    #[must_use]
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidRecord(_)
                | Self::Ledger(_)
                | Self::CheckpointNotAppendable
                | Self::RecordTooLarge { .. }
                | Self::LedgerFull { .. }
        )
    }
}
