//! The in-memory intent ledger: one entry per intent, rebuilt from the WAL at start and kept
//! in step with every append. Ordered maps only, so every iteration is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use super::record::{CheckpointEntry, CheckpointView, Record};

/// Life-cycle state of an intent. Codes are stored in checkpoints; never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum IntentState {
    /// Journaled; maybe sent, maybe not.
    Recorded = 0,
    /// Written to the venue socket; no answer yet.
    Sent = 1,
    /// The venue acknowledged it.
    Acknowledged = 2,
    /// Partly filled, still working.
    PartiallyFilled = 3,
    /// Terminal: completely filled.
    Filled = 4,
    /// Terminal: cancelled.
    Cancelled = 5,
    /// Terminal: rejected by the venue.
    Rejected = 6,
    /// Terminal: the venue never saw it; never resent.
    Abandoned = 7,
}

impl IntentState {
    /// Every state, in code order.
    pub const ALL: [Self; 8] = [
        Self::Recorded,
        Self::Sent,
        Self::Acknowledged,
        Self::PartiallyFilled,
        Self::Filled,
        Self::Cancelled,
        Self::Rejected,
        Self::Abandoned,
    ];

    /// The state for a code, if it is one.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// Whether nothing more can happen to the intent.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Cancelled | Self::Rejected | Self::Abandoned)
    }

    /// Progress rank: 0 recorded, 1 sent, 2 acknowledged, 3 partially filled, 4 terminal.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Self::Recorded => 0,
            Self::Sent => 1,
            Self::Acknowledged => 2,
            Self::PartiallyFilled => 3,
            Self::Filled | Self::Cancelled | Self::Rejected | Self::Abandoned => 4,
        }
    }

    /// Stable display name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "Recorded",
            Self::Sent => "Sent",
            Self::Acknowledged => "Acknowledged",
            Self::PartiallyFilled => "PartiallyFilled",
            Self::Filled => "Filled",
            Self::Cancelled => "Cancelled",
            Self::Rejected => "Rejected",
            Self::Abandoned => "Abandoned",
        }
    }
}

/// Running totals; carried across checkpoints so they survive pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerCounts {
    /// How many intents ever entered each state, indexed by state code.
    pub entered: [u64; 8],
    /// Operator actions journaled.
    pub operator_actions: u64,
}

impl LedgerCounts {
    /// Encoded size: nine little-endian `u64`.
    pub const ENCODED_BYTES: usize = 9 * 8;

    /// How many intents ever entered `state`.
    #[must_use]
    pub fn entered(&self, state: IntentState) -> u64 {
        self.entered[state as usize]
    }

    pub(crate) fn encode(&self, out: &mut [u8; Self::ENCODED_BYTES]) {
        for (i, v) in self.entered.iter().chain(std::iter::once(&self.operator_actions)).enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    pub(crate) fn decode(b: &[u8]) -> Self {
        let mut c = Self::default();
        for (i, slot) in c.entered.iter_mut().enumerate() {
            *slot = super::format::le_u64(b, i * 8);
        }
        c.operator_actions = super::format::le_u64(b, 64);
        c
    }
}

/// Everything the ledger knows about one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentEntry {
    /// Ledger key.
    pub intent_hash: u64,
    /// Venue label.
    pub label: String,
    /// Latest life-cycle state.
    pub state: IntentState,
    /// Venue order id once acknowledged.
    pub venue_order_id: Option<String>,
    /// Cumulative filled quantity (qty steps).
    pub filled_qty: i64,
    /// Venue trade id of the latest fill, if any was given.
    pub last_trade_id: Option<String>,
    /// Sequence number of the `IntentRecorded` record (0 if unjournaled).
    pub recorded_seq: u64,
    /// Timestamp of the `IntentRecorded` record.
    pub recorded_ms: i64,
    /// Sequence number of the latest record (0 if unjournaled).
    pub updated_seq: u64,
    /// Timestamp of the latest record.
    pub updated_ms: i64,
    /// Canonical intent bytes (kept while non-terminal; emptied when terminal).
    pub canonical: Vec<u8>,
    /// False when the WAL could not append and this entry exists only in memory
    /// (see `Wal::note_unjournaled`). Such entries are never checkpointed.
    pub journaled: bool,
}

