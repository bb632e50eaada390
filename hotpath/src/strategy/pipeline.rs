//! The tick-to-send pipeline shared by `benches/tick_to_send.rs`, `stoic bench` and
//! `tests/hotpath_zero_alloc.rs`: market event bytes in, order request bytes out.
//!
//! ```text
//! frame bytes ─▶ FeedStage ─(BookTick)─▶ StrategyStage ─(actions)─▶ GateStage ─(durable)─▶ WireEncoder ─▶ request bytes
//!   decode (simd-json) + L2Book::apply    Strategy::on_tick          GateChain::evaluate,     JSON-RPC encoding
//!   + BookView                           over MarketSnapshot         label, [WAL append       (the dispatch
//!                                                                     + one sync]              stage's work)
//!               ◀──────────────── reports (placed / cancel sent) ─────────────────────────────────┘
//! ```
//! The stages are plain structs so that the same code runs on one thread (`compact`),
//! on four threads joined by `rtrb` rings (`pinned`, see `run_pinned`) and inside the
//! zero-allocation test. What stands in for the rest of the engine, and why:
//! - **the venue** is a loopback: an accepted order rests until we cancel it (no fills), and
//!   "bytes ready at the socket" is the end of the measurement;
//! - **positions** are flat and pending exposure is not reserved (the bench never fills, and
//!   [`crate::gates::ExposureBook`] has no release yet): classification still runs in the
//!   gates from the exposure book, as it would in the engine;
//! - **the clock** is the event's venue timestamp (a frozen clock per tick);
//! - **the fee model and edge inputs** are fixed, fresh values (the engine's fee model
//!   supplies them in `stoic run`);
//! - **the order rate**: [`bench_policy`] raises `max_orders_per_minute` and
//!   `order_rate_burst`, because the bench requotes on every event, far faster than the
//!   policy allows; every other gate runs as configured in `config/policy.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::domain::instrument::{Instrument, InstrumentName};
use crate::domain::intent::{OrderIntent, Side, StrategyId};
use crate::domain::label::Label;
use crate::domain::metadata::{InstrumentCache, InstrumentMeta, TickStep};
use crate::domain::policy::Policy;
use crate::domain::reason_codes::{RiskState, TradingMode};
use crate::domain::units::{Price, Qty, Usd};
use crate::feed::L2Book;
use crate::gates::market::{BookLevel, BookView, BOOK_VIEW_DEPTH};
use crate::gates::{EdgeInputs, ExposureBook, GateChain, GateContext, OrderRateBucket, PolicySlot};
use crate::venue::messages::{BookUpdate, NotificationData};
use crate::venue::request::RequestBuf;
use crate::venue::{Decimal8, Decoder, Message};
use crate::wal::{Record, Wal, WalConfig, WalError};

use super::quoter::{Quoter, QuoterParams};
use super::{
    ActionBuffer, IndexPrices, MarketSnapshot, OpenOrderView, PositionsSnapshot, Strategy,
    StrategyAction,
};

/// Most actions the pipeline takes from a strategy per tick.
pub const PIPELINE_ACTIONS_PER_TICK_MAX: usize = 64;
/// Most live orders the loopback venue keeps for the strategy.
pub const PIPELINE_OPEN_ORDERS_MAX: usize = 256;
/// Most instruments (books) one pipeline follows.
pub const PIPELINE_BOOKS_MAX: usize = 64;
/// Levels per side each L2 book keeps.
pub const PIPELINE_BOOK_DEPTH: usize = 64;
/// Bytes reserved for one tick's outgoing requests.
pub const PIPELINE_WIRE_BYTES: usize = 64 * 1024;
/// Longest frame the feed stage copies into its scratch buffer.
pub const PIPELINE_FRAME_BYTES_MAX: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------
// Stages
// ---------------------------------------------------------------------------------------

/// A book changed: its slot and its gate-facing view.
#[derive(Debug, Clone, Copy)]
pub struct BookTick {
    /// The tick's frozen clock: the update's venue timestamp.
    pub now_ms: i64,
    /// The new view (gapped when the update broke continuity).
    pub view: BookView,
}

/// Why a frame produced no tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Not a book notification (heartbeat, other channel): nothing to do.
    Ignored,
    /// Malformed or oversized frame.
    DecodeFailed,
    /// A book of an instrument the pipeline does not follow.
    UnknownInstrument,
}

/// Decode + L2 book maintenance + [`BookView`] building.
#[derive(Debug)]
pub struct FeedStage {
    decoder: Decoder,
    books: Vec<L2Book>,
    names: Vec<InstrumentName>,
    scratch: Vec<u8>,
}

fn view_of(name: InstrumentName, book: &L2Book) -> BookView {
    fn levels(src: &[(Decimal8, Decimal8)]) -> ([BookLevel; BOOK_VIEW_DEPTH], usize) {
        let mut out = [BookLevel::default(); BOOK_VIEW_DEPTH];
        let n = src.len().min(BOOK_VIEW_DEPTH);
        for (slot, (p, q)) in out.iter_mut().zip(src) {
            // Decimal8 and Price/Qty share the 1e-8 scale.
            *slot = BookLevel { price: Price::from_raw(p.raw), qty: Qty::from_raw(q.raw) };
        }
        (out, n)
    }
    let (bids, nb) = levels(book.bids());
    let (asks, na) = levels(book.asks());
    BookView::from_levels(name, &bids[..nb], &asks[..na], book.last_timestamp_ms(), !book.is_live())
}

impl FeedStage {
    /// Books for `instruments` (allocated now).
    ///
    /// # Panics
    /// More than [`PIPELINE_BOOKS_MAX`] instruments (a configuration bug).
    #[must_use]
    pub fn new(instruments: &[InstrumentName]) -> Self {
        assert!(instruments.len() <= PIPELINE_BOOKS_MAX, "too many books");
        let mut names = instruments.to_vec();
        names.sort_unstable();
        names.dedup();
        let books = names.iter().map(|n| L2Book::new(n.as_str(), PIPELINE_BOOK_DEPTH)).collect();
        Self {
            decoder: Decoder::with_levels_max(PIPELINE_BOOK_DEPTH * 4),
            books,
            names,
            scratch: Vec::with_capacity(PIPELINE_FRAME_BYTES_MAX),
        }
    }

    /// Applies an already decoded book update (the zero-allocation test's entry point).
    ///
    /// # Errors
    /// [`FrameOutcome::UnknownInstrument`].
    pub fn apply_update(&mut self, update: &BookUpdate<'_>) -> Result<BookTick, FrameOutcome> {
        Self::apply_to(&mut self.books, &self.names, update)
    }

