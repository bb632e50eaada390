//! The public face of the dispatch chokepoint: [`Dispatcher`] owns the one
//! [`TradingClient`] of the process and is the only way anything outside this module can
//! make an order leave.
//!
//! Rules it enforces by construction:
//! - **Durable before send.** [`Dispatcher::send_batch`] takes the WAL's [`DurableSeq`]
//!   proof and refuses (without touching the socket) any intent whose `IntentRecorded`
//!   sequence number the proof does not cover.
//! - **Unjournaled reduce, explicitly.** The one exception to durable-before-send is
//!   [`Dispatcher::send_unjournaled_reduce`]: a risk-reducing intent whose record the WAL
//!   refused, carried by an [`UnjournaledReduce`] token that only the pipeline can make (class
//!   `Reduce`/`Close`, WAL refusal). It goes out with `reduce_only = true` on the wire, so the
//!   venue itself guarantees it cannot open exposure (DESIGN invariants 2 and 6).
//! - **No blind resend.** There is no "retry" entry point. An intent that was journaled but
//!   whose fate is unknown (after a crash or a reconnect) goes through
//!   [`Dispatcher::resolve_in_doubt`], which asks the venue by label and classifies it; an
//!   intent the venue never saw is reported [`Resolution::NeverSeen`] and the caller
//!   journals it `Abandoned`. Nothing here ever sends the same intent twice.
//! - **Never panic on venue input.** Every reply is matched structurally; unknown shapes are
//!   counted and ignored.
//!
//! Crash points (feature `failpoints`, see [`crate::wal::failpoint`]):
//! `after_sync_before_send` (a synced batch, nothing sent yet), `mid_batch` (the first order
//! of a batch of two or more is on the socket, the next is not), `after_send_before_ack_record`
//! (an order is on the socket, its `Sent`/`Acknowledged` records are not journaled).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::domain::intent::TimeInForce as IntentTif;
use crate::domain::intent::{OrderIntent, OrderType as IntentOrderType, Side as IntentSide};
use crate::venue::auth::{AuthGrant, Credentials};
use crate::venue::conn::{ConnConfig, ConnError, Incoming};
use crate::venue::messages::{
    Direction, Message, NotificationData, Order, OrderState, RequestId, ResultPayload, UserTrade,
};
use crate::venue::{methods, Decimal8};
use crate::wal::failpoint;
use crate::wal::{DurableSeq, IntentEntry, IntentLedger, Seq};

use super::client::{DispatchError, OrderParams, OrderType, TimeInForce, TradingClient};
use super::pipeline::UnjournaledReduce;

/// Private channels the trading connection subscribes to (order and fill reports).
pub const EXECUTION_CHANNELS: [&str; 2] = ["user.orders.any.any.raw", "user.trades.any.any.raw"];

/// How to open the trading session.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// `ws://` or `wss://` URL of the venue's JSON-RPC endpoint.
    pub url: String,
    /// Heartbeat interval requested from the venue (seconds, ≥ 10).
    pub heartbeat_s: u32,
    /// Timeout of each set-up call and of each reconciliation query.
    pub timeout: Duration,
    /// How to authenticate.
    pub grant: AuthGrant,
}

impl DispatcherConfig {
    /// Defaults for `url`: 10 s heartbeat, 5 s timeouts, client credentials.
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            heartbeat_s: 10,
            timeout: Duration::from_secs(5),
            grant: AuthGrant::ClientCredentials,
        }
    }
}

/// Why the dispatcher refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    /// The durable proof does not cover the intent's `IntentRecorded` record.
    #[error("intent record seq {record_seq} is not covered by durable seq {durable_seq}")]
    NotDurable {
        /// The intent's record.
        record_seq: Seq,
        /// What the proof covers.
        durable_seq: Seq,
    },
    /// The unjournaled-reduce token was issued for another intent (nothing is sent).
    #[error("unjournaled-reduce token for {token:016x} presented for intent {intent:016x}")]
    TokenMismatch {
        /// The intent the token was issued for.
        token: u64,
        /// The intent presented.
        intent: u64,
    },
    /// An order type or time in force the wire client does not carry (preflight refuses these
    /// long before; reaching here is a wiring bug).
    #[error("order shape not dispatchable: {0}")]
    Unsupported(&'static str),
    /// The trading client refused the parameters or the connection failed.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// A connection-level failure.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// A query got no answer in time.
    #[error("no answer to {0} in time")]
    Timeout(&'static str),
    /// A reconciliation query was answered with something that is not its answer.
    #[error("unexpected reply to {0}")]
    UnexpectedReply(&'static str),
}

impl DispatcherError {
    /// Whether the request certainly did not reach the socket (the intent may be abandoned
    /// without asking the venue). Conservative: only local refusals qualify.
    #[must_use]
    pub fn certainly_not_sent(&self) -> bool {
        match self {
            Self::NotDurable { .. } | Self::Unsupported(_) | Self::TokenMismatch { .. } => true,
            Self::Dispatch(DispatchError::Conn(c)) | Self::Conn(c) => matches!(
                c,
                ConnError::Throttled { .. }
                    | ConnError::BreakerOpen
                    | ConnError::InFlightFull
                    | ConnError::TradingMethodRefused
                    | ConnError::NotAuthenticated
            ),
            Self::Dispatch(_) => true,
            Self::UnexpectedReply(_) | Self::Timeout(_) => false,
        }
    }
}

/// One intent of a batch, ready to leave: journaled, and its record seq known.
#[derive(Debug, Clone, Copy)]
pub struct OutboundIntent<'a> {
    /// The intent.
    pub intent: &'a OrderIntent,
    /// Its label (`Label::for_intent`, as the gates built it).
    pub label: &'a str,
    /// Sequence number of its `IntentRecorded` WAL record.
    pub record_seq: Seq,
}

/// The outcome of one send in a batch.
#[derive(Debug)]
pub enum SendOutcome {
    /// Written to the venue socket under this request id.
    Sent {
        /// JSON-RPC request id.
        request_id: u64,
    },
    /// Not sent; the error says whether it could have reached the venue.
    Failed(DispatcherError),
}

/// An order as the venue reports it (from a reply or a `user.orders` notification).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderReport {
    /// Our label.
    pub label: String,
    /// Venue order id.
    pub order_id: String,
    /// Instrument.
    pub instrument: String,
    /// Buy (true) or sell.
    pub buy: bool,
    /// Venue order state.
    pub state: OrderState,
    /// Order amount.
    pub amount: Decimal8,
    /// Cumulative filled amount.
    pub filled: Decimal8,
    /// Average fill price, if any fill.
    pub average_price: Option<Decimal8>,
}