/// Why a record cannot be applied to the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// `IntentRecorded` for a hash already in the ledger (local idempotency: caller must NOOP).
    #[error("intent {intent_hash:#018x} is already recorded")]
    DuplicateIntent {
        /// The hash.
        intent_hash: u64,
    },
    /// `IntentRecorded` with a label another intent already uses.
    #[error("label {label:?} is already used by intent {intent_hash:#018x}")]
    LabelInUse {
        /// The label.
        label: String,
        /// The intent that owns it.
        intent_hash: u64,
    },
    /// A life-cycle record for an intent the ledger does not hold.
    #[error("no intent {intent_hash:#018x} in the ledger")]
    UnknownIntent {
        /// The hash.
        intent_hash: u64,
    },
    /// A life-cycle step the state machine does not allow.
    #[error("intent {intent_hash:#018x}: illegal transition {from:?} -> {to:?}")]
    IllegalTransition {
        /// The intent.
        intent_hash: u64,
        /// Its state.
        from: IntentState,
        /// The requested state.
        to: IntentState,
    },
    /// A fill record with a smaller cumulative quantity than already known.
    #[error("intent {intent_hash:#018x}: filled quantity went backwards ({had} -> {got})")]
    FillWentBackwards {
        /// The intent.
        intent_hash: u64,
        /// Known cumulative fill.
        had: i64,
        /// Record's cumulative fill.
        got: i64,
    },
    /// A checkpoint whose snapshot differs from the ledger replayed up to it.
    #[error("checkpoint disagrees with the replayed ledger: {0}")]
    CheckpointMismatch(&'static str),
}

/// The intent ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentLedger {
    entries: BTreeMap<u64, IntentEntry>,
    by_label: BTreeMap<String, u64>,
    /// Non-terminal intents by (recorded_seq, hash): `in_doubt` iterates in journal order.
    open: BTreeSet<(u64, u64)>,
    counts: LedgerCounts,
}

