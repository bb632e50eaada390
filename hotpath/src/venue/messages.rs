//! Typed decode of every Deribit message the client meets: JSON-RPC requests, responses,
//! errors, heartbeats and channel notifications.
//!
//! simd-json parses the frame in place into a borrowed DOM (strings point into the input
//! buffer); this module walks that DOM into typed structs. Prices, amounts and fees become
//! [`Decimal8`] here. Unknown fields are ignored; absent optional fields become `None`.
//! Every malformed input yields a [`DecodeError`]; nothing here panics on input.

use std::borrow::Cow;

use simd_json::{BorrowedValue as Value, StaticNode};

use super::decimal::{Decimal8, DecimalError};
use super::error::VenueErrorCode;

type Object<'a> = simd_json::value::borrowed::Object<'a>;

/// Book levels kept per side per message by default. Deribit's full raw book is bounded by
/// the instrument's depth; 1000 covers `get_order_book` with `depth=1000`.
pub const LEVELS_PER_SIDE_MAX: usize = 1000;

/// Why a message could not be decoded. Names (see [`DecodeError::name`]) are what
/// `stoic decode` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not valid JSON.
    #[error("invalid JSON")]
    InvalidJson,
    /// Empty input.
    #[error("empty message")]
    Empty,
    /// The top level (or a nested record) is not a JSON object.
    #[error("not an object: {0}")]
    NotAnObject(&'static str),
    /// `jsonrpc` is present but not "2.0".
    #[error("jsonrpc version is not 2.0")]
    BadJsonRpcVersion,
    /// None of `result`, `error`, `method` present.
    #[error("not a JSON-RPC message")]
    NotJsonRpc,
    /// A required field is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("wrong type for field {0}")]
    WrongType(&'static str),
    /// A numeric field did not convert to fixed point exactly.
    #[error("bad number in field {field}: {error}")]
    BadNumber {
        /// The field.
        field: &'static str,
        /// Why.
        error: DecimalError,
    },
    /// An integer field is negative or fractional where the venue sends a whole number.
    #[error("bad integer in field {0}")]
    BadInteger(&'static str),
    /// An enumerated string field has a value the protocol does not list.
    #[error("unknown value for field {0}")]
    UnknownValue(&'static str),
    /// A book level is not `[action, price, amount]` / `[price, amount]`.
    #[error("malformed book level")]
    BadBookLevel,
    /// More levels in one message than the decoder's fixed capacity.
    #[error("too many book levels")]
    TooManyLevels,
    /// A channel name that does not have the documented shape.
    #[error("malformed channel name")]
    BadChannel,
}

impl DecodeError {
    /// The upper-snake code printed by `stoic decode`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::InvalidJson => "INVALID_JSON",
            Self::Empty => "EMPTY",
            Self::NotAnObject(_) => "NOT_AN_OBJECT",
            Self::BadJsonRpcVersion => "BAD_JSONRPC_VERSION",
            Self::NotJsonRpc => "NOT_JSONRPC",
            Self::MissingField(_) => "MISSING_FIELD",
            Self::WrongType(_) => "WRONG_TYPE",
            Self::BadNumber { .. } => "BAD_NUMBER",
            Self::BadInteger(_) => "BAD_INTEGER",
            Self::UnknownValue(_) => "UNKNOWN_VALUE",
            Self::BadBookLevel => "BAD_BOOK_LEVEL",
            Self::TooManyLevels => "TOO_MANY_LEVELS",
            Self::BadChannel => "BAD_CHANNEL",
        }
    }

    /// The field concerned, when there is one.
    #[must_use]
    pub const fn field(&self) -> Option<&'static str> {
        match self {
            Self::NotAnObject(f)
            | Self::MissingField(f)
            | Self::WrongType(f)
            | Self::BadInteger(f)
            | Self::UnknownValue(f)
            | Self::BadNumber { field: f, .. } => Some(f),
            _ => None,
        }
    }
}

type R<T> = Result<T, DecodeError>;

/// A JSON-RPC request id: Deribit echoes whatever the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestId<'a> {
    /// A numeric id (what this client always sends).
    Num(u64),
    /// A string id (other clients).
    Str(&'a str),
}

/// The Deribit extras on every RPC reply (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyMeta {
    /// Server receive time, µs.
    pub us_in: Option<u64>,
    /// Server send time, µs.
    pub us_out: Option<u64>,
    /// Server processing time, µs.
    pub us_diff: Option<u64>,
    /// True on test.deribit.com.
    pub testnet: Option<bool>,
}

/// One decoded message.
#[derive(Debug)]
pub enum Message<'a> {
    /// A client→venue request (decoding our own outgoing frames and recorded sessions).
    Request(Request<'a>),
    /// A success reply.
    Response(Response<'a>),
    /// An error reply.
    Error(ErrorReply<'a>),
    /// A heartbeat push (`heartbeat` or `test_request`).
    Heartbeat(HeartbeatKind),
    /// A channel notification.
    Notification(Notification<'a>),
}

/// A request frame.
#[derive(Debug)]
pub struct Request<'a> {
    /// The id, when present.
    pub id: Option<RequestId<'a>>,
    /// The method name.
    pub method: &'a str,
    /// `params.instrument_name`, when present.
    pub instrument: Option<&'a str>,
    /// `params.label`, when present.
    pub label: Option<&'a str>,
    /// `params.amount`, when present.
    pub amount: Option<Decimal8>,
    /// `params.price` when it is a number.
    pub price: Option<Decimal8>,
    /// Number of `params.channels`, when present.
    pub channels: Option<usize>,
}

/// A success reply.
#[derive(Debug)]
pub struct Response<'a> {
    /// The echoed id (absent over HTTP GET).
    pub id: Option<RequestId<'a>>,
    /// Timing extras.
    pub meta: ReplyMeta,
    /// The typed result.
    pub result: ResultPayload<'a>,
}

/// An error reply.
#[derive(Debug)]
pub struct ErrorReply<'a> {
    /// The echoed id.
    pub id: Option<RequestId<'a>>,
    /// Timing extras.
    pub meta: ReplyMeta,
    /// The enumerated code.
    pub code: VenueErrorCode,
    /// The venue's message text.
    pub message: &'a str,
    /// `error.data.reason`, when present.
    pub reason: Option<&'a str>,
    /// `error.data.param`, when present.
    pub param: Option<&'a str>,
}

