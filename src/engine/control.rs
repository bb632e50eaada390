//! Commands from the control plane (status server and operator socket → engine thread) and
//! the operator actions they journal. Every accepted command is logged (who, when, why) and
//! recorded in the WAL as an `OperatorAction`; the reply goes out after the snapshot the
//! endpoint answers with is published.

use super::status::{self, ControlCmd};
use super::Engine;
use hotpath::domain::reason_codes::{ModeReasonCode, RiskState, TradingMode};
use hotpath::mode::{OperatorAction, OperatorAuthenticated, OperatorSecret};
use hotpath::wal::OperatorActionKind;

/// Who an operator request names, or `operator` when it named no one.
fn who_of(req: &coldpath::server::EmergencyRequest) -> String {
    req.requested_by.clone().unwrap_or_else(|| "operator".into())
}

impl Engine {
    /// Attaches the status server's control channel and snapshot slot.
    pub fn set_control(&mut self, port: status::ControlPort) {
        self.control = Some(port);
    }

    /// Publishes the status snapshot after an operator command (the endpoint answers with
    /// the status after the change, so this one waits for a reader holding the slot).
    pub(super) fn publish_snapshot(&self) {
        if let Some(port) = self.control.as_ref() {
            if let Ok(mut g) = port.published.lock() {
                *g = Some(self.snapshot());
            }
        }
    }

    /// The periodic publication: skipped (tried again next period) when a reader holds the
    /// slot, so a slow status reader never blocks the trading loop.
    fn publish_snapshot_if_free(&self) {
        if let Some(port) = self.control.as_ref() {
            if let Ok(mut g) = port.published.try_lock() {
                *g = Some(self.snapshot());
            }
        }
    }

    pub(super) fn serve_control(&mut self) {
        if self.control.is_none() {
            return;
        }
        self.publish_snapshot_if_free();
        while let Some(m) = self.control.as_mut().and_then(|p| p.rx.pop().ok()) {
            let r = match &m.cmd {
                ControlCmd::ReduceOnly => self.emergency_reduce_only(&m.req),
                ControlCmd::Kill => self.operator_kill(&m.req),
                ControlCmd::EmergencyClose => self.operator_emergency_close(&m.req),
                ControlCmd::Relax { target, token } => {
                    self.operator_relax_to(*target, token, &m.req)
                }
            };
            if let Err(e) = &r {
                tracing::warn!(target: "stoic::control", run_id = %self.run_id, command = m.cmd.name(), error = %e, "control command failed");
            }
            // Publish before replying: the endpoint answers with the status *after* the change
            // (ruling 8), and it reads that status from the published slot.
            self.publish_snapshot();
            let _ = m.reply.send(r);
        }
    }

