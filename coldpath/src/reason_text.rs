//! Plain-language sentences for the owner dashboard and `stoic status`.
//!
//! The registry meanings (`meaning()`, generated from `spec/reason_codes.json`) are precise
//! but written for engineers ("mm_util >= mm_util_kill (0.95)"). The owner must understand
//! the state within five seconds, so each code also gets one plain sentence here. The
//! matches are exhaustive: a code added to the registry does not compile until it has a
//! sentence. `/api/v1/reason_text` serves both, and the dashboard shows the plain sentence
//! with the registry meaning underneath.

use hotpath::domain::reason_codes::{
    ModeReasonCode, OpenPermissionReasonCode, RejectReasonCode, TradingMode,
};
use serde_json::{json, Map, Value};

/// Owner-dashboard-only states (`OwnerStateCode` in the registry); never affect the mode.
pub const OWNER_STATES: [(&str, &str); 5] = [
    ("STATE_STARTUP_RECONCILING", "Starting up: checking our orders and positions against the exchange."),
    ("STATE_IDLE_HEALTHY", "Everything is healthy. The engine may open new positions."),
    ("STATE_PAPER_MODE", "Paper trading: no real orders are sent."),
    ("STATE_MICRO_LIVE", "Live trading with very small size limits."),
    ("STATE_UNHEALTHY_STATUS_SCHEMA", "The engine's status report is broken or unreadable. Treat it as unsafe and force Reduce-only."),
];

/// Headline for a trading mode.
#[must_use]
pub const fn mode_headline(m: TradingMode) -> &'static str {
    match m {
        TradingMode::Active => "ACTIVE: trading normally",
        TradingMode::ReduceOnly => "REDUCE-ONLY: no new positions, only closing",
        TradingMode::Kill => "KILL: all new trading stopped",
    }
}

/// What the mode means for the owner, in one sentence.
#[must_use]
pub const fn mode_plain(m: TradingMode) -> &'static str {
    match m {
        TradingMode::Active => "The engine may open new positions, within the launch-policy limits.",
        TradingMode::ReduceOnly => "The engine will not open or increase any position. It may still close, hedge and cancel.",
        TradingMode::Kill => "The engine sends no new risk. It only closes or hedges existing positions to make them safe.",
    }
}

/// One plain sentence per mode reason.
#[must_use]
pub const fn mode_reason_plain(r: ModeReasonCode) -> &'static str {
    use ModeReasonCode as M;
    match r {
        M::KillWatchdogHeartbeatStale => "The engine's main loop and its watchdog both stopped reporting for over 10 seconds.",
        M::KillRiskstateKill => "An emergency stop was declared for the engine's risk state, or the day's loss reached the launch policy's limit (capital stop).",
        M::KillMarginMmUtilCritical => "Margin use at the exchange is critical (95% or more of maintenance margin).",
        M::KillRateLimitSessionTermination => "The exchange ended our session repeatedly for sending too many requests.",
        M::KillDiskWatermarkKill => "The disk is almost full (92% or more, confirmed by two readings).",
        M::KillCortexForceKill => "The market became unsafe (spreads, depth or prices collapsed), so the safety reflex stopped trading.",
        M::ReduceonlyRiskstateMaintenance => "The exchange has scheduled maintenance within the hour.",
        M::ReduceonlyEmergencyReduceonlyActive => "An operator pressed the emergency Reduce-only switch. It holds for at least 5 minutes.",
        M::ReduceonlyOpenPermissionLatched => "New positions are blocked until our records are re-checked against the exchange.",
        M::ReduceonlyBunkerModeActive => "The network to the exchange is unstable (or cannot be measured).",
        M::ReduceonlyF1CertInvalid => "The release certificate for this build is missing, expired, failed or for another build.",
        M::ReduceonlyEvidenceChainNotGreen => "The evidence record-keeping is not healthy.",
        M::ReduceonlyCortexForceReduceOnly => "Market conditions are risky (volatility jump, wide spreads or thin books).",
        M::ReduceonlyFeeModelHardStale => "The exchange fee table has not been refreshed for too long.",
        M::ReduceonlyRiskstateDegraded => "Part of the engine's wiring, data or monitoring is not working properly.",
        M::ReduceonlyPolicyStale => "The trading policy has not been refreshed for over 5 minutes.",
        M::ReduceonlyMarginMmUtilHigh => "Margin use at the exchange is high (85% or more of maintenance margin).",
        M::ReduceonlyInputMissingOrStale => "A safety input the engine needs is missing or out of date.",
        M::ReduceonlyWatchdogUnconfirmed => "Either the main loop or the watchdog stopped reporting (not yet both).",
        M::ReduceonlyDiskKillUnconfirmed => "The disk looks almost full, but a second reading has not confirmed it.",
        M::ReduceonlySessionKillUnconfirmed => "The exchange ended our session once for too many requests.",
        M::ReduceonlyGroupLockTimeout => "A multi-leg order could not be coordinated in time.",
        M::ReduceonlyHotpathBackpressure => "The engine's internal queues are overloaded; new risk waits until they drain.",
    }
}

