//! The strategy stage on its own thread (`pinned`: feed / strategy / gate+dispatch, one
//! thread each). Under `compact` the strategy runs inline on the trading thread instead
//! (`tick.rs`); the decisions are the same code, `Strategy::on_tick` over the same snapshots.
//!
//! ```text
//!  book board ──▶ strategy thread ──(ActionBatch ring)──▶ trading thread: gate, WAL, dispatch
//!                      ▲                                        │
//!                      └────────────(StateBuf ring)─────────────┘  positions, pending
//!                                                                  exposure, open orders,
//!                                                                  applied batch seq
//! ```
//!
//! # Handoffs (all `rtrb` SPSC, buffers recycled, nothing allocated after start)
//! The rings carry the buffer structs by value (a few words each: their `Vec`s keep their
//! heap storage as they travel), so a handoff is a small copy, never an allocation.
//! - **Action batches** (strategy → trading, capacity [`BATCH_BUFFERS`]): one
//!   [`ActionBatch`] per tick that produced actions — the actions, the frozen clock and the
//!   books the strategy saw (the gates judge the intents against those same books). Emptied
//!   batches come back on a return ring.
//! - **State** (trading → strategy, capacity [`STATE_BUFFERS`]): [`StateBuf`]s with the
//!   positions, pending exposure and open orders, and the seq of the last batch applied. The
//!   strategy keeps the newest and returns older ones (conflation: latest state wins).
//!
//! # No duplicate decisions
//! The strategy ticks only when the newest state it holds says every batch it sent was
//! applied (`applied_seq == sent_seq`): its open orders then include what its last actions
//! placed, exactly as when it runs inline. At most one batch is in flight.
//!
//! # Overflow policies
//! - Action ring full (cannot happen with one batch in flight; handled anyway): the batch is
//!   handed back and its actions are refused with `IntentRingFull`, counted in
//!   [`StageCounters::intent_ring_full`] — never dropped silently.
//! - State: the trading thread publishes only into a spare buffer; with none spare (the
//!   strategy has not returned one yet) it marks the state dirty and publishes at its next
//!   turn. It never blocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use hotpath::clock::Clock;
use hotpath::domain::metadata::InstrumentCache;
use hotpath::gates::market::BookView;
use hotpath::gates::positions::ExposureBook;
use hotpath::ring::{BookReader, ControlCommand, Stage, StageRunner, StopFlag, WaitStrategy};
use hotpath::strategy::{
    ActionBuffer, IndexPrices, MarketSnapshot, OpenOrderView, PositionsSnapshot, Strategy,
    StrategyAction,
};

use super::live::LIVE_ORDERS_CAPACITY;
use super::market_data::{MarketView, ACTIONS_PER_TICK_MAX};

/// Action batches in circulation (one in flight, one being filled).
pub const BATCH_BUFFERS: usize = 2;
/// State buffers in circulation (one held by the strategy, up to two in the ring).
pub const STATE_BUFFERS: usize = 3;

/// One tick's actions, with what the strategy saw.
#[derive(Debug)]
pub struct ActionBatch {
    /// Batch sequence (1, 2, …).
    pub seq: u64,
    /// The tick's frozen clock.
    pub now_ms: i64,
    /// The actions, in the order the strategy produced them.
    pub actions: Vec<StrategyAction>,
    /// The books the strategy saw (name order).
    pub books: Vec<BookView>,
    /// The index prices the strategy saw.
    pub index: IndexPrices,
}

/// What the strategy needs from the trading thread.
#[derive(Debug)]
pub struct StateBuf {
    /// The last batch the trading thread carried out.
    pub applied_seq: u64,
    /// Positions and pending exposure.
    pub exposure: ExposureBook,
    /// Open orders, label order.
    pub open: Vec<OpenOrderView>,
}

impl StateBuf {
    fn new() -> Self {
        Self {
            applied_seq: 0,
            exposure: ExposureBook::new(),
            open: Vec::with_capacity(LIVE_ORDERS_CAPACITY),
        }
    }
}

