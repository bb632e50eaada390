//! Inputs of the reconciliation core: the ledger view, local positions and the venue
//! snapshot. All owned, all plain data, so the core is a pure function of them.
//!
//! Quantities are venue `amount` units as [`Decimal8`] raw integers (value × 10^8); the
//! engine converts its qty steps to amounts when it builds the view and back when it
//! writes the repair records (it owns the instrument metadata).

use std::collections::{BTreeMap, BTreeSet};

use hotpath::venue::messages::{Direction, Order, OrderState, Position, UserTrade};
use hotpath::venue::Decimal8;
use hotpath::wal::{IntentEntry, IntentLedger, IntentState};

/// Signed amount, `Decimal8` raw units (value × 10^8); long positive.
pub type AmountRaw = i64;

/// What the engine knows about an intent beyond the WAL entry (from its order table or the
/// decoded canonical bytes). Used for label tie-breaks (§1.1.2 B–D) and final-state choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentDetail {
    /// Instrument name.
    pub instrument: String,
    /// Buy or sell.
    pub direction: Direction,
    /// Order amount (raw `Decimal8`).
    pub amount: AmountRaw,
    /// Reduce-only flag.
    pub reduce_only: bool,
}

/// One ledger intent as the reconciler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerIntent {
    /// Ledger key.
    pub intent_hash: u64,
    /// Venue label.
    pub label: String,
    /// Ledger state.
    pub state: IntentState,
    /// Venue order id once acknowledged.
    pub venue_order_id: Option<String>,
    /// Cumulative filled amount the ledger knows (raw `Decimal8`).
    pub filled_amount: AmountRaw,
    /// Time of the intent's latest ledger record, ms.
    pub updated_ms: i64,
    /// Instrument, side, amount when known.
    pub detail: Option<IntentDetail>,
}

/// The ledger view: every intent the ledger holds (non-terminal ones and terminal ones since
/// the last checkpoint) plus the trade ids already processed (AT-121 dedup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerSnapshot {
    /// Intents, any order (the core sorts).
    pub intents: Vec<LedgerIntent>,
    /// Venue trade ids the engine has already applied.
    pub processed_trade_ids: BTreeSet<String>,
}

impl LedgerSnapshot {
    /// Builds the view from the WAL ledger (entries' latest trade ids start the processed set).
    /// `detail` supplies what the entry does not carry
    /// (instrument, side, amount) and `filled_amount` converts the entry's filled qty steps
    /// to an amount; both come from the engine's order table and instrument metadata.
    pub fn from_ledger(
        ledger: &IntentLedger,
        mut detail: impl FnMut(&IntentEntry) -> Option<IntentDetail>,
        mut filled_amount: impl FnMut(&IntentEntry) -> AmountRaw,
    ) -> Self {
        let intents = ledger
            .iter()
            .map(|e| LedgerIntent {
                intent_hash: e.intent_hash,
                label: e.label.clone(),
                state: e.state,
                venue_order_id: e.venue_order_id.clone(),
                filled_amount: filled_amount(e),
                updated_ms: e.updated_ms,
                detail: detail(e),
            })
            .collect();
        // The latest trade id of every entry is processed by definition; the engine adds the
        // other trade ids it applied within the lookback (see docs/reconciliation.md).
        let processed_trade_ids = ledger
            .iter()
            .filter_map(|e| e.last_trade_id.clone())
            .filter(|t| !t.is_empty())
            .collect();
        Self { intents, processed_trade_ids }
    }
}

/// The engine's position book: instrument → signed amount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPositions(pub BTreeMap<String, AmountRaw>);

impl LocalPositions {
    /// Signed position of `instrument` (0 when absent).
    #[must_use]
    pub fn get(&self, instrument: &str) -> AmountRaw {
        self.0.get(instrument).copied().unwrap_or(0)
    }
}

