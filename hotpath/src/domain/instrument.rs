//! Deribit instrument names, parsed and classified (venue notes §7.1).
//!
//! Accepted shapes, and nothing else (spot pairs and combos are out of scope and rejected):
//! - future `BTC-27JUN25`, perpetual `BTC-PERPETUAL`, linear perpetual `BTC_USDC-PERPETUAL`;
//! - option `BTC-1AUG25-110000-C`, linear option `XRP_USDC-30JUN23-0d625-C` (`d` = decimal point).
//!
//! Names are parsed into a fixed-size, `Copy` [`InstrumentName`] so that intents carrying them
//! never allocate. Only canonical spellings are accepted (no leading-zero days, upper-case
//! months), so that two different strings can never name the same instrument.

use core::fmt;

use super::units::{AmountUnit, Price, FIXED_DECIMALS, FIXED_SCALE};

/// Longest instrument name we accept; the longest real Deribit option name is ~26 chars.
pub const INSTRUMENT_NAME_LEN_MAX: usize = 40;
/// Longest base-currency code (`BTC`, `ETH`, `MATIC`, `PAXG` ...).
pub const CURRENCY_LEN_MAX: usize = 8;
/// Expiries settle at 08:00 UTC (venue notes §7.1).
pub const EXPIRY_HOUR_UTC: i64 = 8;

/// Why an instrument name was refused. Every malformed input maps to one of these; the parser
/// never panics (see the fuzz-style tests in `tests/domain_instruments.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentParseError {
    /// Empty string.
    #[error("instrument name is empty")]
    Empty,
    /// Longer than [`INSTRUMENT_NAME_LEN_MAX`].
    #[error("instrument name too long")]
    TooLong,
    /// A byte outside `A-Z 0-9 _ - d`.
    #[error("instrument name has an invalid character")]
    InvalidChar,
    /// Wrong number of `-`-separated parts, or a spot/combo form.
    #[error("unsupported instrument shape")]
    UnsupportedShape,
    /// Base currency not 2..=8 upper-case letters/digits.
    #[error("bad base currency")]
    BadCurrency,
    /// `_XXX` suffix other than `_USDC` / `_USDT`.
    #[error("bad quote currency suffix")]
    BadQuoteCurrency,
    /// Expiry not `{D}{MMM}{YY}` with a real calendar day.
    #[error("bad expiry")]
    BadExpiry,
    /// Strike empty, zero, non-numeric or too precise.
    #[error("bad strike")]
    BadStrike,
    /// Option suffix other than `C` / `P`.
    #[error("bad option type")]
    BadOptionRight,
}

impl InstrumentParseError {
    /// The reject code an intent gets when its instrument name does not parse (at the strategy
    /// or venue decode boundary; a parsed `Instrument` cannot be malformed).
    #[must_use]
    pub const fn reject_code(self) -> crate::domain::reason_codes::RejectReasonCode {
        crate::domain::reason_codes::RejectReasonCode::InstrumentUnknown
    }

    /// Stable code string for logs and evidence.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::TooLong => "TooLong",
            Self::InvalidChar => "InvalidChar",
            Self::UnsupportedShape => "UnsupportedShape",
            Self::BadCurrency => "BadCurrency",
            Self::BadQuoteCurrency => "BadQuoteCurrency",
            Self::BadExpiry => "BadExpiry",
            Self::BadStrike => "BadStrike",
            Self::BadOptionRight => "BadOptionRight",
        }
    }
}

/// A validated instrument name stored inline (no heap), ordered like its string form.
#[derive(Clone, Copy)]
pub struct InstrumentName {
    bytes: [u8; INSTRUMENT_NAME_LEN_MAX],
    len: u8,
}

impl InstrumentName {
    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `parse`); the fallback is unreachable.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// The name's bytes (ASCII).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for InstrumentName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for InstrumentName {}
