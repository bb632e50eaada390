//! Reject before side effects (DESIGN invariant 3; AT-930: every rejection carries a registry
//! code). A rejected intent leaves positions, pending exposure, the order-rate bucket, the
//! outbound order list and the WAL stand-in exactly as they were.

mod phase1_fixtures;

use std::fmt::Write as _;

use hotpath::domain::intent::{OrderIntent, OrderType, Side};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta, MetadataError};
use hotpath::domain::policy::Policy;
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::gates::PolicySlot;
use phase1_fixtures::{cache, context, fields, option_book, policy, qty, Ledger};

const OPTION: &str = "BTC-27DEC24-60000-C";

/// A named mutation of an intent and the code preflight must answer with.
type PreflightCase =
    (&'static str, fn(&mut hotpath::domain::intent::IntentFields), RejectReasonCode);

struct Case {
    name: &'static str,
    stage: &'static str,
    code: RejectReasonCode,
    untouched: bool,
}

/// A ledger with history: a held position and one accepted pending order, so "unchanged" is
/// checked against non-trivial state.
fn seeded_ledger(policy: &Policy, cache: &InstrumentCache) -> Ledger {
    let book = option_book();
    let ctx = context(policy, cache, Some(&book));
    let mut ledger = Ledger::new(ctx.order_rate);
    ledger.exposure.set_position(
        hotpath::domain::instrument::Instrument::parse(OPTION).unwrap().name(),
        qty("1"),
    );
    let seed = OrderIntent::new(fields(OPTION, Side::Buy, "0.2", "0.045", b"seed"));
    ledger.submit(&seed, &ctx).expect("seed order accepted");
    ledger
}

#[test]
fn test_rejected_intent_has_no_side_effects() {
    let policy = policy();
    let cache = cache();
    let book = option_book();
    let mut cases: Vec<Case> = Vec::new();

    // 1. Missing config: the loader failed, the chain refuses.
    {
        let mut doc: serde_json::Value =
            serde_json::from_str(&phase1_fixtures::policy_text()).unwrap();
        doc.as_object_mut().unwrap().remove("risk_limits");
        let broken = Policy::from_value(&doc);
        let mut ledger = seeded_ledger(&policy, &cache);
        let before = ledger.clone();
        let mut ctx = context(&policy, &cache, Some(&book));
        ctx.policy = PolicySlot::from_result(&broken);
        let intent = OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.0455", b"a"));
        let code = ledger.submit(&intent, &ctx).unwrap_err().code;
        assert_eq!(code, RejectReasonCode::ConfigMissingOrInvalid);
        cases.push(Case {
            name: "policy.json without risk_limits",
            stage: "gate chain (config)",
            code,
            untouched: ledger == before,
        });
    }

    // 2. Invalid instrument metadata: the decoder refuses it, so the cache never holds it and
    //    the intent is refused for missing metadata.
    {
        let mut bad = phase1_fixtures::instruments_json()[0].clone();
        bad["instrument_name"] = serde_json::Value::from("BTC-27DEC24-70000-C");
        bad["tick_size"] = serde_json::Value::from(0.0);
        assert_eq!(
            InstrumentMeta::from_venue_json(&bad, 0),
            Err(MetadataError::NotPositive("tick_size"))
        );
        let mut partial_cache = cache.clone();
        let listing =
            serde_json::json!({ "result": [phase1_fixtures::instruments_json()[1].clone(), bad] });
        assert!(partial_cache.load_get_instruments(&listing, 0).is_err());
        assert_eq!(partial_cache, cache, "a failed listing leaves the cache unchanged");
        let mut ledger = seeded_ledger(&policy, &cache);
        let before = ledger.clone();
        let ctx = context(&policy, &partial_cache, Some(&book));
        let intent =
            OrderIntent::new(fields("BTC-27DEC24-70000-C", Side::Buy, "0.3", "0.0455", b"b"));
        let code = ledger.submit(&intent, &ctx).unwrap_err().code;
        assert_eq!(code, RejectReasonCode::InstrumentMetadataMissing);
        cases.push(Case {
            name: "instrument metadata with tick_size 0",
            stage: "metadata decode + preflight",
            code,
            untouched: ledger == before,
        });
    }

    // 3. Quantization failure: 0.05 BTC rounds down to 0 < min 0.1 ⇒ no intent is built at all.
    {
        let ledger = seeded_ledger(&policy, &cache);
        let before = ledger.clone();
        let built = OrderIntent::new_quantized(
            fields(OPTION, Side::Buy, "0.05", "0.0455", b"c"),
            cache.get(OPTION),
        );
        let code = built.unwrap_err();
        assert_eq!(code, RejectReasonCode::TooSmallAfterQuantization);
        cases.push(Case {
            name: "qty 0.05 below min 0.1 (AT-908)",
            stage: "quantization",
            code,
            untouched: ledger == before,
        });
        let missing =
            OrderIntent::new_quantized(fields(OPTION, Side::Buy, "0.3", "0.0455", b"c"), None)
                .unwrap_err();
        assert_eq!(missing, RejectReasonCode::InstrumentMetadataMissing);
        cases.push(Case {
            name: "no metadata (AT-926)",
            stage: "quantization",
            code: missing,
            untouched: ledger == before,
        });
    }

    // 4. Preflight rejects: market order, post-only crossing, reduce-only increasing.
    let mutations: [PreflightCase; 3] = [
        (
            "market order (AT-016)",
            |f| f.order_type = OrderType::Market,
            RejectReasonCode::OrderTypeMarketForbidden,
        ),
        (
            "post-only crossing the ask (AT-916)",
            |f| {
                f.post_only = true;
                f.limit_price = Some(phase1_fixtures::price("0.046"));
            },
            RejectReasonCode::PostOnlyWouldCross,
        ),
        (
            "reduce-only that would increase",
            |f| f.reduce_only = true,
            RejectReasonCode::ReduceOnlyWouldIncrease,
        ),
    ];
    for (name, mutate, expected) in mutations {
        let mut ledger = seeded_ledger(&policy, &cache);
        let before = ledger.clone();
        let mut f = fields(OPTION, Side::Buy, "0.3", "0.045", b"d");
        mutate(&mut f);
        let ctx = context(&policy, &cache, Some(&book));
        let code = ledger.submit(&OrderIntent::new(f), &ctx).unwrap_err().code;
        assert_eq!(code, expected, "{name}");
        cases.push(Case { name, stage: "preflight", code, untouched: ledger == before });
    }

    // 5. Later gates too: risk state and the order-rate limit itself.
    {
        let mut ledger = seeded_ledger(&policy, &cache);
        let before = ledger.clone();
        let mut ctx = context(&policy, &cache, Some(&book));
        ctx.risk_state = hotpath::domain::reason_codes::RiskState::Degraded;
        let code = ledger
            .submit(&OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.045", b"e")), &ctx)
            .unwrap_err()
            .code;
        cases.push(Case {
            name: "open while Degraded",
            stage: "risk/mode",
            code,
            untouched: ledger == before,
        });
    }

    // 6. Through the engine's real intent-processing function with a real WAL in a tempdir:
    //    a rejected intent leaves the WAL (files, sequence numbers, ledger), the exposure and
    //    the order-rate bucket exactly as they were; the control intent changes all of them.
    {
        use hotpath::dispatch::{BatchInputs, IntentPipeline, PipelineEvent};
        use hotpath::wal::{Wal, WalConfig};
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), WalConfig::default(), 1).unwrap();
        let base = context(&policy, &cache, Some(&book));
        let edge_value = base.edge;
        let edge = move |_: &OrderIntent,
                         _: Option<&hotpath::gates::market::BookView>,
                         _: Option<hotpath::domain::units::Price>| edge_value;
        let books = [book];
        let inputs = BatchInputs {
            base,
            books: &books,
            index: hotpath::strategy::IndexPrices { btc: base.index_price, eth: None },
            edge: &edge,
        };
        let mut pipeline = IntentPipeline::new(base.order_rate);
        let mut exposure = seeded_ledger(&policy, &cache).exposure;
        // History in the WAL first, so "unchanged" is checked against non-trivial state.
        let seed = OrderIntent::new(fields(OPTION, Side::Buy, "0.2", "0.045", b"wal-seed"));
        let out = pipeline.record_batch(&mut wal, &mut exposure, &[seed], &inputs, &mut |_| {});
        assert_eq!(out.staged.len(), 1, "seed intent journaled");
        // The next segment is preallocated in the background at open; wait for it so the
        // directory listing below is stable.
        wal.prepare_spare().unwrap();
        let wal_files = |d: &std::path::Path| {
            let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect();
            v.sort();
            v
        };
        let rejected = [
            {
                let mut f = fields(OPTION, Side::Buy, "0.3", "0.045", b"wal-mkt");
                f.order_type = OrderType::Market;
                ("market order via the pipeline", OrderIntent::new(f))
            },
            {
                let mut f = fields(OPTION, Side::Buy, "0.3", "0.045", b"wal-ro");
                f.reduce_only = true;
                ("reduce-only increasing via the pipeline", OrderIntent::new(f))
            },
        ];
        for (name, intent) in rejected {
            let files_before = wal_files(dir.path());
            let (appended, durable) = (wal.appended_through(), wal.durable_through());
            let ledger_before = wal.ledger().clone();
            let exposure_before = exposure.clone();
            let rate_before = pipeline.order_rate;
            let mut events = Vec::new();
            let out =
                pipeline.record_batch(&mut wal, &mut exposure, &[intent], &inputs, &mut |e| {
                    events.push(e);
                });
            assert!(out.staged.is_empty() && out.durable.is_none(), "{name}");
            let code = match &out.refused[..] {
                [(_, hotpath::dispatch::Refusal::Gate(r))] => r.code,
                other => panic!("{name}: {other:?}"),
            };
            assert!(
                matches!(events[..], [PipelineEvent::GateRejected { .. }]),
                "{name}: only the gate ran: {events:?}"
            );
            let untouched = wal.appended_through() == appended
                && wal.durable_through() == durable
                && *wal.ledger() == ledger_before
                && wal_files(dir.path()) == files_before
                && exposure == exposure_before
                && pipeline.order_rate == rate_before;
            cases.push(Case { name, stage: "engine pipeline + real WAL", code, untouched });
        }
        // Control: an accepted intent does append, sync and reserve.
        let files_before = wal_files(dir.path());
        let appended = wal.appended_through();
        let ok = OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.045", b"wal-ok"));
        let out = pipeline.record_batch(&mut wal, &mut exposure, &[ok], &inputs, &mut |_| {});
        assert_eq!(out.staged.len(), 1);
        assert!(out.durable.is_some_and(|d| d.covers(out.staged[0].record_seq)));
        assert_eq!(wal.appended_through(), appended + 1);
        assert_ne!(wal_files(dir.path()), files_before, "the control changes the WAL files");
    }

    // Control: an accepted intent does change every part of the ledger, so equality above is a
    // real check and not a tautology.
    let mut ledger = seeded_ledger(&policy, &cache);
    let before = ledger.clone();
    let ctx = context(&policy, &cache, Some(&book));
    let accepted = ledger
        .submit(&OrderIntent::new(fields(OPTION, Side::Buy, "0.3", "0.045", b"ok")), &ctx)
        .unwrap();
    assert_ne!(ledger.exposure, before.exposure);
    assert_ne!(ledger.order_rate, before.order_rate);
    assert_eq!(ledger.wal_records.len(), before.wal_records.len() + 1);
    assert_eq!(ledger.open_orders.len(), before.open_orders.len() + 1);
    assert_eq!(ledger.open_orders.last().map(String::as_str), Some(accepted.label.as_str()));

    let mut report = String::from(
        "# Rejected intents have no side effects\n\n\
         Produced by `hotpath/tests/phase1_side_effects.rs::test_rejected_intent_has_no_side_effects`.\n\
         Each case starts from a ledger holding a 1.0 BTC-27DEC24-60000-C position and one accepted\n\
         pending buy, submits a bad intent, and compares the whole ledger (position, pending\n\
         exposure, pending notional, order-rate bucket, open orders, WAL stand-in) before and after.\n\
         A control case shows an accepted intent changes every one of them.\n\n\
         The last cases run through the engine's intent pipeline (`hotpath::dispatch::IntentPipeline`)\n\
         with a real WAL in a temporary directory: WAL files, sequence numbers and ledger unchanged.\n\n\
         | case | stage | reject reason code | ledger unchanged |\n|---|---|---|---|\n",
    );
    for case in &cases {
        let _ = writeln!(
            report,
            "| {} | {} | `{}` | {} |",
            case.name,
            case.stage,
            case.code,
            if case.untouched { "yes" } else { "NO" }
        );
    }
    phase1_fixtures::write_evidence("evidence/phase1/no_side_effects/rejection_cases.md", &report);
    let changed: Vec<&str> = cases.iter().filter(|c| !c.untouched).map(|c| c.name).collect();
    assert!(changed.is_empty(), "side effects in: {changed:?}");
    assert!(cases.len() >= 7);
}
