//! `Decimal8`: the fixed-point number every venue price, amount and fee becomes at the wire
//! boundary. Floats stop here: the rest of the engine only sees scaled integers.

use core::fmt;

/// A decimal with exactly 8 fractional digits: `value = raw / 10^8`.
///
/// Eight digits cover every Deribit tick (options 0.0001, fees like 2.5e-7 = 25 raw) and
/// an i64 still holds ±92 billion, far above any price or amount the venue prints.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Decimal8 {
    /// The value times 10^8.
    pub raw: i64,
}

/// Why a number could not become a [`Decimal8`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not JSON number syntax (empty, stray characters, missing digits).
    #[error("not a JSON number")]
    Syntax,
    /// More than 8 significant fractional digits: storing it would round.
    #[error("more than 8 fractional digits")]
    TooPrecise,
    /// Outside what i64 × 10^-8 can hold.
    #[error("out of range")]
    Overflow,
    /// NaN or infinity (only reachable from `from_f64`).
    #[error("not finite")]
    NotFinite,
}

const SCALE: i64 = 100_000_000;
const FRACTION_DIGITS: i32 = 8;
/// Longest text accepted: bounds the exponent loop and rejects absurd inputs cheaply.
const TEXT_LEN_MAX: usize = 400;

impl Decimal8 {
    /// Zero.
    pub const ZERO: Self = Self { raw: 0 };
    /// The scale factor (10^8).
    pub const SCALE: i64 = SCALE;

    /// From a raw scaled integer.
    #[must_use]
    pub const fn from_raw(raw: i64) -> Self {
        Self { raw }
    }

    /// From a whole number, checked.
    ///
    /// # Errors
    /// [`DecimalError::Overflow`] when `v × 10^8` does not fit an i64.
    pub fn from_i64(v: i64) -> Result<Self, DecimalError> {
        v.checked_mul(SCALE).map(Self::from_raw).ok_or(DecimalError::Overflow)
    }

    /// From an unsigned whole number, checked.
    ///
    /// # Errors
    /// [`DecimalError::Overflow`] when `v × 10^8` does not fit an i64.
    pub fn from_u64(v: u64) -> Result<Self, DecimalError> {
        i64::try_from(v).map_err(|_| DecimalError::Overflow).and_then(Self::from_i64)
    }

