//! The end of a paper run: reconcile engine positions against the venue's, judge the run, and
//! write `summary.json` (no wall-clock values, so what is deterministic stays byte-stable) and
//! a human `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use super::clock::{utc, DAY_MS, SIM_ORIGIN_MS};
use super::monitor::MonitorLog;
use super::schedule::ScheduledFault;
use super::PaperConfig;
use crate::engine::EngineSnapshot;

/// The simulator account the engine trades on.
const ACCOUNT: &str = "dev";

/// Pass, or every check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// What failed, one line each.
    Fail(Vec<String>),
}

/// What the report is built from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// Run arguments.
    pub cfg: &'a PaperConfig,
    /// Simulated ms per tick.
    pub step_ms: i64,
    /// Fault schedule.
    pub schedule: &'a [ScheduledFault],
    /// What the watcher saw.
    pub log: &'a MonitorLog,
    /// Engine snapshot after shutdown.
    pub engine: &'a EngineSnapshot,
    /// The engine loop's fatal error, if any.
    pub engine_error: Option<String>,
    /// `sim.state()` when trading started.
    pub venue_start: &'a Value,
    /// `sim.state()` at the end.
    pub venue_end: &'a Value,
    /// The simulator journal oracle.
    pub oracle: &'a simulator::journal::Summary,
}

/// The built report.
#[derive(Debug)]
pub struct Report {
    /// Verdict.
    pub verdict: Verdict,
    /// `summary.json` content.
    pub json: Value,
}

fn account(state: &Value) -> Option<&Value> {
    state.get("accounts")?.as_array()?.iter().find(|a| a["username"] == ACCOUNT)
}

/// Venue positions in the engine's units (1e-8 of the venue amount).
fn venue_positions(state: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let list = account(state).and_then(|a| a["positions"].as_array());
    for p in list.into_iter().flatten() {
        let (Some(name), Some(size)) = (p["instrument_name"].as_str(), p["size"].as_f64()) else {
            continue;
        };
        #[allow(clippy::cast_possible_truncation)]
        out.insert(name.to_owned(), (size * 1e8).round() as i64);
    }
    out
}

