//! `stoic mode kill | reduce-only | relax`: the operator's mode switches for a running engine.
//!
//! - `kill` and `reduce-only` tighten through the control plane (`POST
//!   /api/v1/emergency/{kill,reduce_only}`, bearer token);
//! - `relax` loosens, which HTTP never may (contract §7.0): it goes through the engine's
//!   host-local operator socket (`<wal-dir>/control.sock`, mode 0600) with the same token, and
//!   the engine refuses while any reason for the tighter mode is still present.
//!
//! Exit codes: see `control_call` (0 done, 1 refused, 2 local error, 3 no answer, 4 token).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use coldpath::status::StatusSnapshot;
use hotpath::domain::reason_codes::TradingMode;

use super::control_call::{
    fail, post, print_status, read_token, requested_by, Answer, HttpArgs, OperatorArgs,
    EXIT_REFUSED, EXIT_UNAUTHORIZED, EXIT_UNREACHABLE,
};
use crate::engine::operator_socket::{self, SocketRequest};

/// Arguments of `stoic mode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ModeCommand,
}

#[derive(Debug, Subcommand)]
enum ModeCommand {
    /// Kill switch: no new risk at all; the engine cancels its risk-increasing orders.
    /// With a position, the engine's bounded containment closes it (reduce-only IOC rounds,
    /// then a hedge); `stoic emergency close` stays available.
    Kill(HttpArgs),
    /// Emergency reduce-only for at least 300 s: no opens; closes, hedges, cancels continue.
    ReduceOnly(HttpArgs),
    /// Relax to a looser mode (host only, through the engine's operator socket).
    Relax(RelaxArgs),
}

/// The modes a relax may ask for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RelaxTarget {
    /// ReduceOnly (lifts a Kill once its cause is gone).
    ReduceOnly,
    /// Active (every reason must have cleared).
    Active,
}

#[derive(Debug, clap::Args)]
struct RelaxArgs {
    /// The mode to relax to.
    #[arg(long, value_enum)]
    to: RelaxTarget,
    /// The engine's operator socket (`stoic run` prints it: `<wal-dir>/control.sock`).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Operator identity and reason.
    #[command(flatten)]
    op: OperatorArgs,
}

/// Runs `stoic mode`.
///
/// # Errors
/// Local errors only (token file); engine answers map to exit codes.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        ModeCommand::Kill(a) => tighten(&a, "/api/v1/emergency/kill", "kill", TradingMode::Kill),
        ModeCommand::ReduceOnly(a) => {
            tighten(&a, "/api/v1/emergency/reduce_only", "reduce-only", TradingMode::ReduceOnly)
        }
        ModeCommand::Relax(a) => relax(&a),
    }
}

fn tighten(
    args: &HttpArgs,
    path: &str,
    what: &str,
    at_least: TradingMode,
) -> anyhow::Result<ExitCode> {
    let answer = post(args, path)?;
    let Answer::Accepted(status, raw) = &answer else {
        return Ok(fail(&format!("mode {what}"), &args.url, &answer));
    };
    if args.op.json {
        println!("{}", serde_json::to_string_pretty(raw)?);
    }
    report(&format!("mode {what}"), status, at_least, args.op.json)
}

fn report(
    what: &str,
    status: &StatusSnapshot,
    expected: TradingMode,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !json {
        println!("stoic {what}: accepted and journaled");
        print_status(status);
    }
    if status.trading_mode < expected {
        eprintln!(
            "stoic: {what}: the engine accepted the command but reports trading_mode={:?} (expected {expected:?}); treat as NOT stopped (runbook 1c)",
            status.trading_mode
        );
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    Ok(ExitCode::SUCCESS)
}

fn relax(args: &RelaxArgs) -> anyhow::Result<ExitCode> {
    let target = match args.to {
        RelaxTarget::ReduceOnly => TradingMode::ReduceOnly,
        RelaxTarget::Active => TradingMode::Active,
    };
    let req = SocketRequest {
        command: "relax".into(),
        target,
        token: read_token(&args.op.token_file)?,
        requested_by: requested_by(&args.op),
        reason: args.op.reason.clone(),
    };
    let reply = match operator_socket::call(&args.socket, &req) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "stoic: mode relax: NO ANSWER on {}: {e}. Is the engine running on this host, and is --socket right?",
                args.socket.display()
            );
            return Ok(ExitCode::from(EXIT_UNREACHABLE));
        }
    };
    if !reply.ok {
        let why = reply.error.unwrap_or_default();
        return Ok(match reply.code {
            Some(401) => {
                eprintln!("stoic: mode relax: UNAUTHORIZED: {why}. Nothing changed.");
                ExitCode::from(EXIT_UNAUTHORIZED)
            }
            Some(400) => {
                eprintln!("stoic: mode relax: BAD REQUEST: {why}");
                ExitCode::from(2)
            }
            _ => {
                eprintln!("stoic: mode relax: REFUSED: {why}. Nothing changed.");
                ExitCode::from(EXIT_REFUSED)
            }
        });
    }
    let raw = reply.status.unwrap_or_default();
    if args.op.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
    }
    let status: StatusSnapshot = serde_json::from_value(raw)?;
    if !args.op.json {
        println!("stoic mode relax: accepted and journaled");
        print_status(&status);
    }
    if status.trading_mode > target {
        eprintln!(
            "stoic: mode relax: accepted but the engine reports trading_mode={:?}",
            status.trading_mode
        );
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    Ok(ExitCode::SUCCESS)
}
