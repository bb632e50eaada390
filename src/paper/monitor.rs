//! The paper run's watcher thread: injects scheduled faults when simulated time reaches them,
//! samples the engine's published snapshot into a mode timeline and containment events, draws
//! progress, and ends the run (holds simulated time, lifts every fault, lets the engine settle,
//! then asks it to stop).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::domain::reason_codes::{RiskState, TradingMode};
use simulator::clock::SteppedTime;
use simulator::{Fault, Faults};

use super::clock::SIM_ORIGIN_MS;
use super::progress::{Progress, Reading};
use super::schedule::{FaultKind, ScheduledFault};
use crate::engine::status::Published;
use crate::engine::{EngineSnapshot, EngineStats};

/// Wall time between samples. At thousands of times real speed one sample spans simulated
/// minutes, so a mode change shorter than that can be missed by the timeline (the engine's
/// counters still show that it happened).
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Wall time the engine gets, with simulated time held and every fault lifted, to finish
/// reconnecting and reconciling before it is asked to stop.
const SETTLE: Duration = Duration::from_secs(2);

/// One change of the engine's published mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChange {
    /// Simulated ms since trading started.
    pub offset_ms: i64,
    /// Trading mode.
    pub mode: TradingMode,
    /// Risk state.
    pub risk_state: RiskState,
    /// Open-permission latch set.
    pub latched: bool,
    /// Sticky mode reasons and latch codes, as their names.
    pub reasons: Vec<String>,
}

/// Something the run injected or the engine did to contain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainmentEvent {
    /// Simulated ms since trading started.
    pub offset_ms: i64,
    /// `fault_start`, `fault_end`, `reconnect`, `resubscribe`, `venue_reject`, `gate_reject`.
    pub kind: &'static str,
    /// Why, in words (fault kind, or the engine's reason code).
    pub reason: String,
    /// The most recent fault started before it (it may have been lifted already).
    pub last_fault: Option<&'static str>,
    /// How many (counter delta since the previous sample).
    pub count: u64,
}

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct MonitorLog {
    /// Mode changes, first one = the state when trading started.
    pub timeline: Vec<ModeChange>,
    /// Faults and reactions, in order.
    pub events: Vec<ContainmentEvent>,
    /// Gate refusals by the latest reason seen while they were counted.
    pub gate_rejects_by_reason: BTreeMap<String, u64>,
    /// Faults injected.
    pub faults_injected: usize,
    /// Simulated ms since trading started when time was held.
    pub sim_elapsed_ms: i64,
}

/// Everything the watcher needs.
#[derive(Debug)]
pub struct Watch {
    /// Shared simulated time.
    pub time: SteppedTime,
    /// Venue fault handle.
    pub faults: Faults,
    /// Engine snapshot slot.
    pub published: Published,
    /// The schedule.
    pub schedule: Vec<ScheduledFault>,
    /// Simulated ms the run lasts.
    pub sim_total_ms: i64,
    /// Set to stop the engine.
    pub stop: Arc<AtomicBool>,
    /// Set by the engine side once `run_until` returned.
    pub engine_done: Arc<AtomicBool>,
}

struct Action {
    offset_ms: i64,
    kind: FaultKind,
    start: bool,
    fault: Fault,
}

fn events_of(s: &EngineStats) -> u64 {
    s.sent + s.acked + s.fills + s.cancelled + s.venue_rejects + s.gate_rejects
}

fn mode_of(s: &EngineSnapshot, offset_ms: i64) -> ModeChange {
    let mut reasons: Vec<String> = s.mode_reasons.iter().map(|r| format!("{r:?}")).collect();
    reasons.extend(s.latch_codes.iter().map(|c| format!("latch:{c:?}")));
    ModeChange { offset_ms, mode: s.mode, risk_state: s.risk_state, latched: s.latched, reasons }
}

