//! The dispatch stage on its own thread (`pinned`: feed / strategy / gate / dispatch, one
//! thread each). Under `compact` the gate thread sends itself (`tick.rs`).
//!
//! ```text
//!  gate thread ──(job ring: Take(session) · Place(batch + DurableSeq) · Cancel)──▶ dispatch thread ──▶ venue
//!       ▲                                                                              │
//!       └──(output ring: Placed(batch + outcomes) · CancelSent · Report · SessionFailed · Returned(session))
//! ```
//!
//! The trading session (the `Dispatcher`, the one client of the chokepoint) is lent to the
//! dispatch thread through `hotpath::ring::lend` for the hot stretch: there it writes the
//! gate's durable batches to the socket and turns replies and notifications into execution
//! reports, all on one output ring in the order they happened. The gate journals `Sent` /
//! `Abandoned` and applies the reports exactly as when it sends itself (same functions).
//! Cold work that needs the session (reconnect and reconciliation, the emergency close and
//! Kill containment, zombie cancels, instrument refresh, multi-leg groups, shutdown) first
//! reclaims it ([`super::Engine::reclaim_dispatch`]): the gate raises the return flag and
//! applies every output until the session comes back behind the last one, then runs the cold
//! code single-owner, unchanged. The next trading-session poll lends it out again.
//!
//! # Invariants kept
//! - Durable before send: a `Place` job carries the `DurableSeq` the gate's sync returned;
//!   `Dispatcher::send_staged` refuses any record it does not cover, on whichever thread.
//! - Intents are never dropped: the gate checks for a free batch buffer and a job slot
//!   *before* the WAL append; with none, the tick's places are refused `IntentRingFull` (a
//!   gate rejection: counted, traced, no reservation, no record). Cancels with no slot are
//!   sent after a reclaim instead (they only reduce risk).
//! - Outputs are never dropped: with the output ring full the dispatch thread stops reading
//!   its socket until the gate drains (backpressure onto the kernel buffer and the venue).
//!
//! # Rings
//! | ring | capacity | full ⇒ |
//! |---|---|---|
//! | jobs (gate → dispatch) | [`SEND_BATCHES`] + [`CANCEL_JOBS`] | places refused `IntentRingFull` before the WAL; cancels sent after a reclaim |
//! | outputs (dispatch → gate) | [`OUTPUT_RING_CAPACITY`] | dispatch stops polling its socket until drained |
//! | credit view (seqlock) | 1 value | latest wins (brownout admission reads the newest) |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use hotpath::clock::Clock;
use hotpath::dispatch::{Dispatcher, DispatcherError, ExecReport, SendOutcome, Staged};
use hotpath::domain::instrument::InstrumentName;
use hotpath::domain::label::Label;
use hotpath::ring::lend::{lend_ring, Borrower, Job, Lender};
use hotpath::ring::{
    ControlCommand, Snapshot, SnapshotReader, SnapshotWriter, Stage, StageRunner, StopFlag,
    WaitStrategy,
};
use hotpath::venue::credits::{BreakerState, PoolView};
use hotpath::wal::DurableSeq;

use super::market_data::ACTIONS_PER_TICK_MAX;

/// Place batches in flight (each a recycled buffer pair).
pub const SEND_BATCHES: usize = 4;
/// Cancel jobs that can be queued at once.
pub const CANCEL_JOBS: usize = 2 * ACTIONS_PER_TICK_MAX;
/// Outputs (send results, reports) that can wait for the gate.
pub const OUTPUT_RING_CAPACITY: usize = 4_096;
/// Longest a non-spinning dispatch thread blocks in one socket poll: a job waits at most
/// this long (tests; `pinned` spins and polls without blocking).
pub const DISPATCH_POLL_SLICE: Duration = Duration::from_micros(500);

/// One batch of durable intents to write, and (on the way back) what happened to each.
#[derive(Debug)]
pub struct SendBatch {
    /// The intents, in record order.
    pub staged: Vec<Staged>,
    /// One outcome per intent (filled by the dispatch thread).
    pub outcomes: Vec<SendOutcome>,
    /// The proof covering every record of `staged`.
    pub durable: Option<DurableSeq>,
    /// The tick's frozen clock.
    pub now_ms: i64,
    /// When the tick (or the gate's turn) started.
    pub tick_started: Instant,
    /// When the last intent of the batch was written.
    pub sent_at: Instant,
}

