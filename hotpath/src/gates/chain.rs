//! The gate chain: one pure function from (intent, context) to `Accepted` or `Rejection`.
//!
//! Order (contract §5.18, composed): config → classification → order-type preflight →
//! instrument/grid/sizing → reduce-only → label → open lifecycle (allowlist, delist buffer,
//! metadata age) → risk state / mode / latch → post-only crossing → liquidity → fee staleness →
//! edge (POLICY) → caps → order rate. Cheap structural checks come first so the reason a
//! malformed intent gets does not depend on market state.
//!
//! `evaluate` allocates nothing (checked by `tests/phase1_gates.rs` with a counting
//! allocator) and writes nothing: reservations, WAL records and token consumption happen in
//! the caller, and only with the `Accepted` value this returns.

use crate::domain::instrument::InstrumentName;
use crate::domain::intent::{IntentHash, OrderIntent, Side};
use crate::domain::label::Label;
use crate::domain::metadata::InstrumentCache;
use crate::domain::policy::{Policy, PolicyError, PolicyErrorCode};
use crate::domain::reason_codes::{RejectReasonCode, RiskState, TradingMode};
use crate::domain::units::{notional_usd, Price, Qty, Usd};

use super::checks::{
    check_edge, check_fee_freshness, check_open_caps, check_risk_and_mode, EdgeInputs,
};
use super::liquidity::check_liquidity;
use super::market::BookView;
use super::positions::{classify, IntentClass, PortfolioView, PositionView};
use super::preflight::{
    build_label, check_instrument, check_open_lifecycle, check_order_type, check_post_only,
    check_reduce_only,
};
use super::rate::OrderRateBucket;

/// The policy as the gates see it: loaded, or the loader's error code (fail closed).
#[derive(Debug, Clone, Copy)]
pub enum PolicySlot<'a> {
    /// A validated policy.
    Loaded(&'a Policy),
    /// The loader failed; every intent is refused with `ConfigMissingOrInvalid`.
    Invalid(PolicyErrorCode),
}

impl<'a> PolicySlot<'a> {
    /// From a loader result.
    #[must_use]
    pub fn from_result(result: &'a Result<Policy, PolicyError>) -> Self {
        match result {
            Ok(policy) => Self::Loaded(policy),
            Err(e) => Self::Invalid(e.code),
        }
    }
}

/// Which gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateName {
    /// Policy/config presence.
    Config,
    /// Order types, instrument grid, sizing, label, lifecycle.
    Preflight,
    /// Risk state, trading mode, open-permission latch.
    RiskMode,
    /// Book quality.
    Liquidity,
    /// Fee model freshness.
    FeeStaleness,
    /// Net edge — a POLICY gate (versioned).
    EdgePolicy,
    /// Notional, position, gross and daily-loss caps.
    Caps,
    /// Order-rate token bucket.
    OrderRate,
}

impl GateName {
    /// Stable string form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Preflight => "preflight",
            Self::RiskMode => "risk_mode",
            Self::Liquidity => "liquidity",
            Self::FeeStaleness => "fee_staleness",
            Self::EdgePolicy => "edge_policy",
            Self::Caps => "caps",
            Self::OrderRate => "order_rate",
        }
    }
}

/// An enumerated refusal. No free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Registry code.
    pub code: RejectReasonCode,
    /// The gate that refused.
    pub gate: GateName,
    /// The class, once computed (None when config was missing).
    pub class: Option<IntentClass>,
    /// For [`GateName::EdgePolicy`] rejects: the edge policy version.
    pub edge_policy_version: Option<u32>,
    /// The policy loader's code, when `code == ConfigMissingOrInvalid`.
    pub config_error: Option<PolicyErrorCode>,
}

impl Rejection {
    /// Rejections that also mean a wiring bug, so the caller must set `RiskState::Degraded`
    /// (contract §5.1 rule 3, §5.4).
    #[must_use]
    pub const fn sets_degraded(&self) -> bool {
        matches!(
            self.code,
            RejectReasonCode::ContractsAmountMismatch | RejectReasonCode::LabelTooLong
        )
    }
}

/// Proof that an intent passed every gate, with what the caller needs to commit it. Only
/// [`GateChain::evaluate`] constructs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// Computed class.
    pub class: IntentClass,
    /// The intent's hash.
    pub intent_hash: IntentHash,
    /// Outbound label.
    pub label: Label,
    /// Instrument.
    pub instrument: InstrumentName,
    /// Side.
    pub side: Side,
    /// Amount.
    pub qty: Qty,
    /// USD notional when known (always for opens).
    pub notional_usd: Option<Usd>,
    /// For reducing intents: the liquidity verdict they were let through despite.
    pub advisory: Option<RejectReasonCode>,
    /// Token bucket after this intent; store it only when committing the intent.
    pub order_rate_after: OrderRateBucket,
}

