//! The `/api/v1/status` and `/api/v1/health` payloads.
//!
//! [`StatusSnapshot`] serialises to exactly the keys of `spec/status_schema.json` (all 33
//! required keys, ruling 5) plus display extensions the schema allows (`ok`,
//! `is_trading_allowed`, `timestamp_utc`, positions, open orders, last mode transitions).
//! The schema's conditional rules that JSON Schema can express are re-checked in code by
//! [`StatusSnapshot::check`], together with the one it cannot (`wal_queue_depth <=
//! wal_queue_capacity`), so the server, the CLI and the dashboard all refuse a payload
//! that contradicts itself (contract: `STATE_UNHEALTHY_STATUS_SCHEMA`, fail closed).
//!
//! This module only *carries* the state: PolicyGuard (hotpath::mode) computes the mode and
//! its reasons; the engine fills a snapshot from its published hot-state each time
//! [`crate::server::StatusSource::status`] is called.

use hotpath::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RiskState, TradingMode,
};
use serde::{Deserialize, Serialize};

/// The contract version every producer and consumer must agree on (exact string).
pub const CONTRACT_VERSION: &str = "5.2";
/// `status_schema_version` (const 1 in the schema).
pub const STATUS_SCHEMA_VERSION: u32 = 1;
/// At most this many recent mode transitions are carried in a snapshot (bounded payload).
pub const MODE_TRANSITIONS_MAX: usize = 20;
/// Deployment environments (`DeploymentEnvironment` registry).
pub const ENVIRONMENTS: [&str; 4] = ["DEV", "STAGING", "PAPER", "LIVE"];
/// At most this many positions / open orders are carried; the rest are counted, not shown.
pub const VIEW_ROWS_MAX: usize = 200;

/// Compliance profile (`supported_profiles`, `enforced_profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// Core safety profile: the must-haves to trade.
    #[serde(rename = "CSP")]
    Csp,
    /// Governance/optimisation profile.
    #[serde(rename = "GOP")]
    Gop,
    /// Both.
    #[serde(rename = "FULL")]
    Full,
}

/// State of the F1 release certificate as PolicyGuard last read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum F1CertState {
    /// Valid, fresh, bound to this build and config.
    Pass,
    /// The certificate says fail.
    Fail,
    /// Older than its freshness window.
    Stale,
    /// File absent.
    Missing,
    /// Binding mismatch or unparseable.
    Invalid,
}

/// One position as the owner sees it (display only; floats stop here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    /// Venue instrument name, e.g. `BTC-27DEC26-100000-C`.
    pub instrument_name: String,
    /// Signed size in the instrument's amount unit (positive long, negative short).
    pub size: f64,
    /// Average entry price in the instrument's price unit.
    pub average_price: f64,
    /// Latest mark price, if known.
    pub mark_price: Option<f64>,
    /// Unrealised PnL in USD, if a mark is known.
    pub unrealized_pnl_usd: Option<f64>,
}

/// One resting order as the owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOrderView {
    /// Our label (maps back to the intent).
    pub label: String,
    /// Venue instrument name.
    pub instrument_name: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Limit price.
    pub price: f64,
    /// Order amount.
    pub amount: f64,
    /// Amount filled so far.
    pub filled_amount: f64,
    /// Whether the gates classified the order risk-reducing (from position and pending
    /// exposure, not the strategy's claim; outside Active every such order also carries the
    /// venue's `reduce_only` flag). False for orders adopted at reconciliation.
    pub reduce_only: bool,
}

/// The day's PnL behind the capital stop (`risk_limits.max_daily_loss_usd`), USD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyPnlView {
    /// Start of the UTC day counted, RFC 3339.
    pub day_start_utc: String,
    /// Realised PnL of today's fills, before fees.
    pub realized_usd: f64,
    /// Fees paid today (positive = paid).
    pub fees_usd: f64,
    /// Unrealised PnL of held positions since today's reference (entry or midnight mark).
    pub unrealized_usd: f64,
    /// `realized - fees + unrealized` (negative = loss).
    pub total_usd: f64,
    /// The policy's daily loss limit in force (None when the policy did not load).
    pub max_daily_loss_usd: Option<f64>,
    /// False when some position or fee could not be valued (no mark or index): the total
    /// leaves it out.
    pub complete: bool,
}

/// What the last start-up or reconnect reconciliation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileView {
    /// When it completed, RFC 3339 UTC.
    pub completed_utc: String,
    /// In-doubt intents found.
    pub in_doubt: u64,
    /// Still live at the venue (adopted).
    pub live: u64,
    /// Filled.
    pub filled: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Rejected.
    pub rejected: u64,
    /// Never seen by the venue, journaled Abandoned.
    pub abandoned: u64,
}