    fn apply_to(
        books: &mut [L2Book],
        names: &[InstrumentName],
        update: &BookUpdate<'_>,
    ) -> Result<BookTick, FrameOutcome> {
        let slot = names
            .iter()
            .position(|n| n.as_str() == update.instrument_name)
            .ok_or(FrameOutcome::UnknownInstrument)?;
        let book = &mut books[slot];
        // A gap or inconsistency marks the book gapped; the view says so and the strategy
        // pulls its quotes. The error itself is the feed's to act on (resubscribe).
        let _ = book.apply(update);
        Ok(BookTick { now_ms: update.timestamp, view: view_of(names[slot], book) })
    }

    /// Decodes one frame (copied into a scratch buffer: simd-json rewrites its input) and
    /// applies it if it is a book notification of a followed instrument.
    ///
    /// # Errors
    /// A [`FrameOutcome`] saying why there is no tick.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<BookTick, FrameOutcome> {
        if frame.len() > PIPELINE_FRAME_BYTES_MAX {
            return Err(FrameOutcome::DecodeFailed);
        }
        let Self { decoder, books, names, scratch } = self;
        scratch.clear();
        scratch.extend_from_slice(frame);
        match decoder.decode(scratch) {
            Ok(Message::Notification(n)) => match n.data {
                NotificationData::Book(update) => Self::apply_to(books, names, &update),
                _ => Err(FrameOutcome::Ignored),
            },
            Ok(_) => Err(FrameOutcome::Ignored),
            Err(_) => Err(FrameOutcome::DecodeFailed),
        }
    }
}

/// What the loopback venue reports back to the strategy stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// An order passed the gates and went out; it now rests.
    Placed(OpenOrderView),
    /// A cancel went out; the order is gone.
    Cancelled(Label),
}

/// The strategy and the snapshots it reads.
pub struct StrategyStage {
    strategy: Box<dyn Strategy>,
    instruments: InstrumentCache,
    index: IndexPrices,
    views: Vec<BookView>,
    exposure: ExposureBook,
    open_orders: Vec<OpenOrderView>,
    actions: ActionBuffer,
}

impl std::fmt::Debug for StrategyStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyStage")
            .field("strategy", self.strategy.id())
            .field("books", &self.views.len())
            .field("open_orders", &self.open_orders.len())
            .finish_non_exhaustive()
    }
}

impl StrategyStage {
    /// A stage around `strategy` (buffers sized now).
    #[must_use]
    pub fn new(
        strategy: Box<dyn Strategy>,
        instruments: InstrumentCache,
        index: IndexPrices,
        exposure: ExposureBook,
    ) -> Self {
        Self {
            strategy,
            instruments,
            index,
            views: Vec::with_capacity(PIPELINE_BOOKS_MAX),
            exposure,
            open_orders: Vec::with_capacity(PIPELINE_OPEN_ORDERS_MAX),
            actions: ActionBuffer::with_capacity(PIPELINE_ACTIONS_PER_TICK_MAX),
        }
    }

    /// Applies reports from the gate stage / venue.
    pub fn apply_reports(&mut self, reports: &[Report]) {
        for report in reports {
            match report {
                Report::Placed(order) => {
                    let at = self
                        .open_orders
                        .binary_search_by(|o| o.label.as_str().cmp(order.label.as_str()));
                    if let Err(at) = at {
                        if self.open_orders.len() < PIPELINE_OPEN_ORDERS_MAX {
                            self.open_orders.insert(at, *order);
                        }
                    }
                }
                Report::Cancelled(label) => self.open_orders.retain(|o| o.label != *label),
            }
        }
    }

    /// Stores the tick's view and runs the strategy; returns how many actions it produced
    /// (read them with [`Self::actions`]).
    pub fn tick(&mut self, tick: &BookTick) -> usize {
        let name = tick.view.instrument;
        match self.views.binary_search_by(|v| v.instrument.cmp(&name)) {
            Ok(at) => self.views[at] = tick.view,
            Err(at) if self.views.len() < PIPELINE_BOOKS_MAX => self.views.insert(at, tick.view),
            Err(_) => {}
        }
        self.actions.clear();
        let market = MarketSnapshot {
            now_ms: tick.now_ms,
            instruments: &self.instruments,
            books: &self.views,
            index: self.index,
        };
        let positions =
            PositionsSnapshot { exposure: &self.exposure, open_orders: &self.open_orders };
        self.strategy.on_tick(&market, &positions, &mut self.actions);
        self.actions.len()
    }

    /// The last tick's actions.
    #[must_use]
    pub fn actions(&self) -> &[StrategyAction] {
        self.actions.as_slice()
    }

    /// The view of one instrument, if seen.
    #[must_use]
    pub fn view(&self, name: InstrumentName) -> Option<&BookView> {
        self.views.iter().find(|v| v.instrument == name)
    }

    /// The book views seen so far.
    #[must_use]
    pub fn views(&self) -> &[BookView] {
        &self.views
    }

    /// The strategy's live orders, as the loopback venue reports them.
    #[must_use]
    pub fn open_orders(&self) -> &[OpenOrderView] {
        &self.open_orders
    }
}

/// Engine state the gates read that is not the book (fixed for a bench run).
#[derive(Debug, Clone, Copy)]
pub struct GateInputs {
    /// Index price for coin-sized notional.
    pub index_price: Option<Price>,
    /// Fee model refresh time.
    pub fee_model_updated_ms: Option<i64>,
    /// Net-edge inputs.
    pub edge: Option<EdgeInputs>,
}

/// Counters of a gate stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateCounts {
    /// Places accepted and encoded.
    pub accepted: u64,
    /// Places refused by a gate.
    pub rejected: u64,
    /// Cancels encoded.
    pub cancels: u64,
    /// Requests encoded in total.
    pub requests: u64,
}

/// One request waiting for the end of the tick (after the WAL sync, if any).
#[derive(Debug, Clone, Copy)]
// Inline on purpose: values in preallocated buffers, no per-request heap.
#[allow(clippy::large_enum_variant)]
pub enum Outgoing {
    /// A place the gates accepted, with its label.
    Place(OrderIntent, Label),
    /// A cancel by label.
    Cancel(Label),
}

/// JSON-RPC encoding of a tick's requests (the dispatch stage's work): request bytes into
/// one wire buffer, and the reports the strategy stage learns its orders from.
#[derive(Debug)]
pub struct WireEncoder {
    request: RequestBuf,
    wire: Vec<u8>,
    request_id: u64,
    reports: Vec<Report>,
    counts: GateCounts,
}

