//! Fault injection: what a test or operator can break, as a JSON-tagged enum shared by the
//! control endpoint (`POST /sim/fault`) and the library handle.

use serde::{Deserialize, Serialize};

/// One fault command. JSON form: `{"kind": "<snake_case name>", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Close every WebSocket session now (cancel-on-disconnect runs).
    DisconnectAll,
    /// Do not deliver the next `count` book change notifications (optionally only for one
    /// instrument). Change ids still advance, so subscribers see a `prev_change_id` gap.
    DropBookMessages {
        /// How many notifications to drop.
        count: u32,
        /// Restrict to one instrument.
        #[serde(default)]
        instrument: Option<String>,
    },
    /// Deliver the next `count` pairs of book notifications of an instrument swapped.
    ReorderBookMessages {
        /// How many pairs.
        count: u32,
        /// Restrict to one instrument.
        #[serde(default)]
        instrument: Option<String>,
    },
    /// Taker orders are acknowledged open and matched only after `ms` (late fills).
    /// `ms: 0` turns it off.
    DelayFills {
        /// Delay in milliseconds.
        ms: u64,
    },
    /// Liquidity-provider liquidity fills at most `fraction` of a taker order; the rest of
    /// the crossed LP quotes are pulled. `fraction: 1.0` turns it off.
    PartialFill {
        /// 0 < fraction <= 1.
        fraction: f64,
    },
    /// Reject the next new order on an instrument with `code` (default 11030 other_reject).
    RejectNextOrder {
        /// Instrument name.
        instrument: String,
        /// Error code to answer.
        #[serde(default)]
        code: Option<i64>,
    },
    /// Every request gets 10028 (and its connection closed) for `seconds`.
    RateLimitStorm {
        /// Duration in seconds.
        seconds: f64,
    },
    /// Maintenance on/off: `platform_state {"maintenance": true}`; private matching-engine
    /// requests answer 11051 while on.
    Maintenance {
        /// On or off.
        on: bool,
    },
    /// Lock/unlock trading on an index (`btc_usd`): `platform_state {price_index, locked}`;
    /// orders on it answer 13019 orderbook_closed.
    LockIndex {
        /// Index name.
        index: String,
        /// Locked or not.
        locked: bool,
    },
    /// Settlement pause on/off: matching-engine requests answer 10041.
    Settlement {
        /// On or off.
        on: bool,
    },
    /// Shift the venue clock (get_time, usIn/usOut, timestamps) by `ms`.
    ClockSkew {
        /// Milliseconds, may be negative.
        ms: i64,
    },
    /// Freeze market data: no index walk, no LP refresh, no market-data notifications.
    FreezeMarketData {
        /// On or off.
        on: bool,
    },
    /// Move an index (and with it every mark, LP quote and book of that currency) by
    /// `pct` percent at once, e.g. `-10` for a 10 % drop. User orders the move went through
    /// are filled (the market "moved through" them), as on a gap. For daily-loss tests.
    MoveIndex {
        /// Index name (`btc_usd`, `eth_usd`).
        index: String,
        /// Percent change, -90..=1000.
        pct: f64,
    },
    /// Clear every fault.
    Clear,
    /// Orders on one instrument are acknowledged open and matched only after `ms` (an
    /// exchange that goes quiet on one leg: the engine's report deadline expires). `ms: 0`
    /// removes the instrument's delay.
    DelayOrdersOn {
        /// Instrument name.
        instrument: String,
        /// Delay in milliseconds.
        ms: u64,
    },
    /// The next new order on an instrument fills at most `fraction` of its amount (rounded
    /// down to the amount step); the crossed LP quotes beyond are pulled, as `partial_fill`.
    /// One-shot per instrument (repeat to queue more).
    PartialFillNext {
        /// Instrument name.
        instrument: String,
        /// 0 <= fraction <= 1.
        fraction: f64,
    },
    /// Deliver each of the next `count` `user.trades` notifications twice (a venue that
    /// repeats a fill notification; the trade id is the same both times).
    DuplicateFillNotifications {
        /// How many notifications to duplicate.
        count: u32,
    },
    /// Do not deliver the next `count` private order/trade notifications (`user.orders.*`,
    /// `user.trades.*`, `user.changes.*`): a private-channel gap; the venue state moves on
    /// (fills happen), the subscriber learns it only by asking.
    DropUserNotifications {
        /// How many notifications to drop.
        count: u32,
    },
    /// Lose the reply to the next new order (optionally only on one instrument): the venue
    /// applies the order, then the connection dies before the reply or any notification of
    /// it is written (cancel-on-disconnect runs as on any drop). The client has sent an order
    /// whose fate only a query by label can tell. WebSocket only.
    LoseNextOrderAck {
        /// Restrict to one instrument.
        #[serde(default)]
        instrument: Option<String>,
    },
    /// Position queries (`get_positions`, `get_position`) answer the positions as they were
    /// when this was turned on, while trading moves on: a position snapshot lagging the
    /// account's trades. Off answers live positions again.
    FreezePositionSnapshot {
        /// On or off.
        on: bool,
    },
    /// Mute public market data on/off: no book, ticker, trade or index notification is
    /// delivered while on (matching goes on and book change ids advance, so the feed resumes
    /// with a change-id gap). A silent feed, unlike `FreezeMarketData`, which stops the
    /// market from moving but still publishes book changes caused by orders.
    MuteMarketData {
        /// On or off.
        on: bool,
    },
}

