//! The venue state behind one lock: instruments, books, the market-data generator, accounts,
//! orders, trades, positions, tokens, sessions' subscriptions, faults and the journal.
//!
//! One `Mutex<Engine>` is deliberate: the simulator is not the hot path, and a single lock
//! gives every request, tick and notification one total order, which is what makes change
//! ids continuous and the journal's order the true receive order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::accounts::{AccountsFile, LimitsSpec, Scopes};
use crate::book::{Book, Entry, Owner, Side};
use crate::clock::VenueClock;
use crate::faults::{Fault, FaultState};
use crate::instruments::{build_universe, Currency, Instrument, Kind, OptionType};
use crate::journal::Journal;
use crate::pricing::{black76, surface_iv, Priced};
use crate::ratelimit::Bucket;
use crate::rpc::RpcError;
use crate::util::{amt, px, round_to, wall_us};

/// Closed orders kept for `get_order_state` / history per engine (older ones are dropped).
pub const CLOSED_ORDERS_MAX: usize = 20_000;
/// Open orders per account (a runaway client gets 10001 beyond this, and the book stays bounded).
pub const OPEN_ORDERS_PER_ACCOUNT_MAX: usize = 2_000;
/// User trades kept per account.
pub const USER_TRADES_MAX: usize = 20_000;
/// Public trades kept per instrument.
pub const PUBLIC_TRADES_MAX: usize = 200;
/// Liquidity-provider levels per side.
pub const LP_LEVELS: usize = 5;
/// Outbound queue per session (messages); a session that falls this far behind is
/// disconnected (`connection_too_slow`), as the venue does.
pub const SESSION_QUEUE_MAX: usize = 65_536;
/// Live tokens kept (oldest evicted first).
pub const TOKENS_MAX: usize = 10_000;
/// Delayed (late-fill) orders pending at once.
pub const DELAYED_MAX: usize = 10_000;

/// A message for a session's writer.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A serialized JSON text frame.
    Text(Arc<str>),
    /// Close the connection (after flushing what is queued).
    Close(&'static str),
}

/// What the engine knows about a live WebSocket session.
#[derive(Debug)]
pub struct SessionSlot {
    /// Writer queue.
    pub tx: SyncSender<Outbound>,
    /// Subscribed channels.
    pub subs: HashSet<String>,
    /// Authenticated account.
    pub account: Option<usize>,
    /// Cancel-on-disconnect enabled on this connection.
    pub cod: bool,
}

/// Order state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Resting / working.
    Open,
    /// Fully filled.
    Filled,
    /// Cancelled.
    Cancelled,
    /// Rejected.
    Rejected,
    /// Trigger order waiting.
    Untriggered,
}

impl OrderState {
    fn as_str(self) -> &'static str {
        match self {
            OrderState::Open => "open",
            OrderState::Filled => "filled",
            OrderState::Cancelled => "cancelled",
            OrderState::Rejected => "rejected",
            OrderState::Untriggered => "untriggered",
        }
    }

    /// True for open and untriggered.
    pub fn is_live(self) -> bool {
        matches!(self, OrderState::Open | OrderState::Untriggered)
    }
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tif {
    /// good_til_cancelled.
    Gtc,
    /// good_til_day (treated as GTC).
    Gtd,
    /// immediate_or_cancel.
    Ioc,
    /// fill_or_kill.
    Fok,
}

impl Tif {
    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Tif> {
        match s {
            "good_til_cancelled" => Some(Tif::Gtc),
            "good_til_day" => Some(Tif::Gtd),
            "immediate_or_cancel" => Some(Tif::Ioc),
            "fill_or_kill" => Some(Tif::Fok),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Tif::Gtc => "good_til_cancelled",
            Tif::Gtd => "good_til_day",
            Tif::Ioc => "immediate_or_cancel",
            Tif::Fok => "fill_or_kill",
        }
    }
}

/// An account's order.
#[derive(Debug, Clone)]
pub struct Order {
    /// Id.
    pub id: u64,
    /// Owner account.
    pub account: usize,
    /// Instrument index.
    pub inst: usize,
    /// Side.
    pub side: Side,
    /// `limit`, `market`, `stop_limit`, ...
    pub order_type: String,
    /// Limit price (None for market-style).
    pub price: Option<i64>,
    /// Amount.
    pub amount: i64,
    /// Filled amount.
    pub filled: i64,
    /// Sum of price × amount over fills (for the average), in f64 price·amount.
    pub notional: f64,
    /// State.
    pub state: OrderState,
    /// Time in force.
    pub tif: Tif,
    /// post_only flag.
    pub post_only: bool,
    /// reject_post_only flag.
    pub reject_post_only: bool,
    /// reduce_only flag.
    pub reduce_only: bool,
    /// Label.
    pub label: String,
    /// Creation ms.
    pub created_ms: i64,
    /// Last update ms.
    pub updated_ms: i64,
    /// Creating session (for connection-scoped cancel-on-disconnect).
    pub session: u64,
    /// Cancel reason.
    pub cancel_reason: Option<&'static str>,
    /// Edited at least once.
    pub replaced: bool,
    /// Fees paid (coin).
    pub commission: f64,
    /// Trigger kind (stop/take orders).
    pub trigger: Option<String>,
    /// Trigger price.
    pub trigger_price: Option<f64>,
    /// True while resting in the book.
    pub in_book: bool,
}

/// A position on one instrument (amount units, signed; USD for futures, coin for options).
#[derive(Debug, Clone, Copy, Default)]
pub struct Position {
    /// Signed size in amount units.
    pub size: i64,
    /// Average entry price (price, not units).
    pub avg: f64,
    /// Realized PnL in coin.
    pub realized: f64,
}

/// A user trade kept for queries.
#[derive(Debug, Clone)]
pub struct TradeRec {
    /// Numeric trade id (ordering).
    pub seq: u64,
    /// Instrument.
    pub inst: usize,
    /// Order id.
    pub order_id: u64,
    /// Timestamp.
    pub ts: i64,
    /// Wire object.
    pub json: Value,
}

/// Account state.
#[derive(Debug)]
pub struct Account {
    /// Username.
    pub username: String,
    /// User id.
    pub user_id: u64,
    /// Cash balance per currency (BTC, ETH).
    pub balance: [f64; 2],
    /// Fees paid per currency.
    pub fees: [f64; 2],
    /// Positions by instrument.
    pub positions: BTreeMap<usize, Position>,
    /// Recent trades.
    pub trades: VecDeque<TradeRec>,
    /// Open orders count.
    pub open_orders: usize,
    /// Ids of live (open/untriggered) orders: margin, mass cancels and triggers scan these
    /// rather than every order kept.
    pub live: BTreeSet<u64>,
    /// Limits.
    pub limits: LimitsSpec,
    /// Matching-engine bucket.
    pub me_bucket: Bucket,
    /// Non-matching-engine bucket.
    pub nme_bucket: Bucket,
    /// Account-scope cancel-on-disconnect.
    pub cod_account: bool,
    /// Address book and withdrawals (`crate::wallet`).
    pub wallet: crate::wallet::Wallet,
}

/// Authorisation of a request.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Account index.
    pub account: usize,
    /// Client id of the key.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Scopes,
}

/// A live access or refresh token.
#[derive(Debug, Clone)]
pub struct Token {
    /// Authorisation it carries.
    pub auth: Auth,
    /// Expiry (wall ms).
    pub expires_ms: i64,
    /// Connection-scoped tokens die with their session.
    pub session: Option<u64>,
    /// The granted scope string.
    pub scope_str: String,
    /// Issue order (eviction).
    pub issued: u64,
}

/// Per-instrument market data.
#[derive(Debug, Clone, Default)]
pub struct InstMd {
    /// Mark price (price, coin for options / USD for futures).
    pub mark: f64,
    /// Mark iv (fraction) for options.
    pub iv: f64,
    /// Greeks (options).
    pub greeks: Option<Priced>,
    /// Underlying (forward) price.
    pub underlying: f64,
    /// Last trade price.
    pub last: Option<f64>,
    /// Session high/low/volume.
    pub high: Option<f64>,
    /// Low.
    pub low: Option<f64>,
    /// Volume (amount units as f64 in coin/USD).
    pub volume: f64,
    /// Open interest.
    pub open_interest: f64,
    /// Price at start (for price_change).
    pub open_price: f64,
    /// Current change id.
    pub change_id: u64,
    /// Published levels (what subscribers' books look like), price → amount.
    pub pub_bids: BTreeMap<i64, i64>,
    /// Published asks.
    pub pub_asks: BTreeMap<i64, i64>,
    /// Trade sequence.
    pub trade_seq: u64,
    /// Public trades.
    pub trades: VecDeque<Value>,
    /// LP order ids currently resting (side, price, id).
    pub lp_orders: Vec<(Side, i64, u64)>,
    /// A held-back book message (reorder fault).
    pub held: Option<Vec<(String, Arc<str>)>>,
    /// Tops of book as actually sent to subscribers, oldest first (bounded: see
    /// [`SENT_TOPS_KEPT`]). The journal oracle judges a crossing post-only order by what the
    /// client could have known, not by the venue's live book.
    pub sent_tops: VecDeque<SentTop>,
}

/// How many sent tops of book each instrument remembers.
pub const SENT_TOPS_KEPT: usize = 256;

/// One top of book as it went out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentTop {
    /// Wall time (ms) it was sent: network time, never the simulated clock.
    pub at_wall_ms: i64,
    /// Best bid sent (price units), if any.
    pub best_bid: Option<i64>,
    /// Best ask sent, if any.
    pub best_ask: Option<i64>,
}

impl SentTop {
    /// Whether a post-only order on `side` at `price` crosses this top.
    fn crossed_by(&self, side: Side, price: i64) -> bool {
        match side {
            Side::Buy => self.best_ask.is_some_and(|a| price >= a),
            Side::Sell => self.best_bid.is_some_and(|b| price <= b),
        }
    }
}

/// What the venue had published about a crossing post-only order's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossKnowledge {
    /// The last top of book sent did not cross the price: only an unpublished change did
    /// (a race the client could not see).
    Unpublished,
    /// The tops sent have crossed the price without interruption for this many wall ms
    /// (a lower bound when the remembered history ran out).
    PublishedFor(i64),
}

/// Engine configuration (subset of `SimConfig`).
#[derive(Debug, Clone)]
pub struct EngineCfg {
    /// Market seed.
    pub seed: u64,
    /// Start spot BTC.
    pub spot_btc: f64,
    /// Start spot ETH.
    pub spot_eth: f64,
    /// Market tick in ms.
    pub tick_ms: u64,
    /// `testnet` flag in envelopes.
    pub testnet: bool,
}

/// The venue.
#[derive(Debug)]
pub struct Engine {
    /// Config.
    pub cfg: EngineCfg,
    /// Instruments.
    pub instruments: Vec<Instrument>,
    /// Name → index.
    pub by_name: HashMap<String, usize>,
    /// Books.
    pub books: Vec<Book>,
    /// Market data per instrument.
    pub md: Vec<InstMd>,
    /// Index prices (BTC, ETH).
    pub index: [f64; 2],
    rng: ChaCha8Rng,
    token_rng: ChaCha8Rng,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// client_id → (account, key index).
    pub keys: HashMap<String, (usize, usize)>,
    /// Account specs (secrets, scopes).
    pub specs: AccountsFile,
    /// Access tokens.
    pub tokens: HashMap<String, Token>,
    /// Refresh tokens.
    pub refresh_tokens: HashMap<String, Token>,
    token_seq: u64,
    /// All live orders and recently closed ones.
    pub orders: HashMap<u64, Order>,
    closed: VecDeque<u64>,
    next_order_id: u64,
    next_trade_id: u64,
    next_lp_id: u64,
    /// Live sessions.
    pub sessions: HashMap<u64, SessionSlot>,
    /// Number of sessions subscribed per channel.
    pub subs_count: HashMap<String, usize>,
    /// Faults.
    pub faults: FaultState,
    /// The journal.
    pub journal: Journal,
    delayed: Vec<(i64, u64)>,
    /// Used nonces for client_signature (nonce, ts) with expiry.
    pub nonces: HashMap<String, i64>,
    dirty_books: BTreeSet<usize>,
    /// What was published about the last crossing post-only order `place`/`edit` saw (read
    /// and cleared by the journal writer).
    pub last_cross: Option<CrossKnowledge>,
    pub(crate) dirty_accounts: BTreeSet<usize>,
    pend_orders: Vec<(usize, usize, Value)>,
    pend_trades: Vec<(usize, usize, Value)>,
    pend_pub_trades: Vec<(usize, Value)>,
    /// Frozen clock for deterministic tests (None = wall clock).
    pub last_tick_ms: i64,
    /// Next session id.
    pub next_session: u64,
    /// Unauthenticated credit buckets per source IP: (general, get_instruments).
    ip_buckets: HashMap<String, (Bucket, Bucket)>,
    /// Where venue time comes from (wall or stepped simulated time).
    clock: VenueClock,
    /// Last withdrawal id handed out (`crate::wallet`).
    pub next_withdrawal_id: u64,
}

