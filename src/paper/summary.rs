//! The end of a paper run: reconcile engine positions against the venue's, judge the run, and
//! write `summary.json` (no wall-clock values, so what is deterministic stays byte-stable) and
//! a human `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

use super::clock::{utc, DAY_MS, SIM_ORIGIN_MS};
use super::fills::{VenueFill, ACCOUNT};
use super::monitor::{mode_name, FaultRecord, MonitorLog};
use super::schedule::{FaultKind, ScheduledFault};
use super::PaperConfig;
use crate::engine::EngineSnapshot;

/// Share of the met faults that must show their containment effect (the rest are reported as
/// warnings: the monitor samples on the wall clock and can miss a short window).
const CONTAINED_SHARE_MIN_PCT: usize = 90;

/// Fill lists up to this long go into summary.json whole; longer ones as their first and last
/// [`FILLS_EDGE`] entries plus totals.
const FILLS_LISTED_MAX: usize = 2_000;
const FILLS_EDGE: usize = 500;
/// Refusals for expired instruments above this share of all gate refusals mean the strategy
/// kept aiming at dead instruments (the run stops being a trading run).
const EXPIRED_REFUSAL_SHARE_MAX: f64 = 0.01;
/// Equity not explained by cash flow, fees and marks beyond this (base currency) fails the run.
const PNL_RESIDUAL_MAX: f64 = 1e-6;

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
    /// The venue's fills (its trade list), oldest first.
    pub venue_fills: &'a [VenueFill],
    /// Expiry (venue ms) of the instruments the engine traded.
    pub expiries: &'a BTreeMap<String, i64>,
    /// The instruments the engine traded (subscribed at start).
    pub instruments: &'a [String],
    /// New orders the venue accepted per simulated day.
    pub orders_by_day: &'a [u64],
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

fn summary_field(state: &Value, field: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let list = account(state).and_then(|a| a["summaries"].as_array());
    for s in list.into_iter().flatten() {
        if let (Some(c), Some(e)) = (s["currency"].as_str(), s[field].as_f64()) {
            out.insert(c.to_owned(), e);
        }
    }
    out
}

fn equity_by_currency(state: &Value) -> BTreeMap<String, f64> {
    summary_field(state, "equity")
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    // `+ 0.0` turns a rounded -0.0 into 0.0 (the evidence should not print "-0.0").
    (x * m).round() / m + 0.0
}

fn offset_text(ms: i64) -> String {
    let d = ms.div_euclid(DAY_MS);
    let r = ms.rem_euclid(DAY_MS) / 1000;
    format!("d{d} {:02}:{:02}:{:02}", r / 3600, (r / 60) % 60, r % 60)
}

/// What a fault of this kind must visibly do to the engine, and whether the record shows it.
fn containment(kind: FaultKind, r: &FaultRecord) -> (bool, &'static str) {
    let delta = |k: &str| r.deltas.get(k).copied().unwrap_or(0) > 0;
    let reason = |c: &str| r.mode_reasons.contains(c);
    match kind {
        FaultKind::Disconnect => (delta("reconnects"), "session lost, reconnected and reconciled"),
        FaultKind::RateLimitBurst => (
            r.met == Some(true)
                && (rate_limit_reason(r)
                    || r.latch_codes.contains("SESSION_TERMINATION_RECONCILE_REQUIRED")),
            "session terminated: latched until reconciled; with the 10028 counted, ReduceOnly (unconfirmed) or Kill (confirmed)",
        ),
        FaultKind::BookGap => (delta("resubscribes"), "book change-id gap: resubscribed"),
        FaultKind::DuplicateFill => {
            (delta("duplicate_fills_ignored"), "repeated fill notification ignored (same trade id)")
        }
        FaultKind::OrderReject => (delta("venue_rejects"), "venue reject handled"),
        FaultKind::StaleData => (
            r.met == Some(true) && r.latch_codes.contains("WS_DATA_STALE_RECONCILE_REQUIRED"),
            "zombie rule tripped: latched until market data resumed and reconciled",
        ),
        FaultKind::Maintenance => (
            reason("REDUCEONLY_RISKSTATE_MAINTENANCE"),
            "ReduceOnly while the venue is in maintenance",
        ),
    }
}

