//! The cold end of the trace ring: drains [`hotpath::trace`] records, writes one JSON line
//! per event (stamped with the process's `run_id`), emits the same fields as a `tracing`
//! event (target `stoic::trace`), and updates the [`MetricsRegistry`].
//!
//! Formatting, locking and I/O all happen here, on the sink's own thread, never on the engine
//! thread. The sink also exports the ring's depth and the producer's overflow count
//! (`stoic_ring_overflow_total{ring="evidence_log"}`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::trace::{TraceConsumer, TraceEvent, TraceKind};

use crate::metrics::{MetricsRegistry, RingId};

/// How long the sink thread sleeps when the ring is empty: the latency of log lines and
/// metrics. 50 ms keeps the sink's wake-ups (20/s) out of the way of the stage threads and
/// the embedded simulator on a 2-core host: with 5 ms the break-glass drill failed 5 of 10
/// runs here (its resting opens got no fill within 60 s), with 50 ms 0 of 13. The ring
/// (1024 records) absorbs 50 ms of any realistic event rate.
pub const SINK_POLL: Duration = Duration::from_millis(50);

/// Drains a trace ring into a log writer and the metrics registry.
pub struct TraceSink {
    consumer: TraceConsumer,
    metrics: Arc<MetricsRegistry>,
    log: Box<dyn Write + Send>,
    alarms: Option<Box<dyn Write + Send>>,
    overflow_seen: u64,
    mode_seen: bool,
    line: String,
}

impl std::fmt::Debug for TraceSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceSink").field("run_id", &self.metrics.run_id()).finish_non_exhaustive()
    }
}

