//! The requests `stoic keys probe` sends per scope level, and how a reply is judged.
//!
//! Out-of-scope levels get a request the key must NOT be able to make; the only pass is the
//! venue's scope refusal (13021 `forbidden`). An acceptance fails the key, and so does a
//! business refusal (funds, address book, price band, post-only cross): the venue only judges
//! a request on its merits after the scope check let it through. Replies that come before or
//! instead of that judgement (auth, rate limit, method missing, maintenance, unknown codes,
//! transport failures) prove nothing either way and are probe errors, never a pass.

use std::sync::Arc;

use hotpath::clock::{Clock, SystemClock};
use hotpath::dispatch::scope_probe::{self, OrderAttempt, ProbeOrder};
use hotpath::dispatch::DispatchError;
use hotpath::venue::auth::Credentials;
use hotpath::venue::conn::{ConnConfig, ConnError, Connection};
use hotpath::venue::messages::ResultPayload;
use hotpath::venue::{methods, Decimal8, Message, VenueErrorCode};

use super::Access;

/// `public/get_instrument`.
const GET_INSTRUMENT: &str = "public/get_instrument";
/// `private/withdraw` (Deribit; needs `wallet:read_write`).
pub const WITHDRAW: &str = "private/withdraw";
/// `private/get_withdrawals` (needs `wallet:read`).
pub const GET_WITHDRAWALS: &str = "private/get_withdrawals";
/// The destination of the probe's withdrawal: not an address on any chain, so no address
/// book can hold it and a venue that wrongly lets the key withdraw still cannot send funds.
pub const PROBE_WITHDRAW_ADDRESS: &str = "stoic-key-scope-probe-not-an-address";
/// The probe's withdrawal amount, BTC (the smallest the venue's fee schedule knows).
const PROBE_WITHDRAW_AMOUNT: Decimal8 = Decimal8::from_raw(10_000);

/// What one probe request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A read or settings request the public connection may send.
    Request(&'static str),
    /// A real order (`private/buy`), through `hotpath::dispatch::scope_probe`.
    OrderEntry,
    /// `private/withdraw` to [`PROBE_WITHDRAW_ADDRESS`].
    Withdraw,
}

impl Action {
    /// The venue method it sends.
    pub const fn method(self) -> &'static str {
        match self {
            Self::Request(m) => m,
            Self::OrderEntry => methods::BUY,
            Self::Withdraw => WITHDRAW,
        }
    }

    /// Whether it may be sent when the key is expected to HAVE the level: order entry and
    /// withdrawals are never made with a key allowed to make them.
    pub const fn safe_when_permitted(self) -> bool {
        matches!(self, Self::Request(_))
    }
}

/// The request that exercises `group:level`, and what its refusal proves.
pub fn action_for(group: &str, level: Access) -> Option<(Action, &'static str)> {
    Some(match (group, level) {
        ("trade", Access::Read) => (
            Action::Request(methods::GET_POSITIONS),
            "trade:read absent: positions cannot be read",
        ),
        ("trade", Access::ReadWrite) => (
            Action::OrderEntry,
            "trade:read_write absent: a real post-only buy (minimum amount, far below the market) is refused",
        ),
        ("account", Access::Read) => (
            Action::Request(methods::GET_ACCOUNT_SUMMARY),
            "account:read absent: the account summary cannot be read",
        ),
        ("account", Access::ReadWrite) => (
            Action::Request(methods::ENABLE_COD),
            "account:read_write absent: account settings cannot be changed",
        ),
        ("wallet", Access::Read) => (
            Action::Request(GET_WITHDRAWALS),
            "wallet:read absent: the withdrawal history cannot be read",
        ),
        ("wallet", Access::ReadWrite) => (
            Action::Withdraw,
            "wallet:read_write absent: a real withdrawal request is refused",
        ),
        _ => return None,
    })
}

/// How the venue answered one probe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// Success.
    Accepted,
    /// 13021 `forbidden`: the scope refusal.
    RefusedByScope,
    /// A refusal only a request that passed the scope check can get.
    RefusedOnMerits(VenueErrorCode),
    /// A venue error that says nothing about the scope.
    Inconclusive(VenueErrorCode),
    /// Transport failure, timeout, or a reply of the wrong shape.
    Transport(String),
}

impl Got {
    /// The evidence string.
    pub fn label(&self) -> String {
        match self {
            Self::Accepted => "accepted".into(),
            Self::RefusedByScope => "refused_13021".into(),
            Self::RefusedOnMerits(c) => format!("refused_past_scope_check_{}", c.code()),
            Self::Inconclusive(c) => format!("inconclusive_venue_error_{}", c.code()),
            Self::Transport(e) => format!("probe_error: {e}"),
        }
    }