impl SendBatch {
    fn new() -> Self {
        Self {
            staged: Vec::with_capacity(ACTIONS_PER_TICK_MAX),
            outcomes: Vec::with_capacity(ACTIONS_PER_TICK_MAX),
            durable: None,
            now_ms: 0,
            tick_started: Instant::now(),
            sent_at: Instant::now(),
        }
    }
}

/// Work for the dispatch thread.
#[derive(Debug)]
pub enum DispatchJob {
    /// Write a durable batch.
    Place(SendBatch),
    /// Cancel one of our orders by label.
    Cancel {
        /// Its label.
        label: Label,
        /// Its instrument (the cancel is limited to its currency).
        instrument: InstrumentName,
        /// Its intent.
        intent_hash: u64,
        /// The gate's clock when it asked.
        now_ms: i64,
    },
}

/// What the dispatch thread reports, in the order it happened.
#[derive(Debug)]
pub enum DispatchOutput {
    /// A batch was written (outcomes filled, one per intent).
    Placed(SendBatch),
    /// A cancel was written (or refused).
    CancelSent {
        /// Its intent.
        intent_hash: u64,
        /// The gate's clock when it asked.
        now_ms: i64,
        /// The request id, or why not.
        result: Result<u64, DispatcherError>,
    },
    /// An execution report from the venue.
    Report(ExecReport),
    /// The session failed (the gate reclaims it and reconnects).
    SessionFailed(DispatcherError),
}

/// The session's credits and breaker as the dispatch thread last saw them, published for
/// the gate's brownout admission: `[available, capacity, cost, wait_ms, breaker, until_ms]`
/// with `breaker` 0 closed / 1 open / 2 half-open.
pub type CreditWords = [u64; 6];

fn credit_words(pool: PoolView, breaker: BreakerState) -> CreditWords {
    let (kind, until) = match breaker {
        BreakerState::Closed => (0, 0),
        BreakerState::Open { until_ms } => (1, until_ms),
        BreakerState::HalfOpen => (2, 0),
    };
    [
        pool.available,
        pool.capacity,
        pool.cost,
        pool.wait_ms,
        kind,
        u64::try_from(until).unwrap_or(0),
    ]
}

/// The published credit view back in the dispatcher's types.
#[must_use]
pub fn credit_view_of(w: CreditWords) -> (PoolView, BreakerState) {
    let pool = PoolView { available: w[0], capacity: w[1], cost: w[2], wait_ms: w[3] };
    let breaker = match w[4] {
        1 => BreakerState::Open { until_ms: i64::try_from(w[5]).unwrap_or(i64::MAX) },
        2 => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    };
    (pool, breaker)
}

type Session = Box<Dispatcher>;

/// Counters of the dispatch thread (atomics; progress lines and tests read them).
#[derive(Debug, Default)]
pub struct DispatchCounters {
    /// Place batches written by the dispatch thread.
    pub batches: AtomicU64,
    /// Cancels written by the dispatch thread.
    pub cancels: AtomicU64,
    /// Execution reports it turned replies and notifications into.
    pub reports: AtomicU64,
    /// Times it was lent the session.
    pub lends: AtomicU64,
    /// Times it gave the session back (the gate reclaimed it for cold work).
    pub returns: AtomicU64,
}

/// The gate thread's end of the dispatch stage.
#[derive(Debug)]
pub struct DispatchLink {
    lender: Lender<Session, DispatchJob, DispatchOutput>,
    spare: Vec<SendBatch>,
    credits: SnapshotReader<CreditWords>,
    /// The view the gate read itself at the last lend, and the publication version then:
    /// used until the dispatch thread publishes a newer one.
    lent_view: (u64, CreditWords),
    /// The dispatch thread's counters.
    pub counters: Arc<DispatchCounters>,
    thread: Thread,
    stop: StopFlag,
    join: Option<JoinHandle<()>>,
}