    /// Parses JSON number text exactly (`12`, `-0.0165`, `139.0`, `2.5e-7`, `2.5E4`).
    ///
    /// Exact means: the decimal digits are shifted, never converted through a float, and
    /// anything needing a 9th fractional digit is refused rather than rounded.
    ///
    /// # Errors
    /// [`DecimalError::Syntax`], [`DecimalError::TooPrecise`] or [`DecimalError::Overflow`].
    pub fn parse_str(text: &str) -> Result<Self, DecimalError> {
        let b = text.as_bytes();
        if b.is_empty() || b.len() > TEXT_LEN_MAX {
            return Err(DecimalError::Syntax);
        }
        let mut i = 0;
        let negative = b[0] == b'-';
        if negative {
            i += 1;
        }
        // Mantissa digits accumulate into an i128 so 19-digit integers do not wrap early;
        // digits after the point lower the decimal exponent.
        let mut mantissa: i128 = 0;
        let mut exp10: i32 = 0;
        let mut int_digits = 0usize;
        while i < b.len() && b[i].is_ascii_digit() {
            mantissa = push_digit(mantissa, b[i])?;
            int_digits += 1;
            i += 1;
        }
        if int_digits == 0 {
            return Err(DecimalError::Syntax);
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let mut frac_digits = 0usize;
            while i < b.len() && b[i].is_ascii_digit() {
                mantissa = push_digit(mantissa, b[i])?;
                exp10 -= 1;
                frac_digits += 1;
                i += 1;
            }
            if frac_digits == 0 {
                return Err(DecimalError::Syntax);
            }
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                exp_negative = b[i] == b'-';
                i += 1;
            }
            let mut e: i32 = 0;
            let mut exp_digits = 0usize;
            while i < b.len() && b[i].is_ascii_digit() {
                // Saturate: any exponent past ±100_000 is already out of range either way.
                e = (e * 10 + i32::from(b[i] - b'0')).min(100_000);
                exp_digits += 1;
                i += 1;
            }
            if exp_digits == 0 {
                return Err(DecimalError::Syntax);
            }
            exp10 += if exp_negative { -e } else { e };
        }
        if i != b.len() {
            return Err(DecimalError::Syntax);
        }
        if mantissa == 0 {
            return Ok(Self::ZERO);
        }
        // Rescale mantissa × 10^exp10 to mantissa' × 10^-8.
        let mut shift = exp10 + FRACTION_DIGITS;
        while shift < 0 {
            if mantissa % 10 != 0 {
                return Err(DecimalError::TooPrecise);
            }
            mantissa /= 10;
            shift += 1;
        }
        while shift > 0 {
            mantissa = mantissa.checked_mul(10).ok_or(DecimalError::Overflow)?;
            if mantissa > i128::from(i64::MAX) + 1 {
                return Err(DecimalError::Overflow);
            }
            shift -= 1;
        }
        let signed = if negative { -mantissa } else { mantissa };
        i64::try_from(signed).map(Self::from_raw).map_err(|_| DecimalError::Overflow)
    }

    /// From a float that came off the wire.
    ///
    /// simd-json hands numbers with a fraction or exponent to us as f64. Any decimal with
    /// at most 15 significant digits (everything Deribit prints) survives the trip through
    /// f64 uniquely: no other ≤15-digit decimal maps to the same double. So:
    ///
    /// - fast path: `r = round(v × 10^8)`; if `|r| < 10^15` and `r / 10^8` (one correctly
    ///   rounded division) gives back exactly `v`, then `r × 10^-8` and the wire text are
    ///   two ≤15-digit decimals with the same nearest double, hence equal;
    /// - otherwise print the shortest round-trip text (what Rust's `{}` does for f64)
    ///   and convert that with [`Self::parse_str`], which refuses a 9th fractional digit.
    ///
    /// No heap use on either path.
    ///
    /// # Errors
    /// [`DecimalError::NotFinite`], [`DecimalError::TooPrecise`], [`DecimalError::Overflow`].
    pub fn from_f64(v: f64) -> Result<Self, DecimalError> {
        if !v.is_finite() {
            return Err(DecimalError::NotFinite);
        }
        if v.abs() < 1e7 {
            let r = (v * 1e8).round();
            #[allow(clippy::float_cmp)]
            if r / 1e8 == v {
                // |r| < 10^15 < 2^53: the cast is exact.
                #[allow(clippy::cast_possible_truncation)]
                return Ok(Self::from_raw(r as i64));
            }
        }
        Self::from_f64_text(v)
    }

    /// The always-correct slow path of [`Self::from_f64`] (shortest text, then exact parse).
    fn from_f64_text(v: f64) -> Result<Self, DecimalError> {
        if !v.is_finite() {
            return Err(DecimalError::NotFinite);
        }
        // Anything at or above 2^63 / 10^8 cannot fit; rejecting it here also keeps the
        // printed text short enough for the stack buffer.
        if v.abs() >= 92_233_720_368.0 {
            return Err(DecimalError::Overflow);
        }
        let mut buf = StackText::new();
        fmt::write(&mut buf, format_args!("{v}")).map_err(|_| DecimalError::Overflow)?;
        Self::parse_str(buf.as_str())
    }

    /// The value as f64 (for display and statistics only, never for decisions).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn to_f64(self) -> f64 {
        self.raw as f64 / SCALE as f64
    }

    /// True when zero.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.raw == 0
    }

    /// Writes the exact decimal text (shortest form, e.g. `0.0165`, `40`, `-1.5`).
    ///
    /// # Errors
    /// Whatever the writer reports.
    pub fn write_to<W: fmt::Write>(self, w: &mut W) -> fmt::Result {
        let neg = self.raw < 0;
        let abs = self.raw.unsigned_abs();
        let int = abs / SCALE.unsigned_abs();
        let mut frac = abs % SCALE.unsigned_abs();
        if neg {
            w.write_char('-')?;
        }
        write!(w, "{int}")?;
        if frac != 0 {
            let mut width = 8;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            write!(w, ".{frac:0width$}")?;
        }
        Ok(())
    }
}