/// One plain sentence per open-permission latch reason.
#[must_use]
pub const fn open_permission_plain(r: OpenPermissionReasonCode) -> &'static str {
    use OpenPermissionReasonCode as O;
    match r {
        O::RestartReconcileRequired => {
            "The engine has just started and has not yet checked its records against the exchange."
        }
        O::WsBookGapReconcileRequired => "Order-book updates from the exchange were missed.",
        O::WsTradesGapReconcileRequired => {
            "Trade updates from the exchange were missed or went silent."
        }
        O::WsDataStaleReconcileRequired => "Data from the exchange stopped arriving.",
        O::InventoryMismatchReconcileRequired => {
            "Our positions disagree with the exchange's positions."
        }
        O::SessionTerminationReconcileRequired => {
            "The exchange ended our session; we must log in again and re-check everything."
        }
    }
}

/// One plain sentence per order refusal (gate reject reason).
#[must_use]
pub const fn reject_plain(r: RejectReasonCode) -> &'static str {
    use RejectReasonCode as R;
    match r {
        R::TooSmallAfterQuantization => "The order was smaller than the exchange's minimum size.",
        R::InstrumentMetadataMissing => {
            "The exchange's size and price rules for this instrument are not known."
        }
        R::ChurnBreakerActive => {
            "This strategy was paused after too many emergency closes in a short time."
        }
        R::LiquidityGateNoL2 => "There was no fresh order book for this instrument.",
        R::EmergencyCloseNoPrice => "An emergency close found no price to trade at.",
        R::ExpectedSlippageTooHigh => "The order would have moved the price too much.",
        R::NetEdgeTooLow => "The trade was not expected to earn enough after fees.",
        R::NetEdgeInputMissing => "The expected profit of the trade could not be estimated.",
        R::InventorySkew => "The trade would have pushed our exposure too far in one direction.",
        R::InventorySkewDeltaLimitMissing => "The exposure limit for this check is not configured.",
        R::PendingExposureBudgetExceeded => {
            "Orders already on their way would use up the exposure budget."
        }
        R::GlobalExposureBudgetExceeded => {
            "Total exposure across everything would be over its limit."
        }
        R::ContractsAmountMismatch => {
            "The order size did not add up (contracts vs amount); the engine was marked degraded."
        }
        R::MarginHeadroomRejectOpens => "Margin use is too high to open anything new.",
        R::OrderTypeMarketForbidden => "Market orders are never allowed.",
        R::OrderTypeStopForbidden => "Stop and trigger orders are never allowed.",
        R::LinkedOrderTypeForbidden => "Linked (OCO) orders are not allowed.",
        R::PostOnlyWouldCross => "A maker-only order would have traded immediately.",
        R::RiskIncreasingCancelReplaceForbidden => {
            "Changing this order would have added risk, which is not allowed now."
        }
        R::RateLimitBrownout => "The exchange's request limit is nearly used up; new orders wait.",
        R::InstrumentExpiredOrDelisted => "The instrument is expiring or no longer traded.",
        R::FeedbackLoopGuardActive => {
            "Our own trading was moving the market; this strategy is cooling down."
        }
        R::LabelTooLong => "The order's tracking label was too long (a wiring fault).",
        R::FeeCacheStale => "The exchange fee table is out of date.",
        R::RecordedBeforeDispatchFailed => {
            "The order could not be written to the journal before sending, so it was not sent."
        }
        R::InstrumentUnknown => "The instrument name is not valid.",
        R::InstrumentNotAllowed => "The launch policy does not allow trading this instrument.",
        R::InstrumentNotYetListed => "The instrument is not listed yet.",
        R::InstrumentMetadataStale => "The instrument list from the exchange is out of date.",
        R::PriceOffTick => "The price was not on the exchange's price grid.",
        R::QtyOffStep => "The size was not a multiple of the exchange's size step.",
        R::ReduceOnlyWouldIncrease => "A reduce-only order would have increased the position.",
        R::OrderNotionalTooLarge => {
            "The order was bigger than the launch policy's per-order limit."
        }
        R::PositionLimitExceeded => {
            "The order would have taken a position over the launch policy's limit."
        }
        R::OrderRateLimitExceeded => "Too many orders per minute for the launch policy.",
        R::DailyLossLimitBreached => "Today's loss reached the launch policy's limit; no new risk.",
        R::RiskStateNotHealthy => "The engine is not fully healthy, so it does not open positions.",
        R::TradingModeReduceOnly => "The engine is Reduce-only: only closing is allowed.",
        R::TradingModeKill => "The engine is in Kill: no new orders.",
        R::OpenPermissionLatched => {
            "New positions wait until our records are re-checked against the exchange."
        }
        R::LiquidityGateBookGapped => "The order book had a gap and is being reloaded.",
        R::LiquidityGateSpreadTooWide => "The market's bid-ask spread was too wide to open.",
        R::LiquidityGateDepthTooThin => "There was too little volume in the book to open.",
        R::ConfigMissingOrInvalid => "A required setting or the policy file is missing or invalid.",
        R::IntentRingFull => "The engine's internal queue was full; the order was handed back.",
        R::DuplicateIntent => "The same order had already been recorded; it was not sent twice.",
        R::LimitPriceInvalid => "The order's price was not valid.",
        R::QtyNotPositive => "The order's size was not valid.",
        R::OrderTypeNotAllowed => "This kind of order is not allowed by the launch policy.",
        R::IndexPriceMissing => "No index price was available to value the order in USD.",
    }
}

