//! The engine's once-per-loop risk watch: daily PnL against the capital stop (Kill through
//! PolicyGuard, see `pnl.rs`) and the history of mode transitions shown on /status and the
//! dashboard. Called once per run-loop iteration (`Engine::watch_risk`); cheap when nothing
//! changed.

use std::collections::VecDeque;

use hotpath::domain::reason_codes::{ModeReasonCode, TradingMode};
use hotpath::mode::{PolicyInputs, ReasonSet};

use super::pnl::mark_from;
use super::Engine;

/// `runtime_config_hash`: SHA-256 of the policy file's bytes, hex (the engine's only runtime
/// config file); `"unreadable"` when it cannot be read (the loader then failed too).
#[must_use]
pub fn config_hash(policy_path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    match std::fs::read(policy_path) {
        Ok(bytes) => Sha256::digest(&bytes).iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        }),
        Err(_) => "unreadable".to_owned(),
    }
}

/// Transitions kept for /status (the status payload carries at most 20).
pub const TRANSITIONS_MAX: usize = 20;

/// One observed change of the published mode or of its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeTransition {
    /// When the engine observed it (engine clock, epoch ms).
    pub at_ms: i64,
    /// Mode before.
    pub from: TradingMode,
    /// Mode after.
    pub to: TradingMode,
    /// `mode_reasons` after the change (registry order; empty when Active).
    pub reasons: Vec<ModeReasonCode>,
}

/// Remembers the last published (mode, reasons) and the recent changes.
#[derive(Debug, Clone)]
pub struct ModeHistory {
    mode: TradingMode,
    reasons: ReasonSet,
    recent: VecDeque<ModeTransition>,
}

impl ModeHistory {
    /// Starts from the mode a fresh engine publishes (ReduceOnly, latched).
    #[must_use]
    pub fn new(mode: TradingMode, reasons: ReasonSet) -> Self {
        Self { mode, reasons, recent: VecDeque::with_capacity(TRANSITIONS_MAX) }
    }

    /// Records a change if `(mode, reasons)` differs from the last seen; returns it.
    /// Allocates only when something changed.
    pub fn observe(
        &mut self,
        at_ms: i64,
        mode: TradingMode,
        reasons: ReasonSet,
    ) -> Option<&ModeTransition> {
        if mode == self.mode && reasons == self.reasons {
            return None;
        }
        if self.recent.len() == TRANSITIONS_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(ModeTransition {
            at_ms,
            from: self.mode,
            to: mode,
            reasons: reasons.to_vec(),
        });
        self.mode = mode;
        self.reasons = reasons;
        self.recent.back()
    }

    /// Recent transitions, oldest first.
    #[must_use]
    pub fn recent(&self) -> Vec<ModeTransition> {
        self.recent.iter().cloned().collect()
    }
}

impl Engine {
    /// Values the day's PnL, trips the capital stop, records mode transitions.
    pub(super) fn watch_risk(&mut self) {
        let now = self.clock.now_ms();
        let market = &self.market;
        let index = market.index().unwrap_or(self.index);
        let mark = |i: &hotpath::domain::instrument::Instrument| {
            mark_from(i, market.view(i.name()), index)
        };
        self.daily_pnl.evaluate(now, &mark, index);
        let limit = self.policy.as_ref().ok().map(|p| p.effective_risk_limits().max_daily_loss_usd);
        if let Some(limit) = limit {
            if !self.capital_stop_tripped() && self.daily_pnl.breached(limit) {
                self.capital_stop_day = Some(self.daily_pnl.last().day_start_ms);
                self.report_capital_stop(limit);
            }
        }
        // The capital stop holds for the rest of its UTC day, a policy that failed to load for
        // the life of the process. Every relax path is refused meanwhile (`kill_inputs`); this
        // also undoes any that was not, before the next tick. After midnight the Kill stays
        // (the mode is sticky) until an operator relaxes it (`stoic mode relax`).
        let kill_held =
            self.guard.cell().load().mode_reasons().contains(ModeReasonCode::KillRiskstateKill);
        if (self.capital_stop_tripped() || self.policy.is_err()) && !kill_held {
            self.guard.evaluate(&self.kill_inputs(now));
        }
        let word = self.guard.cell().load();
        if let Some(t) = self.mode_history.observe(now, word.mode(), word.mode_reasons()) {
            let codes: Vec<&str> = t.reasons.iter().map(|r| r.as_str()).collect();
            println!(
                "mode: {:?} -> {:?} reasons=[{}] (run_id={})",
                t.from,
                t.to,
                codes.join(","),
                self.run_id
            );
        }
    }

    /// A fill's contribution to the day's PnL (fee in the settlement currency).
    pub(super) fn note_fill_pnl(&mut self, f: &hotpath::dispatch::FillReport) {
        let Ok(instrument) = hotpath::domain::instrument::Instrument::parse(&f.instrument) else {
            return;
        };
        // The feed's index first (what `watch_risk` values with), else the tick's: a fill
        // applied between ticks (an emergency close's) must not lose its realised PnL.
        let ccy = instrument.base_currency();
        let index = self
            .market
            .index()
            .and_then(|i| i.for_currency(ccy.as_str()))
            .or_else(|| self.index.for_currency(ccy.as_str()));
        self.daily_pnl.on_fill(
            &f.trade_id,
            instrument,
            f.buy,
            hotpath::domain::units::Price::from_raw(f.price.raw),
            hotpath::domain::units::Qty::from_raw(f.amount.raw),
            f.fee.map(|d| d.raw),
            index,
        );
    }

