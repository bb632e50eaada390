//! The engine: market data → strategy → gate chain → reserve → WAL (one sync per batch) →
//! dispatch → execution reports, on one thread. See docs/engine.md.
//!
//! Start-up (and every reconnect) follows one rule: the open-permission latch is set, every
//! in-doubt intent of the WAL is resolved with the venue by label, venue positions are
//! adopted, and only then is the latch cleared and the strategy ticked. Nothing in flight is
//! ever resent; an intent the venue never saw is journaled `Abandoned`.

pub mod edge;
pub mod status;
pub mod strategies;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::clock::{Clock, SystemClock};
use hotpath::dispatch::{
    instrument_of_canonical, Dispatcher, DispatcherConfig, DispatcherError, ExecReport,
    OrderReport, OutboundIntent, PipelineEvent, Refusal, Resolution, SendOutcome,
};
use hotpath::dispatch::{BatchInputs, IntentPipeline};
use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::Side;
use hotpath::domain::metadata::InstrumentCache;
use hotpath::domain::policy::{Policy, PolicyError};
use hotpath::domain::reason_codes::{RiskState, TradingMode};
use hotpath::domain::units::{Price, Qty};
use hotpath::feed::book::L2Book;
use hotpath::gates::chain::{Accepted, GateContext, PolicySlot};
use hotpath::gates::market::{BookLevel, BookView};
use hotpath::gates::positions::{ExposureBook, PortfolioView, PositionView};
use hotpath::gates::rate::OrderRateBucket;
use hotpath::mode::PolicyGuard;
use hotpath::mode::ReconcileReport;
use hotpath::mode::{OperatorAction, OperatorAuthenticated, OperatorSecret};
use hotpath::strategy::{
    ActionBuffer, IndexPrices, MarketSnapshot, OpenOrderView, PositionsSnapshot, Strategy,
    StrategyAction,
};
use hotpath::venue::auth::Credentials;
use hotpath::venue::conn::{ConnConfig, ConnError, Connection, Incoming};
use hotpath::venue::messages::{Message, NotificationData, OrderState};
use hotpath::venue::methods;
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
        }
    }

    /// Attaches the status server's control channel and snapshot slot.
    pub fn set_control(&mut self, port: status::ControlPort) {
        self.control = Some(port);
    }

    fn serve_control(&mut self) {
        let Some(port) = self.control.as_ref() else { return };
        if let Ok(mut g) = port.published.lock() {
            *g = Some(self.snapshot());
        }
        let msgs: Vec<status::ControlMsg> = port.rx.try_iter().collect();
        for m in msgs {
            let r = self.emergency_reduce_only(&m.req);
            // Publish before replying: the endpoint answers with the status *after* the change
            // (ruling 8), and it reads that status from the published slot.
            if let Some(port) = self.control.as_ref() {
                if let Ok(mut g) = port.published.lock() {
                    *g = Some(self.snapshot());
                }
            }
            let _ = m.reply.send(r);
        }
    }

    fn emergency_reduce_only(
        &mut self,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<(), String> {
        let token = self.operator_token.clone().ok_or("no operator secret configured")?;
        let secret = OperatorSecret::from_token(token.as_bytes()).map_err(|e| e.to_string())?;
        let who = req.requested_by.clone().unwrap_or_else(|| "operator".into());
        // The server authenticated the bearer token against this same secret.
        let auth = OperatorAuthenticated::verify(&secret, token.as_bytes(), &who)
            .map_err(|e| e.to_string())?;
        let reason = req.reason.clone().unwrap_or_default();
        let now = self.clock.now_ms();
        self.guard.emergency_reduce_only(&auth, &reason, now).map_err(|e| e.to_string())?;
        self.journal_operator_action(OperatorActionKind::EmergencyReduceOnly, &who, &reason)
            .map_err(|e| e.to_string())?;
        println!("mode: emergency reduce-only by {who} (run_id={})", self.run_id);
        Ok(())
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
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100 * u64::from(attempt.min(5) + 1)));
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
        let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
        let books = &mut self.books;
        let index = &mut self.index;
        let clock = &self.clock;
        let n = md.subscribe(&refs, Duration::from_secs(5), &mut |inc| {
            apply_md(&inc, books, index, clock.now_ms());
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

    /// Resolves in-doubt intents and clears the latch (the only path to trading).
    fn reconcile(&mut self) -> Result<ReconcileSummary, EngineError> {
        let ticket = self.guard.latch().begin_reconcile();
        let disp = self.disp.as_mut().ok_or(EngineError::Reconcile("not connected".into()))?;
        let resolutions = disp.resolve_in_doubt(self.wal.ledger(), &mut self.reports)?;
        let mut sum = ReconcileSummary { in_doubt: resolutions.len() as u64, ..Default::default() };
        let now = self.clock.now_ms();
        self.live.clear();
        for r in &resolutions {
            match r {
                Resolution::Live { intent_hash, order } => {
                    sum.live += 1;
                    self.adopt(*intent_hash, order, now)?;
                }
                Resolution::Filled { intent_hash, order, filled, trade_id } => {
                    sum.filled += 1;
                    if let Some(o) = order {
                        self.ack_if_needed(*intent_hash, &o.order_id, now)?;
                    }
                    self.append_checked(
                        now,
                        &Record::Filled {
                            intent_hash: *intent_hash,
                            filled_qty: filled.raw,
                            trade_id,
                        },
                    )?;
                }
                Resolution::Cancelled { intent_hash, order } => {
                    sum.cancelled += 1;
                    self.ack_if_needed(*intent_hash, &order.order_id, now)?;
                    self.append_checked(
                        now,
                        &Record::Cancelled {
                            intent_hash: *intent_hash,
                            filled_qty: order.filled.raw,
                        },
                    )?;
                }
                Resolution::Rejected { intent_hash, .. } => {
                    sum.rejected += 1;
                    self.append_checked(
                        now,
                        &Record::Rejected {
                            intent_hash: *intent_hash,
                            code: 0,
                            reason: "venue reports the order rejected",
                        },
                    )?;
                }
                Resolution::NeverSeen { intent_hash } => {
                    sum.abandoned += 1;
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: *intent_hash,
                            reason: "in doubt at reconcile; the venue never saw it",
                        },
                    )?;
                }
            }
        }
        let _ = self.wal.sync()?;
        self.stats.in_doubt_resolved += sum.in_doubt;
        self.stats.abandoned += sum.abandoned;
        // Positions: the venue's word, after every in-doubt intent is resolved.
        self.positions.clear();
        let disp = self.disp.as_mut().ok_or(EngineError::Reconcile("not connected".into()))?;
        for ccy in ["BTC", "ETH"] {
            for p in disp.positions(ccy, &mut self.reports)? {
                if let Some(n) = name_of(&p.instrument) {
                    self.positions.insert(n, Qty::from_raw(p.size.raw));
                }
            }
        }
        // Reports that arrived during reconciliation describe intents now resolved; the
        // ledger refuses any stale transition, so applying them is safe.
        self.drain_reports();
        let still = self
            .wal
            .ledger()
            .in_doubt()
            .filter(|e| matches!(e.state, IntentState::Recorded | IntentState::Sent));
        let unresolved = still.count();
        let report = ReconcileReport {
            intents_match_open_orders: unresolved == 0,
            positions_match: true,
            no_missing_trades: true,
        };
        self.guard
            .latch()
            .complete_reconcile(ticket, &report)
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        self.last_reconcile = sum;
        println!(
            "reconciled: run_id={} in_doubt={} live={} filled={} cancelled={} rejected={} abandoned={}",
            self.run_id, sum.in_doubt, sum.live, sum.filled, sum.cancelled, sum.rejected, sum.abandoned
        );
        self.startup_relax()?;
        Ok(sum)
    }

    fn startup_relax(&mut self) -> Result<(), EngineError> {
        if self.guard.cell().mode() == TradingMode::Active {
            return Ok(());
        }
        let Some(token) = self.operator_token.clone() else { return Ok(()) };
        let secret = OperatorSecret::from_token(token.as_bytes())
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        let auth = OperatorAuthenticated::verify(&secret, token.as_bytes(), "stoic-run-startup")
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        let reason = "start-up relax after a clean reconciliation (paper/simulator run)";
        let action = OperatorAction::relax(auth, TradingMode::Active, reason)
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        let mut inputs = hotpath::mode::PolicyInputs::all_healthy(self.clock.now_ms());
        inputs.risk_state = self.pipeline.risk_state;
        inputs.wal_append_healthy = self.wal.poisoned().is_none();
        match self.guard.operator_relax(action, &inputs) {
            Ok(rec) => {
                self.journal_operator_action(
                    OperatorActionKind::ModeRelax,
                    &rec.operator_id,
                    reason,
                )?;
                println!("mode: {:?} -> {:?} (run_id={})", rec.from, rec.to, self.run_id);
                Ok(())
            }
            Err(e) => {
                println!("mode: relax refused: {e}");
                Ok(())
            }
        }
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

    /// Risk-reducing intents the WAL refused (capital supremacy, DESIGN invariant 6): sent
    /// through the chokepoint's unjournaled entry; every ledger step of theirs is in memory
    /// only (`Wal::note_unjournaled`), logged at error level with the intent id.
    fn send_unjournaled(
        &mut self,
        now: i64,
        batch: Vec<hotpath::dispatch::UnjournaledStaged>,
    ) -> Result<(), EngineError> {
        for u in batch {
            let h = u.intent.hash().value();
            self.stats.wal_failures += 1;
            tracing::error!(
                run_id = %self.run_id,
                intent_id = %format!("{h:016x}"),
                class = u.accepted.class.as_str(),
                error = %u.wal_error,
                "WAL refused a risk-reducing intent: dispatching it UNJOURNALED (in-memory ledger only)"
            );
            let f = u.intent.fields();
            self.live.insert(
                u.accepted.label.as_str().to_owned(),
                LiveIntent {
                    intent_hash: h,
                    accepted: Some(u.accepted),
                    instrument: f.instrument.name(),
                    side: f.side,
                    price: f.limit_price.unwrap_or(Price::from_raw(0)),
                    qty: f.qty.raw(),
                },
            );
            let Some(disp) = self.disp.as_mut() else { continue };
            let o = OutboundIntent {
                intent: &u.intent,
                label: u.accepted.label.as_str(),
                record_seq: 0,
            };
            match disp.send_unjournaled_reduce(&o, u.token) {
                Ok(_) => {
                    self.stats.intents += 1;
                    self.stats.sent += 1;
                    self.stats.unjournaled_sent += 1;
                    println!(
                        "wal: UNJOURNALED {} sent intent_id={h:016x} label={} (WAL cannot append)",
                        u.accepted.class.as_str(),
                        u.accepted.label.as_str()
                    );
                    self.events.push(PipelineEvent::SentUnjournaled { intent_hash: h });
                    self.append_checked(now, &Record::Sent { intent_hash: h })?;
                }
                Err(e) if e.certainly_not_sent() => {
                    tracing::error!(run_id = %self.run_id, intent_id = %format!("{h:016x}"), error = %e, "unjournaled reduce not sent; abandoned");
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: h,
                            reason: "unjournaled reduce: refused before the socket",
                        },
                    )?;
                    self.stats.abandoned += 1;
                    self.live.remove(u.accepted.label.as_str());
                }
                Err(e) => {
                    tracing::error!(run_id = %self.run_id, intent_id = %format!("{h:016x}"), error = %e, "unjournaled reduce send failed; in doubt (in memory only)");
                }
            }
        }
        Ok(())
    }

    fn ack_if_needed(&mut self, h: u64, order_id: &str, now: i64) -> Result<(), EngineError> {
        if let Some((st, _, has_id)) = self.entry_state(h) {
            if (st.rank() < IntentState::Acknowledged.rank() || !has_id)
                && self.append_checked(
                    now,
                    &Record::Acknowledged { intent_hash: h, venue_order_id: order_id },
                )?
            {
                self.stats.acked += 1;
            }
        }
        Ok(())
    }

    fn adopt(&mut self, h: u64, o: &OrderReport, now: i64) -> Result<(), EngineError> {
        self.ack_if_needed(h, &o.order_id, now)?;
        if o.filled.raw > 0 {
            self.append_checked(
                now,
                &Record::PartiallyFilled { intent_hash: h, filled_qty: o.filled.raw, trade_id: "" },
            )?;
        }
        if let (Some(n), Some(e)) = (name_of(&o.instrument), self.wal.ledger().get(h)) {
            let price = instrument_of_canonical(&e.canonical).map_or(Price::from_raw(0), |_| {
                o.average_price.map_or(Price::from_raw(0), |p| Price::from_raw(p.raw))
            });
            self.live.insert(
                e.label.clone(),
                LiveIntent {
                    intent_hash: h,
                    accepted: None,
                    instrument: n,
                    side: if o.buy { Side::Buy } else { Side::Sell },
                    price,
                    qty: o.amount.raw,
                },
            );
        }
        Ok(())
    }

    /// Applies one execution report to the WAL, the ledger, positions and live orders.
    fn apply_report(&mut self, r: &ExecReport) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        let Some(e) = self.wal.ledger().by_label(r.label()) else { return Ok(()) };
        let h = e.intent_hash;
        let before_filled = e.filled_qty;
        match r {
            ExecReport::Fill(f) => {
                self.stats.fills += 1;
                let sign: i128 = if f.buy { -1 } else { 1 };
                self.cash_flow +=
                    sign * i128::from(f.price.raw) * i128::from(f.amount.raw) / 100_000_000;
            }
            ExecReport::Rejected { code, reason, .. } => {
                if self.append_checked(
                    now,
                    &Record::Rejected { intent_hash: h, code: *code, reason },
                )? {
                    self.stats.venue_rejects += 1;
                    tracing::info!(run_id = %self.run_id, intent_hash = %format!("{h:016x}"), code, "venue rejected");
                }
                self.live.remove(r.label());
            }
            ExecReport::CancelRefused { code, .. } => {
                tracing::info!(run_id = %self.run_id, intent_hash = %format!("{h:016x}"), code, "cancel refused");
            }
            ExecReport::Order(o) => {
                self.ack_if_needed(h, &o.order_id, now)?;
                let filled = o.filled.raw;
                let applied = match o.state {
                    OrderState::Open | OrderState::Untriggered | OrderState::Triggered => {
                        if filled > before_filled {
                            self.append_checked(
                                now,
                                &Record::PartiallyFilled {
                                    intent_hash: h,
                                    filled_qty: filled,
                                    trade_id: "",
                                },
                            )?
                        } else {
                            false
                        }
                    }
                    OrderState::Filled => {
                        let ok = self.append_checked(
                            now,
                            &Record::Filled { intent_hash: h, filled_qty: filled, trade_id: "" },
                        )?;
                        if ok {
                            self.stats.filled += 1;
                        }
                        ok
                    }
                    OrderState::Cancelled | OrderState::Archive => {
                        let ok = self.append_checked(
                            now,
                            &Record::Cancelled {
                                intent_hash: h,
                                filled_qty: filled.max(before_filled),
                            },
                        )?;
                        if ok {
                            self.stats.cancelled += 1;
                        }
                        ok
                    }
                    OrderState::Rejected => {
                        let ok = self.append_checked(
                            now,
                            &Record::Rejected { intent_hash: h, code: 0, reason: "rejected" },
                        )?;
                        if ok {
                            self.stats.venue_rejects += 1;
                        }
                        ok
                    }
                };
                if applied && filled > before_filled {
                    if let Some(n) = name_of(&o.instrument) {
                        let delta = filled - before_filled;
                        let p = self.positions.entry(n).or_insert(Qty::from_raw(0));
                        let signed = if o.buy { delta } else { -delta };
                        *p = Qty::from_raw(p.raw().saturating_add(signed));
                    }
                }
                let terminal = self.wal.ledger().get(h).is_none_or(|e| e.state.is_terminal());
                if terminal {
                    self.live.remove(r.label());
                }
            }
        }
        Ok(())
    }

    fn drain_reports(&mut self) {
        let reports = std::mem::take(&mut self.reports);
        for r in &reports {
            if let Err(e) = self.apply_report(r) {
                tracing::error!(run_id = %self.run_id, error = %e, "could not journal an execution report");
            }
        }
        let mut reports = reports;
        reports.clear();
        if self.reports.is_empty() {
            self.reports = reports;
        }
    }

    fn book_views(&self) -> Vec<BookView> {
        let mut out = Vec::with_capacity(self.books.len());
        for (name, slot) in &self.books {
            let Some(n) = name_of(name) else { continue };
            if !slot.book.is_live() && !slot.book.is_gapped() {
                continue;
            }
            let lv =
                |v: &[(hotpath::venue::Decimal8, hotpath::venue::Decimal8)]| -> Vec<BookLevel> {
                    v.iter()
                        .map(|(p, q)| BookLevel {
                            price: Price::from_raw(p.raw),
                            qty: Qty::from_raw(q.raw),
                        })
                        .collect()
                };
            out.push(BookView::from_levels(
                n,
                &lv(slot.book.bids()),
                &lv(slot.book.asks()),
                slot.last_ms,
                slot.book.is_gapped(),
            ));
        }
        out
    }

    fn exposure(&self) -> ExposureBook {
        let mut ex = ExposureBook::new();
        let mut gross: i64 = 0;
        for (n, q) in &self.positions {
            ex.set_position(*n, *q);
            let unit = Instrument::parse(n.as_str()).map(|i| i.amount_unit());
            if let Ok(unit) = unit {
                let idx = Instrument::parse(n.as_str())
                    .ok()
                    .and_then(|i| self.index.for_currency(i.base_currency().as_str()));
                if let Ok(Some(u)) = hotpath::domain::units::notional_usd(unit, *q, idx) {
                    gross = gross.saturating_add(u.raw());
                }
            }
        }
        ex.set_portfolio(PortfolioView {
            gross_notional_usd: hotpath::domain::units::Usd::from_raw(gross),
            ..PortfolioView::default()
        });
        for l in self.live.values() {
            if let Some(mut a) = l.accepted {
                let filled = self.wal.ledger().get(l.intent_hash).map_or(0, |e| e.filled_qty);
                let rest = l.qty - filled;
                if rest > 0 {
                    a.qty = Qty::from_raw(rest);
                    ex.reserve(&a);
                }
            }
        }
        ex
    }

    /// One strategy tick: decide, gate, journal (one sync), dispatch.
    fn tick(&mut self) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        let books = self.book_views();
        let mut ex = self.exposure();
        let open: Vec<OpenOrderView> = self
            .live
            .iter()
            .filter_map(|(label, l)| {
                let lbl = self.wal.ledger().by_label(label)?;
                Some(OpenOrderView {
                    label: label_of(label)?,
                    instrument: l.instrument,
                    side: l.side,
                    price: l.price,
                    remaining: Qty::from_raw(l.qty - lbl.filled_qty),
                })
            })
            .collect();
        let market = MarketSnapshot {
            now_ms: now,
            instruments: &self.instruments,
            books: &books,
            index: self.index,
        };
        self.actions.clear();
        self.strategy.on_tick(
            &market,
            &PositionsSnapshot { exposure: &ex, open_orders: &open },
            &mut self.actions,
        );
        let mut intents = Vec::new();
        let mut cancels = Vec::new();
        for a in self.actions.drain() {
            match a {
                StrategyAction::Place(i) => intents.push(i),
                StrategyAction::Cancel(l) => cancels.push(l),
            }
        }
        if let Some(max) = self.max_intents {
            let room = max.saturating_sub(self.stats.intents);
            intents.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        for l in cancels {
            if let (Some(live), Some(d)) = (self.live.get(l.as_str()), self.disp.as_mut()) {
                if let Err(e) = d.cancel_by_label(l.as_str(), live.instrument.as_str()) {
                    tracing::warn!(run_id = %self.run_id, error = %e, "cancel not sent");
                }
            }
        }
        if intents.is_empty() {
            return Ok(());
        }
        let (taker, maker) = (self.taker_fee_bps, self.maker_fee_bps);
        let edge = move |i: &hotpath::domain::intent::OrderIntent,
                         b: Option<&BookView>,
                         idx: Option<Price>| {
            let fee_bps = if i.fields().post_only { maker } else { taker };
            edge::estimate(i, b, idx, fee_bps)
        };
        let inputs = BatchInputs {
            base: GateContext {
                now_ms: now,
                policy: PolicySlot::from_result(&self.policy),
                instruments: &self.instruments,
                book: None,
                index_price: None,
                position: PositionView::default(),
                portfolio: PortfolioView::default(),
                fee_model_updated_ms: Some(self.instruments_ms),
                edge: None,
                risk_state: self.pipeline.risk_state,
                trading_mode: self.guard.cell().mode(),
                open_permission_latched: self.guard.latch().is_latched(),
                order_rate: self.pipeline.order_rate,
            },
            books: &books,
            index: self.index,
            edge: &edge,
        };
        arm_wal_fault_on_reduce(&mut self.wal, &intents);
        let events = &mut self.events;
        events.clear();
        let mut outcome =
            self.pipeline.record_batch(&mut self.wal, &mut ex, &intents, &inputs, &mut |ev| {
                events.push(ev);
            });
        for (i, why) in &outcome.refused {
            match why {
                Refusal::Gate(r) => {
                    self.stats.gate_rejects += 1;
                    self.last_gate_reject = Some((r.code, r.gate));
                    tracing::debug!(
                        run_id = %self.run_id,
                        intent_id = %format!("{:016x}", i.hash().value()),
                        code = ?r.code,
                        gate = r.gate.as_str(),
                        "gate rejected"
                    );
                }
                Refusal::Duplicate => {}
                Refusal::WalFailed { error, .. } => {
                    self.stats.wal_failures += 1;
                    tracing::error!(
                        run_id = %self.run_id,
                        intent_id = %format!("{:016x}", i.hash().value()),
                        error = %error,
                        "RecordedBeforeDispatchFailed: risk state Degraded"
                    );
                }
            }
        }
        let unjournaled = std::mem::take(&mut outcome.unjournaled);
        self.send_unjournaled(now, unjournaled)?;
        let Some(durable) = outcome.durable else { return Ok(()) };
        self.stats.intents += outcome.staged.len() as u64;
        for s in &outcome.staged {
            let f = s.intent.fields();
            self.live.insert(
                s.accepted.label.as_str().to_owned(),
                LiveIntent {
                    intent_hash: s.intent.hash().value(),
                    accepted: Some(s.accepted),
                    instrument: f.instrument.name(),
                    side: f.side,
                    price: f.limit_price.unwrap_or(Price::from_raw(0)),
                    qty: f.qty.raw(),
                },
            );
        }
        let batch: Vec<OutboundIntent<'_>> = outcome
            .staged
            .iter()
            .map(|s| OutboundIntent {
                intent: &s.intent,
                label: s.accepted.label.as_str(),
                record_seq: s.record_seq,
            })
            .collect();
        let Some(disp) = self.disp.as_mut() else { return Ok(()) };
        let results = disp.send_batch(&batch, durable);
        for (s, r) in outcome.staged.iter().zip(results) {
            let h = s.intent.hash().value();
            match r {
                SendOutcome::Sent { .. } => {
                    self.stats.sent += 1;
                    self.append_checked(now, &Record::Sent { intent_hash: h })?;
                }
                SendOutcome::Failed(e) if e.certainly_not_sent() => {
                    tracing::warn!(run_id = %self.run_id, intent_id = %format!("{h:016x}"), error = %e, "not sent; abandoned");
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: h,
                            reason: "not sent: refused before the socket",
                        },
                    )?;
                    self.stats.abandoned += 1;
                    self.live.remove(s.accepted.label.as_str());
                }
                SendOutcome::Failed(e) => {
                    // Maybe on the wire: stays in doubt until the reconnect resolves it.
                    tracing::warn!(run_id = %self.run_id, intent_id = %format!("{h:016x}"), error = %e, "send failed; in doubt");
                }
            }
        }
        Ok(())
    }

    fn poll_md(&mut self) -> Result<(), EngineError> {
        let Some(md) = self.md.as_mut() else { return Ok(()) };
        let books = &mut self.books;
        let index = &mut self.index;
        let clock = &self.clock;
        md.poll(Duration::from_millis(2), &mut |inc| apply_md(&inc, books, index, clock.now_ms()))?;
        // Gap recovery: resubscribe the book's channel for a fresh snapshot.
        let gapped: Vec<String> = self
            .books
            .values()
            .filter(|s| s.book.resubscribe_needed())
            .map(|s| s.channel.clone())
            .collect();
        for ch in gapped {
            let md = self.md.as_mut().ok_or(EngineError::Reconcile("md gone".into()))?;
            let _ = md.call(
                methods::PUBLIC_UNSUBSCRIBE,
                |b| {
                    b.str_array("channels", &[ch.as_str()]);
                },
                Duration::from_secs(5),
                |_| Ok(()),
                &mut |_| {},
            );
            let books = &mut self.books;
            let index = &mut self.index;
            let clock = &self.clock;
            md.subscribe(&[ch.as_str()], Duration::from_secs(5), &mut |inc| {
                apply_md(&inc, books, index, clock.now_ms());
            })?;
            for s in self.books.values_mut().filter(|s| s.channel == ch) {
                s.book.resubscribe_sent();
            }
            self.stats.resubscribes += 1;
            println!("resubscribed: {ch} (run_id={})", self.run_id);
        }
        Ok(())
    }

    fn poll_exec(&mut self, wait: Duration) -> Result<(), EngineError> {
        if let Some(d) = self.disp.as_mut() {
            d.poll(wait, &mut self.reports)?;
        }
        self.drain_reports();
        Ok(())
    }

    /// Reconnects both sessions and reconciles before trading again.
    fn recover_connection(&mut self, why: &EngineError) -> Result<(), EngineError> {
        println!("reconnect: {why} (run_id={})", self.run_id);
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
                if !self.guard.latch().is_latched() {
                    if let Err(e) = self.tick() {
                        if matches!(e, EngineError::Wal(_)) {
                            tracing::error!(run_id = %self.run_id, error = %e, "WAL failure; reduce-only");
                            self.pipeline.risk_state = RiskState::Degraded;
                        } else {
                            self.recover_connection(&e)?;
                        }
                    }
                }
            }
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

