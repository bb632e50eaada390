//! `stoic sim`: the Deribit-protocol venue simulator as a standalone process.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `stoic sim`.
///
/// Serves Deribit API v2 on loopback: WebSocket JSON-RPC at `ws://ADDR/ws/api/v2`, HTTP at
/// `http://ADDR/api/v2/{method}`, fault injection at `POST /sim/fault` and a state dump at
/// `GET /sim/state`. The first line printed is `listening on ADDR`. See docs/simulator.md.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seed of the market-data generator: the same seed replays the same index walk and quotes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Order journal (JSON lines, truncated at start): every order-affecting request received.
    #[arg(long, default_value = "sim_journal.jsonl")]
    pub journal: PathBuf,
    /// Accounts and API keys (default: the built-in copy of config/sim_accounts.json).
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Market tick in milliseconds (index walk, quote refresh, ticker pushes).
    #[arg(long, default_value_t = 100)]
    pub tick_ms: u64,
    /// Minimum accepted `public/set_heartbeat` interval in seconds (venue: 10).
    #[arg(long, default_value_t = 10)]
    pub heartbeat_min_s: u64,
    /// Maximum concurrent connections (venue: 32 per IP).
    #[arg(long, default_value_t = 32)]
    pub connections_max: usize,
    /// Stop after this many seconds (0 = run until killed).
    #[arg(long, default_value_t = 0)]
    pub run_for_s: u64,
}

/// Runs the simulator until killed (or `--run-for-s`).
///
/// # Errors
/// Bad accounts file, bind failure, journal not creatable.
// Every subcommand's `main` takes its `Args` by value (the dispatcher's convention).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let accounts = match &args.accounts {
        Some(p) => Some(simulator::AccountsFile::load(p)?),
        None => None,
    };
    let cfg = simulator::SimConfig {
        listen: args.listen,
        seed: args.seed,
        journal: args.journal.clone(),
        accounts,
        tick_ms: args.tick_ms,
        heartbeat_min_s: args.heartbeat_min_s,
        connections_max: args.connections_max,
        ..simulator::SimConfig::default()
    };
    let sim = simulator::Simulator::start(cfg)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", sim.addr())?;
        writeln!(
            out,
            "websocket {} http {} journal {}",
            sim.ws_url(),
            sim.http_url(),
            args.journal.display()
        )?;
        out.flush()?;
    }
    if args.run_for_s > 0 {
        std::thread::sleep(std::time::Duration::from_secs(args.run_for_s));
        sim.shutdown();
        return Ok(ExitCode::SUCCESS);
    }
    // Serves until the process is killed; the threads do the work.
    loop {
        std::thread::park();
    }
}
