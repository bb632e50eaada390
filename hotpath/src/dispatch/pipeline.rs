//! The intent-processing function: gate chain → reserve → WAL append (every ready intent) →
//! ONE sync. What comes out is a batch of journaled intents plus the WAL's [`DurableSeq`]
//! proof, which is exactly what [`super::Dispatcher::send_batch`] demands.
//!
//! Ordering rules (DESIGN invariants 2, 3, 8), enforced here and observable through
//! [`PipelineEvent`]s:
//! - a rejected intent causes no side effect: no reservation, no WAL record, no token;
//! - a reservation only ever follows a `GateAccepted`;
//! - `WalAppended` follows `Reserved`; a failed append rolls the reservation back and rejects
//!   the intent with `RecordedBeforeDispatchFailed` (RiskState becomes `Degraded`);
//! - one `WalSynced` per batch, after every append and before anything is sent.
//! - **Risk-reducing intents while the WAL cannot append or sync** (invariant 6, capital
//!   supremacy): an intent the gates classified `Reduce`/`Close` whose record the WAL refused
//!   (I/O error, no space, full segment, poisoned writer, failed batch sync) keeps its
//!   reservation, gets an in-memory-only ledger entry (`Wal::note_unjournaled`,
//!   `journaled = false`) and comes out in [`BatchOutcome::unjournaled`] with an
//!   [`UnjournaledReduce`] token. That token can only be made here, only for a risk-reducing
//!   class and only after the WAL refused; it is the one thing
//!   [`super::Dispatcher::send_unjournaled_reduce`] accepts instead of a `DurableSeq`. An
//!   `Open` never gets one: it is refused with `RecordedBeforeDispatchFailed`.

use crate::domain::intent::OrderIntent;
use crate::domain::reason_codes::{RejectReasonCode, RiskState};
use crate::domain::units::Price;
use crate::gates::chain::{Accepted, GateChain, GateContext, Rejection};
use crate::gates::checks::EdgeInputs;
use crate::gates::market::BookView;
use crate::gates::positions::{ExposureBook, IntentClass};
use crate::gates::rate::OrderRateBucket;
use crate::strategy::IndexPrices;
use crate::wal::{DurableSeq, Record, Seq, Wal, WalError};

/// One observable step of the pipeline (for the ordering test, logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineEvent {
    /// The gate chain accepted the intent.
    GateAccepted {
        /// Intent hash.
        intent_hash: u64,
    },
    /// The gate chain refused the intent.
    GateRejected {
        /// Intent hash.
        intent_hash: u64,
        /// Reason.
        code: RejectReasonCode,
    },
    /// Pending exposure reserved.
    Reserved {
        /// Intent hash.
        intent_hash: u64,
    },
    /// `IntentRecorded` appended (not yet durable).
    WalAppended {
        /// Intent hash.
        intent_hash: u64,
        /// Record sequence number.
        seq: Seq,
    },
    /// The batch was made durable.
    WalSynced {
        /// Highest durable sequence number.
        durable: Seq,
    },
    /// The WAL refused the intent's record.
    WalFailed {
        /// Intent hash.
        intent_hash: u64,
    },
    /// Handed to the venue socket (emitted by the caller after `send_batch`).
    Sent {
        /// Intent hash.
        intent_hash: u64,
    },
    /// A risk-reducing intent the WAL refused got an in-memory-only ledger entry and an
    /// [`UnjournaledReduce`] token (follows its `WalFailed`).
    UnjournaledNoted {
        /// Intent hash.
        intent_hash: u64,
    },
    /// Handed to the venue socket through `send_unjournaled_reduce` (emitted by the caller).
    SentUnjournaled {
        /// Intent hash.
        intent_hash: u64,
    },
}

/// The edge model: estimated gross edge, fee and slippage of an intent.
pub type EdgeModel<'a> =
    &'a dyn Fn(&OrderIntent, Option<&BookView>, Option<Price>) -> Option<EdgeInputs>;