impl PartialOrd for InstrumentName {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InstrumentName {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}
impl core::hash::Hash for InstrumentName {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}
impl core::borrow::Borrow<str> for InstrumentName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
impl fmt::Debug for InstrumentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentName({})", self.as_str())
    }
}
impl fmt::Display for InstrumentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A base-currency code stored inline (`BTC`, `ETH`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency {
    bytes: [u8; CURRENCY_LEN_MAX],
    len: u8,
}

impl Currency {
    /// Validates an upper-case code of 2..=8 letters/digits.
    ///
    /// # Errors
    /// [`InstrumentParseError::BadCurrency`].
    pub fn new_checked(code: &str) -> Result<Self, InstrumentParseError> {
        let raw = code.as_bytes();
        if raw.len() < 2
            || raw.len() > CURRENCY_LEN_MAX
            || !raw.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            || !raw[0].is_ascii_uppercase()
        {
            return Err(InstrumentParseError::BadCurrency);
        }
        let mut bytes = [0_u8; CURRENCY_LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        // len <= 8 by the check above.
        Ok(Self { bytes, len: raw.len() as u8 })
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

/// Instrument kind (spot and combos are not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstrumentKind {
    /// European option.
    Option,
    /// Dated future.
    Future,
    /// Perpetual swap.
    Perpetual,
}

impl InstrumentKind {
    /// Policy spelling (`allowed_instrument_kinds`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Option => "option",
            Self::Future => "future",
            Self::Perpetual => "perpetual",
        }
    }
}

/// How the instrument settles and is margined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Settlement {
    /// Coin-margined (`instrument_type = reversed`): `BTC-PERPETUAL`, `BTC-27DEC24-60000-C`.
    Inverse,
    /// Stablecoin-margined (`*_USDC`, `*_USDT`).
    Linear,
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionRight {
    /// Call (`-C`).
    Call,
    /// Put (`-P`).
    Put,
}

/// A calendar expiry date (settles at 08:00 UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryDate {
    /// Full year (2000..=2099).
    pub year: u16,
    /// 1..=12.
    pub month: u8,
    /// 1..=31, valid for the month.
    pub day: u8,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC",
];

const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm; exact for all i64 years here).
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl ExpiryDate {
    /// Parses `{D}{MMM}{YY}` (`1AUG25`, `27DEC24`; no leading zero on the day).
    ///
    /// # Errors
    /// [`InstrumentParseError::BadExpiry`].
    pub fn parse(text: &str) -> Result<Self, InstrumentParseError> {
        let raw = text.as_bytes();
        if raw.len() != 6 && raw.len() != 7 {
            return Err(InstrumentParseError::BadExpiry);
        }
        let day_len = raw.len() - 5;
        let day_digits = &raw[..day_len];
        if !day_digits.iter().all(u8::is_ascii_digit) || day_digits[0] == b'0' {
            return Err(InstrumentParseError::BadExpiry);
        }
        let day = day_digits.iter().fold(0_u8, |acc, d| acc * 10 + (d - b'0'));
        let month_text = &raw[day_len..day_len + 3];
        let month = MONTHS
            .iter()
            .position(|m| m.as_slice() == month_text)
            .ok_or(InstrumentParseError::BadExpiry)?;
        let year_digits = &raw[day_len + 3..];
        if !year_digits.iter().all(u8::is_ascii_digit) {
            return Err(InstrumentParseError::BadExpiry);
        }
        let year = 2000 + u16::from((year_digits[0] - b'0') * 10 + (year_digits[1] - b'0'));
        // position() < 12, so the cast is exact.
        let month = month as u8 + 1;
        if day == 0 || day > days_in_month(i64::from(year), month) {
            return Err(InstrumentParseError::BadExpiry);
        }
        Ok(Self { year, month, day })
    }

    /// The settlement instant: 08:00 UTC on the expiry date, in ms since the epoch.
    #[must_use]
    pub const fn expiry_ms(self) -> i64 {
        let days = days_from_civil(self.year as i64, self.month as i64, self.day as i64);
        (days * 86_400 + EXPIRY_HOUR_UTC * 3_600) * 1_000
    }

    fn write_to(self, out: &mut NameWriter) {
        out.push_u64(u64::from(self.day));
        out.push(MONTHS[usize::from(self.month - 1)]);
        out.push_u64(u64::from(self.year % 100) / 10);
        out.push_u64(u64::from(self.year % 10));
    }
}

/// A parsed, classified instrument. `Copy`, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instrument {
    name: InstrumentName,
    base: Currency,
    settlement: Settlement,
    kind: InstrumentKind,
    expiry: Option<ExpiryDate>,
    strike: Option<Price>,
    right: Option<OptionRight>,
}

