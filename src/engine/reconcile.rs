//! Start-up and reconnect reconciliation: every in-doubt intent resolved with the venue by
//! label, venue positions adopted, then the open-permission latch cleared.

use super::{name_of, Engine, EngineError, LiveIntent, ReconcileSummary};
use hotpath::dispatch::{instrument_of_canonical, OrderReport, Resolution};
use hotpath::domain::instrument::InstrumentName;
use hotpath::domain::intent::Side;
use hotpath::domain::policy::Environment;
use hotpath::domain::reason_codes::TradingMode;
use hotpath::domain::units::{Price, Qty};
use hotpath::mode::ReconcileReport;
use hotpath::mode::{OperatorAction, OperatorAuthenticated, OperatorSecret};
use hotpath::wal::{IntentState, OperatorActionKind, Record};

/// Venue position reads the latch's position check makes before it gives up (the latch then
/// stays set and the reconnect path tries again).
const POSITION_READS_MAX: usize = 3;

impl Engine {
    /// Resolves in-doubt intents and clears the latch (the only path to trading).
    pub(super) fn reconcile(&mut self) -> Result<ReconcileSummary, EngineError> {
        self.record_mode(self.clock.now_ms());
        let ticket = self.guard.latch().begin_reconcile();
        self.trace_state();
        self.reclaim_dispatch();
        let disp = self.disp.as_mut().ok_or(EngineError::Reconcile("not connected".into()))?;
        let resolutions = disp.resolve_in_doubt(self.wal.ledger(), &mut self.reports)?;
        let mut sum = ReconcileSummary { in_doubt: resolutions.len() as u64, ..Default::default() };
        let now = self.clock.now_ms();
        self.live.clear();
        for r in &resolutions {
            match r {
                Resolution::Live { intent_hash, order } => {
                    sum.live += 1;
                    self.adopt(*intent_hash, order, now)?;
                }
                Resolution::Filled { intent_hash, order, filled, trade_id } => {
                    sum.filled += 1;
                    if let Some(o) = order {
                        self.ack_if_needed(*intent_hash, &o.order_id, now)?;
                    }
                    self.append_checked(
                        now,
                        &Record::Filled {
                            intent_hash: *intent_hash,
                            filled_qty: filled.raw,
                            trade_id,
                        },
                    )?;
                }
                Resolution::Cancelled { intent_hash, order } => {
                    sum.cancelled += 1;
                    self.ack_if_needed(*intent_hash, &order.order_id, now)?;
                    self.append_checked(
                        now,
                        &Record::Cancelled {
                            intent_hash: *intent_hash,
                            filled_qty: order.filled.raw,
                        },
                    )?;
                }
                Resolution::Rejected { intent_hash, .. } => {
                    sum.rejected += 1;
                    self.append_checked(
                        now,
                        &Record::Rejected {
                            intent_hash: *intent_hash,
                            code: 0,
                            reason: "venue reports the order rejected",
                        },
                    )?;
                }
                Resolution::NeverSeen { intent_hash } => {
                    sum.abandoned += 1;
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: *intent_hash,
                            reason: "in doubt at reconcile; the venue never saw it",
                        },
                    )?;
                }
            }
        }
        let _ = self.wal.sync()?;
        self.stats.in_doubt_resolved += sum.in_doubt;
        self.stats.abandoned += sum.abandoned;
        // Positions: the venue's word, after every in-doubt intent is resolved.
        self.positions.clear();
        self.recon.pos_gen += 1;
        let positions_match = self.settle_positions()?;
        self.daily_pnl.adopt_positions(&self.positions);
        let still = self
            .wal
            .ledger()
            .in_doubt()
            .filter(|e| matches!(e.state, IntentState::Recorded | IntentState::Sent));
        let unresolved = still.count();
        let report = ReconcileReport {
            intents_match_open_orders: unresolved == 0,
            positions_match,
            // Every in-doubt intent was resolved above from the venue's order and trade
            // history (a fill found there is in the WAL now); the continuous reconciler
            // checks trades against the ledger from here on.
            no_missing_trades: true,
        };
        self.guard
            .latch()
            .complete_reconcile(ticket, &report)
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        self.last_reconcile = sum;
        self.last_reconcile_ms = Some(self.clock.now_ms());
        self.trace.push(
            hotpath::trace::TraceEvent::new(
                hotpath::trace::TraceKind::Reconciled,
                0,
                self.clock.now_ms(),
            )
            .with_value(sum.in_doubt),
        );
        println!(
            "reconciled: run_id={} in_doubt={} live={} filled={} cancelled={} rejected={} abandoned={}",
            self.run_id, sum.in_doubt, sum.live, sum.filled, sum.cancelled, sum.rejected, sum.abandoned
        );
        self.startup_relax()?;
        // Before the first tick: every refusal after this line is traced under its mode.
        self.trace_state();
        Ok(sum)
    }

    /// The latch's position check (CP-001 (b)): adopt the venue's positions, apply the
    /// reports that arrived meanwhile (the ledger refuses stale transitions, but a fill the
    /// venue's positions already hold may move ours a second time), then read the venue
    /// again: the latch may clear only when the two agree. A difference (a fill in between,
    /// or counted twice) is adopted again, at most [`POSITION_READS_MAX`] reads in all.
    fn settle_positions(&mut self) -> Result<bool, EngineError> {
        for _ in 0..POSITION_READS_MAX {
            let venue = self.venue_positions()?;
            let mut ours: Vec<(String, i64)> = self
                .positions
                .iter()
                .filter(|(_, q)| q.raw() != 0)
                .map(|(n, q)| (n.as_str().to_owned(), q.raw()))
                .collect();
            ours.sort_unstable();
            if venue.iter().map(|(n, q)| (n.as_str().to_owned(), *q)).eq(ours) {
                return Ok(true);
            }
            self.positions.clear();
            self.recon.pos_gen += 1;
            for (n, q) in venue {
                self.positions.insert(n, Qty::from_raw(q));
            }
            self.drain_reports();
        }
        tracing::warn!(run_id = %self.run_id, "reconcile: positions kept moving; the latch stays set");
        Ok(false)
    }

    /// The venue's non-zero positions, by instrument name.
    fn venue_positions(&mut self) -> Result<Vec<(InstrumentName, i64)>, EngineError> {
        self.reclaim_dispatch();
        let disp = self.disp.as_mut().ok_or(EngineError::Reconcile("not connected".into()))?;
        let mut out = Vec::new();
        for ccy in ["BTC", "ETH"] {
            for p in disp.positions(ccy, &mut self.reports)? {
                if let Some(n) = name_of(&p.instrument).filter(|_| p.size.raw != 0) {
                    out.push((n, p.size.raw));
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(out)
    }

    pub(super) fn startup_relax(&mut self) -> Result<(), EngineError> {
        if self.guard.cell().mode() == TradingMode::Active {
            return Ok(());
        }
        let Some(token) = self.operator_token.clone() else { return Ok(()) };
        // Unattended relax is a property of a simulated environment (DEV, PAPER: no real
        // orders). STAGING and LIVE, or a policy that did not load, wait for `stoic mode relax`.
        let simulated = self
            .policy
            .as_ref()
            .is_ok_and(|p| matches!(p.environment, Environment::Dev | Environment::Paper));
        if !simulated {
            println!(
                "mode: start-up relax skipped: not a simulated environment; `stoic mode relax` (run_id={})",
                self.run_id
            );
            return Ok(());
        }
        if self.guard.cell().mode() == TradingMode::Kill {
            // Every Kill reason unblocks by an operator (registry: MANUAL).
            println!(
                "mode: start-up relax skipped: Kill needs an operator (run_id={})",
                self.run_id
            );
            return Ok(());
        }
        if self.kill_persisted() {
            // A Kill from before the restart holds until an operator relaxes it.
            println!("mode: start-up relax skipped: Kill persisted (run_id={})", self.run_id);
            return Ok(());
        }
        let secret = OperatorSecret::from_token(token.as_bytes())
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        let auth = OperatorAuthenticated::verify(&secret, token.as_bytes(), "stoic-run-startup")
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        let reason = "automatic relax after a clean reconciliation (simulated environment)";
        let action = OperatorAction::relax(auth, TradingMode::Active, reason)
            .map_err(|e| EngineError::Reconcile(e.to_string()))?;
        let now = self.clock.now_ms();
        // The engine's measured inputs (capital stop, policy, groups, breaker, drift, ...).
        let inputs = self.policy_inputs(now);
        let outcome = match self.guard.operator_relax(action, &inputs) {
            Ok(rec) => {
                self.journal_operator_action(
                    OperatorActionKind::ModeRelax,
                    &rec.operator_id,
                    &rec.audit_line(),
                )?;
                println!("mode: {:?} -> {:?} (run_id={})", rec.from, rec.to, self.run_id);
                Ok(())
            }
            Err(e) => {
                println!("mode: relax refused: {e}");
                Ok(())
            }
        };
        self.record_mode(now);
        outcome
    }

    pub(super) fn adopt(&mut self, h: u64, o: &OrderReport, now: i64) -> Result<(), EngineError> {
        self.ack_if_needed(h, &o.order_id, now)?;
        if o.filled.raw > 0 {
            self.append_checked(
                now,
                &Record::PartiallyFilled { intent_hash: h, filled_qty: o.filled.raw, trade_id: "" },
            )?;
        }
        if let (Some(n), Some(e)) = (name_of(&o.instrument), self.wal.ledger().get(h)) {
            let price = instrument_of_canonical(&e.canonical).map_or(Price::from_raw(0), |_| {
                o.average_price.map_or(Price::from_raw(0), |p| Price::from_raw(p.raw))
            });
            let label = e.label.clone();
            self.live.insert_text(
                &label,
                LiveIntent {
                    intent_hash: h,
                    accepted: None,
                    instrument: n,
                    side: if o.buy { Side::Buy } else { Side::Sell },
                    price,
                    qty: o.amount.raw,
                },
            );
        }
        Ok(())
    }
}
