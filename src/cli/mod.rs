//! Argument parsing and dispatch to one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod control_call;
mod decode;
mod drill;
mod drill_break_glass;
mod emergency;
mod health;
mod keys;
mod mode;
mod paper;
mod record;
mod replay;
mod run;
mod sim;
mod status;
mod wal;

/// Stoic: an automated trading engine for Deribit crypto options.
///
/// Start with `stoic run`: it starts a local Deribit-protocol simulator and the engine in
/// paper mode against it. No exchange and no keys are needed.
#[derive(Debug, Parser)]
#[command(name = "stoic", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine (by default: embedded simulator + engine in paper mode).
    Run(run::Args),
    /// Run the Deribit-protocol venue simulator on loopback.
    Sim(sim::Args),
    /// Print engine health (ok, build id, contract version); non-zero exit when not ok.
    Health(health::Args),
    /// Print engine status (trading mode, reasons, latch, positions); non-zero exit when not ok.
    Status(status::Args),
    /// Operator mode switches of a running engine: kill, reduce-only, relax.
    Mode(mode::Args),
    /// Emergency actions on a running engine: close every position now.
    Emergency(emergency::Args),
    /// Run an operational drill against the simulator (e.g. break-glass).
    Drill(drill::Args),
    /// Probe API keys: authenticate, read scopes, try an action outside them.
    Keys(keys::Args),
    /// Inspect or verify a write-ahead log directory.
    Wal(wal::Args),
    /// Decode venue messages (one JSON per line) and print one JSON line per message.
    Decode(decode::Args),
    /// Record a live venue session (raw frames with receive timestamps) to a file.
    Record(record::Args),
    /// Replay a recorded session through the decoder and book code.
    Replay(replay::Args),
    /// Run an accelerated paper-trading session against the simulator.
    Paper(paper::Args),
    /// Print the latency table for this host (decode, book, gates, ring hop, tick-to-send).
    Bench(bench::Args),
}

/// Runs the chosen subcommand.
///
/// # Errors
/// Whatever the subcommand reports; `main` prints it and exits 2.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => run::main(a),
        Command::Sim(a) => sim::main(a),
        Command::Health(a) => health::main(a),
        Command::Status(a) => status::main(a),
        Command::Mode(a) => mode::main(a),
        Command::Emergency(a) => emergency::main(a),
        Command::Drill(a) => drill::main(a),
        Command::Keys(a) => keys::main(a),
        Command::Wal(a) => wal::main(a),
        Command::Decode(a) => decode::main(a),
        Command::Record(a) => record::main(a),
        Command::Replay(a) => replay::main(a),
        Command::Paper(a) => paper::main(a),
        Command::Bench(a) => bench::main(a),
    }
}