pub(crate) fn ccy_idx(c: Currency) -> usize {
    match c {
        Currency::Btc => 0,
        Currency::Eth => 1,
    }
}

/// Result of placing an order.
#[derive(Debug)]
pub struct Placed {
    /// Order wire object.
    pub order: Value,
    /// Immediate trades (wire objects).
    pub trades: Vec<Value>,
    /// The order id.
    pub order_id: u64,
    /// State.
    pub state: OrderState,
    /// True when a post-only order would have crossed (repriced or rejected).
    pub post_only_crossed: bool,
}

/// Parameters of a new order, already parsed.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Instrument name.
    pub instrument: String,
    /// Side.
    pub side: Side,
    /// Amount (wire).
    pub amount: f64,
    /// Order type.
    pub order_type: String,
    /// Price (wire).
    pub price: Option<f64>,
    /// Time in force.
    pub tif: Tif,
    /// post_only.
    pub post_only: bool,
    /// reject_post_only.
    pub reject_post_only: bool,
    /// reduce_only.
    pub reduce_only: bool,
    /// Label.
    pub label: String,
    /// Trigger.
    pub trigger: Option<String>,
    /// Trigger price.
    pub trigger_price: Option<f64>,
}

impl Engine {
    /// Builds the venue on the wall clock.
    pub fn new(cfg: EngineCfg, specs: AccountsFile, journal: Journal) -> Engine {
        Engine::new_with_clock(cfg, specs, journal, VenueClock::Wall)
    }

    /// Builds the venue on `clock` (the universe is listed relative to its "now").
    pub fn new_with_clock(
        cfg: EngineCfg,
        specs: AccountsFile,
        journal: Journal,
        clock: VenueClock,
    ) -> Engine {
        let now = clock.now_us() / 1000;
        let instruments = build_universe(now, cfg.spot_btc, cfg.spot_eth);
        let by_name = instruments.iter().enumerate().map(|(i, x)| (x.name.clone(), i)).collect();
        let n = instruments.len();
        let mut keys = HashMap::new();
        let mut accounts = Vec::new();
        for (ai, a) in specs.accounts.iter().enumerate() {
            for (ki, k) in a.keys.iter().enumerate() {
                keys.insert(k.client_id.clone(), (ai, ki));
            }
            let mut balance = [0.0; 2];
            for (c, b) in &a.balances {
                if let Some(cc) = Currency::parse(c) {
                    balance[ccy_idx(cc)] = *b;
                }
            }
            accounts.push(Account {
                username: a.username.clone(),
                user_id: a.user_id,
                balance,
                fees: [0.0; 2],
                positions: BTreeMap::new(),
                trades: VecDeque::new(),
                open_orders: 0,
                live: BTreeSet::new(),
                limits: a.limits,
                // Credits refill on the wall clock (rpc.rs), whatever venue time is.
                me_bucket: Bucket::new(a.limits.matching_engine, wall_us() / 1000),
                nme_bucket: Bucket::new(a.limits.non_matching_engine, wall_us() / 1000),
                cod_account: false,
                wallet: crate::wallet::wallet_from_spec(&a.address_book),
            });
        }
        let mut e = Engine {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            // Tokens need not be reproducible, but must not be guessable from the seed.
            token_rng: ChaCha8Rng::from_entropy(),
            index: [cfg.spot_btc, cfg.spot_eth],
            cfg,
            books: vec![Book::default(); n],
            md: vec![InstMd::default(); n],
            instruments,
            by_name,
            accounts,
            keys,
            specs,
            tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            token_seq: 0,
            orders: HashMap::new(),
            closed: VecDeque::new(),
            next_order_id: 10_000_000,
            next_trade_id: 50_000_000,
            next_lp_id: 1 << 50,
            sessions: HashMap::new(),
            subs_count: HashMap::new(),
            faults: FaultState::new(),
            journal,
            delayed: Vec::new(),
            nonces: HashMap::new(),
            dirty_books: BTreeSet::new(),
            last_cross: None,
            dirty_accounts: BTreeSet::new(),
            pend_orders: Vec::new(),
            pend_trades: Vec::new(),
            pend_pub_trades: Vec::new(),
            last_tick_ms: now,
            next_session: 1,
            ip_buckets: HashMap::new(),
            clock,
            next_withdrawal_id: 0,
        };
        for i in 0..n {
            let seed_cid: u64 = e.rng.gen_range(1_000_000..9_000_000);
            e.md[i].change_id = seed_cid;
        }
        e.reprice(now);
        for i in 0..n {
            e.md[i].open_price = e.md[i].mark;
            e.md[i].open_interest = f64::from(e.rng.gen_range(10u32..1000));
            e.refresh_lp(i, now);
        }
        // Start-up quotes are the initial state, not changes: publish silently.
        e.pend_orders.clear();
        for i in 0..n {
            e.md[i].pub_bids = e.books[i].levels(Side::Buy, usize::MAX).into_iter().collect();
            e.md[i].pub_asks = e.books[i].levels(Side::Sell, usize::MAX).into_iter().collect();
        }
        e.dirty_books.clear();
        e
    }