/// Heartbeat push type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatKind {
    /// Informational.
    Heartbeat,
    /// Must be answered with `public/test`.
    TestRequest,
}

/// A result, typed by its shape (replies do not name their method; a caller that knows
/// the method checks the variant).
#[derive(Debug)]
pub enum ResultPayload<'a> {
    /// The string `"ok"`.
    Ok,
    /// Another string result.
    Text(&'a str),
    /// An integer result (`get_time` ms, `cancel_all` count).
    Integer(i64),
    /// `public/auth`.
    Auth(AuthResult<'a>),
    /// `public/test` / `public/hello`.
    Version(&'a str),
    /// `buy`/`sell`/`edit`: the order and its immediate fills.
    OrderWithTrades(Order<'a>, Vec<UserTrade<'a>>),
    /// `cancel`, `get_order_state`: one order.
    Order(Order<'a>),
    /// Open-order queries.
    Orders(Vec<Order<'a>>),
    /// `get_user_trades_*`.
    UserTrades(Vec<UserTrade<'a>>, bool),
    /// `get_positions`.
    Positions(Vec<Position<'a>>),
    /// `get_position`.
    Position(Position<'a>),
    /// `get_account_summary`.
    AccountSummary(AccountSummary<'a>),
    /// `get_instruments`.
    Instruments(Vec<Instrument<'a>>),
    /// `get_instrument`.
    Instrument(Instrument<'a>),
    /// `get_order_book`: levels and the ticker fields.
    OrderBook(BookUpdate<'a>, Ticker<'a>),
    /// `public/ticker`.
    Ticker(Ticker<'a>),
    /// `subscribe`/`unsubscribe`: the channels actually (un)subscribed.
    Channels(Vec<&'a str>),
    /// An empty array (no orders, no positions, ...).
    EmptyList,
    /// A shape this client does not model (e.g. `public/status`); kept as accepted.
    Other,
}

/// `public/auth` result. Debug redacts the tokens.
#[derive(Clone, Copy)]
pub struct AuthResult<'a> {
    /// Bearer token.
    pub access_token: &'a str,
    /// Refresh token.
    pub refresh_token: &'a str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes (space separated).
    pub scope: &'a str,
    /// `bearer`.
    pub token_type: &'a str,
}

impl std::fmt::Debug for AuthResult<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthResult")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// Order or trade side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
    /// Flat position (positions only).
    Zero,
}

impl Direction {
    /// Wire text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
            Self::Zero => "zero",
        }
    }
}

/// An order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Resting.
    Open,
    /// Fully filled.
    Filled,
    /// Refused.
    Rejected,
    /// Cancelled.
    Cancelled,
    /// Trigger order waiting.
    Untriggered,
    /// Trigger fired (trigger history).
    Triggered,
    /// Archived (trade records).
    Archive,
}

impl OrderState {
    /// Wire text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Filled => "filled",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Untriggered => "untriggered",
            Self::Triggered => "triggered",
            Self::Archive => "archive",
        }
    }

    fn parse(s: &str, field: &'static str) -> R<Self> {
        // `rejected:reduce_direction` style suffixes carry a reason after the colon.
        let head = s.split(':').next().unwrap_or(s);
        Ok(match head {
            "open" => Self::Open,
            "filled" | "closed" => Self::Filled,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            "untriggered" => Self::Untriggered,
            "triggered" => Self::Triggered,
            "archive" => Self::Archive,
            _ => return Err(DecodeError::UnknownValue(field)),
        })
    }
}

/// An order's limit price: a number, or `"market_price"` for market orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderPrice {
    /// A limit price.
    Limit(Decimal8),
    /// A market order.
    Market,
}

/// An order object (§8.5), key fields.
#[derive(Debug, Clone, Copy)]
pub struct Order<'a> {
    /// Venue order id.
    pub order_id: &'a str,
    /// Instrument.
    pub instrument_name: &'a str,
    /// Side.
    pub direction: Direction,
    /// Amount (instrument units).
    pub amount: Decimal8,
    /// Filled so far.
    pub filled_amount: Decimal8,
    /// Limit price.
    pub price: OrderPrice,
    /// Average fill price (absent or 0 when unfilled).
    pub average_price: Option<Decimal8>,
    /// `limit`, `market`, ...
    pub order_type: &'a str,
    /// State.
    pub order_state: OrderState,
    /// Time in force.
    pub time_in_force: &'a str,
    /// Post-only flag.
    pub post_only: bool,
    /// Reduce-only flag.
    pub reduce_only: bool,
    /// Our label (`""` when none).
    pub label: &'a str,
    /// Creation time, ms.
    pub creation_timestamp: i64,
    /// Last update, ms.
    pub last_update_timestamp: i64,
    /// Why it was cancelled, when it was.
    pub cancel_reason: Option<&'a str>,
    /// True after an edit.
    pub replaced: bool,
}

/// A user trade (§8.6), key fields.
#[derive(Debug, Clone, Copy)]
pub struct UserTrade<'a> {
    /// Trade id.
    pub trade_id: &'a str,
    /// Per-instrument sequence.
    pub trade_seq: Option<u64>,
    /// The order filled.
    pub order_id: &'a str,
    /// Instrument.
    pub instrument_name: &'a str,
    /// Time, ms.
    pub timestamp: i64,
    /// Side.
    pub direction: Direction,
    /// Fill price.
    pub price: Decimal8,
    /// Fill amount.
    pub amount: Decimal8,
    /// Fee (negative = rebate).
    pub fee: Option<Decimal8>,
    /// Fee currency.
    pub fee_currency: Option<&'a str>,
    /// `M` maker / `T` taker.
    pub liquidity: Option<&'a str>,
    /// Order state after the fill.
    pub state: Option<&'a str>,
    /// Order label (`""` when none).
    pub label: &'a str,
}

/// A public trade (§7.5), key fields.
#[derive(Debug, Clone, Copy)]
pub struct PublicTrade<'a> {
    /// Trade id.
    pub trade_id: &'a str,
    /// Per-instrument sequence.
    pub trade_seq: Option<u64>,
    /// Instrument.
    pub instrument_name: &'a str,
    /// Time, ms.
    pub timestamp: i64,
    /// Taker side.
    pub direction: Direction,
    /// Price.
    pub price: Decimal8,
    /// Amount.
    pub amount: Decimal8,
    /// Implied vol (options), percent.
    pub iv: Option<f64>,
}

/// A position (§8.7), key fields. Money fields are the venue's report rounded to 1e-8.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// Instrument.
    pub instrument_name: &'a str,
    /// `option`, `future`, ...
    pub kind: &'a str,
    /// Side.
    pub direction: Direction,
    /// Signed size (negative = short).
    pub size: Decimal8,
    /// Average entry price.
    pub average_price: Option<Decimal8>,
    /// Mark price.
    pub mark_price: Option<Decimal8>,
    /// Floating P&L.
    pub floating_profit_loss: Option<Decimal8>,
    /// Initial margin.
    pub initial_margin: Option<Decimal8>,
    /// Maintenance margin.
    pub maintenance_margin: Option<Decimal8>,
    /// Delta (not a price: float).
    pub delta: Option<f64>,
}

