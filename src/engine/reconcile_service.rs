//! Continuous reconciliation wired into the engine (contract §3.4, §3.5), the rate-limit
//! breaker's reaction (§3.3, rulings 2–3) and the data-health inputs PolicyGuard needs
//! (book gaps, market-data silence, clock drift, venue maintenance).
//!
//! The venue side of a pass runs on a cold thread with its own read-only connection and key
//! (`coldpath::reconcile::Reconciler`, which refuses a trade-capable key). The engine thread
//! only builds the ledger view, hands it over a channel and later applies the repairs that
//! come back; it never waits on the venue for a reconciliation.
//!
//! A mismatch seen once may be a report still on its way, so the pass is repeated after
//! [`CONFIRM_DELAY_MS`]; a finding present in both passes is confirmed: the latch is set with
//! its registry code (PolicyGuard then publishes `REDUCEONLY_OPEN_PERMISSION_LATCHED`) and the
//! repairs are applied (late fills adopted, zombies cancelled through dispatch, positions set
//! to the venue's). A later clean pass clears the latch; a run with an operator token
//! (simulator / paper) then relaxes exactly as it does after start-up reconciliation.
//!
//! `health` (submodule): the PolicyGuard inputs besides the passes (market-data liveness and
//! drift published by the feed thread, venue maintenance, the rate-limit breaker), the
//! brownout admission of opens, session-loss handling and the mode-change record.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;

use coldpath::metrics::MetricsRegistry;
use coldpath::reconcile::ratelimit::BreakerMonitor;
use coldpath::reconcile::service::Schedule;
use coldpath::reconcile::{
    CancelReason, Finding, FindingKind, IntentDetail, LedgerRepair, LedgerSnapshot, LocalPositions,
    ReconcileReport, Reconciler, ReconcilerConfig, RepairAction, TriggerKind, Triggers,
};
use hotpath::clock::Clock;
use hotpath::dispatch::ExecReport;
use hotpath::domain::intent::Side;
use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode, TradingMode};
use hotpath::domain::units::Qty;
use hotpath::mode::ReconcileTicket;
use hotpath::venue::auth::{Credentials, Secret};
use hotpath::venue::backoff::{Backoff, JitterRng};
use hotpath::venue::error::VenueErrorCode;
use hotpath::venue::messages::Direction;
use hotpath::wal::Record;

use super::{name_of, Engine, EngineError};

mod health;
use health::wall_ms;
pub use health::{
    is_10028, MdHealth, SharedMdHealth, DRIFT_SAMPLES, DRIFT_SAMPLES_MIN, MD_RESUMED_LAG_MS,
    ZOMBIE_SILENCE_MS,
};

/// Delay before the confirming pass of a suspected mismatch, ms.
pub const CONFIRM_DELAY_MS: i64 = 1_000;
/// How often the health inputs are evaluated, ms.
pub const EVALUATE_EVERY_MS: i64 = 20;
/// Mode transitions kept for `/status` (`coldpath::status::MODE_TRANSITIONS_MAX`).
pub const TRANSITIONS_MAX: usize = coldpath::status::MODE_TRANSITIONS_MAX;
/// Trade ids remembered for fill de-duplication and as processed (bounded FIFO).
pub const TRADE_IDS_MAX: usize = 4_096;
/// Mode reasons raised by reconciliation and the health inputs, which a simulator/paper run
/// relaxes after a clean pass once PolicyGuard no longer sees them. Each is a ReduceOnly
/// reason whose registry unblock is AUTO; no Kill reason is here (the session-termination
/// Kill's unblock is MANUAL: re-auth, full reconcile and an incident record, so an operator).
const AUTO_RELAX: [ModeReasonCode; 4] = [
    ModeReasonCode::ReduceonlyOpenPermissionLatched,
    ModeReasonCode::ReduceonlySessionKillUnconfirmed,
    ModeReasonCode::ReduceonlyRiskstateDegraded,
    ModeReasonCode::ReduceonlyRiskstateMaintenance,
];
/// Venue error: system maintenance (private matching-engine requests during maintenance).
const VENUE_MAINTENANCE: i32 = 11_051;

struct Job {
    id: u64,
    ledger: LedgerSnapshot,
    local: LocalPositions,
}

