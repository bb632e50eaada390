//! The engine: market data (feed thread) → strategy → gate chain → reserve → WAL (one sync
//! per batch) → dispatch → execution reports (trading thread). See docs/engine.md.
//!
//! Threads: the feed stage (`feed.rs`) owns the market-data session and the books and hands
//! book changes over through `hotpath::ring::book_board` (seqlock slots + a conflating notice
//! ring); the trading stage is this struct, driven by [`Engine::run_until`] on the caller's
//! thread: it owns the WAL, the trading session (the dispatch chokepoint), the strategy, the
//! ledger and positions. Topology (`pinned`/`compact`) decides pinning and wait strategy.
//!
//! Start-up (and every reconnect) follows one rule: the open-permission latch is set, every
//! in-doubt intent of the WAL is resolved with the venue by label, venue positions are
//! adopted, and only then is the latch cleared and the strategy ticked. Nothing in flight is
//! ever resent; an intent the venue never saw is journaled `Abandoned`.

mod control;
pub mod dispatch_stage;
pub mod edge;
pub mod emergency;
pub mod feed;
pub mod groups;
pub mod hot_state;
pub mod kill_containment;
mod live;
mod market_data;
mod metadata;
pub mod open_sweep;
pub mod operator_socket;
pub mod pnl;
mod reconcile;
pub mod reconcile_service;
mod reports;
pub mod risk_watch;
pub mod status;
#[cfg(test)]
mod status_tests;
pub mod strategies;
pub mod strategy_stage;
mod tick;
pub mod trace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::clock::{Clock, SystemClock};
use hotpath::dispatch::IntentPipeline;
use hotpath::dispatch::{Dispatcher, DispatcherConfig, DispatcherError, ExecReport, PipelineEvent};
use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::Side;
use hotpath::domain::metadata::InstrumentCache;
use hotpath::domain::policy::{Policy, PolicyError};
use hotpath::domain::reason_codes::{RiskState, TradingMode};
use hotpath::domain::units::{Price, Qty};
use hotpath::gates::chain::Accepted;
use hotpath::gates::rate::OrderRateBucket;
use hotpath::mode::PolicyGuard;
use hotpath::ring::Topology;
use hotpath::strategy::{ActionBuffer, IndexPrices, Strategy};
use hotpath::venue::auth::Credentials;
use hotpath::venue::conn::ConnError;
use hotpath::wal::{IntentState, OperatorActionKind, Record, Wal, WalConfig, WalError};

pub use market_data::{MarketView, TradingBuffers};

/// Attempts to (re)connect before giving up.
const CONNECT_ATTEMPTS: u32 = 20;
/// Longest a `compact` trading thread blocks in one trading-session poll: book notices are
/// picked up at least this often.
pub const EXEC_POLL_SLICE: Duration = Duration::from_millis(1);
/// How often the trading thread publishes its status snapshot and serves control commands
/// (the snapshot is a cold-path copy with strings; it is kept off the per-event path).
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(50);

