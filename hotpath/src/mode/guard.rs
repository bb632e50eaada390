//! PolicyGuard: the only code that decides which mode reasons are present, and the only path
//! by which the published mode can go down.
//!
//! Each evaluation takes one immutable [`PolicyInputs`] snapshot (§2.2.0), derives the latch
//! events it implies, computes the present [`ReasonSet`] with a pure function
//! ([`PolicyGuard::resolve`]), and tightens the [`TradingModeCell`] with any reason not yet
//! published. The published mode is the most restrictive tier of the sticky reasons, so it
//! never lowers when reasons clear: that takes [`PolicyGuard::operator_relax`], which needs
//! an [`OperatorAuthenticated`] capability and is refused while any reason above the target
//! is still present.

use crate::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RiskState, TradingMode,
};
use crate::mode::cell::TradingModeCell;
use crate::mode::inputs::{
    CortexOverride, EnforcedProfile, F1CertState, PolicyInputs, PolicyThresholds, Sampled,
};
use crate::mode::latch::{OpenPermissionLatch, OpenPermissionSet};
use crate::mode::operator::{check_reason, AuthError, OperatorAction, OperatorAuthenticated};
use crate::mode::permissions::ModePermissions;
use crate::mode::reasons::ReasonSet;
use crate::sync::Arc;

/// The result of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeDecision {
    /// The published mode after this evaluation (monotonic until an operator relax).
    pub mode: TradingMode,
    /// `/status.mode_reasons`: every sticky reason of the published mode's tier, registry order.
    pub mode_reasons: ReasonSet,
    /// Every reason present in this snapshot, both tiers.
    pub present: ReasonSet,
    /// The mode the present reasons alone imply (what a relax could reach now).
    pub computed_mode: TradingMode,
    /// The cell's tighten sequence after this evaluation.
    pub seq: u32,
    /// `open_permission_reason_codes` (empty iff the latch is clear).
    pub open_permission: OpenPermissionSet,
}

impl ModeDecision {
    /// What the published mode and latch let through.
    #[must_use]
    pub fn permissions(&self) -> ModePermissions {
        ModePermissions::with_latch(self.mode, !self.open_permission.is_empty())
    }
}

/// The operator emergency reduce-only window (ruling 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyReduceOnly {
    /// Authenticated operator who asked for it.
    pub requested_by: String,
    /// The request's reason text (≤ 200 chars).
    pub reason: String,
    /// When the window started (ms).
    pub since_ms: i64,
    /// When the window ends (ms, exclusive): `since_ms + emergency_reduceonly_cooldown`.
    pub until_ms: i64,
}

/// What an emergency reduce-only request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmergencyOutcome {
    /// A new window started; the mode is tightened on this call.
    Started(EmergencyReduceOnly),
    /// A window was already running; repeat calls inside it change nothing (idempotent).
    AlreadyActive(EmergencyReduceOnly),
}

/// Why an emergency request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmergencyError {
    /// The reason text is too long.
    #[error(transparent)]
    BadRequest(#[from] AuthError),
}

/// The audit record of a successful relax; the caller appends it to the WAL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RelaxRecord {
    /// The authenticated operator.
    pub operator_id: String,
    /// The operator's reason text.
    pub reason: String,
    /// Mode before.
    pub from: TradingMode,
    /// Mode after.
    pub to: TradingMode,
    /// Sticky reasons the relax removed (registry order).
    pub cleared_reasons: Vec<ModeReasonCode>,
    /// Reasons still present and kept (all at or below `to`).
    pub kept_reasons: Vec<ModeReasonCode>,
    /// Snapshot time of the evaluation that justified the relax (ms).
    pub at_ms: i64,
    /// The cell's tighten sequence the relax validated its reasons against; any tighten
    /// after it made the relax fail instead (`mode_seq == validated_seq + 1`).
    pub validated_seq: u32,
    /// The cell's tighten sequence after the relax.
    pub mode_seq: u32,
}

