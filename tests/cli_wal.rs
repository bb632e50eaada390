//! `stoic wal verify` / `stoic wal inspect` on a WAL written with the library, then corrupted.

use std::os::unix::fs::FileExt as _;
use std::process::Command;

use hotpath::wal::{OperatorActionKind, Record, SyncMode, Wal, WalConfig, WalReader};

fn stoic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stoic")).args(args).output().expect("run stoic")
}

fn write_wal(dir: &std::path::Path) -> Vec<u64> {
    let cfg = WalConfig {
        segment_bytes: 16 * 1024,
        sync_mode: SyncMode::PwriteFdatasync,
        write_buffer_bytes: 64 * 1024,
        ..WalConfig::default()
    };
    let (mut wal, _) = Wal::open(dir, cfg, 1).unwrap();
    for i in 0..4u64 {
        let label = format!("s4:cli:{i}");
        wal.append(
            10,
            &Record::IntentRecorded {
                intent_hash: 0xabc0 + i,
                label: &label,
                canonical: b"\x01\x02",
            },
        )
        .unwrap();
        let _ = wal.sync().unwrap();
    }
    wal.append(11, &Record::Sent { intent_hash: 0xabc0 }).unwrap();
    wal.append(12, &Record::Acknowledged { intent_hash: 0xabc0, venue_order_id: "ETH-77" })
        .unwrap();
    wal.append(13, &Record::Filled { intent_hash: 0xabc1, filled_qty: 4, trade_id: "T1" }).unwrap();
    wal.append(
        14,
        &Record::OperatorAction {
            action: OperatorActionKind::EmergencyReduceOnly,
            who: "owner",
            reason: "drill",
        },
    )
    .unwrap();
    let _ = wal.sync().unwrap();
    drop(wal);
    let mut offsets = Vec::new();
    WalReader::open(dir)
        .unwrap()
        .verify(&mut |ev| {
            if let hotpath::wal::ReplayEvent::Record { offset, .. } = ev {
                offsets.push(offset);
            }
        })
        .unwrap();
    offsets
}

#[test]
fn verify_and_inspect_a_good_wal() {
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = stoic(&["wal", "verify", "--dir", d]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("ok: 1 segment(s)")
            && stdout.contains("8 record(s)")
            && stdout.contains("3 in-doubt"),
        "{stdout}"
    );

    let out = stoic(&["wal", "verify", "--dir", d, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["records"].as_u64(), v["last_seq"].as_u64()),
        (Some(true), Some(8), Some(8))
    );

    let out = stoic(&["wal", "inspect", "--dir", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "IntentRecorded",
        "label=\"s4:cli:2\"",
        "venue_order_id=\"ETH-77\"",
        "action=EmergencyReduceOnly",
        "in doubt",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    let out = stoic(&["wal", "inspect", "--dir", d, "--json"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.iter().filter(|l| l["type"] == "record").count(), 8);
    assert_eq!(lines.iter().filter(|l| l["type"] == "in_doubt").count(), 3);
}

#[test]
fn verify_reports_corruption_with_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let offsets = write_wal(dir.path());
    let seg = dir.path().join("wal-0000000000000000.seg");
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let at = offsets[1] + 33;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[!b[0]], at).unwrap();
    drop(f);
    let d = dir.path().to_str().unwrap();
    for sub in ["verify", "inspect"] {
        let out = stoic(&["wal", sub, "--dir", d]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sub}: {stderr}");
        assert!(
            stderr.contains("wal-0000000000000000.seg")
                && stderr.contains(&format!(":{}", offsets[1])),
            "{stderr}"
        );
    }
}

#[test]
fn verify_reports_torn_tail_but_succeeds_and_refuses_a_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let offsets = write_wal(dir.path());
    let seg = dir.path().join("wal-0000000000000000.seg");
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&[0u8; 8], offsets[7] + 8).unwrap(); // tear the last record
    drop(f);
    let out = stoic(&["wal", "verify", "--dir", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains(&format!("torn tail at {}:{}", seg.display(), offsets[7])),
        "{stdout}"
    );

    let out = stoic(&["wal", "verify", "--dir", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
