//! The engine's deterministic emergency close (contract B §3.1; rulings 1 and 7; DESIGN
//! invariant 6): cancel every open order, then up to
//! [`hotpath::emergency::CLOSE_ATTEMPTS_MAX`] rounds of
//! reduce-only IOC limit closes on what the venue still reports, priced through the touch with
//! a doubling, slippage-bounded buffer (`hotpath::emergency::plan_emergency_close`), then a
//! perpetual hedge for any option still exposed.
//!
//! Every order takes the one road every order takes: gate chain (Kill lets an intent through
//! only when it is flagged emergency-close and classified risk-reducing) → WAL record → one
//! sync → `Dispatcher::send_batch` with the durable proof; when the WAL cannot append, the
//! pipeline's unjournaled-reduce token and `send_unjournaled_reduce`. The venue's positions
//! (not the engine's) decide what to close each round. With the rate-limit breaker open,
//! every request of the run (queries, cancel-all, orders) is paid from the containment
//! [`CreditReserve`] and let past the breaker by dispatch; a spent reserve stops the run with
//! `RateLimitBrownout` rather than borrowing from anything else.
//!
//! The run blocks the engine loop (no strategy tick in between), so nothing new can be
//! decided while it works; it is bounded: three rounds of at most [`ROUND_WAIT`] each, plus
//! one hedge round.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{edge, Engine, EngineError, LiveIntent};
use hotpath::dispatch::{BatchInputs, OutboundIntent, PipelineEvent, Refusal, SendOutcome};
use hotpath::domain::instrument::{Instrument, InstrumentKind, InstrumentName};
use hotpath::domain::intent::{GroupId, IntentFields, OrderIntent, Side, StrategyId};
use hotpath::domain::label::Label;
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::domain::units::{Price, Qty};
use hotpath::emergency::{
    plan_close_order, plan_emergency_close, select_touch, CloseIdentity, CreditReserve,
    EmergencyConfig, EmergencyMarket, ExposedPosition, L1Ticker, PriceInputs,
    L2_BOOK_SNAPSHOT_MAX_AGE_MS,
};
use hotpath::gates::chain::{GateContext, PolicySlot};
use hotpath::gates::hedge::{gate_hedges, DeltaInputs};
use hotpath::gates::market::BookView;
use hotpath::gates::positions::{ExposureBook, PortfolioView, PositionView};
use hotpath::mode::ModePermissions;
use hotpath::strategy::IndexPrices;
use hotpath::trace::{TraceEvent, TraceKind};
use hotpath::venue::conn::ConnError;
use hotpath::venue::messages::{Message, ResultPayload};
use hotpath::venue::methods;
use hotpath::wal::{OperatorActionKind, Record};

/// Longest wait for one round's IOC orders to reach a terminal state.
pub const ROUND_WAIT: Duration = Duration::from_secs(3);
/// The strategy id on every emergency order's label.
pub const EMERGENCY_STRATEGY_ID: &str = "emergency";
/// Currencies whose positions the run reads (the instruments this engine trades).
const CURRENCIES: [&str; 2] = ["BTC", "ETH"];
/// Longest wait for one ticker reply (the L1 price fallback).
const TICKER_WAIT: Duration = Duration::from_secs(2);
/// Longest wait of one close round for a price source (book or ticker) of an exposed
/// instrument that has none (see `Engine::find_prices`).
pub const PRICE_WAIT: Duration = Duration::from_millis(1_500);
/// Ticker requests during that wait, at most one per instrument per this period (the book
/// is read continuously; the ticker costs a request).
const PRICE_WAIT_TICKER_EVERY: Duration = Duration::from_millis(300);

/// What one emergency-close run did (the `AtomicNakedEvent`-shaped summary, B §3.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloseOutcome {
    /// Close rounds used (0 when nothing was exposed).
    pub rounds: u8,
    /// Venue positions before (instrument, signed size in 1e-8 amount units).
    pub before: Vec<(String, i64)>,
    /// Venue positions still open after the closes and the hedge.
    pub residual: Vec<(String, i64)>,
    /// Labels of every order sent, in order.
    pub sent: Vec<String>,
    /// Orders that could not be planned or were refused, and why.
    pub refused: Vec<(String, String)>,
    /// Whether a hedge order was sent.
    pub hedge_used: bool,
    /// `flat` / `closed` / `emergency_close_exhausted` / `hedge_fallback`.
    pub cause: &'static str,
    /// Why the run stopped early (venue unreachable, reserve spent, planning refused): then
    /// `residual` is not known to be empty, whatever it says.
    pub error: Option<String>,
}

impl CloseOutcome {
    /// Whether the venue was read after the run and reported nothing exposed.
    #[must_use]
    pub fn flat(&self) -> bool {
        self.error.is_none() && self.residual.is_empty()
    }
}

