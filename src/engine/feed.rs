//! The feed stage: the market-data session on its own thread.
//!
//! The feed thread owns the market-data `Connection` (public, unauthenticated), one `L2Book`
//! per instrument the strategy needs, and the index prices. It never touches the WAL, the
//! trading session or the strategy. Every applied book change is published into the
//! instrument's slot of a [`hotpath::ring::book_board`] (seqlock slot + notice ring; market
//! data conflates, the feed never blocks — see that module and docs/concurrency.md); index
//! prices go into atomics. A change-id gap is repaired here by unsubscribing and
//! resubscribing the book's channel (a fresh snapshot); a dead session is reconnected here,
//! with the books published as gapped meanwhile so the strategy pulls its quotes and the gates
//! see stale data.
//!
//! Shutdown: [`FeedHandle::stop`] sets the stop flag; the thread notices it within one poll
//! slice (≤ 50 ms compact, at once when spinning), closes the session and exits.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hotpath::clock::Clock;
use hotpath::domain::instrument::InstrumentName;
use hotpath::domain::units::{Price, Qty};
use hotpath::feed::book::L2Book;
use hotpath::gates::market::{BookLevel, BookView, BOOK_VIEW_DEPTH};
use hotpath::ring::{BookWriter, StopFlag, WaitStrategy};
use hotpath::venue::conn::{ConnConfig, ConnError, Connection, Incoming};
use hotpath::venue::messages::{Message, NotificationData};
use hotpath::venue::{methods, Decimal8};

use super::reconcile_service::MdHealth;

/// Depth kept per book side.
pub const BOOK_DEPTH: usize = 20;
/// Longest pause between two market-data reconnect attempts.
const RECONNECT_PAUSE_MS_MAX: u64 = 1_000;

/// How the feed thread runs.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Venue WebSocket URL.
    pub url: String,
    /// Instruments by board slot.
    pub names: Vec<InstrumentName>,
    /// `Spin`: poll the socket without blocking (pinned); otherwise block in the socket poll
    /// up to one slice (the OS wakes the thread when bytes arrive).
    pub wait: WaitStrategy,
    /// Core to pin to (pinned topology), if any.
    pub core: Option<hotpath::ring::topology::CoreId>,
    /// For log lines.
    pub run_id: String,
    /// Market-data health for the engine's PolicyGuard inputs (liveness, drift, maintenance).
    pub health: Arc<super::reconcile_service::SharedMdHealth>,
}

/// The running feed thread.
#[derive(Debug)]
pub struct FeedHandle {
    stop: StopFlag,
    join: Option<JoinHandle<()>>,
}