/// Per-batch context: everything the gates read that does not depend on the intent.
#[derive(Clone, Copy)]
pub struct BatchInputs<'a> {
    /// The shared part of the gate context (`book`, `index_price`, `position`, `portfolio`,
    /// `edge` and `order_rate` are filled in per intent by the pipeline).
    pub base: GateContext<'a>,
    /// Books of subscribed instruments.
    pub books: &'a [BookView],
    /// Index prices.
    pub index: IndexPrices,
    /// The edge model.
    pub edge: EdgeModel<'a>,
}

impl std::fmt::Debug for BatchInputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchInputs")
            .field("base", &self.base)
            .field("books", &self.books.len())
            .finish_non_exhaustive()
    }
}

/// An intent that passed the gates, is reserved and journaled.
#[derive(Debug, Clone, Copy)]
pub struct Staged {
    /// The intent.
    pub intent: OrderIntent,
    /// The gates' verdict (label, class, notional).
    pub accepted: Accepted,
    /// Sequence number of its `IntentRecorded` record.
    pub record_seq: Seq,
}

/// Permission to dispatch ONE risk-reducing intent whose record the WAL could not journal.
///
/// Unforgeable outside this module: its fields are private, it has no public constructor, and
/// it is neither `Clone` nor `Copy` (one token, one send). [`IntentPipeline::record_batch`]
/// makes one only when the gate chain classified the intent `Reduce`/`Close` AND the WAL
/// refused its `IntentRecorded` record (or the batch sync) with a non-caller error, after the
/// ledger noted it unjournaled.
///
/// ```compile_fail
/// // Outside the pipeline a token cannot be forged (private fields, no constructor).
/// let t = hotpath::dispatch::UnjournaledReduce {
///     intent_hash: 1,
///     class: hotpath::gates::positions::IntentClass::Open,
/// };
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct UnjournaledReduce {
    intent_hash: u64,
    class: IntentClass,
}

impl UnjournaledReduce {
    /// The only constructor (private to the pipeline): `None` for an `Open`.
    fn for_refused(intent_hash: u64, class: IntentClass) -> Option<Self> {
        class.is_risk_reducing().then_some(Self { intent_hash, class })
    }

    /// The intent this token was issued for.
    #[must_use]
    pub fn intent_hash(&self) -> u64 {
        self.intent_hash
    }

    /// The gates' class (always `Reduce` or `Close`).
    #[must_use]
    pub fn class(&self) -> IntentClass {
        self.class
    }

    /// Used up by the dispatcher (one token, one send).
    pub(super) fn consume(self) -> (u64, IntentClass) {
        (self.intent_hash, self.class)
    }
}

/// A risk-reducing intent that passed the gates and is reserved, but is NOT journaled: the
/// WAL refused it. Its ledger entry is in memory only (`journaled = false`).
#[derive(Debug)]
pub struct UnjournaledStaged {
    /// The intent.
    pub intent: OrderIntent,
    /// The gates' verdict (label, class, notional).
    pub accepted: Accepted,
    /// The WAL's error that made it unjournaled.
    pub wal_error: String,
    /// The permission `Dispatcher::send_unjournaled_reduce` demands.
    pub token: UnjournaledReduce,
}

/// Why an intent of the batch goes nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A gate refused it (no side effect).
    Gate(Rejection),
    /// Already in the ledger: the same decision was journaled before (local idempotency, NOOP).
    Duplicate,
    /// The WAL could not record it (or could not sync the batch): `RecordedBeforeDispatchFailed`.
    WalFailed {
        /// Always `RecordedBeforeDispatchFailed`.
        code: RejectReasonCode,
        /// The WAL's error.
        error: String,
    },
}

/// The pipeline's result for one batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Journaled intents, in order, ready for `send_batch` with `durable`.
    pub staged: Vec<Staged>,
    /// The proof covering every staged record (None when nothing was staged or the sync
    /// failed, in which case `staged` is empty).
    pub durable: Option<DurableSeq>,
    /// Refused intents, with why.
    pub refused: Vec<(OrderIntent, Refusal)>,
    /// Risk-reducing intents the WAL could not journal, still to be dispatched through
    /// `Dispatcher::send_unjournaled_reduce` (RiskState is `Degraded` when non-empty).
    pub unjournaled: Vec<UnjournaledStaged>,
}

