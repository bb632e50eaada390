//! Order intents, their canonical bytes and their hash (contract §5.4, §5.5).
//!
//! An [`OrderIntent`] is immutable once built: its canonical bytes and [`IntentHash`] are
//! computed in the constructor from the fields, so they cannot drift apart. Nothing in an
//! intent comes from the wall clock or a random source; the [`GroupId`] is derived from the
//! strategy id and the strategy's own decision key.
//!
//! ## Canonical bytes, layout version 1 (all integers little-endian)
//! ```text
//! [0]      u8   CANONICAL_LAYOUT_VERSION (1)
//! identity section — the IntentHash input (contract §5.4: instrument, side, qty_q,
//! limit_price_q, group_id, leg_idx; quantized values only, never time):
//!          u8   INTENT_HASH_VERSION (1)
//!          u8   instrument name length n, then n ASCII bytes
//!          u8   side (1 = buy, 2 = sell)
//!          i64  qty raw (1e-8 units)
//!          u8   limit price present (0/1), then i64 price raw (0 when absent)
//!          16   group id bytes
//!          u8   leg index
//! attribute section — carried to the WAL, not hashed:
//!          u8   strategy id length m, then m ASCII bytes
//!          u8   order type code      (OrderType::code)
//!          u8   time-in-force code   (TimeInForce::code)
//!          u8   flags: bit0 post_only, bit1 reduce_only, bit2 emergency_close
//!          u8   linked order type code (0 = none)
//!          u8   trigger price present, then i64 raw
//!          u8   contracts present, then i64
//! ```
//! Changing any of this is a new layout/hash version, never an edit in place.

use core::fmt;

use xxhash_rust::xxh64::xxh64;

use super::instrument::Instrument;
use super::metadata::InstrumentMeta;
use super::quantize::{quantize_price, quantize_qty};
use super::reason_codes::RejectReasonCode;
use super::units::{Price, Qty};

/// Version of the canonical byte layout above.
pub const CANONICAL_LAYOUT_VERSION: u8 = 1;
/// Version of the intent-hash input (the identity section).
pub const INTENT_HASH_VERSION: u8 = 1;
/// xxh64 seed of the intent hash. Fixed forever for version 1: a keyed or random seed would
/// break determinism across runs (DESIGN invariant 4).
pub const INTENT_HASH_SEED: u64 = 0;
/// Longest strategy id.
pub const STRATEGY_ID_LEN_MAX: usize = 32;
/// Upper bound of the canonical encoding (identity 77 + attributes 55 + version byte 1).
pub const CANONICAL_BYTES_LEN_MAX: usize = 160;

/// Seeds for the two halves of a derived [`GroupId`] and for `sid8`; arbitrary but fixed.
const GROUP_ID_SEED_HIGH: u64 = 0x5354_4f49_435f_4731; // "STOIC_G1"
const GROUP_ID_SEED_LOW: u64 = 0x5354_4f49_435f_4732; // "STOIC_G2"
const STRATEGY_SID_SEED: u64 = 0x5354_4f49_435f_5331; // "STOIC_S1"

/// Order direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// `private/buy`.
    Buy,
    /// `private/sell`.
    Sell,
}

impl Side {
    const fn code(self) -> u8 {
        match self {
            Self::Buy => 1,
            Self::Sell => 2,
        }
    }
    /// Wire form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

/// Every Deribit order `type`, so that preflight can see and refuse the forbidden ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderType {
    /// `limit` (the only type Stoic sends).
    Limit,
    /// `market`.
    Market,
    /// `stop_limit`.
    StopLimit,
    /// `stop_market`.
    StopMarket,
    /// `take_limit`.
    TakeLimit,
    /// `take_market`.
    TakeMarket,
    /// `market_limit`.
    MarketLimit,
    /// `trailing_stop`.
    TrailingStop,
}

impl OrderType {
    /// Canonical-bytes code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Limit => 1,
            Self::Market => 2,
            Self::StopLimit => 3,
            Self::StopMarket => 4,
            Self::TakeLimit => 5,
            Self::TakeMarket => 6,
            Self::MarketLimit => 7,
            Self::TrailingStop => 8,
        }
    }
    /// Wire form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Market => "market",
            Self::StopLimit => "stop_limit",
            Self::StopMarket => "stop_market",
            Self::TakeLimit => "take_limit",
            Self::TakeMarket => "take_market",
            Self::MarketLimit => "market_limit",
            Self::TrailingStop => "trailing_stop",
        }
    }
}