struct Done {
    id: u64,
    result: Result<ReconcileReport, String>,
}

struct JobMeta {
    id: u64,
    ticket: ReconcileTicket,
    pos_gen: u64,
    /// Ledger `updated_seq` of every intent at snapshot time: a repair applies only to an
    /// intent the engine has not touched since.
    seqs: BTreeMap<u64, u64>,
}

struct Worker {
    tx: Sender<Job>,
    rx: Receiver<Done>,
}

/// What `/status` shows about reconciliation and the health inputs (the `reconcile` key).
#[derive(Debug, Clone, Default)]
pub struct ReconView {
    /// Venue snapshot time of the last completed pass, ms (0: none yet).
    pub last_ts_ms: i64,
    /// `none`, `clean`, `suspect`, `unresolved`, `raced`, `repaired`, `error`.
    pub last_result: &'static str,
    /// Completed passes.
    pub runs: u64,
    /// Clean passes.
    pub clean_runs: u64,
    /// Passes that could not run (connection, key, query).
    pub errors: u64,
    /// Last error text.
    pub last_error: Option<String>,
    /// Findings of the last pass by kind.
    pub last_findings: BTreeMap<&'static str, usize>,
    /// Mismatches confirmed (seen in two passes) since start.
    pub confirmed_mismatches: u64,
    /// Repair actions applied since start.
    pub repairs_applied: u64,
    /// Zombie orders cancelled through dispatch.
    pub zombies_cancelled: u64,
    /// Stale orders cancelled.
    pub stale_cancelled: u64,
    /// Fills adopted for live intents (late fills).
    pub late_fills_adopted: u64,
    /// Fills adopted with no live intent (orphans, flagged).
    pub orphan_fills_adopted: u64,
    /// Positions set to the venue's.
    pub positions_adopted: u64,
    /// Repeated fill notifications ignored (same trade id).
    pub duplicate_fills_ignored: u64,
    /// Distinct fills (trade ids) applied.
    pub fills_applied: u64,
    /// Opens refused to keep the credit reserve for cancels and closes (`RateLimitBrownout`).
    pub brownout_rejects: u64,
    /// Latch codes set since start (sticky, registry order).
    pub latch_codes_seen: BTreeSet<OpenPermissionReasonCode>,
    /// Mode reasons published since start (sticky, registry order).
    pub mode_reasons_seen: BTreeSet<ModeReasonCode>,
    /// Mode changes (ts, from, to, reasons), newest last.
    pub transitions: VecDeque<(i64, TradingMode, TradingMode, Vec<ModeReasonCode>)>,
    /// `10028_count_5m`.
    pub count_10028_5m: u64,
    /// Clock drift estimate, ms.
    pub clock_drift_ms: i64,
    /// Market-data lag, ms.
    pub md_lag_ms: i64,
    /// Venue maintenance flag.
    pub maintenance: bool,
    /// Zombie-socket rule tripped.
    pub md_stale: bool,
    /// Triggers that started passes, by kind.
    pub triggers: BTreeMap<&'static str, u64>,
}

impl ReconView {
    /// The `reconcile` object of `/status` (stable key order).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "last_ts_ms": self.last_ts_ms,
            "last_result": if self.last_result.is_empty() { "none" } else { self.last_result },
            "runs": self.runs,
            "clean_runs": self.clean_runs,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_findings": self.last_findings,
            "confirmed_mismatches": self.confirmed_mismatches,
            "repairs_applied": self.repairs_applied,
            "zombies_cancelled": self.zombies_cancelled,
            "stale_cancelled": self.stale_cancelled,
            "late_fills_adopted": self.late_fills_adopted,
            "orphan_fills_adopted": self.orphan_fills_adopted,
            "positions_adopted": self.positions_adopted,
            "duplicate_fills_ignored": self.duplicate_fills_ignored,
            "fills_applied": self.fills_applied,
            "brownout_rejects": self.brownout_rejects,
            "latch_codes_seen": self.latch_codes_seen.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "mode_reasons_seen": self.mode_reasons_seen.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "clock_drift_ms": self.clock_drift_ms,
            "md_lag_ms": self.md_lag_ms,
            "maintenance": self.maintenance,
            "md_stale": self.md_stale,
            "triggers": self.triggers,
        })
    }
}

