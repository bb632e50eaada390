//! The smaller gates: risk state and trading mode, fee staleness, the POLICY edge gate, and the
//! policy caps (order notional, position, gross notional, daily loss). Each only reads.

use crate::domain::intent::{OrderIntent, Side};
use crate::domain::policy::{EdgePolicy, Policy};
use crate::domain::reason_codes::{RejectReasonCode, RiskState, TradingMode};
use crate::domain::units::{notional_usd, AmountUnit, Price, Qty, Usd};

use super::positions::{IntentClass, PortfolioView, PositionView};

/// Risk state, trading mode and the open-permission latch (contract §5.17, §2.2, ruling 1).
///
/// - any open while `risk_state != Healthy` ⇒ `RiskStateNotHealthy`;
/// - effective mode is the tighter of `mode` and what the risk state forces;
/// - Kill ⇒ only intents flagged emergency-close *and* classified reducing pass;
/// - ReduceOnly ⇒ opens refused; the latch ⇒ opens refused.
///
/// # Errors
/// `RiskStateNotHealthy`, `TradingModeKill`, `TradingModeReduceOnly`, `OpenPermissionLatched`.
pub fn check_risk_and_mode(
    class: IntentClass,
    emergency_close: bool,
    risk_state: RiskState,
    mode: TradingMode,
    open_permission_latched: bool,
) -> Result<(), RejectReasonCode> {
    let opening = !class.is_risk_reducing();
    if opening && risk_state != RiskState::Healthy {
        return Err(RejectReasonCode::RiskStateNotHealthy);
    }
    let effective = mode.max(risk_state.forced_mode());
    match effective {
        TradingMode::Kill if !(emergency_close && class.is_risk_reducing()) => {
            Err(RejectReasonCode::TradingModeKill)
        }
        TradingMode::ReduceOnly if opening => Err(RejectReasonCode::TradingModeReduceOnly),
        _ if opening && open_permission_latched => Err(RejectReasonCode::OpenPermissionLatched),
        _ => Ok(()),
    }
}

/// Fee model older than `fee_cache_hard_s` (or never loaded) ⇒ no opens.
///
/// # Errors
/// `FeeCacheStale`.
pub fn check_fee_freshness(
    fee_model_updated_ms: Option<i64>,
    now_ms: i64,
    fee_cache_hard_s: i64,
) -> Result<(), RejectReasonCode> {
    let updated = fee_model_updated_ms.ok_or(RejectReasonCode::FeeCacheStale)?;
    let age_ms = now_ms.saturating_sub(updated);
    if age_ms < 0 || age_ms > fee_cache_hard_s.saturating_mul(1_000) {
        return Err(RejectReasonCode::FeeCacheStale);
    }
    Ok(())
}

/// Inputs of the net-edge gate (contract §5.11), in USD, each possibly missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EdgeInputs {
    /// Strategy's gross edge.
    pub gross_edge_usd: Option<Usd>,
    /// Fee estimate.
    pub fee_usd: Option<Usd>,
    /// Expected slippage.
    pub expected_slippage_usd: Option<Usd>,
}

/// The edge gate, labelled POLICY: it is an opinion about profitability, so it applies to opens
/// only and its version travels with every reject it makes.
///
/// # Errors
/// `NetEdgeInputMissing`, `NetEdgeTooLow`.
pub fn check_edge(
    inputs: Option<&EdgeInputs>,
    policy: &EdgePolicy,
) -> Result<(), RejectReasonCode> {
    let inputs = inputs.ok_or(RejectReasonCode::NetEdgeInputMissing)?;
    let (Some(gross), Some(fee), Some(slippage)) =
        (inputs.gross_edge_usd, inputs.fee_usd, inputs.expected_slippage_usd)
    else {
        return Err(RejectReasonCode::NetEdgeInputMissing);
    };
    let net = gross
        .checked_sub(fee)
        .and_then(|v| v.checked_sub(slippage))
        .ok_or(RejectReasonCode::NetEdgeTooLow)?;
    if net < policy.min_edge_usd {
        return Err(RejectReasonCode::NetEdgeTooLow);
    }
    Ok(())
}

/// Policy caps for an open; returns the order's USD notional.
///
/// Position: worst case, every pending order on the same side fills too.
///
/// # Errors
/// `IndexPriceMissing`, `OrderNotionalTooLarge`, `PositionLimitExceeded`,
/// `DailyLossLimitBreached`.
pub fn check_open_caps(
    intent: &OrderIntent,
    policy: &Policy,
    position: &PositionView,
    portfolio: &PortfolioView,
    index_price: Option<Price>,
) -> Result<Usd, RejectReasonCode> {
    let f = intent.fields();
    let limits = policy.effective_risk_limits();
    if portfolio.daily_pnl_usd.neg() >= limits.max_daily_loss_usd {
        return Err(RejectReasonCode::DailyLossLimitBreached);
    }
    let unit = f.instrument.amount_unit();
    let notional = notional_usd(unit, f.qty, index_price)
        .map_err(|_| RejectReasonCode::OrderNotionalTooLarge)?
        .ok_or(RejectReasonCode::IndexPriceMissing)?;
    if notional > limits.max_order_notional_usd {
        return Err(RejectReasonCode::OrderNotionalTooLarge);
    }
    let after = match f.side {
        Side::Buy => position
            .position
            .checked_add(position.pending_buy.abs())
            .and_then(|p| p.checked_add(f.qty)),
        Side::Sell => position
            .position
            .checked_sub(position.pending_sell.abs())
            .and_then(|p| p.checked_sub(f.qty)),
    }
    .ok_or(RejectReasonCode::PositionLimitExceeded)?;
    let cap: Qty = match unit {
        AmountUnit::Coin => limits.max_position_coin_per_instrument,
        AmountUnit::Usd => limits.max_position_usd_per_instrument,
    };
    if after.abs() > cap {
        return Err(RejectReasonCode::PositionLimitExceeded);
    }
    let gross_after = portfolio
        .gross_notional_usd
        .checked_add(portfolio.pending_notional_usd)
        .and_then(|g| g.checked_add(notional))
        .ok_or(RejectReasonCode::PositionLimitExceeded)?;
    if gross_after > limits.max_gross_notional_usd {
        return Err(RejectReasonCode::PositionLimitExceeded);
    }
    Ok(notional)
}
