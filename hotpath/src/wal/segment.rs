//! Segment files on disk: naming, the directory lock, preallocation, mapping, and the scan
//! that classifies a segment's contents (valid records, clean end, torn tail, corruption).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};

use crate::limits::{WAL_LOCK_ATTEMPTS, WAL_LOCK_RETRY_MS, WAL_SEGMENTS_MAX};

use super::error::WalError;
use super::format::{
    end_of_nonzero, first_nonzero, framed_len, read_frame, Frame, FrameFault, RecordHeader,
    SegmentHeader, RECORD_ALIGN, SEGMENT_HEADER_BYTES,
};
use super::record::{Record, RecordKind};

/// Name of the lock file inside a WAL directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the preallocated spare segment (holds no records; recreated at will).
pub const SPARE_FILE: &str = "wal.spare";

/// File name of segment `index`.
#[must_use]
pub fn segment_file_name(index: u64) -> String {
    format!("wal-{index:016}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".seg")?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment indices present in `dir`, ascending and contiguous.
///
/// # Errors
/// I/O errors, too many segments, or a gap in the indices.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let rd = std::fs::read_dir(dir).map_err(|e| WalError::io("read_dir", dir, e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("read_dir", dir, e))?;
        if let Some(i) = ent.file_name().to_str().and_then(parse_segment_name) {
            if out.len() >= WAL_SEGMENTS_MAX {
                return Err(WalError::InvalidConfig("more WAL segments than WAL_SEGMENTS_MAX"));
            }
            out.push(i);
        }
    }
    out.sort_unstable();
    for w in out.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(WalError::MissingSegment {
                dir: dir.to_owned(),
                missing: w[0] + 1,
                before: w[0],
                after: w[1],
            });
        }
    }
    Ok(out)
}

/// An advisory `flock` on `DIR/LOCK`, held for the lifetime of the value. The writer holds it
/// exclusively, readers (`stoic wal verify/inspect`) shared, so a mapped segment is never
/// written by another process while we hold a view of it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock, retrying for up to `WAL_LOCK_ATTEMPTS × WAL_LOCK_RETRY_MS` (sleeping,
    /// never spinning) before giving up.
    ///
    /// # Errors
    /// [`WalError::Locked`] if another process holds it incompatibly; I/O errors.
    pub fn acquire(dir: &Path, exclusive: bool) -> Result<Self, WalError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| WalError::io("open lock file", &path, e))?;
        let op = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH } | libc::LOCK_NB;
        let mut attempt = 1;
        loop {
            // SAFETY: `flock` on a valid, open descriptor owned by `file`; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(WalError::io("flock", &path, err));
            }
            if attempt >= WAL_LOCK_ATTEMPTS {
                return Err(WalError::Locked { dir: dir.to_owned() });
            }
            attempt += 1;
            std::thread::sleep(std::time::Duration::from_millis(WAL_LOCK_RETRY_MS));
        }
        Ok(Self { _file: file })
    }
}

/// fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WalError::io("fsync directory", dir, e))
}

/// Creates `path` as a file of exactly `bytes` zero bytes, written out (not sparse, not
/// merely fallocated: overwriting written blocks later needs no metadata journal commit) and
/// fsynced.
pub(crate) fn create_zeroed(path: &Path, bytes: u64) -> Result<File, WalError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| WalError::io("create segment", path, e))?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).map_err(|e| WalError::io("preallocate segment", path, e))?;
        left -= n as u64;
    }
    f.sync_all().map_err(|e| WalError::io("fsync new segment", path, e))?;
    Ok(f)
}