    /// Venue time in ms (the venue clock plus injected skew).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_us().div_euclid(1000) + self.faults.clock_skew_ms
    }

    /// Venue time in µs.
    pub fn now_us(&self) -> i64 {
        self.clock.now_us() + self.faults.clock_skew_ms * 1000
    }

    /// The time tokens and signatures are judged by: the wall clock plus injected skew, even
    /// when venue time is simulated (the network is never accelerated). Equal to
    /// [`Engine::now_ms`] on the wall clock.
    pub fn transport_ms(&self) -> i64 {
        wall_us() / 1000 + self.faults.clock_skew_ms
    }

    /// Instrument index by name.
    pub fn inst(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    // ----------------------------------------------------------------- market data

    /// Forward of an instrument's expiry (zero rates + a small carry for dated futures).
    fn forward(&self, i: usize, now: i64) -> f64 {
        let ins = &self.instruments[i];
        let s = self.index[ccy_idx(ins.currency)];
        if ins.perpetual {
            return s;
        }
        s * (0.05 * ins.years_to_expiry(now)).exp()
    }

    /// Recomputes marks, ivs and greeks from the index.
    fn reprice(&mut self, now: i64) {
        for i in 0..self.instruments.len() {
            let f = self.forward(i, now);
            let ins = &self.instruments[i];
            let md = &mut self.md[i];
            md.underlying = f;
            match ins.kind {
                Kind::Future => {
                    md.mark = f;
                }
                Kind::Option => {
                    let t = ins.years_to_expiry(now);
                    let atm = if ins.currency == Currency::Btc { 0.5 } else { 0.65 };
                    let iv = surface_iv(atm, f, ins.strike, t);
                    let call = ins.option_type == Some(OptionType::Call);
                    let p = black76(call, f, ins.strike, t, iv);
                    md.iv = iv;
                    md.mark = (p.usd / f).max(0.0);
                    md.greeks = Some(p);
                }
            }
        }
    }

    /// LP quotes around the mark: `LP_LEVELS` per side, a spread of a few percent on
    /// options and a few bps on futures, seeded sizes. Old LP quotes are pulled first.
    fn refresh_lp(&mut self, i: usize, now: i64) {
        let old = std::mem::take(&mut self.md[i].lp_orders);
        for (side, price, id) in old {
            self.books[i].remove(side, price, id);
        }
        let ins = self.instruments[i].clone();
        let mark = self.md[i].mark;
        let mark_u = (mark * crate::util::PX_SCALE).round();
        #[allow(clippy::cast_possible_truncation)]
        let mark_u = mark_u as i64;
        let half = match ins.kind {
            Kind::Option => ((mark_u as f64) * 0.03) as i64,
            Kind::Future => ((mark_u as f64) * 0.0002) as i64,
        };
        let mut bid = ins.floor_to_grid((mark_u - half).max(ins.tick));
        let mut ask = ins.ceil_to_grid(mark_u + half.max(1));
        if ask <= bid {
            ask = ins.tick_above(bid);
        }
        // Keep LP quotes from crossing resting user orders: quote behind them instead of
        // trading (the LP is passive; user orders fill when the walk moves through them
        // via `sweep_user_orders`).
        let step = ins.amount_step();
        for lvl in 0..LP_LEVELS {
            let lots_b: i64 = self.rng.gen_range(1..=30);
            let lots_a: i64 = self.rng.gen_range(1..=30);
            let mult = match ins.kind {
                Kind::Option => 1,
                Kind::Future => 100,
            };
            if lvl > 0 {
                let gaps: u32 = self.rng.gen_range(1..=2);
                for _ in 0..gaps {
                    match ins.tick_below(bid) {
                        Some(b) => bid = b,
                        None => bid = 0,
                    }
                    ask = ins.tick_above(ask);
                }
            }
            if bid >= ins.tick && !self.books[i].crosses(Side::Sell, Some(bid)) {
                let id = self.next_lp_id;
                self.next_lp_id += 1;
                self.books[i].insert(
                    Side::Buy,
                    bid,
                    Entry { id, owner: Owner::Lp, remaining: lots_b * step * mult },
                );
                self.md[i].lp_orders.push((Side::Buy, bid, id));
            }
            if !self.books[i].crosses(Side::Buy, Some(ask)) {
                let id = self.next_lp_id;
                self.next_lp_id += 1;
                self.books[i].insert(
                    Side::Sell,
                    ask,
                    Entry { id, owner: Owner::Lp, remaining: lots_a * step * mult },
                );
                self.md[i].lp_orders.push((Side::Sell, ask, id));
            }
        }
        self.dirty_books.insert(i);
        let _ = now;
    }

    /// User orders resting through the LP's fair price are filled by the LP (the market
    /// "moved through" them): this is how a resting order gets filled over time.
    fn sweep_user_orders(&mut self, i: usize, now: i64) {
        let ins = &self.instruments[i];
        #[allow(clippy::cast_possible_truncation)]
        let mark_u = (self.md[i].mark * crate::util::PX_SCALE).round() as i64;
        let through = match ins.kind {
            Kind::Option => mark_u / 50 + ins.tick,
            Kind::Future => mark_u / 5000 + ins.tick,
        };
        let mut hits = Vec::new();
        for (side, price, e) in self.books[i].entries() {
            let Owner::Account(_) = e.owner else { continue };
            let crossed = match side {
                Side::Buy => price >= mark_u + through,
                Side::Sell => price <= mark_u - through,
            };
            if crossed {
                hits.push((side, price, e));
            }
        }
        for (side, price, e) in hits {
            if self.books[i].remove(side, price, e.id).is_some() {
                self.fill_account_order(e.id, price, e.remaining, true, now);
            }
        }
    }

    /// One market tick: walk the index, reprice, refresh some LP quotes, release delayed
    /// orders, publish ticker/index data.
    pub fn tick(&mut self, now: i64) {
        #[allow(clippy::cast_precision_loss)]
        let dt_ms_max = match &self.clock {
            // A stalled wall-clock tick must not make the index jump; a simulated step is exact.
            VenueClock::Wall => 60_000,
            VenueClock::Stepped(t) => t.step_ms().max(60_000),
        };
        let dt_years =
            ((now - self.last_tick_ms).clamp(0, dt_ms_max) as f64) / (365.0 * 86_400_000.0);
        self.last_tick_ms = now;
        self.release_delayed(now);
        if self.faults.frozen {
            self.flush(now);
            return;
        }
        for (c, vol) in [(0usize, 0.6f64), (1, 0.75)] {
            // Box–Muller from the seeded stream: reproducible per seed and tick count.
            let u1: f64 = self.rng.gen_range(1e-12..1.0);
            let u2: f64 = self.rng.gen_range(0.0..1.0);
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            self.index[c] *= (vol * dt_years.sqrt() * z).exp();
        }
        self.reprice(now);
        // A stepped tick spans simulated minutes: every book requotes (the draw still happens,
        // so the random stream has the same shape on both clocks).
        let requote_all = matches!(self.clock, VenueClock::Stepped(_));
        for i in 0..self.instruments.len() {
            // A third of the books requote per tick: books change, but not all at once.
            if self.rng.gen_range(0..3) == 0 || requote_all {
                self.sweep_user_orders(i, now);
                self.refresh_lp(i, now);
            }
        }
        self.trigger_orders(now);
        self.flush(now);
        self.publish_market(now);
    }

    /// A gap in one index: reprice, sweep the user orders the move went through, requote
    /// every book of that currency, publish. A bad index name or percent changes nothing.
    fn move_index(&mut self, index: &str, pct: f64, now: i64) {
        let Some(c) = Currency::from_index(index) else { return };
        if !(pct.is_finite() && (-90.0..=1000.0).contains(&pct)) {
            return;
        }
        self.index[ccy_idx(c)] *= 1.0 + pct / 100.0;
        self.reprice(now);
        for i in 0..self.instruments.len() {
            if self.instruments[i].currency == c {
                self.sweep_user_orders(i, now);
                self.refresh_lp(i, now);
            }
        }
        self.flush(now);
        self.publish_market(now);
    }

    /// Stop/take orders trigger on the mark: a stop buy at/above its trigger price, a stop
    /// sell at/below; take orders the other way round. Triggered orders become
    /// market/limit orders and match.
    fn trigger_orders(&mut self, now: i64) {
        let ids: Vec<u64> = self
            .accounts
            .iter()
            .flat_map(|a| a.live.iter())
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.state == OrderState::Untriggered)
            .map(|o| o.id)
            .collect();
        for id in ids {
            let Some(o) = self.orders.get(&id) else { continue };
            let mark = self.md[o.inst].mark;
            let Some(tp) = o.trigger_price else { continue };
            let stop = o.order_type.starts_with("stop") || o.order_type == "trailing_stop";
            let fire = match (o.side, stop) {
                (Side::Buy, true) | (Side::Sell, false) => mark >= tp,
                (Side::Sell, true) | (Side::Buy, false) => mark <= tp,
            };
            if !fire {
                continue;
            }
            if let Some(o) = self.orders.get_mut(&id) {
                o.state = OrderState::Open;
                o.updated_ms = now;
            }
            self.match_order(id, now);
        }
    }

    fn release_delayed(&mut self, now: i64) {
        if self.delayed.is_empty() {
            return;
        }
        let (due, keep): (Vec<_>, Vec<_>) = self.delayed.drain(..).partition(|(t, _)| *t <= now);
        self.delayed = keep;
        for (_, id) in due {
            if self.orders.get(&id).is_some_and(|o| o.state == OrderState::Open && !o.in_book) {
                self.match_order(id, now);
            }
        }
        self.flush(now);
    }

    /// Ticker objects (also the `public/ticker` result).
    pub fn ticker_json(&self, i: usize, now: i64) -> Value {
        let ins = &self.instruments[i];
        let md = &self.md[i];
        let b = &self.books[i];
        let (bb, bba, ba, baa) = (
            b.best_bid().map(px),
            amt(b.best_amount(Side::Buy)),
            b.best_ask().map(px),
            amt(b.best_amount(Side::Sell)),
        );
        let (minp, maxp) = self.price_band(i);
        let idx = self.index[ccy_idx(ins.currency)];
        let price_change = if md.open_price > 0.0 {
            round_to((md.mark / md.open_price - 1.0) * 100.0, 4)
        } else {
            0.0
        };
        let dec = if ins.kind == Kind::Option { 8 } else { 2 };
        let mut v = json!({
            "timestamp": now,
            "instrument_name": ins.name,
            "state": if ins.expiry_ms > now { "open" } else { "closed" },
            "stats": {"high": md.high, "low": md.low, "price_change": price_change, "volume": round_to(md.volume, 6), "volume_usd": round_to(md.volume * if ins.kind == Kind::Option { idx } else { 1.0 }, 2)},
            "settlement_price": round_to(md.open_price, dec),
            "open_interest": md.open_interest,
            "min_price": px(minp),
            "max_price": px(maxp),
            "mark_price": round_to(md.mark, dec),
            "last_price": md.last,
            "index_price": round_to(idx, 2),
            "estimated_delivery_price": round_to(idx, 2),
            "best_bid_price": bb.unwrap_or(0.0),
            "best_bid_amount": bba,
            "best_ask_price": ba.unwrap_or(0.0),
            "best_ask_amount": baa,
        });
        if let Some(m) = v.as_object_mut() {
            match ins.kind {
                Kind::Option => {
                    let g = md.greeks.unwrap_or(Priced {
                        usd: 0.0,
                        delta: 0.0,
                        gamma: 0.0,
                        vega: 0.0,
                        theta: 0.0,
                        rho: 0.0,
                    });
                    m.insert("mark_iv".into(), json!(round_to(md.iv * 100.0, 2)));
                    m.insert("bid_iv".into(), json!(round_to(md.iv * 100.0 - 1.0, 2)));
                    m.insert("ask_iv".into(), json!(round_to(md.iv * 100.0 + 1.0, 2)));
                    m.insert("interest_rate".into(), json!(0.0));
                    m.insert("underlying_price".into(), json!(round_to(md.underlying, 2)));
                    let und = self.underlying_index_name(i);
                    m.insert("underlying_index".into(), json!(und));
                    m.insert(
                        "greeks".into(),
                        json!({"delta": round_to(g.delta, 5), "gamma": round_to(g.gamma, 8), "vega": round_to(g.vega, 5), "theta": round_to(g.theta, 5), "rho": round_to(g.rho, 5)}),
                    );
                }
                Kind::Future => {
                    if ins.perpetual {
                        m.insert("current_funding".into(), json!(0.0));
                        m.insert("funding_8h".into(), json!(0.0));
                        m.insert("interest_value".into(), json!(0.0));
                    }
                }
            }
        }
        v
    }

    fn underlying_index_name(&self, i: usize) -> String {
        let ins = &self.instruments[i];
        let code = ins.name.split('-').nth(1).unwrap_or("");
        let fut = format!("{}-{}", ins.currency.code(), code);
        if self.by_name.contains_key(&fut) {
            fut
        } else {
            "index_price".to_string()
        }
    }

    /// `public/get_order_book` result.
    pub fn order_book_json(&self, i: usize, depth: usize, now: i64) -> Value {
        let mut v = self.ticker_json(i, now);
        let b = &self.books[i];
        let lv = |s: Side| -> Vec<Value> {
            b.levels(s, depth).into_iter().map(|(p, a)| json!([px(p), amt(a)])).collect()
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("bids".into(), json!(lv(Side::Buy)));
            m.insert("asks".into(), json!(lv(Side::Sell)));
            m.insert("change_id".into(), json!(self.md[i].change_id));
            m.insert("delivery_price".into(), Value::Null);
        }
        v
    }

    /// Price band (min, max) in units: options 1 tick .. mark + max(0.05, mark) (coin);
    /// futures mark ± 2.5%.
    pub fn price_band(&self, i: usize) -> (i64, i64) {
        let ins = &self.instruments[i];
        let m = self.md[i].mark;
        #[allow(clippy::cast_possible_truncation)]
        let to_u = |x: f64| (x * crate::util::PX_SCALE).round() as i64;
        match ins.kind {
            Kind::Option => {
                let max = ins.floor_to_grid(to_u(m + (0.05f64).max(m)));
                (ins.tick, max)
            }
            Kind::Future => (ins.ceil_to_grid(to_u(m * 0.975)), ins.floor_to_grid(to_u(m * 1.025))),
        }
    }

    // ---------------------------------------------------------------- subscriptions

    /// True when some session subscribed `ch`.
    fn wanted(&self, ch: &str) -> bool {
        self.subs_count.get(ch).is_some_and(|n| *n > 0)
    }

    /// Sends a notification to every subscribed session (of `account` when Some).
    fn publish(&mut self, account: Option<usize>, ch: &str, data: &Value) {
        if !self.wanted(ch) {
            return;
        }
        if self.faults.muted && !ch.starts_with("user.") && ch != "platform_state" {
            return;
        }
        let private_fills = ["user.orders.", "user.trades.", "user.changes."];
        if self.faults.drop_user > 0 && private_fills.iter().any(|p| ch.starts_with(p)) {
            self.faults.drop_user -= 1;
            return;
        }
        let text: Arc<str> = Arc::from(notification(ch, data));
        self.send_to_subscribers(account, ch, &text);
        if self.faults.duplicate_fills > 0 && ch.starts_with("user.trades.") {
            self.faults.duplicate_fills -= 1;
            self.send_to_subscribers(account, ch, &text);
        }
    }

    fn send_to_subscribers(&mut self, account: Option<usize>, ch: &str, text: &Arc<str>) {
        let mut slow = Vec::new();
        for (sid, s) in &self.sessions {
            if !s.subs.contains(ch) {
                continue;
            }
            if account.is_some() && s.account != account {
                continue;
            }
            match s.tx.try_send(Outbound::Text(text.clone())) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => slow.push(*sid),
            }
        }
        for sid in slow {
            // The writer's queue is full: the venue drops such a client.
            if let Some(s) = self.sessions.get(&sid) {
                let _ = s.tx.try_send(Outbound::Close("connection_too_slow"));
            }
        }
    }

    /// Sends a message to one session.
    pub fn send_session(&self, sid: u64, text: String) {
        if let Some(s) = self.sessions.get(&sid) {
            let _ = s.tx.try_send(Outbound::Text(Arc::from(text)));
        }
    }

    /// Subscribe bookkeeping; returns the accepted channel and sends its initial message
    /// (book snapshot, current ticker) when it has one.
    pub fn subscribe(
        &mut self,
        sid: u64,
        ch: &str,
        authed_account: Option<usize>,
    ) -> Result<bool, RpcError> {
        let now = self.now_ms();
        let Some(kind) = self.classify_channel(ch) else { return Ok(false) };
        if kind.raw && authed_account.is_none() {
            return Err(RpcError::new(13778, "raw_subscriptions_not_available_for_unauthorized"));
        }
        if kind.private && authed_account.is_none() {
            return Ok(false);
        }
        let Some(slot) = self.sessions.get_mut(&sid) else { return Ok(false) };
        if slot.subs.len() >= 2_000 && !slot.subs.contains(ch) {
            return Ok(false);
        }
        if slot.subs.insert(ch.to_string()) {
            *self.subs_count.entry(ch.to_string()).or_default() += 1;
        }
        match kind.initial {
            Initial::BookSnapshot(i) => {
                let md = &self.md[i];
                let lv = |m: &BTreeMap<i64, i64>, rev: bool| -> Vec<Value> {
                    let it: Box<dyn Iterator<Item = (&i64, &i64)>> =
                        if rev { Box::new(m.iter().rev()) } else { Box::new(m.iter()) };
                    it.map(|(p, a)| json!(["new", px(*p), amt(*a)])).collect()
                };
                let data = json!({"type": "snapshot", "timestamp": now, "instrument_name": self.instruments[i].name, "change_id": md.change_id, "bids": lv(&md.pub_bids, true), "asks": lv(&md.pub_asks, false)});
                self.send_session(sid, notification(ch, &data));
                self.record_sent_top(i);
            }
            Initial::Grouped(i, depth) => {
                let data = self.grouped_json(i, depth, now);
                self.send_session(sid, notification(ch, &data));
                self.record_sent_top(i);
            }
            Initial::Ticker(i) => {
                let data = self.ticker_json(i, now);
                self.send_session(sid, notification(ch, &data));
            }
            Initial::None => {}
        }
        Ok(true)
    }

    /// Removes a subscription; true when it existed.
    pub fn unsubscribe(&mut self, sid: u64, ch: &str) -> bool {
        let Some(slot) = self.sessions.get_mut(&sid) else { return false };
        if slot.subs.remove(ch) {
            if let Some(n) = self.subs_count.get_mut(ch) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.subs_count.remove(ch);
                }
            }
            true
        } else {
            false
        }
    }

    fn grouped_json(&self, i: usize, depth: usize, now: i64) -> Value {
        let md = &self.md[i];
        let bids: Vec<Value> =
            md.pub_bids.iter().rev().take(depth).map(|(p, a)| json!([px(*p), amt(*a)])).collect();
        let asks: Vec<Value> =
            md.pub_asks.iter().take(depth).map(|(p, a)| json!([px(*p), amt(*a)])).collect();
        json!({"timestamp": now, "instrument_name": self.instruments[i].name, "change_id": md.change_id, "bids": bids, "asks": asks})
    }

    /// Parses a channel name; None when the sim does not serve it.
    fn classify_channel(&self, ch: &str) -> Option<ChannelKind> {
        let parts: Vec<&str> = ch.split('.').collect();
        let interval_ok = |s: &str| matches!(s, "raw" | "100ms" | "agg2");
        let kind_ok = |s: &str| {
            matches!(
                s,
                "future" | "option" | "any" | "spot" | "future_combo" | "option_combo" | "combo"
            )
        };
        let ccy_ok = |s: &str| {
            matches!(
                s.to_ascii_uppercase().as_str(),
                "BTC" | "ETH" | "ANY" | "USDC" | "USDT" | "EURR"
            )
        };
        let plain = |raw: bool, private: bool| ChannelKind { raw, private, initial: Initial::None };
        match parts.as_slice() {
            ["book", inst, iv] if interval_ok(iv) => {
                let i = self.inst(inst)?;
                Some(ChannelKind {
                    raw: *iv == "raw",
                    private: false,
                    initial: Initial::BookSnapshot(i),
                })
            }
            ["book", inst, group, depth, iv] if matches!(*iv, "100ms" | "agg2") => {
                let i = self.inst(inst)?;
                if *group != "none" {
                    return None;
                }
                let d: usize = depth.parse().ok().filter(|d| matches!(d, 1 | 10 | 20))?;
                Some(ChannelKind { raw: false, private: false, initial: Initial::Grouped(i, d) })
            }
            ["ticker", inst, iv] if interval_ok(iv) => {
                let i = self.inst(inst)?;
                Some(ChannelKind { raw: *iv == "raw", private: false, initial: Initial::Ticker(i) })
            }
            ["quote", inst] => self.inst(inst).map(|_| plain(false, false)),
            ["trades", inst, iv] if interval_ok(iv) => {
                self.inst(inst).map(|_| plain(*iv == "raw", false))
            }
            ["trades", k, c, iv] if interval_ok(iv) && kind_ok(k) && ccy_ok(c) => {
                Some(plain(*iv == "raw", false))
            }
            ["deribit_price_index", idx] if Currency::from_index(idx).is_some() => {
                Some(plain(false, false))
            }
            ["markprice", "options", idx] if Currency::from_index(idx).is_some() => {
                Some(plain(false, false))
            }
            ["platform_state"] => Some(plain(false, false)),
            ["user", "orders" | "trades" | "changes", inst, iv] if interval_ok(iv) => {
                self.inst(inst).map(|_| plain(false, true))
            }
            ["user", "orders" | "trades" | "changes", k, c, iv]
                if interval_ok(iv) && kind_ok(k) && ccy_ok(c) =>
            {
                Some(plain(false, true))
            }
            ["user", "portfolio", c] if ccy_ok(c) => Some(plain(false, true)),
            _ => None,
        }
    }

    /// Market-data notifications of a tick.
    fn publish_market(&mut self, now: i64) {
        for c in Currency::ALL {
            let ch = format!("deribit_price_index.{}", c.index_name());
            if self.wanted(&ch) {
                let d = json!({"index_name": c.index_name(), "price": round_to(self.index[ccy_idx(c)], 2), "timestamp": now});
                self.publish(None, &ch, &d);
            }
            let ch = format!("markprice.options.{}", c.index_name());
            if self.wanted(&ch) {
                let arr: Vec<Value> = (0..self.instruments.len())
                    .filter(|&i| self.instruments[i].currency == c && self.instruments[i].kind == Kind::Option)
                    .map(|i| json!({"instrument_name": self.instruments[i].name, "mark_price": round_to(self.md[i].mark, 8), "iv": round_to(self.md[i].iv, 4), "timestamp": now}))
                    .collect();
                self.publish(None, &ch, &json!(arr));
            }
        }
        for i in 0..self.instruments.len() {
            for iv in ["raw", "100ms", "agg2"] {
                let ch = format!("ticker.{}.{iv}", self.instruments[i].name);
                if self.wanted(&ch) {
                    let d = self.ticker_json(i, now);
                    self.publish(None, &ch, &d);
                }
            }
        }
    }

    /// Publishes `platform_state`.
    pub fn publish_platform_state(&mut self, data: &Value) {
        self.publish(None, "platform_state", data);
    }

    /// Emits everything pending: book changes (with change-id chaining), public trades,
    /// user orders/trades/changes, portfolios.
    pub fn flush(&mut self, now: i64) {
        let dirty: Vec<usize> = std::mem::take(&mut self.dirty_books).into_iter().collect();
        for i in dirty {
            self.publish_book(i, now);
        }
        let pub_trades = std::mem::take(&mut self.pend_pub_trades);
        let mut by_inst: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        for (i, t) in pub_trades {
            by_inst.entry(i).or_default().push(t);
        }
        for (i, ts) in by_inst {
            let ins = &self.instruments[i];
            let (name, k, c) = (ins.name.clone(), ins.kind.as_str(), ins.currency.code());
            let arr = json!(ts);
            for iv in ["raw", "100ms", "agg2"] {
                self.publish(None, &format!("trades.{name}.{iv}"), &arr);
                for kk in [k, "any"] {
                    for cc in [c, "any"] {
                        self.publish(None, &format!("trades.{kk}.{cc}.{iv}"), &arr);
                    }
                }
            }
        }
        let orders = std::mem::take(&mut self.pend_orders);
        let trades = std::mem::take(&mut self.pend_trades);
        // user.changes bundles per (account, instrument).
        let mut changes: BTreeMap<(usize, usize), (Vec<Value>, Vec<Value>)> = BTreeMap::new();
        for (a, i, o) in &orders {
            changes.entry((*a, *i)).or_default().0.push(o.clone());
            for (ch, data) in user_channels("orders", &self.instruments[*i], o, true) {
                self.publish(Some(*a), &ch, &data);
            }
        }
        for (a, i, t) in &trades {
            changes.entry((*a, *i)).or_default().1.push(t.clone());
            for (ch, data) in user_channels("trades", &self.instruments[*i], &json!([t]), false) {
                self.publish(Some(*a), &ch, &data);
            }
        }
        for ((a, i), (os, ts)) in changes {
            let pos = self.position_json(a, i, now);
            let data = json!({"instrument_name": self.instruments[i].name, "orders": os, "trades": ts, "positions": [pos]});
            for (ch, d) in user_channels("changes", &self.instruments[i], &data, false) {
                self.publish(Some(a), &ch, &d);
            }
        }
        let accts: Vec<usize> = std::mem::take(&mut self.dirty_accounts).into_iter().collect();
        for a in accts {
            for c in Currency::ALL {
                let data = self.account_summary_json(a, c, false, now);
                for ch in [
                    format!("user.portfolio.{}", c.code()),
                    format!("user.portfolio.{}", c.code().to_lowercase()),
                ] {
                    self.publish(Some(a), &ch, &data);
                }
            }
        }
    }

    fn publish_book(&mut self, i: usize, now: i64) {
        let new_b: BTreeMap<i64, i64> =
            self.books[i].levels(Side::Buy, usize::MAX).into_iter().collect();
        let new_a: BTreeMap<i64, i64> =
            self.books[i].levels(Side::Sell, usize::MAX).into_iter().collect();
        let diff = |old: &BTreeMap<i64, i64>, new: &BTreeMap<i64, i64>, rev: bool| -> Vec<Value> {
            let mut out = Vec::new();
            let keys: BTreeSet<i64> = old.keys().chain(new.keys()).copied().collect();
            let it: Box<dyn Iterator<Item = &i64>> =
                if rev { Box::new(keys.iter().rev()) } else { Box::new(keys.iter()) };
            for p in it {
                match (old.get(p), new.get(p)) {
                    (None, Some(a)) => out.push(json!(["new", px(*p), amt(*a)])),
                    (Some(_), None) => out.push(json!(["delete", px(*p), 0.0])),
                    (Some(o), Some(a)) if o != a => out.push(json!(["change", px(*p), amt(*a)])),
                    _ => {}
                }
            }
            out
        };
        let bids = diff(&self.md[i].pub_bids, &new_b, true);
        let asks = diff(&self.md[i].pub_asks, &new_a, false);
        if bids.is_empty() && asks.is_empty() {
            return;
        }
        let prev = self.md[i].change_id;
        // Real change ids increase but are not consecutive.
        let step: u64 = self.rng.gen_range(1..=3);
        let cid = prev + step;
        self.md[i].change_id = cid;
        self.md[i].pub_bids = new_b;
        self.md[i].pub_asks = new_a;
        let name = self.instruments[i].name.clone();
        let data = json!({"type": "change", "timestamp": now, "instrument_name": name, "change_id": cid, "prev_change_id": prev, "bids": bids, "asks": asks});
        let mut msgs: Vec<(String, Arc<str>)> = Vec::new();
        for iv in ["raw", "100ms", "agg2"] {
            let ch = format!("book.{name}.{iv}");
            if self.wanted(&ch) {
                msgs.push((ch.clone(), Arc::from(notification(&ch, &data))));
            }
        }
        for d in [1usize, 10, 20] {
            for iv in ["100ms", "agg2"] {
                let ch = format!("book.{name}.none.{d}.{iv}");
                if self.wanted(&ch) {
                    let g = self.grouped_json(i, d, now);
                    msgs.push((ch.clone(), Arc::from(notification(&ch, &g))));
                }
            }
        }
        let qch = format!("quote.{name}");
        if self.wanted(&qch) {
            let b = &self.books[i];
            let q = json!({"timestamp": now, "instrument_name": name, "best_bid_price": b.best_bid().map(px), "best_bid_amount": amt(b.best_amount(Side::Buy)), "best_ask_price": b.best_ask().map(px), "best_ask_amount": amt(b.best_amount(Side::Sell))});
            msgs.push((qch.clone(), Arc::from(notification(&qch, &q))));
        }
        if msgs.is_empty() {
            return;
        }
        if self.faults.muted {
            return;
        }
        let matches = |f: &Option<String>| f.as_deref().is_none_or(|x| x == name);
        if self.faults.drop_book > 0 && matches(&self.faults.drop_book_instrument) {
            self.faults.drop_book -= 1;
            return;
        }
        if self.faults.reorder_book > 0 && matches(&self.faults.reorder_book_instrument) {
            match self.md[i].held.take() {
                None => {
                    self.md[i].held = Some(msgs);
                    return;
                }
                Some(held) => {
                    self.faults.reorder_book -= 1;
                    for (ch, t) in msgs.into_iter().chain(held) {
                        self.send_to_subscribers(None, &ch, &t);
                    }
                    self.record_sent_top(i);
                    return;
                }
            }
        }
        if let Some(held) = self.md[i].held.take() {
            for (ch, t) in held {
                self.send_to_subscribers(None, &ch, &t);
            }
        }
        for (ch, t) in msgs {
            self.send_to_subscribers(None, &ch, &t);
        }
        self.record_sent_top(i);
    }

    /// Remembers the published top of book of `i` as sent now. An unchanged top keeps its
    /// earlier time: the client has known it since then.
    fn record_sent_top(&mut self, i: usize) {
        let md = &mut self.md[i];
        let top = SentTop {
            at_wall_ms: wall_us() / 1000,
            best_bid: md.pub_bids.keys().next_back().copied(),
            best_ask: md.pub_asks.keys().next().copied(),
        };
        if md
            .sent_tops
            .back()
            .is_some_and(|t| t.best_bid == top.best_bid && t.best_ask == top.best_ask)
        {
            return;
        }
        if md.sent_tops.len() == SENT_TOPS_KEPT {
            md.sent_tops.pop_front();
        }
        md.sent_tops.push_back(top);
    }

    /// What the venue had published about a post-only order on `side` at `price` that
    /// crosses its live book: for how long the tops sent have crossed it, or that none has.
    pub fn cross_knowledge(&self, i: usize, side: Side, price: i64) -> CrossKnowledge {
        let now = wall_us() / 1000;
        let mut since = None;
        for t in self.md[i].sent_tops.iter().rev() {
            if !t.crossed_by(side, price) {
                break;
            }
            since = Some(t.at_wall_ms);
        }
        match since {
            None => CrossKnowledge::Unpublished,
            Some(t) => CrossKnowledge::PublishedFor((now - t).max(0)),
        }
    }

    // ------------------------------------------------------------------- trading

    /// Validates and places a new order (protocol notes §14.7 order of checks).
    ///
    /// # Errors
    /// The venue's error for the first failed check.
    pub fn place(&mut self, acct: usize, session: u64, p: &NewOrder) -> Result<Placed, RpcError> {
        let now = self.now_ms();
        let Some(i) = self.inst(&p.instrument) else {
            return Err(RpcError::new(10020, "invalid_or_unsupported_instrument"));
        };
        let ins = self.instruments[i].clone();
        if ins.expiry_ms <= now {
            return Err(RpcError::new(10012, "book_closed"));
        }
        if self.faults.maintenance {
            return Err(RpcError::new(11051, "system_maintenance"));
        }
        if self.faults.settlement {
            return Err(RpcError::new(10041, "settlement_in_progress"));
        }
        if self.faults.locked_indices.iter().any(|x| x == ins.currency.index_name()) {
            return Err(RpcError::new(13019, "orderbook_closed"));
        }
        if let Some(pos) = self.faults.reject_next.iter().position(|(n, _)| *n == ins.name) {
            let (_, code) = self.faults.reject_next.remove(pos);
            return Err(RpcError::new(
                code,
                if code == 11030 { "other_reject injected" } else { "error" },
            ));
        }
        let Some(amount) = crate::util::amt_units(p.amount) else {
            return Err(RpcError::new(10021, "invalid_amount"));
        };
        if amount < ins.min_amount {
            return Err(RpcError::new(10002, "qty_too_low"));
        }
        if amount % ins.amount_step() != 0 {
            return Err(RpcError::new(10021, "invalid_amount"));
        }
        let ty = p.order_type.as_str();
        let needs_price = matches!(ty, "limit" | "stop_limit" | "take_limit");
        let price = match p.price {
            Some(pr) if ty != "market" && ty != "stop_market" && ty != "take_market" => {
                let Some(u) = crate::util::px_units(pr) else {
                    return Err(RpcError::new(10026, "price_precision_exceeded"));
                };
                if !ins.on_grid(u) {
                    return Err(RpcError::new(10043, "price_wrong_tick"));
                }
                Some(u)
            }
            None if needs_price => {
                return Err(RpcError::invalid_param("price", "must be present"));
            }
            _ => None,
        };
        let (minp, maxp) = self.price_band(i);
        if let Some(u) = price {
            if p.side == Side::Buy && u > maxp {
                return Err(RpcError::new(10007, &format!("price_too_high {}", px(maxp))));
            }
            if p.side == Side::Sell && u < minp {
                return Err(RpcError::new(10005, &format!("price_too_low {}", px(minp))));
            }
        }
        if self.accounts[acct].open_orders >= OPEN_ORDERS_PER_ACCOUNT_MAX {
            return Err(RpcError::new(10001, "error too_many_open_orders"));
        }
        // reduce_only: clip to the position, refuse when nothing to reduce.
        let mut amount = amount;
        if p.reduce_only {
            let pos = self.accounts[acct].positions.get(&i).map_or(0, |x| x.size);
            let reducing = match p.side {
                Side::Buy => pos < 0,
                Side::Sell => pos > 0,
            };
            if !reducing {
                return Err(RpcError::new(11030, "other_reject reduce_only"));
            }
            amount = amount.min(pos.abs());
        }
        // Funds.
        let need = self.margin_for(
            i,
            p.side,
            amount,
            price.map(px).unwrap_or(self.md[i].mark),
            p.reduce_only,
        );
        let avail = self.available_funds(acct, ins.currency, now);
        if need > avail {
            return Err(RpcError::new(10009, "not_enough_funds"));
        }
        let mut price = price;
        let mut crossed = false;
        if p.post_only && ty == "limit" {
            if let Some(u) = price {
                if self.books[i].crosses(p.side, Some(u)) {
                    crossed = true;
                    self.last_cross = Some(self.cross_knowledge(i, p.side, u));
                    if p.reject_post_only {
                        return Err(RpcError::new(11054, "post_only_reject"));
                    }
                    let opp = self.books[i].best(p.side.opposite()).unwrap_or(u);
                    let np = match p.side {
                        Side::Buy => ins.tick_below(opp),
                        Side::Sell => Some(ins.tick_above(opp)),
                    };
                    match np {
                        Some(x) => price = Some(x),
                        None => return Err(RpcError::new(11054, "post_only_reject")),
                    }
                }
            }
        }
        let untriggered = ty.starts_with("stop") || ty.starts_with("take") || ty == "trailing_stop";
        let id = self.next_order_id;
        self.next_order_id += 1;
        let o = Order {
            id,
            account: acct,
            inst: i,
            side: p.side,
            order_type: p.order_type.clone(),
            price,
            amount,
            filled: 0,
            notional: 0.0,
            state: if untriggered { OrderState::Untriggered } else { OrderState::Open },
            tif: p.tif,
            post_only: p.post_only,
            reject_post_only: p.reject_post_only,
            reduce_only: p.reduce_only,
            label: p.label.clone(),
            created_ms: now,
            updated_ms: now,
            session,
            cancel_reason: None,
            replaced: false,
            commission: 0.0,
            trigger: p.trigger.clone(),
            trigger_price: p.trigger_price,
            in_book: false,
        };
        self.orders.insert(id, o);
        self.accounts[acct].open_orders += 1;
        self.accounts[acct].live.insert(id);
        let seq_before = self.next_trade_id;
        let delay = self
            .faults
            .delay_orders_on
            .iter()
            .find(|(n, _)| *n == ins.name)
            .map_or(self.faults.delay_fills_ms, |(_, ms)| *ms);
        let one_shot_cap = self
            .faults
            .partial_next
            .iter()
            .position(|(n, _)| *n == ins.name)
            .map(|pos| self.faults.partial_next.remove(pos).1);
        if !untriggered {
            if delay > 0 && self.books[i].crosses(p.side, price) && self.delayed.len() < DELAYED_MAX
            {
                // Late fill: acknowledge as open now, match after the delay.
                self.delayed
                    .push((now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)), id));
                self.emit_order(id);
            } else if let Some(fraction) = one_shot_cap {
                let standing = std::mem::replace(&mut self.faults.partial_fill, fraction);
                self.match_order(id, now);
                self.faults.partial_fill = standing;
            } else {
                self.match_order(id, now);
            }
        } else {
            self.emit_order(id);
        }
        let trades: Vec<Value> = self.accounts[acct]
            .trades
            .iter()
            .filter(|t| t.seq > seq_before && t.order_id == id)
            .map(|t| t.json.clone())
            .collect();
        let o = self.orders.get(&id).map(|o| (self.order_json(o), o.state));
        let (order, state) = o.unwrap_or((Value::Null, OrderState::Rejected));
        self.flush(now);
        Ok(Placed { order, trades, order_id: id, state, post_only_crossed: crossed })
    }

    /// Initial-margin estimate of a new order, in coin.
    fn margin_for(&self, i: usize, side: Side, amount: i64, price: f64, reduce_only: bool) -> f64 {
        if reduce_only {
            return 0.0;
        }
        let ins = &self.instruments[i];
        let a = amt(amount);
        match ins.kind {
            Kind::Option => match side {
                Side::Buy => a * price,
                Side::Sell => a * (0.1 + self.md[i].mark).max(0.15),
            },
            Kind::Future => a / self.md[i].mark.max(1.0) * 0.02,
        }
    }

    /// Matches a (live, not resting) order against the book, then rests/cancels the rest.
    fn match_order(&mut self, id: u64, now: i64) {
        let Some(o) = self.orders.get(&id).cloned() else { return };
        let i = o.inst;
        let remaining = o.amount - o.filled;
        let limit = if o.order_type.contains("market") {
            // Market orders are bounded by the price band, as on the venue.
            let (minp, maxp) = self.price_band(i);
            Some(if o.side == Side::Buy { maxp } else { minp })
        } else {
            o.price
        };
        if o.tif == Tif::Fok && self.books[i].available(o.side, limit) < remaining {
            self.close_order(id, OrderState::Cancelled, Some("user_request"), now);
            return;
        }
        // Partial-fill fault: LP liquidity gives at most `fraction` of the order.
        let cap = if self.faults.partial_fill < 1.0 {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let c = ((o.amount as f64) * self.faults.partial_fill) as i64;
            let step = self.instruments[i].amount_step();
            (c / step * step).max(0)
        } else {
            i64::MAX
        };
        let fills = self.books[i].take(o.side, limit, remaining.min(cap), |_, _| false);
        for f in fills {
            let (maker, price, qty) = (f.maker, f.price, f.amount);
            // One trade id and sequence per match, shared by both sides and the public print.
            let tr = self.new_trade(i);
            self.record_fill(id, price, qty, false, now, tr);
            match maker.owner {
                Owner::Lp => {
                    if f.maker_done {
                        self.md[i].lp_orders.retain(|x| x.2 != maker.id);
                    }
                }
                Owner::Account(_) => {
                    self.fill_account_order_partial(maker.id, price, qty, f.maker_done, now, tr);
                }
            }
            self.public_trade(i, o.side, price, qty, now, tr);
        }
        if cap != i64::MAX {
            // Pull LP quotes that still cross the remainder ("liquidity vanished").
            let lim = limit;
            let side = o.side;
            let pulled = self.books[i].remove_where(|e| e.owner == Owner::Lp);
            for (s, p, e) in pulled {
                let crosses = match (side, lim) {
                    (Side::Buy, Some(l)) => s == Side::Sell && p <= l,
                    (Side::Sell, Some(l)) => s == Side::Buy && p >= l,
                    (_, None) => s == side.opposite(),
                };
                if crosses {
                    self.md[i].lp_orders.retain(|x| x.2 != e.id);
                } else {
                    self.books[i].insert(s, p, e);
                }
            }
        }
        self.dirty_books.insert(i);
        let Some(o) = self.orders.get(&id) else { return };
        let left = o.amount - o.filled;
        if left == 0 {
            self.close_order(id, OrderState::Filled, None, now);
        } else if matches!(o.tif, Tif::Ioc | Tif::Fok)
            || o.order_type.contains("market")
            || o.price.is_none()
        {
            self.close_order(id, OrderState::Cancelled, Some("user_request"), now);
        } else if let Some(pr) = o.price {
            // Rest the remainder; a remainder can never cross here (matching stopped
            // because the opposite side no longer crosses).
            if self.books[i].crosses(o.side, Some(pr)) {
                self.close_order(id, OrderState::Cancelled, Some("user_request"), now);
                return;
            }
            self.books[i].insert(
                o.side,
                pr,
                Entry { id, owner: Owner::Account(o.account), remaining: left },
            );
            if let Some(o) = self.orders.get_mut(&id) {
                o.in_book = true;
            }
            self.emit_order(id);
        }
    }

    /// Fills a resting account order being removed entirely by the LP sweep.
    fn fill_account_order(&mut self, id: u64, price: i64, qty: i64, done: bool, now: i64) {
        let Some(i) = self.orders.get(&id).map(|o| o.inst) else { return };
        let side = self.orders.get(&id).map_or(Side::Buy, |o| o.side);
        let tr = self.new_trade(i);
        self.fill_account_order_partial(id, price, qty, done, now, tr);
        self.public_trade(i, side.opposite(), price, qty, now, tr);
        self.dirty_books.insert(i);
    }

    fn fill_account_order_partial(
        &mut self,
        id: u64,
        price: i64,
        qty: i64,
        done: bool,
        now: i64,
        tr: (u64, u64),
    ) {
        self.record_fill(id, price, qty, true, now, tr);
        if done {
            if let Some(o) = self.orders.get_mut(&id) {
                o.in_book = false;
            }
            self.close_order(id, OrderState::Filled, None, now);
        } else {
            self.emit_order(id);
        }
    }

    /// Applies one fill to an account order: order fill stats, fee, position, balance, trade.
    /// Allocates (trade id, per-instrument trade sequence) for one match.
    fn new_trade(&mut self, i: usize) -> (u64, u64) {
        self.next_trade_id += 1;
        self.md[i].trade_seq += 1;
        (self.next_trade_id, self.md[i].trade_seq)
    }

    fn record_fill(
        &mut self,
        id: u64,
        price: i64,
        qty: i64,
        maker: bool,
        now: i64,
        tr: (u64, u64),
    ) {
        let Some(o) = self.orders.get_mut(&id) else { return };
        o.filled += qty;
        #[allow(clippy::cast_precision_loss)]
        {
            o.notional += px(price) * qty as f64;
        }
        o.updated_ms = now;
        let (acct, i, side, label, oty, post_only, reduce_only) = (
            o.account,
            o.inst,
            o.side,
            o.label.clone(),
            o.order_type.clone(),
            o.post_only,
            o.reduce_only,
        );
        let state_after = if o.filled == o.amount { "filled" } else { "open" };
        let ins = &self.instruments[i];
        let a = amt(qty);
        let p = px(price);
        // The venue charges and reports fees in whole satoshi-sized units (8 decimals,
        // e.g. `2.5e-7`, `0.00000127` in the real samples); an unrounded inverse-future
        // fee such as `4.999e-7` is a shape the real venue never sends.
        let fee = round_to(
            match ins.kind {
                Kind::Option => {
                    (ins.taker_fee * a).min(0.125 * p * a)
                        * if maker { ins.maker_fee / ins.taker_fee.max(1e-12) } else { 1.0 }
                }
                Kind::Future => (if maker { ins.maker_fee } else { ins.taker_fee }) * a / p,
            },
            8,
        );
        if let Some(o) = self.orders.get_mut(&id) {
            o.commission += fee;
        }
        let c = ccy_idx(ins.currency);
        let kind = ins.kind;
        let signed = if side == Side::Buy { qty } else { -qty };
        let acc = &mut self.accounts[acct];
        acc.balance[c] -= fee;
        acc.fees[c] += fee;
        if kind == Kind::Option {
            // Option premium moves cash at the trade.
            acc.balance[c] -= if side == Side::Buy { p * a } else { -p * a };
        }
        let pos = acc.positions.entry(i).or_default();
        let realized = apply_fill(pos, signed, p, kind);
        if kind == Kind::Future {
            acc.balance[c] += realized;
        }
        let (tid, trade_seq) = tr;
        let ins = &self.instruments[i];
        let trade_id =
            if ins.currency == Currency::Btc { tid.to_string() } else { format!("ETH-{tid}") };
        let mark = self.md[i].mark;
        let idx = self.index[c];
        let mut t = json!({
            "trade_id": trade_id, "trade_seq": trade_seq, "order_id": order_id_str(ins.currency, id),
            "instrument_name": ins.name, "timestamp": now, "direction": side.as_str(), "price": p, "amount": a,
            "contracts": a / amt(ins.contract_size), "fee": round_to(fee, 8), "fee_currency": ins.currency.code(),
            "liquidity": if maker { "M" } else { "T" }, "order_type": if oty.contains("market") { "market" } else { "limit" },
            "state": state_after, "label": label, "index_price": round_to(idx, 2), "mark_price": round_to(mark, 8),
            "tick_direction": 0, "matching_id": Value::Null, "post_only": post_only, "reduce_only": reduce_only,
            "self_trade": false, "api": true, "mmp": false, "profit_loss": round_to(realized, 10), "risk_reducing": false,
            "user_id": self.accounts[acct].user_id,
        });
        if kind == Kind::Option {
            if let Some(m) = t.as_object_mut() {
                m.insert("iv".into(), json!(round_to(self.md[i].iv * 100.0, 2)));
                m.insert("underlying_price".into(), json!(round_to(self.md[i].underlying, 2)));
            }
        }
        let acc = &mut self.accounts[acct];
        acc.trades.push_back(TradeRec {
            seq: tid,
            inst: i,
            order_id: id,
            ts: now,
            json: t.clone(),
        });
        if acc.trades.len() > USER_TRADES_MAX {
            acc.trades.pop_front();
        }
        self.pend_trades.push((acct, i, t));
        self.dirty_accounts.insert(acct);
    }

    fn public_trade(
        &mut self,
        i: usize,
        taker_side: Side,
        price: i64,
        qty: i64,
        now: i64,
        tr: (u64, u64),
    ) {
        let p = px(price);
        let md = &mut self.md[i];
        let tick_direction = match md.last {
            Some(l) if p > l => 0,
            Some(l) if p < l => 2,
            _ => 1,
        };
        md.last = Some(p);
        md.high = Some(md.high.map_or(p, |h| h.max(p)));
        md.low = Some(md.low.map_or(p, |l| l.min(p)));
        md.volume += amt(qty);
        let ins = &self.instruments[i];
        let (tid, trade_seq) = tr;
        let trade_id =
            if ins.currency == Currency::Btc { tid.to_string() } else { format!("ETH-{tid}") };
        let mut t = json!({"trade_id": trade_id, "trade_seq": trade_seq, "timestamp": now, "instrument_name": ins.name, "price": p, "amount": amt(qty), "contracts": amt(qty) / amt(ins.contract_size), "direction": taker_side.as_str(), "tick_direction": tick_direction, "index_price": round_to(self.index[ccy_idx(ins.currency)], 2), "mark_price": round_to(md.mark, 8)});
        if ins.kind == Kind::Option {
            if let Some(m) = t.as_object_mut() {
                m.insert("iv".into(), json!(round_to(md.iv * 100.0, 2)));
                m.insert("underlying_price".into(), json!(round_to(md.underlying, 2)));
            }
        }
        md.trades.push_back(t.clone());
        if md.trades.len() > PUBLIC_TRADES_MAX {
            md.trades.pop_front();
        }
        self.pend_pub_trades.push((i, t));
    }

    fn close_order(&mut self, id: u64, state: OrderState, reason: Option<&'static str>, now: i64) {
        let Some(o) = self.orders.get_mut(&id) else { return };
        if !o.state.is_live() {
            return;
        }
        if o.in_book {
            let (side, price, inst) = (o.side, o.price, o.inst);
            if let Some(p) = price {
                self.books[inst].remove(side, p, id);
            }
            self.dirty_books.insert(inst);
        }
        let Some(o) = self.orders.get_mut(&id) else { return };
        o.in_book = false;
        o.state = state;
        o.cancel_reason = reason;
        o.updated_ms = now;
        let acct = o.account;
        self.accounts[acct].open_orders = self.accounts[acct].open_orders.saturating_sub(1);
        self.accounts[acct].live.remove(&id);
        self.dirty_accounts.insert(acct);
        self.emit_order(id);
        self.closed.push_back(id);
        while self.closed.len() > CLOSED_ORDERS_MAX {
            if let Some(old) = self.closed.pop_front() {
                self.orders.remove(&old);
            }
        }
    }

    fn emit_order(&mut self, id: u64) {
        if let Some(o) = self.orders.get(&id) {
            let j = self.order_json(o);
            self.pend_orders.push((o.account, o.inst, j));
        }
    }

    /// Cancels one order of `acct`.
    ///
    /// # Errors
    /// 10004 unknown id, 10029 not owner, 11044 not open.
    pub fn cancel(
        &mut self,
        acct: usize,
        order_id: &str,
        reason: &'static str,
    ) -> Result<Value, RpcError> {
        let now = self.now_ms();
        let Some(id) = parse_order_id(order_id) else {
            return Err(RpcError::new(10004, "order_not_found"));
        };
        let Some(o) = self.orders.get(&id) else {
            return Err(RpcError::new(10004, "order_not_found"));
        };
        if o.account != acct {
            return Err(RpcError::new(10004, "order_not_found"));
        }
        if !o.state.is_live() {
            return Err(RpcError::new(11044, "not_open_order"));
        }
        self.delayed.retain(|(_, d)| *d != id);
        self.close_order(id, OrderState::Cancelled, Some(reason), now);
        self.flush(now);
        Ok(self.orders.get(&id).map_or(Value::Null, |o| self.order_json(o)))
    }

    /// Cancels every live order of `acct` matching `pred`; returns the cancelled orders.
    pub fn cancel_where(
        &mut self,
        acct: usize,
        reason: &'static str,
        pred: impl Fn(&Order, &Instrument) -> bool,
    ) -> Vec<Value> {
        let now = self.now_ms();
        let mut ids: Vec<u64> = self.accounts[acct]
            .live
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| {
                o.account == acct && o.state.is_live() && pred(o, &self.instruments[o.inst])
            })
            .map(|o| o.id)
            .collect();
        ids.sort_unstable();
        let mut out = Vec::new();
        for id in ids {
            self.delayed.retain(|(_, d)| *d != id);
            self.close_order(id, OrderState::Cancelled, Some(reason), now);
            if let Some(o) = self.orders.get(&id) {
                out.push(self.order_json(o));
            }
        }
        self.flush(now);
        out
    }

    /// Edits an order (amount and/or price). A price change or size-up loses priority
    /// (re-queued and re-matched); a size-down keeps it.
    ///
    /// # Errors
    /// The venue's error.
    pub fn edit(
        &mut self,
        acct: usize,
        order_id: &str,
        amount: Option<f64>,
        price: Option<f64>,
        post_only: Option<bool>,
        reject_post_only: Option<bool>,
    ) -> Result<Placed, RpcError> {
        let now = self.now_ms();
        let id = parse_order_id(order_id).ok_or_else(|| RpcError::new(10004, "order_not_found"))?;
        let o =
            self.orders.get(&id).cloned().ok_or_else(|| RpcError::new(10004, "order_not_found"))?;
        if o.account != acct {
            return Err(RpcError::new(10004, "order_not_found"));
        }
        if !o.state.is_live() {
            return Err(RpcError::new(11044, "not_open_order"));
        }
        if self.faults.maintenance {
            return Err(RpcError::new(11051, "system_maintenance"));
        }
        if self.faults.settlement {
            return Err(RpcError::new(10041, "settlement_in_progress"));
        }
        let ins = self.instruments[o.inst].clone();
        let new_amount = match amount {
            Some(a) => {
                let u = crate::util::amt_units(a)
                    .ok_or_else(|| RpcError::new(10021, "invalid_amount"))?;
                if u % ins.amount_step() != 0 {
                    return Err(RpcError::new(10021, "invalid_amount"));
                }
                if u < ins.min_amount {
                    return Err(RpcError::new(10002, "qty_too_low"));
                }
                if u <= o.filled {
                    return Err(RpcError::new(11030, "other_reject amount below filled"));
                }
                u
            }
            None => o.amount,
        };
        let mut new_price = match price {
            Some(p) => {
                let u = crate::util::px_units(p)
                    .ok_or_else(|| RpcError::new(10026, "price_precision_exceeded"))?;
                if !ins.on_grid(u) {
                    return Err(RpcError::new(10043, "price_wrong_tick"));
                }
                Some(u)
            }
            None => o.price,
        };
        let (minp, maxp) = self.price_band(o.inst);
        if let Some(u) = new_price {
            if o.side == Side::Buy && u > maxp {
                return Err(RpcError::new(10007, &format!("price_too_high {}", px(maxp))));
            }
            if o.side == Side::Sell && u < minp {
                return Err(RpcError::new(10005, &format!("price_too_low {}", px(minp))));
            }
        }
        let po = post_only.unwrap_or(o.post_only);
        let rpo = reject_post_only.unwrap_or(o.reject_post_only);
        let seq_before = self.next_trade_id;
        let mut crossed = false;
        // Same price and not larger: the order keeps its queue position (size-down in place).
        let keep_priority = new_price == o.price && new_amount <= o.amount && o.in_book;
        if keep_priority {
            if let Some(p) = o.price {
                self.books[o.inst].set_remaining(o.side, p, id, new_amount - o.filled);
            }
            if let Some(m) = self.orders.get_mut(&id) {
                m.amount = new_amount;
                m.post_only = po;
                m.reject_post_only = rpo;
                m.replaced = true;
                m.updated_ms = now;
            }
            self.dirty_books.insert(o.inst);
            self.emit_order(id);
        } else {
            if po && o.state == OrderState::Open {
                if let Some(u) = new_price {
                    // Check against the book without this order in it.
                    let mut b = self.books[o.inst].clone();
                    if let Some(p) = o.price.filter(|_| o.in_book) {
                        b.remove(o.side, p, id);
                    }
                    if b.crosses(o.side, Some(u)) {
                        crossed = true;
                        self.last_cross = Some(self.cross_knowledge(o.inst, o.side, u));
                        if rpo {
                            // The edit is refused; the order keeps its old state.
                            return Err(RpcError::new(11054, "post_only_reject"));
                        }
                        let opp = b.best(o.side.opposite()).unwrap_or(u);
                        new_price = match o.side {
                            Side::Buy => ins.tick_below(opp),
                            Side::Sell => Some(ins.tick_above(opp)),
                        };
                        if new_price.is_none() {
                            return Err(RpcError::new(11054, "post_only_reject"));
                        }
                    }
                }
            }
            if o.in_book {
                if let Some(p) = o.price {
                    self.books[o.inst].remove(o.side, p, id);
                }
            }
            if let Some(m) = self.orders.get_mut(&id) {
                m.amount = new_amount;
                m.price = new_price;
                m.post_only = po;
                m.reject_post_only = rpo;
                m.replaced = true;
                m.updated_ms = now;
                m.in_book = false;
            }
            self.dirty_books.insert(o.inst);
            if o.state == OrderState::Open {
                self.match_order(id, now);
            } else {
                self.emit_order(id);
            }
        }
        let trades: Vec<Value> = self.accounts[acct]
            .trades
            .iter()
            .filter(|t| t.seq > seq_before && t.order_id == id)
            .map(|t| t.json.clone())
            .collect();
        let (order, state) = self
            .orders
            .get(&id)
            .map_or((Value::Null, OrderState::Rejected), |o| (self.order_json(o), o.state));
        self.flush(now);
        Ok(Placed { order, trades, order_id: id, state, post_only_crossed: crossed })
    }

    // ------------------------------------------------------------ account views

    /// Wire order object.
    pub fn order_json(&self, o: &Order) -> Value {
        let ins = &self.instruments[o.inst];
        #[allow(clippy::cast_precision_loss)]
        let avg = if o.filled > 0 { o.notional / o.filled as f64 } else { 0.0 };
        let price = match o.price {
            Some(p) => json!(px(p)),
            None => json!("market_price"),
        };
        let mut v = json!({
            "order_id": order_id_str(ins.currency, o.id), "instrument_name": ins.name, "direction": o.side.as_str(),
            "amount": amt(o.amount), "contracts": amt(o.amount) / amt(ins.contract_size), "filled_amount": amt(o.filled),
            "price": price, "average_price": round_to(avg, 8), "order_type": o.order_type, "order_state": o.state.as_str(),
            "time_in_force": o.tif.as_str(), "post_only": o.post_only, "reduce_only": o.reduce_only, "label": o.label,
            "creation_timestamp": o.created_ms, "last_update_timestamp": o.updated_ms, "api": true, "web": false,
            "replaced": o.replaced, "max_show": amt(o.amount), "is_liquidation": false, "risk_reducing": false, "mmp": false,
            "profit_loss": 0.0, "commission": round_to(o.commission, 8), "is_rebalance": false,
        });
        if let Some(m) = v.as_object_mut() {
            if o.post_only {
                m.insert("reject_post_only".into(), json!(o.reject_post_only));
            }
            if let Some(r) = o.cancel_reason {
                m.insert("cancel_reason".into(), json!(r));
            }
            if let Some(t) = &o.trigger {
                m.insert("trigger".into(), json!(t));
                m.insert("trigger_price".into(), json!(o.trigger_price));
                m.insert("triggered".into(), json!(o.state != OrderState::Untriggered));
            }
        }
        v
    }

    /// Wire position object.
    pub fn position_json(&self, acct: usize, i: usize, _now: i64) -> Value {
        let ins = &self.instruments[i];
        let pos = self.accounts[acct].positions.get(&i).copied().unwrap_or_default();
        let md = &self.md[i];
        let size = amt(pos.size);
        let fpl = floating_pnl(&pos, md.mark, ins.kind);
        let (im, mm) = self.position_margin(ins, &pos, md.mark);
        let dir = match pos.size.signum() {
            1 => "buy",
            -1 => "sell",
            _ => "zero",
        };
        let idx = self.index[ccy_idx(ins.currency)];
        let mut v = json!({
            "instrument_name": ins.name, "kind": ins.kind.as_str(), "direction": dir, "size": size,
            "average_price": round_to(pos.avg, 8), "mark_price": round_to(md.mark, 8), "index_price": round_to(idx, 2),
            "settlement_price": round_to(md.open_price, 8), "floating_profit_loss": round_to(fpl, 10),
            "realized_profit_loss": round_to(pos.realized, 10), "total_profit_loss": round_to(fpl + pos.realized, 10),
            "initial_margin": round_to(im, 10), "maintenance_margin": round_to(mm, 10), "open_orders_margin": 0.0,
            "leverage": 50, "interest_value": 0.0,
        });
        if let Some(m) = v.as_object_mut() {
            match ins.kind {
                Kind::Future => {
                    let sc = if md.mark > 0.0 { size / md.mark } else { 0.0 };
                    m.insert("size_currency".into(), json!(round_to(sc, 10)));
                    m.insert("delta".into(), json!(round_to(sc, 10)));
                    m.insert("estimated_liquidation_price".into(), Value::Null);
                    if ins.perpetual {
                        m.insert("realized_funding".into(), json!(0.0));
                    }
                }
                Kind::Option => {
                    let g = md.greeks.unwrap_or(Priced {
                        usd: 0.0,
                        delta: 0.0,
                        gamma: 0.0,
                        vega: 0.0,
                        theta: 0.0,
                        rho: 0.0,
                    });
                    m.insert("delta".into(), json!(round_to(g.delta * size, 6)));
                    m.insert("gamma".into(), json!(round_to(g.gamma * size, 8)));
                    m.insert("vega".into(), json!(round_to(g.vega * size, 6)));
                    m.insert("theta".into(), json!(round_to(g.theta * size, 6)));
                    m.insert("average_price_usd".into(), json!(round_to(pos.avg * idx, 2)));
                    m.insert("floating_profit_loss_usd".into(), json!(round_to(fpl * idx, 2)));
                }
            }
        }
        v
    }

    fn position_margin(&self, ins: &Instrument, pos: &Position, mark: f64) -> (f64, f64) {
        let size = amt(pos.size).abs();
        match ins.kind {
            Kind::Future => {
                let coin = if mark > 0.0 { size / mark } else { 0.0 };
                (coin * 0.02, coin * 0.01)
            }
            Kind::Option if pos.size < 0 => {
                ((0.1f64.max(0.15) + mark) * size, (0.075 + mark) * size)
            }
            Kind::Option => (0.0, 0.0),
        }
    }

    fn open_orders_margin(&self, acct: usize, c: Currency) -> f64 {
        self.accounts[acct]
            .live
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| {
                o.account == acct && o.state.is_live() && self.instruments[o.inst].currency == c
            })
            .map(|o| {
                let p = o.price.map_or(self.md[o.inst].mark, px);
                self.margin_for(o.inst, o.side, o.amount - o.filled, p, o.reduce_only)
            })
            .sum()
    }

    /// (equity, initial margin, maintenance margin, options value, futures upl, options upl, deltas)
    fn account_totals(&self, acct: usize, c: Currency) -> (f64, f64, f64, f64, f64, f64, f64) {
        let a = &self.accounts[acct];
        let mut im = 0.0;
        let mut mm = 0.0;
        let mut opt_value = 0.0;
        let mut fut_upl = 0.0;
        let mut opt_upl = 0.0;
        let mut delta = 0.0;
        for (i, pos) in &a.positions {
            let ins = &self.instruments[*i];
            if ins.currency != c || pos.size == 0 {
                continue;
            }
            let md = &self.md[*i];
            let (pi, pm) = self.position_margin(ins, pos, md.mark);
            im += pi;
            mm += pm;
            match ins.kind {
                Kind::Option => {
                    opt_value += amt(pos.size) * md.mark;
                    opt_upl += floating_pnl(pos, md.mark, ins.kind);
                    delta += md.greeks.map_or(0.0, |g| g.delta) * amt(pos.size);
                }
                Kind::Future => {
                    fut_upl += floating_pnl(pos, md.mark, ins.kind);
                    if md.mark > 0.0 {
                        delta += amt(pos.size) / md.mark;
                    }
                }
            }
        }
        let equity = a.balance[ccy_idx(c)] + fut_upl + opt_value;
        (equity, im, mm, opt_value, fut_upl, opt_upl, delta)
    }

    /// available_funds = equity − initial margin − open orders margin.
    pub fn available_funds(&self, acct: usize, c: Currency, _now: i64) -> f64 {
        let (eq, im, ..) = self.account_totals(acct, c);
        eq - im - self.open_orders_margin(acct, c)
    }

    /// Wire account summary (also `user.portfolio` data).
    pub fn account_summary_json(
        &self,
        acct: usize,
        c: Currency,
        extended: bool,
        _now: i64,
    ) -> Value {
        let (eq, im, mm, ov, fupl, oupl, delta) = self.account_totals(acct, c);
        let oom = self.open_orders_margin(acct, c);
        let a = &self.accounts[acct];
        let bal = a.balance[ccy_idx(c)];
        let avail = eq - im - oom;
        let idx = c.index_name();
        let mut v = json!({
            "currency": c.code(), "balance": round_to(bal, 10), "equity": round_to(eq, 10), "margin_balance": round_to(eq, 10),
            "available_funds": round_to(avail, 10), "available_withdrawal_funds": round_to(avail.min(bal).max(0.0), 10),
            "initial_margin": round_to(im + oom, 10), "maintenance_margin": round_to(mm, 10),
            "projected_initial_margin": round_to(im + oom, 10), "projected_maintenance_margin": round_to(mm, 10),
            "delta_total": round_to(delta, 6), "projected_delta_total": round_to(delta, 6),
            "delta_total_map": {idx: round_to(delta, 6)}, "estimated_liquidation_ratio": 0.0, "estimated_liquidation_ratio_map": {},
            "options_value": round_to(ov, 10), "options_pl": round_to(oupl, 10), "options_session_rpl": 0.0, "options_session_upl": round_to(oupl, 10),
            "options_delta": 0.0, "options_gamma": 0.0, "options_vega": 0.0, "options_theta": 0.0,
            "futures_pl": round_to(fupl, 10), "futures_session_rpl": 0.0, "futures_session_upl": round_to(fupl, 10),
            "session_rpl": 0.0, "session_upl": round_to(fupl + oupl, 10), "total_pl": round_to(fupl + oupl, 10),
            "fee_balance": 0.0, "spot_reserve": 0.0, "additional_reserve": 0.0,
            "margin_model": "segregated_sm", "portfolio_margining_enabled": false, "cross_collateral_enabled": false,
        });
        if let Some(m) = v.as_object_mut() {
            m.insert("id".into(), json!(a.user_id));
            m.insert("username".into(), json!(a.username));
            m.insert("system_name".into(), json!(a.username));
            m.insert("type".into(), json!("main"));
            m.insert("email".into(), json!(format!("{}@sim.invalid", a.username)));
            m.insert("tfa_enabled".into(), json!(false));
            m.insert("session_funding".into(), json!(0.0));
            m.insert("deposit_address".into(), json!(""));
            let l = a.limits;
            m.insert(
                "limits".into(),
                json!({"limits_per_currency": false, "non_matching_engine": {"rate": l.non_matching_engine.rate, "burst": l.non_matching_engine.burst}, "matching_engine": {"trading": {"total": {"rate": l.matching_engine.rate, "burst": l.matching_engine.burst}}, "cancel_all": {"rate": l.matching_engine.rate, "burst": l.matching_engine.burst}}}),
            );
            if extended {
                m.insert("fees".into(), json!([]));
            }
        }
        v
    }

    /// Orders of an account (live or all recent) as wire objects, newest first.
    pub fn orders_of(
        &self,
        acct: usize,
        live: bool,
        pred: impl Fn(&Order, &Instrument) -> bool,
    ) -> Vec<Value> {
        let mut v: Vec<&Order> = self
            .orders
            .values()
            .filter(|o| {
                o.account == acct
                    && (o.state.is_live() == live)
                    && pred(o, &self.instruments[o.inst])
            })
            .collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.id));
        v.into_iter().map(|o| self.order_json(o)).collect()
    }

    // ---------------------------------------------------------------- sessions

    /// Takes credits from a source IP's unauthenticated bucket (and the separate
    /// `get_instruments` bucket: 1 per 10 s, burst 5).
    pub fn ip_take(&mut self, ip: &str, now: i64, get_instruments: bool) -> bool {
        if !self.ip_buckets.contains_key(ip) && self.ip_buckets.len() >= 4_096 {
            self.ip_buckets.clear();
        }
        let (general, instruments) = self.ip_buckets.entry(ip.to_string()).or_insert_with(|| {
            (
                Bucket::new(LimitsSpec::default().non_matching_engine, now),
                Bucket::new(crate::accounts::RateSpec { rate: 0.1, burst: 5.0 }, now),
            )
        });
        if get_instruments {
            instruments.try_take(now)
        } else {
            general.try_take(now)
        }
    }

    /// Registers a WebSocket session.
    pub fn add_session(&mut self, tx: SyncSender<Outbound>) -> u64 {
        let sid = self.next_session;
        self.next_session += 1;
        self.sessions
            .insert(sid, SessionSlot { tx, subs: HashSet::new(), account: None, cod: false });
        sid
    }

    /// New id for an HTTP request (journal `session`).
    pub fn http_session_id(&mut self) -> u64 {
        let sid = self.next_session;
        self.next_session += 1;
        sid
    }

    /// Removes a session; runs cancel-on-disconnect when `cod` applies.
    pub fn remove_session(&mut self, sid: u64, run_cod: bool) {
        let Some(slot) = self.sessions.remove(&sid) else { return };
        for ch in &slot.subs {
            if let Some(n) = self.subs_count.get_mut(ch) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.subs_count.remove(ch);
                }
            }
        }
        self.tokens.retain(|_, t| t.session != Some(sid));
        if !run_cod {
            return;
        }
        if let Some(acct) = slot.account {
            let account_scope = self.accounts[acct].cod_account;
            if slot.cod || account_scope {
                let _ = self.cancel_where(acct, "cancel_on_disconnect", |o, _| {
                    account_scope || o.session == sid
                });
            }
        }
    }

    /// Asks every session to close.
    pub fn disconnect_all(&mut self) {
        for s in self.sessions.values() {
            let _ = s.tx.try_send(Outbound::Close("disconnect_all fault"));
        }
    }

    // ------------------------------------------------------------------ tokens

    /// Issues an access/refresh token pair.
    pub fn issue_token(
        &mut self,
        auth: Auth,
        scope_str: String,
        session: Option<u64>,
        expires_s: i64,
    ) -> (String, String) {
        let now = self.transport_ms();
        self.token_seq += 1;
        let mk = |rng: &mut ChaCha8Rng| -> String {
            let a: u64 = rng.gen();
            let b: u64 = rng.gen();
            let c: u64 = rng.gen();
            format!("{now}.{a:016x}.{b:016x}{c:016x}")
        };
        let access = mk(&mut self.token_rng);
        let refresh = mk(&mut self.token_rng);
        let t = Token {
            auth,
            expires_ms: now + expires_s * 1000,
            session,
            scope_str,
            issued: self.token_seq,
        };
        self.tokens.insert(access.clone(), t.clone());
        self.refresh_tokens.insert(
            refresh.clone(),
            Token { session: None, expires_ms: now + 2 * expires_s * 1000, ..t },
        );
        for map in [&mut self.tokens, &mut self.refresh_tokens] {
            while map.len() > TOKENS_MAX {
                let oldest = map.iter().min_by_key(|(_, t)| t.issued).map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => {
                        map.remove(&k);
                    }
                    None => break,
                }
            }
        }
        (access, refresh)
    }

    /// Applies a fault.
    pub fn apply_fault(&mut self, f: &Fault) {
        let now = self.now_ms();
        match f {
            Fault::DisconnectAll => self.disconnect_all(),
            Fault::DropBookMessages { count, instrument } => {
                self.faults.drop_book = *count;
                self.faults.drop_book_instrument.clone_from(instrument);
            }
            Fault::ReorderBookMessages { count, instrument } => {
                self.faults.reorder_book = *count;
                self.faults.reorder_book_instrument.clone_from(instrument);
            }
            Fault::DelayFills { ms } => self.faults.delay_fills_ms = *ms,
            Fault::PartialFill { fraction } => {
                self.faults.partial_fill =
                    if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 1.0 };
            }
            Fault::RejectNextOrder { instrument, code } => {
                if self.faults.reject_next.len() < 1_000 {
                    self.faults.reject_next.push((instrument.clone(), code.unwrap_or(11030)));
                }
            }
            Fault::RateLimitStorm { seconds } => {
                #[allow(clippy::cast_possible_truncation)]
                let ms = (seconds.clamp(0.0, 3600.0) * 1000.0) as i64;
                self.faults.storm_until_ms = wall_us() / 1000 + ms;
            }
            Fault::Maintenance { on } => {
                self.faults.maintenance = *on;
                self.publish_platform_state(&json!({"maintenance": on}));
            }
            Fault::LockIndex { index, locked } => {
                self.faults.locked_indices.retain(|x| x != index);
                if *locked {
                    self.faults.locked_indices.push(index.clone());
                }
                self.publish_platform_state(&json!({"price_index": index, "locked": locked}));
            }
            Fault::Settlement { on } => self.faults.settlement = *on,
            Fault::ClockSkew { ms } => {
                self.faults.clock_skew_ms = (*ms).clamp(-86_400_000, 86_400_000);
            }
            Fault::FreezeMarketData { on } => self.faults.frozen = *on,
            Fault::MoveIndex { index, pct } => self.move_index(index, *pct, now),
            Fault::DelayOrdersOn { instrument, ms } => {
                self.faults.delay_orders_on.retain(|(n, _)| n != instrument);
                if *ms > 0 && self.faults.delay_orders_on.len() < 1_000 {
                    self.faults.delay_orders_on.push((instrument.clone(), *ms));
                }
            }
            Fault::PartialFillNext { instrument, fraction } => {
                if self.faults.partial_next.len() < 1_000 {
                    let f = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 1.0 };
                    self.faults.partial_next.push((instrument.clone(), f));
                }
            }
            Fault::DuplicateFillNotifications { count } => self.faults.duplicate_fills = *count,
            Fault::DropUserNotifications { count } => self.faults.drop_user = *count,
            Fault::MuteMarketData { on } => self.faults.muted = *on,
            Fault::FreezePositionSnapshot { on } => {
                self.faults.frozen_positions = on.then(|| crate::position_lag::snapshot(self));
            }
            Fault::LoseNextOrderAck { instrument } => {
                self.faults.lose_ack = true;
                self.faults.lose_ack_instrument.clone_from(instrument);
            }
            Fault::Clear => {
                let was_maint = self.faults.maintenance;
                let locked = std::mem::take(&mut self.faults.locked_indices);
                self.faults = FaultState::new();
                if was_maint {
                    self.publish_platform_state(&json!({"maintenance": false}));
                }
                for idx in locked {
                    self.publish_platform_state(&json!({"price_index": idx, "locked": false}));
                }
            }
        }
        self.flush(now);
    }

    /// JSON snapshot for `GET /sim/state`.
    pub fn state_json(&self) -> Value {
        let now = self.now_ms();
        let accounts: Vec<Value> = (0..self.accounts.len())
            .map(|a| {
                let positions: Vec<Value> = self.accounts[a]
                    .positions
                    .iter()
                    .filter(|(_, p)| p.size != 0)
                    .map(|(i, _)| self.position_json(a, *i, now))
                    .collect();
                let summaries: Vec<Value> = Currency::ALL.iter().map(|c| self.account_summary_json(a, *c, false, now)).collect();
                json!({"username": self.accounts[a].username, "user_id": self.accounts[a].user_id, "open_orders": self.orders_of(a, true, |_, _| true), "positions": positions, "summaries": summaries, "trades": self.accounts[a].trades.len()})
            })
            .collect();
        json!({"time_ms": now, "index": {"btc_usd": self.index[0], "eth_usd": self.index[1]}, "sessions": self.sessions.len(), "journal_next_seq": self.journal.next_seq(), "faults": format!("{:?}", self.faults), "accounts": accounts})
    }

    /// Invariant check used by tests: no crossed book at rest; every account order in a
    /// book is open with the same remaining; LP ids tracked.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (i, b) in self.books.iter().enumerate() {
            if let (Some(bb), Some(ba)) = (b.best_bid(), b.best_ask()) {
                if bb >= ba {
                    return Err(format!("{} crossed: {bb} >= {ba}", self.instruments[i].name));
                }
            }
            for (s, p, e) in b.entries() {
                if e.remaining <= 0 {
                    return Err(format!("non-positive entry {e:?}"));
                }
                if let Owner::Account(_) = e.owner {
                    let o = self.orders.get(&e.id).ok_or("book order missing")?;
                    if o.state != OrderState::Open
                        || !o.in_book
                        || o.side != s
                        || o.price != Some(p)
                        || o.amount - o.filled != e.remaining
                    {
                        return Err(format!("book entry {e:?} disagrees with order {o:?}"));
                    }
                }
            }
        }
        for o in self.orders.values() {
            if o.filled > o.amount || o.filled < 0 {
                return Err(format!("order overfilled {o:?}"));
            }
            if o.state.is_live() != self.accounts[o.account].live.contains(&o.id) {
                return Err(format!("live set disagrees with order {o:?}"));
            }
        }
        for a in &self.accounts {
            if a.open_orders != a.live.len() {
                return Err(format!(
                    "{}: open_orders {} != live {}",
                    a.username,
                    a.open_orders,
                    a.live.len()
                ));
            }
        }
        Ok(())
    }
}

