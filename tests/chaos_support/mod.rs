//! The chaos harness: an in-process simulator, the real `stoic run --headless` binary with
//! its status server, fault injection, bounded polling of `GET /api/v1/status`, the journal
//! oracle, and the evidence files (`evidence/phase2/chaos/<scenario>.md`, the per-scenario
//! results and `summary.json`). No timing assertions: every wait is a bounded poll with a
//! generous deadline.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use simulator::{Fault, SimConfig, SimHandle, Simulator};

use crate::crash_support::{Proc, BIN};

/// The engine's trade key at the simulator (journal `key`).
pub const OUR_KEY: &str = "sim-dev-trade";
/// Per-instrument exposure tolerance of a perpetual (USD amount): churn opens 1–3 lots of
/// 10, so anything above this is a runaway, not a strategy position.
pub const EXPOSURE_TOLERANCE: f64 = 100.0;
/// Per-instrument exposure tolerance of an option (BTC amount): the group scenario trades
/// two lots of the 0.1 minimum, so more than that in one option is not the strategy's.
pub const OPTION_EXPOSURE_TOLERANCE: f64 = 0.2;
/// Generous bound for every wait.
pub const DEADLINE: Duration = Duration::from_secs(45);
/// How long after `/status` first shows containment before the journal mark is taken: the
/// status snapshot is published every 50 ms, and an order the engine sent just before it
/// contained itself must have reached the venue (localhost) by then.
pub const CONTAINMENT_SETTLE: Duration = Duration::from_millis(200);
/// How long a containment window is watched at most (it ends earlier when the engine
/// recovers).
pub const CONTAINMENT_HOLD: Duration = Duration::from_secs(2);

/// Every scenario of `tests/chaos.rs`: `summary.json` reports a missing result as a failure.
pub const SCENARIOS: &[&str] = &[
    "clock_drift",
    "crash_restart_mid_flight",
    "disconnect_mid_flight",
    "duplicate_fill_notification",
    "exchange_maintenance",
    "group_leg_a_partial_leg_b_rejected",
    "order_ack_lost",
    "partial_fill_leg_a_reject_leg_b",
    "position_snapshot_lagging_trades",
    "rate_limit_storm",
    "stale_data_liquidity_gate",
    "ws_gap_late_fills",
    "zombie_order_swept",
];

/// Whether an instrument is an option (`BTC-27DEC24-60000-C`).
pub fn is_option(instrument: &str) -> bool {
    instrument.ends_with("-C") || instrument.ends_with("-P")
}

/// Whether a status shows the engine contained: ReduceOnly or Kill, or opens latched (a
/// status without a mode, before the first snapshot, is not evidence of anything).
pub fn is_contained(status: &Value) -> bool {
    matches!(status["trading_mode"].as_str(), Some("ReduceOnly" | "Kill"))
        || status["open_permission_blocked_latch"] == true
}

/// GET `path` on `addr`; the body as text.
pub fn http_get_text(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf.split_once("\r\n\r\n")?.1.to_owned())
}

/// GET `path` on `addr`; the JSON body.
pub fn http_get(addr: &str, path: &str) -> Option<Value> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let body = buf.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// One observed status state (mode, reasons, latch codes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub mode: String,
    pub reasons: Vec<String>,
    pub latch: Vec<String>,
}

/// The simulator, the engine process and a status watcher.
pub struct Chaos {
    pub name: &'static str,
    pub dir: tempfile::TempDir,
    pub sim: Option<SimHandle>,
    pub engine: Option<Proc>,
    pub status_addr: String,
    pub wal: PathBuf,
    pub seed: u64,
    /// Engine arguments after the venue/WAL/status ones (strategy and its options).
    pub engine_args: Vec<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
    /// Extra outcome lines for the evidence file.
    pub notes: Vec<String>,
    /// Journal oracle at the containment check: (duplicates, illegal orders).
    pub oracle: Option<(u64, u64)>,
    /// Codes the test asserted it saw (`wait_code`, `assert_code_seen`), in order.
    pub asserted_codes: Vec<String>,
    /// Codes the test asserted it never saw.
    pub asserted_absent: Vec<String>,
    /// Set by `assert_contained` once the engine's positions equalled the venue's.
    pub positions_match_venue: Option<bool>,
    /// Largest |position| at the containment check, per kind: (perpetual, option).
    pub max_exposure: Option<(f64, f64)>,
    /// Set by `assert_recovered` once the engine was Active, latch clear, and trading again.
    pub recovered: bool,
    /// Containment windows checked: (window, opens at the venue, status observations).
    pub contained_windows: Vec<(String, usize, usize)>,
    /// Scenario-specific measured facts for the result file (which path was taken, counts).
    pub facts: BTreeMap<String, Value>,
}

