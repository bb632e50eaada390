//! Strict policy loader and fail-closed config (contract §9.7; DESIGN invariant 7).

mod phase1_fixtures;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use hotpath::domain::intent::{OrderIntent, Side};
use hotpath::domain::policy::{Environment, Policy, PolicyErrorCode as E, CRITICAL_KEYS};
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::gates::{GateName, PolicySlot};
use phase1_fixtures::{cache, context, fields, option_book, policy_text, write_evidence};
use proptest::prelude::*;
use serde_json::Value;

/// A named edit of the policy document and the loader code it must produce.
type PolicyMutation = (&'static str, Box<dyn Fn(&mut Value)>, E);

fn policy_value() -> Value {
    serde_json::from_str(&policy_text()).expect("policy.json is JSON")
}

/// Removes a dotted key; returns whether it existed.
fn remove_key(value: &mut Value, dotted: &str) -> bool {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else { return false };
    let mut node = value;
    for part in parts {
        match node.get_mut(part) {
            Some(next) => node = next,
            None => return false,
        }
    }
    node.as_object_mut().is_some_and(|obj| obj.remove(last).is_some())
}

fn set_key(value: &mut Value, dotted: &str, new_value: Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut node = value;
    for part in parts {
        node = node.get_mut(part).expect("path exists");
    }
    node.as_object_mut().expect("object").insert(last.to_owned(), new_value);
}

/// Every leaf and object key path in a JSON document.
fn all_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(obj) = value.as_object() {
        for (key, child) in obj {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            out.insert(path.clone());
            all_paths(child, &path, out);
        }
    }
}

#[test]
fn shipped_policy_loads_and_matches_the_critical_key_list() {
    let policy = Policy::load_from_path(&phase1_fixtures::repo_root().join("config/policy.json"))
        .expect("loads");
    assert_eq!(policy.environment, Environment::Paper);
    assert_eq!(policy.edge_policy.version, 1);
    assert_eq!(policy.data_limits.expiry_delist_buffer_s, 60, "ruling 4");
    assert_eq!(policy.data_limits.fee_cache_hard_s, 900, "ruling 4");
    let mut paths = BTreeSet::new();
    all_paths(&policy_value(), "", &mut paths);
    let listed: BTreeSet<String> = CRITICAL_KEYS.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(
        paths, listed,
        "every key in policy.json is a documented critical key and vice versa"
    );
    let doc =
        std::fs::read_to_string(phase1_fixtures::repo_root().join("docs/critical_config_keys.md"))
            .expect("doc");
    for key in CRITICAL_KEYS {
        assert!(doc.contains(&format!("`{key}`")), "docs/critical_config_keys.md documents {key}");
    }
}

