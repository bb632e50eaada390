//! Kill containment and Kill persistence (contract A §2.2.3.6, AT-338/339/340/346/347; DESIGN
//! invariants 5 and 6).
//!
//! **Containment.** Kill means "no new exposure, risk-reducing only until flat", not "no
//! dispatch". Once per loop turn, while TradingMode is Kill: (1) once per Kill episode, a
//! cancel for every live order not known to reduce risk; (2) while the engine holds a
//! position, the single emergency-close routine (`emergency.rs`: cancel-all, up to three
//! reduce-only IOC close rounds priced through the touch with a bounded slippage buffer, on
//! the venue's positions), (3) whose hedge fallback sends a perpetual hedge only through the
//! hedge gate. Whatever the Kill's cause: operator, capital stop, a WAL that cannot append (the
//! closes then go out on the unjournaled-reduce path), session termination (the rate-limit
//! breaker lets them through on the containment credit reserve), watchdog, disk. Bounded: at
//! most [`KILL_CONTAINMENT_RUNS_MAX`] runs per Kill episode, [`KILL_CONTAINMENT_BACKOFF`] apart
//! and doubling; then the engine stays in Kill and says so once (log and stdout). Nothing
//! exposed ⇒ no order is sent.
//!
//! **Persistence.** A Kill (any `KILL_*` reason, the operator's included) is written to
//! [`KILL_STATE_FILE`] next to the WAL (temp file, fsync, rename, fsync of the directory) before
//! the operator's Kill is acknowledged, and on every change of the Kill-tier reasons the loop
//! sees, and removed when the mode leaves Kill. On start the engine reads it back and comes up
//! in Kill with the same reasons; the start-up relax (which also runs after each reconnect) is
//! skipped for that restored Kill until an operator relaxes it. A Kill this process tightened
//! itself keeps the in-process behaviour (a session-termination Kill may be lifted by the
//! reconnect's relax once its reasons cleared), and the record follows the mode.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hotpath::domain::reason_codes::{ModeReasonCode, RiskState, TradingMode};
use hotpath::mode::ReasonSet;

use super::Engine;

/// Containment runs per Kill episode before the engine stops trying and reports.
pub const KILL_CONTAINMENT_RUNS_MAX: u8 = 3;
/// Wait after a run that left exposure before the next one (doubles per run).
pub const KILL_CONTAINMENT_BACKOFF: Duration = Duration::from_secs(2);
/// The durable Kill record, in the WAL directory.
pub const KILL_STATE_FILE: &str = "kill_state";
/// Who the containment's emergency-close runs are attributed to (logs, WAL operator action).
pub const CONTAINMENT_ACTOR: &str = "kill-containment";
/// Longest reason text kept in the Kill record.
const REASON_CHARS_MAX: usize = 200;

/// What the loop should do about Kill this turn (pure decision, see [`decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainmentStep {
    /// Nothing: not in Kill, nothing exposed, waiting out the backoff, or runs exhausted.
    Idle,
    /// Run the emergency close (cancel, reduce-only IOC rounds, hedge).
    Run,
    /// The run budget is spent with exposure left: report it (once) and stay in Kill.
    Exhausted,
}

/// The containment state of one Kill episode.
#[derive(Debug, Clone, Default)]
pub struct KillContainment {
    /// Runs made in this episode.
    pub runs: u8,
    /// Earliest instant of the next run.
    pub next_at: Option<Instant>,
    /// The engine's positions when a run last ended with the venue flat: while they are
    /// unchanged, the venue's word (flat) stands and no new run starts.
    pub settled: Option<Vec<(String, i64)>>,
    /// Whether exhaustion was reported.
    pub exhausted_reported: bool,
    /// Whether this episode's cancel of risk-increasing orders was sent.
    pub cancelled: bool,
    /// The Kill-tier reasons last written to [`KILL_STATE_FILE`] (empty: no file).
    pub persisted: ReasonSet,
    /// The Kill was read back at this process's start and no operator has relaxed it yet
    /// (the start-up relax, which also runs after every reconnect, is skipped meanwhile; a Kill
    /// this process tightened keeps the in-process reconnect behaviour).
    pub restored: bool,
    /// The Kill-tier reasons whose write last failed (logged once per set, retried each turn).
    pub persist_failed: Option<ReasonSet>,
}

