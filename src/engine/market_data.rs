//! The trading thread's side of market data: the book board's reader, the latest view of
//! every book, and the buffers one strategy tick reuses.
//!
//! Everything here is sized once (when the strategy is built) and reused: draining notices,
//! refreshing views and rebuilding the tick's book list allocate nothing.

use hotpath::domain::intent::OrderIntent;
use hotpath::domain::label::Label;
use hotpath::gates::market::BookView;
use hotpath::gates::positions::ExposureBook;
use hotpath::limits::STAGE_WORK_BUDGET_PER_TURN;
use hotpath::ring::{BookReader, FeedCounters};
use hotpath::strategy::{IndexPrices, OpenOrderView};

/// Most actions the strategy may produce per tick (the action buffer's size).
pub const ACTIONS_PER_TICK_MAX: usize = 256;
/// Open orders a tick can show the strategy without growing its buffer.
const OPEN_ORDERS_PER_TICK: usize = super::live::LIVE_ORDERS_CAPACITY;

/// The latest book of every instrument on the board, as the trading thread last read it.
#[derive(Debug, Default)]
pub struct MarketView {
    reader: Option<BookReader>,
    /// By board slot (sorted instrument names); `None` until the first publication.
    views: Vec<Option<BookView>>,
    /// The tick's books: the `Some` views in slot (= name) order.
    list: Vec<BookView>,
}

impl MarketView {
    /// Starts reading `reader` (tables sized now).
    pub fn attach(&mut self, reader: BookReader) {
        let n = reader.names().len();
        self.views = vec![None; n];
        self.list = Vec::with_capacity(n);
        self.reader = Some(reader);
    }

    /// Pops pending book notices (bounded per call) and refreshes the views they name.
    /// Returns the number of market events consumed.
    pub fn absorb(&mut self) -> usize {
        let Some(r) = self.reader.as_mut() else { return 0 };
        r.drain(STAGE_WORK_BUDGET_PER_TURN, &mut self.views)
    }

    /// Catches changes whose notices overflowed (one version check per slot), then rebuilds
    /// the tick's book list. Returns the list.
    pub fn books_for_tick(&mut self) -> &[BookView] {
        if let Some(r) = self.reader.as_mut() {
            r.sweep(&mut self.views);
        }
        self.list.clear();
        self.list.extend(self.views.iter().flatten().copied());
        &self.list
    }

    /// Takes the books another thread ticked on (split topology: the gates judge the
    /// strategy's intents against the books it saw). Allocates only the first time.
    pub fn set_books(&mut self, books: &[BookView]) {
        self.list.clear();
        self.list.extend_from_slice(books);
    }

    /// The latest view of `name`: as last absorbed from the board, else as last set from a
    /// strategy batch.
    #[must_use]
    pub fn view(&self, name: hotpath::domain::instrument::InstrumentName) -> Option<&BookView> {
        self.views
            .iter()
            .flatten()
            .find(|b| b.instrument == name)
            .or_else(|| self.list.iter().find(|b| b.instrument == name))
    }

    /// The books as of the last `books_for_tick`.
    #[must_use]
    pub fn books(&self) -> &[BookView] {
        &self.list
    }

    /// Index prices as the feed last published them.
    #[must_use]
    pub fn index(&self) -> Option<IndexPrices> {
        self.reader.as_ref().map(BookReader::index)
    }

    /// The feed's counters for a cold thread, once attached.
    #[must_use]
    pub fn shared_counters(&self) -> Option<std::sync::Arc<FeedCounters>> {
        self.reader.as_ref().map(BookReader::shared_counters)
    }

    /// The feed's counters, once attached.
    #[must_use]
    pub fn counters(&self) -> Option<&FeedCounters> {
        self.reader.as_ref().map(BookReader::counters)
    }
}

/// Buffers one strategy tick fills and clears, so a tick allocates nothing once warm.
#[derive(Debug, Default)]
pub struct TradingBuffers {
    pub(super) open: Vec<OpenOrderView>,
    pub(super) intents: Vec<OrderIntent>,
    pub(super) cancels: Vec<Label>,
    /// Positions + pending exposure, rebuilt in place every tick (entries are zeroed, never
    /// removed, so a known instrument costs no tree node).
    pub(super) exposure: ExposureBook,
    /// The pipeline's outcome of the tick's batch (staged, refused, unjournaled), reused.
    pub(super) outcome: hotpath::dispatch::BatchOutcome,
    /// One send outcome per staged intent, reused.
    pub(super) sends: Vec<hotpath::dispatch::SendOutcome>,
}

impl TradingBuffers {
    /// Sizes the buffers (once, when the strategy is built).
    pub fn size(&mut self) {
        self.open = Vec::with_capacity(OPEN_ORDERS_PER_TICK);
        self.intents = Vec::with_capacity(ACTIONS_PER_TICK_MAX);
        self.cancels = Vec::with_capacity(ACTIONS_PER_TICK_MAX);
        self.outcome = hotpath::dispatch::BatchOutcome::with_capacity(ACTIONS_PER_TICK_MAX);
        self.sends = Vec::with_capacity(ACTIONS_PER_TICK_MAX);
    }
}