/// A fill as the venue reports it (`user.trades` or a reply's trades).
#[derive(Debug, Clone, PartialEq)]
pub struct FillReport {
    /// Our label.
    pub label: String,
    /// Venue trade id.
    pub trade_id: String,
    /// Venue order id.
    pub order_id: String,
    /// Instrument.
    pub instrument: String,
    /// Buy (true) or sell.
    pub buy: bool,
    /// Fill price.
    pub price: Decimal8,
    /// Fill amount.
    pub amount: Decimal8,
    /// Fee charged in the instrument's settlement currency (negative = rebate), when the
    /// venue reported one (daily PnL counts it).
    pub fee: Option<Decimal8>,
}

/// What the engine applies to the WAL, the ledger and the exposure book.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecReport {
    /// New state of an order.
    Order(OrderReport),
    /// A fill.
    Fill(FillReport),
    /// The venue refused an order request.
    Rejected {
        /// Our label.
        label: String,
        /// Venue error code.
        code: i32,
        /// Venue message.
        reason: String,
    },
    /// A cancel request was refused (e.g. the order was already gone).
    CancelRefused {
        /// Our label.
        label: String,
        /// Venue error code.
        code: i32,
    },
}

impl ExecReport {
    /// The label the report is about.
    #[must_use]
    pub fn label(&self) -> &str {
        match self {
            Self::Order(o) => &o.label,
            Self::Fill(f) => &f.label,
            Self::Rejected { label, .. } | Self::CancelRefused { label, .. } => label,
        }
    }
}

/// How the venue answered for one in-doubt intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Working at the venue: adopt the order id (and the partial fill, if any).
    Live {
        /// The intent.
        intent_hash: u64,
        /// The order as the venue holds it.
        order: OrderReport,
    },
    /// Completely filled.
    Filled {
        /// The intent.
        intent_hash: u64,
        /// The order (filled amount, id), when the venue still reports it.
        order: Option<OrderReport>,
        /// Cumulative filled amount.
        filled: Decimal8,
        /// Last trade id ("" if none known).
        trade_id: String,
    },
    /// Cancelled (maybe after partial fills).
    Cancelled {
        /// The intent.
        intent_hash: u64,
        /// The order.
        order: OrderReport,
    },
    /// Rejected by the venue.
    Rejected {
        /// The intent.
        intent_hash: u64,
        /// The order.
        order: OrderReport,
    },
    /// The venue has no trace of the label: journal `Abandoned`, never resend.
    NeverSeen {
        /// The intent.
        intent_hash: u64,
    },
}

impl Resolution {
    /// The intent resolved.
    #[must_use]
    pub fn intent_hash(&self) -> u64 {
        match self {
            Self::Live { intent_hash, .. }
            | Self::Filled { intent_hash, .. }
            | Self::Cancelled { intent_hash, .. }
            | Self::Rejected { intent_hash, .. }
            | Self::NeverSeen { intent_hash } => *intent_hash,
        }
    }
}

/// A venue position (signed: negative = short).
#[derive(Debug, Clone, PartialEq)]
pub struct VenuePosition {
    /// Instrument.
    pub instrument: String,
    /// Signed size in the instrument's amount units.
    pub size: Decimal8,
    /// The venue's delta of the position (base-currency units), when reported.
    pub delta: Option<f64>,
}

/// A label kept inline (≤ [`super::LABEL_BYTES_MAX`] bytes, which the client enforces
/// before anything is sent), so remembering a request allocates nothing.
#[derive(Clone, Copy)]
struct PendingLabel {
    bytes: [u8; super::LABEL_BYTES_MAX],
    len: u8,
}

