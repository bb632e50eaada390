//! Record kinds and their compact payload encodings (little-endian fixed fields, `u16`
//! length-prefixed strings and byte strings). No serde on this path: encoding writes straight
//! into the segment (or the staging buffer) and decoding borrows from the mapped segment.

use crate::limits::{
    WAL_CANONICAL_BYTES_MAX, WAL_CHECKPOINT_ENTRIES_MAX, WAL_LABEL_BYTES_MAX, WAL_TEXT_BYTES_MAX,
};

use super::format::{le_i64, le_u16, le_u32, le_u64};
use super::ledger::{IntentState, LedgerCounts};

/// Record kind codes (the `kind` byte of the record header). Never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// An intent passed every gate and is about to be dispatched.
    IntentRecorded = 1,
    /// Its order request was written to the venue socket.
    Sent = 2,
    /// The venue acknowledged it (venue order id).
    Acknowledged = 3,
    /// Part of it filled (cumulative filled quantity).
    PartiallyFilled = 4,
    /// All of it filled.
    Filled = 5,
    /// Cancelled at the venue.
    Cancelled = 6,
    /// Rejected by the venue.
    Rejected = 7,
    /// Never reached the venue (found absent on reconciliation); never resent.
    Abandoned = 8,
    /// An operator action (emergency reduce-only, mode relax, ...).
    OperatorAction = 9,
    /// Ledger snapshot: every non-terminal intent plus running counts.
    Checkpoint = 10,
    /// An atomic-group step (group intent, transition, in-doubt, close blocked, naked event).
    GroupEvent = 11,
}

impl RecordKind {
    /// The kind for a header byte, if it is one.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::IntentRecorded,
            2 => Self::Sent,
            3 => Self::Acknowledged,
            4 => Self::PartiallyFilled,
            5 => Self::Filled,
            6 => Self::Cancelled,
            7 => Self::Rejected,
            8 => Self::Abandoned,
            9 => Self::OperatorAction,
            10 => Self::Checkpoint,
            11 => Self::GroupEvent,
            _ => return None,
        })
    }

    /// Whether `code` names a kind.
    #[must_use]
    pub fn is_known(code: u8) -> bool {
        Self::from_code(code).is_some()
    }

    /// Stable display name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IntentRecorded => "IntentRecorded",
            Self::Sent => "Sent",
            Self::Acknowledged => "Acknowledged",
            Self::PartiallyFilled => "PartiallyFilled",
            Self::Filled => "Filled",
            Self::Cancelled => "Cancelled",
            Self::Rejected => "Rejected",
            Self::Abandoned => "Abandoned",
            Self::OperatorAction => "OperatorAction",
            Self::Checkpoint => "Checkpoint",
            Self::GroupEvent => "GroupEvent",
        }
    }
}

/// What an operator did. Never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum OperatorActionKind {
    /// Emergency switch to ReduceOnly.
    EmergencyReduceOnly = 1,
    /// An authenticated relaxation of the trading mode.
    ModeRelax = 2,
    /// Kill switch.
    Kill = 3,
    /// Emergency close of all exposure.
    EmergencyClose = 4,
}

impl OperatorActionKind {
    /// The action for a code, if it is one.
    #[must_use]
    pub fn from_code(code: u16) -> Option<Self> {
        Some(match code {
            1 => Self::EmergencyReduceOnly,
            2 => Self::ModeRelax,
            3 => Self::Kill,
            4 => Self::EmergencyClose,
            _ => return None,
        })
    }

    /// Stable display name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmergencyReduceOnly => "EmergencyReduceOnly",
            Self::ModeRelax => "ModeRelax",
            Self::Kill => "Kill",
            Self::EmergencyClose => "EmergencyClose",
        }
    }
}

