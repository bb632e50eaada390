//! The engine's side of traceability: state changes (mode, latch) turned into trace records,
//! and the small timing helpers the tick uses. Records go to `hotpath::trace`'s ring; the
//! cold sink (`coldpath::tracesink`) formats them and feeds `/metrics`. See
//! docs/traceability.md.

use std::time::Instant;

use hotpath::dispatch::{DispatcherError, Refusal};
use hotpath::domain::reason_codes::{ModeReasonCode, TradingMode};
use hotpath::trace::{SendErrorClass, TraceEvent, TraceKind};
use hotpath::wal::IntentState;

use super::Engine;

/// The engine's trace field: the ring's producer plus the start of the current tick (the
/// tick-to-send histogram's origin). Derefs to the producer.
#[derive(Debug)]
pub struct EngineTrace {
    producer: hotpath::trace::TraceProducer,
    tick_started: Option<Instant>,
}

impl EngineTrace {
    /// Wraps the producer end of the trace ring.
    #[must_use]
    pub const fn new(producer: hotpath::trace::TraceProducer) -> Self {
        Self { producer, tick_started: None }
    }

    /// The strategy tick starts now (single-threaded topologies).
    pub(super) fn mark_tick_start(&mut self) {
        self.tick_started = Some(Instant::now());
    }

    /// The tick's start, or now when the actions came from the strategy thread (pinned
    /// topology: the interval then starts when the trading stage takes the batch).
    pub(super) fn take_tick_start(&mut self) -> Instant {
        self.tick_started.take().unwrap_or_else(Instant::now)
    }
}

impl std::ops::Deref for EngineTrace {
    type Target = hotpath::trace::TraceProducer;
    fn deref(&self) -> &Self::Target {
        &self.producer
    }
}

impl std::ops::DerefMut for EngineTrace {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.producer
    }
}

impl Engine {
    /// Pushes a mode or latch record when either changed since the last call (two atomic
    /// loads and a compare when nothing changed; no allocation).
    pub(super) fn trace_state(&mut self) {
        let now = self.clock.now_ms();
        let word = self.guard.cell().load();
        let reasons = word.mode_reasons();
        self.trace.observe_mode(
            word.mode(),
            ModeReasonCode::ALL.into_iter().filter(move |c| reasons.contains(*c)),
            now,
        );
        self.trace.observe_latch(self.guard.latch().codes().iter(), now);
    }

    /// Traces a pipeline refusal (`mode`: what the gates saw). A duplicate of a journaled
    /// intent is a local no-op and leaves no record.
    pub(super) fn trace_refusal(&mut self, h: u64, why: &Refusal, mode: TradingMode, now: i64) {
        match why {
            Refusal::Gate(r) => self.trace.push(TraceEvent::gate_reject(h, r, mode, now)),
            Refusal::Duplicate => {}
            Refusal::WalFailed { code, .. } => {
                self.trace.push(TraceEvent::new(TraceKind::WalFailed, h, now).with_reject(*code));
            }
        }
    }

    /// Traces a write to the socket (call before journaling `Sent`). A second write of one
    /// intent shows as a ledger entry already past `Recorded`: `duplicate_dispatch_count`.
    pub(super) fn trace_sent(&mut self, h: u64, now: i64, tick_to_send_ns: u64) {
        if self.entry_state(h).is_some_and(|(st, ..)| st != IntentState::Recorded) {
            self.trace.push(TraceEvent::new(TraceKind::DuplicateDispatch, h, now));
        }
        self.trace.push(TraceEvent::new(TraceKind::Sent, h, now).with_value(tick_to_send_ns));
    }

    /// Traces a failed send; one the chokepoint refused as malformed also counts as an
    /// illegal order attempt.
    pub(super) fn trace_send_failed(
        &mut self,
        kind: TraceKind,
        h: u64,
        now: i64,
        e: &DispatcherError,
    ) {
        let ev = TraceEvent::send_failed(kind, h, now, e);
        self.trace.push(ev);
        if ev.error == Some(SendErrorClass::Illegal) {
            self.trace.push(TraceEvent { kind: TraceKind::IllegalOrderAttempt, ..ev });
        }
    }
}

/// Nanoseconds since `t` (saturating; a histogram sample).
pub(super) fn ns_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Creates the trace ring and starts its cold sink: JSON lines to `trace_log` (default
/// `trace.jsonl` beside the WAL directory, appended across restarts), alarm events echoed to
/// stdout, metrics into `metrics`. Returns the producer for [`super::EngineOptions::trace`].
///
/// # Errors
/// The log file cannot be opened or the thread cannot be spawned.
pub fn start_sink(
    trace_log: Option<&std::path::Path>,
    wal_dir: &std::path::Path,
    metrics: &std::sync::Arc<coldpath::metrics::MetricsRegistry>,
) -> std::io::Result<(hotpath::trace::TraceProducer, coldpath::tracesink::SinkHandle)> {
    let path = trace_log.map_or_else(
        || wal_dir.parent().unwrap_or(wal_dir).join("trace.jsonl"),
        std::path::Path::to_path_buf,
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    println!("trace: log={} run_id={}", path.display(), metrics.run_id());
    let (producer, consumer) = hotpath::trace::trace_ring(hotpath::trace::TRACE_RING_CAPACITY);
    let sink = coldpath::tracesink::TraceSink::new(
        consumer,
        std::sync::Arc::clone(metrics),
        Box::new(std::io::BufWriter::new(file)),
    )
    .with_alarms(Box::new(std::io::stdout()))
    .spawn()?;
    Ok((producer, sink))
}

/// Why a `--run-id` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunIdError {
    /// Empty.
    #[error("run id is empty")]
    Empty,
    /// Longer than [`RUN_ID_LEN_MAX`].
    #[error("run id is longer than {RUN_ID_LEN_MAX} characters")]
    TooLong,
    /// A character outside `[A-Za-z0-9-_.:]` (it would need escaping in labels and JSON).
    #[error("run id has a character outside [A-Za-z0-9-_.:]: {0:?}")]
    BadChar(char),
}

/// Longest accepted run id (the metrics registry keeps this many characters).
pub const RUN_ID_LEN_MAX: usize = 64;

/// Validates an operator-given run id, so log lines and metric labels carry it verbatim.
///
/// # Errors
/// [`RunIdError`].
pub fn parse_run_id(s: &str) -> Result<String, RunIdError> {
    if s.is_empty() {
        return Err(RunIdError::Empty);
    }
    if s.chars().count() > RUN_ID_LEN_MAX {
        return Err(RunIdError::TooLong);
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
        return Err(RunIdError::BadChar(c));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_that_would_need_escaping_are_refused() {
        assert_eq!(parse_run_id("at902-run.1:a_b").as_deref(), Ok("at902-run.1:a_b"));
        assert_eq!(parse_run_id(""), Err(RunIdError::Empty));
        assert_eq!(parse_run_id("a\"b"), Err(RunIdError::BadChar('"')));
        assert_eq!(parse_run_id(&"x".repeat(65)), Err(RunIdError::TooLong));
    }
}
