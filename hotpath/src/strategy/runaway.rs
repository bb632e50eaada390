//! `runaway`: a deliberately misbehaving strategy for the break-glass drill. It never closes,
//! never cancels and keeps adding opens: per instrument it keeps up to
//! [`RUNAWAY_LIVE_MAX`] post-only orders resting at its side's touch, always on the same side,
//! so exposure only ever grows as the market trades through them. It stays within what the
//! gates accept (post-only at the touch has non-negative edge), which is the point: it looks like a strategy gone wrong that only the kill switch
//! stops, not one the gates would catch by themselves. Never use it outside drills.
//!
//! Deterministic in (seed, inputs, own counter), like `churn`.

use crate::domain::instrument::{Instrument, InstrumentName};
use crate::domain::intent::{
    GroupId, IntentFields, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};

use super::{ActionBuffer, MarketSnapshot, PositionsSnapshot, Strategy, StrategyAction};

/// Instruments the runaway trades.
pub const RUNAWAY_INSTRUMENTS: [&str; 2] = ["BTC-PERPETUAL", "ETH-PERPETUAL"];
/// Resting opens per instrument it keeps topped up.
pub const RUNAWAY_LIVE_MAX: usize = 4;

/// The runaway strategy.
#[derive(Debug)]
pub struct Runaway {
    id: StrategyId,
    seed: u64,
    instruments: Vec<InstrumentName>,
    parsed: Vec<Instrument>,
    decisions: u64,
}

/// Why the runaway could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RunawayError {
    /// A default instrument did not parse (a build bug).
    #[error("bad instrument")]
    BadInstrument,
    /// The strategy id did not validate.
    #[error("bad strategy id")]
    BadId,
}

impl Runaway {
    /// The runaway over [`RUNAWAY_INSTRUMENTS`].
    ///
    /// # Errors
    /// [`RunawayError`] (never for the defaults).
    pub fn new(seed: u64) -> Result<Self, RunawayError> {
        let parsed = RUNAWAY_INSTRUMENTS
            .iter()
            .map(|n| Instrument::parse(n).map_err(|_| RunawayError::BadInstrument))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            id: StrategyId::new_checked("runaway").map_err(|_| RunawayError::BadId)?,
            seed,
            instruments: parsed.iter().map(Instrument::name).collect(),
            parsed,
            decisions: 0,
        })
    }

    /// The side this instrument is pushed on: fixed per (seed, instrument index), so the
    /// exposure keeps growing in one direction.
    fn side(&self, index: usize) -> Side {
        if (self.seed.wrapping_add(index as u64)) % 2 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn open(&mut self, index: usize, market: &MarketSnapshot<'_>) -> Option<OrderIntent> {
        let inst = self.parsed[index];
        let name = inst.name();
        let meta = market.instruments.get(name.as_str())?;
        let book = market.book(name.as_str())?;
        if book.gapped {
            return None;
        }
        let side = self.side(index);
        // Its own side's touch: the most aggressive price a post-only order can rest at
        // without racing a moving book into a cross (the venue would refuse that).
        let price = match side {
            Side::Buy => book.best_bid()?.price,
            Side::Sell => book.best_ask()?.price,
        };
        self.decisions += 1;
        let mut key = [0u8; 24];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&self.decisions.to_le_bytes());
        key[16..].copy_from_slice(&market.now_ms.to_le_bytes());
        let fields = IntentFields {
            strategy_id: self.id,
            group_id: GroupId::derive(&self.id, &key),
            leg_index: 0,
            instrument: inst,
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::GoodTilCancelled,
            post_only: true,
            reduce_only: false,
            linked_order_type: None,
            trigger_price: None,
            qty: meta.min_trade_amount,
            limit_price: Some(price),
            contracts: None,
            emergency_close: false,
        };
        OrderIntent::new_quantized(fields, Some(meta)).ok()
    }
}

impl Strategy for Runaway {
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
        for index in 0..self.parsed.len() {
            let name = self.instruments[index];
            let live = positions.open_orders.iter().filter(|o| o.instrument == name).count();
            if live >= RUNAWAY_LIVE_MAX {
                continue;
            }
            if let Some(intent) = self.open(index, market) {
                if out.push(StrategyAction::Place(intent)).is_err() {
                    return;
                }
            }
        }
    }
}