fn parse_strike(text: &str, settlement: Settlement) -> Result<Price, InstrumentParseError> {
    let raw = text.as_bytes();
    if raw.is_empty() || raw.len() > 16 || raw[0] == b'0' && raw.len() > 1 && raw[1] != b'd' {
        return Err(InstrumentParseError::BadStrike);
    }
    let (whole_digits, frac_digits) = match raw.iter().position(|&b| b == b'd') {
        // Only linear options write a decimal point, as `d` (venue notes §7.1).
        Some(at) if settlement == Settlement::Linear => (&raw[..at], &raw[at + 1..]),
        Some(_) => return Err(InstrumentParseError::BadStrike),
        None => (raw, &raw[raw.len()..]),
    };
    let digits_ok = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    if !digits_ok(whole_digits)
        || (!frac_digits.is_empty() || raw.contains(&b'd')) && !digits_ok(frac_digits)
        || frac_digits.len() > FIXED_DECIMALS as usize
        || frac_digits.last() == Some(&b'0')
    {
        return Err(InstrumentParseError::BadStrike);
    }
    let mut whole: i64 = 0;
    for &d in whole_digits {
        whole = whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(i64::from(d - b'0')))
            .filter(|w| *w <= super::units::FIXED_WHOLE_MAX)
            .ok_or(InstrumentParseError::BadStrike)?;
    }
    let mut frac: i64 = 0;
    for &d in frac_digits {
        frac = frac * 10 + i64::from(d - b'0');
    }
    // frac_digits.len() <= 8, so the exponent is in 0..=8.
    let frac_scaled = frac * 10_i64.pow(FIXED_DECIMALS - frac_digits.len() as u32);
    let strike = Price::from_raw(whole * FIXED_SCALE + frac_scaled);
    if !strike.is_positive() {
        return Err(InstrumentParseError::BadStrike);
    }
    Ok(strike)
}

/// Builds a canonical name into an inline buffer; overflow is reported, never panics.
struct NameWriter {
    bytes: [u8; INSTRUMENT_NAME_LEN_MAX],
    len: usize,
    overflow: bool,
}

impl NameWriter {
    const fn new() -> Self {
        Self { bytes: [0; INSTRUMENT_NAME_LEN_MAX], len: 0, overflow: false }
    }
    fn push(&mut self, part: &[u8]) {
        for &b in part {
            if self.len == INSTRUMENT_NAME_LEN_MAX {
                self.overflow = true;
                return;
            }
            self.bytes[self.len] = b;
            self.len += 1;
        }
    }
    fn push_u64(&mut self, value: u64) {
        let mut digits = [0_u8; 20];
        let mut n = value;
        let mut at = digits.len();
        loop {
            at -= 1;
            // n % 10 < 10, the cast is exact.
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }
}

impl Instrument {
    /// Parses and classifies a Deribit instrument name.
    ///
    /// # Errors
    /// An [`InstrumentParseError`] naming what is wrong; never panics.
    pub fn parse(text: &str) -> Result<Self, InstrumentParseError> {
        let raw = text.as_bytes();
        if raw.is_empty() {
            return Err(InstrumentParseError::Empty);
        }
        if raw.len() > INSTRUMENT_NAME_LEN_MAX {
            return Err(InstrumentParseError::TooLong);
        }
        if !raw.iter().all(|&b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'd'
        }) {
            return Err(InstrumentParseError::InvalidChar);
        }
        let mut parts = [""; 4];
        let mut count = 0_usize;
        for part in text.split('-') {
            if count == parts.len() {
                return Err(InstrumentParseError::UnsupportedShape);
            }
            parts[count] = part;
            count += 1;
        }
        let (base, settlement) = match parts[0].split_once('_') {
            None => (Currency::new_checked(parts[0])?, Settlement::Inverse),
            Some((base, "USDC" | "USDT")) => (Currency::new_checked(base)?, Settlement::Linear),
            Some(_) => return Err(InstrumentParseError::BadQuoteCurrency),
        };
        let (kind, expiry, strike, right) = match count {
            2 if parts[1] == "PERPETUAL" => (InstrumentKind::Perpetual, None, None, None),
            2 => (InstrumentKind::Future, Some(ExpiryDate::parse(parts[1])?), None, None),
            4 => {
                let expiry = ExpiryDate::parse(parts[1])?;
                let strike = parse_strike(parts[2], settlement)?;
                let right = match parts[3] {
                    "C" => OptionRight::Call,
                    "P" => OptionRight::Put,
                    _ => return Err(InstrumentParseError::BadOptionRight),
                };
                (InstrumentKind::Option, Some(expiry), Some(strike), Some(right))
            }
            _ => return Err(InstrumentParseError::UnsupportedShape),
        };
        if raw.contains(&b'd') && kind != InstrumentKind::Option {
            return Err(InstrumentParseError::InvalidChar);
        }
        let mut bytes = [0_u8; INSTRUMENT_NAME_LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        // raw.len() <= 40 by the check above.
        let name = InstrumentName { bytes, len: raw.len() as u8 };
        let parsed = Self { name, base, settlement, kind, expiry, strike, right };
        // Canonical spelling only: the name we would print must equal the input, so that one
        // instrument has exactly one key in every map and one hash input.
        if parsed.canonical_name().as_ref().map(InstrumentName::as_bytes) != Some(raw) {
            return Err(InstrumentParseError::UnsupportedShape);
        }
        Ok(parsed)
    }

