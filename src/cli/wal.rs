//! `stoic wal`: verify or dump a write-ahead log directory (read-only; refuses while the
//! engine holds the WAL).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use hotpath::wal::{Record, ReplayEvent, VerifyReport, WalError, WalReader};

/// Arguments of `stoic wal`.
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Read-only tools for the intent write-ahead log (format: docs/wal_format.md).\n\n\
Both take a shared lock on DIR/LOCK and refuse while a running engine holds the WAL.\n\
Exit codes: 0 ok (a torn tail is reported but is not an error: the engine truncates it on its \
next start), 1 the WAL is corrupt (the message names segment file and byte offset), 2 setup \
error (no such directory, locked, I/O)."
)]
pub struct Args {
    #[command(subcommand)]
    command: WalCommand,
}

#[derive(Debug, Subcommand)]
enum WalCommand {
    /// Check every segment header, record CRC, sequence number and checkpoint; print a summary.
    Verify {
        /// WAL directory (the engine's --wal-dir).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Dump every segment and record in human-readable form, then the in-doubt intents.
    Inspect {
        /// WAL directory (the engine's --wal-dir).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `stoic wal`.
///
/// # Errors
/// Setup errors (missing directory, lock held, I/O); corruption is reported with exit code 1.
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        WalCommand::Verify { dir, json } => verify(&dir, json),
        WalCommand::Inspect { dir, json } => inspect(&dir, json),
    }
}

/// Corruption-type errors exit 1; everything else is a setup error (exit 2 via `main`).
fn is_corruption(e: &WalError) -> bool {
    matches!(
        e,
        WalError::Corrupt { .. }
            | WalError::SequenceBreak { .. }
            | WalError::BadPayload { .. }
            | WalError::LedgerReplay { .. }
            | WalError::BadSegmentHeader { .. }
            | WalError::BadSegment { .. }
            | WalError::MissingSegment { .. }
            | WalError::NoCheckpoint { .. }
    )
}

fn fail(e: WalError, json: bool) -> anyhow::Result<ExitCode> {
    if !is_corruption(&e) {
        return Err(e.into());
    }
    if json {
        println!("{}", serde_json::json!({ "ok": false, "error": e.to_string() }));
    }
    eprintln!("stoic wal: CORRUPT: {e}");
    Ok(ExitCode::from(1))
}

fn open(dir: &Path) -> anyhow::Result<WalReader> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    Ok(WalReader::open(dir)?)
}

