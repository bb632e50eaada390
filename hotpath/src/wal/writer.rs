//! The WAL writer: append (buffered), group-commit sync, segment roll-over with a checkpoint,
//! torn-tail repair at open, poisoning on failure, fault injection for tests.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::limits::{
    WAL_SEGMENT_BYTES, WAL_SEGMENT_BYTES_MAX, WAL_SEGMENT_BYTES_MIN, WAL_WRITE_BUFFER_BYTES,
};

use super::error::WalError;
use super::failpoint;
use super::format::{
    framed_len, read_frame, seal_frame, Frame, SegmentHeader, RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};
use super::ledger::IntentLedger;
use super::record::{
    checkpoint_entry_len, checkpoint_fixed_len, checkpoint_record, encode_checkpoint, Record,
    RecordKind,
};
use super::recovery::{now_us_since, replay, RecoveryReport};
use super::segment::{
    create_zeroed, install_segment, list_segments, max_checkpoint_payload_for, max_payload_for,
    open_rw, read_max_payload, DirLock, SPARE_FILE,
};

/// A WAL sequence number (1, 2, 3, ...; 0 means "nothing").
pub type Seq = u64;

/// How appended bytes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Appends are staged in a reusable buffer; `sync` writes them with `pwrite` and calls
    /// `fdatasync`. The default: measured faster on this filesystem (docs/wal_format.md).
    #[default]
    PwriteFdatasync,
    /// Appends are encoded straight into a shared writable mapping of the segment; `sync`
    /// calls `msync(MS_SYNC)` on the dirty pages.
    MmapMsync,
}

/// Writer configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalConfig {
    /// Size of each new segment file (existing segments keep their size).
    pub segment_bytes: u64,
    /// Durability mechanism.
    pub sync_mode: SyncMode,
    /// Staging buffer for [`SyncMode::PwriteFdatasync`] (allocated once at open; raised to
    /// the largest frame a segment can hold if smaller).
    pub write_buffer_bytes: usize,
    /// Intent-ledger entries allocated at open ([`IntentLedger::with_capacity`]): appends
    /// allocate nothing for the ledger while it holds at most this many. Reaching it makes
    /// the next `IntentRecorded` append checkpoint first (pruning terminal entries); still
    /// full ⇒ [`WalError::LedgerFull`]. 0: unbounded, grows by allocation.
    pub ledger_entries: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: WAL_SEGMENT_BYTES,
            sync_mode: SyncMode::default(),
            write_buffer_bytes: WAL_WRITE_BUFFER_BYTES,
            ledger_entries: super::ledger::LEDGER_ENTRIES_PRESIZED,
        }
    }
}

impl WalConfig {
    fn validate(&self) -> Result<(), WalError> {
        if !(WAL_SEGMENT_BYTES_MIN..=WAL_SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(WalError::InvalidConfig(
                "segment_bytes outside WAL_SEGMENT_BYTES_MIN..=WAL_SEGMENT_BYTES_MAX",
            ));
        }
        if self.segment_bytes % 4096 != 0 {
            return Err(WalError::InvalidConfig("segment_bytes must be a multiple of 4096"));
        }
        Ok(())
    }
}

/// Test hooks: make the next operation fail as a full disk or an I/O error would.
/// Each flag is consumed by the operation it fails. The failure poisons the writer exactly
/// like a real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalFaults {
    /// The next `append` fails (as an I/O error) before writing anything.
    pub fail_next_append: bool,
    /// The next `sync` fails (as an I/O error) before making anything durable.
    pub fail_next_sync: bool,
    /// The next segment roll-over fails as "no space" (the segment is full and no new one
    /// can be created).
    pub fail_next_roll: bool,
}

/// Proof that every record up to and including `seq()` is on stable storage.
/// Only [`Wal::sync`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use]
pub struct DurableSeq(Seq);

impl DurableSeq {
    /// Highest durable sequence number.
    #[must_use]
    pub fn seq(self) -> Seq {
        self.0
    }

    /// Whether the record `seq` is covered.
    #[must_use]
    pub fn covers(self, seq: Seq) -> bool {
        seq <= self.0
    }
}

enum Sink {
    Pwrite {
        /// Staged frames not yet handed to the file; they start at `buf_off`.
        buf: Vec<u8>,
        buf_off: u64,
    },
    Mmap(memmap2::MmapMut),
}

