//! The paper run's watcher thread: injects scheduled faults when simulated time reaches them
//! (holding a fault until the engine met it where the schedule says so), follows the engine's
//! own mode-transition history into a timeline, records per fault what the engine did to
//! contain it (counter changes and the registry reason codes it published), performs the
//! unattended drill's operator relax of a rate-limit Kill, draws progress, and ends the run
//! (holds simulated time, lifts every fault, lets the engine settle, asks it to stop).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotpath::domain::reason_codes::{ModeReasonCode, OpenPermissionReasonCode, TradingMode};
use simulator::clock::SteppedTime;
use simulator::{Fault, Faults};

use super::clock::SIM_ORIGIN_MS;
use super::progress::{Progress, Reading};
use super::schedule::{Ending, FaultKind, ScheduledFault, RATE_LIMIT_STORM_S_MAX};
use crate::engine::risk_watch::{ModeTransition, TRANSITIONS_MAX};
use crate::engine::status::{ControlCmd, EngineControl, Published};
use crate::engine::{EngineSnapshot, EngineStats};

/// Wall time between samples of the published snapshot.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// Wall time the engine gets, with simulated time held and every fault lifted, to finish
/// reconnecting and reconciling before it is asked to stop.
const SETTLE: Duration = Duration::from_secs(2);
/// Longest wall time market data stays muted waiting for the zombie rule (15 s wall silence,
/// `ws_zombie_silence_ms`) to trip.
const STALE_WAIT_MAX: Duration = Duration::from_secs(30);
/// A Kill held by the rate-limit reason this long (wall) is relaxed by the harness's operator.
const RELAX_AFTER: Duration = Duration::from_millis(1_500);
/// Wall time between operator relax attempts (refused while the breaker is open or the
/// reconnect's reconciliation is pending).
const RELAX_RETRY: Duration = Duration::from_millis(500);
/// Market data counts as flowing while its last event is at most this old (wall ms; the
/// simulator ticks every `tick_ms`). A storm can close the market-data session too, and its
/// reconnect backs off on its own: a fault started before it is back (a book gap above all)
/// would meet no market.
const MD_FRESH_LAG_MS: i64 = 2_000;
/// ... and the engine's market-event count moved this recently (wall): books are updating.
const MD_MOVING_WITHIN: Duration = Duration::from_millis(1_000);
/// Who the harness's operator actions name.
pub const HARNESS_OPERATOR: &str = "paper-harness";

/// What happened to one scheduled fault.
#[derive(Debug, Clone, Default)]
pub struct FaultRecord {
    /// Index in the schedule.
    pub index: usize,
    /// Simulated ms since trading started when it was injected (`None`: never).
    pub injected_ms: Option<i64>,
    /// When it was lifted (faults that are lifted).
    pub lifted_ms: Option<i64>,
    /// The engine met it (storm: a 10028 counted; mute: the zombie rule tripped). `None` for
    /// faults the harness does not wait on.
    pub met: Option<bool>,
    /// The target instrument was listed and unexpired at injection (`None`: no target).
    pub target_live: Option<bool>,
    /// Book gaps re-armed on another traded instrument because the first book stayed quiet.
    pub rearms: u32,
    /// Counter changes from injection to the next fault (or the end).
    pub deltas: BTreeMap<&'static str, u64>,
    /// Mode reasons the engine published in the window (registry codes).
    pub mode_reasons: BTreeSet<&'static str>,
    /// Open-permission latch codes seen in the window (registry codes).
    pub latch_codes: BTreeSet<&'static str>,
    /// Modes the engine was in during the window.
    pub modes: BTreeSet<&'static str>,
    /// Counters at injection.
    pub(super) base: Option<Counters>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    reconnects: u64,
    resubscribes: u64,
    venue_rejects: u64,
    duplicate_fills_ignored: u64,
    fills: u64,
    count_10028: u64,
    storm_hits: u64,
    session_latched: bool,
}

impl Counters {
    fn of(s: &EngineSnapshot) -> Self {
        Self {
            reconnects: s.stats.reconnects,
            resubscribes: s.stats.resubscribes,
            venue_rejects: s.stats.venue_rejects,
            duplicate_fills_ignored: s.recon.duplicate_fills_ignored,
            fills: s.stats.fills,
            count_10028: s.recon.count_10028_5m,
            storm_hits: 0,
            session_latched: session_latched(s),
        }
    }
}