impl DispatchLink {
    /// (jobs waiting for the dispatch thread, outputs waiting for the gate): ring depths.
    #[must_use]
    pub fn queued(&self) -> (u64, u64) {
        (self.lender.jobs_queued() as u64, self.lender.outputs_queued() as u64)
    }

    /// Whether the session is with the dispatch thread.
    #[must_use]
    pub fn is_lent(&self) -> bool {
        self.lender.is_lent()
    }

    /// Lends the session and wakes the dispatch thread.
    ///
    /// # Errors
    /// The session, not lent (already lent, or no slot).
    pub fn lend(&mut self, mut session: Session, now_ms: i64) -> Result<(), Session> {
        let (pool, breaker) = session.credit_view(now_ms);
        self.lent_view = (self.credits.read_versioned().0, credit_words(pool, breaker));
        self.lender.lend(session)?;
        self.thread.unpark();
        Ok(())
    }

    /// A free batch buffer, when a place batch can be queued now (a buffer and a job slot).
    pub fn batch_buffer(&mut self) -> Option<SendBatch> {
        if !self.lender.is_lent() || self.lender.job_slots() == 0 {
            return None;
        }
        self.spare.pop()
    }

    /// Gives a batch buffer back unused.
    pub fn recycle(&mut self, mut b: SendBatch) {
        b.staged.clear();
        b.outcomes.clear();
        b.durable = None;
        self.spare.push(b);
    }

    /// Queues a job and wakes the dispatch thread.
    ///
    /// # Errors
    /// The job, when the session is not lent or the ring is full.
    pub fn push(&mut self, job: DispatchJob) -> Result<(), DispatchJob> {
        self.lender.push(job)?;
        self.thread.unpark();
        Ok(())
    }

    /// The next output, if one is ready.
    pub fn pop(&mut self) -> Option<DispatchOutput> {
        self.lender.pop()
    }

    /// Whether an output is waiting.
    #[must_use]
    pub fn has_output(&self) -> bool {
        self.lender.has_output()
    }

    /// Takes the session back; every output before it goes into `backlog`, in order.
    /// `None` when the dispatch thread is gone (it panicked): the session went with it and
    /// the gate reconnects.
    pub fn reclaim(&mut self, backlog: &mut Vec<DispatchOutput>) -> Option<Session> {
        let thread = self.thread.clone();
        let join = self.join.as_ref();
        self.lender.reclaim(
            |o| backlog.push(o),
            || {
                if join.is_none_or(JoinHandle::is_finished) {
                    return false;
                }
                thread.unpark();
                std::thread::yield_now();
                true
            },
        )
    }

    /// Whether the dispatch thread still runs.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.join.as_ref().is_some_and(|j| !j.is_finished())
    }

    /// The newest credit view the dispatch thread published.
    #[must_use]
    pub fn credit_view(&self) -> (PoolView, BreakerState) {
        let (version, words) = self.credits.read_versioned();
        credit_view_of(if version > self.lent_view.0 { words } else { self.lent_view.1 })
    }

    /// Stops the dispatch thread and waits for it (reclaim the session first: a session
    /// still lent is closed with the thread).
    pub fn stop(&mut self) {
        self.stop.stop();
        self.thread.unpark();
        if let Some(j) = self.join.take() {
            if j.join().is_err() {
                tracing::error!("dispatch thread panicked");
            }
        }
    }
}

impl Drop for DispatchLink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the dispatch thread runs.
#[derive(Debug, Clone)]
pub struct DispatchStageConfig {
    /// Idle behaviour (`Spin` pinned; tests park).
    pub wait: WaitStrategy,
    /// Core to pin to.
    pub core: Option<hotpath::ring::topology::CoreId>,
    /// The gate thread, woken when outputs are pushed (`None` when it spins).
    pub wake: Option<Thread>,
}

struct DispatchThread {
    worker: Borrower<Session, DispatchJob, DispatchOutput>,
    session: Option<Session>,
    /// Outputs the ring had no room for yet, oldest first (pushed before anything newer).
    pending: std::collections::VecDeque<DispatchOutput>,
    reports: Vec<ExecReport>,
    failed: bool,
    spin: bool,
    wake: Option<Thread>,
    credits: SnapshotWriter<CreditWords>,
    clock: Arc<dyn Clock>,
    counters: Arc<DispatchCounters>,
    /// Test hook (feature `failpoints`, `STOIC_DISPATCH_STALL_MS`): sleep this long before
    /// writing each place batch, so a test can fill the job ring.
    stall: Duration,
}

