//! Runs the real `stoic decode` binary over every venue sample (compacted to one line) and
//! over malformed input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/venue_samples")
}

fn run_decode(input: &[u8]) -> (i32, Vec<serde_json::Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stoic"))
        .arg("decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stoic");
    let mut stdin = child.stdin.take().unwrap();
    let bytes = input.to_vec();
    // Write from a thread so a large input cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

#[test]
fn decodes_every_sample_and_exits_zero() {
    let mut names: Vec<_> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 79);
    let mut input = Vec::new();
    for p in &names {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        input.extend(serde_json::to_vec(&v).unwrap());
        input.push(b'\n');
    }
    let (code, lines) = run_decode(&input);
    assert_eq!(lines.len(), names.len());
    for (p, l) in names.iter().zip(&lines) {
        assert_eq!(l["ok"], true, "{}: {l}", p.display());
    }
    assert_eq!(code, 0);
    let gap_idx = names.iter().position(|p| p.ends_with("book_option_change_gap.json")).unwrap();
    let gap = &lines[gap_idx];
    assert_eq!(gap["kind"], "notification");
    assert_eq!(gap["type"], "change");
    assert_eq!(gap["change_id"], 69_871_234_522u64);
    assert_eq!(gap["prev_change_id"], 69_871_234_517u64);
    assert_eq!(gap["instrument"], "BTC-25JUL25-110000-C");
    assert_eq!(gap["bids"], 0);
    assert_eq!(gap["asks"], 1);
    let buy_idx = names.iter().position(|p| p.ends_with("private_buy_response.json")).unwrap();
    assert_eq!(lines[buy_idx]["order"]["label"], "market0000234");
    assert_eq!(lines[buy_idx]["order"]["state"], "filled");
}

#[test]
fn malformed_lines_are_reported_and_exit_nonzero() {
    let input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"ok\"}\nnot json\n[1,2]\n{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"channel\":\"book.X.raw\",\"data\":{\"type\":\"change\",\"change_id\":5,\"instrument_name\":\"X\",\"timestamp\":1,\"bids\":[],\"asks\":[]}}}\n\xff\n";
    let (code, lines) = run_decode(input);
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[1], serde_json::json!({"ok": false, "error": "INVALID_JSON", "line": 2}));
    assert_eq!(lines[2]["error"], "NOT_AN_OBJECT");
    assert_eq!(lines[3]["error"], "MISSING_FIELD");
    assert_eq!(lines[3]["field"], "prev_change_id");
    assert_eq!(lines[4]["line"], 5);
}
