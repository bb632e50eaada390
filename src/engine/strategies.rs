//! The strategy registry: names the CLI accepts, and the default.

use hotpath::strategy::churn::Churn;
use hotpath::strategy::Strategy;

/// Strategy names this build knows, best first (`quoter` is preferred when it exists).
pub const NAMES: &[&str] = &["churn", "runaway", "vertical"];

/// The default strategy: `quoter` if this build has it, else `churn`.
#[must_use]
pub fn default_name() -> &'static str {
    if NAMES.contains(&"quoter") {
        "quoter"
    } else {
        "churn"
    }
}

/// Builds a strategy by name.
///
/// # Errors
/// Unknown name or a strategy that cannot be built.
pub fn build(name: &str, seed: u64) -> anyhow::Result<Box<dyn Strategy>> {
    match name {
        "churn" => Ok(Box::new(Churn::new(seed)?)),
        // Break-glass drill only (`stoic drill break-glass`): never closes, never cancels.
        "runaway" => Ok(Box::new(hotpath::strategy::runaway::Runaway::new(seed)?)),
        "vertical" => anyhow::bail!("strategy vertical needs its legs: --legs LOW_CALL,HIGH_CALL"),
        other => anyhow::bail!("unknown strategy {other:?} (known: {})", NAMES.join(", ")),
    }
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
) -> anyhow::Result<Box<dyn Strategy>> {
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
    Ok(Box::new(Vertical::new(id, seed, name(low)?, name(high)?, params)?))
}
