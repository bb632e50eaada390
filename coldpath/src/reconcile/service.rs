//! The cold-path reconciler: its own read-only venue connection, paginated REST-style
//! queries over the WebSocket (open orders → trades since a watermark → positions →
//! by-label lookups for ghost candidates), then the pure [`reconcile`].
//!
//! It never holds a trading-capable key: after authentication the granted scope is checked
//! and a key with `trade:read_write` or `account:read_write` is refused
//! ([`ReconcileError::TradeCapableKey`]). Order entry is also refused by the connection
//! itself (`Connection::send_request`). Cancels it decides are *returned* as actions; the
//! engine's dispatch sends them.
//!
//! Credits: the connection's own `CreditLimiter` is sized to a share
//! ([`ReconcilerConfig::credit_share_pct`]) of the account's non-matching-engine limit, so
//! reconciliation cannot use up the credits trading needs (orders draw from the separate
//! matching-engine pool anyway). A throttled query waits (sleeps, bounded) and retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::clock::Clock;
use hotpath::venue::auth::{AuthGrant, Credentials};
use hotpath::venue::conn::{ConnConfig, ConnError, Connection};
use hotpath::venue::messages::{Message, RateBurst, ResultPayload};
use hotpath::venue::methods;

use super::model::{
    LabelLookup, LedgerSnapshot, LocalPositions, VenueOrder, VenuePosition, VenueSnapshot,
    VenueTrade,
};
use super::three_way::{ghost_candidates, reconcile, ReconcileConfig, ReconcileReport};
use crate::metrics::MetricsRegistry;

/// Default periodic interval (contract §3.4 "timer every 5–10 s"; also meets the sweeper's
/// 10 s cadence, §3.5).
pub const RECONCILE_INTERVAL_MS: i64 = 5_000;
/// Least time between two triggered runs (a burst of gap signals costs one run).
pub const RECONCILE_MIN_GAP_MS: i64 = 250;
/// Trades per page (`count`).
pub const TRADES_PAGE_SIZE: i64 = 100;
/// Pages per currency per run; past it the run reports `TradesIncomplete`.
pub const TRADES_PAGES_MAX: usize = 20;
/// By-label lookups per run.
pub const LABEL_LOOKUPS_MAX: usize = 32;
/// Trades cached (the lookback window's trades), at most.
pub const TRADE_CACHE_MAX: usize = 20_000;
/// Overlap when re-reading trades from the watermark (same-millisecond trades), ms.
pub const WATERMARK_OVERLAP_MS: i64 = 1_000;
/// Throttle retries per query.
pub const THROTTLE_RETRIES_MAX: u32 = 20;
/// Sleep slice while waiting for a trigger (a park, never a spin).
pub const TRIGGER_POLL_SLICE_MS: u64 = 25;

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The key can trade; the reconciler only ever uses a read-only key.
    #[error("reconciler key is trade-capable (scope {scope:?}); use a read-only key")]
    TradeCapableKey {
        /// The granted scope.
        scope: String,
    },
    /// The key lacks `trade:read`.
    #[error("reconciler key lacks trade:read (scope {scope:?})")]
    MissingScope {
        /// The granted scope.
        scope: String,
    },
    /// Authentication produced no token.
    #[error("not authenticated")]
    NotAuthenticated,
    /// Transport, venue or decode failure.
    #[error("venue: {0}")]
    Conn(#[from] ConnError),
    /// Throttled past the retry bound.
    #[error("client-side rate limit: gave up after {0} retries")]
    Throttled(u32),
    /// A reply of the wrong shape for its method.
    #[error("unexpected reply to {0}")]
    UnexpectedReply(&'static str),
}

/// Service settings.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// Venue WebSocket URL.
    pub url: String,
    /// Currencies to reconcile.
    pub currencies: Vec<String>,
    /// Core settings (Appendix A).
    pub reconcile: ReconcileConfig,
    /// Periodic interval, ms.
    pub interval_ms: i64,
    /// Least gap between triggered runs, ms.
    pub min_gap_ms: i64,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Share of the account's non-matching-engine limit this connection may use, per cent.
    pub credit_share_pct: u32,
    /// The account's non-matching-engine limit until `get_account_summary` reports it.
    pub account_limit: RateBurst,
    /// Trades per page.
    pub trades_page_size: i64,
    /// Pages per currency per run.
    pub trades_pages_max: usize,
}