/// The decision: `mode`, whether a position is exposed (and not settled by a flat run), the
/// episode's state and the time.
#[must_use]
pub fn decide(
    mode: TradingMode,
    exposed: bool,
    st: &KillContainment,
    now: Instant,
) -> ContainmentStep {
    if mode != TradingMode::Kill || !exposed {
        return ContainmentStep::Idle;
    }
    if st.runs >= KILL_CONTAINMENT_RUNS_MAX {
        return if st.exhausted_reported {
            ContainmentStep::Idle
        } else {
            ContainmentStep::Exhausted
        };
    }
    if st.next_at.is_some_and(|t| now < t) {
        return ContainmentStep::Idle;
    }
    ContainmentStep::Run
}

/// The backoff after run `runs` (1-based): 2 s, 4 s, 8 s, …
#[must_use]
pub fn backoff_after(runs: u8) -> Duration {
    KILL_CONTAINMENT_BACKOFF.saturating_mul(1u32 << u32::from(runs.saturating_sub(1).min(8)))
}

/// A Kill read back from [`KILL_STATE_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedKill {
    /// The Kill-tier reasons.
    pub reasons: ReasonSet,
    /// Free text: who and why (the operator's reason when the operator killed).
    pub note: String,
}

fn state_path(wal_dir: &Path) -> PathBuf {
    wal_dir.join(KILL_STATE_FILE)
}

/// Reads the Kill record. A file that exists but cannot be read or holds no known Kill reason
/// still means Kill (`KILL_RISKSTATE_KILL`): fail closed.
#[must_use]
pub fn load(wal_dir: &Path) -> Option<PersistedKill> {
    let path = state_path(wal_dir);
    if !path.exists() {
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut reasons = ReasonSet::EMPTY;
    let mut note = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("note: ") {
            n.clone_into(&mut note);
        } else if let Some(code) = ModeReasonCode::ALL.iter().find(|c| c.as_str() == line.trim()) {
            reasons.insert(*code);
        }
    }
    let reasons = reasons.tier(TradingMode::Kill);
    if reasons.is_empty() {
        return Some(PersistedKill {
            reasons: ReasonSet::of(ModeReasonCode::KillRiskstateKill),
            note: format!("unreadable kill record {} (fail closed)", path.display()),
        });
    }
    Some(PersistedKill { reasons, note })
}

