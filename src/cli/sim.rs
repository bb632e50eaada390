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
    /// Instead of starting a simulator, send this fault (JSON, e.g.
    /// '{"kind":"drop_book_messages","count":3}') to the running one at `--to` and exit.
    /// Kinds: disconnect_all, drop_book_messages, reorder_book_messages, delay_fills,
    /// partial_fill, reject_next_order, rate_limit_storm, maintenance, lock_index,
    /// settlement, clock_skew, freeze_market_data, clear (docs/simulator.md).
    #[arg(long, requires = "to")]
    pub fault: Option<String>,
    /// Address of the running simulator for `--fault` (e.g. 127.0.0.1:PORT).
    #[arg(long)]
    pub to: Option<SocketAddr>,
}

/// Runs the simulator until killed (or `--run-for-s`).
///
/// # Errors
/// Bad accounts file, bind failure, journal not creatable.
// Every subcommand's `main` takes its `Args` by value (the dispatcher's convention).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    if let (Some(fault), Some(to)) = (&args.fault, args.to) {
        return send_fault(to, fault);
    }
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

/// POSTs a fault to a running simulator's control endpoint and prints its reply.
fn send_fault(to: SocketAddr, fault: &str) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    // Validate locally first, so a typo is reported without touching the simulator.
    let parsed: simulator::Fault =
        serde_json::from_str(fault).map_err(|e| anyhow::anyhow!("invalid fault JSON: {e}"))?;
    let body = serde_json::to_string(&parsed)?;
    let mut s = std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_secs(5))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "POST /sim/fault HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    let ok = reply.starts_with("HTTP/1.1 200");
    println!("{}", reply.split_once("\r\n\r\n").map_or(reply.as_str(), |x| x.1));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