/// A venue order, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueOrder {
    /// Venue order id.
    pub order_id: String,
    /// Instrument.
    pub instrument: String,
    /// Side.
    pub direction: Direction,
    /// Order amount.
    pub amount: AmountRaw,
    /// Filled so far.
    pub filled_amount: AmountRaw,
    /// Label ("" when none).
    pub label: String,
    /// Venue state (open orders are `Open`/`Untriggered`).
    pub state: OrderState,
    /// Reduce-only flag.
    pub reduce_only: bool,
    /// Creation time, ms.
    pub creation_ms: i64,
}

impl VenueOrder {
    /// From the typed decode.
    #[must_use]
    pub fn from_wire(o: &Order<'_>) -> Self {
        Self {
            order_id: o.order_id.to_owned(),
            instrument: o.instrument_name.to_owned(),
            direction: o.direction,
            amount: o.amount.raw,
            filled_amount: o.filled_amount.raw,
            label: o.label.to_owned(),
            state: o.order_state,
            reduce_only: o.reduce_only,
            creation_ms: o.creation_timestamp,
        }
    }

    /// Whether the order is still working at the venue.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.state, OrderState::Open | OrderState::Untriggered)
    }
}

/// A venue user trade, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueTrade {
    /// Venue trade id.
    pub trade_id: String,
    /// Order it belongs to.
    pub order_id: String,
    /// Instrument.
    pub instrument: String,
    /// Side.
    pub direction: Direction,
    /// Amount.
    pub amount: AmountRaw,
    /// Price.
    pub price: AmountRaw,
    /// Label ("" when none).
    pub label: String,
    /// Trade time, ms.
    pub timestamp_ms: i64,
}

impl VenueTrade {
    /// From the typed decode.
    #[must_use]
    pub fn from_wire(t: &UserTrade<'_>) -> Self {
        Self {
            trade_id: t.trade_id.to_owned(),
            order_id: t.order_id.to_owned(),
            instrument: t.instrument_name.to_owned(),
            direction: t.direction,
            amount: t.amount.raw,
            price: t.price.raw,
            label: t.label.to_owned(),
            timestamp_ms: t.timestamp,
        }
    }

    /// Signed position change (buy positive). `Zero` never appears on trades; it counts 0.
    #[must_use]
    pub fn signed_amount(&self) -> AmountRaw {
        signed(self.direction, self.amount)
    }
}

/// Signs an unsigned amount by side.
#[must_use]
pub fn signed(direction: Direction, amount: AmountRaw) -> AmountRaw {
    match direction {
        Direction::Buy => amount,
        Direction::Sell => amount.saturating_neg(),
        Direction::Zero => 0,
    }
}

/// A venue position, owned and signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenuePosition {
    /// Instrument.
    pub instrument: String,
    /// Signed size (long positive).
    pub size: AmountRaw,
}

impl VenuePosition {
    /// From the typed decode: Deribit prints `size` signed; a positive size with direction
    /// `sell` is normalised to negative.
    #[must_use]
    pub fn from_wire(p: &Position<'_>) -> Self {
        let raw = p.size.raw;
        let size = match p.direction {
            Direction::Sell if raw > 0 => raw.saturating_neg(),
            Direction::Zero => 0,
            _ => raw,
        };
        Self { instrument: p.instrument_name.to_owned(), size }
    }
}

/// What a by-label lookup (`get_order_state_by_label`) returned for a ghost candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelLookup {
    /// Every order the venue holds under the label, open or not.
    pub orders: Vec<VenueOrder>,
}

/// Everything fetched from the venue for one reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VenueSnapshot {
    /// Open orders (all currencies).
    pub open_orders: Vec<VenueOrder>,
    /// User trades since the lookback start.
    pub trades: Vec<VenueTrade>,
    /// False when pagination stopped at its bound before the venue said "no more".
    pub trades_complete: bool,
    /// Non-zero positions.
    pub positions: Vec<VenuePosition>,
    /// By-label lookups done for ghost candidates, by label.
    pub label_lookups: BTreeMap<String, LabelLookup>,
    /// When the snapshot was taken (start of the open-orders fetch), ms.
    pub fetched_ms: i64,
}

/// Formats a raw amount for reports and logs.
#[must_use]
pub fn amount_text(raw: AmountRaw) -> String {
    Decimal8::from_raw(raw).to_string()
}