    /// Live orders for /status, label order.
    pub(super) fn open_order_rows(&self) -> Vec<super::OpenOrderRow> {
        self.live
            .iter()
            .map(|(label, l)| super::OpenOrderRow {
                label: label.as_str().to_owned(),
                instrument: l.instrument.as_str().to_owned(),
                buy: matches!(l.side, hotpath::domain::intent::Side::Buy),
                price: l.price.raw(),
                amount: l.qty,
                filled: self.wal.ledger().get(l.intent_hash).map_or(0, |e| e.filled_qty),
                reducing: l.accepted.is_some_and(|a| a.class.is_risk_reducing()),
            })
            .collect()
    }

    /// PolicyGuard's inputs as the engine knows them: the capital stop
    /// (`daily_loss_limit_breached`, held for the rest of its UTC day) and a policy that failed to load
    /// (`risk_state: Kill`; launch policy: "the engine does not trade: Kill") both resolve to
    /// `KILL_RISKSTATE_KILL`. The start-up relax and the operator relax see the same flags, so
    /// neither can lift them while they hold.
    pub(super) fn kill_inputs(&self, now: i64) -> PolicyInputs {
        let mut inputs = PolicyInputs::all_healthy(now);
        inputs.risk_state = self.pipeline.risk_state;
        if self.policy.is_err() {
            inputs.risk_state = hotpath::domain::reason_codes::RiskState::Kill;
        }
        inputs.wal_append_healthy = self.wal.poisoned().is_none();
        inputs.daily_loss_limit_breached = self.capital_stop_tripped();
        inputs.f1_cert = self.f1_binding();
        inputs
    }

    /// The release certificate as PolicyGuard sees it. F1 certification (Phase 4) is not
    /// built, so no build of this engine holds a certificate (`/status` `f1_cert_state`
    /// MISSING). It binds where real orders go: in STAGING and LIVE a missing certificate
    /// holds the engine in ReduceOnly (`REDUCEONLY_F1_CERT_INVALID`, unblock MANUAL: certify
    /// and deploy a certified build); DEV and PAPER trade a simulated venue and are exempt,
    /// as the contract's promotion gate (Shadow → Testnet → Live) is where F1 applies.
    fn f1_binding(&self) -> hotpath::mode::F1CertState {
        use hotpath::domain::policy::Environment;
        match self.policy.as_ref().map(|p| p.environment) {
            Ok(Environment::Dev | Environment::Paper) => hotpath::mode::F1CertState::Pass,
            Ok(Environment::Staging | Environment::Live) | Err(_) => {
                hotpath::mode::F1CertState::Missing
            }
        }
    }

    /// The capital stop tripped on the UTC day being counted.
    pub(super) fn capital_stop_tripped(&self) -> bool {
        self.capital_stop_day == Some(self.daily_pnl.last().day_start_ms)
    }

    /// Daily loss reached the limit: logged here; `watch_risk` then has PolicyGuard resolve
    /// Kill (`KILL_RISKSTATE_KILL`).
    fn report_capital_stop(&self, limit: hotpath::domain::units::Usd) {
        let total = self.daily_pnl.last().total_usd;
        tracing::error!(
            run_id = %self.run_id,
            daily_pnl_usd = total.to_f64_lossy(),
            limit_usd = limit.to_f64_lossy(),
            "capital stop: daily loss reached the policy limit; KILL_RISKSTATE_KILL"
        );
        println!(
            "capital stop: daily pnl {:.2} USD reached -{:.2} USD -> Kill (KILL_RISKSTATE_KILL, run_id={})",
            total.to_f64_lossy(),
            limit.to_f64_lossy(),
            self.run_id
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_records_changes_only_and_is_bounded() {
        let ro = ReasonSet::of(ModeReasonCode::ReduceonlyOpenPermissionLatched);
        let mut h = ModeHistory::new(TradingMode::ReduceOnly, ro);
        assert!(h.observe(1, TradingMode::ReduceOnly, ro).is_none());
        let t = h.observe(2, TradingMode::Active, ReasonSet::EMPTY).cloned().unwrap();
        assert_eq!((t.from, t.to, t.at_ms), (TradingMode::ReduceOnly, TradingMode::Active, 2));
        assert!(h.observe(3, TradingMode::Active, ReasonSet::EMPTY).is_none());
        let kill = ReasonSet::of(ModeReasonCode::KillRiskstateKill);
        assert_eq!(
            h.observe(4, TradingMode::Kill, kill).unwrap().reasons,
            vec![ModeReasonCode::KillRiskstateKill]
        );
        for i in 0..50 {
            let m = if i % 2 == 0 { TradingMode::Active } else { TradingMode::Kill };
            let r = if i % 2 == 0 { ReasonSet::EMPTY } else { kill };
            h.observe(10 + i, m, r);
        }
        let r = h.recent();
        assert_eq!(r.len(), TRANSITIONS_MAX);
        assert_eq!(r.last().unwrap().at_ms, 59, "newest last");
    }
}
