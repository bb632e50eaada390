//! `stoic bench`: the tick-to-send latency table for this host — the same pipeline and table
//! as `cargo bench --bench tick_to_send` (`hotpath::strategy::pipeline::run_bench`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use hotpath::domain::policy::Policy;
use hotpath::strategy::pipeline::{run_bench, BenchSizes};

/// The policy compiled in, used when `--policy` is not given and `config/policy.json` is not
/// in the working directory.
const EMBEDDED_POLICY: &str = include_str!("../../config/policy.json");

/// Arguments of `stoic bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Market events through the single-thread pipeline and each component row (the WAL
    /// runs use a hundredth, 50..=1000; the pinned runs a fiftieth, 50..=2000, each capped
    /// at 10 s of wall clock).
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Policy file (default: `config/policy.json` if present, else the built-in copy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Directory for the WAL runs (default: a fresh directory under the system temp dir,
    /// removed afterwards). Put it on the disk the engine will journal to: a tmpfs makes the
    /// sync look free.
    #[arg(long)]
    pub wal_dir: Option<PathBuf>,
}

fn load_policy(path: Option<&PathBuf>) -> anyhow::Result<(Policy, String)> {
    let default = PathBuf::from("config/policy.json");
    match path {
        Some(p) => Ok((
            Policy::load_from_path(p).map_err(|e| anyhow::anyhow!("{}: {e:?}", p.display()))?,
            p.display().to_string(),
        )),
        None if default.exists() => Ok((
            Policy::load_from_path(&default)
                .map_err(|e| anyhow::anyhow!("config/policy.json: {e:?}"))?,
            default.display().to_string(),
        )),
        None => Ok((
            Policy::from_json_str(EMBEDDED_POLICY)
                .map_err(|e| anyhow::anyhow!("built-in policy: {e:?}"))?,
            "built-in config/policy.json".to_owned(),
        )),
    }
}

/// Runs the bench and prints the table (or JSON).
///
/// # Errors
/// Policy, WAL directory or bench failures.
#[allow(clippy::needless_pass_by_value)]
pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let (policy, policy_source) = load_policy(args.policy.as_ref())?;
    let parent = args.wal_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("stoic-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let result = run_bench(&policy, BenchSizes::from_events(args.events), &dir);
    // The bench's own files only (a fresh, process-specific directory).
    let _ = std::fs::remove_dir_all(&dir);
    let report = result.context("bench run")?;
    if args.json {
        let mut json = report.to_json();
        json["policy"] = policy_source.into();
        json["wal_dir"] = dir.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{report}");
        println!("note: policy {policy_source}; WAL runs under {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