impl RelaxRecord {
    /// The WAL's audit text for this relax: the operator's reason, then the transition, the
    /// reasons cleared and kept, and the tighten sequence it was validated against. Built on
    /// the cold path (an operator action), so it may allocate.
    #[must_use]
    pub fn audit_line(&self) -> String {
        let names = |v: &[ModeReasonCode]| -> String {
            v.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
        };
        format!(
            "{} | relax {:?} -> {:?}; cleared [{}]; kept [{}]; seq {} -> {}",
            self.reason,
            self.from,
            self.to,
            names(&self.cleared_reasons),
            names(&self.kept_reasons),
            self.validated_seq,
            self.mode_seq
        )
    }
}

/// Why a relax was refused. Nothing changes on refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelaxRefusal {
    /// The target is not less restrictive than the published mode.
    #[error("{target} is not a relax from {published}")]
    NotARelax {
        /// Published mode.
        published: TradingMode,
        /// Requested mode.
        target: TradingMode,
    },
    /// Reasons more restrictive than the target are still present.
    #[error("cannot relax to {target}: reasons still present {reasons:?}")]
    ReasonsPresent {
        /// Requested mode.
        target: TradingMode,
        /// The present reasons above the target, registry order.
        reasons: Vec<ModeReasonCode>,
    },
    /// No present reason holds the target tier (a reason-less ReduceOnly cannot be
    /// published); relax further, or use the emergency reduce-only request.
    #[error("no present reason holds {target}; relax to Active or request emergency reduce-only")]
    NoReasonForTarget {
        /// Requested mode.
        target: TradingMode,
    },
    /// A component tightened the mode while the relax was being decided; evaluate again.
    #[error("mode tightened concurrently (now {current:?}); retry")]
    ConcurrentTighten {
        /// The published mode reasons now.
        current: Vec<ModeReasonCode>,
    },
}

/// The TradingMode authority. One instance, owned by the thread that evaluates the mode.
#[derive(Debug)]
pub struct PolicyGuard {
    cell: Arc<TradingModeCell>,
    latch: Arc<OpenPermissionLatch>,
    thresholds: PolicyThresholds,
    emergency: Option<EmergencyReduceOnly>,
}

impl PolicyGuard {
    /// A guard over `cell` and `latch` (usually both fresh from `new_at_start`).
    #[must_use]
    pub fn new(
        cell: Arc<TradingModeCell>,
        latch: Arc<OpenPermissionLatch>,
        thresholds: PolicyThresholds,
    ) -> Self {
        Self { cell, latch, thresholds, emergency: None }
    }

    /// A guard with a fresh start-up cell and latch and Appendix A thresholds.
    #[must_use]
    pub fn at_start() -> Self {
        Self::new(
            Arc::new(TradingModeCell::new_at_start()),
            Arc::new(OpenPermissionLatch::new_at_start()),
            PolicyThresholds::default(),
        )
    }

    /// The published mode cell (share it with every stage).
    #[must_use]
    pub fn cell(&self) -> &Arc<TradingModeCell> {
        &self.cell
    }

    /// The open-permission latch (share it with the feed and the reconciler).
    #[must_use]
    pub fn latch(&self) -> &Arc<OpenPermissionLatch> {
        &self.latch
    }

    /// The thresholds in force.
    #[must_use]
    pub fn thresholds(&self) -> &PolicyThresholds {
        &self.thresholds
    }

    /// The emergency reduce-only window, if one is running at `now_ms`.
    #[must_use]
    pub fn emergency(&self, now_ms: i64) -> Option<&EmergencyReduceOnly> {
        self.emergency.as_ref().filter(|e| now_ms < e.until_ms)
    }

    /// Evaluates one snapshot: sets the latch reasons it implies, computes the present
    /// reasons, tightens the cell with any not yet published, and reports the result.
    pub fn evaluate(&mut self, inputs: &PolicyInputs) -> ModeDecision {
        let present = self.present_reasons(inputs);
        let seen = self.cell.load();
        if !seen.reasons().is_superset(present) {
            self.cell.tighten_all(present);
        }
        self.decision(present)
    }