/// Counters of the strategy thread (atomics; the trading thread and progress lines read them).
#[derive(Debug, Default)]
pub struct StageCounters {
    /// Strategy ticks.
    pub ticks: AtomicU64,
    /// Actions produced.
    pub actions: AtomicU64,
    /// Batches handed to the trading thread.
    pub batches: AtomicU64,
    /// Batches refused because the action ring was full (`IntentRingFull`).
    pub intent_ring_full: AtomicU64,
    /// Market events (book notices) consumed.
    pub market_events: AtomicU64,
}

/// The trading thread's end of the strategy stage.
#[derive(Debug)]
pub struct StrategyLink {
    batches: rtrb::Consumer<ActionBatch>,
    batch_returns: rtrb::Producer<ActionBatch>,
    states: rtrb::Producer<StateBuf>,
    state_returns: rtrb::Consumer<StateBuf>,
    spare: Vec<StateBuf>,
    /// Seq of the last batch carried out (published in the next state).
    pub applied_seq: u64,
    /// The state changed since the last publication.
    pub state_dirty: bool,
    last_publish: Instant,
    /// The strategy thread's counters.
    pub counters: Arc<StageCounters>,
    thread: Thread,
    stop: StopFlag,
    join: Option<JoinHandle<()>>,
}

/// How often the trading thread republishes state without a batch (fills, cancels, reports).
const STATE_REFRESH: Duration = Duration::from_millis(5);

impl StrategyLink {
    /// Action batches the strategy pushed and the gate has not taken yet (ring depth).
    #[must_use]
    pub fn batches_queued(&self) -> u64 {
        self.batches.slots() as u64
    }

    /// The next batch the strategy sent, if any.
    pub fn pop_batch(&mut self) -> Option<ActionBatch> {
        self.batches.pop().ok()
    }

    /// Gives an emptied batch back to the strategy thread.
    pub fn return_batch(&mut self, mut batch: ActionBatch) {
        batch.actions.clear();
        // The pool holds BATCH_BUFFERS and the return ring has room for all of them.
        let _ = self.batch_returns.push(batch);
    }

    /// A spare state buffer to fill, when one is due (after a batch, or every
    /// [`STATE_REFRESH`]); `None` if not due or none is spare (then `state_dirty` stays set).
    pub fn state_to_fill(&mut self) -> Option<StateBuf> {
        while let Ok(s) = self.state_returns.pop() {
            self.spare.push(s);
        }
        let due = self.state_dirty || self.last_publish.elapsed() >= STATE_REFRESH;
        if !due {
            return None;
        }
        self.state_dirty = true;
        self.spare.pop()
    }

    /// Publishes a filled state and wakes the strategy thread.
    pub fn publish_state(&mut self, mut state: StateBuf) {
        state.applied_seq = self.applied_seq;
        match self.states.push(state) {
            Ok(()) => {
                self.state_dirty = false;
                self.last_publish = Instant::now();
                self.thread.unpark();
            }
            // Pool size == ring capacity + the strategy's one, so this only happens if the
            // strategy thread is gone; keep the buffer and stay dirty.
            Err(rtrb::PushError::Full(s)) => self.spare.push(s),
        }
    }

    /// The strategy thread, to be woken by the feed.
    #[must_use]
    pub fn thread(&self) -> Thread {
        self.thread.clone()
    }

    /// Stops the strategy thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.stop();
        self.thread.unpark();
        if let Some(j) = self.join.take() {
            if j.join().is_err() {
                tracing::error!("strategy thread panicked");
            }
        }
    }
}

impl Drop for StrategyLink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the strategy thread runs.
#[derive(Debug, Clone, Copy)]
pub struct StrategyStageConfig {
    /// Strategy tick period.
    pub tick: Duration,
    /// Idle behaviour (`Spin` pinned; tests and `compact` park).
    pub wait: WaitStrategy,
    /// Core to pin to.
    pub core: Option<hotpath::ring::topology::CoreId>,
}