impl Default for WireEncoder {
    fn default() -> Self {
        Self {
            request: RequestBuf::with_capacity(1024),
            wire: Vec::with_capacity(PIPELINE_WIRE_BYTES),
            request_id: 0,
            reports: Vec::with_capacity(PIPELINE_ACTIONS_PER_TICK_MAX),
            counts: GateCounts::default(),
        }
    }
}

impl WireEncoder {
    /// Starts a tick: forgets the previous tick's bytes and reports.
    pub fn begin(&mut self) {
        self.wire.clear();
        self.reports.clear();
    }

    /// Appends one request's bytes to the wire buffer.
    pub fn encode(&mut self, out: &Outgoing) {
        self.request_id += 1;
        match out {
            Outgoing::Place(intent, label) => {
                let f = intent.fields();
                let method = match f.side {
                    Side::Buy => "private/buy",
                    Side::Sell => "private/sell",
                };
                let price = f.limit_price.map_or(0, Price::raw);
                let r = self.request.begin(self.request_id, method);
                r.str("instrument_name", f.instrument.as_str())
                    .dec("amount", Decimal8::from_raw(f.qty.raw()))
                    .str("type", f.order_type.as_str())
                    .dec("price", Decimal8::from_raw(price))
                    .str("label", label.as_str())
                    .str("time_in_force", f.time_in_force.as_str());
                if f.post_only {
                    r.bool("post_only", true);
                }
                if f.reduce_only {
                    r.bool("reduce_only", true);
                }
                self.wire.extend_from_slice(r.finish());
                self.counts.accepted += 1;
                self.reports.push(Report::Placed(OpenOrderView {
                    label: *label,
                    instrument: f.instrument.name(),
                    side: f.side,
                    price: Price::from_raw(price),
                    remaining: f.qty,
                }));
            }
            Outgoing::Cancel(label) => {
                let r = self.request.begin(self.request_id, "private/cancel_by_label");
                r.str("label", label.as_str());
                self.wire.extend_from_slice(r.finish());
                self.counts.cancels += 1;
                self.reports.push(Report::Cancelled(*label));
            }
        }
        self.counts.requests += 1;
    }

    /// The tick's request bytes (concatenated JSON-RPC requests), ready for the socket.
    #[must_use]
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The tick's reports for the strategy stage.
    #[must_use]
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Requests encoded since construction (`rejected` stays 0: the gates count those).
    #[must_use]
    pub const fn counts(&self) -> GateCounts {
        self.counts
    }
}

/// Gate chain, optional WAL, JSON-RPC encoding.
pub struct GateStage {
    chain: GateChain,
    policy: Policy,
    instruments: InstrumentCache,
    exposure: ExposureBook,
    inputs: GateInputs,
    order_rate: OrderRateBucket,
    wal: Option<Wal>,
    outgoing: Vec<Outgoing>,
    encoder: WireEncoder,
    counts: GateCounts,
    last_reject: Option<crate::domain::reason_codes::RejectReasonCode>,
}

impl std::fmt::Debug for GateStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateStage")
            .field("counts", &self.counts)
            .field("wal", &self.wal.is_some())
            .finish_non_exhaustive()
    }
}

impl GateStage {
    /// A gate stage; `wal` makes every tick append its accepted intents and sync once before
    /// encoding (durable before send).
    #[must_use]
    pub fn new(
        policy: Policy,
        instruments: InstrumentCache,
        exposure: ExposureBook,
        inputs: GateInputs,
        now_ms: i64,
        wal: Option<Wal>,
    ) -> Self {
        let order_rate =
            OrderRateBucket::full(policy.effective_risk_limits().order_rate_burst, now_ms);
        Self {
            chain: GateChain::new(),
            policy,
            instruments,
            exposure,
            inputs,
            order_rate,
            wal,
            outgoing: Vec::with_capacity(PIPELINE_ACTIONS_PER_TICK_MAX),
            encoder: WireEncoder::default(),
            counts: GateCounts::default(),
            last_reject: None,
        }
    }

    /// Starts a tick: forgets the previous tick's requests and reports.
    pub fn begin_tick(&mut self) {
        self.outgoing.clear();
        self.encoder.begin();
    }

    /// Gates one action. Places that pass are queued; cancels are queued as they are.
    pub fn handle(&mut self, action: &StrategyAction, book: Option<&BookView>, now_ms: i64) {
        if self.outgoing.len() == PIPELINE_ACTIONS_PER_TICK_MAX {
            self.counts.rejected += 1;
            return;
        }
        match action {
            StrategyAction::Cancel(label) => self.outgoing.push(Outgoing::Cancel(*label)),
            StrategyAction::Place(intent) => {
                let name = intent.fields().instrument.name();
                let ctx = GateContext {
                    now_ms,
                    policy: PolicySlot::Loaded(&self.policy),
                    instruments: &self.instruments,
                    book,
                    index_price: self.inputs.index_price,
                    position: self.exposure.view(name.as_str()),
                    portfolio: self.exposure.portfolio(),
                    fee_model_updated_ms: self.inputs.fee_model_updated_ms,
                    edge: self.inputs.edge,
                    risk_state: RiskState::Healthy,
                    trading_mode: TradingMode::Active,
                    open_permission_latched: false,
                    order_rate: self.order_rate,
                };
                match self.chain.evaluate(intent, &ctx) {
                    Ok(accepted) => {
                        self.order_rate = accepted.order_rate_after;
                        self.outgoing.push(Outgoing::Place(*intent, accepted.label));
                    }
                    Err(rejection) => {
                        self.counts.rejected += 1;
                        self.last_reject = Some(rejection.code);
                    }
                }
            }
        }
    }

    /// Ends a tick: appends the accepted intents to the WAL and syncs once (if there is a
    /// WAL), then encodes every request into the wire buffer. Returns how many requests are
    /// ready.
    ///
    /// # Errors
    /// A WAL error: nothing is encoded (durable before send).
    pub fn finish_tick(&mut self, now_ms: i64) -> Result<usize, WalError> {
        self.record_tick(now_ms)?;
        for out in &self.outgoing {
            self.encoder.encode(out);
        }
        Ok(self.outgoing.len())
    }

    /// The gate stage's half of [`Self::finish_tick`] when a dispatch stage encodes: journals
    /// the accepted intents (one sync) and returns the tick's requests, durable, to hand over.
    ///
    /// # Errors
    /// A WAL error: nothing may be sent.
    pub fn record_tick(&mut self, now_ms: i64) -> Result<&[Outgoing], WalError> {
        if let Some(wal) = self.wal.as_mut() {
            let mut appended = false;
            for out in &self.outgoing {
                if let Outgoing::Place(intent, label) = out {
                    wal.append(
                        now_ms,
                        &Record::IntentRecorded {
                            intent_hash: intent.hash().value(),
                            label: label.as_str(),
                            canonical: intent.canonical_bytes().as_bytes(),
                        },
                    )?;
                    appended = true;
                }
            }
            if appended {
                let _durable = wal.sync()?;
            }
        }
        Ok(&self.outgoing)
    }

