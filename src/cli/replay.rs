//! `stoic replay`: feed a recorded session through the engine's decoder and book code.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use hotpath::feed::L2Book;
use hotpath::venue::messages::NotificationData;
use hotpath::venue::{Decoder, Message};
use serde_json::{json, Value};

/// Book depth kept per side during replay.
const REPLAY_BOOK_DEPTH: usize = 1000;

/// Arguments of `stoic replay`.
///
/// Reads a file written by `stoic record` (JSON lines `{"recv_ns":..., "frame":"..."}`),
/// decodes every frame with the engine's decoder, applies book messages to L2 books with
/// change-id continuity, and prints one JSON summary: frame counts, decode errors by
/// code, and per instrument the book state (live/gapped), last change id, best bid/ask,
/// level counts and gaps. Exit status 0 when every frame decoded, 1 otherwise.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Recorded session file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Also print one `stoic decode`-style line per frame before the summary.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs `stoic replay`.
///
/// # Errors
/// When the file cannot be read or output cannot be written.
// The CLI dispatcher fixes this signature (every subcommand takes its Args by value).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let f = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.file.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let all_ok = run(BufReader::new(f), &mut out, args.verbose)?;
    out.flush()?;
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run<R: BufRead, W: Write>(input: R, out: &mut W, verbose: bool) -> anyhow::Result<bool> {
    let mut dec = Decoder::new();
    let mut books: BTreeMap<String, L2Book> = BTreeMap::new();
    let mut errors: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut frames, mut decoded) = (0u64, 0u64);
    let (mut first_ns, mut last_ns) = (None::<u64>, 0u64);
    let mut buf = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        frames += 1;
        let Ok(rec) = serde_json::from_str::<Value>(&line) else {
            *errors.entry("BAD_RECORD").or_default() += 1;
            continue;
        };
        let (Some(recv_ns), Some(frame)) = (rec["recv_ns"].as_u64(), rec["frame"].as_str()) else {
            *errors.entry("BAD_RECORD").or_default() += 1;
            continue;
        };
        first_ns.get_or_insert(recv_ns);
        last_ns = last_ns.max(recv_ns);
        buf.clear();
        buf.extend_from_slice(frame.as_bytes());
        let msg = match dec.decode(&mut buf) {
            Ok(m) => m,
            Err(e) => {
                *errors.entry(e.name()).or_default() += 1;
                if verbose {
                    writeln!(out, "{}", json!({"ok": false, "error": e.name(), "line": i + 1}))?;
                }
                continue;
            }
        };
        decoded += 1;
        *kinds.entry(msg.kind()).or_default() += 1;
        if verbose {
            writeln!(out, "{}", super::decode::summarize(&msg))?;
        }
        if let Message::Notification(n) = &msg {
            if let NotificationData::Book(u) = &n.data {
                let book = books
                    .entry(u.instrument_name.to_owned())
                    .or_insert_with(|| L2Book::new(u.instrument_name, REPLAY_BOOK_DEPTH));
                if let Err(e) = book.apply(u) {
                    *errors.entry(e.name()).or_default() += 1;
                    // A replay has no venue to resubscribe to: the next snapshot heals it.
                    book.resubscribe_sent();
                }
            }
        }
    }
    let fmt = |x: Option<(hotpath::venue::Decimal8, hotpath::venue::Decimal8)>| {
        x.map_or(Value::Null, |(p, a)| json!({"price": p.to_string(), "amount": a.to_string()}))
    };
    let books_json: Vec<Value> = books
        .values()
        .map(|b| {
            json!({
                "instrument": b.instrument(),
                "state": format!("{:?}", b.state()).to_lowercase(),
                "last_change_id": b.last_change_id(),
                "best_bid": fmt(b.best_bid()),
                "best_ask": fmt(b.best_ask()),
                "bids": b.bids().len(),
                "asks": b.asks().len(),
                "updates": b.updates_total(),
                "gaps": b.gaps_total(),
                "crossed": b.is_crossed(),
            })
        })
        .collect();
    let summary = json!({
        "frames": frames,
        "decoded": decoded,
        "kinds": kinds,
        "errors": errors,
        "span_ms": first_ns.map_or(0, |f| (last_ns - f) / 1_000_000),
        "books": books_json,
    });
    writeln!(out, "{summary}")?;
    Ok(decoded == frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> String {
        let p = format!("{}/tests/fixtures/venue_samples/{name}", env!("CARGO_MANIFEST_DIR"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        v.to_string()
    }

    fn file(frames: &[String]) -> String {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                json!({"recv_ns": 1_000_000_000u64 + i as u64 * 5_000_000, "frame": f}).to_string()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn replay_reports_the_gap_and_the_book() {
        let input = file(&[
            frame("subscribe_response.json"),
            frame("book_option_snapshot.json"),
            frame("book_option_change.json"),
            frame("heartbeat_test_request.json"),
            frame("book_option_change_gap.json"),
        ]);
        let mut out = Vec::new();
        assert!(run(input.as_bytes(), &mut out, false).unwrap());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["frames"], 5);
        assert_eq!(v["decoded"], 5);
        assert_eq!(v["errors"]["GAP"], 1);
        assert_eq!(v["span_ms"], 20);
        let b = &v["books"][0];
        assert_eq!(b["instrument"], "BTC-25JUL25-110000-C");
        assert_eq!(b["state"], "gapped");
        assert_eq!(b["gaps"], 1);
        assert_eq!(b["updates"], 2);
        assert_eq!(b["last_change_id"], 69_871_234_509u64);
        assert_eq!(b["best_bid"]["price"], "0.0165");
    }

    #[test]
    fn bad_records_and_frames_fail_the_run() {
        let input = format!("not json\n{{\"recv_ns\":1}}\n{}", file(&["{broken".to_owned()]));
        let mut out = Vec::new();
        assert!(!run(input.as_bytes(), &mut out, true).unwrap());
        let text = String::from_utf8(out).unwrap();
        let summary: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(summary["errors"]["BAD_RECORD"], 2);
        assert_eq!(summary["errors"]["INVALID_JSON"], 1);
        assert_eq!(summary["decoded"], 0);
    }
}
