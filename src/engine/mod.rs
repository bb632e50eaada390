//! The engine: market data → strategy → gate chain → reserve → WAL (one sync per batch) →
//! dispatch → execution reports, on one thread. See docs/engine.md.
//!
//! Start-up (and every reconnect) follows one rule: the open-permission latch is set, every
//! in-doubt intent of the WAL is resolved with the venue by label, venue positions are
//! adopted, and only then is the latch cleared and the strategy ticked. Nothing in flight is
//! ever resent; an intent the venue never saw is journaled `Abandoned`.

mod control;
pub mod edge;
pub mod emergency;
mod market_data;
pub mod operator_socket;
mod reconcile;
pub mod reconcile_service;
mod reports;
pub mod status;
pub mod strategies;
mod tick;

use market_data::apply_md;

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
use hotpath::feed::book::L2Book;
use hotpath::gates::chain::Accepted;
use hotpath::gates::rate::OrderRateBucket;
use hotpath::mode::PolicyGuard;
use hotpath::strategy::{ActionBuffer, IndexPrices, Strategy};
use hotpath::venue::auth::Credentials;
use hotpath::venue::conn::{ConnConfig, ConnError, Connection};
use hotpath::wal::{IntentState, OperatorActionKind, Record, Wal, WalConfig, WalError};

/// Depth kept per book side.
const BOOK_DEPTH: usize = 20;
/// Attempts to (re)connect before giving up.
const CONNECT_ATTEMPTS: u32 = 20;

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
    /// The strategy.
    pub strategy: Box<dyn Strategy>,
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
}

/// Counters shown in progress lines and the status snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Intents journaled by this process.
    pub intents: u64,
    /// Orders written to the venue.
    pub sent: u64,
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
    /// Book gaps recovered by resubscribing.
    pub resubscribes: u64,
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
    /// When the snapshot was taken (loop tick).
    pub at_ms: i64,
    /// The latest gate refusal (code, gate).
    pub last_gate_reject: Option<String>,
    /// Realised cash flow of fills in quote terms (price × amount, sells positive), 1e-8.
    pub cash_flow: i128,
    /// Continuous reconciliation and health inputs (`/status` `reconcile`).
    pub recon: reconcile_service::ReconView,
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

#[derive(Debug)]
struct BookSlot {
    book: L2Book,
    channel: String,
    last_ms: i64,
}

