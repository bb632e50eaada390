//! The `wal_after_append_before_sync` crash point: with the `failpoints` feature the test
//! re-runs itself as a child with `STOIC_FAILPOINT` set, the child is SIGKILLed inside `sync`,
//! and the parent checks that the unsynced record is gone and the synced one is kept.
//! Without the feature the crash point must be compiled out.

mod wal_common;

use hotpath::wal::failpoint;

#[cfg(not(feature = "failpoints"))]
#[test]
fn failpoints_are_compiled_out_without_the_feature() {
    assert!(!failpoint::enabled());
    std::env::set_var(failpoint::ENV_VAR, "wal_after_append_before_sync");
    // Would SIGKILL this test process if compiled in.
    failpoint::hit("wal_after_append_before_sync");
    let dir = tempfile::tempdir().unwrap();
    let mut wal = wal_common::open(
        dir.path(),
        wal_common::cfg(16 * 1024, hotpath::wal::SyncMode::PwriteFdatasync),
    );
    let l = wal_common::label(1);
    wal.append(1, &wal_common::intent(1, &l, b"x")).unwrap();
    assert_eq!(wal.sync().unwrap().seq(), 1);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_after_append_before_sync_loses_only_the_unsynced_record() {
    use std::os::unix::process::ExitStatusExt as _;

    use hotpath::wal::{SyncMode, Wal};

    const CHILD_DIR: &str = "WAL_FAILPOINT_CHILD_DIR";
    let c = wal_common::cfg(16 * 1024, SyncMode::PwriteFdatasync);
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        // Child: the parent already made intent 0 durable; append intent 1, then the sync is
        // killed at the crash point before anything reaches the file.
        let dir = std::path::PathBuf::from(dir);
        let mut wal = wal_common::open(&dir, c);
        let l1 = wal_common::label(1);
        wal.append(2, &wal_common::intent(1, &l1, b"lost")).unwrap();
        let _ = wal.sync();
        unreachable!("the failpoint must have killed this process");
    }
    let dir = tempfile::tempdir().unwrap();
    // The parent makes one record durable; the child's first sync is the killed one.
    {
        let mut wal = wal_common::open(dir.path(), c);
        let l0 = wal_common::label(0);
        wal.append(1, &wal_common::intent(0, &l0, b"durable")).unwrap();
        let _ = wal.sync().unwrap();
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_after_append_before_sync_loses_only_the_unsynced_record",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .env(failpoint::ENV_VAR, "wal_after_append_before_sync")
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "child must die by SIGKILL, got {status:?}");
    let (wal, r) = Wal::open(dir.path(), c, 0).unwrap();
    assert_eq!(r.last_seq, 1, "only the record synced before the crash survives");
    assert!(wal.ledger().contains(0x1000) && !wal.ledger().contains(0x1001));
}
