//! The in-memory intent ledger: one entry per intent, rebuilt from the WAL at start and kept
//! in step with every append. Ordered views sort by hash or journal order, so every
//! iteration is deterministic whatever the memory layout.

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

/// Entries a ledger made by [`IntentLedger::with_capacity`] holds without allocating: the
/// WAL writer pre-sizes its ledger to this at open (`WalConfig::ledger_entries`). Reaching it
/// on the live path makes the writer checkpoint first (which prunes terminal entries); if
/// the ledger is still full of open intents the new intent is refused
/// ([`crate::wal::WalError::LedgerFull`], a caller error: nothing is written).
pub const LEDGER_ENTRIES_PRESIZED: usize = crate::limits::WAL_LEDGER_ENTRIES_PRESIZED;
/// Bytes reserved per entry for the venue order id and trade id texts.
const TEXT_BYTES_PRESIZED: usize = 64;
/// An empty slot of an index.
const EMPTY: u32 = u32::MAX;

/// The intent ledger.
///
/// # Layout (allocation-free after start-up)
/// Entries live densely in `entries` (no order); two open-addressing indexes (intent hash →
/// position, label → position; linear probing, load ≤ 1/2) find them. Entries pruned at a
/// checkpoint go to `spare` with their strings' capacity and are reused by the next intents,
/// so a ledger sized by [`Self::with_capacity`] allocates nothing per intent while it holds
/// at most that many entries. Ordered views (`iter` by hash, `in_doubt` in journal order,
/// checkpoints by hash) sort at call time: they are start-up, reconnect and checkpoint work.
#[derive(Debug, Clone, Default)]
pub struct IntentLedger {
    entries: Vec<IntentEntry>,
    spare: Vec<IntentEntry>,
    /// Strings for `venue_order_id` / `last_trade_id` (an entry's `None` has no buffer).
    spare_text: Vec<String>,
    by_hash: Vec<u32>,
    by_label: Vec<u32>,
    /// Non-terminal entries.
    open: usize,
    /// Entries held without growing (0: no pre-sizing).
    capacity: usize,
    counts: LedgerCounts,
}

impl PartialEq for IntentLedger {
    fn eq(&self, other: &Self) -> bool {
        self.counts == other.counts
            && self.open == other.open
            && self.entries.len() == other.entries.len()
            && self.entries.iter().all(|e| other.get(e.intent_hash) == Some(e))
    }
}

impl Eq for IntentLedger {}