/// The engine.
pub struct Engine {
    opts_url: String,
    credentials: Credentials,
    run_id: String,
    clock: Arc<dyn Clock>,
    wal: Wal,
    policy: Result<Policy, PolicyError>,
    guard: PolicyGuard,
    instruments: InstrumentCache,
    instruments_ms: i64,
    md: Option<Connection>,
    books: BTreeMap<String, BookSlot>,
    index: IndexPrices,
    disp: Option<Dispatcher>,
    pipeline: IntentPipeline,
    positions: BTreeMap<InstrumentName, Qty>,
    live: BTreeMap<String, LiveIntent>,
    strategy: Box<dyn Strategy>,
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
    recon: reconcile_service::ReconState,
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
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
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
        Ok(Self {
            opts_url: opts.venue_url,
            credentials: opts.credentials,
            run_id: opts.run_id,
            clock,
            wal,
            policy,
            guard: PolicyGuard::at_start(),
            instruments: InstrumentCache::new(),
            instruments_ms: 0,
            md: None,
            books: BTreeMap::new(),
            index: IndexPrices::default(),
            disp: None,
            pipeline: IntentPipeline::new(OrderRateBucket::full(burst, now)),
            positions: BTreeMap::new(),
            live: BTreeMap::new(),
            strategy: opts.strategy,
            actions: ActionBuffer::with_capacity(16),
            stats: EngineStats::default(),
            max_intents: opts.max_intents,
            tick: opts.tick,
            operator_token: opts.startup_operator_token,
            taker_fee_bps: opts.taker_fee_bps,
            maker_fee_bps: opts.maker_fee_bps,
            reports: Vec::new(),
            last_reconcile: ReconcileSummary::default(),
            cash_flow: 0,
            events: Vec::new(),
            last_gate_reject: None,
            control: None,
            recon: reconcile_service::ReconState::default(),
        })
    }

    /// The published view.
    #[must_use]
    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            run_id: self.run_id.clone(),
            mode: self.guard.cell().mode(),
            risk_state: self.pipeline.risk_state,
            latched: self.guard.latch().is_latched(),
            stats: self.stats,
            positions: self
                .positions
                .iter()
                .map(|(n, q)| (n.as_str().to_owned(), q.raw()))
                .collect(),
            live_orders: self.live.len(),
            in_doubt: self.wal.ledger().in_doubt_len(),
            cash_flow: self.cash_flow,
            last_gate_reject: self.last_gate_reject.map(|(c, g)| format!("{}:{c:?}", g.as_str())),
            mode_reasons: self.guard.cell().load().mode_reasons().to_vec(),
            latch_codes: self.guard.latch().open_permission_reason_codes(),
            at_ms: self.clock.now_ms(),
            recon: self.recon.view.clone(),
        }
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
        self.connect_and_reconcile()
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
        if let Some(d) = self.disp.as_mut() {
            d.close();
        }
        if let Some(m) = self.md.as_mut() {
            m.close();
        }
        self.disp = None;
        self.md = None;
        let mut disp = Dispatcher::connect(
            &DispatcherConfig::new(&self.opts_url),
            Arc::clone(&self.clock),
            &self.credentials,
        )?;
        if self.instruments.is_empty() {
            let json = disp.instruments_json("any", Some("future"), &mut self.reports)?;
            let now = self.clock.now_ms();
            self.instruments
                .load_get_instruments(&json, now)
                .map_err(|e| EngineError::Instruments(e.to_string()))?;
            self.instruments_ms = now;
        }
        self.disp = Some(disp);
        let mut md =
            Connection::connect(&ConnConfig::new(&self.opts_url), Arc::clone(&self.clock))?;
        self.books.clear();
        let mut channels: Vec<String> = Vec::new();
        for n in self.strategy.instruments() {
            let ch = format!("book.{}.100ms", n.as_str());
            self.books.insert(
                n.as_str().to_owned(),
                BookSlot {
                    book: L2Book::new(n.as_str(), BOOK_DEPTH),
                    channel: ch.clone(),
                    last_ms: 0,
                },
            );
            channels.push(ch);
        }
        channels.push("deribit_price_index.btc_usd".into());
        channels.push("deribit_price_index.eth_usd".into());
        channels.push("platform_state".into());
        let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
        let books = &mut self.books;
        let index = &mut self.index;
        let clock = &self.clock;
        let health = &mut self.recon.md;
        let n = md.subscribe(&refs, Duration::from_secs(5), &mut |inc| {
            apply_md(&inc, books, index, health, clock.now_ms());
        })?;
        if n != refs.len() {
            return Err(EngineError::Reconcile(format!(
                "subscribed {n} of {} channels",
                refs.len()
            )));
        }
        self.md = Some(md);
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

    /// Reconnects both sessions and reconciles before trading again.
    fn recover_connection(&mut self, why: &EngineError) -> Result<(), EngineError> {
        println!("reconnect: {why} (run_id={})", self.run_id);
        self.on_session_lost(why);
        self.guard.latch().set(hotpath::domain::reason_codes::OpenPermissionReasonCode::SessionTerminationReconcileRequired);
        self.stats.reconnects += 1;
        self.connect_and_reconcile()?;
        Ok(())
    }

    /// Runs until `stop` is set or `max_intents` were journaled and answered; then shuts down
    /// cleanly (cancel open orders, drain replies, sync the WAL).
    ///
    /// # Errors
    /// A fatal failure (WAL poisoned at start-up, reconnect impossible).
    pub fn run_until(
        &mut self,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(&EngineSnapshot),
    ) -> Result<(), EngineError> {
        let mut next_tick = Instant::now();
        let mut next_progress = Instant::now() + Duration::from_secs(1);
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if self.max_intents.is_some_and(|m| self.stats.intents >= m) && self.live.is_empty() {
                break;
            }
            let step = self.poll_md().and_then(|()| self.poll_exec(Duration::from_millis(3)));
            if let Err(e) = step {
                if is_interrupted(&e) {
                    continue; // a signal (SIGTERM/SIGINT) woke the poll; the loop checks `stop`
                }
                self.recover_connection(&e)?;
                continue;
            }
            if self.disp.as_ref().is_some_and(Dispatcher::is_closed) {
                self.recover_connection(&EngineError::Conn(ConnError::Closed))?;
                continue;
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + self.tick;
                // Ticks run while the open-permission latch is set: the gates refuse opens
                // (`OpenPermissionLatched`), closes, hedges and cancels go on (CP-001,
                // capital supremacy). Start-up and reconnects reconcile before the loop runs.
                if let Err(e) = self.tick() {
                    if matches!(e, EngineError::Wal(_)) {
                        tracing::error!(run_id = %self.run_id, error = %e, "WAL failure; reduce-only");
                        self.pipeline.risk_state = RiskState::Degraded;
                    } else {
                        self.recover_connection(&e)?;
                    }
                }
            }
            self.service_health();
            self.serve_control();
            if Instant::now() >= next_progress {
                next_progress = Instant::now() + Duration::from_secs(1);
                progress(&self.snapshot());
            }
        }
        self.shutdown();
        progress(&self.snapshot());
        Ok(())
    }

    /// Cancels open orders, waits (bounded) for outstanding replies, syncs the WAL.
    pub fn shutdown(&mut self) {
        if let Some(d) = self.disp.as_mut() {
            if let Err(e) = d.cancel_all() {
                tracing::warn!(error = %e, "cancel_all at shutdown failed");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline
            && self.disp.as_ref().is_some_and(|d| d.pending_requests() > 0 && !d.is_closed())
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
        if let Some(m) = self.md.as_mut() {
            m.close();
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
