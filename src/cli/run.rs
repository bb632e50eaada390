//! `stoic run`: the engine against a venue (`--headless --venue-url ...`), or, with no
//! venue, an embedded simulator plus the engine in paper mode. The engine is `crate::engine`;
//! this file only turns arguments into `EngineOptions`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hotpath::domain::engine_config::{EngineConfig, Topology as ConfigTopology};
use hotpath::ring::topology::CoreId;
use hotpath::ring::{available_cores, choose_topology, core_plan, Topology};
use hotpath::venue::auth::{Credentials, Secret};

use crate::engine::operator_socket::OperatorSocket;
use crate::engine::{strategies, Engine, EngineOptions, EngineSnapshot};

/// Arguments of `stoic run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// No embedded simulator: trade against `--venue-url` (an already running `stoic sim`).
    #[arg(long, requires = "venue_url")]
    pub headless: bool,
    /// Venue WebSocket URL, e.g. ws://127.0.0.1:PORT/ws/api/v2.
    #[arg(long)]
    pub venue_url: Option<String>,
    /// WAL directory (default: a fresh directory under the system temp dir).
    #[arg(long)]
    pub wal_dir: Option<PathBuf>,
    /// Strategy: quoter (default), vertical or churn. Built after the instruments load.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Thread topology (default: `topology` of config/engine.json). `pinned` falls back to
    /// `compact`, and says so, when the machine has too few cores for its spinning stages.
    #[arg(long, value_parser = ["pinned", "compact"])]
    pub topology: Option<String>,
    /// Runtime configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Strategy seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// API key file `{"client_id","client_secret"}` (default: the simulator's dev trade key
    /// from config/sim_accounts.json).
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Stop after this many intents were journaled (and answered).
    #[arg(long)]
    pub max_intents: Option<u64>,
    /// Policy file (default: config/policy_churn.json for churn; config/policy_paper.json
    /// against the embedded simulator; else config/policy.json).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Status server address (always in embedded mode; with --headless only when given).
    #[arg(long)]
    pub status_addr: Option<String>,
    /// Operator token file (default: a generated token in <wal-dir>/control_token, mode 0600).
    #[arg(long)]
    pub control_token_file: Option<PathBuf>,
    /// Strategy tick in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub tick_ms: u64,
    /// Run id stamped on every trace line and metric (default: pid and start time, unique
    /// per process start). Fixed ids are for reproducible evidence runs.
    #[arg(long, value_parser = crate::engine::trace::parse_run_id)]
    pub run_id: Option<String>,
    /// Trace log: one JSON line per engine event (default: trace.jsonl next to the WAL dir).
    #[arg(long)]
    pub trace_log: Option<PathBuf>,
    /// Vertical on explicit legs (LOW_CALL,HIGH_CALL) instead of the registry's choice.
    #[arg(long, value_delimiter = ',')]
    pub legs: Vec<String>,
    /// Vertical: enter when the debit is at most this share of the width (bps, 1..=10000).
    #[arg(long)]
    pub entry_debit_bps: Option<i64>,
    /// Vertical: spread size in lots of the legs' minimum amount.
    #[arg(long)]
    pub lots: Option<i64>,
}

static STOP: AtomicBool = AtomicBool::new(false);

#[allow(unsafe_code)]
mod signals {
    extern "C" fn on_signal(_sig: libc::c_int) {
        super::STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// SIGTERM and SIGINT set the stop flag (the handler only stores to an atomic, which is
    /// async-signal-safe).
    pub fn install() {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installing a handler that only performs an atomic store.
        unsafe {
            libc::signal(libc::SIGTERM, handler);
            libc::signal(libc::SIGINT, handler);
        }
    }
}

fn repo_file(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn dev_credentials() -> Credentials {
    Credentials {
        client_id: "sim-dev-trade".into(),
        client_secret: Secret::new("sim-dev-trade-secret-0001".into()),
    }
}

fn operator_token(args: &Args, wal_dir: &Path) -> anyhow::Result<(String, PathBuf)> {
    if let Some(p) = &args.control_token_file {
        let t = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
        return Ok((t.trim().to_owned(), p.clone()));
    }
    std::fs::create_dir_all(wal_dir)?;
    let path = wal_dir.join("control_token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        if t.trim().len() >= 16 {
            return Ok((t.trim().to_owned(), path));
        }
    }
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("read /dev/urandom")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        writeln!(f, "{token}")?;
    }
    Ok((token, path))
}

