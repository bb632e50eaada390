//! Method names the client sends, and which rate-limit pool each one draws from (§11).

/// `public/auth`.
pub const AUTH: &str = "public/auth";
/// `public/get_time`.
pub const GET_TIME: &str = "public/get_time";
/// `public/hello`.
pub const HELLO: &str = "public/hello";
/// `public/test` (also the answer to a heartbeat `test_request`).
pub const TEST: &str = "public/test";
/// `public/set_heartbeat`.
pub const SET_HEARTBEAT: &str = "public/set_heartbeat";
/// `public/subscribe`.
pub const PUBLIC_SUBSCRIBE: &str = "public/subscribe";
/// `public/unsubscribe`.
pub const PUBLIC_UNSUBSCRIBE: &str = "public/unsubscribe";
/// `private/subscribe`.
pub const PRIVATE_SUBSCRIBE: &str = "private/subscribe";
/// `private/unsubscribe`.
pub const PRIVATE_UNSUBSCRIBE: &str = "private/unsubscribe";
/// `public/get_instruments`.
pub const GET_INSTRUMENTS: &str = "public/get_instruments";
/// `public/get_order_book`.
pub const GET_ORDER_BOOK: &str = "public/get_order_book";
/// `public/ticker`.
pub const TICKER: &str = "public/ticker";
/// `private/enable_cancel_on_disconnect`.
pub const ENABLE_COD: &str = "private/enable_cancel_on_disconnect";
/// `private/buy`.
pub const BUY: &str = "private/buy";
/// `private/sell`.
pub const SELL: &str = "private/sell";
/// `private/edit`.
pub const EDIT: &str = "private/edit";
/// `private/cancel`.
pub const CANCEL: &str = "private/cancel";
/// `private/cancel_by_label`.
pub const CANCEL_BY_LABEL: &str = "private/cancel_by_label";
/// `private/cancel_all`.
pub const CANCEL_ALL: &str = "private/cancel_all";
/// `private/get_order_state`.
pub const GET_ORDER_STATE: &str = "private/get_order_state";
/// `private/get_order_state_by_label`.
pub const GET_ORDER_STATE_BY_LABEL: &str = "private/get_order_state_by_label";
/// `private/get_open_orders_by_currency`.
pub const GET_OPEN_ORDERS_BY_CURRENCY: &str = "private/get_open_orders_by_currency";
/// `private/get_open_orders_by_instrument`.
pub const GET_OPEN_ORDERS_BY_INSTRUMENT: &str = "private/get_open_orders_by_instrument";
/// `private/get_user_trades_by_currency`.
pub const GET_USER_TRADES_BY_CURRENCY: &str = "private/get_user_trades_by_currency";
/// `private/get_user_trades_by_instrument`.
pub const GET_USER_TRADES_BY_INSTRUMENT: &str = "private/get_user_trades_by_instrument";
/// `private/get_user_trades_by_order`.
pub const GET_USER_TRADES_BY_ORDER: &str = "private/get_user_trades_by_order";
/// `private/get_positions`.
pub const GET_POSITIONS: &str = "private/get_positions";
/// `private/get_account_summary`.
pub const GET_ACCOUNT_SUMMARY: &str = "private/get_account_summary";

/// Which of the venue's credit pools a method draws from (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditPool {
    /// Order entry and cancels: tiered by volume, small bursts.
    MatchingEngine,
    /// Everything else (queries, market data, account).
    NonMatchingEngine,
    /// `public/get_instruments`: its own 1 per 10 s limit outside the credit system.
    Instruments,
}

/// The pool for a method name. Anything not listed as matching-engine in §11 is
/// non-matching-engine, which is the venue's own rule.
#[must_use]
pub fn credit_pool(method: &str) -> CreditPool {
    const ME: &[&str] = &[
        "private/buy",
        "private/sell",
        "private/edit",
        "private/edit_by_label",
        "private/cancel",
        "private/cancel_by_label",
        "private/cancel_all",
        "private/cancel_all_by_instrument",
        "private/cancel_all_by_currency",
        "private/cancel_all_by_kind_or_type",
        "private/close_position",
        "private/verify_block_trade",
        "private/execute_block_trade",
        "private/move_positions",
        "private/mass_quote",
        "private/cancel_quotes",
    ];
    if method == GET_INSTRUMENTS {
        CreditPool::Instruments
    } else if ME.contains(&method) {
        CreditPool::MatchingEngine
    } else {
        CreditPool::NonMatchingEngine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_follow_section_11() {
        assert_eq!(credit_pool(BUY), CreditPool::MatchingEngine);
        assert_eq!(credit_pool(CANCEL_ALL), CreditPool::MatchingEngine);
        assert_eq!(credit_pool(GET_ORDER_STATE), CreditPool::NonMatchingEngine);
        assert_eq!(credit_pool(TEST), CreditPool::NonMatchingEngine);
        assert_eq!(credit_pool(GET_INSTRUMENTS), CreditPool::Instruments);
    }
}
