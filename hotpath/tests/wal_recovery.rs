//! WAL behaviour through the public API: round trips, durability tokens, torn tails,
//! corruption, roll-over + checkpoint + restart, ledger rebuild, failure paths.

mod wal_common;

use std::os::unix::fs::FileExt as _;

use hotpath::wal::{
    IntentState, OperatorActionKind, Record, SyncMode, Wal, WalError, WalFaults, WalReader,
};
use wal_common::{cfg, dump, intent, intent_bytes, label, open, seg_path};

const SEG: u64 = 16 * 1024;

fn both_modes(f: impl Fn(SyncMode)) {
    f(SyncMode::PwriteFdatasync);
    f(SyncMode::MmapMsync);
}

#[test]
fn round_trip_and_durable_token() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path(), cfg(SEG, mode));
        let labels: Vec<String> = (0..20).map(label).collect();
        let mut last = 0;
        for i in 0..20u64 {
            let c = intent_bytes(i, (i as usize * 13) % 300);
            last = wal.append(5 + i as i64, &intent(i, &labels[i as usize], &c)).unwrap();
            assert_eq!(wal.durable_through(), 0, "nothing is durable before sync");
        }
        assert_eq!(wal.appended_through(), last);
        let d = wal.sync().unwrap();
        assert!(d.covers(last) && wal.durable_through() == last);
        // A sync with nothing pending returns the same token.
        assert_eq!(wal.sync().unwrap(), d);
        wal.append(99, &Record::Sent { intent_hash: 0x1000 }).unwrap();
        wal.append(
            99,
            &Record::OperatorAction {
                action: OperatorActionKind::EmergencyReduceOnly,
                who: "ops",
                reason: "drill",
            },
        )
        .unwrap();
        let _ = wal.sync().unwrap();
        drop(wal);
        let recs = dump(dir.path());
        assert_eq!(recs.len(), 22);
        for (i, r) in recs.iter().take(20).enumerate() {
            let c = intent_bytes(i as u64, (i * 13) % 300);
            assert_eq!(r.3, format!("{:?}", intent(i as u64, &labels[i], &c)));
            assert_eq!(r.0, i as u64 + 1);
        }
        let (wal, report) = Wal::open(dir.path(), cfg(SEG, mode), 0).unwrap();
        assert_eq!(report.last_seq, 22);
        assert!(report.torn_tail.is_none());
        assert_eq!(wal.ledger().get(0x1000).unwrap().state, IntentState::Sent);
        assert_eq!(wal.ledger().in_doubt_len(), 20);
        assert_eq!(wal.ledger().counts().operator_actions, 1);
    });
}

#[test]
fn unsynced_records_are_lost_synced_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync));
    let l0 = label(0);
    let l1 = label(1);
    wal.append(1, &intent(0, &l0, b"a")).unwrap();
    let _ = wal.sync().unwrap();
    wal.append(2, &intent(1, &l1, b"b")).unwrap();
    // Dropped without sync: in pwrite mode the staged frame never reached the file.
    drop(wal);
    let (wal, r) = Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0).unwrap();
    assert_eq!(r.last_seq, 1);
    assert!(wal.ledger().contains(0x1000) && !wal.ledger().contains(0x1001));
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path(), cfg(SEG, mode));
        let labels: Vec<String> = (0..6).map(label).collect();
        for i in 0..6u64 {
            wal.append(1, &intent(i, &labels[i as usize], &[7u8; 100])).unwrap();
            if i == 3 {
                let _ = wal.sync().unwrap();
            }
        }
        let _ = wal.sync().unwrap();
        drop(wal);
        let recs = dump(dir.path());
        let cut = recs[4].1 + 40; // inside record 5's payload
        let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 0)).unwrap();
        f.write_all_at(&vec![0u8; 4096], cut).unwrap();
        drop(f);
        // verify reports it without changing anything
        let v = WalReader::open(dir.path()).unwrap().verify(&mut |_| {}).unwrap();
        assert_eq!(v.torn_tail.as_ref().unwrap().offset, recs[4].1);
        assert_eq!(v.records, 4);
        let (wal, r) = Wal::open(dir.path(), cfg(SEG, mode), 0).unwrap();
        let t = r.torn_tail.expect("torn tail reported");
        assert_eq!((t.offset, r.last_seq), (recs[4].1, 4));
        assert_eq!(wal.ledger().len(), 4);
        drop(wal);
        // Truncated means zeroed: the next open is clean.
        let (mut wal, r) = Wal::open(dir.path(), cfg(SEG, mode), 0).unwrap();
        assert!(r.torn_tail.is_none());
        // And the log continues with the next sequence number at the cut.
        assert_eq!(wal.append(1, &intent(4, &labels[4], b"x")).unwrap(), 5);
        let _ = wal.sync().unwrap();
    });
}