/// The engine's reconciliation and health state (one field of `Engine`).
pub struct ReconState {
    /// Market-data health, published by the feed thread.
    md: Arc<SharedMdHealth>,
    /// Book gaps the feed repaired (its resubscribe counter) as last seen.
    resubscribes_seen: u64,
    /// Market-data connects as last seen.
    md_connects_seen: u64,
    triggers: Arc<Triggers>,
    schedule: Schedule,
    worker: Option<Worker>,
    job: Option<JobMeta>,
    next_job_id: u64,
    next_job_ms: i64,
    /// Session reconnects (ruling 3; reset after 60 s healthy).
    backoff: Backoff,
    session_up: bool,
    /// Failed reconciliation passes.
    pass_backoff: Backoff,
    rng: JitterRng,
    suspects: BTreeSet<String>,
    processed: VecDeque<String>,
    processed_set: BTreeSet<String>,
    fills_seen: VecDeque<String>,
    fills_seen_set: BTreeSet<String>,
    /// Bumped whenever the engine's positions change.
    pub pos_gen: u64,
    breaker: BreakerMonitor,
    last_10028_ms: i64,
    zombie: bool,
    degraded: bool,
    health_bad: bool,
    last_eval_ms: i64,
    last_word: Option<(TradingMode, hotpath::mode::ReasonSet)>,
    last_codes: Option<hotpath::mode::OpenPermissionSet>,
    metrics: Option<Arc<MetricsRegistry>>,
    /// For `/status`.
    pub view: ReconView,
}

impl std::fmt::Debug for ReconState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconState").field("view", &self.view).finish_non_exhaustive()
    }
}

impl Default for ReconState {
    fn default() -> Self {
        Self {
            md: Arc::new(SharedMdHealth::default()),
            resubscribes_seen: 0,
            md_connects_seen: 0,
            triggers: Arc::new(Triggers::new()),
            schedule: Schedule::new(
                coldpath::reconcile::service::RECONCILE_INTERVAL_MS,
                coldpath::reconcile::service::RECONCILE_MIN_GAP_MS,
            ),
            worker: None,
            job: None,
            next_job_id: 1,
            next_job_ms: 0,
            backoff: Backoff::new(),
            session_up: false,
            pass_backoff: Backoff::new(),
            rng: JitterRng::new(u64::from(std::process::id())),
            suspects: BTreeSet::new(),
            processed: VecDeque::new(),
            processed_set: BTreeSet::new(),
            fills_seen: VecDeque::new(),
            fills_seen_set: BTreeSet::new(),
            pos_gen: 0,
            breaker: BreakerMonitor::new(),
            last_10028_ms: i64::MIN / 2,
            zombie: false,
            degraded: false,
            health_bad: false,
            last_eval_ms: 0,
            last_word: None,
            last_codes: None,
            metrics: None,
            view: ReconView::default(),
        }
    }
}

/// Remembers `id` in a bounded FIFO set; returns false when it was already there.
fn remember(q: &mut VecDeque<String>, set: &mut BTreeSet<String>, id: &str) -> bool {
    if id.is_empty() || set.contains(id) {
        return id.is_empty();
    }
    if q.len() == TRADE_IDS_MAX {
        if let Some(old) = q.pop_front() {
            set.remove(&old);
        }
    }
    q.push_back(id.to_owned());
    set.insert(id.to_owned());
    true
}

/// The reconciler's read-only key: `STOIC_RECONCILE_CREDENTIALS` (a key file), else the
/// simulator's dev read key (`config/sim_accounts.json`, dev only, like the run command's
/// default trade key).
fn reconcile_credentials() -> Result<Credentials, String> {
    if let Some(p) = std::env::var_os("STOIC_RECONCILE_CREDENTIALS") {
        return Credentials::from_file(std::path::Path::new(&p)).map_err(|e| e.to_string());
    }
    Ok(Credentials {
        client_id: "sim-dev-read".into(),
        client_secret: Secret::new("sim-dev-read-secret-0002".into()),
    })
}