/// Writes the Kill record durably (temp file, fsync, rename, directory fsync).
///
/// # Errors
/// The file system's.
pub fn store(wal_dir: &Path, reasons: ReasonSet, note: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut text = String::new();
    for r in reasons.tier(TradingMode::Kill).iter() {
        text.push_str(r.as_str());
        text.push('\n');
    }
    let note: String = note.chars().filter(|c| *c != '\n').take(REASON_CHARS_MAX).collect();
    text.push_str("note: ");
    text.push_str(&note);
    text.push('\n');
    let tmp = wal_dir.join(format!("{KILL_STATE_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, state_path(wal_dir))?;
    std::fs::File::open(wal_dir)?.sync_all()
}

/// Removes the Kill record (after an operator relax out of Kill), durably.
///
/// # Errors
/// The file system's (a missing file is not an error).
pub fn clear(wal_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(state_path(wal_dir)) {
        Ok(()) => std::fs::File::open(wal_dir)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Engine {
    /// Applies a Kill read back at start: the same reasons, tightened before anything
    /// connects; `KILL_RISKSTATE_KILL` also puts RiskState back to Kill (the relax path's
    /// RS-006 reset then applies).
    pub(super) fn restore_kill(&mut self, k: &PersistedKill) {
        self.guard.cell().tighten_all(k.reasons);
        if k.reasons.contains(ModeReasonCode::KillRiskstateKill) {
            self.pipeline.risk_state = RiskState::Kill;
        }
        self.kill.persisted = k.reasons;
        self.kill.restored = true;
        let codes: Vec<&str> = k.reasons.iter().map(ModeReasonCode::as_str).collect();
        println!(
            "mode: Kill restored from {} reasons=[{}] note={:?}; only an operator relax lifts it (run_id={})",
            state_path(&self.wal_dir).display(),
            codes.join(","),
            k.note,
            self.run_id
        );
    }

    /// Whether a Kill restored at start holds (the start-up relax is skipped then).
    pub(super) fn kill_persisted(&self) -> bool {
        self.kill.restored
    }

    /// Writes the Kill record now if the Kill-tier reasons differ from the last written; removes
    /// it when the mode left Kill (only an operator relax can do that). Returns the write error.
    pub(super) fn persist_kill(&mut self, note: &str) -> std::io::Result<()> {
        let word = self.guard.cell().load();
        let kill = word.reasons().tier(TradingMode::Kill);
        if word.mode() != TradingMode::Kill {
            if !self.kill.persisted.is_empty() {
                clear(&self.wal_dir)?;
                self.kill.persisted = ReasonSet::EMPTY;
                self.kill.restored = false;
                println!("mode: Kill record cleared (run_id={})", self.run_id);
            }
            return Ok(());
        }
        if kill == self.kill.persisted {
            return Ok(());
        }
        store(&self.wal_dir, kill, note)?;
        self.kill.persisted = kill;
        Ok(())
    }

    /// Whether the engine holds a position containment must act on: one not already settled
    /// by a run that found the venue flat.
    fn kill_exposed(&self) -> bool {
        let positions = self.nonzero_positions();
        !positions.is_empty() && self.kill.settled.as_ref() != Some(&positions)
    }

    fn nonzero_positions(&self) -> Vec<(String, i64)> {
        self.positions
            .iter()
            .filter(|(_, q)| q.raw() != 0)
            .map(|(n, q)| (n.as_str().to_owned(), q.raw()))
            .collect()
    }

    /// The loop's Kill step (once per turn; cheap unless it acts): persist the Kill, and while
    /// Kill holds with exposure, run bounded containment.
    pub(super) fn contain_kill(&mut self) {
        let mode = self.guard.cell().mode();
        match self.persist_kill("set by the engine (see mode_reasons)") {
            Ok(()) => self.kill.persist_failed = None,
            Err(e) => {
                let set = self.guard.cell().load().reasons().tier(TradingMode::Kill);
                if self.kill.persist_failed != Some(set) {
                    self.kill.persist_failed = Some(set);
                    tracing::error!(run_id = %self.run_id, error = %e, "kill record not written (retried every loop turn)");
                }
            }
        }
        if mode != TradingMode::Kill {
            if self.kill.runs > 0 || self.kill.settled.is_some() || self.kill.cancelled {
                let (persisted, restored, persist_failed) =
                    (self.kill.persisted, self.kill.restored, self.kill.persist_failed);
                self.kill = KillContainment {
                    persisted,
                    restored,
                    persist_failed,
                    ..KillContainment::default()
                };
            }
            return;
        }
        // Not connected (a reconnect is under way): the next turn after it tries.
        if !self.has_trading_session() || self.disp.as_ref().is_some_and(|d| d.is_closed()) {
            return;
        }
        if !self.kill.cancelled {
            // Step 1, once per Kill episode: cancel every live order not known to reduce risk
            // (the operator's Kill did this already; an automatic Kill did not).
            self.kill.cancelled = true;
            let n = self.cancel_risk_increasing();
            if n > 0 {
                println!(
                    "kill containment: cancel sent for {n} risk-increasing order(s) (run_id={})",
                    self.run_id
                );
            }
        }
        let now = Instant::now();
        match decide(mode, self.kill_exposed(), &self.kill, now) {
            ContainmentStep::Idle => {}
            ContainmentStep::Exhausted => {
                self.kill.exhausted_reported = true;
                tracing::error!(run_id = %self.run_id, runs = self.kill.runs, "kill containment exhausted: exposure remains; staying in Kill");
                println!(
                    "kill containment: exhausted after {} run(s), exposure remains; staying in Kill, operator action needed (run_id={})",
                    self.kill.runs, self.run_id
                );
            }
            ContainmentStep::Run => {
                self.kill.runs += 1;
                let run = self.kill.runs;
                let reasons: Vec<&str> = self
                    .guard
                    .cell()
                    .load()
                    .mode_reasons()
                    .iter()
                    .map(ModeReasonCode::as_str)
                    .collect();
                let why = format!(
                    "Kill with exposure: containment run {run}/{KILL_CONTAINMENT_RUNS_MAX} ({})",
                    reasons.join(",")
                );
                println!("kill containment: run {run}/{KILL_CONTAINMENT_RUNS_MAX} starting: {why} (run_id={})", self.run_id);
                let started = Instant::now();
                let outcome = self.emergency_close(CONTAINMENT_ACTOR, &why);
                // Reports of the run's fills are in; the engine's own positions now.
                self.drain_reports();
                if outcome.flat() {
                    self.kill.settled = Some(self.nonzero_positions());
                    self.kill.next_at = None;
                } else {
                    self.kill.next_at = Some(Instant::now() + backoff_after(run));
                }
                println!(
                    "kill containment: run {run} done in {} ms: flat={} sent={} hedge_used={} (run_id={})",
                    started.elapsed().as_millis(),
                    outcome.flat(),
                    outcome.sent.len(),
                    outcome.hedge_used,
                    self.run_id
                );
                self.publish_snapshot();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_zero_in_kill_sends_nothing() {
        let st = KillContainment::default();
        assert_eq!(decide(TradingMode::Kill, false, &st, Instant::now()), ContainmentStep::Idle);
    }

    #[test]
    fn not_kill_never_contains() {
        let st = KillContainment::default();
        for m in [TradingMode::Active, TradingMode::ReduceOnly] {
            assert_eq!(decide(m, true, &st, Instant::now()), ContainmentStep::Idle);
        }
    }

    #[test]
    fn kill_with_exposure_runs_then_backs_off_then_stops() {
        let t0 = Instant::now();
        let mut st = KillContainment::default();
        assert_eq!(decide(TradingMode::Kill, true, &st, t0), ContainmentStep::Run);
        st.runs = 1;
        st.next_at = Some(t0 + backoff_after(1));
        assert_eq!(decide(TradingMode::Kill, true, &st, t0), ContainmentStep::Idle);
        assert_eq!(
            decide(TradingMode::Kill, true, &st, t0 + backoff_after(1)),
            ContainmentStep::Run
        );
        st.runs = KILL_CONTAINMENT_RUNS_MAX;
        st.next_at = None;
        assert_eq!(decide(TradingMode::Kill, true, &st, t0), ContainmentStep::Exhausted);
        st.exhausted_reported = true;
        assert_eq!(decide(TradingMode::Kill, true, &st, t0), ContainmentStep::Idle);
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff_after(1), Duration::from_secs(2));
        assert_eq!(backoff_after(2), Duration::from_secs(4));
        assert_eq!(backoff_after(3), Duration::from_secs(8));
        assert!(backoff_after(u8::MAX) <= Duration::from_secs(2 * 256));
    }

    #[test]
    fn kill_record_round_trips_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let mut set = ReasonSet::of(ModeReasonCode::KillRiskstateKill);
        set.insert(ModeReasonCode::KillRateLimitSessionTermination);
        set.insert(ModeReasonCode::ReduceonlyPolicyStale); // not Kill tier: not kept
        store(dir.path(), set, "operator: drill\nsecond line").unwrap();
        let k = load(dir.path()).unwrap();
        assert_eq!(k.reasons, set.tier(TradingMode::Kill));
        assert_eq!(k.note, "operator: drillsecond line");
        clear(dir.path()).unwrap();
        assert_eq!(load(dir.path()), None);
        clear(dir.path()).unwrap();
    }

    #[test]
    fn unreadable_kill_record_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KILL_STATE_FILE), "garbage\n").unwrap();
        let k = load(dir.path()).unwrap();
        assert_eq!(k.reasons, ReasonSet::of(ModeReasonCode::KillRiskstateKill));
    }
}