impl ReconcilerConfig {
    /// Defaults for `url`: BTC and ETH, Appendix A core settings, 5 s interval, 25 % credit
    /// share of the venue default (20 req/s, burst 100).
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            currencies: vec!["BTC".to_owned(), "ETH".to_owned()],
            reconcile: ReconcileConfig::default(),
            interval_ms: RECONCILE_INTERVAL_MS,
            min_gap_ms: RECONCILE_MIN_GAP_MS,
            request_timeout: Duration::from_secs(5),
            credit_share_pct: 25,
            account_limit: RateBurst { rate: 20, burst: 100 },
            trades_page_size: TRADES_PAGE_SIZE,
            trades_pages_max: TRADES_PAGES_MAX,
        }
    }
}

/// Why a run was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TriggerKind {
    /// Process start.
    Startup = 0,
    /// Timer.
    Periodic = 1,
    /// `book.*` change-id gap.
    BookGap = 2,
    /// `trades.*` sequence gap or stale public trades.
    TradesGap = 3,
    /// Private (user) channel gap: disconnect, missed update.
    PrivateGap = 4,
    /// Heartbeat / market-data liveness loss (zombie socket).
    HeartbeatLoss = 5,
    /// Session terminated (10028) after the reconnect.
    SessionTermination = 6,
    /// A fill arrived for no local Sent/Ack intent.
    OrphanFill = 7,
    /// Operator or test request.
    Manual = 8,
}

impl TriggerKind {
    /// Every kind.
    pub const ALL: [Self; 9] = [
        Self::Startup,
        Self::Periodic,
        Self::BookGap,
        Self::TradesGap,
        Self::PrivateGap,
        Self::HeartbeatLoss,
        Self::SessionTermination,
        Self::OrphanFill,
        Self::Manual,
    ];
}

/// A set of trigger kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TriggerSet(u32);

impl TriggerSet {
    /// Whether `kind` is in the set.
    #[must_use]
    pub const fn contains(self, kind: TriggerKind) -> bool {
        self.0 & (1 << kind as u32) != 0
    }

    /// Whether empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds, in order.
    pub fn iter(self) -> impl Iterator<Item = TriggerKind> {
        TriggerKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

/// Non-blocking trigger flags: any thread (the hot loop included) calls [`Triggers::fire`],
/// one atomic OR, never a lock or a wait. Share as `Arc<Triggers>`.
#[derive(Debug, Default)]
pub struct Triggers {
    bits: AtomicU32,
}

impl Triggers {
    /// No pending trigger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests a run (wait-free).
    pub fn fire(&self, kind: TriggerKind) {
        self.bits.fetch_or(1 << kind as u32, Ordering::Release);
    }

    /// Takes every pending trigger.
    pub fn take(&self) -> TriggerSet {
        TriggerSet(self.bits.swap(0, Ordering::AcqRel))
    }

    /// Pending triggers, without taking them.
    #[must_use]
    pub fn pending(&self) -> TriggerSet {
        TriggerSet(self.bits.load(Ordering::Acquire))
    }
}

/// When the next run is due: pending triggers (after `min_gap_ms`) or the periodic timer.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval_ms: i64,
    min_gap_ms: i64,
    last_run_ms: Option<i64>,
}

impl Schedule {
    /// A schedule whose first check is due at once (startup).
    #[must_use]
    pub const fn new(interval_ms: i64, min_gap_ms: i64) -> Self {
        Self { interval_ms, min_gap_ms, last_run_ms: None }
    }

    /// Returns the triggers of a run due now (taking them), or `None`.
    pub fn due(&mut self, triggers: &Triggers, now_ms: i64) -> Option<TriggerSet> {
        let since = self.last_run_ms.map(|t| now_ms.saturating_sub(t));
        let pending = !triggers.pending().is_empty();
        let run = match since {
            None => true,
            Some(s) => (pending && s >= self.min_gap_ms) || s >= self.interval_ms,
        };
        if !run {
            return None;
        }
        self.last_run_ms = Some(now_ms);
        let mut set = triggers.take();
        if since.is_none() {
            set.0 |= 1 << TriggerKind::Startup as u32;
        } else if set.is_empty() {
            set.0 |= 1 << TriggerKind::Periodic as u32;
        }
        Some(set)
    }

