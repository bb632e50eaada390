//! The order journal: every order-affecting request the simulator received, in order, one
//! JSON object per line. It is the independent oracle for `duplicate_dispatch_count` and
//! `illegal_order_attempts`: the engine under test never writes it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Journal lines beyond this are not written (a counter says how many were skipped): the
/// disk use of a runaway client stays bounded.
pub const JOURNAL_LINES_MAX: u64 = 2_000_000;

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// 1-based sequence in receive order.
    pub seq: u64,
    /// Server time (ms) when handled.
    pub ts_ms: i64,
    /// Connection/session id (HTTP requests get their own).
    pub session: u64,
    /// Client id of the key the request was authorised with ("" when unauthenticated).
    pub key: String,
    /// `private/buy`, `private/sell`, `private/edit`, `private/cancel`, ...
    pub method: String,
    /// Instrument (when the request named one or the order had one).
    #[serde(default)]
    pub instrument: Option<String>,
    /// Label as sent.
    #[serde(default)]
    pub label: Option<String>,
    /// Order type as sent (`limit` when absent on buy/sell).
    #[serde(default, rename = "type")]
    pub order_type: Option<String>,
    /// `buy` / `sell` for new orders.
    #[serde(default)]
    pub side: Option<String>,
    /// Amount as sent.
    #[serde(default)]
    pub amount: Option<f64>,
    /// Price as sent (number; `market_price` and absent become null).
    #[serde(default)]
    pub price: Option<f64>,
    /// Order id (edit/cancel).
    #[serde(default)]
    pub order_id: Option<String>,
    /// Flags: post_only, reject_post_only, reduce_only, time_in_force, trigger,
    /// trigger_price, linked_order_type, price_missing, post_only_crossed, and for a
    /// crossing post-only order either post_only_cross_unpublished or
    /// post_only_cross_published_ms (how long the tops sent had crossed its price).
    #[serde(default)]
    pub flags: serde_json::Map<String, Value>,
    /// `{"order_id", "order_state"}` on success, `{"error": code, "message"}` on failure,
    /// `{"count": n}` for mass cancels.
    pub result: Value,
}

/// Writes journal lines; flushed after every line so a crash test reading the file sees
/// every request the simulator answered.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    seq: u64,
    skipped: u64,
}

impl Journal {
    /// Creates (truncates) the journal file.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path) -> std::io::Result<Journal> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let file = File::create(path)?;
        Ok(Journal { path: path.to_path_buf(), file: Some(file), seq: 0, skipped: 0 })
    }

    /// Path of the journal.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Next sequence number (assigned by `append`).
    pub fn next_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Appends an entry (its `seq` is overwritten). Write errors are logged and the
    /// journal stops, rather than failing the venue.
    pub fn append(&mut self, mut e: Entry) {
        self.seq += 1;
        e.seq = self.seq;
        if self.seq > JOURNAL_LINES_MAX {
            self.skipped += 1;
            return;
        }
        let Some(f) = self.file.as_mut() else { return };
        let mut line = match serde_json::to_vec(&e) {
            Ok(l) => l,
            Err(err) => {
                tracing::error!("journal encode: {err}");
                return;
            }
        };
        line.push(b'\n');
        // One write per line: the line is whole on disk or absent, never interleaved.
        if let Err(err) = f.write_all(&line) {
            tracing::error!("journal write failed, journal stops: {err}");
            self.file = None;
        }
    }

    /// Lines skipped after the bound was reached.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// The oracle's verdict over one journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// New-order requests (buy/sell).
    pub new_order_requests: u64,
    /// Sum over labels of (new-order requests with that label − 1): a label dispatched twice
    /// counts one duplicate. Empty labels are not counted (they carry no identity).
    pub duplicate_dispatch_count: u64,
    /// Labels that were dispatched more than once.
    pub duplicate_labels: Vec<String>,
    /// New-order requests of a kind preflight must stop: market, stop_*, take_*,
    /// market_limit, trailing_stop, any trigger, linked orders (OTO/OCO/OTOCO), a
    /// limit without price, a post-only order that crossed a top of book the venue had
    /// published at least [`POST_ONLY_IN_FLIGHT_GRACE_MS`] earlier.
    pub illegal_order_attempts: u64,
    /// Sequence numbers of the illegal attempts.
    pub illegal_seqs: Vec<u64>,
    /// Post-only orders that crossed only because of a book change the venue had not yet
    /// published, or had published less than [`POST_ONLY_IN_FLIGHT_GRACE_MS`] before the
    /// order arrived: a race with a moving market that the venue resolves (the engine sends
    /// `reject_post_only`), not an order the engine's post-only guard could have refused.
    #[serde(default)]
    pub post_only_in_flight_races: u64,
    /// Lines that did not parse (a torn last line after a crash is possible but the
    /// simulator writes whole lines).
    pub unparsable_lines: u64,
}

