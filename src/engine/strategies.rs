//! The strategy registry as the CLI sees it: names, the default, and the factory seam.
//!
//! A strategy is built *after* the engine has loaded instrument metadata from the venue,
//! because the reference strategies choose their instruments from that universe (the quoter
//! quotes listed options; the vertical picks two calls of one expiry). `stoic run` hands the
//! engine a [`StrategyFactory`]; the engine calls it once, with the loaded cache.

use hotpath::domain::instrument::InstrumentName;
use hotpath::domain::metadata::InstrumentCache;
use hotpath::strategy::registry::{by_name, STRATEGY_NAMES};
use hotpath::strategy::Strategy;

/// Strategy names this build knows, the default first.
pub const NAMES: &[&str] = STRATEGY_NAMES;

/// The default strategy of `stoic run`.
pub const DEFAULT_NAME: &str = "quoter";

/// Builds the strategy from the loaded instruments (called once, after instruments load).
pub type StrategyFactory =
    Box<dyn FnOnce(&InstrumentCache) -> Result<Box<dyn Strategy>, String> + Send>;

/// `scripted:<file>`: the policy-limit tests' fixed order sequence
/// (`hotpath::strategy::scripted`); never a default.
pub const SCRIPTED_PREFIX: &str = "scripted:";

/// Whether `name` is a strategy this build can make (checked before connecting anything; a
/// script is read and validated here).
///
/// # Errors
/// The unknown name and the list of known ones; a script that does not load.
pub fn check_name(name: &str) -> Result<(), String> {
    if let Some(path) = name.strip_prefix(SCRIPTED_PREFIX) {
        return hotpath::strategy::scripted::Scripted::from_file(0, std::path::Path::new(path))
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    if NAMES.contains(&name) {
        Ok(())
    } else {
        Err(format!("unknown strategy {name:?} (known: {})", NAMES.join(", ")))
    }
}

/// Options the option strategies are offered: this many strikes around the middle of one
/// chain (calls and puts).
pub const NEAR_MONEY_STRIKES: usize = 4;
/// The chain offered is the nearest expiry at least this far away (a chain expiring within
/// hours has wide, jumpy books).
const CHAIN_EXPIRY_MS_MIN: i64 = 2 * 86_400_000;

/// A factory for `name` with `seed`. `churn` and `runaway` pick their own perpetuals; the option strategies
/// are offered [`near_money_options`] (the registry then picks from them deterministically).
#[must_use]
pub fn factory(name: &str, seed: u64) -> StrategyFactory {
    if let Some(path) = name.strip_prefix(SCRIPTED_PREFIX) {
        let path = std::path::PathBuf::from(path);
        return Box::new(move |_: &InstrumentCache| {
            hotpath::strategy::scripted::Scripted::from_file(seed, &path)
                .map(|s| Box::new(s) as Box<dyn Strategy>)
                .map_err(|e| e.to_string())
        });
    }
    let name = name.to_owned();
    Box::new(move |cache: &InstrumentCache| {
        let universe = near_money_options(cache);
        by_name(&name, seed, &universe).map_err(|e| e.to_string())
    })
}

/// [`factory`] for a session of known length (`stoic paper`): the option strategies are
/// offered the nearest chain that is still listed `min_life_ms` after the instruments were
/// loaded, so nothing they quote expires mid-run. `churn`, `runaway` and scripts are built as
/// by [`factory`]. Building fails (naming the latest expiry) when no chain lives that long,
/// instead of falling back to one that would expire during the session.
#[must_use]
pub fn factory_with_min_expiry(name: &str, seed: u64, min_life_ms: i64) -> StrategyFactory {
    if name.starts_with(SCRIPTED_PREFIX) || !option_strategy(name) {
        return factory(name, seed);
    }
    let name = name.to_owned();
    Box::new(move |cache: &InstrumentCache| {
        let universe = near_money_options_living(cache, min_life_ms)?;
        by_name(&name, seed, &universe).map_err(|e| e.to_string())
    })
}

fn option_strategy(name: &str) -> bool {
    matches!(name, "quoter" | "vertical")
}

/// [`near_money_options`] of the nearest chain expiring at least `min_life_ms` after the
/// instruments were loaded.
///
/// # Errors
/// No BTC option chain lives that long (the latest listed expiry is named).
pub fn near_money_options_living(
    cache: &InstrumentCache,
    min_life_ms: i64,
) -> Result<Vec<InstrumentName>, String> {
    let (created_max, expiries) = btc_option_expiries(cache);
    let wanted = created_max.saturating_add(min_life_ms);
    match expiries.iter().copied().find(|e| *e >= wanted) {
        Some(expiry) => Ok(chain_near_money(cache, expiry)),
        None => Err(format!(
            "no BTC option chain expires at or after {wanted} ms (latest listed: {:?}); the session would outlive every listed option",
            expiries.iter().next_back()
        )),
    }
}

/// BTC options of one chain, [`NEAR_MONEY_STRIKES`] strikes around the middle of the listed
/// strikes, calls and puts, in name order. Why the middle: the venue lists strikes around the
/// spot, and at start-up (before market data) the middle strike is the best guess of "at the
/// money"; deep out-of-the-money options quote at the minimum tick, with spreads the liquidity
/// gate rightly refuses. Deterministic in the cache (ordered by name).
#[must_use]
pub fn near_money_options(cache: &InstrumentCache) -> Vec<InstrumentName> {
    let (created_max, expiries) = btc_option_expiries(cache);
    let Some(expiry) = expiries
        .iter()
        .copied()
        .find(|e| *e >= created_max + CHAIN_EXPIRY_MS_MIN)
        .or_else(|| expiries.iter().copied().next_back())
    else {
        return Vec::new();
    };
    chain_near_money(cache, expiry)
}

fn is_btc_option(m: &hotpath::domain::metadata::InstrumentMeta) -> bool {
    m.instrument.kind() == hotpath::domain::instrument::InstrumentKind::Option
        && m.instrument.base_currency().as_str() == "BTC"
}

/// When the instruments were loaded (newest fetch) and the listed BTC option expiries.
fn btc_option_expiries(cache: &InstrumentCache) -> (i64, std::collections::BTreeSet<i64>) {
    let created_max = cache.iter().map(|m| m.fetched_at_ms).max().unwrap_or(0);
    let expiries = cache
        .iter()
        .filter(|m| is_btc_option(m))
        .filter_map(|m| m.expiration_timestamp_ms)
        .collect();
    (created_max, expiries)
}

/// [`NEAR_MONEY_STRIKES`] strikes around the middle of one chain, calls and puts, name order.
fn chain_near_money(cache: &InstrumentCache, expiry: i64) -> Vec<InstrumentName> {
    let chain: Vec<_> = cache
        .iter()
        .filter(|m| is_btc_option(m) && m.expiration_timestamp_ms == Some(expiry))
        .collect();
    let mut strikes: Vec<i64> = chain
        .iter()
        .filter_map(|m| m.instrument.strike())
        .map(hotpath::domain::units::Price::raw)
        .collect();
    strikes.sort_unstable();
    strikes.dedup();
    let mid = strikes.len() / 2;
    let lo = mid.saturating_sub(NEAR_MONEY_STRIKES / 2);
    let chosen = &strikes[lo..(lo + NEAR_MONEY_STRIKES).min(strikes.len())];
    let mut out: Vec<InstrumentName> = chain
        .iter()
        .filter(|m| m.instrument.strike().is_some_and(|k| chosen.contains(&k.raw())))
        .map(|m| m.instrument.name())
        .collect();
    out.sort_unstable();
    out
}

/// A factory handing over an already built strategy (tests, benches).
#[must_use]
pub fn prebuilt(strategy: Box<dyn Strategy>) -> StrategyFactory {
    Box::new(move |_: &InstrumentCache| Ok(strategy))
}

/// The call vertical on explicit legs (`--legs LOW,HIGH`), with its default parameters except
/// the entry threshold (`--entry-debit-bps`) and size (`--lots`) when given.
///
/// # Errors
/// Not exactly two legs, unknown instruments, or a shape the vertical refuses.
pub fn vertical(
    seed: u64,
    legs: &[String],
    entry_debit_bps: Option<i64>,
    lots: Option<i64>,
) -> anyhow::Result<StrategyFactory> {
    use hotpath::domain::instrument::Instrument;
    use hotpath::domain::intent::StrategyId;
    use hotpath::strategy::vertical::{Vertical, VerticalParams};
    let [low, high] = legs else { anyhow::bail!("--legs needs exactly two calls: LOW,HIGH") };
    let name = |s: &str| {
        Instrument::parse(s).map(|i| i.name()).map_err(|e| anyhow::anyhow!("leg {s}: {e}"))
    };
    let mut params = VerticalParams::default();
    if let Some(bps) = entry_debit_bps {
        params.entry_debit_bps_of_width_max = bps;
    }
    if let Some(lots) = lots {
        params.lots = lots;
    }
    let id = StrategyId::new_checked("vertical").map_err(|e| anyhow::anyhow!("{e}"))?;
    let strategy: Box<dyn Strategy> =
        Box::new(Vertical::new(id, seed, name(low)?, name(high)?, params)?);
    Ok(prebuilt(strategy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotpath::domain::metadata::InstrumentMeta;

    /// The paper run's venue listing at its fixed start (Monday 2027-01-04): a daily, the
    /// weekly of Friday 8 Jan, the monthly of 26 Feb, the quarterly of 26 Mar.
    fn paper_listing() -> InstrumentCache {
        let now = 1_799_020_800_000; // crate::paper::clock::SIM_ORIGIN_MS (binary-only module)
        let mut cache = InstrumentCache::new();
        for i in simulator::instruments::build_universe(now, 100_000.0, 3_500.0) {
            cache.upsert(InstrumentMeta::from_venue_json(&i.to_json(now), now).unwrap()).unwrap();
        }
        cache
    }

    #[test]
    fn paper_chain_outlives_the_run_while_stoic_run_keeps_the_two_day_rule() {
        let cache = paper_listing();
        let day = 86_400_000;
        let run: Vec<String> =
            near_money_options(&cache).iter().map(|n| n.as_str().to_owned()).collect();
        assert!(run.iter().all(|n| n.starts_with("BTC-8JAN27-")), "{run:?}");
        let paper = near_money_options_living(&cache, 15 * day).unwrap();
        assert_eq!(paper.len(), 2 * NEAR_MONEY_STRIKES);
        assert!(paper.iter().all(|n| n.as_str().starts_with("BTC-26FEB27-")), "{paper:?}");
        // Longer than every listed chain: refused, not silently given a chain that expires.
        let err = near_money_options_living(&cache, 200 * day).unwrap_err();
        assert!(err.contains("would outlive every listed option"), "{err}");
    }
}
