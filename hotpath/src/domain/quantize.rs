//! Canonical quantization (contract §5.5), run before hashing and before dispatch.
//!
//! - price: BUY rounds down, SELL rounds up to the tick in force at that price (never a worse
//!   price than asked);
//! - quantity: always down to the amount step (size is never rounded up);
//! - below the minimum after rounding ⇒ `TooSmallAfterQuantization` (never a silent zero);
//! - no metadata ⇒ `InstrumentMetadataMissing` (no defaults, ever).

use super::intent::Side;
use super::metadata::{InstrumentMeta, TICK_STEPS_MAX};
use super::reason_codes::RejectReasonCode;
use super::units::{Price, Qty};

/// A quantized (price, qty) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantized {
    /// Limit price on the tick grid.
    pub price: Price,
    /// Amount on the step grid, at least the minimum.
    pub qty: Qty,
}

fn floor_to(value: i64, step: i64) -> i64 {
    value.div_euclid(step) * step
}

fn ceil_to(value: i64, step: i64) -> Option<i64> {
    let floored = floor_to(value, step);
    if floored == value {
        Some(value)
    } else {
        floored.checked_add(step)
    }
}

/// Rounds a limit price to the tick grid in the direction that never worsens it for `side`.
///
/// # Errors
/// `LimitPriceInvalid` for a non-positive price or one that rounds to zero/overflows.
pub fn quantize_price(
    meta: &InstrumentMeta,
    side: Side,
    raw_price: Price,
) -> Result<Price, RejectReasonCode> {
    if !raw_price.is_positive() {
        return Err(RejectReasonCode::LimitPriceInvalid);
    }
    let mut candidate = raw_price.raw();
    // Each pass moves the candidate onto the grid of the band it lands in; a move can cross into
    // at most one new band per pass, so steps+1 passes always converge (bounded loop).
    for _ in 0..=TICK_STEPS_MAX {
        let tick = meta.tick_at(Price::from_raw(candidate)).raw();
        let next = match side {
            Side::Buy => floor_to(candidate, tick),
            Side::Sell => ceil_to(candidate, tick).ok_or(RejectReasonCode::LimitPriceInvalid)?,
        };
        if next == candidate {
            break;
        }
        candidate = next;
        if candidate <= 0 {
            return Err(RejectReasonCode::LimitPriceInvalid);
        }
    }
    let price = Price::from_raw(candidate);
    if meta.is_on_tick(price) {
        Ok(price)
    } else {
        Err(RejectReasonCode::PriceOffTick)
    }
}

/// Rounds a quantity down to the amount step and enforces the minimum.
///
/// # Errors
/// `QtyNotPositive` for zero/negative input; `TooSmallAfterQuantization` below the minimum.
pub fn quantize_qty(meta: &InstrumentMeta, raw_qty: Qty) -> Result<Qty, RejectReasonCode> {
    if !raw_qty.is_positive() {
        return Err(RejectReasonCode::QtyNotPositive);
    }
    let qty = Qty::from_raw(floor_to(raw_qty.raw(), meta.amount_step.raw()));
    if qty < meta.min_trade_amount {
        return Err(RejectReasonCode::TooSmallAfterQuantization);
    }
    Ok(qty)
}

/// Quantizes price and quantity together; `meta == None` is `InstrumentMetadataMissing`.
///
/// # Errors
/// See [`quantize_price`] and [`quantize_qty`].
pub fn quantize(
    meta: Option<&InstrumentMeta>,
    side: Side,
    raw_price: Price,
    raw_qty: Qty,
) -> Result<Quantized, RejectReasonCode> {
    let meta = meta.ok_or(RejectReasonCode::InstrumentMetadataMissing)?;
    let qty = quantize_qty(meta, raw_qty)?;
    let price = quantize_price(meta, side, raw_price)?;
    Ok(Quantized { price, qty })
}
