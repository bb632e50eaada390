//! `stoic emergency close`: runs the engine's deterministic emergency close now (cancel every
//! open order, reduce-only IOC closes through the book in up to three widening rounds, then a
//! perpetual hedge for options still exposed). Works in every mode, Kill included, and with
//! the rate-limit breaker open (containment credit reserve).
//!
//! Exit codes: see `control_call` (0 flat afterwards, 1 exposure remains or refused, 2 local
//! error, 3 no answer, 4 token).

use std::process::ExitCode;

use clap::Subcommand;

use super::control_call::{fail, post, print_status, Answer, HttpArgs, EXIT_REFUSED};

/// Arguments of `stoic emergency`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: EmergencyCommand,
}

#[derive(Debug, Subcommand)]
enum EmergencyCommand {
    /// Flatten every position now with reduce-only IOC orders (`POST /api/v1/emergency/close`).
    Close(HttpArgs),
}

/// Runs `stoic emergency`.
///
/// # Errors
/// Local errors only (token file); engine answers map to exit codes.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let EmergencyCommand::Close(a) = args.command;
    let answer = post(&a, "/api/v1/emergency/close")?;
    let Answer::Accepted(status, raw) = &answer else {
        return Ok(fail("emergency close", &a.url, &answer));
    };
    if a.op.json {
        println!("{}", serde_json::to_string_pretty(raw)?);
    } else {
        println!("stoic emergency close: done and journaled; the venue reports no open position");
        print_status(status);
    }
    if status.positions.iter().any(|p| p.size != 0.0) {
        eprintln!(
            "stoic: emergency close: the engine reports positions still open; run it again or close on the venue (runbook section 3)"
        );
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    Ok(ExitCode::SUCCESS)
}
