//! The engine behind coldpath's status server: a published snapshot (written by the engine
//! thread, read by the HTTP threads) and the control commands (reduce-only, kill, emergency
//! close from HTTP; relax from the host-local operator socket), delivered to the engine thread
//! over a channel and journaled there before the reply.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coldpath::server::{ControlCommand, ControlError, ControlSink, EmergencyRequest, StatusSource};
use coldpath::status::{PositionView, StatusSnapshot};
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

fn to_status(p: &Published) -> StatusSnapshot {
    let now = now_ms();
    let mut st = StatusSnapshot::startup(env!("STOIC_BUILD_ID"), "n/a", "PAPER", now);
    if let Some(s) = p.lock().ok().and_then(|g| g.clone()) {
        st.trading_mode = s.mode;
        st.risk_state = s.risk_state;
        st.mode_reasons = s.mode_reasons.clone();
        st.open_permission_blocked_latch = s.latched;
        st.open_permission_requires_reconcile = s.latched;
        st.open_permission_reason_codes = s.latch_codes.clone();
        st.loop_tick_last_ts_ms = s.at_ms;
        // A flat instrument is no position (the engine keeps its zero entry after a close).
        st.positions = s
            .positions
            .iter()
            .filter(|(_, q)| *q != 0)
            .map(|(n, q)| PositionView {
                instrument_name: n.clone(),
                size: *q as f64 / 1e8,
                average_price: 0.0,
                mark_price: None,
                unrealized_pnl_usd: None,
            })
            .collect();
        st.count_10028_5m = s.recon.count_10028_5m;
        st.ws_event_lag_ms = u64::try_from(s.recon.md_lag_ms).unwrap_or(0);
        st.mode_transitions = s
            .recon
            .transitions
            .iter()
            .map(|(ts_ms, from, to, reasons)| coldpath::status::ModeTransitionView {
                ts_ms: *ts_ms,
                from: *from,
                to: *to,
                reasons: reasons.clone(),
            })
            .collect();
        st.reconcile = Some(s.recon.to_json());
    }
    st.derive(now);
    st
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

/// `ControlSink` that hands the request to the engine thread and waits (bounded).
#[derive(Debug)]
pub struct EngineControl {
    /// To the engine thread.
    pub tx: Mutex<Sender<ControlMsg>>,
    /// The snapshot (returned after the change).
    pub published: Published,
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
        self.tx
            .lock()
            .map_err(|_| ControlError::Unavailable("control channel poisoned".into()))?
            .send(ControlMsg { cmd, req, reply: reply_tx })
            .map_err(|_| ControlError::Unavailable("engine stopped".into()))?;
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
    /// Requests.
    pub rx: Receiver<ControlMsg>,
    /// Where snapshots are published.
    pub published: Published,
}