impl PendingLabel {
    fn new(label: &str) -> Self {
        let mut bytes = [0u8; super::LABEL_BYTES_MAX];
        let n = label.len().min(super::LABEL_BYTES_MAX);
        bytes[..n].copy_from_slice(&label.as_bytes()[..n]);
        Self { bytes, len: u8::try_from(n).unwrap_or(0) }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for PendingLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Order { label: PendingLabel },
    Cancel { label: PendingLabel },
}

/// Requests awaiting their reply the dispatcher remembers without allocating (the map is
/// sized for them at connect; more grow it).
const PENDING_PRESIZED: usize = 2 * crate::venue::conn::IN_FLIGHT_MAX;

/// Counters (for metrics and the status page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Orders written to the socket.
    pub orders_sent: u64,
    /// Cancels written to the socket.
    pub cancels_sent: u64,
    /// Sends refused before the socket.
    pub refused: u64,
    /// Of `orders_sent`: risk-reducing orders sent unjournaled (the WAL could not append).
    pub unjournaled_sent: u64,
    /// Replies/notifications whose shape was not understood (ignored).
    pub ignored_messages: u64,
}

/// The dispatch stage: one authenticated trading session with cancel-on-disconnect.
#[derive(Debug)]
pub struct Dispatcher {
    client: TradingClient,
    pending: HashMap<u64, Pending>,
    stats: DispatchStats,
    timeout: Duration,
}

