//! The reference single-leg option quoter: post-only bid and ask around the book mid of each
//! quoted option, skewed against inventory, cancelled and replaced when the mid moves or the
//! quotes age, pulled when the book is missing, stale, gapped or crossed.
//!
//! ## Decisions, per instrument and tick
//! 1. The book must be usable ([`usable_top`]): present, not gapped, both sides, not crossed,
//!    no older than `book_age_ms_max` on the tick's frozen clock. Otherwise every live order
//!    of this strategy on the instrument is cancelled and nothing is quoted.
//! 2. Inventory in lots: `position / min_trade_amount` (from the engine's exposure book, not
//!    from what the quoter believes it bought). Fair = mid − `skew_ticks_per_lot` × lots ×
//!    tick: a long position lowers both quotes (sell sooner, buy later), a short raises them.
//! 3. Bid = fair − `half_spread_ticks` ticks (rounded down), ask = fair + … (rounded up), each
//!    kept strictly inside the opposite best so a post-only order never crosses.
//! 4. A side is not quoted when a fill of it could take `|position + pending + size|` past
//!    `inventory_lots_max` lots on that side (the side that would increase the inventory).
//! 5. Live quotes are replaced (cancel + place) when the mid moved more than
//!    `requote_ticks` ticks since they were placed or they are older than `quote_age_ms_max`;
//!    a side that should no longer be quoted is cancelled; a missing side is placed.
//!
//! ## Determinism
//! Every input is the tick's snapshot and the quoter's own state (a quote sequence number and
//! the anchors of its live quotes). The group id of a quote is
//! `GroupId::derive(strategy_id, key)` with `key = seed ‖ "q" ‖ instrument ‖ side ‖ quantized
//! price ‖ quote sequence`, so the same inputs and state give the same intents, hashes and
//! labels. Nothing reads the wall clock, a random source or an unordered map.
//!
//! ## Allocation
//! All state is sized in [`Quoter::new`]; `on_tick` only reads slices, writes preallocated
//! slots and pushes into the caller's [`ActionBuffer`] (checked by
//! `tests/hotpath_zero_alloc.rs`).

use crate::domain::instrument::{InstrumentKind, InstrumentName};
use crate::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use crate::domain::label::Label;
use crate::domain::metadata::InstrumentMeta;
use crate::domain::units::{Price, Qty};
use crate::gates::market::{BookLevel, BookView};

use super::{ActionBuffer, MarketSnapshot, PositionsSnapshot, Strategy, StrategyAction};

/// Most instruments one quoter quotes (bounds its state and its per-tick output).
pub const QUOTER_INSTRUMENTS_MAX: usize = 32;
/// Most actions the quoter emits per instrument per tick (two cancels, two places) plus room
/// for orphan cancels; [`Quoter::actions_per_tick_max`] is the buffer size to allocate.
pub const QUOTER_ACTIONS_PER_INSTRUMENT_MAX: usize = 6;
/// Labels remembered as "cancel already sent", so a slow cancel is not re-sent every tick.
const CANCEL_MEMORY: usize = 4 * QUOTER_INSTRUMENTS_MAX;

/// Why a quoter configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuoterConfigError {
    /// No instruments, or more than [`QUOTER_INSTRUMENTS_MAX`].
    #[error("quoter needs 1..=32 instruments")]
    InstrumentCount,
    /// An instrument is not an option (this quoter quotes options only).
    #[error("quoter instrument is not an option")]
    NotAnOption,
    /// The same instrument twice.
    #[error("quoter instrument listed twice")]
    Duplicate,
    /// A parameter is out of range (sizes and distances must be positive).
    #[error("quoter parameter out of range: {0}")]
    Param(&'static str),
}

/// Quoter parameters. Distances are in ticks of the instrument at the mid, sizes in lots of
/// the instrument's `min_trade_amount` (so the policy's small-order rules are met by
/// construction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoterParams {
    /// Distance of each quote from the (skewed) fair price, in ticks (≥ 1).
    pub half_spread_ticks: i64,
    /// Quote size, in lots (≥ 1).
    pub quote_lots: i64,
    /// Fair-price shift per lot of inventory, in ticks (≥ 0).
    pub skew_ticks_per_lot: i64,
    /// Inventory bound, in lots (≥ 1): a side whose fill could pass it is not quoted.
    pub inventory_lots_max: i64,
    /// Requote when the mid moved more than this many ticks since placement (≥ 0).
    pub requote_ticks: i64,
    /// Requote quotes older than this (ms, ≥ 1).
    pub quote_age_ms_max: i64,
    /// Pull quotes when the book is older than this (ms, ≥ 1).
    pub book_age_ms_max: i64,
}