impl TraceSink {
    /// A sink writing JSON lines to `log`; the run id is the registry's (so log lines and
    /// metric samples carry the identical, sanitised value).
    #[must_use]
    pub fn new(
        consumer: TraceConsumer,
        metrics: Arc<MetricsRegistry>,
        log: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            consumer,
            metrics,
            log,
            alarms: None,
            overflow_seen: 0,
            mode_seen: false,
            line: String::with_capacity(256),
        }
    }

    /// Also writes alarm events ([`TraceKind::is_alarm`]) to `out`, prefixed `trace: ` — the
    /// operator's console sees a WAL failure or an unjournaled reduce without a log pipeline.
    #[must_use]
    pub fn with_alarms(mut self, out: Box<dyn Write + Send>) -> Self {
        self.alarms = Some(out);
        self
    }

    /// Drains everything queued now; returns how many events were handled.
    pub fn drain(&mut self) -> usize {
        self.metrics.set_ring_depth(RingId::EvidenceLog, self.consumer.depth() as u64);
        let mut n = 0;
        while let Some(ev) = self.consumer.pop() {
            self.handle(&ev);
            n += 1;
        }
        let overflow = self.consumer.overflowed();
        if overflow > self.overflow_seen {
            self.metrics.add_ring_overflow(RingId::EvidenceLog, overflow - self.overflow_seen);
            self.overflow_seen = overflow;
        }
        if n > 0 {
            // A log line that sits in a buffer is not evidence yet.
            let _ = self.log.flush();
            if let Some(a) = self.alarms.as_mut() {
                let _ = a.flush();
            }
        }
        n
    }

    /// Runs the sink on its own thread until [`SinkHandle::stop`] or the producer is dropped;
    /// a final drain runs in both cases.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(mut self) -> std::io::Result<SinkHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let join = std::thread::Builder::new().name("trace-sink".into()).spawn(move || {
            // Runs until told to stop or the engine is gone (loop bounded by those two flags).
            while !flag.load(Ordering::Acquire) && !self.consumer.is_abandoned() {
                if self.drain() == 0 {
                    std::thread::sleep(SINK_POLL);
                }
            }
            self.drain();
        })?;
        Ok(SinkHandle { stop, join: Some(join) })
    }

    fn handle(&mut self, ev: &TraceEvent) {
        self.update_metrics(ev);
        self.format_line(ev);
        let _ = self.log.write_all(self.line.as_bytes());
        if ev.kind.is_alarm() {
            if let Some(a) = self.alarms.as_mut() {
                let _ = a.write_all(b"trace: ");
                let _ = a.write_all(self.line.as_bytes());
            }
        }
        self.emit_tracing(ev);
    }

    fn update_metrics(&mut self, ev: &TraceEvent) {
        let m = &self.metrics;
        match ev.kind {
            TraceKind::GateReject => {
                if let Some(code) = ev.reject {
                    m.record_reject(code);
                    m.record_recent_reject(
                        ev.intent_id,
                        code,
                        ev.gate.map_or("unknown", |g| g.as_str()),
                    );
                }
            }
            TraceKind::WalFailed => {
                let code = ev.reject.unwrap_or(RejectReasonCode::RecordedBeforeDispatchFailed);
                m.record_reject(code);
                m.record_recent_reject(ev.intent_id, code, "wal");
            }
            TraceKind::WalSync => m.wal_sync_latency.observe_ns(ev.value),
            TraceKind::Sent if ev.value > 0 => m.tick_to_send.observe_ns(ev.value),
            TraceKind::DuplicateDispatch => m.duplicate_dispatch_count.inc(),
            TraceKind::IllegalOrderAttempt => m.illegal_order_attempts.inc(),
            TraceKind::ModeChange => {
                if let Some(mode) = ev.mode {
                    if self.mode_seen {
                        let reasons: Vec<_> = ev.mode_reasons().collect();
                        m.record_mode_transition(mode, &reasons);
                    } else {
                        // The first record is the start state, not a transition.
                        m.set_trading_mode(mode);
                        self.mode_seen = true;
                    }
                }
            }
            TraceKind::LatchChange => {
                let codes: Vec<_> = ev.latch_codes().collect();
                m.set_latch(&codes);
            }
            TraceKind::Reconciled => m.last_reconcile_ts_ms.set(ev.ts_ms),
            _ => {}
        }
    }

    /// One JSON object per line. Every value is a registry name, a number or the sanitised
    /// run id, so no escaping is needed. Refusals carry AT-902's field names (`intent_id`,
    /// `gate_name`, `trading_mode`, `reason_codes`).
    fn format_line(&mut self, ev: &TraceEvent) {
        use std::fmt::Write as _;
        let l = &mut self.line;
        l.clear();
        let _ = write!(
            l,
            "{{\"run_id\":\"{}\",\"event\":\"{}\",\"ts_ms\":{}",
            self.metrics.run_id(),
            ev.kind.as_str(),
            ev.ts_ms
        );
        if ev.intent_id != 0 {
            let _ = write!(l, ",\"intent_id\":\"{:016x}\"", ev.intent_id);
        }
        if let Some(g) = ev.gate {
            let _ = write!(l, ",\"gate_name\":\"{}\"", g.as_str());
        }
        if let Some(m) = ev.mode {
            let _ = write!(l, ",\"trading_mode\":\"{}\"", m.as_str());
        }
        if let Some(c) = ev.reject {
            let _ = write!(l, ",\"reason_codes\":[\"{}\"]", c.as_str());
        }
        if ev.kind == TraceKind::ModeChange {
            let _ = write!(l, ",\"mode_reasons\":[");
            for (i, r) in ev.mode_reasons().enumerate() {
                let _ = write!(l, "{}\"{}\"", if i > 0 { "," } else { "" }, r.as_str());
            }
            l.push(']');
        }
        if ev.kind == TraceKind::LatchChange {
            let _ = write!(l, ",\"latch_codes\":[");
            for (i, c) in ev.latch_codes().enumerate() {
                let _ = write!(l, "{}\"{}\"", if i > 0 { "," } else { "" }, c.as_str());
            }
            l.push(']');
        }
        if let Some(e) = ev.error {
            let _ = write!(l, ",\"error\":\"{}\"", e.as_str());
        }
        if ev.venue_code != 0 {
            let _ = write!(l, ",\"venue_code\":{}", ev.venue_code);
        }
        if ev.value != 0 && !matches!(ev.kind, TraceKind::ModeChange | TraceKind::LatchChange) {
            let _ = write!(l, ",\"value\":{}", ev.value);
        }
        l.push_str("}\n");
    }

    fn emit_tracing(&self, ev: &TraceEvent) {
        let run_id = self.metrics.run_id();
        let event = ev.kind.as_str();
        let intent_id = IntentId(ev.intent_id);
        let code = ev.reject.map_or("", RejectReasonCode::as_str);
        let gate = ev.gate.map_or("", |g| g.as_str());
        let error = ev.error.map_or("", |e| e.as_str());
        let (venue_code, value) = (ev.venue_code, ev.value);
        if ev.kind.is_alarm() {
            tracing::error!(target: "stoic::trace", run_id, %intent_id, event, code, gate, error, venue_code, value);
        } else {
            tracing::info!(target: "stoic::trace", run_id, %intent_id, event, code, gate, error, venue_code, value);
        }
    }
}

