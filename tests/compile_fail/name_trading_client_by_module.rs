// The client's own module is private to hotpath: its full path cannot be named either.
use hotpath::dispatch::client::TradingClient;

fn main() {
    let _ = std::mem::size_of::<TradingClient>();
}
