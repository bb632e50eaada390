//! Instrument and fee metadata kept fresh: the fee gate refuses opens once the cache is older
//! than the policy's `fee_cache_hard_s`, so the engine re-reads the venue's instruments at half
//! that age (on its own clock: simulated time in `stoic paper`, wall time otherwise).

use super::{Engine, EngineError};

/// Refresh period when the policy did not load (every open is refused then anyway).
const REFRESH_MS_WITHOUT_POLICY: i64 = 450_000;

impl Engine {
    pub(super) fn refresh_instruments_if_due(&mut self) -> Result<(), EngineError> {
        let period_ms = self.policy.as_ref().map_or(REFRESH_MS_WITHOUT_POLICY, |p| {
            p.data_limits.fee_cache_hard_s.saturating_mul(1_000) / 2
        });
        let now = self.clock.now_ms();
        if self.instruments.is_empty() || now.saturating_sub(self.instruments_ms) < period_ms {
            return Ok(());
        }
        let Some(disp) = self.disp.as_mut() else { return Ok(()) };
        let json = disp.instruments_json("any", Some("future"), &mut self.reports)?;
        self.instruments
            .load_get_instruments(&json, now)
            .map_err(|e| EngineError::Instruments(e.to_string()))?;
        self.instruments_ms = now;
        Ok(())
    }
}