#[test]
fn corruption_before_a_later_batch_is_an_error_naming_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync));
    let labels: Vec<String> = (0..4).map(label).collect();
    for i in 0..4u64 {
        wal.append(1, &intent(i, &labels[i as usize], &[1u8; 50])).unwrap();
        let _ = wal.sync().unwrap(); // one batch per record
    }
    drop(wal);
    let recs = dump(dir.path());
    let f =
        std::fs::OpenOptions::new().read(true).write(true).open(seg_path(dir.path(), 0)).unwrap();
    let mut b = [0u8; 1];
    let at = recs[1].1 + 45;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], at).unwrap();
    drop(f);
    for err in [
        Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0).unwrap_err(),
        WalReader::open(dir.path()).unwrap().verify(&mut |_| {}).unwrap_err(),
    ] {
        match &err {
            WalError::Corrupt { segment, offset, valid_after, .. } => {
                assert_eq!(segment, &seg_path(dir.path(), 0));
                assert_eq!(*offset, recs[1].1);
                assert_eq!(valid_after.as_ref().unwrap().1, recs[2].1);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("wal-0000000000000000.seg") && msg.contains(&recs[1].1.to_string()),
            "{msg}"
        );
    }
}

#[test]
fn torn_batch_with_valid_later_record_of_the_same_batch_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync));
    let labels: Vec<String> = (0..5).map(label).collect();
    wal.append(1, &intent(0, &labels[0], b"first")).unwrap();
    let _ = wal.sync().unwrap();
    for i in 1..5u64 {
        wal.append(1, &intent(i, &labels[i as usize], &[3u8; 64])).unwrap();
    }
    let _ = wal.sync().unwrap();
    drop(wal);
    let recs = dump(dir.path());
    // Damage record 2 of the 4-record batch; records 3 and 4 (same batch) stay valid: the
    // disk wrote the batch's pages out of order and the machine died before fdatasync returned.
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 0)).unwrap();
    f.write_all_at(&[0xff; 8], recs[2].1 + 36).unwrap();
    drop(f);
    let (wal, r) = Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0).unwrap();
    assert_eq!(r.torn_tail.unwrap().offset, recs[2].1);
    assert_eq!(r.last_seq, 2);
    assert_eq!(wal.ledger().len(), 2);
}

/// Writes `n` intents with mixed life cycles; those with `i % open_every == 3` stay open.
fn churn(wal: &mut Wal, labels: &[String], n: u64, open_every: u64, canonical_len: usize) {
    for i in 0..n {
        let h = 0x1000 + i;
        wal.append(i as i64, &intent(i, &labels[i as usize], &intent_bytes(i, canonical_len)))
            .unwrap();
        wal.append(i as i64, &Record::Sent { intent_hash: h }).unwrap();
        match i % open_every {
            0 => {
                wal.append(
                    i as i64,
                    &Record::Filled { intent_hash: h, filled_qty: 3, trade_id: "t" },
                )
                .unwrap();
            }
            1 => {
                wal.append(i as i64, &Record::Acknowledged { intent_hash: h, venue_order_id: "o" })
                    .unwrap();
                wal.append(i as i64, &Record::Cancelled { intent_hash: h, filled_qty: 0 }).unwrap();
            }
            3 => {
                wal.append(
                    i as i64,
                    &Record::PartiallyFilled { intent_hash: h, filled_qty: 1, trade_id: "p" },
                )
                .unwrap();
            }
            _ => {
                wal.append(i as i64, &Record::Abandoned { intent_hash: h, reason: "absent" })
                    .unwrap();
            }
        }
        if i % 7 == 0 {
            let _ = wal.sync().unwrap();
        }
    }
    let _ = wal.sync().unwrap();
}

#[test]
fn roll_over_checkpoint_restart_and_retention() {
    both_modes(|mode| {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(32 * 1024, mode);
        let mut wal = open(dir.path(), c);
        let labels: Vec<String> = (0..600).map(label).collect();
        churn(&mut wal, &labels, 600, 8, 16);
        let segs = wal.segment_index();
        assert!(segs >= 3, "expected several roll-overs, got {segs}");
        let live: Vec<_> = wal.ledger().iter().cloned().collect();
        let live_doubt: Vec<u64> = wal.ledger().in_doubt().map(|e| e.intent_hash).collect();
        assert_eq!(live_doubt.len(), 75);
        drop(wal);
        // Old segments are all retained.
        for s in 0..=segs {
            assert!(seg_path(dir.path(), s).exists(), "segment {s} missing");
        }
        let (wal, r) = Wal::open(dir.path(), c, 0).unwrap();
        assert!(r.from_checkpoint);
        assert_eq!(r.replay_from_segment, segs, "start-up reads from the newest checkpoint");
        assert_eq!(r.in_doubt, 75);
        let back: Vec<_> = wal.ledger().iter().cloned().collect();
        assert_eq!(back, live, "restarted ledger equals the running one");
        assert_eq!(wal.ledger().in_doubt().map(|e| e.intent_hash).collect::<Vec<_>>(), live_doubt);
        // The full verification replays everything and cross-checks every checkpoint.
        drop(wal);
        let v = WalReader::open(dir.path()).unwrap().verify(&mut |_| {}).unwrap();
        assert_eq!(v.segments, segs + 1);
        assert_eq!(v.in_doubt, 75);
    });
}

