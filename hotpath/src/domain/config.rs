//! Strict JSON config machinery shared by the policy loader ([`super::policy`]) and the runtime
//! config loader ([`super::engine_config`]): every key required, unknown keys refused, types and
//! ranges checked, each failure a [`ConfigError`] with a stable [`ConfigErrorCode`].

use serde_json::{Map, Value};

use super::units::Usd;

/// Largest config file we read (a real one is ~2 KB).
pub const CONFIG_FILE_BYTES_MAX: u64 = 1 << 20;
/// Upper bound on any list in a config file.
pub const CONFIG_LIST_LEN_MAX: usize = 64;

/// Stable loader error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigErrorCode {
    /// File missing or unreadable.
    FileUnreadable,
    /// File larger than [`CONFIG_FILE_BYTES_MAX`].
    FileTooLarge,
    /// Not valid JSON.
    InvalidJson,
    /// An object was expected (the root or a section).
    NotAnObject,
    /// A required key is absent.
    MissingKey,
    /// A key not in the schema.
    UnknownKey,
    /// A value of the wrong JSON type.
    WrongType,
    /// An empty string or list where content is required.
    EmptyValue,
    /// A number outside its allowed range (≤ 0 where it must be positive, etc.).
    OutOfRange,
    /// `fail_closed` is not `true`.
    FailClosedNotTrue,
    /// Environment rule broken (unknown name, PAPER trade-capable, LIVE not trade-capable).
    EnvironmentRule,
    /// A string that is not one of the allowed tokens (currency, kind, order type).
    UnknownToken,
    /// The same token twice in a list.
    DuplicateToken,
    /// A token in both allowed and forbidden order types.
    OrderTypeOverlap,
    /// A type Stoic never sends (MARKET, STOP, ...) listed as allowed.
    ForbiddenTypeAllowed,
    /// A risk cap above its environment's ceiling (LIVE: `micro_live_ceiling`). The engine
    /// refuses to start; raising a cap means raising the ceiling in the policy file too.
    CapExceedsCeiling,
}

impl ConfigErrorCode {
    /// The stable code string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FileUnreadable => "CONFIG_FILE_UNREADABLE",
            Self::FileTooLarge => "CONFIG_FILE_TOO_LARGE",
            Self::InvalidJson => "CONFIG_INVALID_JSON",
            Self::NotAnObject => "CONFIG_NOT_AN_OBJECT",
            Self::MissingKey => "CONFIG_MISSING_KEY",
            Self::UnknownKey => "CONFIG_UNKNOWN_KEY",
            Self::WrongType => "CONFIG_WRONG_TYPE",
            Self::EmptyValue => "CONFIG_EMPTY_VALUE",
            Self::OutOfRange => "CONFIG_OUT_OF_RANGE",
            Self::FailClosedNotTrue => "CONFIG_FAIL_CLOSED_NOT_TRUE",
            Self::EnvironmentRule => "CONFIG_ENVIRONMENT_RULE",
            Self::UnknownToken => "CONFIG_UNKNOWN_TOKEN",
            Self::DuplicateToken => "CONFIG_DUPLICATE_TOKEN",
            Self::OrderTypeOverlap => "CONFIG_ORDER_TYPE_OVERLAP",
            Self::ForbiddenTypeAllowed => "CONFIG_FORBIDDEN_TYPE_ALLOWED",
            Self::CapExceedsCeiling => "CONFIG_CAP_EXCEEDS_CEILING",
        }
    }

    /// Failures the engine must not start with. Every other policy failure starts the engine
    /// fail-closed (every intent refused with `ConfigMissingOrInvalid`); caps above the
    /// environment's ceiling are a deliberate-looking file that would trade too big, so the
    /// run is refused outright.
    #[must_use]
    pub const fn refuses_start(self) -> bool {
        matches!(self, Self::CapExceedsCeiling)
    }
}

/// A loader failure: a stable code and the dotted key it concerns (`""` for the whole file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}", code.as_str())]
pub struct ConfigError {
    /// What went wrong.
    pub code: ConfigErrorCode,
    /// Where.
    pub key: String,
}

pub(crate) fn err(code: ConfigErrorCode, key: &str) -> ConfigError {
    ConfigError { code, key: key.to_owned() }
}

/// Walks one JSON object, tracking which keys were consumed so leftovers are `UnknownKey`.
pub(crate) struct Section<'a> {
    map: &'a Map<String, Value>,
    path: String,
    seen: Vec<&'a str>,
}

