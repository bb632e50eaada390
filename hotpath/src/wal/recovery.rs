//! Replay: pick the segment to start from (the newest checkpoint for the writer, the oldest
//! segment for `verify`), scan forward, rebuild the ledger, classify the tail.
//! Also the read-only [`WalReader`] behind `stoic wal verify` and `stoic wal inspect`.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::WalError;
use super::format::{
    read_frame, Frame, FrameFault, RecordHeader, SegmentHeader, SEGMENT_HEADER_BYTES,
};
use super::ledger::IntentLedger;
use super::record::{Record, RecordKind};
use super::segment::{
    check_header, list_segments, map_read, open_ro, read_max_payload, scan_segment,
    segment_file_name, DirLock, SegmentEnd,
};

/// A torn tail found (and, by the writer, zeroed) at the end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Segment file.
    pub segment: PathBuf,
    /// Offset of the first bad frame.
    pub offset: u64,
    /// Bytes from `offset` that held non-zero data (zeroed by the writer).
    pub bytes: u64,
    /// What was wrong with the first bad frame.
    pub fault: FrameFault,
}

/// What start-up found. Logged by `Wal::open`; the caller may surface it in `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files present.
    pub segments_present: u64,
    /// Index of the segment replay started from.
    pub replay_from_segment: u64,
    /// Whether replay started from a checkpoint (false: from the beginning of segment 0).
    pub from_checkpoint: bool,
    /// Records replayed (including the starting checkpoint).
    pub records_replayed: u64,
    /// Bytes of segment data scanned.
    pub bytes_scanned: u64,
    /// Last durable sequence number (0 for an empty log).
    pub last_seq: u64,
    /// Torn tail that was truncated, if any.
    pub torn_tail: Option<TornTail>,
    /// Non-terminal intents to resolve with the venue before trading.
    pub in_doubt: u64,
    /// Wall time of the replay in microseconds.
    pub elapsed_us: u64,
    /// Whether the directory was empty and a fresh log was created.
    pub created: bool,
}

/// One thing met during a replay, for visitors (`stoic wal inspect`).
#[derive(Debug)]
pub enum ReplayEvent<'r, 'a> {
    /// A segment is about to be scanned.
    Segment {
        /// Its file.
        path: &'r Path,
        /// Its header.
        header: &'r SegmentHeader,
    },
    /// A valid record.
    Record {
        /// Segment index.
        segment_index: u64,
        /// Byte offset in the segment.
        offset: u64,
        /// Frame header.
        header: &'r RecordHeader,
        /// Decoded record.
        record: &'r Record<'a>,
    },
}

pub(crate) struct Replayed {
    pub ledger: IntentLedger,
    pub last_seq: u64,
    pub last_index: u64,
    pub last_path: PathBuf,
    pub last_header: SegmentHeader,
    pub end: u64,
    pub torn: Option<(TornTail, u64)>,
    pub records: u64,
    pub bytes_scanned: u64,
    pub start_index: u64,
    pub from_checkpoint: bool,
}

pub(crate) fn read_header(path: &Path, index: u64) -> Result<(File, SegmentHeader), WalError> {
    let f = open_ro(path)?;
    let len = f.metadata().map_err(|e| WalError::io("stat segment", path, e))?.len();
    let mut b = [0u8; SEGMENT_HEADER_BYTES];
    if len < SEGMENT_HEADER_BYTES as u64 {
        return Err(WalError::BadSegmentHeader {
            segment: path.to_owned(),
            detail: super::format::HeaderError::TooShort,
        });
    }
    f.read_exact_at(&mut b, 0).map_err(|e| WalError::io("read segment header", path, e))?;
    let h = SegmentHeader::decode(&b)
        .map_err(|detail| WalError::BadSegmentHeader { segment: path.to_owned(), detail })?;
    if h.segment_bytes != len || h.segment_index != index {
        // Full check (with the message) happens on the mapped bytes below.
        let m = map_read(path, &f)?;
        check_header(path, index, &m)?;
    }
    Ok((f, h))
}