impl CloseOutcome {
    /// One line for logs and error replies.
    #[must_use]
    pub fn describe(&self) -> String {
        let list = |v: &[(String, i64)]| {
            v.iter().map(|(n, q)| format!("{n}:{}", *q as f64 / 1e8)).collect::<Vec<_>>().join(",")
        };
        format!(
            "cause={} rounds={} sent={} hedge_used={} before=[{}] residual=[{}] refused=[{}] error={}",
            self.cause,
            self.rounds,
            self.sent.len(),
            self.hedge_used,
            list(&self.before),
            list(&self.residual),
            self.refused.iter().map(|(a, b)| format!("{a}: {b}")).collect::<Vec<_>>().join("; "),
            self.error.as_deref().unwrap_or("-")
        )
    }
}

/// The planner's view of the engine's market: instrument metadata, the live books, and the
/// tickers fetched for exposed instruments without a fresh book.
struct EngineMarket<'a> {
    instruments: &'a InstrumentCache,
    books: &'a [BookView],
    tickers: &'a BTreeMap<InstrumentName, L1Ticker>,
}

impl EmergencyMarket for EngineMarket<'_> {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.instruments.get(instrument)
    }

    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        PriceInputs {
            book: self.books.iter().find(|b| b.instrument == instrument).copied(),
            ticker: self.tickers.get(&instrument).copied(),
        }
    }
}

/// A venue position the run works on, with the venue's delta (for the hedge).
#[derive(Debug, Clone, Copy)]
struct Exposure {
    position: ExposedPosition,
    delta: Option<f64>,
}

/// Whether a ticker alone prices a close (fresh, both sides present, not crossed). The venue
/// reports an empty side as price 0: a ticker taken right after an IOC swept that side is no
/// source, and the round must wait for the requote rather than be planned with it.
fn ticker_prices(name: InstrumentName, ticker: &L1Ticker, now_ms: i64) -> bool {
    let only_ticker = PriceInputs { book: None, ticker: Some(*ticker) };
    select_touch(name, &only_ticker, now_ms, L2_BOOK_SNAPSHOT_MAX_AGE_MS).is_ok()
}

fn as_pairs(v: &[Exposure]) -> Vec<(String, i64)> {
    v.iter()
        .map(|e| (e.position.instrument.as_str().to_owned(), e.position.position.raw()))
        .collect()
}

impl Engine {
    /// Runs the emergency close now, journaled as an `OperatorAction` first (a WAL that
    /// cannot append does not stop it: capital supremacy). Never fails: what it could not do
    /// is in the outcome (`residual`, `refused`).
    pub fn emergency_close(&mut self, who: &str, reason: &str) -> CloseOutcome {
        let started = Instant::now();
        if let Err(e) =
            self.journal_operator_action(OperatorActionKind::EmergencyClose, who, reason)
        {
            tracing::error!(run_id = %self.run_id, error = %e, "emergency close not journaled; running it anyway (capital supremacy)");
        }
        self.reclaim_dispatch();
        trip_breaker_for_test(self.disp.as_deref_mut(), self.transport_clock.now_ms());
        let mut credits = CreditReserve::new(self.disp.as_mut().is_some_and(|d| d.breaker_open()));
        let mut out = CloseOutcome { cause: "flat", ..CloseOutcome::default() };
        match self.emergency_rounds(&mut credits, &mut out) {
            Ok(()) => {}
            Err(e) => out.error = Some(e.to_string()),
        }
        self.reclaim_dispatch();
        if let Some(d) = self.disp.as_mut() {
            d.revoke_reserved();
        }
        println!(
            "emergency close by {who}: {} reserve_drawn={} elapsed_ms={} (run_id={})",
            out.describe(),
            credits.drawn,
            started.elapsed().as_millis(),
            self.run_id
        );
        out
    }

    fn emergency_rounds(
        &mut self,
        credits: &mut CreditReserve,
        out: &mut CloseOutcome,
    ) -> Result<(), EngineError> {
        let started_ms = self.clock.now_ms();
        let sid = StrategyId::new_checked(EMERGENCY_STRATEGY_ID)
            .map_err(|e| EngineError::Reconcile(format!("emergency strategy id: {e}")))?;
        let cfg = EmergencyConfig::default();
        let mut positions = self.venue_exposure(credits)?;
        out.before = as_pairs(&positions);
        if positions.is_empty() {
            // Nothing to close, but open orders could still add exposure: the planner's
            // round-0 cancel-all never runs, so do it here.
            self.emergency_cancel_all(credits);
        }
        for attempt in 0..cfg.close_attempts_max {
            if positions.is_empty() {
                break;
            }
            self.refresh_market();
            let mode = self.guard.cell().mode();
            let permissions = ModePermissions::with_latch(mode, self.guard.latch().is_latched());
            let identity = round_identity(&sid, started_ms, attempt);
            let tickers = self.prepare_market(&positions, credits);
            let exposed: Vec<ExposedPosition> = positions.iter().map(|e| e.position).collect();
            let books = self.book_views();
            let market =
                EngineMarket { instruments: &self.instruments, books: &books, tickers: &tickers };
            let plan = plan_emergency_close(
                &exposed,
                &market,
                permissions,
                mode,
                credits,
                attempt,
                &cfg,
                self.clock.now_ms(),
                &identity,
            )
            .map_err(|e| EngineError::Reconcile(format!("emergency plan: {e}")))?;
            out.rounds = attempt + 1;
            out.cause = "closed";
            if plan.cancel_all {
                self.emergency_cancel_all(credits);
            }
            out.refused.extend(
                plan.blocked.iter().map(|(n, code)| (n.as_str().to_owned(), format!("{code:?}"))),
            );
            let intents: Vec<OrderIntent> = plan.orders.iter().map(|c| c.intent).collect();
            let sent = self.dispatch_emergency(&intents, &exposed, credits, out)?;
            self.await_terminal(&sent);
            positions = self.venue_exposure(credits)?;
        }
        if !positions.is_empty() && out.rounds > 0 {
            out.cause = "emergency_close_exhausted";
            let hedges = self.emergency_hedge(&sid, started_ms, &positions, credits, out)?;
            if !hedges.is_empty() {
                self.await_terminal(&hedges);
                positions = self.venue_exposure(credits)?;
            }
        }
        out.residual = as_pairs(&positions);
        Ok(())
    }

