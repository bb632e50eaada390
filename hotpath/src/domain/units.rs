//! Fixed-point units. Every price, quantity and USD amount past the decode boundary is an
//! `i64` count of 1e-8 units ([`FIXED_SCALE`]); f64 exists only in `from_f64_checked`, which the
//! JSON decoders call once. See `docs/units.md` for why this and not per-instrument ticks.
//!
//! Quantities say what they are denominated in: [`AmountUnit::Coin`] (options and linear
//! instruments, Deribit `amount` in base coin) or [`AmountUnit::Usd`] (inverse futures and
//! perpetuals, Deribit `amount` in USD). Mixing them is a type error at the [`OrderSize`] level.

use core::fmt;

/// Fixed-point scale: one unit is 1e-8. BTC's smallest unit (satoshi) is 1e-8, and every Deribit
/// tick, step and minimum we have seen is a multiple of it.
pub const FIXED_SCALE: i64 = 100_000_000;
/// Digits after the decimal point that [`FIXED_SCALE`] represents.
pub const FIXED_DECIMALS: u32 = 8;
/// Largest magnitude accepted from the decode boundary (1e10 whole units): far above any real
/// price or size, far below `i64::MAX / FIXED_SCALE`, so sums of a few values cannot overflow.
pub const FIXED_WHOLE_MAX: i64 = 10_000_000_000;

/// Why a decimal or float could not become a fixed-point value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// NaN or infinite.
    #[error("value is not finite")]
    NotFinite,
    /// Magnitude above [`FIXED_WHOLE_MAX`].
    #[error("value out of range")]
    OutOfRange,
    /// More than [`FIXED_DECIMALS`] digits after the point (would lose precision silently).
    #[error("value has more than 8 decimals")]
    TooPrecise,
    /// Not a decimal number.
    #[error("value is not a decimal number")]
    Malformed,
}

/// Rounds `x * 1e8` to the nearest integer after checking range; exact for every decimal with at
/// most 8 digits that f64 can carry (JSON `0.0001` is `10000.000000000002` before rounding).
fn raw_from_f64(x: f64) -> Result<i64, UnitError> {
    if !x.is_finite() {
        return Err(UnitError::NotFinite);
    }
    #[allow(clippy::cast_precision_loss)] // 1e10 is exactly representable in f64.
    let whole_max = FIXED_WHOLE_MAX as f64;
    if x.abs() > whole_max {
        return Err(UnitError::OutOfRange);
    }
    #[allow(clippy::cast_precision_loss)]
    let scaled = (x * FIXED_SCALE as f64).round();
    // In range by the check above (|scaled| <= 1e18 < i64::MAX), so the cast cannot saturate.
    #[allow(clippy::cast_possible_truncation)]
    Ok(scaled as i64)
}

/// Parses a plain decimal (`-12.5`, `0.0001`, `30000`) exactly, without going through f64.
fn raw_from_decimal_str(text: &str) -> Result<i64, UnitError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() > 40 {
        return Err(UnitError::Malformed);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut whole: i64 = 0;
    let mut frac: i64 = 0;
    let mut frac_digits: u32 = 0;
    let mut seen_point = false;
    let mut seen_digit = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                let d = i64::from(b - b'0');
                if seen_point {
                    if frac_digits == FIXED_DECIMALS {
                        return Err(UnitError::TooPrecise);
                    }
                    frac = frac * 10 + d;
                    frac_digits += 1;
                } else {
                    whole = whole
                        .checked_mul(10)
                        .and_then(|w| w.checked_add(d))
                        .ok_or(UnitError::OutOfRange)?;
                    if whole > FIXED_WHOLE_MAX {
                        return Err(UnitError::OutOfRange);
                    }
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => return Err(UnitError::Malformed),
        }
    }
    if !seen_digit {
        return Err(UnitError::Malformed);
    }
    let frac_scaled = frac * 10_i64.pow(FIXED_DECIMALS - frac_digits);
    let raw = whole * FIXED_SCALE + frac_scaled;
    Ok(if negative { -raw } else { raw })
}

fn fmt_raw(raw: i64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let sign = if raw < 0 { "-" } else { "" };
    let magnitude = raw.unsigned_abs();
    let scale = FIXED_SCALE.unsigned_abs();
    let whole = magnitude / scale;
    let frac = magnitude % scale;
    if frac == 0 {
        return write!(f, "{sign}{whole}");
    }
    let mut frac_digits = 8_usize;
    let mut frac_trimmed = frac;
    while frac_trimmed % 10 == 0 {
        frac_trimmed /= 10;
        frac_digits -= 1;
    }
    write!(f, "{sign}{whole}.{frac_trimmed:0frac_digits$}")
}

