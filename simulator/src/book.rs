//! One instrument's limit order book: price-time priority over integer price levels.
//!
//! The book only knows resting entries (order id, owner, remaining amount). Order objects,
//! fees and positions live in the engine; the book answers "who trades with whom, at what
//! price, for how much".

use std::collections::{BTreeMap, VecDeque};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Bid side.
    Buy,
    /// Ask side.
    Sell,
}

impl Side {
    /// `buy` / `sell`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// Who owns a resting entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The simulator's liquidity provider (not an account: no positions, no funds).
    Lp,
    /// An account (index into the engine's account table).
    Account(usize),
}

/// One resting order in a level queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Order id.
    pub id: u64,
    /// Owner.
    pub owner: Owner,
    /// Remaining amount (units).
    pub remaining: i64,
}

/// One execution against a resting entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// The resting (maker) order.
    pub maker: Entry,
    /// Execution price (the maker's level).
    pub price: i64,
    /// Executed amount.
    pub amount: i64,
    /// True when the maker entry is now fully consumed.
    pub maker_done: bool,
}

/// Bid and ask ladders. Bids iterate best-first with `.rev()`.
#[derive(Debug, Default, Clone)]
pub struct Book {
    bids: BTreeMap<i64, VecDeque<Entry>>,
    asks: BTreeMap<i64, VecDeque<Entry>>,
}

