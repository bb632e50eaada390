//! `stoic paper`: an accelerated paper-trading session against the embedded simulator
//! (`crate::paper`). Exit 0 when every check held, 1 when the run finished but a check failed
//! (unreconciled positions, duplicate dispatches, illegal orders, engine error), 2 on errors.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::strategies;
use crate::paper::{PaperConfig, Verdict};

/// Arguments of `stoic paper`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated days to run.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// Simulated time per wall time (6720 runs 14 days in about 3 minutes).
    #[arg(long, default_value_t = 1440)]
    pub speed: u32,
    /// Seed of the market, the strategy and the fault schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulator market tick in wall ms (one tick = tick × speed simulated ms).
    #[arg(long, default_value_t = 200)]
    pub tick_ms: u64,
    /// Scheduled venue faults per simulated day (0 = none).
    #[arg(long, default_value_t = 3)]
    pub faults_per_day: u32,
    /// Strategy (default: the quoter, as `stoic run`).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Policy file (default: config/policy_paper_accelerated.json: the launch policy's caps;
    /// metadata caches may age one simulated day, because the venue allows a refresh only
    /// about every ten wall seconds; option spreads up to 1000 bps, the simulator's books).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Evidence directory for summary.json and report.md.
    #[arg(long, default_value = "evidence/phase2/paper")]
    pub out: PathBuf,
    /// Scratch directory for the WAL and the simulator journal (default: a fresh temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

fn repo_file(rel: &str) -> PathBuf {
    let here = PathBuf::from(rel);
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs the session; see the module doc for exit codes.
///
/// # Errors
/// Bad arguments, refused policy, start-up failure, unwritable evidence.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let strategy = args.strategy.clone().unwrap_or_else(|| strategies::DEFAULT_NAME.to_owned());
    let policy_path =
        args.policy.clone().unwrap_or_else(|| repo_file("config/policy_paper_accelerated.json"));
    let work_dir = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("stoic-paper-{}-{}", std::process::id(), args.seed))
    });
    let cfg = PaperConfig {
        days: args.days,
        speed: args.speed,
        seed: args.seed,
        tick_ms: args.tick_ms,
        faults_per_day: args.faults_per_day,
        strategy,
        policy_path,
        out_dir: args.out.clone(),
        work_dir,
    };
    let outcome = crate::paper::run(&cfg)?;
    println!("evidence: {} (wall {:.0} s)", outcome.summary_path.display(), outcome.wall_s);
    match outcome.verdict {
        Verdict::Pass => {
            println!("paper: PASS");
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Fail(why) => {
            for w in &why {
                println!("paper: FAILED: {w}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