/// Missing config fails closed: every critical key removed ⇒ loader error MissingKey naming
/// that key ⇒ the gate chain rejects the intent with `ConfigMissingOrInvalid`, and nothing
/// else happens. Writes the per-key matrix.
#[test]
fn test_missing_config_fails_closed() {
    let cache = cache();
    let book = option_book();
    let intent =
        OrderIntent::new(fields("BTC-27DEC24-60000-C", Side::Buy, "0.3", "0.0455", b"cfg"));
    let mut matrix = String::from("{\n  \"test\": \"test_missing_config_fails_closed\",\n  \"policy\": \"config/policy.json\",\n  \"keys\": [\n");
    let mut failures = Vec::new();
    for (i, key) in CRITICAL_KEYS.iter().enumerate() {
        let mut doc = policy_value();
        assert!(remove_key(&mut doc, key), "{key} exists in the shipped policy");
        let loaded = Policy::from_value(&doc);
        let loader_code = loaded.as_ref().err().map(|e| (e.code, e.key.clone()));
        let slot = PolicySlot::from_result(&loaded);
        // The loaded policy (if the loader wrongly accepted) would be used as is.
        let fallback;
        let ctx_policy = match &loaded {
            Ok(p) => p,
            Err(_) => {
                fallback = phase1_fixtures::policy();
                &fallback
            }
        };
        let mut ctx = context(ctx_policy, &cache, Some(&book));
        ctx.policy = slot;
        let mut ledger = phase1_fixtures::Ledger::new(ctx.order_rate);
        let before = ledger.clone();
        let verdict = ledger.submit(&intent, &ctx);
        let untouched = ledger == before;
        let reject_code = verdict.as_ref().err().map(|r| r.code);
        let pass = untouched
            && matches!(&loader_code, Some((E::MissingKey, path)) if path == key)
            && matches!(&verdict, Err(r) if r.code == RejectReasonCode::ConfigMissingOrInvalid
                && r.gate == GateName::Config && r.config_error == Some(E::MissingKey));
        if !pass {
            failures.push(format!("{key}: loader {loader_code:?}, verdict {verdict:?}"));
        }
        let comma = if i + 1 == CRITICAL_KEYS.len() { "" } else { "," };
        let _ = writeln!(
            matrix,
            "    {{\"key\": \"{key}\", \"result\": \"{}\", \"loader_error\": \"{}\", \"reject_reason_code\": \"{}\", \"side_effects\": {}}}{comma}",
            if pass { "PASS" } else { "FAIL" },
            loader_code.as_ref().map_or("none", |(c, _)| c.as_str()),
            reject_code.map_or("none", RejectReasonCode::as_str),
            if untouched { "\"none\"" } else { "\"CHANGED\"" },
        );
    }
    let _ = write!(matrix, "  ],\n  \"all_pass\": {}\n}}\n", failures.is_empty());
    write_evidence("evidence/phase1/config_fail_closed/missing_keys_matrix.json", &matrix);
    assert!(failures.is_empty(), "{failures:#?}");
    // The matrix is valid JSON.
    let _: Value = serde_json::from_str(&matrix).expect("matrix is JSON");
}