/// Place batches in circulation: [`SEND_BATCHES`], or fewer under the test hook (feature
/// `failpoints`, `STOIC_DISPATCH_SEND_BATCHES`), so a test can fill the ring with a strategy
/// that keeps only a few orders in flight.
fn send_batches() -> usize {
    #[cfg(feature = "failpoints")]
    {
        let n = std::env::var("STOIC_DISPATCH_SEND_BATCHES").ok().and_then(|v| v.parse().ok());
        if let Some(n) = n {
            return usize::clamp(n, 1, SEND_BATCHES);
        }
    }
    SEND_BATCHES
}

/// Reads the dispatch stall test hook (zero without the `failpoints` feature).
fn stall_for_test() -> Duration {
    #[cfg(feature = "failpoints")]
    {
        let ms = std::env::var("STOIC_DISPATCH_STALL_MS").ok().and_then(|v| v.parse().ok());
        if let Some(ms) = ms {
            println!("dispatch: test stall of {ms} ms before each place batch");
            return Duration::from_millis(ms);
        }
    }
    Duration::ZERO
}

impl DispatchThread {
    /// Sends `out` behind every output still pending; queues it when the ring is full.
    fn emit(&mut self, out: DispatchOutput) {
        if !self.pending.is_empty() {
            self.pending.push_back(out);
            return;
        }
        if let Err(o) = self.worker.push(out) {
            self.pending.push_back(o);
        }
    }

    /// Pushes pending outputs, oldest first, while the ring has room. Returns how many.
    fn flush(&mut self) -> usize {
        let mut n = 0;
        while let Some(o) = self.pending.pop_front() {
            if let Err(o) = self.worker.push(o) {
                self.pending.push_front(o);
                break;
            }
            n += 1;
        }
        n
    }

    fn run_job(&mut self, job: DispatchJob) -> DispatchOutput {
        let Some(d) = self.session.as_mut() else {
            unreachable!("jobs are pushed only while the session is lent, after its Take")
        };
        match job {
            DispatchJob::Place(mut b) => {
                if !self.stall.is_zero() {
                    std::thread::sleep(self.stall);
                }
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                match b.durable {
                    Some(durable) => d.send_staged(&b.staged, durable, &mut b.outcomes),
                    None => b.outcomes.clear(),
                }
                b.sent_at = Instant::now();
                DispatchOutput::Placed(b)
            }
            DispatchJob::Cancel { label, instrument, intent_hash, now_ms } => {
                self.counters.cancels.fetch_add(1, Ordering::Relaxed);
                DispatchOutput::CancelSent {
                    intent_hash,
                    now_ms,
                    result: d.cancel_by_label(label.as_str(), instrument.as_str()),
                }
            }
        }
    }

    /// Jobs (and a lent session) in order. Returns how many. (The job ring is bounded, so
    /// the outputs it can queue beyond a full output ring are too.)
    fn take_jobs(&mut self, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            let Some(job) = self.worker.next_job() else { break };
            n += 1;
            match job {
                Job::Take(s) => {
                    self.counters.lends.fetch_add(1, Ordering::Relaxed);
                    self.session = Some(s);
                    self.failed = false;
                }
                Job::Work(j) => {
                    let out = self.run_job(j);
                    self.emit(out);
                }
            }
        }
        n
    }

    fn poll_socket(&mut self) -> usize {
        let Some(d) = self.session.as_mut() else { return 0 };
        let wait = if self.spin { Duration::ZERO } else { DISPATCH_POLL_SLICE };
        let mut failure = match d.poll(wait, &mut self.reports) {
            Ok(_) => None,
            Err(DispatcherError::Conn(hotpath::venue::conn::ConnError::Io(e)))
                if e.kind() == std::io::ErrorKind::Interrupted =>
            {
                None
            }
            Err(e) => Some(e),
        };
        if failure.is_none() && d.is_closed() {
            failure = Some(DispatcherError::Conn(hotpath::venue::conn::ConnError::Closed));
        }
        let now = self.clock.now_ms();
        let (pool, breaker) = d.credit_view(now);
        self.credits.publish(credit_words(pool, breaker));
        let mut n = self.reports.len();
        self.counters.reports.fetch_add(n as u64, Ordering::Relaxed);
        // In order; what the ring cannot take now waits in `pending` (never dropped).
        let mut reports = std::mem::take(&mut self.reports);
        for r in reports.drain(..) {
            self.emit(DispatchOutput::Report(r));
        }
        self.reports = reports;
        if let Some(e) = failure {
            self.failed = true;
            self.emit(DispatchOutput::SessionFailed(e));
            n += 1;
        }
        n
    }
}

