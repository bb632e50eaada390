//! The seeded fault schedule of a paper run: which venue fault starts (and ends) at which
//! simulated time. A pure function of (seed, days, faults per day, instruments), so two runs
//! with the same arguments meet the same faults at the same simulated moments.

use simulator::Fault;

use super::clock::DAY_MS;

/// Most faults one simulated day may hold (each gets its own slot of the day).
pub const FAULTS_PER_DAY_MAX: u32 = 24;

/// Shortest and longest maintenance window (simulated ms).
const WINDOW_MS_MIN: i64 = 30 * 60_000;
const WINDOW_MS_MAX: i64 = 3 * 3_600_000;

/// What a scheduled fault does to the venue (all via `simulator::Fault`).
///
/// Partial and late fills (`PartialFill`, `DelayFills`) are not scheduled here: the simulator
/// applies them to taker orders only, and the paper run's quoter only posts (post-only), so
/// they could never touch it; the chaos suite covers them with taking strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Every WebSocket session is closed (cancel-on-disconnect runs).
    Disconnect,
    /// Every request answers 10028 (connection closed) until the engine has met it once.
    RateLimitBurst,
    /// Book notifications dropped: a change-id gap the engine must resubscribe through.
    BookGap,
    /// The next fill notifications are delivered twice (same trade id).
    DuplicateFill,
    /// The next order on one instrument is rejected.
    OrderReject,
    /// Public market data muted until the engine's zombie rule trips.
    StaleData,
    /// Exchange maintenance for a window (orders answer 11051).
    Maintenance,
}

/// How a fault ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// A one-shot command: nothing to lift.
    OneShot,
    /// Lifted at this simulated offset by the given command.
    At {
        /// When (simulated ms since trading started).
        offset_ms: i64,
        /// The command that lifts it.
        fault: Fault,
    },
    /// Lifted by the given command as soon as the engine met the fault (watched on its
    /// published state), or after a wall-time bound.
    WhenMet(Fault),
}

impl FaultKind {
    /// Every kind, in schedule order.
    pub const ALL: [Self; 7] = [
        Self::Disconnect,
        Self::RateLimitBurst,
        Self::BookGap,
        Self::DuplicateFill,
        Self::OrderReject,
        Self::StaleData,
        Self::Maintenance,
    ];

    /// Stable snake_case name (summary.json, report.md).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::RateLimitBurst => "rate_limit_burst",
            Self::BookGap => "book_gap",
            Self::DuplicateFill => "duplicate_fill",
            Self::OrderReject => "order_reject",
            Self::StaleData => "stale_data",
            Self::Maintenance => "maintenance",
        }
    }
}

/// One fault of the schedule. Times are offsets from the start of simulated trading.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    /// What it is.
    pub kind: FaultKind,
    /// When it starts.
    pub start_offset_ms: i64,
    /// The venue commands at the start.
    pub start: Vec<Fault>,
    /// How it ends.
    pub ending: Ending,
    /// The instrument it is aimed at first (order rejects).
    pub target: Option<String>,
}

impl ScheduledFault {
    /// Scheduled end offset (faults lifted at a fixed time only).
    #[must_use]
    pub fn end_offset_ms(&self) -> Option<i64> {
        match self.ending {
            Ending::At { offset_ms, .. } => Some(offset_ms),
            _ => None,
        }
    }
}

/// Bad schedule arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `faults_per_day` above [`FAULTS_PER_DAY_MAX`].
    #[error("faults per day must be 0..={FAULTS_PER_DAY_MAX}, got {0}")]
    TooManyFaults(u32),
    /// An order-reject fault needs an instrument to aim at.
    #[error("the strategy trades no instrument to aim order rejects at")]
    NoInstrument,
}

/// Checks `faults_per_day` before anything starts.
///
/// # Errors
/// [`ScheduleError::TooManyFaults`].
pub fn check_faults_per_day(faults_per_day: u32) -> Result<(), ScheduleError> {
    if faults_per_day > FAULTS_PER_DAY_MAX {
        return Err(ScheduleError::TooManyFaults(faults_per_day));
    }
    Ok(())
}

