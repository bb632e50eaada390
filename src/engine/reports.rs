//! Execution reports from the venue → WAL life-cycle records, ledger, positions, live orders.

use std::time::Duration;

use super::{name_of, Engine, EngineError};
use hotpath::dispatch::ExecReport;
use hotpath::domain::units::Qty;
use hotpath::trace::{TraceEvent, TraceKind};
use hotpath::venue::messages::OrderState;
use hotpath::wal::{IntentState, Record};

impl Engine {
    pub(super) fn ack_if_needed(
        &mut self,
        h: u64,
        order_id: &str,
        now: i64,
    ) -> Result<(), EngineError> {
        if let Some((st, _, has_id)) = self.entry_state(h) {
            if (st.rank() < IntentState::Acknowledged.rank() || !has_id)
                && self.append_checked(
                    now,
                    &Record::Acknowledged { intent_hash: h, venue_order_id: order_id },
                )?
            {
                self.stats.acked += 1;
                self.trace.push(TraceEvent::new(TraceKind::VenueAck, h, now));
            }
        }
        Ok(())
    }

    /// Applies one execution report to the WAL, the ledger, positions and live orders.
    pub(super) fn apply_report(&mut self, r: &ExecReport) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        let Some(e) = self.wal.ledger().by_label(r.label()) else { return Ok(()) };
        let h = e.intent_hash;
        let before_filled = e.filled_qty;
        match r {
            ExecReport::Fill(f) => {
                self.stats.fills += 1;
                self.trace.push(
                    TraceEvent::new(TraceKind::VenueFill, h, now)
                        .with_value(u64::try_from(f.amount.raw).unwrap_or(0)),
                );
                let sign: i128 = if f.buy { -1 } else { 1 };
                self.cash_flow +=
                    sign * i128::from(f.price.raw) * i128::from(f.amount.raw) / 100_000_000;
                self.note_fill_pnl(f);
            }
            ExecReport::Rejected { code, reason, .. } => {
                if self.append_checked(
                    now,
                    &Record::Rejected { intent_hash: h, code: *code, reason },
                )? {
                    self.stats.venue_rejects += 1;
                    self.trace.push(
                        TraceEvent::new(TraceKind::VenueReject, h, now)
                            .with_venue_code(i64::from(*code)),
                    );
                }
                self.live.remove(r.label());
            }
            ExecReport::CancelRefused { code, .. } => {
                self.trace.push(
                    TraceEvent::new(TraceKind::CancelRefused, h, now)
                        .with_venue_code(i64::from(*code)),
                );
            }
            ExecReport::Order(o) => {
                self.ack_if_needed(h, &o.order_id, now)?;
                let filled = o.filled.raw;
                let applied = match o.state {
                    OrderState::Open | OrderState::Untriggered | OrderState::Triggered => {
                        if filled > before_filled {
                            self.append_checked(
                                now,
                                &Record::PartiallyFilled {
                                    intent_hash: h,
                                    filled_qty: filled,
                                    trade_id: "",
                                },
                            )?
                        } else {
                            false
                        }
                    }
                    OrderState::Filled => {
                        let ok = self.append_checked(
                            now,
                            &Record::Filled { intent_hash: h, filled_qty: filled, trade_id: "" },
                        )?;
                        if ok {
                            self.stats.filled += 1;
                        }
                        ok
                    }
                    OrderState::Cancelled | OrderState::Archive => {
                        let ok = self.append_checked(
                            now,
                            &Record::Cancelled {
                                intent_hash: h,
                                filled_qty: filled.max(before_filled),
                            },
                        )?;
                        if ok {
                            self.stats.cancelled += 1;
                            self.trace.push(
                                TraceEvent::new(TraceKind::VenueCancel, h, now)
                                    .with_value(u64::try_from(filled).unwrap_or(0)),
                            );
                        }
                        ok
                    }
                    OrderState::Rejected => {
                        let ok = self.append_checked(
                            now,
                            &Record::Rejected { intent_hash: h, code: 0, reason: "rejected" },
                        )?;
                        if ok {
                            self.stats.venue_rejects += 1;
                            self.trace.push(TraceEvent::new(TraceKind::VenueReject, h, now));
                        }
                        ok
                    }
                };
                if applied && filled > before_filled {
                    if let Some(n) = name_of(&o.instrument) {
                        let delta = filled - before_filled;
                        let p = self.positions.entry(n).or_insert(Qty::from_raw(0));
                        let signed = if o.buy { delta } else { -delta };
                        *p = Qty::from_raw(p.raw().saturating_add(signed));
                        self.recon.pos_gen += 1;
                    }
                }
                let terminal = self.wal.ledger().get(h).is_none_or(|e| e.state.is_terminal());
                if terminal {
                    self.live.remove(r.label());
                }
            }
        }
        Ok(())
    }

    pub(super) fn drain_reports(&mut self) {
        let reports = std::mem::take(&mut self.reports);
        for r in &reports {
            if !self.observe_report(r) {
                continue;
            }
            if let Err(e) = self.apply_report(r).and_then(|()| self.group_on_report(r)) {
                let h = self.wal.ledger().by_label(r.label()).map_or(0, |e| e.intent_hash);
                let now = self.clock.now_ms();
                self.trace.push(TraceEvent::new(TraceKind::ReportNotJournaled, h, now));
                tracing::error!(run_id = %self.run_id, error = %e, "could not journal an execution report");
            }
        }
        let mut reports = reports;
        reports.clear();
        if self.reports.is_empty() {
            self.reports = reports;
        }
    }

    /// Polls the trading session (or, while the dispatch thread holds it, the outputs it
    /// sent back) and applies the execution reports.
    pub(super) fn poll_exec(&mut self, wait: Duration) -> Result<(), EngineError> {
        if let Some(e) = self.dispatch_failure.take() {
            return Err(e.into());
        }
        if self.dispatch_lent() {
            return self.poll_dispatch_stage(wait);
        }
        if let Some(d) = self.disp.as_mut() {
            d.poll(wait, &mut self.reports)?;
        }
        self.drain_reports();
        Ok(())
    }
}