/// Formats an intent hash as the 16 hex digits every log line and metric uses.
#[derive(Debug, Clone, Copy)]
struct IntentId(u64);

impl std::fmt::Display for IntentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The running sink thread.
#[derive(Debug)]
pub struct SinkHandle {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl SinkHandle {
    /// Stops the thread after a final drain and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::domain::reason_codes::{OpenPermissionReasonCode, TradingMode};
    use hotpath::gates::chain::{GateName, Rejection};
    use hotpath::trace::trace_ring;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_thread_drains_everything_before_it_stops() {
        let (mut p, c) = trace_ring(64);
        let m = Arc::new(MetricsRegistry::new("run-2"));
        let buf = Buf::default();
        let handle = TraceSink::new(c, Arc::clone(&m), Box::new(buf.clone())).spawn().unwrap();
        for i in 1..=50 {
            p.push(TraceEvent::new(TraceKind::DuplicateDispatch, i, i as i64));
        }
        drop(p); // the engine is gone: the sink drains the rest and ends on its own
        handle.stop();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 50);
        assert!(text.lines().all(|l| l.starts_with("{\"run_id\":\"run-2\"")));
        assert_eq!(m.duplicate_dispatch_count.get(), 50);
    }

    #[test]
    fn events_become_lines_and_metrics() {
        let (mut p, c) = trace_ring(4);
        let m = Arc::new(MetricsRegistry::new("run-1"));
        let buf = Buf::default();
        let mut sink = TraceSink::new(c, Arc::clone(&m), Box::new(buf.clone()));
        let r = Rejection {
            code: RejectReasonCode::NetEdgeTooLow,
            gate: GateName::EdgePolicy,
            class: None,
            edge_policy_version: None,
            config_error: None,
        };
        p.observe_mode(TradingMode::ReduceOnly, std::iter::empty(), 1);
        p.observe_mode(TradingMode::Active, std::iter::empty(), 2);
        p.push(TraceEvent::gate_reject(0x1f, &r, TradingMode::Active, 3));
        p.observe_latch(std::iter::once(OpenPermissionReasonCode::ALL[0]), 4);
        p.push(TraceEvent::new(TraceKind::Sent, 1, 5)); // dropped: the ring holds 4
        assert_eq!(sink.drain(), 4);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let reject = text.lines().nth(2).unwrap();
        assert_eq!(
            reject,
            "{\"run_id\":\"run-1\",\"event\":\"gate_reject\",\"ts_ms\":3,\"intent_id\":\"000000000000001f\",\"gate_name\":\"edge_policy\",\"trading_mode\":\"Active\",\"reason_codes\":[\"NetEdgeTooLow\"]}"
        );
        assert_eq!(m.rejects(RejectReasonCode::NetEdgeTooLow), 1);
        assert_eq!(m.mode_transitions_to_active.get(), 1, "the start state is no transition");
        assert_eq!(m.open_permission_latch.get(), 1);
        assert_eq!(m.ring_overflow(RingId::EvidenceLog), 1);
        assert_eq!(m.recent_rejects()[0].intent_id, 0x1f);
    }
}