/// Rate-limit pair from `get_account_summary.limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBurst {
    /// Sustained rate.
    pub rate: i64,
    /// Burst.
    pub burst: i64,
}

/// Account summary / `user.portfolio` (§8.8), key fields rounded to 1e-8.
#[derive(Debug, Clone, Copy)]
pub struct AccountSummary<'a> {
    /// Currency.
    pub currency: &'a str,
    /// Balance.
    pub balance: Option<Decimal8>,
    /// Equity.
    pub equity: Option<Decimal8>,
    /// Available funds.
    pub available_funds: Option<Decimal8>,
    /// Margin balance.
    pub margin_balance: Option<Decimal8>,
    /// Initial margin.
    pub initial_margin: Option<Decimal8>,
    /// Maintenance margin.
    pub maintenance_margin: Option<Decimal8>,
    /// `limits.non_matching_engine`.
    pub limits_non_matching: Option<RateBurst>,
    /// `limits.matching_engine.trading.total` (or the older `limits.matching_engine`).
    pub limits_matching: Option<RateBurst>,
}

/// One `tick_size_steps` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickStep {
    /// Above this price ...
    pub above_price: Decimal8,
    /// ... the tick is this.
    pub tick_size: Decimal8,
}

/// An instrument (§7.2), key fields.
#[derive(Debug, Clone)]
pub struct Instrument<'a> {
    /// Name.
    pub instrument_name: &'a str,
    /// `option`, `future`, ...
    pub kind: &'a str,
    /// Base tick.
    pub tick_size: Decimal8,
    /// Tick steps (may be empty).
    pub tick_size_steps: Vec<TickStep>,
    /// Minimum order amount.
    pub min_trade_amount: Decimal8,
    /// Contract size.
    pub contract_size: Decimal8,
    /// Expiry, ms.
    pub expiration_timestamp: i64,
    /// Strike (options).
    pub strike: Option<Decimal8>,
    /// `call`/`put` (options).
    pub option_type: Option<&'a str>,
    /// Tradable now.
    pub is_active: bool,
    /// Base currency.
    pub base_currency: Option<&'a str>,
    /// Maker fee rate.
    pub maker_commission: Option<Decimal8>,
    /// Taker fee rate.
    pub taker_commission: Option<Decimal8>,
}

/// A book level action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelAction {
    /// Level added.
    New,
    /// New total at an existing level.
    Change,
    /// Level removed.
    Delete,
    /// A `[price, amount]` pair from a top-N book (replace semantics).
    Set,
}

/// One book level from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// What to do.
    pub action: LevelAction,
    /// Price.
    pub price: Decimal8,
    /// Amount.
    pub amount: Decimal8,
}

/// Book message kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookKind {
    /// First message of an incremental book.
    Snapshot,
    /// Incremental change.
    Change,
    /// A full top-N picture (grouped channel or `get_order_book`).
    TopN,
}

impl BookKind {
    /// Wire-ish text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Change => "change",
            Self::TopN => "top_n",
        }
    }
}

/// A decoded book message. Levels live in the decoder's reusable buffers.
#[derive(Debug, Clone, Copy)]
pub struct BookUpdate<'a> {
    /// Instrument.
    pub instrument_name: &'a str,
    /// Kind.
    pub kind: BookKind,
    /// This message's change id.
    pub change_id: u64,
    /// The previous message's change id (changes only).
    pub prev_change_id: Option<u64>,
    /// Venue time, ms.
    pub timestamp: i64,
    /// Bid levels, wire order.
    pub bids: &'a [Level],
    /// Ask levels, wire order.
    pub asks: &'a [Level],
}

/// A ticker (§7.4), key fields.
#[derive(Debug, Clone, Copy)]
pub struct Ticker<'a> {
    /// Instrument.
    pub instrument_name: &'a str,
    /// Venue time, ms.
    pub timestamp: i64,
    /// Best bid (None when the side is empty).
    pub best_bid_price: Option<Decimal8>,
    /// Best bid amount.
    pub best_bid_amount: Option<Decimal8>,
    /// Best ask.
    pub best_ask_price: Option<Decimal8>,
    /// Best ask amount.
    pub best_ask_amount: Option<Decimal8>,
    /// Mark.
    pub mark_price: Option<Decimal8>,
    /// Index.
    pub index_price: Option<Decimal8>,
    /// Last trade.
    pub last_price: Option<Decimal8>,
    /// Mark IV, percent.
    pub mark_iv: Option<f64>,
    /// Underlying price.
    pub underlying_price: Option<Decimal8>,
    /// `open` / `closed`.
    pub state: Option<&'a str>,
}

/// `markprice.options.*` element.
#[derive(Debug, Clone, Copy)]
pub struct MarkPrice<'a> {
    /// Instrument.
    pub instrument_name: &'a str,
    /// Mark price.
    pub mark_price: Decimal8,
    /// IV (fraction).
    pub iv: Option<f64>,
}

/// `platform_state` payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformState<'a> {
    /// `maintenance` flag when present.
    pub maintenance: Option<bool>,
    /// Index named in a lock message.
    pub price_index: Option<&'a str>,
    /// Lock state for that index.
    pub locked: Option<bool>,
}