/// One WAL record, borrowing its variable-length fields (from the caller on append, from the
/// mapped segment on replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// The intent's canonical bytes (opaque to the WAL), its hash and its venue label.
    IntentRecorded {
        /// Stable hash of the canonical bytes; the ledger key.
        intent_hash: u64,
        /// Venue label (≤ 64 bytes).
        label: &'a str,
        /// Canonical intent encoding (≤ `WAL_CANONICAL_BYTES_MAX`).
        canonical: &'a [u8],
    },
    /// The order request left for the venue.
    Sent {
        /// Intent.
        intent_hash: u64,
    },
    /// The venue acknowledged the order.
    Acknowledged {
        /// Intent.
        intent_hash: u64,
        /// The venue's order id.
        venue_order_id: &'a str,
    },
    /// A partial fill; `filled_qty` is cumulative (replay is idempotent).
    PartiallyFilled {
        /// Intent.
        intent_hash: u64,
        /// Cumulative filled quantity (qty steps).
        filled_qty: i64,
        /// Venue trade id of the fill ("" if unknown).
        trade_id: &'a str,
    },
    /// The order filled completely.
    Filled {
        /// Intent.
        intent_hash: u64,
        /// Final filled quantity (qty steps).
        filled_qty: i64,
        /// Venue trade id of the last fill ("" if unknown).
        trade_id: &'a str,
    },
    /// The order was cancelled.
    Cancelled {
        /// Intent.
        intent_hash: u64,
        /// Quantity filled before the cancel (qty steps).
        filled_qty: i64,
    },
    /// The venue rejected the order.
    Rejected {
        /// Intent.
        intent_hash: u64,
        /// Venue error code (0 if none).
        code: i32,
        /// Reason text.
        reason: &'a str,
    },
    /// The venue never saw it; it is closed locally and never resent.
    Abandoned {
        /// Intent.
        intent_hash: u64,
        /// Reason text.
        reason: &'a str,
    },
    /// An operator action; "when" is the record timestamp.
    OperatorAction {
        /// What was done.
        action: OperatorActionKind,
        /// Who did it.
        who: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// A ledger snapshot (written by the WAL itself at each segment start).
    Checkpoint(CheckpointView<'a>),
    /// An atomic-group step that is not an order life-cycle record: the group intent, a state
    /// transition, an order gone in doubt, a blocked close, the naked event. Not an intent
    /// record: the ledger only counts it.
    GroupEvent {
        /// The group id (`gid12`, as in every leg's label).
        group: &'a str,
        /// What happened (`group_intent`, `transition`, `in_doubt`, `close_blocked`, `naked`,
        /// `hold`, `release`, `escalate`, `refused`, `anomaly`).
        event: &'a str,
        /// Details, `key=value` pairs separated by spaces.
        detail: &'a str,
    },
}

/// Why a payload cannot be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The payload ended before a field.
    #[error("payload truncated")]
    Truncated,
    /// Bytes left over after the last field.
    #[error("{0} trailing payload bytes")]
    Trailing(usize),
    /// A string field is not UTF-8.
    #[error("string field is not UTF-8")]
    NotUtf8,
    /// A field is longer than its bound.
    #[error("field `{field}` is {len} bytes, more than {max}")]
    TooLong {
        /// Field name.
        field: &'static str,
        /// Its length.
        len: usize,
        /// Its bound.
        max: usize,
    },
    /// A label is empty.
    #[error("empty label")]
    EmptyLabel,
    /// An unknown enum code in a payload.
    #[error("unknown {what} code {code}")]
    UnknownCode {
        /// Which enum.
        what: &'static str,
        /// The code.
        code: u32,
    },
    /// A negative quantity.
    #[error("negative filled quantity {0}")]
    NegativeQty(i64),
}

