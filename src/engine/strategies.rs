//! The strategy registry: names the CLI accepts, and the default.

use hotpath::strategy::churn::Churn;
use hotpath::strategy::Strategy;

/// Strategy names this build knows, best first (`quoter` is preferred when it exists).
pub const NAMES: &[&str] = &["churn", "runaway"];

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
        other => anyhow::bail!("unknown strategy {other:?} (known: {})", NAMES.join(", ")),
    }
}