/// Live fault state (inside the engine lock).
#[derive(Debug, Clone, Default)]
pub struct FaultState {
    /// Book notifications left to drop, and the instrument filter.
    pub drop_book: u32,
    /// Instrument filter of `drop_book`.
    pub drop_book_instrument: Option<String>,
    /// Pairs left to reorder.
    pub reorder_book: u32,
    /// Instrument filter of `reorder_book`.
    pub reorder_book_instrument: Option<String>,
    /// Fill delay in ms (0 = off).
    pub delay_fills_ms: u64,
    /// LP fill cap fraction (1.0 = off).
    pub partial_fill: f64,
    /// Instruments whose next order is rejected, with the code.
    pub reject_next: Vec<(String, i64)>,
    /// 10028 storm until this wall ms.
    pub storm_until_ms: i64,
    /// Maintenance flag.
    pub maintenance: bool,
    /// Locked indices.
    pub locked_indices: Vec<String>,
    /// Settlement pause flag.
    pub settlement: bool,
    /// Clock skew in ms.
    pub clock_skew_ms: i64,
    /// Market data frozen.
    pub frozen: bool,
    /// Per-instrument order delays in ms (`DelayOrdersOn`).
    pub delay_orders_on: Vec<(String, u64)>,
    /// One-shot partial-fill caps per instrument (`PartialFillNext`), in order.
    pub partial_next: Vec<(String, f64)>,
    /// `user.trades` notifications left to deliver twice.
    pub duplicate_fills: u32,
    /// Private order/trade notifications left to drop.
    pub drop_user: u32,
    /// Public market data muted.
    pub muted: bool,
    /// The next new order's reply is lost (`LoseNextOrderAck`).
    pub lose_ack: bool,
    /// Instrument filter of `lose_ack`.
    pub lose_ack_instrument: Option<String>,
    /// Positions per account that position queries answer (`FreezePositionSnapshot`).
    pub frozen_positions: Option<Vec<std::collections::BTreeMap<usize, crate::engine::Position>>>,
}

impl FaultState {
    /// A fresh state with every fault off.
    pub fn new() -> FaultState {
        FaultState { partial_fill: 1.0, ..FaultState::default() }
    }

    /// Whether the reply to a new order just applied on `instrument` is to be lost; disarms
    /// the fault when it is.
    pub fn take_lost_ack(&mut self, instrument: &str) -> bool {
        let hit =
            self.lose_ack && self.lose_ack_instrument.as_deref().is_none_or(|i| i == instrument);
        if hit {
            self.lose_ack = false;
            self.lose_ack_instrument = None;
        }
        hit
    }
}