impl<'a> Record<'a> {
    /// The record's kind.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::IntentRecorded { .. } => RecordKind::IntentRecorded,
            Self::Sent { .. } => RecordKind::Sent,
            Self::Acknowledged { .. } => RecordKind::Acknowledged,
            Self::PartiallyFilled { .. } => RecordKind::PartiallyFilled,
            Self::Filled { .. } => RecordKind::Filled,
            Self::Cancelled { .. } => RecordKind::Cancelled,
            Self::Rejected { .. } => RecordKind::Rejected,
            Self::Abandoned { .. } => RecordKind::Abandoned,
            Self::OperatorAction { .. } => RecordKind::OperatorAction,
            Self::Checkpoint(_) => RecordKind::Checkpoint,
            Self::GroupEvent { .. } => RecordKind::GroupEvent,
        }
    }

    /// The intent this record is about (`None` for operator actions and checkpoints).
    #[must_use]
    pub fn intent_hash(&self) -> Option<u64> {
        match *self {
            Self::IntentRecorded { intent_hash, .. }
            | Self::Sent { intent_hash }
            | Self::Acknowledged { intent_hash, .. }
            | Self::PartiallyFilled { intent_hash, .. }
            | Self::Filled { intent_hash, .. }
            | Self::Cancelled { intent_hash, .. }
            | Self::Rejected { intent_hash, .. }
            | Self::Abandoned { intent_hash, .. } => Some(intent_hash),
            Self::OperatorAction { .. } | Self::Checkpoint(_) | Self::GroupEvent { .. } => None,
        }
    }

    /// The life-cycle state this record moves its intent to (`None` for non-intent records).
    #[must_use]
    pub fn target_state(&self) -> Option<IntentState> {
        Some(match self {
            Self::IntentRecorded { .. } => IntentState::Recorded,
            Self::Sent { .. } => IntentState::Sent,
            Self::Acknowledged { .. } => IntentState::Acknowledged,
            Self::PartiallyFilled { .. } => IntentState::PartiallyFilled,
            Self::Filled { .. } => IntentState::Filled,
            Self::Cancelled { .. } => IntentState::Cancelled,
            Self::Rejected { .. } => IntentState::Rejected,
            Self::Abandoned { .. } => IntentState::Abandoned,
            Self::OperatorAction { .. } | Self::Checkpoint(_) | Self::GroupEvent { .. } => {
                return None
            }
        })
    }

    /// Checks field bounds and returns the payload length.
    ///
    /// # Errors
    /// [`PayloadError`] if a field is out of bounds.
    pub fn payload_len(&self) -> Result<usize, PayloadError> {
        Ok(match *self {
            Self::IntentRecorded { label, canonical, .. } => {
                if label.is_empty() {
                    return Err(PayloadError::EmptyLabel);
                }
                bound("label", label.len(), WAL_LABEL_BYTES_MAX)?;
                bound("canonical", canonical.len(), WAL_CANONICAL_BYTES_MAX)?;
                8 + 2 + label.len() + 2 + canonical.len()
            }
            Self::Sent { .. } => 8,
            Self::Acknowledged { venue_order_id, .. } => {
                8 + text("venue_order_id", venue_order_id)?
            }
            Self::PartiallyFilled { filled_qty, trade_id, .. }
            | Self::Filled { filled_qty, trade_id, .. } => {
                qty(filled_qty)?;
                8 + 8 + text("trade_id", trade_id)?
            }
            Self::Cancelled { filled_qty, .. } => {
                qty(filled_qty)?;
                16
            }
            Self::Rejected { reason, .. } => 8 + 4 + text("reason", reason)?,
            Self::Abandoned { reason, .. } => 8 + text("reason", reason)?,
            Self::OperatorAction { who, reason, .. } => {
                2 + text("who", who)? + text("reason", reason)?
            }
            Self::Checkpoint(v) => v.bytes.len(),
            Self::GroupEvent { group, event, detail } => {
                text("group", group)? + text("event", event)? + text("detail", detail)?
            }
        })
    }

    /// Writes the payload into `out`, which must be exactly `payload_len()` bytes.
    pub fn encode_payload(&self, out: &mut [u8]) {
        let mut w = Writer { out, pos: 0 };
        match *self {
            Self::IntentRecorded { intent_hash, label, canonical } => {
                w.u64(intent_hash);
                w.bytes16(label.as_bytes());
                w.bytes16(canonical);
            }
            Self::Sent { intent_hash } => w.u64(intent_hash),
            Self::Acknowledged { intent_hash, venue_order_id } => {
                w.u64(intent_hash);
                w.bytes16(venue_order_id.as_bytes());
            }
            Self::PartiallyFilled { intent_hash, filled_qty, trade_id }
            | Self::Filled { intent_hash, filled_qty, trade_id } => {
                w.u64(intent_hash);
                w.i64(filled_qty);
                w.bytes16(trade_id.as_bytes());
            }
            Self::Cancelled { intent_hash, filled_qty } => {
                w.u64(intent_hash);
                w.i64(filled_qty);
            }
            Self::Rejected { intent_hash, code, reason } => {
                w.u64(intent_hash);
                w.u32(code as u32);
                w.bytes16(reason.as_bytes());
            }
            Self::Abandoned { intent_hash, reason } => {
                w.u64(intent_hash);
                w.bytes16(reason.as_bytes());
            }
            Self::OperatorAction { action, who, reason } => {
                w.u16(action as u16);
                w.bytes16(who.as_bytes());
                w.bytes16(reason.as_bytes());
            }
            Self::Checkpoint(v) => w.raw(v.bytes),
            Self::GroupEvent { group, event, detail } => {
                w.bytes16(group.as_bytes());
                w.bytes16(event.as_bytes());
                w.bytes16(detail.as_bytes());
            }
        }
        debug_assert_eq!(w.pos, w.out.len(), "payload_len and encode_payload disagree");
    }

    /// Decodes a payload of `kind`.
    ///
    /// # Errors
    /// [`PayloadError`] for any malformed payload (never panics).
    pub fn decode(kind: RecordKind, payload: &'a [u8]) -> Result<Self, PayloadError> {
        let mut r = Cursor { b: payload, pos: 0 };
        let rec = match kind {
            RecordKind::IntentRecorded => {
                let intent_hash = r.u64()?;
                let label = r.str16()?;
                let canonical = r.bytes16()?;
                let rec = Self::IntentRecorded { intent_hash, label, canonical };
                rec.payload_len()?;
                rec
            }
            RecordKind::Sent => Self::Sent { intent_hash: r.u64()? },
            RecordKind::Acknowledged => {
                Self::Acknowledged { intent_hash: r.u64()?, venue_order_id: r.str16()? }
            }
            RecordKind::PartiallyFilled => Self::PartiallyFilled {
                intent_hash: r.u64()?,
                filled_qty: r.i64()?,
                trade_id: r.str16()?,
            },
            RecordKind::Filled => {
                Self::Filled { intent_hash: r.u64()?, filled_qty: r.i64()?, trade_id: r.str16()? }
            }
            RecordKind::Cancelled => {
                Self::Cancelled { intent_hash: r.u64()?, filled_qty: r.i64()? }
            }
            RecordKind::Rejected => {
                Self::Rejected { intent_hash: r.u64()?, code: r.u32()? as i32, reason: r.str16()? }
            }
            RecordKind::Abandoned => Self::Abandoned { intent_hash: r.u64()?, reason: r.str16()? },
            RecordKind::OperatorAction => {
                let code = r.u16()?;
                let action =
                    OperatorActionKind::from_code(code).ok_or(PayloadError::UnknownCode {
                        what: "operator action",
                        code: u32::from(code),
                    })?;
                Self::OperatorAction { action, who: r.str16()?, reason: r.str16()? }
            }
            RecordKind::Checkpoint => {
                let view = CheckpointView::parse(payload)?;
                r.pos = payload.len();
                Self::Checkpoint(view)
            }
            RecordKind::GroupEvent => {
                Self::GroupEvent { group: r.str16()?, event: r.str16()?, detail: r.str16()? }
            }
        };
        r.finish()?;
        rec.payload_len()?;
        Ok(rec)
    }
}