/// Typed notification payloads.
#[derive(Debug)]
pub enum NotificationData<'a> {
    /// `book.*`.
    Book(BookUpdate<'a>),
    /// `ticker.*` / `incremental_ticker.*`.
    Ticker(Ticker<'a>),
    /// `trades.*`.
    Trades(Vec<PublicTrade<'a>>),
    /// `user.orders.*` (one object on `raw`, an array otherwise).
    Orders(Vec<Order<'a>>),
    /// `user.trades.*`.
    UserTrades(Vec<UserTrade<'a>>),
    /// `user.portfolio.*`.
    Portfolio(AccountSummary<'a>),
    /// `user.changes.*`.
    UserChanges {
        /// Instrument.
        instrument_name: &'a str,
        /// Orders that changed.
        orders: Vec<Order<'a>>,
        /// New fills.
        trades: Vec<UserTrade<'a>>,
        /// Positions that changed.
        positions: Vec<Position<'a>>,
    },
    /// `deribit_price_index.*`.
    PriceIndex {
        /// Index name.
        index_name: &'a str,
        /// Price.
        price: Decimal8,
        /// Time, ms.
        timestamp: i64,
    },
    /// `markprice.options.*`.
    MarkPrices(Vec<MarkPrice<'a>>),
    /// `platform_state`.
    PlatformState(PlatformState<'a>),
    /// A channel this client does not model; accepted, not interpreted.
    Other,
}

/// A channel notification.
#[derive(Debug)]
pub struct Notification<'a> {
    /// Channel name.
    pub channel: &'a str,
    /// Typed data.
    pub data: NotificationData<'a>,
}

impl Message<'_> {
    /// Short kind name (`stoic decode`'s `kind`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Request(_) => "request",
            Self::Response(_) => "response",
            Self::Error(_) => "error",
            Self::Heartbeat(_) => "heartbeat",
            Self::Notification(_) => "notification",
        }
    }
}

/// Decodes frames, reusing its parse buffers and book-level arrays between calls.
pub struct Decoder {
    buffers: simd_json::Buffers,
    /// The parse tape, reused (emptied and re-lifetimed between frames).
    tape: Option<simd_json::Tape<'static>>,
    bids: Vec<Level>,
    asks: Vec<Level>,
    levels_max: usize,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").field("levels_max", &self.levels_max).finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with [`LEVELS_PER_SIDE_MAX`] level capacity, allocated now.
    #[must_use]
    pub fn new() -> Self {
        Self::with_levels_max(LEVELS_PER_SIDE_MAX)
    }

    /// A decoder keeping at most `levels_max` levels per side per message.
    #[must_use]
    pub fn with_levels_max(levels_max: usize) -> Self {
        Self {
            buffers: simd_json::Buffers::new(4096),
            tape: Some(simd_json::Tape(Vec::with_capacity(1024))),
            bids: Vec::with_capacity(levels_max),
            asks: Vec::with_capacity(levels_max),
            levels_max,
        }
    }

    /// Decodes one frame. simd-json rewrites `input` in place (unescaping strings), so
    /// the caller passes a scratch copy if it needs the original bytes.
    ///
    /// # Errors
    /// A [`DecodeError`] naming what was wrong; never panics.
    pub fn decode<'a>(&'a mut self, input: &'a mut [u8]) -> R<Message<'a>> {
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(DecodeError::Empty);
        }
        let Self { buffers, tape, bids, asks, levels_max } = self;
        bids.clear();
        asks.clear();
        let mut t: simd_json::Tape<'a> =
            tape.take().map_or_else(|| simd_json::Tape(Vec::new()), simd_json::Tape::reset);
        if simd_json::fill_tape(input, buffers, &mut t).is_err() {
            *tape = Some(t.reset());
            return Err(DecodeError::InvalidJson);
        }
        // The feed's path: a book notification straight from the tape, allocating nothing.
        let book = super::book_tape::book_notification(t.as_value(), bids, asks, *levels_max);
        if let Some(f) = book {
            *tape = Some(t.reset());
            let bids: &'a [Level] = bids;
            let asks: &'a [Level] = asks;
            return Ok(Message::Notification(Notification {
                channel: f.channel,
                data: NotificationData::Book(BookUpdate {
                    instrument_name: f.instrument_name,
                    kind: f.kind,
                    change_id: f.change_id,
                    prev_change_id: f.prev_change_id,
                    timestamp: f.timestamp,
                    bids,
                    asks,
                }),
            }));
        }
        bids.clear();
        asks.clear();
        let value = super::book_tape::to_dom(t.as_value());
        *tape = Some(t.reset());
        let levels = LevelSink { bids, asks, max: *levels_max };
        decode_value(&value, levels)
    }
}

/// The general path alone (a borrowed DOM parsed directly, as before the tape path existed):
/// the reference the tape path is checked against.
#[cfg(test)]
pub(super) fn decode_via_dom<'a>(
    input: &'a mut [u8],
    bids: &'a mut Vec<Level>,
    asks: &'a mut Vec<Level>,
    max: usize,
) -> R<Message<'a>> {
    let value = simd_json::to_borrowed_value(input).map_err(|_| DecodeError::InvalidJson)?;
    decode_value(&value, LevelSink { bids, asks, max })
}

struct LevelSink<'s> {
    bids: &'s mut Vec<Level>,
    asks: &'s mut Vec<Level>,
    max: usize,
}