/// Deribit `time_in_force`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeInForce {
    /// `good_til_cancelled`.
    GoodTilCancelled,
    /// `good_til_day`.
    GoodTilDay,
    /// `fill_or_kill`.
    FillOrKill,
    /// `immediate_or_cancel`.
    ImmediateOrCancel,
}

impl TimeInForce {
    /// Canonical-bytes code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::GoodTilCancelled => 1,
            Self::GoodTilDay => 2,
            Self::FillOrKill => 3,
            Self::ImmediateOrCancel => 4,
        }
    }
    /// Wire form.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GoodTilCancelled => "good_til_cancelled",
            Self::GoodTilDay => "good_til_day",
            Self::FillOrKill => "fill_or_kill",
            Self::ImmediateOrCancel => "immediate_or_cancel",
        }
    }
}

/// Deribit `linked_order_type` (all forbidden by preflight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkedOrderType {
    /// `one_triggers_other`.
    OneTriggersOther,
    /// `one_cancels_other`.
    OneCancelsOther,
    /// `one_triggers_one_cancels_other`.
    OneTriggersOneCancelsOther,
}

impl LinkedOrderType {
    const fn code(self) -> u8 {
        match self {
            Self::OneTriggersOther => 1,
            Self::OneCancelsOther => 2,
            Self::OneTriggersOneCancelsOther => 3,
        }
    }
}

/// Why an identifier was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or longer than allowed.
    #[error("identifier length out of range")]
    Length,
    /// A character outside the allowed set.
    #[error("identifier has an invalid character")]
    InvalidChar,
}

/// A static strategy id (`strangle_btc_low_vol`): 1..=32 chars of `a-z 0-9 _`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StrategyId {
    bytes: [u8; STRATEGY_ID_LEN_MAX],
    len: u8,
}

impl StrategyId {
    /// Validates a strategy id.
    ///
    /// # Errors
    /// [`IdError`].
    pub fn new_checked(id: &str) -> Result<Self, IdError> {
        let raw = id.as_bytes();
        if raw.is_empty() || raw.len() > STRATEGY_ID_LEN_MAX {
            return Err(IdError::Length);
        }
        if !raw.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(IdError::InvalidChar);
        }
        let mut bytes = [0_u8; STRATEGY_ID_LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        // <= 32 by the check above.
        Ok(Self { bytes, len: raw.len() as u8 })
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// `sid8` of the label: the first 8 lower-case hex chars of a fixed-seed xxh64 of the id.
    #[must_use]
    pub fn sid8(&self) -> [u8; 8] {
        let hex = hex16(xxh64(self.as_bytes(), STRATEGY_SID_SEED));
        let mut out = [0_u8; 8];
        out.copy_from_slice(&hex[..8]);
        out
    }
}

impl fmt::Debug for StrategyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StrategyId({})", self.as_str())
    }
}

/// The 16-byte id shared by every leg of one group attempt. Derived, never random: the same
/// strategy and decision key always give the same id (so a restart rebuilds the same labels).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId([u8; 16]);

impl GroupId {
    /// Derives the id from the strategy and a key the strategy computes from its inputs (e.g.
    /// the market-event sequence that triggered the decision and the structure it chose).
    #[must_use]
    pub fn derive(strategy: &StrategyId, decision_key: &[u8]) -> Self {
        let mut input = [0_u8; STRATEGY_ID_LEN_MAX + 1];
        input[..usize::from(strategy.len)].copy_from_slice(strategy.as_bytes());
        // The length byte separates "ab"+"c" from "a"+"bc".
        input[STRATEGY_ID_LEN_MAX] = strategy.len;
        let prefix = xxh64(&input, 0);
        let key_hash = xxh64(decision_key, prefix);
        let high = xxh64(&key_hash.to_le_bytes(), GROUP_ID_SEED_HIGH ^ prefix);
        let low = xxh64(&key_hash.to_le_bytes(), GROUP_ID_SEED_LOW ^ prefix);
        let mut bytes = [0_u8; 16];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        Self(bytes)
    }

    /// From raw bytes (WAL replay).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Raw bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// 32 lower-case hex chars (UUID without dashes).
    #[must_use]
    pub fn to_hex(self) -> [u8; 32] {
        let mut out = [0_u8; 32];
        out[..16].copy_from_slice(&hex16(u64::from_be_bytes(first8(&self.0))));
        out[16..].copy_from_slice(&hex16(u64::from_be_bytes(last8(&self.0))));
        out
    }

    /// `gid12` of the label: the first 12 hex chars.
    #[must_use]
    pub fn gid12(self) -> [u8; 12] {
        let hex = self.to_hex();
        let mut out = [0_u8; 12];
        out.copy_from_slice(&hex[..12]);
        out
    }
}