    /// The tick on which no coherent snapshot could be taken (§2.2.0 rule 4): tightens with
    /// `REDUCEONLY_INPUT_MISSING_OR_STALE`.
    pub fn evaluate_without_snapshot(&mut self) -> ModeDecision {
        let present = ReasonSet::of(ModeReasonCode::ReduceonlyInputMissingOrStale);
        self.cell.tighten_all(present);
        self.decision(present)
    }

    fn decision(&self, present: ReasonSet) -> ModeDecision {
        let word = self.cell.load();
        ModeDecision {
            mode: word.mode(),
            mode_reasons: word.mode_reasons(),
            present,
            computed_mode: present.mode(),
            seq: word.seq(),
            open_permission: self.latch.codes(),
        }
    }

    /// Applies the snapshot's latch events, then resolves the present reasons.
    fn present_reasons(&mut self, inputs: &PolicyInputs) -> ReasonSet {
        self.apply_latch_events(inputs);
        if self.emergency.as_ref().is_some_and(|e| inputs.now_ms >= e.until_ms) {
            self.emergency = None;
        }
        let emergency_active = self.emergency(inputs.now_ms).is_some();
        Self::resolve(inputs, &self.thresholds, self.latch.is_latched(), emergency_active)
    }

    fn apply_latch_events(&self, inputs: &PolicyInputs) {
        let events = [
            (inputs.book_gap_detected, OpenPermissionReasonCode::WsBookGapReconcileRequired),
            (inputs.trades_gap_detected, OpenPermissionReasonCode::WsTradesGapReconcileRequired),
            (inputs.ws_zombie_tripped, OpenPermissionReasonCode::WsDataStaleReconcileRequired),
            (
                inputs.inventory_mismatch_detected,
                OpenPermissionReasonCode::InventoryMismatchReconcileRequired,
            ),
            (
                inputs.rate_limit_session_kill_active == Some(true),
                OpenPermissionReasonCode::SessionTerminationReconcileRequired,
            ),
        ];
        for (active, code) in events {
            if active {
                self.latch.set(code);
            }
        }
    }

