//! Shared by the crash and restart tests: the real `stoic` binary as child processes (a
//! simulator and the engine), killed on drop, with bounded waits only.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotpath::wal::{IntentState, WalReader};

pub const BIN: &str = env!("CARGO_BIN_EXE_stoic");

/// Fails (never skips) when the binary under test has no crash points.
#[allow(clippy::assertions_on_constants)] // constant per build, by design: fail, never skip
pub fn require_failpoints() {
    assert!(
        cfg!(feature = "failpoints"),
        "these tests need the crash points: run with `--features failpoints` \
         (plans/verify.sh runs `cargo nextest run --workspace --features failpoints`)"
    );
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub child: Option<Child>,
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null()).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn stoic");
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l2.lock().unwrap().push(line);
            }
        });
        Proc { child: Some(child), lines, reader: Some(reader) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits for a stdout line containing `needle` (bounded); returns it.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (bounded) for the exit; kills on timeout and returns None.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.finish();
                return Some(st);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.finish();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL now and reap.
    pub fn kill9(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = child.kill();
        let st = child.wait().ok();
        self.finish();
        st
    }

    fn finish(&mut self) {
        self.child = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `stoic sim` child on a free port.
pub struct Sim {
    pub proc: Proc,
    pub addr: String,
    pub journal: PathBuf,
}

impl Sim {
    pub fn start(dir: &Path) -> Sim {
        let journal = dir.join("sim_journal.jsonl");
        let mut cmd = Command::new(BIN);
        cmd.args(["sim", "--listen", "127.0.0.1:0", "--journal"]).arg(&journal);
        let proc = Proc::spawn(cmd);
        let line = proc
            .wait_line("listening on ", Duration::from_secs(20))
            .expect("simulator did not start");
        let addr = line.trim_start_matches("listening on ").trim().to_owned();
        Sim { proc, addr, journal }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/api/v2", self.addr)
    }

    /// New-order requests in the journal so far.
    pub fn orders(&self) -> u64 {
        simulator::journal::Summary::from_file(&self.journal).map_or(0, |s| s.new_order_requests)
    }

    pub fn summary(&self) -> simulator::journal::Summary {
        simulator::journal::Summary::from_file(&self.journal).expect("journal")
    }

    /// How many new-order requests the venue received per label.
    pub fn label_counts(&self) -> BTreeMap<String, u64> {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        let mut m = BTreeMap::new();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let is_new = matches!(v["method"].as_str(), Some("private/buy" | "private/sell"));
            if let (true, Some(l)) = (is_new, v["label"].as_str()) {
                *m.entry(l.to_owned()).or_default() += 1;
            }
        }
        m
    }
}

/// `stoic run --headless` against `sim` with `wal_dir`.
pub fn engine_cmd(sim: &Sim, wal_dir: &Path, seed: u64, max_intents: Option<u64>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--headless", "--venue-url"])
        .arg(sim.ws_url())
        .arg("--wal-dir")
        .arg(wal_dir)
        .args(["--strategy", "churn", "--seed"])
        .arg(seed.to_string())
        .env_remove("STOIC_FAILPOINT")
        .env_remove("STOIC_FAILPOINT_AFTER");
    if let Some(m) = max_intents {
        cmd.arg("--max-intents").arg(m.to_string());
    }
    cmd
}

/// The `in_doubt=N` of a `reconciled:` line.
pub fn reconciled_field(line: &str, field: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// No ghost state: every intent in the WAL is terminal or live-and-acknowledged; an
/// abandoned intent was never seen by the venue; every intent the venue saw, it saw once.
pub fn check_no_ghost_state(wal_dir: &Path, labels: &BTreeMap<String, u64>) -> (usize, usize) {
    let reader = WalReader::open(wal_dir).expect("open WAL");
    let ledger = reader.ledger().expect("replay WAL");
    let mut abandoned = 0;
    let mut seen = 0;
    for e in ledger.iter() {
        assert!(
            !matches!(e.state, IntentState::Recorded | IntentState::Sent),
            "ghost state: intent {:#x} ({}) left {:?} after a clean restart",
            e.intent_hash,
            e.label,
            e.state
        );
        let n = labels.get(&e.label).copied().unwrap_or(0);
        assert!(n <= 1, "label {} dispatched {n} times", e.label);
        match e.state {
            IntentState::Abandoned => {
                abandoned += 1;
                assert_eq!(n, 0, "abandoned intent {} was in fact seen by the venue", e.label);
            }
            IntentState::Acknowledged
            | IntentState::PartiallyFilled
            | IntentState::Filled
            | IntentState::Cancelled => {
                seen += 1;
                assert_eq!(n, 1, "intent {} is {:?} but the venue never got it", e.label, e.state);
            }
            _ => {}
        }
    }
    (abandoned, seen)
}