    /// Re-renders the name from the parsed fields; `None` if it would not fit.
    fn canonical_name(&self) -> Option<InstrumentName> {
        let mut out = NameWriter::new();
        out.push(self.base.as_str().as_bytes());
        if self.settlement == Settlement::Linear {
            // Keep the original stable-coin suffix (USDC or USDT).
            let original = self.name.as_bytes();
            let underscore = original.iter().position(|&b| b == b'_')?;
            out.push(original.get(underscore..underscore + 5)?);
        }
        out.push(b"-");
        match self.kind {
            InstrumentKind::Perpetual => out.push(b"PERPETUAL"),
            InstrumentKind::Future => self.expiry?.write_to(&mut out),
            InstrumentKind::Option => {
                self.expiry?.write_to(&mut out);
                out.push(b"-");
                let strike = self.strike?.raw();
                let whole = strike / FIXED_SCALE;
                let mut frac = strike % FIXED_SCALE;
                out.push_u64(u64::try_from(whole).ok()?);
                if frac != 0 {
                    out.push(b"d");
                    let mut digits = FIXED_DECIMALS as usize;
                    while frac % 10 == 0 {
                        frac /= 10;
                        digits -= 1;
                    }
                    let mut buf = [b'0'; 8];
                    let mut at = digits;
                    let mut n = frac;
                    while at > 0 {
                        at -= 1;
                        // n % 10 < 10, exact.
                        buf[at] = b'0' + (n % 10) as u8;
                        n /= 10;
                    }
                    out.push(&buf[..digits]);
                }
                out.push(b"-");
                out.push(if self.right? == OptionRight::Call { b"C" } else { b"P" });
            }
        }
        if out.overflow {
            return None;
        }
        // out.len <= 40.
        Some(InstrumentName { bytes: out.bytes, len: out.len as u8 })
    }

    /// The validated name.
    #[must_use]
    pub const fn name(&self) -> InstrumentName {
        self.name
    }
    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.name.as_str()
    }
    /// Base currency (`BTC` for `BTC_USDC-PERPETUAL` too).
    #[must_use]
    pub const fn base_currency(&self) -> Currency {
        self.base
    }
    /// Inverse or linear.
    #[must_use]
    pub const fn settlement(&self) -> Settlement {
        self.settlement
    }
    /// Option, future or perpetual.
    #[must_use]
    pub const fn kind(&self) -> InstrumentKind {
        self.kind
    }
    /// Expiry date (none for perpetuals).
    #[must_use]
    pub const fn expiry(&self) -> Option<ExpiryDate> {
        self.expiry
    }
    /// Strike (options only).
    #[must_use]
    pub const fn strike(&self) -> Option<Price> {
        self.strike
    }
    /// Call/put (options only).
    #[must_use]
    pub const fn option_right(&self) -> Option<OptionRight> {
        self.right
    }
    /// What this instrument's Deribit `amount` counts (contract §5.1, venue notes §7.6):
    /// USD for inverse futures/perps, base coin for everything else.
    #[must_use]
    pub const fn amount_unit(&self) -> AmountUnit {
        match (self.kind, self.settlement) {
            (InstrumentKind::Future | InstrumentKind::Perpetual, Settlement::Inverse) => {
                AmountUnit::Usd
            }
            _ => AmountUnit::Coin,
        }
    }
}