impl Default for QuoterParams {
    fn default() -> Self {
        Self {
            half_spread_ticks: 2,
            quote_lots: 1,
            skew_ticks_per_lot: 1,
            inventory_lots_max: 5,
            requote_ticks: 1,
            quote_age_ms_max: 30_000,
            book_age_ms_max: 1_000,
        }
    }
}

impl QuoterParams {
    fn validate(&self) -> Result<(), QuoterConfigError> {
        let checks = [
            (self.half_spread_ticks >= 1, "half_spread_ticks"),
            (self.quote_lots >= 1, "quote_lots"),
            (self.skew_ticks_per_lot >= 0, "skew_ticks_per_lot"),
            (self.inventory_lots_max >= 1, "inventory_lots_max"),
            (self.requote_ticks >= 0, "requote_ticks"),
            (self.quote_age_ms_max >= 1, "quote_age_ms_max"),
            (self.book_age_ms_max >= 1, "book_age_ms_max"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, name)) => Err(QuoterConfigError::Param(name)),
            None => Ok(()),
        }
    }
}

/// One live quote as the quoter placed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LiveQuote {
    label: Label,
    price: Price,
    placed_ms: i64,
    anchor_mid: Price,
}

/// Per-instrument state.
#[derive(Debug, Clone, Copy)]
struct Slot {
    instrument: InstrumentName,
    bid: Option<LiveQuote>,
    ask: Option<LiveQuote>,
}

/// The best bid and ask of a book the strategy may act on, or `None` (see the module docs).
#[must_use]
pub fn usable_top(
    book: Option<&BookView>,
    now_ms: i64,
    book_age_ms_max: i64,
) -> Option<(BookLevel, BookLevel)> {
    let book = book?;
    let age_ms = now_ms.saturating_sub(book.last_update_ms);
    if book.gapped || !(0..=book_age_ms_max).contains(&age_ms) {
        return None;
    }
    let (bid, ask) = (book.best_bid()?, book.best_ask()?);
    (bid.price < ask.price).then_some((bid, ask))
}

/// A decision key built in place (no heap): fixed-width fields appended in a fixed order.
#[derive(Debug)]
pub(crate) struct DecisionKey {
    bytes: [u8; 128],
    len: usize,
}

impl DecisionKey {
    pub(crate) fn new(seed: u64, tag: &[u8]) -> Self {
        let mut key = Self { bytes: [0; 128], len: 0 };
        key.put(&seed.to_le_bytes());
        key.put(tag);
        key
    }
    /// Appends a length-prefixed field (so "ab"+"c" and "a"+"bc" differ).
    pub(crate) fn put_field(&mut self, field: &[u8]) -> &mut Self {
        // Names are ≤ 40 bytes; the key holds seed + tag + two names + numbers.
        self.put(&[u8::try_from(field.len()).unwrap_or(u8::MAX)]);
        self.put(field);
        self
    }
    pub(crate) fn put_i64(&mut self, value: i64) -> &mut Self {
        self.put(&value.to_le_bytes());
        self
    }
    fn put(&mut self, data: &[u8]) {
        let end = (self.len + data.len()).min(self.bytes.len());
        assert!(end - self.len == data.len(), "decision key exceeds its bound");
        self.bytes[self.len..end].copy_from_slice(data);
        self.len = end;
    }
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The mid of a non-crossed top of book (rounded down to 1e-8).
#[must_use]
pub fn mid_of(bid: Price, ask: Price) -> Price {
    Price::from_raw(bid.raw() + (ask.raw() - bid.raw()) / 2)
}

/// `a` rounded down (`up == false`) or up to a multiple of `step` (> 0).
pub(crate) fn round_to(a: i64, step: i64, up: bool) -> i64 {
    let floored = a.div_euclid(step) * step;
    if up && floored != a {
        floored.saturating_add(step)
    } else {
        floored
    }
}

/// The single-leg option quoter (see the module docs).
#[derive(Debug)]
pub struct Quoter {
    id: StrategyId,
    seed: u64,
    params: QuoterParams,
    instruments: Vec<InstrumentName>,
    slots: Vec<Slot>,
    quote_seq: u64,
    cancelled: [Option<Label>; CANCEL_MEMORY],
    cancelled_next: usize,
}

impl Quoter {
    /// A quoter for `instruments` (sorted and checked here), with a stable `id`. `seed` is a
    /// run-configuration value mixed into every decision key (two deployments with different
    /// seeds never share group ids); it is an input like any other, not randomness.
    ///
    /// # Errors
    /// [`QuoterConfigError`].
    pub fn new(
        id: StrategyId,
        seed: u64,
        instruments: &[InstrumentName],
        params: QuoterParams,
    ) -> Result<Self, QuoterConfigError> {
        params.validate()?;
        if instruments.is_empty() || instruments.len() > QUOTER_INSTRUMENTS_MAX {
            return Err(QuoterConfigError::InstrumentCount);
        }
        let mut sorted = instruments.to_vec();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(QuoterConfigError::Duplicate);
        }
        for name in &sorted {
            let parsed = crate::domain::instrument::Instrument::parse(name.as_str())
                .map_err(|_| QuoterConfigError::NotAnOption)?;
            if parsed.kind() != InstrumentKind::Option {
                return Err(QuoterConfigError::NotAnOption);
            }
        }
        let slots =
            sorted.iter().map(|&instrument| Slot { instrument, bid: None, ask: None }).collect();
        Ok(Self {
            id,
            seed,
            params,
            instruments: sorted,
            slots,
            quote_seq: 0,
            cancelled: [None; CANCEL_MEMORY],
            cancelled_next: 0,
        })
    }