/// Everything the engine needs to run.
pub struct EngineOptions {
    /// Venue WebSocket URL.
    pub venue_url: String,
    /// Trading API key.
    pub credentials: Credentials,
    /// WAL directory.
    pub wal_dir: PathBuf,
    /// Policy file.
    pub policy_path: PathBuf,
    /// Builds the strategy once instruments are loaded (`strategies::factory`).
    pub strategy: strategies::StrategyFactory,
    /// `Pinned`: the trading thread polls its session without blocking (busy-spin) and the
    /// feed thread is pinned and spins; `Compact`: both block in their socket polls (short
    /// slices). Which cores: [`EngineOptions::cores`].
    pub topology: Topology,
    /// Cores for (feed, gate, strategy, dispatch) under `Pinned` (from
    /// `hotpath::ring::core_plan`).
    pub cores: [Option<hotpath::ring::topology::CoreId>; 4],
    /// Start the feed thread (false: the caller attaches a board itself, as tests do).
    pub spawn_feed: bool,
    /// Run the strategy on its own thread (`strategy_stage.rs`; `pinned` sets it) instead of
    /// inline on the trading thread.
    pub strategy_thread: bool,
    /// Idle behaviour of the strategy thread (`Spin` pinned; tests park).
    pub strategy_wait: hotpath::ring::WaitStrategy,
    /// Run dispatch (socket writes, replies → execution reports) on its own thread
    /// (`dispatch_stage.rs`; `pinned` sets it) instead of on the gate thread.
    pub dispatch_thread: bool,
    /// Idle behaviour of the dispatch thread (`Spin` pinned; tests park).
    pub dispatch_wait: hotpath::ring::WaitStrategy,
    /// Stop after this many intents were journaled by this process.
    pub max_intents: Option<u64>,
    /// Strategy tick period.
    pub tick: Duration,
    /// Operator token for the start-up relax to Active after a clean reconciliation (paper /
    /// simulator runs). `None`: the engine stays ReduceOnly until an operator relaxes it.
    pub startup_operator_token: Option<String>,
    /// Taker fee in basis points (the edge model's fee for orders that may take).
    pub taker_fee_bps: f64,
    /// Maker fee in basis points (post-only orders).
    pub maker_fee_bps: f64,
    /// Per process start; on every log line about an intent.
    pub run_id: String,
    /// Producer end of the trace ring (the cold sink stamps `run_id` on what it drains).
    pub trace: hotpath::trace::TraceProducer,
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("venue_url", &self.venue_url)
            .field("wal_dir", &self.wal_dir)
            .field("policy_path", &self.policy_path)
            .field("max_intents", &self.max_intents)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// Engine failures (start-up or fatal).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The WAL could not be opened or written.
    #[error("wal: {0}")]
    Wal(#[from] WalError),
    /// The venue could not be reached or answered wrongly.
    #[error("dispatch: {0}")]
    Dispatch(#[from] DispatcherError),
    /// Market-data connection failure.
    #[error("market data: {0}")]
    Conn(#[from] ConnError),
    /// Instrument metadata could not be loaded.
    #[error("instruments: {0}")]
    Instruments(String),
    /// Reconciliation did not clear the latch.
    #[error("reconcile: {0}")]
    Reconcile(String),
    /// The policy is one the engine must not start with (caps above the environment's ceiling).
    #[error("policy refused: {0}")]
    PolicyRefused(PolicyError),
}

/// Counters shown in progress lines and the status snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Intents journaled by this process.
    pub intents: u64,
    /// Orders written to the venue.
    pub sent: u64,
    /// Cancel requests written to the venue (strategy cancels by label).
    pub cancels_sent: u64,
    /// Acknowledged by the venue.
    pub acked: u64,
    /// Fill reports received.
    pub fills: u64,
    /// Orders completely filled.
    pub filled: u64,
    /// Orders cancelled (IOC remainders included).
    pub cancelled: u64,
    /// Orders rejected by the venue.
    pub venue_rejects: u64,
    /// Intents refused by the gates.
    pub gate_rejects: u64,
    /// Intents the WAL could not record.
    pub wal_failures: u64,
    /// Risk-reducing intents dispatched unjournaled because the WAL could not record them.
    pub unjournaled_sent: u64,
    /// Intents abandoned (never seen by the venue).
    pub abandoned: u64,
    /// In-doubt intents resolved at start and at reconnects.
    pub in_doubt_resolved: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Book gaps recovered by resubscribing (feed thread).
    pub resubscribes: u64,
    /// Book changes the trading thread consumed (notices popped).
    pub market_events: u64,
    /// Book-change notices dropped because the ring was full (the books were not lost).
    pub notice_overflows: u64,
    /// Strategy ticks run.
    pub ticks: u64,
    /// Actions (places + cancels) the strategy produced.
    pub actions: u64,
    /// Strategy ticks whose actions were refused because the action ring was full
    /// (`IntentRingFull`; strategy thread only).
    pub intent_ring_full: u64,
    /// Ticks whose places were refused `IntentRingFull` because the gate → dispatch ring had
    /// no free batch (pinned only).
    pub dispatch_ring_full: u64,
    /// Place batches the dispatch thread wrote (pinned; 0 when the gate sends itself).
    pub dispatch_batches: u64,
    /// Execution reports the dispatch thread decoded and handed to the gate.
    pub dispatch_reports: u64,
    /// Times the gate took the session back from the dispatch thread for cold work.
    pub dispatch_reclaims: u64,
}

/// What the last reconciliation found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileSummary {
    /// In-doubt intents found.
    pub in_doubt: u64,
    /// Live at the venue (order id adopted).
    pub live: u64,
    /// Filled.
    pub filled: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Rejected.
    pub rejected: u64,
    /// Never seen ⇒ abandoned.
    pub abandoned: u64,
}

/// A published view of the engine (status page, progress lines).
#[derive(Debug, Clone)]
pub struct EngineSnapshot {
    /// Run id.
    pub run_id: String,
    /// Published trading mode.
    pub mode: TradingMode,
    /// Risk state.
    pub risk_state: RiskState,
    /// Whether the open-permission latch is set.
    pub latched: bool,
    /// Counters.
    pub stats: EngineStats,
    /// Positions by instrument (amount units, 1e-8).
    pub positions: Vec<(String, i64)>,
    /// Live orders.
    pub live_orders: usize,
    /// In-doubt intents in the ledger.
    pub in_doubt: usize,
    /// Sticky mode reasons.
    pub mode_reasons: Vec<hotpath::domain::reason_codes::ModeReasonCode>,
    /// Latch codes.
    pub latch_codes: Vec<hotpath::domain::reason_codes::OpenPermissionReasonCode>,
    /// When the snapshot was taken (loop tick, engine clock: simulated time in a paper run).
    pub at_ms: i64,
    /// When the snapshot was taken, wall clock (ms since the epoch): how a reader tells a
    /// stalled loop from a live one, whatever the engine clock is.
    pub published_wall_ms: i64,
    /// Why the policy did not load (`None`: it did). The engine then refuses every intent.
    pub policy_error: Option<String>,
    /// The latest gate refusal (code, gate).
    pub last_gate_reject: Option<String>,
    /// Realised cash flow of fills in quote terms (price × amount, sells positive), 1e-8.
    pub cash_flow: i128,
    /// The day's PnL (capital stop input), with holdings, marks and average prices.
    pub daily_pnl: pnl::PnlView,
    /// Recent mode transitions, oldest first.
    pub mode_transitions: Vec<risk_watch::ModeTransition>,
    /// Live orders (label order).
    pub open_orders: Vec<OpenOrderRow>,
    /// What the last reconciliation found.
    pub last_reconcile: ReconcileSummary,
    /// When it completed (engine clock), `None` before the first.
    pub last_reconcile_ms: Option<i64>,
    /// Gate refusals by reject code since start.
    pub rejects_by_code: Vec<(&'static str, u64)>,
    /// Deployment environment of the loaded policy (`None`: the policy did not load).
    pub environment: Option<&'static str>,
    /// SHA-256 (hex) of the policy file as loaded (`"unreadable"` when it could not be read).
    pub config_hash: String,
    /// The daily loss limit in force (`None`: the policy did not load).
    pub max_daily_loss_usd: Option<hotpath::domain::units::Usd>,
    /// PnL marked at the books' mids: cash flow + Σ position × mid (same units), 1e-8.
    /// Positions in instruments without a book are left out.
    pub pnl_mark: i128,
    /// Continuous reconciliation and health inputs (`/status` `reconcile`).
    pub recon: reconcile_service::ReconView,
}

/// A live order as /status shows it (amounts and prices raw 1e-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrderRow {
    /// Our label.
    pub label: String,
    /// Instrument.
    pub instrument: String,
    /// Buy (true) or sell.
    pub buy: bool,
    /// Limit price.
    pub price: i64,
    /// Order amount.
    pub amount: i64,
    /// Filled so far.
    pub filled: i64,
    /// The gates classified it risk-reducing (unknown for orders adopted at reconciliation).
    pub reducing: bool,
}

#[derive(Debug, Clone)]
struct LiveIntent {
    intent_hash: u64,
    accepted: Option<Accepted>,
    instrument: InstrumentName,
    side: Side,
    price: Price,
    qty: i64,
}

impl LiveIntent {
    /// The live entry of an intent about to be sent (`accepted` once the gates granted it).
    fn of(intent: &hotpath::domain::intent::OrderIntent, accepted: Option<Accepted>) -> Self {
        let f = intent.fields();
        Self {
            intent_hash: intent.hash().value(),
            accepted,
            instrument: f.instrument.name(),
            side: f.side,
            price: f.limit_price.unwrap_or(Price::from_raw(0)),
            qty: f.qty.raw(),
        }
    }
}

/// The engine.
pub struct Engine {
    opts_url: String,
    credentials: Credentials,
    run_id: String,
    clock: Arc<dyn Clock>,
    /// Heartbeats, request timeouts and credits: always the wall clock, even when `clock`
    /// runs simulated time (`stoic paper`), because the network is not accelerated.
    transport_clock: Arc<dyn Clock>,
    wal: Wal,
    policy: Result<Policy, PolicyError>,
    guard: PolicyGuard,
    instruments: InstrumentCache,
    instruments_ms: i64,
    market: MarketView,
    feed: Option<feed::FeedHandle>,
    /// Public session for the emergency close's tickers (opened on first use).
    ticker_md: Option<hotpath::venue::conn::Connection>,
    spawn_feed: bool,
    topology: Topology,
    cores: [Option<hotpath::ring::topology::CoreId>; 4],
    index: IndexPrices,
    /// The trading session while the gate thread holds it (always under `compact`; under
    /// `pinned` only for cold work, see `dispatch_stage.rs`).
    disp: Option<Box<Dispatcher>>,
    dispatch_thread: bool,
    dispatch_wait: hotpath::ring::WaitStrategy,
    /// The dispatch thread's link, when it runs.
    dispatch: Option<dispatch_stage::DispatchLink>,
    /// Outputs collected while reclaiming the session (reused).
    dispatch_backlog: Vec<dispatch_stage::DispatchOutput>,
    /// A session failure the dispatch thread reported, for the next poll to return.
    dispatch_failure: Option<DispatcherError>,
    /// Hot state for cold readers (seqlock) and the buffer it is filled in.
    hot: hotpath::ring::SnapshotWriter<hot_state::HotState>,
    hot_buf: hot_state::HotState,
    pipeline: IntentPipeline,
    positions: BTreeMap<InstrumentName, Qty>,
    live: live::LiveOrders,
    strategy: Option<Box<dyn Strategy>>,
    factory: Option<strategies::StrategyFactory>,
    instrument_names: Vec<InstrumentName>,
    strategy_thread: bool,
    strategy_wait: hotpath::ring::WaitStrategy,
    stage: Option<strategy_stage::StrategyLink>,
    bufs: TradingBuffers,
    actions: ActionBuffer,
    stats: EngineStats,
    max_intents: Option<u64>,
    tick: Duration,
    operator_token: Option<String>,
    taker_fee_bps: f64,
    maker_fee_bps: f64,
    reports: Vec<ExecReport>,
    last_reconcile: ReconcileSummary,
    cash_flow: i128,
    events: Vec<PipelineEvent>,
    last_gate_reject:
        Option<(hotpath::domain::reason_codes::RejectReasonCode, hotpath::gates::chain::GateName)>,
    control: Option<status::ControlPort>,
    daily_pnl: pnl::DailyPnl,
    mode_history: risk_watch::ModeHistory,
    /// Gate refusals by code, indexed like `RejectReasonCode::ALL` (a fixed table: counting
    /// a code for the first time allocates nothing).
    rejects_by_code: [u64; hotpath::domain::reason_codes::RejectReasonCode::ALL.len()],
    /// Start of the UTC day on which the capital stop tripped.
    capital_stop_day: Option<i64>,
    last_reconcile_ms: Option<i64>,
    config_hash: String,
    groups: groups::GroupDesk,
    trace: trace::EngineTrace,
    recon: reconcile_service::ReconState,
    /// The WAL directory (the Kill record lives next to the WAL).
    wal_dir: PathBuf,
    /// Kill containment and the persisted Kill (`kill_containment.rs`).
    kill: kill_containment::KillContainment,
    /// Restricted-mode cancels of resting risk-increasing orders (`open_sweep.rs`).
    open_sweep: open_sweep::OpenSweep,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("run_id", &self.run_id).finish_non_exhaustive()
    }
}