macro_rules! fixed_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name {
            raw: i64,
        }

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self { raw: 0 };

            /// From a raw count of 1e-8 units (trusted: WAL replay, arithmetic results).
            #[must_use]
            pub const fn from_raw(raw: i64) -> Self {
                Self { raw }
            }

            /// The raw count of 1e-8 units.
            #[must_use]
            pub const fn raw(self) -> i64 {
                self.raw
            }

            /// From whole units (`3` → 3.00000000).
            ///
            /// # Errors
            /// [`UnitError::OutOfRange`] above [`FIXED_WHOLE_MAX`].
            pub const fn from_whole_checked(whole: i64) -> Result<Self, UnitError> {
                if whole > FIXED_WHOLE_MAX || whole < -FIXED_WHOLE_MAX {
                    return Err(UnitError::OutOfRange);
                }
                Ok(Self { raw: whole * FIXED_SCALE })
            }

            /// The decode boundary: a JSON float becomes fixed point here and nowhere else.
            ///
            /// # Errors
            /// [`UnitError::NotFinite`] or [`UnitError::OutOfRange`].
            pub fn from_f64_checked(x: f64) -> Result<Self, UnitError> {
                raw_from_f64(x).map(Self::from_raw)
            }

            /// Parses a plain decimal string exactly.
            ///
            /// # Errors
            /// [`UnitError::Malformed`], [`UnitError::TooPrecise`] or [`UnitError::OutOfRange`].
            pub fn from_decimal_str(text: &str) -> Result<Self, UnitError> {
                raw_from_decimal_str(text).map(Self::from_raw)
            }

            /// A lossy float for display and metrics only; never feed it back into sizing.
            #[must_use]
            pub fn to_f64_lossy(self) -> f64 {
                #[allow(clippy::cast_precision_loss)]
                let value = self.raw as f64 / FIXED_SCALE as f64;
                value
            }

            /// Sum, `None` on overflow.
            #[must_use]
            pub const fn checked_add(self, other: Self) -> Option<Self> {
                match self.raw.checked_add(other.raw) {
                    Some(raw) => Some(Self { raw }),
                    None => None,
                }
            }

            /// Difference, `None` on overflow.
            #[must_use]
            pub const fn checked_sub(self, other: Self) -> Option<Self> {
                match self.raw.checked_sub(other.raw) {
                    Some(raw) => Some(Self { raw }),
                    None => None,
                }
            }

            /// Absolute value (saturating at `i64::MAX` raw).
            #[must_use]
            pub const fn abs(self) -> Self {
                Self { raw: self.raw.saturating_abs() }
            }

            /// Negation (saturating).
            #[must_use]
            pub const fn neg(self) -> Self {
                Self { raw: self.raw.saturating_neg() }
            }

            /// Strictly positive.
            #[must_use]
            pub const fn is_positive(self) -> bool {
                self.raw > 0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_raw(self.raw, f)
            }
        }
    };
}

fixed_type!(
    /// A price in the instrument's quote unit (BTC for inverse options, USD for inverse
    /// futures/perps, USDC for linear instruments), 1e-8 fixed point.
    Price
);
fixed_type!(
    /// An order or position amount in Deribit `amount` units (see [`AmountUnit`]), 1e-8 fixed
    /// point; signed where it is a position (long positive).
    Qty
);
fixed_type!(
    /// A USD amount (notional, PnL, edge, fees converted to USD), 1e-8 fixed point.
    Usd
);

/// What a Deribit `amount` counts for an instrument (venue notes §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AmountUnit {
    /// Base coin: options (inverse and linear), linear futures and perpetuals (`*_USDC`).
    Coin,
    /// USD: inverse futures and inverse perpetuals (`BTC-PERPETUAL`, `BTC-27JUN25`).
    Usd,
}

impl AmountUnit {
    /// The stable string form used in canonical docs and evidence.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Coin => "coin",
            Self::Usd => "usd",
        }
    }
}

/// `a * b` for two 1e-8 fixed-point values, rounded toward zero, `None` on overflow.
#[must_use]
pub fn mul_fixed(a_raw: i64, b_raw: i64) -> Option<i64> {
    let product = i128::from(a_raw) * i128::from(b_raw) / i128::from(FIXED_SCALE);
    i64::try_from(product).ok()
}