/// One change of trading mode, newest last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeTransitionView {
    /// When PolicyGuard resolved the new mode (epoch ms).
    pub ts_ms: i64,
    /// Mode before.
    pub from: TradingMode,
    /// Mode after.
    pub to: TradingMode,
    /// Mode reasons after the change (empty when `to` is Active).
    pub reasons: Vec<ModeReasonCode>,
}

/// `GET /api/v1/status`. Field names are the wire names unless renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    // --- the 33 keys the schema requires ---
    /// Always [`STATUS_SCHEMA_VERSION`].
    pub status_schema_version: u32,
    /// Always [`CONTRACT_VERSION`].
    pub contract_version: String,
    /// Git hash + build profile of the running binary.
    pub build_id: String,
    /// Hash of the runtime config (policy + config files) the engine loaded.
    pub runtime_config_hash: String,
    /// Profiles this build supports; always contains CSP.
    pub supported_profiles: Vec<Profile>,
    /// Profile being enforced.
    pub enforced_profile: Profile,
    /// The mode PolicyGuard resolved on its last tick.
    pub trading_mode: TradingMode,
    /// Health/cause layer (ruling 5: includes Kill).
    pub risk_state: RiskState,
    /// Network jitter monitor's bunker mode.
    pub bunker_mode_active: bool,
    /// Bunker mode or any reconcile-class latch code.
    pub connectivity_degraded: bool,
    /// Every active reason of the winning tier, in registry order; empty iff Active.
    pub mode_reasons: Vec<ModeReasonCode>,
    /// CP-001 open-permission latch.
    pub open_permission_blocked_latch: bool,
    /// Why the latch is set; empty iff the latch is clear.
    pub open_permission_reason_codes: Vec<OpenPermissionReasonCode>,
    /// Equals the latch (v5.1+).
    pub open_permission_requires_reconcile: bool,
    /// Seconds since the policy was generated, floored.
    pub policy_age_sec: u64,
    /// Epoch ms at which the policy was generated.
    pub last_policy_update_ts: i64,
    /// F1 certificate state.
    pub f1_cert_state: F1CertState,
    /// Epoch ms at which the certificate expires; `None` iff MISSING.
    pub f1_cert_expires_at: Option<i64>,
    /// Primary disk usage, ratio 0..=1.
    pub disk_used_pct: f64,
    /// Epoch ms of the primary disk reading.
    pub disk_used_last_update_ts_ms: i64,
    /// Secondary (corroborating) disk usage, ratio 0..=1.
    pub disk_used_pct_secondary: f64,
    /// Epoch ms of the secondary disk reading.
    pub disk_used_secondary_last_update_ts_ms: i64,
    /// Maintenance-margin utilisation, ratio 0..=1.
    pub mm_util: f64,
    /// Epoch ms of the margin reading.
    pub mm_util_last_update_ts_ms: i64,
    /// Epoch ms of the hot loop's last tick.
    pub loop_tick_last_ts_ms: i64,
    /// Records waiting for the WAL writer.
    pub wal_queue_depth: u64,
    /// Capacity of that queue (>= 1, >= depth).
    pub wal_queue_capacity: u64,
    /// Appends refused because the queue was full.
    pub wal_queue_enqueue_failures: u64,
    /// Atomic-group naked events over the last 24 h.
    pub atomic_naked_events_24h: u64,
    /// HTTP 429s from the venue over the last 5 min.
    #[serde(rename = "429_count_5m")]
    pub count_429_5m: u64,
    /// Venue error 10028 (session terminated) over the last 5 min.
    #[serde(rename = "10028_count_5m")]
    pub count_10028_5m: u64,
    /// p95 of venue HTTP round trips, ms.
    pub deribit_http_p95_ms: f64,
    /// Lag of venue WS events, ms.
    pub ws_event_lag_ms: u64,

    // --- display extensions (the schema allows extra keys) ---
    /// The engine's own liveness verdict (loop ticking, policy loaded, inputs fresh).
    /// Health is `ok` only when this is true *and* the snapshot passes [`Self::check`].
    pub ok: bool,
    /// Why `ok` is false, one sentence each (absent when ok): the loop stalled, the policy
    /// did not load, the engine has not published yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ok_reasons: Vec<String>,
    /// Wall-clock time of this snapshot, RFC 3339 UTC with milliseconds.
    pub timestamp_utc: String,
    /// Whether an opening order could pass the mode and latch gates right now.
    /// Always derived by [`Self::derive`]; never set by hand.
    pub is_trading_allowed: bool,
    /// Deployment environment from the policy (`DEV`, `STAGING`, `PAPER`, `LIVE`).
    pub environment: String,
    /// Positions (at most [`VIEW_ROWS_MAX`]).
    #[serde(default)]
    pub positions: Vec<PositionView>,
    /// Resting orders (at most [`VIEW_ROWS_MAX`]).
    #[serde(default)]
    pub open_orders: Vec<OpenOrderView>,
    /// Last mode changes, newest last (at most [`MODE_TRANSITIONS_MAX`]).
    #[serde(default)]
    pub mode_transitions: Vec<ModeTransitionView>,
    /// The day's PnL (None until the engine has valued it).
    #[serde(default)]
    pub daily_pnl: Option<DailyPnlView>,
    /// The last reconciliation (None before the first).
    #[serde(default)]
    pub last_reconcile: Option<ReconcileView>,
    /// Engine counters since start (intents, sent, fills, rejects, ...), name order.
    #[serde(default)]
    pub counters: std::collections::BTreeMap<String, u64>,
    /// Gate refusals since start by reject reason code, registry wire names.
    #[serde(default)]
    pub rejects_by_reason: std::collections::BTreeMap<String, u64>,
    /// The latest gate refusal as `gate:Code`.
    #[serde(default)]
    pub last_gate_reject: Option<String>,
    /// Continuous reconciliation (extension key; `status_csp_min` allows extra keys): last
    /// pass time and result, findings and repairs, latch codes and mode reasons seen since
    /// start. Absent until the engine reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<serde_json::Value>,
}