fn equity_by_currency(state: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let list = account(state).and_then(|a| a["summaries"].as_array());
    for s in list.into_iter().flatten() {
        if let (Some(c), Some(e)) = (s["currency"].as_str(), s["equity"].as_f64()) {
            out.insert(c.to_owned(), e);
        }
    }
    out
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

fn offset_text(ms: i64) -> String {
    let d = ms.div_euclid(DAY_MS);
    let r = ms.rem_euclid(DAY_MS) / 1000;
    format!("d{d} {:02}:{:02}:{:02}", r / 3600, (r / 60) % 60, r % 60)
}

impl Inputs<'_> {
    /// Reconciles and judges.
    #[must_use]
    pub fn build(&self) -> Report {
        let engine_pos: BTreeMap<String, i64> =
            self.engine.positions.iter().filter(|(_, q)| *q != 0).cloned().collect();
        let venue_pos = venue_positions(self.venue_end);
        let mut names: Vec<&String> = engine_pos.keys().chain(venue_pos.keys()).collect();
        names.sort();
        names.dedup();
        let mut positions = Vec::new();
        let mut unreconciled = 0u64;
        for n in names {
            let e = engine_pos.get(n).copied().unwrap_or(0);
            let v = venue_pos.get(n).copied().unwrap_or(0);
            if e != v {
                unreconciled += 1;
            }
            positions.push(json!({"instrument": n, "engine": e, "venue": v, "match": e == v}));
        }

        let (start_eq, end_eq) =
            (equity_by_currency(self.venue_start), equity_by_currency(self.venue_end));
        let index = &self.venue_end["index"];
        let mut pnl_usd = 0.0;
        let mut by_ccy = serde_json::Map::new();
        for (c, end) in &end_eq {
            let delta = end - start_eq.get(c).copied().unwrap_or(*end);
            let idx = index[format!("{}_usd", c.to_ascii_lowercase())].as_f64().unwrap_or(0.0);
            pnl_usd += delta * idx;
            by_ccy.insert(
                c.clone(),
                json!({"equity_change": round(delta, 8), "index_usd": round(idx, 2)}),
            );
        }

        let s = &self.engine.stats;
        let mut failures = Vec::new();
        if unreconciled != 0 {
            failures.push(format!("{unreconciled} unreconciled position(s)"));
        }
        if self.oracle.duplicate_dispatch_count != 0 {
            failures
                .push(format!("{} duplicate dispatch(es)", self.oracle.duplicate_dispatch_count));
        }
        if self.oracle.illegal_order_attempts != 0 {
            failures
                .push(format!("{} illegal order attempt(s)", self.oracle.illegal_order_attempts));
        }
        if let Some(e) = &self.engine_error {
            failures.push(format!("engine stopped with an error: {e}"));
        }
        let total_ms = i64::from(self.cfg.days) * DAY_MS;
        if self.log.sim_elapsed_ms < total_ms {
            failures.push(format!(
                "only {} of {} simulated days ran",
                round(self.log.sim_elapsed_ms as f64 / DAY_MS as f64, 3),
                self.cfg.days
            ));
        }
        let verdict =
            if failures.is_empty() { Verdict::Pass } else { Verdict::Fail(failures.clone()) };

        let schedule: Vec<Value> = self
            .schedule
            .iter()
            .map(|f| {
                json!({
                    "kind": f.kind.as_str(),
                    "start": offset_text(f.start_offset_ms),
                    "end": f.end_offset_ms.map(offset_text),
                    "venue_fault": serde_json::to_value(&f.start).unwrap_or(Value::Null),
                })
            })
            .collect();
        let events: Vec<Value> = self
            .log
            .events
            .iter()
            .map(|e| {
                json!({"at": offset_text(e.offset_ms), "kind": e.kind, "reason": e.reason,
                       "last_fault": e.last_fault, "count": e.count})
            })
            .collect();
        let timeline: Vec<Value> = self
            .log
            .timeline
            .iter()
            .map(|m| {
                json!({"at": offset_text(m.offset_ms), "mode": format!("{:?}", m.mode),
                       "risk_state": format!("{:?}", m.risk_state), "latched": m.latched,
                       "reasons": m.reasons})
            })
            .collect();
        let json = json!({
            "verdict": if failures.is_empty() { "pass" } else { "fail" },
            "failures": failures,
            "run": {
                "days": self.cfg.days,
                "speed": self.cfg.speed,
                "seed": self.cfg.seed,
                "tick_ms": self.cfg.tick_ms,
                "step_ms": self.step_ms,
                "strategy": self.cfg.strategy,
                "faults_per_day": self.cfg.faults_per_day,
                "sim_start_utc": utc(SIM_ORIGIN_MS),
                "sim_end_utc": utc(SIM_ORIGIN_MS + total_ms),
                "simulated_days_run": round(self.log.sim_elapsed_ms as f64 / DAY_MS as f64, 3),
            },
            "oracle": {
                "new_order_requests": self.oracle.new_order_requests,
                "duplicate_dispatch_count": self.oracle.duplicate_dispatch_count,
                "duplicate_labels": self.oracle.duplicate_labels,
                "illegal_order_attempts": self.oracle.illegal_order_attempts,
                "illegal_seqs": self.oracle.illegal_seqs,
                "post_only_in_flight_races": self.oracle.post_only_in_flight_races,
                "unparsable_journal_lines": self.oracle.unparsable_lines,
            },
            "reconciliation": {
                "unreconciled_positions": unreconciled,
                "positions": positions,
            },
            "orders": {
                "intents": s.intents, "sent": s.sent, "acked": s.acked, "fills": s.fills,
                "filled": s.filled, "cancelled": s.cancelled, "venue_rejects": s.venue_rejects,
                "gate_rejects": s.gate_rejects, "abandoned": s.abandoned,
                "in_doubt_resolved": s.in_doubt_resolved, "reconnects": s.reconnects,
                "resubscribes": s.resubscribes, "wal_failures": s.wal_failures,
            },
            "pnl": {
                "venue_equity_change_usd": round(pnl_usd, 2),
                "by_currency": by_ccy,
                "engine_cash_flow": round(self.engine.cash_flow as f64 / 1e8, 8),
            },
            "faults_scheduled": schedule,
            "faults_injected": self.log.faults_injected,
            "containment_events": events,
            "gate_rejects_by_reason": self.log.gate_rejects_by_reason,
            "mode_timeline": timeline,
            "final_mode": format!("{:?}", self.engine.mode),
        });
        Report { verdict, json }
    }
}