/// USD notional of `qty` of an instrument whose amounts are in `unit` (contract §5.1):
/// coin-sized ⇒ `qty * index_price`; USD-sized ⇒ `qty` itself. Magnitude only.
///
/// # Errors
/// [`UnitError::OutOfRange`] if the product overflows; `Ok(None)` when a coin-sized amount has no
/// index price to convert with.
pub fn notional_usd(
    unit: AmountUnit,
    qty: Qty,
    index_price: Option<Price>,
) -> Result<Option<Usd>, UnitError> {
    match unit {
        AmountUnit::Usd => Ok(Some(Usd::from_raw(qty.abs().raw()))),
        AmountUnit::Coin => match index_price {
            None => Ok(None),
            Some(index) => mul_fixed(qty.abs().raw(), index.abs().raw())
                .map(|raw| Some(Usd::from_raw(raw)))
                .ok_or(UnitError::OutOfRange),
        },
    }
}

/// Tolerance of contract §5.1 rule 2 for `contracts * contract_size` vs `amount`: 0.1 %,
/// expressed in parts per million so the check stays integer.
pub const CONTRACTS_AMOUNT_TOLERANCE_PPM: i64 = 1_000;

/// The sizing of one order (contract §5.1 `OrderSize`): exactly one canonical amount, the
/// other derived, and the USD notional always filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSize {
    /// Whole contracts, when the contract size is known and divides the amount.
    pub contracts: Option<i64>,
    /// Canonical for coin-sized instruments; derived (`qty_usd / index`) for USD-sized ones.
    pub qty_coin: Option<Qty>,
    /// Canonical for USD-sized instruments; unset for options (rule 4).
    pub qty_usd: Option<Qty>,
    /// Always filled.
    pub notional_usd: Usd,
}

/// Why an [`OrderSize`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OrderSizeError {
    /// `contracts * contract_size` and `amount` disagree beyond 0.1 % (reject and degrade).
    #[error("contracts and amount disagree")]
    ContractsAmountMismatch,
    /// A coin-sized order needs an index price for its notional.
    #[error("index price missing")]
    IndexPriceMissing,
    /// Zero/negative amount, zero contract size, or an overflow.
    #[error("amount out of range")]
    OutOfRange,
}

impl OrderSize {
    /// Builds the sizing of an `amount` (Deribit units `unit`) with an optional venue-side
    /// `contracts` count to cross-check, per contract §5.1.
    ///
    /// # Errors
    /// See [`OrderSizeError`].
    pub fn new_checked(
        unit: AmountUnit,
        amount: Qty,
        contracts: Option<i64>,
        contract_size: Qty,
        index_price: Option<Price>,
    ) -> Result<Self, OrderSizeError> {
        if !amount.is_positive() || !contract_size.is_positive() {
            return Err(OrderSizeError::OutOfRange);
        }
        if let Some(given) = contracts {
            let implied_raw = i128::from(given) * i128::from(contract_size.raw());
            let diff = (i128::from(amount.raw()) - implied_raw).abs();
            // |amount - contracts*size| / |amount| <= 0.001, cross-multiplied to stay exact.
            if diff * 1_000_000
                > i128::from(amount.raw()) * i128::from(CONTRACTS_AMOUNT_TOLERANCE_PPM)
            {
                return Err(OrderSizeError::ContractsAmountMismatch);
            }
        }
        let derived_contracts = if amount.raw() % contract_size.raw() == 0 {
            Some(amount.raw() / contract_size.raw())
        } else {
            None
        };
        let notional = notional_usd(unit, amount, index_price)
            .map_err(|_| OrderSizeError::OutOfRange)?
            .ok_or(OrderSizeError::IndexPriceMissing)?;
        let (qty_coin, qty_usd) = match unit {
            AmountUnit::Coin => (Some(amount), None),
            AmountUnit::Usd => {
                // qty_coin = qty_usd / index_price (derived, display and exposure only).
                let coin = index_price.filter(|p| p.is_positive()).and_then(|p| {
                    let raw =
                        i128::from(amount.raw()) * i128::from(FIXED_SCALE) / i128::from(p.raw());
                    i64::try_from(raw).ok().map(Qty::from_raw)
                });
                (coin, Some(amount))
            }
        };
        Ok(Self {
            contracts: contracts.or(derived_contracts),
            qty_coin,
            qty_usd,
            notional_usd: notional,
        })
    }
}
