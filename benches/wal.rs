//! WAL benchmarks, one run, one table (numbers go to docs/wal_format.md):
//! - durable append latency (append one ~256 B intent record + sync) p50/p99/p99.9 against a
//!   raw `pwrite`+`fdatasync` of 256 B on a pre-zeroed preallocated file, in the same run;
//! - the two sync modes: pwrite+fdatasync vs writes into the mapping + msync(MS_SYNC);
//! - group-commit throughput at 1 / 8 / 64 records per sync;
//! - recovery time per GiB: full verification scan and checkpointed start-up, with the page
//!   cache dropped for the segment files (posix_fadvise DONTNEED), extrapolated from the size
//!   written;
//! - a criterion micro-benchmark of the CPU cost of encoding + sealing one frame.
//!
//! Files live under `target/wal-bench` (same filesystem as the repository, not tmpfs).
//! `WAL_BENCH_QUICK=1` shrinks every count (smoke run).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::Criterion;
use hdrhistogram::Histogram;
use hotpath::wal::format::{framed_len, seal_frame, RECORD_HEADER_BYTES};
use hotpath::wal::{Record, SyncMode, Wal, WalConfig, WalReader};

const RECORD_BYTES: usize = 256;
const LABEL: &str = "s4:churn:g0001:l0:0123456789abcdef0123456";

fn canonical_len() -> usize {
    // header 32 + hash 8 + (2 + label) + (2 + canonical) = 256
    RECORD_BYTES - RECORD_HEADER_BYTES - 8 - 2 - LABEL.len() - 2
}

fn bench_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("wal-bench");
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("create bench dir");
    p
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("histogram")
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

struct Row {
    name: String,
    h: Histogram<u64>,
}

fn us(v: u64) -> f64 {
    v as f64 / 1000.0
}

/// Raw floor: pwrite 256 B at successive offsets of a pre-zeroed, fsynced file + fdatasync.
fn raw_pwrite(dir: &Path, n: usize) -> Histogram<u64> {
    let path = dir.join("raw.bin");
    let bytes = (n * RECORD_BYTES + 4096) as u64;
    let mut f =
        OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let k = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..k]).unwrap();
        left -= k as u64;
    }
    f.sync_all().unwrap();
    let rec = [0x5au8; RECORD_BYTES];
    let mut h = hist();
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&rec, (i * RECORD_BYTES) as u64).unwrap();
        f.sync_data().unwrap();
        h.record(ns(t.elapsed())).unwrap();
    }
    h
}

/// Raw floor for the other mode: copy 256 B into a shared mapping + msync(MS_SYNC) of its pages.
fn raw_msync(dir: &Path, n: usize) -> Histogram<u64> {
    let path = dir.join("raw_map.bin");
    let bytes = (n * RECORD_BYTES + 4096) as u64;
    let mut f =
        OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.write_all(&vec![0u8; bytes as usize]).unwrap();
    f.sync_all().unwrap();
    let len = bytes as usize;
    // SAFETY: maps `len` bytes of a file this function just created and sized, in a private
    // bench directory; nothing else writes or truncates it while it is mapped.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap failed");
    // SAFETY: `base` maps `len` writable bytes (checked above) and is unmapped only below,
    // after the last use of `m`.
    let m = unsafe { std::slice::from_raw_parts_mut(base.cast::<u8>(), len) };
    let mut h = hist();
    for i in 0..n {
        let t = Instant::now();
        let off = i * RECORD_BYTES;
        m[off..off + RECORD_BYTES].fill(0x5a);
        let page = off & !4095;
        // SAFETY: msync over pages inside the mapping established above.
        let rc = unsafe {
            libc::msync(
                base.cast::<u8>().add(page).cast(),
                off + RECORD_BYTES - page,
                libc::MS_SYNC,
            )
        };
        assert_eq!(rc, 0, "msync failed");
        h.record(ns(t.elapsed())).unwrap();
    }
    // SAFETY: unmaps exactly the mapping created above; `m` is not used after this.
    unsafe {
        libc::munmap(base, len);
    }
    h
}

fn wal_cfg(mode: SyncMode, segment_bytes: u64) -> WalConfig {
    WalConfig { segment_bytes, sync_mode: mode, ..WalConfig::default() }
}