#[test]
fn oversized_checkpoint_is_skipped_and_start_up_reads_further_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(8 * 1024, SyncMode::PwriteFdatasync);
    let mut wal = open(dir.path(), c);
    let labels: Vec<String> = (0..200).map(label).collect();
    // A quarter of the intents stay open, with 64-byte canonical bytes: soon too many for
    // half a segment.
    churn(&mut wal, &labels, 200, 4, 64);
    let segs = wal.segment_index();
    let live = wal.ledger().clone();
    drop(wal);
    let (wal, r) = Wal::open(dir.path(), c, 0).unwrap();
    assert!(r.replay_from_segment < segs, "no checkpoint fits, so replay starts further back");
    assert_eq!(wal.ledger(), &live);
}

#[test]
fn lost_checkpoint_of_newest_segment_falls_back_to_previous() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(8 * 1024, SyncMode::PwriteFdatasync);
    let mut wal = open(dir.path(), c);
    let labels: Vec<String> = (0..200).map(label).collect();
    let mut i = 0u64;
    while wal.segment_index() < 2 {
        wal.append(1, &intent(i, &labels[i as usize], &[0u8; 64])).unwrap();
        wal.append(1, &Record::Abandoned { intent_hash: 0x1000 + i, reason: "" }).unwrap();
        i += 1;
    }
    let _ = wal.sync().unwrap();
    let seg = wal.segment_index();
    drop(wal);
    // Tear the newest segment's data entirely (its checkpoint included).
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), seg)).unwrap();
    f.write_all_at(&[0x5a; 16], 64 + 8).unwrap();
    drop(f);
    let (mut wal, r) = Wal::open(dir.path(), c, 0).unwrap();
    assert_eq!(r.replay_from_segment, seg - 1);
    assert!(r.torn_tail.is_some());
    // A fresh checkpoint is written into the repaired segment; the next start uses it.
    let _ = wal.sync().unwrap();
    drop(wal);
    let (_, r) = Wal::open(dir.path(), c, 0).unwrap();
    assert_eq!(r.replay_from_segment, seg);
    assert!(r.torn_tail.is_none());
}

#[test]
fn corrupt_older_segment_and_bad_header_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(8 * 1024, SyncMode::PwriteFdatasync);
    let mut wal = open(dir.path(), c);
    let labels: Vec<String> = (0..200).map(label).collect();
    let mut i = 0u64;
    while wal.segment_index() < 2 {
        wal.append(1, &intent(i, &labels[i as usize], &[0u8; 64])).unwrap();
        i += 1;
    }
    let _ = wal.sync().unwrap();
    drop(wal);
    // Garbage after the end of data in a non-last segment: corruption (it was synced before roll).
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 1)).unwrap();
    f.write_all_at(&[1], 8 * 1024 - 3).unwrap();
    drop(f);
    let err = Wal::open(dir.path(), c, 0).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { segment, .. } if segment == &seg_path(dir.path(), 1)),
        "{err}"
    );
    // A bad header is refused too (verify reads every segment).
    let f = std::fs::OpenOptions::new().write(true).open(seg_path(dir.path(), 0)).unwrap();
    f.write_all_at(b"X", 0).unwrap();
    drop(f);
    let err = WalReader::open(dir.path()).unwrap().verify(&mut |_| {}).unwrap_err();
    assert!(matches!(err, WalError::BadSegmentHeader { .. }), "{err}");
    // A missing segment in the middle is refused.
    std::fs::remove_file(seg_path(dir.path(), 1)).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), c, 0).unwrap_err(),
        WalError::MissingSegment { missing: 1, .. }
    ));
}

#[test]
fn lock_excludes_second_writer_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync));
    assert!(matches!(
        Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0),
        Err(WalError::Locked { .. })
    ));
    assert!(matches!(WalReader::open(dir.path()), Err(WalError::Locked { .. })));
    drop(wal);
    let r = WalReader::open(dir.path()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync), 0),
        Err(WalError::Locked { .. })
    ));
    drop(r);
}