impl BatchOutcome {
    /// An empty outcome whose vectors hold `n` intents each without growing.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self {
            staged: Vec::with_capacity(n),
            durable: None,
            refused: Vec::with_capacity(n),
            unjournaled: Vec::with_capacity(n),
        }
    }

    /// Empties it, keeping the vectors' capacity.
    pub fn clear(&mut self) {
        self.staged.clear();
        self.durable = None;
        self.refused.clear();
        self.unjournaled.clear();
    }
}

/// The pipeline's own state across batches.
#[derive(Debug, Clone, Copy)]
pub struct IntentPipeline {
    chain: GateChain,
    /// The order-rate bucket (only an accepted, journaled intent consumes a token).
    pub order_rate: OrderRateBucket,
    /// RiskState as the pipeline knows it (a WAL failure makes it `Degraded`).
    pub risk_state: RiskState,
}

impl IntentPipeline {
    /// A pipeline with a full order-rate bucket.
    #[must_use]
    pub fn new(order_rate: OrderRateBucket) -> Self {
        Self { chain: GateChain::new(), order_rate, risk_state: RiskState::Healthy }
    }

    /// Gates, reserves and journals `intents`, then syncs once. Sends nothing.
    pub fn record_batch(
        &mut self,
        wal: &mut Wal,
        exposure: &mut ExposureBook,
        intents: &[OrderIntent],
        inputs: &BatchInputs<'_>,
        events: &mut dyn FnMut(PipelineEvent),
    ) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        self.record_batch_into(wal, exposure, intents, inputs, events, &mut out);
        out
    }

    /// [`Self::record_batch`] into a reused outcome (cleared first): its vectors keep their
    /// capacity, so the hot loop allocates nothing here once they have grown to the largest
    /// batch (the engine sizes them at start-up).
    pub fn record_batch_into(
        &mut self,
        wal: &mut Wal,
        exposure: &mut ExposureBook,
        intents: &[OrderIntent],
        inputs: &BatchInputs<'_>,
        events: &mut dyn FnMut(PipelineEvent),
        out: &mut BatchOutcome,
    ) {
        out.clear();
        let ts = inputs.base.now_ms;
        for intent in intents {
            let h = intent.hash().value();
            if wal.ledger().contains(h) {
                out.refused.push((*intent, Refusal::Duplicate));
                continue;
            }
            let f = intent.fields();
            let name = f.instrument.name();
            let book = inputs.books.iter().find(|b| b.instrument == name);
            let index_price = inputs.index.for_currency(f.instrument.base_currency().as_str());
            let ctx = GateContext {
                book,
                index_price,
                position: exposure.view(name.as_str()),
                portfolio: exposure.portfolio(),
                edge: (inputs.edge)(intent, book, index_price),
                risk_state: if self.risk_state == RiskState::Healthy {
                    inputs.base.risk_state
                } else {
                    self.risk_state
                },
                order_rate: self.order_rate,
                ..inputs.base
            };
            let accepted = match self.chain.evaluate(intent, &ctx) {
                Ok(a) => a,
                Err(r) => {
                    events(PipelineEvent::GateRejected { intent_hash: h, code: r.code });
                    if r.sets_degraded() {
                        self.risk_state = RiskState::Degraded;
                    }
                    out.refused.push((*intent, Refusal::Gate(r)));
                    continue;
                }
            };
            events(PipelineEvent::GateAccepted { intent_hash: h });
            // What the reservation changes, to undo it if the WAL refuses (no clone of the
            // whole book: that allocated per intent).
            let before = exposure.undo_point(name);
            exposure.reserve(&accepted);
            events(PipelineEvent::Reserved { intent_hash: h });
            let rec = Record::IntentRecorded {
                intent_hash: h,
                label: accepted.label.as_str(),
                canonical: intent.canonical_bytes().as_bytes(),
            };
            match wal.append(ts, &rec) {
                Ok(seq) => {
                    events(PipelineEvent::WalAppended { intent_hash: h, seq });
                    self.order_rate = accepted.order_rate_after;
                    out.staged.push(Staged { intent: *intent, accepted, record_seq: seq });
                }
                Err(e) => {
                    events(PipelineEvent::WalFailed { intent_hash: h });
                    if !e.is_caller_error() {
                        self.risk_state = RiskState::Degraded;
                        // Capital supremacy: a risk-reducing intent is still attempted, with an
                        // in-memory-only ledger entry. An Open gets no token and is refused.
                        if let Some(token) = UnjournaledReduce::for_refused(h, accepted.class) {
                            // Not even an in-memory entry: refused below like an open;
                            // the caller traces it as `wal_failed` (no formatting here).
                            if wal.note_unjournaled(ts, &rec).is_ok() {
                                events(PipelineEvent::UnjournaledNoted { intent_hash: h });
                                self.order_rate = accepted.order_rate_after;
                                out.unjournaled.push(UnjournaledStaged {
                                    intent: *intent,
                                    accepted,
                                    wal_error: e.to_string(),
                                    token,
                                });
                                continue;
                            }
                        }
                    }
                    exposure.undo(before);
                    out.refused.push((*intent, wal_refusal(&e)));
                }
            }
        }
        if out.staged.is_empty() {
            return;
        }
        match wal.sync() {
            Ok(d) => {
                events(PipelineEvent::WalSynced { durable: d.seq() });
                out.durable = Some(d);
            }
            Err(e) => {
                // Nothing of this batch may be sent: its records are not known durable. They
                // stay in the ledger as `Recorded` (in doubt) and are resolved at the next start.
                // Risk-reducing ones are still attempted (capital supremacy): their ledger
                // entries are downgraded to unjournaled. If a record did reach the disk, the
                // restart finds it in doubt and resolves it by label (never a blind resend).
                self.risk_state = RiskState::Degraded;
                for s in out.staged.drain(..) {
                    let h = s.intent.hash().value();
                    events(PipelineEvent::WalFailed { intent_hash: h });
                    if let Some(token) = UnjournaledReduce::for_refused(h, s.accepted.class) {
                        if wal.mark_unjournaled(h) {
                            events(PipelineEvent::UnjournaledNoted { intent_hash: h });
                            out.unjournaled.push(UnjournaledStaged {
                                intent: s.intent,
                                accepted: s.accepted,
                                wal_error: e.to_string(),
                                token,
                            });
                            continue;
                        }
                    }
                    out.refused.push((s.intent, wal_refusal(&e)));
                }
            }
        }
    }
}