impl Book {
    fn side(&self, s: Side) -> &BTreeMap<i64, VecDeque<Entry>> {
        match s {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, s: Side) -> &mut BTreeMap<i64, VecDeque<Entry>> {
        match s {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Best bid price.
    pub fn best_bid(&self) -> Option<i64> {
        self.bids.keys().next_back().copied()
    }

    /// Best ask price.
    pub fn best_ask(&self) -> Option<i64> {
        self.asks.keys().next().copied()
    }

    /// Best price on a side.
    pub fn best(&self, s: Side) -> Option<i64> {
        match s {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        }
    }

    /// Total amount resting at the best level of a side.
    pub fn best_amount(&self, s: Side) -> i64 {
        let lvl = match s {
            Side::Buy => self.bids.values().next_back(),
            Side::Sell => self.asks.values().next(),
        };
        lvl.map_or(0, |q| q.iter().map(|e| e.remaining).sum())
    }

    /// True when a taker on `taker` side at `limit` (None = any price) would trade now.
    pub fn crosses(&self, taker: Side, limit: Option<i64>) -> bool {
        match (taker, self.best(taker.opposite()), limit) {
            (_, None, _) => false,
            (_, Some(_), None) => true,
            (Side::Buy, Some(ask), Some(l)) => l >= ask,
            (Side::Sell, Some(bid), Some(l)) => l <= bid,
        }
    }

    /// Amount available to a taker up to `limit`, optionally ignoring one owner's orders.
    pub fn available(&self, taker: Side, limit: Option<i64>) -> i64 {
        let opp = self.side(taker.opposite());
        let ok = |p: i64| match (taker, limit) {
            (_, None) => true,
            (Side::Buy, Some(l)) => p <= l,
            (Side::Sell, Some(l)) => p >= l,
        };
        let levels: Box<dyn Iterator<Item = (&i64, &VecDeque<Entry>)>> = match taker {
            Side::Buy => Box::new(opp.iter()),
            Side::Sell => Box::new(opp.iter().rev()),
        };
        levels
            .take_while(|(p, _)| ok(**p))
            .map(|(_, q)| q.iter().map(|e| e.remaining).sum::<i64>())
            .sum()
    }

    /// Matches a taker against the opposite side, best price first, oldest first, up to
    /// `amount` and `limit`. `skip` decides to stop before a maker (used to cap LP
    /// liquidity); returning true for a maker ends matching.
    pub fn take(
        &mut self,
        taker: Side,
        limit: Option<i64>,
        mut amount: i64,
        mut stop_before: impl FnMut(&Entry, i64) -> bool,
    ) -> Vec<Fill> {
        let mut fills = Vec::new();
        let opp = taker.opposite();
        while amount > 0 {
            let Some(best) = self.best(opp) else { break };
            let crosses = match (taker, limit) {
                (_, None) => true,
                (Side::Buy, Some(l)) => best <= l,
                (Side::Sell, Some(l)) => best >= l,
            };
            if !crosses {
                break;
            }
            let side = self.side_mut(opp);
            let Some(queue) = side.get_mut(&best) else { break };
            let Some(front) = queue.front_mut() else {
                side.remove(&best);
                continue;
            };
            if stop_before(front, best) {
                break;
            }
            let qty = front.remaining.min(amount);
            front.remaining -= qty;
            amount -= qty;
            let done = front.remaining == 0;
            fills.push(Fill { maker: *front, price: best, amount: qty, maker_done: done });
            if done {
                queue.pop_front();
                if queue.is_empty() {
                    side.remove(&best);
                }
            }
        }
        fills
    }

    /// Adds a resting entry at the back of its level.
    pub fn insert(&mut self, side: Side, price: i64, e: Entry) {
        debug_assert!(e.remaining > 0);
        self.side_mut(side).entry(price).or_default().push_back(e);
    }

    /// Removes an entry by id at a known side/price; returns it.
    pub fn remove(&mut self, side: Side, price: i64, id: u64) -> Option<Entry> {
        let lvl = self.side_mut(side);
        let q = lvl.get_mut(&price)?;
        let pos = q.iter().position(|e| e.id == id)?;
        let e = q.remove(pos);
        if q.is_empty() {
            lvl.remove(&price);
        }
        e
    }

    /// Changes an entry's remaining amount in place (keeps priority; used for size-down
    /// edits, which Deribit lets keep their place).
    pub fn set_remaining(&mut self, side: Side, price: i64, id: u64, remaining: i64) -> bool {
        let Some(q) = self.side_mut(side).get_mut(&price) else { return false };
        match q.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.remaining = remaining;
                true
            }
            None => false,
        }
    }

    /// Removes every entry of an owner matching `pred`, returning (side, price, entry).
    pub fn remove_where(
        &mut self,
        mut pred: impl FnMut(&Entry) -> bool,
    ) -> Vec<(Side, i64, Entry)> {
        let mut out = Vec::new();
        for s in [Side::Buy, Side::Sell] {
            let lvl = self.side_mut(s);
            lvl.retain(|p, q| {
                q.retain(|e| {
                    if pred(e) {
                        out.push((s, *p, *e));
                        false
                    } else {
                        true
                    }
                });
                !q.is_empty()
            });
        }
        out
    }

    /// Aggregated levels best-first: (price, total amount), at most `depth` per side.
    pub fn levels(&self, s: Side, depth: usize) -> Vec<(i64, i64)> {
        let sum = |q: &VecDeque<Entry>| q.iter().map(|e| e.remaining).sum::<i64>();
        match s {
            Side::Buy => self.bids.iter().rev().take(depth).map(|(p, q)| (*p, sum(q))).collect(),
            Side::Sell => self.asks.iter().take(depth).map(|(p, q)| (*p, sum(q))).collect(),
        }
    }

    /// Every entry, for invariant checks: (side, price, entry).
    pub fn entries(&self) -> Vec<(Side, i64, Entry)> {
        let mut out = Vec::new();
        for (s, lvl) in [(Side::Buy, &self.bids), (Side::Sell, &self.asks)] {
            for (p, q) in lvl {
                for e in q {
                    out.push((s, *p, *e));
                }
            }
        }
        out
    }

    /// Number of resting entries on both sides.
    pub fn len(&self) -> usize {
        self.bids.values().chain(self.asks.values()).map(VecDeque::len).sum()
    }

    /// True when nothing rests.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_then_time_priority() {
        let mut b = Book::default();
        b.insert(Side::Sell, 101, Entry { id: 1, owner: Owner::Lp, remaining: 5 });
        b.insert(Side::Sell, 100, Entry { id: 2, owner: Owner::Lp, remaining: 5 });
        b.insert(Side::Sell, 100, Entry { id: 3, owner: Owner::Lp, remaining: 5 });
        let f = b.take(Side::Buy, Some(101), 12, |_, _| false);
        let ids: Vec<u64> = f.iter().map(|x| x.maker.id).collect();
        assert_eq!(ids, vec![2, 3, 1]);
        assert_eq!(f.iter().map(|x| x.amount).sum::<i64>(), 12);
        assert_eq!(b.levels(Side::Sell, 10), vec![(101, 3)]);
    }
}
