//! ReduceOnly and Kill cancel resting risk-increasing orders (AT-1065, contract §2.2.3.4.1).
//!
//! The gate stops new opens the moment the mode leaves Active, but an open already resting
//! at the venue can still fill and add the risk the mode forbids. So while the mode is
//! not Active, every live order that could add risk if its side filled completely (judged
//! from the current position, whatever class it had when accepted) is cancelled, at most
//! [`CANCEL_OPEN_BATCH_MAX`] per [`CANCEL_OPEN_BUDGET_MS`] so a book full of quotes cannot
//! eat the credit budget the closes need. Kill sends its own immediate cancel of every such
//! order first (`kill_containment.rs`, step 1, recorded here); the sweep then retries any the
//! client-side limiter held back or the venue did not answer.
//!
//! Each order is cancelled once; a cancel still unanswered after [`CANCEL_RETRY_MS`] (the
//! venue refused it, or the reply was lost) is sent again. The bookkeeping is a small map
//! on the cold side of the loop: it only runs while the mode is restricted.

use std::time::{Duration, Instant};

use hotpath::domain::instrument::InstrumentName;
use hotpath::domain::intent::Side;
use hotpath::domain::reason_codes::TradingMode;

use super::Engine;

/// Contract default `cancel_open_batch_max`.
pub const CANCEL_OPEN_BATCH_MAX: usize = 50;
/// Contract default `cancel_open_budget_ms`.
pub const CANCEL_OPEN_BUDGET_MS: u64 = 200;
/// A cancel not answered by a terminal report within this long is sent again.
const CANCEL_RETRY_MS: u64 = 2_000;

/// Which restricted-mode cancels are in flight, and when the next batch may go.
#[derive(Debug, Default)]
pub struct OpenSweep {
    /// Intent hash → when its cancel was sent.
    sent: std::collections::HashMap<u64, Instant>,
    next_batch: Option<Instant>,
    /// Cancels sent since start (status/tests).
    pub cancels_sent: u64,
}

impl OpenSweep {
    /// Records a cancel sent elsewhere (Kill's immediate cancel), so the sweep retries it
    /// only if the order is still live after [`CANCEL_RETRY_MS`].
    pub fn note_sent(&mut self, intent_hash: u64, at: Instant) {
        self.sent.insert(intent_hash, at);
        self.next_batch.get_or_insert(at + Duration::from_millis(CANCEL_OPEN_BUDGET_MS));
    }
}

impl Engine {
    /// The (instrument, side) pairs whose resting orders could add risk if they all filled
    /// now: a side reduces only while the position against it covers every resting order of
    /// that side together (sells against a long at least their total, buys against a short).
    /// Judged from the current position, not from the class at acceptance: a close that
    /// flattened the position turns the resting reducing orders into opens.
    fn uncovered_sides(&self) -> Vec<(InstrumentName, Side)> {
        let mut resting: Vec<(InstrumentName, Side, i64)> = Vec::new();
        for (_, l) in self.live.iter() {
            let filled = self.wal.ledger().get(l.intent_hash).map_or(0, |e| e.filled_qty);
            let rest = (l.qty - filled).max(0);
            match resting.iter_mut().find(|(n, s, _)| *n == l.instrument && *s == l.side) {
                Some(r) => r.2 += rest,
                None => resting.push((l.instrument, l.side, rest)),
            }
        }
        resting
            .into_iter()
            .filter(|(n, side, total)| {
                let pos = self.positions.get(n).map_or(0, |q| q.raw());
                let covered = match side {
                    Side::Sell => pos > 0 && *total <= pos,
                    Side::Buy => pos < 0 && *total <= -pos,
                };
                !covered
            })
            .map(|(n, side, _)| (n, side))
            .collect()
    }

    /// One sweep step; called every loop turn (cheap unless the mode is restricted).
    pub(super) fn sweep_opens_in_restricted_modes(&mut self) {
        if self.guard.cell().mode() == TradingMode::Active {
            if !self.open_sweep.sent.is_empty() || self.open_sweep.next_batch.is_some() {
                self.open_sweep.sent.clear();
                self.open_sweep.next_batch = None;
            }
            return;
        }
        let now = Instant::now();
        if self.open_sweep.next_batch.is_some_and(|t| now < t) {
            return;
        }
        // Not connected (a reconnect is under way): the reconnect's reconciliation rebuilds
        // the live set and a later turn sweeps it.
        if !self.has_trading_session() || self.disp.as_ref().is_some_and(|d| d.is_closed()) {
            return;
        }
        self.open_sweep.next_batch = Some(now + Duration::from_millis(CANCEL_OPEN_BUDGET_MS));
        let retry = Duration::from_millis(CANCEL_RETRY_MS);
        let uncovered = self.uncovered_sides();
        let sent = &mut self.open_sweep.sent;
        sent.retain(|h, _| self.live.iter().any(|(_, l)| l.intent_hash == *h));
        let targets: Vec<(u64, String, String)> = self
            .live
            .iter()
            .filter(|(_, l)| uncovered.contains(&(l.instrument, l.side)))
            .filter(|(_, l)| {
                sent.get(&l.intent_hash).is_none_or(|t| now.duration_since(*t) >= retry)
            })
            .take(CANCEL_OPEN_BATCH_MAX)
            .map(|(label, l)| {
                (l.intent_hash, label.as_str().to_owned(), l.instrument.as_str().to_owned())
            })
            .collect();
        if targets.is_empty() {
            return;
        }
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return };
        let mut n = 0_u64;
        for (hash, label, instrument) in targets {
            match disp.cancel_by_label(&label, &instrument) {
                Ok(_) => {
                    n += 1;
                    self.open_sweep.sent.insert(hash, now);
                }
                Err(e) => {
                    tracing::warn!(run_id = %self.run_id, label, error = %e, "reduce-only: cancel not sent");
                }
            }
        }
        self.open_sweep.cancels_sent += n;
        if n > 0 {
            println!(
                "reduce-only: cancel sent for {n} resting risk-increasing order(s) (run_id={})",
                self.run_id
            );
        }
    }
}