impl Watch {
    /// Runs until the engine is done. Never blocks on the engine.
    #[must_use]
    pub fn run(self) -> MonitorLog {
        let mut actions: Vec<Action> = Vec::new();
        for f in &self.schedule {
            actions.push(Action {
                offset_ms: f.start_offset_ms,
                kind: f.kind,
                start: true,
                fault: f.start.clone(),
            });
            if let (Some(at), Some(end)) = (f.end_offset_ms, &f.end) {
                actions.push(Action {
                    offset_ms: at,
                    kind: f.kind,
                    start: false,
                    fault: end.clone(),
                });
            }
        }
        actions.sort_by_key(|a| a.offset_ms);
        let mut next = 0usize;
        let mut log = MonitorLog::default();
        let mut progress = Progress::for_stdout();
        let mut prev: Option<EngineSnapshot> = None;
        let mut last_fault_kind: Option<&'static str> = None;
        let mut ending: Option<Instant> = None;
        loop {
            let done = self.engine_done.load(Ordering::Acquire);
            let offset = (self.time.now_ms() - SIM_ORIGIN_MS).min(self.sim_total_ms);
            while ending.is_none() && next < actions.len() && actions[next].offset_ms <= offset {
                let a = &actions[next];
                self.faults.apply(&a.fault);
                if a.start {
                    last_fault_kind = Some(a.kind.as_str());
                }
                if a.start {
                    log.faults_injected += 1;
                }
                log.events.push(ContainmentEvent {
                    offset_ms: a.offset_ms,
                    kind: if a.start { "fault_start" } else { "fault_end" },
                    reason: a.kind.as_str().to_owned(),
                    last_fault: last_fault_kind,
                    count: 1,
                });
                next += 1;
            }
            let snap = self.published.lock().ok().and_then(|g| g.clone());
            if let Some(s) = &snap {
                self.observe(&mut log, prev.as_ref(), s, offset, last_fault_kind);
                progress.update(&Reading {
                    sim_elapsed_ms: offset,
                    sim_total_ms: self.sim_total_ms,
                    events: events_of(&s.stats),
                    faults: log.faults_injected,
                });
            }
            if snap.is_some() {
                prev = snap;
            }
            if done {
                break;
            }
            if ending.is_none() && offset >= self.sim_total_ms {
                // Hold time at exactly N days, lift every fault, let the engine settle.
                self.time.set_running(false);
                self.faults.apply(&Fault::Clear);
                log.sim_elapsed_ms = self.time.now_ms() - SIM_ORIGIN_MS;
                ending = Some(Instant::now());
            }
            if ending.is_some_and(|t| t.elapsed() >= SETTLE) {
                self.stop.store(true, Ordering::Release);
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        if ending.is_none() {
            log.sim_elapsed_ms = self.time.now_ms() - SIM_ORIGIN_MS;
        }
        let events = prev.as_ref().map_or(0, |s| events_of(&s.stats));
        progress.finish(&Reading {
            sim_elapsed_ms: log.sim_elapsed_ms,
            sim_total_ms: self.sim_total_ms,
            events,
            faults: log.faults_injected,
        });
        log
    }

    fn observe(
        &self,
        log: &mut MonitorLog,
        prev: Option<&EngineSnapshot>,
        s: &EngineSnapshot,
        offset: i64,
        last_fault: Option<&'static str>,
    ) {
        let m = mode_of(s, offset);
        let changed = log.timeline.last().is_none_or(|l| {
            (l.mode, l.risk_state, l.latched, &l.reasons)
                != (m.mode, m.risk_state, m.latched, &m.reasons)
        });
        if changed {
            log.timeline.push(m);
        }
        let Some(p) = prev else { return };
        let mut push = |kind: &'static str, reason: String, count: u64| {
            if count > 0 {
                log.events.push(ContainmentEvent {
                    offset_ms: offset,
                    kind,
                    reason,
                    last_fault,
                    count,
                });
            }
        };
        push(
            "reconnect",
            "session lost: reconnected and reconciled before trading again".into(),
            s.stats.reconnects.saturating_sub(p.stats.reconnects),
        );
        push(
            "resubscribe",
            "book change-id gap: resubscribed for a fresh snapshot".into(),
            s.stats.resubscribes.saturating_sub(p.stats.resubscribes),
        );
        push(
            "venue_reject",
            "the venue refused orders".into(),
            s.stats.venue_rejects.saturating_sub(p.stats.venue_rejects),
        );
        let gate = s.stats.gate_rejects.saturating_sub(p.stats.gate_rejects);
        if gate > 0 {
            let why = s.last_gate_reject.clone().unwrap_or_else(|| "unknown".into());
            *log.gate_rejects_by_reason.entry(why).or_insert(0) += gate;
        }
    }
}