fn bound(field: &'static str, len: usize, max: usize) -> Result<(), PayloadError> {
    if len > max {
        Err(PayloadError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

fn text(field: &'static str, s: &str) -> Result<usize, PayloadError> {
    bound(field, s.len(), WAL_TEXT_BYTES_MAX)?;
    Ok(2 + s.len())
}

fn qty(q: i64) -> Result<(), PayloadError> {
    if q < 0 {
        Err(PayloadError::NegativeQty(q))
    } else {
        Ok(())
    }
}

/// One non-terminal intent inside a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointEntry<'a> {
    /// Intent hash.
    pub intent_hash: u64,
    /// Its (non-terminal) state.
    pub state: IntentState,
    /// Cumulative filled quantity.
    pub filled_qty: i64,
    /// Sequence number of its `IntentRecorded` record.
    pub recorded_seq: u64,
    /// Timestamp of its `IntentRecorded` record.
    pub recorded_ms: i64,
    /// Sequence number of its latest record.
    pub updated_seq: u64,
    /// Timestamp of its latest record.
    pub updated_ms: i64,
    /// Venue label.
    pub label: &'a str,
    /// Venue order id ("" if none yet).
    pub venue_order_id: &'a str,
    /// Venue trade id of the latest fill ("" if none).
    pub last_trade_id: &'a str,
    /// Canonical intent bytes.
    pub canonical: &'a [u8],
}

/// Fixed bytes of a checkpoint entry before its three variable fields.
const CKPT_ENTRY_FIXED: usize = 8 + 1 + 8 + 8 + 8 + 8 + 8;
/// Fixed bytes of a checkpoint before its entries: counts + entry count.
const CKPT_FIXED: usize = LedgerCounts::ENCODED_BYTES + 4;

/// A validated checkpoint payload: `[counts][u32 n][entry]*n`, entry =
/// `u64 hash, u8 state, i64 filled, u64 recorded_seq, i64 recorded_ms, u64 updated_seq,
/// i64 updated_ms, str16 label, str16 venue_order_id, str16 last_trade_id, bytes16 canonical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointView<'a> {
    bytes: &'a [u8],
    counts: LedgerCounts,
    entries: u32,
}

impl<'a> CheckpointView<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, PayloadError> {
        let mut r = Cursor { b: bytes, pos: 0 };
        let counts = LedgerCounts::decode(r.take(LedgerCounts::ENCODED_BYTES)?);
        let entries = r.u32()?;
        bound("checkpoint entries", entries as usize, WAL_CHECKPOINT_ENTRIES_MAX)?;
        for _ in 0..entries {
            parse_entry(&mut r)?;
        }
        r.finish()?;
        Ok(Self { bytes, counts, entries })
    }

    /// Running counts at the checkpoint.
    #[must_use]
    pub fn counts(&self) -> LedgerCounts {
        self.counts
    }

    /// Number of non-terminal intents in the snapshot.
    #[must_use]
    pub fn entry_count(&self) -> usize {
        self.entries as usize
    }

    /// The non-terminal intents, in the order written (ascending intent hash).
    pub fn entries(&self) -> impl Iterator<Item = CheckpointEntry<'a>> + 'a {
        let mut r = Cursor { b: self.bytes, pos: CKPT_FIXED };
        let n = self.entries;
        // Already validated by `parse`, so `parse_entry` cannot fail here; `ok()` ends the
        // iteration early rather than panicking if that ever stops being true.
        (0..n).map_while(move |_| parse_entry(&mut r).ok())
    }
}