/// `GET /api/v1/health`: minimal liveness for an external watchdog (AT-022).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// True when the engine is up, says it is ok, and its status is self-consistent.
    pub ok: bool,
    /// Git hash + build profile.
    pub build_id: String,
    /// Always [`CONTRACT_VERSION`] for this build.
    pub contract_version: String,
}

impl HealthSnapshot {
    /// Health as derived from a status snapshot: ok only if the engine says so and the
    /// snapshot is internally consistent (an inconsistent status is treated as unhealthy).
    #[must_use]
    pub fn from_status(s: &StatusSnapshot) -> Self {
        Self {
            ok: s.ok && s.check().is_ok(),
            build_id: s.build_id.clone(),
            contract_version: s.contract_version.clone(),
        }
    }
}

/// A rule of the status schema that a snapshot breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusViolation(pub String);

impl core::fmt::Display for StatusViolation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StatusSnapshot {
    /// The fail-closed state of a process that has just started: ReduceOnly because the
    /// open-permission latch holds `RESTART_RECONCILE_REQUIRED` and no F1 certificate has
    /// been read yet. The engine overwrites the fields as its monitors report.
    #[must_use]
    pub fn startup(
        build_id: &str,
        runtime_config_hash: &str,
        environment: &str,
        now_ms: i64,
    ) -> Self {
        let mut s = Self {
            status_schema_version: STATUS_SCHEMA_VERSION,
            contract_version: CONTRACT_VERSION.to_owned(),
            build_id: build_id.to_owned(),
            runtime_config_hash: runtime_config_hash.to_owned(),
            supported_profiles: vec![Profile::Csp],
            enforced_profile: Profile::Csp,
            trading_mode: TradingMode::ReduceOnly,
            risk_state: RiskState::Healthy,
            bunker_mode_active: false,
            connectivity_degraded: true,
            mode_reasons: vec![
                ModeReasonCode::ReduceonlyOpenPermissionLatched,
                ModeReasonCode::ReduceonlyF1CertInvalid,
            ],
            open_permission_blocked_latch: true,
            open_permission_reason_codes: vec![OpenPermissionReasonCode::RestartReconcileRequired],
            open_permission_requires_reconcile: true,
            policy_age_sec: 0,
            last_policy_update_ts: now_ms,
            f1_cert_state: F1CertState::Missing,
            f1_cert_expires_at: None,
            disk_used_pct: 0.0,
            disk_used_last_update_ts_ms: 0,
            disk_used_pct_secondary: 0.0,
            disk_used_secondary_last_update_ts_ms: 0,
            mm_util: 0.0,
            mm_util_last_update_ts_ms: 0,
            loop_tick_last_ts_ms: now_ms,
            wal_queue_depth: 0,
            wal_queue_capacity: 1,
            wal_queue_enqueue_failures: 0,
            atomic_naked_events_24h: 0,
            count_429_5m: 0,
            count_10028_5m: 0,
            deribit_http_p95_ms: 0.0,
            ws_event_lag_ms: 0,
            ok: true,
            not_ok_reasons: Vec::new(),
            timestamp_utc: String::new(),
            is_trading_allowed: false,
            environment: environment.to_owned(),
            positions: Vec::new(),
            open_orders: Vec::new(),
            mode_transitions: Vec::new(),
            daily_pnl: None,
            last_reconcile: None,
            counters: std::collections::BTreeMap::new(),
            rejects_by_reason: std::collections::BTreeMap::new(),
            last_gate_reject: None,
            reconcile: None,
        };
        s.derive(now_ms);
        s
    }