/// The JSON served at `/api/v1/reason_text`:
/// `{"modes": {mode: {headline, plain, meaning}}, "mode_reasons": {code: {plain, meaning, tier}},
///   "open_permission": {code: {plain, meaning}}, "rejects": {code: {plain, meaning}},
///   "owner_states": {code: {plain}}}`.
#[must_use]
pub fn reason_text_json() -> Value {
    let mut modes = Map::new();
    for m in TradingMode::ALL {
        modes.insert(
            m.as_str().into(),
            json!({"headline": mode_headline(m), "plain": mode_plain(m), "meaning": m.meaning()}),
        );
    }
    let mut reasons = Map::new();
    for r in ModeReasonCode::ALL {
        let tier = if r.as_str().starts_with("KILL_") { "Kill" } else { "ReduceOnly" };
        reasons.insert(
            r.as_str().into(),
            json!({"plain": mode_reason_plain(r), "meaning": r.meaning(), "tier": tier}),
        );
    }
    let mut latch = Map::new();
    for r in OpenPermissionReasonCode::ALL {
        latch.insert(
            r.as_str().into(),
            json!({"plain": open_permission_plain(r), "meaning": r.meaning()}),
        );
    }
    let mut rejects = Map::new();
    for r in RejectReasonCode::ALL {
        rejects
            .insert(r.as_str().into(), json!({"plain": reject_plain(r), "meaning": r.meaning()}));
    }
    let mut owner = Map::new();
    for (code, plain) in OWNER_STATES {
        owner.insert(code.into(), json!({"plain": plain}));
    }
    json!({"modes": modes, "mode_reasons": reasons, "open_permission": latch, "rejects": rejects,
           "owner_states": owner})
}
