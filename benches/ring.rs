//! Ring hop and publication costs: an `rtrb` round trip between two threads against a
//! crossbeam bounded channel round trip in the same run (ratio printed at the end), the
//! seqlock snapshot read/publish, and the TradingMode cell read.
//!
//! `cargo bench --bench ring`. The echo thread busy-spins: two spinning threads, so run it
//! on a quiet machine (on a 2-vCPU guest shared with other work the numbers are noisy).

use criterion::{BenchmarkId, Criterion};
use hotpath::mode::{ReasonSet, TradingModeCell};
use hotpath::ring::Snapshot;
use std::hint::black_box;
use std::time::{Duration, Instant};

const STOP: u64 = u64::MAX;

/// A ping-pong pair over two rtrb rings; the echo thread spins and sends every value back.
struct RtrbPair {
    to_echo: rtrb::Producer<u64>,
    from_echo: rtrb::Consumer<u64>,
    echo: Option<std::thread::JoinHandle<()>>,
}

impl RtrbPair {
    fn new() -> Self {
        let (to_echo, mut echo_rx) = rtrb::RingBuffer::<u64>::new(64);
        let (mut echo_tx, from_echo) = rtrb::RingBuffer::<u64>::new(64);
        let echo = std::thread::spawn(move || loop {
            if let Ok(v) = echo_rx.pop() {
                if v == STOP {
                    return;
                }
                while echo_tx.push(v).is_err() {
                    std::hint::spin_loop();
                }
            } else {
                std::hint::spin_loop();
            }
        });
        Self { to_echo, from_echo, echo: Some(echo) }
    }

    fn round_trips(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        for i in 0..n {
            while self.to_echo.push(i).is_err() {
                std::hint::spin_loop();
            }
            loop {
                if let Ok(v) = self.from_echo.pop() {
                    assert_eq!(v, i);
                    break;
                }
                std::hint::spin_loop();
            }
        }
        start.elapsed()
    }
}

impl Drop for RtrbPair {
    fn drop(&mut self) {
        while self.to_echo.push(STOP).is_err() {
            std::hint::spin_loop();
        }
        if let Some(echo) = self.echo.take() {
            echo.join().expect("echo thread");
        }
    }
}

/// The same ping-pong over two crossbeam bounded channels (blocking send/recv).
struct CrossbeamPair {
    to_echo: crossbeam::channel::Sender<u64>,
    from_echo: crossbeam::channel::Receiver<u64>,
    echo: Option<std::thread::JoinHandle<()>>,
}

impl CrossbeamPair {
    fn new() -> Self {
        let (to_echo, echo_rx) = crossbeam::channel::bounded::<u64>(64);
        let (echo_tx, from_echo) = crossbeam::channel::bounded::<u64>(64);
        let echo = std::thread::spawn(move || {
            while let Ok(v) = echo_rx.recv() {
                if v == STOP {
                    return;
                }
                echo_tx.send(v).expect("bench side alive");
            }
        });
        Self { to_echo, from_echo, echo: Some(echo) }
    }

    fn round_trips(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        for i in 0..n {
            self.to_echo.send(i).expect("echo alive");
            assert_eq!(self.from_echo.recv().expect("echo alive"), i);
        }
        start.elapsed()
    }
}

impl Drop for CrossbeamPair {
    fn drop(&mut self) {
        let _ = self.to_echo.send(STOP);
        if let Some(echo) = self.echo.take() {
            echo.join().expect("echo thread");
        }
    }
}

fn ring_hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_hop_round_trip");
    {
        let mut pair = RtrbPair::new();
        group.bench_function(BenchmarkId::new("rtrb", "spin"), |b| {
            b.iter_custom(|n| pair.round_trips(n));
        });
    }
    {
        let mut pair = CrossbeamPair::new();
        group.bench_function(BenchmarkId::new("crossbeam_bounded", "blocking"), |b| {
            b.iter_custom(|n| pair.round_trips(n));
        });
    }
    group.finish();
}

fn publication(c: &mut Criterion) {
    let mut group = c.benchmark_group("publication");
    let (mut writer, reader) = Snapshot::new([0u64; 4]);
    let mut n = 0u64;
    group.bench_function("seqlock_publish_32B", |b| {
        b.iter(|| {
            n += 1;
            writer.publish(black_box([n; 4]));
        });
    });
    group.bench_function("seqlock_read_32B", |b| b.iter(|| black_box(reader.read())));
    let cell = TradingModeCell::with_reasons(ReasonSet::EMPTY);
    group.bench_function("mode_cell_read", |b| b.iter(|| black_box(black_box(&cell).mode())));
    group.finish();
}

/// One fixed-size run of each hop, back to back, so the ratio compares like with like.
fn report_ratio() {
    const TRIPS: u64 = 200_000;
    let rtrb = {
        let mut pair = RtrbPair::new();
        pair.round_trips(TRIPS / 10);
        pair.round_trips(TRIPS)
    };
    let crossbeam = {
        let mut pair = CrossbeamPair::new();
        pair.round_trips(TRIPS / 10);
        pair.round_trips(TRIPS)
    };
    let per = |d: Duration| d.as_secs_f64() * 1e9 / TRIPS as f64;
    println!(
        "ring hop round trip over {TRIPS}: rtrb {:.0} ns, crossbeam bounded {:.0} ns, ratio crossbeam/rtrb {:.2}",
        per(rtrb),
        per(crossbeam),
        crossbeam.as_secs_f64() / rtrb.as_secs_f64()
    );
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    ring_hop(&mut c);
    publication(&mut c);
    report_ratio();
    c.final_summary();
}