    /// The pure resolver: which reasons `inputs` imply, given the latch and the emergency
    /// window. No hidden state, no clock read; the same inputs always give the same set.
    #[must_use]
    #[allow(clippy::too_many_lines)]
    pub fn resolve(
        inputs: &PolicyInputs,
        t: &PolicyThresholds,
        open_permission_latched: bool,
        emergency_reduceonly_active: bool,
    ) -> ReasonSet {
        use ModeReasonCode as R;
        let now = inputs.now_ms;
        let within = |ts: i64, age_ms_max: i64| now.saturating_sub(ts) <= age_ms_max;
        let fresh_ratio = |s: Option<Sampled<f64>>, age_ms_max: i64| {
            s.filter(|s| s.value.is_finite() && s.value >= 0.0 && within(s.ts_ms, age_ms_max))
                .map(|s| s.value)
        };
        let mut r = ReasonSet::EMPTY;

        // Risk state, exchange health, daily loss (capital stop).
        match inputs.risk_state {
            RiskState::Healthy => {}
            RiskState::Degraded => r.insert(R::ReduceonlyRiskstateDegraded),
            RiskState::Maintenance => r.insert(R::ReduceonlyRiskstateMaintenance),
            RiskState::Kill => r.insert(R::KillRiskstateKill),
        }
        r.insert_if(inputs.exchange_maintenance_imminent, R::ReduceonlyRiskstateMaintenance);
        r.insert_if(inputs.daily_loss_limit_breached, R::KillRiskstateKill);
        let exchange_health_fresh = inputs
            .exchange_health_last_ok_ts_ms
            .is_some_and(|ts| within(ts, t.exchange_health_stale_ms));
        r.insert_if(!exchange_health_fresh, R::ReduceonlyCortexForceReduceOnly);

        // Margin (capital axis, no corroboration needed).
        match fresh_ratio(inputs.mm_util, t.mm_util_age_ms_max) {
            None => r.insert(R::ReduceonlyInputMissingOrStale),
            Some(u) if u >= t.mm_util_kill => r.insert(R::KillMarginMmUtilCritical),
            Some(u) if u >= t.mm_util_reduceonly => r.insert(R::ReduceonlyMarginMmUtilHigh),
            Some(_) => {}
        }

        // Reflexive producers.
        match inputs.cortex_override {
            CortexOverride::None => {}
            CortexOverride::ForceReduceOnly => r.insert(R::ReduceonlyCortexForceReduceOnly),
            CortexOverride::ForceKill => r.insert(R::KillCortexForceKill),
        }

        // Watchdog kill: heartbeat AND loop tick both stale; one alone is unconfirmed.
        match (inputs.watchdog_last_heartbeat_ts_ms, inputs.loop_tick_last_ts_ms) {
            (Some(heartbeat), Some(tick)) => {
                let heartbeat_stale = !within(heartbeat, t.watchdog_kill_ms);
                let tick_stale = !within(tick, t.watchdog_kill_ms);
                if heartbeat_stale && tick_stale {
                    r.insert(R::KillWatchdogHeartbeatStale);
                } else if heartbeat_stale || tick_stale {
                    r.insert(R::ReduceonlyWatchdogUnconfirmed);
                }
            }
            (heartbeat, tick) => {
                r.insert(R::ReduceonlyInputMissingOrStale);
                let one_stale =
                    heartbeat.or(tick).is_some_and(|ts| !within(ts, t.watchdog_kill_ms));
                r.insert_if(one_stale, R::ReduceonlyWatchdogUnconfirmed);
            }
        }

        // Disk kill: primary AND secondary at the watermark, both fresh.
        match fresh_ratio(inputs.disk_used_pct, t.disk_used_age_ms_max) {
            None => r.insert(R::ReduceonlyInputMissingOrStale),
            Some(primary) if primary >= t.disk_kill_pct => {
                let secondary = fresh_ratio(inputs.disk_used_pct_secondary, t.disk_used_age_ms_max);
                if secondary.is_some_and(|s| s >= t.disk_kill_pct) {
                    r.insert(R::KillDiskWatermarkKill);
                } else {
                    r.insert(R::ReduceonlyDiskKillUnconfirmed);
                }
            }
            Some(_) => {}
        }

        // Session termination (10028, ruling 2): the flag must be explicit; Kill once the
        // 5-minute count reaches rate_limit_kill_min_10028, ReduceOnly before.
        match inputs.rate_limit_session_kill_active {
            None => r.insert(R::ReduceonlyInputMissingOrStale),
            Some(false) => {}
            Some(true) => {
                let confirmed =
                    inputs.count_10028_5m.is_some_and(|n| n >= t.rate_limit_kill_min_10028);
                if confirmed {
                    r.insert(R::KillRateLimitSessionTermination);
                } else {
                    r.insert(R::ReduceonlySessionKillUnconfirmed);
                }
            }
        }

        // Market integrity, operator, latch.
        r.insert_if(inputs.bunker_mode_active, R::ReduceonlyBunkerModeActive);
        r.insert_if(emergency_reduceonly_active, R::ReduceonlyEmergencyReduceonlyActive);
        r.insert_if(open_permission_latched, R::ReduceonlyOpenPermissionLatched);

        // Certification, evidence (non-CSP only), fee model, instrument cache, clock, policy.
        r.insert_if(inputs.f1_cert != F1CertState::Pass, R::ReduceonlyF1CertInvalid);
        if inputs.enforced_profile != EnforcedProfile::Csp {
            r.insert_if(
                inputs.evidence_chain_green != Some(true),
                R::ReduceonlyEvidenceChainNotGreen,
            );
        }
        let fee_fresh = inputs.fee_model_cache_age_s.is_some_and(|a| a <= t.fee_model_hard_stale_s);
        r.insert_if(!fee_fresh, R::ReduceonlyFeeModelHardStale);
        let instruments_fresh =
            inputs.instrument_cache_age_s.is_some_and(|a| a <= t.instrument_cache_ttl_s);
        r.insert_if(!instruments_fresh, R::ReduceonlyRiskstateDegraded);
        match inputs.clock_drift_ms {
            None => r.insert(R::ReduceonlyInputMissingOrStale),
            Some(drift) => {
                let drift_ms_max = t.clock_drift_ms_max.unsigned_abs();
                r.insert_if(drift.unsigned_abs() > drift_ms_max, R::ReduceonlyRiskstateDegraded);
            }
        }
        let policy_fresh =
            inputs.policy_generated_ts_ms.is_some_and(|ts| within(ts, t.policy_age_ms_max));
        r.insert_if(!policy_fresh, R::ReduceonlyPolicyStale);

        // Hot-path health: WAL append, queue backpressure, group lock (ruling 6).
        r.insert_if(
            !inputs.wal_append_healthy || inputs.hotpath_backpressure,
            R::ReduceonlyHotpathBackpressure,
        );
        r.insert_if(inputs.group_lock_timeout, R::ReduceonlyGroupLockTimeout);
        r
    }

