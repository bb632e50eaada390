// A crate outside hotpath must not be able to name the trading-capable client.
use hotpath::dispatch::TradingClient;

fn main() {
    let _ = std::mem::size_of::<TradingClient>();
}
