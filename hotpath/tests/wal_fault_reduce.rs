//! Issue 4 / DESIGN invariants 2 and 6: when the WAL cannot append or sync, an OPEN is refused
//! with `RecordedBeforeDispatchFailed` and RiskState becomes `Degraded` (nothing reserved,
//! nothing in the ledger, nothing to send), while a risk-reducing intent is still handed to
//! dispatch through the explicit unjournaled path: an in-memory-only ledger entry
//! (`journaled = false`) and an `UnjournaledReduce` token, never a faked `DurableSeq`.

mod phase1_fixtures;

use hotpath::dispatch::{
    check_event_order, BatchInputs, BatchOutcome, IntentPipeline, PipelineEvent, Refusal,
};
use hotpath::domain::instrument::Instrument;
use hotpath::domain::intent::{OrderIntent, Side};
use hotpath::domain::metadata::InstrumentCache;
use hotpath::domain::policy::Policy;
use hotpath::domain::reason_codes::{RejectReasonCode, RiskState};
use hotpath::gates::market::BookView;
use hotpath::gates::positions::{ExposureBook, IntentClass};
use hotpath::wal::{Wal, WalConfig, WalFaults};
use phase1_fixtures::{cache, context, fields, option_book, policy, qty};

const OPTION: &str = "BTC-27DEC24-60000-C";

/// Long 1.0: a buy opens, a sell of 0.3 reduces, a reduce-only sell of the rest closes.
fn exposure() -> ExposureBook {
    let mut ex = ExposureBook::new();
    ex.set_position(Instrument::parse(OPTION).unwrap().name(), qty("1"));
    ex
}

fn open(tag: &[u8]) -> OrderIntent {
    OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.045", tag))
}

fn reduce(tag: &[u8]) -> OrderIntent {
    OrderIntent::new(fields(OPTION, Side::Sell, "0.3", "0.045", tag))
}

fn close(q: &str, tag: &[u8]) -> OrderIntent {
    let mut f = fields(OPTION, Side::Sell, q, "0.045", tag);
    f.reduce_only = true;
    OrderIntent::new(f)
}

struct Rig {
    _dir: tempfile::TempDir,
    wal: Wal,
    pipeline: IntentPipeline,
    exposure: ExposureBook,
    policy: Policy,
    cache: InstrumentCache,
    books: [BookView; 1],
}

impl Rig {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalConfig::default(), 1).unwrap();
        let policy = policy();
        let cache = cache();
        let order_rate = context(&policy, &cache, None).order_rate;
        Self {
            _dir: dir,
            wal,
            pipeline: IntentPipeline::new(order_rate),
            exposure: exposure(),
            policy,
            cache,
            books: [option_book()],
        }
    }

    fn run(&mut self, intents: &[OrderIntent], events: &mut Vec<PipelineEvent>) -> BatchOutcome {
        let base = context(&self.policy, &self.cache, Some(&self.books[0]));
        let edge_value = base.edge;
        let edge = move |_: &OrderIntent,
                         _: Option<&BookView>,
                         _: Option<hotpath::domain::units::Price>| edge_value;
        let inputs = BatchInputs {
            base,
            books: &self.books,
            index: hotpath::strategy::IndexPrices { btc: base.index_price, eth: None },
            edge: &edge,
        };
        self.pipeline.record_batch(&mut self.wal, &mut self.exposure, intents, &inputs, &mut |e| {
            events.push(e);
        })
    }
}

fn assert_wal_refused(out: &BatchOutcome, intent: &OrderIntent) {
    let h = intent.hash().value();
    let (_, why) = out.refused.iter().find(|(i, _)| i.hash().value() == h).expect("refused");
    assert!(
        matches!(
            why,
            Refusal::WalFailed { code: RejectReasonCode::RecordedBeforeDispatchFailed, .. }
        ),
        "{why:?}"
    );
    assert!(out.unjournaled.iter().all(|u| u.token.intent_hash() != h), "an open got a token");
    assert!(out.staged.iter().all(|s| s.intent.hash().value() != h));
}

