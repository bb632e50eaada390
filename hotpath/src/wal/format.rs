//! On-disk layout: the segment header and the record frame. See `docs/wal_format.md`.
//!
//! Everything is little-endian. A segment file is
//! `[segment header: 64 B][record frame]*[zeros to the end of the file]`; each frame is
//! `[record header: 32 B][payload][zero padding to a multiple of 8]`.

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"STOICWAL";
/// The on-disk format version written by this build; `open` refuses any other.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; the first record starts here.
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Size of the record header that precedes every payload.
pub const RECORD_HEADER_BYTES: usize = 32;
/// Every frame starts at a multiple of this offset.
pub const RECORD_ALIGN: usize = 8;

/// The decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Position of this segment in the log (0, 1, 2, ...); equals the index in the file name.
    pub segment_index: u64,
    /// Sequence number of the first record in this segment.
    pub first_seq: u64,
    /// Size of the segment file when it was created.
    pub segment_bytes: u64,
    /// Wall-clock creation time (ms since the Unix epoch), informational.
    pub created_ms: i64,
}

/// Why a segment header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file is shorter than a header.
    #[error("file shorter than the {SEGMENT_HEADER_BYTES}-byte segment header")]
    TooShort,
    /// The magic bytes are not `STOICWAL`.
    #[error("bad magic (not a Stoic WAL segment)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported format version {0} (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u32),
    /// The header length field is not 64.
    #[error("unexpected header length {0}")]
    BadHeaderLen(u32),
    /// Reserved bytes are not zero.
    #[error("reserved header bytes are not zero")]
    ReservedNonZero,
    /// The header checksum does not match.
    #[error("header CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BadCrc {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the header bytes.
        computed: u32,
    },
}

impl SegmentHeader {
    /// The 64 header bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.segment_index.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b[32..40].copy_from_slice(&self.segment_bytes.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks the first 64 bytes of a segment file.
    ///
    /// # Errors
    /// [`HeaderError`] for anything but a well-formed header of [`FORMAT_VERSION`].
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let b = bytes.get(..SEGMENT_HEADER_BYTES).ok_or(HeaderError::TooShort)?;
        if b[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let stored = le_u32(b, 60);
        let computed = crc32c::crc32c(&b[0..60]);
        if stored != computed {
            return Err(HeaderError::BadCrc { stored, computed });
        }
        let version = le_u32(b, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let header_len = le_u32(b, 12);
        if header_len as usize != SEGMENT_HEADER_BYTES {
            return Err(HeaderError::BadHeaderLen(header_len));
        }
        if b[48..60].iter().any(|&x| x != 0) {
            return Err(HeaderError::ReservedNonZero);
        }
        Ok(Self {
            segment_index: le_u64(b, 16),
            first_seq: le_u64(b, 24),
            segment_bytes: le_u64(b, 32),
            created_ms: le_i64(b, 40),
        })
    }
}

/// The decoded fixed part of a record frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes (padding excluded).
    pub payload_len: u32,
    /// CRC32C over bytes 0..4 and 8..(32 + payload_len) of the frame.
    pub crc: u32,
    /// Sequence number (1, 2, 3, ... across all segments).
    pub seq: u64,
    /// Wall-clock time the caller gave to `append` (ms since the Unix epoch).
    pub ts_ms: i64,
    /// `seq` minus the sequence number of the first record of the same unsynced batch (0 for the
    /// first record after a sync). Recovery uses it to tell a torn batch from corruption.
    pub batch_back: u32,
    /// Record kind code (see `RecordKind`).
    pub kind: u8,
}

impl RecordHeader {
    /// Sequence number of the first record of the sync batch this record was appended in.
    #[must_use]
    pub fn batch_first_seq(&self) -> u64 {
        self.seq.saturating_sub(u64::from(self.batch_back))
    }
}

/// Why the bytes at a frame position are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameFault {
    /// The header or payload runs past the end of the segment.
    #[error("frame runs past the end of the segment")]
    Truncated,
    /// The payload length is larger than any record may be.
    #[error("payload length {0} exceeds the maximum")]
    LengthTooLarge(u32),
    /// Reserved header bytes are not zero.
    #[error("reserved record header bytes are not zero")]
    ReservedNonZero,
    /// Unknown record kind code.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// Sequence number 0 is never written.
    #[error("sequence number 0")]
    SeqZero,
    /// The checksum does not match.
    #[error("record CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the frame.
        computed: u32,
    },
    /// The padding after the payload is not zero.
    #[error("frame padding is not zero")]
    PaddingNonZero,
    /// The record header is all zeros (end of data) but non-zero bytes follow.
    #[error("non-zero bytes after the end of data (at offset {0})")]
    GarbageAfterEnd(u64),
}

/// Outcome of looking at one frame position.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A well-formed record.
    Valid {
        /// Its header.
        header: RecordHeader,
        /// Its payload bytes.
        payload: &'a [u8],
        /// Header + payload + padding.
        framed_len: usize,
    },
    /// A record header of all zero bytes: nothing was ever written here.
    Zero,
    /// Something that is neither.
    Invalid(FrameFault),
}