/// Room the output ring must have before a socket poll starts (a poll's reports usually fit;
/// any that do not wait in `pending`, and the socket is not read again until they are out).
const POLL_OUTPUT_ROOM: usize = 512;

impl Stage for DispatchThread {
    fn turn(&mut self, budget: usize) -> usize {
        let mut work = self.flush();
        work += self.take_jobs(budget);
        if self.session.is_some() && self.worker.return_requested() {
            // Jobs pushed before the request are in the ring now: carry them out first.
            work += self.take_jobs(usize::MAX);
            work += self.flush();
            if self.pending.is_empty() {
                if let Some(s) = self.session.take() {
                    match self.worker.give_back(s) {
                        Ok(()) => {
                            self.counters.returns.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(s) => self.session = Some(s), // no room: retried next turn
                    }
                }
            }
            self.wake_gate(work + 1);
            return (work + 1).min(budget);
        }
        if self.session.is_some()
            && !self.failed
            && self.pending.is_empty()
            && self.worker.output_slots() >= POLL_OUTPUT_ROOM
        {
            let polled = self.poll_socket();
            work += polled;
            if !self.spin {
                // The blocking socket poll was this turn's wait; do not park on top of it.
                work = work.max(1);
            }
        }
        self.wake_gate(work);
        work.min(budget)
    }

    fn on_command(&mut self, _command: ControlCommand) {}
}

impl DispatchThread {
    fn wake_gate(&self, work: usize) {
        if work > 0 {
            if let Some(t) = &self.wake {
                t.unpark();
            }
        }
    }
}

/// Starts the dispatch thread (it idles until a session is lent).
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn(cfg: DispatchStageConfig, clock: Arc<dyn Clock>) -> std::io::Result<DispatchLink> {
    let (lender, worker) = lend_ring(SEND_BATCHES + CANCEL_JOBS, OUTPUT_RING_CAPACITY);
    let (writer, credits) = Snapshot::new([0; 6]);
    let stop = StopFlag::new();
    let flag = stop.clone();
    let spin = matches!(cfg.wait, WaitStrategy::Spin);
    let counters = Arc::new(DispatchCounters::default());
    let mut stage = DispatchThread {
        worker,
        session: None,
        pending: std::collections::VecDeque::with_capacity(POLL_OUTPUT_ROOM),
        reports: Vec::with_capacity(POLL_OUTPUT_ROOM),
        failed: false,
        spin,
        wake: cfg.wake,
        credits: writer,
        clock,
        counters: Arc::clone(&counters),
        stall: stall_for_test(),
    };
    let core = cfg.core;
    let wait = cfg.wait;
    let join = std::thread::Builder::new().name("stoic-dispatch".into()).spawn(move || {
        if !hotpath::ring::pin_current_thread(core) {
            println!("topology: dispatch thread could not be pinned to {core:?}");
        }
        StageRunner::new(flag, None, wait).run(&mut stage);
        // Stopped with the session still here (the gate did not reclaim): close it, so the
        // venue's cancel-on-disconnect takes our resting orders down.
        if let Some(mut s) = stage.session.take() {
            s.close();
        }
    })?;
    let thread = join.thread().clone();
    Ok(DispatchLink {
        lender,
        spare: (0..send_batches()).map(|_| SendBatch::new()).collect(),
        credits,
        lent_view: (0, [0; 6]),
        counters,
        thread,
        stop,
        join: Some(join),
    })
}

impl super::Engine {
    /// Starts the dispatch thread (`EngineOptions::dispatch_thread`), once.
    pub(super) fn start_dispatch_stage(&mut self) -> Result<(), super::EngineError> {
        if !self.dispatch_thread || self.dispatch.is_some() {
            return Ok(());
        }
        let wake = (!matches!(self.dispatch_wait, WaitStrategy::Spin)).then(std::thread::current);
        let cfg = DispatchStageConfig { wait: self.dispatch_wait, core: self.cores[3], wake };
        let link = spawn(cfg, Arc::clone(&self.transport_clock))
            .map_err(|e| super::EngineError::Reconcile(format!("dispatch thread: {e}")))?;
        self.dispatch = Some(link);
        Ok(())
    }

