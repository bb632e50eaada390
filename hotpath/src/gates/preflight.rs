//! Preflight (contract §5.16 order types, §5.5 grid checks, §5.1 sizing, §5.3 lifecycle, §5.2
//! metadata freshness, policy allowlists). Hard rejects; every function here only reads.

use crate::domain::intent::{OrderIntent, OrderType, Side, TimeInForce};
use crate::domain::label::Label;
use crate::domain::metadata::InstrumentMeta;
use crate::domain::policy::{OrderTypeToken, Policy};
use crate::domain::reason_codes::RejectReasonCode;
use crate::domain::units::OrderSize;

use super::market::BookView;
use super::positions::IntentClass;

/// Order-type rules (contract §5.16), for every class: the venue must never see a market,
/// stop/trigger or linked order from us, reducing or not.
///
/// # Errors
/// `OrderTypeMarketForbidden`, `OrderTypeStopForbidden`, `LinkedOrderTypeForbidden`,
/// `OrderTypeNotAllowed` (policy allowlist), `LimitPriceInvalid`, `QtyNotPositive`.
pub fn check_order_type(intent: &OrderIntent, policy: &Policy) -> Result<(), RejectReasonCode> {
    let f = intent.fields();
    match f.order_type {
        OrderType::Market | OrderType::MarketLimit => {
            return Err(RejectReasonCode::OrderTypeMarketForbidden)
        }
        OrderType::StopLimit
        | OrderType::StopMarket
        | OrderType::TakeLimit
        | OrderType::TakeMarket
        | OrderType::TrailingStop => return Err(RejectReasonCode::OrderTypeStopForbidden),
        OrderType::Limit => {}
    }
    // A limit without a price is a market order in disguise (contract §5.16 row 2).
    let price = f.limit_price.ok_or(RejectReasonCode::OrderTypeMarketForbidden)?;
    if f.trigger_price.is_some() {
        return Err(RejectReasonCode::OrderTypeStopForbidden);
    }
    // linked_orders_supported is false on Deribit for us (F-08), so no flag can enable these.
    if f.linked_order_type.is_some() {
        return Err(RejectReasonCode::LinkedOrderTypeForbidden);
    }
    let allowed = policy.allowed_order_types;
    let needs = [
        (true, OrderTypeToken::Limit),
        (f.post_only, OrderTypeToken::PostOnly),
        (f.reduce_only, OrderTypeToken::ReduceOnly),
        (f.time_in_force == TimeInForce::ImmediateOrCancel, OrderTypeToken::Ioc),
        (f.time_in_force == TimeInForce::FillOrKill, OrderTypeToken::Fok),
    ];
    if needs.iter().any(|(used, token)| *used && !allowed.contains(*token)) {
        return Err(RejectReasonCode::OrderTypeNotAllowed);
    }
    // Deribit accepts post_only only with good_til_cancelled (venue notes §8.1).
    if f.post_only && f.time_in_force != TimeInForce::GoodTilCancelled {
        return Err(RejectReasonCode::OrderTypeNotAllowed);
    }
    if !price.is_positive() {
        return Err(RejectReasonCode::LimitPriceInvalid);
    }
    if !f.qty.is_positive() {
        return Err(RejectReasonCode::QtyNotPositive);
    }
    Ok(())
}

