//! Fee-aware IOC limit pricer (contract A §5.10). All amounts are in the instrument's quote
//! unit (the caller converts USD edge and fees with the index price before calling); fixed
//! point throughout, i128 intermediates.

use crate::domain::intent::Side;
use crate::domain::reason_codes::RejectReasonCode;
use crate::domain::units::{Price, Qty, FIXED_SCALE};

/// The pricer's inputs (totals over `qty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricerInput {
    /// Fair price.
    pub fair_price: Price,
    /// Gross edge of the whole order.
    pub gross_edge: Price,
    /// Minimum edge required.
    pub min_edge: Price,
    /// Fee estimate of the whole order.
    pub fee_estimate: Price,
    /// Order quantity (> 0).
    pub qty: Qty,
    /// Side.
    pub side: Side,
}

fn per_unit(total: Price, qty: Qty) -> i128 {
    i128::from(total.raw()) * i128::from(FIXED_SCALE) / i128::from(qty.raw())
}

/// The IOC limit price: `fair ∓ ½·net_edge_per_unit`, clamped to never give away more than
/// `net_edge - min_edge` (BUY `min(proposed, fair - (min_edge + fee)/qty)`, SELL the mirror).
///
/// # Errors
/// `QtyNotPositive`; `NetEdgeTooLow` when `gross - fee < min_edge`; `LimitPriceInvalid` when
/// the result is not a positive price.
pub fn ioc_limit_price(input: &PricerInput) -> Result<Price, RejectReasonCode> {
    if !input.qty.is_positive() {
        return Err(RejectReasonCode::QtyNotPositive);
    }
    let net_edge = i128::from(input.gross_edge.raw()) - i128::from(input.fee_estimate.raw());
    if net_edge < i128::from(input.min_edge.raw()) {
        return Err(RejectReasonCode::NetEdgeTooLow);
    }
    let net_pu = net_edge * i128::from(FIXED_SCALE) / i128::from(input.qty.raw());
    let fee_pu = per_unit(input.fee_estimate, input.qty);
    let min_pu = per_unit(input.min_edge, input.qty);
    let fair = i128::from(input.fair_price.raw());
    let limit = match input.side {
        Side::Buy => (fair - net_pu / 2).min(fair - (min_pu + fee_pu)),
        Side::Sell => (fair + net_pu / 2).max(fair + (min_pu + fee_pu)),
    };
    let raw = i64::try_from(limit).map_err(|_| RejectReasonCode::LimitPriceInvalid)?;
    if raw <= 0 {
        return Err(RejectReasonCode::LimitPriceInvalid);
    }
    Ok(Price::from_raw(raw))
}
