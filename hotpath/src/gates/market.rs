//! The market view the gates read: a plain, fixed-size, `Copy` snapshot of one instrument's L2
//! book. The feed's L2 book fills it; gates never see the feed's own types, so the two can
//! change independently.

use crate::domain::instrument::InstrumentName;
use crate::domain::units::{Price, Qty};

/// Levels per side the gates look at. The liquidity gate only needs the top of the book; a
/// sweep deeper than this is refused as too thin, which errs on the safe side.
pub const BOOK_VIEW_DEPTH: usize = 10;

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookLevel {
    /// Level price.
    pub price: Price,
    /// Resting amount, in the instrument's `amount` units.
    pub qty: Qty,
}

/// Top-of-book snapshot of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookView {
    /// The instrument this book belongs to; the chain ignores a book of another instrument (a
    /// wiring bug must not let one instrument's liquidity approve another's order).
    pub instrument: InstrumentName,
    bids: [BookLevel; BOOK_VIEW_DEPTH],
    bid_count: u8,
    asks: [BookLevel; BOOK_VIEW_DEPTH],
    ask_count: u8,
    /// When the book last changed (venue timestamp in ms, on our clock's scale).
    pub last_update_ms: i64,
    /// A change-id gap was detected and the book awaits a fresh snapshot.
    pub gapped: bool,
}

impl BookView {
    /// Builds a view from levels ordered best first; levels past [`BOOK_VIEW_DEPTH`] are
    /// dropped, as are levels with a non-positive price or amount (a feed bug must not become
    /// phantom liquidity).
    #[must_use]
    pub fn from_levels(
        instrument: InstrumentName,
        bids: &[BookLevel],
        asks: &[BookLevel],
        last_update_ms: i64,
        gapped: bool,
    ) -> Self {
        fn fill(src: &[BookLevel]) -> ([BookLevel; BOOK_VIEW_DEPTH], u8) {
            let mut out = [BookLevel::default(); BOOK_VIEW_DEPTH];
            let mut count = 0_usize;
            for level in src.iter().filter(|l| l.price.is_positive() && l.qty.is_positive()) {
                if count == BOOK_VIEW_DEPTH {
                    break;
                }
                out[count] = *level;
                count += 1;
            }
            // count <= BOOK_VIEW_DEPTH (10).
            (out, count as u8)
        }
        let (bid_levels, bid_count) = fill(bids);
        let (ask_levels, ask_count) = fill(asks);
        Self {
            instrument,
            bids: bid_levels,
            bid_count,
            asks: ask_levels,
            ask_count,
            last_update_ms,
            gapped,
        }
    }

    /// Bids, best (highest) first.
    #[must_use]
    pub fn bids(&self) -> &[BookLevel] {
        &self.bids[..usize::from(self.bid_count)]
    }

    /// Asks, best (lowest) first.
    #[must_use]
    pub fn asks(&self) -> &[BookLevel] {
        &self.asks[..usize::from(self.ask_count)]
    }

    /// Best bid.
    #[must_use]
    pub fn best_bid(&self) -> Option<BookLevel> {
        self.bids().first().copied()
    }

    /// Best ask.
    #[must_use]
    pub fn best_ask(&self) -> Option<BookLevel> {
        self.asks().first().copied()
    }
}