    fn from_venue(code: VenueErrorCode) -> Self {
        use VenueErrorCode as C;
        match code {
            C::Forbidden => Self::RefusedByScope,
            C::RequestEntityTooLarge
            | C::MethodNotFound
            | C::InvalidParams
            | C::ParseError
            | C::MissingParams
            | C::AuthorizationRequired
            | C::TooManyRequests
            | C::MustBeWebsocketRequest
            | C::TooManyConcurrentRequests
            | C::Retry
            | C::SystemMaintenance
            | C::UnauthenticatedPublicRequestsTemporarilyDisabled
            | C::InternalServerError
            | C::InvalidCredentials
            | C::Unauthorized
            | C::MethodSwitchedOffByAdmin
            | C::TemporarilyUnavailable
            | C::ScopeExceeded
            | C::Unavailable
            | C::Unknown(_) => Self::Inconclusive(code),
            other => Self::RefusedOnMerits(other),
        }
    }

    fn from_conn(e: &ConnError) -> Self {
        match e {
            ConnError::Venue(code) => Self::from_venue(*code),
            other => Self::Transport(other.to_string()),
        }
    }
}

/// Verdict of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// As the role requires.
    Pass,
    /// The key can do something its role must not (or cannot do what it needs).
    Fail,
    /// Nothing was proven (transport failure, inconclusive venue error).
    Error,
}

/// Judges a reply: `outside` = the role must NOT have the level.
pub fn verdict(got: &Got, outside: bool) -> Verdict {
    match (got, outside) {
        (Got::Transport(_) | Got::Inconclusive(_), _) => Verdict::Error,
        (Got::RefusedByScope, true) | (Got::Accepted, false) => Verdict::Pass,
        (Got::Accepted | Got::RefusedOnMerits(_), true) | (Got::RefusedByScope, false) => {
            Verdict::Fail
        }
        // A needed read refused for another reason proves nothing about the scope.
        (Got::RefusedOnMerits(_), false) => Verdict::Error,
    }
}

/// The order the order-entry probe sends: the instrument's minimum amount at half the lower
/// of best bid and mark, on the tick grid, post-only (so it can neither fill nor cross).
#[derive(Debug, Clone)]
pub struct MarketOrder {
    instrument: String,
    amount: Decimal8,
    price: Decimal8,
}

/// The tick that applies at `price`: the last step whose threshold it exceeds, else the base.
fn tick_at(base: i64, steps: &[(i64, i64)], price: i64) -> i64 {
    steps.iter().filter(|(above, _)| price > *above).map(|(_, t)| *t).next_back().unwrap_or(base)
}

/// Reads the instrument and its ticker (public requests) and builds the probe order.
///
/// # Errors
/// Transport, a venue error, or market data without a positive price, tick or amount.
pub fn market_order(conn: &mut Connection, instrument: &str) -> Result<MarketOrder, ConnError> {
    let timeout = super::CALL_TIMEOUT;
    let fill = |b: &mut hotpath::venue::request::RequestBuf| {
        b.str("instrument_name", instrument);
    };
    let (tick, steps, amount) = conn.call(
        GET_INSTRUMENT,
        fill,
        timeout,
        |m| match m {
            Message::Response(r) => match &r.result {
                ResultPayload::Instrument(i) => Ok((
                    i.tick_size.raw,
                    i.tick_size_steps
                        .iter()
                        .map(|s| (s.above_price.raw, s.tick_size.raw))
                        .collect::<Vec<_>>(),
                    i.min_trade_amount,
                )),
                _ => Err(ConnError::UnexpectedReply),
            },
            _ => Err(ConnError::UnexpectedReply),
        },
        &mut |_| {},
    )?;
    let reference = conn.call(
        methods::TICKER,
        fill,
        timeout,
        |m| match m {
            Message::Response(r) => match &r.result {
                ResultPayload::Ticker(t) | ResultPayload::OrderBook(_, t) => {
                    Ok([t.best_bid_price, t.mark_price]
                        .into_iter()
                        .flatten()
                        .map(|p| p.raw)
                        .filter(|p| *p > 0)
                        .min())
                }
                _ => Err(ConnError::UnexpectedReply),
            },
            _ => Err(ConnError::UnexpectedReply),
        },
        &mut |_| {},
    )?;
    let Some(reference) = reference.filter(|_| tick > 0 && amount.raw > 0) else {
        return Err(ConnError::UnexpectedReply);
    };
    let target = reference / 2;
    let step = tick_at(tick, &steps, target);
    let price = (target / step * step).max(tick);
    Ok(MarketOrder { instrument: instrument.to_owned(), amount, price: Decimal8::from_raw(price) })
}