impl Summary {
    /// Reads a journal file.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn from_file(path: &Path) -> std::io::Result<Summary> {
        let f = File::open(path)?;
        let mut entries = Vec::new();
        let mut bad = 0;
        for line in BufReader::new(f).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Entry>(&line) {
                Ok(e) => entries.push(e),
                Err(_) => bad += 1,
            }
        }
        let mut s = Summary::from_entries(&entries);
        s.unparsable_lines = bad;
        Ok(s)
    }

    /// Computes the verdict over entries.
    pub fn from_entries(entries: &[Entry]) -> Summary {
        let mut s = Summary::default();
        let mut by_label: HashMap<&str, u64> = HashMap::new();
        for e in entries {
            let is_new = e.method == "private/buy" || e.method == "private/sell";
            if !is_new {
                continue;
            }
            s.new_order_requests += 1;
            if let Some(l) = e.label.as_deref().filter(|l| !l.is_empty()) {
                *by_label.entry(l).or_default() += 1;
            }
            if is_illegal(e) {
                s.illegal_order_attempts += 1;
                s.illegal_seqs.push(e.seq);
            } else if flag_true(e, "post_only_crossed") {
                s.post_only_in_flight_races += 1;
            }
        }
        let mut dups: Vec<String> =
            by_label.iter().filter(|(_, n)| **n > 1).map(|(l, _)| (*l).to_string()).collect();
        dups.sort();
        s.duplicate_dispatch_count = by_label.values().map(|n| n.saturating_sub(1)).sum();
        s.duplicate_labels = dups;
        s
    }
}

/// The raw journal lines with these sequence numbers (at most `max`), for a failing run to
/// print what the venue saw.
///
/// # Errors
/// When the file cannot be read.
pub fn lines_with_seqs(path: &Path, seqs: &[u64], max: usize) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        let Ok(e) = serde_json::from_str::<Entry>(&line) else { continue };
        if seqs.contains(&e.seq) {
            out.push(line);
            if out.len() >= max {
                break;
            }
        }
    }
    Ok(out)
}

fn flag_true(e: &Entry, k: &str) -> bool {
    e.flags.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// A top of book published at least this long (wall ms) before a post-only order arrived
/// has reached the client: crossing it is the client's fault. Loopback delivery takes
/// microseconds; the margin covers a client thread descheduled on a loaded two-core machine.
pub const POST_ONLY_IN_FLIGHT_GRACE_MS: i64 = 1_000;

/// Whether a crossing post-only order crossed a top of book the client had long enough to
/// see. Journals written before the venue recorded what it had published count as known.
fn post_only_cross_was_known(e: &Entry) -> bool {
    if flag_true(e, "post_only_cross_unpublished") {
        return false;
    }
    match e.flags.get("post_only_cross_published_ms").and_then(Value::as_i64) {
        Some(ms) => ms >= POST_ONLY_IN_FLIGHT_GRACE_MS,
        None => true,
    }
}

/// Order types and flags that an engine's preflight must never let through.
pub fn is_illegal(e: &Entry) -> bool {
    let ty = e.order_type.as_deref().unwrap_or("limit");
    if ty != "limit" {
        return true; // market, stop_*, take_*, market_limit, trailing_stop, unknown
    }
    if e.flags.get("trigger").is_some_and(|v| !v.is_null())
        || e.flags.get("trigger_price").is_some_and(|v| !v.is_null())
        || e.flags.get("linked_order_type").is_some_and(|v| !v.is_null())
    {
        return true;
    }
    flag_true(e, "price_missing")
        || (flag_true(e, "post_only_crossed") && post_only_cross_was_known(e))
}
