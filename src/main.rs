//! `stoic`: the command-line front of the engine. Each subcommand lives in `cli/<name>.rs`.
#![deny(unsafe_code)]

mod cli;
mod engine;
mod paper;

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