    /// Whether the trading session is with the dispatch thread now.
    pub(super) fn dispatch_lent(&self) -> bool {
        self.dispatch.as_ref().is_some_and(DispatchLink::is_lent)
    }

    /// Whether a trading session exists (here or lent to the dispatch thread).
    pub(in crate::engine) fn has_trading_session(&self) -> bool {
        self.disp.is_some() || self.dispatch_lent()
    }

    /// Lends the session to the dispatch thread (the hot stretch starts), unless it is closed.
    pub(super) fn lend_dispatch(&mut self) {
        if self.dispatch.as_ref().is_some_and(|l| !l.is_lent() && !l.is_running()) {
            // It panicked: carry on with the gate thread sending, as under `compact`.
            tracing::error!(run_id = %self.run_id, "dispatch thread gone; the gate thread sends from now on");
            println!(
                "dispatch: thread gone; sending from the gate thread (run_id={})",
                self.run_id
            );
            self.dispatch = None;
        }
        let Some(link) = self.dispatch.as_mut() else { return };
        if link.is_lent() || self.disp.as_ref().is_none_or(|d| d.is_closed()) {
            return;
        }
        let Some(d) = self.disp.take() else { return };
        if let Err(d) = link.lend(d, self.transport_clock.now_ms()) {
            self.disp = Some(d);
        }
    }

    /// Takes the session back from the dispatch thread for cold work, applying every output
    /// it produced before (send results, reports) first. A no-op when it is not lent.
    pub(in crate::engine) fn reclaim_dispatch(&mut self) {
        let Some(link) = self.dispatch.as_mut() else { return };
        if !link.is_lent() {
            return;
        }
        let mut backlog = std::mem::take(&mut self.dispatch_backlog);
        match link.reclaim(&mut backlog) {
            Some(s) => self.disp = Some(s),
            None => {
                // The session died with the thread: report it as a session failure (the run
                // loop reconnects and resolves in-doubt intents).
                self.dispatch_failure =
                    Some(DispatcherError::Conn(hotpath::venue::conn::ConnError::Closed));
            }
        }
        for o in backlog.drain(..) {
            self.on_dispatch_output(o);
        }
        self.drain_reports();
        self.dispatch_backlog = backlog;
    }