/// Moves `strategy` onto its own thread, reading books from `reader`.
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn(
    strategy: Box<dyn Strategy>,
    instruments: InstrumentCache,
    reader: BookReader,
    clock: Arc<dyn Clock>,
    cfg: StrategyStageConfig,
) -> std::io::Result<StrategyLink> {
    let (batch_tx, batch_rx) = rtrb::RingBuffer::new(BATCH_BUFFERS);
    let (batch_ret_tx, batch_ret_rx) = rtrb::RingBuffer::new(BATCH_BUFFERS);
    let (state_tx, state_rx) = rtrb::RingBuffer::new(STATE_BUFFERS);
    let (state_ret_tx, state_ret_rx) = rtrb::RingBuffer::new(STATE_BUFFERS);
    let books = reader.names().len();
    let spare_batches: Vec<ActionBatch> = (0..BATCH_BUFFERS)
        .map(|_| ActionBatch {
            seq: 0,
            now_ms: 0,
            actions: Vec::with_capacity(ACTIONS_PER_TICK_MAX),
            books: Vec::with_capacity(books),
            index: IndexPrices::default(),
        })
        .collect();
    let counters = Arc::new(StageCounters::default());
    let stop = StopFlag::new();
    let mut market = MarketView::default();
    market.attach(reader);
    let mut stage = StrategyThread {
        strategy,
        instruments,
        market,
        actions: ActionBuffer::with_capacity(ACTIONS_PER_TICK_MAX),
        state: StateBuf::new(),
        sent_seq: 0,
        next_tick: Instant::now(),
        tick: cfg.tick,
        clock,
        batches: batch_tx,
        batch_returns: batch_ret_rx,
        spare_batches,
        states: state_rx,
        state_returns: state_ret_tx,
        counters: Arc::clone(&counters),
    };
    let flag = stop.clone();
    let join = std::thread::Builder::new().name("stoic-strategy".into()).spawn(move || {
        if !hotpath::ring::pin_current_thread(cfg.core) {
            println!("topology: strategy thread could not be pinned to {:?}", cfg.core);
        }
        let mut runner = StageRunner::new(flag, None, cfg.wait);
        runner.run(&mut stage);
    })?;
    let thread = join.thread().clone();
    Ok(StrategyLink {
        batches: batch_rx,
        batch_returns: batch_ret_tx,
        states: state_tx,
        state_returns: state_ret_rx,
        spare: (0..STATE_BUFFERS - 1).map(|_| StateBuf::new()).collect(),
        applied_seq: 0,
        state_dirty: true,
        last_publish: Instant::now(),
        counters,
        thread,
        stop,
        join: Some(join),
    })
}

struct StrategyThread {
    strategy: Box<dyn Strategy>,
    instruments: InstrumentCache,
    market: MarketView,
    actions: ActionBuffer,
    state: StateBuf,
    sent_seq: u64,
    next_tick: Instant,
    tick: Duration,
    clock: Arc<dyn Clock>,
    batches: rtrb::Producer<ActionBatch>,
    batch_returns: rtrb::Consumer<ActionBatch>,
    spare_batches: Vec<ActionBatch>,
    states: rtrb::Consumer<StateBuf>,
    state_returns: rtrb::Producer<StateBuf>,
    counters: Arc<StageCounters>,
}

impl StrategyThread {
    /// Adopts the newest state; older ones go back to the trading thread.
    fn adopt_states(&mut self) -> usize {
        let mut n = 0;
        while let Ok(s) = self.states.pop() {
            let old = std::mem::replace(&mut self.state, s);
            // STATE_BUFFERS in circulation, the return ring holds them all.
            let _ = self.state_returns.push(old);
            n += 1;
        }
        n
    }