/// Trading must stay meaningful: every traded instrument alive to the end, refusals for dead
/// instruments rare, and new orders reaching the venue on every simulated day.
fn trading_checks(
    expiries: &BTreeMap<String, i64>,
    end_ms: i64,
    rejects: &BTreeMap<&str, u64>,
    gate_rejects: u64,
    orders_by_day: &[u64],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, expiry) in expiries {
        if *expiry <= end_ms {
            failures.push(format!("{name} expires at {} inside the run", utc(*expiry)));
        }
    }
    let expired = rejects.get("InstrumentExpiredOrDelisted").copied().unwrap_or(0);
    if expired as f64 > EXPIRED_REFUSAL_SHARE_MAX * gate_rejects.max(1) as f64 {
        failures.push(format!(
            "{expired} of {gate_rejects} gate refusals were for expired or delisted instruments"
        ));
    }
    for (day, n) in orders_by_day.iter().enumerate() {
        if *n == 0 {
            failures.push(format!("no new order reached the venue on simulated day {day}"));
        }
    }
    failures
}

fn rate_limit_reason(r: &FaultRecord) -> bool {
    r.mode_reasons.contains("REDUCEONLY_SESSION_KILL_UNCONFIRMED")
        || r.mode_reasons.contains("KILL_RATE_LIMIT_SESSION_TERMINATION")
}

fn fill_json(f: &VenueFill) -> Value {
    json!({"at": offset_text(f.ts_ms - SIM_ORIGIN_MS), "trade_id": f.trade_id,
           "instrument": f.instrument, "side": f.side, "amount": f.amount, "price": f.price,
           "fee": f.fee, "liquidity": f.liquidity})
}

/// Option premium cash flow (sells positive) and fees, per currency, from the venue's fills.
fn venue_flows(fills: &[VenueFill]) -> (BTreeMap<String, f64>, BTreeMap<String, f64>, u64) {
    let (mut cash, mut fees, mut futures) = (BTreeMap::new(), BTreeMap::new(), 0u64);
    for f in fills {
        *fees.entry(f.fee_currency.clone()).or_insert(0.0) += f.fee;
        if f.instrument.matches('-').count() == 3 {
            let sign = if f.side == "sell" { 1.0 } else { -1.0 };
            *cash.entry(f.fee_currency.clone()).or_insert(0.0) += sign * f.price * f.amount;
        } else {
            futures += 1;
        }
    }
    (cash, fees, futures)
}

