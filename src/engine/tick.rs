//! One strategy tick: decide, gate, journal (one sync per batch), dispatch.

use super::edge;
use super::{Engine, EngineError, LiveIntent, TradingBuffers};
use hotpath::dispatch::BatchInputs;
use hotpath::dispatch::{OutboundIntent, PipelineEvent, Refusal, SendOutcome};
use hotpath::domain::instrument::Instrument;
use hotpath::domain::units::{Price, Qty};
use hotpath::gates::chain::{GateContext, PolicySlot};
use hotpath::gates::market::BookView;
use hotpath::gates::positions::{ExposureBook, PortfolioView, PositionView};
use hotpath::strategy::{MarketSnapshot, OpenOrderView, PositionsSnapshot, StrategyAction};
use hotpath::trace::{TraceEvent, TraceKind};
use hotpath::wal::Record;

impl Engine {
    /// Risk-reducing intents the WAL refused (capital supremacy, DESIGN invariant 6): sent
    /// through the chokepoint's unjournaled entry; every ledger step of theirs is in memory
    /// only (`Wal::note_unjournaled`), traced as an alarm with the intent id.
    pub(super) fn send_unjournaled(
        &mut self,
        now: i64,
        batch: Vec<hotpath::dispatch::UnjournaledStaged>,
    ) -> Result<(), EngineError> {
        // Rare (the WAL is failing): sent from the gate thread, session reclaimed.
        self.reclaim_dispatch();
        for u in batch {
            let h = u.intent.hash().value();
            self.stats.wal_failures += 1;
            self.trace.push(TraceEvent::new(TraceKind::UnjournaledReduce, h, now));
            self.live.insert(u.accepted.label, LiveIntent::of(&u.intent, Some(u.accepted)));
            let Some(disp) = self.disp.as_mut() else { continue };
            let o = OutboundIntent {
                intent: &u.intent,
                label: u.accepted.label.as_str(),
                record_seq: 0,
            };
            match disp.send_unjournaled_reduce(&o, u.token) {
                Ok(_) => {
                    self.stats.intents += 1;
                    self.stats.sent += 1;
                    self.stats.unjournaled_sent += 1;
                    self.trace.push(TraceEvent::new(TraceKind::UnjournaledSent, h, now));
                    self.events.push(PipelineEvent::SentUnjournaled { intent_hash: h });
                    self.append_checked(now, &Record::Sent { intent_hash: h })?;
                }
                Err(e) if e.certainly_not_sent() => {
                    self.trace_send_failed(TraceKind::SendRefused, h, now, &e);
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: h,
                            reason: "unjournaled reduce: refused before the socket",
                        },
                    )?;
                    self.stats.abandoned += 1;
                    self.trace.push(TraceEvent::new(TraceKind::Abandoned, h, now));
                    self.live.remove(u.accepted.label.as_str());
                }
                Err(e) => self.trace_send_failed(TraceKind::SendInDoubt, h, now, &e),
            }
        }
        Ok(())
    }

    /// Rebuilds positions + pending exposure into `ex` in place (no allocation once every
    /// instrument has an entry).
    pub(super) fn exposure_into(&self, ex: &mut ExposureBook) {
        ex.reset_keep_entries();
        let mut gross: i64 = 0;
        for (n, q) in &self.positions {
            ex.set_position(*n, *q);
            let unit = Instrument::parse(n.as_str()).map(|i| i.amount_unit());
            if let Ok(unit) = unit {
                let idx = Instrument::parse(n.as_str())
                    .ok()
                    .and_then(|i| self.index.for_currency(i.base_currency().as_str()));
                if let Ok(Some(u)) = hotpath::domain::units::notional_usd(unit, *q, idx) {
                    gross = gross.saturating_add(u.raw());
                }
            }
        }
        ex.set_portfolio(PortfolioView {
            gross_notional_usd: hotpath::domain::units::Usd::from_raw(gross),
            daily_pnl_usd: self.daily_pnl.last().total_usd,
            ..PortfolioView::default()
        });
        for l in self.live.values() {
            if let Some(mut a) = l.accepted {
                let filled = self.wal.ledger().get(l.intent_hash).map_or(0, |e| e.filled_qty);
                let rest = l.qty - filled;
                if rest > 0 {
                    a.qty = Qty::from_raw(rest);
                    ex.reserve(&a);
                }
            }
        }
        self.groups.reserve_into(ex);
    }

    /// One strategy tick: decide, gate, journal (one sync), dispatch. The tick's buffers are
    /// reused (taken out of `self` for the tick so the borrow checker sees them apart).
    pub(super) fn tick(&mut self) -> Result<(), EngineError> {
        self.trace.mark_tick_start();
        let mut bufs = std::mem::take(&mut self.bufs);
        let r = self.tick_with(&mut bufs);
        self.bufs = bufs;
        r
    }

    fn tick_with(&mut self, bufs: &mut TradingBuffers) -> Result<(), EngineError> {
        let now = self.clock.now_ms();
        if let Some(index) = self.market.index() {
            self.index = index;
        }
        self.market.books_for_tick();
        self.stats.ticks += 1;
        self.exposure_into(&mut bufs.exposure);
        self.open_orders_into(&mut bufs.open);
        let Some(strategy) = self.strategy.as_mut() else { return Ok(()) };
        let market = MarketSnapshot {
            now_ms: now,
            instruments: &self.instruments,
            books: self.market.books(),
            index: self.index,
        };
        self.actions.clear();
        strategy.on_tick(
            &market,
            &PositionsSnapshot { exposure: &bufs.exposure, open_orders: &bufs.open },
            &mut self.actions,
        );
        self.stats.actions += self.actions.len() as u64;
        bufs.intents.clear();
        bufs.cancels.clear();
        for a in self.actions.drain() {
            match a {
                StrategyAction::Place(i) => bufs.intents.push(i),
                StrategyAction::Cancel(l) => bufs.cancels.push(l),
            }
        }
        self.execute(bufs, now)
    }

    /// The strategy's open orders (label order), with what is left of each, into `open`.
    pub(super) fn open_orders_into(&self, open: &mut Vec<OpenOrderView>) {
        open.clear();
        for (label, l) in self.live.iter() {
            let Some(lbl) = self.wal.ledger().by_label(label.as_str()) else { continue };
            open.push(OpenOrderView {
                label: *label,
                instrument: l.instrument,
                side: l.side,
                price: l.price,
                remaining: Qty::from_raw(l.qty - lbl.filled_qty),
            });
        }
    }

    /// Carries out one tick's actions (`bufs.intents`, `bufs.cancels`): cancels by label, then
    /// gate → reserve → WAL (one sync) → dispatch, against `bufs.exposure` and the books of
    /// `self.market`.
    pub(super) fn execute(
        &mut self,
        bufs: &mut TradingBuffers,
        now: i64,
    ) -> Result<(), EngineError> {
        if let Some(max) = self.max_intents {
            let room = max.saturating_sub(self.stats.intents);
            bufs.intents.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        for l in &bufs.cancels {
            let Some((instrument, h)) =
                self.live.get(l.as_str()).map(|live| (live.instrument, live.intent_hash))
            else {
                continue;
            };
            if self.queue_cancel(*l, instrument, h, now) {
                continue;
            }
            // No dispatch thread, or its ring is full: send it from here (a cancel only
            // reduces risk; it is never dropped).
            self.reclaim_dispatch();
            let Some(d) = self.disp.as_mut() else { continue };
            let r = d.cancel_by_label(l.as_str(), instrument.as_str()).map(|_| ());
            self.on_cancel_sent(h, now, r);
        }
        if self.groups.busy() {
            let books = self.market.books().to_vec();
            self.groups_tick(now, &books)?;
        }
        let (singles, groups) = super::groups::split_groups(std::mem::take(&mut bufs.intents));
        bufs.intents = singles;
        if !groups.is_empty() {
            let books = self.market.books().to_vec();
            self.tick_groups(groups, now, &books, &mut bufs.exposure)?;
        }
        self.brownout(&mut bufs.intents);
        if bufs.intents.is_empty() {
            return Ok(());
        }
        // A place batch needs a slot on the dispatch ring, checked before any side effect:
        // without one the tick's places are refused `IntentRingFull` (never dropped).
        let Ok(batch) = self.reserve_batch() else {
            self.stats.dispatch_ring_full += 1;
            let mode = self.guard.cell().mode();
            for i in bufs.intents.drain(..) {
                self.count_gate_refusal(&ring_full_rejection());
                self.trace_refusal(
                    i.hash().value(),
                    &Refusal::Gate(ring_full_rejection()),
                    mode,
                    now,
                );
            }
            return Ok(());
        };
        let intents = &bufs.intents;
        let ex = &mut bufs.exposure;
        let (taker, maker) = (self.taker_fee_bps, self.maker_fee_bps);
        let edge = move |i: &hotpath::domain::intent::OrderIntent,
                         b: Option<&BookView>,
                         idx: Option<Price>| {
            let fee_bps = if i.fields().post_only { maker } else { taker };
            edge::estimate(i, b, idx, fee_bps)
        };
        let inputs = BatchInputs {
            base: GateContext {
                now_ms: now,
                policy: PolicySlot::from_result(&self.policy),
                instruments: &self.instruments,
                book: None,
                index_price: None,
                position: PositionView::default(),
                portfolio: PortfolioView::default(),
                fee_model_updated_ms: Some(self.instruments_ms),
                edge: None,
                risk_state: self.pipeline.risk_state,
                trading_mode: self.guard.cell().mode(),
                open_permission_latched: self.guard.latch().is_latched(),
                order_rate: self.pipeline.order_rate,
            },
            books: self.market.books(),
            index: self.index,
            edge: &edge,
        };
        arm_wal_fault_on_reduce(&mut self.wal, intents);
        let events = &mut self.events;
        events.clear();
        let tick_started = self.trace.take_tick_start();
        let trace = &mut self.trace;
        // The last append of a batch is followed directly by its one sync: the gap between
        // the two callbacks is the sync's latency.
        let mut last_append = tick_started;
        let outcome = &mut bufs.outcome;
        self.pipeline.record_batch_into(
            &mut self.wal,
            ex,
            intents,
            &inputs,
            &mut |ev| {
                match ev {
                    PipelineEvent::WalAppended { intent_hash, seq } => {
                        last_append = std::time::Instant::now();
                        trace.push(
                            TraceEvent::new(TraceKind::WalRecorded, intent_hash, now)
                                .with_value(seq),
                        );
                    }
                    PipelineEvent::WalSynced { .. } => trace.push(
                        TraceEvent::new(TraceKind::WalSync, 0, now)
                            .with_value(super::trace::ns_since(last_append)),
                    ),
                    _ => {}
                }
                events.push(ev);
            },
            outcome,
        );
        let mode_seen_by_gates = inputs.base.trading_mode;
        for (i, why) in &outcome.refused {
            match why {
                Refusal::Gate(r) => self.count_gate_refusal(r),
                Refusal::Duplicate => {}
                Refusal::WalFailed { .. } => self.stats.wal_failures += 1,
            }
            self.trace_refusal(i.hash().value(), why, mode_seen_by_gates, now);
        }
        if !outcome.unjournaled.is_empty() {
            let unjournaled = std::mem::take(&mut outcome.unjournaled);
            self.send_unjournaled(now, unjournaled)?;
        }
        let Some(durable) = outcome.durable else {
            if let Some(b) = batch {
                self.recycle_batch(b);
            }
            return Ok(());
        };
        self.stats.intents += outcome.staged.len() as u64;
        for s in &outcome.staged {
            self.live.insert(s.accepted.label, LiveIntent::of(&s.intent, Some(s.accepted)));
        }
        if let Some(b) = batch {
            // Pinned: the dispatch thread writes the batch; its outcomes come back in order
            // with the execution reports (`dispatch_stage.rs`).
            match self.queue_batch(b, &mut outcome.staged, durable, now, tick_started) {
                Ok(()) => return Ok(()),
                // Reclaimed meanwhile (the unjournaled path above): send from here.
                Err(b) => self.recycle_batch(b),
            }
        }
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return Ok(()) };
        disp.send_staged(&outcome.staged, durable, &mut bufs.sends);
        let ns = super::trace::ns_since(tick_started);
        self.on_sends(&outcome.staged, &mut bufs.sends, now, ns)
    }

    /// Journals what happened to each intent of a written batch (`outcomes[i]` is
    /// `staged[i]`'s): `Sent`, or `Abandoned` when it certainly never left, or nothing yet
    /// when it may be on the wire (the reconnect resolves it). Drains `outcomes`.
    pub(super) fn on_sends(
        &mut self,
        staged: &[hotpath::dispatch::Staged],
        outcomes: &mut Vec<SendOutcome>,
        now: i64,
        tick_to_send_ns: u64,
    ) -> Result<(), EngineError> {
        for (s, r) in staged.iter().zip(outcomes.drain(..)) {
            let h = s.intent.hash().value();
            match r {
                SendOutcome::Sent { .. } => {
                    self.stats.sent += 1;
                    self.trace_sent(h, now, tick_to_send_ns);
                    self.append_checked(now, &Record::Sent { intent_hash: h })?;
                }
                SendOutcome::Failed(e) if e.certainly_not_sent() => {
                    self.trace_send_failed(TraceKind::SendRefused, h, now, &e);
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: h,
                            reason: "not sent: refused before the socket",
                        },
                    )?;
                    self.stats.abandoned += 1;
                    self.trace.push(TraceEvent::new(TraceKind::Abandoned, h, now));
                    self.live.remove(s.accepted.label.as_str());
                }
                SendOutcome::Failed(e) => {
                    // Maybe on the wire: stays in doubt until the reconnect resolves it.
                    self.trace_send_failed(TraceKind::SendInDoubt, h, now, &e);
                }
            }
        }
        Ok(())
    }

    /// Counts a cancel written (or traces why not).
    pub(super) fn on_cancel_sent(
        &mut self,
        intent_hash: u64,
        now: i64,
        result: Result<(), hotpath::dispatch::DispatcherError>,
    ) {
        match result {
            Ok(()) => self.stats.cancels_sent += 1,
            Err(e) => {
                let ev = TraceEvent::send_failed(TraceKind::CancelNotSent, intent_hash, now, &e);
                self.trace.push(ev);
            }
        }
    }

    /// Counts a gate refusal (totals, by code, the latest).
    pub(super) fn count_gate_refusal(&mut self, r: &hotpath::gates::chain::Rejection) {
        self.stats.gate_rejects += 1;
        self.last_gate_reject = Some((r.code, r.gate));
        let all = &hotpath::domain::reason_codes::RejectReasonCode::ALL;
        if let Some(at) = all.iter().position(|c| *c == r.code) {
            self.rejects_by_code[at] += 1;
        }
    }
}

