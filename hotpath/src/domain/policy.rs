//! The typed launch policy (`config/policy.json`) and its strict loader (contract §9.6–9.7).
//!
//! Strict means: the file must exist and parse; the root must be an object; every key listed in
//! [`CRITICAL_KEYS`] must be present with the right type and a sane value; any key not in the
//! schema is an error (a typo must not silently fall back to a default). Every failure is a
//! [`PolicyError`] with a stable [`PolicyErrorCode`]. There are no defaults: a missing key is an
//! error, never a guess. The gates turn any loader error into `ConfigMissingOrInvalid`.
//!
//! Floats appear only while decoding; limits are stored in fixed point.

use std::path::Path;

use serde_json::Value;

use super::config::{err, parse_json, read_bounded, Section};
pub use super::config::{ConfigError as PolicyError, ConfigErrorCode as PolicyErrorCode};

use super::instrument::{Currency, InstrumentKind};
use super::units::{Qty, Usd};

/// Every key of the policy schema, as dotted paths. All are required (critical): removing any
/// one makes the loader fail, and the gates then refuse every intent with
/// `ConfigMissingOrInvalid`. `docs/critical_config_keys.md` explains each.
pub const CRITICAL_KEYS: &[&str] = &[
    "policy_id",
    "policy_version",
    "contract_version_target",
    "environment",
    "fail_closed",
    "environments",
    "environments.DEV",
    "environments.DEV.trade_capable",
    "environments.DEV.purpose",
    "environments.STAGING",
    "environments.STAGING.trade_capable",
    "environments.STAGING.purpose",
    "environments.PAPER",
    "environments.PAPER.trade_capable",
    "environments.PAPER.purpose",
    "environments.LIVE",
    "environments.LIVE.trade_capable",
    "environments.LIVE.purpose",
    "venues",
    "allowed_currencies",
    "allowed_instrument_kinds",
    "allowed_order_types",
    "forbidden_order_types",
    "risk_limits",
    "risk_limits.max_position_coin_per_instrument",
    "risk_limits.max_position_usd_per_instrument",
    "risk_limits.max_gross_notional_usd",
    "risk_limits.max_order_notional_usd",
    "risk_limits.max_daily_loss_usd",
    "risk_limits.max_orders_per_minute",
    "risk_limits.order_rate_burst",
    "micro_live_ceiling",
    "micro_live_ceiling.max_position_coin_per_instrument",
    "micro_live_ceiling.max_position_usd_per_instrument",
    "micro_live_ceiling.max_order_notional_usd",
    "micro_live_ceiling.max_gross_notional_usd",
    "micro_live_ceiling.max_daily_loss_usd",
    "data_limits",
    "data_limits.instrument_cache_ttl_s",
    "data_limits.l2_book_snapshot_max_age_ms",
    "data_limits.fee_cache_hard_s",
    "data_limits.expiry_delist_buffer_s",
    "data_limits.max_spread_bps_open",
    "data_limits.max_slippage_bps",
    "edge_policy",
    "edge_policy.policy_label",
    "edge_policy.version",
    "edge_policy.min_edge_usd",
];

/// Upper bound on the order rate the policy may grant (per minute and burst).
pub const ORDER_RATE_PER_MINUTE_MAX: i64 = 60_000;

/// Deployment environment (contract §9.2 P0-A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Environment {
    /// Local development and tests.
    Dev,
    /// Deribit testnet.
    Staging,
    /// Real strategy, simulated venue.
    Paper,
    /// Production.
    Live,
}

impl Environment {
    /// All, in policy order.
    pub const ALL: [Self; 4] = [Self::Dev, Self::Staging, Self::Paper, Self::Live];
    /// Policy spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "DEV",
            Self::Staging => "STAGING",
            Self::Paper => "PAPER",
            Self::Live => "LIVE",
        }
    }
    /// Parses the policy spelling.
    #[must_use]
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// One environment's declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSpec {
    /// May send real orders.
    pub trade_capable: bool,
    /// Human purpose.
    pub purpose: String,
}