impl Inputs<'_> {
    fn positions(&self) -> (Vec<Value>, u64) {
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
        (positions, unreconciled)
    }

    /// Engine PnL (cash flow of its fills) against the venue's equity change: equity moves by
    /// premium cash flow − fees + Δ options value + Δ futures PnL; what is left is unexplained.
    fn pnl(&self, failures: &mut Vec<String>) -> Value {
        let (start_eq, end_eq) =
            (equity_by_currency(self.venue_start), equity_by_currency(self.venue_end));
        let field = |st: &Value, k: &str| summary_field(st, k);
        let (ov0, ov1) =
            (field(self.venue_start, "options_value"), field(self.venue_end, "options_value"));
        let (fp0, fp1) =
            (field(self.venue_start, "futures_pl"), field(self.venue_end, "futures_pl"));
        let (cash, fees, futures_fills) = venue_flows(self.venue_fills);
        let index = &self.venue_end["index"];
        let mut pnl_usd = 0.0;
        let mut by_ccy = serde_json::Map::new();
        for (c, end) in &end_eq {
            let get = |m: &BTreeMap<String, f64>| m.get(c).copied().unwrap_or(0.0);
            let delta = end - start_eq.get(c).copied().unwrap_or(*end);
            let idx = index[format!("{}_usd", c.to_ascii_lowercase())].as_f64().unwrap_or(0.0);
            pnl_usd += delta * idx;
            let options_value_change = get(&ov1) - get(&ov0);
            let futures_pl_change = get(&fp1) - get(&fp0);
            let explained = get(&cash) - get(&fees) + options_value_change + futures_pl_change;
            let residual = delta - explained;
            if residual.abs() > PNL_RESIDUAL_MAX {
                failures.push(format!(
                    "{c} equity change {delta:.8} is not explained by fills, fees and marks (residual {residual:.8})"
                ));
            }
            by_ccy.insert(
                c.clone(),
                json!({"equity_change": round(delta, 8), "index_usd": round(idx, 2),
                       "premium_cash_flow": round(get(&cash), 8), "fees": round(get(&fees), 8),
                       "options_value_change": round(options_value_change, 8),
                       "futures_pl_change": round(futures_pl_change, 8),
                       "unexplained": round(residual, 8)}),
            );
        }
        // The engine's cash flow is BTC premium (its quoter trades BTC options only).
        let engine_cash = self.engine.cash_flow as f64 / 1e8;
        let venue_cash = cash.get("BTC").copied().unwrap_or(0.0);
        let tolerance = 1e-8 * (self.venue_fills.len() as f64 + 1.0);
        let cash_match = futures_fills == 0 && (engine_cash - venue_cash).abs() <= tolerance;
        if !cash_match {
            failures.push(format!(
                "engine cash flow {engine_cash:.8} BTC differs from the venue's fills {venue_cash:.8} BTC ({futures_fills} futures fill(s) not compared)"
            ));
        }
        json!({
            "venue_equity_change_usd": round(pnl_usd, 2),
            "by_currency": by_ccy,
            "engine_cash_flow_btc": round(engine_cash, 8),
            "venue_premium_cash_flow_btc": round(venue_cash, 8),
            "engine_matches_venue_cash_flow": cash_match,
            "engine_pnl_mark_btc": round(self.engine.pnl_mark as f64 / 1e8, 8),
            "explanation": "engine cash flow = premium of its fills (sells +); venue equity change = that − fees + change in the value of open options at mark + futures PnL; the engine's cash flow leaves out fees, so the two differ by the fees when the run ends flat",
        })
    }

    fn fills(&self) -> Value {
        let f = self.venue_fills;
        let mut totals: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
        for x in f {
            let t = totals.entry(format!("{} {}", x.instrument, x.side)).or_insert((0, 0.0, 0.0));
            t.0 += 1;
            t.1 += x.amount;
            t.2 += x.amount * x.price;
        }
        let totals: Vec<Value> = totals
            .iter()
            .map(|(k, (n, a, notional))| {
                json!({"instrument_side": k, "fills": n, "amount": round(*a, 8),
                       "avg_price": round(if *a > 0.0 { notional / a } else { 0.0 }, 8)})
            })
            .collect();
        let (list, truncated) = if f.len() <= FILLS_LISTED_MAX {
            (f.iter().map(fill_json).collect::<Vec<_>>(), false)
        } else {
            let mut v: Vec<Value> = f[..FILLS_EDGE].iter().map(fill_json).collect();
            v.extend(f[f.len() - FILLS_EDGE..].iter().map(fill_json));
            (v, true)
        };
        let maker = f.iter().filter(|x| x.liquidity == "M").count();
        json!({
            "venue_fills": f.len(),
            "engine_fill_reports": self.engine.stats.fills,
            "engine_distinct_fills_applied": self.engine.recon.fills_applied,
            "maker": maker,
            "taker": f.len() - maker,
            "fees_btc": round(f.iter().filter(|x| x.fee_currency == "BTC").map(|x| x.fee).sum(), 8),
            "totals": totals,
            "list_truncated": truncated,
            "list": list,
        })
    }

    fn faults(
        &self,
        failures: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> (Vec<Value>, usize) {
        let mut out = Vec::new();
        let mut contained_n = 0;
        let mut uncontained = Vec::new();
        let mut shown = Vec::new();
        for (f, r) in self.schedule.iter().zip(&self.log.faults) {
            let (contained, expected) = containment(f.kind, r);
            let at = r.injected_ms.map(offset_text);
            let label = format!(
                "{} #{} ({})",
                f.kind.as_str(),
                r.index,
                at.clone().unwrap_or_else(|| "never injected".into())
            );
            if r.injected_ms.is_none() {
                failures.push(format!("{label}: never injected"));
            } else if r.target_live == Some(false) {
                failures
                    .push(format!("{label}: aimed at an instrument the engine no longer trades"));
            } else if r.met == Some(false) {
                failures.push(format!("{label}: the engine never met it"));
            } else if !contained {
                // One fault whose effect the monitor did not catch is a wall-clock race of
                // the harness (a maintenance window or a duplicate fill with no engine
                // traffic in it), reported; too many, or a kind never shown, fails below.
                warnings.push(format!("{label}: no observable containment effect ({expected})"));
                uncontained.push(f.kind);
            } else {
                contained_n += 1;
                shown.push(f.kind);
            }
            let breaker_counted =
                (f.kind == FaultKind::RateLimitBurst).then(|| rate_limit_reason(r));
            if breaker_counted == Some(false) && r.injected_ms.is_some() {
                warnings.push(format!(
                    "{label}: the venue answered 10028 and closed the session, but the engine's breaker did not count it (it saw the close first): no REDUCEONLY_SESSION_KILL_UNCONFIRMED"
                ));
            }
            out.push(json!({
                "kind": f.kind.as_str(),
                "scheduled": offset_text(f.start_offset_ms),
                "scheduled_end": f.end_offset_ms().map(offset_text),
                "injected": at,
                "lifted": r.lifted_ms.map(offset_text),
                "target": f.target,
                "target_live": r.target_live,
                "rearms": r.rearms,
                "met": r.met,
                "venue_fault": serde_json::to_value(f.start.first()).unwrap_or(Value::Null),
                "venue_commands": f.start.len(),
                "expected": expected,
                "contained": contained,
                "breaker_counted_10028": breaker_counted,
                "counters": r.deltas,
                "modes": r.modes,
                "mode_reasons": r.mode_reasons,
                "latch_codes": r.latch_codes,
            }));
        }
        // The run must show containment for at least [`CONTAINED_SHARE_MIN_PCT`] % of the
        // faults it met, and for every kind at least once.
        let met = contained_n + uncontained.len();
        if met > 0 && contained_n * 100 < met * CONTAINED_SHARE_MIN_PCT {
            failures.push(format!(
                "only {contained_n} of {met} faults showed their containment effect (minimum {CONTAINED_SHARE_MIN_PCT} %)"
            ));
        }
        uncontained.retain(|k| !shown.contains(k));
        uncontained.sort_unstable();
        uncontained.dedup();
        for kind in uncontained {
            failures.push(format!(
                "{}: no fault of this kind showed its containment effect",
                kind.as_str()
            ));
        }
        (out, contained_n)
    }

    /// Reconciles and judges.
    #[must_use]
    pub fn build(&self) -> Report {
        let (positions, unreconciled) = self.positions();
        let s = &self.engine.stats;
        let mut failures = Vec::new();
        let mut warnings = Vec::new();
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
        let end_ms = SIM_ORIGIN_MS + total_ms;
        let rejects: BTreeMap<&str, u64> = self.engine.rejects_by_code.iter().copied().collect();
        failures.extend(trading_checks(
            self.expiries,
            end_ms,
            &rejects,
            s.gate_rejects,
            self.orders_by_day,
        ));
        let (faults, contained_n) = self.faults(&mut failures, &mut warnings);
        let pnl = self.pnl(&mut failures);
        if self.log.transitions_lost > 0 {
            warnings.push(format!(
                "the engine's bounded mode history moved on unseen {} time(s): the timeline may miss changes",
                self.log.transitions_lost
            ));
        }
        let verdict =
            if failures.is_empty() { Verdict::Pass } else { Verdict::Fail(failures.clone()) };
        let timeline: Vec<Value> = self
            .log
            .transitions
            .iter()
            .map(|t| {
                json!({"at": offset_text(t.at_ms - SIM_ORIGIN_MS), "from": mode_name(t.from),
                       "to": mode_name(t.to),
                       "reasons": t.reasons.iter().map(|r| r.as_str()).collect::<Vec<_>>()})
            })
            .collect();
        let modes_seen: std::collections::BTreeSet<&str> = self
            .log
            .transitions
            .iter()
            .flat_map(|t| [mode_name(t.from), mode_name(t.to)])
            .collect();
        let operator_actions: Vec<Value> = self
            .log
            .operator_actions
            .iter()
            .map(|a| {
                json!({"at": offset_text(a.offset_ms), "operator": super::monitor::HARNESS_OPERATOR,
                       "action": a.action, "target": a.target, "reasons_before": a.reasons_before,
                       "refused_before": a.refused_before, "result": a.result})
            })
            .collect();
        let instruments: Vec<Value> = self
            .instruments
            .iter()
            .map(|n| json!({"instrument": n, "expiry": self.expiries.get(n).map(|e| utc(*e))}))
            .collect();
        let json = json!({
            "verdict": if failures.is_empty() { "pass" } else { "fail" },
            "failures": failures,
            "warnings": warnings,
            "run": {
                "days": self.cfg.days,
                "speed": self.cfg.speed,
                "seed": self.cfg.seed,
                "tick_ms": self.cfg.tick_ms,
                "step_ms": self.step_ms,
                "strategy": self.cfg.strategy,
                "faults_per_day": self.cfg.faults_per_day,
                "sim_start_utc": utc(SIM_ORIGIN_MS),
                "sim_end_utc": utc(end_ms),
                "simulated_days_run": round(self.log.sim_elapsed_ms as f64 / DAY_MS as f64, 3),
                "instruments": instruments,
            },
            "oracle": {
                "new_order_requests": self.oracle.new_order_requests,
                "duplicate_dispatch_count": self.oracle.duplicate_dispatch_count,
                "duplicate_labels": self.oracle.duplicate_labels,
                "illegal_order_attempts": self.oracle.illegal_order_attempts,
                "illegal_seqs": self.oracle.illegal_seqs,
                "post_only_in_flight_races": self.oracle.post_only_in_flight_races,
                "unparsable_journal_lines": self.oracle.unparsable_lines,
                "new_orders_accepted_by_day": self.orders_by_day,
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
            "gate_rejects_by_code": rejects,
            "fills": self.fills(),
            "pnl": pnl,
            "faults_injected": self.log.faults_injected,
            "faults_contained": contained_n,
            "faults": faults,
            "operator_actions": operator_actions,
            "mode_timeline": timeline,
            "mode_timeline_source": "engine mode-transition history (engine clock = simulated time), merged from every published snapshot",
            "modes_seen": modes_seen,
            "mode_reasons_seen": self.engine.recon.mode_reasons_seen.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "latch_codes_seen": self.engine.recon.latch_codes_seen.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "final_mode": format!("{:?}", self.engine.mode),
        });
        Report { verdict, json }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) => {
            o.iter().map(|(k, v)| format!("{k} +{}", cell(v))).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
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
    for w in j["warnings"].as_array().into_iter().flatten() {
        let _ = writeln!(m, "- warning: {}", w.as_str().unwrap_or(""));
    }
    let _ = writeln!(
        m,
        "\nThis is an unattended drill: the harness plays the operator. It relaxes a Kill held only by `KILL_RATE_LIMIT_SESSION_TERMINATION` (Kill reasons are never lifted automatically) once the engine accepts the relax (breaker closed, session reconciled); each relax is listed under Operator actions. Simulated time is held while market data is muted, because the engine's zombie rule counts wall-time silence (15 s).\n"
    );
    let _ = writeln!(
        m,
        "Determinism: the schedule, instruments and simulated start are fixed by the seed; what the engine does between wall-clock events (sessions, heartbeats, credits, the 10028 breaker, the 15 s zombie rule) depends on thread timing, so two runs with one seed show the same checks but not byte-identical counts.\n"
    );
    let instruments: Vec<String> = run["instruments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| format!("{} (expires {})", cell(&i["instrument"]), cell(&i["expiry"])))
        .collect();
    let _ = writeln!(m, "Instruments: {}.\n", instruments.join(", "));
    let o = &j["oracle"];
    let rec = &j["reconciliation"];
    let ord = &j["orders"];
    let fills = &j["fills"];
    let _ = writeln!(m, "## Checks\n");
    let _ = writeln!(m, "| check | value |\n|---|---|");
    let rows = [
        ("unreconciled positions (engine vs venue)", rec["unreconciled_positions"].clone()),
        ("duplicate dispatches (journal oracle)", o["duplicate_dispatch_count"].clone()),
        ("illegal order attempts (journal oracle)", o["illegal_order_attempts"].clone()),
        (
            "post-only orders that raced a book change in flight (venue rejected; not illegal)",
            o["post_only_in_flight_races"].clone(),
        ),
        ("new-order requests seen by the venue", o["new_order_requests"].clone()),
        ("new orders accepted per simulated day", o["new_orders_accepted_by_day"].clone()),
        (
            "faults injected / with the expected containment",
            json!(format!("{} / {}", j["faults_injected"], j["faults_contained"])),
        ),
        ("modes seen", j["modes_seen"].clone()),
        (
            "engine cash flow equals the venue's fills",
            j["pnl"]["engine_matches_venue_cash_flow"].clone(),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(m, "| {k} | {} |", cell(&v));
    }
    let _ = writeln!(m, "\n## Orders, fills and PnL\n");
    let _ = writeln!(
        m,
        "intents {}, sent {}, acked {}, fill reports {}, filled {}, cancelled {}, venue rejects {}, gate rejects {}, reconnects {}, resubscribes {}.\n",
        ord["intents"], ord["sent"], ord["acked"], ord["fills"], ord["filled"], ord["cancelled"],
        ord["venue_rejects"], ord["gate_rejects"], ord["reconnects"], ord["resubscribes"]
    );
    let _ = writeln!(
        m,
        "Gate refusals by code: {}.\n",
        cell(&j["gate_rejects_by_code"]).replace('+', "")
    );
    let _ = writeln!(
        m,
        "Fills (venue): {} ({} maker, {} taker), fees {} BTC; engine fill reports {}, distinct fills applied {}. Full list in summary.json{}.\n",
        fills["venue_fills"], fills["maker"], fills["taker"], fills["fees_btc"],
        fills["engine_fill_reports"], fills["engine_distinct_fills_applied"],
        if fills["list_truncated"] == true { " (first and last 500)" } else { "" }
    );
    let _ = writeln!(m, "| instrument, side | fills | amount | avg price |\n|---|---|---|---|");
    for t in fills["totals"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            cell(&t["instrument_side"]),
            t["fills"],
            t["amount"],
            t["avg_price"]
        );
    }
    let p = &j["pnl"];
    let _ = writeln!(
        m,
        "\nPnL: engine cash flow {} BTC (venue premium cash flow {} BTC); venue equity change {} USD at the end-of-run index.\n",
        p["engine_cash_flow_btc"], p["venue_premium_cash_flow_btc"], p["venue_equity_change_usd"]
    );
    let _ = writeln!(m, "| currency | equity change | premium cash flow | fees | Δ options value | Δ futures PnL | unexplained |\n|---|---|---|---|---|---|---|");
    for (c, v) in p["by_currency"].as_object().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {c} | {} | {} | {} | {} | {} | {} |",
            v["equity_change"],
            v["premium_cash_flow"],
            v["fees"],
            v["options_value_change"],
            v["futures_pl_change"],
            v["unexplained"]
        );
    }
    let _ = writeln!(m, "\n{}.\n", p["explanation"].as_str().unwrap_or(""));
    let _ =
        writeln!(m, "## Positions at the end\n\n| instrument | engine | venue |\n|---|---|---|");
    for p in rec["positions"].as_array().into_iter().flatten() {
        let _ = writeln!(m, "| {} | {} | {} |", cell(&p["instrument"]), p["engine"], p["venue"]);
    }
    let _ = writeln!(m, "\n## Faults and containment\n\n| injected (sim) | fault | target | lifted | met | contained | counters | modes | mode reasons | latch codes |\n|---|---|---|---|---|---|---|---|---|---|");
    for e in j["faults"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&e["injected"]),
            cell(&e["kind"]),
            cell(&e["target"]),
            cell(&e["lifted"]),
            cell(&e["met"]),
            e["contained"],
            cell(&e["counters"]),
            cell(&e["modes"]),
            cell(&e["mode_reasons"]),
            cell(&e["latch_codes"])
        );
    }
    let _ = writeln!(m, "\n## Operator actions (harness)\n\n| at (sim) | operator | action | target | reasons before | refused before | result |\n|---|---|---|---|---|---|---|");
    for a in j["operator_actions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&a["at"]),
            cell(&a["operator"]),
            cell(&a["action"]),
            cell(&a["target"]),
            cell(&a["reasons_before"]),
            a["refused_before"],
            cell(&a["result"])
        );
    }
    let _ = writeln!(
        m,
        "\n## Mode timeline (the engine's transitions)\n\n| at (sim) | from | to | reasons |\n|---|---|---|---|"
    );
    for t in j["mode_timeline"].as_array().into_iter().flatten() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            cell(&t["at"]),
            cell(&t["from"]),
            cell(&t["to"]),
            cell(&t["reasons"])
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        deltas: &[(&'static str, u64)],
        reasons: &[&'static str],
        met: Option<bool>,
    ) -> FaultRecord {
        FaultRecord {
            injected_ms: Some(0),
            met,
            deltas: deltas.iter().copied().collect(),
            mode_reasons: reasons.iter().copied().collect(),
            ..FaultRecord::default()
        }
    }

    #[test]
    fn paper_a_fault_without_its_containment_effect_is_not_contained() {
        assert!(!containment(FaultKind::Disconnect, &record(&[("fill_reports", 3)], &[], None)).0);
        assert!(containment(FaultKind::Disconnect, &record(&[("reconnects", 1)], &[], None)).0);
        assert!(!containment(FaultKind::BookGap, &record(&[], &[], None)).0);
        assert!(!containment(FaultKind::OrderReject, &record(&[], &[], None)).0);
        assert!(
            !containment(FaultKind::DuplicateFill, &record(&[("fill_reports", 2)], &[], None)).0
        );
        assert!(
            !containment(
                FaultKind::Maintenance,
                &record(&[], &["REDUCEONLY_OPEN_PERMISSION_LATCHED"], None)
            )
            .0
        );
        // A storm the engine never met contains nothing, whatever else happened.
        let storm = record(&[], &["REDUCEONLY_SESSION_KILL_UNCONFIRMED"], Some(false));
        assert!(!containment(FaultKind::RateLimitBurst, &storm).0);
        let storm = record(&[], &["REDUCEONLY_SESSION_KILL_UNCONFIRMED"], Some(true));
        assert!(containment(FaultKind::RateLimitBurst, &storm).0);
        // Muted data that never tripped the zombie rule (the old freeze) is not contained.
        assert!(!containment(FaultKind::StaleData, &record(&[], &[], Some(false))).0);
    }

    #[test]
    fn paper_fails_when_trading_stops_being_meaningful() {
        let end = SIM_ORIGIN_MS + 14 * DAY_MS;
        let alive: BTreeMap<String, i64> =
            [("BTC-26FEB27-100000-C".to_owned(), end + DAY_MS)].into();
        let none = BTreeMap::new();
        assert!(trading_checks(&alive, end, &none, 100, &[5; 14]).is_empty());
        let dead: BTreeMap<String, i64> =
            [("BTC-8JAN27-100000-C".to_owned(), end - 10 * DAY_MS)].into();
        assert_eq!(trading_checks(&dead, end, &none, 100, &[5; 14]).len(), 1);
        let expired: BTreeMap<&str, u64> = [("InstrumentExpiredOrDelisted", 68_836)].into();
        let f = trading_checks(&alive, end, &expired, 92_651, &[5; 14]);
        assert!(f[0].contains("expired or delisted"), "{f:?}");
        let mut days = [5; 14];
        days[9] = 0;
        let f = trading_checks(&alive, end, &none, 100, &days);
        assert_eq!(f, vec!["no new order reached the venue on simulated day 9".to_owned()]);
    }
}
