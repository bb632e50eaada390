//! The venue's own record of the run's fills (the simulator account's trade list), the
//! independent side of the fill list and of the PnL reconciliation in the evidence.

use serde_json::Value;

/// The simulator account the engine trades on.
pub const ACCOUNT: &str = "dev";

/// One fill as the venue booked it.
#[derive(Debug, Clone, PartialEq)]
pub struct VenueFill {
    /// Venue trade id.
    pub trade_id: String,
    /// Venue (simulated) time, ms.
    pub ts_ms: i64,
    /// Instrument.
    pub instrument: String,
    /// `buy` / `sell`.
    pub side: String,
    /// Amount (venue units).
    pub amount: f64,
    /// Price (option premium in the base currency, futures in USD).
    pub price: f64,
    /// Fee charged.
    pub fee: f64,
    /// Fee currency.
    pub fee_currency: String,
    /// `M` maker, `T` taker.
    pub liquidity: String,
    /// Our label.
    pub label: String,
}

/// The account's fills, oldest first (the simulator keeps its last `USER_TRADES_MAX`).
#[must_use]
pub fn from_venue(sim: &simulator::SimHandle) -> Vec<VenueFill> {
    sim.with_engine(|e| {
        let Some(acc) = e.accounts.iter().find(|a| a.username == ACCOUNT) else {
            return Vec::new();
        };
        acc.trades.iter().map(|t| parse(&t.json, t.ts)).collect()
    })
}

fn parse(j: &Value, ts_ms: i64) -> VenueFill {
    let text = |k: &str| j[k].as_str().unwrap_or_default().to_owned();
    VenueFill {
        trade_id: text("trade_id"),
        ts_ms,
        instrument: text("instrument_name"),
        side: text("direction"),
        amount: j["amount"].as_f64().unwrap_or(0.0),
        price: j["price"].as_f64().unwrap_or(0.0),
        fee: j["fee"].as_f64().unwrap_or(0.0),
        fee_currency: text("fee_currency"),
        liquidity: text("liquidity"),
        label: text("label"),
    }
}

/// New orders the venue accepted per simulated day (from its journal; `days` entries).
///
/// # Errors
/// The journal cannot be read.
pub fn new_orders_by_day(
    journal: &std::path::Path,
    origin_ms: i64,
    days: u32,
) -> std::io::Result<Vec<u64>> {
    use std::io::BufRead;
    let mut out = vec![0u64; usize::try_from(days).unwrap_or(0)];
    let f = std::fs::File::open(journal)?;
    for line in std::io::BufReader::new(f).lines() {
        let Ok(e) = serde_json::from_str::<simulator::journal::Entry>(&line?) else { continue };
        let new_order = matches!(e.method.as_str(), "private/buy" | "private/sell");
        if !new_order || e.result.get("order_id").is_none() {
            continue;
        }
        let day = (e.ts_ms - origin_ms).div_euclid(super::clock::DAY_MS);
        if let Some(n) = usize::try_from(day).ok().and_then(|d| out.get_mut(d)) {
            *n += 1;
        }
    }
    Ok(out)
}