fn label_of(text: &str) -> Option<hotpath::domain::label::Label> {
    use hotpath::domain::label::Label;
    let p = Label::parse(text).ok()?;
    let l = Label::compose(
        std::str::from_utf8(&p.sid8).ok()?,
        std::str::from_utf8(&p.gid12).ok()?,
        p.leg_index,
        std::str::from_utf8(&p.intent_hash.to_hex16()).ok()?,
    )
    .ok()?;
    (l.as_str() == text).then_some(l)
}

fn apply_md(
    inc: &Incoming<'_>,
    books: &mut BTreeMap<String, BookSlot>,
    index: &mut IndexPrices,
    now: i64,
) {
    let Message::Notification(n) = inc.msg else { return };
    match &n.data {
        NotificationData::Book(u) => {
            if let Some(slot) = books.get_mut(u.instrument_name) {
                if slot.book.apply(u).is_ok() {
                    slot.last_ms = now;
                }
            }
        }
        NotificationData::PriceIndex { index_name, price, .. } => {
            let p = Some(Price::from_raw(price.raw));
            match *index_name {
                "btc_usd" => index.btc = p,
                "eth_usd" => index.eth = p,
                _ => {}
            }
        }
        _ => {}
    }
}

/// Test hook (feature `failpoints` only): with `STOIC_WAL_FAULT_ON_REDUCE` set, the first batch
/// holding a reduce-only intent finds the WAL failing its next append (I/O error, poisoned
/// from then on), so the engine-level test can watch the unjournaled-reduce path.
#[cfg(feature = "failpoints")]
fn arm_wal_fault_on_reduce(
    wal: &mut hotpath::wal::Wal,
    intents: &[hotpath::domain::intent::OrderIntent],
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ARMED: AtomicBool = AtomicBool::new(false);
    if std::env::var_os("STOIC_WAL_FAULT_ON_REDUCE").is_some()
        && intents.iter().any(|i| i.fields().reduce_only)
        && !ARMED.swap(true, Ordering::Relaxed)
    {
        println!("wal: test fault armed: the next append fails");
        wal.set_faults(hotpath::wal::WalFaults { fail_next_append: true, ..Default::default() });
    }
}

#[cfg(not(feature = "failpoints"))]
fn arm_wal_fault_on_reduce(_: &mut hotpath::wal::Wal, _: &[hotpath::domain::intent::OrderIntent]) {}
