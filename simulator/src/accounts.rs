//! Accounts and API keys, loaded from `config/sim_accounts.json` (or built in).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::SimError;

/// Access level of one permission group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// `:none`.
    None,
    /// `:read`.
    Read,
    /// `:read_write`.
    ReadWrite,
}

impl Access {
    fn parse(s: &str) -> Option<Access> {
        match s {
            "none" => Some(Access::None),
            "read" => Some(Access::Read),
            "read_write" => Some(Access::ReadWrite),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::ReadWrite => "read_write",
        }
    }
}

/// Permission groups of a key or token (protocol notes §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// group name (`trade`, `account`, `wallet`, `block_trade`, ...) to access.
    pub groups: BTreeMap<String, Access>,
}

impl Scopes {
    /// Parses `"trade:read_write account:read wallet:none"`; other tokens are ignored.
    pub fn parse(s: &str) -> Scopes {
        let mut groups = BTreeMap::new();
        for tok in s.split_whitespace() {
            if let Some((g, a)) = tok.split_once(':') {
                if let Some(acc) = Access::parse(a) {
                    groups.insert(g.to_string(), acc);
                }
            }
        }
        Scopes { groups }
    }

    /// Access of a group (absent = none).
    pub fn get(&self, group: &str) -> Access {
        self.groups.get(group).copied().unwrap_or(Access::None)
    }

    /// Narrows `self` (the key's maximum) by a requested scope string: groups the request
    /// names get min(requested, allowed); groups it does not name keep the key's level.
    pub fn narrow(&self, requested: &Scopes) -> Scopes {
        let mut groups = self.groups.clone();
        for (g, want) in &requested.groups {
            let allowed = self.get(g);
            groups.insert(g.clone(), (*want).min(allowed));
        }
        Scopes { groups }
    }

    /// Wire form of the permission groups (`account:read trade:read_write`).
    pub fn to_wire(&self) -> String {
        self.groups.iter().map(|(g, a)| format!("{g}:{}", a.as_str())).collect::<Vec<_>>().join(" ")
    }
}

/// Rate limit of one bucket, in requests: sustained rate per second and burst.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct RateSpec {
    /// Sustained requests per second.
    pub rate: f64,
    /// Burst (bucket capacity in requests).
    pub burst: f64,
}

/// Per-account limits (notes §11).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct LimitsSpec {
    /// Matching-engine bucket (buy/sell/edit/cancel*).
    #[serde(default = "default_me")]
    pub matching_engine: RateSpec,
    /// Everything else.
    #[serde(default = "default_non_me")]
    pub non_matching_engine: RateSpec,
}

fn default_me() -> RateSpec {
    // Tier 4 (≤ USD 1M 7-day volume): 5 req/s, burst 20.
    RateSpec { rate: 5.0, burst: 20.0 }
}

fn default_non_me() -> RateSpec {
    // 500 credits per request, cap 50,000, refill 10,000/s ⇒ 20 req/s, burst 100.
    RateSpec { rate: 20.0, burst: 100.0 }
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec { matching_engine: default_me(), non_matching_engine: default_non_me() }
    }
}

/// One API key as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySpec {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Maximum scopes of the key (`trade:read_write account:read_write wallet:none`).
    pub scopes: String,
    /// Free-form name reported as `name:...` in the granted scope.
    #[serde(default)]
    pub name: String,
}

/// One account as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountSpec {
    /// Username.
    pub username: String,
    /// Numeric user id.
    pub user_id: u64,
    /// Starting balances in coin (`{"BTC": 10.0, "ETH": 100.0}`).
    pub balances: BTreeMap<String, f64>,
    /// API keys.
    pub keys: Vec<KeySpec>,
    /// Rate limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Withdrawal whitelist: currency → addresses `private/withdraw` may send to.
    #[serde(default)]
    pub address_book: BTreeMap<String, Vec<String>>,
}

/// The accounts file.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountsFile {
    /// Accounts.
    pub accounts: Vec<AccountSpec>,
}

/// Bounds on what a config may declare (the sim allocates per account and key).
pub const ACCOUNTS_MAX: usize = 64;
/// At most 8 keys per account, as on the venue.
pub const KEYS_PER_ACCOUNT_MAX: usize = 8;

impl AccountsFile {
    /// Reads and validates a file.
    ///
    /// # Errors
    /// Unreadable file, invalid JSON, or a config that breaks the bounds/uniqueness rules.
    pub fn load(path: &Path) -> Result<AccountsFile, SimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SimError::Config(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses and validates JSON text.
    ///
    /// # Errors
    /// Invalid JSON or a config that breaks the bounds/uniqueness rules.
    pub fn parse(text: &str) -> Result<AccountsFile, SimError> {
        let f: AccountsFile =
            serde_json::from_str(text).map_err(|e| SimError::Config(format!("accounts: {e}")))?;
        f.validate()?;
        Ok(f)
    }

    fn validate(&self) -> Result<(), SimError> {
        if self.accounts.is_empty() || self.accounts.len() > ACCOUNTS_MAX {
            return Err(SimError::Config(format!("accounts: need 1..={ACCOUNTS_MAX} accounts")));
        }
        let mut ids = std::collections::HashSet::new();
        for a in &self.accounts {
            if a.keys.is_empty() || a.keys.len() > KEYS_PER_ACCOUNT_MAX {
                return Err(SimError::Config(format!(
                    "account {}: need 1..={KEYS_PER_ACCOUNT_MAX} keys",
                    a.username
                )));
            }
            for k in &a.keys {
                if k.client_id.is_empty() || k.client_secret.len() < 8 {
                    return Err(SimError::Config(format!(
                        "account {}: key needs a client_id and a secret of 8+ chars",
                        a.username
                    )));
                }
                if !ids.insert(k.client_id.clone()) {
                    return Err(SimError::Config(format!("duplicate client_id {}", k.client_id)));
                }
            }
            for (ccy, bal) in &a.balances {
                if crate::instruments::Currency::parse(ccy).is_none()
                    || !bal.is_finite()
                    || *bal < 0.0
                {
                    return Err(SimError::Config(format!(
                        "account {}: bad balance {ccy}={bal}",
                        a.username
                    )));
                }
            }
            for (ccy, addrs) in &a.address_book {
                let bad_addr =
                    |x: &String| x.is_empty() || x.len() > crate::wallet::ADDRESS_BYTES_MAX;
                if crate::instruments::Currency::parse(ccy).is_none()
                    || addrs.len() > crate::wallet::ADDRESSES_PER_CURRENCY_MAX
                    || addrs.iter().any(bad_addr)
                {
                    return Err(SimError::Config(format!(
                        "account {}: bad address book entry for {ccy}",
                        a.username
                    )));
                }
            }
            for r in [a.limits.matching_engine, a.limits.non_matching_engine] {
                if !(r.rate > 0.0 && r.burst >= 1.0 && r.rate.is_finite() && r.burst.is_finite()) {
                    return Err(SimError::Config(format!("account {}: bad limits", a.username)));
                }
            }
        }
        Ok(())
    }

    /// The built-in default, identical to the shipped `config/sim_accounts.json`.
    pub fn builtin() -> AccountsFile {
        // The shipped file is embedded so that the library works without a checkout.
        match Self::parse(BUILTIN) {
            Ok(f) => f,
            Err(e) => unreachable!("built-in accounts are valid: {e}"),
        }
    }
}

/// Copy of `config/sim_accounts.json` (a test asserts they are equal).
pub const BUILTIN: &str = include_str!("../../config/sim_accounts.json");