    /// The hot-stretch form of `poll_exec` (the session is lent): wait (up to `wait`, woken
    /// by the dispatch thread) for outputs, and apply them in order.
    pub(super) fn poll_dispatch_stage(&mut self, wait: Duration) -> Result<(), super::EngineError> {
        if !wait.is_zero() && !self.dispatch.as_ref().is_some_and(DispatchLink::has_output) {
            std::thread::park_timeout(wait);
        }
        let mut n = 0;
        while n < OUTPUT_RING_CAPACITY {
            let Some(o) = self.dispatch.as_mut().and_then(DispatchLink::pop) else { break };
            self.on_dispatch_output(o);
            n += 1;
        }
        self.drain_reports();
        match self.dispatch_failure.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn on_dispatch_output(&mut self, o: DispatchOutput) {
        match o {
            DispatchOutput::Report(r) => self.reports.push(r),
            DispatchOutput::Placed(mut b) => {
                // Reports read before this batch was written come first.
                self.drain_reports();
                let ns = u64::try_from(b.sent_at.duration_since(b.tick_started).as_nanos())
                    .unwrap_or(u64::MAX);
                if let Err(e) = self.on_sends(&b.staged, &mut b.outcomes, b.now_ms, ns) {
                    tracing::error!(run_id = %self.run_id, error = %e, "WAL failure journaling sends; reduce-only");
                    self.pipeline.risk_state = hotpath::domain::reason_codes::RiskState::Degraded;
                }
                if let Some(link) = self.dispatch.as_mut() {
                    link.recycle(b);
                }
            }
            DispatchOutput::CancelSent { intent_hash, now_ms, result } => {
                self.on_cancel_sent(intent_hash, now_ms, result.map(|_| ()));
            }
            DispatchOutput::SessionFailed(e) => self.dispatch_failure = Some(e),
        }
    }

    /// Queues a place batch on the dispatch thread: `staged` is swapped into the batch
    /// buffer. Hands the buffer back (with `staged` swapped back) when the ring refused it.
    pub(super) fn queue_batch(
        &mut self,
        mut batch: SendBatch,
        staged: &mut Vec<Staged>,
        durable: DurableSeq,
        now_ms: i64,
        tick_started: Instant,
    ) -> Result<(), SendBatch> {
        std::mem::swap(&mut batch.staged, staged);
        batch.durable = Some(durable);
        batch.now_ms = now_ms;
        batch.tick_started = tick_started;
        let Some(link) = self.dispatch.as_mut() else { return Err(batch) };
        match link.push(DispatchJob::Place(batch)) {
            Ok(()) => Ok(()),
            Err(DispatchJob::Place(mut b)) => {
                std::mem::swap(&mut b.staged, staged);
                Err(b)
            }
            Err(DispatchJob::Cancel { .. }) => unreachable!("pushed a Place"),
        }
    }

    /// Queues a cancel on the dispatch thread; `false` when it must be sent directly.
    pub(super) fn queue_cancel(
        &mut self,
        label: Label,
        instrument: InstrumentName,
        intent_hash: u64,
        now_ms: i64,
    ) -> bool {
        let Some(link) = self.dispatch.as_mut().filter(|l| l.is_lent()) else { return false };
        link.push(DispatchJob::Cancel { label, instrument, intent_hash, now_ms }).is_ok()
    }

    /// The session's credits and breaker for brownout admission: the dispatch thread's
    /// newest publication while it holds the session.
    pub(in crate::engine) fn credit_view(
        &mut self,
        now_ms: i64,
    ) -> Option<(PoolView, BreakerState)> {
        if let Some(link) = self.dispatch.as_ref().filter(|l| l.is_lent()) {
            return Some(link.credit_view());
        }
        self.disp.as_mut().map(|d| d.credit_view(now_ms))
    }

    /// A free place-batch buffer when the session is lent; `Err(())` when it is lent but
    /// every buffer or job slot is taken (the ring is full).
    pub(super) fn reserve_batch(&mut self) -> Result<Option<SendBatch>, ()> {
        match self.dispatch.as_mut().filter(|l| l.is_lent()) {
            None => Ok(None),
            Some(link) => link.batch_buffer().map(Some).ok_or(()),
        }
    }

    /// Gives an unused batch buffer back.
    pub(super) fn recycle_batch(&mut self, b: SendBatch) {
        if let Some(link) = self.dispatch.as_mut() {
            link.recycle(b);
        }
    }

    /// Stops the dispatch thread (after reclaiming the session).
    pub(super) fn stop_dispatch_stage(&mut self) {
        self.reclaim_dispatch();
        if let Some(link) = self.dispatch.as_mut() {
            link.stop();
            // The counters outlive the thread (the last progress line and tests read them).
            self.stats = self.stats_now();
            self.dispatch = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_view_round_trips_through_the_published_words() {
        let pool = PoolView { available: 17, capacity: 50, cost: 1, wait_ms: 0 };
        for breaker in [
            BreakerState::Closed,
            BreakerState::Open { until_ms: 1_700_000 },
            BreakerState::HalfOpen,
        ] {
            assert_eq!(credit_view_of(credit_words(pool, breaker)), (pool, breaker));
        }
    }
}