/// `clock` is the transport clock: the read-only session's token refresh, request timeouts and
/// credits run in wall time even when trading time is simulated (`stoic paper`).
fn spawn_worker(url: String, clock: Arc<dyn Clock>) -> std::io::Result<Worker> {
    let (jtx, jrx) = std::sync::mpsc::channel::<Job>();
    let (dtx, drx) = std::sync::mpsc::channel::<Done>();
    std::thread::Builder::new().name("reconcile".into()).spawn(move || {
        let mut rec: Option<Reconciler> = None;
        // Ends when the engine drops its sender.
        while let Ok(job) = jrx.recv() {
            if rec.as_ref().is_none_or(Reconciler::is_closed) {
                let connected = reconcile_credentials().and_then(|creds| {
                    Reconciler::connect(ReconcilerConfig::new(&url), &creds, Arc::clone(&clock))
                        .map_err(|e| e.to_string())
                });
                match connected {
                    Ok(r) => rec = Some(r),
                    Err(e) => {
                        let _ = dtx.send(Done { id: job.id, result: Err(format!("connect: {e}")) });
                        continue;
                    }
                }
            }
            let Some(r) = rec.as_mut() else { continue };
            let result = r.run_once(&job.ledger, &job.local).map_err(|e| e.to_string());
            if result.is_err() {
                rec = None;
            }
            if dtx.send(Done { id: job.id, result }).is_err() {
                break;
            }
        }
    })?;
    Ok(Worker { tx: jtx, rx: drx })
}

/// Identity of a mismatch finding across passes (`None`: not a mismatch).
fn mismatch_key(f: &Finding) -> Option<String> {
    Some(match f {
        Finding::LateAck { intent_hash, .. } => format!("ack:{intent_hash:x}"),
        Finding::LateFill { intent_hash, .. } => format!("fill:{intent_hash:x}"),
        Finding::OrphanFill { trade_ids, .. } => format!("orphan:{}", trade_ids.join(",")),
        Finding::ZombieOrder { order_id, .. } => format!("zombie:{order_id}"),
        Finding::GhostIntent { intent_hash, .. } => format!("ghost:{intent_hash:x}"),
        Finding::PositionMismatch { instrument, .. } => format!("pos:{instrument}"),
        Finding::AmbiguousLabel { label, .. } => format!("ambiguous:{label}"),
        Finding::TradesIncomplete => "trades-incomplete".to_owned(),
        Finding::StaleOrder { .. } | Finding::ForeignOrder { .. } | Finding::Unresolved { .. } => {
            return None
        }
    })
}

/// The latch code a confirmed mismatch sets.
const fn latch_code_of(kind: FindingKind) -> Option<OpenPermissionReasonCode> {
    match kind {
        FindingKind::LateFill | FindingKind::OrphanFill | FindingKind::TradesIncomplete => {
            Some(OpenPermissionReasonCode::WsTradesGapReconcileRequired)
        }
        FindingKind::LateAck
        | FindingKind::ZombieOrder
        | FindingKind::GhostIntent
        | FindingKind::PositionMismatch
        | FindingKind::AmbiguousLabel => {
            Some(OpenPermissionReasonCode::InventoryMismatchReconcileRequired)
        }
        FindingKind::StaleOrder | FindingKind::ForeignOrder | FindingKind::Unresolved => None,
    }
}

impl ReconState {
    /// The health the feed thread publishes into.
    pub fn md_shared(&self) -> Arc<SharedMdHealth> {
        Arc::clone(&self.md)
    }
}

impl Engine {
    /// Attaches the metrics registry (`stoic_last_reconcile_age_seconds`).
    pub fn set_metrics(&mut self, m: Arc<MetricsRegistry>) {
        self.recon.metrics = Some(m);
    }

    /// Sets a latch code and remembers it for `/status`.
    pub(super) fn latch_set(&mut self, code: OpenPermissionReasonCode) {
        if self.guard.latch().set(code) {
            println!("latch: {} set (run_id={})", code.as_str(), self.run_id);
        }
        self.recon.view.latch_codes_seen.insert(code);
    }

    /// Fires a reconciliation trigger (non-blocking).
    pub(super) fn fire(&self, kind: TriggerKind) {
        self.recon.triggers.fire(kind);
    }

