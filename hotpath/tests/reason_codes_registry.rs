//! The generated enums (`hotpath/src/domain/reason_codes.rs`) match `spec/reason_codes.json`:
//! same members, same order, same wire strings and meanings; Stoic extensions come after the
//! registry's codes and never reuse a registry name. Regenerate with
//! `python3 plans/gen_reason_codes.py` when this fails.

use hotpath::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RejectReasonCode, RiskState, TradingMode,
    MODE_EXTENSION_COUNT, REJECT_CONTRACT_CODE_COUNT, REJECT_STOIC_EXTENSION_COUNT,
};
use serde_json::{Map, Value};

fn registry() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/reason_codes.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("spec/reason_codes.json"))
        .expect("JSON")
}

/// `(key, meaning)` pairs in file order, skipping `_`-prefixed annotations. serde_json without
/// `preserve_order` sorts keys, so order is taken from the raw text instead.
fn ordered_entries(
    section: &Map<String, Value>,
    raw_text: &str,
    anchor: &str,
) -> Vec<(String, String)> {
    let start = raw_text.find(anchor).unwrap_or_else(|| panic!("anchor {anchor}"));
    let mut entries: Vec<(usize, String, String)> = section
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| {
            let needle = format!("\"{k}\":");
            let at =
                raw_text[start..].find(&needle).unwrap_or_else(|| panic!("{k} after {anchor}"));
            (at, k.clone(), v.as_str().unwrap_or_default().to_owned())
        })
        .collect();
    entries.sort();
    entries.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn raw() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/reason_codes.json"))
        .unwrap()
}

#[test]
fn reject_reason_codes_match_registry() {
    let reg = registry();
    let text = raw();
    let rj = &reg["RejectReasonCode"];
    let mut expected =
        ordered_entries(rj["contract"].as_object().unwrap(), &text, "\"RejectReasonCode\"");
    assert_eq!(expected.len(), REJECT_CONTRACT_CODE_COUNT);
    expected.extend(ordered_entries(
        rj["extensions_in_status_manifest_not_in_contract"].as_object().unwrap(),
        &text,
        "\"extensions_in_status_manifest_not_in_contract\"",
    ));
    let registry_count = expected.len();
    assert_eq!(RejectReasonCode::ALL.len(), registry_count + REJECT_STOIC_EXTENSION_COUNT);
    for (code, (wire, meaning)) in RejectReasonCode::ALL.iter().zip(&expected) {
        assert_eq!(code.as_str(), wire);
        assert_eq!(code.meaning(), meaning);
        assert_eq!(RejectReasonCode::from_wire(wire), Some(*code));
    }
    let registry_names: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    for code in &RejectReasonCode::ALL[registry_count..] {
        assert!(
            !registry_names.contains(&code.as_str()),
            "extension {code} reuses a registry name"
        );
        assert!(!code.meaning().is_empty());
    }
    let mut all: Vec<&str> = RejectReasonCode::ALL.iter().map(|c| c.as_str()).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), RejectReasonCode::ALL.len(), "no duplicate wire strings");
}

#[test]
fn mode_reason_codes_match_registry() {
    let reg = registry();
    let text = raw();
    let mode = &reg["ModeReasonCode"];
    let kill = ordered_entries(mode["Kill"].as_object().unwrap(), &text, "\"Kill\": {");
    let reduce =
        ordered_entries(mode["ReduceOnly"].as_object().unwrap(), &text, "\"ReduceOnly\": {");
    assert_eq!(ModeReasonCode::ALL.len(), kill.len() + reduce.len() + MODE_EXTENSION_COUNT);
    for (code, (wire, meaning)) in ModeReasonCode::ALL.iter().zip(kill.iter().chain(&reduce)) {
        assert_eq!(code.as_str(), wire);
        assert_eq!(code.meaning(), meaning);
    }
    for code in &ModeReasonCode::ALL[..kill.len()] {
        assert_eq!(code.tier(), TradingMode::Kill);
    }
    for code in &ModeReasonCode::ALL[kill.len()..] {
        assert_eq!(code.tier(), TradingMode::ReduceOnly);
        assert!(code.as_str().starts_with("REDUCEONLY_"));
    }
    // Ruling 6: the two extensions close the ReduceOnly tier.
    let tail: Vec<&str> =
        ModeReasonCode::ALL[ModeReasonCode::ALL.len() - 2..].iter().map(|c| c.as_str()).collect();
    assert_eq!(tail, ["REDUCEONLY_GROUP_LOCK_TIMEOUT", "REDUCEONLY_HOTPATH_BACKPRESSURE"]);
}

#[test]
fn open_permission_and_enums_match_registry() {
    let reg = registry();
    let text = raw();
    let op = ordered_entries(
        reg["OpenPermissionReasonCode"].as_object().unwrap(),
        &text,
        "\"OpenPermissionReasonCode\"",
    );
    let ours: Vec<&str> = OpenPermissionReasonCode::ALL.iter().map(|c| c.as_str()).collect();
    let theirs: Vec<&str> = op.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(ours, theirs);

    let enums = &reg["Enums"];
    let tm = ordered_entries(enums["TradingMode"].as_object().unwrap(), &text, "\"TradingMode\"");
    let ours: Vec<&str> = TradingMode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(ours, tm.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
    let rs = ordered_entries(enums["RiskState"].as_object().unwrap(), &text, "\"RiskState\"");
    let ours: Vec<&str> = RiskState::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(ours, rs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
    // Ordering derives: max is the tighter mode.
    assert_eq!(TradingMode::Active.max(TradingMode::Kill), TradingMode::Kill);
}