fn first8(b: &[u8; 16]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
}
fn last8(b: &[u8; 16]) -> [u8; 8] {
    [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "GroupId({})", core::str::from_utf8(&hex).unwrap_or("?"))
    }
}

/// 16 lower-case hex digits of `value`, big-endian.
#[must_use]
pub fn hex16(value: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0_u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 60 - 4 * i;
        // Masked to 4 bits, so the index is < 16.
        *slot = DIGITS[((value >> shift) & 0xf) as usize];
    }
    out
}

/// Parses 16 lower-case hex digits.
fn parse_hex16(text: &[u8]) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    let mut value = 0_u64;
    for &b in text {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u64::from(digit);
    }
    Some(value)
}

/// The versioned intent hash: xxh64 (seed [`INTENT_HASH_SEED`]) of the identity section of the
/// canonical bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IntentHash(u64);

/// Why bytes or text are not an intent hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IntentHashError {
    /// Not exactly 8 bytes / 16 hex chars.
    #[error("intent hash has the wrong length")]
    Length,
    /// Not lower-case hex.
    #[error("intent hash is not lower-case hex")]
    NotHex,
}

impl IntentHash {
    /// From a value computed in-process (trusted).
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Hashes an identity section (see the layout at the top of this module). WAL replay uses
    /// it to check a stored hash against the stored canonical bytes.
    #[must_use]
    pub fn of_identity(identity: &[u8]) -> Self {
        Self(xxh64(identity, INTENT_HASH_SEED))
    }

    /// From untrusted bytes (WAL records, snapshots): exactly 8 bytes, big-endian.
    ///
    /// # Errors
    /// [`IntentHashError::Length`].
    pub fn new_checked(bytes: &[u8]) -> Result<Self, IntentHashError> {
        let array: [u8; 8] = bytes.try_into().map_err(|_| IntentHashError::Length)?;
        Ok(Self(u64::from_be_bytes(array)))
    }

    /// From the 16 hex chars a label carries.
    ///
    /// # Errors
    /// [`IntentHashError`].
    pub fn from_hex16(text: &[u8]) -> Result<Self, IntentHashError> {
        if text.len() != 16 {
            return Err(IntentHashError::Length);
        }
        parse_hex16(text).map(Self).ok_or(IntentHashError::NotHex)
    }

    /// The value.
    #[must_use]
    pub const fn value(self) -> u64 {
        self.0
    }

    /// Big-endian bytes (what [`Self::new_checked`] reads back).
    #[must_use]
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// `ih16` of the label.
    #[must_use]
    pub fn to_hex16(self) -> [u8; 16] {
        hex16(self.0)
    }
}

impl fmt::Debug for IntentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntentHash({:016x})", self.0)
    }
}
impl fmt::Display for IntentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The plain fields of an intent, as a strategy proposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentFields {
    /// Static strategy id.
    pub strategy_id: StrategyId,
    /// Group of this attempt (shared by its legs).
    pub group_id: GroupId,
    /// Leg within the group (0/1 for two-leg structures).
    pub leg_index: u8,
    /// Parsed instrument.
    pub instrument: Instrument,
    /// Direction.
    pub side: Side,
    /// Order type as the strategy asked (preflight refuses all but `Limit`).
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// `post_only`.
    pub post_only: bool,
    /// `reduce_only`.
    pub reduce_only: bool,
    /// `linked_order_type` (preflight refuses any).
    pub linked_order_type: Option<LinkedOrderType>,
    /// `trigger_price` (preflight refuses any).
    pub trigger_price: Option<Price>,
    /// Amount in the instrument's Deribit `amount` units (always positive; side says direction).
    pub qty: Qty,
    /// Limit price (`None` is what a market order looks like).
    pub limit_price: Option<Price>,
    /// Optional `contracts` count, cross-checked against `qty` (contract §5.1).
    pub contracts: Option<i64>,
    /// Emergency containment (contract §3.1): may pass under Kill if, and only if, the gates
    /// classify it as reducing. A strategy's claim alone opens nothing.
    pub emergency_close: bool,
}

/// Canonical bytes, inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CanonicalBytes {
    bytes: [u8; CANONICAL_BYTES_LEN_MAX],
    len: u8,
    identity_end: u8,
}

impl CanonicalBytes {
    /// All canonical bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// The hashed identity section (after the layout version byte).
    #[must_use]
    pub fn identity(&self) -> &[u8] {
        &self.bytes[1..usize::from(self.identity_end)]
    }
}

