//! `stoic paper`, end to end (issue 8, "Paper run"): the real binary runs one simulated day
//! against the embedded simulator in accelerated time with scheduled faults, and its
//! `summary.json` must show the run completed, every fault injected and contained, instruments
//! that outlive the run, the venue's fills matched by the engine's, a reconciled PnL, zero
//! unreconciled positions, zero duplicate dispatches and zero illegal orders (by the
//! simulator's own journal oracle), and no wall-clock values. The 14-day run is
//! `plans/verify.d/60-paper.sh`.

use std::process::Command;

use serde_json::Value;

fn stoic() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stoic"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn paper_run_one_simulated_day_with_faults_reconciles_with_zero_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("evidence");
    let faults_per_day = 4;
    let run = stoic()
        .args(["paper", "--days", "1", "--speed", "8640", "--tick-ms", "500", "--seed", "3"])
        .args(["--faults-per-day", &faults_per_day.to_string()])
        .arg("--out")
        .arg(&out)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "stoic paper failed: {:?}\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("paper: PASS"), "{stdout}");
    assert!(stdout.contains("sim day 1.00/1"), "progress lines missing: {stdout}");

    let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let s: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["verdict"], "pass", "{text}");
    assert_eq!(s["run"]["days"], 1);
    assert_eq!(s["run"]["speed"], 8640);
    assert_eq!(s["run"]["seed"], 3);
    assert_eq!(s["run"]["simulated_days_run"], 1.0);
    assert_eq!(s["oracle"]["duplicate_dispatch_count"], 0, "{text}");
    assert_eq!(s["oracle"]["illegal_order_attempts"], 0, "{text}");
    assert_eq!(s["reconciliation"]["unreconciled_positions"], 0, "{text}");
    assert!(s["oracle"]["new_order_requests"].as_u64().unwrap() > 0, "the engine never traded");
    assert_eq!(s["orders"]["wal_failures"], 0);

    // Every scheduled fault was injected, met a trading engine and had its containment effect
    // (counters and registry reason codes recorded per fault).
    let faults = s["faults"].as_array().unwrap();
    assert_eq!(faults.len(), faults_per_day);
    assert_eq!(s["faults_injected"].as_u64().unwrap(), faults_per_day as u64);
    assert_eq!(s["faults_contained"].as_u64().unwrap(), faults_per_day as u64, "{text}");
    for f in faults {
        assert_eq!(f["contained"], true, "{f}");
        assert!(!f["injected"].is_null(), "{f}");
        assert_ne!(f["met"], false, "{f}");
    }

    // The instruments outlive the run; no refusal for an expired instrument.
    for i in s["run"]["instruments"].as_array().unwrap() {
        assert!(i["expiry"].as_str().unwrap() > s["run"]["sim_end_utc"].as_str().unwrap(), "{i}");
    }
    assert!(s["gate_rejects_by_code"].get("InstrumentExpiredOrDelisted").is_none(), "{text}");

    // Fills listed from the venue, the engine saw each; PnL reconciles engine vs venue.
    let fills = &s["fills"];
    assert_eq!(
        fills["list"].as_array().unwrap().len() as u64,
        fills["venue_fills"].as_u64().unwrap()
    );
    assert_eq!(fills["engine_distinct_fills_applied"], fills["venue_fills"]);
    assert_eq!(s["pnl"]["engine_matches_venue_cash_flow"], true, "{text}");
    assert_eq!(s["pnl"]["by_currency"]["BTC"]["unexplained"].as_f64(), Some(0.0));

    // The timeline is the engine's own transitions, starting when trading began.
    let timeline = s["mode_timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["at"], "d0 00:00:00");
    assert_eq!(timeline[0]["to"], "Active");
    assert!(!s["final_mode"].as_str().unwrap().is_empty());

    // Deterministic content only: no wall-clock values in the summary.
    assert!(!text.contains("wall"), "summary.json must not carry wall-clock values");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Verdict: **PASS**"), "{report}");
}

#[test]
fn paper_refuses_out_of_range_arguments_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, message) in [
        ("--days", "0", "--days must be"),
        ("--speed", "0", "--speed must be"),
        ("--faults-per-day", "99", "faults per day must be"),
    ] {
        let run = stoic()
            .args(["paper", flag, value, "--out"])
            .arg(dir.path().join("out"))
            .arg("--work-dir")
            .arg(dir.path().join("work"))
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains(message), "{flag} {value}: {err}");
        assert!(!dir.path().join("out").join("summary.json").exists());
    }
}

/// Issue 8 (micro-live caps): the engine refuses to start a run whose LIVE caps exceed the
/// micro-live ceiling (`CONFIG_CAP_EXCEEDS_CEILING`, naming the key), before any order.
#[test]
fn paper_engine_refuses_to_start_with_live_caps_above_the_micro_live_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("config/policy_paper_accelerated.json")).unwrap(),
    )
    .unwrap();
    policy["environment"] = Value::from("LIVE");
    let path = dir.path().join("policy_live.json");
    std::fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    let run = stoic()
        .args(["paper", "--days", "1", "--speed", "8640", "--tick-ms", "500", "--policy"])
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("CONFIG_CAP_EXCEEDS_CEILING: risk_limits.max_position_coin_per_instrument"),
        "{err}"
    );
    assert!(!dir.path().join("out").join("summary.json").exists());
    let journal = dir.path().join("work").join("sim_journal.jsonl");
    let orders = std::fs::read_to_string(journal).unwrap_or_default();
    assert!(orders.is_empty(), "an order reached the venue: {orders}");
}