    /// A book change-id gap: opens latched until a clean reconciliation (AT-408).
    pub(super) fn on_book_gap(&mut self) {
        // AT-271 / §3.4: a gap is Degraded (`REDUCEONLY_RISKSTATE_DEGRADED`) until a clean
        // reconciliation pass, besides the latch.
        self.recon.degraded = true;
        self.latch_set(OpenPermissionReasonCode::WsBookGapReconcileRequired);
        self.fire(TriggerKind::BookGap);
    }

    /// Sees each execution report before it is applied; false = drop it (a repeated fill).
    pub(super) fn observe_report(&mut self, r: &ExecReport) -> bool {
        match r {
            ExecReport::Rejected { code, .. }
                if i64::from(*code) == VenueErrorCode::TooManyRequests.code() =>
            {
                self.note_10028(1);
            }
            ExecReport::Rejected { code, .. } if *code == VENUE_MAINTENANCE => {
                self.recon.md.set_maintenance();
            }
            ExecReport::Fill(f) => {
                let st = &mut self.recon;
                if !remember(&mut st.fills_seen, &mut st.fills_seen_set, &f.trade_id) {
                    st.view.duplicate_fills_ignored += 1;
                    return false;
                }
                st.view.fills_applied += 1;
                if self.wal.ledger().by_label(&f.label).is_none() {
                    self.fire(TriggerKind::OrphanFill);
                }
            }
            _ => {}
        }
        true
    }

    /// The cold-path duties of one loop turn (bounded, never waits on the venue): collect a
    /// finished pass, check market-data health, evaluate the mode, start a due pass.
    pub(super) fn service_health(&mut self) {
        let wall = wall_ms();
        if wall.saturating_sub(self.recon.last_eval_ms) < EVALUATE_EVERY_MS {
            return;
        }
        self.recon.last_eval_ms = wall;
        if !self.recon.session_up {
            self.recon.backoff.on_connected(wall);
            self.recon.session_up = true;
        }
        self.recon.backoff.on_healthy_tick(wall);
        self.poll_reconcile_result(wall);
        self.check_market_data(wall);
        self.evaluate_mode(self.clock.now_ms());
        self.maybe_start_pass(wall);
    }

    fn maybe_start_pass(&mut self, wall: i64) {
        if self.recon.job.is_some() || !self.has_trading_session() || wall < self.recon.next_job_ms
        {
            return;
        }
        if self.recon.worker.is_none() {
            match spawn_worker(self.opts_url.clone(), Arc::clone(&self.transport_clock)) {
                Ok(w) => self.recon.worker = Some(w),
                Err(e) => {
                    self.recon.view.last_error = Some(format!("spawn: {e}"));
                    return;
                }
            }
        }
        let Some(set) = self.recon.schedule.due(&self.recon.triggers, wall) else { return };
        for k in set.iter() {
            *self.recon.view.triggers.entry(trigger_name(k)).or_insert(0) += 1;
        }
        let live = &self.live;
        let mut ledger = LedgerSnapshot::from_ledger(
            self.wal.ledger(),
            |e| {
                live.get(&e.label).map(|l| IntentDetail {
                    instrument: l.instrument.as_str().to_owned(),
                    direction: if l.side == Side::Buy { Direction::Buy } else { Direction::Sell },
                    amount: l.qty,
                    reduce_only: false,
                })
            },
            |e| e.filled_qty,
        );
        ledger.processed_trade_ids.extend(self.recon.processed.iter().cloned());
        let seqs = self.wal.ledger().iter().map(|e| (e.intent_hash, e.updated_seq)).collect();
        let local = LocalPositions(
            self.positions.iter().map(|(n, q)| (n.as_str().to_owned(), q.raw())).collect(),
        );
        let id = self.recon.next_job_id;
        self.recon.next_job_id += 1;
        let ticket = self.guard.latch().begin_reconcile();
        let Some(w) = self.recon.worker.as_ref() else { return };
        if w.tx.send(Job { id, ledger, local }).is_err() {
            self.recon.worker = None;
            return;
        }
        self.recon.job = Some(JobMeta { id, ticket, pos_gen: self.recon.pos_gen, seqs });
    }