fn push_digit(m: i128, d: u8) -> Result<i128, DecimalError> {
    let v = m.checked_mul(10).and_then(|m| m.checked_add(i128::from(d - b'0')));
    match v {
        // Beyond ~1e36 no i64 result is possible whatever the exponent says, except for
        // trailing zeros; refusing early keeps the arithmetic bounded.
        Some(v) if v < 10i128.pow(36) => Ok(v),
        _ => Err(DecimalError::Overflow),
    }
}

impl fmt::Display for Decimal8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl fmt::Debug for Decimal8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal8({self})")
    }
}

impl core::str::FromStr for Decimal8 {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_str(s)
    }
}

/// A fixed stack buffer for number formatting (no heap on the decode path).
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        Self { buf: [0; 64], len: 0 }
    }
    fn as_str(&self) -> &str {
        // Only ASCII from float formatting is ever written; a failure yields "" → Syntax.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<i64, DecimalError> {
        Decimal8::parse_str(s).map(|d| d.raw)
    }

    #[test]
    fn parses_plain_and_exponent_forms_exactly() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("40"), Ok(4_000_000_000));
        assert_eq!(p("139.0"), Ok(13_900_000_000));
        assert_eq!(p("0.0165"), Ok(1_650_000));
        assert_eq!(p("-1.5"), Ok(-150_000_000));
        assert_eq!(p("2.5e-7"), Ok(25));
        assert_eq!(p("2.5E4"), Ok(2_500_000_000_000));
        assert_eq!(p("2.5e+4"), Ok(2_500_000_000_000));
        assert_eq!(p("1e-8"), Ok(1));
        assert_eq!(p("0.000000010"), Ok(1));
        assert_eq!(p("-0"), Ok(0));
    }

    #[test]
    fn refuses_rounding_and_overflow() {
        assert_eq!(p("1e-9"), Err(DecimalError::TooPrecise));
        assert_eq!(p("0.123456789"), Err(DecimalError::TooPrecise));
        assert_eq!(p("92233720369"), Err(DecimalError::Overflow));
        assert_eq!(p("1e400"), Err(DecimalError::Overflow));
        assert_eq!(p("1e-400"), Err(DecimalError::TooPrecise));
        assert_eq!(p("0e400"), Ok(0));
    }

    #[test]
    fn refuses_bad_syntax() {
        for s in ["", "-", ".5", "1.", "1e", "1e+", "+1", "1x", "0x10", " 1", "1 ", "NaN"] {
            assert_eq!(p(s), Err(DecimalError::Syntax), "{s:?}");
        }
    }

    #[test]
    fn from_f64_recovers_the_printed_decimal() {
        assert_eq!(Decimal8::from_f64(2.5e-7).map(|d| d.raw), Ok(25));
        assert_eq!(Decimal8::from_f64(0.0165).map(|d| d.raw), Ok(1_650_000));
        assert_eq!(Decimal8::from_f64(111_245.37).map(|d| d.raw), Ok(11_124_537_000_000));
        assert_eq!(Decimal8::from_f64(0.1 + 0.2), Err(DecimalError::TooPrecise));
        assert_eq!(Decimal8::from_f64(f64::NAN), Err(DecimalError::NotFinite));
        assert_eq!(Decimal8::from_f64(1e300), Err(DecimalError::Overflow));
    }

    #[test]
    fn fast_path_agrees_with_the_text_path() {
        // Decimals as the venue prints them: up to 8 fractional digits, ≤ 15 significant.
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (i % 15) as u32;
            let raw = (x % 10u64.pow(digits)) as i64 * if i % 2 == 0 { 1 } else { -1 };
            let text = Decimal8::from_raw(raw).to_string();
            let v: f64 = text.parse().unwrap();
            assert_eq!(Decimal8::from_f64(v), Ok(Decimal8::from_raw(raw)), "{text}");
            assert_eq!(Decimal8::from_f64_text(v), Ok(Decimal8::from_raw(raw)), "{text}");
            // Arbitrary doubles near it: both paths must agree (value or error).
            let w = f64::from_bits(v.to_bits() ^ (x & 0xff));
            assert_eq!(Decimal8::from_f64(w), Decimal8::from_f64_text(w), "{w:e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["0", "40", "0.0165", "-1.5", "0.00000025", "111245.37"] {
            let d = Decimal8::parse_str(s).unwrap();
            assert_eq!(d.to_string(), s);
        }
    }
}