fn wal_refusal(e: &WalError) -> Refusal {
    Refusal::WalFailed {
        code: RejectReasonCode::RecordedBeforeDispatchFailed,
        error: e.to_string(),
    }
}

/// Checks the ordering rules over an event stream (one or more batches). Returns the first
/// violation found.
///
/// # Errors
/// A description of the violated rule.
pub fn check_event_order(events: &[PipelineEvent]) -> Result<(), String> {
    use std::collections::BTreeMap;
    #[derive(PartialEq, Eq, Clone, Copy, Debug)]
    enum St {
        Accepted,
        Rejected,
        Reserved,
        Appended,
        Durable,
        Sent,
        Failed,
        Unjournaled,
        SentUnjournaled,
    }
    let mut st: BTreeMap<u64, St> = BTreeMap::new();
    for (i, ev) in events.iter().enumerate() {
        let bad = |m: &str| Err(format!("event {i} ({ev:?}): {m}"));
        match *ev {
            PipelineEvent::GateAccepted { intent_hash } => {
                if st.contains_key(&intent_hash) {
                    return bad("gate evaluated twice");
                }
                st.insert(intent_hash, St::Accepted);
            }
            PipelineEvent::GateRejected { intent_hash, .. } => {
                if st.contains_key(&intent_hash) {
                    return bad("gate evaluated twice");
                }
                st.insert(intent_hash, St::Rejected);
            }
            PipelineEvent::Reserved { intent_hash } => {
                if st.get(&intent_hash) != Some(&St::Accepted) {
                    return bad("reservation without a preceding GateAccepted");
                }
                st.insert(intent_hash, St::Reserved);
            }
            PipelineEvent::WalAppended { intent_hash, .. } => {
                if st.get(&intent_hash) != Some(&St::Reserved) {
                    return bad("WAL append without a preceding reservation");
                }
                st.insert(intent_hash, St::Appended);
            }
            PipelineEvent::WalFailed { intent_hash } => {
                if !matches!(st.get(&intent_hash), Some(St::Reserved | St::Appended)) {
                    return bad("WAL failure for an intent that was not being recorded");
                }
                st.insert(intent_hash, St::Failed);
            }
            PipelineEvent::WalSynced { .. } => {
                for s in st.values_mut() {
                    if *s == St::Appended {
                        *s = St::Durable;
                    }
                }
            }
            PipelineEvent::Sent { intent_hash } => {
                if st.get(&intent_hash) != Some(&St::Durable) {
                    return bad("sent before its record was synced");
                }
                st.insert(intent_hash, St::Sent);
            }
            PipelineEvent::UnjournaledNoted { intent_hash } => {
                if st.get(&intent_hash) != Some(&St::Failed) {
                    return bad("unjournaled entry without a preceding WAL failure");
                }
                st.insert(intent_hash, St::Unjournaled);
            }
            PipelineEvent::SentUnjournaled { intent_hash } => {
                if st.get(&intent_hash) != Some(&St::Unjournaled) {
                    return bad("unjournaled send without an unjournaled ledger entry");
                }
                st.insert(intent_hash, St::SentUnjournaled);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::instrument::Instrument;
    use crate::domain::intent::{GroupId, IntentFields, OrderType, Side, StrategyId, TimeInForce};
    use crate::domain::metadata::InstrumentCache;
    use crate::domain::policy::Policy;
    use crate::domain::reason_codes::TradingMode;
    use crate::domain::units::{Qty, Usd};
    use crate::gates::chain::PolicySlot;
    use crate::gates::market::BookLevel;
    use crate::gates::positions::{PortfolioView, PositionView};
    use crate::wal::WalConfig;

    const NOW: i64 = 1_700_000_000_000;

    fn intent(tag: &[u8], order_type: OrderType) -> OrderIntent {
        let sid = StrategyId::new_checked("ordering").unwrap();
        OrderIntent::new(IntentFields {
            strategy_id: sid,
            group_id: GroupId::derive(&sid, tag),
            leg_index: 0,
            instrument: Instrument::parse("BTC-PERPETUAL").unwrap(),
            side: Side::Buy,
            order_type,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: false,
            reduce_only: false,
            linked_order_type: None,
            trigger_price: None,
            qty: Qty::from_f64_checked(10.0).unwrap(),
            limit_price: Some(Price::from_f64_checked(99_000.0).unwrap()),
            contracts: None,
            emergency_close: false,
        })
    }

    /// Runs one real batch (one refused, two accepted) through the pipeline with a real WAL
    /// and returns its events plus the `Sent` events a dispatcher would add.
    fn real_events() -> Vec<PipelineEvent> {
        let policy = Policy::load_from_path(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/policy.json"),
        );
        let policy = policy.unwrap();
        let mut cache = InstrumentCache::new();
        let listing = serde_json::json!([{"instrument_name":"BTC-PERPETUAL","kind":"future",
            "tick_size":0.5,"min_trade_amount":10,"contract_size":10,
            "expiration_timestamp":32503680000000_i64,"creation_timestamp":1,"is_active":true,
            "settlement_period":"perpetual","base_currency":"BTC","quote_currency":"USD",
            "settlement_currency":"BTC","counter_currency":"USD","instrument_type":"reversed",
            "option_type":null,"strike":null}]);
        cache.load_get_instruments(&listing, NOW).unwrap();
        let lvl = |p: f64| BookLevel {
            price: Price::from_f64_checked(p).unwrap(),
            qty: Qty::from_f64_checked(10_000.0).unwrap(),
        };
        let books = [BookView::from_levels(
            Instrument::parse("BTC-PERPETUAL").unwrap().name(),
            &[lvl(99_990.0)],
            &[lvl(100_010.0)],
            NOW,
            false,
        )];
        let edge = |_: &OrderIntent, _: Option<&BookView>, _: Option<Price>| {
            Some(EdgeInputs {
                gross_edge_usd: Usd::from_f64_checked(1.0).ok(),
                fee_usd: Usd::from_f64_checked(0.1).ok(),
                expected_slippage_usd: Some(Usd::from_raw(0)),
            })
        };
        let base = GateContext {
            now_ms: NOW,
            policy: PolicySlot::Loaded(&policy),
            instruments: &cache,
            book: None,
            index_price: None,
            position: PositionView::default(),
            portfolio: PortfolioView::default(),
            fee_model_updated_ms: Some(NOW),
            edge: None,
            risk_state: RiskState::Healthy,
            trading_mode: TradingMode::Active,
            open_permission_latched: false,
            order_rate: OrderRateBucket::full(20, NOW),
        };
        let inputs = BatchInputs {
            base,
            books: &books,
            index: IndexPrices { btc: Price::from_f64_checked(100_000.0).ok(), eth: None },
            edge: &edge,
        };
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default(), NOW).unwrap();
        let mut pipeline = IntentPipeline::new(base.order_rate);
        let mut exposure = ExposureBook::new();
        let mut events = Vec::new();
        let batch = [
            intent(b"a", OrderType::Limit),
            intent(b"m", OrderType::Market),
            intent(b"b", OrderType::Limit),
        ];
        let out = pipeline.record_batch(&mut wal, &mut exposure, &batch, &inputs, &mut |e| {
            events.push(e);
        });
        assert_eq!(out.staged.len(), 2, "{:?}", out.refused);
        assert_eq!(out.refused.len(), 1);
        let durable = out.durable.unwrap();
        for s in &out.staged {
            assert!(durable.covers(s.record_seq));
            events.push(PipelineEvent::Sent { intent_hash: s.intent.hash().value() });
        }
        events
    }

    #[test]
    fn test_gate_ordering_constraints() {
        let events = real_events();
        check_event_order(&events).unwrap();
        assert_eq!(
            events.iter().filter(|e| matches!(e, PipelineEvent::WalSynced { .. })).count(),
            1,
            "one sync per batch"
        );
        // Refactor-style violations, injected into the real stream, must each be caught.
        let pos = |f: &dyn Fn(&PipelineEvent) -> bool| events.iter().position(f).unwrap();
        // (a) dispatch moved before the sync (durable-before-send broken).
        let mut v = events.clone();
        let sent = v.remove(pos(&|e| matches!(e, PipelineEvent::Sent { .. })));
        let sync = pos(&|e| matches!(e, PipelineEvent::WalSynced { .. }));
        v.insert(sync, sent);
        assert!(check_event_order(&v).unwrap_err().contains("synced"));
        // (b) reservation moved before the gate (reject-before-side-effects broken).
        let mut v = events.clone();
        let acc = pos(&|e| matches!(e, PipelineEvent::GateAccepted { .. }));
        v.swap(acc, acc + 1);
        assert!(check_event_order(&v).is_err());
        // (c) a rejected intent that still reserves.
        let mut v = events.clone();
        let rej = pos(&|e| matches!(e, PipelineEvent::GateRejected { .. }));
        let PipelineEvent::GateRejected { intent_hash, .. } = v[rej] else { unreachable!() };
        v.insert(rej + 1, PipelineEvent::Reserved { intent_hash });
        assert!(check_event_order(&v).unwrap_err().contains("GateAccepted"));
        // (d) append without reservation.
        let mut v = events.clone();
        let res = pos(&|e| matches!(e, PipelineEvent::Reserved { .. }));
        v.remove(res);
        assert!(check_event_order(&v).is_err());
    }
}
