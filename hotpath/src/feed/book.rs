//! An L2 order book with `change_id` continuity.
//!
//! Levels live in two sorted arrays allocated once at construction (bids best-first
//! descending, asks best-first ascending). Applying an update never allocates: inserts
//! shift within the reserved capacity, and a full side evicts its worst level.
//!
//! Continuity (protocol §9.2): each change's `prev_change_id` must equal the last applied
//! `change_id`. On mismatch the book is marked [`BookState::Gapped`] and
//! [`L2Book::resubscribe_needed`] is raised; nothing more is applied until a new snapshot.

use crate::venue::messages::{BookKind, BookUpdate, Level, LevelAction};
use crate::venue::Decimal8;

/// Levels per side kept by default (Deribit's raw option books are far shallower).
pub const BOOK_DEPTH_DEFAULT: usize = 256;
/// Longest instrument name stored inline (Deribit names are ≤ ~32 bytes).
pub const INSTRUMENT_NAME_MAX: usize = 64;

/// Whether the book can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookState {
    /// No snapshot yet.
    Empty,
    /// Snapshot received and every change since then chained.
    Live,
    /// A change did not chain (or was inconsistent): discard, resubscribe.
    Gapped,
}

/// Why an update was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The update is for a different instrument.
    #[error("update for another instrument")]
    InstrumentMismatch,
    /// `prev_change_id` did not match the last applied `change_id`.
    #[error("change-id gap: expected prev {expected}, got {got}")]
    Gap {
        /// Our last change id.
        expected: u64,
        /// The update's prev change id.
        got: u64,
    },
    /// A change arrived while there is no live snapshot (empty or gapped).
    #[error("change while the book is not live")]
    NotLive,
    /// A `change`/`delete` for a price the (untruncated) book does not hold, or a `new`
    /// for one it does: the local book no longer matches the venue's.
    #[error("level action inconsistent with the book")]
    Inconsistent,
    /// A change without `prev_change_id`.
    #[error("change without prev_change_id")]
    MissingPrev,
}

impl BookError {
    /// Upper-snake name for logs and `stoic replay`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::InstrumentMismatch => "INSTRUMENT_MISMATCH",
            Self::Gap { .. } => "GAP",
            Self::NotLive => "NOT_LIVE",
            Self::Inconsistent => "INCONSISTENT",
            Self::MissingPrev => "MISSING_PREV",
        }
    }
}

/// One side's levels, sorted best first, in a buffer reserved up front.
#[derive(Debug)]
struct Side {
    levels: Vec<(Decimal8, Decimal8)>,
    descending: bool,
    capacity: usize,
    /// Levels evicted or refused because the side was full since the last snapshot.
    truncated: bool,
}

impl Side {
    fn new(capacity: usize, descending: bool) -> Self {
        Self { levels: Vec::with_capacity(capacity), descending, capacity, truncated: false }
    }

    fn clear(&mut self) {
        self.levels.clear();
        self.truncated = false;
    }

    /// Position of `price`: Ok(index) when present, Err(insertion index) otherwise.
    fn find(&self, price: Decimal8) -> Result<usize, usize> {
        if self.descending {
            self.levels.binary_search_by(|(p, _)| price.cmp(p))
        } else {
            self.levels.binary_search_by(|(p, _)| p.cmp(&price))
        }
    }

    /// Sets the total at `price` (inserting when absent); amount zero removes.
    fn set(&mut self, price: Decimal8, amount: Decimal8) {
        match self.find(price) {
            Ok(i) if amount.is_zero() => {
                self.levels.remove(i);
            }
            Ok(i) => self.levels[i].1 = amount,
            Err(_) if amount.is_zero() => {}
            Err(i) => {
                if self.levels.len() == self.capacity {
                    self.truncated = true;
                    if i == self.levels.len() {
                        return; // worse than everything kept: drop it
                    }
                    self.levels.pop(); // evict the worst to make room
                }
                debug_assert!(self.levels.len() < self.capacity);
                self.levels.insert(i, (price, amount));
            }
        }
    }

    fn apply(&mut self, l: &Level) -> Result<(), BookError> {
        let present = self.find(l.price).is_ok();
        match l.action {
            LevelAction::New if present => Err(BookError::Inconsistent),
            LevelAction::Change | LevelAction::Delete if !present && !self.truncated => {
                Err(BookError::Inconsistent)
            }
            LevelAction::Delete => {
                self.set(l.price, Decimal8::ZERO);
                Ok(())
            }
            _ => {
                self.set(l.price, l.amount);
                Ok(())
            }
        }
    }

    fn best(&self) -> Option<(Decimal8, Decimal8)> {
        self.levels.first().copied()
    }
}

/// A local L2 book for one instrument.
#[derive(Debug)]
pub struct L2Book {
    name: [u8; INSTRUMENT_NAME_MAX],
    name_len: usize,
    bids: Side,
    asks: Side,
    last_change_id: Option<u64>,
    last_timestamp_ms: i64,
    state: BookState,
    resubscribe_needed: bool,
    gaps_total: u64,
    updates_total: u64,
}