    /// Reads market data for a moment so the books the planner prices off are fresh (the
    /// run blocks the loop that normally does this).
    fn refresh_market(&mut self) {
        let until = Instant::now() + Duration::from_millis(60);
        while Instant::now() < until {
            self.absorb_market();
            if self.poll_exec(Duration::from_millis(10)).is_err() {
                break;
            }
        }
    }

    /// Makes every exposed instrument plannable: metadata the engine did not load at start
    /// (it loads futures; an adopted option position has none) is fetched per currency and
    /// kind, and a ticker is fetched for each instrument whose book does not price a close
    /// (stale, gapped, one-sided or crossed: B §3.1 price source 2, AT-937). What cannot be had
    /// is left out: the planner then reports `InstrumentMetadataMissing` /
    /// `EmergencyCloseNoPrice` for it (fail closed, never a guess).
    fn prepare_market(
        &mut self,
        positions: &[Exposure],
        credits: &mut CreditReserve,
    ) -> BTreeMap<InstrumentName, L1Ticker> {
        let mut listings: Vec<(String, &'static str)> = positions
            .iter()
            .filter(|e| self.instruments.get(e.position.instrument.as_str()).is_none())
            .map(|e| {
                let kind = match e.position.instrument.kind() {
                    InstrumentKind::Option => "option",
                    _ => "future",
                };
                (e.position.instrument.base_currency().as_str().to_owned(), kind)
            })
            .collect();
        listings.sort_unstable();
        listings.dedup();
        for (ccy, kind) in listings {
            self.reclaim_dispatch();
            let Some(disp) = self.disp.as_mut() else { break };
            if disp.grant_reserved(credits, 1).is_err() {
                break;
            }
            match disp.instruments_json(&ccy, Some(kind), &mut self.reports) {
                Ok(json) => {
                    if let Err(e) =
                        self.instruments.load_get_instruments(&json, self.clock.now_ms())
                    {
                        tracing::error!(run_id = %self.run_id, %ccy, kind, error = %e, "emergency close: instrument listing unusable");
                    }
                }
                Err(e) => {
                    tracing::error!(run_id = %self.run_id, %ccy, kind, error = %e, "emergency close: instrument listing not fetched");
                }
            }
        }
        self.drain_reports();
        let mut tickers = BTreeMap::new();
        let mut unpriced: Vec<InstrumentName> =
            positions.iter().map(|e| e.position.instrument.name()).collect();
        self.find_prices(&mut unpriced, &mut tickers);
        tickers
    }

    /// Finds a price source for each of `unpriced` (emptied as they are found): a usable
    /// book, else a ticker that prices a close. What has neither is waited for, at most
    /// [`PRICE_WAIT`]: a book the previous round's IOC emptied on one side (the ticker then
    /// shows that side as 0) is normally requoted within a few hundred ms, and a round planned
    /// before that would spend its attempt on `EmergencyCloseNoPrice` (three rounds ~70 ms
    /// apart used to run out before the liquidity came back, leaving the position for the
    /// operator). Bounded, so containment stays bounded; what is still unpriced is refused by
    /// the planner as before.
    fn find_prices(
        &mut self,
        unpriced: &mut Vec<InstrumentName>,
        tickers: &mut BTreeMap<InstrumentName, L1Ticker>,
    ) {
        let deadline = Instant::now() + PRICE_WAIT;
        let mut next_ticker = Instant::now();
        loop {
            let ask_tickers = Instant::now() >= next_ticker;
            if ask_tickers {
                next_ticker = Instant::now() + PRICE_WAIT_TICKER_EVERY;
            }
            unpriced.retain(|&name| {
                if self.book_usable(name) {
                    return false;
                }
                let fetched = ask_tickers.then(|| self.fetch_ticker(name)).flatten();
                match fetched.filter(|t| ticker_prices(name, t, self.clock.now_ms())) {
                    Some(t) => {
                        tickers.insert(name, t);
                        false
                    }
                    None => true,
                }
            });
            if unpriced.is_empty() || Instant::now() >= deadline {
                return;
            }
            self.refresh_market();
        }
    }

    /// Whether the book alone prices a close (priority 1 of the B §3.1 table: fresh, not
    /// gapped, both sides, not crossed). A fresh book with an empty side or crossed (as a
    /// cancel-all can leave the engine's view for a moment) is no source either: then the
    /// ticker is fetched, rather than a round planned with no price.
    fn book_usable(&self, name: InstrumentName) -> bool {
        let now = self.clock.now_ms();
        self.market.view(name).is_some_and(|b| {
            let only_book = PriceInputs { book: Some(*b), ticker: None };
            select_touch(name, &only_book, now, L2_BOOK_SNAPSHOT_MAX_AGE_MS).is_ok()
        })
    }

    /// `public/ticker` on a public session of its own (not the trading session: its breaker
    /// and credits are the trading session's business; the market-data session belongs to the
    /// feed thread). Opened on first use and kept for later rounds.
    fn fetch_ticker(&mut self, name: InstrumentName) -> Option<L1Ticker> {
        if self.ticker_md.as_ref().is_none_or(hotpath::venue::conn::Connection::is_closed) {
            let cfg = hotpath::venue::conn::ConnConfig::new(&self.opts_url);
            match hotpath::venue::conn::Connection::connect(
                &cfg,
                std::sync::Arc::clone(&self.transport_clock),
            ) {
                Ok(c) => self.ticker_md = Some(c),
                Err(e) => {
                    tracing::warn!(run_id = %self.run_id, error = %e, "emergency close: no public session for tickers");
                    return None;
                }
            }
        }
        let md = self.ticker_md.as_mut()?;
        let reply = md.call(
            methods::TICKER,
            |b| {
                b.str("instrument_name", name.as_str());
            },
            TICKER_WAIT,
            |m| match m {
                Message::Response(r) => match &r.result {
                    ResultPayload::Ticker(t) => match (t.best_bid_price, t.best_ask_price) {
                        (Some(bid), Some(ask)) => Ok(L1Ticker {
                            instrument: name,
                            best_bid: Price::from_raw(bid.raw),
                            best_ask: Price::from_raw(ask.raw),
                            ts_ms: t.timestamp,
                        }),
                        _ => Err(ConnError::UnexpectedReply),
                    },
                    _ => Err(ConnError::UnexpectedReply),
                },
                _ => Err(ConnError::UnexpectedReply),
            },
            &mut |_| {},
        );
        match reply {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(run_id = %self.run_id, instrument = name.as_str(), error = %e, "emergency close: no ticker");
                None
            }
        }
    }