/// Turns a zero-filled spare into segment `header.segment_index`: writes the header, syncs,
/// renames into place and syncs the directory. Returns the open file.
pub(crate) fn install_segment(
    dir: &Path,
    spare: &Path,
    file: &File,
    header: &SegmentHeader,
) -> Result<PathBuf, WalError> {
    file.write_all_at(&header.encode(), 0)
        .map_err(|e| WalError::io("write segment header", spare, e))?;
    file.sync_data().map_err(|e| WalError::io("fsync segment header", spare, e))?;
    let path = dir.join(segment_file_name(header.segment_index));
    std::fs::rename(spare, &path).map_err(|e| WalError::io("rename spare to segment", &path, e))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Maps a segment read-only.
pub(crate) fn map_read(path: &Path, file: &File) -> Result<memmap2::Mmap, WalError> {
    // SAFETY: the WAL directory lock (`DirLock`) is held by this process for as long as the
    // map lives: exclusively by the writer, shared by readers, so no other process writes or
    // truncates the file meanwhile. The writer itself never truncates a segment, and its own
    // writes (pwrite of zeros on torn-tail repair) happen while no `&[u8]` into this map is
    // alive (the scan's borrows end before repair).
    unsafe { memmap2::MmapOptions::new().map(file) }
        .map_err(|e| WalError::io("mmap segment", path, e))
}

/// Opens a segment file for reading and writing.
pub(crate) fn open_rw(path: &Path) -> Result<File, WalError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| WalError::io("open segment", path, e))
}

/// Opens a segment file read-only.
pub(crate) fn open_ro(path: &Path) -> Result<File, WalError> {
    File::open(path).map_err(|e| WalError::io("open segment", path, e))
}

/// Position and header of one valid record found by a scan.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt {
    /// Byte offset of the frame in its segment.
    pub offset: u64,
    /// Frame header.
    pub header: RecordHeader,
}

/// How a segment's data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Zeros from `end` to the end of the file.
    Clean,
    /// Bad bytes from `offset` to `garbage_end` with no later valid record outside the torn batch.
    Torn {
        /// Offset of the first bad frame.
        offset: u64,
        /// What was wrong with it.
        fault: FrameFault,
        /// One past the last non-zero byte (aligned up).
        garbage_end: u64,
    },
}

/// Result of scanning one segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentScan {
    /// Offset one past the last valid frame (where the next record goes).
    pub end: u64,
    /// Sequence number of the last valid record (`first_seq - 1` if none).
    pub last_seq: u64,
    /// Valid records seen.
    pub records: u64,
    /// How the data ends.
    pub tail: SegmentEnd,
}

/// Scans a segment image, calling `on_record` for each valid record in order.
///
/// Rules (see `docs/wal_format.md`, "Recovery"): a frame that is neither valid nor zero, or a
/// zero header followed by non-zero bytes, ends the data. If some later frame in this segment
/// is valid and belongs to a sync batch that *started after* the bad frame's sequence
/// number, the bad frame was once durable: that is corruption, an error. Otherwise the rest is
/// a torn tail: the unsynced batch being written when the process or machine died.
///
/// # Errors
/// [`WalError::Corrupt`], [`WalError::SequenceBreak`], [`WalError::BadPayload`], or whatever
/// `on_record` returns.
pub fn scan_segment<'a>(
    path: &Path,
    seg: &'a [u8],
    header: &SegmentHeader,
    max_payload: usize,
    mut on_record: impl FnMut(RecordAt, Record<'a>) -> Result<(), WalError>,
) -> Result<SegmentScan, WalError> {
    let mut off = SEGMENT_HEADER_BYTES;
    let mut expected = header.first_seq;
    let mut records = 0u64;
    loop {
        let fault = match read_frame(seg, off, max_payload, RecordKind::is_known) {
            Frame::Valid { header: h, payload, framed_len } => {
                if h.seq != expected {
                    return Err(WalError::SequenceBreak {
                        segment: path.to_owned(),
                        offset: off as u64,
                        expected,
                        found: h.seq,
                    });
                }
                let kind = RecordKind::from_code(h.kind).ok_or(WalError::BadSegment {
                    segment: path.to_owned(),
                    detail: format!("unknown kind {} at offset {off}", h.kind),
                })?;
                let rec = Record::decode(kind, payload).map_err(|detail| WalError::BadPayload {
                    segment: path.to_owned(),
                    offset: off as u64,
                    seq: h.seq,
                    detail,
                })?;
                on_record(RecordAt { offset: off as u64, header: h }, rec)?;
                records += 1;
                expected += 1;
                off += framed_len;
                continue;
            }
            Frame::Zero => match first_nonzero(&seg[off.min(seg.len())..]) {
                None => {
                    return Ok(SegmentScan {
                        end: off as u64,
                        last_seq: expected - 1,
                        records,
                        tail: SegmentEnd::Clean,
                    })
                }
                Some(p) => FrameFault::GarbageAfterEnd((off + p) as u64),
            },
            Frame::Invalid(f) => f,
        };
        // `off` holds a bad frame. Look for a later valid frame from a later sync batch.
        let mut p = off + RECORD_ALIGN;
        while p + RECORD_ALIGN <= seg.len() {
            // Skip zero runs quickly: a valid frame's first 8 bytes (length + CRC) are never
            // all zero, so the next candidate starts at the 8-aligned word holding the next
            // non-zero byte.
            if seg[p..p + RECORD_ALIGN].iter().all(|&b| b == 0) {
                match first_nonzero(&seg[p..]) {
                    None => break,
                    Some(q) => {
                        p = (p + q) & !(RECORD_ALIGN - 1);
                        continue;
                    }
                }
            }
            if let Frame::Valid { header: h, framed_len, .. } =
                read_frame(seg, p, max_payload, RecordKind::is_known)
            {
                if h.seq >= expected {
                    if h.batch_first_seq() > expected {
                        return Err(WalError::Corrupt {
                            segment: path.to_owned(),
                            offset: off as u64,
                            fault,
                            valid_after: Some((path.to_owned(), p as u64)),
                        });
                    }
                    p += framed_len;
                    continue;
                }
            }
            p += RECORD_ALIGN;
        }
        let garbage_end = end_of_nonzero(seg).max(off);
        let garbage_end = ((garbage_end + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)).min(seg.len());
        return Ok(SegmentScan {
            end: off as u64,
            last_seq: expected - 1,
            records,
            tail: SegmentEnd::Torn { offset: off as u64, fault, garbage_end: garbage_end as u64 },
        });
    }
}

