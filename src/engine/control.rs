//! Commands from the control plane (status server → engine thread) and the operator actions
//! they journal.

use super::status;
use super::Engine;
use hotpath::mode::{OperatorAuthenticated, OperatorSecret};
use hotpath::wal::OperatorActionKind;

impl Engine {
    /// Attaches the status server's control channel and snapshot slot.
    pub fn set_control(&mut self, port: status::ControlPort) {
        self.control = Some(port);
    }

    pub(super) fn serve_control(&mut self) {
        let Some(port) = self.control.as_ref() else { return };
        if let Ok(mut g) = port.published.lock() {
            *g = Some(self.snapshot());
        }
        let msgs: Vec<status::ControlMsg> = port.rx.try_iter().collect();
        for m in msgs {
            let r = self.emergency_reduce_only(&m.req);
            // Publish before replying: the endpoint answers with the status *after* the change
            // (ruling 8), and it reads that status from the published slot.
            if let Some(port) = self.control.as_ref() {
                if let Ok(mut g) = port.published.lock() {
                    *g = Some(self.snapshot());
                }
            }
            let _ = m.reply.send(r);
        }
    }

    pub(super) fn emergency_reduce_only(
        &mut self,
        req: &coldpath::server::EmergencyRequest,
    ) -> Result<(), String> {
        let token = self.operator_token.clone().ok_or("no operator secret configured")?;
        let secret = OperatorSecret::from_token(token.as_bytes()).map_err(|e| e.to_string())?;
        let who = req.requested_by.clone().unwrap_or_else(|| "operator".into());
        // The server authenticated the bearer token against this same secret.
        let auth = OperatorAuthenticated::verify(&secret, token.as_bytes(), &who)
            .map_err(|e| e.to_string())?;
        let reason = req.reason.clone().unwrap_or_default();
        let now = self.clock.now_ms();
        self.guard.emergency_reduce_only(&auth, &reason, now).map_err(|e| e.to_string())?;
        self.journal_operator_action(OperatorActionKind::EmergencyReduceOnly, &who, &reason)
            .map_err(|e| e.to_string())?;
        println!("mode: emergency reduce-only by {who} (run_id={})", self.run_id);
        Ok(())
    }
}