/// Grid and sizing checks against the instrument's metadata (contract §5.5, §5.1).
///
/// # Errors
/// `InstrumentMetadataMissing`, `PriceOffTick`, `QtyOffStep`, `TooSmallAfterQuantization`,
/// `ContractsAmountMismatch`, `InstrumentNotYetListed`.
pub fn check_instrument(
    intent: &OrderIntent,
    meta: Option<&InstrumentMeta>,
    now_ms: i64,
) -> Result<(), RejectReasonCode> {
    let f = intent.fields();
    let meta = meta.ok_or(RejectReasonCode::InstrumentMetadataMissing)?;
    if meta.instrument != f.instrument {
        return Err(RejectReasonCode::InstrumentMetadataMissing);
    }
    if now_ms < meta.creation_timestamp_ms {
        return Err(RejectReasonCode::InstrumentNotYetListed);
    }
    let price = f.limit_price.ok_or(RejectReasonCode::OrderTypeMarketForbidden)?;
    if !meta.is_on_tick(price) {
        return Err(RejectReasonCode::PriceOffTick);
    }
    if f.qty < meta.min_trade_amount {
        return Err(RejectReasonCode::TooSmallAfterQuantization);
    }
    if !meta.is_on_step(f.qty) {
        return Err(RejectReasonCode::QtyOffStep);
    }
    if f.contracts.is_some() {
        // Index price is irrelevant to the contracts check; USD-sized needs none, and for
        // coin-sized we only want the mismatch verdict here.
        let unit = f.instrument.amount_unit();
        let sizing =
            OrderSize::new_checked(unit, f.qty, f.contracts, meta.contract_size, Some(price));
        if sizing == Err(crate::domain::units::OrderSizeError::ContractsAmountMismatch) {
            return Err(RejectReasonCode::ContractsAmountMismatch);
        }
    }
    Ok(())
}

/// Checks that only apply to opens: allowlists, lifecycle (delist buffer), metadata freshness.
/// Reducing intents skip them on purpose (capital supremacy: an instrument that left the
/// allowlist or whose metadata aged must still be closable).
///
/// # Errors
/// `InstrumentNotAllowed`, `InstrumentExpiredOrDelisted`, `InstrumentMetadataStale`.
pub fn check_open_lifecycle(
    meta: &InstrumentMeta,
    policy: &Policy,
    now_ms: i64,
) -> Result<(), RejectReasonCode> {
    let instrument = meta.instrument;
    if !policy.currency_allowed(instrument.base_currency())
        || !policy.kind_allowed(instrument.kind())
    {
        return Err(RejectReasonCode::InstrumentNotAllowed);
    }
    if !meta.is_active {
        return Err(RejectReasonCode::InstrumentExpiredOrDelisted);
    }
    if let Some(expiry_ms) = meta.expiration_timestamp_ms {
        let buffer_ms = policy.data_limits.expiry_delist_buffer_s.saturating_mul(1_000);
        if now_ms >= expiry_ms.saturating_sub(buffer_ms) {
            return Err(RejectReasonCode::InstrumentExpiredOrDelisted);
        }
    }
    if meta.is_stale(now_ms, policy.data_limits.instrument_cache_ttl_s) {
        return Err(RejectReasonCode::InstrumentMetadataStale);
    }
    Ok(())
}

/// `reduce_only` that the classification says would open or increase (contract §5.16 and
/// Deribit's reduce-only semantics): refused here rather than left to the venue.
///
/// # Errors
/// `ReduceOnlyWouldIncrease`.
pub fn check_reduce_only(intent: &OrderIntent, class: IntentClass) -> Result<(), RejectReasonCode> {
    if intent.fields().reduce_only && !class.is_risk_reducing() {
        return Err(RejectReasonCode::ReduceOnlyWouldIncrease);
    }
    Ok(())
}

/// A post-only order priced through the opposite best would cross (contract §5.16 row 4).
/// Without a book there is nothing to cross; the liquidity gate handles missing books.
///
/// # Errors
/// `PostOnlyWouldCross`.
pub fn check_post_only(
    intent: &OrderIntent,
    book: Option<&BookView>,
) -> Result<(), RejectReasonCode> {
    let f = intent.fields();
    let (Some(book), Some(price), true) = (book, f.limit_price, f.post_only) else {
        return Ok(());
    };
    let crosses = match f.side {
        Side::Buy => book.best_ask().is_some_and(|ask| price >= ask.price),
        Side::Sell => book.best_bid().is_some_and(|bid| price <= bid.price),
    };
    if crosses {
        return Err(RejectReasonCode::PostOnlyWouldCross);
    }
    Ok(())
}

/// Builds the outbound label (contract §5.4); never truncated.
///
/// # Errors
/// `LabelTooLong`.
pub fn build_label(intent: &OrderIntent) -> Result<Label, RejectReasonCode> {
    Label::for_intent(intent).map_err(crate::domain::label::LabelError::reject_code)
}