    /// Sleeps in short slices until a run is due or `max_wait` passed (never spins).
    pub fn wait_due(
        &mut self,
        triggers: &Triggers,
        clock: &dyn Clock,
        max_wait: Duration,
    ) -> Option<TriggerSet> {
        let deadline = Instant::now() + max_wait;
        loop {
            if let Some(s) = self.due(triggers, clock.now_ms()) {
                return Some(s);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(left.min(Duration::from_millis(TRIGGER_POLL_SLICE_MS)));
        }
    }
}

/// The reconciler service.
pub struct Reconciler {
    conn: Connection,
    cfg: ReconcilerConfig,
    clock: Arc<dyn Clock>,
    /// Trades within the lookback, by id.
    trades: BTreeMap<String, VenueTrade>,
    /// Per currency: trades are complete up to this time, ms.
    watermark_ms: BTreeMap<String, i64>,
    runs: u64,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("conn", &self.conn)
            .field("trades_cached", &self.trades.len())
            .field("runs", &self.runs)
            .finish_non_exhaustive()
    }
}

/// Granted-scope tokens that can trade or change the account.
const TRADE_CAPABLE_SCOPES: [&str; 2] = ["trade:read_write", "account:read_write"];

impl Reconciler {
    /// Connects, authenticates with `creds` (client signature; the secret never leaves the
    /// process) and verifies the key is read-only.
    ///
    /// # Errors
    /// [`ReconcileError::TradeCapableKey`], [`ReconcileError::MissingScope`], or a
    /// connection/auth failure.
    pub fn connect(
        cfg: ReconcilerConfig,
        creds: &Credentials,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ReconcileError> {
        let mut conn = Connection::connect(&ConnConfig::new(&cfg.url), Arc::clone(&clock))?;
        conn.authenticate(creds, AuthGrant::ClientSignature, None, cfg.request_timeout)?;
        let scope = conn.token().ok_or(ReconcileError::NotAuthenticated)?.scope.clone();
        let has = |t: &str| scope.split(' ').any(|s| s == t);
        if TRADE_CAPABLE_SCOPES.iter().any(|t| has(t)) {
            conn.close();
            return Err(ReconcileError::TradeCapableKey { scope });
        }
        if !has("trade:read") {
            conn.close();
            return Err(ReconcileError::MissingScope { scope });
        }
        let mut me = Self {
            conn,
            cfg,
            clock,
            trades: BTreeMap::new(),
            watermark_ms: BTreeMap::new(),
            runs: 0,
        };
        let limit = me.account_limit().unwrap_or(me.cfg.account_limit);
        me.apply_credit_share(limit);
        Ok(me)
    }

    /// The granted scope (for status and tests).
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.conn.token().map(|t| t.scope.as_str())
    }

    /// Completed runs.
    #[must_use]
    pub const fn runs(&self) -> u64 {
        self.runs
    }

    fn apply_credit_share(&mut self, limit: RateBurst) {
        let pct = i64::from(self.cfg.credit_share_pct.clamp(1, 100));
        let share = RateBurst {
            rate: (limit.rate.saturating_mul(pct) / 100).max(1),
            burst: (limit.burst.saturating_mul(pct) / 100).max(1),
        };
        let now = self.clock.now_ms();
        self.conn.limiter().apply_account_limits(Some(share), None, now);
    }

    /// The account's non-matching-engine limit (`get_account_summary`), if reported.
    fn account_limit(&mut self) -> Option<RateBurst> {
        let ccy = self.cfg.currencies.first()?.clone();
        self.query(
            methods::GET_ACCOUNT_SUMMARY,
            |b| {
                b.str("currency", &ccy);
            },
            |m| match m {
                Message::Response(r) => match &r.result {
                    ResultPayload::AccountSummary(s) => Ok(s.limits_non_matching),
                    _ => Err(ConnError::UnexpectedReply),
                },
                _ => Err(ConnError::UnexpectedReply),
            },
        )
        .ok()
        .flatten()
    }