/// Rounds `n` up to the record alignment.
#[must_use]
pub const fn align_up(n: usize) -> usize {
    (n + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Bytes a record with `payload_len` bytes of payload occupies in a segment.
#[must_use]
pub const fn framed_len(payload_len: usize) -> usize {
    align_up(RECORD_HEADER_BYTES + payload_len)
}

/// CRC32C of a frame (header + payload, padding excluded): covers the length field and
/// everything from the sequence number on, i.e. every header byte except the CRC itself.
#[must_use]
pub fn frame_crc(frame_unpadded: &[u8]) -> u32 {
    let c = crc32c::crc32c(&frame_unpadded[0..4]);
    crc32c::crc32c_append(c, &frame_unpadded[8..])
}

/// Writes the header fields and CRC into `frame` (header + payload + padding), whose payload
/// part the caller has already filled. Padding is zeroed here.
pub fn seal_frame(
    frame: &mut [u8],
    payload_len: usize,
    seq: u64,
    ts_ms: i64,
    batch_back: u32,
    kind: u8,
) {
    debug_assert_eq!(frame.len(), framed_len(payload_len));
    frame[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    frame[8..16].copy_from_slice(&seq.to_le_bytes());
    frame[16..24].copy_from_slice(&ts_ms.to_le_bytes());
    frame[24..28].copy_from_slice(&batch_back.to_le_bytes());
    frame[28] = kind;
    frame[29..32].fill(0);
    let end = RECORD_HEADER_BYTES + payload_len;
    frame[end..].fill(0);
    let crc = frame_crc(&frame[..end]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Looks at the frame starting at `off` of a segment image `seg`.
/// `is_known_kind` says which kind codes exist.
#[must_use]
pub fn read_frame(
    seg: &[u8],
    off: usize,
    max_payload: usize,
    is_known_kind: fn(u8) -> bool,
) -> Frame<'_> {
    let Some(h) = seg.get(off..off + RECORD_HEADER_BYTES) else {
        return if seg[off.min(seg.len())..].iter().all(|&b| b == 0) {
            Frame::Zero
        } else {
            Frame::Invalid(FrameFault::Truncated)
        };
    };
    if h.iter().all(|&b| b == 0) {
        return Frame::Zero;
    }
    let payload_len = le_u32(h, 0);
    if payload_len as usize > max_payload {
        return Frame::Invalid(FrameFault::LengthTooLarge(payload_len));
    }
    let framed = framed_len(payload_len as usize);
    let Some(frame) = seg.get(off..off + framed) else {
        return Frame::Invalid(FrameFault::Truncated);
    };
    let end = RECORD_HEADER_BYTES + payload_len as usize;
    let stored = le_u32(h, 4);
    let computed = frame_crc(&frame[..end]);
    if stored != computed {
        return Frame::Invalid(FrameFault::CrcMismatch { stored, computed });
    }
    if h[29..32].iter().any(|&b| b != 0) {
        return Frame::Invalid(FrameFault::ReservedNonZero);
    }
    if !is_known_kind(h[28]) {
        return Frame::Invalid(FrameFault::UnknownKind(h[28]));
    }
    let seq = le_u64(h, 8);
    if seq == 0 {
        return Frame::Invalid(FrameFault::SeqZero);
    }
    if frame[end..].iter().any(|&b| b != 0) {
        return Frame::Invalid(FrameFault::PaddingNonZero);
    }
    Frame::Valid {
        header: RecordHeader {
            payload_len,
            crc: stored,
            seq,
            ts_ms: le_i64(h, 16),
            batch_back: le_u32(h, 24),
            kind: h[28],
        },
        payload: &frame[RECORD_HEADER_BYTES..end],
        framed_len: framed,
    }
}

/// Offset of the first non-zero byte in `bytes`, if any (word-at-a-time scan).
#[must_use]
pub fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0usize;
    for c in chunks.by_ref() {
        if u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) != 0 {
            return c.iter().position(|&b| b != 0).map(|p| base + p);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b != 0).map(|p| base + p)
}

/// Offset one past the last non-zero byte in `bytes` (0 if all zero).
#[must_use]
pub fn end_of_nonzero(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_header_round_trips_and_detects_flips() {
        let h =
            SegmentHeader { segment_index: 7, first_seq: 99, segment_bytes: 8192, created_ms: 5 };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..SEGMENT_HEADER_BYTES {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(SegmentHeader::decode(&c).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn frame_seal_then_read() {
        let mut seg = vec![0u8; 256];
        let fl = framed_len(5);
        assert_eq!(fl, 40);
        seg[64 + 32..64 + 37].copy_from_slice(b"hello");
        seal_frame(&mut seg[64..64 + fl], 5, 3, -1, 2, 1);
        match read_frame(&seg, 64, 100, |k| k == 1) {
            Frame::Valid { header, payload, framed_len } => {
                assert_eq!(payload, b"hello");
                assert_eq!(framed_len, 40);
                assert_eq!(header.seq, 3);
                assert_eq!(header.ts_ms, -1);
                assert_eq!(header.batch_first_seq(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read_frame(&seg, 64 + fl, 100, |k| k == 1), Frame::Zero));
        assert!(matches!(
            read_frame(&seg, 64, 100, |k| k == 2),
            Frame::Invalid(FrameFault::UnknownKind(1))
        ));
        assert!(matches!(
            read_frame(&seg, 64, 4, |k| k == 1),
            Frame::Invalid(FrameFault::LengthTooLarge(5))
        ));
    }

    #[test]
    fn nonzero_scans() {
        let mut v = vec![0u8; 37];
        assert_eq!(first_nonzero(&v), None);
        assert_eq!(end_of_nonzero(&v), 0);
        v[35] = 1;
        v[9] = 2;
        assert_eq!(first_nonzero(&v), Some(9));
        assert_eq!(end_of_nonzero(&v), 36);
    }
}