    /// The tick's request bytes (concatenated JSON-RPC requests), ready for the socket.
    #[must_use]
    pub fn wire(&self) -> &[u8] {
        self.encoder.wire()
    }

    /// The tick's reports for the strategy stage.
    #[must_use]
    pub fn reports(&self) -> &[Report] {
        self.encoder.reports()
    }

    /// Counters since construction (refusals here, requests from the encoder).
    #[must_use]
    pub const fn counts(&self) -> GateCounts {
        let e = self.encoder.counts();
        GateCounts {
            accepted: e.accepted,
            rejected: self.counts.rejected,
            cancels: e.cancels,
            requests: e.requests,
        }
    }

    /// The WAL, when the stage journals.
    #[must_use]
    pub const fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// The last gate refusal, if any.
    #[must_use]
    pub const fn last_reject(&self) -> Option<crate::domain::reason_codes::RejectReasonCode> {
        self.last_reject
    }
}

/// The three stages on one thread (the `compact` topology).
#[derive(Debug)]
pub struct Pipeline {
    /// Decode and books.
    pub feed: FeedStage,
    /// Strategy.
    pub strategy: StrategyStage,
    /// Gates, WAL, encoding.
    pub gate: GateStage,
}

impl Pipeline {
    /// Runs one book tick through strategy and gates; returns the number of requests ready
    /// in [`GateStage::wire`].
    ///
    /// # Errors
    /// A WAL error.
    pub fn on_tick(&mut self, tick: &BookTick) -> Result<usize, WalError> {
        let Self { strategy, gate, .. } = self;
        gate.begin_tick();
        strategy.tick(tick);
        for action in strategy.actions() {
            let book = match action {
                StrategyAction::Place(intent) => strategy.view(intent.fields().instrument.name()),
                StrategyAction::Cancel(_) => None,
            };
            gate.handle(action, book, tick.now_ms);
        }
        let ready = gate.finish_tick(tick.now_ms)?;
        strategy.apply_reports(gate.reports());
        Ok(ready)
    }

    /// A decoded update through everything after decode.
    ///
    /// # Errors
    /// A WAL error; an update for an unknown instrument is 0 requests.
    pub fn on_update(&mut self, update: &BookUpdate<'_>) -> Result<usize, WalError> {
        match self.feed.apply_update(update) {
            Ok(tick) => self.on_tick(&tick),
            Err(_) => Ok(0),
        }
    }

