//! Tick-to-send: market event bytes in → order request bytes ready at the socket
//! (decode → book update → BookView → strategy → gates → label → JSON-RPC bytes), p50/p99/
//! p99.9 with hdrhistogram, excluding and including a WAL append + sync (a real `Wal` on the
//! repository's filesystem), for the `compact` (one thread) and `pinned` (four spinning
//! threads — feed, strategy, gate, dispatch — joined by rtrb rings, pinned with
//! core_affinity) topologies, plus component rows (decode vs raw simd-json in the same run, book update, strategy, gate chain, encoding,
//! ring hop, WAL). The pipeline and the table are shared with `stoic bench`
//! (`hotpath::strategy::pipeline`), so both print the same thing.
//!
//! Run: `cargo bench -p stoic --bench tick_to_send` (`TICK_TO_SEND_EVENTS=N` to resize; the
//! default keeps the run well under a minute). Results: docs/performance.md.

use std::path::Path;

use hotpath::domain::policy::Policy;
use hotpath::strategy::pipeline::{run_bench, BenchSizes};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy =
        Policy::load_from_path(&root.join("config/policy.json")).expect("config/policy.json");
    let events =
        std::env::var("TICK_TO_SEND_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let target = root.join("target");
    std::fs::create_dir_all(&target).expect("target dir");
    // Not tmpfs: the WAL sync must hit the same kind of disk the engine would use.
    let dir = tempfile::tempdir_in(&target).expect("WAL temp dir");
    let report =
        run_bench(&policy, BenchSizes::from_events(events), dir.path()).expect("bench run");
    println!("{report}");
    println!("note: WAL directory on the repository's filesystem ({})", target.display());
}
