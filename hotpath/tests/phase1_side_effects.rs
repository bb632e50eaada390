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
         WAL and dispatch are owned by other work; the test's `Ledger` marks the extension point.\n\n\
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