    /// Recomputes the fields that are pure functions of others, so that no producer can
    /// get them out of step: `is_trading_allowed`, `open_permission_requires_reconcile`,
    /// `connectivity_degraded`, `timestamp_utc`; sorts and de-duplicates reason lists
    /// into registry order; trims the bounded lists (oldest transitions dropped first).
    pub fn derive(&mut self, now_ms: i64) {
        self.mode_reasons.sort_unstable();
        self.mode_reasons.dedup();
        self.open_permission_reason_codes.sort_unstable();
        self.open_permission_reason_codes.dedup();
        self.open_permission_requires_reconcile = self.open_permission_blocked_latch;
        // Every OpenPermissionReasonCode is reconcile-class, so any code degrades connectivity.
        self.connectivity_degraded =
            self.bunker_mode_active || !self.open_permission_reason_codes.is_empty();
        self.is_trading_allowed =
            self.trading_mode.allows_open() && !self.open_permission_blocked_latch;
        self.timestamp_utc = format_rfc3339_ms(now_ms);
        if self.mode_transitions.len() > MODE_TRANSITIONS_MAX {
            let excess = self.mode_transitions.len() - MODE_TRANSITIONS_MAX;
            self.mode_transitions.drain(..excess);
        }
        self.positions.truncate(VIEW_ROWS_MAX);
        self.open_orders.truncate(VIEW_ROWS_MAX);
    }