fn name_of(s: &str) -> Option<InstrumentName> {
    Instrument::parse(s).ok().map(|i| i.name())
}

impl Engine {
    /// Opens the WAL (logging its recovery report) and loads the policy. Connects nothing.
    ///
    /// # Errors
    /// A WAL that cannot be opened (corruption stops start-up).
    pub fn new(opts: EngineOptions) -> Result<Self, EngineError> {
        Self::with_clock(opts, Arc::new(SystemClock))
    }

    /// [`Engine::new`] with trading time read from `clock` (simulated time in `stoic paper`);
    /// sessions keep the wall clock.
    ///
    /// # Errors
    /// As [`Engine::new`].
    pub fn with_clock(opts: EngineOptions, clock: Arc<dyn Clock>) -> Result<Self, EngineError> {
        let now = clock.now_ms();
        let (wal, report) = Wal::open(&opts.wal_dir, WalConfig::default(), now)?;
        println!(
            "wal: run_id={} records_replayed={} last_seq={} in_doubt={} torn_tail={}",
            opts.run_id,
            report.records_replayed,
            report.last_seq,
            report.in_doubt,
            report.torn_tail.is_some()
        );
        let policy = Policy::load_from_path(&opts.policy_path);
        if let Some(e) = policy.as_ref().err().filter(|e| e.code.refuses_start()) {
            return Err(EngineError::PolicyRefused(e.clone()));
        }
        if let Err(e) = &policy {
            tracing::error!(error = %e, "policy failed to load: every intent will be refused");
            println!("policy: FAILED to load ({e}); every intent will be refused (fail closed)");
        }
        let (per_min, burst) = policy
            .as_ref()
            .map(|p| {
                let l = p.effective_risk_limits();
                (l.max_orders_per_minute, l.order_rate_burst)
            })
            .unwrap_or((0, 0));
        let _ = per_min;
        let guard = PolicyGuard::at_start();
        let start_word = guard.cell().load();
        let groups = groups::GroupDesk::new(&policy);
        Ok(Self {
            opts_url: opts.venue_url,
            credentials: opts.credentials,
            run_id: opts.run_id,
            clock,
            transport_clock: Arc::new(SystemClock),
            wal,
            policy,
            guard,
            instruments: InstrumentCache::new(),
            instruments_ms: 0,
            market: MarketView::default(),
            feed: None,
            ticker_md: None,
            spawn_feed: opts.spawn_feed,
            topology: opts.topology,
            cores: opts.cores,
            index: IndexPrices::default(),
            disp: None,
            dispatch_thread: opts.dispatch_thread,
            dispatch_wait: opts.dispatch_wait,
            dispatch: None,
            dispatch_backlog: Vec::new(),
            dispatch_failure: None,
            hot: hotpath::ring::Snapshot::new(hot_state::HotState::EMPTY).0,
            hot_buf: hot_state::HotState::EMPTY,
            pipeline: IntentPipeline::new(OrderRateBucket::full(burst, now)),
            positions: BTreeMap::new(),
            live: live::LiveOrders::default(),
            strategy: None,
            factory: Some(opts.strategy),
            instrument_names: Vec::new(),
            strategy_thread: opts.strategy_thread,
            strategy_wait: opts.strategy_wait,
            stage: None,
            bufs: TradingBuffers::default(),
            actions: ActionBuffer::with_capacity(market_data::ACTIONS_PER_TICK_MAX),
            stats: EngineStats::default(),
            max_intents: opts.max_intents,
            tick: opts.tick,
            operator_token: opts.startup_operator_token,
            taker_fee_bps: opts.taker_fee_bps,
            maker_fee_bps: opts.maker_fee_bps,
            reports: Vec::new(),
            last_reconcile: ReconcileSummary::default(),
            cash_flow: 0,
            events: Vec::with_capacity(8 * market_data::ACTIONS_PER_TICK_MAX),
            last_gate_reject: None,
            control: None,
            daily_pnl: pnl::DailyPnl::new(now),
            mode_history: risk_watch::ModeHistory::new(
                start_word.mode(),
                start_word.mode_reasons(),
            ),
            rejects_by_code: [0; hotpath::domain::reason_codes::RejectReasonCode::ALL.len()],
            capital_stop_day: None,
            last_reconcile_ms: None,
            config_hash: risk_watch::config_hash(&opts.policy_path),
            groups,
            trace: trace::EngineTrace::new(opts.trace),
            recon: reconcile_service::ReconState::default(),
            wal_dir: opts.wal_dir.clone(),
            kill: kill_containment::KillContainment::default(),
            open_sweep: open_sweep::OpenSweep::default(),
        }
        .with_persisted_kill())
    }

