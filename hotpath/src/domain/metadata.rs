//! Instrument metadata from `public/get_instruments` (venue notes §7.2) and the cache the gates
//! read it from. Contract §5.2: tick size, amount step, minimum and contract size are never
//! hard-coded; metadata older than `instrument_cache_ttl_s` is stale and refuses opens.
//!
//! The JSON decoder here is a decode boundary: the venue's floats become fixed point once, in
//! [`InstrumentMeta::from_venue_json`], and nowhere else.

use std::collections::BTreeMap;

use super::instrument::{Instrument, InstrumentKind, InstrumentName, InstrumentParseError};
use super::units::{AmountUnit, Price, Qty, UnitError};

/// Most `tick_size_steps` entries we keep per instrument (real BTC/ETH options have one).
pub const TICK_STEPS_MAX: usize = 4;
/// Most instruments the cache holds (Deribit lists ~1 500 BTC+ETH instruments at a time).
pub const INSTRUMENT_CACHE_CAPACITY_MAX: usize = 8_192;

/// Above `above_price` (strictly), the tick becomes `tick_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TickStep {
    /// Threshold price.
    pub above_price: Price,
    /// Tick above the threshold.
    pub tick_size: Price,
}

/// Why instrument metadata was refused (each maps to `InstrumentMetadataMissing` at the gates,
/// except a bad name, which is `InstrumentUnknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The instrument name does not parse.
    #[error("instrument name: {0}")]
    Name(InstrumentParseError),
    /// A required field is absent or null.
    #[error("field missing: {0}")]
    FieldMissing(&'static str),
    /// A field has the wrong JSON type or an unrepresentable value.
    #[error("field invalid: {0}")]
    FieldInvalid(&'static str),
    /// Tick, step, minimum or contract size not strictly positive.
    #[error("field not positive: {0}")]
    NotPositive(&'static str),
    /// More than [`TICK_STEPS_MAX`] tick steps, or steps not strictly increasing.
    #[error("tick_size_steps invalid")]
    TickStepsInvalid,
    /// The venue's `kind` disagrees with the name (e.g. `option` for `BTC-PERPETUAL`).
    #[error("kind disagrees with the instrument name")]
    KindMismatch,
    /// Cache already holds [`INSTRUMENT_CACHE_CAPACITY_MAX`] instruments.
    #[error("instrument cache full")]
    CacheFull,
}

impl MetadataError {
    /// Stable code string for logs and evidence.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Name(_) => "Name",
            Self::FieldMissing(_) => "FieldMissing",
            Self::FieldInvalid(_) => "FieldInvalid",
            Self::NotPositive(_) => "NotPositive",
            Self::TickStepsInvalid => "TickStepsInvalid",
            Self::KindMismatch => "KindMismatch",
            Self::CacheFull => "CacheFull",
        }
    }
}

/// One instrument's trading metadata, in fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentMeta {
    /// Parsed name and classification.
    pub instrument: Instrument,
    /// Base tick (below the first step).
    pub tick_size: Price,
    tick_steps: [TickStep; TICK_STEPS_MAX],
    tick_steps_len: u8,
    /// Smallest order amount, in `amount` units.
    pub min_trade_amount: Qty,
    /// One contract, in `amount` units.
    pub contract_size: Qty,
    /// Amounts must be multiples of this: `contract_size` for USD-sized instruments (BTC perp:
    /// multiples of 10 USD), `min_trade_amount` for coin-sized ones (BTC options: 0.1).
    pub amount_step: Qty,
    /// Settlement instant; `None` for perpetuals (Deribit reports a far-future value).
    pub expiration_timestamp_ms: Option<i64>,
    /// Listing instant.
    pub creation_timestamp_ms: i64,
    /// Tradable now, per the venue.
    pub is_active: bool,
    /// When we fetched this (our clock), for the staleness rule of contract §5.2.
    pub fetched_at_ms: i64,
}

fn field<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    key: &'static str,
) -> Result<&'a serde_json::Value, MetadataError> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Err(MetadataError::FieldMissing(key)),
        Some(v) => Ok(v),
    }
}

fn fixed_field<T>(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &'static str,
    make: fn(f64) -> Result<T, UnitError>,
) -> Result<T, MetadataError> {
    let value = field(obj, key)?.as_f64().ok_or(MetadataError::FieldInvalid(key))?;
    make(value).map_err(|_| MetadataError::FieldInvalid(key))
}

fn ms_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &'static str,
) -> Result<i64, MetadataError> {
    field(obj, key)?.as_i64().ok_or(MetadataError::FieldInvalid(key))
}