/// Prints a progress line every second from the latest published snapshot until `stop`.
fn spawn_progress_printer(
    published: crate::engine::status::Published,
    stop: std::sync::Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("stoic-progress".into()).spawn(move || {
        let mut next = std::time::Instant::now() + Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) {
            std::thread::park_timeout(next.saturating_duration_since(std::time::Instant::now()));
            if stop.load(Ordering::Relaxed) || std::time::Instant::now() < next {
                continue;
            }
            next += Duration::from_secs(1);
            let latest = published.lock().ok().and_then(|g| g.clone());
            if let Some(s) = latest {
                progress_line(&s);
            }
        }
    })
}

fn progress_line(s: &EngineSnapshot) {
    let pos: Vec<String> =
        s.positions.iter().map(|(n, q)| format!("{n}:{}", *q as f64 / 1e8)).collect();
    println!(
        "progress: run_id={} mode={:?} risk={:?} latched={} intents={} sent={} acked={} fills={} filled={} cancelled={} venue_rejects={} gate_rejects={} abandoned={} in_doubt={} live={} positions=[{}] cash_flow={:.4} pnl_mark={:.4} md_events={} md_overflows={} md_resubscribes={} last_gate_reject={}",
        s.run_id,
        s.mode,
        s.risk_state,
        s.latched,
        s.stats.intents,
        s.stats.sent,
        s.stats.acked,
        s.stats.fills,
        s.stats.filled,
        s.stats.cancelled,
        s.stats.venue_rejects,
        s.stats.gate_rejects,
        s.stats.abandoned,
        s.in_doubt,
        s.live_orders,
        pos.join(","),
        s.cash_flow as f64 / 1e8,
        s.pnl_mark as f64 / 1e8,
        s.stats.market_events,
        s.stats.notice_overflows,
        s.stats.resubscribes,
        s.last_gate_reject.as_deref().unwrap_or("-"),
    );
    let _ = std::io::stdout().flush();
}

/// Stage threads that busy-spin under `pinned`: feed, gate, strategy, dispatch.
const SPINNING_STAGES: usize = 4;

