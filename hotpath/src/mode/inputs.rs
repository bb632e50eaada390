//! PolicyGuard's inputs: one immutable snapshot per evaluation (§2.2.0), and the thresholds
//! it is judged against (Appendix A defaults).

use crate::domain::reason_codes::RiskState;

/// A value with the time it was measured. The timestamp is taken with the value, never
/// after it (no torn pairs, §2.2.0 rule 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled<T> {
    /// The value.
    pub value: T,
    /// When it was measured (ms since the Unix epoch, same timebase as `now_ms`).
    pub ts_ms: i64,
}

impl<T> Sampled<T> {
    /// A value measured at `ts_ms`.
    pub const fn new(value: T, ts_ms: i64) -> Self {
        Self { value, ts_ms }
    }
}

/// The effective override of the reflexive producers (cortex, exchange health, basis
/// monitor): the maximum severity of their candidates this tick (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CortexOverride {
    /// No override.
    #[default]
    None,
    /// Force ReduceOnly (DVOL jump, wide spread/thin depth, basis, stale producer inputs).
    ForceReduceOnly,
    /// Force Kill (spread/depth collapse, basis blowout).
    ForceKill,
}

/// The F1 certification state (§2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum F1CertState {
    /// Valid, fresh, bound to this build and config.
    Pass,
    /// The certificate says FAIL.
    Fail,
    /// Older than the freshness window.
    Stale,
    /// No certificate file.
    Missing,
    /// Binding mismatch or unparseable.
    Invalid,
}

/// Which compliance profile is enforced (§0.Z). EvidenceGuard only acts when not `Csp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EnforcedProfile {
    /// Capital-safety profile: the must-haves to trade.
    #[default]
    Csp,
    /// Governance/optimisation profile.
    Gop,
    /// Both.
    Full,
}

/// One immutable snapshot of everything PolicyGuard decides from. `None` means missing or
/// unparseable; a missing critical input is never read as "fine" (unknown ≠ false).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyInputs {
    /// Evaluation time (ms since the Unix epoch).
    pub now_ms: i64,
    /// The stored RiskState (Degraded/Maintenance ⇒ ReduceOnly, Kill ⇒ Kill).
    pub risk_state: RiskState,
    /// Venue maintenance starts within the announcement window (exchange health monitor).
    pub exchange_maintenance_imminent: bool,
    /// Last time the announcements endpoint answered validly (exchange health monitor).
    pub exchange_health_last_ok_ts_ms: Option<i64>,
    /// Maintenance-margin utilisation, ratio 0..1 (critical).
    pub mm_util: Option<Sampled<f64>>,
    /// Primary disk usage ratio 0..1 (critical).
    pub disk_used_pct: Option<Sampled<f64>>,
    /// Secondary disk usage source, ratio 0..1 (corroborates a disk kill).
    pub disk_used_pct_secondary: Option<Sampled<f64>>,
    /// Last watchdog heartbeat (critical).
    pub watchdog_last_heartbeat_ts_ms: Option<i64>,
    /// Last hot-loop tick (critical).
    pub loop_tick_last_ts_ms: Option<i64>,
    /// The venue terminated the session (10028); must be explicit (critical).
    pub rate_limit_session_kill_active: Option<bool>,
    /// Number of 10028 responses in the last 5 minutes (`10028_count_5m`).
    pub count_10028_5m: Option<u32>,
    /// Effective reflexive override (max severity of the producers).
    pub cortex_override: CortexOverride,
    /// Network jitter monitor's bunker mode (with its own entry/exit hysteresis).
    pub bunker_mode_active: bool,
    /// An order-book WebSocket change-id gap is unresolved (sets the latch).
    pub book_gap_detected: bool,
    /// A trades WebSocket gap or stale public trade feed (sets the latch).
    pub trades_gap_detected: bool,
    /// The zombie-socket rule tripped: market data silent with exposure (sets the latch).
    pub ws_zombie_tripped: bool,
    /// Local positions disagree with the venue's (sets the latch).
    pub inventory_mismatch_detected: bool,
    /// Measured clock drift against the venue, ms (absent until first measured).
    pub clock_drift_ms: Option<i64>,
    /// The WAL accepted the last append (RecordedBeforeDispatch possible).
    pub wal_append_healthy: bool,
    /// A hot-path ring or the evidence/log queue is overflowing.
    pub hotpath_backpressure: bool,
    /// An atomic group missed its bounded group-lock wait.
    pub group_lock_timeout: bool,
    /// Enforced compliance profile.
    pub enforced_profile: EnforcedProfile,
    /// EvidenceChainState == GREEN (only read when the profile is not CSP).
    pub evidence_chain_green: Option<bool>,
    /// F1 certificate state.
    pub f1_cert: F1CertState,
    /// Age of the fee model cache, seconds.
    pub fee_model_cache_age_s: Option<i64>,
    /// Age of the instrument metadata cache, seconds.
    pub instrument_cache_age_s: Option<i64>,
    /// When the running policy was generated.
    pub policy_generated_ts_ms: Option<i64>,
    /// Realised + unrealised loss for the day reached the policy's `max_daily_loss_usd`.
    pub daily_loss_limit_breached: bool,
}

