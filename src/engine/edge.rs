//! The engine's edge model for the POLICY edge gate: what an order is expected to earn against
//! the book's mid, minus the taker fee. Slippage is zero for limit orders (the limit caps it);
//! an order without a limit price has no estimate (the gate then refuses it as input missing).

use hotpath::domain::intent::{OrderIntent, Side};
use hotpath::domain::units::{notional_usd, Price, Usd};
use hotpath::gates::checks::EdgeInputs;
use hotpath::gates::market::BookView;

/// Estimates the edge inputs of `intent`: gross = notional × (mid − price)/price for a buy
/// (the mirror for a sell), fee = notional × `taker_fee_bps`, slippage 0.
#[must_use]
pub fn estimate(
    intent: &OrderIntent,
    book: Option<&BookView>,
    index_price: Option<Price>,
    taker_fee_bps: f64,
) -> Option<EdgeInputs> {
    let f = intent.fields();
    let price = f.limit_price?.to_f64_lossy();
    let book = book?;
    let mid = (book.best_bid()?.price.to_f64_lossy() + book.best_ask()?.price.to_f64_lossy()) / 2.0;
    if price <= 0.0 || mid <= 0.0 {
        return None;
    }
    let notional = notional_usd(f.instrument.amount_unit(), f.qty, index_price).ok()??;
    let n = notional.to_f64_lossy();
    let rel = match f.side {
        Side::Buy => (mid - price) / price,
        Side::Sell => (price - mid) / price,
    };
    Some(EdgeInputs {
        gross_edge_usd: Usd::from_f64_checked(n * rel).ok(),
        fee_usd: Usd::from_f64_checked(n * taker_fee_bps / 10_000.0).ok(),
        expected_slippage_usd: Some(Usd::from_raw(0)),
    })
}
