//! Instrument and fee metadata kept fresh: the gates refuse opens once the cache is older than
//! the policy's `instrument_cache_ttl_s` or `fee_cache_hard_s`, so the engine re-reads the
//! venue's instruments at half the smaller of the two (on its own clock: simulated time in `stoic paper`, wall time otherwise).
//!
//! A refresh the client-side credits refuse (the venue allows `get_instruments` about once per
//! ten wall seconds) or that fails is simply tried again on a later tick: the cache stays valid
//! until the hard limit, and a dead session is noticed by the execution poll, not here.

use super::{Engine, EngineError};

/// Refresh period when the policy did not load (every open is refused then anyway).
const REFRESH_MS_WITHOUT_POLICY: i64 = 450_000;

impl Engine {
    pub(super) fn refresh_instruments_if_due(&mut self) -> Result<(), EngineError> {
        let period_ms = self.policy.as_ref().map_or(REFRESH_MS_WITHOUT_POLICY, |p| {
            let d = &p.data_limits;
            d.fee_cache_hard_s.min(d.instrument_cache_ttl_s).saturating_mul(1_000) / 2
        });
        let now = self.clock.now_ms();
        if self.instruments.is_empty() || now.saturating_sub(self.instruments_ms) < period_ms {
            return Ok(());
        }
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return Ok(()) };
        // One call for every kind: the venue meters `get_instruments` per call, not per kind.
        let json = match disp.instruments_json("any", None, &mut self.reports) {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(run_id = %self.run_id, error = %e, "instrument refresh deferred");
                return Ok(());
            }
        };
        self.instruments
            .load_get_instruments(&json, now)
            .map_err(|e| EngineError::Instruments(e.to_string()))?;
        self.instruments_ms = now;
        Ok(())
    }
}
