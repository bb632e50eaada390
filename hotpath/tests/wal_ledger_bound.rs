//! The pre-sized intent ledger's overflow policy (docs/wal_format.md): at capacity, the next
//! `IntentRecorded` checkpoints first (pruning terminal entries); still full of open intents
//! ⇒ `WalError::LedgerFull`, a caller error (nothing written, writer usable). A restart
//! rebuilds the same ledger.

mod wal_common;

use hotpath::wal::{Record, SyncMode, Wal, WalConfig, WalError};
use wal_common::{intent, intent_bytes, label};

const CAPACITY: usize = 4;

fn cfg() -> WalConfig {
    WalConfig {
        segment_bytes: 1024 * 1024,
        sync_mode: SyncMode::PwriteFdatasync,
        write_buffer_bytes: 64 * 1024,
        ledger_entries: CAPACITY,
    }
}

#[test]
fn full_ledger_checkpoints_then_refuses_when_every_entry_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), cfg(), 1_000).unwrap();
    assert_eq!(wal.ledger().capacity(), CAPACITY);
    let labels: Vec<String> = (0..16).map(label).collect();
    let c = intent_bytes(1, 40);
    for i in 0..CAPACITY as u64 {
        wal.append(10, &intent(i, &labels[i as usize], &c)).unwrap();
    }
    assert!(wal.ledger().is_full());
    // Two of them end: the next intent checkpoints, prunes them, and fits.
    wal.append(11, &Record::Cancelled { intent_hash: 0x1000, filled_qty: 0 }).unwrap();
    wal.append(11, &Record::Abandoned { intent_hash: 0x1001, reason: "test" }).unwrap();
    let before = wal.appended_through();
    wal.append(12, &intent(4, &labels[4], &c)).unwrap();
    // A checkpoint record went in before the intent.
    assert_eq!(wal.appended_through(), before + 2);
    assert_eq!(wal.ledger().len(), 3);
    assert!(!wal.ledger().contains(0x1000) && wal.ledger().contains(0x1004));
    wal.append(12, &intent(5, &labels[5], &c)).unwrap();
    assert!(wal.ledger().is_full());
    // Every entry open: refused, nothing written, the writer still works.
    let at = wal.appended_through();
    let e = wal.append(13, &intent(6, &labels[6], &c)).unwrap_err();
    assert!(matches!(e, WalError::LedgerFull { open: 4, capacity: CAPACITY }), "{e:?}");
    assert!(e.is_caller_error());
    assert_eq!(wal.appended_through(), at);
    assert!(wal.poisoned().is_none());
    wal.append(13, &Record::Sent { intent_hash: 0x1002 }).unwrap();
    let _durable = wal.sync().unwrap();
    let live = wal.ledger().clone();
    let doubt: Vec<u64> = wal.ledger().in_doubt().map(|e| e.intent_hash).collect();
    assert_eq!(doubt, vec![0x1002, 0x1003, 0x1004, 0x1005], "journal order");
    drop(wal);
    // The restarted ledger equals the one that was running (replay prunes at the checkpoint).
    let (wal, report) = Wal::open(dir.path(), cfg(), 2_000).unwrap();
    assert_eq!(report.in_doubt, 4);
    assert_eq!(*wal.ledger(), live);
    assert_eq!(wal.ledger().in_doubt().map(|e| e.intent_hash).collect::<Vec<_>>(), doubt);
}

#[test]
fn unsized_ledger_grows() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) =
        Wal::open(dir.path(), WalConfig { ledger_entries: 0, ..cfg() }, 1_000).unwrap();
    let labels: Vec<String> = (0..100).map(label).collect();
    let c = intent_bytes(2, 40);
    for i in 0..100u64 {
        wal.append(10, &intent(i, &labels[i as usize], &c)).unwrap();
    }
    assert_eq!(wal.ledger().len(), 100);
    assert!(!wal.ledger().is_full());
    assert!((0..100u64).all(|i| wal.ledger().by_label(&labels[i as usize]).is_some()));
}