/// SplitMix64: tiny, seedable, and ours (the schedule must not change with a crate version).
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`), bias negligible for our ranges.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(hi > lo);
        let span = u64::try_from(hi - lo).unwrap_or(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }
}

/// Builds the schedule: each simulated day is cut into `faults_per_day` equal slots; each slot
/// holds one fault, starting in the slot's first half and (maintenance) ending before the slot
/// does. Kinds come in seeded permutations of [`FaultKind::ALL`], so every kind is met equally
/// often (±1) and a 14-day run at 3 a day meets each six times. Faults aimed at an instrument
/// take one of `instruments` (the ones the engine trades), seeded.
///
/// # Errors
/// [`ScheduleError`] for a bad count or no instrument.
pub fn build(
    seed: u64,
    days: u32,
    faults_per_day: u32,
    instruments: &[String],
) -> Result<Vec<ScheduledFault>, ScheduleError> {
    check_faults_per_day(faults_per_day)?;
    if faults_per_day == 0 {
        return Ok(Vec::new());
    }
    if instruments.is_empty() {
        return Err(ScheduleError::NoInstrument);
    }
    let mut rng = SplitMix(seed ^ 0x5041_5045_525F_5255); // "PAPER_RU"
    let slot_ms = DAY_MS / i64::from(faults_per_day);
    let mut kinds: Vec<FaultKind> = Vec::new();
    let mut out = Vec::new();
    for day in 0..i64::from(days) {
        for slot in 0..i64::from(faults_per_day) {
            if kinds.is_empty() {
                kinds = FaultKind::ALL.to_vec();
                for i in (1..kinds.len()).rev() {
                    let j = usize::try_from(rng.next() % (i as u64 + 1)).unwrap_or(0);
                    kinds.swap(i, j);
                }
            }
            let kind = kinds.pop().unwrap_or(FaultKind::Disconnect);
            let slot_start = day * DAY_MS + slot * slot_ms;
            let start = slot_start + rng.range(slot_ms / 8, slot_ms / 2);
            let window = rng.range(WINDOW_MS_MIN, WINDOW_MS_MAX).min(slot_ms / 2 - 1).max(1);
            let pick = usize::try_from(rng.next() % instruments.len() as u64).unwrap_or(0);
            let instrument = instruments[pick].clone();
            let (start_fault, ending, target) = match kind {
                FaultKind::Disconnect => (vec![Fault::DisconnectAll], Ending::OneShot, None),
                FaultKind::RateLimitBurst => (
                    // Long enough to be met; lifted (seconds 0) once the engine has met it.
                    vec![Fault::RateLimitStorm { seconds: RATE_LIMIT_STORM_S_MAX }],
                    Ending::WhenMet(Fault::RateLimitStorm { seconds: 0.0 }),
                    None,
                ),
                // One dropped notification of the next of the engine's books to change (the
                // simulator drops only notifications someone subscribed to, and the engine is
                // the only subscriber: so one of its books, and an active one): the gap shows
                // on that book's next change. The watcher re-arms it while unseen.
                FaultKind::BookGap => (
                    vec![Fault::DropBookMessages { count: 1, instrument: None }],
                    Ending::OneShot,
                    None,
                ),
                FaultKind::DuplicateFill => {
                    (vec![Fault::DuplicateFillNotifications { count: 2 }], Ending::OneShot, None)
                }
                // Armed on every traded instrument (the picked one first): the engine's next
                // new order, wherever it goes, is refused; the rest are lifted with the window.
                FaultKind::OrderReject => {
                    let mut rejects =
                        vec![Fault::RejectNextOrder { instrument: instrument.clone(), code: None }];
                    rejects.extend(
                        instruments
                            .iter()
                            .filter(|n| **n != instrument)
                            .map(|n| Fault::RejectNextOrder { instrument: n.clone(), code: None }),
                    );
                    (rejects, Ending::OneShot, Some(instrument))
                }
                FaultKind::StaleData => (
                    vec![Fault::MuteMarketData { on: true }],
                    Ending::WhenMet(Fault::MuteMarketData { on: false }),
                    None,
                ),
                FaultKind::Maintenance => (
                    vec![Fault::Maintenance { on: true }],
                    Ending::At {
                        offset_ms: start + window,
                        fault: Fault::Maintenance { on: false },
                    },
                    None,
                ),
            };
            out.push(ScheduledFault {
                kind,
                start_offset_ms: start,
                start: start_fault,
                ending,
                target,
            });
        }
    }
    Ok(out)
}

/// Wall seconds a rate-limit storm may last at most (it is lifted as soon as the engine met
/// it; the bound keeps an idle engine from holding the run).
pub const RATE_LIMIT_STORM_S_MAX: f64 = 10.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["BTC-PERPETUAL".into(), "ETH-PERPETUAL".into()]
    }

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = build(7, 14, 3, &names()).unwrap();
        assert_eq!(a, build(7, 14, 3, &names()).unwrap());
        assert_ne!(a, build(8, 14, 3, &names()).unwrap());
        assert_eq!(a.len(), 42);
    }

    #[test]
    fn paper_faults_never_overlap_and_all_end_inside_the_run() {
        let s = build(11, 14, 5, &names()).unwrap();
        let mut last_end = -1;
        for f in &s {
            assert!(f.start_offset_ms > last_end, "{f:?} overlaps the previous fault");
            last_end = f.end_offset_ms().unwrap_or(f.start_offset_ms);
            assert!(last_end < 14 * DAY_MS);
        }
    }

    #[test]
    fn a_long_paper_run_meets_every_fault_kind() {
        let s = build(1, 14, 3, &names()).unwrap();
        for k in FaultKind::ALL {
            assert!(s.iter().any(|f| f.kind == k), "{} never scheduled", k.as_str());
        }
    }

    #[test]
    fn paper_fault_kinds_are_balanced_and_aimed_at_the_given_instruments() {
        let s = build(5, 14, 3, &names()).unwrap();
        for k in FaultKind::ALL {
            let n = s.iter().filter(|f| f.kind == k).count();
            assert!((5..=7).contains(&n), "{} scheduled {n} times", k.as_str());
        }
        for f in &s {
            if let Some(t) = &f.target {
                assert!(names().contains(t), "{t} is not traded");
            }
            let aimed = f.kind == FaultKind::OrderReject;
            assert_eq!(f.target.is_some(), aimed, "{f:?}");
        }
    }

    #[test]
    fn bad_schedule_arguments_are_refused() {
        assert_eq!(build(1, 1, 25, &names()), Err(ScheduleError::TooManyFaults(25)));
        assert_eq!(build(1, 1, 2, &[]), Err(ScheduleError::NoInstrument));
        assert_eq!(build(1, 1, 0, &names()).unwrap().len(), 0);
        assert_eq!(build(1, 1, 0, &[]), Ok(Vec::new()));
    }
}