/// Reads and checks a segment's header against its file name and size.
///
/// # Errors
/// [`WalError::BadSegmentHeader`] or [`WalError::BadSegment`].
pub fn check_header(path: &Path, index: u64, bytes: &[u8]) -> Result<SegmentHeader, WalError> {
    let h = SegmentHeader::decode(bytes)
        .map_err(|detail| WalError::BadSegmentHeader { segment: path.to_owned(), detail })?;
    if h.segment_index != index {
        return Err(WalError::BadSegment {
            segment: path.to_owned(),
            detail: format!(
                "header says segment {} but the file name says {index}",
                h.segment_index
            ),
        });
    }
    if h.segment_bytes != bytes.len() as u64 {
        return Err(WalError::BadSegment {
            segment: path.to_owned(),
            detail: format!(
                "header says {} bytes but the file has {}",
                h.segment_bytes,
                bytes.len()
            ),
        });
    }
    if h.first_seq == 0 {
        return Err(WalError::BadSegment {
            segment: path.to_owned(),
            detail: "first sequence number is 0".into(),
        });
    }
    Ok(h)
}

/// Largest payload a record may have in a segment of `segment_bytes`: a quarter of the space
/// after the header, capped by `WAL_RECORD_PAYLOAD_BYTES_MAX`, so a fresh segment always fits
/// a checkpoint (up to half) plus the record that triggered the roll.
#[must_use]
pub fn max_payload_for(segment_bytes: u64) -> usize {
    let room = (segment_bytes as usize).saturating_sub(SEGMENT_HEADER_BYTES) / 4;
    room.saturating_sub(framed_len(0)).min(crate::limits::WAL_RECORD_PAYLOAD_BYTES_MAX)
}

/// Largest checkpoint payload written into a segment of `segment_bytes` (half the space).
#[must_use]
pub fn max_checkpoint_payload_for(segment_bytes: u64) -> usize {
    let room = (segment_bytes as usize).saturating_sub(SEGMENT_HEADER_BYTES) / 2;
    room.saturating_sub(framed_len(0)).min(crate::limits::WAL_RECORD_PAYLOAD_BYTES_MAX)
}

/// The payload limit used when *reading*: the largest any writer could have used.
#[must_use]
pub fn read_max_payload(segment_bytes: u64) -> usize {
    max_checkpoint_payload_for(segment_bytes).max(max_payload_for(segment_bytes))
}