impl Chaos {
    /// Starts the simulator and the engine (churn strategy) and waits until it trades with
    /// the latch clear and the mode Active.
    pub fn start(name: &'static str, seed: u64) -> Chaos {
        let args = vec!["--strategy".into(), "churn".into(), "--seed".into(), seed.to_string()];
        let c = Self::start_with(name, seed, args, |_, _| Vec::new());
        c.wait_active("the engine to trade after start");
        c
    }

    /// The simulator and the engine with other arguments; `before` runs once the simulator
    /// is up and before the engine starts (faults armed for its first orders, policy files)
    /// and returns more engine arguments. Returns once the engine trades (no mode asserted).
    pub fn start_with(
        name: &'static str,
        seed: u64,
        engine_args: Vec<String>,
        before: impl FnOnce(&SimHandle, &Path) -> Vec<String>,
    ) -> Chaos {
        // A scenario that panics from here on leaves this "fail" result behind.
        write_pending(name);
        let dir = tempfile::tempdir().unwrap();
        let sim = Simulator::start(SimConfig {
            journal: dir.path().join("journal.jsonl"),
            ..SimConfig::default()
        })
        .expect("simulator starts");
        let mut engine_args = engine_args;
        engine_args.extend(before(&sim, dir.path()));
        let wal = dir.path().join("wal");
        let mut c = Chaos {
            name,
            dir,
            sim: Some(sim),
            engine: None,
            status_addr: String::new(),
            wal,
            seed,
            engine_args,
            seen: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
            watcher: None,
            notes: Vec::new(),
            oracle: None,
            asserted_codes: Vec::new(),
            asserted_absent: Vec::new(),
            positions_match_venue: None,
            max_exposure: None,
            recovered: false,
            contained_windows: Vec::new(),
            facts: BTreeMap::new(),
        };
        c.spawn_engine();
        if c.engine().wait_line("trading:", Duration::from_secs(30)).is_none() {
            panic!("[{name}] the engine never started trading:\n{}", c.tail());
        }
        c
    }

    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().expect("simulator running")
    }

    /// (Re)starts the engine process on the same WAL and a fresh status port.
    pub fn spawn_engine(&mut self) {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--headless", "--venue-url"])
            .arg(self.sim().ws_url())
            .arg("--wal-dir")
            .arg(&self.wal)
            .args(&self.engine_args)
            .args(["--status-addr", "127.0.0.1:0"])
            .env_remove("STOIC_FAILPOINT")
            .env_remove("STOIC_FAILPOINT_AFTER")
            .env_remove("STOIC_RECONCILE_CREDENTIALS");
        let engine = Proc::spawn(cmd);
        let line = engine
            .wait_line("status: http://", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no status server:\n{}", engine.output()));
        let addr = line
            .trim_start_matches("status: http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.status_addr = addr.clone();
        self.engine = Some(engine);
        self.stop_watcher();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = Arc::clone(&stop);
        let seen = Arc::clone(&self.seen);
        // A parked poller (one request per 50 ms), never a spinning thread.
        self.watcher = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(v) = http_get(&addr, "/api/v1/status") {
                    let s = Seen {
                        mode: v["trading_mode"].as_str().unwrap_or("").to_owned(),
                        reasons: strs(&v["mode_reasons"]),
                        latch: strs(&v["open_permission_reason_codes"]),
                    };
                    let mut g = seen.lock().unwrap();
                    if g.last() != Some(&s) {
                        g.push(s);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
    }

    fn stop_watcher(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }

    pub fn engine(&self) -> &Proc {
        self.engine.as_ref().expect("engine running")
    }

    /// The current status (None while the server does not answer).
    pub fn status(&self) -> Option<Value> {
        http_get(&self.status_addr, "/api/v1/status")
    }

    /// Polls the status until `ok` (bounded); returns the matching status.
    pub fn wait_status(&self, what: &str, mut ok: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = self.status() {
                if ok(&v) {
                    return v;
                }
            }
            assert!(
                Instant::now() < deadline,
                "[{}] timed out waiting for {what}; last status: {}\nengine:\n{}",
                self.name,
                self.status().map(|v| v.to_string()).unwrap_or_default(),
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for Active with the latch clear.
    pub fn wait_active(&self, what: &str) -> Value {
        self.wait_status(what, |v| {
            v["trading_mode"] == "Active" && v["open_permission_blocked_latch"] == false
        })
    }

    /// Last engine output lines (for failure messages).
    pub fn tail(&self) -> String {
        let out = self.engine.as_ref().map(Proc::output).unwrap_or_default();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn fault(&self, f: &Fault) {
        self.sim().faults().apply(f);
    }

    /// Every distinct status state the watcher saw.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Latch codes and mode reasons seen since start: the watcher's view plus the engine's
    /// own sticky sets (a state shorter than one poll still shows there).
    pub fn codes_seen(&self) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut latch = BTreeSet::new();
        let mut reasons = BTreeSet::new();
        for s in self.seen() {
            latch.extend(s.latch);
            reasons.extend(s.reasons);
        }
        if let Some(v) = self.status() {
            latch.extend(strs(&v["reconcile"]["latch_codes_seen"]));
            reasons.extend(strs(&v["reconcile"]["mode_reasons_seen"]));
        }
        (latch, reasons)
    }

    /// Modes the engine passed through (status transitions plus the watcher).
    pub fn modes_seen(&self) -> BTreeSet<String> {
        let mut m: BTreeSet<String> = self.seen().into_iter().map(|s| s.mode).collect();
        if let Some(v) = self.status() {
            for t in v["mode_transitions"].as_array().into_iter().flatten() {
                m.insert(t["to"].as_str().unwrap_or("").to_owned());
                m.insert(t["from"].as_str().unwrap_or("").to_owned());
            }
        }
        m.remove("");
        m
    }

    /// Waits until a latch code or mode reason shows up (sticky sets of the current engine
    /// process; `kill9` forgets what an earlier process showed), and records it as asserted.
    pub fn wait_code(&mut self, code: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (l, r) = self.codes_seen();
            if l.contains(code) || r.contains(code) {
                self.record_code(code);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] {code} never seen; latch {l:?} reasons {r:?}\n{}",
                self.name,
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn record_code(&mut self, code: &str) {
        if !self.asserted_codes.iter().any(|c| c == code) {
            self.asserted_codes.push(code.to_owned());
        }
    }

    /// Asserts that none of `codes` was seen (latch or mode reason) and records it.
    pub fn assert_codes_absent(&mut self, codes: &[&str]) {
        let (l, r) = self.codes_seen();
        for code in codes {
            assert!(
                !l.contains(*code) && !r.contains(*code),
                "[{}] {code} seen; latch {l:?} reasons {r:?}",
                self.name
            );
            if !self.asserted_absent.iter().any(|c| c == code) {
                self.asserted_absent.push((*code).to_owned());
            }
        }
    }

    /// Asserts that one of `codes` was seen; records and returns the ones seen.
    pub fn assert_any_code_seen(&mut self, codes: &[&str]) -> Vec<String> {
        let (l, r) = self.codes_seen();
        let hit: Vec<String> = codes
            .iter()
            .filter(|c| l.contains(**c) || r.contains(**c))
            .map(|c| (*c).to_owned())
            .collect();
        assert!(
            !hit.is_empty(),
            "[{}] none of {codes:?} seen; latch {l:?} reasons {r:?}",
            self.name
        );
        for c in &hit {
            self.record_code(c);
        }
        hit
    }

    /// Waits until `/status` shows the engine contained.
    pub fn wait_contained(&self, what: &str) -> Value {
        self.wait_status(what, is_contained)
    }

    /// "0 new opens at the venue while contained", by the venue's request order: counts our
    /// non-reduce-only new orders in the journal after `mark` (None: the journal position
    /// `CONTAINMENT_SETTLE` after `/status` first shows containment), reading the journal
    /// before each status poll, so a count is kept only when the engine was still contained
    /// after every journal entry it covers. Watches at most `CONTAINMENT_HOLD`. Asserts at
    /// least one such observation and zero opens; records the window.
    pub fn assert_no_opens_while_contained(&mut self, window: &str, mark: Option<u64>) {
        self.wait_contained(&format!("containment ({window})"));
        let mark = mark.unwrap_or_else(|| {
            std::thread::sleep(CONTAINMENT_SETTLE);
            self.journal_mark()
        });
        let start = Instant::now();
        let mut observations = 0;
        let mut opens = 0;
        loop {
            let n = self.opens_after(mark);
            match self.status() {
                Some(st) if is_contained(&st) => {
                    observations += 1;
                    opens = n;
                }
                Some(_) => break,
                None => {}
            }
            if start.elapsed() >= CONTAINMENT_HOLD {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            observations > 0,
            "[{}] {window}: the engine recovered before the containment could be watched",
            self.name
        );
        assert_eq!(opens, 0, "[{}] {window}: opens at the venue while contained", self.name);
        self.notes.push(format!("new opens at the venue while contained ({window}): {opens}"));
        self.contained_windows.push((window.to_owned(), opens, observations));
    }

    /// The WAL's records in order (`stoic wal inspect --json`): the engine must be stopped
    /// (the WAL is locked while it runs).
    pub fn wal_records(&self) -> Vec<Value> {
        let out = Command::new(BIN)
            .args(["wal", "inspect", "--json", "--dir"])
            .arg(&self.wal)
            .output()
            .expect("stoic wal inspect");
        assert!(
            out.status.success(),
            "[{}] wal inspect: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "record")
            .collect()
    }

    /// Highest WAL sequence number so far (engine stopped).
    pub fn wal_last_seq(&self) -> u64 {
        self.wal_records().iter().filter_map(|r| r["seq"].as_u64()).max().unwrap_or(0)
    }

    /// Our non-reduce-only new orders in the journal that `pick` selects: their labels.
    pub fn open_labels(&self, mut pick: impl FnMut(&Value) -> bool) -> Vec<String> {
        self.journal()
            .iter()
            .filter(|e| e["key"] == OUR_KEY)
            .filter(|e| matches!(e["method"].as_str(), Some("private/buy" | "private/sell")))
            .filter(|e| e["flags"]["reduce_only"] != true)
            .filter(|e| pick(e))
            .filter_map(|e| e["label"].as_str().map(str::to_owned))
            .collect()
    }

    /// "0 new opens at the venue while contained" for a containment too short to watch
    /// through `/status` (a reconnect and its reconciliation take milliseconds), by order, not
    /// by time: the WAL orders each open the venue received (`opens`, labels from the
    /// journal) by its `IntentRecorded` against the relax (a `ModeRelax` operator action,
    /// automatic or by an operator) that ended the containment, the first one recorded after
    /// WAL seq `boundary` (the fault). An open recorded between the two would be an open
    /// while contained. The engine must be stopped.
    pub fn assert_no_opens_before_relax(&mut self, window: &str, boundary: u64, opens: &[String]) {
        // Nothing to order would make the check vacuous: recovery means opens again.
        assert!(
            !opens.is_empty(),
            "[{}] {window}: no opens at the venue after the fault",
            self.name
        );
        let wal = self.wal_records();
        let relax = wal
            .iter()
            .filter(|r| r["seq"].as_u64().unwrap_or(0) > boundary)
            .find(|r| r["kind"] == "OperatorAction" && r["fields"]["action"] == "ModeRelax")
            .and_then(|r| r["seq"].as_u64());
        let Some(relax) = relax else {
            panic!("[{}] {window}: no relax recorded in the WAL after seq {boundary}", self.name)
        };
        let early: Vec<&Value> = wal
            .iter()
            .filter(|r| r["kind"] == "IntentRecorded")
            .filter(|r| (boundary + 1..relax).contains(&r["seq"].as_u64().unwrap_or(0)))
            .filter(|r| r["fields"]["label"].as_str().is_some_and(|l| opens.iter().any(|o| o == l)))
            .collect();
        eprintln!(
            "[{}] {window}: {} opens after the fault, relax at WAL seq {relax} (fault after \
             {boundary}), {} recorded before it",
            self.name,
            opens.len(),
            early.len()
        );
        self.notes.push(format!(
            "new opens at the venue while contained ({window}; WAL order of each open against \
             the relax that ended it): {}",
            early.len()
        ));
        self.contained_windows.push((window.to_owned(), early.len(), 1));
        assert!(early.is_empty(), "[{}] {window}: opens before the relax: {early:?}", self.name);
    }

    /// Stops the engine with SIGTERM (clean shutdown); the simulator keeps running.
    pub fn stop_engine(&mut self) {
        self.stop_watcher();
        if let Some(mut e) = self.engine.take() {
            let _ = Command::new("kill").args(["-TERM", &e.pid().to_string()]).status();
            let _ = e.wait_exit(Duration::from_secs(20));
        }
    }

    /// Trading resumed: Active, latch clear, a new order reaches the venue; recorded.
    pub fn assert_recovered(&mut self, what: &str) {
        self.wait_active(what);
        let mark = self.journal_mark();
        self.wait_orders_after(mark, 1, "orders after recovery");
        self.recovered = true;
    }

    /// The journal so far.
    pub fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.sim().journal_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Highest journal seq so far.
    pub fn journal_mark(&self) -> u64 {
        self.journal().iter().filter_map(|e| e["seq"].as_u64()).max().unwrap_or(0)
    }

    /// Our new orders after `mark` that are not reduce-only (risk-increasing attempts).
    pub fn opens_after(&self, mark: u64) -> usize {
        self.journal()
            .iter()
            .filter(|e| e["seq"].as_u64().unwrap_or(0) > mark && e["key"] == OUR_KEY)
            .filter(|e| matches!(e["method"].as_str(), Some("private/buy" | "private/sell")))
            .filter(|e| e["flags"]["reduce_only"] != true)
            .count()
    }

    /// Our new orders after `mark`.
    pub fn orders_after(&self, mark: u64) -> usize {
        self.journal()
            .iter()
            .filter(|e| e["seq"].as_u64().unwrap_or(0) > mark && e["key"] == OUR_KEY)
            .filter(|e| matches!(e["method"].as_str(), Some("private/buy" | "private/sell")))
            .count()
    }

    /// Waits until the engine sent at least `n` more orders after `mark`.
    pub fn wait_orders_after(&self, mark: u64, n: usize, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        while self.orders_after(mark) < n {
            assert!(Instant::now() < deadline, "[{}] {what}\n{}", self.name, self.tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The venue's positions of our account, non-zero only; read inside the simulator
    /// process so that polling does not spend the account's request budget, which the
    /// engine under test shares (see `sim_support::account_positions`).
    pub fn venue_positions(&self) -> BTreeMap<String, f64> {
        crate::sim_support::account_positions(self.sim(), crate::sim_support::ENGINE_ACCOUNT)
    }

    /// Trades of our account at the venue (read-only key).
    pub fn venue_trade_count(&self) -> u64 {
        let mut c = simulator::client::WsClient::connect(self.sim().addr()).unwrap();
        c.auth("sim-dev-read", "sim-dev-read-secret-0002").unwrap();
        let mut n = 0;
        for ccy in ["BTC", "ETH"] {
            let v = c
                .call(
                    "private/get_user_trades_by_currency",
                    &json!({"currency": ccy, "count": 1000}),
                )
                .unwrap();
            n += v["trades"].as_array().map_or(0, Vec::len) as u64;
        }
        n
    }

    /// The engine's positions from `/status`, non-zero only.
    pub fn engine_positions(status: &Value) -> BTreeMap<String, f64> {
        status["positions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let size = p["size"].as_f64()?;
                let name = p["instrument_name"].as_str()?.to_owned();
                (size != 0.0).then_some((name, size))
            })
            .collect()
    }

    /// Waits until the engine's positions equal the venue's (after a reconciliation they
    /// must); returns them.
    pub fn wait_positions_match(&self) -> BTreeMap<String, f64> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let st = self.status();
            let venue = self.venue_positions();
            if let Some(st) = &st {
                let ours = Self::engine_positions(st);
                let same = ours.len() == venue.len()
                    && ours.iter().all(|(k, v)| venue.get(k).is_some_and(|w| (v - w).abs() < 1e-6));
                if same {
                    return venue;
                }
            }
            assert!(
                Instant::now() < deadline,
                "[{}] engine positions never matched the venue's: engine {:?} venue {venue:?}\n{}",
                self.name,
                st.as_ref().map(Self::engine_positions),
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Containment: zero duplicates and zero illegal orders by the journal, engine positions
    /// equal the venue's, exposure within tolerance (option-sized for options). Each outcome
    /// is recorded as measured before it is asserted.
    pub fn assert_contained(&mut self) {
        let s = simulator::journal::Summary::from_file(self.sim().journal_path()).unwrap();
        self.oracle = Some((s.duplicate_dispatch_count, s.illegal_order_attempts));
        self.notes.push(format!("duplicate_dispatch_count: {}", s.duplicate_dispatch_count));
        self.notes.push(format!("illegal_order_attempts: {}", s.illegal_order_attempts));
        assert_eq!(
            s.duplicate_dispatch_count, 0,
            "[{}] duplicates {:?}",
            self.name, s.duplicate_labels
        );
        assert_eq!(s.illegal_order_attempts, 0, "[{}] illegal {:?}", self.name, s.illegal_seqs);
        self.positions_match_venue = Some(false);
        let pos = self.wait_positions_match();
        self.positions_match_venue = Some(true);
        self.notes.push("engine positions == venue positions: yes".into());
        let max = |opt: bool| {
            pos.iter()
                .filter(|(i, _)| is_option(i) == opt)
                .map(|(_, s)| s.abs())
                .fold(0.0, f64::max)
        };
        let (perp, opt) = (max(false), max(true));
        self.max_exposure = Some((perp, opt));
        self.notes.push(format!(
            "largest |position|: {perp} (perpetual, tolerance {EXPOSURE_TOLERANCE}), {opt} \
             (option, tolerance {OPTION_EXPOSURE_TOLERANCE})"
        ));
        assert!(perp <= EXPOSURE_TOLERANCE, "[{}] perpetual exposure {pos:?}", self.name);
        assert!(opt <= OPTION_EXPOSURE_TOLERANCE, "[{}] option exposure {pos:?}", self.name);
    }

    /// Checks that every mode the test claims (`modes`; "A or B" = one of them, words other
    /// than mode names are commentary) was observed.
    fn assert_modes_observed(&self, modes: &[&str]) -> BTreeSet<String> {
        let seen = self.modes_seen();
        for m in modes {
            let names: Vec<&str> = m
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| matches!(*w, "Active" | "ReduceOnly" | "Kill"))
                .collect();
            assert!(
                names.iter().any(|n| seen.contains(*n)),
                "[{}] claimed mode `{m}` not observed; observed {seen:?}",
                self.name
            );
        }
        seen
    }

    /// Writes `evidence/phase2/chaos/<name>.md` and the result, then rebuilds `summary.json`.
    /// Only stable content: codes, modes and outcomes, no times, ports or volumes. Every field
    /// is what the test measured; `outcome` is "pass" only if each of them holds. `modes` are
    /// the modes the test claims the engine passed through (checked against the observed).
    pub fn write_evidence(&self, fault: &str, modes: &[&str]) {
        let observed = self.assert_modes_observed(modes);
        let opens_while_contained: usize = self.contained_windows.iter().map(|w| w.1).sum();
        let clean_oracle = self.oracle == Some((0, 0));
        let pass = self.recovered
            && self.positions_match_venue == Some(true)
            && clean_oracle
            && self.max_exposure.is_some()
            && opens_while_contained == 0;
        let dir = evidence_dir();
        std::fs::create_dir_all(dir.join("results")).unwrap();
        let mut md = String::new();
        md.push_str(&format!("# Chaos scenario: {}\n\n", self.name));
        md.push_str(
            "Written by `tests/chaos.rs` (real `stoic run` binary against the simulator).\n\n",
        );
        md.push_str(&format!("Outcome: **{}**\n\n", if pass { "pass" } else { "FAIL" }));
        md.push_str(&format!("## Fault\n\n{fault}\n\n"));
        md.push_str("## Asserted codes (seen in `GET /api/v1/status`)\n\n");
        if self.asserted_codes.is_empty() {
            md.push_str("- (none asserted present)\n");
        }
        for c in &self.asserted_codes {
            md.push_str(&format!("- `{c}`\n"));
        }
        if !self.asserted_absent.is_empty() {
            md.push_str("\nAsserted never seen:\n\n");
            for c in &self.asserted_absent {
                md.push_str(&format!("- `{c}`\n"));
            }
        }
        md.push_str("\n## Modes passed through (claimed, each checked against the observed)\n\n");
        for m in modes {
            md.push_str(&format!("- {m}\n"));
        }
        md.push_str(&format!(
            "\nObserved: {}\n",
            observed.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        md.push_str("\n## Containment\n\n");
        for n in &self.notes {
            md.push_str(&format!("- {n}\n"));
        }
        md.push_str(&format!(
            "\n## Recovery\n\n- after the fault cleared: {}\n",
            if self.recovered {
                "Active, latch clear, new orders at the venue"
            } else {
                "NOT recovered"
            }
        ));
        std::fs::write(dir.join(format!("{}.md", self.name)), md).unwrap();
        let result = json!({
            "scenario": self.name,
            "outcome": if pass { "pass" } else { "fail" },
            "asserted_codes": self.asserted_codes,
            "asserted_absent_codes": self.asserted_absent,
            "modes": modes,
            "modes_observed": observed,
            "duplicate_dispatch_count": self.oracle.map(|o| o.0),
            "illegal_order_attempts": self.oracle.map(|o| o.1),
            "positions_match_venue": self.positions_match_venue,
            "max_perpetual_exposure": self.max_exposure.map(|e| e.0),
            "max_option_exposure": self.max_exposure.map(|e| e.1),
            "contained_windows": self.contained_windows.iter().map(|(w, o, _)| json!({
                "window": w,
                "opens_at_venue": o,
            })).collect::<Vec<_>>(),
            "recovered": self.recovered,
            "facts": self.facts,
        });
        std::fs::write(
            dir.join("results").join(format!("{}.json", self.name)),
            serde_json::to_string_pretty(&result).unwrap() + "\n",
        )
        .unwrap();
        write_summary(&dir);
        assert!(pass, "[{}] scenario outcome fail: {result}", self.name);
    }

    /// SIGKILLs the engine. What the watcher saw of it is forgotten: a code asserted after
    /// this must come from the next process.
    pub fn kill9(&mut self) {
        self.stop_watcher();
        if let Some(mut e) = self.engine.take() {
            e.kill9();
        }
        self.seen.lock().unwrap().clear();
        self.status_addr.clear();
    }

    /// The operator relax through the engine's host-local socket (`stoic mode relax`).
    pub fn operator_relax(&self, reason: &str) {
        if let Err(e) = self.try_operator_relax(reason) {
            panic!("[{}] relax refused: {e}", self.name);
        }
    }

    /// `stoic mode relax --to active` over the operator socket; the refusal text on failure.
    pub fn try_operator_relax(&self, reason: &str) -> Result<(), String> {
        let out = Command::new(BIN)
            .args(["mode", "relax", "--to", "active", "--socket"])
            .arg(self.wal.join("control.sock"))
            .arg("--token-file")
            .arg(self.wal.join("control_token"))
            .args(["--reason", reason, "--requested-by", "chaos-suite"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Stops the engine with SIGTERM (clean shutdown) and the simulator.
    pub fn finish(mut self) {
        self.stop_watcher();
        if std::env::var_os("CHAOS_DUMP").is_some() {
            let out = self.engine.as_ref().map(Proc::output).unwrap_or_default();
            for l in out.lines().filter(|l| !l.starts_with("progress:")) {
                println!("[{}] {l}", self.name);
            }
        }
        if let Some(mut e) = self.engine.take() {
            let _ = Command::new("kill").args(["-TERM", &e.pid().to_string()]).status();
            let _ = e.wait_exit(Duration::from_secs(20));
        }
        if let Some(s) = self.sim.take() {
            s.shutdown();
        }
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        self.stop_watcher();
    }
}

pub fn evidence_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("evidence/phase2/chaos")
}

/// The "fail" result (and evidence page) a scenario leaves if it does not reach
/// `write_evidence`: written when it starts, overwritten when it passes.
pub fn write_pending(name: &str) {
    let dir = evidence_dir();
    std::fs::create_dir_all(dir.join("results")).unwrap();
    let md = format!(
        "# Chaos scenario: {name}\n\nOutcome: **FAIL**: the test started but did not finish \
         (an assertion failed or it was interrupted); see the test output.\n"
    );
    std::fs::write(dir.join(format!("{name}.md")), md).unwrap();
    let result = json!({"scenario": name, "outcome": "fail", "reason": "did not finish"});
    std::fs::write(
        dir.join("results").join(format!("{name}.json")),
        serde_json::to_string_pretty(&result).unwrap() + "\n",
    )
    .unwrap();
    write_summary(&dir);
}

/// `summary.json` over every scenario of [`SCENARIOS`] (sorted by name: stable): a scenario
/// without a result file (not run, or results cleared) counts as failed, as does any result
/// that is not "pass". `outcome` is "pass" only if every scenario passed.
pub fn write_summary(dir: &Path) {
    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("results")) {
        for e in rd.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
            if let Some(n) = v["scenario"].as_str() {
                results.insert(n.to_owned(), v);
            }
        }
    }
    for name in SCENARIOS {
        results.entry((*name).to_owned()).or_insert_with(
            || json!({"scenario": name, "outcome": "missing", "reason": "no result from this run"}),
        );
    }
    let passed = results.values().filter(|v| v["outcome"] == "pass").count();
    let total = |k: &str| results.values().map(|v| v[k].as_u64().unwrap_or(0)).sum::<u64>();
    let opens: u64 = results
        .values()
        .flat_map(|v| v["contained_windows"].as_array().cloned().unwrap_or_default())
        .map(|w| w["opens_at_venue"].as_u64().unwrap_or(0))
        .sum();
    let summary = json!({
        "suite": "chaos",
        "outcome": if passed == results.len() { "pass" } else { "fail" },
        "scenarios": results.len(),
        "passed": passed,
        "failed": results.len() - passed,
        "duplicate_dispatch_count_total": total("duplicate_dispatch_count"),
        "illegal_order_attempts_total": total("illegal_order_attempts"),
        "opens_while_contained_total": opens,
        "results": results.values().map(|v| json!({
            "scenario": v["scenario"],
            "outcome": v["outcome"],
            "asserted_codes": v["asserted_codes"],
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap() + "\n",
    )
    .unwrap();
}

/// Waits for a resting (open) order of ours in the journal and has the probe account take
/// it with an IOC at its price, so it fills. Returns whether a take was sent.
pub fn probe_take_resting(
    c: &Chaos,
    probe: &mut simulator::client::WsClient,
    n: u64,
    instrument: Option<&str>,
) -> bool {
    let j = c.journal();
    let resting = j.iter().rev().find(|e| {
        e["key"] == OUR_KEY
            && instrument.is_none_or(|i| e["instrument"] == i)
            && matches!(e["method"].as_str(), Some("private/buy" | "private/sell"))
            && e["result"]["order_state"] == "open"
    });
    let Some(o) = resting else { return false };
    let method = if o["side"] == "buy" { "private/sell" } else { "private/buy" };
    probe
        .call(
            method,
            &json!({
                "instrument_name": o["instrument"],
                "amount": 100_000,
                "type": "limit",
                "price": o["price"],
                "time_in_force": "immediate_or_cancel",
                "label": format!("probe-{n}"),
            }),
        )
        .is_ok()
}