/// Durable append: append one intent record + sync, timed together.
fn durable_append(dir: &Path, mode: SyncMode, n: usize) -> Histogram<u64> {
    let (mut wal, _) = Wal::open(dir, wal_cfg(mode, 64 << 20), 0).unwrap();
    wal.prepare_spare().unwrap();
    let canonical = vec![0xc3u8; canonical_len()];
    let mut h = hist();
    for i in 0..n as u64 {
        let rec = Record::IntentRecorded {
            intent_hash: i + 1,
            label: &label_for(i),
            canonical: &canonical,
        };
        let t = Instant::now();
        let seq = wal.append(i as i64, &rec).unwrap();
        let d = wal.sync().unwrap();
        let dt = t.elapsed();
        assert!(d.covers(seq));
        h.record(ns(dt)).unwrap();
    }
    h
}

/// Labels must be unique per intent; same length as LABEL so every record is 256 B.
fn label_for(i: u64) -> String {
    let s = format!("s4:churn:g0001:l0:{i:023x}");
    debug_assert_eq!(s.len(), LABEL.len());
    s
}

/// Records per second at `batch` records per sync.
fn group_commit(dir: &Path, batch: usize, records: usize) -> f64 {
    let (mut wal, _) = Wal::open(dir, wal_cfg(SyncMode::PwriteFdatasync, 64 << 20), 0).unwrap();
    wal.prepare_spare().unwrap();
    let canonical = vec![0xc3u8; canonical_len()];
    let labels: Vec<String> = (0..records as u64).map(label_for).collect();
    let t = Instant::now();
    let mut i = 0usize;
    while i < records {
        for _ in 0..batch.min(records - i) {
            let rec = Record::IntentRecorded {
                intent_hash: i as u64 + 1,
                label: &labels[i],
                canonical: &canonical,
            };
            wal.append(0, &rec).unwrap();
            i += 1;
        }
        let _ = wal.sync().unwrap();
    }
    records as f64 / t.elapsed().as_secs_f64()
}