/// The refusal of a place the dispatch ring had no room for. Reported as an order-rate
/// refusal: the ring's capacity is a bound on orders in flight.
pub(super) fn ring_full_rejection() -> hotpath::gates::chain::Rejection {
    hotpath::gates::chain::Rejection {
        code: hotpath::domain::reason_codes::RejectReasonCode::IntentRingFull,
        gate: hotpath::gates::chain::GateName::OrderRate,
        class: None,
        edge_policy_version: None,
        config_error: None,
    }
}

pub(super) fn label_of(text: &str) -> Option<hotpath::domain::label::Label> {
    use hotpath::domain::label::Label;
    let p = Label::parse(text).ok()?;
    let l = Label::compose(
        std::str::from_utf8(&p.sid8).ok()?,
        std::str::from_utf8(&p.gid12).ok()?,
        p.leg_index,
        std::str::from_utf8(&p.intent_hash.to_hex16()).ok()?,
    )
    .ok()?;
    (l.as_str() == text).then_some(l)
}

/// Test hook (feature `failpoints` only): with `STOIC_WAL_FAULT_ON_REDUCE` set, the first batch
/// holding a reduce-only intent finds the WAL failing its next append (I/O error, poisoned
/// from then on), so the engine-level test can watch the unjournaled-reduce path.
#[cfg(feature = "failpoints")]
pub(super) fn arm_wal_fault_on_reduce(
    wal: &mut hotpath::wal::Wal,
    intents: &[hotpath::domain::intent::OrderIntent],
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ARMED: AtomicBool = AtomicBool::new(false);
    if std::env::var_os("STOIC_WAL_FAULT_ON_REDUCE").is_some()
        && intents.iter().any(|i| i.fields().reduce_only)
        && !ARMED.swap(true, Ordering::Relaxed)
    {
        println!("wal: test fault armed: the next append fails");
        wal.set_faults(hotpath::wal::WalFaults { fail_next_append: true, ..Default::default() });
    }
}

#[cfg(not(feature = "failpoints"))]
pub(super) fn arm_wal_fault_on_reduce(
    _: &mut hotpath::wal::Wal,
    _: &[hotpath::domain::intent::OrderIntent],
) {
}
