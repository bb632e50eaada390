//! Price-source selection and close pricing for the deterministic emergency close (contract
//! B §3.1, ruling 7): a fresh L2 book first, a fresh L1 ticker second, otherwise no dispatch
//! (`EmergencyCloseNoPrice`). Buy-to-close prices off the best ask, sell-to-close off the best
//! bid, crossed by a buffer of ticks that doubles each attempt (5, 10, 20), and clamped by the
//! policy's slippage bound so a close never chases without limit.

use crate::domain::instrument::InstrumentName;
use crate::domain::intent::Side;
use crate::domain::metadata::InstrumentMeta;
use crate::domain::quantize::quantize_price;
use crate::domain::reason_codes::RejectReasonCode;
use crate::domain::units::Price;
use crate::gates::market::BookView;

/// `close_buffer_ticks` (Appendix A): the first attempt's buffer.
pub const CLOSE_BUFFER_TICKS: i64 = 5;
/// Emergency-close IOC attempts before the hedge fallback (B §3.1: max 3 tries).
pub const CLOSE_ATTEMPTS_MAX: u8 = 3;
/// Slippage bound of an emergency close, in bps of the touch. The contract has no Appendix A
/// value for closes (its 10 bps `max_slippage_bps` is the opens' liquidity gate, which must not
/// block a close); 500 bps is our bound, and at least one tick is always allowed so a close on a
/// coarse tick grid can still cross.
pub const CLOSE_SLIPPAGE_BPS_MAX: i64 = 500;
/// `l2_book_snapshot_max_age_ms` (Appendix A), also the ticker freshness limit.
pub const L2_BOOK_SNAPSHOT_MAX_AGE_MS: i64 = 1_000;

/// An L1 ticker snapshot (contract A §0.2 `L1TickerSnapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Ticker {
    /// Instrument.
    pub instrument: InstrumentName,
    /// Best bid.
    pub best_bid: Price,
    /// Best ask.
    pub best_ask: Price,
    /// Snapshot time (ms, engine clock scale).
    pub ts_ms: i64,
}

/// Where a touch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PriceSource {
    /// A fresh, ungapped L2 book.
    Book,
    /// The L1 ticker fallback (book missing, stale, gapped or one-sided).
    Ticker,
}

impl PriceSource {
    /// Stable string form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Book => "book",
            Self::Ticker => "ticker",
        }
    }
}

/// The best bid and ask a close prices off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    /// Best bid (> 0).
    pub bid: Price,
    /// Best ask (≥ bid).
    pub ask: Price,
    /// Source.
    pub source: PriceSource,
}

/// The market inputs of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriceInputs {
    /// L2 book, if any.
    pub book: Option<BookView>,
    /// L1 ticker, if any.
    pub ticker: Option<L1Ticker>,
}

/// Fresh when `|now - ts| <= max_age`: a venue timestamp a few ms ahead of our clock (skew, or
/// a book fetched after the caller read the clock) must not make a close impossible; clock
/// drift itself is watched by its own monitor.
fn fresh(ts_ms: i64, now_ms: i64, max_age_ms: i64) -> bool {
    let age = now_ms.saturating_sub(ts_ms);
    (-max_age_ms..=max_age_ms).contains(&age)
}

fn valid(bid: Price, ask: Price) -> bool {
    bid.is_positive() && ask.is_positive() && bid <= ask
}

/// Selects the touch for `instrument` by the B §3.1 priority table.
///
/// # Errors
/// `EmergencyCloseNoPrice` when neither source is present, fresh, for this instrument and
/// uncrossed.
pub fn select_touch(
    instrument: InstrumentName,
    inputs: &PriceInputs,
    now_ms: i64,
    max_age_ms: i64,
) -> Result<Touch, RejectReasonCode> {
    if let Some(book) = inputs.book.as_ref().filter(|b| b.instrument == instrument) {
        if !book.gapped && fresh(book.last_update_ms, now_ms, max_age_ms) {
            if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                if valid(bid.price, ask.price) {
                    return Ok(Touch { bid: bid.price, ask: ask.price, source: PriceSource::Book });
                }
            }
        }
    }
    if let Some(t) = inputs.ticker.as_ref().filter(|t| t.instrument == instrument) {
        if fresh(t.ts_ms, now_ms, max_age_ms) && valid(t.best_bid, t.best_ask) {
            return Ok(Touch { bid: t.best_bid, ask: t.best_ask, source: PriceSource::Ticker });
        }
    }
    Err(RejectReasonCode::EmergencyCloseNoPrice)
}

/// Buffer of attempt `attempt` (0-based): `base << attempt` (5, 10, 20 with the default).
#[must_use]
pub const fn buffer_ticks(base_ticks: i64, attempt: u8) -> i64 {
    // attempt < CLOSE_ATTEMPTS_MAX (3) on every path; the shift stays tiny.
    base_ticks.saturating_mul(1_i64 << (attempt as u32 & 7))
}

/// An IOC limit price `ticks` ticks through the touch: BUY `ask + ticks*tick`, SELL
/// `bid - ticks*tick`, clamped so it is at most `max(slippage_bps_max, one tick)` away from
/// the touch, then
/// put on the tick grid in the direction that never worsens it. A SELL never goes below one
/// tick.
///
/// # Errors
/// `LimitPriceInvalid` / `PriceOffTick` from the quantizer.
pub fn cross_price(
    meta: &InstrumentMeta,
    side: Side,
    touch: &Touch,
    ticks: i64,
    slippage_bps_max: i64,
) -> Result<Price, RejectReasonCode> {
    // The tick in force at the touch (Deribit options switch tick size above a price).
    let touch_price = match side {
        Side::Buy => touch.ask,
        Side::Sell => touch.bid,
    };
    let tick = i128::from(meta.tick_at(touch_price).raw());
    let offset = tick * i128::from(ticks.max(0));
    let raw = match side {
        Side::Buy => {
            let base = i128::from(touch.ask.raw());
            let cap = base + (base * i128::from(slippage_bps_max.max(0)) / 10_000).max(tick);
            (base + offset).min(cap).max(base)
        }
        Side::Sell => {
            let base = i128::from(touch.bid.raw());
            let floor = base - (base * i128::from(slippage_bps_max.max(0)) / 10_000).max(tick);
            (base - offset).max(floor).min(base).max(tick)
        }
    };
    let raw = i64::try_from(raw).map_err(|_| RejectReasonCode::LimitPriceInvalid)?;
    quantize_price(meta, side, Price::from_raw(raw))
}