impl L2Book {
    /// A book for `instrument` keeping `depth` levels per side (allocated now).
    ///
    /// # Panics
    /// When `instrument` is longer than [`INSTRUMENT_NAME_MAX`] or `depth` is zero:
    /// both are configuration bugs, caught at start-up.
    #[must_use]
    pub fn new(instrument: &str, depth: usize) -> Self {
        assert!(instrument.len() <= INSTRUMENT_NAME_MAX, "instrument name too long");
        assert!(depth > 0, "book depth must be positive");
        let mut name = [0u8; INSTRUMENT_NAME_MAX];
        name[..instrument.len()].copy_from_slice(instrument.as_bytes());
        Self {
            name,
            name_len: instrument.len(),
            bids: Side::new(depth, true),
            asks: Side::new(depth, false),
            last_change_id: None,
            last_timestamp_ms: 0,
            state: BookState::Empty,
            resubscribe_needed: false,
            gaps_total: 0,
            updates_total: 0,
        }
    }

    /// The instrument.
    #[must_use]
    pub fn instrument(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("")
    }

    /// Applies a decoded book message.
    ///
    /// # Errors
    /// [`BookError`]; a gap or inconsistency also marks the book gapped and raises
    /// [`Self::resubscribe_needed`].
    pub fn apply(&mut self, u: &BookUpdate<'_>) -> Result<(), BookError> {
        if u.instrument_name != self.instrument() {
            return Err(BookError::InstrumentMismatch);
        }
        match u.kind {
            BookKind::Snapshot | BookKind::TopN => {
                self.bids.clear();
                self.asks.clear();
                let r = self.apply_levels(u);
                if r.is_err() {
                    return self.gap(r);
                }
                self.last_change_id = Some(u.change_id);
                self.last_timestamp_ms = u.timestamp;
                self.state = BookState::Live;
                self.resubscribe_needed = false;
                self.updates_total += 1;
                Ok(())
            }
            BookKind::Change => {
                if self.state != BookState::Live {
                    return Err(BookError::NotLive);
                }
                let Some(prev) = u.prev_change_id else {
                    return self.gap(Err(BookError::MissingPrev));
                };
                let expected = self.last_change_id.unwrap_or(0);
                if prev != expected {
                    return self.gap(Err(BookError::Gap { expected, got: prev }));
                }
                let r = self.apply_levels(u);
                if r.is_err() {
                    return self.gap(r);
                }
                self.last_change_id = Some(u.change_id);
                self.last_timestamp_ms = u.timestamp;
                self.updates_total += 1;
                Ok(())
            }
        }
    }

    fn apply_levels(&mut self, u: &BookUpdate<'_>) -> Result<(), BookError> {
        for l in u.bids {
            self.bids.apply(l)?;
        }
        for l in u.asks {
            self.asks.apply(l)?;
        }
        Ok(())
    }

    fn gap(&mut self, r: Result<(), BookError>) -> Result<(), BookError> {
        self.state = BookState::Gapped;
        self.resubscribe_needed = true;
        self.gaps_total += 1;
        r
    }

    /// Call after the resubscribe went out: clears the flag; the book stays gapped until
    /// the new snapshot arrives.
    pub fn resubscribe_sent(&mut self) {
        self.resubscribe_needed = false;
    }

    /// Current state.
    #[must_use]
    pub const fn state(&self) -> BookState {
        self.state
    }

    /// True when the book is live (a usable picture of the venue's book).
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.state == BookState::Live
    }

    /// True when the book is gapped (opens on this instrument must be blocked).
    #[must_use]
    pub fn is_gapped(&self) -> bool {
        self.state == BookState::Gapped
    }

    /// True after a gap until [`Self::resubscribe_sent`].
    #[must_use]
    pub const fn resubscribe_needed(&self) -> bool {
        self.resubscribe_needed
    }

    /// Last applied change id.
    #[must_use]
    pub const fn last_change_id(&self) -> Option<u64> {
        self.last_change_id
    }

    /// Venue timestamp of the last applied update, ms.
    #[must_use]
    pub const fn last_timestamp_ms(&self) -> i64 {
        self.last_timestamp_ms
    }

    /// Gaps seen since construction.
    #[must_use]
    pub const fn gaps_total(&self) -> u64 {
        self.gaps_total
    }

    /// Updates applied since construction.
    #[must_use]
    pub const fn updates_total(&self) -> u64 {
        self.updates_total
    }

    /// Best bid (price, amount).
    #[must_use]
    pub fn best_bid(&self) -> Option<(Decimal8, Decimal8)> {
        self.bids.best()
    }

    /// Best ask (price, amount).
    #[must_use]
    pub fn best_ask(&self) -> Option<(Decimal8, Decimal8)> {
        self.asks.best()
    }

    /// Bid levels, best first.
    #[must_use]
    pub fn bids(&self) -> &[(Decimal8, Decimal8)] {
        &self.bids.levels
    }

    /// Ask levels, best first.
    #[must_use]
    pub fn asks(&self) -> &[(Decimal8, Decimal8)] {
        &self.asks.levels
    }

    /// True when best bid ≥ best ask (never true on a healthy venue book).
    #[must_use]
    pub fn is_crossed(&self) -> bool {
        matches!((self.best_bid(), self.best_ask()), (Some((b, _)), Some((a, _))) if b >= a)
    }

    /// True when a side hit its capacity since the last snapshot (deep levels dropped).
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        self.bids.truncated || self.asks.truncated
    }
}