/// An operator action the harness took (the run is an unattended drill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAction {
    /// Simulated ms since trading started.
    pub offset_ms: i64,
    /// `relax`.
    pub action: &'static str,
    /// The mode asked for.
    pub target: &'static str,
    /// Mode reasons held when it was asked (registry codes).
    pub reasons_before: Vec<&'static str>,
    /// Refused attempts before this one.
    pub refused_before: u32,
    /// `ok` or the refusal.
    pub result: String,
}

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct MonitorLog {
    /// The engine's mode transitions (its own history, merged), oldest first, engine clock.
    pub transitions: Vec<ModeTransition>,
    /// Times the engine's bounded history moved on by more than a sample could see.
    pub transitions_lost: u64,
    /// One record per scheduled fault.
    pub faults: Vec<FaultRecord>,
    /// Operator actions by the harness.
    pub operator_actions: Vec<OperatorAction>,
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
    /// The engine's control path (operator relax).
    pub control: EngineControl,
    /// The engine's operator token.
    pub operator_token: String,
    /// The schedule.
    pub schedule: Vec<ScheduledFault>,
    /// Expiry (venue ms) of every instrument the engine trades.
    pub expiries: BTreeMap<String, i64>,
    /// Simulated ms the run lasts.
    pub sim_total_ms: i64,
    /// Set to stop the engine.
    pub stop: Arc<AtomicBool>,
    /// Set by the engine side once `run_until` returned.
    pub engine_done: Arc<AtomicBool>,
}

struct Action {
    offset_ms: i64,
    index: usize,
    start: bool,
    faults: Vec<Fault>,
}

/// A fault held until the engine met it.
struct Waiting {
    index: usize,
    kind: FaultKind,
    lift: Fault,
    since: Instant,
    base: Counters,
}

fn events_of(s: &EngineStats) -> u64 {
    s.sent + s.acked + s.fills + s.cancelled + s.venue_rejects + s.gate_rejects
}

/// Appends the part of `recent` (the engine's bounded history) not yet in `all`: the longest
/// tail of `all` that is a head of `recent` is the overlap. Returns whether the two did not
/// overlap although both are non-empty and `recent` is full (changes may have been lost).
fn merge_transitions(all: &mut Vec<ModeTransition>, recent: &[ModeTransition]) -> bool {
    let max = all.len().min(recent.len());
    let overlap =
        (0..=max).rev().find(|&k| all[all.len() - k..] == recent[..k]).unwrap_or_default();
    let lost = overlap == 0 && !all.is_empty() && recent.len() >= TRANSITIONS_MAX;
    all.extend_from_slice(&recent[overlap..]);
    lost
}

fn is_kill_reason(r: ModeReasonCode) -> bool {
    r.as_str().starts_with("KILL_")
}

struct Relaxer {
    kill_since: Option<Instant>,
    last_try: Option<Instant>,
    refused: u32,
    first_refusal: Option<String>,
    last_refusal: Option<String>,
    reasons: Vec<&'static str>,
}

impl Watch {
    fn actions(&self) -> Vec<Action> {
        let mut actions: Vec<Action> = Vec::new();
        for (index, f) in self.schedule.iter().enumerate() {
            actions.push(Action {
                offset_ms: f.start_offset_ms,
                index,
                start: true,
                faults: f.start.clone(),
            });
            if let Ending::At { offset_ms, fault } = &f.ending {
                actions.push(Action {
                    offset_ms: *offset_ms,
                    index,
                    start: false,
                    faults: vec![fault.clone()],
                });
            }
        }
        actions.sort_by_key(|a| (a.offset_ms, a.index));
        actions
    }

    fn offset(&self) -> i64 {
        (self.time.now_ms() - SIM_ORIGIN_MS).min(self.sim_total_ms)
    }