fn drop_cache(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            let f = std::fs::File::open(&p).unwrap();
            // SAFETY: posix_fadvise on an open descriptor; advisory only, no memory involved.
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

struct Recovery {
    bytes: u64,
    records: u64,
    verify_s: f64,
    open_s: f64,
    open_bytes: u64,
}

/// Writes `mib` MiB of 256 B intent life cycles (64 per sync), then times a cold full verify
/// and a cold checkpointed open.
fn recovery(dir: &Path, mib: u64) -> Recovery {
    let (mut wal, _) = Wal::open(dir, wal_cfg(SyncMode::PwriteFdatasync, 64 << 20), 0).unwrap();
    let canonical = vec![0xc3u8; canonical_len()];
    let target = mib << 20;
    let mut i = 0u64;
    let mut written = 0u64;
    while written < target {
        for _ in 0..64 {
            let rec = Record::IntentRecorded {
                intent_hash: i + 1,
                label: &label_for(i),
                canonical: &canonical,
            };
            wal.append(0, &rec).unwrap();
            // Most intents finish; one in 64 stays open (in doubt at restart).
            if i % 64 != 0 {
                wal.append(0, &Record::Filled { intent_hash: i + 1, filled_qty: 1, trade_id: "t" })
                    .unwrap();
                written += 56;
            }
            written += RECORD_BYTES as u64;
            i += 1;
        }
        let _ = wal.sync().unwrap();
    }
    drop(wal);
    drop_cache(dir);
    let t = Instant::now();
    let v = WalReader::open(dir).unwrap().verify(&mut |_| {}).unwrap();
    let verify_s = t.elapsed().as_secs_f64();
    drop_cache(dir);
    let t = Instant::now();
    let (_, r) = Wal::open(dir, wal_cfg(SyncMode::PwriteFdatasync, 64 << 20), 0).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    Recovery { bytes: v.bytes, records: v.records, verify_s, open_s, open_bytes: r.bytes_scanned }
}

fn criterion_encode(c: &mut Criterion) {
    let canonical = vec![0xc3u8; canonical_len()];
    let rec = Record::IntentRecorded { intent_hash: 7, label: LABEL, canonical: &canonical };
    let plen = rec.payload_len().unwrap();
    let mut frame = vec![0u8; framed_len(plen)];
    assert_eq!(frame.len(), RECORD_BYTES);
    c.bench_function("wal_encode_seal_256B_frame", |b| {
        let mut seq = 0u64;
        b.iter(|| {
            seq += 1;
            rec.encode_payload(&mut frame[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + plen]);
            seal_frame(&mut frame, plen, seq, 0, 0, 1);
            std::hint::black_box(&frame);
        });
    });
}

fn main() {
    let quick = std::env::var_os("WAL_BENCH_QUICK").is_some();
    let n = if quick { 200 } else { 2000 };
    let root = bench_root();

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    criterion_encode(&mut c);
    c.final_summary();

    let mk = |name: &str| {
        let p = root.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    // Interleave the pairs so disk-level noise (other tenants) hits both sides alike.
    let mut rows: Vec<Row> = Vec::new();
    let raw_p = raw_pwrite(&mk("raw"), n);
    let wal_p = durable_append(&mk("wal_pwrite"), SyncMode::PwriteFdatasync, n);
    let raw_m = raw_msync(&mk("rawm"), n);
    let wal_m = durable_append(&mk("wal_mmap"), SyncMode::MmapMsync, n);
    rows.push(Row { name: "raw pwrite+fdatasync 256 B (pre-zeroed)".into(), h: raw_p });
    rows.push(Row { name: "WAL append+sync 256 B, pwrite+fdatasync".into(), h: wal_p });
    rows.push(Row { name: "raw memcpy+msync(MS_SYNC) 256 B".into(), h: raw_m });
    rows.push(Row { name: "WAL append+sync 256 B, mmap+msync".into(), h: wal_m });

    println!();
    println!("WAL durable append latency, {n} samples each (µs)");
    println!("{:<44} {:>9} {:>9} {:>9} {:>9}", "case", "p50", "p99", "p99.9", "max");
    for r in &rows {
        println!(
            "{:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            r.name,
            us(r.h.value_at_quantile(0.50)),
            us(r.h.value_at_quantile(0.99)),
            us(r.h.value_at_quantile(0.999)),
            us(r.h.max())
        );
    }
    let ratio = |a: &Histogram<u64>, b: &Histogram<u64>, q: f64| {
        a.value_at_quantile(q) as f64 / b.value_at_quantile(q) as f64
    };
    println!(
        "ratio WAL(pwrite)/raw pwrite:  p50 {:.2}x  p99 {:.2}x  p99.9 {:.2}x   (goal: p99 <= 1.2x)",
        ratio(&rows[1].h, &rows[0].h, 0.5),
        ratio(&rows[1].h, &rows[0].h, 0.99),
        ratio(&rows[1].h, &rows[0].h, 0.999)
    );
    println!(
        "ratio WAL(mmap)/WAL(pwrite):   p50 {:.2}x  p99 {:.2}x  p99.9 {:.2}x",
        ratio(&rows[3].h, &rows[1].h, 0.5),
        ratio(&rows[3].h, &rows[1].h, 0.99),
        ratio(&rows[3].h, &rows[1].h, 0.999)
    );

    println!();
    println!("Group commit (pwrite+fdatasync, 256 B records)");
    let base = if quick { 500 } else { 2000 };
    let mut tput = Vec::new();
    for (batch, records) in [(1usize, base), (8, base * 4), (64, base * 16)] {
        let r = group_commit(&mk(&format!("gc{batch}")), batch, records);
        println!("  batch {batch:>2}: {r:>10.0} records/s  ({records} records)");
        tput.push(r);
    }
    println!(
        "  speed-up vs batch 1: x{:.1} (8), x{:.1} (64)",
        tput[1] / tput[0],
        tput[2] / tput[0]
    );

    println!();
    let mib = if quick { 16 } else { 128 };
    let rec = recovery(&mk("recovery"), mib);
    let gib = rec.bytes as f64 / f64::from(1u32 << 30);
    println!("Recovery (page cache dropped with POSIX_FADV_DONTNEED; {mib} MiB written, extrapolated per GiB)");
    println!(
        "  full verify (all segments): {:.3} s for {:.1} MiB / {} records  => {:.2} s per GiB",
        rec.verify_s,
        rec.bytes as f64 / f64::from(1u32 << 20),
        rec.records,
        rec.verify_s / gib
    );
    println!(
        "  Wal::open (newest checkpoint): {:.3} s, scanned {:.1} MiB (bounded by one segment, not by history)",
        rec.open_s,
        rec.open_bytes as f64 / f64::from(1u32 << 20)
    );
    let _ = std::fs::remove_dir_all(&root);
}
