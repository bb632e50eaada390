//! The trading thread's hot state for cold readers, through a seqlock (`hotpath::ring::Snapshot`):
//! counters, positions with their pending (resting) exposure, risk state, latch and the newest
//! book time. Published every [`HOT_STATE_PERIOD`] from the run loop without allocating or
//! locking; the metrics pump (a cold thread) reads it into `/metrics` (`stoic_position_amount`,
//! `stoic_pending_amount`, `stoic_engine_events_total`, `stoic_last_book_update_ms`). The
//! trading mode is an atomic word of its own (the mode cell, also exported to `/metrics`).
//!
//! `/status` does not mix these in: a status response is one consistent copy (the 50 ms
//! snapshot), so its mode, positions, PnL and transitions always agree with each other.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hotpath::domain::reason_codes::RiskState;
pub use hotpath::ring::hot_state::{HotPosition, HotState, HOT_POSITIONS_MAX};

use super::{Engine, EngineStats};
/// The rings of [`HotState::ring_depth`] / `ring_overflow`, in their order.
pub const HOT_RING_IDS: [coldpath::metrics::RingId; hotpath::ring::hot_state::HOT_RINGS] = [
    coldpath::metrics::RingId::StrategyToGate,
    coldpath::metrics::RingId::GateToDispatch,
    coldpath::metrics::RingId::ExecutionReports,
    coldpath::metrics::RingId::Control,
];

/// How often the run loop publishes.
pub const HOT_STATE_PERIOD: Duration = Duration::from_millis(1);

/// Counter names, in [`HotState::counters`] order (the `/status` counter keys).
pub const HOT_COUNTER_NAMES: [&str; 12] = [
    "intents",
    "sent",
    "acked",
    "fills",
    "filled",
    "cancelled",
    "venue_rejects",
    "gate_rejects",
    "wal_failures",
    "abandoned",
    "reconnects",
    "market_events",
];

/// The published counters with their names.
pub fn counters_named(h: &HotState) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    HOT_COUNTER_NAMES.iter().copied().zip(h.counters)
}

fn counters_of(s: &EngineStats) -> [u64; 12] {
    [
        s.intents,
        s.sent,
        s.acked,
        s.fills,
        s.filled,
        s.cancelled,
        s.venue_rejects,
        s.gate_rejects,
        s.wal_failures,
        s.abandoned,
        s.reconnects,
        s.market_events,
    ]
}

impl Engine {
    /// Publishes the hot state (no allocation: fills the reused buffer, one seqlock write).
    pub(super) fn publish_hot_state(&mut self) {
        let mut h = std::mem::replace(&mut self.hot_buf, HotState::EMPTY);
        h.counters = counters_of(&self.stats_now());
        h.positions_len = 0;
        h.positions_dropped = 0;
        for (n, q) in &self.positions {
            if let Some(p) = h.slot(n.as_str()) {
                p.qty = q.raw();
            }
        }
        for l in self.live.values() {
            let filled = self.wal.ledger().get(l.intent_hash).map_or(0, |e| e.filled_qty);
            let rest = (l.qty - filled).max(0);
            if let Some(p) = h.slot(l.instrument.as_str()) {
                match l.side {
                    hotpath::domain::intent::Side::Buy => p.pending_buy += rest,
                    hotpath::domain::intent::Side::Sell => p.pending_sell += rest,
                }
            }
        }
        h.last_book_ms = self.market.books().iter().map(|b| b.last_update_ms).max().unwrap_or(0);
        h.at_ms = self.clock.now_ms();
        h.risk_state = RiskState::ALL
            .iter()
            .position(|r| *r == self.pipeline.risk_state)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(0);
        h.latched = u8::from(self.guard.latch().is_latched());
        let strategy = self.stage.as_ref();
        let (jobs, outputs) =
            self.dispatch.as_ref().map_or((0, 0), super::dispatch_stage::DispatchLink::queued);
        h.ring_depth = [
            strategy.map_or(0, super::strategy_stage::StrategyLink::batches_queued),
            jobs,
            outputs,
            self.control.as_ref().map_or(0, |c| c.rx.slots() as u64),
        ];
        h.ring_overflow = [
            strategy.map_or(0, |l| l.counters.intent_ring_full.load(Ordering::Relaxed)),
            self.stats.dispatch_ring_full,
            // Outputs never overflow: a full output ring stops the dispatch thread reading
            // its socket (backpressure), so nothing is refused or dropped.
            0,
            self.control.as_ref().map_or(0, |c| c.refused_full.load(Ordering::Relaxed)),
        ];
        self.hot.publish(h);
        self.hot_buf = h;
    }

    /// A reader of the hot state (for a cold thread).
    #[must_use]
    pub fn hot_state_reader(&self) -> hotpath::ring::SnapshotReader<HotState> {
        self.hot.reader()
    }
}

/// The hot state as metrics series (the metrics pump's cold copy).
#[must_use]
#[allow(clippy::cast_precision_loss)] // display only: amounts leave fixed point here
pub fn to_metrics(h: &HotState) -> coldpath::metrics::EngineStateMetrics {
    let amount = |raw: i64| raw as f64 / 1e8;
    coldpath::metrics::EngineStateMetrics {
        positions: h
            .positions()
            .iter()
            .map(|p| coldpath::metrics::PositionMetric {
                instrument: p.name().to_owned(),
                amount: amount(p.qty),
                pending_buy: amount(p.pending_buy),
                pending_sell: amount(p.pending_sell),
            })
            .collect(),
        counters: counters_named(h).collect(),
        last_book_ms: h.last_book_ms,
        rings: HOT_RING_IDS
            .iter()
            .zip(h.ring_depth.iter().zip(h.ring_overflow))
            .map(|(id, (depth, overflow))| (*id, *depth, overflow))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_pending_land_in_named_slots_and_overflow_is_counted() {
        let mut h = HotState::EMPTY;
        h.slot("BTC-PERPETUAL").unwrap().qty = 5;
        h.slot("ETH-PERPETUAL").unwrap().pending_buy += 3;
        h.slot("BTC-PERPETUAL").unwrap().pending_sell += 2;
        let p = h.positions();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].name(), p[0].qty, p[0].pending_sell), ("BTC-PERPETUAL", 5, 2));
        assert_eq!((p[1].name(), p[1].pending_buy), ("ETH-PERPETUAL", 3));
        for i in 2..HOT_POSITIONS_MAX {
            assert!(h.slot(&format!("BTC-{i}")).is_some());
        }
        assert!(h.slot("ONE-TOO-MANY").is_none());
        assert_eq!(h.positions_dropped, 1);
    }

    #[test]
    fn a_published_state_reads_back_whole() {
        let (mut w, r) = hotpath::ring::Snapshot::new(HotState::EMPTY);
        let mut h = HotState::EMPTY;
        h.counters[0] = 7;
        h.slot("BTC-PERPETUAL").unwrap().qty = -9;
        h.risk_state = 1;
        w.publish(h);
        let (version, got) = r.read_versioned();
        assert!(version > 0);
        assert_eq!(got, h);
        assert_eq!(got.risk_state(), RiskState::Degraded);
        assert_eq!(counters_named(&got).next(), Some(("intents", 7)));
        let m = to_metrics(&got);
        assert_eq!(m.positions[0].instrument, "BTC-PERPETUAL");
        assert!((m.positions[0].amount + 9e-8).abs() < 1e-15);
        assert_eq!(m.counters[0], ("intents", 7));
    }
}