#[test]
fn dedupe_and_lifecycle_errors_do_not_poison() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), cfg(SEG, SyncMode::PwriteFdatasync));
    let l = label(1);
    wal.append(1, &intent(1, &l, b"c")).unwrap();
    let dup = wal.append(1, &intent(1, &l, b"c")).unwrap_err();
    assert!(dup.is_caller_error() && matches!(dup, WalError::Ledger(_)));
    let unknown = wal.append(1, &Record::Sent { intent_hash: 5 }).unwrap_err();
    assert!(unknown.is_caller_error());
    let long = "x".repeat(65);
    assert!(wal.append(1, &intent(2, &long, b"c")).unwrap_err().is_caller_error());
    assert!(wal.poisoned().is_none());
    assert_eq!(wal.append(1, &Record::Sent { intent_hash: 0x1001 }).unwrap(), 2);
    let _ = wal.sync().unwrap();
    drop(wal);
    assert_eq!(dump(dir.path()).len(), 2, "refused records never reach the log");
}

#[test]
fn append_and_sync_failures_poison_and_lose_nothing_durable() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(SEG, SyncMode::PwriteFdatasync);
    let mut wal = open(dir.path(), c);
    let (l0, l1, l2) = (label(0), label(1), label(2));
    wal.append(1, &intent(0, &l0, b"a")).unwrap();
    let _ = wal.sync().unwrap();
    wal.set_faults(WalFaults { fail_next_append: true, ..WalFaults::default() });
    assert!(matches!(wal.append(1, &intent(1, &l1, b"b")), Err(WalError::InjectedFault("append"))));
    assert!(matches!(wal.append(1, &intent(2, &l2, b"c")), Err(WalError::Poisoned("append"))));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned(_))));
    // Reducing intents still go out with an in-memory-only ledger entry.
    wal.note_unjournaled(2, &intent(1, &l1, b"b")).unwrap();
    wal.note_unjournaled(2, &Record::Sent { intent_hash: 0x1001 }).unwrap();
    let e = wal.ledger().get(0x1001).unwrap();
    assert!(!e.journaled && e.state == IntentState::Sent);
    drop(wal);
    let (mut wal, r) = Wal::open(dir.path(), c, 0).unwrap();
    assert_eq!(r.last_seq, 1);
    assert!(!wal.ledger().contains(0x1001));

    wal.append(1, &intent(1, &l1, b"b")).unwrap();
    wal.set_faults(WalFaults { fail_next_sync: true, ..WalFaults::default() });
    assert!(matches!(wal.sync(), Err(WalError::InjectedFault("sync"))));
    assert_eq!(wal.durable_through(), 1, "a failed sync proves nothing");
    assert!(matches!(wal.append(1, &intent(2, &l2, b"c")), Err(WalError::Poisoned("sync"))));
}

#[test]
fn segment_full_and_cannot_roll_is_no_space() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(8 * 1024, SyncMode::PwriteFdatasync);
    let mut wal = open(dir.path(), c);
    wal.set_faults(WalFaults { fail_next_roll: true, ..WalFaults::default() });
    let labels: Vec<String> = (0..200).map(label).collect();
    let mut i = 0u64;
    let err = loop {
        match wal.append(1, &intent(i, &labels[i as usize], &[0u8; 64])) {
            Ok(_) => i += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, WalError::NoSpace { .. }), "{err}");
    assert!(!err.is_caller_error());
    assert_eq!(wal.segment_index(), 0);
    // Everything appended before the full segment was synced by the roll attempt.
    assert_eq!(wal.durable_through(), i);
    drop(wal);
    let (wal, r) = Wal::open(dir.path(), c, 0).unwrap();
    assert_eq!((r.last_seq, wal.ledger().len() as u64), (i, i));
}

#[test]
fn checkpoint_on_demand_prunes_terminal_and_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(SEG, SyncMode::PwriteFdatasync);
    let mut wal = open(dir.path(), c);
    let (l0, l1) = (label(0), label(1));
    wal.append(1, &intent(0, &l0, b"a")).unwrap();
    wal.append(1, &intent(1, &l1, b"b")).unwrap();
    wal.append(2, &Record::Rejected { intent_hash: 0x1000, code: 10_004, reason: "bad" }).unwrap();
    assert!(wal.ledger().contains(0x1000));
    assert!(wal.checkpoint(3).unwrap().is_some());
    assert!(!wal.ledger().contains(0x1000), "terminal entries are pruned at a checkpoint");
    wal.append(4, &Record::PartiallyFilled { intent_hash: 0x1001, filled_qty: 2, trade_id: "t9" })
        .unwrap();
    let _ = wal.sync().unwrap();
    let live = wal.ledger().clone();
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), c, 0).unwrap();
    assert_eq!(wal.ledger(), &live);
    let e = wal.ledger().by_label(&l1).unwrap();
    assert_eq!(
        (e.state, e.filled_qty, e.last_trade_id.as_deref()),
        (IntentState::PartiallyFilled, 2, Some("t9"))
    );
}