fn parse_entry<'a>(r: &mut Cursor<'a>) -> Result<CheckpointEntry<'a>, PayloadError> {
    let intent_hash = r.u64()?;
    let code = r.u8()?;
    let state = IntentState::from_code(code).filter(|s| !s.is_terminal()).ok_or(
        PayloadError::UnknownCode { what: "checkpoint intent state", code: u32::from(code) },
    )?;
    let e = CheckpointEntry {
        intent_hash,
        state,
        filled_qty: r.i64()?,
        recorded_seq: r.u64()?,
        recorded_ms: r.i64()?,
        updated_seq: r.u64()?,
        updated_ms: r.i64()?,
        label: r.str16()?,
        venue_order_id: r.str16()?,
        last_trade_id: r.str16()?,
        canonical: r.bytes16()?,
    };
    qty(e.filled_qty)?;
    if e.label.is_empty() {
        return Err(PayloadError::EmptyLabel);
    }
    bound("label", e.label.len(), WAL_LABEL_BYTES_MAX)?;
    bound("venue_order_id", e.venue_order_id.len(), WAL_TEXT_BYTES_MAX)?;
    bound("last_trade_id", e.last_trade_id.len(), WAL_TEXT_BYTES_MAX)?;
    bound("canonical", e.canonical.len(), WAL_CANONICAL_BYTES_MAX)?;
    Ok(e)
}

/// Encoded size of one checkpoint entry.
pub(crate) fn checkpoint_entry_len(e: &CheckpointEntry<'_>) -> usize {
    CKPT_ENTRY_FIXED
        + 2
        + e.label.len()
        + 2
        + e.venue_order_id.len()
        + 2
        + e.last_trade_id.len()
        + 2
        + e.canonical.len()
}

/// Encoded size of a checkpoint's fixed part.
pub(crate) const fn checkpoint_fixed_len() -> usize {
    CKPT_FIXED
}

/// Writes a checkpoint payload into `out` (exactly the computed length).
pub(crate) fn encode_checkpoint<'e>(
    out: &mut [u8],
    counts: &LedgerCounts,
    entries: impl ExactSizeIterator<Item = CheckpointEntry<'e>>,
) {
    let mut w = Writer { out, pos: 0 };
    let mut c = [0u8; LedgerCounts::ENCODED_BYTES];
    counts.encode(&mut c);
    w.raw(&c);
    w.u32(entries.len() as u32);
    for e in entries {
        w.u64(e.intent_hash);
        w.u8(e.state as u8);
        w.i64(e.filled_qty);
        w.u64(e.recorded_seq);
        w.i64(e.recorded_ms);
        w.u64(e.updated_seq);
        w.i64(e.updated_ms);
        w.bytes16(e.label.as_bytes());
        w.bytes16(e.venue_order_id.as_bytes());
        w.bytes16(e.last_trade_id.as_bytes());
        w.bytes16(e.canonical);
    }
    debug_assert_eq!(w.pos, w.out.len());
}

