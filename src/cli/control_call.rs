//! What `stoic mode …` and `stoic emergency …` share: operator arguments, reading the token
//! file, one authenticated `POST /api/v1/emergency/<command>`, and exit codes.
//!
//! Exit codes (every control command):
//! - 0: accepted, and the status after the change shows it;
//! - 1: the engine answered but refused or could not complete it (HTTP 400/5xx, a relax
//!   refused because reasons remain, an emergency close that left exposure);
//! - 2: a local error (token file unreadable, bad arguments);
//! - 3: no answer (engine not running, wrong `--url`/`--socket`);
//! - 4: unauthorised (wrong or missing token; nothing changed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use coldpath::client;
use coldpath::status::StatusSnapshot;
use serde_json::Value;

use super::health::DEFAULT_URL;

/// The engine answered but refused or failed.
pub const EXIT_REFUSED: u8 = 1;
/// No answer.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Wrong or missing token.
pub const EXIT_UNAUTHORIZED: u8 = 4;

/// Arguments every control command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    /// File whose first line is the operator token (`stoic run` writes `<wal-dir>/control_token`).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// Why (≤ 200 characters); journaled in the WAL with who and when.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Who is acting (1..=64 of [A-Za-z0-9._@-]); default: $USER, else `operator`.
    #[arg(long, value_name = "ID")]
    pub requested_by: Option<String>,
    /// Print the engine's answer as JSON (the status after the change).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the HTTP commands.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Base URL of the engine's status server.
    #[arg(long, default_value = DEFAULT_URL, value_name = "URL")]
    pub url: String,
    /// Give up after this many milliseconds (an emergency close may take up to ~15 s).
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub timeout_ms: u64,
    /// Operator identity and reason.
    #[command(flatten)]
    pub op: OperatorArgs,
}

/// The operator id to record.
#[must_use]
pub fn requested_by(op: &OperatorArgs) -> String {
    op.requested_by.clone().unwrap_or_else(|| {
        std::env::var("USER")
            .ok()
            .filter(|u| {
                !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
            })
            .unwrap_or_else(|| "operator".into())
    })
}

/// The first line of the token file, trimmed.
///
/// # Errors
/// Unreadable or empty file.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "the token file {} is empty", path.display());
    Ok(token)
}

/// What the engine answered to a control POST.
#[derive(Debug)]
pub enum Answer {
    /// 200 with the status after the change.
    Accepted(Box<StatusSnapshot>, Value),
    /// 401.
    Unauthorized,
    /// Another HTTP status, with the error text.
    Refused(u16, String),
    /// No answer.
    Unreachable(String),
}

/// POSTs `path` with the operator's token and body.
///
/// # Errors
/// A local error (token file).
pub fn post(args: &HttpArgs, path: &str) -> anyhow::Result<Answer> {
    let token = read_token(&args.op.token_file)?;
    let body =
        serde_json::json!({"reason": args.op.reason, "requested_by": requested_by(&args.op)});
    let auth = format!("Bearer {token}");
    let resp = match client::request(
        "POST",
        &args.url,
        path,
        &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
        Duration::from_millis(args.timeout_ms.max(1)),
    ) {
        Ok(r) => r,
        Err(e) => return Ok(Answer::Unreachable(e.to_string())),
    };
    let json: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    Ok(match resp.status {
        200 => match serde_json::from_value::<StatusSnapshot>(json.clone()) {
            Ok(s) => Answer::Accepted(Box::new(s), json),
            Err(e) => Answer::Refused(200, format!("answer is not a status report: {e}")),
        },
        401 => Answer::Unauthorized,
        code => Answer::Refused(
            code,
            json.get("error")
                .and_then(Value::as_str)
                .map_or_else(|| String::from_utf8_lossy(&resp.body).into_owned(), str::to_owned),
        ),
    })
}

/// One line about the engine after a command: mode, whether it may open, reasons, positions.
pub fn print_status(s: &StatusSnapshot) {
    let reasons: Vec<String> = s.mode_reasons.iter().map(|r| r.as_str().to_owned()).collect();
    let positions: Vec<String> = s
        .positions
        .iter()
        .filter(|p| p.size != 0.0)
        .map(|p| format!("{} {}", p.instrument_name, p.size))
        .collect();
    println!("trading_mode:       {:?}", s.trading_mode);
    println!("is_trading_allowed: {}", s.is_trading_allowed);
    println!("mode_reasons:       [{}]", reasons.join(", "));
    println!(
        "positions:          {}",
        if positions.is_empty() { "none (flat)".to_owned() } else { positions.join(", ") }
    );
}

/// Maps a non-accepted answer to its message and exit code.
#[must_use]
pub fn fail(what: &str, url: &str, answer: &Answer) -> ExitCode {
    match answer {
        Answer::Accepted(..) => ExitCode::SUCCESS,
        Answer::Unauthorized => {
            eprintln!("stoic: {what}: UNAUTHORIZED (HTTP 401): the token in --token-file is wrong or missing. Nothing changed.");
            ExitCode::from(EXIT_UNAUTHORIZED)
        }
        Answer::Refused(code, why) => {
            eprintln!("stoic: {what}: REFUSED (HTTP {code}): {why}");
            ExitCode::from(EXIT_REFUSED)
        }
        Answer::Unreachable(why) => {
            eprintln!("stoic: {what}: NO ANSWER from {url}: {why}. Is the engine (`stoic run`) running, and is --url right? If it runs but does not answer, stop the process (runbook 1c).");
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}