impl<'a> Section<'a> {
    pub(crate) fn new(value: &'a Value, path: &str) -> Result<Self, ConfigError> {
        let map = value.as_object().ok_or_else(|| err(ConfigErrorCode::NotAnObject, path))?;
        Ok(Self { map, path: path.to_owned(), seen: Vec::new() })
    }

    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn get(&mut self, key: &'a str) -> Result<(&'a Value, String), ConfigError> {
        let path = self.key_path(key);
        let value = self.map.get(key).ok_or_else(|| err(ConfigErrorCode::MissingKey, &path))?;
        self.seen.push(key);
        Ok((value, path))
    }

    pub(crate) fn section(&mut self, key: &'a str) -> Result<Section<'a>, ConfigError> {
        let (value, path) = self.get(key)?;
        Section::new(value, &path)
    }

    pub(crate) fn string(&mut self, key: &'a str) -> Result<String, ConfigError> {
        let (value, path) = self.get(key)?;
        let text = value.as_str().ok_or_else(|| err(ConfigErrorCode::WrongType, &path))?;
        if text.trim().is_empty() {
            return Err(err(ConfigErrorCode::EmptyValue, &path));
        }
        Ok(text.to_owned())
    }

    pub(crate) fn boolean(&mut self, key: &'a str) -> Result<bool, ConfigError> {
        let (value, path) = self.get(key)?;
        value.as_bool().ok_or_else(|| err(ConfigErrorCode::WrongType, &path))
    }

    /// A number > 0 (or ≥ 0 when `allow_zero`), in fixed point.
    pub(crate) fn amount(&mut self, key: &'a str, allow_zero: bool) -> Result<i64, ConfigError> {
        let (value, path) = self.get(key)?;
        if !value.is_number() {
            return Err(err(ConfigErrorCode::WrongType, &path));
        }
        let number = value.as_f64().ok_or_else(|| err(ConfigErrorCode::WrongType, &path))?;
        let fixed =
            Usd::from_f64_checked(number).map_err(|_| err(ConfigErrorCode::OutOfRange, &path))?;
        if fixed.raw() < 0 || (!allow_zero && fixed.raw() == 0) {
            return Err(err(ConfigErrorCode::OutOfRange, &path));
        }
        Ok(fixed.raw())
    }

    /// An integer in `1..=max`.
    pub(crate) fn integer(&mut self, key: &'a str, max: i64) -> Result<i64, ConfigError> {
        let (value, path) = self.get(key)?;
        let number = value.as_i64().ok_or_else(|| err(ConfigErrorCode::WrongType, &path))?;
        if number <= 0 || number > max {
            return Err(err(ConfigErrorCode::OutOfRange, &path));
        }
        Ok(number)
    }

    pub(crate) fn string_list(
        &mut self,
        key: &'a str,
    ) -> Result<(Vec<&'a str>, String), ConfigError> {
        let (value, path) = self.get(key)?;
        let list = value.as_array().ok_or_else(|| err(ConfigErrorCode::WrongType, &path))?;
        if list.is_empty() {
            return Err(err(ConfigErrorCode::EmptyValue, &path));
        }
        if list.len() > CONFIG_LIST_LEN_MAX {
            return Err(err(ConfigErrorCode::OutOfRange, &path));
        }
        let mut out: Vec<&'a str> = Vec::with_capacity(list.len());
        for item in list {
            let text = item.as_str().ok_or_else(|| err(ConfigErrorCode::WrongType, &path))?;
            if text.trim().is_empty() {
                return Err(err(ConfigErrorCode::EmptyValue, &path));
            }
            if out.contains(&text) {
                return Err(err(ConfigErrorCode::DuplicateToken, &path));
            }
            out.push(text);
        }
        Ok((out, path))
    }

    /// Every key present must have been consumed.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        // BTreeMap-backed map (serde_json without preserve_order) iterates keys sorted, so the
        // first unknown key reported is deterministic.
        for key in self.map.keys() {
            if !self.seen.contains(&key.as_str()) {
                return Err(err(ConfigErrorCode::UnknownKey, &self.key_path(key)));
            }
        }
        Ok(())
    }
}

/// Reads a config file with a size bound.
///
/// # Errors
/// [`ConfigErrorCode::FileUnreadable`], [`ConfigErrorCode::FileTooLarge`].
pub fn read_bounded(path: &std::path::Path) -> Result<String, ConfigError> {
    let size = std::fs::metadata(path).map_err(|_| err(ConfigErrorCode::FileUnreadable, ""))?.len();
    if size > CONFIG_FILE_BYTES_MAX {
        return Err(err(ConfigErrorCode::FileTooLarge, ""));
    }
    std::fs::read_to_string(path).map_err(|_| err(ConfigErrorCode::FileUnreadable, ""))
}

/// Parses JSON text.
///
/// # Errors
/// [`ConfigErrorCode::InvalidJson`].
pub fn parse_json(text: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|_| err(ConfigErrorCode::InvalidJson, ""))
}
