//! `stoic`: the command-line front of the engine. Each subcommand lives in `cli/<name>.rs`.
#![deny(unsafe_code)]

mod cli;

/// The engine lives in the library target so that tests can drive its stages in-process.
use stoic::engine;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stoic: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
