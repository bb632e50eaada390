//! `stoic paper`: the engine against the embedded simulator in accelerated simulated time,
//! with seeded venue faults, ending in a reconciliation of engine vs venue positions and the
//! evidence files `summary.json` + `report.md`.
//!
//! Time: the simulator's market thread moves a shared [`SteppedTime`] forward by
//! `tick_ms × speed` per tick; the engine reads the same value through [`VenueTimeClock`]. So
//! venue and engine agree on simulated time exactly, while sessions, heartbeats, request
//! timeouts and credits stay on the wall clock (see `simulator::clock`).

pub mod clock;
mod fills;
mod monitor;
mod progress;
pub mod schedule;
mod summary;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hotpath::ring::Topology;
use hotpath::venue::auth::{Credentials, Secret};
use simulator::clock::{SteppedTime, VenueClock, STEP_MS_MAX};

use crate::engine::{strategies, Engine, EngineOptions};
use clock::{VenueTimeClock, DAY_MS, SIM_ORIGIN_MS};
pub use summary::Verdict;

/// Longest paper run in simulated days.
pub const DAYS_MAX: u32 = 366;
/// Highest speed-up.
pub const SPEED_MAX: u32 = 100_000;
/// Engine strategy tick (wall).
const ENGINE_TICK: Duration = Duration::from_millis(20);
/// The option chain a paper run trades must still be listed this long after the run ends.
const CHAIN_MARGIN_MS: i64 = DAY_MS;

/// Everything a paper run needs.
#[derive(Debug, Clone)]
pub struct PaperConfig {
    /// Simulated days.
    pub days: u32,
    /// Simulated time per wall time.
    pub speed: u32,
    /// Seed of the market, the strategy and the fault schedule.
    pub seed: u64,
    /// Simulator market tick (wall ms); one tick = `tick_ms × speed` simulated ms.
    pub tick_ms: u64,
    /// Faults per simulated day (0 = none).
    pub faults_per_day: u32,
    /// Strategy name.
    pub strategy: String,
    /// Policy file.
    pub policy_path: PathBuf,
    /// Where `summary.json` and `report.md` go.
    pub out_dir: PathBuf,
    /// Scratch: WAL, simulator journal.
    pub work_dir: PathBuf,
}

/// Refused arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaperArgError {
    /// `days` outside `1..=DAYS_MAX`.
    #[error("--days must be 1..={DAYS_MAX}, got {0}")]
    Days(u32),
    /// `speed` outside `1..=SPEED_MAX`.
    #[error("--speed must be 1..={SPEED_MAX}, got {0}")]
    Speed(u32),
    /// One tick would step simulated time by more than a day (or not at all).
    #[error("--tick-ms × --speed must be 1..={STEP_MS_MAX} simulated ms per tick, got {0}")]
    Step(u128),
}

impl PaperConfig {
    /// Simulated ms per market tick.
    ///
    /// # Errors
    /// [`PaperArgError`] for arguments out of range.
    pub fn step_ms(&self) -> Result<i64, PaperArgError> {
        if !(1..=DAYS_MAX).contains(&self.days) {
            return Err(PaperArgError::Days(self.days));
        }
        if !(1..=SPEED_MAX).contains(&self.speed) {
            return Err(PaperArgError::Speed(self.speed));
        }
        let step = u128::from(self.tick_ms) * u128::from(self.speed);
        i64::try_from(step)
            .ok()
            .filter(|s| (1..=STEP_MS_MAX).contains(s))
            .ok_or(PaperArgError::Step(step))
    }
}

/// The result of a run (already written to `out_dir`).
#[derive(Debug)]
pub struct PaperOutcome {
    /// Pass, or what failed.
    pub verdict: Verdict,
    /// `summary.json` path.
    pub summary_path: PathBuf,
    /// Wall seconds the run took.
    pub wall_s: f64,
}

fn dev_credentials() -> Credentials {
    Credentials {
        client_id: "sim-dev-trade".into(),
        client_secret: Secret::new("sim-dev-trade-secret-0001".into()),
    }
}

fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs a paper session and writes its evidence.
///
/// # Errors
/// Bad arguments, a policy the engine refuses to start with, simulator or engine start-up
/// failure, or evidence that cannot be written. A run that completes but fails its checks is
/// `Ok` with a failing [`Verdict`].
pub fn run(cfg: &PaperConfig) -> anyhow::Result<PaperOutcome> {
    let step_ms = cfg.step_ms()?;
    let operator_token = random_token()?;
    let wall_start = Instant::now();
    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("create {}", cfg.work_dir.display()))?;
    let time = SteppedTime::new(SIM_ORIGIN_MS, step_ms).map_err(anyhow::Error::msg)?;
    strategies::check_name(&cfg.strategy).map_err(anyhow::Error::msg)?;
    schedule::check_faults_per_day(cfg.faults_per_day)?;
    let sim = simulator::Simulator::start(simulator::SimConfig {
        journal: cfg.work_dir.join("sim_journal.jsonl"),
        seed: cfg.seed,
        tick_ms: cfg.tick_ms,
        clock: VenueClock::Stepped(time.clone()),
        ..simulator::SimConfig::default()
    })?;
    let run_id = format!("paper-{}-{:x}", cfg.seed, std::process::id());
    println!(
        "stoic paper: run_id={run_id} days={} speed={} step={}s seed={} strategy={} faults/day={} venue={} policy={}",
        cfg.days,
        cfg.speed,
        step_ms / 1000,
        cfg.seed,
        cfg.strategy,
        cfg.faults_per_day,
        sim.ws_url(),
        cfg.policy_path.display()
    );
    // Engine trace lines go beside the WAL (scratch), like `stoic run`'s.
    let metrics = Arc::new(coldpath::metrics::MetricsRegistry::new(&run_id));
    let (trace, sink) =
        crate::engine::trace::start_sink(None, &cfg.work_dir.join("wal"), &metrics)?;
    let opts = EngineOptions {
        venue_url: sim.ws_url(),
        credentials: dev_credentials(),
        wal_dir: cfg.work_dir.join("wal"),
        policy_path: cfg.policy_path.clone(),
        // Offered only options that outlive the run (+ a day): the instruments picked at
        // start stay tradable to the end, and the faults aimed at them stay meaningful.
        strategy: strategies::factory_with_min_expiry(
            &cfg.strategy,
            cfg.seed,
            i64::from(cfg.days) * DAY_MS + CHAIN_MARGIN_MS,
        ),
        // Two shared cores: nothing spins, the strategy runs inline on the trading thread.
        topology: Topology::Compact,
        cores: [None; 4],
        spawn_feed: true,
        strategy_thread: false,
        strategy_wait: Topology::Compact.wait_strategy(),
        dispatch_thread: false,
        dispatch_wait: Topology::Compact.wait_strategy(),
        max_intents: None,
        tick: ENGINE_TICK,
        startup_operator_token: Some(operator_token.clone()),
        taker_fee_bps: 5.0,
        maker_fee_bps: 0.0,
        run_id,
        trace,
    };
    let mut engine = Engine::with_clock(opts, Arc::new(VenueTimeClock(time.clone())))?;
    let published: crate::engine::status::Published = Arc::default();
    // No operator endpoint in a paper run: the port publishes the snapshot for the monitor.
    // The harness is the drill's operator: it relaxes a rate-limit Kill through this channel.
    let (control, port) = crate::engine::status::control_channel(published.clone());
    engine.set_control(port);
    engine.start().context("engine start-up reconciliation")?;
    // The strategy picked its instruments from the venue's listing: aim faults at them.
    let instruments: Vec<String> =
        engine.market_instruments().iter().map(|n| n.as_str().to_owned()).collect();
    let schedule = schedule::build(cfg.seed, cfg.days, cfg.faults_per_day, &instruments)?;
    let expiries = sim.with_engine(|e| {
        e.instruments
            .iter()
            .filter(|i| instruments.contains(&i.name))
            .map(|i| (i.name.clone(), i.expiry_ms))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    let venue_start = sim.state();
    let stop = Arc::new(AtomicBool::new(false));
    let engine_done = Arc::new(AtomicBool::new(false));
    let watch = monitor::Watch {
        time: time.clone(),
        faults: sim.faults(),
        published,
        control,
        operator_token,
        schedule: schedule.clone(),
        expiries: expiries.clone(),
        sim_total_ms: i64::from(cfg.days) * DAY_MS,
        stop: Arc::clone(&stop),
        engine_done: Arc::clone(&engine_done),
    };
    let watcher = std::thread::Builder::new().name("paper-watch".into()).spawn(|| watch.run())?;
    time.set_end_ms(SIM_ORIGIN_MS + i64::from(cfg.days) * DAY_MS);
    time.set_running(true);
    let result = engine.run_until(&stop, &mut |_| {});
    engine_done.store(true, Ordering::Release);
    let log = watcher.join().map_err(|_| anyhow::anyhow!("paper watcher panicked"))?;
    time.set_running(false);
    let final_snapshot = engine.snapshot();
    drop(engine); // the trace producer goes with it: the sink drains what is left
    sink.stop();
    let venue_end = sim.state();
    let venue_fills = fills::from_venue(&sim);
    let orders_by_day = fills::new_orders_by_day(sim.journal_path(), SIM_ORIGIN_MS, cfg.days)
        .with_context(|| format!("read {}", sim.journal_path().display()))?;
    let oracle = simulator::journal::Summary::from_file(sim.journal_path())
        .with_context(|| format!("read {}", sim.journal_path().display()))?;
    if !oracle.illegal_seqs.is_empty() {
        // What the venue saw, for whoever reads a failed run's log (CI keeps only the log).
        for line in simulator::journal::lines_with_seqs(sim.journal_path(), &oracle.illegal_seqs, 5)
            .unwrap_or_default()
        {
            println!("paper: illegal order attempt in the venue journal: {line}");
        }
    }
    sim.shutdown();
    let report = summary::Inputs {
        cfg,
        step_ms,
        schedule: &schedule,
        log: &log,
        engine: &final_snapshot,
        engine_error: result.as_ref().err().map(ToString::to_string),
        venue_start: &venue_start,
        venue_end: &venue_end,
        venue_fills: &venue_fills,
        expiries: &expiries,
        instruments: &instruments,
        orders_by_day: &orders_by_day,
        oracle: &oracle,
    }
    .build();
    let wall_s = wall_start.elapsed().as_secs_f64();
    let summary_path = summary::write(&cfg.out_dir, &report, wall_s)?;
    Ok(PaperOutcome { verdict: report.verdict, summary_path, wall_s })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(days: u32, speed: u32, tick_ms: u64) -> PaperConfig {
        PaperConfig {
            days,
            speed,
            seed: 1,
            tick_ms,
            faults_per_day: 0,
            strategy: "churn".into(),
            policy_path: PathBuf::new(),
            out_dir: PathBuf::new(),
            work_dir: PathBuf::new(),
        }
    }

    #[test]
    fn paper_arguments_out_of_range_are_refused_with_their_own_error() {
        assert_eq!(cfg(0, 10, 100).step_ms(), Err(PaperArgError::Days(0)));
        assert_eq!(cfg(DAYS_MAX + 1, 10, 100).step_ms(), Err(PaperArgError::Days(DAYS_MAX + 1)));
        assert_eq!(cfg(1, 0, 100).step_ms(), Err(PaperArgError::Speed(0)));
        assert_eq!(cfg(1, 100_000, 1_000).step_ms(), Err(PaperArgError::Step(100_000_000)));
        assert_eq!(cfg(1, 10, 0).step_ms(), Err(PaperArgError::Step(0)));
        assert_eq!(cfg(14, 6_720, 100).step_ms(), Ok(672_000));
    }
}