/// The topology to run (flag, else config), downgraded to `compact` when the cores do not
/// suffice, and the one start line that says which, with what threads, and why.
fn topology(args: &Args) -> anyhow::Result<(Topology, [Option<CoreId>; 4])> {
    let (requested, source) = if let Some(t) = &args.topology {
        (if t == "pinned" { Topology::Pinned } else { Topology::Compact }, "--topology")
    } else {
        let path = args.config.clone().unwrap_or_else(|| repo_file("config/engine.json"));
        let cfg = EngineConfig::load_from_path(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let t = match cfg.topology {
            ConfigTopology::Pinned => Topology::Pinned,
            ConfigTopology::Compact => Topology::Compact,
        };
        (t, "config/engine.json")
    };
    let cores = available_cores();
    let compact_threads = "2 stage threads: feed (market data, books) + trading (strategy, \
                           gates, WAL, dispatch, reports); status server";
    let pinned_threads = "4 stage threads: feed (market data, books), strategy, gate (gates, WAL, \
                          reports applied), dispatch (socket writes, replies); status server";
    let chosen = match requested {
        Topology::Compact => {
            println!(
                "topology: compact ({source}); {compact_threads}; {} cores; unpinned, stages \
                 block in their socket polls (≤ 1 ms trading, ≤ 20 ms feed) instead of spinning",
                cores.len()
            );
            (Topology::Compact, [None; 4])
        }
        Topology::Pinned => {
            let choice = choose_topology(cores.len(), SPINNING_STAGES);
            if choice.topology == Topology::Pinned {
                let plan = core_plan(Topology::Pinned, SPINNING_STAGES, &cores);
                println!(
                    "topology: pinned ({source}); {pinned_threads}; feed on {:?}, gate on {:?}, \
                     strategy on {:?}, dispatch on {:?}, all busy-spin; {}",
                    plan[0].map(|c| c.id),
                    plan[1].map(|c| c.id),
                    plan[2].map(|c| c.id),
                    plan[3].map(|c| c.id),
                    choice.reason
                );
                (Topology::Pinned, [plan[0], plan[1], plan[2], plan[3]])
            } else {
                println!(
                    "topology: compact (pinned asked by {source}, not possible here); \
                     {compact_threads}; {}",
                    choice.reason
                );
                (Topology::Compact, [None; 4])
            }
        }
    };
    Ok(chosen)
}

/// Runs the engine until SIGTERM/Ctrl-C (or `--max-intents`).
///
/// # Errors
/// Start-up failures (WAL, venue, reconciliation).
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    signals::install();
    // Warnings and errors (control-plane audit lines under target `stoic::control`, WAL and
    // venue trouble) go to stderr; progress stays on stdout.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .with_target(true)
        .try_init();
    let run_id = format!(
        "{:x}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let run_id = args.run_id.clone().unwrap_or(run_id);
    let wal_dir = args
        .wal_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("stoic-run-{run_id}")).join("wal"));
    let name = args.strategy.clone().unwrap_or_else(|| strategies::DEFAULT_NAME.to_owned());
    strategies::check_name(&name).map_err(anyhow::Error::msg)?;
    let strategy = if name == "vertical" && !args.legs.is_empty() {
        strategies::vertical(args.seed, &args.legs, args.entry_debit_bps, args.lots)?
    } else {
        strategies::factory(&name, args.seed)
    };
    let (topology, cores) = topology(&args)?;
    let policy_path = args.policy.clone().unwrap_or_else(|| {
        repo_file(match name.as_str() {
            "churn" => "config/policy_churn.json",
            // The embedded simulator's option books are 6 % wide (its LP quotes ±3 % of the
            // mark); the paper policy admits opens up to 10 %. A real venue gets policy.json.
            _ if args.venue_url.is_none() => "config/policy_paper.json",
            _ => "config/policy.json",
        })
    });
    let credentials = match &args.credentials {
        Some(p) => Credentials::from_file(p)?,
        None => dev_credentials(),
    };
    let (token, token_path) = operator_token(&args, &wal_dir)?;
    let mut sim = None;
    let venue_url = if args.headless {
        args.venue_url.clone().context("--headless needs --venue-url")?
    } else if let Some(u) = &args.venue_url {
        u.clone()
    } else {
        let journal = wal_dir.parent().unwrap_or(&wal_dir).join("sim_journal.jsonl");
        let h = simulator::Simulator::start(simulator::SimConfig {
            journal,
            ..simulator::SimConfig::default()
        })?;
        let url = h.ws_url();
        println!("simulator: {url} journal={}", h.journal_path().display());
        sim = Some(h);
        url
    };
    println!(
        "stoic run: run_id={run_id} strategy={name} seed={} venue={venue_url} wal={} policy={} control_token={}",
        args.seed,
        wal_dir.display(),
        policy_path.display(),
        token_path.display()
    );
    let metrics = std::sync::Arc::new(coldpath::metrics::MetricsRegistry::new(&run_id));
    let (trace, sink) =
        crate::engine::trace::start_sink(args.trace_log.as_deref(), &wal_dir, &metrics)?;
    let wal_dir_for_socket = wal_dir.clone();
    refuse_simulated_environment_on_a_remote_venue(&policy_path, &venue_url)?;
    let opts = EngineOptions {
        venue_url,
        credentials,
        wal_dir,
        policy_path,
        strategy,
        topology,
        cores,
        spawn_feed: true,
        strategy_thread: topology == Topology::Pinned,
        strategy_wait: topology.wait_strategy(),
        dispatch_thread: topology == Topology::Pinned,
        dispatch_wait: topology.wait_strategy(),
        max_intents: args.max_intents,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        startup_operator_token: Some(token),
        taker_fee_bps: 5.0,
        maker_fee_bps: 0.0,
        run_id,
        trace,
    };
    let mut engine = Engine::new(opts)?;
    let mut server = None;
    let mut operator_socket = None;
    // Always: the engine publishes its status snapshot (every 50 ms, never blocking) into
    // `published`; the progress printer and the status server read it on their own threads.
    let published: crate::engine::status::Published = std::sync::Arc::default();
    let (control, port) = crate::engine::status::control_channel(published.clone());
    engine.set_control(port);
    if !args.headless || args.status_addr.is_some() {
        engine.set_metrics(std::sync::Arc::clone(&metrics));
        let cfg = coldpath::server::ServerConfig {
            addr: args
                .status_addr
                .as_deref()
                .unwrap_or("127.0.0.1:8787")
                .parse()
                .context("--status-addr")?,
            token_file: Some(token_path.clone()),
            ..coldpath::server::ServerConfig::default()
        };
        let control = std::sync::Arc::new(control);
        let h = coldpath::server::start(
            cfg,
            std::sync::Arc::new(crate::engine::status::EngineStatus {
                published: published.clone(),
            }),
            control.clone(),
            std::sync::Arc::clone(&metrics),
        )
        .context("start the status server")?;
        println!("status: http://{}/ (control token: {})", h.local_addr(), token_path.display());
        let sock =
            OperatorSocket::start(&wal_dir_for_socket, control).context("operator socket")?;
        println!("operator socket: {} (stoic mode relax)", sock.path().display());
        operator_socket = Some(sock);
        server = Some(h);
    }
    engine.start()?;
    let pump_stop = std::sync::Arc::new(AtomicBool::new(false));
    let pump = match engine.feed_counters() {
        Some(c) => Some(crate::engine::feed::spawn_metrics_pump(
            c,
            engine.hot_state_reader(),
            std::sync::Arc::clone(&metrics),
            std::sync::Arc::clone(&pump_stop),
        )?),
        None => None,
    };
    println!("trading: strategy={name} (Ctrl-C or SIGTERM stops cleanly)");
    // Progress lines are formatted and printed on a cold thread from the published snapshot,
    // not on the trading thread.
    let printer_stop = std::sync::Arc::new(AtomicBool::new(false));
    let printer = spawn_progress_printer(published, std::sync::Arc::clone(&printer_stop))?;
    let result = engine.run_until(&STOP, &mut |_| {});
    printer_stop.store(true, Ordering::Relaxed);
    printer.thread().unpark();
    let _ = printer.join();
    progress_line(&engine.snapshot()); // the last line: after shutdown
    match &result {
        Ok(()) => println!("stopped: clean shutdown (open orders cancelled, WAL synced)"),
        Err(e) => println!("stopped: error: {e} (open orders cancelled, WAL synced)"),
    }
    pump_stop.store(true, Ordering::Relaxed);
    if let Some(p) = pump {
        let _ = p.join();
    }
    drop(engine); // the trace producer goes with it: the sink drains what is left
    sink.stop();
    if let Some(h) = server {
        h.shutdown();
    }
    if let Some(s) = operator_socket {
        s.remove();
    }
    if let Some(h) = sim {
        h.shutdown();
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

/// DEV and PAPER policies are for a simulated venue (no real orders: `trade_capable` false,
/// and the engine relaxes itself after a clean reconciliation there). Pointing one at a venue
/// that is not on this host is refused before anything connects; a real venue needs a
/// STAGING or LIVE policy. A policy that does not load is left to the engine (it starts in
/// Kill and says why).
fn refuse_simulated_environment_on_a_remote_venue(
    policy_path: &Path,
    venue_url: &str,
) -> anyhow::Result<()> {
    use hotpath::domain::policy::{Environment, Policy};
    let Ok(policy) = Policy::load_from_path(policy_path) else { return Ok(()) };
    if !matches!(policy.environment, Environment::Dev | Environment::Paper) {
        return Ok(());
    }
    let url = hotpath::venue::conn::VenueUrl::parse(venue_url)
        .map_err(|e| anyhow::anyhow!("venue url {venue_url:?}: {e}"))?;
    let local = matches!(url.host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]");
    anyhow::ensure!(
        local,
        "policy {} is environment {} (simulated venue only), but --venue-url {venue_url} is not on this host; use a STAGING or LIVE policy for a real venue",
        policy_path.display(),
        policy.environment.as_str()
    );
    Ok(())
}
