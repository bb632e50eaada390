//! Pre-trade liquidity gate (contract §5.9): book missing/stale/gapped, spread too wide, a
//! marketable order that would sweep past `max_slippage_bps` or past the visible depth.
//!
//! The function returns the verdict; the chain decides what it means: opens are rejected,
//! reducing intents pass with the code recorded in `Accepted::advisory` (ruling 7: a reduction
//! is never refused for thin liquidity).

use crate::domain::intent::{OrderIntent, Side};
use crate::domain::policy::DataLimits;
use crate::domain::reason_codes::RejectReasonCode;

use super::market::{BookLevel, BookView};

const BPS: i128 = 10_000;

/// Judges the book for an intent.
///
/// # Errors
/// `LiquidityGateNoL2`, `LiquidityGateBookGapped`, `LiquidityGateSpreadTooWide`,
/// `LiquidityGateDepthTooThin`, `ExpectedSlippageTooHigh`.
pub fn check_liquidity(
    intent: &OrderIntent,
    book: Option<&BookView>,
    now_ms: i64,
    limits: &DataLimits,
) -> Result<(), RejectReasonCode> {
    let book = book.ok_or(RejectReasonCode::LiquidityGateNoL2)?;
    let age_ms = now_ms.saturating_sub(book.last_update_ms);
    // A book from the future (clock skew) cannot be vouched for either.
    if age_ms < 0 || age_ms > limits.l2_book_snapshot_max_age_ms {
        return Err(RejectReasonCode::LiquidityGateNoL2);
    }
    if book.gapped {
        return Err(RejectReasonCode::LiquidityGateBookGapped);
    }
    let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) else {
        return Err(RejectReasonCode::LiquidityGateDepthTooThin);
    };
    if ask.price <= bid.price {
        // A crossed or locked book is a feed inconsistency, not a market.
        return Err(RejectReasonCode::LiquidityGateBookGapped);
    }
    let spread = i128::from(ask.price.raw()) - i128::from(bid.price.raw());
    let mid_twice = i128::from(ask.price.raw()) + i128::from(bid.price.raw());
    // spread / mid * 1e4 > max  ⇔  spread * 2e4 > max * (2 * mid)
    if spread * 2 * BPS > i128::from(limits.max_spread_bps_open) * mid_twice {
        return Err(RejectReasonCode::LiquidityGateSpreadTooWide);
    }
    let f = intent.fields();
    let Some(limit) = f.limit_price else {
        return Err(RejectReasonCode::OrderTypeMarketForbidden);
    };
    let (levels, marketable): (&[BookLevel], bool) = match f.side {
        Side::Buy => (book.asks(), limit >= ask.price),
        Side::Sell => (book.bids(), limit <= bid.price),
    };
    if !marketable {
        // A resting order does not sweep anything.
        return Ok(());
    }
    let best = i128::from(levels[0].price.raw());
    let wanted = i128::from(f.qty.raw());
    let mut filled: i128 = 0;
    let mut cost: i128 = 0;
    for level in levels {
        let within_limit = match f.side {
            Side::Buy => level.price <= limit,
            Side::Sell => level.price >= limit,
        };
        if !within_limit || filled >= wanted {
            break;
        }
        let take = (wanted - filled).min(i128::from(level.qty.raw()));
        filled += take;
        // One i64 x i64 product fits i128 (< 2^126); the running sum is checked.
        cost = cost
            .checked_add(take * i128::from(level.price.raw()))
            .ok_or(RejectReasonCode::ExpectedSlippageTooHigh)?;
    }
    if filled < wanted {
        return Err(RejectReasonCode::LiquidityGateDepthTooThin);
    }
    // WAP = cost / filled; slippage_bps = |WAP - best| / best * 1e4, compared cross-multiplied.
    // Values too large to compare exactly are refused (fail closed), never wrapped.
    let deviation = (cost - best * filled).abs();
    let lhs = deviation.checked_mul(BPS);
    let rhs =
        best.checked_mul(filled).and_then(|v| v.checked_mul(i128::from(limits.max_slippage_bps)));
    match (lhs, rhs) {
        (Some(lhs), Some(rhs)) if lhs <= rhs => Ok(()),
        _ => Err(RejectReasonCode::ExpectedSlippageTooHigh),
    }
}