    /// The venue's non-zero positions, paid from the reserve when the breaker is open.
    fn venue_exposure(
        &mut self,
        credits: &mut CreditReserve,
    ) -> Result<Vec<Exposure>, EngineError> {
        let mut out = Vec::new();
        for ccy in CURRENCIES {
            self.reclaim_dispatch();
            let disp = self.disp.as_mut().ok_or(EngineError::Reconcile("not connected".into()))?;
            disp.grant_reserved(credits, 1)
                .map_err(|code| EngineError::Reconcile(format!("{code:?}")))?;
            for p in disp.positions(ccy, &mut self.reports)? {
                let Ok(instrument) = Instrument::parse(&p.instrument) else {
                    tracing::warn!(instrument = %p.instrument, "emergency close: unparsable instrument skipped");
                    continue;
                };
                out.push(Exposure {
                    position: ExposedPosition { instrument, position: Qty::from_raw(p.size.raw) },
                    delta: p.delta,
                });
            }
        }
        self.drain_reports();
        out.sort_by_key(|e| e.position.instrument.name());
        Ok(out)
    }

    /// Cancels every open order of the account (the first step of containment), keeping the
    /// cancel reports for the ledger. A failure does not stop the closes: they cannot add risk.
    fn emergency_cancel_all(&mut self, credits: &mut CreditReserve) {
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return };
        if let Err(code) = disp.grant_reserved(credits, 1) {
            tracing::error!(run_id = %self.run_id, ?code, "emergency cancel-all: reserve spent");
            return;
        }
        if let Err(e) = disp.cancel_all_reporting(&mut self.reports) {
            tracing::error!(run_id = %self.run_id, error = %e, "emergency cancel-all failed; closing anyway");
        }
        self.drain_reports();
    }

    /// Gate → WAL (one sync) → send, exactly the tick's road; returns the intent hashes that
    /// reached the socket (or may have).
    fn dispatch_emergency(
        &mut self,
        intents: &[OrderIntent],
        positions: &[ExposedPosition],
        credits: &mut CreditReserve,
        out: &mut CloseOutcome,
    ) -> Result<Vec<u64>, EngineError> {
        if intents.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let books = self.book_views();
        let mut ex = ExposureBook::new();
        for p in positions {
            ex.set_position(p.instrument.name(), p.position);
        }
        let taker = self.taker_fee_bps;
        let edge_model = move |i: &OrderIntent, b: Option<&BookView>, idx: Option<Price>| {
            edge::estimate(i, b, idx, taker)
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
            books: &books,
            index: self.index,
            edge: &edge_model,
        };
        super::tick::arm_wal_fault_on_reduce(&mut self.wal, intents);
        let events = &mut self.events;
        events.clear();
        let mut outcome =
            self.pipeline.record_batch(&mut self.wal, &mut ex, intents, &inputs, &mut |ev| {
                events.push(ev);
            });
        let mode_seen_by_gates = inputs.base.trading_mode;
        for (i, why) in &outcome.refused {
            let what = match why {
                Refusal::Gate(r) => format!("{:?} ({})", r.code, r.gate.as_str()),
                Refusal::Duplicate => "duplicate of a journaled intent".into(),
                Refusal::WalFailed { error, .. } => {
                    format!("RecordedBeforeDispatchFailed: {error}")
                }
            };
            self.trace_refusal(i.hash().value(), why, mode_seen_by_gates, now);
            out.refused.push((i.fields().instrument.as_str().to_owned(), what));
        }
        let mut hashes = Vec::new();
        let unjournaled = std::mem::take(&mut outcome.unjournaled);
        if !unjournaled.is_empty() {
            self.grant(credits, unjournaled.len());
            for u in &unjournaled {
                hashes.push(u.intent.hash().value());
                out.sent.push(u.accepted.label.as_str().to_owned());
            }
            self.send_unjournaled(now, unjournaled)?;
        }
        let Some(durable) = outcome.durable else { return Ok(hashes) };
        self.stats.intents += outcome.staged.len() as u64;
        for s in &outcome.staged {
            self.live.insert(s.accepted.label, LiveIntent::of(&s.intent, Some(s.accepted)));
        }
        self.grant(credits, outcome.staged.len());
        let batch: Vec<OutboundIntent<'_>> = outcome
            .staged
            .iter()
            .map(|s| OutboundIntent {
                intent: &s.intent,
                label: s.accepted.label.as_str(),
                record_seq: s.record_seq,
            })
            .collect();
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return Ok(hashes) };
        let results = disp.send_batch(&batch, durable);
        for (s, r) in outcome.staged.iter().zip(results) {
            let h = s.intent.hash().value();
            let label = s.accepted.label.as_str();
            match r {
                SendOutcome::Sent { .. } => {
                    self.stats.sent += 1;
                    self.trace_sent(h, now, 0); // operator-driven: not a tick-to-send sample
                    self.events.push(PipelineEvent::Sent { intent_hash: h });
                    self.append_checked(now, &Record::Sent { intent_hash: h })?;
                    hashes.push(h);
                    out.sent.push(label.to_owned());
                }
                SendOutcome::Failed(e) if e.certainly_not_sent() => {
                    self.trace_send_failed(TraceKind::SendRefused, h, now, &e);
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: h,
                            reason: "emergency close: refused before the socket",
                        },
                    )?;
                    self.stats.abandoned += 1;
                    self.trace.push(TraceEvent::new(TraceKind::Abandoned, h, now));
                    self.live.remove(label);
                    out.refused
                        .push((s.intent.fields().instrument.as_str().to_owned(), e.to_string()));
                }
                SendOutcome::Failed(e) => {
                    self.trace_send_failed(TraceKind::SendInDoubt, h, now, &e);
                    hashes.push(h);
                }
            }
        }
        Ok(hashes)
    }

    /// Lets `n` requests past an open breaker, paid from the reserve (logged when spent: the
    /// sends then fail before the socket and are abandoned, never retried blindly).
    fn grant(&mut self, credits: &mut CreditReserve, n: usize) {
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return };
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if let Err(code) = disp.grant_reserved(credits, n) {
            tracing::error!(run_id = %self.run_id, ?code, "emergency close: credit reserve spent");
        }
    }

    /// Polls until every intent in `hashes` is terminal in the ledger, or [`ROUND_WAIT`]
    /// (at least one poll turn, so reports already on the wire land).
    fn await_terminal(&mut self, hashes: &[u64]) {
        let deadline = Instant::now() + ROUND_WAIT;
        let mut turns = 0;
        while Instant::now() < deadline {
            let done = hashes
                .iter()
                .all(|h| self.wal.ledger().get(*h).is_none_or(|e| e.state.is_terminal()));
            if done && turns > 0 {
                break;
            }
            turns += 1;
            self.absorb_market();
            if self.poll_exec(Duration::from_millis(20)).is_err() {
                break;
            }
        }
    }

    /// Hedge fallback (B §3.1 step 3): for each option still exposed, an IOC order in its
    /// currency's perpetual sized to the venue-reported delta (USD amount = |delta| × index),
    /// priced like the last close round. A hedge opens in the perpetual, so the per-instrument
    /// gate chain would call it an open and refuse it in ReduceOnly/Kill; it goes through the
    /// hedge gate instead ([`Self::dispatch_hedges`]), which lets it through in every mode
    /// exactly when it shrinks the currency's |portfolio delta| computed from the venue's
    /// positions and the pending orders — never from the planner's claim that it hedges.
    fn emergency_hedge(
        &mut self,
        sid: &StrategyId,
        started_ms: i64,
        residual: &[Exposure],
        credits: &mut CreditReserve,
        out: &mut CloseOutcome,
    ) -> Result<Vec<u64>, EngineError> {
        let cfg = EmergencyConfig::default();
        let identity = round_identity(sid, started_ms, cfg.close_attempts_max);
        let perps: Vec<Exposure> = residual
            .iter()
            .filter(|e| e.position.instrument.kind() == InstrumentKind::Option)
            .filter_map(|e| {
                let perp = format!("{}-PERPETUAL", e.position.instrument.base_currency().as_str());
                let instrument = Instrument::parse(&perp).ok()?;
                Some(Exposure {
                    position: ExposedPosition { instrument, position: Qty::from_raw(0) },
                    delta: None,
                })
            })
            .collect();
        let tickers = self.prepare_market(&perps, credits);
        let books = self.book_views();
        let index = self.hedge_index(&books, &tickers);
        let mut hedges = Vec::new();
        for e in residual {
            if e.position.instrument.kind() != InstrumentKind::Option {
                continue;
            }
            let ccy = e.position.instrument.base_currency();
            let perp = format!("{}-PERPETUAL", ccy.as_str());
            let (Ok(perp), Some(delta), Some(index)) =
                (Instrument::parse(&perp), e.delta, index.for_currency(ccy.as_str()))
            else {
                out.refused.push((
                    e.position.instrument.as_str().to_owned(),
                    "hedge: no perpetual, delta or index price".into(),
                ));
                continue;
            };
            let usd = delta.abs() * index.to_f64_lossy();
            let Ok(qty) = Qty::from_f64_checked(usd) else { continue };
            // The position the hedge would flatten if it existed: the planner then prices
            // the side that neutralises the delta (a positive delta is sold).
            let hedge_pos = ExposedPosition {
                instrument: perp,
                position: if delta > 0.0 { qty } else { qty.neg() },
            };
            let market =
                EngineMarket { instruments: &self.instruments, books: &books, tickers: &tickers };
            let planned = plan_close_order(
                &hedge_pos,
                market.meta(perp.as_str()),
                &market.prices(perp.name()),
                cfg.close_attempts_max.saturating_sub(1),
                &cfg,
                self.clock.now_ms(),
                &identity,
                u8::try_from(hedges.len()).unwrap_or(u8::MAX),
            )
            // A hedge opens in the perpetual, where the venue's reduce_only flag would refuse
            // it; it stays flagged emergency-close.
            .map(|i| OrderIntent::new(IntentFields { reduce_only: false, ..*i.fields() }));
            match planned {
                Ok(i) => hedges.push(i),
                Err(code) => out.refused.push((perp.as_str().to_owned(), hedge_code(code))),
            }
        }
        if hedges.is_empty() {
            return Ok(Vec::new());
        }
        let sent = self.dispatch_hedges(&hedges, residual, index, credits, out)?;
        if !sent.is_empty() {
            out.hedge_used = true;
            out.cause = "hedge_fallback";
        }
        Ok(sent)
    }

    /// Index prices for the hedge: the feed's latest, else the last the strategy tick saw,
    /// else (per currency) the mid of the currency's perpetual from its book or the ticker the
    /// run fetched — the perpetual tracks its index closely, and the hedge only needs its
    /// size in USD and the gate's delta, both of which a mid gives to well within a step.
    fn hedge_index(
        &self,
        books: &[BookView],
        tickers: &BTreeMap<InstrumentName, L1Ticker>,
    ) -> IndexPrices {
        let feed = self.market.index().unwrap_or_default();
        let mut ix =
            IndexPrices { btc: feed.btc.or(self.index.btc), eth: feed.eth.or(self.index.eth) };
        for (ccy, slot) in [("BTC", &mut ix.btc), ("ETH", &mut ix.eth)] {
            if slot.is_some() {
                continue;
            }
            let Ok(perp) = Instrument::parse(&format!("{ccy}-PERPETUAL")) else { continue };
            let name = perp.name();
            let from_book = books
                .iter()
                .find(|b| b.instrument == name && !b.gapped)
                .and_then(|b| Some((b.best_bid()?.price.raw(), b.best_ask()?.price.raw())));
            let from_ticker = tickers.get(&name).map(|t| (t.best_bid.raw(), t.best_ask.raw()));
            if let Some((bid, ask)) = from_book.or(from_ticker).filter(|(b, a)| *b > 0 && *a >= *b)
            {
                *slot = Some(Price::from_raw(bid / 2 + ask / 2));
            }
        }
        ix
    }

    /// The hedge fallback's road to the venue: hedge gate (`gate_hedges`, one set per
    /// currency, passed twice: on the positions the venue reported in `residual`, and on those
    /// plus every live order's remaining quantity as pending exposure — the hedge must shrink
    /// |delta| either way) → `IntentRecorded` → one sync → `send_batch` with the durable proof. A hedge the gate refuses is recorded in `out.refused` and never
    /// journaled; a WAL that cannot record it keeps it off the wire (a hedge opens in its own
    /// instrument, so the unjournaled-reduce path, which forces `reduce_only`, cannot carry it).
    fn dispatch_hedges(
        &mut self,
        hedges: &[OrderIntent],
        residual: &[Exposure],
        index: IndexPrices,
        credits: &mut CreditReserve,
        out: &mut CloseOutcome,
    ) -> Result<Vec<u64>, EngineError> {
        let now = self.clock.now_ms();
        let mode = self.guard.cell().mode();
        let books = self.book_views();
        // The venue's positions, and the same plus pending exposure (every live order's
        // remaining quantity as if it filled), by instrument.
        let mut held: BTreeMap<InstrumentName, (Instrument, i64)> = BTreeMap::new();
        for e in residual {
            let slot =
                held.entry(e.position.instrument.name()).or_insert((e.position.instrument, 0));
            slot.1 = slot.1.saturating_add(e.position.position.raw());
        }
        let venue_only: Vec<(Instrument, Qty)> =
            held.values().map(|(i, q)| (*i, Qty::from_raw(*q))).collect();
        for l in self.live.values() {
            let Ok(instrument) = Instrument::parse(l.instrument.as_str()) else { continue };
            let filled = self.wal.ledger().get(l.intent_hash).map_or(0, |e| e.filled_qty);
            let remaining = l.qty.saturating_sub(filled).max(0);
            let signed = if matches!(l.side, Side::Buy) { remaining } else { -remaining };
            let slot = held.entry(l.instrument).or_insert((instrument, 0));
            slot.1 = slot.1.saturating_add(signed);
        }
        let positions: Vec<(Instrument, Qty)> =
            held.values().map(|(i, q)| (*i, Qty::from_raw(*q))).collect();
        let d = DeltaInputs { now_ms: now, index, books: &books };
        let mut passed: Vec<OrderIntent> = Vec::new();
        let mut currencies: Vec<String> = hedges
            .iter()
            .map(|h| h.fields().instrument.base_currency().as_str().to_owned())
            .collect();
        currencies.sort_unstable();
        currencies.dedup();
        for ccy in currencies {
            let set: Vec<OrderIntent> = hedges
                .iter()
                .filter(|h| h.fields().instrument.base_currency().as_str() == ccy.as_str())
                .copied()
                .collect();
            // It must shrink |delta| whether or not the pending orders fill.
            let verdict = gate_hedges(&set, mode, venue_only.iter().map(|(i, q)| (i, *q)), &d)
                .and_then(|_| gate_hedges(&set, mode, positions.iter().map(|(i, q)| (i, *q)), &d));
            match verdict {
                Ok(v) => {
                    println!(
                        "emergency close: hedge gate passed {ccy} x{} in {mode:?}: delta_before={} delta_after={} (run_id={})",
                        set.len(),
                        v.delta_before,
                        v.delta_after,
                        self.run_id
                    );
                    passed.extend(set);
                }
                Err(code) => {
                    for h in &set {
                        out.refused.push((
                            h.fields().instrument.as_str().to_owned(),
                            format!("hedge gate: {code:?}"),
                        ));
                    }
                }
            }
        }
        let mut recorded: Vec<(OrderIntent, Label)> = Vec::new();
        for intent in passed {
            let Ok(label) = Label::for_intent(&intent) else {
                out.refused.push((
                    intent.fields().instrument.as_str().to_owned(),
                    "hedge: no label".into(),
                ));
                continue;
            };
            let rec = Record::IntentRecorded {
                intent_hash: intent.hash().value(),
                label: label.as_str(),
                canonical: intent.canonical_bytes().as_bytes(),
            };
            match self.wal.append(now, &rec) {
                Ok(_) => recorded.push((intent, label)),
                Err(e) => out.refused.push((
                    intent.fields().instrument.as_str().to_owned(),
                    format!("hedge: RecordedBeforeDispatchFailed: {e}"),
                )),
            }
        }
        if recorded.is_empty() {
            return Ok(Vec::new());
        }
        let durable = match self.wal.sync() {
            Ok(d) => d,
            Err(e) => {
                for (intent, _) in &recorded {
                    let _ = self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: intent.hash().value(),
                            reason: "emergency hedge: WAL sync failed",
                        },
                    );
                    out.refused.push((
                        intent.fields().instrument.as_str().to_owned(),
                        format!("hedge: WAL sync failed: {e}"),
                    ));
                }
                return Ok(Vec::new());
            }
        };
        self.stats.intents += recorded.len() as u64;
        for (intent, label) in &recorded {
            self.live.insert(*label, LiveIntent::of(intent, None));
        }
        self.grant(credits, recorded.len());
        let batch: Vec<OutboundIntent<'_>> = recorded
            .iter()
            .map(|(intent, label)| OutboundIntent {
                intent,
                label: label.as_str(),
                record_seq: durable.seq(),
            })
            .collect();
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return Ok(Vec::new()) };
        let results = disp.send_batch(&batch, durable);
        let mut hashes = Vec::new();
        for ((intent, label), r) in recorded.iter().zip(results) {
            let h = intent.hash().value();
            match r {
                SendOutcome::Sent { .. } => {
                    self.stats.sent += 1;
                    self.trace_sent(h, now, 0);
                    self.append_checked(now, &Record::Sent { intent_hash: h })?;
                    hashes.push(h);
                    out.sent.push(label.as_str().to_owned());
                }
                SendOutcome::Failed(e) if e.certainly_not_sent() => {
                    self.trace_send_failed(TraceKind::SendRefused, h, now, &e);
                    self.append_checked(
                        now,
                        &Record::Abandoned {
                            intent_hash: h,
                            reason: "emergency hedge: refused before the socket",
                        },
                    )?;
                    self.stats.abandoned += 1;
                    self.live.remove(label.as_str());
                    out.refused
                        .push((intent.fields().instrument.as_str().to_owned(), e.to_string()));
                }
                SendOutcome::Failed(e) => {
                    self.trace_send_failed(TraceKind::SendInDoubt, h, now, &e);
                    hashes.push(h);
                }
            }
        }
        Ok(hashes)
    }

    /// Whether the venue's positions equal the engine's (the check an operator relax to
    /// Active needs before RiskState may return to Healthy).
    ///
    /// # Errors
    /// The venue query's.
    pub(super) fn positions_match_venue(&mut self) -> Result<bool, EngineError> {
        let mut credits = CreditReserve::new(false);
        let venue = self.venue_exposure(&mut credits)?;
        let ours: Vec<(String, i64)> = self
            .positions
            .iter()
            .filter(|(_, q)| q.raw() != 0)
            .map(|(n, q)| (n.as_str().to_owned(), q.raw()))
            .collect();
        Ok(as_pairs(&venue) == ours)
    }
}

