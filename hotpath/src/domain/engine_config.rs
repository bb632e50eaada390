//! Runtime configuration (`config/engine.json`): how this process runs, as opposed to what it
//! may trade (the policy). Same strict rules as the policy loader: every key in
//! [`ENGINE_CRITICAL_KEYS`] required, unknown keys refused, types and ranges checked, and
//! [`EngineConfig::check_against`] cross-checks it with the loaded policy. A failure is a
//! [`ConfigError`]; the engine treats it exactly like a policy error (fail closed).

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;

use super::config::{err, parse_json, read_bounded, ConfigError, ConfigErrorCode, Section};
use super::intent::StrategyId;
use super::policy::{Environment, Policy};

/// Every key of `config/engine.json` (all required).
pub const ENGINE_CRITICAL_KEYS: &[&str] = &[
    "config_version",
    "environment",
    "policy_path",
    "topology",
    "status_bind",
    "wal_dir",
    "clock_drift_ms_max",
    "instrument_refresh_s",
    "strategy_ids",
];

/// Thread topology (DESIGN "Threads and rings").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Stages share threads or park when idle (default on small machines).
    Compact,
    /// One core per stage, busy-spin (isolated cores only).
    Pinned,
}

/// The loaded runtime configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Config schema version.
    pub config_version: String,
    /// Must equal the policy's environment.
    pub environment: Environment,
    /// Policy file, relative to the working directory unless absolute.
    pub policy_path: String,
    /// Thread topology.
    pub topology: Topology,
    /// Status/health HTTP listener.
    pub status_bind: SocketAddr,
    /// WAL directory.
    pub wal_dir: String,
    /// Clock drift beyond which the engine stops taking risk.
    pub clock_drift_ms_max: i64,
    /// Instrument metadata refresh period; must be below the policy's cache TTL so metadata never
    /// goes stale between refreshes.
    pub instrument_refresh_s: i64,
    /// Strategies this process runs.
    pub strategy_ids: Vec<StrategyId>,
}

impl EngineConfig {
    /// Reads and validates `config/engine.json`.
    ///
    /// # Errors
    /// A [`ConfigError`].
    pub fn load_from_path(path: &Path) -> Result<Self, ConfigError> {
        Self::from_json_str(&read_bounded(path)?)
    }

    /// Parses and validates JSON text.
    ///
    /// # Errors
    /// A [`ConfigError`].
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_value(&parse_json(text)?)
    }

    /// Validates a parsed document.
    ///
    /// # Errors
    /// A [`ConfigError`] for the first rule broken.
    pub fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let mut root = Section::new(value, "")?;
        let config_version = root.string("config_version")?;
        let environment = Environment::from_wire(&root.string("environment")?)
            .ok_or_else(|| err(ConfigErrorCode::EnvironmentRule, "environment"))?;
        let policy_path = root.string("policy_path")?;
        let topology = match root.string("topology")?.as_str() {
            "compact" => Topology::Compact,
            "pinned" => Topology::Pinned,
            _ => return Err(err(ConfigErrorCode::UnknownToken, "topology")),
        };
        let status_bind = root
            .string("status_bind")?
            .parse::<SocketAddr>()
            .map_err(|_| err(ConfigErrorCode::OutOfRange, "status_bind"))?;
        let wal_dir = root.string("wal_dir")?;
        let clock_drift_ms_max = root.integer("clock_drift_ms_max", 60_000)?;
        let instrument_refresh_s = root.integer("instrument_refresh_s", 86_400)?;
        let (ids, ids_path) = root.string_list("strategy_ids")?;
        let strategy_ids = ids
            .into_iter()
            .map(|id| {
                StrategyId::new_checked(id)
                    .map_err(|_| err(ConfigErrorCode::UnknownToken, &ids_path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        root.finish()?;
        Ok(Self {
            config_version,
            environment,
            policy_path,
            topology,
            status_bind,
            wal_dir,
            clock_drift_ms_max,
            instrument_refresh_s,
            strategy_ids,
        })
    }

    /// Cross-checks with the policy: same environment, and instrument metadata refreshed before
    /// it can go stale.
    ///
    /// # Errors
    /// [`ConfigErrorCode::EnvironmentRule`] or [`ConfigErrorCode::OutOfRange`].
    pub fn check_against(&self, policy: &Policy) -> Result<(), ConfigError> {
        if self.environment != policy.environment {
            return Err(err(ConfigErrorCode::EnvironmentRule, "environment"));
        }
        if self.instrument_refresh_s >= policy.data_limits.instrument_cache_ttl_s {
            return Err(err(ConfigErrorCode::OutOfRange, "instrument_refresh_s"));
        }
        Ok(())
    }
}
