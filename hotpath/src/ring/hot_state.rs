//! Hot state of the trading thread for cold readers, published through a [`Snapshot`]
//! seqlock: counters, positions with their pending (resting) exposure per side, risk state,
//! latch and the newest book time. Fixed size and `Plain`, so publishing allocates nothing and
//! takes no lock; the engine fills and publishes it (`src/engine/hot_state.rs`).
//!
//! [`Snapshot`]: crate::ring::Snapshot

use crate::domain::instrument::INSTRUMENT_NAME_LEN_MAX;
use crate::domain::reason_codes::RiskState;
use crate::ring::Plain;

/// Positions (with pending exposure) carried; beyond this many instruments the rest are
/// counted in [`HotState::positions_dropped`].
pub const HOT_POSITIONS_MAX: usize = 32;

/// One instrument: position and what rests at the venue on each side (amount units, 1e-8).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotPosition {
    /// Position.
    pub qty: i64,
    /// Unfilled amount of our live buy orders.
    pub pending_buy: i64,
    /// Unfilled amount of our live sell orders.
    pub pending_sell: i64,
    /// Length of `name`.
    pub name_len: u64,
    /// Instrument name bytes (`name_len` of them).
    pub name: [u8; INSTRUMENT_NAME_LEN_MAX],
}

impl HotPosition {
    const EMPTY: Self = Self {
        qty: 0,
        pending_buy: 0,
        pending_sell: 0,
        name_len: 0,
        name: [0; INSTRUMENT_NAME_LEN_MAX],
    };

    /// The instrument name.
    #[must_use]
    pub fn name(&self) -> &str {
        let n = usize::try_from(self.name_len).unwrap_or(0).min(INSTRUMENT_NAME_LEN_MAX);
        std::str::from_utf8(&self.name[..n]).unwrap_or("")
    }
}

const _: () = assert!(size_of::<HotPosition>() == 4 * 8 + INSTRUMENT_NAME_LEN_MAX);
const _: () = assert!(INSTRUMENT_NAME_LEN_MAX % 8 == 0);

/// Rings whose depth and overflow count the trading thread publishes, in this order:
/// strategy → gate (action batches), gate → dispatch (jobs), dispatch → gate (execution
/// reports and send outcomes), cold side → engine (operator commands).
pub const HOT_RINGS: usize = 4;

/// What the trading thread publishes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotState {
    /// The engine's counters (its `HOT_COUNTER_NAMES` order).
    pub counters: [u64; 12],
    /// `positions_len` entries, name order.
    pub positions: [HotPosition; HOT_POSITIONS_MAX],
    /// Entries in `positions`.
    pub positions_len: u64,
    /// Instruments left out (more than [`HOT_POSITIONS_MAX`]).
    pub positions_dropped: u64,
    /// Newest book change the trading thread has seen (venue ms; 0 before the first).
    pub last_book_ms: i64,
    /// When it was published (engine clock ms).
    pub at_ms: i64,
    /// Items waiting in each ring ([`HOT_RINGS`] order).
    pub ring_depth: [u64; HOT_RINGS],
    /// Pushes each ring refused because it was full, since start ([`HOT_RINGS`] order).
    pub ring_overflow: [u64; HOT_RINGS],
    /// `RiskState::ALL` index.
    pub risk_state: u8,
    /// Open-permission latch set.
    pub latched: u8,
    /// Always zero (no padding: every byte of a `Plain` value is initialised).
    pub reserved: [u8; 6],
}

impl HotState {
    /// Nothing published yet.
    pub const EMPTY: Self = Self {
        counters: [0; 12],
        positions: [HotPosition::EMPTY; HOT_POSITIONS_MAX],
        positions_len: 0,
        positions_dropped: 0,
        last_book_ms: 0,
        at_ms: 0,
        ring_depth: [0; HOT_RINGS],
        ring_overflow: [0; HOT_RINGS],
        risk_state: 0,
        latched: 0,
        reserved: [0; 6],
    };

    /// The published positions.
    #[must_use]
    pub fn positions(&self) -> &[HotPosition] {
        let n = usize::try_from(self.positions_len).unwrap_or(0).min(HOT_POSITIONS_MAX);
        &self.positions[..n]
    }

    /// The risk state.
    #[must_use]
    pub fn risk_state(&self) -> RiskState {
        RiskState::ALL.get(usize::from(self.risk_state)).copied().unwrap_or(RiskState::Degraded)
    }

    /// The entry for `name`, added if new; `None` (counted in `positions_dropped`) when all
    /// [`HOT_POSITIONS_MAX`] are taken by other instruments.
    pub fn slot(&mut self, name: &str) -> Option<&mut HotPosition> {
        let n = usize::try_from(self.positions_len).unwrap_or(0);
        if let Some(i) = self.positions[..n].iter().position(|p| p.name() == name) {
            return Some(&mut self.positions[i]);
        }
        if n == HOT_POSITIONS_MAX {
            self.positions_dropped += 1;
            return None;
        }
        let bytes = name.as_bytes();
        let len = bytes.len().min(INSTRUMENT_NAME_LEN_MAX);
        let p = &mut self.positions[n];
        *p = HotPosition::EMPTY;
        p.name[..len].copy_from_slice(&bytes[..len]);
        p.name_len = u64::try_from(len).unwrap_or(0);
        self.positions_len += 1;
        Some(p)
    }
}

const _: () = assert!(
    size_of::<HotState>()
        == 12 * 8
            + HOT_POSITIONS_MAX * size_of::<HotPosition>()
            + 4 * 8
            + 2 * HOT_RINGS * 8
            + 2
            + 6
);

const _: () = assert!(size_of::<HotState>() <= crate::limits::SNAPSHOT_BYTES_MAX);

// SAFETY: `#[repr(C)]`, fields in descending alignment with no gaps (the two size asserts
// above prove there is no padding: each size equals the sum of its fields), every field an
// integer or an array of integers, so every byte of every value is initialised.
unsafe impl Plain for HotPosition {}
// SAFETY: as for `HotPosition`; `reserved` pads the struct to its 8-byte alignment explicitly.
unsafe impl Plain for HotState {}