fn verify(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let reader = open(dir)?;
    let report = match reader.verify(&mut |_| {}) {
        Ok(r) => r,
        Err(e) => return fail(e, json),
    };
    if json {
        println!("{}", summary_json(&report));
    } else {
        println!(
            "WAL {}: ok: {} segment(s) from {}, {} record(s), last seq {}, {} bytes, {} in-doubt intent(s)",
            dir.display(),
            report.segments,
            report.first_segment,
            report.records,
            report.last_seq,
            report.bytes,
            report.in_doubt
        );
        if let Some(t) = &report.torn_tail {
            println!(
                "torn tail at {}:{} ({} bytes: {}); the engine truncates it on its next start",
                t.segment.display(),
                t.offset,
                t.bytes,
                t.fault
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(r: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "ok": true,
        "segments": r.segments,
        "first_segment": r.first_segment,
        "records": r.records,
        "last_seq": r.last_seq,
        "bytes": r.bytes,
        "in_doubt": r.in_doubt,
        "torn_tail": r.torn_tail.as_ref().map(|t| serde_json::json!({
            "segment": t.segment.display().to_string(),
            "offset": t.offset,
            "bytes": t.bytes,
            "fault": t.fault.to_string(),
        })),
    })
}

fn record_fields(rec: &Record<'_>) -> serde_json::Value {
    use serde_json::json;
    match *rec {
        Record::IntentRecorded { intent_hash, label, canonical } => json!({
            "intent_hash": format!("{intent_hash:#018x}"), "label": label,
            "canonical_len": canonical.len(), "canonical_hex": hex_prefix(canonical, usize::MAX),
        }),
        Record::Sent { intent_hash } => json!({ "intent_hash": format!("{intent_hash:#018x}") }),
        Record::Acknowledged { intent_hash, venue_order_id } => {
            json!({ "intent_hash": format!("{intent_hash:#018x}"), "venue_order_id": venue_order_id })
        }
        Record::PartiallyFilled { intent_hash, filled_qty, trade_id }
        | Record::Filled { intent_hash, filled_qty, trade_id } => {
            json!({ "intent_hash": format!("{intent_hash:#018x}"), "filled_qty": filled_qty, "trade_id": trade_id })
        }
        Record::Cancelled { intent_hash, filled_qty } => {
            json!({ "intent_hash": format!("{intent_hash:#018x}"), "filled_qty": filled_qty })
        }
        Record::Rejected { intent_hash, code, reason } => {
            json!({ "intent_hash": format!("{intent_hash:#018x}"), "code": code, "reason": reason })
        }
        Record::Abandoned { intent_hash, reason } => {
            json!({ "intent_hash": format!("{intent_hash:#018x}"), "reason": reason })
        }
        Record::OperatorAction { action, who, reason } => {
            json!({ "action": action.as_str(), "who": who, "reason": reason })
        }
        Record::Checkpoint(v) => json!({
            "open_intents": v.entry_count(),
            "counts": { "entered": v.counts().entered, "operator_actions": v.counts().operator_actions },
            "entries": v.entries().map(|e| json!({
                "intent_hash": format!("{:#018x}", e.intent_hash), "state": e.state.as_str(),
                "label": e.label, "filled_qty": e.filled_qty, "venue_order_id": e.venue_order_id,
            })).collect::<Vec<_>>(),
        }),
        Record::GroupEvent { group, event, detail } => {
            json!({ "group": group, "event": event, "detail": detail })
        }
    }
}

fn hex_prefix(b: &[u8], max: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len().min(max) * 2 + 3);
    for x in b.iter().take(max) {
        let _ = write!(s, "{x:02x}");
    }
    if b.len() > max {
        s.push_str("...");
    }
    s
}

fn record_text(rec: &Record<'_>) -> String {
    match *rec {
        Record::IntentRecorded { intent_hash, label, canonical } => format!(
            "hash={intent_hash:#018x} label={label:?} canonical={}B {}",
            canonical.len(),
            hex_prefix(canonical, 24)
        ),
        Record::Sent { intent_hash } => format!("hash={intent_hash:#018x}"),
        Record::Acknowledged { intent_hash, venue_order_id } => {
            format!("hash={intent_hash:#018x} venue_order_id={venue_order_id:?}")
        }
        Record::PartiallyFilled { intent_hash, filled_qty, trade_id }
        | Record::Filled { intent_hash, filled_qty, trade_id } => {
            format!("hash={intent_hash:#018x} filled_qty={filled_qty} trade_id={trade_id:?}")
        }
        Record::Cancelled { intent_hash, filled_qty } => {
            format!("hash={intent_hash:#018x} filled_qty={filled_qty}")
        }
        Record::Rejected { intent_hash, code, reason } => {
            format!("hash={intent_hash:#018x} code={code} reason={reason:?}")
        }
        Record::Abandoned { intent_hash, reason } => {
            format!("hash={intent_hash:#018x} reason={reason:?}")
        }
        Record::OperatorAction { action, who, reason } => {
            format!("action={} who={who:?} reason={reason:?}", action.as_str())
        }
        Record::Checkpoint(v) => format!(
            "open_intents={} recorded_total={} operator_actions={}",
            v.entry_count(),
            v.counts().entered[0],
            v.counts().operator_actions
        ),
        Record::GroupEvent { group, event, detail } => {
            format!("group={group} event={event} {detail}")
        }
    }
}

fn inspect(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let reader = open(dir)?;
    let mut visit = |ev: ReplayEvent<'_, '_>| match ev {
        ReplayEvent::Segment { path, header } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "type": "segment", "path": path.display().to_string(), "index": header.segment_index,
                        "first_seq": header.first_seq, "bytes": header.segment_bytes, "created_ms": header.created_ms,
                    })
                );
            } else {
                println!(
                    "== segment {} ({}): first_seq={} bytes={} created_ms={}",
                    header.segment_index,
                    path.display(),
                    header.first_seq,
                    header.segment_bytes,
                    header.created_ms
                );
            }
        }
        ReplayEvent::Record { segment_index, offset, header, record } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "type": "record", "segment": segment_index, "offset": offset, "seq": header.seq,
                        "ts_ms": header.ts_ms, "batch_first_seq": header.batch_first_seq(),
                        "kind": record.kind().as_str(), "len": header.payload_len, "fields": record_fields(record),
                    })
                );
            } else {
                println!(
                    "seg={segment_index} off={offset} seq={} ts_ms={} batch={} {:<15} {}",
                    header.seq,
                    header.ts_ms,
                    header.batch_first_seq(),
                    record.kind().as_str(),
                    record_text(record)
                );
            }
        }
    };
    let report = match reader.verify(&mut visit) {
        Ok(r) => r,
        Err(e) => return fail(e, json),
    };
    let ledger = match reader.ledger() {
        Ok(l) => l,
        Err(e) => return fail(e, json),
    };
    if json {
        for e in ledger.in_doubt() {
            println!(
                "{}",
                serde_json::json!({
                    "type": "in_doubt", "intent_hash": format!("{:#018x}", e.intent_hash), "label": e.label,
                    "state": e.state.as_str(), "filled_qty": e.filled_qty, "venue_order_id": e.venue_order_id,
                    "recorded_seq": e.recorded_seq,
                })
            );
        }
        println!("{}", serde_json::json!({ "type": "summary", "summary": summary_json(&report) }));
    } else {
        println!(
            "== in doubt (resolve with the venue by label before trading): {}",
            ledger.in_doubt_len()
        );
        for e in ledger.in_doubt() {
            println!(
                "  {:#018x} {:?} {} filled_qty={} venue_order_id={:?} recorded_seq={}",
                e.intent_hash,
                e.label,
                e.state.as_str(),
                e.filled_qty,
                e.venue_order_id.as_deref().unwrap_or(""),
                e.recorded_seq
            );
        }
        println!(
            "== {} segment(s), {} record(s), last seq {}{}",
            report.segments,
            report.records,
            report.last_seq,
            report
                .torn_tail
                .as_ref()
                .map(|t| format!(
                    ", torn tail at {}:{} ({})",
                    t.segment.display(),
                    t.offset,
                    t.fault
                ))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