/// Order-type tokens of `allowed_order_types` / `forbidden_order_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderTypeToken {
    /// Plain limit order.
    Limit,
    /// `post_only`.
    PostOnly,
    /// `reduce_only`.
    ReduceOnly,
    /// `immediate_or_cancel`.
    Ioc,
    /// `fill_or_kill`.
    Fok,
    /// `market` (never sent).
    Market,
    /// stop types (never sent).
    Stop,
    /// trigger orders (never sent).
    Trigger,
    /// hidden (`max_show = 0`, never sent).
    Hidden,
    /// iceberg (never sent).
    Iceberg,
    /// linked OTO/OCO/OTOCO (never sent).
    Linked,
}

impl OrderTypeToken {
    /// All tokens.
    pub const ALL: [Self; 11] = [
        Self::Limit,
        Self::PostOnly,
        Self::ReduceOnly,
        Self::Ioc,
        Self::Fok,
        Self::Market,
        Self::Stop,
        Self::Trigger,
        Self::Hidden,
        Self::Iceberg,
        Self::Linked,
    ];
    /// Policy spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "LIMIT",
            Self::PostOnly => "POST_ONLY",
            Self::ReduceOnly => "REDUCE_ONLY",
            Self::Ioc => "IOC",
            Self::Fok => "FOK",
            Self::Market => "MARKET",
            Self::Stop => "STOP",
            Self::Trigger => "TRIGGER",
            Self::Hidden => "HIDDEN",
            Self::Iceberg => "ICEBERG",
            Self::Linked => "LINKED",
        }
    }
    /// Types the engine can never send, whatever the policy says (contract §5.16).
    #[must_use]
    pub const fn never_sendable(self) -> bool {
        matches!(
            self,
            Self::Market | Self::Stop | Self::Trigger | Self::Hidden | Self::Iceberg | Self::Linked
        )
    }
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`OrderTypeToken`]s (bitmask; lookups never allocate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderTypeSet(u16);

impl OrderTypeSet {
    /// Membership.
    #[must_use]
    pub const fn contains(self, token: OrderTypeToken) -> bool {
        self.0 & token.bit() != 0
    }
    /// From tokens (tests and tools).
    #[must_use]
    pub fn from_tokens(tokens: &[OrderTypeToken]) -> Self {
        Self(tokens.iter().fold(0, |acc, t| acc | t.bit()))
    }
}

/// `risk_limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLimits {
    /// Per-instrument position cap for coin-sized instruments (options, linear).
    pub max_position_coin_per_instrument: Qty,
    /// Per-instrument position cap for USD-sized instruments (inverse futures/perps).
    pub max_position_usd_per_instrument: Qty,
    /// Portfolio gross notional cap (current + pending + this order).
    pub max_gross_notional_usd: Usd,
    /// Single-order notional cap.
    pub max_order_notional_usd: Usd,
    /// Daily loss at which opens stop.
    pub max_daily_loss_usd: Usd,
    /// Token-bucket refill rate.
    pub max_orders_per_minute: i64,
    /// Token-bucket capacity.
    pub order_rate_burst: i64,
}

/// `micro_live_ceiling`: the LIVE environment's ceiling until certified. A LIVE policy whose
/// `risk_limits` exceed any of these is refused ([`PolicyErrorCode::CapExceedsCeiling`]), so the
/// caps can only be raised by editing both in the policy file (no flag or variable can).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicroLiveCeiling {
    /// Per-instrument position ceiling in coin.
    pub max_position_coin_per_instrument: Qty,
    /// Per-instrument position ceiling in USD amount.
    pub max_position_usd_per_instrument: Qty,
    /// Single-order notional ceiling.
    pub max_order_notional_usd: Usd,
    /// Gross notional ceiling.
    pub max_gross_notional_usd: Usd,
    /// Daily loss ceiling.
    pub max_daily_loss_usd: Usd,
}

/// `data_limits`: freshness and market-quality bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// Instrument metadata max age (contract §5.2, default 3600).
    pub instrument_cache_ttl_s: i64,
    /// L2 book max age for opens (contract §5.9, default 1000).
    pub l2_book_snapshot_max_age_ms: i64,
    /// Fee model hard staleness (ruling 4: 900).
    pub fee_cache_hard_s: i64,
    /// Expiry delist buffer (ruling 4: 60).
    pub expiry_delist_buffer_s: i64,
    /// Widest best bid/ask spread an open may face, basis points of mid.
    pub max_spread_bps_open: i64,
    /// Max WAP slippage of a marketable open (contract §5.9, default 10).
    pub max_slippage_bps: i64,
}