fn mix(h: u64) -> u64 {
    // splitmix64 finaliser: intent hashes are already xxh64 output, labels are hashed below.
    let mut z = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn label_key(label: &str) -> u64 {
    // FNV-1a: stable and dependency-free (only ever an in-memory index key).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn blank_entry() -> IntentEntry {
    IntentEntry {
        intent_hash: 0,
        label: String::with_capacity(crate::limits::WAL_LABEL_BYTES_MAX),
        state: IntentState::Recorded,
        venue_order_id: None,
        filled_qty: 0,
        last_trade_id: None,
        recorded_seq: 0,
        recorded_ms: 0,
        updated_seq: 0,
        updated_ms: 0,
        canonical: Vec::with_capacity(crate::domain::intent::CANONICAL_BYTES_LEN_MAX),
        journaled: true,
    }
}

impl IntentLedger {
    /// An empty ledger (grows as needed; see [`Self::with_capacity`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty ledger that holds `n` entries without allocating: entries, their label,
    /// canonical-bytes and text buffers, and both indexes are allocated now.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        let mut l = Self::default();
        l.presize(n);
        l
    }

    /// Pre-sizes this ledger for `n` entries (see [`Self::with_capacity`]); entries already
    /// held are kept.
    pub fn presize(&mut self, n: usize) {
        self.capacity = self.capacity.max(n);
        let n = self.capacity;
        self.entries.reserve(n.saturating_sub(self.entries.len()));
        let want_spare = n.saturating_sub(self.entries.len());
        self.spare.reserve(n);
        while self.spare.len() < want_spare {
            self.spare.push(blank_entry());
        }
        self.spare_text.reserve(2 * n);
        while self.spare_text.len() < 2 * want_spare {
            self.spare_text.push(String::with_capacity(TEXT_BYTES_PRESIZED));
        }
        let slots = (2 * n.max(8)).next_power_of_two();
        if self.by_hash.len() < slots {
            self.rebuild_indexes(slots);
        }
    }

    /// Entries held without allocating (0 when not pre-sized).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether a pre-sized ledger is full (a new intent would grow it).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.capacity > 0 && self.entries.len() >= self.capacity
    }

    fn find_hash(&self, intent_hash: u64) -> Option<usize> {
        if self.by_hash.is_empty() {
            return None;
        }
        let mask = self.by_hash.len() - 1;
        let mut i = (mix(intent_hash) as usize) & mask;
        loop {
            let at = self.by_hash[i];
            if at == EMPTY {
                return None;
            }
            if self.entries[at as usize].intent_hash == intent_hash {
                return Some(at as usize);
            }
            i = (i + 1) & mask;
        }
    }

    fn find_label(&self, label: &str) -> Option<usize> {
        if self.by_label.is_empty() {
            return None;
        }
        let mask = self.by_label.len() - 1;
        let mut i = (mix(label_key(label)) as usize) & mask;
        loop {
            let at = self.by_label[i];
            if at == EMPTY {
                return None;
            }
            if self.entries[at as usize].label == label {
                return Some(at as usize);
            }
            i = (i + 1) & mask;
        }
    }

    fn index_insert(index: &mut [u32], key: u64, at: usize) {
        let mask = index.len() - 1;
        let mut i = (mix(key) as usize) & mask;
        while index[i] != EMPTY {
            i = (i + 1) & mask;
        }
        index[i] = u32::try_from(at).unwrap_or(EMPTY);
    }

    /// Rebuilds both indexes with `slots` slots (a power of two) over `entries`.
    fn rebuild_indexes(&mut self, slots: usize) {
        debug_assert!(slots.is_power_of_two() && slots > 2 * self.entries.len());
        self.by_hash.clear();
        self.by_hash.resize(slots, EMPTY);
        self.by_label.clear();
        self.by_label.resize(slots, EMPTY);
        for (at, e) in self.entries.iter().enumerate() {
            Self::index_insert(&mut self.by_hash, e.intent_hash, at);
            Self::index_insert(&mut self.by_label, label_key(&e.label), at);
        }
    }

    /// Takes a blank entry (a recycled one when any is spare) and indexes it.
    fn push_entry(&mut self, fill: impl FnOnce(&mut IntentEntry)) {
        if 2 * (self.entries.len() + 1) > self.by_hash.len() {
            // Past the pre-sized capacity (or never pre-sized): grow, allocating.
            let slots = (4 * (self.entries.len() + 1)).next_power_of_two().max(16);
            self.rebuild_indexes(slots);
        }
        let mut e = self.spare.pop().unwrap_or_else(blank_entry);
        fill(&mut e);
        let at = self.entries.len();
        Self::index_insert(&mut self.by_hash, e.intent_hash, at);
        Self::index_insert(&mut self.by_label, label_key(&e.label), at);
        self.entries.push(e);
    }

    /// Local idempotency: whether this intent hash is already journaled (NOOP if so).
    #[must_use]
    pub fn contains(&self, intent_hash: u64) -> bool {
        self.find_hash(intent_hash).is_some()
    }

    /// The entry for an intent.
    #[must_use]
    pub fn get(&self, intent_hash: u64) -> Option<&IntentEntry> {
        self.find_hash(intent_hash).map(|at| &self.entries[at])
    }

    /// The entry whose venue label is `label`.
    #[must_use]
    pub fn by_label(&self, label: &str) -> Option<&IntentEntry> {
        self.find_label(label).map(|at| &self.entries[at])
    }

    /// Every non-terminal intent (recorded, sent, acknowledged, partially filled), in journal
    /// order (recorded seq, then hash): after a restart each must be resolved with the venue
    /// by label before any send. Sorts at call time (start-up and reconnect work).
    pub fn in_doubt(&self) -> impl Iterator<Item = &IntentEntry> + '_ {
        let mut v: Vec<&IntentEntry> =
            self.entries.iter().filter(|e| !e.state.is_terminal()).collect();
        v.sort_unstable_by_key(|e| (e.recorded_seq, e.intent_hash));
        v.into_iter()
    }

    /// Number of non-terminal intents.
    #[must_use]
    pub fn in_doubt_len(&self) -> usize {
        self.open
    }

    /// Every entry held (non-terminal ones plus terminal ones since the last checkpoint), by
    /// hash. Sorts at call time.
    pub fn iter(&self) -> impl Iterator<Item = &IntentEntry> + '_ {
        let mut v: Vec<&IntentEntry> = self.entries.iter().collect();
        v.sort_unstable_by_key(|e| e.intent_hash);
        v.into_iter()
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
                if self.contains(intent_hash) {
                    return Err(LedgerError::DuplicateIntent { intent_hash });
                }
                if let Some(owner) = self.by_label(label) {
                    return Err(LedgerError::LabelInUse {
                        label: label.to_owned(),
                        intent_hash: owner.intent_hash,
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
                let e = self.get(intent_hash).ok_or(LedgerError::UnknownIntent { intent_hash })?;
                next_state(e, rec, to).map(|_| ())
            }
        }
    }

    /// Marks an existing entry `journaled = false` (its record is not known durable); it is
    /// then never checkpointed. Returns false when the intent is unknown.
    pub(crate) fn mark_unjournaled(&mut self, intent_hash: u64) -> bool {
        self.find_hash(intent_hash).is_some_and(|at| {
            self.entries[at].journaled = false;
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
                self.push_entry(|e| {
                    e.intent_hash = intent_hash;
                    e.label.clear();
                    e.label.push_str(label);
                    e.state = IntentState::Recorded;
                    e.venue_order_id = None;
                    e.filled_qty = 0;
                    e.last_trade_id = None;
                    e.recorded_seq = seq;
                    e.recorded_ms = ts_ms;
                    e.updated_seq = seq;
                    e.updated_ms = ts_ms;
                    e.canonical.clear();
                    e.canonical.extend_from_slice(canonical);
                    e.journaled = journaled;
                });
                self.open += 1;
                self.counts.entered[IntentState::Recorded as usize] += 1;
            }
            Record::OperatorAction { .. } => self.counts.operator_actions += 1,
            Record::Checkpoint(_) | Record::GroupEvent { .. } => {}
            _ => {
                let (Some(intent_hash), Some(to)) = (rec.intent_hash(), rec.target_state()) else {
                    return Ok(());
                };
                let Some(at) = self.find_hash(intent_hash) else {
                    return Err(LedgerError::UnknownIntent { intent_hash });
                };
                let spare_text = &mut self.spare_text;
                let e = &mut self.entries[at];
                let new_state = next_state(e, rec, to)?;
                match *rec {
                    Record::Acknowledged { venue_order_id, .. } => {
                        set_text(&mut e.venue_order_id, venue_order_id, spare_text);
                    }
                    Record::PartiallyFilled { filled_qty, trade_id, .. }
                    | Record::Filled { filled_qty, trade_id, .. } => {
                        e.filled_qty = filled_qty;
                        if !trade_id.is_empty() {
                            set_text(&mut e.last_trade_id, trade_id, spare_text);
                        }
                    }
                    Record::Cancelled { filled_qty, .. } => e.filled_qty = filled_qty,
                    _ => {}
                }
                if new_state != e.state {
                    self.counts.entered[new_state as usize] += 1;
                }
                let was_open = !e.state.is_terminal();
                e.state = new_state;
                e.updated_seq = seq;
                e.updated_ms = ts_ms;
                e.journaled &= journaled;
                if new_state.is_terminal() {
                    // Kept (emptied, capacity retained) until the next checkpoint prunes it.
                    e.canonical.clear();
                    if was_open {
                        self.open -= 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// The checkpoint entries: every journaled non-terminal intent, by ascending hash.
    pub(crate) fn checkpoint_entries(
        &self,
    ) -> impl ExactSizeIterator<Item = CheckpointEntry<'_>> + Clone + '_ {
        let mut v: Vec<&IntentEntry> =
            self.entries.iter().filter(|e| !e.state.is_terminal() && e.journaled).collect();
        v.sort_unstable_by_key(|e| e.intent_hash);
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
    /// alike, so a restarted ledger equals the one that was running). Their buffers are kept
    /// for reuse.
    pub(crate) fn prune_terminal(&mut self) {
        let mut at = 0;
        let mut pruned = false;
        while at < self.entries.len() {
            if self.entries[at].state.is_terminal() {
                let mut e = self.entries.swap_remove(at);
                if let Some(t) = e.venue_order_id.take() {
                    self.spare_text.push(t);
                }
                if let Some(t) = e.last_trade_id.take() {
                    self.spare_text.push(t);
                }
                self.spare.push(e);
                pruned = true;
            } else {
                at += 1;
            }
        }
        if pruned {
            let slots = self.by_hash.len().max(16);
            self.rebuild_indexes(slots);
        }
    }

    /// A ledger holding exactly a checkpoint's snapshot.
    pub(crate) fn from_checkpoint(view: &CheckpointView<'_>) -> Self {
        let mut l = Self { counts: view.counts(), ..Self::default() };
        for c in view.entries() {
            l.push_entry(|e| {
                e.intent_hash = c.intent_hash;
                e.label.clear();
                e.label.push_str(c.label);
                e.state = c.state;
                e.venue_order_id =
                    (!c.venue_order_id.is_empty()).then(|| c.venue_order_id.to_owned());
                e.filled_qty = c.filled_qty;
                e.last_trade_id = (!c.last_trade_id.is_empty()).then(|| c.last_trade_id.to_owned());
                e.recorded_seq = c.recorded_seq;
                e.recorded_ms = c.recorded_ms;
                e.updated_seq = c.updated_seq;
                e.updated_ms = c.updated_ms;
                e.canonical.clear();
                e.canonical.extend_from_slice(c.canonical);
                e.journaled = true;
            });
            if !c.state.is_terminal() {
                l.open += 1;
            }
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

/// Stores `v`, reusing the existing string's capacity, or a spare one (no allocation once
/// it is large enough).
fn set_text(slot: &mut Option<String>, v: &str, spare: &mut Vec<String>) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(v);
        }
        None => {
            let mut s = spare.pop().unwrap_or_default();
            s.clear();
            s.push_str(v);
            *slot = Some(s);
        }
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
