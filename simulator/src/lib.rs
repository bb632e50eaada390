//! A Deribit-protocol venue on loopback: the embedded default behind `stoic run`, and the
//! counterparty of every test, drill and chaos scenario.
//!
//! It is an independent implementation of the venue (it does not depend on `hotpath`), so
//! that it can serve as an oracle: its order journal (`journal`) counts what the engine
//! under test really sent.
//!
//! ```no_run
//! let sim = simulator::Simulator::start(simulator::SimConfig::default()).unwrap();
//! println!("ws://{}/ws/api/v2", sim.addr());
//! sim.faults().apply(&simulator::Fault::DropBookMessages { count: 1, instrument: None });
//! sim.shutdown();
//! ```
#![forbid(unsafe_code)]

pub mod accounts;
pub mod book;
pub mod client;
pub mod clock;
pub mod engine;
pub mod faults;
pub mod instruments;
pub mod journal;
pub mod position_lag;
pub mod pricing;
pub mod ratelimit;
pub mod rpc;
pub mod server;
pub mod util;
pub mod wallet;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use accounts::AccountsFile;
pub use faults::Fault;

use engine::{Engine, EngineCfg};
use server::Shared;

/// Simulator errors.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Bad configuration.
    #[error("config: {0}")]
    Config(String),
    /// I/O (bind, journal).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

static INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Configuration of one simulator instance.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address (port 0 picks a free port). Loopback is expected: the control
    /// endpoints (`/sim/...`) are unauthenticated.
    pub listen: SocketAddr,
    /// Seed of the market-data generator (index walk, LP quotes, change-id steps).
    pub seed: u64,
    /// Order journal path (truncated at start).
    pub journal: PathBuf,
    /// Accounts and keys; `None` = the built-in copy of `config/sim_accounts.json`.
    pub accounts: Option<AccountsFile>,
    /// Market tick (index walk, LP refresh, ticker/index notifications), ms.
    pub tick_ms: u64,
    /// Minimum `public/set_heartbeat` interval in seconds (the venue's is 10; tests lower it).
    pub heartbeat_min_s: u64,
    /// Concurrent connections (the venue allows 32 per IP).
    pub connections_max: usize,
    /// Starting BTC index.
    pub spot_btc: f64,
    /// Starting ETH index.
    pub spot_eth: f64,
    /// Value of `testnet` in reply envelopes.
    pub testnet: bool,
    /// Venue time: the wall clock, or stepped simulated time (`stoic paper`).
    pub clock: clock::VenueClock,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 1,
            // Unique per instance, so two default-configured simulators never share a journal.
            journal: std::env::temp_dir().join(format!(
                "stoic-sim-journal-{}-{}.jsonl",
                std::process::id(),
                INSTANCE.fetch_add(1, Ordering::Relaxed)
            )),
            accounts: None,
            tick_ms: 100,
            heartbeat_min_s: 10,
            connections_max: 32,
            spot_btc: 100_000.0,
            spot_eth: 3_500.0,
            testnet: false,
            clock: clock::VenueClock::Wall,
        }
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds, builds the venue and starts the listener and market threads.
    ///
    /// # Errors
    /// Bad config, bind failure, journal not creatable.
    pub fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
        if cfg.tick_ms == 0 || cfg.tick_ms > 60_000 {
            return Err(SimError::Config("tick_ms must be 1..=60000".into()));
        }
        if !(cfg.spot_btc > 0.0 && cfg.spot_eth > 0.0) {
            return Err(SimError::Config("spot prices must be positive".into()));
        }
        if cfg.connections_max == 0 || cfg.connections_max > 1024 {
            return Err(SimError::Config("connections_max must be 1..=1024".into()));
        }
        let accounts = cfg.accounts.clone().unwrap_or_else(AccountsFile::builtin);
        let journal = journal::Journal::create(&cfg.journal)?;
        let listener = TcpListener::bind(cfg.listen)?;
        let addr = listener.local_addr()?;
        let venue_clock = cfg.clock.clone();
        let engine = Engine::new_with_clock(
            EngineCfg {
                seed: cfg.seed,
                spot_btc: cfg.spot_btc,
                spot_eth: cfg.spot_eth,
                tick_ms: cfg.tick_ms,
                testnet: cfg.testnet,
            },
            accounts,
            journal,
            venue_clock.clone(),
        );
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            stop: AtomicBool::new(false),
            conns: AtomicUsize::new(0),
            conns_max: cfg.connections_max,
            heartbeat_min_s: cfg.heartbeat_min_s.max(1),
        });
        let sh = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("sim-accept".into())
            .spawn(move || server::serve(&listener, &sh))?;
        let (tick_tx, tick_rx) = channel::<()>();
        let sh = Arc::clone(&shared);
        let tick = Duration::from_millis(cfg.tick_ms);
        let ticker = std::thread::Builder::new().name("sim-market".into()).spawn(move || {
            // Runs until the handle asks it to stop (or is dropped).
            while let Err(RecvTimeoutError::Timeout) = tick_rx.recv_timeout(tick) {
                let mut e = rpc::lock(&sh.engine);
                // Simulated time moves under the venue lock, so no request sees a tick half done.
                if let clock::VenueClock::Stepped(t) = &venue_clock {
                    t.advance();
                }
                let now = e.now_ms();
                e.tick(now);
            }
        })?;
        Ok(SimHandle {
            addr,
            shared,
            journal: cfg.journal,
            threads: Some((accept, ticker, tick_tx)),
        })
    }
}

/// A running simulator. Dropping it shuts it down.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    journal: PathBuf,
    threads: Option<(JoinHandle<()>, JoinHandle<()>, Sender<()>)>,
}

impl SimHandle {
    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/ws/api/v2`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/api/v2", self.addr)
    }

    /// `http://ADDR/api/v2`.
    pub fn http_url(&self) -> String {
        format!("http://{}/api/v2", self.addr)
    }

    /// The order journal.
    pub fn journal_path(&self) -> &Path {
        &self.journal
    }

    /// Fault injection.
    pub fn faults(&self) -> Faults {
        Faults { shared: Arc::clone(&self.shared) }
    }

    /// Same JSON as `GET /sim/state`.
    pub fn state(&self) -> serde_json::Value {
        rpc::lock(&self.shared.engine).state_json()
    }

    /// Runs `f` with the engine locked (tests and embedding: invariant checks, direct reads).
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut rpc::lock(&self.shared.engine))
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        self.shared.conns.load(Ordering::Acquire)
    }

    /// Stops the listener, the market thread and every session (waits up to 2 s for
    /// connection threads).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some((accept, ticker, tick_tx)) = self.threads.take() else { return };
        self.shared.stop.store(true, Ordering::Release);
        let _ = tick_tx.send(());
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        let _ = accept.join();
        let _ = ticker.join();
        for _ in 0..200 {
            if self.shared.conns.load(Ordering::Acquire) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fault-injection handle (cheap to clone; usable from any thread).
#[derive(Debug, Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    /// Applies a fault.
    pub fn apply(&self, f: &Fault) {
        rpc::lock(&self.shared.engine).apply_fault(f);
    }

    /// Closes every WebSocket session.
    pub fn disconnect_all(&self) {
        self.apply(&Fault::DisconnectAll);
    }

    /// Drops the next `n` book notifications (change-id gap).
    pub fn drop_book_messages(&self, n: u32, instrument: Option<&str>) {
        self.apply(&Fault::DropBookMessages {
            count: n,
            instrument: instrument.map(str::to_string),
        });
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.apply(&Fault::Clear);
    }
}
