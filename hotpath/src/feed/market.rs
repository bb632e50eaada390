//! Ticker and trade state: the latest ticker per instrument and a bounded tape of recent
//! public trades. Both are sized once; updates copy fixed-size values.

use crate::venue::messages::{Direction, PublicTrade, Ticker};
use crate::venue::Decimal8;

/// The latest ticker fields the engine reads (copied out of the decoded message).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastTicker {
    /// Venue time, ms (0 = never updated).
    pub timestamp_ms: i64,
    /// Best bid.
    pub best_bid_price: Option<Decimal8>,
    /// Best bid amount.
    pub best_bid_amount: Option<Decimal8>,
    /// Best ask.
    pub best_ask_price: Option<Decimal8>,
    /// Best ask amount.
    pub best_ask_amount: Option<Decimal8>,
    /// Mark price.
    pub mark_price: Option<Decimal8>,
    /// Index price.
    pub index_price: Option<Decimal8>,
    /// Mark IV, percent.
    pub mark_iv: Option<f64>,
    /// Updates applied.
    pub updates_total: u64,
}

impl LastTicker {
    /// Takes the fields of `t` when it is not older than what we hold; returns whether
    /// it was applied. Out-of-order tickers are dropped so the state never moves back.
    pub fn update(&mut self, t: &Ticker<'_>) -> bool {
        if t.timestamp < self.timestamp_ms {
            return false;
        }
        self.timestamp_ms = t.timestamp;
        self.best_bid_price = t.best_bid_price.filter(|p| !p.is_zero());
        self.best_bid_amount = t.best_bid_amount;
        self.best_ask_price = t.best_ask_price.filter(|p| !p.is_zero());
        self.best_ask_amount = t.best_ask_amount;
        self.mark_price = t.mark_price;
        self.index_price = t.index_price;
        self.mark_iv = t.mark_iv;
        self.updates_total += 1;
        true
    }
}

/// One public trade, fixed size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TapeTrade {
    /// Time, ms.
    pub timestamp_ms: i64,
    /// Sequence, when given.
    pub trade_seq: Option<u64>,
    /// Taker side.
    pub direction: Direction,
    /// Price.
    pub price: Decimal8,
    /// Amount.
    pub amount: Decimal8,
}

/// The most recent public trades of one instrument, in a ring allocated once.
#[derive(Debug)]
pub struct TradeTape {
    ring: Vec<TapeTrade>,
    capacity: usize,
    next: usize,
    total: u64,
}

impl TradeTape {
    /// A tape keeping the last `capacity` trades.
    ///
    /// # Panics
    /// When `capacity` is zero (a configuration bug).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "tape capacity must be positive");
        Self { ring: Vec::with_capacity(capacity), capacity, next: 0, total: 0 }
    }

    /// Records a trade (overwrites the oldest once full).
    pub fn push(&mut self, t: &PublicTrade<'_>) {
        let tt = TapeTrade {
            timestamp_ms: t.timestamp,
            trade_seq: t.trade_seq,
            direction: t.direction,
            price: t.price,
            amount: t.amount,
        };
        if self.ring.len() < self.capacity {
            self.ring.push(tt);
        } else {
            self.ring[self.next] = tt;
        }
        self.next = (self.next + 1) % self.capacity;
        self.total += 1;
    }

    /// The newest trade.
    #[must_use]
    pub fn last(&self) -> Option<&TapeTrade> {
        if self.ring.is_empty() {
            return None;
        }
        let i = (self.next + self.capacity - 1) % self.capacity;
        self.ring.get(i)
    }

    /// Trades held (≤ capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when no trade was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Trades recorded since construction.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.total
    }
}