    /// Runs until the engine is done. Never blocks on the engine (an operator relax waits
    /// for the engine's bounded reply).
    #[must_use]
    pub fn run(self) -> MonitorLog {
        let mut actions = self.actions();
        // When the engine's market events last moved (wall), and their count then.
        let mut md_moved: (u64, Option<Instant>) = (0, None);
        let mut next = 0usize;
        let mut log = MonitorLog {
            faults: (0..self.schedule.len())
                .map(|index| FaultRecord { index, ..FaultRecord::default() })
                .collect(),
            ..MonitorLog::default()
        };
        let mut progress = Progress::for_stdout();
        let mut last: Option<EngineSnapshot> = None;
        let mut current: Option<usize> = None;
        let mut waiting: Option<Waiting> = None;
        let mut relax = Relaxer {
            kill_since: None,
            last_try: None,
            refused: 0,
            first_refusal: None,
            last_refusal: None,
            reasons: Vec::new(),
        };
        let mut ending: Option<Instant> = None;
        loop {
            let done = self.engine_done.load(Ordering::Acquire);
            let snap = self.published.lock().ok().and_then(|g| g.clone());
            if let Some(s) = &snap {
                if merge_transitions(&mut log.transitions, &s.mode_transitions) {
                    log.transitions_lost += 1;
                }
                if let Some(i) = current {
                    observe_window(&mut log.faults[i], s);
                    self.rearm_book_gap(&mut log.faults[i], s);
                }
            }
            if let (Some(w), Some(s)) = (&waiting, &snap) {
                // Met: the engine counted a 10028 on its trading session (a storm answer to
                // the market-data session alone does not reach the breaker), or its zombie rule
                // tripped on the silence.
                let met = match w.kind {
                    FaultKind::StaleData => s.recon.md_stale,
                    // The session the storm closed is latched (published before the blocking
                    // reconnect) even when the engine saw the close before the 10028 reply.
                    _ => {
                        s.recon.count_10028_5m > w.base.count_10028
                            || s.stats.reconnects > w.base.reconnects
                            || (!w.base.session_latched && session_latched(s))
                    }
                };
                let bound = match w.kind {
                    FaultKind::StaleData => STALE_WAIT_MAX,
                    _ => Duration::from_secs_f64(RATE_LIMIT_STORM_S_MAX),
                };
                if met || w.since.elapsed() >= bound {
                    self.faults.apply(&w.lift);
                    if w.kind == FaultKind::StaleData {
                        self.time.set_running(true);
                    }
                    let r = &mut log.faults[w.index];
                    r.met = Some(met);
                    r.lifted_ms = Some(self.offset());
                    waiting = None;
                }
            }
            if let Some(s) = &snap {
                if s.stats.market_events != md_moved.0 {
                    md_moved = (s.stats.market_events, Some(Instant::now()));
                }
            }
            let books_moving = md_moved.1.is_some_and(|t| t.elapsed() <= MD_MOVING_WITHIN);
            let offset = self.offset();
            while ending.is_none()
                && waiting.is_none()
                && next < actions.len()
                && actions[next].offset_ms <= offset
            {
                let a = &actions[next];
                // A fault meets a trading engine: its start waits (at most until the next
                // scheduled action is due) while the engine is out of Active or its market
                // data is not flowing.
                let trading = books_moving
                    && snap.as_ref().is_some_and(|s| {
                        s.mode == TradingMode::Active && s.recon.md_lag_ms <= MD_FRESH_LAG_MS
                    });
                let deadline = actions.get(next + 1).map_or(self.sim_total_ms, |n| n.offset_ms);
                if a.start && !trading && offset < deadline {
                    break;
                }
                next += 1;
                let f = &self.schedule[a.index];
                if !a.start {
                    a.faults.iter().for_each(|f| self.faults.apply(f));
                    log.faults[a.index].lifted_ms = Some(offset);
                    continue;
                }
                if let (Some(prev), Some(s)) = (current, &snap) {
                    close_window(&mut log.faults[prev], s, self.faults.storm_hits());
                }
                // Whatever the previous fault left armed (a one-shot the engine never met) goes
                // with its window: each fault is judged on its own.
                self.faults.apply(&Fault::Clear);
                let r = &mut log.faults[a.index];
                r.target_live = f
                    .target
                    .as_ref()
                    .map(|t| self.expiries.get(t).is_some_and(|e| *e > self.time.now_ms()));
                let mut base = snap.as_ref().map(Counters::of).unwrap_or_default();
                base.storm_hits = self.faults.storm_hits();
                r.base = Some(base);
                r.injected_ms = Some(offset);
                current = Some(a.index);
                log.faults_injected += 1;
                if f.kind == FaultKind::StaleData {
                    // The zombie rule counts wall-time silence (15 s): simulated time is held
                    // while muted, so the mute costs no simulated hours.
                    self.time.set_running(false);
                }
                a.faults.iter().for_each(|f| self.faults.apply(f));
                let index = a.index;
                if let Ending::At { offset_ms: end, .. } = &f.ending {
                    // A start that waited keeps its whole window: the lift moves with it.
                    let lift_at = offset + (end - f.start_offset_ms);
                    for later in &mut actions[next..] {
                        if later.index == index && !later.start {
                            later.offset_ms = later.offset_ms.max(lift_at);
                        }
                    }
                    actions[next..].sort_by_key(|a| (a.offset_ms, a.index));
                }
                if let Ending::WhenMet(lift) = &f.ending {
                    waiting = Some(Waiting {
                        index,
                        kind: f.kind,
                        lift: lift.clone(),
                        since: Instant::now(),
                        base,
                    });
                }
            }
            if let Some(s) = &snap {
                if ending.is_none() && waiting.is_none() {
                    self.maybe_relax(&mut relax, &mut log, s, offset);
                }
                progress.update(&Reading {
                    sim_elapsed_ms: offset,
                    sim_total_ms: self.sim_total_ms,
                    events: events_of(&s.stats),
                    faults: log.faults_injected,
                });
            }
            if snap.is_some() {
                last = snap;
            }
            if done {
                break;
            }
            if ending.is_none() && waiting.is_none() && offset >= self.sim_total_ms {
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
        if let (Some(i), Some(s)) = (current, &last) {
            close_window(&mut log.faults[i], s, self.faults.storm_hits());
        }
        let events = last.as_ref().map_or(0, |s| events_of(&s.stats));
        progress.finish(&Reading {
            sim_elapsed_ms: log.sim_elapsed_ms,
            sim_total_ms: self.sim_total_ms,
            events,
            faults: log.faults_injected,
        });
        log
    }

    /// The unattended drill's operator: a Kill held only by the rate-limit reason (ruling 2:
    /// Kill reasons are lifted by an operator, never automatically) is relaxed once the
    /// breaker closed and the reconnect's reconciliation passed (the engine refuses before).
    /// Any other Kill reason (capital stop, operator Kill, WAL, policy) is left alone.
    fn maybe_relax(&self, r: &mut Relaxer, log: &mut MonitorLog, s: &EngineSnapshot, offset: i64) {
        let rate_limit_kill = s.mode == TradingMode::Kill
            && s.mode_reasons.contains(&ModeReasonCode::KillRateLimitSessionTermination)
            && s.mode_reasons.iter().all(|c| {
                !is_kill_reason(*c) || *c == ModeReasonCode::KillRateLimitSessionTermination
            });
        if !rate_limit_kill {
            if r.kill_since.is_some() && r.refused > 0 {
                // The harness tried while the engine still refused; the engine left Kill on
                // its own (an engine that auto-relaxes this reason): recorded all the same.
                log.operator_actions.push(OperatorAction {
                    offset_ms: offset,
                    action: "relax",
                    target: "Active",
                    reasons_before: std::mem::take(&mut r.reasons),
                    refused_before: r.refused,
                    result: format!(
                        "not applied: the engine left Kill without it (first refusal: {}; last: {})",
                        r.first_refusal.take().unwrap_or_default(),
                        r.last_refusal.take().unwrap_or_default()
                    ),
                });
            }
            r.kill_since = None;
            r.refused = 0;
            return;
        }
        r.reasons = s.mode_reasons.iter().map(|c| c.as_str()).collect();
        let since = *r.kill_since.get_or_insert_with(Instant::now);
        if since.elapsed() < RELAX_AFTER || r.last_try.is_some_and(|t| t.elapsed() < RELAX_RETRY) {
            return;
        }
        r.last_try = Some(Instant::now());
        let req = coldpath::server::EmergencyRequest {
            reason: Some("paper drill: rate-limit burst lifted, session reconciled".into()),
            requested_by: Some(HARNESS_OPERATOR.into()),
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            received_at_ms: 0,
        };
        let cmd =
            ControlCmd::Relax { target: TradingMode::Active, token: self.operator_token.clone() };
        match self.control.submit(cmd, req) {
            Ok(_) => {
                log.operator_actions.push(OperatorAction {
                    offset_ms: offset,
                    action: "relax",
                    target: "Active",
                    reasons_before: s.mode_reasons.iter().map(|c| c.as_str()).collect(),
                    refused_before: r.refused,
                    result: "ok".into(),
                });
                r.kill_since = None;
                r.refused = 0;
                r.first_refusal = None;
            }
            Err(e) => {
                r.refused += 1;
                r.first_refusal.get_or_insert_with(|| e.to_string());
                r.last_refusal = Some(e.to_string());
            }
        }
    }
}

fn session_latched(s: &EngineSnapshot) -> bool {
    s.latch_codes.contains(&OpenPermissionReasonCode::SessionTerminationReconcileRequired)
}

fn observe_window(r: &mut FaultRecord, s: &EngineSnapshot) {
    r.modes.insert(mode_name(s.mode));
    r.mode_reasons.extend(s.mode_reasons.iter().map(|c| c.as_str()));
    r.latch_codes.extend(s.latch_codes.iter().map(|c| c.as_str()));
}

fn close_window(r: &mut FaultRecord, s: &EngineSnapshot, storm_hits: u64) {
    let Some(b) = r.base else { return };
    let mut now = Counters::of(s);
    now.storm_hits = storm_hits;
    let mut put = |k: &'static str, a: u64, b: u64| {
        if a > b {
            r.deltas.insert(k, a - b);
        }
    };
    put("reconnects", now.reconnects, b.reconnects);
    put("resubscribes", now.resubscribes, b.resubscribes);
    put("venue_rejects", now.venue_rejects, b.venue_rejects);
    put("duplicate_fills_ignored", now.duplicate_fills_ignored, b.duplicate_fills_ignored);
    put("fill_reports", now.fills, b.fills);
    put("venue_10028_answers", now.storm_hits, b.storm_hits);
}

/// Simulated time a book gap may stay unseen before it is re-armed on the next instrument.
const BOOK_GAP_REARM_MS: i64 = 2 * 3_600_000;

impl Watch {
    /// A dropped notification shows as a gap only when that book changes again; books on
    /// this coarse market can stay quiet for hours. Until the engine resubscribed, another
    /// notification is dropped every [`BOOK_GAP_REARM_MS`] of simulated time.
    fn rearm_book_gap(&self, r: &mut FaultRecord, s: &EngineSnapshot) {
        let f = &self.schedule[r.index];
        let (Some(base), Some(at)) = (r.base, r.injected_ms) else {
            return;
        };
        if f.kind != FaultKind::BookGap || s.stats.resubscribes > base.resubscribes {
            return;
        }
        let due = at + BOOK_GAP_REARM_MS * i64::from(r.rearms + 1);
        if self.offset() < due {
            return;
        }
        r.rearms += 1;
        f.start.iter().for_each(|c| self.faults.apply(c));
    }
}

/// Stable mode name.
#[must_use]
pub const fn mode_name(m: TradingMode) -> &'static str {
    match m {
        TradingMode::Active => "Active",
        TradingMode::ReduceOnly => "ReduceOnly",
        TradingMode::Kill => "Kill",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(at_ms: i64, to: TradingMode) -> ModeTransition {
        ModeTransition { at_ms, from: TradingMode::Active, to, reasons: Vec::new() }
    }

    #[test]
    fn transitions_merge_by_overlap_without_duplicates() {
        let mut all = Vec::new();
        assert!(!merge_transitions(&mut all, &[t(1, TradingMode::Kill)]));
        assert!(!merge_transitions(
            &mut all,
            &[t(1, TradingMode::Kill), t(1, TradingMode::Active)]
        ));
        assert!(!merge_transitions(
            &mut all,
            &[t(1, TradingMode::Kill), t(1, TradingMode::Active)]
        ));
        // The bounded history dropped its oldest entry and gained one.
        assert!(!merge_transitions(
            &mut all,
            &[t(1, TradingMode::Active), t(1, TradingMode::Kill)]
        ));
        assert_eq!(
            all,
            vec![t(1, TradingMode::Kill), t(1, TradingMode::Active), t(1, TradingMode::Kill)]
        );
        let full: Vec<_> =
            (10..10 + TRANSITIONS_MAX as i64).map(|i| t(i, TradingMode::Kill)).collect();
        assert!(merge_transitions(&mut all, &full), "no overlap with a full history is a loss");
    }
}