#[test]
fn test_wal_append_failure_open_refused_reduce_dispatched_unjournaled() {
    let mut rig = Rig::new();
    // Healthy control: an open is journaled and made durable.
    let mut events = Vec::new();
    let ok = rig.run(&[open(b"healthy")], &mut events);
    assert_eq!(ok.staged.len(), 1);
    assert!(ok.durable.is_some());
    assert!(ok.unjournaled.is_empty());

    // The WAL fails the next append (I/O error; the writer is poisoned from then on).
    rig.wal.set_faults(WalFaults { fail_next_append: true, ..WalFaults::default() });
    let o = open(b"open-after-fault");
    let ledger_before = rig.wal.ledger().clone();
    let exposure_before = rig.exposure.clone();
    let rate_before = rig.pipeline.order_rate;
    let appended = rig.wal.appended_through();
    let out = rig.run(&[o], &mut events);
    assert_wal_refused(&out, &o);
    assert!(out.staged.is_empty() && out.durable.is_none() && out.unjournaled.is_empty());
    assert_eq!(rig.pipeline.risk_state, RiskState::Degraded);
    assert!(rig.wal.poisoned().is_some());
    assert_eq!(*rig.wal.ledger(), ledger_before, "nothing recorded for the open");
    assert_eq!(rig.exposure, exposure_before, "reservation rolled back");
    assert_eq!(rig.pipeline.order_rate, rate_before, "no order-rate token consumed");
    assert_eq!(rig.wal.appended_through(), appended);

    // The WAL is poisoned; a reduce and a close are still handed to dispatch, unjournaled.
    // Another open in the same batch gets nothing (gate or WAL refusal, never a token).
    let (r, c, o2) = (reduce(b"reduce"), close("0.7", b"close"), open(b"open-2"));
    let out = rig.run(&[r, o2, c], &mut events);
    assert!(out.staged.is_empty() && out.durable.is_none(), "{out:?}");
    assert_eq!(out.unjournaled.len(), 2, "{:?}", out.refused);
    for (u, want, class) in [
        (&out.unjournaled[0], r, IntentClass::Reduce),
        (&out.unjournaled[1], c, IntentClass::Close),
    ] {
        assert_eq!(u.intent, want);
        assert_eq!(u.token.intent_hash(), want.hash().value());
        assert_eq!(u.token.class(), class);
        assert_eq!(u.accepted.class, class);
        let e = rig.wal.ledger().get(want.hash().value()).expect("in the ledger");
        assert!(!e.journaled, "marked unjournaled");
        assert_eq!(e.recorded_seq, 0);
        assert_eq!(e.label, u.accepted.label.as_str());
    }
    assert!(out.refused.iter().any(|(i, _)| *i == o2));
    assert!(out.unjournaled.iter().all(|u| u.intent != o2));
    assert!(!rig.wal.ledger().contains(o2.hash().value()));
    assert_eq!(rig.wal.appended_through(), appended, "nothing reached the WAL");
    // A dispatcher would now emit `SentUnjournaled` for each; the event order must hold.
    for u in &out.unjournaled {
        events.push(PipelineEvent::SentUnjournaled { intent_hash: u.token.intent_hash() });
    }
    check_event_order(&events).unwrap();
    // An unjournaled send without the unjournaled ledger step is caught.
    let mut bad = events.clone();
    bad.push(PipelineEvent::SentUnjournaled { intent_hash: o2.hash().value() });
    assert!(check_event_order(&bad).is_err());
}

#[test]
fn test_wal_fault_reduce_first_then_sync_failure() {
    // A reduce that itself hits the append failure is still dispatched.
    let mut rig = Rig::new();
    rig.wal.set_faults(WalFaults { fail_next_append: true, ..WalFaults::default() });
    let r = reduce(b"first");
    let mut events = Vec::new();
    let out = rig.run(&[r], &mut events);
    assert_eq!(out.unjournaled.len(), 1);
    assert_eq!(rig.pipeline.risk_state, RiskState::Degraded);
    assert!(!rig.wal.ledger().get(r.hash().value()).unwrap().journaled);
    check_event_order(&events).unwrap();

    // Sync failure: both were appended, neither is durable. The open is refused; the reduce
    // is downgraded to unjournaled and still handed to dispatch.
    let mut rig = Rig::new();
    rig.wal.set_faults(WalFaults { fail_next_sync: true, ..WalFaults::default() });
    let (o, r) = (open(b"sync-open"), reduce(b"sync-reduce"));
    let mut events = Vec::new();
    let out = rig.run(&[o, r], &mut events);
    assert!(out.staged.is_empty() && out.durable.is_none());
    assert_wal_refused(&out, &o);
    assert_eq!(out.unjournaled.len(), 1);
    assert_eq!(out.unjournaled[0].intent, r);
    assert_eq!(rig.pipeline.risk_state, RiskState::Degraded);
    assert!(!rig.wal.ledger().get(r.hash().value()).unwrap().journaled);
    check_event_order(&events).unwrap();
}

/// Negative: an Open never obtains the unjournaled token, whatever the WAL fault, and in every
/// position of a batch. (The token has private fields and no public constructor; see the
/// `compile_fail` example on `UnjournaledReduce`.)
#[test]
fn test_open_never_gets_unjournaled_token() {
    let faults = [
        WalFaults { fail_next_append: true, ..WalFaults::default() },
        WalFaults { fail_next_sync: true, ..WalFaults::default() },
    ];
    for (k, f) in faults.into_iter().enumerate() {
        for shape in 0..3u8 {
            let mut rig = Rig::new();
            rig.wal.set_faults(f);
            let tag = |s: &str| format!("{k}-{shape}-{s}").into_bytes();
            let o = open(&tag("o"));
            let batch: Vec<OrderIntent> = match shape {
                0 => vec![o],
                1 => vec![reduce(&tag("r")), o],
                _ => vec![o, close("1", &tag("c")), open(&tag("o2"))],
            };
            let mut events = Vec::new();
            let out = rig.run(&batch, &mut events);
            assert_eq!(rig.pipeline.risk_state, RiskState::Degraded);
            assert!(out.durable.is_none() && out.staged.is_empty());
            assert_eq!(out.unjournaled.len(), usize::from(shape > 0), "{k}/{shape}: the reducer");
            for u in &out.unjournaled {
                assert!(u.token.class().is_risk_reducing(), "{k}/{shape}: {u:?}");
                assert!(u.accepted.class.is_risk_reducing());
            }
            for i in batch.iter().filter(|i| i.fields().side == Side::Buy) {
                assert!(out.refused.iter().any(|(x, _)| x == i), "{k}/{shape}: open not refused");
                assert!(out.unjournaled.iter().all(|u| u.intent != *i));
                let in_ledger = rig.wal.ledger().get(i.hash().value());
                assert!(
                    in_ledger.is_none_or(|e| e.journaled),
                    "{k}/{shape}: open noted unjournaled"
                );
            }
            check_event_order(&events).unwrap();
        }
    }
}