fn dec_str(d: Decimal8) -> String {
    let neg = d.raw < 0;
    let a = d.raw.unsigned_abs();
    let whole = a / 100_000_000;
    let frac = a % 100_000_000;
    let mut s = if frac == 0 {
        format!("{whole}")
    } else {
        let f = format!("{frac:08}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    if neg {
        s.insert(0, '-');
    }
    s
}

impl OrderReport {
    fn from_order(o: &Order<'_>) -> Self {
        Self {
            label: o.label.to_owned(),
            order_id: o.order_id.to_owned(),
            instrument: o.instrument_name.to_owned(),
            buy: matches!(o.direction, Direction::Buy),
            state: o.order_state,
            amount: o.amount,
            filled: o.filled_amount,
            average_price: o.average_price,
        }
    }
}

impl FillReport {
    fn from_trade(t: &UserTrade<'_>) -> Self {
        Self {
            label: t.label.to_owned(),
            trade_id: t.trade_id.to_owned(),
            order_id: t.order_id.to_owned(),
            instrument: t.instrument_name.to_owned(),
            buy: matches!(t.direction, Direction::Buy),
            price: t.price,
            amount: t.amount,
            fee: t.fee,
        }
    }
}

/// The instrument name inside an intent's canonical bytes (layout in `domain::intent`:
/// version, hash version, name length, name).
#[must_use]
pub fn instrument_of_canonical(canonical: &[u8]) -> Option<&str> {
    let len = usize::from(*canonical.get(2)?);
    std::str::from_utf8(canonical.get(3..3 + len)?).ok()
}

/// The settlement currency code of an instrument name (`BTC-PERPETUAL` → `BTC`).
#[must_use]
pub fn currency_of_instrument(name: &str) -> Option<&str> {
    let c = name.split('-').next()?;
    let c = c.split('_').next()?;
    (!c.is_empty()).then_some(c)
}

impl Dispatcher {
    /// Connects, authenticates, sets the heartbeat, enables connection-scoped
    /// cancel-on-disconnect and subscribes to the private order and trade channels.
    ///
    /// # Errors
    /// Any connection, auth or subscription failure.
    pub fn connect(
        cfg: &DispatcherConfig,
        clock: Arc<dyn Clock>,
        creds: &Credentials,
    ) -> Result<Self, DispatcherError> {
        let mut client = TradingClient::connect(
            &ConnConfig::new(&cfg.url),
            clock,
            creds,
            cfg.grant,
            cfg.heartbeat_s,
            cfg.timeout,
        )?;
        // Nothing of ours is in flight yet, so no report can arrive during set-up.
        let n = client.connection().subscribe(&EXECUTION_CHANNELS, cfg.timeout, &mut |_| {})?;
        if n != EXECUTION_CHANNELS.len() {
            return Err(DispatcherError::UnexpectedReply("private/subscribe"));
        }
        Ok(Self {
            client,
            pending: HashMap::with_capacity(PENDING_PRESIZED),
            stats: DispatchStats::default(),
            timeout: cfg.timeout,
        })
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> DispatchStats {
        self.stats
    }

    /// Whether the session is closed (reconnect, and resolve in-doubt intents first).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.client.connection_ref().is_closed()
    }

    /// Whether the rate-limit breaker refuses ordinary requests now.
    pub fn breaker_open(&mut self) -> bool {
        let conn = self.client.connection();
        let now = conn.now_ms();
        !conn.breaker().allows_requests(now)
    }

    /// The session's rate-limit breaker (tripping it only ever restricts).
    pub fn rate_limit_breaker(&mut self) -> &mut crate::venue::credits::RateLimitBreaker {
        self.client.connection().breaker()
    }

    /// Containment with the breaker open (B §3.3): draws `requests` credits from `reserve`
    /// and lets exactly that many next requests of this session past the breaker. Nothing is
    /// drawn while the breaker is closed (ordinary limits apply).
    ///
    /// # Errors
    /// `RateLimitBrownout` when the reserve cannot cover `requests` (nothing granted).
    pub fn grant_reserved(
        &mut self,
        reserve: &mut crate::emergency::CreditReserve,
        requests: u32,
    ) -> Result<(), crate::domain::reason_codes::RejectReasonCode> {
        if !self.breaker_open() {
            return Ok(());
        }
        reserve.take(requests.saturating_mul(crate::emergency::EMERGENCY_ORDER_CREDITS))?;
        self.client.connection().set_reserved_passes(requests);
        Ok(())
    }

    /// Adopts the account's matching-engine limits on this session's credit limiter (the
    /// venue reports them in `get_account_summary.limits`; they are authoritative).
    pub fn adopt_matching_limits(
        &mut self,
        limits: crate::venue::messages::RateBurst,
        now_ms: i64,
    ) {
        self.client.connection().limiter().apply_account_limits(None, Some(limits), now_ms);
    }

    /// Revokes reserve passes left over from [`Self::grant_reserved`].
    pub fn revoke_reserved(&mut self) {
        self.client.connection().set_reserved_passes(0);
    }

    /// Requests still waiting for their reply.
    #[must_use]
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Sends one batch of journaled intents, in order. The batch must have been made durable
    /// by ONE `Wal::sync` whose proof is `durable`; each intent is checked against it.
    pub fn send_batch(
        &mut self,
        batch: &[OutboundIntent<'_>],
        durable: DurableSeq,
    ) -> Vec<SendOutcome> {
        let mut out = Vec::with_capacity(batch.len());
        if batch.is_empty() {
            return out;
        }
        failpoint::hit("after_sync_before_send");
        for (i, o) in batch.iter().enumerate() {
            if i == 1 {
                failpoint::hit("mid_batch");
            }
            out.push(match self.send(o, durable) {
                Ok(request_id) => SendOutcome::Sent { request_id },
                Err(e) => SendOutcome::Failed(e),
            });
        }
        out
    }

    /// [`Self::send_batch`] for the pipeline's staged intents, writing one outcome per intent
    /// into `out` (cleared first; reused across batches, so nothing is allocated once it
    /// has grown to the largest batch).
    pub fn send_staged(
        &mut self,
        staged: &[super::Staged],
        durable: DurableSeq,
        out: &mut Vec<SendOutcome>,
    ) {
        out.clear();
        if staged.is_empty() {
            return;
        }
        failpoint::hit("after_sync_before_send");
        for (i, s) in staged.iter().enumerate() {
            if i == 1 {
                failpoint::hit("mid_batch");
            }
            let o = OutboundIntent {
                intent: &s.intent,
                label: s.accepted.label.as_str(),
                record_seq: s.record_seq,
            };
            out.push(match self.send(&o, durable) {
                Ok(request_id) => SendOutcome::Sent { request_id },
                Err(e) => SendOutcome::Failed(e),
            });
        }
    }

    /// Sends one journaled intent. Prefer [`Self::send_batch`].
    ///
    /// # Errors
    /// [`DispatcherError::NotDurable`] when `durable` does not cover `o.record_seq` (nothing is
    /// sent), [`DispatcherError::Unsupported`], or the client's refusal/failure.
    pub fn send(
        &mut self,
        o: &OutboundIntent<'_>,
        durable: DurableSeq,
    ) -> Result<u64, DispatcherError> {
        if o.record_seq == 0 || !durable.covers(o.record_seq) {
            self.stats.refused += 1;
            return Err(DispatcherError::NotDurable {
                record_seq: o.record_seq,
                durable_seq: durable.seq(),
            });
        }
        self.send_checked(o, o.intent.fields().reduce_only)
    }

    /// Sends ONE risk-reducing intent the WAL could not journal (DESIGN invariant 6: capital
    /// supremacy beats journaling). `token` is the pipeline's proof that the gates classified
    /// the intent `Reduce`/`Close` and the WAL refused its record; it is consumed. The order
    /// always goes out with `reduce_only = true`, whatever the intent said, so the venue
    /// refuses it if it would open exposure. Logged at error level with the intent id.
    ///
    /// # Errors
    /// [`DispatcherError::TokenMismatch`] when the token was issued for another intent
    /// (nothing is sent), [`DispatcherError::Unsupported`], or the client's refusal/failure.
    pub fn send_unjournaled_reduce(
        &mut self,
        o: &OutboundIntent<'_>,
        token: UnjournaledReduce,
    ) -> Result<u64, DispatcherError> {
        let h = o.intent.hash().value();
        let (token_hash, class) = token.consume();
        if token_hash != h {
            self.stats.refused += 1;
            return Err(DispatcherError::TokenMismatch { token: token_hash, intent: h });
        }
        // The caller traces this as `unjournaled_reduce` / `unjournaled_sent` (alarm records);
        // the chokepoint itself does not format logs. `class` is a reducing class by the
        // token's construction.
        debug_assert!(!matches!(class, crate::gates::IntentClass::Open));
        let r = self.send_checked(o, true);
        if r.is_ok() {
            self.stats.unjournaled_sent += 1;
        }
        r
    }

    fn send_checked(
        &mut self,
        o: &OutboundIntent<'_>,
        reduce_only: bool,
    ) -> Result<u64, DispatcherError> {
        let f = o.intent.fields();
        let order_type = match f.order_type {
            IntentOrderType::Limit => OrderType::Limit,
            _ => {
                self.stats.refused += 1;
                return Err(DispatcherError::Unsupported("only limit orders are dispatched"));
            }
        };
        if f.linked_order_type.is_some() || f.trigger_price.is_some() {
            self.stats.refused += 1;
            return Err(DispatcherError::Unsupported("linked or triggered order"));
        }
        let time_in_force = match f.time_in_force {
            IntentTif::GoodTilCancelled => TimeInForce::GoodTilCancelled,
            IntentTif::GoodTilDay => TimeInForce::GoodTilDay,
            IntentTif::FillOrKill => TimeInForce::FillOrKill,
            IntentTif::ImmediateOrCancel => TimeInForce::ImmediateOrCancel,
        };
        let name = f.instrument.name();
        let params = OrderParams {
            instrument: name.as_str(),
            amount: Decimal8::from_raw(f.qty.raw()),
            price: f.limit_price.map(|p| Decimal8::from_raw(p.raw())),
            label: o.label,
            order_type,
            time_in_force,
            post_only: f.post_only,
            reject_post_only: f.post_only,
            reduce_only,
        };
        let sent = match f.side {
            IntentSide::Buy => self.client.buy(&params),
            IntentSide::Sell => self.client.sell(&params),
        };
        let id = match sent {
            Ok(id) => id,
            Err(e) => {
                self.stats.refused += 1;
                return Err(e.into());
            }
        };
        self.stats.orders_sent += 1;
        self.pending.insert(id, Pending::Order { label: PendingLabel::new(o.label) });
        failpoint::hit("after_send_before_ack_record");
        Ok(id)
    }

    /// Cancels an order by its label (`private/cancel_by_label`, limited to the currency of
    /// `instrument`). The outcome arrives through [`Self::poll`].
    ///
    /// # Errors
    /// The client's refusal or a connection failure.
    pub fn cancel_by_label(
        &mut self,
        label: &str,
        instrument: &str,
    ) -> Result<u64, DispatcherError> {
        let id = self.client.cancel_by_label(label, currency_of_instrument(instrument))?;
        self.stats.cancels_sent += 1;
        self.pending.insert(id, Pending::Cancel { label: PendingLabel::new(label) });
        Ok(id)
    }

    /// Rate-limit breaker trips (10028 / 429) seen on this trading session since it
    /// connected: the engine's breaker monitor reads it before the session is replaced.
    pub fn rate_limit_trips(&mut self) -> u64 {
        self.client.connection().breaker().trips_total()
    }

    /// The session's matching-engine credits and breaker state, for brownout admission
    /// (opens give way to cancels and closes before the venue would answer 10028).
    pub fn credit_view(
        &mut self,
        now_ms: i64,
    ) -> (crate::venue::credits::PoolView, crate::venue::credits::BreakerState) {
        let c = self.client.connection();
        let pool = c.limiter().matching_view(now_ms);
        (pool, c.breaker().state(now_ms))
    }

    /// Cancels every open order of the account (shutdown).
    ///
    /// # Errors
    /// The client's refusal or a connection failure.
    pub fn cancel_all(&mut self) -> Result<(), DispatcherError> {
        self.cancel_all_reporting(&mut Vec::new())
    }

    /// [`Self::cancel_all`], keeping the execution reports that arrive while it waits (the
    /// cancelled orders' updates), so the caller's ledger sees them.
    ///
    /// # Errors
    /// The client's refusal or a connection failure.
    pub fn cancel_all_reporting(
        &mut self,
        out: &mut Vec<ExecReport>,
    ) -> Result<(), DispatcherError> {
        let id = self.client.cancel_all()?;
        let deadline = Instant::now() + self.timeout;
        let mut done = false;
        while !done && Instant::now() < deadline {
            self.poll_inner(Duration::from_millis(50), out, Some(id), &mut done)?;
        }
        Ok(())
    }

    /// Receives replies and notifications for up to `timeout` (returns early when something
    /// arrived) and appends the execution reports to `out`.
    ///
    /// # Errors
    /// A dead connection ([`ConnError::Closed`] etc.): reconnect and resolve in-doubt intents.
    pub fn poll(
        &mut self,
        timeout: Duration,
        out: &mut Vec<ExecReport>,
    ) -> Result<usize, DispatcherError> {
        let mut unused = false;
        self.poll_inner(timeout, out, None, &mut unused)
    }

    fn poll_inner(
        &mut self,
        timeout: Duration,
        out: &mut Vec<ExecReport>,
        watch: Option<u64>,
        watched: &mut bool,
    ) -> Result<usize, DispatcherError> {
        let pending = &mut self.pending;
        let stats = &mut self.stats;
        let n = self.client.poll(timeout, &mut |inc: Incoming<'_>| {
            handle_incoming(&inc, pending, stats, out, watch, watched);
        })?;
        Ok(n)
    }

    /// Sends one query and waits for its reply (other traffic goes to `other`).
    fn query<T>(
        &mut self,
        send: impl FnOnce(&mut TradingClient) -> Result<u64, DispatchError>,
        what: &'static str,
        mut map: impl FnMut(&ResultPayload<'_>) -> Option<T>,
        other: &mut Vec<ExecReport>,
    ) -> Result<T, DispatcherError> {
        let id = send(&mut self.client)?;
        let deadline = Instant::now() + self.timeout;
        let decode_errors = self.client.connection_ref().stats().decode_errors;
        let mut answer: Option<Result<T, DispatcherError>> = None;
        while answer.is_none() {
            if Instant::now() >= deadline {
                return Err(DispatcherError::Timeout(what));
            }
            // A reply that does not decode is dropped by the connection: do not wait the whole
            // timeout for it (only our query is outstanding on this path).
            if self.client.connection_ref().stats().decode_errors > decode_errors
                && self.client.connection_ref().in_flight() == 0
            {
                return Err(DispatcherError::UnexpectedReply(what));
            }
            let pending = &mut self.pending;
            let stats = &mut self.stats;
            self.client.poll(Duration::from_millis(50), &mut |inc: Incoming<'_>| {
                let mine = match inc.msg {
                    Message::Response(r) => r.id == Some(RequestId::Num(id)),
                    Message::Error(e) => e.id == Some(RequestId::Num(id)),
                    _ => false,
                };
                if mine {
                    answer = Some(match inc.msg {
                        Message::Response(r) => {
                            map(&r.result).ok_or(DispatcherError::UnexpectedReply(what))
                        }
                        Message::Error(e) => Err(DispatcherError::Conn(ConnError::Venue(e.code))),
                        _ => Err(DispatcherError::UnexpectedReply(what)),
                    });
                } else {
                    let mut unused = false;
                    handle_incoming(&inc, pending, stats, other, None, &mut unused);
                }
            })?;
        }
        answer.unwrap_or(Err(DispatcherError::UnexpectedReply(what)))
    }

    /// `public/get_instruments` for a currency (`"any"` for all) and kind, as the reply's
    /// JSON (for `InstrumentCache::load_get_instruments`). Asked on this authenticated session
    /// so the venue counts it against the account, not the source address.
    ///
    /// # Errors
    /// Query failure or an unparsable reply.
    pub fn instruments_json(
        &mut self,
        currency: &str,
        kind: Option<&str>,
        other: &mut Vec<ExecReport>,
    ) -> Result<serde_json::Value, DispatcherError> {
        let id = self.client.connection().send_request(methods::GET_INSTRUMENTS, |b| {
            b.str("currency", currency);
            if let Some(k) = kind {
                b.str("kind", k);
            }
        })?;
        let deadline = Instant::now() + self.timeout;
        let mut answer: Option<Result<serde_json::Value, DispatcherError>> = None;
        while answer.is_none() {
            if Instant::now() >= deadline {
                return Err(DispatcherError::Timeout(methods::GET_INSTRUMENTS));
            }
            let pending = &mut self.pending;
            let stats = &mut self.stats;
            self.client.poll(
                Duration::from_millis(50),
                &mut |inc: Incoming<'_>| match inc.msg {
                    Message::Response(r) if r.id == Some(RequestId::Num(id)) => {
                        answer = Some(serde_json::from_str(inc.raw).map_err(|_| {
                            DispatcherError::UnexpectedReply(methods::GET_INSTRUMENTS)
                        }));
                    }
                    Message::Error(e) if e.id == Some(RequestId::Num(id)) => {
                        answer = Some(Err(DispatcherError::Conn(ConnError::Venue(e.code))));
                    }
                    _ => {
                        let mut unused = false;
                        handle_incoming(&inc, pending, stats, other, None, &mut unused);
                    }
                },
            )?;
        }
        answer.unwrap_or(Err(DispatcherError::UnexpectedReply(methods::GET_INSTRUMENTS)))
    }

    /// Open orders of a currency.
    ///
    /// # Errors
    /// Query failure.
    pub fn open_orders(
        &mut self,
        currency: &str,
        other: &mut Vec<ExecReport>,
    ) -> Result<Vec<OrderReport>, DispatcherError> {
        self.query(
            |c| c.open_orders_by_currency(currency, None),
            methods::GET_OPEN_ORDERS_BY_CURRENCY,
            orders_of,
            other,
        )
    }

    /// The account's positions in a currency (signed sizes; zero sizes dropped).
    ///
    /// # Errors
    /// Query failure.
    pub fn positions(
        &mut self,
        currency: &str,
        other: &mut Vec<ExecReport>,
    ) -> Result<Vec<VenuePosition>, DispatcherError> {
        self.query(
            |c| c.positions(currency, None),
            methods::GET_POSITIONS,
            |r| match r {
                ResultPayload::Positions(v) => Some(
                    v.iter()
                        .filter(|p| p.size.raw != 0)
                        .map(|p| VenuePosition {
                            instrument: p.instrument_name.to_owned(),
                            size: p.size,
                            delta: p.delta,
                        })
                        .collect(),
                ),
                ResultPayload::Position(p) => Some(
                    (p.size.raw != 0)
                        .then(|| VenuePosition {
                            instrument: p.instrument_name.to_owned(),
                            size: p.size,
                            delta: p.delta,
                        })
                        .into_iter()
                        .collect(),
                ),
                ResultPayload::EmptyList => Some(Vec::new()),
                _ => None,
            },
            other,
        )
    }

    /// Resolves every in-doubt intent of `ledger` with the venue, by label: the order state
    /// by label, the open orders and the user trades of each currency involved. Sends no
    /// order. The caller journals each [`Resolution`] (adopt, fill, cancel, reject, or
    /// `Abandoned` for [`Resolution::NeverSeen`]) before it may send anything.
    ///
    /// # Errors
    /// A failed query: nothing is classified, the latch stays set, try again. An unreadable
    /// trade history fails the call only when some intent has no order by label and no
    /// open order, since only the trades could then tell a fill from "never seen".
    pub fn resolve_in_doubt(
        &mut self,
        ledger: &IntentLedger,
        other: &mut Vec<ExecReport>,
    ) -> Result<Vec<Resolution>, DispatcherError> {
        let entries: Vec<&IntentEntry> = ledger.in_doubt().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut currencies = BTreeSet::new();
        for e in &entries {
            match instrument_of_canonical(&e.canonical).and_then(currency_of_instrument) {
                Some(c) => {
                    currencies.insert(c.to_owned());
                }
                None => {
                    currencies.insert("BTC".to_owned());
                    currencies.insert("ETH".to_owned());
                }
            }
        }
        let mut open: BTreeMap<String, OrderReport> = BTreeMap::new();
        let mut trades: BTreeMap<String, Vec<FillReport>> = BTreeMap::new();
        // Why the trade history could not be read (if so): it then cannot vouch for "never
        // seen", and an intent nothing else reports stays unresolved (error, retry later).
        let mut trades_unreadable: Option<DispatcherError> = None;
        for c in &currencies {
            for o in self.open_orders(c, other)? {
                open.insert(o.label.clone(), o);
            }
            // Trades only decide intents the venue no longer reports by label; when the trade
            // history cannot be read, the order states by label still classify everything.
            let ts = match self.query(
                |cl| cl.user_trades_by_currency(c, 1000),
                methods::GET_USER_TRADES_BY_CURRENCY,
                |r| match r {
                    ResultPayload::UserTrades(v, _) => {
                        Some(v.iter().map(FillReport::from_trade).collect::<Vec<_>>())
                    }
                    ResultPayload::EmptyList => Some(Vec::new()),
                    _ => None,
                },
                other,
            ) {
                Ok(ts) => ts,
                Err(e @ (DispatcherError::UnexpectedReply(_) | DispatcherError::Timeout(_))) => {
                    tracing::warn!(currency = %c, error = %e, "user trades unreadable; classifying by order state");
                    trades_unreadable.get_or_insert(e);
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            for t in ts {
                trades.entry(t.label.clone()).or_default().push(t);
            }
        }
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let ccy = instrument_of_canonical(&e.canonical)
                .and_then(currency_of_instrument)
                .map(str::to_owned);
            let by_label: Vec<OrderReport> = match &ccy {
                Some(c) => self.query(
                    |cl| cl.get_order_state_by_label(c, &e.label),
                    methods::GET_ORDER_STATE_BY_LABEL,
                    orders_of,
                    other,
                )?,
                None => {
                    let mut v = Vec::new();
                    for c in &currencies {
                        v.extend(self.query(
                            |cl| cl.get_order_state_by_label(c, &e.label),
                            methods::GET_ORDER_STATE_BY_LABEL,
                            orders_of,
                            other,
                        )?);
                    }
                    v
                }
            };
            let order = by_label
                .into_iter()
                .find(|o| o.label == e.label)
                .or_else(|| open.get(&e.label).cloned());
            let fills = trades.get(&e.label);
            if order.is_none() && fills.is_none() {
                if let Some(err) = trades_unreadable.take() {
                    // Without the trade history a filled-and-archived order looks never
                    // seen; abandoning it would lose a fill.
                    return Err(err);
                }
            }
            out.push(classify(e.intent_hash, order, fills));
        }
        Ok(out)
    }

    /// Closes the session politely.
    pub fn close(&mut self) {
        self.client.connection().close();
    }
}

fn classify(
    intent_hash: u64,
    order: Option<OrderReport>,
    fills: Option<&Vec<FillReport>>,
) -> Resolution {
    let trade_id = fills.and_then(|f| f.last()).map(|t| t.trade_id.clone()).unwrap_or_default();
    match order {
        Some(o) => match o.state {
            OrderState::Open | OrderState::Untriggered | OrderState::Triggered => {
                Resolution::Live { intent_hash, order: o }
            }
            OrderState::Filled => {
                Resolution::Filled { intent_hash, filled: o.filled, order: Some(o), trade_id }
            }
            OrderState::Cancelled | OrderState::Archive => {
                Resolution::Cancelled { intent_hash, order: o }
            }
            OrderState::Rejected => Resolution::Rejected { intent_hash, order: o },
        },
        None => match fills {
            Some(f) if !f.is_empty() => {
                let filled = Decimal8::from_raw(f.iter().map(|t| t.amount.raw).sum());
                Resolution::Filled { intent_hash, order: None, filled, trade_id }
            }
            _ => Resolution::NeverSeen { intent_hash },
        },
    }
}

fn orders_of(r: &ResultPayload<'_>) -> Option<Vec<OrderReport>> {
    match r {
        ResultPayload::Orders(v) => Some(v.iter().map(OrderReport::from_order).collect()),
        ResultPayload::Order(o) => Some(vec![OrderReport::from_order(o)]),
        ResultPayload::OrderWithTrades(o, _) => Some(vec![OrderReport::from_order(o)]),
        ResultPayload::EmptyList => Some(Vec::new()),
        _ => None,
    }
}

fn handle_incoming(
    inc: &Incoming<'_>,
    pending: &mut HashMap<u64, Pending>,
    stats: &mut DispatchStats,
    out: &mut Vec<ExecReport>,
    watch: Option<u64>,
    watched: &mut bool,
) {
    let req = match inc.msg {
        Message::Response(r) => r.id,
        Message::Error(e) => e.id,
        _ => None,
    };
    let req = match req {
        Some(RequestId::Num(id)) => Some(id),
        _ => None,
    };
    if req.is_some() && req == watch {
        *watched = true;
    }
    let p = req.and_then(|id| pending.remove(&id));
    match (inc.msg, p) {
        (Message::Response(r), Some(Pending::Order { .. } | Pending::Cancel { .. })) => {
            match &r.result {
                ResultPayload::OrderWithTrades(o, ts) => {
                    out.push(ExecReport::Order(OrderReport::from_order(o)));
                    out.extend(ts.iter().map(|t| ExecReport::Fill(FillReport::from_trade(t))));
                }
                ResultPayload::Order(o) => out.push(ExecReport::Order(OrderReport::from_order(o))),
                ResultPayload::Orders(v) => {
                    out.extend(v.iter().map(|o| ExecReport::Order(OrderReport::from_order(o))));
                }
                _ => {}
            }
        }
        (Message::Error(e), Some(Pending::Order { label })) => out.push(ExecReport::Rejected {
            label: label.as_str().to_owned(),
            code: i32::try_from(e.code.code()).unwrap_or(i32::MIN),
            reason: e.message.to_owned(),
        }),
        (Message::Error(e), Some(Pending::Cancel { label })) => {
            out.push(ExecReport::CancelRefused {
                label: label.as_str().to_owned(),
                code: i32::try_from(e.code.code()).unwrap_or(i32::MIN),
            });
        }
        (Message::Notification(n), _) => match &n.data {
            NotificationData::Orders(v) => {
                out.extend(v.iter().map(|o| ExecReport::Order(OrderReport::from_order(o))));
            }
            NotificationData::UserTrades(v) => {
                out.extend(v.iter().map(|t| ExecReport::Fill(FillReport::from_trade(t))));
            }
            _ => {}
        },
        (Message::Response(_) | Message::Error(_), None) => {}
        _ => stats.ignored_messages += 1,
    }
}

/// Renders a venue decimal for logs (`0.1`, `-3`).
#[must_use]
pub fn decimal_text(d: Decimal8) -> String {
    dec_str(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: OrderState, filled: i64) -> OrderReport {
        OrderReport {
            label: "l".into(),
            order_id: "1".into(),
            instrument: "BTC-PERPETUAL".into(),
            buy: true,
            state,
            amount: Decimal8::from_raw(10),
            filled: Decimal8::from_raw(filled),
            average_price: None,
        }
    }

    #[test]
    fn classification_covers_every_venue_answer() {
        assert!(matches!(classify(1, None, None), Resolution::NeverSeen { intent_hash: 1 }));
        assert!(matches!(
            classify(1, Some(report(OrderState::Open, 0)), None),
            Resolution::Live { .. }
        ));
        assert!(matches!(
            classify(1, Some(report(OrderState::Filled, 10)), None),
            Resolution::Filled { .. }
        ));
        assert!(matches!(
            classify(1, Some(report(OrderState::Cancelled, 3)), None),
            Resolution::Cancelled { .. }
        ));
        assert!(matches!(
            classify(1, Some(report(OrderState::Rejected, 0)), None),
            Resolution::Rejected { .. }
        ));
        let fills = vec![FillReport {
            label: "l".into(),
            trade_id: "t9".into(),
            order_id: "1".into(),
            instrument: "BTC-PERPETUAL".into(),
            buy: true,
            price: Decimal8::from_raw(1),
            amount: Decimal8::from_raw(4),
            fee: None,
        }];
        match classify(1, None, Some(&fills)) {
            Resolution::Filled { filled, trade_id, .. } => {
                assert_eq!(filled.raw, 4);
                assert_eq!(trade_id, "t9");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn canonical_instrument_and_currency() {
        let mut c = vec![1u8, 1, 13];
        c.extend_from_slice(b"BTC-PERPETUAL");
        c.push(1);
        assert_eq!(instrument_of_canonical(&c), Some("BTC-PERPETUAL"));
        assert_eq!(instrument_of_canonical(&[1, 1, 50, b'x']), None);
        assert_eq!(currency_of_instrument("ETH-PERPETUAL"), Some("ETH"));
        assert_eq!(currency_of_instrument("BTC_USDC-PERPETUAL"), Some("BTC"));
        assert_eq!(decimal_text(Decimal8::from_raw(150_000_000)), "1.5");
        assert_eq!(decimal_text(Decimal8::from_raw(-200_000_000)), "-2");
    }
}
