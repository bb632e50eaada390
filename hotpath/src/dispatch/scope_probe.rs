//! The key-scope probe's order attempt (P0-C, `stoic keys probe`): one real order sent with a
//! key whose role must NOT be able to trade, expecting the venue to refuse it (13021).
//!
//! Orders leave only through `dispatch` (DESIGN rule 1), so this one does too, but it is not
//! the engine's path: no gates, no WAL, because the order is meant to be refused and is never
//! part of a strategy. What keeps it harmless if a key wrongly *can* trade:
//! - it is a limit buy of the instrument's minimum amount at a price the caller puts far
//!   below the market, `post_only` + `reject_post_only`, so it can never take liquidity (a
//!   crossing price is refused by the venue with 11054 instead of filling);
//! - an accepted order is cancelled at once on the same connection, and the caller is told
//!   whether that cancel succeeded (a resting order carries [`PROBE_LABEL`] so an operator
//!   can find it).
//!
//! The connection is authenticated but has neither heartbeat nor cancel-on-disconnect: the
//! keys probed here may lack `account:read_write`, which enabling COD needs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::dispatch::client::{OrderParams, OrderType, TimeInForce, TradingClient};
use crate::dispatch::DispatchError;
use crate::venue::auth::{AuthGrant, Credentials};
use crate::venue::conn::{ConnConfig, ConnError, Connection, Incoming};
use crate::venue::messages::{Message, RequestId, ResultPayload};
use crate::venue::{Decimal8, VenueErrorCode};

/// Label of every probe order.
pub const PROBE_LABEL: &str = "stoic-key-scope-probe";

/// The order to attempt.
#[derive(Debug, Clone, Copy)]
pub struct ProbeOrder<'a> {
    /// Instrument.
    pub instrument: &'a str,
    /// Amount (the instrument's minimum).
    pub amount: Decimal8,
    /// Limit price, far below the market.
    pub price: Decimal8,
}

/// What the venue did with the order.
#[derive(Debug)]
pub enum OrderAttempt {
    /// Refused with this code (13021 `forbidden` is the scope refusal).
    Refused(VenueErrorCode),
    /// Accepted (it must not have been); the cancel sent straight after, and how it went.
    Accepted {
        /// Venue order id.
        order_id: String,
        /// `Ok` when the cancel was confirmed.
        cancel: Result<(), ConnError>,
    },
}

/// A reply, owned (the decoded message borrows the frame).
enum Reply {
    Order(String),
    Error(VenueErrorCode),
    Other,
}

fn wait_reply(client: &mut TradingClient, id: u64, timeout: Duration) -> Result<Reply, ConnError> {
    let deadline = Instant::now() + timeout;
    let mut out = None;
    while out.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnError::Timeout);
        }
        client.poll(left, &mut |inc: Incoming<'_>| {
            let reply = match inc.msg {
                Message::Response(r) if r.id == Some(RequestId::Num(id)) => match &r.result {
                    ResultPayload::OrderWithTrades(o, _) | ResultPayload::Order(o) => {
                        Reply::Order(o.order_id.to_owned())
                    }
                    _ => Reply::Other,
                },
                Message::Error(e) if e.id == Some(RequestId::Num(id)) => Reply::Error(e.code),
                _ => return,
            };
            out.get_or_insert(reply);
        })?;
    }
    out.ok_or(ConnError::Timeout)
}

/// Connects, authenticates `creds` (client signature, the key's full scope) and sends one
/// post-only buy; cancels it at once if the venue accepts it.
///
/// # Errors
/// Connecting/authenticating, a bad `order` (zero amount or price), a transport failure or
/// timeout, or a reply that is neither an order nor an error
/// ([`ConnError::UnexpectedReply`]).
pub fn attempt_order(
    cfg: &ConnConfig,
    clock: Arc<dyn Clock>,
    creds: &Credentials,
    order: &ProbeOrder<'_>,
    timeout: Duration,
) -> Result<OrderAttempt, DispatchError> {
    let mut conn = Connection::connect(cfg, clock)?;
    conn.authenticate(creds, AuthGrant::ClientSignature, None, timeout)?;
    let mut client = TradingClient::from_authenticated(conn);
    let params = OrderParams {
        instrument: order.instrument,
        amount: order.amount,
        price: Some(order.price),
        label: PROBE_LABEL,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::GoodTilCancelled,
        post_only: true,
        reject_post_only: true,
        reduce_only: false,
    };
    let id = client.buy(&params)?;
    let outcome = match wait_reply(&mut client, id, timeout)? {
        Reply::Error(code) => OrderAttempt::Refused(code),
        Reply::Other => return Err(ConnError::UnexpectedReply.into()),
        Reply::Order(order_id) => {
            let cancel = match client.cancel(&order_id) {
                Ok(cid) => match wait_reply(&mut client, cid, timeout) {
                    Ok(Reply::Order(_)) => Ok(()),
                    Ok(Reply::Error(code)) => Err(ConnError::Venue(code)),
                    Ok(Reply::Other) => Err(ConnError::UnexpectedReply),
                    Err(e) => Err(e),
                },
                Err(DispatchError::Conn(e)) => Err(e),
                Err(_) => Err(ConnError::UnexpectedReply),
            };
            OrderAttempt::Accepted { order_id, cancel }
        }
    };
    client.connection().close();
    Ok(outcome)
}
