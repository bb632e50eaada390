//! The engine behind coldpath's status server: a published snapshot (written by the engine
//! thread, read by the HTTP threads) and the control commands (reduce-only, kill, emergency
//! close from HTTP; relax from the host-local operator socket), delivered to the engine thread
//! over a channel and journaled there before the reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coldpath::server::{ControlCommand, ControlError, ControlSink, EmergencyRequest, StatusSource};
use coldpath::status::{
    DailyPnlView, ModeTransitionView, OpenOrderView, PositionView, ReconcileView, StatusSnapshot,
};
use hotpath::domain::reason_codes::TradingMode;

use super::EngineSnapshot;

/// The latest engine snapshot, shared with the status server.
pub type Published = Arc<Mutex<Option<EngineSnapshot>>>;

/// What the operator asks the engine to do.
#[derive(Clone, PartialEq, Eq)]
pub enum ControlCmd {
    /// Latch emergency ReduceOnly (ruling 8).
    ReduceOnly,
    /// Operator Kill (RiskState Kill, RS-005) and cancel of risk-increasing orders.
    Kill,
    /// The deterministic emergency close (contract B §3.1), see `engine::emergency`.
    EmergencyClose,
    /// Relax to `target`; the engine verifies `token` itself (`OperatorAuthenticated`).
    Relax {
        /// The mode asked for (below the published one).
        target: TradingMode,
        /// The bearer token the operator presented.
        token: String,
    },
}

impl std::fmt::Debug for ControlCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Relax { target, .. } => write!(f, "Relax({target:?}, token=<redacted>)"),
            other => f.write_str(other.name()),
        }
    }
}

impl ControlCmd {
    /// Stable name (logs; never carries the token).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::ReduceOnly => "reduce_only",
            Self::Kill => "kill",
            Self::EmergencyClose => "close",
            Self::Relax { .. } => "relax",
        }
    }

    /// How long the endpoint waits for the engine (an emergency close runs up to three IOC
    /// rounds plus a hedge; the others are one WAL sync).
    #[must_use]
    pub fn reply_timeout(&self) -> Duration {
        match self {
            Self::EmergencyClose => Duration::from_secs(30),
            _ => Duration::from_secs(3),
        }
    }
}