    /// Frame bytes through everything.
    ///
    /// # Errors
    /// A WAL error; frames without a book tick are 0 requests.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<usize, WalError> {
        match self.feed.on_frame(frame) {
            Ok(tick) => self.on_tick(&tick),
            Err(_) => Ok(0),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The bench scenario: one real BTC option, its real metadata, synthetic book events
// ---------------------------------------------------------------------------------------

/// The instrument of the scenario (the one in `tests/fixtures/venue_samples/book_option_*`).
pub const SCENARIO_INSTRUMENT: &str = "BTC-25JUL25-110000-C";
/// Venue timestamp of the first scenario event (that fixture's snapshot).
pub const SCENARIO_START_MS: i64 = 1_752_139_804_003;
/// Index price the scenario assumes (USD).
pub const SCENARIO_INDEX_USD: i64 = 110_000;

/// The scenario instrument's metadata, as `public/get_instruments` lists it
/// (`tests/fixtures/venue_samples/get_instruments_option_btc.json`), fetched at the start.
///
/// # Panics
/// Never: the values are valid constants.
#[must_use]
pub fn scenario_instruments() -> InstrumentCache {
    let px = |t: &str| Price::from_decimal_str(t).expect("constant price");
    let meta = InstrumentMeta::new_checked(
        Instrument::parse(SCENARIO_INSTRUMENT).expect("constant name"),
        px("0.0001"),
        &[TickStep { above_price: px("0.005"), tick_size: px("0.0005") }],
        Qty::from_decimal_str("0.1").expect("constant qty"),
        Qty::from_decimal_str("1").expect("constant qty"),
        Some(1_753_430_400_000),
        1_750_406_400_000,
        true,
        SCENARIO_START_MS,
    )
    .expect("constant metadata");
    let mut cache = InstrumentCache::new();
    cache.upsert(meta).expect("room for one");
    cache
}

/// The policy with the order-rate limits raised (see the module docs).
#[must_use]
pub fn bench_policy(mut policy: Policy) -> Policy {
    policy.risk_limits.max_orders_per_minute = 1_000_000_000;
    policy.risk_limits.order_rate_burst = 1_000_000_000;
    policy
}

/// The scenario quoter: one tick either side of the mid, requote on any mid move.
///
/// # Panics
/// Never: the parameters are valid constants.
#[must_use]
pub fn scenario_quoter() -> Box<dyn Strategy> {
    let id = StrategyId::new_checked("quoter").expect("constant id");
    let name = Instrument::parse(SCENARIO_INSTRUMENT).expect("constant name").name();
    let params = QuoterParams { half_spread_ticks: 1, requote_ticks: 0, ..QuoterParams::default() };
    Box::new(Quoter::new(id, 0, &[name], params).expect("constant quoter"))
}

/// Fixed gate inputs of the scenario: index, fresh fee model, positive edge.
#[must_use]
pub fn scenario_gate_inputs() -> GateInputs {
    let usd = |whole: i64| Usd::from_raw(whole * crate::domain::units::FIXED_SCALE);
    GateInputs {
        index_price: Some(Price::from_raw(SCENARIO_INDEX_USD * crate::domain::units::FIXED_SCALE)),
        fee_model_updated_ms: Some(SCENARIO_START_MS),
        edge: Some(EdgeInputs {
            gross_edge_usd: Some(usd(50)),
            fee_usd: Some(usd(5)),
            expected_slippage_usd: Some(usd(1)),
        }),
    }
}

/// A compact pipeline over the scenario (`wal` optional) with `strategy`.
#[must_use]
pub fn scenario_pipeline(
    policy: &Policy,
    strategy: Box<dyn Strategy>,
    wal: Option<Wal>,
) -> Pipeline {
    let name = Instrument::parse(SCENARIO_INSTRUMENT).expect("constant name").name();
    let index = IndexPrices {
        btc: Some(Price::from_raw(SCENARIO_INDEX_USD * crate::domain::units::FIXED_SCALE)),
        eth: None,
    };
    Pipeline {
        feed: FeedStage::new(&[name]),
        strategy: StrategyStage::new(strategy, scenario_instruments(), index, ExposureBook::new()),
        gate: GateStage::new(
            bench_policy(policy.clone()),
            scenario_instruments(),
            ExposureBook::new(),
            scenario_gate_inputs(),
            SCENARIO_START_MS,
            wal,
        ),
    }
}

/// `n + 1` Deribit `book.{instrument}.100ms` notifications: a snapshot, then `n` changes that
/// alternate the top of book between 0.0160/0.0165 and 0.0170/0.0175 (chained change ids,
/// 1 ms apart), so every change moves the mid by two ticks and makes the quoter requote.
#[must_use]
pub fn scenario_frames(n: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(n + 1);
    let base_id: u64 = 69_871_234_501;
    frames.push(
        format!(
            concat!(
                r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.{i}.100ms","#,
                r#""data":{{"type":"snapshot","timestamp":{ts},"instrument_name":"{i}","change_id":{id},"#,
                r#""bids":[["new",0.016,12.4],["new",0.015,30.0],["new",0.0145,8.1]],"#,
                r#""asks":[["new",0.0165,9.7],["new",0.018,25.0],["new",0.0185,4.5]]}}}}}}"#
            ),
            i = SCENARIO_INSTRUMENT,
            ts = SCENARIO_START_MS,
            id = base_id
        )
        .into_bytes(),
    );
    for k in 1..=n {
        let to_b = k % 2 == 1;
        let (bids, asks) = if to_b {
            (
                r#"[["new",0.017,5.0],["delete",0.016,0.0]]"#,
                r#"[["delete",0.0165,0.0],["new",0.0175,7.5]]"#,
            )
        } else {
            (
                r#"[["new",0.016,12.4],["delete",0.017,0.0]]"#,
                r#"[["delete",0.0175,0.0],["new",0.0165,9.7]]"#,
            )
        };
        let k64 = k as u64;
        frames.push(
            format!(
                concat!(
                    r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"book.{i}.100ms","#,
                    r#""data":{{"type":"change","timestamp":{ts},"prev_change_id":{prev},"#,
                    r#""instrument_name":"{i}","change_id":{id},"bids":{b},"asks":{a}}}}}}}"#
                ),
                i = SCENARIO_INSTRUMENT,
                ts = SCENARIO_START_MS + k as i64,
                prev = base_id + k64 - 1,
                id = base_id + k64,
                b = bids,
                a = asks
            )
            .into_bytes(),
        );
    }
    frames
}

/// Opens a fresh WAL for a bench run in `dir` (16 MiB segments, the default sync mode).
///
/// # Errors
/// The WAL's.
pub fn bench_wal(dir: &Path) -> Result<Wal, WalError> {
    let config = WalConfig { segment_bytes: 16 * 1024 * 1024, ..WalConfig::default() };
    Wal::open(dir, config, SCENARIO_START_MS).map(|(wal, _)| wal)
}

// ---------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------

fn histogram() -> Histogram<u64> {
    // 1 ns .. 100 s, 3 significant digits; recording never allocates once built.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// One row of the latency table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Samples.
    pub count: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
    /// A remark (ratio, topology detail).
    pub note: String,
}

impl Row {
    fn from_hist(name: &str, h: &Histogram<u64>, note: String) -> Self {
        Self {
            name: name.to_owned(),
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            note,
        }
    }
}

/// Bench sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSizes {
    /// Events through the compact pipeline without WAL, and per component row.
    pub events: usize,
    /// Events through the compact pipeline with WAL append + sync.
    pub wal_events: usize,
    /// Events through the pinned (four spinning threads) pipeline, each variant.
    pub pinned_events: usize,
    /// Wall-clock cap of each pinned run (on an oversubscribed host every event can cost
    /// scheduler ticks).
    pub pinned_wall_max: Duration,
    /// Round trips of the ring-hop row.
    pub ring_round_trips: usize,
}

impl BenchSizes {
    /// Sizes derived from one `events` count (what `--events N` sets).
    #[must_use]
    pub fn from_events(events: usize) -> Self {
        let events = events.max(100);
        Self {
            events,
            wal_events: (events / 100).clamp(50, 1_000),
            pinned_events: (events / 50).clamp(50, 2_000),
            pinned_wall_max: Duration::from_secs(10),
            ring_round_trips: (events / 5).clamp(1_000, 50_000),
        }
    }
}

/// The result of [`run_bench`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Host description.
    pub host: String,
    /// Tick-to-send rows.
    pub tick_to_send: Vec<Row>,
    /// Component rows.
    pub components: Vec<Row>,
    /// Remarks (topology, oversubscription, what is excluded).
    pub notes: Vec<String>,
}

fn us(v: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let x = v as f64 / 1_000.0;
    x
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "host: {}", self.host)?;
        let mut table = |title: &str, rows: &[Row]| -> std::fmt::Result {
            writeln!(f, "\n{title}")?;
            writeln!(
                f,
                "  {:<44} {:>8} {:>10} {:>10} {:>10} {:>10}  note",
                "row", "samples", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
            )?;
            for r in rows {
                writeln!(
                    f,
                    "  {:<44} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3}  {}",
                    r.name,
                    r.count,
                    us(r.p50_ns),
                    us(r.p99_ns),
                    us(r.p999_ns),
                    us(r.max_ns),
                    r.note
                )?;
            }
            Ok(())
        };
        table("tick-to-send (event bytes in -> order request bytes ready)", &self.tick_to_send)?;
        table("components (per operation, each timed on its own)", &self.components)?;
        writeln!(f)?;
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

impl BenchReport {
    /// The report as JSON (`stoic bench --json`).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let rows = |rows: &[Row]| {
            rows.iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name, "count": r.count, "p50_ns": r.p50_ns, "p99_ns": r.p99_ns,
                        "p999_ns": r.p999_ns, "max_ns": r.max_ns, "note": r.note,
                    })
                })
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "host": self.host,
            "tick_to_send": rows(&self.tick_to_send),
            "components": rows(&self.components),
            "notes": self.notes,
        })
    }
}

/// Why the bench stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The WAL failed.
    #[error("WAL: {0}")]
    Wal(#[from] WalError),
    /// The scenario did not behave as designed (a regression, not a measurement).
    #[error("scenario check failed: {0}")]
    Scenario(String),
    /// A pinned stage thread panicked.
    #[error("a pinned stage thread panicked")]
    Thread,
}

fn host_description() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} logical cores, {model}")
}

