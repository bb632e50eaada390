//! The metrics the engine updates and `/metrics` renders (Prometheus text format 0.0.4).
//!
//! Every metric is a fixed field or a fixed-size array indexed by a closed registry enum,
//! allocated once at start-up: updating one is a single relaxed atomic add or store, so the
//! hot path may call it directly (no lock, no allocation, no formatting). Relaxed ordering is
//! enough because each value is independent and a scrape only needs *a* recent value.
//!
//! Names: the two contract metrics keep their contract names (`duplicate_dispatch_count`,
//! `illegal_order_attempts`); everything else is `stoic_*`. Every series carries `run_id`.
//!
//! Intent ids on metrics (AT-902): a per-intent label on a counter would grow without bound,
//! and the 0.0.4 text format has no exemplars. So the reject counters stay labelled by reason
//! code only, and `stoic_recent_reject_info` carries the last [`RECENT_REJECTS`] refusals as
//! one series each (`slot`, `intent_id`, `reason_code`, `gate`, `run_id`; value = the
//! reject's ordinal since start): at most that many extra series per scrape. That table is
//! written by the cold trace sink only, so it sits behind a mutex the hot path never takes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use hotpath::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RejectReasonCode, TradingMode,
};

/// Histogram bucket upper bounds in nanoseconds: 10 µs … 1 s. Fixed so that every run's
/// histograms are comparable and observe() is a short linear scan with no allocation.
pub const LATENCY_BUCKETS_NS: [u64; 15] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Current value.
    #[must_use]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A latency histogram over [`LATENCY_BUCKETS_NS`] (plus the implicit `+Inf`).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative count per bucket; index `LATENCY_BUCKETS_NS.len()` is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one observation in nanoseconds.
    pub fn observe_ns(&self, ns: u64) {
        let i =
            LATENCY_BUCKETS_NS.iter().position(|&b| ns <= b).unwrap_or(LATENCY_BUCKETS_NS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of observations so far.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The bounded queues whose depth and overflow the engine reports.
/// Results of a continuous reconciliation pass (`/status` `reconcile.last_result`): clean;
/// mismatches confirmed and repaired; mismatches seen once (suspect, checked again); findings
/// it could not resolve yet; raced with the engine (looked again); the pass failed.
pub const RECONCILE_RESULTS: [&str; 6] =
    ["clean", "repaired", "suspect", "unresolved", "raced", "error"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingId {
    /// Market data → strategy (conflating).
    FeedToStrategy,
    /// Strategy → gate (intents).
    StrategyToGate,
    /// Gate → dispatch (WAL-recorded intents).
    GateToDispatch,
    /// Dispatch/venue → strategy (execution reports).
    ExecutionReports,
    /// Cold path → gate/dispatch (mode tightening, cancels, emergency close).
    Control,
    /// Hot path → cold log/evidence sink.
    EvidenceLog,
}

impl RingId {
    /// Every ring, in render order.
    pub const ALL: [Self; 6] = [
        Self::FeedToStrategy,
        Self::StrategyToGate,
        Self::GateToDispatch,
        Self::ExecutionReports,
        Self::Control,
        Self::EvidenceLog,
    ];

    /// Label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FeedToStrategy => "feed_to_strategy",
            Self::StrategyToGate => "strategy_to_gate",
            Self::GateToDispatch => "gate_to_dispatch",
            Self::ExecutionReports => "execution_reports",
            Self::Control => "control",
            Self::EvidenceLog => "evidence_log",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// How many of the latest refusals `stoic_recent_reject_info` shows.
pub const RECENT_REJECTS: usize = 8;

/// One refusal in the recent-rejects table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentReject {
    /// Ordinal of this reject since start (1-based).
    pub ordinal: u64,
    /// Intent hash.
    pub intent_id: u64,
    /// Registry code.
    pub code: RejectReasonCode,
    /// The gate (or `wal`) that refused.
    pub gate: &'static str,
}

#[derive(Debug, Default)]
struct RecentRejects {
    slots: [Option<RecentReject>; RECENT_REJECTS],
    total: u64,
}

const MODE_REASONS: usize = ModeReasonCode::ALL.len();
const REJECTS: usize = RejectReasonCode::ALL.len();
const LATCH_CODES: usize = OpenPermissionReasonCode::ALL.len();
const RINGS: usize = RingId::ALL.len();

/// One instrument of the engine's hot state: position and resting (unfilled) amounts.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionMetric {
    /// Instrument name (validated upstream: letters, digits, `-`, `_`, `.`).
    pub instrument: String,
    /// Position (contract amount units).
    pub amount: f64,
    /// Unfilled amount of our live buy orders.
    pub pending_buy: f64,
    /// Unfilled amount of our live sell orders.
    pub pending_sell: f64,
}

/// The engine's hot state as the metrics pump last read it from the trading thread's
/// seqlock (a cold copy; the pump runs on its own thread).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStateMetrics {
    /// Instruments with a position or resting orders.
    pub positions: Vec<PositionMetric>,
    /// Engine counters by name (monotonic).
    pub counters: Vec<(&'static str, u64)>,
    /// Newest book change the trading thread had seen (venue ms; 0 before the first).
    pub last_book_ms: i64,
    /// Rings the trading thread reports: (ring, depth now, overflows since start).
    pub rings: Vec<(RingId, u64, u64)>,
}

/// All engine metrics. Create once, share as `Arc<MetricsRegistry>`.
#[derive(Debug)]
pub struct MetricsRegistry {
    run_id: String,
    /// Intents sent to the venue more than once (must stay 0).
    pub duplicate_dispatch_count: Counter,
    /// Orders of a forbidden kind that reached the dispatch boundary (must stay 0).
    pub illegal_order_attempts: Counter,
    rejects: [Counter; REJECTS],
    mode_transitions: [Counter; MODE_REASONS],
    /// Changes of TradingMode whose new mode is Active (no reason code exists for those).
    pub mode_transitions_to_active: Counter,
    trading_mode: Gauge,
    /// Open-permission latch: 1 set, 0 clear.
    pub open_permission_latch: Gauge,
    latch_codes: [Gauge; LATCH_CODES],
    /// Durable-append latency (write + fdatasync) per group commit.
    pub wal_sync_latency: Histogram,
    /// From the strategy tick's start to the order written to the socket (the engine measures
    /// per sent intent; gates, WAL append and the batch's sync are inside the interval).
    pub tick_to_send: Histogram,
    ring_depth: [Gauge; RINGS],
    ring_overflow: [Counter; RINGS],
    /// Epoch ms of the last successful reconciliation; 0 = never.
    pub last_reconcile_ts_ms: Gauge,
    reconcile_passes: [Counter; RECONCILE_RESULTS.len()],
    /// Index in [`RECONCILE_RESULTS`] of the last pass's result + 1; 0 = none yet.
    last_reconcile_result: Gauge,
    recent_rejects: Mutex<RecentRejects>,
    engine_state: Mutex<EngineStateMetrics>,
}

impl MetricsRegistry {
    /// A registry whose every series is labelled `run_id="<run_id>"`. Characters that
    /// would break the label syntax are replaced by `_` (the run id is ours, not input).
    #[must_use]
    pub fn new(run_id: &str) -> Self {
        let run_id = run_id
            .chars()
            .take(64)
            .map(|c| if c.is_ascii_alphanumeric() || "-_.:".contains(c) { c } else { '_' })
            .collect();
        Self {
            run_id,
            duplicate_dispatch_count: Counter::default(),
            illegal_order_attempts: Counter::default(),
            rejects: std::array::from_fn(|_| Counter::default()),
            mode_transitions: std::array::from_fn(|_| Counter::default()),
            mode_transitions_to_active: Counter::default(),
            trading_mode: Gauge::default(),
            open_permission_latch: Gauge::default(),
            latch_codes: std::array::from_fn(|_| Gauge::default()),
            wal_sync_latency: Histogram::default(),
            tick_to_send: Histogram::default(),
            ring_depth: std::array::from_fn(|_| Gauge::default()),
            ring_overflow: std::array::from_fn(|_| Counter::default()),
            last_reconcile_ts_ms: Gauge::default(),
            reconcile_passes: std::array::from_fn(|_| Counter::default()),
            last_reconcile_result: Gauge::default(),
            recent_rejects: Mutex::default(),
            engine_state: Mutex::default(),
        }
    }

    /// Replaces the engine hot-state series (the metrics pump, a cold thread).
    pub fn set_engine_state(&self, state: EngineStateMetrics) {
        if let Ok(mut g) = self.engine_state.lock() {
            *g = state;
        }
    }

    /// The run id as rendered.
    #[must_use]
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Counts one pre-dispatch reject.
    pub fn record_reject(&self, code: RejectReasonCode) {
        self.rejects[code as usize].inc();
    }

    /// Rejects counted for `code`.
    #[must_use]
    pub fn rejects(&self, code: RejectReasonCode) -> u64 {
        self.rejects[code as usize].get()
    }

    /// Remembers a refusal in the bounded recent-rejects table (cold side only: it locks).
    pub fn record_recent_reject(&self, intent_id: u64, code: RejectReasonCode, gate: &'static str) {
        let mut t = self.recent_rejects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        t.total += 1;
        let ordinal = t.total;
        let slot = usize::try_from((ordinal - 1) % RECENT_REJECTS as u64).unwrap_or(0);
        t.slots[slot] = Some(RecentReject { ordinal, intent_id, code, gate });
    }

    /// The recent-rejects table, oldest first.
    #[must_use]
    pub fn recent_rejects(&self) -> Vec<RecentReject> {
        let t = self.recent_rejects.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut v: Vec<RecentReject> = t.slots.iter().flatten().copied().collect();
        v.sort_by_key(|r| r.ordinal);
        v
    }

    /// Sets the mode gauge without counting a transition (the start state).
    pub fn set_trading_mode(&self, mode: TradingMode) {
        self.trading_mode.set(mode as i64);
    }

    /// Records a mode change: sets the mode gauge and counts one transition per reason
    /// (a change to Active has no reason and is counted separately).
    pub fn record_mode_transition(&self, to: TradingMode, reasons: &[ModeReasonCode]) {
        self.trading_mode.set(to as i64);
        if reasons.is_empty() {
            self.mode_transitions_to_active.inc();
        }
        for r in reasons {
            self.mode_transitions[*r as usize].inc();
        }
    }

    /// Sets the latch gauges from the latch's current codes.
    pub fn set_latch(&self, codes: &[OpenPermissionReasonCode]) {
        self.open_permission_latch.set(i64::from(!codes.is_empty()));
        for c in OpenPermissionReasonCode::ALL {
            self.latch_codes[c as usize].set(i64::from(codes.contains(&c)));
        }
    }

    /// Sets a ring's current depth.
    pub fn set_ring_depth(&self, ring: RingId, depth: u64) {
        self.ring_depth[ring.index()].set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts one push refused because the ring was full.
    pub fn record_ring_overflow(&self, ring: RingId) {
        self.ring_overflow[ring.index()].inc();
    }

    /// Counts `n` pushes refused because the ring was full (a producer-side counter's delta).
    pub fn add_ring_overflow(&self, ring: RingId, n: u64) {
        self.ring_overflow[ring.index()].add(n);
    }

    /// Overflows counted for `ring`.
    #[must_use]
    pub fn ring_overflow(&self, ring: RingId) -> u64 {
        self.ring_overflow[ring.index()].get()
    }

    /// Appends the exposition text to `out`. `now_ms` is used for the reconcile age.
    pub fn render(&self, now_ms: i64, out: &mut String) {
        let run = &self.run_id;
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{run_id=\"{run}\"}} {v}"
            );
        };
        counter(
            out,
            "duplicate_dispatch_count",
            "Intents dispatched to the venue more than once (must be 0).",
            self.duplicate_dispatch_count.get(),
        );
        counter(
            out,
            "illegal_order_attempts",
            "Forbidden orders that reached the dispatch boundary (must be 0).",
            self.illegal_order_attempts.get(),
        );

        let _ = writeln!(out, "# HELP stoic_rejects_total Pre-dispatch rejects by reason code.\n# TYPE stoic_rejects_total counter");
        for c in RejectReasonCode::ALL {
            let _ = writeln!(
                out,
                "stoic_rejects_total{{run_id=\"{run}\",reason_code=\"{}\"}} {}",
                c.as_str(),
                self.rejects(c)
            );
        }

        let _ = writeln!(out, "# HELP stoic_mode_transitions_total TradingMode changes by mode reason (reason_code=\"NONE\": to Active).\n# TYPE stoic_mode_transitions_total counter");
        for c in ModeReasonCode::ALL {
            let _ = writeln!(
                out,
                "stoic_mode_transitions_total{{run_id=\"{run}\",reason_code=\"{}\"}} {}",
                c.as_str(),
                self.mode_transitions[c as usize].get()
            );
        }
        let _ = writeln!(
            out,
            "stoic_mode_transitions_total{{run_id=\"{run}\",reason_code=\"NONE\"}} {}",
            self.mode_transitions_to_active.get()
        );

        let _ = writeln!(out, "# HELP stoic_trading_mode Current TradingMode, one series per mode (1 = current).\n# TYPE stoic_trading_mode gauge");
        let mode = self.trading_mode.get();
        for m in TradingMode::ALL {
            let _ = writeln!(
                out,
                "stoic_trading_mode{{run_id=\"{run}\",mode=\"{}\"}} {}",
                m.as_str(),
                i64::from(m as i64 == mode)
            );
        }

        let _ = writeln!(out, "# HELP stoic_open_permission_latch Open-permission latch (CP-001): 1 set, 0 clear.\n# TYPE stoic_open_permission_latch gauge\nstoic_open_permission_latch{{run_id=\"{run}\"}} {}", self.open_permission_latch.get());
        let _ = writeln!(out, "# HELP stoic_open_permission_latch_code Latch reason codes currently set (1 = set).\n# TYPE stoic_open_permission_latch_code gauge");
        for c in OpenPermissionReasonCode::ALL {
            let _ = writeln!(
                out,
                "stoic_open_permission_latch_code{{run_id=\"{run}\",reason_code=\"{}\"}} {}",
                c.as_str(),
                self.latch_codes[c as usize].get()
            );
        }

        render_histogram(
            out,
            run,
            "stoic_wal_sync_latency_seconds",
            "WAL durable append (write + fdatasync) latency per group commit.",
            &self.wal_sync_latency,
        );
        render_histogram(
            out,
            run,
            "stoic_tick_to_send_seconds",
            "Strategy tick start to the order written to the venue socket (gates, WAL append and sync included).",
            &self.tick_to_send,
        );

        let _ = writeln!(out, "# HELP stoic_ring_depth Current depth of each bounded ring.\n# TYPE stoic_ring_depth gauge");
        for r in RingId::ALL {
            let _ = writeln!(
                out,
                "stoic_ring_depth{{run_id=\"{run}\",ring=\"{}\"}} {}",
                r.as_str(),
                self.ring_depth[r.index()].get()
            );
        }
        let _ = writeln!(out, "# HELP stoic_ring_overflow_total Pushes refused because the ring was full.\n# TYPE stoic_ring_overflow_total counter");
        for r in RingId::ALL {
            let _ = writeln!(
                out,
                "stoic_ring_overflow_total{{run_id=\"{run}\",ring=\"{}\"}} {}",
                r.as_str(),
                self.ring_overflow[r.index()].get()
            );
        }
        if let Ok(e) = self.engine_state.lock() {
            render_engine_state(out, run, &e);
        }

        let _ = writeln!(out, "# HELP stoic_recent_reject_info The latest pre-dispatch refusals with their intent id (value: reject ordinal since start).\n# TYPE stoic_recent_reject_info gauge");
        for (slot, r) in self.recent_rejects().iter().enumerate() {
            let _ = writeln!(
                out,
                "stoic_recent_reject_info{{run_id=\"{run}\",slot=\"{slot}\",intent_id=\"{:016x}\",reason_code=\"{}\",gate=\"{}\"}} {}",
                r.intent_id,
                r.code.as_str(),
                r.gate,
                r.ordinal
            );
        }

        let last = self.last_reconcile_ts_ms.get();
        // Never reconciled = infinitely old: +Inf makes an alert "age > N" fire, which a 0 would hide.
        let age = if last <= 0 {
            "+Inf".to_owned()
        } else {
            format!("{:.3}", (now_ms.saturating_sub(last)).max(0) as f64 / 1000.0)
        };
        let _ = writeln!(out, "# HELP stoic_last_reconcile_age_seconds Seconds since the last successful reconciliation (+Inf: never).\n# TYPE stoic_last_reconcile_age_seconds gauge\nstoic_last_reconcile_age_seconds{{run_id=\"{run}\"}} {age}");
        let _ = writeln!(out, "# HELP stoic_reconcile_passes_total Continuous reconciliation passes by result.\n# TYPE stoic_reconcile_passes_total counter");
        for (name, c) in RECONCILE_RESULTS.iter().zip(&self.reconcile_passes) {
            let _ = writeln!(
                out,
                "stoic_reconcile_passes_total{{run_id=\"{run}\",result=\"{name}\"}} {}",
                c.get()
            );
        }
        let last = usize::try_from(self.last_reconcile_result.get()).unwrap_or(0);
        let _ = writeln!(out, "# HELP stoic_last_reconcile_result The last reconciliation pass's result (1 on its series; none before the first).\n# TYPE stoic_last_reconcile_result gauge");
        for (i, name) in RECONCILE_RESULTS.iter().enumerate() {
            let v = u8::from(last == i + 1);
            let _ = writeln!(
                out,
                "stoic_last_reconcile_result{{run_id=\"{run}\",result=\"{name}\"}} {v}"
            );
        }
    }

    /// Counts a continuous-reconciliation pass and makes it the last result (`name` is one of
    /// [`RECONCILE_RESULTS`]; any other is counted as `error`).
    pub fn record_reconcile_result(&self, name: &str) {
        let i = RECONCILE_RESULTS
            .iter()
            .position(|r| *r == name)
            .unwrap_or(RECONCILE_RESULTS.len() - 1);
        self.reconcile_passes[i].inc();
        self.last_reconcile_result.set(i64::try_from(i + 1).unwrap_or(0));
    }
}

fn render_histogram(out: &mut String, run: &str, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (i, b) in LATENCY_BUCKETS_NS.iter().enumerate() {
        cumulative += h.buckets[i].load(Ordering::Relaxed);
        let le = *b as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{run_id=\"{run}\",le=\"{le}\"}} {cumulative}");
    }
    cumulative += h.buckets[LATENCY_BUCKETS_NS.len()].load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{run_id=\"{run}\",le=\"+Inf\"}} {cumulative}");
    let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(
        out,
        "{name}_sum{{run_id=\"{run}\"}} {sum}\n{name}_count{{run_id=\"{run}\"}} {cumulative}"
    );
}

/// The engine hot-state families: positions and resting amounts per instrument, engine
/// counters, the newest book time.
fn render_engine_state(out: &mut String, run: &str, e: &EngineStateMetrics) {
    let _ = writeln!(out, "# HELP stoic_position_amount Position per instrument (amount units), from the trading thread's hot state.\n# TYPE stoic_position_amount gauge");
    for p in &e.positions {
        let _ = writeln!(
            out,
            "stoic_position_amount{{run_id=\"{run}\",instrument=\"{}\"}} {}",
            p.instrument, p.amount
        );
    }
    let _ = writeln!(out, "# HELP stoic_pending_amount Unfilled amount of our live orders per instrument and side.\n# TYPE stoic_pending_amount gauge");
    for p in &e.positions {
        for (side, v) in [("buy", p.pending_buy), ("sell", p.pending_sell)] {
            let _ = writeln!(
                out,
                "stoic_pending_amount{{run_id=\"{run}\",instrument=\"{}\",side=\"{side}\"}} {v}",
                p.instrument
            );
        }
    }
    let _ = writeln!(out, "# HELP stoic_engine_events_total Engine counters (intents, sends, acks, fills, ...).\n# TYPE stoic_engine_events_total counter");
    for (name, v) in &e.counters {
        let _ =
            writeln!(out, "stoic_engine_events_total{{run_id=\"{run}\",counter=\"{name}\"}} {v}");
    }
    let _ = writeln!(out, "# HELP stoic_last_book_update_ms Newest book change the trading thread has seen (venue epoch ms).\n# TYPE stoic_last_book_update_ms gauge\nstoic_last_book_update_ms{{run_id=\"{run}\"}} {}", e.last_book_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let m = MetricsRegistry::new("r1");
        m.wal_sync_latency.observe_ns(5_000);
        m.wal_sync_latency.observe_ns(120_000);
        m.wal_sync_latency.observe_ns(2_000_000_000);
        let mut s = String::new();
        m.render(0, &mut s);
        assert!(
            s.contains("stoic_wal_sync_latency_seconds_bucket{run_id=\"r1\",le=\"0.00001\"} 1"),
            "{s}"
        );
        assert!(s.contains("stoic_wal_sync_latency_seconds_bucket{run_id=\"r1\",le=\"0.00025\"} 2"));
        assert!(s.contains("stoic_wal_sync_latency_seconds_bucket{run_id=\"r1\",le=\"+Inf\"} 3"));
        assert!(s.contains("stoic_wal_sync_latency_seconds_count{run_id=\"r1\"} 3"));
    }

    #[test]
    fn recent_rejects_keep_the_latest_n_with_intent_ids() {
        let m = MetricsRegistry::new("r1");
        for i in 0..(RECENT_REJECTS as u64 + 3) {
            m.record_recent_reject(0xabc0 + i, RejectReasonCode::NetEdgeTooLow, "edge_policy");
        }
        let v = m.recent_rejects();
        assert_eq!(v.len(), RECENT_REJECTS);
        assert_eq!(v[0].ordinal, 4);
        assert_eq!(v[RECENT_REJECTS - 1].intent_id, 0xabc0 + RECENT_REJECTS as u64 + 2);
        let mut s = String::new();
        m.render(0, &mut s);
        assert!(s.contains("intent_id=\"000000000000abca\",reason_code=\"NetEdgeTooLow\",gate=\"edge_policy\"} 11"), "{s}");
    }

    #[test]
    fn run_id_is_sanitised() {
        assert_eq!(MetricsRegistry::new("a\"b\nc").run_id(), "a_b_c");
    }
}