#[test]
fn strict_loader_rules() {
    let cases: Vec<PolicyMutation> = vec![
        (
            "unknown top-level key",
            Box::new(|v| set_key(v, "max_leverage", Value::from(3))),
            E::UnknownKey,
        ),
        (
            "unknown nested key",
            Box::new(|v| set_key(v, "risk_limits.max_loss", Value::from(3))),
            E::UnknownKey,
        ),
        (
            "fail_closed false",
            Box::new(|v| set_key(v, "fail_closed", Value::Bool(false))),
            E::FailClosedNotTrue,
        ),
        (
            "fail_closed string",
            Box::new(|v| set_key(v, "fail_closed", Value::from("true"))),
            E::WrongType,
        ),
        ("empty policy_id", Box::new(|v| set_key(v, "policy_id", Value::from(" "))), E::EmptyValue),
        (
            "numeric version",
            Box::new(|v| set_key(v, "policy_version", Value::from(1.0))),
            E::WrongType,
        ),
        (
            "PAPER trade capable",
            Box::new(|v| set_key(v, "environments.PAPER.trade_capable", Value::Bool(true))),
            E::EnvironmentRule,
        ),
        (
            "LIVE not trade capable",
            Box::new(|v| set_key(v, "environments.LIVE.trade_capable", Value::Bool(false))),
            E::EnvironmentRule,
        ),
        (
            "unknown environment",
            Box::new(|v| set_key(v, "environment", Value::from("PROD"))),
            E::EnvironmentRule,
        ),
        (
            "extra environment",
            Box::new(|v| set_key(v, "environments.QA", serde_json::json!({}))),
            E::UnknownKey,
        ),
        (
            "overlap",
            Box::new(|v| set_key(v, "forbidden_order_types", serde_json::json!(["MARKET", "IOC"]))),
            E::OrderTypeOverlap,
        ),
        (
            "market allowed",
            Box::new(|v| {
                set_key(v, "allowed_order_types", serde_json::json!(["LIMIT", "MARKET"]));
                set_key(v, "forbidden_order_types", serde_json::json!(["STOP"]));
            }),
            E::ForbiddenTypeAllowed,
        ),
        (
            "unknown order type",
            Box::new(|v| set_key(v, "allowed_order_types", serde_json::json!(["LIMIT", "GTD"]))),
            E::UnknownToken,
        ),
        (
            "empty list",
            Box::new(|v| set_key(v, "allowed_currencies", serde_json::json!([]))),
            E::EmptyValue,
        ),
        (
            "dup currency",
            Box::new(|v| set_key(v, "allowed_currencies", serde_json::json!(["BTC", "BTC"]))),
            E::DuplicateToken,
        ),
        (
            "bad currency",
            Box::new(|v| set_key(v, "allowed_currencies", serde_json::json!(["btc"]))),
            E::UnknownToken,
        ),
        (
            "bad kind",
            Box::new(|v| set_key(v, "allowed_instrument_kinds", serde_json::json!(["spot"]))),
            E::UnknownToken,
        ),
        (
            "zero loss limit",
            Box::new(|v| set_key(v, "risk_limits.max_daily_loss_usd", Value::from(0))),
            E::OutOfRange,
        ),
        (
            "negative cap",
            Box::new(|v| set_key(v, "risk_limits.max_order_notional_usd", Value::from(-1.0))),
            E::OutOfRange,
        ),
        (
            "rate as float",
            Box::new(|v| set_key(v, "risk_limits.max_orders_per_minute", Value::from(1.5))),
            E::WrongType,
        ),
        (
            "ttl zero",
            Box::new(|v| set_key(v, "data_limits.instrument_cache_ttl_s", Value::from(0))),
            E::OutOfRange,
        ),
        (
            "edge version text",
            Box::new(|v| set_key(v, "edge_policy.version", Value::from("v1"))),
            E::OutOfRange,
        ),
        (
            "section not object",
            Box::new(|v| set_key(v, "risk_limits", Value::from(5))),
            E::NotAnObject,
        ),
        ("root not object", Box::new(|v| *v = serde_json::json!([1, 2])), E::NotAnObject),
    ];
    for (name, mutate, expected) in cases {
        let mut doc = policy_value();
        mutate(&mut doc);
        let error = Policy::from_value(&doc).expect_err(name);
        assert_eq!(error.code, expected, "{name}: {error}");
    }
    assert_eq!(Policy::from_json_str("{").unwrap_err().code, E::InvalidJson);
    assert_eq!(
        Policy::load_from_path(std::path::Path::new("/nonexistent/policy.json")).unwrap_err().code,
        E::FileUnreadable
    );
}

/// Caps the micro-live ceiling bounds: (`risk_limits` key, `micro_live_ceiling` key).
const CEILING_CAPS: [(&str, &str); 5] = [
    (
        "risk_limits.max_position_coin_per_instrument",
        "micro_live_ceiling.max_position_coin_per_instrument",
    ),
    (
        "risk_limits.max_position_usd_per_instrument",
        "micro_live_ceiling.max_position_usd_per_instrument",
    ),
    ("risk_limits.max_gross_notional_usd", "micro_live_ceiling.max_gross_notional_usd"),
    ("risk_limits.max_order_notional_usd", "micro_live_ceiling.max_order_notional_usd"),
    ("risk_limits.max_daily_loss_usd", "micro_live_ceiling.max_daily_loss_usd"),
];

fn get_key<'v>(value: &'v Value, dotted: &str) -> &'v Value {
    dotted.split('.').fold(value, |node, part| &node[part])
}

/// The shipped policy switched to LIVE with every cap set exactly to its ceiling.
fn live_policy_at_ceiling() -> Value {
    let mut doc = policy_value();
    set_key(&mut doc, "environment", Value::from("LIVE"));
    for (cap, ceiling) in CEILING_CAPS {
        let at = get_key(&doc, ceiling).clone();
        set_key(&mut doc, cap, at);
    }
    doc
}