    /// A Kill the previous process left (`kill_containment::KILL_STATE_FILE`) applies before
    /// anything connects.
    fn with_persisted_kill(mut self) -> Self {
        if let Some(k) = kill_containment::load(&self.wal_dir) {
            self.restore_kill(&k);
        }
        self
    }

    /// The counters (no allocation; `snapshot` is the cold-path copy).
    #[must_use]
    pub fn stats(&self) -> EngineStats {
        self.stats_now()
    }

    /// The published view.
    #[must_use]
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            run_id: self.run_id.clone(),
            mode: self.guard.cell().mode(),
            risk_state: self.pipeline.risk_state,
            latched: self.guard.latch().is_latched(),
            stats: self.stats_now(),
            positions: self
                .positions
                .iter()
                .map(|(n, q)| (n.as_str().to_owned(), q.raw()))
                .collect(),
            live_orders: self.live.len(),
            in_doubt: self.wal.ledger().in_doubt_len(),
            cash_flow: self.cash_flow,
            pnl_mark: self.cash_flow + self.position_mark_value(),
            last_gate_reject: self.last_gate_reject.map(|(c, g)| format!("{}:{c:?}", g.as_str())),
            mode_reasons: self.guard.cell().load().mode_reasons().to_vec(),
            latch_codes: self.guard.latch().open_permission_reason_codes(),
            at_ms: self.clock.now_ms(),
            published_wall_ms: coldpath::status::now_ms(),
            policy_error: self.policy.as_ref().err().map(ToString::to_string),
            daily_pnl: self.daily_pnl.last().clone(),
            mode_transitions: self.mode_history.recent(),
            open_orders: self.open_order_rows(),
            last_reconcile: self.last_reconcile,
            last_reconcile_ms: self.last_reconcile_ms,
            rejects_by_code: {
                let mut v: Vec<(&'static str, u64)> =
                    hotpath::domain::reason_codes::RejectReasonCode::ALL
                        .iter()
                        .zip(self.rejects_by_code)
                        .filter(|(_, n)| *n > 0)
                        .map(|(c, n)| (c.as_str(), n))
                        .collect();
                v.sort_unstable_by_key(|(k, _)| *k);
                v
            },
            environment: self.policy.as_ref().ok().map(|p| p.environment.as_str()),
            config_hash: self.config_hash.clone(),
            max_daily_loss_usd: self
                .policy
                .as_ref()
                .ok()
                .map(|p| p.effective_risk_limits().max_daily_loss_usd),
            recon: self.recon.view.clone(),
        }
    }

    fn position_mark_value(&self) -> i128 {
        let books = self.market.books();
        self.positions
            .iter()
            .filter_map(|(n, q)| {
                let b = books.iter().find(|b| b.instrument == *n)?;
                let mid = (b.best_bid()?.price.raw() / 2) + (b.best_ask()?.price.raw() / 2);
                Some(i128::from(q.raw()) * i128::from(mid) / 100_000_000)
            })
            .sum()
    }

    /// Journals an operator action (durable on return).
    ///
    /// # Errors
    /// The WAL's error.
    pub fn journal_operator_action(
        &mut self,
        action: OperatorActionKind,
        who: &str,
        reason: &str,
    ) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        self.wal.append(now, &Record::OperatorAction { action, who, reason })?;
        let _ = self.wal.sync()?;
        Ok(())
    }

    /// Connects market data and trading, loads instruments, resolves every in-doubt intent
    /// with the venue, adopts venue positions, and clears the latch. Sends no order.
    ///
    /// # Errors
    /// Connection, query or WAL failure: the latch stays set.
    pub fn start(&mut self) -> Result<ReconcileSummary, EngineError> {
        let summary = self.connect_and_reconcile()?;
        if self.spawn_feed && self.feed.is_none() {
            self.start_feed()?;
        }
        self.start_dispatch_stage()?;
        Ok(summary)
    }

    /// Counters, with the feed thread's (read from its atomics) merged in.
    fn stats_now(&self) -> EngineStats {
        let mut s = self.stats;
        if let Some(c) = self.market.counters() {
            s.resubscribes = c.resubscribes.load(Ordering::Relaxed);
            s.notice_overflows = c.notice_overflows.load(Ordering::Relaxed);
        }
        if let Some(link) = &self.stage {
            let c = &link.counters;
            s.ticks = c.ticks.load(Ordering::Relaxed);
            s.actions = c.actions.load(Ordering::Relaxed);
            s.market_events = c.market_events.load(Ordering::Relaxed);
            s.intent_ring_full = c.intent_ring_full.load(Ordering::Relaxed);
        }
        if let Some(link) = &self.dispatch {
            let c = &link.counters;
            s.dispatch_batches = c.batches.load(Ordering::Relaxed);
            s.dispatch_reports = c.reports.load(Ordering::Relaxed);
            s.dispatch_reclaims = c.returns.load(Ordering::Relaxed);
        }
        s
    }

    /// The instruments whose books the strategy needs (empty before `start`), sorted: slot
    /// order of the book board.
    #[must_use]
    pub fn market_instruments(&self) -> Vec<InstrumentName> {
        self.instrument_names.clone()
    }

    /// The feed's hot counters (atomics), for a cold thread to read; `None` before `start`.
    #[must_use]
    pub fn feed_counters(&self) -> Option<Arc<hotpath::ring::FeedCounters>> {
        self.market.shared_counters()
    }

    /// Attaches the reading end of a book board (its slots must be
    /// [`Self::market_instruments`]): to the trading thread, or — with `strategy_thread` — to
    /// a strategy thread started now with the strategy moved onto it. Returns the thread the
    /// feed should wake.
    ///
    /// # Errors
    /// The strategy thread could not be started.
    pub fn attach_market(
        &mut self,
        reader: hotpath::ring::BookReader,
    ) -> Result<std::thread::Thread, EngineError> {
        if !self.strategy_thread {
            self.market.attach(reader);
            return Ok(std::thread::current());
        }
        let strategy = self
            .strategy
            .take()
            .ok_or_else(|| EngineError::Instruments("no strategy to run".into()))?;
        let cfg = strategy_stage::StrategyStageConfig {
            tick: self.tick,
            wait: self.strategy_wait,
            core: self.cores[2],
        };
        let link = strategy_stage::spawn(
            strategy,
            self.instruments.clone(),
            reader,
            Arc::clone(&self.clock),
            cfg,
        )
        .map_err(|e| EngineError::Reconcile(format!("strategy thread: {e}")))?;
        let thread = link.thread();
        self.stage = Some(link);
        Ok(thread)
    }

    /// The feed thread: a board over the strategy's instruments, the thread publishing into it.
    fn start_feed(&mut self) -> Result<(), EngineError> {
        let names = self.market_instruments();
        if names.is_empty() {
            return Err(EngineError::Instruments("the strategy needs no books".into()));
        }
        let (mut writer, reader) =
            hotpath::ring::book_board(&names, hotpath::ring::BOOK_NOTICE_RING_CAPACITY);
        writer.set_wake(self.attach_market(reader)?);
        let cfg = feed::FeedConfig {
            url: self.opts_url.clone(),
            names,
            wait: self.topology.wait_strategy(),
            core: self.cores[0],
            run_id: self.run_id.clone(),
            health: self.recon.md_shared(),
        };
        let handle =
            feed::spawn(cfg, writer, Arc::clone(&self.clock), Arc::clone(&self.transport_clock))
                .map_err(|e| EngineError::Reconcile(format!("feed thread: {e}")))?;
        self.feed = Some(handle);
        Ok(())
    }

    /// Connect + reconcile, retried as a whole (bounded): a failed reconciliation leaves the
    /// latch set and is simply tried again on fresh sessions.
    fn connect_and_reconcile(&mut self) -> Result<ReconcileSummary, EngineError> {
        let mut last = None;
        for attempt in 0..5u64 {
            match self.connect_all().and_then(|()| self.reconcile()) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    println!("reconcile attempt {attempt} failed: {e} (run_id={})", self.run_id);
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
                }
            }
        }
        Err(last.unwrap_or(EngineError::Reconcile("reconcile failed".into())))
    }

    fn connect_all(&mut self) -> Result<(), EngineError> {
        let mut last: Option<EngineError> = None;
        for attempt in 0..CONNECT_ATTEMPTS {
            match self.try_connect_all() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "connect failed; retrying");
                    self.note_connect_error(&e);
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(self.reconnect_delay_ms()));
                }
            }
        }
        Err(last.unwrap_or(EngineError::Reconcile("connect failed".into())))
    }

    fn try_connect_all(&mut self) -> Result<(), EngineError> {
        self.reclaim_dispatch();
        self.dispatch_failure = None;
        if let Some(d) = self.disp.as_mut() {
            d.close();
        }
        self.disp = None;
        let mut disp = Dispatcher::connect(
            &DispatcherConfig::new(&self.opts_url),
            Arc::clone(&self.transport_clock),
            &self.credentials,
        )?;
        if self.instruments.is_empty() {
            // Futures (churn's perpetuals) and options (the quoter's and vertical's universe).
            for kind in ["future", "option"] {
                let json = disp.instruments_json("any", Some(kind), &mut self.reports)?;
                let now = self.clock.now_ms();
                self.instruments
                    .load_get_instruments(&json, now)
                    .map_err(|e| EngineError::Instruments(e.to_string()))?;
                self.instruments_ms = now;
            }
        }
        // The strategy-factory seam: built once, after the instruments it chooses from.
        if let Some(factory) = self.factory.take() {
            let strategy = factory(&self.instruments).map_err(EngineError::Instruments)?;
            self.bufs.size();
            let mut names = strategy.instruments().to_vec();
            names.sort_unstable();
            names.dedup();
            self.instrument_names = names;
            self.strategy = Some(strategy);
        }
        self.disp = Some(Box::new(disp));
        Ok(())
    }

    fn entry_state(&self, h: u64) -> Option<(IntentState, i64, bool)> {
        self.wal.ledger().get(h).map(|e| (e.state, e.filled_qty, e.venue_order_id.is_some()))
    }

    fn append_checked(&mut self, now: i64, rec: &Record<'_>) -> Result<bool, EngineError> {
        if self.wal.ledger().check(rec).is_err() {
            return Ok(false);
        }
        // An unjournaled intent (dispatched while the WAL could not append) keeps every later
        // step in memory only: it is never in the WAL, so no record of it may be.
        let unjournaled =
            rec.intent_hash().and_then(|h| self.wal.ledger().get(h)).is_some_and(|e| !e.journaled);
        if unjournaled {
            return match self.wal.note_unjournaled(now, rec) {
                Ok(()) => Ok(true),
                Err(_) => Ok(false),
            };
        }
        match self.wal.append(now, rec) {
            Ok(_) => Ok(true),
            Err(e) if e.is_caller_error() => Ok(false),
            Err(e) => {
                self.pipeline.risk_state = RiskState::Degraded;
                Err(e.into())
            }
        }
    }

    /// Reconnects the trading session and reconciles before trading again (the feed thread
    /// reconnects market data on its own).
    fn recover_connection(&mut self, why: &EngineError) -> Result<(), EngineError> {
        self.reclaim_dispatch();
        println!("reconnect: {why} (run_id={})", self.run_id);
        self.on_session_lost(why);
        self.guard.latch().set(hotpath::domain::reason_codes::OpenPermissionReasonCode::SessionTerminationReconcileRequired);
        self.stats.reconnects += 1;
        self.groups_disconnected();
        self.connect_and_reconcile()?;
        self.groups_after_reconnect()?;
        Ok(())
    }

    /// Every book as the trading thread knows it now (cold paths: the emergency close).
    pub(super) fn book_views(&mut self) -> Vec<hotpath::gates::market::BookView> {
        self.absorb_market();
        if self.stage.is_none() {
            self.market.books_for_tick();
        }
        self.market.books().to_vec()
    }

    /// Consumes pending book-change notices (the trading stage's per-market-event work):
    /// refreshes the latest view of each changed book. Allocates nothing. Returns the number
    /// of market events consumed.
    pub fn absorb_market(&mut self) -> usize {
        let n = self.market.absorb();
        self.stats.market_events += n as u64;
        n
    }

    /// One strategy tick now (decide, gate, journal with one sync, dispatch), if the latch
    /// allows trading. Returns whether the strategy ran.
    ///
    /// # Errors
    /// A WAL or session failure (the run loop degrades or reconnects).
    pub fn tick_now(&mut self) -> Result<bool, EngineError> {
        if self.guard.latch().is_latched() {
            return Ok(false);
        }
        self.tick()?;
        Ok(true)
    }

    /// Adopts the account's matching-engine rate limits on the trading session's client-side
    /// credit limiter (the venue's `get_account_summary.limits`; load tests against the
    /// simulator's bench account). Lasts until the session is replaced.
    pub fn adopt_matching_limits(&mut self, limits: hotpath::venue::messages::RateBurst) {
        self.reclaim_dispatch();
        let now = self.transport_clock.now_ms();
        if let Some(d) = self.disp.as_mut() {
            d.adopt_matching_limits(limits, now);
        }
    }

    /// Polls the trading session once (up to `wait`) and applies execution reports.
    ///
    /// # Errors
    /// A session failure.
    pub fn poll_exec_once(&mut self, wait: Duration) -> Result<(), EngineError> {
        self.lend_dispatch();
        self.poll_exec(wait)
    }

    /// Runs until `stop` is set or `max_intents` were journaled and answered; then shuts down
    /// cleanly (cancel open orders, drain replies, stop the feed thread, sync the WAL).
    ///
    /// One turn of the trading stage: consume book notices → poll the trading session
    /// (`Pinned`: without blocking; `Compact`: block up to [`EXEC_POLL_SLICE`] or the next
    /// tick) → strategy tick when due → control commands and the status snapshot (every
    /// [`PUBLISH_PERIOD`]) → progress line (every second).
    ///
    /// # Errors
    /// A fatal failure (WAL poisoned at start-up, reconnect impossible).
    pub fn run_until(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(&EngineSnapshot),
    ) -> Result<(), EngineError> {
        let mut next_tick = Instant::now();
        let mut next_publish = Instant::now();
        let mut next_hot = Instant::now();
        let mut next_progress = Instant::now() + Duration::from_secs(1);
        let spin = self.topology == Topology::Pinned;
        if !hotpath::ring::pin_current_thread(self.cores[1]) {
            println!("topology: gate thread could not be pinned to {:?}", self.cores[1]);
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if self.max_intents.is_some_and(|m| self.stats.intents >= m) && self.live.is_empty() {
                break;
            }
            // The hot stretch: the session goes (back) to the dispatch thread, if it runs.
            self.lend_dispatch();
            self.absorb_market();
            let wait = if spin {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now()).min(EXEC_POLL_SLICE)
            };
            if let Err(e) = self.poll_exec(wait) {
                if is_interrupted(&e) {
                    continue; // a signal (SIGTERM/SIGINT) woke the poll; the loop checks `stop`
                }
                self.recover_connection(&e)?;
                continue;
            }
            if self.disp.as_ref().is_some_and(|d| d.is_closed()) {
                self.recover_connection(&EngineError::Conn(ConnError::Closed))?;
                continue;
            }
            if let Err(e) = self.refresh_instruments_if_due() {
                self.recover_connection(&e)?;
                continue;
            }
            self.watch_risk();
            let now = Instant::now();
            if self.stage.is_some() {
                if let Err(e) = self.service_strategy_stage() {
                    if matches!(e, EngineError::Wal(_)) {
                        tracing::error!(run_id = %self.run_id, error = %e, "WAL failure; reduce-only");
                        self.pipeline.risk_state = RiskState::Degraded;
                    } else {
                        self.recover_connection(&e)?;
                    }
                }
            } else if now >= next_tick {
                next_tick = now + self.tick;
                if let Err(e) = self.tick_now() {
                    if matches!(e, EngineError::Wal(_)) {
                        tracing::error!(run_id = %self.run_id, error = %e, "WAL failure; reduce-only");
                        self.pipeline.risk_state = RiskState::Degraded;
                    } else {
                        self.recover_connection(&e)?;
                    }
                }
            }
            self.service_health();
            // Kill with exposure ⇒ bounded containment; the Kill record (§2.2.3.6).
            self.contain_kill();
            self.sweep_opens_in_restricted_modes();
            if now >= next_publish {
                next_publish = now + PUBLISH_PERIOD;
                self.serve_control();
            }
            self.trace_state();
            if now >= next_hot {
                next_hot = now + hot_state::HOT_STATE_PERIOD;
                self.publish_hot_state();
            }
            if now >= next_progress {
                next_progress = now + Duration::from_secs(1);
                progress(&self.snapshot());
            }
        }
        self.shutdown();
        progress(&self.snapshot());
        Ok(())
    }

    /// Cancels open orders, waits (bounded) for outstanding replies, syncs the WAL.
    pub fn shutdown(&mut self) {
        self.stop_dispatch_stage();
        if let Some(d) = self.disp.as_mut() {
            if let Err(e) = d.cancel_all() {
                tracing::warn!(error = %e, "cancel_all at shutdown failed");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        // Wait (bounded) for the replies and for the venue's cancellations of our live orders,
        // so the WAL records them as Cancelled rather than leaving them to the next start.
        while Instant::now() < deadline
            && self.disp.as_ref().is_some_and(|d| {
                !d.is_closed() && (d.pending_requests() > 0 || !self.live.is_empty())
            })
        {
            if self.poll_exec(Duration::from_millis(20)).is_err() {
                break;
            }
        }
        let _ = self.poll_exec(Duration::from_millis(20));
        if let Err(e) = self.wal.sync() {
            tracing::error!(error = %e, "final WAL sync failed");
        }
        if let Some(d) = self.disp.as_mut() {
            d.close();
        }
        if let Some(link) = self.stage.as_mut() {
            link.stop();
            // The counters outlive the thread (the last progress line and tests read them).
            self.stats = self.stats_now();
            self.stage = None;
        }
        if let Some(mut f) = self.feed.take() {
            f.stop();
        }
    }
}

fn is_interrupted(e: &EngineError) -> bool {
    let (EngineError::Conn(ConnError::Io(io))
    | EngineError::Dispatch(
        DispatcherError::Conn(ConnError::Io(io))
        | DispatcherError::Dispatch(hotpath::dispatch::DispatchError::Conn(ConnError::Io(io))),
    )) = e
    else {
        return false;
    };
    io.kind() == std::io::ErrorKind::Interrupted
}
