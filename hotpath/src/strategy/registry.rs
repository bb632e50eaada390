//! Strategies by name: what `stoic run --strategy NAME` and the benchmarks build.
//!
//! ```text
//! by_name(name, seed, instruments) -> Result<Box<dyn Strategy>, UnknownStrategy>
//! ```
//! - `name`: one of [`STRATEGY_NAMES`];
//! - `seed`: a run-configuration value mixed into every decision key (same seed, same labels;
//!   it is not randomness, and a restart must pass the same value);
//! - `instruments`: the universe the engine can subscribe to (any order); each strategy picks
//!   from it deterministically (sorted by name first) and says why when it cannot.
//!
//! Each strategy's stable id is its name (`quoter`, `vertical`, …): the id is hashed into every
//! label, so renaming one orphans its live orders.

use crate::domain::instrument::{Instrument, InstrumentKind, InstrumentName, OptionRight};
use crate::domain::intent::StrategyId;

use super::quoter::{Quoter, QuoterParams, QUOTER_INSTRUMENTS_MAX};
use super::vertical::{Vertical, VerticalParams};
use super::Strategy;

/// Every name [`by_name`] knows.
pub const STRATEGY_NAMES: &[&str] = &["quoter", "vertical", "churn", "runaway"];

/// [`by_name`] could not build the strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownStrategy {
    /// No strategy of that name.
    #[error("unknown strategy {0:?} (known: {known})", known = STRATEGY_NAMES.join(", "))]
    Name(String),
    /// The strategy exists but cannot run on the given instruments or parameters.
    #[error("strategy {name} cannot start: {why}")]
    Unusable {
        /// The strategy.
        name: &'static str,
        /// Why, in words.
        why: String,
    },
}

fn unusable(name: &'static str, why: &dyn std::fmt::Display) -> UnknownStrategy {
    UnknownStrategy::Unusable { name, why: why.to_string() }
}

fn options(instruments: &[InstrumentName]) -> Vec<Instrument> {
    let mut sorted = instruments.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .iter()
        .filter_map(|n| Instrument::parse(n.as_str()).ok())
        .filter(|i| i.kind() == InstrumentKind::Option)
        .collect()
}

/// Builds a strategy by name with its default parameters.
///
/// - `quoter`: quotes every option in `instruments` (name order, at most
///   [`QUOTER_INSTRUMENTS_MAX`]) with [`QuoterParams::default`].
/// - `vertical`: the first (expiry, currency) group in name order holding two calls; buys the
///   lowest strike and sells the next one, with [`VerticalParams::default`].
///
/// # Errors
/// [`UnknownStrategy::Name`] for a name not in [`STRATEGY_NAMES`];
/// [`UnknownStrategy::Unusable`] when the instruments do not fit the strategy.
pub fn by_name(
    name: &str,
    seed: u64,
    instruments: &[InstrumentName],
) -> Result<Box<dyn Strategy>, UnknownStrategy> {
    match name {
        "quoter" => {
            let id = StrategyId::new_checked("quoter").map_err(|e| unusable("quoter", &e))?;
            let chosen: Vec<InstrumentName> = options(instruments)
                .iter()
                .take(QUOTER_INSTRUMENTS_MAX)
                .map(Instrument::name)
                .collect();
            let quoter = Quoter::new(id, seed, &chosen, QuoterParams::default())
                .map_err(|e| unusable("quoter", &e))?;
            Ok(Box::new(quoter))
        }
        "vertical" => {
            let id = StrategyId::new_checked("vertical").map_err(|e| unusable("vertical", &e))?;
            let (low, high) = vertical_pair(instruments)
                .ok_or_else(|| unusable("vertical", &"no two calls share an expiry"))?;
            let vertical = Vertical::new(id, seed, low, high, VerticalParams::default())
                .map_err(|e| unusable("vertical", &e))?;
            Ok(Box::new(vertical))
        }
        // Churn picks its own perpetuals; it is the crash and restart tests' load.
        "churn" => {
            let churn = super::churn::Churn::new(seed).map_err(|e| unusable("churn", &e))?;
            Ok(Box::new(churn))
        }
        // Drills only: keeps adding opens until the kill switch stops it.
        "runaway" => {
            let r = super::runaway::Runaway::new(seed).map_err(|e| unusable("runaway", &e))?;
            Ok(Box::new(r))
        }
        other => Err(UnknownStrategy::Name(other.to_owned())),
    }
}

/// The vertical's legs from a universe: calls grouped by (currency, settlement, expiry), first
/// group in a deterministic order with two or more strikes; the two lowest strikes.
#[must_use]
pub fn vertical_pair(instruments: &[InstrumentName]) -> Option<(InstrumentName, InstrumentName)> {
    let mut calls: Vec<Instrument> = options(instruments)
        .into_iter()
        .filter(|i| i.option_right() == Some(OptionRight::Call))
        .collect();
    calls.sort_by_key(|i| {
        (i.base_currency().as_str().to_owned(), i.settlement(), i.expiry(), i.strike())
    });
    calls.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        let same = a.base_currency() == b.base_currency()
            && a.settlement() == b.settlement()
            && a.expiry() == b.expiry()
            && a.strike() < b.strike();
        same.then(|| (a.name(), b.name()))
    })
}
