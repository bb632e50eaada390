//! Helpers shared by the WAL integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use hotpath::wal::{Record, ReplayEvent, SyncMode, Wal, WalConfig, WalReader};

/// Small segments so tests stay fast and roll over often.
pub fn cfg(segment_bytes: u64, sync_mode: SyncMode) -> WalConfig {
    WalConfig { segment_bytes, sync_mode, write_buffer_bytes: 64 * 1024, ..WalConfig::default() }
}

pub fn open(dir: &Path, c: WalConfig) -> Wal {
    Wal::open(dir, c, 1_000).expect("open").0
}

/// Every record in the directory as (seq, offset, batch_first_seq, debug text), via the reader.
pub fn dump(dir: &Path) -> Vec<(u64, u64, u64, String)> {
    let reader = WalReader::open(dir).expect("reader");
    let mut out = Vec::new();
    reader
        .verify(&mut |ev| {
            if let ReplayEvent::Record { offset, header, record, .. } = ev {
                out.push((header.seq, offset, header.batch_first_seq(), format!("{record:?}")));
            }
        })
        .expect("verify");
    out
}

pub fn seg_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("wal-{index:016}.seg"))
}

pub fn label(i: u64) -> String {
    format!("s4:t:{i:x}")
}

/// An intent record with a payload of `canonical_len` bytes derived from `i`.
pub fn intent_bytes(i: u64, canonical_len: usize) -> Vec<u8> {
    (0..canonical_len).map(|k| (i as usize).wrapping_mul(31).wrapping_add(k) as u8).collect()
}

pub fn intent<'a>(i: u64, label: &'a str, canonical: &'a [u8]) -> Record<'a> {
    Record::IntentRecorded { intent_hash: 0x1000 + i, label, canonical }
}