    /// The capability for a request the status server already authenticated against this
    /// same token (its bearer check); the engine re-derives it so the guard gets its proof.
    fn server_authenticated(
        &self,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<OperatorAuthenticated, String> {
        let token = self.operator_token.as_deref().ok_or("no operator secret configured")?;
        let secret = OperatorSecret::from_token(token.as_bytes()).map_err(|e| e.to_string())?;
        OperatorAuthenticated::verify(&secret, token.as_bytes(), &who_of(req))
            .map_err(|e| e.to_string())
    }

    pub(super) fn emergency_reduce_only(
        &mut self,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<(), String> {
        let auth = self.server_authenticated(req)?;
        let who = auth.operator_id().to_owned();
        let reason = req.reason.clone().unwrap_or_default();
        let now = self.clock.now_ms();
        self.guard.emergency_reduce_only(&auth, &reason, now).map_err(|e| e.to_string())?;
        self.journal_operator_action(OperatorActionKind::EmergencyReduceOnly, &who, &reason)
            .map_err(|e| e.to_string())?;
        println!("mode: emergency reduce-only by {who} (run_id={})", self.run_id);
        Ok(())
    }

    /// Operator Kill (RS-005: the operator asserts RiskState Kill ⇒ `KILL_RISKSTATE_KILL`).
    /// The mode is tightened before the WAL record so a failing WAL cannot keep the engine
    /// trading; the Kill is written to the Kill record (it survives a restart); then every live
    /// order that is not known to reduce risk is cancelled (containment step 1, rulings 1 and
    /// §2.2.3.6). Closing positions follows on the loop's next turn (`kill_containment.rs`:
    /// automatic, bounded emergency close while exposed); `stoic emergency close` stays
    /// available to the operator.
    pub(super) fn operator_kill(
        &mut self,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<(), String> {
        let auth = self.server_authenticated(req)?;
        let who = auth.operator_id().to_owned();
        let reason = req.reason.clone().unwrap_or_default();
        self.pipeline.risk_state = RiskState::Kill;
        self.guard.cell().tighten(ModeReasonCode::KillRiskstateKill);
        // Durable before the acknowledgement: a restart (even SIGKILL) comes back in Kill. A
        // record that cannot be written does not undo the Kill (the loop retries it every
        // turn), but the operator is told: the acknowledgement is an error saying so.
        let persisted = self.persist_kill(&format!("operator {who}: {reason}"));
        if let Err(e) = &persisted {
            tracing::error!(run_id = %self.run_id, error = %e, "kill record not written");
        }
        let cancelled = self.cancel_risk_increasing();
        self.kill.cancelled = true;
        println!(
            "mode: KILL by {who} (reason: {reason}); cancel sent for {cancelled} risk-increasing order(s) (run_id={})",
            self.run_id
        );
        self.journal_operator_action(OperatorActionKind::Kill, &who, &reason)
            .map_err(|e| format!("Kill applied but not journaled: {e}"))?;
        persisted.map_err(|e| {
            format!("Kill applied, but its record did not reach the disk ({e}): a restart now would not come back in Kill; retried every loop turn")
        })
    }

    /// Sends a cancel for every live order not classified risk-reducing (adopted orders of
    /// unknown class count as risk-increasing: fail closed). Returns how many were sent.
    pub(super) fn cancel_risk_increasing(&mut self) -> usize {
        let targets: Vec<(u64, String, String)> = self
            .live
            .iter()
            .filter(|(_, l)| !l.accepted.is_some_and(|a| a.class.is_risk_reducing()))
            .map(|(label, l)| {
                (l.intent_hash, label.as_str().to_owned(), l.instrument.as_str().to_owned())
            })
            .collect();
        self.reclaim_dispatch();
        let Some(disp) = self.disp.as_mut() else { return 0 };
        let mut sent = 0;
        let now = std::time::Instant::now();
        for (hash, label, instrument) in targets {
            match disp.cancel_by_label(&label, &instrument) {
                Ok(_) => {
                    sent += 1;
                    // The restricted-mode sweep retries it only if it is still live later.
                    self.open_sweep.note_sent(hash, now);
                }
                Err(e) => {
                    tracing::warn!(run_id = %self.run_id, label, error = %e, "kill: cancel not sent");
                }
            }
        }
        sent
    }

    fn operator_emergency_close(
        &mut self,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<(), String> {
        let auth = self.server_authenticated(req)?;
        let who = auth.operator_id().to_owned();
        let reason = req.reason.clone().unwrap_or_default();
        let outcome = self.emergency_close(&who, &reason);
        if outcome.flat() {
            Ok(())
        } else {
            Err(format!(
                "exposure remains or is unknown after emergency close: {}",
                outcome.describe()
            ))
        }
    }

    /// The authenticated operator relax (host-local operator socket only; never HTTP).
    ///
    /// The engine checks the presented token itself. Lifting Kill is the operator reset of
    /// RS-006 (RiskState Kill → Degraded); reaching Active also needs RS-004 (Degraded →
    /// Healthy), which this engine grants only when the WAL appends and the venue's positions
    /// equal the engine's. `PolicyGuard::operator_relax` then refuses while any other reason
    /// (emergency window, latch, …) is present. RiskState changes only if the relax succeeds.
    pub(super) fn operator_relax_to(
        &mut self,
        target: TradingMode,
        presented: &str,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<(), String> {
        let token = self.operator_token.as_deref().ok_or("no operator secret configured")?;
        let secret = OperatorSecret::from_token(token.as_bytes()).map_err(|e| e.to_string())?;
        let who = who_of(req);
        let auth = OperatorAuthenticated::verify(&secret, presented.as_bytes(), &who)
            .map_err(|e| e.to_string())?;
        let reason = req.reason.clone().unwrap_or_default();
        let wal_healthy = self.wal.poisoned().is_none();
        let mut risk_state = self.pipeline.risk_state;
        if risk_state == RiskState::Kill {
            risk_state = RiskState::Degraded;
        }
        if target == TradingMode::Active && risk_state == RiskState::Degraded && wal_healthy {
            let why = match self.positions_match_venue() {
                Ok(true) => None,
                Ok(false) => Some("positions differ from the venue".to_owned()),
                Err(e) => Some(format!("venue positions unreadable: {e}")),
            };
            match why {
                None => risk_state = RiskState::Healthy,
                Some(why) => {
                    tracing::warn!(run_id = %self.run_id, %why, "relax: risk state stays Degraded");
                }
            }
        }
        let action = OperatorAction::relax(auth, target, &reason).map_err(|e| e.to_string())?;
        // The engine's measured inputs (breaker, drift, maintenance, stale data), not a healthy
        // default: a relax while one of them holds a reason is refused.
        let mut inputs = self.policy_inputs(self.clock.now_ms());
        inputs.risk_state = risk_state;
        inputs.wal_append_healthy = wal_healthy;
        // The capital stop (rest of its UTC day) and a policy that failed to load still hold.
        let held = self.kill_inputs(inputs.now_ms);
        inputs.daily_loss_limit_breached = held.daily_loss_limit_breached;
        if self.policy.is_err() {
            inputs.risk_state = held.risk_state;
        }
        let rec = self.guard.operator_relax(action, &inputs).map_err(|e| e.to_string())?;
        if let Err(e) = self.journal_operator_action(
            OperatorActionKind::ModeRelax,
            &rec.operator_id,
            &rec.audit_line(),
        ) {
            // A relax nobody can audit does not stand: put every cleared reason back.
            for r in &rec.cleared_reasons {
                self.guard.cell().tighten(*r);
            }
            return Err(format!("relax not journaled, so undone: {e}"));
        }
        self.pipeline.risk_state = risk_state;
        // Out of Kill: the Kill record goes (a later restart must not bring the Kill back).
        if let Err(e) = self.persist_kill("") {
            tracing::error!(run_id = %self.run_id, error = %e, "kill record not cleared");
        }
        println!(
            "mode: relax {:?} -> {:?} by {} (reason: {reason}; cleared {:?}) (run_id={})",
            rec.from, rec.to, rec.operator_id, rec.cleared_reasons, self.run_id
        );
        Ok(())
    }
}
