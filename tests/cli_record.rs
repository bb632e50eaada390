//! `stoic record` end to end: the real binary records a live `stoic sim` session (raw book
//! channel, authenticated with the dev read key), then `stoic replay` feeds the file through
//! the decoder and book code. Child processes are killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills and reaps the child on drop (also when an assertion fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stoic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stoic"))
}

#[test]
fn record_then_replay_a_simulator_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Killed(
        stoic()
            .args(["sim", "--listen", "127.0.0.1:0", "--tick-ms", "50", "--journal"])
            .arg(dir.path().join("journal.jsonl"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn stoic sim"),
    );
    let mut first = String::new();
    // Kept open for the whole test: the simulator keeps printing to it.
    let mut sim_out = BufReader::new(sim.0.stdout.take().unwrap());
    sim_out.read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{first:?}"));
    let creds = dir.path().join("creds.json");
    std::fs::write(
        &creds,
        r#"{"client_id": "sim-dev-read", "client_secret": "sim-dev-read-secret-0002"}"#,
    )
    .unwrap();
    let file = dir.path().join("session.jsonl");

    let rec = stoic()
        .arg("record")
        .arg("--url")
        .arg(format!("ws://{addr}/ws/api/v2"))
        .args(["--subscribe", "book.BTC-PERPETUAL.raw", "--seconds", "2", "--credentials"])
        .arg(&creds)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(rec.status.success(), "record: {}", String::from_utf8_lossy(&rec.stderr));

    // Every line: a receive timestamp (ns, non-decreasing, recent) and the raw frame.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert!(lines.len() >= 5, "only {} frames recorded", lines.len());
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut prev = 0u64;
    let mut book_frames = 0;
    for l in &lines {
        let ns = l["recv_ns"].as_u64().expect("recv_ns");
        assert!(
            ns >= prev && u128::from(ns) <= now_ns && u128::from(ns) + 120_000_000_000 > now_ns
        );
        prev = ns;
        let frame: serde_json::Value =
            serde_json::from_str(l["frame"].as_str().expect("frame text")).unwrap();
        if frame["params"]["channel"] == "book.BTC-PERPETUAL.raw" {
            book_frames += 1;
        }
    }
    assert!(book_frames >= 2, "{book_frames} book frames");

    let rep = stoic().arg("replay").arg(&file).output().unwrap();
    let out = String::from_utf8_lossy(&rep.stdout);
    assert!(rep.status.success(), "replay: {out} {}", String::from_utf8_lossy(&rep.stderr));
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["frames"], lines.len());
    assert_eq!(summary["decoded"], lines.len());
    let books = summary["books"].as_array().unwrap();
    let b = books.iter().find(|b| b["instrument"] == "BTC-PERPETUAL").expect("book in replay");
    assert_eq!(b["state"], "live", "{b}");
    assert!(b["updates"].as_u64().unwrap() >= 2, "{b}");
    assert!(b["bids"].as_u64().unwrap() > 0 && b["asks"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(b["crossed"], false);
    drop(sim);
    drop(sim_out);
}