impl FeedHandle {
    /// Asks the feed thread to stop and waits for it.
    pub fn stop(&mut self) {
        self.stop.stop();
        if let Some(j) = self.join.take() {
            if j.join().is_err() {
                tracing::error!("feed thread panicked");
            }
        }
    }
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the feed thread publishing into `board`. Books are stamped on `clock` (the engine's
/// trading time); the session's heartbeats, timeouts and credits run on `transport_clock` (wall
/// time, also when `clock` is simulated).
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn(
    cfg: FeedConfig,
    board: BookWriter,
    clock: Arc<dyn Clock>,
    transport_clock: Arc<dyn Clock>,
) -> std::io::Result<FeedHandle> {
    let stop = StopFlag::new();
    let flag = stop.clone();
    let join = std::thread::Builder::new().name("stoic-feed".into()).spawn(move || {
        if !hotpath::ring::pin_current_thread(cfg.core) {
            println!("topology: feed thread could not be pinned to {:?}", cfg.core);
        }
        let mut feed = Feed::new(&cfg, board, clock, transport_clock);
        feed.health.attach(Arc::clone(&cfg.health));
        feed.run(&cfg, &flag);
    })?;
    Ok(FeedHandle { stop, join: Some(join) })
}

/// The thread's state: books by slot, channel names by slot, the board.
struct Feed {
    books: Vec<L2Book>,
    channels: Vec<String>,
    board: BookWriter,
    clock: Arc<dyn Clock>,
    /// The market-data session's clock (wall time).
    transport_clock: Arc<dyn Clock>,
    health: MdHealth,
}

/// A book's gate-facing view, stamped with our clock at the time of the change.
pub fn view_of(name: InstrumentName, book: &L2Book, now_ms: i64, gapped: bool) -> BookView {
    fn levels(src: &[(Decimal8, Decimal8)]) -> ([BookLevel; BOOK_VIEW_DEPTH], usize) {
        let mut out = [BookLevel::default(); BOOK_VIEW_DEPTH];
        for (slot, (p, q)) in out.iter_mut().zip(src) {
            // Decimal8 and Price/Qty share the 1e-8 scale.
            *slot = BookLevel { price: Price::from_raw(p.raw), qty: Qty::from_raw(q.raw) };
        }
        (out, src.len().min(BOOK_VIEW_DEPTH))
    }
    let (bids, nb) = levels(book.bids());
    let (asks, na) = levels(book.asks());
    BookView::from_levels(name, &bids[..nb], &asks[..na], now_ms, gapped)
}

/// Applies one market-data message: a book change is applied and published (slot found by
/// name among at most a few dozen books); an index price is published.
fn apply(
    inc: &Incoming<'_>,
    books: &mut [L2Book],
    board: &mut BookWriter,
    health: &mut MdHealth,
    names: &[InstrumentName],
    now: i64,
) {
    let Message::Notification(n) = &inc.msg else { return };
    match &n.data {
        NotificationData::PlatformState(p) => health.on_platform_state(p.maintenance),
        NotificationData::Book(u) => {
            health.on_event(now, u.timestamp);
            let Some(slot) = names.iter().position(|n| n.as_str() == u.instrument_name) else {
                return;
            };
            let book = &mut books[slot];
            let applied = book.apply(u).is_ok();
            if applied || book.is_gapped() {
                board.publish(slot, &view_of(names[slot], book, now, book.is_gapped()));
            }
        }
        NotificationData::PriceIndex { index_name, price, timestamp } => {
            health.on_event(now, *timestamp);
            let p = Some(Price::from_raw(price.raw));
            match *index_name {
                "btc_usd" => board.set_index("BTC", p),
                "eth_usd" => board.set_index("ETH", p),
                _ => {}
            }
        }
        _ => {}
    }
}

impl Feed {
    fn new(
        cfg: &FeedConfig,
        board: BookWriter,
        clock: Arc<dyn Clock>,
        transport_clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            books: cfg.names.iter().map(|n| L2Book::new(n.as_str(), BOOK_DEPTH)).collect(),
            channels: cfg.names.iter().map(|n| format!("book.{}.100ms", n.as_str())).collect(),
            board,
            clock,
            transport_clock,
            health: MdHealth::default(),
        }
    }

    fn run(&mut self, cfg: &FeedConfig, stop: &StopFlag) {
        let mut attempt = 0_u64;
        while !stop.is_stopped() {
            match self.connect(cfg) {
                Ok(mut md) => {
                    attempt = 0;
                    self.board
                        .counters()
                        .connects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.board
                        .counters()
                        .connected
                        .store(true, std::sync::atomic::Ordering::Release);
                    let why = self.session(cfg, stop, &mut md);
                    self.board
                        .counters()
                        .connected
                        .store(false, std::sync::atomic::Ordering::Release);
                    md.close();
                    match why {
                        Ok(()) => break,
                        Err(e) => {
                            println!("reconnect: market data: {e} (run_id={})", cfg.run_id);
                            self.publish_all_gapped(&cfg.names);
                        }
                    }
                }
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(attempt, error = %e, "market-data connect failed; retrying");
                }
            }
            // Bounded pause, sliced so a stop is seen quickly.
            let pause = (100 * attempt).min(RECONNECT_PAUSE_MS_MAX);
            for _ in 0..pause / 10 {
                if stop.is_stopped() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn publish_all_gapped(&mut self, names: &[InstrumentName]) {
        let now = self.clock.now_ms();
        for (slot, book) in self.books.iter_mut().enumerate() {
            if book.is_live() {
                let stale = view_of(names[slot], book, now, true);
                self.board.publish(slot, &stale);
            }
            *book = L2Book::new(names[slot].as_str(), BOOK_DEPTH);
        }
    }

    fn connect(&mut self, cfg: &FeedConfig) -> Result<Connection, ConnError> {
        let mut md =
            Connection::connect(&ConnConfig::new(&cfg.url), Arc::clone(&self.transport_clock))?;
        let mut refs: Vec<&str> = self.channels.iter().map(String::as_str).collect();
        refs.push("deribit_price_index.btc_usd");
        refs.push("deribit_price_index.eth_usd");
        refs.push("platform_state");
        let Self { books, board, clock, health, .. } = self;
        let n = md.subscribe(&refs, Duration::from_secs(5), &mut |inc| {
            apply(&inc, books, board, health, &cfg.names, clock.now_ms());
        })?;
        if n != refs.len() {
            md.close();
            return Err(ConnError::UnexpectedReply);
        }
        Ok(md)
    }

    /// Polls until stopped (`Ok`) or the session dies (`Err`).
    fn session(
        &mut self,
        cfg: &FeedConfig,
        stop: &StopFlag,
        md: &mut Connection,
    ) -> Result<(), ConnError> {
        let slice = match cfg.wait {
            WaitStrategy::Spin => Duration::ZERO,
            WaitStrategy::SpinThenYield { .. } | WaitStrategy::SpinThenPark { .. } => {
                Duration::from_millis(20)
            }
        };
        while !stop.is_stopped() {
            let Self { books, board, clock, health, .. } = self;
            let names = &cfg.names;
            match md
                .poll(slice, &mut |inc| apply(&inc, books, board, health, names, clock.now_ms()))
            {
                Ok(_) => {}
                Err(ConnError::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.resubscribe_gapped(cfg, md)?;
        }
        Ok(())
    }

    /// Gap recovery: resubscribe the book's channel for a fresh snapshot.
    fn resubscribe_gapped(
        &mut self,
        cfg: &FeedConfig,
        md: &mut Connection,
    ) -> Result<(), ConnError> {
        for slot in 0..self.books.len() {
            if !self.books[slot].resubscribe_needed() {
                continue;
            }
            let ch = self.channels[slot].as_str();
            let _ = md.call(
                methods::PUBLIC_UNSUBSCRIBE,
                |b| {
                    b.str_array("channels", &[ch]);
                },
                Duration::from_secs(5),
                |_| Ok(()),
                &mut |_| {},
            );
            let Self { books, board, clock, health, .. } = self;
            md.subscribe(&[ch], Duration::from_secs(5), &mut |inc| {
                apply(&inc, books, board, health, &cfg.names, clock.now_ms());
            })?;
            self.books[slot].resubscribe_sent();
            self.board.counters().resubscribes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            println!("resubscribed: {ch} (run_id={})", cfg.run_id);
        }
        Ok(())
    }
}

/// How often the metrics pump copies the feed's counters into the metrics registry.
const METRICS_PUMP_PERIOD: Duration = Duration::from_millis(250);

/// A cold thread that reads the feed's atomics on its own schedule and exports them as the
/// `feed_to_strategy` ring's depth gauge and overflow counter (`/metrics`). Neither hot thread
/// is involved. Runs until `stop` is set.
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn_metrics_pump(
    counters: Arc<hotpath::ring::FeedCounters>,
    hot: hotpath::ring::SnapshotReader<super::hot_state::HotState>,
    metrics: Arc<coldpath::metrics::MetricsRegistry>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    use coldpath::metrics::RingId;
    use std::sync::atomic::Ordering;
    std::thread::Builder::new().name("stoic-metrics".into()).spawn(move || {
        let mut exported = 0_u64;
        // Overflow totals already added to the registry's counters, per ring.
        let mut rings_exported = [0_u64; RingId::ALL.len()];
        while !stop.load(Ordering::Relaxed) {
            // The trading thread's hot state, read through its seqlock (version 1 is the
            // empty initial value).
            let (version, state) = hot.read_versioned();
            if version > 1 {
                let m = super::hot_state::to_metrics(&state);
                for (ring, depth, overflow) in &m.rings {
                    metrics.set_ring_depth(*ring, *depth);
                    let seen = &mut rings_exported[*ring as usize];
                    metrics.add_ring_overflow(*ring, overflow.saturating_sub(*seen));
                    *seen = (*seen).max(*overflow);
                }
                metrics.set_engine_state(m);
            }
            metrics.set_ring_depth(RingId::FeedToStrategy, counters.ring_depth());
            let overflows = counters.notice_overflows.load(Ordering::Relaxed);
            for _ in exported..overflows {
                metrics.record_ring_overflow(RingId::FeedToStrategy);
            }
            exported = overflows;
            std::thread::sleep(METRICS_PUMP_PERIOD);
        }
    })
}