impl PolicyInputs {
    /// A snapshot in which every input is present, fresh and healthy at `now_ms`: the one
    /// state that resolves to `Active` (once the latch is cleared). Tests and the simulator
    /// start from it and break one input at a time.
    #[must_use]
    pub fn all_healthy(now_ms: i64) -> Self {
        Self {
            now_ms,
            risk_state: RiskState::Healthy,
            exchange_maintenance_imminent: false,
            exchange_health_last_ok_ts_ms: Some(now_ms),
            mm_util: Some(Sampled::new(0.10, now_ms)),
            disk_used_pct: Some(Sampled::new(0.40, now_ms)),
            disk_used_pct_secondary: Some(Sampled::new(0.40, now_ms)),
            watchdog_last_heartbeat_ts_ms: Some(now_ms),
            loop_tick_last_ts_ms: Some(now_ms),
            rate_limit_session_kill_active: Some(false),
            count_10028_5m: Some(0),
            cortex_override: CortexOverride::None,
            bunker_mode_active: false,
            book_gap_detected: false,
            trades_gap_detected: false,
            ws_zombie_tripped: false,
            inventory_mismatch_detected: false,
            clock_drift_ms: Some(0),
            wal_append_healthy: true,
            hotpath_backpressure: false,
            group_lock_timeout: false,
            enforced_profile: EnforcedProfile::Csp,
            evidence_chain_green: Some(true),
            f1_cert: F1CertState::Pass,
            fee_model_cache_age_s: Some(0),
            instrument_cache_age_s: Some(0),
            policy_generated_ts_ms: Some(now_ms),
            daily_loss_limit_breached: false,
        }
    }
}

/// The numbers PolicyGuard judges inputs against. `Default` is Appendix A.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyThresholds {
    /// `mm_util_reduceonly`.
    pub mm_util_reduceonly: f64,
    /// `mm_util_kill`.
    pub mm_util_kill: f64,
    /// `mm_util_max_age_ms`.
    pub mm_util_age_ms_max: i64,
    /// `disk_kill_pct`.
    pub disk_kill_pct: f64,
    /// `disk_used_max_age_ms`.
    pub disk_used_age_ms_max: i64,
    /// `watchdog_kill_s`, in ms.
    pub watchdog_kill_ms: i64,
    /// `rate_limit_kill_min_10028` (ruling 2).
    pub rate_limit_kill_min_10028: u32,
    /// `fee_cache_hard_s` (ruling 4).
    pub fee_model_hard_stale_s: i64,
    /// `instrument_cache_ttl_s`.
    pub instrument_cache_ttl_s: i64,
    /// `max_policy_age_sec`, in ms.
    pub policy_age_ms_max: i64,
    /// `time_drift_threshold_ms`.
    pub clock_drift_ms_max: i64,
    /// `exchange_health_stale_s`, in ms.
    pub exchange_health_stale_ms: i64,
    /// `emergency_reduceonly_cooldown_s`, in ms (ruling 8).
    pub emergency_reduceonly_cooldown_ms: i64,
}

impl Default for PolicyThresholds {
    fn default() -> Self {
        Self {
            mm_util_reduceonly: 0.85,
            mm_util_kill: 0.95,
            mm_util_age_ms_max: 30_000,
            disk_kill_pct: 0.92,
            disk_used_age_ms_max: 30_000,
            watchdog_kill_ms: 10_000,
            rate_limit_kill_min_10028: 3,
            fee_model_hard_stale_s: 900,
            instrument_cache_ttl_s: 3_600,
            policy_age_ms_max: 300_000,
            clock_drift_ms_max: 50,
            exchange_health_stale_ms: 180_000,
            emergency_reduceonly_cooldown_ms: 300_000,
        }
    }
}