fn decode_value<'a>(v: &Value<'a>, levels: LevelSink<'a>) -> R<Message<'a>> {
    let obj = as_obj(v, "message")?;
    if let Some(ver) = obj.get("jsonrpc") {
        if str_of(ver, "jsonrpc")? != "2.0" {
            return Err(DecodeError::BadJsonRpcVersion);
        }
    }
    let id = match obj.get("id") {
        None | Some(Value::Static(StaticNode::Null)) => None,
        Some(Value::Static(StaticNode::U64(n))) => Some(RequestId::Num(*n)),
        Some(Value::Static(StaticNode::I64(n))) => {
            Some(RequestId::Num(u64::try_from(*n).map_err(|_| DecodeError::BadInteger("id"))?))
        }
        Some(s @ Value::String(_)) => Some(RequestId::Str(str_of(s, "id")?)),
        Some(_) => return Err(DecodeError::WrongType("id")),
    };
    if let Some(err) = obj.get("error") {
        let e = as_obj(err, "error")?;
        let code = int_req(e, "code")?;
        let message = opt_str(e, "message")?.unwrap_or("");
        let (reason, param) = match e.get("data") {
            Some(Value::Object(d)) => (opt_str(d, "reason")?, opt_str(d, "param")?),
            _ => (None, None),
        };
        return Ok(Message::Error(ErrorReply {
            id,
            meta: meta(obj)?,
            code: VenueErrorCode::from_code(code),
            message,
            reason,
            param,
        }));
    }
    if let Some(result) = obj.get("result") {
        let result = decode_result(result, levels)?;
        return Ok(Message::Response(Response { id, meta: meta(obj)?, result }));
    }
    let method = match obj.get("method") {
        Some(m) => str_of(m, "method")?,
        None => return Err(DecodeError::NotJsonRpc),
    };
    let params = obj.get("params");
    match method {
        "heartbeat" => {
            let p = as_obj(params.ok_or(DecodeError::MissingField("params"))?, "params")?;
            match str_req(p, "type")? {
                "heartbeat" => Ok(Message::Heartbeat(HeartbeatKind::Heartbeat)),
                "test_request" => Ok(Message::Heartbeat(HeartbeatKind::TestRequest)),
                _ => Err(DecodeError::UnknownValue("type")),
            }
        }
        "subscription" if id.is_none() => {
            let p = as_obj(params.ok_or(DecodeError::MissingField("params"))?, "params")?;
            let channel = str_req(p, "channel")?;
            let data = p.get("data").ok_or(DecodeError::MissingField("data"))?;
            let data = decode_channel(channel, data, levels)?;
            Ok(Message::Notification(Notification { channel, data }))
        }
        _ => {
            let p = match params {
                None => None,
                Some(Value::Object(o)) => Some(&**o),
                // Positional params are not part of Deribit's protocol (§2.1).
                Some(_) => return Err(DecodeError::WrongType("params")),
            };
            let (instrument, label, amount, price, channels) = match p {
                None => (None, None, None, None, None),
                Some(p) => (
                    opt_str(p, "instrument_name")?,
                    opt_str(p, "label")?,
                    opt_dec(p, "amount")?,
                    match p.get("price") {
                        Some(Value::String(_)) | None => None,
                        Some(v) => Some(dec_of(v, "price")?),
                    },
                    match p.get("channels") {
                        None => None,
                        Some(Value::Array(a)) => Some(a.len()),
                        Some(_) => return Err(DecodeError::WrongType("channels")),
                    },
                ),
            };
            Ok(Message::Request(Request { id, method, instrument, label, amount, price, channels }))
        }
    }
}

fn meta(obj: &Object<'_>) -> R<ReplyMeta> {
    Ok(ReplyMeta {
        us_in: opt_u64(obj, "usIn")?,
        us_out: opt_u64(obj, "usOut")?,
        us_diff: opt_u64(obj, "usDiff")?,
        testnet: opt_bool(obj, "testnet")?,
    })
}

fn decode_result<'a>(v: &Value<'a>, levels: LevelSink<'a>) -> R<ResultPayload<'a>> {
    match v {
        Value::String(_) => {
            let s = str_of(v, "result")?;
            Ok(if s == "ok" { ResultPayload::Ok } else { ResultPayload::Text(s) })
        }
        Value::Static(StaticNode::I64(n)) => Ok(ResultPayload::Integer(*n)),
        Value::Static(StaticNode::U64(n)) => Ok(ResultPayload::Integer(
            i64::try_from(*n).map_err(|_| DecodeError::BadInteger("result"))?,
        )),
        Value::Static(_) => Err(DecodeError::WrongType("result")),
        Value::Array(items) => {
            let Some(first) = items.first() else { return Ok(ResultPayload::EmptyList) };
            match first {
                Value::String(_) => {
                    let mut out = Vec::with_capacity(items.len());
                    for i in items.iter() {
                        out.push(str_of(i, "result[]")?);
                    }
                    Ok(ResultPayload::Channels(out))
                }
                // `get_user_trades_by_order` answers a plain array of trades (§8.4); trades
                // carry `order_id` too, so `trade_id` must be checked first.
                Value::Object(o) if o.contains_key("trade_id") => {
                    Ok(ResultPayload::UserTrades(list(items, user_trade)?, false))
                }
                Value::Object(o) if o.contains_key("order_id") => {
                    Ok(ResultPayload::Orders(list(items, order)?))
                }
                Value::Object(o) if o.contains_key("tick_size") => {
                    Ok(ResultPayload::Instruments(list(items, instrument)?))
                }
                Value::Object(o) if o.contains_key("size") => {
                    Ok(ResultPayload::Positions(list(items, position)?))
                }
                Value::Object(_) => Ok(ResultPayload::Other),
                _ => Err(DecodeError::WrongType("result[]")),
            }
        }
        Value::Object(o) => {
            if o.contains_key("access_token") {
                Ok(ResultPayload::Auth(auth(o)?))
            } else if let (Some(ord), Some(tr)) = (o.get("order"), o.get("trades")) {
                Ok(ResultPayload::OrderWithTrades(order(ord)?, list_of(tr, user_trade)?))
            } else if o.contains_key("order_id") {
                Ok(ResultPayload::Order(order(v)?))
            } else if o.contains_key("trades") && o.contains_key("has_more") {
                let has_more = opt_bool(o, "has_more")?.unwrap_or(false);
                Ok(ResultPayload::UserTrades(
                    list_of(
                        o.get("trades").ok_or(DecodeError::MissingField("trades"))?,
                        user_trade,
                    )?,
                    has_more,
                ))
            } else if o.contains_key("bids") && o.contains_key("asks") {
                let book = book(o, BookKind::TopN, levels)?;
                Ok(ResultPayload::OrderBook(book, ticker(o)?))
            } else if o.contains_key("best_bid_price") || o.contains_key("mark_price") {
                if o.contains_key("size") {
                    Ok(ResultPayload::Position(position(v)?))
                } else {
                    Ok(ResultPayload::Ticker(ticker(o)?))
                }
            } else if o.contains_key("tick_size") {
                Ok(ResultPayload::Instrument(instrument(v)?))
            } else if o.contains_key("balance") && o.contains_key("currency") {
                Ok(ResultPayload::AccountSummary(account(o)?))
            } else if let Some(ver) = o.get("version") {
                Ok(ResultPayload::Version(str_of(ver, "version")?))
            } else {
                Ok(ResultPayload::Other)
            }
        }
    }
}