/// Issue 8 (micro-live caps): in LIVE, a `risk_limits` cap above its `micro_live_ceiling` is
/// refused with `CONFIG_CAP_EXCEEDS_CEILING` naming the cap, for each capped key; the shipped
/// (PAPER) caps are far above the ceiling, so switching the environment alone is refused too.
#[test]
fn test_micro_live_caps_exceeding_ceiling_are_refused() {
    let mut shipped_as_live = policy_value();
    set_key(&mut shipped_as_live, "environment", Value::from("LIVE"));
    let error = Policy::from_value(&shipped_as_live).expect_err("shipped caps exceed the ceiling");
    assert_eq!(error.code, E::CapExceedsCeiling);
    assert_eq!(error.code.as_str(), "CONFIG_CAP_EXCEEDS_CEILING");
    assert!(error.code.refuses_start());

    for (cap, ceiling) in CEILING_CAPS {
        let mut doc = live_policy_at_ceiling();
        let above = get_key(&doc, ceiling).as_f64().expect("number") * 1.01;
        set_key(&mut doc, cap, Value::from(above));
        let error = Policy::from_value(&doc).expect_err(cap);
        assert_eq!((error.code, error.key.as_str()), (E::CapExceedsCeiling, cap));
    }
}

/// Raising a micro-live cap takes a policy-file change of the ceiling itself: caps at the
/// ceiling load, one step above is refused, and the same caps load once the file's ceiling is
/// raised with them. The ceiling applies to LIVE only (PAPER/DEV/STAGING trade nothing real).
#[test]
fn micro_live_caps_can_only_be_raised_by_raising_the_ceiling_in_the_policy_file() {
    let at = Policy::from_value(&live_policy_at_ceiling()).expect("caps at the ceiling load");
    assert_eq!(at.environment, Environment::Live);
    let limits = at.effective_risk_limits();
    assert_eq!(limits.max_order_notional_usd, at.micro_live_ceiling.max_order_notional_usd);
    assert_eq!(
        limits.max_position_coin_per_instrument,
        at.micro_live_ceiling.max_position_coin_per_instrument
    );

    let mut raised = live_policy_at_ceiling();
    set_key(&mut raised, "risk_limits.max_order_notional_usd", Value::from(7_500.0));
    assert_eq!(Policy::from_value(&raised).unwrap_err().code, E::CapExceedsCeiling);
    set_key(&mut raised, "micro_live_ceiling.max_order_notional_usd", Value::from(7_500.0));
    let loaded = Policy::from_value(&raised).expect("ceiling raised in the file");
    assert_eq!(
        loaded.effective_risk_limits().max_order_notional_usd,
        loaded.micro_live_ceiling.max_order_notional_usd
    );

    for env in ["DEV", "STAGING", "PAPER"] {
        let mut doc = policy_value();
        set_key(&mut doc, "environment", Value::from(env));
        if env == "STAGING" {
            set_key(&mut doc, "environments.STAGING.trade_capable", Value::from(true));
        }
        Policy::from_value(&doc).unwrap_or_else(|e| panic!("{env}: {e}"));
    }
}

