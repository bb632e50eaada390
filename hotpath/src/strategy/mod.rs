//! The strategy interface: market snapshot + positions + a frozen clock in, actions out.
//!
//! A strategy is handed read-only views and an output buffer, and nothing else: it cannot
//! reach the venue, the WAL, PolicyGuard or the gates, so everything it asks for passes the
//! gate chain and the dispatch chokepoint like any other intent. The same inputs must produce
//! the same actions (determinism is a contract, tested per strategy): no wall clock (use
//! `MarketSnapshot::now_ms`), no randomness that is not seeded from the inputs, no iteration
//! over unordered maps. See `docs/strategy_interface.md`.

use crate::domain::instrument::InstrumentName;
use crate::domain::intent::{OrderIntent, Side, StrategyId};
use crate::domain::label::Label;
use crate::domain::metadata::InstrumentCache;
use crate::domain::units::{Price, Qty};
use crate::gates::market::BookView;
use crate::gates::positions::ExposureBook;

/// Index prices by settlement currency (what coin-denominated sizing and notional use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexPrices {
    /// `btc_usd` index.
    pub btc: Option<Price>,
    /// `eth_usd` index.
    pub eth: Option<Price>,
}

impl IndexPrices {
    /// The index for a currency code (`"BTC"`, `"ETH"`); `None` when unknown or not yet seen.
    #[must_use]
    pub fn for_currency(&self, currency: &str) -> Option<Price> {
        match currency {
            "BTC" => self.btc,
            "ETH" => self.eth,
            _ => None,
        }
    }
}

/// What the market looks like at one tick, as of `now_ms` (a frozen clock reading).
#[derive(Debug, Clone, Copy)]
pub struct MarketSnapshot<'a> {
    /// The tick's clock reading; the only time a strategy may use.
    pub now_ms: i64,
    /// Instrument metadata (tick sizes, steps, minimums, expiries).
    pub instruments: &'a InstrumentCache,
    /// Books of the instruments the strategy subscribed to, ordered by instrument name.
    pub books: &'a [BookView],
    /// Index prices.
    pub index: IndexPrices,
}

impl MarketSnapshot<'_> {
    /// The book of one instrument, if subscribed and seen.
    #[must_use]
    pub fn book(&self, instrument: &str) -> Option<&BookView> {
        self.books.iter().find(|b| b.instrument.as_str() == instrument)
    }
}

/// An order of this strategy that is live at the venue (or in flight towards it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOrderView {
    /// The label the order carries (maps back to its intent).
    pub label: Label,
    /// Instrument of the order.
    pub instrument: InstrumentName,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Quantity not yet filled.
    pub remaining: Qty,
}

/// The strategy's own positions, pending exposure and live orders.
#[derive(Debug, Clone, Copy)]
pub struct PositionsSnapshot<'a> {
    /// Positions and pending exposure per instrument (from fills and reservations, not from
    /// what the strategy believes).
    pub exposure: &'a ExposureBook,
    /// Live orders of this strategy, ordered by label.
    pub open_orders: &'a [OpenOrderView],
}

/// One thing a strategy asks for. Every placement becomes an intent that passes the gates.
// Actions live in a buffer allocated once at start-up; boxing the large variant would put an
// allocation on every tick of the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyAction {
    /// Place a new order.
    Place(OrderIntent),
    /// Cancel one of the strategy's live orders, by label.
    Cancel(Label),
}

/// The output buffer was full; the action is handed back (never dropped silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionBufferFull(pub StrategyAction);

/// A bounded buffer of actions, allocated once at start-up and reused every tick.
#[derive(Debug)]
pub struct ActionBuffer {
    actions: Vec<StrategyAction>,
    capacity: usize,
}

impl ActionBuffer {
    /// A buffer that holds at most `capacity` actions per tick.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self { actions: Vec::with_capacity(capacity), capacity }
    }

    /// Adds an action.
    ///
    /// # Errors
    /// [`ActionBufferFull`] with the action when the tick's budget is used up.
    // The action is handed back by value (rtrb's `Err(Full(v))` habit) so nothing is dropped
    // silently and nothing is allocated.
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, action: StrategyAction) -> Result<(), ActionBufferFull> {
        if self.actions.len() >= self.capacity {
            return Err(ActionBufferFull(action));
        }
        self.actions.push(action);
        Ok(())
    }

    /// The actions of this tick, in the order the strategy produced them.
    #[must_use]
    pub fn as_slice(&self) -> &[StrategyAction] {
        &self.actions
    }

    /// Takes the actions out, leaving the (still allocated) buffer empty.
    pub fn drain(&mut self) -> std::vec::Drain<'_, StrategyAction> {
        self.actions.drain(..)
    }

    /// Empties the buffer without giving back its memory.
    pub fn clear(&mut self) {
        self.actions.clear();
    }

    /// Number of buffered actions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether no action is buffered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Most actions one tick may produce.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A trading strategy: pure decisions over snapshots.
pub trait Strategy: Send {
    /// The strategy's stable id (it is hashed into every label it produces).
    fn id(&self) -> &StrategyId;

    /// Instruments whose books the strategy needs, in a stable order.
    fn instruments(&self) -> &[InstrumentName];

    /// Decides this tick's actions. Must be deterministic in its inputs and its own state.
    fn on_tick(
        &mut self,
        market: &MarketSnapshot<'_>,
        positions: &PositionsSnapshot<'_>,
        out: &mut ActionBuffer,
    );

    /// The strategy's gross edge (USD) for a multi-leg group it emitted on the last tick: the
    /// contract §5.11 `gross_edge_usd` input of the group's NetEdge gate, which only the
    /// strategy can state for a structure (the engine's per-order model prices every taker leg
    /// against its own mid, so it can never see a structure's edge). `None`: no claim, and the
    /// group's legs are judged by the engine's per-order model.
    fn group_edge_usd(
        &self,
        _group: crate::domain::intent::GroupId,
    ) -> Option<crate::domain::units::Usd> {
        None
    }
}

pub mod churn;
pub mod pipeline;
pub mod quoter;
pub mod registry;
pub mod runaway;
pub mod scripted;
pub mod vertical;