/// Perpetuals report an expiry in year 3000; anything past 2100 is "no expiry".
const FAR_FUTURE_EXPIRY_MS: i64 = 4_102_444_800_000;

impl InstrumentMeta {
    /// Validates and builds metadata from already-fixed-point fields.
    ///
    /// # Errors
    /// [`MetadataError::NotPositive`] or [`MetadataError::TickStepsInvalid`].
    #[allow(clippy::too_many_arguments)]
    pub fn new_checked(
        instrument: Instrument,
        tick_size: Price,
        tick_steps: &[TickStep],
        min_trade_amount: Qty,
        contract_size: Qty,
        expiration_timestamp_ms: Option<i64>,
        creation_timestamp_ms: i64,
        is_active: bool,
        fetched_at_ms: i64,
    ) -> Result<Self, MetadataError> {
        if !tick_size.is_positive() {
            return Err(MetadataError::NotPositive("tick_size"));
        }
        if !min_trade_amount.is_positive() {
            return Err(MetadataError::NotPositive("min_trade_amount"));
        }
        if !contract_size.is_positive() {
            return Err(MetadataError::NotPositive("contract_size"));
        }
        if tick_steps.len() > TICK_STEPS_MAX {
            return Err(MetadataError::TickStepsInvalid);
        }
        let mut steps = [TickStep { above_price: Price::ZERO, tick_size }; TICK_STEPS_MAX];
        let mut previous_above = Price::ZERO;
        for (slot, step) in steps.iter_mut().zip(tick_steps) {
            if !step.tick_size.is_positive() || step.above_price <= previous_above {
                return Err(MetadataError::TickStepsInvalid);
            }
            previous_above = step.above_price;
            *slot = *step;
        }
        let amount_step = match instrument.amount_unit() {
            AmountUnit::Usd => contract_size,
            AmountUnit::Coin => min_trade_amount,
        };
        Ok(Self {
            instrument,
            tick_size,
            tick_steps: steps,
            // <= TICK_STEPS_MAX (4) by the check above.
            tick_steps_len: tick_steps.len() as u8,
            min_trade_amount,
            contract_size,
            amount_step,
            expiration_timestamp_ms,
            creation_timestamp_ms,
            is_active,
            fetched_at_ms,
        })
    }

    /// Decodes one object of a `public/get_instruments` result.
    ///
    /// # Errors
    /// A [`MetadataError`] naming the field; never panics on any JSON.
    pub fn from_venue_json(
        value: &serde_json::Value,
        fetched_at_ms: i64,
    ) -> Result<Self, MetadataError> {
        let obj = value.as_object().ok_or(MetadataError::FieldInvalid("instrument"))?;
        let name = field(obj, "instrument_name")?
            .as_str()
            .ok_or(MetadataError::FieldInvalid("instrument_name"))?;
        let instrument = Instrument::parse(name).map_err(MetadataError::Name)?;
        let kind = field(obj, "kind")?.as_str().ok_or(MetadataError::FieldInvalid("kind"))?;
        let kind_matches = match instrument.kind() {
            InstrumentKind::Option => kind == "option",
            InstrumentKind::Future | InstrumentKind::Perpetual => kind == "future",
        };
        if !kind_matches {
            return Err(MetadataError::KindMismatch);
        }
        let tick_size = fixed_field(obj, "tick_size", Price::from_f64_checked)?;
        let mut steps = [TickStep { above_price: Price::ZERO, tick_size }; TICK_STEPS_MAX];
        let mut steps_len = 0_usize;
        if let Some(list) = obj.get("tick_size_steps").filter(|v| !v.is_null()) {
            let list = list.as_array().ok_or(MetadataError::FieldInvalid("tick_size_steps"))?;
            if list.len() > TICK_STEPS_MAX {
                return Err(MetadataError::TickStepsInvalid);
            }
            for (slot, entry) in steps.iter_mut().zip(list) {
                let entry =
                    entry.as_object().ok_or(MetadataError::FieldInvalid("tick_size_steps"))?;
                slot.above_price = fixed_field(entry, "above_price", Price::from_f64_checked)?;
                slot.tick_size = fixed_field(entry, "tick_size", Price::from_f64_checked)?;
                steps_len += 1;
            }
        }
        let min_trade_amount = fixed_field(obj, "min_trade_amount", Qty::from_f64_checked)?;
        let contract_size = fixed_field(obj, "contract_size", Qty::from_f64_checked)?;
        let expiration = ms_field(obj, "expiration_timestamp")?;
        let expiration = if instrument.kind() == InstrumentKind::Perpetual
            || expiration >= FAR_FUTURE_EXPIRY_MS
        {
            None
        } else {
            Some(expiration)
        };
        let creation = ms_field(obj, "creation_timestamp")?;
        let is_active =
            field(obj, "is_active")?.as_bool().ok_or(MetadataError::FieldInvalid("is_active"))?;
        Self::new_checked(
            instrument,
            tick_size,
            &steps[..steps_len],
            min_trade_amount,
            contract_size,
            expiration,
            creation,
            is_active,
            fetched_at_ms,
        )
    }