/// Everything the gates read, as plain values and shared references.
#[derive(Debug, Clone, Copy)]
pub struct GateContext<'a> {
    /// Now, from the injected clock.
    pub now_ms: i64,
    /// Policy or its loader error.
    pub policy: PolicySlot<'a>,
    /// Instrument metadata.
    pub instruments: &'a InstrumentCache,
    /// Book of the intent's instrument.
    pub book: Option<&'a BookView>,
    /// Index price of the underlying (for coin-sized notional).
    pub index_price: Option<Price>,
    /// Position and pending exposure on the intent's instrument.
    pub position: PositionView,
    /// Portfolio figures.
    pub portfolio: PortfolioView,
    /// When the fee model was last refreshed.
    pub fee_model_updated_ms: Option<i64>,
    /// Net-edge inputs for this intent.
    pub edge: Option<EdgeInputs>,
    /// Risk state.
    pub risk_state: RiskState,
    /// Trading mode (from PolicyGuard).
    pub trading_mode: TradingMode,
    /// Open-permission latch (CP-001).
    pub open_permission_latched: bool,
    /// Order-rate bucket state.
    pub order_rate: OrderRateBucket,
}

/// The gate chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateChain;

impl GateChain {
    /// A chain.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }

    /// Runs every gate in order; the first refusal wins.
    ///
    /// # Errors
    /// A [`Rejection`] with a registry code and the gate that refused.
    pub fn evaluate(
        &self,
        intent: &OrderIntent,
        ctx: &GateContext<'_>,
    ) -> Result<Accepted, Rejection> {
        let reject = |code, gate, class| Rejection {
            code,
            gate,
            class,
            edge_policy_version: None,
            config_error: None,
        };

        let policy = match ctx.policy {
            PolicySlot::Loaded(policy) => policy,
            PolicySlot::Invalid(config_error) => {
                return Err(Rejection {
                    code: RejectReasonCode::ConfigMissingOrInvalid,
                    gate: GateName::Config,
                    class: None,
                    edge_policy_version: None,
                    config_error: Some(config_error),
                })
            }
        };
        let f = intent.fields();
        // A book of another instrument counts as no book at all.
        let book = ctx.book.filter(|b| b.instrument == f.instrument.name());
        let class = classify(f.side, f.qty, &ctx.position);
        let pre = |code| reject(code, GateName::Preflight, Some(class));

        check_order_type(intent, policy).map_err(pre)?;
        let meta = ctx.instruments.get(f.instrument.name().as_str());
        check_instrument(intent, meta, ctx.now_ms).map_err(pre)?;
        let Some(meta) = meta else {
            return Err(pre(RejectReasonCode::InstrumentMetadataMissing));
        };
        check_reduce_only(intent, class).map_err(pre)?;
        let label = build_label(intent).map_err(pre)?;
        let opening = !class.is_risk_reducing();
        if opening {
            check_open_lifecycle(meta, policy, ctx.now_ms).map_err(pre)?;
        }

        check_risk_and_mode(
            class,
            f.emergency_close,
            ctx.risk_state,
            ctx.trading_mode,
            ctx.open_permission_latched,
        )
        .map_err(|code| reject(code, GateName::RiskMode, Some(class)))?;

        check_post_only(intent, book).map_err(pre)?;

        let mut advisory = None;
        if let Err(code) = check_liquidity(intent, book, ctx.now_ms, &policy.data_limits) {
            if opening {
                return Err(reject(code, GateName::Liquidity, Some(class)));
            }
            // Ruling 7 / invariant 6: a reduction passes; the verdict is recorded.
            advisory = Some(code);
        }

        let notional = if opening {
            check_fee_freshness(
                ctx.fee_model_updated_ms,
                ctx.now_ms,
                policy.data_limits.fee_cache_hard_s,
            )
            .map_err(|code| reject(code, GateName::FeeStaleness, Some(class)))?;
            check_edge(ctx.edge.as_ref(), &policy.edge_policy).map_err(|code| Rejection {
                code,
                gate: GateName::EdgePolicy,
                class: Some(class),
                edge_policy_version: Some(policy.edge_policy.version),
                config_error: None,
            })?;
            Some(
                check_open_caps(intent, policy, &ctx.position, &ctx.portfolio, ctx.index_price)
                    .map_err(|code| reject(code, GateName::Caps, Some(class)))?,
            )
        } else {
            // Informational for reductions (no cap applies); unknown when no index price.
            notional_usd(f.instrument.amount_unit(), f.qty, ctx.index_price).ok().flatten()
        };

        // Emergency containment is exempt from the policy rate (the venue's own credit limits
        // still apply in dispatch); everything else takes a token.
        let limits = policy.effective_risk_limits();
        let order_rate_after = if f.emergency_close && class.is_risk_reducing() {
            ctx.order_rate
        } else {
            ctx.order_rate
                .try_take(ctx.now_ms, limits.max_orders_per_minute, limits.order_rate_burst)
                .map_err(|code| reject(code, GateName::OrderRate, Some(class)))?
        };

        Ok(Accepted {
            class,
            intent_hash: intent.hash(),
            label,
            instrument: f.instrument.name(),
            side: f.side,
            qty: f.qty,
            notional_usd: notional,
            advisory,
            order_rate_after,
        })
    }
}