/// Every policy file shipped in `config/` loads with the strict loader: a schema change (such as
/// the micro-live position ceilings) must reach each of them, or the run using it would start
/// fail-closed and trade nothing.
#[test]
fn every_shipped_policy_file_loads() {
    let dir = phase1_fixtures::repo_root().join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if name.starts_with("policy") && name.ends_with(".json") {
            Policy::load_from_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            seen += 1;
        }
    }
    assert!(seen >= 2, "found {seen} policy files in {}", dir.display());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Fuzz-style: byte-level mutations of the real policy file never panic the loader.
    #[test]
    fn mutated_policy_text_never_panics(cut_at in 0_usize..4_000, cut_len in 0_usize..40, insert in ".{0,8}") {
        let text = policy_text();
        let mut bytes = text.into_bytes();
        let start = cut_at.min(bytes.len());
        let end = (start + cut_len).min(bytes.len());
        bytes.splice(start..end, insert.bytes());
        if let Ok(mutated) = String::from_utf8(bytes) {
            let _ = Policy::from_json_str(&mutated);
        }
    }

    /// Structural mutations: replacing any critical key's value with a value of another type
    /// is always an error.
    #[test]
    fn retyped_critical_key_is_rejected(index in 0_usize..CRITICAL_KEYS.len(), kind in 0_u8..4) {
        let key = CRITICAL_KEYS[index];
        let mut doc = policy_value();
        let current = {
            let mut node = &doc;
            for part in key.split('.') {
                node = &node[part];
            }
            node.clone()
        };
        let replacement = match kind {
            0 => Value::Null,
            1 => if current.is_string() { Value::from(7) } else { Value::from("x") },
            2 => if current.is_array() { Value::from(true) } else { serde_json::json!([1]) },
            _ => if current.is_object() { Value::from(0) } else { serde_json::json!({"k": 1}) },
        };
        set_key(&mut doc, key, replacement);
        prop_assert!(Policy::from_value(&doc).is_err());
    }
}

fn engine_value() -> Value {
    let text = std::fs::read_to_string(phase1_fixtures::repo_root().join("config/engine.json"))
        .expect("engine.json");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn engine_config_is_strict_and_cross_checked() {
    use hotpath::domain::engine_config::{EngineConfig, Topology, ENGINE_CRITICAL_KEYS};
    let path = phase1_fixtures::repo_root().join("config/engine.json");
    let config = EngineConfig::load_from_path(&path).expect("shipped engine.json loads");
    assert_eq!(config.topology, Topology::Compact);
    let policy = phase1_fixtures::policy();
    config.check_against(&policy).expect("shipped engine.json agrees with policy.json");
    assert_eq!(config.environment, policy.environment);

    let mut listed = BTreeSet::new();
    all_paths(&engine_value(), "", &mut listed);
    assert_eq!(
        listed,
        ENGINE_CRITICAL_KEYS.iter().map(|k| (*k).to_owned()).collect::<BTreeSet<_>>()
    );
    let doc =
        std::fs::read_to_string(phase1_fixtures::repo_root().join("docs/critical_config_keys.md"))
            .expect("doc");
    for key in ENGINE_CRITICAL_KEYS {
        assert!(doc.contains(&format!("`{key}`")), "docs/critical_config_keys.md documents {key}");
        let mut v = engine_value();
        assert!(remove_key(&mut v, key));
        let error = EngineConfig::from_value(&v).expect_err(key);
        assert_eq!((error.code, error.key.as_str()), (E::MissingKey, *key));
    }
    let cases: [(&str, Value, E); 6] = [
        ("topology", Value::from("spread"), E::UnknownToken),
        ("status_bind", Value::from("localhost"), E::OutOfRange),
        ("strategy_ids", serde_json::json!(["Bad-Id"]), E::UnknownToken),
        ("clock_drift_ms_max", Value::from(0), E::OutOfRange),
        ("environment", Value::from("prod"), E::EnvironmentRule),
        ("extra", Value::from(1), E::UnknownKey),
    ];
    for (key, value, expected) in cases {
        let mut v = engine_value();
        set_key(&mut v, key, value);
        assert_eq!(EngineConfig::from_value(&v).unwrap_err().code, expected, "{key}");
    }
    // Cross-checks.
    let mut v = engine_value();
    set_key(&mut v, "environment", Value::from("LIVE"));
    let live = EngineConfig::from_value(&v).unwrap();
    assert_eq!(live.check_against(&policy).unwrap_err().code, E::EnvironmentRule);
    let mut v = engine_value();
    set_key(&mut v, "instrument_refresh_s", Value::from(policy.data_limits.instrument_cache_ttl_s));
    let slow = EngineConfig::from_value(&v).unwrap();
    assert_eq!(slow.check_against(&policy).unwrap_err().code, E::OutOfRange);
}