    fn poll_reconcile_result(&mut self, wall: i64) {
        let Some(w) = self.recon.worker.as_ref() else { return };
        let done = match w.rx.try_recv() {
            Ok(d) => d,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                self.recon.worker = None;
                self.recon.job = None;
                return;
            }
        };
        let Some(meta) = self.recon.job.take_if(|m| m.id == done.id) else { return };
        self.recon.view.runs += 1;
        match done.result {
            Err(e) => {
                tracing::warn!(run_id = %self.run_id, error = %e, "reconcile pass failed");
                self.recon.view.errors += 1;
                self.recon.view.last_error = Some(e);
                self.note_pass_result("error");
                let r = self.recon.rng.next_u64();
                let delay =
                    i64::try_from(self.recon.pass_backoff.next_delay_ms(r)).unwrap_or(30_000);
                self.recon.next_job_ms = wall.saturating_add(delay);
                self.fire(TriggerKind::Manual);
            }
            Ok(report) => {
                self.recon.pass_backoff = Backoff::new();
                self.apply_pass(&meta, &report, wall);
            }
        }
    }

    fn apply_pass(&mut self, meta: &JobMeta, report: &ReconcileReport, wall: i64) {
        let now = self.clock.now_ms();
        let v = &mut self.recon.view;
        v.last_ts_ms = report.fetched_ms;
        v.last_findings = report.summary().findings;
        if report.is_clean() {
            self.clean_pass(meta, report, now);
            return;
        }
        let mismatches: Vec<(String, &Finding)> =
            report.findings.iter().filter_map(|f| mismatch_key(f).map(|k| (k, f))).collect();
        let confirmed: Vec<&Finding> = mismatches
            .iter()
            .filter(|(k, _)| self.recon.suspects.contains(k))
            .map(|(_, f)| *f)
            .collect();
        // Positions moved, or an intent the pass would repair moved, while the venue was read:
        // the comparison is void (a fill adopted here could arrive again as a report).
        let intent_moved = report.actions.iter().any(|a| match a {
            RepairAction::Ledger(r) => {
                let h = r.intent_hash();
                self.wal.ledger().get(h).map(|e| e.updated_seq) != meta.seqs.get(&h).copied()
            }
            _ => false,
        });
        let raced = meta.pos_gen != self.recon.pos_gen || intent_moved;
        if raced {
            // Look again.
            self.recon.suspects.extend(mismatches.into_iter().map(|(k, _)| k));
            self.note_pass_result("raced");
            self.fire(TriggerKind::Manual);
            return;
        }
        self.recon.suspects = mismatches.iter().map(|(k, _)| k.clone()).collect();
        if confirmed.is_empty() {
            self.apply_stale_cancels(report);
            self.note_pass_result(if mismatches.is_empty() { "unresolved" } else { "suspect" });
            self.recon.next_job_ms = wall.saturating_add(CONFIRM_DELAY_MS);
            self.fire(TriggerKind::Manual);
            return;
        }
        self.recon.view.confirmed_mismatches += confirmed.len() as u64;
        let codes: BTreeSet<OpenPermissionReasonCode> =
            confirmed.iter().filter_map(|f| latch_code_of(f.kind())).collect();
        for f in &confirmed {
            tracing::warn!(run_id = %self.run_id, finding = ?f, "reconcile mismatch confirmed");
        }
        let kinds: Vec<&str> = confirmed.iter().map(|f| f.kind().as_str()).collect();
        println!("reconcile: mismatch confirmed {kinds:?} (run_id={})", self.run_id);
        for c in codes {
            self.latch_set(c);
        }
        for f in &confirmed {
            match f {
                Finding::LateFill { .. } => self.recon.view.late_fills_adopted += 1,
                Finding::OrphanFill { .. } => self.recon.view.orphan_fills_adopted += 1,
                _ => {}
            }
        }
        self.apply_actions(report, now);
        self.recon.suspects.clear();
        self.note_pass_result("repaired");
        self.fire(TriggerKind::Manual);
    }

    /// The pass's result, for `/status` and `/metrics` (`stoic_reconcile_passes_total`,
    /// `stoic_last_reconcile_result`).
    fn note_pass_result(&mut self, result: &'static str) {
        self.recon.view.last_result = result;
        if let Some(m) = &self.recon.metrics {
            m.record_reconcile_result(result);
        }
    }

    fn clean_pass(&mut self, meta: &JobMeta, report: &ReconcileReport, now: i64) {
        self.note_pass_result("clean");
        let v = &mut self.recon.view;
        v.clean_runs += 1;
        self.recon.suspects.clear();
        self.recon.degraded = false;
        if let Some(m) = &self.recon.metrics {
            coldpath::reconcile::service::note_clean_pass(m, report);
        }
        if meta.pos_gen != self.recon.pos_gen {
            self.fire(TriggerKind::Manual);
            return;
        }
        self.recon.breaker.on_reconciled();
        if self.guard.latch().is_latched() && !self.recon.zombie {
            match self.guard.latch().complete_reconcile(meta.ticket, &report.latch_report()) {
                Ok(c) => {
                    let names: Vec<&str> = c.resolved.iter().map(|c| c.as_str()).collect();
                    println!("reconcile: clean; latch cleared {names:?} (run_id={})", self.run_id);
                }
                Err(_) => self.fire(TriggerKind::Manual),
            }
        }
        // The run's automatic relax covers only the reasons this service raises and clears;
        // any other (operator emergency, group hold, capital stop, ...) waits for an operator.
        let ours = self.guard.cell().load().mode_reasons().iter().all(|r| AUTO_RELAX.contains(&r));
        if ours
            && !self.guard.latch().is_latched()
            && self.guard.cell().mode() != TradingMode::Active
        {
            self.evaluate_mode(now);
            if let Err(e) = self.startup_relax() {
                tracing::warn!(run_id = %self.run_id, error = %e, "relax after reconcile failed");
            }
            self.record_mode(now);
        }
    }

    fn apply_stale_cancels(&mut self, report: &ReconcileReport) {
        for c in report.cancels() {
            if c.reason == CancelReason::Stale {
                self.reclaim_dispatch();
                if let Some(d) = self.disp.as_mut() {
                    if d.cancel_by_label(&c.label, &c.instrument).is_ok() {
                        self.recon.view.stale_cancelled += 1;
                    }
                }
            }
        }
    }

    fn apply_actions(&mut self, report: &ReconcileReport, now: i64) {
        for a in &report.actions {
            match a {
                RepairAction::Ledger(r) => {
                    // `apply_pass` checked that no repaired intent moved since the snapshot.
                    if let Err(e) = self.apply_ledger_repair(r, now) {
                        tracing::error!(run_id = %self.run_id, error = %e, "ledger repair failed");
                        continue;
                    }
                }
                RepairAction::AdoptFill { instrument, delta, trade_ids } => {
                    if let Some(n) = name_of(instrument) {
                        let p = self.positions.entry(n).or_insert(Qty::from_raw(0));
                        *p = Qty::from_raw(p.raw().saturating_add(*delta));
                    }
                    let st = &mut self.recon;
                    for t in trade_ids {
                        remember(&mut st.processed, &mut st.processed_set, t);
                        remember(&mut st.fills_seen, &mut st.fills_seen_set, t);
                    }
                }
                RepairAction::AdoptPosition { instrument, size } => {
                    if let Some(n) = name_of(instrument) {
                        self.positions.insert(n, Qty::from_raw(*size));
                        self.recon.view.positions_adopted += 1;
                    }
                }
                RepairAction::Cancel(c) => {
                    let owned = self
                        .wal
                        .ledger()
                        .by_label(&c.label)
                        .is_some_and(|e| !e.state.is_terminal())
                        && matches!(c.reason, CancelReason::Zombie(_))
                        && self.live.get(&c.label).is_some();
                    if owned {
                        continue; // recorded after the snapshot: ours now
                    }
                    self.reclaim_dispatch();
                    if let Some(d) = self.disp.as_mut() {
                        match d.cancel_by_label(&c.label, &c.instrument) {
                            Ok(_) => {
                                if c.reason == CancelReason::Stale {
                                    self.recon.view.stale_cancelled += 1;
                                } else {
                                    self.recon.view.zombies_cancelled += 1;
                                    println!(
                                        "reconcile: zombie {} cancelled (run_id={})",
                                        c.label, self.run_id
                                    );
                                }
                            }
                            Err(e) => {
                                tracing::warn!(run_id = %self.run_id, error = %e, "zombie cancel not sent");
                            }
                        }
                    }
                }
                RepairAction::SetLatch(code) => self.latch_set(*code),
                RepairAction::RaiseMode(_) => self.recon.degraded = true,
            }
            self.recon.view.repairs_applied += 1;
        }
        self.recon.pos_gen += 1;
        let _ = self.wal.sync();
    }

    fn apply_ledger_repair(&mut self, r: &LedgerRepair, now: i64) -> Result<(), EngineError> {
        let label = self.wal.ledger().get(r.intent_hash()).map(|e| e.label.clone());
        match r {
            LedgerRepair::Acknowledged { intent_hash, venue_order_id } => {
                self.ack_if_needed(*intent_hash, venue_order_id, now)?;
            }
            LedgerRepair::PartiallyFilled { intent_hash, filled_amount, trade_id, .. } => {
                self.append_checked(
                    now,
                    &Record::PartiallyFilled {
                        intent_hash: *intent_hash,
                        filled_qty: *filled_amount,
                        trade_id,
                    },
                )?;
            }
            LedgerRepair::Filled { intent_hash, filled_amount, trade_id, .. } => {
                self.append_checked(
                    now,
                    &Record::Filled {
                        intent_hash: *intent_hash,
                        filled_qty: *filled_amount,
                        trade_id,
                    },
                )?;
            }
            LedgerRepair::Cancelled { intent_hash, filled_amount, .. } => {
                self.append_checked(
                    now,
                    &Record::Cancelled { intent_hash: *intent_hash, filled_qty: *filled_amount },
                )?;
            }
            LedgerRepair::Rejected { intent_hash } => {
                self.append_checked(
                    now,
                    &Record::Rejected {
                        intent_hash: *intent_hash,
                        code: 0,
                        reason: "reconcile: the venue reports it rejected",
                    },
                )?;
            }
            LedgerRepair::Abandoned { intent_hash } => {
                self.append_checked(
                    now,
                    &Record::Abandoned {
                        intent_hash: *intent_hash,
                        reason: "reconcile: the venue never saw it",
                    },
                )?;
                self.stats.abandoned += 1;
            }
        }
        if let Some(l) = label {
            if self.wal.ledger().get(r.intent_hash()).is_none_or(|e| e.state.is_terminal()) {
                self.live.remove(&l);
            }
        }
        Ok(())
    }
}