    /// Starts the operator emergency reduce-only window (`POST /api/v1/emergency/reduce_only`,
    /// ruling 8) and tightens the mode on this call. Repeat calls inside the running window
    /// are idempotent: they do not extend it.
    ///
    /// # Errors
    /// [`EmergencyError::BadRequest`] for a reason longer than 200 characters.
    pub fn emergency_reduce_only(
        &mut self,
        auth: &OperatorAuthenticated,
        reason: &str,
        now_ms: i64,
    ) -> Result<EmergencyOutcome, EmergencyError> {
        check_reason(reason)?;
        self.cell.tighten(ModeReasonCode::ReduceonlyEmergencyReduceonlyActive);
        if let Some(running) = self.emergency(now_ms) {
            return Ok(EmergencyOutcome::AlreadyActive(running.clone()));
        }
        let window = EmergencyReduceOnly {
            requested_by: auth.operator_id().to_owned(),
            reason: reason.to_owned(),
            since_ms: now_ms,
            until_ms: now_ms.saturating_add(self.thresholds.emergency_reduceonly_cooldown_ms),
        };
        self.emergency = Some(window.clone());
        Ok(EmergencyOutcome::Started(window))
    }

    /// The authenticated operator relax: lowers the published mode to `action.target()` if
    /// no reason above the target is present in `inputs` and no tighten races it. Consumes
    /// the capability. On success the caller appends the returned record to the WAL.
    ///
    /// # Errors
    /// A [`RelaxRefusal`] naming why; nothing changes on refusal.
    pub fn operator_relax(
        &mut self,
        action: OperatorAction,
        inputs: &PolicyInputs,
    ) -> Result<RelaxRecord, RelaxRefusal> {
        let OperatorAction { auth, target, reason } = action;
        let seen = self.cell.load();
        let published = seen.mode();
        if target >= published {
            return Err(RelaxRefusal::NotARelax { published, target });
        }
        let present = self.present_reasons(inputs);
        let blocking = present.above(target);
        if !blocking.is_empty() {
            return Err(RelaxRefusal::ReasonsPresent { target, reasons: blocking.to_vec() });
        }
        if present.mode() != target {
            return Err(RelaxRefusal::NoReasonForTarget { target });
        }
        let after = self.cell.relax_from(seen, present).map_err(|now| {
            RelaxRefusal::ConcurrentTighten { current: now.mode_reasons().to_vec() }
        })?;
        Ok(RelaxRecord {
            operator_id: auth.operator_id().to_owned(),
            reason,
            from: published,
            to: after.mode(),
            cleared_reasons: seen.reasons().difference(present).to_vec(),
            kept_reasons: present.to_vec(),
            at_ms: inputs.now_ms,
            validated_seq: seen.seq(),
            mode_seq: after.seq(),
        })
    }
}