/// A control command on its way to the engine thread.
#[derive(Debug)]
pub struct ControlMsg {
    /// What to do.
    pub cmd: ControlCmd,
    /// The authenticated request (who, why, from where, when).
    pub req: EmergencyRequest,
    /// Where the engine answers (Ok once the change is made and journaled).
    pub reply: Sender<Result<(), String>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[allow(clippy::cast_precision_loss)] // display only: amounts and prices leave fixed point here
fn fx(raw: i64) -> f64 {
    raw as f64 / 1e8
}

/// The status payload from the engine's published snapshot: every schema field the engine
/// knows, plus positions (size, average price, mark, unrealised USD), open orders, the day's
/// PnL, the last mode transitions with their reasons, the last reconciliation and counters.
/// Fields the engine does not measure yet (disk, margin, WAL queue, venue latency) keep the
/// start-up defaults of `StatusSnapshot::startup`.
pub(crate) fn to_status(p: &Published) -> StatusSnapshot {
    let snapshot = p.lock().ok().and_then(|g| g.clone());
    to_status_at(snapshot.as_ref(), now_ms())
}

/// A snapshot older than this (wall clock) means the engine loop is not running: it publishes
/// every `PUBLISH_PERIOD` (50 ms) when healthy. Generous, because an operator's emergency
/// close holds the loop for its IOC rounds (seconds); longer than this is reported as such.
pub const LOOP_STALL_MS: i64 = 5_000;

/// [`to_status`] at wall time `now` (ms): `ok` is the engine's liveness verdict, false with a
/// sentence in `not_ok_reasons` when nothing was published yet, the loop stopped publishing,
/// or the policy did not load (every intent is refused then).
pub(crate) fn to_status_at(snapshot: Option<&EngineSnapshot>, now: i64) -> StatusSnapshot {
    let mut st = StatusSnapshot::startup(env!("STOIC_BUILD_ID"), "n/a", "PAPER", now);
    let mut not_ok = Vec::new();
    match snapshot {
        None => not_ok.push("the engine has not published a snapshot yet (starting up)".to_owned()),
        Some(s) => {
            fill_status(&mut st, s);
            st.count_10028_5m = s.recon.count_10028_5m;
            st.ws_event_lag_ms = u64::try_from(s.recon.md_lag_ms).unwrap_or(0);
            st.reconcile = Some(s.recon.to_json());
            let age = now.saturating_sub(s.published_wall_ms);
            if age > LOOP_STALL_MS {
                not_ok.push(format!(
                    "the engine loop has not published for {age} ms (limit {LOOP_STALL_MS} ms): stalled or blocked"
                ));
            }
            if let Some(e) = &s.policy_error {
                not_ok.push(format!("the policy did not load ({e}): every intent is refused"));
            }
        }
    }
    st.ok = not_ok.is_empty();
    st.not_ok_reasons = not_ok;
    st.derive(now);
    st
}

fn fill_status(st: &mut StatusSnapshot, s: &EngineSnapshot) {
    st.trading_mode = s.mode;
    st.risk_state = s.risk_state;
    st.mode_reasons = s.mode_reasons.clone();
    st.open_permission_blocked_latch = s.latched;
    st.open_permission_requires_reconcile = s.latched;
    st.open_permission_reason_codes = s.latch_codes.clone();
    st.loop_tick_last_ts_ms = s.at_ms;
    st.runtime_config_hash.clone_from(&s.config_hash);
    if let Some(env) = s.environment {
        st.environment = env.to_owned();
    }
    // A flat instrument is no position (the engine keeps its zero entry after a close).
    st.positions = s
        .positions
        .iter()
        .filter(|(_, q)| *q != 0)
        .map(|(n, q)| {
            let h =
                s.daily_pnl.holdings.iter().find(|h| h.instrument.as_str() == n && h.size == *q);
            PositionView {
                instrument_name: n.clone(),
                size: fx(*q),
                average_price: h.and_then(|h| h.avg_price).map_or(0.0, fx),
                mark_price: h.and_then(|h| h.mark).map(fx),
                unrealized_pnl_usd: h.and_then(|h| h.unrealised_usd).map(fx),
            }
        })
        .collect();
    st.open_orders = s
        .open_orders
        .iter()
        .map(|o| OpenOrderView {
            label: o.label.clone(),
            instrument_name: o.instrument.clone(),
            side: if o.buy { "buy" } else { "sell" }.to_owned(),
            price: fx(o.price),
            amount: fx(o.amount),
            filled_amount: fx(o.filled),
            reduce_only: o.reducing,
        })
        .collect();
    st.mode_transitions = s
        .mode_transitions
        .iter()
        .map(|t| ModeTransitionView {
            ts_ms: t.at_ms,
            from: t.from,
            to: t.to,
            reasons: t.reasons.clone(),
        })
        .collect();
    let d = &s.daily_pnl;
    st.daily_pnl = Some(DailyPnlView {
        day_start_utc: coldpath::status::format_rfc3339_ms(d.day_start_ms),
        realized_usd: d.realised_usd.to_f64_lossy(),
        fees_usd: d.fees_usd.to_f64_lossy(),
        unrealized_usd: d.unrealised_usd.to_f64_lossy(),
        total_usd: d.total_usd.to_f64_lossy(),
        max_daily_loss_usd: s.max_daily_loss_usd.map(hotpath::domain::units::Usd::to_f64_lossy),
        complete: d.complete,
    });
    let r = s.last_reconcile;
    st.last_reconcile = s.last_reconcile_ms.map(|at| ReconcileView {
        completed_utc: coldpath::status::format_rfc3339_ms(at),
        in_doubt: r.in_doubt,
        live: r.live,
        filled: r.filled,
        cancelled: r.cancelled,
        rejected: r.rejected,
        abandoned: r.abandoned,
    });
    let c = s.stats;
    st.counters = [
        ("intents", c.intents),
        ("sent", c.sent),
        ("acked", c.acked),
        ("fills", c.fills),
        ("filled", c.filled),
        ("cancelled", c.cancelled),
        ("venue_rejects", c.venue_rejects),
        ("gate_rejects", c.gate_rejects),
        ("wal_failures", c.wal_failures),
        ("unjournaled_sent", c.unjournaled_sent),
        ("abandoned", c.abandoned),
        ("in_doubt_resolved", c.in_doubt_resolved),
        ("reconnects", c.reconnects),
        ("resubscribes", c.resubscribes),
        ("live_orders", s.live_orders as u64),
        ("in_doubt", s.in_doubt as u64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    st.rejects_by_reason = s.rejects_by_code.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    st.last_gate_reject.clone_from(&s.last_gate_reject);
}

/// `StatusSource` over the published snapshot.
#[derive(Debug, Clone)]
pub struct EngineStatus {
    /// The snapshot.
    pub published: Published,
}

impl StatusSource for EngineStatus {
    fn status(&self) -> StatusSnapshot {
        to_status(&self.published)
    }
}

/// Commands that can wait for the engine thread at once. The engine drains them every
/// `PUBLISH_PERIOD`; an operator's request beyond this many is refused (`Unavailable`, 503),
/// never dropped silently.
pub const CONTROL_RING_CAPACITY: usize = 32;

/// The control path between the cold side (status server, operator socket: many threads,
/// serialized onto the one producer end by a mutex on the cold side) and the engine thread
/// (the consumer end: a lock-free pop, never blocking the hot loop), over one bounded `rtrb`
/// SPSC ring.
#[must_use]
pub fn control_channel(published: Published) -> (EngineControl, ControlPort) {
    let (tx, rx) = rtrb::RingBuffer::new(CONTROL_RING_CAPACITY);
    let refused_full = Arc::new(AtomicU64::new(0));
    (
        EngineControl {
            tx: Mutex::new(tx),
            published: published.clone(),
            refused_full: Arc::clone(&refused_full),
        },
        ControlPort { rx, published, refused_full },
    )
}

/// `ControlSink` that hands the request to the engine thread and waits (bounded).
#[derive(Debug)]
pub struct EngineControl {
    /// To the engine thread (the ring's one producer end, shared by the cold threads).
    pub tx: Mutex<rtrb::Producer<ControlMsg>>,
    /// The snapshot (returned after the change).
    pub published: Published,
    /// Commands refused because the ring was full (`/metrics` ring overflow `control`).
    pub refused_full: Arc<AtomicU64>,
}

impl EngineControl {
    /// Hands `cmd` to the engine thread and waits (bounded) for its answer.
    ///
    /// # Errors
    /// [`ControlError::Unavailable`] (engine gone or slow) or the engine's refusal.
    pub fn submit(
        &self,
        cmd: ControlCmd,
        req: EmergencyRequest,
    ) -> Result<StatusSnapshot, ControlError> {
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        let wait = cmd.reply_timeout();
        let is_close = cmd == ControlCmd::EmergencyClose;
        {
            let mut tx = self
                .tx
                .lock()
                .map_err(|_| ControlError::Unavailable("control channel poisoned".into()))?;
            if tx.is_abandoned() {
                return Err(ControlError::Unavailable("engine stopped".into()));
            }
            tx.push(ControlMsg { cmd, req, reply: reply_tx }).map_err(|_| {
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                ControlError::Unavailable(format!(
                    "control ring full ({CONTROL_RING_CAPACITY} commands waiting for the engine); retry"
                ))
            })?;
        }
        match reply_rx.recv_timeout(wait) {
            Ok(Ok(())) => Ok(to_status(&self.published)),
            Ok(Err(e)) if is_close => Err(ControlError::Failed(e)),
            Ok(Err(e)) => Err(ControlError::RecordFailed(e)),
            Err(_) => Err(ControlError::Unavailable("engine did not answer in time".into())),
        }
    }
}

impl ControlSink for EngineControl {
    fn emergency_reduce_only(&self, req: EmergencyRequest) -> Result<StatusSnapshot, ControlError> {
        self.submit(ControlCmd::ReduceOnly, req)
    }

    fn command(
        &self,
        cmd: ControlCommand,
        req: EmergencyRequest,
    ) -> Result<StatusSnapshot, ControlError> {
        let cmd = match cmd {
            ControlCommand::ReduceOnly => ControlCmd::ReduceOnly,
            ControlCommand::Kill => ControlCmd::Kill,
            ControlCommand::EmergencyClose => ControlCmd::EmergencyClose,
        };
        self.submit(cmd, req)
    }
}

/// The engine side of the control channel.
#[derive(Debug)]
pub struct ControlPort {
    /// Requests (the ring's consumer end).
    pub rx: rtrb::Consumer<ControlMsg>,
    /// Where snapshots are published.
    pub published: Published,
    /// Commands refused because the ring was full (counted by the producer side).
    pub refused_full: Arc<AtomicU64>,
}