fn decode_channel<'a>(
    channel: &'a str,
    data: &Value<'a>,
    levels: LevelSink<'a>,
) -> R<NotificationData<'a>> {
    let mut parts = channel.split('.');
    let head = parts.next().unwrap_or("");
    Ok(match head {
        "book" => {
            let n = channel.split('.').count();
            let o = as_obj(data, "data")?;
            let kind = match n {
                // book.{instrument}.{interval}: snapshot/change by `type`.
                3 => match str_req(o, "type")? {
                    "snapshot" => BookKind::Snapshot,
                    "change" => BookKind::Change,
                    _ => return Err(DecodeError::UnknownValue("type")),
                },
                // book.{instrument}.{group}.{depth}.{interval}: full top-N.
                5 => BookKind::TopN,
                _ => return Err(DecodeError::BadChannel),
            };
            NotificationData::Book(book(o, kind, levels)?)
        }
        "ticker" | "incremental_ticker" | "quote" => {
            NotificationData::Ticker(ticker(as_obj(data, "data")?)?)
        }
        "trades" => NotificationData::Trades(list_of(data, public_trade)?),
        "user" => match parts.next() {
            Some("orders") => NotificationData::Orders(match data {
                Value::Array(items) => list(items, order)?,
                _ => vec![order(data)?],
            }),
            Some("trades") => NotificationData::UserTrades(list_of(data, user_trade)?),
            Some("portfolio") => NotificationData::Portfolio(account(as_obj(data, "data")?)?),
            Some("changes") => {
                let o = as_obj(data, "data")?;
                NotificationData::UserChanges {
                    instrument_name: str_req(o, "instrument_name")?,
                    orders: opt_list(o, "orders", order)?,
                    trades: opt_list(o, "trades", user_trade)?,
                    positions: opt_list(o, "positions", position)?,
                }
            }
            Some(_) => NotificationData::Other,
            None => return Err(DecodeError::BadChannel),
        },
        "deribit_price_index" => {
            let o = as_obj(data, "data")?;
            NotificationData::PriceIndex {
                index_name: str_req(o, "index_name")?,
                price: dec_req(o, "price")?,
                timestamp: int_req(o, "timestamp")?,
            }
        }
        "markprice" => NotificationData::MarkPrices(list_of(data, |v| {
            let o = as_obj(v, "data[]")?;
            Ok(MarkPrice {
                instrument_name: str_req(o, "instrument_name")?,
                mark_price: opt_dec_rounded(o, "mark_price")?
                    .ok_or(DecodeError::MissingField("mark_price"))?,
                iv: opt_f64(o, "iv")?,
            })
        })?),
        "platform_state" => {
            let o = as_obj(data, "data")?;
            NotificationData::PlatformState(PlatformState {
                maintenance: opt_bool(o, "maintenance")?,
                price_index: opt_str(o, "price_index")?,
                locked: opt_bool(o, "locked")?,
            })
        }
        "" => return Err(DecodeError::BadChannel),
        _ => NotificationData::Other,
    })
}

fn book<'a>(o: &Object<'a>, kind: BookKind, levels: LevelSink<'a>) -> R<BookUpdate<'a>> {
    let LevelSink { bids: bid_buf, asks: ask_buf, max } = levels;
    let instrument_name = str_req(o, "instrument_name")?;
    let change_id = u64_req(o, "change_id")?;
    let prev_change_id = opt_u64(o, "prev_change_id")?;
    if kind == BookKind::Change && prev_change_id.is_none() {
        return Err(DecodeError::MissingField("prev_change_id"));
    }
    let timestamp = int_req(o, "timestamp")?;
    fill_levels(o.get("bids"), "bids", kind, &mut *bid_buf, max)?;
    fill_levels(o.get("asks"), "asks", kind, &mut *ask_buf, max)?;
    // The sink is consumed here: its `&'a mut` buffers downgrade to the `&'a` slices the
    // message hands out. At most one book appears per message, so one sink suffices.
    let bids: &'a [Level] = bid_buf;
    let asks: &'a [Level] = ask_buf;
    Ok(BookUpdate { instrument_name, kind, change_id, prev_change_id, timestamp, bids, asks })
}

fn fill_levels(
    side: Option<&Value<'_>>,
    field: &'static str,
    kind: BookKind,
    out: &mut Vec<Level>,
    max: usize,
) -> R<()> {
    let Some(side) = side else { return Err(DecodeError::MissingField(field)) };
    let Value::Array(items) = side else { return Err(DecodeError::WrongType(field)) };
    if items.len() > max {
        return Err(DecodeError::TooManyLevels);
    }
    for item in items.iter() {
        let Value::Array(l) = item else { return Err(DecodeError::BadBookLevel) };
        let level = match (kind, l.as_slice()) {
            (BookKind::Snapshot | BookKind::Change, [a, p, q]) => {
                let action = match a {
                    Value::String(s) => match &**s {
                        "new" => LevelAction::New,
                        "change" => LevelAction::Change,
                        "delete" => LevelAction::Delete,
                        _ => return Err(DecodeError::UnknownValue("action")),
                    },
                    _ => return Err(DecodeError::BadBookLevel),
                };
                if kind == BookKind::Snapshot && action != LevelAction::New {
                    return Err(DecodeError::UnknownValue("action"));
                }
                Level { action, price: dec_of(p, "price")?, amount: dec_of(q, "amount")? }
            }
            (BookKind::TopN, [p, q]) => Level {
                action: LevelAction::Set,
                price: dec_of(p, "price")?,
                amount: dec_of(q, "amount")?,
            },
            _ => return Err(DecodeError::BadBookLevel),
        };
        // Prices may be negative (combo books); a negative amount never is.
        if level.amount.raw < 0 {
            return Err(DecodeError::BadBookLevel);
        }
        out.push(level);
    }
    Ok(())
}

fn ticker<'a>(o: &Object<'a>) -> R<Ticker<'a>> {
    Ok(Ticker {
        instrument_name: str_req(o, "instrument_name")?,
        timestamp: int_req(o, "timestamp")?,
        best_bid_price: opt_dec(o, "best_bid_price")?,
        best_bid_amount: opt_dec(o, "best_bid_amount")?,
        best_ask_price: opt_dec(o, "best_ask_price")?,
        best_ask_amount: opt_dec(o, "best_ask_amount")?,
        mark_price: opt_dec_rounded(o, "mark_price")?,
        index_price: opt_dec_rounded(o, "index_price")?,
        last_price: opt_dec(o, "last_price")?,
        mark_iv: opt_f64(o, "mark_iv")?,
        underlying_price: opt_dec_rounded(o, "underlying_price")?,
        state: opt_str(o, "state")?,
    })
}