/// Channel classification.
#[derive(Debug)]
struct ChannelKind {
    raw: bool,
    private: bool,
    initial: Initial,
}

#[derive(Debug)]
enum Initial {
    None,
    BookSnapshot(usize),
    Grouped(usize, usize),
    Ticker(usize),
}

/// Serializes a subscription notification.
pub fn notification(ch: &str, data: &Value) -> String {
    json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": ch, "data": data}})
        .to_string()
}

/// The user channel names an event on `ins` goes to, with the data shape each wants.
fn user_channels(
    what: &str,
    ins: &Instrument,
    data: &Value,
    object_for_raw: bool,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let arr = if data.is_array() || !object_for_raw { data.clone() } else { json!([data]) };
    for iv in ["raw", "100ms", "agg2"] {
        let d = if iv == "raw" && object_for_raw { data.clone() } else { arr.clone() };
        out.push((format!("user.{what}.{}.{iv}", ins.name), d.clone()));
        for k in [ins.kind.as_str(), "any"] {
            for c in [ins.currency.code(), "any"] {
                out.push((format!("user.{what}.{k}.{c}.{iv}"), d.clone()));
            }
        }
    }
    out
}

/// Order id on the wire: digits for BTC, `ETH-` prefix for ETH.
pub fn order_id_str(c: Currency, id: u64) -> String {
    match c {
        Currency::Btc => id.to_string(),
        Currency::Eth => format!("ETH-{id}"),
    }
}

