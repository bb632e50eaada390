//! The engine's view of the simulator's stepped time: one shared value, so the engine and the
//! venue agree on "now" to the microsecond (no drift between two scaled clocks).

use hotpath::clock::Clock;
use simulator::clock::SteppedTime;

/// Start of every paper run's simulated time: Monday 2027-01-04 00:00:00 UTC. Fixed, so the
/// listed expiries, day boundaries and the fault schedule are the same on every run.
pub const SIM_ORIGIN_MS: i64 = 1_799_020_800_000;

/// Milliseconds in a simulated day (the daily PnL window and the progress unit).
pub const DAY_MS: i64 = 86_400_000;

/// [`Clock`] over the simulator's [`SteppedTime`].
#[derive(Debug, Clone)]
pub struct VenueTimeClock(pub SteppedTime);

impl Clock for VenueTimeClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
}

/// `2027-01-04T00:11:12Z` for a simulated time (reports only).
#[must_use]
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = simulator::util::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_a_utc_midnight_and_prints_as_such() {
        assert_eq!(SIM_ORIGIN_MS.rem_euclid(DAY_MS), 0);
        assert_eq!(utc(SIM_ORIGIN_MS), "2027-01-04T00:00:00Z");
        assert_eq!(utc(SIM_ORIGIN_MS + DAY_MS + 3_723_000), "2027-01-05T01:02:03Z");
    }

    #[test]
    fn the_engine_clock_reads_the_venue_steps() {
        let t = SteppedTime::new(SIM_ORIGIN_MS, 60_000).unwrap();
        let c = VenueTimeClock(t.clone());
        assert_eq!(c.now_ms(), SIM_ORIGIN_MS);
        t.set_running(true);
        t.advance();
        assert_eq!(c.now_ms(), SIM_ORIGIN_MS + 60_000);
    }
}