impl IntentLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Local idempotency: whether this intent hash is already journaled (NOOP if so).
    #[must_use]
    pub fn contains(&self, intent_hash: u64) -> bool {
        self.entries.contains_key(&intent_hash)
    }

    /// The entry for an intent.
    #[must_use]
    pub fn get(&self, intent_hash: u64) -> Option<&IntentEntry> {
        self.entries.get(&intent_hash)
    }

    /// The entry whose venue label is `label`.
    #[must_use]
    pub fn by_label(&self, label: &str) -> Option<&IntentEntry> {
        self.by_label.get(label).and_then(|h| self.entries.get(h))
    }

    /// Every non-terminal intent (recorded, sent, acknowledged, partially filled), in journal
    /// order: after a restart each must be resolved with the venue by label before any send.
    pub fn in_doubt(&self) -> impl Iterator<Item = &IntentEntry> + '_ {
        self.open.iter().filter_map(|(_, h)| self.entries.get(h))
    }

    /// Number of non-terminal intents.
    #[must_use]
    pub fn in_doubt_len(&self) -> usize {
        self.open.len()
    }

    /// Every entry held (non-terminal ones plus terminal ones since the last checkpoint), by hash.
    pub fn iter(&self) -> impl Iterator<Item = &IntentEntry> + '_ {
        self.entries.values()
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entries are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Running totals.
    #[must_use]
    pub fn counts(&self) -> LedgerCounts {
        self.counts
    }

    /// Checks that `rec` can be applied, without changing anything.
    ///
    /// # Errors
    /// [`LedgerError`] naming the violated rule.
    pub fn check(&self, rec: &Record<'_>) -> Result<(), LedgerError> {
        match *rec {
            Record::IntentRecorded { intent_hash, label, .. } => {
                if self.entries.contains_key(&intent_hash) {
                    return Err(LedgerError::DuplicateIntent { intent_hash });
                }
                if let Some(&owner) = self.by_label.get(label) {
                    return Err(LedgerError::LabelInUse {
                        label: label.to_owned(),
                        intent_hash: owner,
                    });
                }
                Ok(())
            }
            Record::OperatorAction { .. } | Record::Checkpoint(_) | Record::GroupEvent { .. } => {
                Ok(())
            }
            _ => {
                let (Some(intent_hash), Some(to)) = (rec.intent_hash(), rec.target_state()) else {
                    return Ok(());
                };
                let e = self
                    .entries
                    .get(&intent_hash)
                    .ok_or(LedgerError::UnknownIntent { intent_hash })?;
                next_state(e, rec, to).map(|_| ())
            }
        }
    }

    /// Marks an existing entry `journaled = false` (its record is not known durable); it is
    /// then never checkpointed. Returns false when the intent is unknown.
    pub(crate) fn mark_unjournaled(&mut self, intent_hash: u64) -> bool {
        self.entries.get_mut(&intent_hash).is_some_and(|e| {
            e.journaled = false;
            true
        })
    }

    /// Applies a journaled record (`seq`, `ts_ms` from its header).
    ///
    /// # Errors
    /// As [`check`](Self::check); nothing changes on error.
    pub fn apply(&mut self, seq: u64, ts_ms: i64, rec: &Record<'_>) -> Result<(), LedgerError> {
        self.apply_inner(seq, ts_ms, rec, true)
    }

    pub(crate) fn apply_inner(
        &mut self,
        seq: u64,
        ts_ms: i64,
        rec: &Record<'_>,
        journaled: bool,
    ) -> Result<(), LedgerError> {
        self.check(rec)?;
        match *rec {
            Record::IntentRecorded { intent_hash, label, canonical } => {
                self.entries.insert(
                    intent_hash,
                    IntentEntry {
                        intent_hash,
                        label: label.to_owned(),
                        state: IntentState::Recorded,
                        venue_order_id: None,
                        filled_qty: 0,
                        last_trade_id: None,
                        recorded_seq: seq,
                        recorded_ms: ts_ms,
                        updated_seq: seq,
                        updated_ms: ts_ms,
                        canonical: canonical.to_vec(),
                        journaled,
                    },
                );
                self.by_label.insert(label.to_owned(), intent_hash);
                self.open.insert((seq, intent_hash));
                self.counts.entered[IntentState::Recorded as usize] += 1;
            }
            Record::OperatorAction { .. } => self.counts.operator_actions += 1,
            Record::Checkpoint(_) | Record::GroupEvent { .. } => {}
            _ => {
                let (Some(intent_hash), Some(to)) = (rec.intent_hash(), rec.target_state()) else {
                    return Ok(());
                };
                let Some(e) = self.entries.get_mut(&intent_hash) else {
                    return Err(LedgerError::UnknownIntent { intent_hash });
                };
                let new_state = next_state(e, rec, to)?;
                match *rec {
                    Record::Acknowledged { venue_order_id, .. } => {
                        set_text(&mut e.venue_order_id, venue_order_id);
                    }
                    Record::PartiallyFilled { filled_qty, trade_id, .. }
                    | Record::Filled { filled_qty, trade_id, .. } => {
                        e.filled_qty = filled_qty;
                        if !trade_id.is_empty() {
                            set_text(&mut e.last_trade_id, trade_id);
                        }
                    }
                    Record::Cancelled { filled_qty, .. } => e.filled_qty = filled_qty,
                    _ => {}
                }
                if new_state != e.state {
                    self.counts.entered[new_state as usize] += 1;
                }
                e.state = new_state;
                e.updated_seq = seq;
                e.updated_ms = ts_ms;
                e.journaled &= journaled;
                if new_state.is_terminal() {
                    self.open.remove(&(e.recorded_seq, intent_hash));
                    e.canonical = Vec::new();
                }
            }
        }
        Ok(())
    }

    /// The checkpoint entries: every journaled non-terminal intent, by ascending hash.
    pub(crate) fn checkpoint_entries(
        &self,
    ) -> impl ExactSizeIterator<Item = CheckpointEntry<'_>> + Clone + '_ {
        let v: Vec<&IntentEntry> =
            self.entries.values().filter(|e| !e.state.is_terminal() && e.journaled).collect();
        v.into_iter().map(|e| CheckpointEntry {
            intent_hash: e.intent_hash,
            state: e.state,
            filled_qty: e.filled_qty,
            recorded_seq: e.recorded_seq,
            recorded_ms: e.recorded_ms,
            updated_seq: e.updated_seq,
            updated_ms: e.updated_ms,
            label: &e.label,
            venue_order_id: e.venue_order_id.as_deref().unwrap_or(""),
            last_trade_id: e.last_trade_id.as_deref().unwrap_or(""),
            canonical: &e.canonical,
        })
    }

    /// Drops terminal entries (done right after each checkpoint, on the live path and on replay
    /// alike, so a restarted ledger equals the one that was running).
    pub(crate) fn prune_terminal(&mut self) {
        let by_label = &mut self.by_label;
        self.entries.retain(|_, e| {
            let keep = !e.state.is_terminal();
            if !keep {
                by_label.remove(&e.label);
            }
            keep
        });
    }

    /// A ledger holding exactly a checkpoint's snapshot.
    pub(crate) fn from_checkpoint(view: &CheckpointView<'_>) -> Self {
        let mut l = Self { counts: view.counts(), ..Self::default() };
        for c in view.entries() {
            l.entries.insert(
                c.intent_hash,
                IntentEntry {
                    intent_hash: c.intent_hash,
                    label: c.label.to_owned(),
                    state: c.state,
                    venue_order_id: (!c.venue_order_id.is_empty())
                        .then(|| c.venue_order_id.to_owned()),
                    filled_qty: c.filled_qty,
                    last_trade_id: (!c.last_trade_id.is_empty())
                        .then(|| c.last_trade_id.to_owned()),
                    recorded_seq: c.recorded_seq,
                    recorded_ms: c.recorded_ms,
                    updated_seq: c.updated_seq,
                    updated_ms: c.updated_ms,
                    canonical: c.canonical.to_vec(),
                    journaled: true,
                },
            );
            l.by_label.insert(c.label.to_owned(), c.intent_hash);
            l.open.insert((c.recorded_seq, c.intent_hash));
        }
        l
    }

    /// Cross-check on replay: a checkpoint met mid-stream must equal the ledger replayed so far.
    pub(crate) fn matches_checkpoint(&self, view: &CheckpointView<'_>) -> Result<(), LedgerError> {
        if view.counts() != self.counts {
            return Err(LedgerError::CheckpointMismatch("running counts differ"));
        }
        let mine = self.checkpoint_entries();
        if mine.len() != view.entry_count() {
            return Err(LedgerError::CheckpointMismatch("number of non-terminal intents differs"));
        }
        if !mine.zip(view.entries()).all(|(a, b)| a == b) {
            return Err(LedgerError::CheckpointMismatch("a non-terminal intent differs"));
        }
        Ok(())
    }
}