/// Parses either form of order id.
pub fn parse_order_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("ETH-").unwrap_or(s);
    digits.parse().ok()
}

/// Applies a signed fill to a position; returns the realized PnL in coin.
pub fn apply_fill(pos: &mut Position, signed: i64, price: f64, kind: Kind) -> f64 {
    let mut realized = 0.0;
    if pos.size == 0 || pos.size.signum() == signed.signum() {
        let (s, q) = (amt(pos.size.abs()), amt(signed.abs()));
        pos.avg = match kind {
            Kind::Option => (s * pos.avg + q * price) / (s + q),
            // Inverse futures average harmonically (USD size / coin value).
            Kind::Future => {
                let coin = if pos.avg > 0.0 { s / pos.avg } else { 0.0 } + q / price;
                (s + q) / coin
            }
        };
        pos.size += signed;
    } else {
        let close = signed.abs().min(pos.size.abs());
        let c = amt(close);
        let dir = f64::from(i32::try_from(pos.size.signum()).unwrap_or(0));
        realized = match kind {
            Kind::Option => c * (price - pos.avg) * dir,
            Kind::Future => c * (1.0 / pos.avg - 1.0 / price) * dir,
        };
        pos.realized += realized;
        let rest = signed.abs() - close;
        pos.size += signed.signum() * close;
        if rest > 0 {
            pos.size = signed.signum() * rest;
            pos.avg = price;
        } else if pos.size == 0 {
            pos.avg = 0.0;
        }
    }
    realized
}

fn floating_pnl(pos: &Position, mark: f64, kind: Kind) -> f64 {
    if pos.size == 0 || mark <= 0.0 || pos.avg <= 0.0 {
        return 0.0;
    }
    let s = amt(pos.size);
    match kind {
        Kind::Option => s * (mark - pos.avg),
        Kind::Future => s * (1.0 / pos.avg - 1.0 / mark),
    }
}

/// A map-with-string-keys helper for params.
pub type Params = Map<String, Value>;
