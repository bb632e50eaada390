//! The engine behind coldpath's status server: a published snapshot (written by the engine
//! thread, read by the HTTP threads) and the one control command, emergency reduce-only,
//! delivered to the engine thread over a channel and journaled there before the reply.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coldpath::server::{ControlError, ControlSink, EmergencyRequest, StatusSource};
use coldpath::status::{PositionView, StatusSnapshot};

use super::EngineSnapshot;

/// The latest engine snapshot, shared with the status server.
pub type Published = Arc<Mutex<Option<EngineSnapshot>>>;

/// An emergency reduce-only request on its way to the engine thread.
#[derive(Debug)]
pub struct ControlMsg {
    /// The authenticated request.
    pub req: EmergencyRequest,
    /// Where the engine answers (Ok once the mode is tightened and the action journaled).
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
        st.positions = s
            .positions
            .iter()
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

impl ControlSink for EngineControl {
    fn emergency_reduce_only(&self, req: EmergencyRequest) -> Result<StatusSnapshot, ControlError> {
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        self.tx
            .lock()
            .map_err(|_| ControlError::Unavailable("control channel poisoned".into()))?
            .send(ControlMsg { req, reply: reply_tx })
            .map_err(|_| ControlError::Unavailable("engine stopped".into()))?;
        match reply_rx.recv_timeout(Duration::from_secs(3)) {
            Ok(Ok(())) => Ok(to_status(&self.published)),
            Ok(Err(e)) => Err(ControlError::RecordFailed(e)),
            Err(_) => Err(ControlError::Unavailable("engine did not answer in time".into())),
        }
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