/// Whether segment `index` starts with a valid checkpoint record.
fn starts_with_checkpoint(dir: &Path, index: u64) -> Result<bool, WalError> {
    let path = dir.join(segment_file_name(index));
    let (f, h) = read_header(&path, index)?;
    let m = map_read(&path, &f)?;
    Ok(
        match read_frame(
            &m,
            SEGMENT_HEADER_BYTES,
            read_max_payload(h.segment_bytes),
            RecordKind::is_known,
        ) {
            Frame::Valid { header, payload, .. } => {
                header.kind == RecordKind::Checkpoint as u8
                    && header.seq == h.first_seq
                    && Record::decode(RecordKind::Checkpoint, payload).is_ok()
            }
            _ => false,
        },
    )
}

/// Replays `indices` (ascending, contiguous, non-empty) of `dir`.
/// `newest_checkpoint`: start at the newest segment that begins with a checkpoint (writer);
/// otherwise start at the oldest segment (verify), cross-checking every checkpoint.
pub(crate) fn replay(
    dir: &Path,
    indices: &[u64],
    newest_checkpoint: bool,
    visit: &mut dyn FnMut(ReplayEvent<'_, '_>),
) -> Result<Replayed, WalError> {
    let oldest = indices[0];
    let last = indices[indices.len() - 1];
    // Every header is read and checked; the sequence ranges must increase.
    let mut prev_first = 0u64;
    for &i in indices {
        let path = dir.join(segment_file_name(i));
        let (_, h) = read_header(&path, i)?;
        if h.first_seq <= prev_first {
            return Err(WalError::BadSegment {
                segment: path,
                detail: format!(
                    "first sequence {} does not increase (previous segment starts at {prev_first})",
                    h.first_seq
                ),
            });
        }
        prev_first = h.first_seq;
    }
    let mut start = oldest;
    if newest_checkpoint {
        start = last;
        while start > 0 && !starts_with_checkpoint(dir, start)? {
            if start == oldest {
                break;
            }
            start -= 1;
        }
    }
    let from_checkpoint = start > 0 || starts_with_checkpoint(dir, start)?;
    if start > 0 && !starts_with_checkpoint(dir, start)? {
        return Err(WalError::NoCheckpoint { segment: dir.join(segment_file_name(start)) });
    }

    let mut ledger = IntentLedger::new();
    let mut records = 0u64;
    let mut bytes_scanned = 0u64;
    let mut expected_first: Option<u64> = None;
    let mut out: Option<Replayed> = None;
    for i in start..=last {
        let path = dir.join(segment_file_name(i));
        let (f, _) = read_header(&path, i)?;
        let map = map_read(&path, &f)?;
        let header = check_header(&path, i, &map)?;
        if let Some(exp) = expected_first {
            if header.first_seq != exp {
                return Err(WalError::SequenceBreak {
                    segment: path,
                    offset: 0,
                    expected: exp,
                    found: header.first_seq,
                });
            }
        }
        visit(ReplayEvent::Segment { path: &path, header: &header });
        let is_start = i == start;
        let seg_path = path.clone();
        let scan = scan_segment(
            &path,
            &map,
            &header,
            read_max_payload(header.segment_bytes),
            |at, rec| {
                let map_err = |detail| WalError::LedgerReplay {
                    segment: seg_path.clone(),
                    offset: at.offset,
                    seq: at.header.seq,
                    detail,
                };
                match &rec {
                    Record::Checkpoint(view)
                        if is_start && at.header.seq == header.first_seq && from_checkpoint =>
                    {
                        ledger = IntentLedger::from_checkpoint(view);
                    }
                    Record::Checkpoint(view) => {
                        ledger.matches_checkpoint(view).map_err(map_err)?;
                        ledger.prune_terminal();
                    }
                    _ => ledger.apply(at.header.seq, at.header.ts_ms, &rec).map_err(map_err)?,
                }
                visit(ReplayEvent::Record {
                    segment_index: i,
                    offset: at.offset,
                    header: &at.header,
                    record: &rec,
                });
                records += 1;
                Ok(())
            },
        )?;
        bytes_scanned += scan.end;
        let torn = match scan.tail {
            SegmentEnd::Clean => None,
            SegmentEnd::Torn { offset, fault, garbage_end } => {
                if i != last {
                    return Err(WalError::Corrupt {
                        segment: path,
                        offset,
                        fault,
                        valid_after: Some((
                            dir.join(segment_file_name(i + 1)),
                            SEGMENT_HEADER_BYTES as u64,
                        )),
                    });
                }
                Some((
                    TornTail { segment: path.clone(), offset, bytes: garbage_end - offset, fault },
                    garbage_end,
                ))
            }
        };
        expected_first = Some(scan.last_seq + 1);
        out = Some(Replayed {
            ledger: IntentLedger::new(),
            last_seq: scan.last_seq,
            last_index: i,
            last_path: path,
            last_header: header,
            end: scan.end,
            torn,
            records: 0,
            bytes_scanned: 0,
            start_index: start,
            from_checkpoint,
        });
    }
    let mut r = out.ok_or(WalError::InvalidConfig("no segments to replay"))?;
    r.ledger = ledger;
    r.records = records;
    r.bytes_scanned = bytes_scanned;
    Ok(r)
}