/// Compact topology: every stage inline on the calling thread; one sample per event that
/// produced at least one request.
fn run_compact(
    policy: &Policy,
    frames: &[Vec<u8>],
    wal: Option<Wal>,
) -> Result<(Histogram<u64>, GateCounts), BenchError> {
    let mut pipeline = scenario_pipeline(policy, scenario_quoter(), wal);
    let mut h = histogram();
    let mut sink = 0_usize;
    for frame in frames {
        let t0 = Instant::now();
        let ready = pipeline.on_frame(frame)?;
        if ready > 0 {
            sink = sink.wrapping_add(pipeline.gate.wire().len());
            let _ = h.record(ns(t0.elapsed()));
        }
    }
    std::hint::black_box(sink);
    let counts = pipeline.gate.counts();
    check_counts(frames.len(), counts, pipeline.gate.last_reject())?;
    Ok((h, counts))
}

fn check_counts(
    frames: usize,
    counts: GateCounts,
    last_reject: Option<crate::domain::reason_codes::RejectReasonCode>,
) -> Result<(), BenchError> {
    // Snapshot: 2 places; each change: 2 cancels + 2 places.
    let expected = 2 + 4 * (frames as u64 - 1);
    if counts.rejected != 0 || counts.requests != expected {
        return Err(BenchError::Scenario(format!(
            "expected {expected} requests and no gate rejects, got {counts:?} (last reject {last_reject:?})"
        )));
    }
    Ok(())
}

/// Messages between the pinned stages.
#[derive(Debug, Clone, Copy)]
struct TickMsg {
    t0: Instant,
    tick: BookTick,
}

#[derive(Debug, Clone)]
// Inline on purpose: ring slots are preallocated; boxing would allocate per message.
#[allow(clippy::large_enum_variant)]
enum GateMsg {
    Action { action: StrategyAction, book: Option<BookView>, now_ms: i64 },
    EndOfTick { t0: Instant, now_ms: i64 },
}

fn spin_push<T>(
    producer: &mut rtrb::Producer<T>,
    mut value: T,
    stop: &std::sync::atomic::AtomicBool,
) -> bool {
    loop {
        match producer.push(value) {
            Ok(()) => return true,
            Err(rtrb::PushError::Full(v)) => {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return false;
                }
                value = v;
                std::hint::spin_loop();
            }
        }
    }
}

/// Durable requests from the gate stage to the dispatch stage.
#[derive(Debug, Clone, Copy)]
// Inline on purpose: ring slots are preallocated; boxing would allocate per message.
#[allow(clippy::large_enum_variant)]
enum DispatchMsg {
    Request(Outgoing),
    EndOfTick { t0: Instant },
}

/// Pinned topology: feed, strategy, gate and dispatch stages on four busy-spinning threads
/// joined by `rtrb` rings (the engine's `pinned` layout: the gate journals, the dispatch
/// stage encodes the durable requests for the socket and reports back to the strategy),
/// pinned with `core_affinity` (round-robin when there are fewer cores than stages, which
/// the report says). One event in flight at a time: the feed thread sends the next frame
/// only after the dispatch thread finished the previous one, so the samples are latency, not
/// queueing. Stops early at `wall_max`.
fn run_pinned(
    policy: &Policy,
    frames: &[Vec<u8>],
    wal: Option<Wal>,
    wall_max: Duration,
) -> Result<(Histogram<u64>, GateCounts, usize, String), BenchError> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let Pipeline { mut feed, strategy: mut strat, mut gate } =
        scenario_pipeline(policy, scenario_quoter(), wal);
    let (mut tick_tx, mut tick_rx) = rtrb::RingBuffer::<TickMsg>::new(64);
    let (mut gate_tx, mut gate_rx) = rtrb::RingBuffer::<GateMsg>::new(256);
    let (mut report_tx, mut report_rx) = rtrb::RingBuffer::<Report>::new(256);
    let (mut dispatch_tx, mut dispatch_rx) = rtrb::RingBuffer::<DispatchMsg>::new(256);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let cores = crate::ring::available_cores().len();
    let detail = format!(
        "4 spinning stage threads (feed, strategy, gate, dispatch) pinned round-robin on \
         {cores} core(s){}",
        if cores < 4 { " (oversubscribed: threads share cores and get descheduled)" } else { "" }
    );

    let strategy_thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = crate::ring::pin_current_thread(cores_for(1));
            let mut reports = Vec::with_capacity(256);
            while !stop.load(Ordering::Relaxed) {
                let Ok(msg) = tick_rx.pop() else {
                    std::hint::spin_loop();
                    continue;
                };
                reports.clear();
                while let Ok(r) = report_rx.pop() {
                    reports.push(r);
                }
                strat.apply_reports(&reports);
                strat.tick(&msg.tick);
                for action in strat.actions() {
                    let book = match action {
                        StrategyAction::Place(i) => {
                            strat.view(i.fields().instrument.name()).copied()
                        }
                        StrategyAction::Cancel(_) => None,
                    };
                    // Clone of Copy fields only: no heap.
                    let m =
                        GateMsg::Action { action: action.clone(), book, now_ms: msg.tick.now_ms };
                    if !spin_push(&mut gate_tx, m, &stop) {
                        return;
                    }
                }
                let end = GateMsg::EndOfTick { t0: msg.t0, now_ms: msg.tick.now_ms };
                if !spin_push(&mut gate_tx, end, &stop) {
                    return;
                }
            }
        })
    };
    let gate_thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || -> Result<GateCounts, WalError> {
            let _ = crate::ring::pin_current_thread(cores_for(2));
            gate.begin_tick();
            while !stop.load(Ordering::Relaxed) {
                let Ok(msg) = gate_rx.pop() else {
                    std::hint::spin_loop();
                    continue;
                };
                match msg {
                    GateMsg::Action { action, book, now_ms } => {
                        gate.handle(&action, book.as_ref(), now_ms);
                    }
                    GateMsg::EndOfTick { t0, now_ms } => {
                        // Durable first; only then does anything go to the dispatch stage.
                        for out in gate.record_tick(now_ms)? {
                            if !spin_push(&mut dispatch_tx, DispatchMsg::Request(*out), &stop) {
                                return Ok(gate.counts());
                            }
                        }
                        if !spin_push(&mut dispatch_tx, DispatchMsg::EndOfTick { t0 }, &stop) {
                            return Ok(gate.counts());
                        }
                        gate.begin_tick();
                    }
                }
            }
            Ok(gate.counts())
        })
    };
    let dispatch_thread = {
        let stop = Arc::clone(&stop);
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> (Histogram<u64>, GateCounts) {
            let _ = crate::ring::pin_current_thread(cores_for(3));
            let mut h = histogram();
            let mut encoder = WireEncoder::default();
            while !stop.load(Ordering::Relaxed) {
                let Ok(msg) = dispatch_rx.pop() else {
                    std::hint::spin_loop();
                    continue;
                };
                match msg {
                    DispatchMsg::Request(out) => encoder.encode(&out),
                    DispatchMsg::EndOfTick { t0 } => {
                        if !encoder.wire().is_empty() {
                            std::hint::black_box(encoder.wire().len());
                            let _ = h.record(ns(t0.elapsed()));
                        }
                        for r in encoder.reports() {
                            if !spin_push(&mut report_tx, *r, &stop) {
                                return (h, encoder.counts());
                            }
                        }
                        encoder.begin();
                        done.fetch_add(1, Ordering::Release);
                    }
                }
            }
            (h, encoder.counts())
        })
    };

    let feed_thread = {
        let stop = Arc::clone(&stop);
        let done = Arc::clone(&done);
        let frames: Vec<Vec<u8>> = frames.to_vec();
        std::thread::spawn(move || -> usize {
            let _ = crate::ring::pin_current_thread(cores_for(0));
            let started = Instant::now();
            let mut sent = 0_usize;
            for frame in &frames {
                if started.elapsed() > wall_max {
                    break;
                }
                let t0 = Instant::now();
                let Ok(tick) = feed.on_frame(frame) else { continue };
                if !spin_push(&mut tick_tx, TickMsg { t0, tick }, &stop) {
                    break;
                }
                sent += 1;
                let target = sent as u64;
                while done.load(Ordering::Acquire) < target {
                    if started.elapsed() > wall_max * 2 {
                        return sent;
                    }
                    std::hint::spin_loop();
                }
            }
            sent
        })
    };
    let sent = feed_thread.join().map_err(|_| BenchError::Thread)?;
    stop.store(true, Ordering::Relaxed);
    strategy_thread.join().map_err(|_| BenchError::Thread)?;
    let gate_counts = gate_thread.join().map_err(|_| BenchError::Thread)??;
    let (h, sent_counts) = dispatch_thread.join().map_err(|_| BenchError::Thread)?;
    let counts = GateCounts { rejected: gate_counts.rejected, ..sent_counts };
    Ok((h, counts, sent, detail))
}

