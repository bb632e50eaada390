//! Outbound order labels (contract §5.4): `s4:{sid8}:{gid12}:{li}:{ih16}`, at most 64 chars
//! (Deribit's hard limit). Never truncated: too long ⇒ `LabelTooLong` before dispatch.
//!
//! - `sid8`: 8 lower-case hex chars of a fixed-seed xxh64 of the strategy id;
//! - `gid12`: first 12 hex chars of the group id;
//! - `li`: leg index in decimal, no leading zeros;
//! - `ih16`: the 16 hex chars of the intent hash.
//!
//! Labels live inline (`[u8; 64]`), so building one never allocates.

use core::fmt;

use super::intent::{IntentHash, OrderIntent};
use super::reason_codes::RejectReasonCode;

/// Deribit's `label` maximum.
pub const LABEL_LEN_MAX: usize = 64;
/// Every Stoic label starts with this.
pub const LABEL_PREFIX: &str = "s4";

/// Why a label could not be built or parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Would exceed [`LABEL_LEN_MAX`].
    #[error("label longer than 64 chars")]
    TooLong,
    /// Does not start with `s4:`.
    #[error("label prefix is not s4")]
    BadPrefix,
    /// Not exactly five `:`-separated fields.
    #[error("label does not have five fields")]
    FieldCount,
    /// `sid8` is not 8 lower-case hex chars.
    #[error("bad sid8")]
    BadSid,
    /// `gid12` is not 12 lower-case hex chars.
    #[error("bad gid12")]
    BadGid,
    /// Leg index is not a decimal 0..=255 without leading zeros.
    #[error("bad leg index")]
    BadLegIndex,
    /// `ih16` is not 16 lower-case hex chars.
    #[error("bad ih16")]
    BadIntentHash,
    /// A component is empty or contains `:` or non-printable bytes.
    #[error("bad component")]
    BadComponent,
}

impl LabelError {
    /// The reject code an intent gets when its label cannot be built.
    #[must_use]
    pub const fn reject_code(self) -> RejectReasonCode {
        // Every build failure is a label the venue would not accept as ours.
        RejectReasonCode::LabelTooLong
    }
}

/// A label, inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label {
    bytes: [u8; LABEL_LEN_MAX],
    len: u8,
}

/// The parts a label carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabelParts {
    /// Strategy hash prefix.
    pub sid8: [u8; 8],
    /// Group id prefix.
    pub gid12: [u8; 12],
    /// Leg index.
    pub leg_index: u8,
    /// Intent hash.
    pub intent_hash: IntentHash,
}

fn is_lower_hex(text: &[u8], len: usize) -> bool {
    text.len() == len && text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Label {
    /// Joins arbitrary components as `s4:{sid}:{gid}:{li}:{ih}`. This is the general form (the
    /// legacy human format uses full ids and can overflow); [`Self::for_intent`] always fits.
    ///
    /// # Errors
    /// [`LabelError::TooLong`] past 64 chars (no truncation, contract AT-921);
    /// [`LabelError::BadComponent`] for empty components or ones containing `:`.
    pub fn compose(sid: &str, gid: &str, leg_index: u8, ih: &str) -> Result<Self, LabelError> {
        let valid = |part: &str| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        };
        if !valid(sid) || !valid(gid) || !valid(ih) {
            return Err(LabelError::BadComponent);
        }
        let mut leg_digits = [0_u8; 3];
        let leg_text = decimal_u8(leg_index, &mut leg_digits);
        let parts: [&[u8]; 9] = [
            LABEL_PREFIX.as_bytes(),
            b":",
            sid.as_bytes(),
            b":",
            gid.as_bytes(),
            b":",
            leg_text,
            b":",
            ih.as_bytes(),
        ];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > LABEL_LEN_MAX {
            return Err(LabelError::TooLong);
        }
        let mut bytes = [0_u8; LABEL_LEN_MAX];
        let mut at = 0;
        for part in parts {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        // total <= 64.
        Ok(Self { bytes, len: total as u8 })
    }

    /// The label of an intent.
    ///
    /// # Errors
    /// Only if the fixed-width parts stopped fitting (they are 45 chars at most); the gate maps
    /// any error to `LabelTooLong`.
    pub fn for_intent(intent: &OrderIntent) -> Result<Self, LabelError> {
        let fields = intent.fields();
        let sid = fields.strategy_id.sid8();
        let gid = fields.group_id.gid12();
        let ih = intent.hash().to_hex16();
        // All three are ASCII hex by construction; the error arm is unreachable.
        fn text(b: &[u8]) -> Result<&str, LabelError> {
            core::str::from_utf8(b).map_err(|_| LabelError::BadComponent)
        }
        let (sid, gid, ih) = (text(&sid)?, text(&gid)?, text(&ih)?);
        Self::compose(sid, gid, fields.leg_index, ih)
    }

    /// Parses a Stoic label back into its parts.
    ///
    /// # Errors
    /// A [`LabelError`] naming the first bad field.
    pub fn parse(text: &str) -> Result<LabelParts, LabelError> {
        let raw = text.as_bytes();
        if raw.len() > LABEL_LEN_MAX {
            return Err(LabelError::TooLong);
        }
        let mut fields: [&[u8]; 5] = [&[]; 5];
        let mut count = 0;
        for part in raw.split(|&b| b == b':') {
            if count == fields.len() {
                return Err(LabelError::FieldCount);
            }
            fields[count] = part;
            count += 1;
        }
        if fields[0] != LABEL_PREFIX.as_bytes() {
            return Err(LabelError::BadPrefix);
        }
        if count != 5 {
            return Err(LabelError::FieldCount);
        }
        if !is_lower_hex(fields[1], 8) {
            return Err(LabelError::BadSid);
        }
        if !is_lower_hex(fields[2], 12) {
            return Err(LabelError::BadGid);
        }
        let leg = fields[3];
        if leg.is_empty()
            || leg.len() > 3
            || !leg.iter().all(u8::is_ascii_digit)
            || (leg.len() > 1 && leg[0] == b'0')
        {
            return Err(LabelError::BadLegIndex);
        }
        let leg_value = leg.iter().fold(0_u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        let leg_index = u8::try_from(leg_value).map_err(|_| LabelError::BadLegIndex)?;
        if !is_lower_hex(fields[4], 16) {
            return Err(LabelError::BadIntentHash);
        }
        let intent_hash =
            IntentHash::from_hex16(fields[4]).map_err(|_| LabelError::BadIntentHash)?;
        let mut sid8 = [0_u8; 8];
        sid8.copy_from_slice(fields[1]);
        let mut gid12 = [0_u8; 12];
        gid12.copy_from_slice(fields[2]);
        Ok(LabelParts { sid8, gid12, leg_index, intent_hash })
    }

    /// The label text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written (compose validates every component).
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }

    /// Length in chars (= bytes, ASCII).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Never true for a built label; present for API symmetry.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn decimal_u8(value: u8, buf: &mut [u8; 3]) -> &[u8] {
    let mut n = value;
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + n % 10;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({})", self.as_str())
    }
}
impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
