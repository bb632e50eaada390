//! `stoic health`: asks a running engine's status server for `/api/v1/health` and prints
//! `ok`, `build_id`, `contract_version`.
//!
//! Exit codes (shared with `stoic status`): 0 ok; 1 reachable but NOT ok (engine says so, or
//! its answer breaks the status contract); 3 unreachable or not a Stoic status server.
//! Clap's own usage errors exit 2.

use std::process::ExitCode;
use std::time::Duration;

use coldpath::client::{self, HttpResponse};
use coldpath::status::HealthSnapshot;

/// Build id of this binary: `<git hash>-<cargo profile>` (from build.rs).
pub const BUILD_ID: &str = env!("STOIC_BUILD_ID");
/// Default base URL: the status server's default loopback address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";

/// Exit code: the engine answered but is not ok.
pub const EXIT_NOT_OK: u8 = 1;
/// Exit code: the engine could not be reached or did not answer like a status server.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Check that the engine is up: prints ok, build_id and contract_version.
///
/// Exits 0 when ok, 1 when the engine reports not ok, 3 when it cannot be reached.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of the engine's status server.
    #[arg(long, default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Print the JSON answer instead of the human-readable lines.
    #[arg(long)]
    pub json: bool,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub timeout_ms: u64,
}

/// Runs `stoic health`.
///
/// # Errors
/// None in practice: every failure is reported and mapped to an exit code.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let resp = match fetch(&args.url, "/api/v1/health", args.timeout_ms) {
        Ok(r) => r,
        Err(why) => return Ok(unreachable(&args.url, &why, args.json)),
    };
    let health: HealthSnapshot = match serde_json::from_slice(&resp.body) {
        Ok(h) if resp.status == 200 => h,
        Ok(_) | Err(_) => {
            let why = format!("HTTP {} with a body that is not a health report", resp.status);
            return Ok(unreachable(&args.url, &why, args.json));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&health)?);
    } else {
        println!("ok:               {}", health.ok);
        println!("build_id:         {}", health.build_id);
        println!("contract_version: {}", health.contract_version);
        if health.build_id != BUILD_ID {
            println!("(note: this stoic binary is build {BUILD_ID}, the engine is another build)");
        }
    }
    if health.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "stoic health: NOT OK: the engine at {} reports ok=false (its loop, inputs or status \
             report are not healthy); run `stoic status --url {}` for the reasons",
            args.url, args.url
        );
        Ok(ExitCode::from(EXIT_NOT_OK))
    }
}

/// GETs `path`, mapping every client error to one sentence.
pub(crate) fn fetch(url: &str, path: &str, timeout_ms: u64) -> Result<HttpResponse, String> {
    client::get(url, path, Duration::from_millis(timeout_ms.max(1))).map_err(|e| e.to_string())
}

/// Reports an unreachable engine (stderr always; stdout JSON too with `--json`).
pub(crate) fn unreachable(url: &str, why: &str, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({"ok": false, "reachable": false, "url": url, "error": why})
        );
    }
    eprintln!("stoic: NOT OK: cannot get a status answer from {url}: {why}. Is the engine (`stoic run`) running, and is --url right?");
    ExitCode::from(EXIT_UNREACHABLE)
}
