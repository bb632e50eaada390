//! Property tests: random record sizes round-trip; random truncation points are torn tails
//! that keep every complete record before them; random byte flips are always detected
//! (torn-tail truncation when nothing durable follows, otherwise an error naming segment and
//! offset); replay equals what was written.

mod wal_common;

use std::os::unix::fs::FileExt as _;

use hotpath::wal::{SyncMode, Wal, WalError};
use proptest::prelude::*;
use wal_common::{cfg, dump, intent, intent_bytes, label, open, seg_path};

/// One segment large enough for every generated log.
const SEG: u64 = 512 * 1024;

/// Writes intents of the given canonical sizes, syncing after those flagged; returns the
/// dump (seq, offset, batch_first_seq, text) and the end offset of the data.
fn write_log(
    dir: &std::path::Path,
    mode: SyncMode,
    recs: &[(usize, bool)],
) -> (Vec<(u64, u64, u64, String)>, u64) {
    let mut wal = open(dir, cfg(SEG, mode));
    let labels: Vec<String> = (0..recs.len() as u64).map(label).collect();
    for (i, &(len, sync)) in recs.iter().enumerate() {
        let c = intent_bytes(i as u64, len);
        wal.append(i as i64, &intent(i as u64, &labels[i], &c)).unwrap();
        if sync {
            let _ = wal.sync().unwrap();
        }
    }
    let _ = wal.sync().unwrap();
    drop(wal);
    let d = dump(dir);
    let last = d.last().unwrap();
    let last_len = recs.last().unwrap().0;
    let end = last.1
        + hotpath::wal::format::framed_len(8 + 2 + labels[recs.len() - 1].len() + 2 + last_len)
            as u64;
    (d, end)
}

fn expected_texts(n: usize, recs: &[(usize, bool)]) -> Vec<String> {
    (0..n)
        .map(|i| {
            let l = label(i as u64);
            let c = intent_bytes(i as u64, recs[i].0);
            format!("{:?}", intent(i as u64, &l, &c))
        })
        .collect()
}

fn recs_strategy() -> impl Strategy<Value = Vec<(usize, bool)>> {
    prop::collection::vec((0usize..1500, prop::bool::weighted(0.3)), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn random_sizes_round_trip(recs in recs_strategy(), mmap in any::<bool>()) {
        let mode = if mmap { SyncMode::MmapMsync } else { SyncMode::PwriteFdatasync };
        let dir = tempfile::tempdir().unwrap();
        let (d, _) = write_log(dir.path(), mode, &recs);
        let texts: Vec<String> = d.iter().map(|r| r.3.clone()).collect();
        prop_assert_eq!(texts, expected_texts(recs.len(), &recs));
        prop_assert!(d.iter().enumerate().all(|(i, r)| r.0 == i as u64 + 1));
        let (wal, r) = Wal::open(dir.path(), cfg(SEG, mode), 0).unwrap();
        prop_assert_eq!(r.last_seq, recs.len() as u64);
        prop_assert_eq!(wal.ledger().len(), recs.len());
    }

    #[test]
    fn random_truncation_is_a_torn_tail(recs in recs_strategy(), cut_frac in 0.0f64..1.0) {
        let dir = tempfile::tempdir().unwrap();
        let (d, end) = write_log(dir.path(), SyncMode::PwriteFdatasync, &recs);
        let cut = 64 + ((end - 64) as f64 * cut_frac) as u64;
        let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 0)).unwrap();
        f.write_all_at(&vec![0u8; (end - cut) as usize], cut).unwrap();
        drop(f);
        // Complete records are those whose header + payload end at or before the cut: the
        // alignment padding after a payload is zero already, so zeroing it loses nothing.
        let unpadded_ends: Vec<u64> = recs
            .iter()
            .enumerate()
            .map(|(i, &(len, _))| {
                let payload = 8 + 2 + label(i as u64).len() + 2 + len;
                d[i].1 + (hotpath::wal::format::RECORD_HEADER_BYTES + payload) as u64
            })
            .collect();
        let complete = unpadded_ends.iter().filter(|&&e| e <= cut).count();
        let (wal, r) = Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0).unwrap();
        prop_assert_eq!(r.last_seq, complete as u64);
        prop_assert_eq!(wal.ledger().len(), complete);
        // No torn tail when the cut left no byte of the first incomplete record behind.
        let at_boundary = complete == recs.len() || cut <= d[complete].1;
        prop_assert_eq!(r.torn_tail.is_none(), at_boundary);
        if let Some(t) = &r.torn_tail {
            prop_assert_eq!(t.offset, d[complete].1);
        }
        drop(wal);
        let texts: Vec<String> = dump(dir.path()).into_iter().map(|r| r.3).collect();
        prop_assert_eq!(texts, expected_texts(complete, &recs));
    }

    #[test]
    fn random_byte_flips_are_always_detected(recs in recs_strategy(), pos_frac in 0.0f64..1.0, bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let (d, end) = write_log(dir.path(), SyncMode::PwriteFdatasync, &recs);
        // Anywhere in the data or in the first 64 zero bytes after it.
        let pos = 64 + ((end + 64 - 64) as f64 * pos_frac) as u64;
        let f = std::fs::OpenOptions::new().read(true).write(true).open(seg_path(dir.path(), 0)).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, pos).unwrap();
        f.write_all_at(&[b[0] ^ (1 << bit)], pos).unwrap();
        drop(f);
        let res = Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0);
        if pos >= end {
            // Garbage after the end of data, nothing valid after it: torn tail, all records kept.
            let (_, r) = res.unwrap();
            prop_assert_eq!(r.last_seq, recs.len() as u64);
            prop_assert_eq!(r.torn_tail.unwrap().offset, end);
        } else {
            let k = d.iter().rposition(|r| r.1 <= pos).unwrap();
            let bad_seq = d[k].0;
            let durable_after = d[k + 1..].iter().any(|r| r.2 > bad_seq);
            match res {
                Ok((wal, r)) => {
                    prop_assert!(!durable_after, "flip at {} accepted although later batches follow", pos);
                    prop_assert_eq!(r.torn_tail.unwrap().offset, d[k].1);
                    prop_assert_eq!(r.last_seq, k as u64);
                    prop_assert_eq!(wal.ledger().len(), k);
                }
                Err(WalError::Corrupt { segment, offset, .. }) => {
                    prop_assert!(durable_after);
                    prop_assert_eq!(segment, seg_path(dir.path(), 0));
                    prop_assert_eq!(offset, d[k].1);
                }
                Err(other) => prop_assert!(false, "unexpected error {}", other),
            }
        }
    }
}