    /// One query with bounded throttle retries (sleeps the limiter's wait; cold thread).
    fn query<T>(
        &mut self,
        method: &'static str,
        fill: impl Fn(&mut hotpath::venue::request::RequestBuf),
        map: impl Fn(&Message<'_>) -> Result<T, ConnError>,
    ) -> Result<T, ReconcileError> {
        for _ in 0..=THROTTLE_RETRIES_MAX {
            match self.conn.call(method, &fill, self.cfg.request_timeout, &map, &mut |_| {}) {
                Err(ConnError::Throttled { wait_ms }) => {
                    std::thread::sleep(Duration::from_millis(wait_ms.clamp(1, 1_000)));
                }
                Err(ConnError::UnexpectedReply) => {
                    return Err(ReconcileError::UnexpectedReply(method));
                }
                other => return other.map_err(ReconcileError::from),
            }
        }
        Err(ReconcileError::Throttled(THROTTLE_RETRIES_MAX))
    }

    fn open_orders(&mut self, ccy: &str) -> Result<Vec<VenueOrder>, ReconcileError> {
        self.query(
            methods::GET_OPEN_ORDERS_BY_CURRENCY,
            |b| {
                b.str("currency", ccy);
            },
            orders_of,
        )
    }

    fn label_orders(&mut self, label: &str, ccy: &str) -> Result<Vec<VenueOrder>, ReconcileError> {
        self.query(
            methods::GET_ORDER_STATE_BY_LABEL,
            |b| {
                b.str("currency", ccy).str("label", label);
            },
            orders_of,
        )
    }

    fn positions(&mut self, ccy: &str) -> Result<Vec<VenuePosition>, ReconcileError> {
        self.query(
            methods::GET_POSITIONS,
            |b| {
                b.str("currency", ccy);
            },
            |m| match m {
                Message::Response(r) => match &r.result {
                    ResultPayload::Positions(v) => {
                        Ok(v.iter().map(VenuePosition::from_wire).collect())
                    }
                    ResultPayload::Position(p) => Ok(vec![VenuePosition::from_wire(p)]),
                    ResultPayload::EmptyList => Ok(Vec::new()),
                    _ => Err(ConnError::UnexpectedReply),
                },
                _ => Err(ConnError::UnexpectedReply),
            },
        )
    }

    /// Reads trades of `ccy` from the watermark, at most `trades_pages_max` pages; returns
    /// whether the venue said there are no more. An incomplete read leaves the watermark at
    /// the last timestamp read, so the next run continues there. More than a page of trades
    /// within one millisecond cannot be paged by timestamp: the run stays incomplete (the
    /// latch stays set), which is the safe side.
    fn fetch_trades(&mut self, ccy: &str, now_ms: i64) -> Result<bool, ReconcileError> {
        let page_size = self.cfg.trades_page_size.clamp(1, 1000);
        let lookback_start = now_ms.saturating_sub(self.cfg.reconcile.trade_lookback_ms);
        // Watermark: every trade before it has been read. Start there (inclusive; ids dedupe).
        let mut start =
            self.watermark_ms.get(ccy).map_or(lookback_start, |w| (*w).max(lookback_start));
        for _ in 0..self.cfg.trades_pages_max {
            let (page, has_more) = self.query(
                methods::GET_USER_TRADES_BY_CURRENCY,
                |b| {
                    b.str("currency", ccy)
                        .int("start_timestamp", start)
                        .int("count", page_size)
                        .str("sorting", "asc");
                },
                |m| match m {
                    Message::Response(r) => match &r.result {
                        ResultPayload::UserTrades(v, more) => {
                            Ok((v.iter().map(VenueTrade::from_wire).collect::<Vec<_>>(), *more))
                        }
                        ResultPayload::EmptyList => Ok((Vec::new(), false)),
                        _ => Err(ConnError::UnexpectedReply),
                    },
                    _ => Err(ConnError::UnexpectedReply),
                },
            )?;
            let last_ts = page.iter().map(|t| t.timestamp_ms).max();
            for t in page {
                if self.trades.len() >= TRADE_CACHE_MAX && !self.trades.contains_key(&t.trade_id) {
                    // Cache full: trades would go missing silently; report incomplete.
                    return Ok(false);
                }
                self.trades.insert(t.trade_id.clone(), t);
            }
            if !has_more {
                // Trades stamped just before `now` may still be arriving: re-read an overlap.
                let mark = now_ms.saturating_sub(WATERMARK_OVERLAP_MS).max(start);
                self.watermark_ms.insert(ccy.to_owned(), mark);
                return Ok(true);
            }
            match last_ts {
                // Next page starts at the last timestamp (inclusive; ids dedupe).
                Some(ts) if ts > start => {
                    start = ts;
                    self.watermark_ms.insert(ccy.to_owned(), ts);
                }
                // A full page within one millisecond: cannot page further safely.
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// One full pass: fetch, reconcile, report. Never sends an order or a cancel.
    ///
    /// # Errors
    /// [`ReconcileError`] when a query fails; nothing is reported then (the latch stays).
    pub fn run_once(
        &mut self,
        ledger: &LedgerSnapshot,
        local: &LocalPositions,
    ) -> Result<ReconcileReport, ReconcileError> {
        // Forget requests whose replies never came (each would hold an in-flight slot).
        let timeout_ms = i64::try_from(self.cfg.request_timeout.as_millis()).unwrap_or(i64::MAX);
        self.conn.expire_in_flight(timeout_ms);
        let _ = self.conn.refresh_if_due(self.cfg.request_timeout);
        let fetched_ms = self.clock.now_ms();
        let currencies = self.cfg.currencies.clone();
        // Order matters: orders first, then trades (an order that fills meanwhile shows up
        // as a trade), then positions.
        let mut open_orders = Vec::new();
        for c in &currencies {
            open_orders.extend(self.open_orders(c)?);
        }
        let mut complete = true;
        for c in &currencies {
            complete &= self.fetch_trades(c, fetched_ms)?;
        }
        let horizon = fetched_ms.saturating_sub(self.cfg.reconcile.trade_lookback_ms);
        self.trades.retain(|_, t| t.timestamp_ms >= horizon);
        let mut positions = Vec::new();
        for c in &currencies {
            positions.extend(self.positions(c)?);
        }
        let mut label_lookups = BTreeMap::new();
        for label in ghost_candidates(ledger, &open_orders, LABEL_LOOKUPS_MAX) {
            let ccys: Vec<String> = match currency_of_label(ledger, &label) {
                Some(c) => vec![c],
                None => currencies.clone(),
            };
            let mut orders = Vec::new();
            for c in &ccys {
                orders.extend(self.label_orders(&label, c)?);
            }
            label_lookups.insert(label, LabelLookup { orders });
        }
        let venue = VenueSnapshot {
            open_orders,
            trades: self.trades.values().cloned().collect(),
            trades_complete: complete,
            positions,
            label_lookups,
            fetched_ms,
        };
        self.runs += 1;
        let report = reconcile(ledger, local, &venue, &self.cfg.reconcile);
        if report.is_clean() {
            tracing::debug!(run = self.runs, "reconcile clean");
        } else {
            for f in &report.findings {
                tracing::warn!(run = self.runs, kind = f.kind().as_str(), finding = ?f, "reconcile finding");
            }
        }
        Ok(report)
    }

    /// True once the venue closed the socket: the owner reconnects with
    /// [`Reconciler::connect`] under hotpath's reconnect `Backoff` (ruling 3).
    #[must_use]
    pub const fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

fn orders_of(m: &Message<'_>) -> Result<Vec<VenueOrder>, ConnError> {
    match m {
        Message::Response(r) => match &r.result {
            ResultPayload::Orders(v) => Ok(v.iter().map(VenueOrder::from_wire).collect()),
            ResultPayload::Order(o) => Ok(vec![VenueOrder::from_wire(o)]),
            ResultPayload::EmptyList => Ok(Vec::new()),
            _ => Err(ConnError::UnexpectedReply),
        },
        _ => Err(ConnError::UnexpectedReply),
    }
}

/// Currency of an intent's instrument (`BTC-…` → `BTC`), when the ledger view knows it.
fn currency_of_label(ledger: &LedgerSnapshot, label: &str) -> Option<String> {
    let it = ledger.intents.iter().find(|i| i.label == label)?;
    let inst = &it.detail.as_ref()?.instrument;
    inst.split('-').next().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Records a clean pass in the metrics (`stoic_last_reconcile_age_seconds`).
pub fn note_clean_pass(metrics: &MetricsRegistry, report: &ReconcileReport) {
    if report.is_clean() {
        metrics.last_reconcile_ts_ms.set(report.fetched_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_startup_periodic_and_triggered() {
        let t = Triggers::new();
        let mut s = Schedule::new(RECONCILE_INTERVAL_MS, RECONCILE_MIN_GAP_MS);
        let first = s.due(&t, 0).expect("startup run is due at once");
        assert!(first.contains(TriggerKind::Startup));
        assert_eq!(s.due(&t, 1_000), None);
        // A gap signal waits for the minimum gap, then runs without waiting for the timer.
        t.fire(TriggerKind::BookGap);
        t.fire(TriggerKind::HeartbeatLoss);
        assert_eq!(s.due(&t, 100), None);
        let set = s.due(&t, 1_250).expect("triggered run");
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![TriggerKind::BookGap, TriggerKind::HeartbeatLoss]
        );
        assert!(t.pending().is_empty());
        // Nothing pending: the timer.
        assert_eq!(s.due(&t, 1_250 + RECONCILE_INTERVAL_MS - 1), None);
        let set = s.due(&t, 1_250 + RECONCILE_INTERVAL_MS).expect("periodic");
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![TriggerKind::Periodic]);
    }

    #[test]
    fn wait_due_parks_and_gives_up_at_the_deadline() {
        let t = Triggers::new();
        let clock = hotpath::clock::SystemClock;
        let mut s = Schedule::new(60_000, 0);
        assert!(s.wait_due(&t, &clock, Duration::from_millis(10)).is_some());
        let started = Instant::now();
        assert_eq!(s.wait_due(&t, &clock, Duration::from_millis(60)), None);
        assert!(started.elapsed() >= Duration::from_millis(60));
        t.fire(TriggerKind::Manual);
        let set = s.wait_due(&t, &clock, Duration::from_millis(200)).expect("fired");
        assert!(set.contains(TriggerKind::Manual));
    }
}