    /// Checks every rule of `status_schema.json` (constants, ranges, enums by type, and the
    /// conditional rules) plus `wal_queue_depth <= wal_queue_capacity`.
    ///
    /// # Errors
    /// Every violated rule, in a stable order.
    pub fn check(&self) -> Result<(), Vec<StatusViolation>> {
        let mut v = Vec::new();
        let mut fail = |msg: String| v.push(StatusViolation(msg));
        if self.status_schema_version != STATUS_SCHEMA_VERSION {
            fail(format!("status_schema_version must be {STATUS_SCHEMA_VERSION}"));
        }
        if self.contract_version != CONTRACT_VERSION {
            fail(format!("contract_version must be {CONTRACT_VERSION:?}"));
        }
        if self.build_id.is_empty() {
            fail("build_id must be non-empty".into());
        }
        if self.runtime_config_hash.is_empty() {
            fail("runtime_config_hash must be non-empty".into());
        }
        if !self.supported_profiles.contains(&Profile::Csp) {
            fail("supported_profiles must contain CSP".into());
        }
        for (i, p) in self.supported_profiles.iter().enumerate() {
            if self.supported_profiles[..i].contains(p) {
                fail("supported_profiles must be unique".into());
            }
        }
        for (name, x) in [
            ("disk_used_pct", self.disk_used_pct),
            ("disk_used_pct_secondary", self.disk_used_pct_secondary),
            ("mm_util", self.mm_util),
        ] {
            // NaN fails this too: a ratio we cannot read is not a ratio.
            if !(0.0..=1.0).contains(&x) {
                fail(format!("{name} must be a ratio in [0, 1], got {x}"));
            }
        }
        if !(self.deribit_http_p95_ms >= 0.0 && self.deribit_http_p95_ms.is_finite()) {
            fail("deribit_http_p95_ms must be a finite number >= 0".into());
        }
        if self.wal_queue_capacity < 1 {
            fail("wal_queue_capacity must be >= 1".into());
        }
        if self.wal_queue_depth > self.wal_queue_capacity {
            fail("wal_queue_depth must be <= wal_queue_capacity".into());
        }
        match self.trading_mode {
            TradingMode::Active => {
                if !self.mode_reasons.is_empty() {
                    fail("Active requires mode_reasons == []".into());
                }
            }
            TradingMode::ReduceOnly | TradingMode::Kill => {
                if self.mode_reasons.is_empty() {
                    fail(format!("{} requires at least one mode reason", self.trading_mode));
                }
                let kill = self.trading_mode == TradingMode::Kill;
                if self.mode_reasons.iter().any(|r| r.as_str().starts_with("KILL_") != kill) {
                    fail(format!("mode_reasons must all be of the {} tier", self.trading_mode));
                }
            }
        }
        if !self.mode_reasons.windows(2).all(|w| w[0] < w[1]) {
            fail("mode_reasons must be unique and in registry order".into());
        }
        if !self.open_permission_reason_codes.windows(2).all(|w| w[0] < w[1]) {
            fail("open_permission_reason_codes must be unique and in registry order".into());
        }
        let latch = self.open_permission_blocked_latch;
        if latch == self.open_permission_reason_codes.is_empty() {
            fail("open_permission_reason_codes must be non-empty iff the latch is set".into());
        }
        if self.open_permission_requires_reconcile != latch {
            fail("open_permission_requires_reconcile must equal the latch".into());
        }
        if latch && self.trading_mode == TradingMode::Active {
            fail("latch set requires trading_mode ReduceOnly or Kill".into());
        }
        if latch
            && self.trading_mode == TradingMode::ReduceOnly
            && !self.mode_reasons.contains(&ModeReasonCode::ReduceonlyOpenPermissionLatched)
        {
            fail("latch set in ReduceOnly requires REDUCEONLY_OPEN_PERMISSION_LATCHED".into());
        }
        if (self.f1_cert_state == F1CertState::Missing) != self.f1_cert_expires_at.is_none() {
            fail("f1_cert_expires_at must be null iff f1_cert_state is MISSING".into());
        }
        let degraded = self.bunker_mode_active || !self.open_permission_reason_codes.is_empty();
        if self.connectivity_degraded != degraded {
            fail("connectivity_degraded must equal bunker mode OR any latch code".into());
        }
        if self.is_trading_allowed != (self.trading_mode.allows_open() && !latch) {
            fail("is_trading_allowed must equal (Active and latch clear)".into());
        }
        if !ENVIRONMENTS.contains(&self.environment.as_str()) {
            fail(format!("environment must be one of {ENVIRONMENTS:?}"));
        }
        if self.mode_transitions.len() > MODE_TRANSITIONS_MAX {
            fail(format!("at most {MODE_TRANSITIONS_MAX} mode transitions"));
        }
        if self.positions.len() > VIEW_ROWS_MAX || self.open_orders.len() > VIEW_ROWS_MAX {
            fail(format!("at most {VIEW_ROWS_MAX} positions and open orders"));
        }
        if v.is_empty() {
            Ok(())
        } else {
            Err(v)
        }
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2026-11-25T13:22:34.123Z`) without a date
/// library. Negative inputs clamp to the epoch (a clock before 1970 is a broken clock).
#[must_use]
pub fn format_rfc3339_ms(epoch_ms: i64) -> String {
    let ms = epoch_ms.max(0);
    let secs = ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        ms % 1000
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian), for non-negative days.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Milliseconds since the Unix epoch from the system clock (0 if the clock is before 1970).
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_rfc3339_ms(1_795_613_554_000), "2026-11-25T13:32:34.000Z");
    }

    #[test]
    fn startup_is_fail_closed_and_consistent() {
        let s = StatusSnapshot::startup("abc-debug", "cfg", "PAPER", 1_000);
        assert_eq!(s.check(), Ok(()));
        assert_eq!(s.trading_mode, TradingMode::ReduceOnly);
        assert!(!s.is_trading_allowed);
        assert!(s.connectivity_degraded);
    }

    #[test]
    fn check_catches_each_conditional_rule() {
        let base = StatusSnapshot::startup("b", "c", "PAPER", 0);
        let mut s = base.clone();
        s.trading_mode = TradingMode::Active;
        s.derive(0);
        assert!(s.check().is_err(), "Active with reasons and latch");
        let mut s = base.clone();
        s.mode_reasons = vec![ModeReasonCode::KillRiskstateKill];
        assert!(s.check().is_err(), "tier mix");
        let mut s = base.clone();
        s.f1_cert_expires_at = Some(5);
        assert!(s.check().is_err(), "MISSING with expiry");
        let mut s = base.clone();
        s.wal_queue_depth = 2;
        assert!(s.check().is_err(), "depth > capacity");
        let mut s = base;
        s.mm_util = f64::NAN;
        assert!(s.check().is_err(), "NaN ratio");
    }
}