/// `edge_policy`: the POLICY-labelled net-edge gate (never blocks reducing intents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgePolicy {
    /// Label shown with rejects (`EDGE-POLICY`).
    pub policy_label: String,
    /// Version carried in every edge reject.
    pub version: u32,
    /// Minimum net edge in USD.
    pub min_edge_usd: Usd,
}

/// The loaded, validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `LP-001`.
    pub policy_id: String,
    /// Policy version string.
    pub policy_version: String,
    /// Contract version it targets.
    pub contract_version_target: String,
    /// Environment this process runs as.
    pub environment: Environment,
    /// Declared environments, in [`Environment::ALL`] order.
    pub environments: [EnvironmentSpec; 4],
    /// Venues (non-empty).
    pub venues: Vec<String>,
    /// Currencies that may be traded.
    pub allowed_currencies: Vec<Currency>,
    /// Kinds that may be traded.
    pub allowed_instrument_kinds: [bool; 3],
    /// Allowed order-type tokens.
    pub allowed_order_types: OrderTypeSet,
    /// Forbidden order-type tokens.
    pub forbidden_order_types: OrderTypeSet,
    /// Limits as written.
    pub risk_limits: RiskLimits,
    /// LIVE ceiling.
    pub micro_live_ceiling: MicroLiveCeiling,
    /// Data limits.
    pub data_limits: DataLimits,
    /// Edge policy.
    pub edge_policy: EdgePolicy,
}

/// The first `risk_limits` key above its environment's ceiling, if any. Only LIVE has a
/// ceiling: DEV and PAPER trade nothing real, STAGING trades testnet money.
fn cap_above_ceiling(
    environment: Environment,
    limits: &RiskLimits,
    ceiling: &MicroLiveCeiling,
) -> Option<&'static str> {
    if environment != Environment::Live {
        return None;
    }
    let checks = [
        (
            limits.max_position_coin_per_instrument > ceiling.max_position_coin_per_instrument,
            "risk_limits.max_position_coin_per_instrument",
        ),
        (
            limits.max_position_usd_per_instrument > ceiling.max_position_usd_per_instrument,
            "risk_limits.max_position_usd_per_instrument",
        ),
        (
            limits.max_gross_notional_usd > ceiling.max_gross_notional_usd,
            "risk_limits.max_gross_notional_usd",
        ),
        (
            limits.max_order_notional_usd > ceiling.max_order_notional_usd,
            "risk_limits.max_order_notional_usd",
        ),
        (limits.max_daily_loss_usd > ceiling.max_daily_loss_usd, "risk_limits.max_daily_loss_usd"),
    ];
    checks.into_iter().find(|(above, _)| *above).map(|(_, key)| key)
}

fn order_types<'a>(section: &mut Section<'a>, key: &'a str) -> Result<OrderTypeSet, PolicyError> {
    let (tokens, path) = section.string_list(key)?;
    let mut set = OrderTypeSet::default();
    for text in tokens {
        let token = OrderTypeToken::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| err(PolicyErrorCode::UnknownToken, &path))?;
        set.0 |= token.bit();
    }
    Ok(set)
}

impl Policy {
    /// Reads and validates a policy file.
    ///
    /// # Errors
    /// [`PolicyErrorCode::FileUnreadable`] / [`PolicyErrorCode::FileTooLarge`], then anything
    /// [`Self::from_json_str`] returns.
    pub fn load_from_path(path: &Path) -> Result<Self, PolicyError> {
        Self::from_json_str(&read_bounded(path)?)
    }

    /// Parses and validates policy JSON text.
    ///
    /// # Errors
    /// [`PolicyErrorCode::InvalidJson`] or anything [`Self::from_value`] returns.
    pub fn from_json_str(text: &str) -> Result<Self, PolicyError> {
        Self::from_value(&parse_json(text)?)
    }