/// Test hook (feature `failpoints` only): with `STOIC_TRIP_BREAKER_BEFORE_CLOSE` set, the
/// trading session's rate-limit breaker is tripped as the emergency close starts, as a 10028
/// would, so the engine-level test watches the close run on the credit reserve.
#[cfg(feature = "failpoints")]
fn trip_breaker_for_test(disp: Option<&mut hotpath::dispatch::Dispatcher>, now_ms: i64) {
    if let (Some(d), Some(_)) = (disp, std::env::var_os("STOIC_TRIP_BREAKER_BEFORE_CLOSE")) {
        println!("emergency close: test fault: rate-limit breaker tripped");
        d.rate_limit_breaker().trip(now_ms);
    }
}

#[cfg(not(feature = "failpoints"))]
fn trip_breaker_for_test(_: Option<&mut hotpath::dispatch::Dispatcher>, _: i64) {}

fn hedge_code(code: RejectReasonCode) -> String {
    format!("hedge: {code:?}")
}

/// One group id per run and round, so a retry at the same price and size is a new intent
/// (not a duplicate of the journaled one) while the same run replayed gives the same ids.
fn round_identity(sid: &StrategyId, started_ms: i64, round: u8) -> CloseIdentity {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&started_ms.to_le_bytes());
    key[8] = round;
    CloseIdentity { strategy_id: *sid, group_id: GroupId::derive(sid, &key) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_of_one_run_get_distinct_groups_and_replays_the_same() {
        let sid = StrategyId::new_checked(EMERGENCY_STRATEGY_ID).unwrap();
        let a = round_identity(&sid, 1_700_000_000_000, 0);
        let b = round_identity(&sid, 1_700_000_000_000, 1);
        assert_ne!(a.group_id, b.group_id);
        assert_eq!(a, round_identity(&sid, 1_700_000_000_000, 0));
        assert_ne!(a.group_id, round_identity(&sid, 1_700_000_000_001, 0).group_id);
    }

    /// A ticker taken right after an IOC swept one side (the venue reports it as price 0)
    /// is no price source: the round waits for a requote instead of planning with it (the
    /// CI failure where three rounds ~70 ms apart were all refused `EmergencyCloseNoPrice`
    /// on a perpetual whose ask side the previous round had taken).
    #[test]
    fn ticker_with_an_empty_side_or_stale_does_not_price_a_close() {
        let name = hotpath::domain::instrument::Instrument::parse("BTC-PERPETUAL").unwrap().name();
        let px = |p: f64| Price::from_f64_checked(p).unwrap();
        let two_sided = L1Ticker {
            instrument: name,
            best_bid: px(99_988.0),
            best_ask: px(99_990.5),
            ts_ms: 10_000,
        };
        assert!(ticker_prices(name, &two_sided, 10_200));
        let swept = L1Ticker { best_ask: Price::from_raw(0), ..two_sided };
        assert!(!ticker_prices(name, &swept, 10_200));
        assert!(!ticker_prices(name, &two_sided, 10_000 + L2_BOOK_SNAPSHOT_MAX_AGE_MS + 1));
    }
}