    /// The `tick_size_steps` in force.
    #[must_use]
    pub fn tick_steps(&self) -> &[TickStep] {
        &self.tick_steps[..usize::from(self.tick_steps_len)]
    }

    /// The tick that applies at `price`: the last step whose `above_price` is strictly below
    /// `price`, else the base tick.
    #[must_use]
    pub fn tick_at(&self, price: Price) -> Price {
        let mut tick = self.tick_size;
        for step in self.tick_steps() {
            if price > step.above_price {
                tick = step.tick_size;
            }
        }
        tick
    }

    /// `price` sits on the tick grid that applies at `price`.
    #[must_use]
    pub fn is_on_tick(&self, price: Price) -> bool {
        price.is_positive() && price.raw() % self.tick_at(price).raw() == 0
    }

    /// `qty` is a positive multiple of the amount step.
    #[must_use]
    pub fn is_on_step(&self, qty: Qty) -> bool {
        qty.is_positive() && qty.raw() % self.amount_step.raw() == 0
    }

    /// Metadata age exceeds `ttl_s` at `now_ms` (contract §5.2). A fetch time in the future
    /// (clock went backwards) also counts as stale: we cannot vouch for its age.
    #[must_use]
    pub fn is_stale(&self, now_ms: i64, ttl_s: i64) -> bool {
        let age_ms = now_ms.saturating_sub(self.fetched_at_ms);
        age_ms < 0 || age_ms > ttl_s.saturating_mul(1_000)
    }
}

/// Instrument metadata keyed by name, ordered (BTreeMap) so that iteration, snapshots and
/// anything written from it are independent of insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstrumentCache {
    by_name: BTreeMap<InstrumentName, InstrumentMeta>,
}

impl InstrumentCache {
    /// Empty cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces one instrument's metadata.
    ///
    /// # Errors
    /// [`MetadataError::CacheFull`] past [`INSTRUMENT_CACHE_CAPACITY_MAX`] distinct names.
    pub fn upsert(&mut self, meta: InstrumentMeta) -> Result<(), MetadataError> {
        let name = meta.instrument.name();
        if !self.by_name.contains_key(&name) && self.by_name.len() >= INSTRUMENT_CACHE_CAPACITY_MAX
        {
            return Err(MetadataError::CacheFull);
        }
        self.by_name.insert(name, meta);
        Ok(())
    }

    /// Loads a whole `public/get_instruments` response (the JSON-RPC envelope or the bare
    /// `result` array). All-or-nothing: one bad instrument leaves the cache unchanged, so a
    /// partially decoded listing never mixes with the previous one.
    ///
    /// # Errors
    /// The first [`MetadataError`] met; `FieldInvalid("result")` for a wrong shape.
    pub fn load_get_instruments(
        &mut self,
        response: &serde_json::Value,
        fetched_at_ms: i64,
    ) -> Result<usize, MetadataError> {
        let list = response
            .get("result")
            .unwrap_or(response)
            .as_array()
            .ok_or(MetadataError::FieldInvalid("result"))?;
        let mut staged = self.clone();
        for entry in list {
            staged.upsert(InstrumentMeta::from_venue_json(entry, fetched_at_ms)?)?;
        }
        *self = staged;
        Ok(list.len())
    }

    /// Metadata by name (no allocation).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&InstrumentMeta> {
        self.by_name.get(name)
    }

    /// Number of instruments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// No instruments.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Instruments in name order.
    pub fn iter(&self) -> impl Iterator<Item = &InstrumentMeta> {
        self.by_name.values()
    }

    /// Age in whole seconds of the oldest entry (`instrument_cache_age_s` gauge); 0 when empty.
    #[must_use]
    pub fn age_s_max(&self, now_ms: i64) -> i64 {
        self.by_name
            .values()
            .map(|m| now_ms.saturating_sub(m.fetched_at_ms) / 1_000)
            .max()
            .unwrap_or(0)
    }
}