    /// Actions one tick can produce at most: size the [`ActionBuffer`] with this.
    #[must_use]
    pub fn actions_per_tick_max(&self) -> usize {
        self.instruments.len() * QUOTER_ACTIONS_PER_INSTRUMENT_MAX
    }

    /// The parameters.
    #[must_use]
    pub const fn params(&self) -> &QuoterParams {
        &self.params
    }

    /// Quotes placed so far (the sequence number of the next one).
    #[must_use]
    pub const fn quote_seq(&self) -> u64 {
        self.quote_seq
    }

    fn cancel_sent(&self, label: &Label) -> bool {
        self.cancelled.iter().any(|c| c.as_ref() == Some(label))
    }

    fn cancel(&mut self, label: Label, out: &mut ActionBuffer) -> bool {
        if self.cancel_sent(&label) {
            return true;
        }
        if out.push(StrategyAction::Cancel(label)).is_err() {
            return false;
        }
        self.cancelled[self.cancelled_next] = Some(label);
        self.cancelled_next = (self.cancelled_next + 1) % CANCEL_MEMORY;
        true
    }

    /// Builds one post-only GTC quote.
    fn quote_intent(
        &self,
        meta: &InstrumentMeta,
        side: Side,
        price: Price,
        seq: u64,
    ) -> Option<OrderIntent> {
        let name = meta.instrument.name();
        let mut key = DecisionKey::new(self.seed, b"q");
        key.put_field(name.as_bytes())
            .put_i64(i64::from(side == Side::Buy))
            .put_i64(price.raw())
            .put_i64(i64::try_from(seq).unwrap_or(i64::MAX));
        let qty = Qty::from_raw(self.params.quote_lots.checked_mul(meta.min_trade_amount.raw())?);
        let fields = IntentFields {
            strategy_id: self.id,
            group_id: GroupId::derive(&self.id, key.as_bytes()),
            leg_index: 0,
            instrument: meta.instrument,
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: true,
            reduce_only: false,
            linked_order_type: None,
            trigger_price: None,
            qty,
            limit_price: Some(price),
            contracts: None,
            emergency_close: false,
        };
        OrderIntent::new_quantized(fields, Some(meta)).ok()
    }

    /// Desired (bid, ask) prices for one instrument, already on the grid and non-crossing.
    fn desired(
        &self,
        meta: &InstrumentMeta,
        bid: BookLevel,
        ask: BookLevel,
        position: &crate::gates::positions::PositionView,
    ) -> (Option<Price>, Option<Price>) {
        let p = &self.params;
        let lot = meta.min_trade_amount.raw();
        let size = p.quote_lots.saturating_mul(lot);
        let mid = mid_of(bid.price, ask.price);
        let tick = meta.tick_at(mid).raw();
        // Inventory in whole lots, truncated toward zero.
        let lots = position.position.raw() / lot;
        let fair = mid
            .raw()
            .saturating_sub(lots.saturating_mul(p.skew_ticks_per_lot).saturating_mul(tick));
        let offset = p.half_spread_ticks.saturating_mul(tick);
        let limit = p.inventory_lots_max.saturating_mul(lot);
        let long_after_buy = position
            .position
            .raw()
            .saturating_add(position.pending_buy.raw().abs())
            .saturating_add(size);
        let short_after_sell = position
            .position
            .raw()
            .saturating_sub(position.pending_sell.raw().abs())
            .saturating_sub(size);
        let bid_price = (long_after_buy <= limit)
            .then(|| {
                let raw = fair.saturating_sub(offset);
                // Strictly below the best ask, by at least one tick at that price.
                let ceiling = ask.price.raw() - meta.tick_at(ask.price).raw();
                let raw = raw.min(ceiling);
                let tick_here = meta.tick_at(Price::from_raw(raw.max(1))).raw();
                round_to(raw, tick_here, false)
            })
            .filter(|&raw| {
                raw > 0 && raw < ask.price.raw() && meta.is_on_tick(Price::from_raw(raw))
            })
            .map(Price::from_raw);
        let ask_price = (short_after_sell >= -limit)
            .then(|| {
                let raw = fair.saturating_add(offset);
                let floor = bid.price.raw() + meta.tick_at(bid.price).raw();
                let raw = raw.max(floor);
                let tick_here = meta.tick_at(Price::from_raw(raw)).raw();
                let rounded = round_to(raw, tick_here, true);
                // Rounding up can cross into a coarser band; round again on that band's grid.
                round_to(rounded, meta.tick_at(Price::from_raw(rounded)).raw(), true)
            })
            .filter(|&raw| raw > bid.price.raw() && meta.is_on_tick(Price::from_raw(raw)))
            .map(Price::from_raw);
        (bid_price, ask_price)
    }
}