fn cores_for(stage: usize) -> Option<core_affinity::CoreId> {
    let cores = crate::ring::available_cores();
    (!cores.is_empty()).then(|| cores[stage % cores.len()])
}

/// Component rows, each operation timed on its own over the scenario's frames.
fn run_components(policy: &Policy, frames: &[Vec<u8>]) -> Result<Vec<Row>, BenchError> {
    let mut rows = Vec::new();

    // The cost of the measurement itself.
    let mut clock = histogram();
    for _ in 0..frames.len() {
        let t0 = Instant::now();
        let _ = clock.record(ns(t0.elapsed()));
    }
    rows.push(Row::from_hist("clock: Instant::now pair (timer overhead)", &clock, String::new()));

    // Decode: typed (ours) vs raw simd-json to a borrowed DOM, same bytes, same run.
    let mut decoder = Decoder::with_levels_max(PIPELINE_BOOK_DEPTH * 4);
    let mut buffers = simd_json::Buffers::new(4096);
    let mut buf: Vec<u8> = Vec::with_capacity(PIPELINE_FRAME_BYTES_MAX);
    let (mut typed, mut raw) = (histogram(), histogram());
    for frame in frames {
        buf.clear();
        buf.extend_from_slice(frame);
        let t0 = Instant::now();
        let ok = simd_json::to_borrowed_value_with_buffers(&mut buf, &mut buffers).is_ok();
        let _ = raw.record(ns(t0.elapsed()));
        std::hint::black_box(ok);
        buf.clear();
        buf.extend_from_slice(frame);
        let t0 = Instant::now();
        let ok = matches!(decoder.decode(&mut buf), Ok(Message::Notification(_)));
        let _ = typed.record(ns(t0.elapsed()));
        if !ok {
            return Err(BenchError::Scenario("a scenario frame did not decode".into()));
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let ratio = typed.value_at_quantile(0.5) as f64 / raw.value_at_quantile(0.5).max(1) as f64;
    rows.push(Row::from_hist("decode: raw simd-json -> BorrowedValue", &raw, String::new()));
    rows.push(Row::from_hist(
        "decode: stoic typed (BookUpdate, Decimal8)",
        &typed,
        format!("p50 ratio typed/raw = {ratio:.2}"),
    ));

    // Book update and view, strategy tick, gate chain, encoding: through the stages.
    let mut pipeline = scenario_pipeline(policy, scenario_quoter(), None);
    let (mut apply, mut view, mut strat, mut gates, mut encode) =
        (histogram(), histogram(), histogram(), histogram(), histogram());
    let name = pipeline.feed.names[0];
    for frame in frames {
        buf.clear();
        buf.extend_from_slice(frame);
        let Ok(Message::Notification(n)) = decoder.decode(&mut buf) else {
            return Err(BenchError::Scenario("a scenario frame did not decode".into()));
        };
        let NotificationData::Book(update) = n.data else {
            return Err(BenchError::Scenario("a scenario frame is not a book".into()));
        };
        let book = &mut pipeline.feed.books[0];
        let t0 = Instant::now();
        let applied = book.apply(&update);
        let _ = apply.record(ns(t0.elapsed()));
        if applied.is_err() {
            return Err(BenchError::Scenario("a scenario change did not chain".into()));
        }
        let t0 = Instant::now();
        let v = view_of(name, book);
        let _ = view.record(ns(t0.elapsed()));
        let tick = BookTick { now_ms: update.timestamp, view: v };

        let Pipeline { strategy, gate, .. } = &mut pipeline;
        gate.begin_tick();
        let t0 = Instant::now();
        strategy.tick(&tick);
        let _ = strat.record(ns(t0.elapsed()));
        for action in strategy.actions() {
            let t0 = Instant::now();
            gate.handle(action, Some(&tick.view), tick.now_ms);
            if matches!(action, StrategyAction::Place(_)) {
                let _ = gates.record(ns(t0.elapsed()));
            }
        }
        let t0 = Instant::now();
        let ready = gate.finish_tick(tick.now_ms)?;
        if ready > 0 {
            let _ = encode.record(ns(t0.elapsed()) / ready as u64);
        }
        strategy.apply_reports(gate.reports());
    }
    check_counts(frames.len(), pipeline.gate.counts(), pipeline.gate.last_reject())?;
    rows.push(Row::from_hist("book update: L2Book::apply (decoded change)", &apply, String::new()));
    rows.push(Row::from_hist("book view: L2Book -> BookView (top 10)", &view, String::new()));
    rows.push(Row::from_hist(
        "strategy: quoter on_tick",
        &strat,
        "2 cancels + 2 places per tick".into(),
    ));
    rows.push(Row::from_hist("gate chain: evaluate one place (all gates)", &gates, String::new()));
    rows.push(Row::from_hist(
        "encode: JSON-RPC request bytes, per request",
        &encode,
        String::new(),
    ));
    Ok(rows)
}

/// One-way ring hop: half the round trip of a `u64` between two spinning threads over two
/// `rtrb` rings.
fn run_ring_hop(round_trips: usize) -> Row {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (mut to_echo, mut echo_rx) = rtrb::RingBuffer::<u64>::new(64);
    let (mut echo_tx, mut from_echo) = rtrb::RingBuffer::<u64>::new(64);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = crate::ring::pin_current_thread(cores_for(1));
            while !stop.load(Ordering::Relaxed) {
                if let Ok(v) = echo_rx.pop() {
                    let _ = spin_push(&mut echo_tx, v, &stop);
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut h = histogram();
    let pinger = std::thread::spawn(move || {
        let _ = crate::ring::pin_current_thread(cores_for(0));
        let never = AtomicBool::new(false);
        for i in 0..round_trips as u64 {
            let t0 = Instant::now();
            let _ = spin_push(&mut to_echo, i, &never);
            loop {
                if let Ok(v) = from_echo.pop() {
                    debug_assert_eq!(v, i);
                    break;
                }
                std::hint::spin_loop();
            }
            let _ = h.record((ns(t0.elapsed()) / 2).max(1));
        }
        h
    });
    let h = pinger.join().unwrap_or_else(|_| histogram());
    stop.store(true, Ordering::Relaxed);
    let _ = echo.join();
    Row::from_hist(
        "ring hop: rtrb one way (round trip / 2)",
        &h,
        "two spinning threads, pinned to cores 0 and 1".into(),
    )
}

/// WAL append of one intent record + sync, alone.
fn run_wal_row(policy: &Policy, dir: &Path, n: usize) -> Result<Row, BenchError> {
    let mut wal = bench_wal(dir)?;
    let mut pipeline = scenario_pipeline(policy, scenario_quoter(), None);
    let frames = scenario_frames(1);
    let _ = pipeline.on_frame(&frames[0])?;
    let mut h = histogram();
    // The quoter's first tick places a bid: journal that intent (with a varying hash).
    let intent = pipeline
        .strategy
        .actions()
        .iter()
        .find_map(|a| match a {
            StrategyAction::Place(intent) => Some(*intent),
            StrategyAction::Cancel(_) => None,
        })
        .ok_or_else(|| BenchError::Scenario("no intent to journal".into()))?;
    let label = Label::for_intent(&intent).map_err(|e| BenchError::Scenario(e.to_string()))?;
    let parts = Label::parse(label.as_str()).map_err(|e| BenchError::Scenario(e.to_string()))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (sid, gid) = (text(&parts.sid8), text(&parts.gid12));
    for k in 0..n as u64 {
        // A distinct hash and label per record (the ledger refuses reuse), built untimed.
        let hash = intent.hash().value() ^ k;
        let label = Label::compose(&sid, &gid, 0, &format!("{hash:016x}"))
            .map_err(|e| BenchError::Scenario(e.to_string()))?;
        let t0 = Instant::now();
        wal.append(
            SCENARIO_START_MS,
            &Record::IntentRecorded {
                intent_hash: hash,
                label: label.as_str(),
                canonical: intent.canonical_bytes().as_bytes(),
            },
        )?;
        let _durable = wal.sync()?;
        let _ = h.record(ns(t0.elapsed()));
    }
    Ok(Row::from_hist("wal: append intent record + sync", &h, "pwrite + fdatasync".into()))
}

/// Runs every row: tick-to-send for compact and pinned, each without and with a WAL
/// append + sync (real [`Wal`] under `wal_dir`, which must be on the filesystem to judge),
/// and the component rows.
///
/// # Errors
/// [`BenchError`].
pub fn run_bench(
    policy: &Policy,
    sizes: BenchSizes,
    wal_dir: &Path,
) -> Result<BenchReport, BenchError> {
    let mut notes = Vec::new();
    let frames = scenario_frames(sizes.events);
    let mut tick_to_send = Vec::new();

    let (h, _) = run_compact(policy, &frames, None)?;
    tick_to_send.push(Row::from_hist("compact, excluding WAL sync", &h, "single thread".into()));
    let (h, _) = run_compact(
        policy,
        &frames[..=sizes.wal_events],
        Some(bench_wal(&wal_dir.join("compact"))?),
    )?;
    tick_to_send.push(Row::from_hist(
        "compact, including WAL append + sync",
        &h,
        "one fdatasync per tick (2 intents)".into(),
    ));

    let pinned_frames = &frames[..=sizes.pinned_events];
    let (h, _, sent, detail) = run_pinned(policy, pinned_frames, None, sizes.pinned_wall_max)?;
    tick_to_send.push(Row::from_hist("pinned, excluding WAL sync", &h, format!("{sent} events")));
    notes.push(format!("pinned: {detail}"));
    if sent + 1 < pinned_frames.len() {
        notes.push(format!(
            "pinned (no WAL) stopped at the {:?} wall-clock cap after {sent} of {} events",
            sizes.pinned_wall_max,
            pinned_frames.len()
        ));
    }
    let wal_frames = &frames[..=sizes.pinned_events.min(sizes.wal_events)];
    let (h, _, sent_wal, _) = run_pinned(
        policy,
        wal_frames,
        Some(bench_wal(&wal_dir.join("pinned"))?),
        sizes.pinned_wall_max,
    )?;
    tick_to_send.push(Row::from_hist(
        "pinned, including WAL append + sync",
        &h,
        format!("{sent_wal} events"),
    ));
    if sent_wal + 1 < wal_frames.len() {
        notes.push(format!(
            "pinned (WAL) stopped at the {:?} wall-clock cap after {sent_wal} of {} events",
            sizes.pinned_wall_max,
            wal_frames.len()
        ));
    }

    let mut components = run_components(policy, &frames)?;
    components.push(run_ring_hop(sizes.ring_round_trips));
    components.push(run_wal_row(policy, &wal_dir.join("alone"), sizes.wal_events)?);

    notes.push(
        "tick-to-send starts before the frame is copied and decoded and ends when every request \
         of the tick (2 cancels + 2 post-only places after the first) is encoded; a sample per \
         event"
            .into(),
    );
    notes.push(
        "scenario: one BTC option, book changes that move the mid 2 ticks each, the quoter \
         requoting on every change; policy = config/policy.json with the order-rate limits \
         raised"
            .into(),
    );
    Ok(BenchReport { host: host_description(), tick_to_send, components, notes })
}