fn order<'a>(v: &Value<'a>) -> R<Order<'a>> {
    let o = as_obj(v, "order")?;
    Ok(Order {
        order_id: str_req(o, "order_id")?,
        instrument_name: str_req(o, "instrument_name")?,
        direction: direction(o)?,
        amount: dec_req(o, "amount")?,
        filled_amount: opt_dec(o, "filled_amount")?.unwrap_or(Decimal8::ZERO),
        price: match o.get("price") {
            Some(Value::String(s)) if &**s == "market_price" => OrderPrice::Market,
            Some(Value::String(_)) => return Err(DecodeError::UnknownValue("price")),
            Some(p) => OrderPrice::Limit(dec_of(p, "price")?),
            None => return Err(DecodeError::MissingField("price")),
        },
        average_price: opt_dec(o, "average_price")?,
        order_type: str_req(o, "order_type")?,
        order_state: OrderState::parse(str_req(o, "order_state")?, "order_state")?,
        time_in_force: opt_str(o, "time_in_force")?.unwrap_or("good_til_cancelled"),
        post_only: opt_bool(o, "post_only")?.unwrap_or(false),
        reduce_only: opt_bool(o, "reduce_only")?.unwrap_or(false),
        label: opt_str(o, "label")?.unwrap_or(""),
        creation_timestamp: int_req(o, "creation_timestamp")?,
        last_update_timestamp: int_req(o, "last_update_timestamp")?,
        cancel_reason: opt_str(o, "cancel_reason")?,
        replaced: opt_bool(o, "replaced")?.unwrap_or(false),
    })
}

fn user_trade<'a>(v: &Value<'a>) -> R<UserTrade<'a>> {
    let o = as_obj(v, "trade")?;
    Ok(UserTrade {
        trade_id: str_req(o, "trade_id")?,
        trade_seq: opt_u64(o, "trade_seq")?,
        order_id: str_req(o, "order_id")?,
        instrument_name: str_req(o, "instrument_name")?,
        timestamp: int_req(o, "timestamp")?,
        direction: direction(o)?,
        price: dec_req(o, "price")?,
        amount: dec_req(o, "amount")?,
        fee: opt_dec(o, "fee")?,
        fee_currency: opt_str(o, "fee_currency")?,
        liquidity: opt_str(o, "liquidity")?,
        state: opt_str(o, "state")?,
        label: opt_str(o, "label")?.unwrap_or(""),
    })
}

fn public_trade<'a>(v: &Value<'a>) -> R<PublicTrade<'a>> {
    let o = as_obj(v, "trade")?;
    Ok(PublicTrade {
        trade_id: str_req(o, "trade_id")?,
        trade_seq: opt_u64(o, "trade_seq")?,
        instrument_name: str_req(o, "instrument_name")?,
        timestamp: int_req(o, "timestamp")?,
        direction: direction(o)?,
        price: dec_req(o, "price")?,
        amount: dec_req(o, "amount")?,
        iv: opt_f64(o, "iv")?,
    })
}

fn position<'a>(v: &Value<'a>) -> R<Position<'a>> {
    let o = as_obj(v, "position")?;
    Ok(Position {
        instrument_name: str_req(o, "instrument_name")?,
        kind: str_req(o, "kind")?,
        direction: direction(o)?,
        size: dec_req(o, "size")?,
        average_price: opt_dec_rounded(o, "average_price")?,
        mark_price: opt_dec_rounded(o, "mark_price")?,
        floating_profit_loss: opt_dec_rounded(o, "floating_profit_loss")?,
        initial_margin: opt_dec_rounded(o, "initial_margin")?,
        maintenance_margin: opt_dec_rounded(o, "maintenance_margin")?,
        delta: opt_f64(o, "delta")?,
    })
}

fn account<'a>(o: &Object<'a>) -> R<AccountSummary<'a>> {
    let (mut nme, mut me) = (None, None);
    if let Some(Value::Object(l)) = o.get("limits") {
        if let Some(Value::Object(x)) = l.get("non_matching_engine") {
            nme = rate_burst(x)?;
        }
        if let Some(Value::Object(x)) = l.get("matching_engine") {
            me = match x.get("trading") {
                Some(Value::Object(t)) => match t.get("total") {
                    Some(Value::Object(tot)) => rate_burst(tot)?,
                    _ => None,
                },
                _ => rate_burst(x)?,
            };
        }
    }
    Ok(AccountSummary {
        currency: str_req(o, "currency")?,
        balance: opt_dec_rounded(o, "balance")?,
        equity: opt_dec_rounded(o, "equity")?,
        available_funds: opt_dec_rounded(o, "available_funds")?,
        margin_balance: opt_dec_rounded(o, "margin_balance")?,
        initial_margin: opt_dec_rounded(o, "initial_margin")?,
        maintenance_margin: opt_dec_rounded(o, "maintenance_margin")?,
        limits_non_matching: nme,
        limits_matching: me,
    })
}

fn rate_burst(o: &Object<'_>) -> R<Option<RateBurst>> {
    match (opt_int(o, "rate")?, opt_int(o, "burst")?) {
        (Some(rate), Some(burst)) => Ok(Some(RateBurst { rate, burst })),
        _ => Ok(None),
    }
}

fn instrument<'a>(v: &Value<'a>) -> R<Instrument<'a>> {
    let o = as_obj(v, "instrument")?;
    let tick_size_steps = match o.get("tick_size_steps") {
        None | Some(Value::Static(StaticNode::Null)) => Vec::new(),
        Some(s) => list_of(s, |e| {
            let e = as_obj(e, "tick_size_steps[]")?;
            Ok(TickStep {
                above_price: dec_req(e, "above_price")?,
                tick_size: dec_req(e, "tick_size")?,
            })
        })?,
    };
    Ok(Instrument {
        instrument_name: str_req(o, "instrument_name")?,
        kind: str_req(o, "kind")?,
        tick_size: dec_req(o, "tick_size")?,
        tick_size_steps,
        min_trade_amount: dec_req(o, "min_trade_amount")?,
        contract_size: dec_req(o, "contract_size")?,
        expiration_timestamp: int_req(o, "expiration_timestamp")?,
        strike: opt_dec(o, "strike")?,
        option_type: opt_str(o, "option_type")?,
        is_active: opt_bool(o, "is_active")?.unwrap_or(false),
        base_currency: opt_str(o, "base_currency")?,
        maker_commission: opt_dec(o, "maker_commission")?,
        taker_commission: opt_dec(o, "taker_commission")?,
    })
}

fn auth<'a>(o: &Object<'a>) -> R<AuthResult<'a>> {
    Ok(AuthResult {
        access_token: str_req(o, "access_token")?,
        refresh_token: str_req(o, "refresh_token")?,
        expires_in: int_req(o, "expires_in")?,
        scope: opt_str(o, "scope")?.unwrap_or(""),
        token_type: opt_str(o, "token_type")?.unwrap_or("bearer"),
    })
}