/// Summary of a full read-only verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Segment files checked.
    pub segments: u64,
    /// Oldest segment index present.
    pub first_segment: u64,
    /// Valid records.
    pub records: u64,
    /// Last valid sequence number (0 if none).
    pub last_seq: u64,
    /// Bytes of record data.
    pub bytes: u64,
    /// A torn tail the writer would truncate on its next start, if any.
    pub torn_tail: Option<TornTail>,
    /// Non-terminal intents at the end of the log.
    pub in_doubt: u64,
}

/// Read-only access to a WAL directory (shared lock: refuses while a writer holds it).
#[derive(Debug)]
pub struct WalReader {
    dir: PathBuf,
    indices: Vec<u64>,
    _lock: DirLock,
}

impl WalReader {
    /// Opens `dir` for reading.
    ///
    /// # Errors
    /// [`WalError::Locked`] while a writer runs; I/O errors; a gap in segment indices.
    pub fn open(dir: &Path) -> Result<Self, WalError> {
        if !dir.is_dir() {
            return Err(WalError::io(
                "open WAL directory",
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            ));
        }
        let lock = DirLock::acquire(dir, false)?;
        let indices = list_segments(dir)?;
        Ok(Self { dir: dir.to_owned(), indices, _lock: lock })
    }

    /// Segment indices present.
    #[must_use]
    pub fn segments(&self) -> &[u64] {
        &self.indices
    }

    /// Replays every retained segment from the oldest, checking every frame, every sequence
    /// number, every checkpoint against the replayed ledger; calls `visit` for each segment
    /// and record. Modifies nothing.
    ///
    /// # Errors
    /// The first problem found, naming segment file and offset.
    pub fn verify(
        &self,
        visit: &mut dyn FnMut(ReplayEvent<'_, '_>),
    ) -> Result<VerifyReport, WalError> {
        if self.indices.is_empty() {
            return Ok(VerifyReport {
                segments: 0,
                first_segment: 0,
                records: 0,
                last_seq: 0,
                bytes: 0,
                torn_tail: None,
                in_doubt: 0,
            });
        }
        let r = replay(&self.dir, &self.indices, false, visit)?;
        Ok(VerifyReport {
            segments: self.indices.len() as u64,
            first_segment: self.indices[0],
            records: r.records,
            last_seq: r.last_seq,
            bytes: r.bytes_scanned,
            torn_tail: r.torn.map(|(t, _)| t),
            in_doubt: r.ledger.in_doubt_len() as u64,
        })
    }

    /// The ledger as the writer would rebuild it (from the newest checkpoint), without repair.
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn ledger(&self) -> Result<IntentLedger, WalError> {
        if self.indices.is_empty() {
            return Ok(IntentLedger::new());
        }
        Ok(replay(&self.dir, &self.indices, true, &mut |_| {})?.ledger)
    }
}

pub(crate) fn now_us_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}