/// Wraps an already-encoded checkpoint payload for appending.
pub(crate) fn checkpoint_record(bytes: &[u8]) -> Result<Record<'_>, PayloadError> {
    Ok(Record::Checkpoint(CheckpointView::parse(bytes)?))
}

struct Writer<'o> {
    out: &'o mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.out[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn u8(&mut self, v: u8) {
        self.raw(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.raw(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.raw(&v.to_le_bytes());
    }
    fn bytes16(&mut self, b: &[u8]) {
        self.u16(b.len() as u16);
        self.raw(b);
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        let end = self.pos.checked_add(n).ok_or(PayloadError::Truncated)?;
        let s = self.b.get(self.pos..end).ok_or(PayloadError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PayloadError> {
        Ok(le_u16(self.take(2)?, 0))
    }
    fn u32(&mut self) -> Result<u32, PayloadError> {
        Ok(le_u32(self.take(4)?, 0))
    }
    fn u64(&mut self) -> Result<u64, PayloadError> {
        Ok(le_u64(self.take(8)?, 0))
    }
    fn i64(&mut self) -> Result<i64, PayloadError> {
        Ok(le_i64(self.take(8)?, 0))
    }
    fn bytes16(&mut self) -> Result<&'a [u8], PayloadError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn str16(&mut self) -> Result<&'a str, PayloadError> {
        std::str::from_utf8(self.bytes16()?).map_err(|_| PayloadError::NotUtf8)
    }
    fn finish(&self) -> Result<(), PayloadError> {
        match self.b.len() - self.pos {
            0 => Ok(()),
            n => Err(PayloadError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let recs = [
            Record::IntentRecorded { intent_hash: 1, label: "s4:a", canonical: b"\x00\x01" },
            Record::Sent { intent_hash: 2 },
            Record::Acknowledged { intent_hash: 3, venue_order_id: "ETH-123" },
            Record::PartiallyFilled { intent_hash: 4, filled_qty: 5, trade_id: "t1" },
            Record::Filled { intent_hash: 4, filled_qty: 10, trade_id: "" },
            Record::Cancelled { intent_hash: 5, filled_qty: 0 },
            Record::Rejected { intent_hash: 6, code: -10028, reason: "too_many_requests" },
            Record::Abandoned { intent_hash: 7, reason: "venue never saw it" },
            Record::OperatorAction {
                action: OperatorActionKind::ModeRelax,
                who: "ops",
                reason: "cleared",
            },
            Record::GroupEvent {
                group: "0123456789ab",
                event: "transition",
                detail: "from=Dispatched to=MixedFailed cause=leg_rejected",
            },
        ];
        for rec in recs {
            let n = rec.payload_len().unwrap();
            let mut buf = vec![0u8; n];
            rec.encode_payload(&mut buf);
            assert_eq!(Record::decode(rec.kind(), &buf), Ok(rec));
            // Every strict prefix is refused, never panics.
            for cut in 0..n {
                assert!(Record::decode(rec.kind(), &buf[..cut]).is_err());
            }
            let mut longer = buf.clone();
            longer.push(0);
            assert_eq!(Record::decode(rec.kind(), &longer), Err(PayloadError::Trailing(1)));
        }
    }

    #[test]
    fn bounds_are_enforced() {
        let long = "x".repeat(WAL_LABEL_BYTES_MAX + 1);
        let rec = Record::IntentRecorded { intent_hash: 1, label: &long, canonical: b"" };
        assert!(matches!(rec.payload_len(), Err(PayloadError::TooLong { field: "label", .. })));
        let rec = Record::IntentRecorded { intent_hash: 1, label: "", canonical: b"" };
        assert_eq!(rec.payload_len(), Err(PayloadError::EmptyLabel));
        let rec = Record::Filled { intent_hash: 1, filled_qty: -1, trade_id: "" };
        assert_eq!(rec.payload_len(), Err(PayloadError::NegativeQty(-1)));
    }
}