fn markdown(r: &Report, wall_s: f64) -> String {
    let j = &r.json;
    let mut m = String::new();
    let run = &j["run"];
    let _ = writeln!(m, "# Paper run: {} simulated days at {}× speed\n", run["days"], run["speed"]);
    let _ = writeln!(
        m,
        "Verdict: **{}**. Simulated {} → {} (seed {}, strategy `{}`, one market tick = {} simulated s); wall time {:.0} s.\n",
        j["verdict"].as_str().unwrap_or("?").to_uppercase(),
        run["sim_start_utc"].as_str().unwrap_or(""),
        run["sim_end_utc"].as_str().unwrap_or(""),
        run["seed"],
        run["strategy"].as_str().unwrap_or(""),
        run["step_ms"].as_i64().unwrap_or(0) / 1000,
        wall_s
    );
    for f in j["failures"].as_array().into_iter().flatten() {
        let _ = writeln!(m, "- FAILED: {}", f.as_str().unwrap_or(""));
    }
    let o = &j["oracle"];
    let rec = &j["reconciliation"];
    let ord = &j["orders"];
    let _ = writeln!(m, "## Checks\n");
    let _ = writeln!(m, "| check | value |\n|---|---|");
    let _ = writeln!(
        m,
        "| unreconciled positions (engine vs venue) | {} |",
        rec["unreconciled_positions"]
    );
    let _ = writeln!(
        m,
        "| duplicate dispatches (journal oracle) | {} |",
        o["duplicate_dispatch_count"]
    );
    let _ = writeln!(
        m,
        "| illegal order attempts (journal oracle) | {} |",
        o["illegal_order_attempts"]
    );
    let _ = writeln!(
        m,
        "| post-only orders that raced a book change in flight (venue rejected; not illegal) | {} |",
        o["post_only_in_flight_races"]
    );
    let _ = writeln!(m, "| new-order requests seen by the venue | {} |", o["new_order_requests"]);
    let _ = writeln!(m, "\n## Orders and PnL\n");
    let _ = writeln!(
        m,
        "intents {}, sent {}, acked {}, fill reports {}, filled {}, cancelled {}, venue rejects {}, gate rejects {}, reconnects {}, resubscribes {}.\n",
        ord["intents"], ord["sent"], ord["acked"], ord["fills"], ord["filled"], ord["cancelled"],
        ord["venue_rejects"], ord["gate_rejects"], ord["reconnects"], ord["resubscribes"]
    );
    let _ = writeln!(
        m,
        "Venue equity change: {} USD at end-of-run index ({}).\n",
        j["pnl"]["venue_equity_change_usd"], j["pnl"]["by_currency"]
    );
    let _ =
        writeln!(m, "## Positions at the end\n\n| instrument | engine | venue |\n|---|---|---|");
    for p in rec["positions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} |",
            p["instrument"].as_str().unwrap_or(""),
            p["engine"],
            p["venue"]
        );
    }
    let _ = writeln!(m, "\n## Faults and containment\n\n| at (sim) | event | reason | last fault started | count |\n|---|---|---|---|---|");
    for e in j["containment_events"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            e["at"].as_str().unwrap_or(""),
            e["kind"].as_str().unwrap_or(""),
            e["reason"].as_str().unwrap_or(""),
            e["last_fault"].as_str().unwrap_or("-"),
            e["count"]
        );
    }
    let _ = writeln!(m, "\nGate refusals by reason: {}\n", j["gate_rejects_by_reason"]);
    let _ = writeln!(
        m,
        "## Mode timeline\n\n| at (sim) | mode | risk | latched | reasons |\n|---|---|---|---|---|"
    );
    for t in j["mode_timeline"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            t["at"].as_str().unwrap_or(""),
            t["mode"].as_str().unwrap_or(""),
            t["risk_state"].as_str().unwrap_or(""),
            t["latched"],
            t["reasons"]
        );
    }
    m
}

/// Writes `summary.json` and `report.md` into `dir`; returns the summary's path.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write(dir: &Path, r: &Report, wall_s: f64) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join("summary.json");
    let mut text = serde_json::to_string_pretty(&r.json)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(r, wall_s)).with_context(|| format!("write {}", md.display()))?;
    Ok(path)
}