fn direction(o: &Object<'_>) -> R<Direction> {
    match str_req(o, "direction")? {
        "buy" => Ok(Direction::Buy),
        "sell" => Ok(Direction::Sell),
        "zero" => Ok(Direction::Zero),
        _ => Err(DecodeError::UnknownValue("direction")),
    }
}

// ---- small typed accessors over the borrowed DOM ----

fn as_obj<'v, 'a>(v: &'v Value<'a>, what: &'static str) -> R<&'v Object<'a>> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(DecodeError::NotAnObject(what)),
    }
}

fn str_of<'a>(v: &Value<'a>, field: &'static str) -> R<&'a str> {
    match v {
        // simd-json unescapes strings in place, so a borrowed DOM's strings always borrow
        // the input; an owned one could not outlive the DOM and is refused, not cloned.
        Value::String(Cow::Borrowed(s)) => Ok(s),
        _ => Err(DecodeError::WrongType(field)),
    }
}

fn str_req<'a>(o: &Object<'a>, field: &'static str) -> R<&'a str> {
    str_of(o.get(field).ok_or(DecodeError::MissingField(field))?, field)
}

fn opt_str<'a>(o: &Object<'a>, field: &'static str) -> R<Option<&'a str>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(v) => str_of(v, field).map(Some),
    }
}

pub(super) fn dec_of(v: &Value<'_>, field: &'static str) -> R<Decimal8> {
    let r = match v {
        Value::Static(StaticNode::I64(n)) => Decimal8::from_i64(*n),
        Value::Static(StaticNode::U64(n)) => Decimal8::from_u64(*n),
        Value::Static(StaticNode::F64(f)) => Decimal8::from_f64(*f),
        _ => return Err(DecodeError::WrongType(field)),
    };
    r.map_err(|error| DecodeError::BadNumber { field, error })
}

fn dec_req(o: &Object<'_>, field: &'static str) -> R<Decimal8> {
    dec_of(o.get(field).ok_or(DecodeError::MissingField(field))?, field)
}

fn opt_dec(o: &Object<'_>, field: &'static str) -> R<Option<Decimal8>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(v) => dec_of(v, field).map(Some),
    }
}

/// Reported (derived) money values such as margins, P&L and mark prices can carry more
/// than 8 decimals; they are informational, so they are rounded to 1e-8 (half away from
/// zero) instead of refused. Order prices, amounts and fees never go through this.
fn opt_dec_rounded(o: &Object<'_>, field: &'static str) -> R<Option<Decimal8>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(Value::Static(StaticNode::F64(f))) => match Decimal8::from_f64(*f) {
            Err(DecimalError::TooPrecise) => {
                let scaled = (f * 1e8).round();
                if scaled.abs() >= 9.2e18 {
                    return Err(DecodeError::BadNumber { field, error: DecimalError::Overflow });
                }
                #[allow(clippy::cast_possible_truncation)]
                Ok(Some(Decimal8::from_raw(scaled as i64)))
            }
            r => r.map(Some).map_err(|error| DecodeError::BadNumber { field, error }),
        },
        Some(v) => dec_of(v, field).map(Some),
    }
}

pub(super) fn int_of(v: &Value<'_>, field: &'static str) -> R<i64> {
    match v {
        Value::Static(StaticNode::I64(n)) => Ok(*n),
        Value::Static(StaticNode::U64(n)) => {
            i64::try_from(*n).map_err(|_| DecodeError::BadInteger(field))
        }
        // Integral floats (`139.0`) are legal JSON for whole numbers.
        Value::Static(StaticNode::F64(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Ok(*f as i64)
        }
        Value::Static(StaticNode::F64(_)) => Err(DecodeError::BadInteger(field)),
        _ => Err(DecodeError::WrongType(field)),
    }
}

fn int_req(o: &Object<'_>, field: &'static str) -> R<i64> {
    int_of(o.get(field).ok_or(DecodeError::MissingField(field))?, field)
}

fn opt_int(o: &Object<'_>, field: &'static str) -> R<Option<i64>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(v) => int_of(v, field).map(Some),
    }
}

fn u64_req(o: &Object<'_>, field: &'static str) -> R<u64> {
    let n = int_req(o, field)?;
    u64::try_from(n).map_err(|_| DecodeError::BadInteger(field))
}

fn opt_u64(o: &Object<'_>, field: &'static str) -> R<Option<u64>> {
    match opt_int(o, field)? {
        None => Ok(None),
        Some(n) => u64::try_from(n).map(Some).map_err(|_| DecodeError::BadInteger(field)),
    }
}

fn opt_bool(o: &Object<'_>, field: &'static str) -> R<Option<bool>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(Value::Static(StaticNode::Bool(b))) => Ok(Some(*b)),
        Some(_) => Err(DecodeError::WrongType(field)),
    }
}

fn opt_f64(o: &Object<'_>, field: &'static str) -> R<Option<f64>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(None),
        Some(Value::Static(StaticNode::F64(f))) => Ok(Some(*f)),
        #[allow(clippy::cast_precision_loss)]
        Some(Value::Static(StaticNode::I64(n))) => Ok(Some(*n as f64)),
        #[allow(clippy::cast_precision_loss)]
        Some(Value::Static(StaticNode::U64(n))) => Ok(Some(*n as f64)),
        Some(_) => Err(DecodeError::WrongType(field)),
    }
}

fn list<'a, T>(items: &[Value<'a>], f: impl Fn(&Value<'a>) -> R<T>) -> R<Vec<T>> {
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        out.push(f(i)?);
    }
    Ok(out)
}

fn list_of<'a, T>(v: &Value<'a>, f: impl Fn(&Value<'a>) -> R<T>) -> R<Vec<T>> {
    match v {
        Value::Array(items) => list(items, f),
        _ => Err(DecodeError::WrongType("list")),
    }
}

fn opt_list<'a, T>(
    o: &Object<'a>,
    field: &'static str,
    f: impl Fn(&Value<'a>) -> R<T>,
) -> R<Vec<T>> {
    match o.get(field) {
        None | Some(Value::Static(StaticNode::Null)) => Ok(Vec::new()),
        Some(Value::Array(items)) => list(items, f),
        Some(_) => Err(DecodeError::WrongType(field)),
    }
}
