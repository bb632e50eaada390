//! `stoic status`: asks a running engine for `/api/v1/status` and prints the trading mode,
//! whether opening trades is allowed, every reason in plain words, and the other schema
//! fields. The payload is checked against the status contract (`StatusSnapshot::check`):
//! one that breaks it is reported as NOT OK (`STATE_UNHEALTHY_STATUS_SCHEMA`, fail closed).
//!
//! Exit codes as `stoic health`: 0 ok; 1 NOT ok; 3 unreachable. A ReduceOnly or Kill engine
//! that is healthy exits 0: the mode is the engine doing its job, not a fault.

use std::process::ExitCode;

use coldpath::reason_text::{mode_headline, mode_reason_plain, open_permission_plain};
use coldpath::status::StatusSnapshot;
use serde_json::Value;

use super::health::{fetch, unreachable, DEFAULT_URL, EXIT_NOT_OK};

/// Show the engine's trading mode, why, whether it may open trades, and its safety state.
///
/// Exits 0 when ok, 1 when the engine reports not ok or its status breaks the contract,
/// 3 when it cannot be reached.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the engine's status server.
    #[arg(long, default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Print the engine's status JSON (as served) instead of the human-readable report.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub timeout_ms: u64,
}

/// Runs `stoic status`.
///
/// # Errors
/// Only if printing JSON fails; every engine-side failure maps to an exit code.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let resp = match fetch(&args.url, "/api/v1/status", args.timeout_ms) {
        Ok(r) => r,
        Err(why) => return Ok(unreachable(&args.url, &why, args.json)),
    };
    let raw: Value = match serde_json::from_slice(&resp.body) {
        Ok(v @ Value::Object(_)) if resp.status == 200 => v,
        _ => {
            let why = format!("HTTP {} with a body that is not a status report", resp.status);
            return Ok(unreachable(&args.url, &why, args.json));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    }
    // Typed parse: an unknown mode or reason code, a missing key or a wrong type fails here.
    let parsed: Result<StatusSnapshot, String> =
        serde_json::from_value(raw.clone()).map_err(|e| e.to_string());
    let problems: Vec<String> = match &parsed {
        Ok(s) => s.check().err().unwrap_or_default().into_iter().map(|v| v.0).collect(),
        Err(e) => vec![format!("unreadable: {e}")],
    };
    if !args.json {
        match &parsed {
            Ok(s) => print_human(s, &raw),
            Err(_) => print_raw_fallback(&raw),
        }
    }
    let ok = parsed.as_ref().is_ok_and(|s| s.ok) && problems.is_empty();
    if ok {
        return Ok(ExitCode::SUCCESS);
    }
    if problems.is_empty() {
        eprintln!("stoic status: NOT OK: the engine at {} reports ok=false", args.url);
        for why in parsed.iter().flat_map(|s| &s.not_ok_reasons) {
            eprintln!("  - {why}");
        }
    } else {
        eprintln!(
            "stoic status: NOT OK (STATE_UNHEALTHY_STATUS_SCHEMA): the status from {} breaks the status contract; treat the engine as unsafe:",
            args.url
        );
        for p in &problems {
            eprintln!("  - {p}");
        }
    }
    Ok(ExitCode::from(EXIT_NOT_OK))
}

fn print_human(s: &StatusSnapshot, raw: &Value) {
    println!("ok:                 {}", s.ok);
    for why in &s.not_ok_reasons {
        println!("  not ok because:   {why}");
    }
    println!("build_id:           {}", s.build_id);
    println!("contract_version:   {}", s.contract_version);
    println!("trading_mode:       {}  ({})", s.trading_mode, mode_headline(s.trading_mode));
    println!("is_trading_allowed: {}", s.is_trading_allowed);
    println!("timestamp_utc:      {}", s.timestamp_utc);
    println!("environment:        {}", s.environment);
    if s.mode_reasons.is_empty() {
        println!("mode_reasons:       (none)");
    } else {
        println!("mode_reasons:");
        for r in &s.mode_reasons {
            println!("  - {r}: {}", mode_reason_plain(*r));
        }
    }
    if s.open_permission_reason_codes.is_empty() {
        println!("open_permission_reason_codes: (none; latch clear)");
    } else {
        println!("open_permission_reason_codes (latch set, reconcile required):");
        for r in &s.open_permission_reason_codes {
            println!("  - {r}: {}", open_permission_plain(*r));
        }
    }
    println!("positions: {}   open_orders: {}", s.positions.len(), s.open_orders.len());
    if let Some(d) = &s.daily_pnl {
        let stop = d.max_daily_loss_usd.map_or("no policy".to_owned(), |l| format!("-{l:.2}"));
        println!(
            "daily_pnl_usd:      {:.2} (realized {:.2}, fees {:.2}, unrealized {:.2}; capital stop at {stop}{})",
            d.total_usd,
            d.realized_usd,
            d.fees_usd,
            d.unrealized_usd,
            if d.complete { "" } else { "; some positions not valued" }
        );
    }
    if let Some(t) = s.mode_transitions.last() {
        println!(
            "last mode change:   {} -> {} at {}",
            t.from,
            t.to,
            coldpath::status::format_rfc3339_ms(t.ts_ms)
        );
    }
    println!("--- schema fields ---");
    print_scalars(raw);
}

/// Prints every scalar top-level key not already shown above, in the server's key order.
fn print_scalars(raw: &Value) {
    const SHOWN: [&str; 9] = [
        "ok",
        "build_id",
        "contract_version",
        "trading_mode",
        "is_trading_allowed",
        "timestamp_utc",
        "environment",
        "mode_reasons",
        "open_permission_reason_codes",
    ];
    if let Value::Object(map) = raw {
        for (k, v) in map {
            if SHOWN.contains(&k.as_str()) || matches!(v, Value::Object(_)) {
                continue;
            }
            if let Value::Array(items) = v {
                if items.iter().any(Value::is_object) {
                    continue; // positions, orders, transitions: summarised above
                }
            }
            match v {
                Value::String(text) => println!("{k}: {text}"),
                other => println!("{k}: {other}"),
            }
        }
    }
}

fn print_raw_fallback(raw: &Value) {
    for key in [
        "ok",
        "build_id",
        "contract_version",
        "trading_mode",
        "is_trading_allowed",
        "timestamp_utc",
        "mode_reasons",
    ] {
        println!("{key}: {}", raw.get(key).unwrap_or(&Value::Null));
    }
}