    /// One strategy tick, if due and every batch sent was applied. Returns whether it ran.
    fn maybe_tick(&mut self) -> bool {
        if self.state.applied_seq != self.sent_seq || Instant::now() < self.next_tick {
            return false;
        }
        self.next_tick = Instant::now() + self.tick;
        while let Ok(b) = self.batch_returns.pop() {
            self.spare_batches.push(b);
        }
        let now = self.clock.now_ms();
        let index = self.market.index().unwrap_or_default();
        let books = self.market.books_for_tick();
        let market = MarketSnapshot { now_ms: now, instruments: &self.instruments, books, index };
        self.actions.clear();
        self.strategy.on_tick(
            &market,
            &PositionsSnapshot { exposure: &self.state.exposure, open_orders: &self.state.open },
            &mut self.actions,
        );
        self.counters.ticks.fetch_add(1, Ordering::Relaxed);
        if self.actions.is_empty() {
            return true;
        }
        self.counters.actions.fetch_add(self.actions.len() as u64, Ordering::Relaxed);
        let Some(mut batch) = self.spare_batches.pop() else {
            // Every batch buffer is in flight: refuse this tick's actions, visibly.
            self.counters.intent_ring_full.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        batch.seq = self.sent_seq + 1;
        batch.now_ms = now;
        batch.actions.clear();
        batch.actions.extend(self.actions.drain());
        batch.books.clear();
        batch.books.extend_from_slice(self.market.books());
        batch.index = index;
        match self.batches.push(batch) {
            Ok(()) => {
                self.sent_seq += 1;
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
            }
            Err(rtrb::PushError::Full(b)) => {
                // Handed back: the actions are refused (IntentRingFull), counted, not lost
                // silently; the strategy decides again at its next tick.
                self.counters.intent_ring_full.fetch_add(1, Ordering::Relaxed);
                self.spare_batches.push(b);
            }
        }
        true
    }
}

impl Stage for StrategyThread {
    fn turn(&mut self, budget: usize) -> usize {
        let events = self.market.absorb().min(budget);
        self.counters.market_events.fetch_add(events as u64, Ordering::Relaxed);
        let states = self.adopt_states();
        let ticked = usize::from(self.maybe_tick());
        (events + states + ticked).min(budget)
    }

    fn on_command(&mut self, _command: ControlCommand) {}
}

impl super::Engine {
    /// The trading thread's turn of the split topology: carry out the strategy's next batch
    /// (gate → WAL → dispatch, against the books the strategy saw and exposure rebuilt now),
    /// then publish positions / open orders / the applied seq back. Returns whether a batch
    /// was carried out. While the latch is set a batch is not carried out (as the inline
    /// strategy does not tick then): it is acknowledged as applied so the strategy decides
    /// again on fresh state.
    ///
    /// # Errors
    /// A WAL or session failure (the run loop degrades or reconnects).
    pub fn service_strategy_stage(&mut self) -> Result<bool, super::EngineError> {
        let Some(mut link) = self.stage.take() else { return Ok(false) };
        let mut result = Ok(false);
        if let Some(mut batch) = link.pop_batch() {
            let mut bufs = std::mem::take(&mut self.bufs);
            bufs.intents.clear();
            bufs.cancels.clear();
            for a in batch.actions.drain(..) {
                match a {
                    StrategyAction::Place(i) => bufs.intents.push(i),
                    StrategyAction::Cancel(l) => bufs.cancels.push(l),
                }
            }
            if !self.guard.latch().is_latched() {
                self.market.set_books(&batch.books);
                self.index = batch.index;
                self.exposure_into(&mut bufs.exposure);
                result = self.execute(&mut bufs, batch.now_ms).map(|()| true);
            }
            self.bufs = bufs;
            link.applied_seq = batch.seq;
            link.state_dirty = true;
            link.return_batch(batch);
        }
        if let Some(mut state) = link.state_to_fill() {
            self.exposure_into(&mut state.exposure);
            self.open_orders_into(&mut state.open);
            link.publish_state(state);
        }
        self.stage = Some(link);
        result
    }
}