struct Active {
    index: u64,
    path: PathBuf,
    file: File,
    bytes: u64,
    sink: Sink,
}

/// The write-ahead log writer. One per WAL directory (guarded by an exclusive lock).
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    _lock: DirLock,
    active: Active,
    /// Where the next frame goes in the active segment.
    write_off: u64,
    /// Everything before this offset in the active segment is durable.
    synced_off: u64,
    next_seq: Seq,
    durable: Seq,
    /// First sequence number of the current (unsynced) batch.
    batch_first: Seq,
    ledger: IntentLedger,
    faults: WalFaults,
    poisoned: Option<&'static str>,
    spare: Option<JoinHandle<Result<File, WalError>>>,
    /// A finished spare, waiting for the next roll-over.
    spare_ready: Option<File>,
    /// Reused for checkpoint payloads.
    ckpt_buf: Vec<u8>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("segment", &self.active.index)
            .field("write_off", &self.write_off)
            .field("next_seq", &self.next_seq)
            .field("durable", &self.durable)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`: takes the exclusive lock, replays from the newest
    /// checkpoint, truncates (zeroes) a torn tail, rebuilds the ledger.
    ///
    /// # Errors
    /// [`WalError::Locked`], [`WalError::Corrupt`] (segment + offset),
    /// [`WalError::SequenceBreak`], [`WalError::BadSegmentHeader`], I/O errors, and so on:
    /// every one stops start-up.
    pub fn open(
        dir: &Path,
        config: WalConfig,
        now_ms: i64,
    ) -> Result<(Self, RecoveryReport), WalError> {
        config.validate()?;
        let t0 = Instant::now();
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("create WAL directory", dir, e))?;
        let lock = DirLock::acquire(dir, true)?;
        let spare = dir.join(SPARE_FILE);
        if spare.exists() {
            // A spare holds no records (records are only written after it is renamed into a
            // segment), so an interrupted roll-over left nothing of value in it.
            tracing::info!(path = %spare.display(), "removing leftover WAL spare segment");
            std::fs::remove_file(&spare).map_err(|e| WalError::io("remove spare", &spare, e))?;
        }
        let mut indices = list_segments(dir)?;
        let created = indices.is_empty();
        if created {
            let f = create_zeroed(&spare, config.segment_bytes)?;
            let h = SegmentHeader {
                segment_index: 0,
                first_seq: 1,
                segment_bytes: config.segment_bytes,
                created_ms: now_ms,
            };
            install_segment(dir, &spare, &f, &h)?;
            indices.push(0);
        }
        let r = replay(dir, &indices, true, &mut |_| {})?;
        let file = open_rw(&r.last_path)?;
        let mut torn_report = None;
        if let Some((torn, garbage_end)) = &r.torn {
            let zeros = vec![0u8; (garbage_end - torn.offset) as usize];
            file.write_all_at(&zeros, torn.offset)
                .map_err(|e| WalError::io("zero torn tail", &r.last_path, e))?;
            file.sync_data().map_err(|e| WalError::io("fsync torn tail", &r.last_path, e))?;
            tracing::warn!(
                segment = %torn.segment.display(),
                offset = torn.offset,
                bytes = torn.bytes,
                fault = %torn.fault,
                "WAL torn tail truncated (zeroed): an unsynced batch from before the crash"
            );
            torn_report = Some(torn.clone());
        }
        let sink = make_sink(&config, &r.last_path, &file, r.last_header.segment_bytes, r.end)?;
        let active = Active {
            index: r.last_index,
            path: r.last_path.clone(),
            file,
            bytes: r.last_header.segment_bytes,
            sink,
        };
        let next_seq = r.last_seq + 1;
        let mut ledger = r.ledger;
        ledger.presize(config.ledger_entries);
        let mut wal = Self {
            dir: dir.to_owned(),
            config,
            _lock: lock,
            active,
            write_off: r.end,
            synced_off: r.end,
            next_seq,
            durable: r.last_seq,
            batch_first: next_seq,
            ledger,
            faults: WalFaults::default(),
            poisoned: None,
            spare: None,
            spare_ready: None,
            ckpt_buf: Vec::new(),
        };
        // A rolled segment whose checkpoint was lost in the crash gets a fresh one (durable at
        // the next sync), so the next start reads from here.
        if wal.active.index > 0 && wal.write_off == SEGMENT_HEADER_BYTES as u64 {
            wal.write_checkpoint(now_ms)?;
        }
        wal.start_spare();
        let report = RecoveryReport {
            segments_present: indices.len() as u64,
            replay_from_segment: r.start_index,
            from_checkpoint: r.from_checkpoint,
            records_replayed: r.records,
            bytes_scanned: r.bytes_scanned,
            last_seq: r.last_seq,
            torn_tail: torn_report,
            in_doubt: wal.ledger.in_doubt_len() as u64,
            elapsed_us: now_us_since(t0),
            created,
        };
        tracing::info!(?report, "WAL opened");
        Ok((wal, report))
    }

    /// Appends `record` (buffered; durable only after [`sync`](Self::sync)) and applies it to
    /// the ledger. Checkpoints are written by the WAL itself.
    ///
    /// # Errors
    /// Caller errors (nothing written, writer still usable; see [`WalError::is_caller_error`]):
    /// [`WalError::Ledger`] (e.g. duplicate intent: NOOP it), [`WalError::InvalidRecord`],
    /// [`WalError::RecordTooLarge`], [`WalError::CheckpointNotAppendable`].
    /// WAL failures (writer poisoned): [`WalError::NoSpace`], [`WalError::Io`],
    /// [`WalError::InjectedFault`], then [`WalError::Poisoned`] for every later call.
    pub fn append(&mut self, ts_ms: i64, record: &Record<'_>) -> Result<Seq, WalError> {
        self.check_poison()?;
        if matches!(record, Record::Checkpoint(_)) {
            return Err(WalError::CheckpointNotAppendable);
        }
        let payload_len = record.payload_len()?;
        let max =
            max_payload_for(self.config.segment_bytes).min(max_payload_for(self.active.bytes));
        if payload_len > max {
            return Err(WalError::RecordTooLarge {
                bytes: framed_len(payload_len),
                max: framed_len(max),
            });
        }
        self.ledger.check(record)?;
        if matches!(record, Record::IntentRecorded { .. }) && self.ledger.is_full() {
            // Overflow policy of the bounded ledger: prune terminal entries with a checkpoint
            // (replay prunes at the same record), then refuse if it is still full.
            if self.ledger.len() > self.ledger.in_doubt_len() {
                let _checkpoint = self.checkpoint(ts_ms)?;
            }
            if self.ledger.is_full() {
                return Err(WalError::LedgerFull {
                    open: self.ledger.in_doubt_len(),
                    capacity: self.ledger.capacity(),
                });
            }
        }
        if std::mem::take(&mut self.faults.fail_next_append) {
            return Err(self.poison("append", WalError::InjectedFault("append")));
        }
        if self.write_off + framed_len(payload_len) as u64 > self.active.bytes {
            let _checkpoint = self.roll(ts_ms)?;
        }
        let seq = self.write_frame(ts_ms, record, payload_len)?;
        if let Err(e) = self.ledger.apply(seq, ts_ms, record) {
            // `check` passed above, so this is a bug; the journal and ledger now disagree.
            debug_assert!(false, "ledger apply failed after check: {e}");
            return Err(self.poison("ledger apply", WalError::Ledger(e)));
        }
        Ok(seq)
    }

    /// Makes every appended record durable with one `fdatasync` (or `msync`): group commit.
    /// A no-op when nothing is pending.
    ///
    /// # Errors
    /// [`WalError::Io`] / [`WalError::NoSpace`] / [`WalError::InjectedFault`]; the writer is
    /// poisoned (after a failed fsync the page cache cannot be trusted to retry).
    pub fn sync(&mut self) -> Result<DurableSeq, WalError> {
        self.check_poison()?;
        if self.next_seq - 1 == self.durable {
            return Ok(DurableSeq(self.durable));
        }
        failpoint::hit("wal_after_append_before_sync");
        if std::mem::take(&mut self.faults.fail_next_sync) {
            return Err(self.poison("sync", WalError::InjectedFault("sync")));
        }
        if let Err(e) = self.sync_inner() {
            return Err(self.poison("sync", e));
        }
        self.synced_off = self.write_off;
        self.durable = self.next_seq - 1;
        self.batch_first = self.next_seq;
        Ok(DurableSeq(self.durable))
    }

    /// Highest sequence number known durable: the dispatcher asserts
    /// `record_seq <= wal.durable_through()` before sending (durable before send).
    #[must_use]
    pub fn durable_through(&self) -> Seq {
        self.durable
    }

    /// Highest sequence number appended (durable or not).
    #[must_use]
    pub fn appended_through(&self) -> Seq {
        self.next_seq - 1
    }

    /// The intent ledger (dedupe with `contains`, `in_doubt` after start).
    #[must_use]
    pub fn ledger(&self) -> &IntentLedger {
        &self.ledger
    }

    /// Records a life-cycle step in the in-memory ledger only, for when the WAL cannot append
    /// (poisoned): risk-reducing intents are still dispatched, and the ledger entry is marked
    /// `journaled = false`. Logged at error level. See docs/wal_format.md, "Failure semantics".
    ///
    /// # Errors
    /// [`WalError::Ledger`] if the step breaks the life cycle.
    pub fn note_unjournaled(&mut self, ts_ms: i64, record: &Record<'_>) -> Result<(), WalError> {
        tracing::error!(
            kind = record.kind().as_str(),
            intent_hash = record.intent_hash().unwrap_or(0),
            poisoned = self.poisoned.unwrap_or("no"),
            "UNJOURNALED ledger update: the WAL cannot append; this step exists only in memory"
        );
        self.ledger.apply_inner(0, ts_ms, record, false)?;
        Ok(())
    }

    /// Downgrades an existing ledger entry to `journaled = false`: its `IntentRecorded` record
    /// was appended but the batch sync failed, so it is not known durable. Used only for
    /// risk-reducing intents that are still dispatched (see docs/wal_format.md, "Failure
    /// semantics"). Logged at error level. Returns false when the intent is unknown.
    pub fn mark_unjournaled(&mut self, intent_hash: u64) -> bool {
        tracing::error!(
            intent_id = %format!("{intent_hash:016x}"),
            poisoned = self.poisoned.unwrap_or("no"),
            "UNJOURNALED ledger entry: the batch sync failed; this intent is in memory only"
        );
        self.ledger.mark_unjournaled(intent_hash)
    }

    /// Whether an earlier failure poisoned the writer (and which operation).
    #[must_use]
    pub fn poisoned(&self) -> Option<&'static str> {
        self.poisoned
    }

    /// Arms test faults (each consumed by the operation it fails).
    pub fn set_faults(&mut self, faults: WalFaults) {
        self.faults = faults;
    }

    /// Writes a checkpoint now (durable at the next sync). Done automatically at every
    /// segment roll-over; terminal ledger entries are pruned right after.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn checkpoint(&mut self, ts_ms: i64) -> Result<Option<Seq>, WalError> {
        self.check_poison()?;
        let need = self.checkpoint_payload_len();
        if need.is_some_and(|n| self.write_off + framed_len(n) as u64 > self.active.bytes) {
            // Rolling writes the checkpoint at the start of the new segment.
            return self.roll(ts_ms);
        }
        self.write_checkpoint(ts_ms)
    }

    /// Active segment index.
    #[must_use]
    pub fn segment_index(&self) -> u64 {
        self.active.index
    }

    /// Active segment file.
    #[must_use]
    pub fn segment_path(&self) -> &Path {
        &self.active.path
    }

    /// WAL directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> WalConfig {
        self.config
    }

    fn check_poison(&self) -> Result<(), WalError> {
        match self.poisoned {
            Some(op) => Err(WalError::Poisoned(op)),
            None => Ok(()),
        }
    }

    fn poison(&mut self, op: &'static str, err: WalError) -> WalError {
        tracing::error!(op, error = %err, "WAL failure: writer poisoned; no further appends until restart");
        self.poisoned = Some(op);
        err
    }

    /// Hands staged frames to the file (pwrite mode) so `extra` more bytes fit the buffer.
    fn make_room(&mut self, extra: usize) -> Result<(), WalError> {
        let path = &self.active.path;
        if let Sink::Pwrite { buf, buf_off } = &mut self.active.sink {
            if buf.len() + extra > buf.capacity() {
                self.active
                    .file
                    .write_all_at(buf, *buf_off)
                    .map_err(|e| WalError::io("pwrite", path, e))?;
                *buf_off += buf.len() as u64;
                buf.clear();
            }
        }
        Ok(())
    }

    /// Encodes one frame at `write_off`. Never allocates (the staging buffer was sized at open).
    fn write_frame(
        &mut self,
        ts_ms: i64,
        record: &Record<'_>,
        payload_len: usize,
    ) -> Result<Seq, WalError> {
        let framed = framed_len(payload_len);
        if let Err(e) = self.make_room(framed) {
            return Err(self.poison("pwrite", e));
        }
        let seq = self.next_seq;
        let batch_back = u32::try_from(seq - self.batch_first).unwrap_or(u32::MAX);
        let kind = record.kind() as u8;
        let frame: &mut [u8] = match &mut self.active.sink {
            Sink::Pwrite { buf, .. } => {
                debug_assert!(
                    buf.len() + framed <= buf.capacity(),
                    "staging buffer must never grow"
                );
                let start = buf.len();
                buf.resize(start + framed, 0);
                &mut buf[start..]
            }
            Sink::Mmap(m) => {
                let s = self.write_off as usize;
                &mut m[s..s + framed]
            }
        };
        record.encode_payload(&mut frame[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + payload_len]);
        seal_frame(frame, payload_len, seq, ts_ms, batch_back, kind);
        debug_assert!(
            matches!(read_frame(frame, 0, payload_len, RecordKind::is_known), Frame::Valid { header, .. } if header.seq == seq),
            "frame just written does not verify"
        );
        self.write_off += framed as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    fn sync_inner(&mut self) -> Result<(), WalError> {
        let path = &self.active.path;
        match &mut self.active.sink {
            Sink::Pwrite { buf, buf_off } => {
                if !buf.is_empty() {
                    self.active
                        .file
                        .write_all_at(buf, *buf_off)
                        .map_err(|e| WalError::io("pwrite", path, e))?;
                    *buf_off += buf.len() as u64;
                    buf.clear();
                }
                self.active.file.sync_data().map_err(|e| WalError::io("fdatasync", path, e))
            }
            Sink::Mmap(m) => {
                let from = self.synced_off as usize;
                let len = (self.write_off - self.synced_off) as usize;
                m.flush_range(from, len).map_err(|e| WalError::io("msync", path, e))
            }
        }
    }

    /// Syncs the active segment, installs the next one, writes a checkpoint into it.
    fn roll(&mut self, ts_ms: i64) -> Result<Option<Seq>, WalError> {
        let _durable = self.sync()?;
        if std::mem::take(&mut self.faults.fail_next_roll) {
            let err = WalError::NoSpace { op: "roll segment (injected)", path: self.dir.clone() };
            return Err(self.poison("roll", err));
        }
        let spare_path = self.dir.join(SPARE_FILE);
        let spare = match self
            .spare_ready
            .take()
            .map(|f| Ok(Ok(f)))
            .or_else(|| self.spare.take().map(JoinHandle::join))
        {
            Some(Ok(Ok(f))) => Ok(f),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(WalError::Io {
                op: "preallocate spare (thread panicked)",
                path: spare_path.clone(),
                source: std::io::Error::other("spare preallocation thread panicked"),
            }),
            None => create_zeroed(&spare_path, self.config.segment_bytes),
        };
        let file = match spare {
            Ok(f) => f,
            Err(e) => return Err(self.poison("roll", e)),
        };
        let header = SegmentHeader {
            segment_index: self.active.index + 1,
            first_seq: self.next_seq,
            segment_bytes: self.config.segment_bytes,
            created_ms: ts_ms,
        };
        let path = match install_segment(&self.dir, &spare_path, &file, &header) {
            Ok(p) => p,
            Err(e) => return Err(self.poison("roll", e)),
        };
        let sink = match make_sink(
            &self.config,
            &path,
            &file,
            header.segment_bytes,
            SEGMENT_HEADER_BYTES as u64,
        ) {
            Ok(s) => s,
            Err(e) => return Err(self.poison("roll", e)),
        };
        tracing::info!(segment = %path.display(), first_seq = header.first_seq, "WAL rolled to a new segment");
        self.active =
            Active { index: header.segment_index, path, file, bytes: header.segment_bytes, sink };
        self.write_off = SEGMENT_HEADER_BYTES as u64;
        self.synced_off = self.write_off;
        let seq = self.write_checkpoint(ts_ms)?;
        self.start_spare();
        Ok(seq)
    }

    fn checkpoint_payload_len(&self) -> Option<usize> {
        let entries = self.ledger.checkpoint_entries();
        if entries.len() > crate::limits::WAL_CHECKPOINT_ENTRIES_MAX {
            return None;
        }
        let n = checkpoint_fixed_len() + entries.map(|e| checkpoint_entry_len(&e)).sum::<usize>();
        (n <= max_checkpoint_payload_for(self.active.bytes)).then_some(n)
    }

    /// Writes a checkpoint at `write_off` (caller made room) and prunes terminal entries.
    fn write_checkpoint(&mut self, ts_ms: i64) -> Result<Option<Seq>, WalError> {
        let Some(n) = self.checkpoint_payload_len() else {
            tracing::warn!(
                in_doubt = self.ledger.in_doubt_len(),
                "WAL checkpoint skipped: too many open intents for one record; start-up will read older segments"
            );
            return Ok(None);
        };
        if self.write_off + framed_len(n) as u64 > self.active.bytes {
            return Err(WalError::RecordTooLarge {
                bytes: framed_len(n),
                max: (self.active.bytes - self.write_off) as usize,
            });
        }
        let mut buf = std::mem::take(&mut self.ckpt_buf);
        buf.clear();
        buf.resize(n, 0);
        encode_checkpoint(&mut buf, &self.ledger.counts(), self.ledger.checkpoint_entries());
        let rec = match checkpoint_record(&buf) {
            Ok(r) => r,
            Err(e) => {
                debug_assert!(false, "checkpoint we encoded does not parse: {e}");
                self.ckpt_buf = buf;
                return Err(self.poison("checkpoint", WalError::InvalidRecord(e)));
            }
        };
        let seq = self.write_frame(ts_ms, &rec, n);
        self.ckpt_buf = buf;
        let seq = seq?;
        self.ledger.prune_terminal();
        Ok(Some(seq))
    }

    /// Waits for the background preallocation of the next segment (a file of zeros written
    /// and fsynced by a helper thread after each roll-over and at open). Call it before
    /// latency-sensitive work: while that thread writes, it competes for the disk.
    ///
    /// # Errors
    /// The preallocation's I/O error (e.g. [`WalError::NoSpace`]); the next roll-over retries.
    pub fn prepare_spare(&mut self) -> Result<(), WalError> {
        if let Some(h) = self.spare.take() {
            match h.join() {
                Ok(Ok(f)) => self.spare_ready = Some(f),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(WalError::Io {
                        op: "preallocate spare (thread panicked)",
                        path: self.dir.join(SPARE_FILE),
                        source: std::io::Error::other("spare preallocation thread panicked"),
                    })
                }
            }
        }
        Ok(())
    }

    fn start_spare(&mut self) {
        if self.spare.is_some() || self.spare_ready.is_some() {
            return;
        }
        let path = self.dir.join(SPARE_FILE);
        let bytes = self.config.segment_bytes;
        let handle = std::thread::Builder::new()
            .name("wal-spare".into())
            .spawn(move || create_zeroed(&path, bytes));
        match handle {
            Ok(h) => self.spare = Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "could not start WAL spare preallocation; the next roll-over does it inline");
            }
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(h) = self.spare.take() {
            // Wait for the preallocation so it never outlives the directory lock.
            let _ = h.join();
        }
    }
}

fn make_sink(
    config: &WalConfig,
    path: &Path,
    file: &File,
    segment_bytes: u64,
    end: u64,
) -> Result<Sink, WalError> {
    Ok(match config.sync_mode {
        SyncMode::PwriteFdatasync => {
            let cap = config
                .write_buffer_bytes
                .max(framed_len(read_max_payload(config.segment_bytes)))
                .max(framed_len(read_max_payload(segment_bytes)));
            Sink::Pwrite { buf: Vec::with_capacity(cap), buf_off: end }
        }
        SyncMode::MmapMsync => {
            // SAFETY: this process holds the WAL directory's exclusive lock for the Wal's
            // lifetime, so no other process writes or truncates the segment; the writer never
            // truncates it either, and all writes through this map go to `write_off..` ranges
            // that no outstanding `&[u8]` borrows.
            let m = unsafe { memmap2::MmapOptions::new().map_mut(file) }
                .map_err(|e| WalError::io("mmap segment", path, e))?;
            Sink::Mmap(m)
        }
    })
}