const fn trigger_name(k: TriggerKind) -> &'static str {
    match k {
        TriggerKind::Startup => "startup",
        TriggerKind::Periodic => "periodic",
        TriggerKind::BookGap => "book_gap",
        TriggerKind::TradesGap => "trades_gap",
        TriggerKind::PrivateGap => "private_gap",
        TriggerKind::HeartbeatLoss => "heartbeat_loss",
        TriggerKind::SessionTermination => "session_termination",
        TriggerKind::OrphanFill => "orphan_fill",
        TriggerKind::Manual => "manual",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remember_is_bounded_and_dedupes() {
        let mut q = VecDeque::new();
        let mut s = BTreeSet::new();
        assert!(remember(&mut q, &mut s, "t1"));
        assert!(!remember(&mut q, &mut s, "t1"));
        for i in 0..TRADE_IDS_MAX {
            remember(&mut q, &mut s, &format!("x{i}"));
        }
        assert_eq!(q.len(), TRADE_IDS_MAX);
        assert!(remember(&mut q, &mut s, "t1"), "evicted ids are forgotten");
    }

    #[test]
    fn confirmed_mismatch_kinds_map_to_registry_latch_codes() {
        assert_eq!(
            latch_code_of(FindingKind::LateFill),
            Some(OpenPermissionReasonCode::WsTradesGapReconcileRequired)
        );
        assert_eq!(
            latch_code_of(FindingKind::ZombieOrder),
            Some(OpenPermissionReasonCode::InventoryMismatchReconcileRequired)
        );
        assert_eq!(latch_code_of(FindingKind::StaleOrder), None);
        assert_eq!(mismatch_key(&Finding::TradesIncomplete).as_deref(), Some("trades-incomplete"));
    }
}