/// Stores `v`, reusing the existing string's capacity (no allocation once it is large enough).
fn set_text(slot: &mut Option<String>, v: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(v);
        }
        None => *slot = Some(v.to_owned()),
    }
}

fn next_state(
    e: &IntentEntry,
    rec: &Record<'_>,
    to: IntentState,
) -> Result<IntentState, LedgerError> {
    let intent_hash = e.intent_hash;
    let from = e.state;
    let illegal = Err(LedgerError::IllegalTransition { intent_hash, from, to });
    if from.is_terminal() {
        return illegal;
    }
    if let Record::PartiallyFilled { filled_qty, .. }
    | Record::Filled { filled_qty, .. }
    | Record::Cancelled { filled_qty, .. } = *rec
    {
        if filled_qty < e.filled_qty {
            return Err(LedgerError::FillWentBackwards {
                intent_hash,
                had: e.filled_qty,
                got: filled_qty,
            });
        }
    }
    if to.rank() > from.rank() {
        return Ok(to);
    }
    match (from, to) {
        // More fills while still working.
        (IntentState::PartiallyFilled, IntentState::PartiallyFilled) => Ok(from),
        // A late acknowledgement after a fill report: keep the state, learn the order id.
        (IntentState::PartiallyFilled, IntentState::Acknowledged) => Ok(from),
        _ => illegal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(h: u64, label: &str) -> Record<'_> {
        Record::IntentRecorded { intent_hash: h, label, canonical: b"c" }
    }

    #[test]
    fn lifecycle_and_in_doubt() {
        let mut l = IntentLedger::new();
        l.apply(1, 10, &rec(7, "s4:a")).unwrap();
        l.apply(2, 11, &rec(9, "s4:b")).unwrap();
        assert!(l.contains(7));
        assert_eq!(l.by_label("s4:b").unwrap().intent_hash, 9);
        assert_eq!(l.in_doubt().map(|e| e.intent_hash).collect::<Vec<_>>(), vec![7, 9]);
        l.apply(3, 12, &Record::Sent { intent_hash: 7 }).unwrap();
        l.apply(4, 13, &Record::Acknowledged { intent_hash: 7, venue_order_id: "o1" }).unwrap();
        l.apply(5, 14, &Record::PartiallyFilled { intent_hash: 7, filled_qty: 2, trade_id: "t" })
            .unwrap();
        l.apply(6, 15, &Record::PartiallyFilled { intent_hash: 7, filled_qty: 3, trade_id: "u" })
            .unwrap();
        assert_eq!(
            l.apply(
                7,
                16,
                &Record::PartiallyFilled { intent_hash: 7, filled_qty: 1, trade_id: "" }
            ),
            Err(LedgerError::FillWentBackwards { intent_hash: 7, had: 3, got: 1 })
        );
        l.apply(7, 16, &Record::Filled { intent_hash: 7, filled_qty: 5, trade_id: "v" }).unwrap();
        let e = l.get(7).unwrap();
        assert_eq!(
            (e.state, e.filled_qty, e.venue_order_id.as_deref()),
            (IntentState::Filled, 5, Some("o1"))
        );
        assert!(e.canonical.is_empty());
        assert_eq!(l.in_doubt().map(|e| e.intent_hash).collect::<Vec<_>>(), vec![9]);
        assert!(matches!(
            l.apply(8, 17, &Record::Sent { intent_hash: 7 }),
            Err(LedgerError::IllegalTransition { .. })
        ));
        assert_eq!(
            l.apply(8, 17, &rec(7, "s4:z")),
            Err(LedgerError::DuplicateIntent { intent_hash: 7 })
        );
        assert!(matches!(l.apply(8, 17, &rec(8, "s4:b")), Err(LedgerError::LabelInUse { .. })));
        assert_eq!(
            l.apply(8, 17, &Record::Sent { intent_hash: 1 }),
            Err(LedgerError::UnknownIntent { intent_hash: 1 })
        );
        l.apply(8, 17, &Record::Abandoned { intent_hash: 9, reason: "absent" }).unwrap();
        assert_eq!(l.in_doubt_len(), 0);
        assert_eq!(l.counts().entered(IntentState::Recorded), 2);
        assert_eq!(l.counts().entered(IntentState::Filled), 1);
        l.prune_terminal();
        assert!(l.is_empty() && l.by_label("s4:a").is_none());
    }

    #[test]
    fn state_codes_round_trip() {
        for s in IntentState::ALL {
            assert_eq!(IntentState::from_code(s as u8), Some(s));
        }
        assert_eq!(IntentState::from_code(8), None);
    }
}
