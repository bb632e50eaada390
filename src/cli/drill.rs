//! `stoic drill`: operational drills against the simulator.
//!
//! `stoic drill break-glass` proves `docs/break_glass_runbook.md` end to end: see
//! `drill_break_glass`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::drill_break_glass;

/// Arguments of `stoic drill`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    drill: Drill,
}

#[derive(Debug, Subcommand)]
enum Drill {
    /// Runaway strategy → Kill through the control plane (the runbook's exact command) →
    /// no opens reach the simulator after the acknowledgement → emergency close flattens.
    /// Writes drill.md and log_excerpt.txt; exits 1 when any step fails.
    BreakGlass(BreakGlassArgs),
}

/// Arguments of `stoic drill break-glass`.
#[derive(Debug, clap::Args)]
pub struct BreakGlassArgs {
    /// Where the evidence goes (drill.md, log_excerpt.txt, runbook_snapshot.md).
    #[arg(long, default_value = "evidence/phase0/break_glass", value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Scratch directory for the run (WAL, simulator journal, logs); default: a fresh
    /// directory under the system temp dir.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Seconds to wait for the runaway to build a position before giving up.
    #[arg(long, default_value_t = 60, value_name = "S")]
    pub position_wait_s: u64,
    /// Seconds to watch for opens after the Kill was acknowledged.
    #[arg(long, default_value_t = 3, value_name = "S")]
    pub watch_s: u64,
}

/// Runs `stoic drill`.
///
/// # Errors
/// Set-up failures (cannot start the engine, cannot write evidence).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    match args.drill {
        Drill::BreakGlass(a) => drill_break_glass::run(&a),
    }
}