impl fmt::Debug for CanonicalBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanonicalBytes(len={})", self.len)
    }
}

struct ByteWriter {
    bytes: [u8; CANONICAL_BYTES_LEN_MAX],
    len: usize,
}

impl ByteWriter {
    fn put(&mut self, data: &[u8]) {
        // The layout's maximum (133) is below the buffer (160); every field has a fixed
        // bound, so this cannot overflow. The assert documents that invariant.
        assert!(
            self.len + data.len() <= CANONICAL_BYTES_LEN_MAX,
            "canonical layout exceeds its bound"
        );
        self.bytes[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }
    fn put_u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn put_opt_i64(&mut self, v: Option<i64>) {
        self.put_u8(u8::from(v.is_some()));
        self.put(&v.unwrap_or(0).to_le_bytes());
    }
}

fn encode(fields: &IntentFields) -> CanonicalBytes {
    let mut w = ByteWriter { bytes: [0; CANONICAL_BYTES_LEN_MAX], len: 0 };
    w.put_u8(CANONICAL_LAYOUT_VERSION);
    w.put_u8(INTENT_HASH_VERSION);
    let name = fields.instrument.name();
    // Names are at most 40 bytes (InstrumentName invariant).
    w.put_u8(name.as_bytes().len() as u8);
    w.put(name.as_bytes());
    w.put_u8(fields.side.code());
    w.put(&fields.qty.raw().to_le_bytes());
    w.put_opt_i64(fields.limit_price.map(Price::raw));
    w.put(&fields.group_id.to_bytes());
    w.put_u8(fields.leg_index);
    let identity_end = w.len;
    w.put_u8(fields.strategy_id.len);
    w.put(fields.strategy_id.as_bytes());
    w.put_u8(fields.order_type.code());
    w.put_u8(fields.time_in_force.code());
    let flags = u8::from(fields.post_only)
        | u8::from(fields.reduce_only) << 1
        | u8::from(fields.emergency_close) << 2;
    w.put_u8(flags);
    w.put_u8(fields.linked_order_type.map_or(0, LinkedOrderType::code));
    w.put_opt_i64(fields.trigger_price.map(Price::raw));
    w.put_opt_i64(fields.contracts);
    // Both lengths are <= 160 (checked in put).
    CanonicalBytes { bytes: w.bytes, len: w.len as u8, identity_end: identity_end as u8 }
}

/// An immutable, hashed order intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderIntent {
    fields: IntentFields,
    canonical: CanonicalBytes,
    hash: IntentHash,
}

impl OrderIntent {
    /// Builds an intent from fields taken as they are (trusted paths: WAL replay, already
    /// quantized input, and tests that need an off-tick intent to show preflight refuses it).
    /// Prefer [`Self::new_quantized`] for anything a strategy proposes.
    #[must_use]
    pub fn new(fields: IntentFields) -> Self {
        let canonical = encode(&fields);
        let hash = IntentHash::of_identity(canonical.identity());
        Self { fields, canonical, hash }
    }

    /// Quantizes qty (down) and limit price (never worse) with the instrument's metadata, then
    /// builds the intent, so the hash only ever sees quantized values (contract §5.5).
    ///
    /// # Errors
    /// `InstrumentMetadataMissing`, `TooSmallAfterQuantization`, `QtyNotPositive`,
    /// `LimitPriceInvalid` or `PriceOffTick`; an intent without a limit price keeps `None`
    /// (preflight refuses it as a market order).
    pub fn new_quantized(
        mut fields: IntentFields,
        meta: Option<&InstrumentMeta>,
    ) -> Result<Self, RejectReasonCode> {
        let meta = meta.ok_or(RejectReasonCode::InstrumentMetadataMissing)?;
        if meta.instrument.name() != fields.instrument.name() {
            return Err(RejectReasonCode::InstrumentMetadataMissing);
        }
        fields.qty = quantize_qty(meta, fields.qty)?;
        if let Some(price) = fields.limit_price {
            fields.limit_price = Some(quantize_price(meta, fields.side, price)?);
        }
        Ok(Self::new(fields))
    }

    /// The fields.
    #[must_use]
    pub const fn fields(&self) -> &IntentFields {
        &self.fields
    }

    /// Canonical bytes (layout documented at the top of this module).
    #[must_use]
    pub const fn canonical_bytes(&self) -> &CanonicalBytes {
        &self.canonical
    }

    /// The versioned intent hash.
    #[must_use]
    pub const fn hash(&self) -> IntentHash {
        self.hash
    }
}