/// What to do with one side of one instrument this tick.
fn side_needs_replace(
    live: Option<&LiveQuote>,
    desired: Option<Price>,
    mid: Price,
    tick: i64,
    now_ms: i64,
    params: &QuoterParams,
) -> (bool, bool) {
    // (cancel the live quote, place a new one)
    match (live, desired) {
        (None, None) => (false, false),
        (None, Some(_)) => (false, true),
        (Some(_), None) => (true, false),
        (Some(q), Some(_)) => {
            let moved =
                (mid.raw() - q.anchor_mid.raw()).abs() > params.requote_ticks.saturating_mul(tick);
            let stale = now_ms.saturating_sub(q.placed_ms) > params.quote_age_ms_max;
            (moved || stale, moved || stale)
        }
    }
}

impl Strategy for Quoter {
    fn id(&self) -> &StrategyId {
        &self.id
    }

    fn instruments(&self) -> &[InstrumentName] {
        &self.instruments
    }

    fn on_tick(
        &mut self,
        market: &MarketSnapshot<'_>,
        positions: &PositionsSnapshot<'_>,
        out: &mut ActionBuffer,
    ) {
        for index in 0..self.slots.len() {
            let slot = self.slots[index];
            let name = slot.instrument;
            // Forget quotes the engine no longer reports live (filled, cancelled, rejected).
            let is_live = |q: &Option<LiveQuote>| {
                q.filter(|q| positions.open_orders.iter().any(|o| o.label == q.label))
            };
            let mut bid_live = is_live(&slot.bid);
            let mut ask_live = is_live(&slot.ask);

            // Orphans: live orders of ours on this instrument that we do not track (a restart,
            // a replaced quote whose cancel raced a fill report). Cancel them.
            for order in positions.open_orders.iter().filter(|o| o.instrument == name) {
                let tracked = bid_live.is_some_and(|q| q.label == order.label)
                    || ask_live.is_some_and(|q| q.label == order.label);
                if !tracked && !self.cancel(order.label, out) {
                    return;
                }
            }

            let meta = market.instruments.get(name.as_str());
            let top =
                usable_top(market.book(name.as_str()), market.now_ms, self.params.book_age_ms_max);
            let (Some(meta), Some((bid, ask))) = (meta, top) else {
                // No metadata or no usable book: pull both quotes, quote nothing.
                for live in [bid_live.take(), ask_live.take()].into_iter().flatten() {
                    if !self.cancel(live.label, out) {
                        return;
                    }
                }
                self.slots[index].bid = None;
                self.slots[index].ask = None;
                continue;
            };
            let mid = mid_of(bid.price, ask.price);
            let tick = meta.tick_at(mid).raw();
            let position = positions.exposure.view(name.as_str());
            let (want_bid, want_ask) = self.desired(meta, bid, ask, &position);

            for (side, live, want) in
                [(Side::Buy, bid_live, want_bid), (Side::Sell, ask_live, want_ask)]
            {
                let (cancel, place) =
                    side_needs_replace(live.as_ref(), want, mid, tick, market.now_ms, &self.params);
                let mut kept = live;
                if cancel {
                    if let Some(q) = live {
                        if !self.cancel(q.label, out) {
                            return;
                        }
                    }
                    kept = None;
                }
                let mut full = false;
                if let (true, Some(price)) = (place, want) {
                    let intent = self.quote_intent(meta, side, price, self.quote_seq);
                    let labelled = intent.and_then(|i| Label::for_intent(&i).ok().map(|l| (i, l)));
                    if let Some((intent, label)) = labelled {
                        if out.push(StrategyAction::Place(intent)).is_ok() {
                            self.quote_seq += 1;
                            kept = Some(LiveQuote {
                                label,
                                price,
                                placed_ms: market.now_ms,
                                anchor_mid: mid,
                            });
                        } else {
                            full = true;
                        }
                    }
                }
                match side {
                    Side::Buy => self.slots[index].bid = kept,
                    Side::Sell => self.slots[index].ask = kept,
                }
                if full {
                    // The buffer is spent: the slot already says what went out.
                    return;
                }
            }
        }
    }
}