    /// Validates an already-parsed policy document.
    ///
    /// # Errors
    /// A [`PolicyError`] for the first rule broken (keys are checked in schema order).
    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let mut root = Section::new(value, "")?;
        let policy_id = root.string("policy_id")?;
        let policy_version = root.string("policy_version")?;
        let contract_version_target = root.string("contract_version_target")?;
        let environment_text = root.string("environment")?;
        let environment = Environment::from_wire(&environment_text)
            .ok_or_else(|| err(PolicyErrorCode::EnvironmentRule, "environment"))?;
        if !root.boolean("fail_closed")? {
            return Err(err(PolicyErrorCode::FailClosedNotTrue, "fail_closed"));
        }

        let mut envs = root.section("environments")?;
        let mut specs: Vec<EnvironmentSpec> = Vec::with_capacity(4);
        for env in Environment::ALL {
            let mut spec = envs.section(env.as_str())?;
            let trade_capable = spec.boolean("trade_capable")?;
            let purpose = spec.string("purpose")?;
            spec.finish()?;
            let rule_ok = match env {
                Environment::Paper => !trade_capable,
                Environment::Live => trade_capable,
                Environment::Dev | Environment::Staging => true,
            };
            if !rule_ok {
                return Err(err(
                    PolicyErrorCode::EnvironmentRule,
                    &format!("environments.{}.trade_capable", env.as_str()),
                ));
            }
            specs.push(EnvironmentSpec { trade_capable, purpose });
        }
        envs.finish()?;
        let environments: [EnvironmentSpec; 4] =
            specs.try_into().map_err(|_| err(PolicyErrorCode::EnvironmentRule, "environments"))?;

        let (venue_list, _) = root.string_list("venues")?;
        let venues = venue_list.into_iter().map(str::to_owned).collect();

