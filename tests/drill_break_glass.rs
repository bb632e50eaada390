//! Issue 6, break-glass drill (P0-D; Phase 0 test `test_break_glass_kill_blocks_open_allows_reduce`):
//! runs `stoic drill break-glass` (the real binary: simulator + engine with the runaway
//! strategy, Kill through the runbook's CLI command, automatic containment (AT-338), the
//! runbook's emergency close, relax) into a scratch
//! evidence directory and checks both its exit code and the evidence it wrote.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stoic");

#[test]
fn drill_break_glass_kill_blocks_open_allows_reduce() {
    let out_dir = tempfile::tempdir().unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["drill", "break-glass", "--out-dir"])
        .arg(out_dir.path())
        .arg("--work-dir")
        .arg(work_dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "drill failed:\n{stdout}\n{stderr}");

    let md = std::fs::read_to_string(out_dir.path().join("drill.md")).unwrap();
    assert!(md.contains("**Result: PASS.**"), "{md}");
    for step in [
        "engine up, Active",
        "runaway opens reach the venue",
        "kill acknowledged",
        "no opens after the Kill",
        "status shows Kill",
        "automatic containment",
        "emergency close went through",
        "journal oracle clean",
        "relax to Active",
    ] {
        let row = md.lines().find(|l| l.contains(&format!("| {step} |"))).unwrap_or_else(|| {
            panic!("step {step:?} missing from drill.md:\n{md}");
        });
        assert!(row.contains("| PASS |"), "{row}");
    }
    assert!(!md.contains("| FAIL |"), "{md}");
    // The runbook's commands, as run.
    for cmd in [
        "stoic mode kill --url",
        "stoic status --url",
        "stoic emergency close --url",
        "stoic mode relax --to active --socket",
    ] {
        assert!(md.contains(cmd), "command {cmd:?} not recorded:\n{md}");
    }
    // Journal excerpts: opens before, only reduce-only IOC orders after, each with its source.
    let after = md.split("Every new order after the Kill").nth(1).unwrap();
    let after_block = after.split("```").nth(1).unwrap();
    let orders: Vec<&str> = after_block.lines().filter(|l| l.starts_with("seq=")).collect();
    assert!(!orders.is_empty(), "{md}");
    for o in orders {
        assert!(o.contains("reduce_only=true") && o.contains("tif=immediate_or_cancel"), "{o}");
        assert!(o.contains("[automatic containment]") || o.contains("[operator: "), "{o}");
    }
    assert!(md.contains("duplicate_dispatch_count=0"));

    let log = std::fs::read_to_string(out_dir.path().join("log_excerpt.txt")).unwrap();
    assert!(log.contains("mode: KILL by drill-operator"), "{log}");
    // AT-338: the close came from the engine's own containment; the runbook's command still ran.
    assert!(log.contains("emergency close by kill-containment"), "{log}");
    assert!(log.contains("emergency close by drill-operator"), "{log}");
    assert!(log.contains("stoic::control"), "the control-plane audit line is logged:\n{log}");
    assert!(out_dir.path().join("runbook_snapshot.md").exists());
}
