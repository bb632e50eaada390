//! The seeded fault schedule of a paper run: which venue fault starts (and ends) at which
//! simulated time. A pure function of (seed, days, faults per day, instruments), so two runs
//! with the same arguments meet the same faults at the same simulated moments.

use simulator::Fault;

use super::clock::DAY_MS;

/// Most faults one simulated day may hold (each gets its own slot of the day).
pub const FAULTS_PER_DAY_MAX: u32 = 24;

/// Shortest and longest window of a fault that lasts (simulated ms).
const WINDOW_MS_MIN: i64 = 30 * 60_000;
const WINDOW_MS_MAX: i64 = 3 * 3_600_000;

/// What a scheduled fault does to the venue (all via `simulator::Fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Every WebSocket session is closed (cancel-on-disconnect runs).
    Disconnect,
    /// Every request answers 10028 for half a wall second (connections closed).
    RateLimitBurst,
    /// Book notifications dropped: a change-id gap the engine must resubscribe through.
    BookGap,
    /// Taker orders fill only partly for a window.
    PartialFills,
    /// Taker fills arrive late for a window.
    LateFills,
    /// The next order on one instrument is rejected.
    OrderReject,
    /// No market data for a window (stale books).
    StaleData,
    /// Exchange maintenance for a window (orders answer 11051).
    Maintenance,
}

impl FaultKind {
    /// Every kind, in schedule order.
    pub const ALL: [Self; 8] = [
        Self::Disconnect,
        Self::RateLimitBurst,
        Self::BookGap,
        Self::PartialFills,
        Self::LateFills,
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
            Self::PartialFills => "partial_fills",
            Self::LateFills => "late_fills",
            Self::OrderReject => "order_reject",
            Self::StaleData => "stale_data",
            Self::Maintenance => "maintenance",
        }
    }

    const fn lasts(self) -> bool {
        matches!(self, Self::PartialFills | Self::LateFills | Self::StaleData | Self::Maintenance)
    }
}

/// One fault of the schedule. Times are offsets from the start of simulated trading.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    /// What it is.
    pub kind: FaultKind,
    /// When it starts.
    pub start_offset_ms: i64,
    /// When it is lifted (faults that last), else `None`.
    pub end_offset_ms: Option<i64>,
    /// The venue command at the start.
    pub start: Fault,
    /// The venue command at the end.
    pub end: Option<Fault>,
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
/// holds one fault of a seeded kind, starting in the slot's first half and (if it lasts) ending
/// before the slot does, so faults never overlap and every one is lifted before the run ends.
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
    let first_instrument = instruments.first().ok_or(ScheduleError::NoInstrument)?;
    let mut rng = SplitMix(seed ^ 0x5041_5045_525F_5255); // "PAPER_RU"
    let slot_ms = DAY_MS / i64::from(faults_per_day);
    let mut out = Vec::new();
    for day in 0..i64::from(days) {
        for slot in 0..i64::from(faults_per_day) {
            let slot_start = day * DAY_MS + slot * slot_ms;
            let idx = usize::try_from(rng.next() % FaultKind::ALL.len() as u64).unwrap_or(0);
            let kind = FaultKind::ALL[idx];
            let start = slot_start + rng.range(slot_ms / 8, slot_ms / 2);
            let window = rng.range(WINDOW_MS_MIN, WINDOW_MS_MAX).min(slot_ms / 2 - 1).max(1);
            let pick = usize::try_from(rng.next() % instruments.len() as u64).unwrap_or(0);
            let instrument = instruments.get(pick).unwrap_or(first_instrument).clone();
            let (start_fault, end_fault) = match kind {
                FaultKind::Disconnect => (Fault::DisconnectAll, None),
                FaultKind::RateLimitBurst => (Fault::RateLimitStorm { seconds: 0.5 }, None),
                FaultKind::BookGap => {
                    (Fault::DropBookMessages { count: 3, instrument: Some(instrument) }, None)
                }
                FaultKind::PartialFills => (
                    Fault::PartialFill { fraction: 0.3 },
                    Some(Fault::PartialFill { fraction: 1.0 }),
                ),
                FaultKind::LateFills => {
                    (Fault::DelayFills { ms: 1_800_000 }, Some(Fault::DelayFills { ms: 0 }))
                }
                FaultKind::OrderReject => (Fault::RejectNextOrder { instrument, code: None }, None),
                FaultKind::StaleData => (
                    Fault::FreezeMarketData { on: true },
                    Some(Fault::FreezeMarketData { on: false }),
                ),
                FaultKind::Maintenance => {
                    (Fault::Maintenance { on: true }, Some(Fault::Maintenance { on: false }))
                }
            };
            debug_assert_eq!(kind.lasts(), end_fault.is_some());
            out.push(ScheduledFault {
                kind,
                start_offset_ms: start,
                end_offset_ms: end_fault.as_ref().map(|_| start + window),
                start: start_fault,
                end: end_fault,
            });
        }
    }
    Ok(out)
}

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
            last_end = f.end_offset_ms.unwrap_or(f.start_offset_ms);
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
    fn bad_schedule_arguments_are_refused() {
        assert_eq!(build(1, 1, 25, &names()), Err(ScheduleError::TooManyFaults(25)));
        assert_eq!(build(1, 1, 2, &[]), Err(ScheduleError::NoInstrument));
        assert_eq!(build(1, 1, 0, &[]), Ok(Vec::new()));
    }
}