        let (currency_list, currency_path) = root.string_list("allowed_currencies")?;
        let allowed_currencies = currency_list
            .into_iter()
            .map(|c| {
                Currency::new_checked(c)
                    .map_err(|_| err(PolicyErrorCode::UnknownToken, &currency_path))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let (kind_list, kind_path) = root.string_list("allowed_instrument_kinds")?;
        let mut allowed_instrument_kinds = [false; 3];
        for text in kind_list {
            let kind = [InstrumentKind::Option, InstrumentKind::Future, InstrumentKind::Perpetual]
                .into_iter()
                .find(|k| k.as_str() == text)
                .ok_or_else(|| err(PolicyErrorCode::UnknownToken, &kind_path))?;
            allowed_instrument_kinds[kind as usize] = true;
        }

        let allowed_order_types = order_types(&mut root, "allowed_order_types")?;
        let forbidden_order_types = order_types(&mut root, "forbidden_order_types")?;
        if allowed_order_types.0 & forbidden_order_types.0 != 0 {
            return Err(err(PolicyErrorCode::OrderTypeOverlap, "forbidden_order_types"));
        }
        if OrderTypeToken::ALL
            .into_iter()
            .any(|t| t.never_sendable() && allowed_order_types.contains(t))
        {
            return Err(err(PolicyErrorCode::ForbiddenTypeAllowed, "allowed_order_types"));
        }
        if !allowed_order_types.contains(OrderTypeToken::Limit) {
            // Limit is the only type Stoic sends; a policy without it could never trade, which is
            // surely a typo rather than an intent.
            return Err(err(PolicyErrorCode::UnknownToken, "allowed_order_types"));
        }

        let mut risk = root.section("risk_limits")?;
        let risk_limits = RiskLimits {
            max_position_coin_per_instrument: Qty::from_raw(
                risk.amount("max_position_coin_per_instrument", false)?,
            ),
            max_position_usd_per_instrument: Qty::from_raw(
                risk.amount("max_position_usd_per_instrument", false)?,
            ),
            max_gross_notional_usd: Usd::from_raw(risk.amount("max_gross_notional_usd", false)?),
            max_order_notional_usd: Usd::from_raw(risk.amount("max_order_notional_usd", false)?),
            max_daily_loss_usd: Usd::from_raw(risk.amount("max_daily_loss_usd", false)?),
            max_orders_per_minute: risk
                .integer("max_orders_per_minute", ORDER_RATE_PER_MINUTE_MAX)?,
            order_rate_burst: risk.integer("order_rate_burst", ORDER_RATE_PER_MINUTE_MAX)?,
        };
        risk.finish()?;

        let mut ceiling = root.section("micro_live_ceiling")?;
        let micro_live_ceiling = MicroLiveCeiling {
            max_position_coin_per_instrument: Qty::from_raw(
                ceiling.amount("max_position_coin_per_instrument", false)?,
            ),
            max_position_usd_per_instrument: Qty::from_raw(
                ceiling.amount("max_position_usd_per_instrument", false)?,
            ),
            max_order_notional_usd: Usd::from_raw(ceiling.amount("max_order_notional_usd", false)?),
            max_gross_notional_usd: Usd::from_raw(ceiling.amount("max_gross_notional_usd", false)?),
            max_daily_loss_usd: Usd::from_raw(ceiling.amount("max_daily_loss_usd", false)?),
        };
        ceiling.finish()?;
        if let Some(key) = cap_above_ceiling(environment, &risk_limits, &micro_live_ceiling) {
            return Err(err(PolicyErrorCode::CapExceedsCeiling, key));
        }

        let mut data = root.section("data_limits")?;
        // Bounds: a day for time limits, 100 % (10 000 bps) for basis-point limits.
        let data_limits = DataLimits {
            instrument_cache_ttl_s: data.integer("instrument_cache_ttl_s", 86_400)?,
            l2_book_snapshot_max_age_ms: data.integer("l2_book_snapshot_max_age_ms", 86_400_000)?,
            fee_cache_hard_s: data.integer("fee_cache_hard_s", 86_400)?,
            expiry_delist_buffer_s: data.integer("expiry_delist_buffer_s", 86_400)?,
            max_spread_bps_open: data.integer("max_spread_bps_open", 10_000)?,
            max_slippage_bps: data.integer("max_slippage_bps", 10_000)?,
        };
        data.finish()?;

        let mut edge = root.section("edge_policy")?;
        let policy_label = edge.string("policy_label")?;
        let version_text = edge.string("version")?;
        let version = version_text
            .parse::<u32>()
            .ok()
            .filter(|_| version_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| err(PolicyErrorCode::OutOfRange, "edge_policy.version"))?;
        let min_edge_usd = Usd::from_raw(edge.amount("min_edge_usd", true)?);
        edge.finish()?;
        root.finish()?;

        Ok(Self {
            policy_id,
            policy_version,
            contract_version_target,
            environment,
            environments,
            venues,
            allowed_currencies,
            allowed_instrument_kinds,
            allowed_order_types,
            forbidden_order_types,
            risk_limits,
            micro_live_ceiling,
            data_limits,
            edge_policy: EdgePolicy { policy_label, version, min_edge_usd },
        })
    }

    /// Limits in force: the written limits (a loaded LIVE policy is already within its
    /// ceiling; the `min` below is a second line of defence, not the rule).
    #[must_use]
    pub fn effective_risk_limits(&self) -> RiskLimits {
        let mut limits = self.risk_limits;
        if self.environment == Environment::Live {
            let c = self.micro_live_ceiling;
            limits.max_position_coin_per_instrument =
                limits.max_position_coin_per_instrument.min(c.max_position_coin_per_instrument);
            limits.max_position_usd_per_instrument =
                limits.max_position_usd_per_instrument.min(c.max_position_usd_per_instrument);
            limits.max_order_notional_usd =
                limits.max_order_notional_usd.min(c.max_order_notional_usd);
            limits.max_gross_notional_usd =
                limits.max_gross_notional_usd.min(c.max_gross_notional_usd);
            limits.max_daily_loss_usd = limits.max_daily_loss_usd.min(c.max_daily_loss_usd);
        }
        limits
    }

    /// The currency may be traded.
    #[must_use]
    pub fn currency_allowed(&self, currency: Currency) -> bool {
        self.allowed_currencies.contains(&currency)
    }

    /// The kind may be traded.
    #[must_use]
    pub const fn kind_allowed(&self, kind: InstrumentKind) -> bool {
        self.allowed_instrument_kinds[kind as usize]
    }
}