/// Sends one probe request and says how the venue answered, with what was done about an
/// order that was wrongly accepted (cancelled, or why not).
pub fn run(
    conn: &mut Connection,
    url: &str,
    creds: &Credentials,
    action: Action,
    market: Option<&Result<MarketOrder, String>>,
) -> (Got, Option<String>) {
    match action {
        Action::Request(method) => {
            let outcome = conn.call(
                method,
                |b| fill_request(method, b),
                super::CALL_TIMEOUT,
                |_| Ok(()),
                &mut |_| {},
            );
            (outcome.map_or_else(|e| Got::from_conn(&e), |()| Got::Accepted), None)
        }
        Action::Withdraw => {
            let outcome = conn.call(
                WITHDRAW,
                |b| {
                    b.str("currency", "BTC")
                        .str("address", PROBE_WITHDRAW_ADDRESS)
                        .dec("amount", PROBE_WITHDRAW_AMOUNT)
                        .str("priority", "very_low");
                },
                super::CALL_TIMEOUT,
                |_| Ok(()),
                &mut |_| {},
            );
            (outcome.map_or_else(|e| Got::from_conn(&e), |()| Got::Accepted), None)
        }
        Action::OrderEntry => match market {
            Some(Ok(m)) => order_entry(url, creds, m),
            Some(Err(e)) => (Got::Transport(format!("market data for the probe order: {e}")), None),
            None => (Got::Transport("no market data for the probe order".into()), None),
        },
    }
}

fn fill_request(method: &str, b: &mut hotpath::venue::request::RequestBuf) {
    if method == methods::ENABLE_COD {
        b.str("scope", "connection");
    } else {
        b.str("currency", "BTC");
    }
}

fn order_entry(url: &str, creds: &Credentials, m: &MarketOrder) -> (Got, Option<String>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let order = ProbeOrder { instrument: &m.instrument, amount: m.amount, price: m.price };
    match scope_probe::attempt_order(
        &ConnConfig::new(url),
        clock,
        creds,
        &order,
        super::CALL_TIMEOUT,
    ) {
        Ok(OrderAttempt::Refused(code)) => (Got::from_venue(code), None),
        Ok(OrderAttempt::Accepted { order_id, cancel }) => {
            let cleanup = match cancel {
                Ok(()) => format!("order {order_id} cancelled at once"),
                Err(e) => format!(
                    "order {order_id} NOT cancelled ({e}): cancel it by hand (label {})",
                    scope_probe::PROBE_LABEL
                ),
            };
            (Got::Accepted, Some(cleanup))
        }
        Err(DispatchError::Conn(e)) => (Got::from_conn(&e), None),
        Err(e) => (Got::Transport(e.to_string()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_scope_refusal_passes_an_out_of_scope_probe() {
        let judge = |got: Got| verdict(&got, true);
        assert_eq!(judge(Got::from_venue(VenueErrorCode::Forbidden)), Verdict::Pass);
        assert_eq!(judge(Got::Accepted), Verdict::Fail);
        // Judged on its merits ⇒ the scope check let it through.
        for c in [VenueErrorCode::NotEnoughFunds, VenueErrorCode::OtherReject] {
            assert_eq!(judge(Got::from_venue(c)), Verdict::Fail, "{c:?}");
        }
        // Says nothing about the scope.
        for c in [
            VenueErrorCode::TooManyRequests,
            VenueErrorCode::Unauthorized,
            VenueErrorCode::MethodNotFound,
            VenueErrorCode::Unknown(99_999),
        ] {
            assert_eq!(judge(Got::from_venue(c)), Verdict::Error, "{c:?}");
        }
        assert_eq!(judge(Got::Transport("timed out".into())), Verdict::Error);
        // A needed permission refused by scope fails; granted passes.
        assert_eq!(verdict(&Got::RefusedByScope, false), Verdict::Fail);
        assert_eq!(verdict(&Got::Accepted, false), Verdict::Pass);
    }

    #[test]
    fn the_tick_follows_the_price_steps() {
        let steps = [(500_000, 50_000)];
        assert_eq!(tick_at(10_000, &steps, 400_000), 10_000);
        assert_eq!(tick_at(10_000, &steps, 600_000), 50_000);
        assert_eq!(tick_at(50_000_000, &[], 1), 50_000_000);
    }

    #[test]
    fn order_entry_and_withdrawal_are_never_sent_when_permitted() {
        assert!(!Action::OrderEntry.safe_when_permitted());
        assert!(!Action::Withdraw.safe_when_permitted());
        assert_eq!(action_for("wallet", Access::ReadWrite).map(|a| a.0), Some(Action::Withdraw));
        assert_eq!(action_for("trade", Access::ReadWrite).map(|a| a.0), Some(Action::OrderEntry));
        assert!(action_for("custody", Access::Read).is_none());
    }
}
