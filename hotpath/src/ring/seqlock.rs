//! A seqlock publication cell: one writer (a hot stage) publishes a `Copy` value, any number
//! of readers (cold threads) take consistent copies without ever blocking the writer.
//!
//! # Why the data lives in atomic words
//! A textbook seqlock reads the payload with plain loads while the writer may be storing to
//! it, and discards the copy afterwards if the sequence moved. In the Rust (C++20) memory
//! model that overlap is a data race — undefined behaviour even if the copy is discarded —
//! and loom rightly reports it. So the payload is stored as `AtomicU64` words written and
//! read with `Relaxed` operations, bracketed by fences (Boehm, "Can seqlocks get along with
//! programming language memory models?", 2012). There is no race left to excuse, and loom
//! checks this exact code (`loom_tests/tests/seqlock.rs`).
//!
//! # Protocol
//! Writer (single, `&mut self`): `seq.store(s+1, Relaxed)`; `fence(Release)`; word stores
//! (`Relaxed`); `seq.store(s+2, Release)`.
//! Reader: `s1 = seq.load(Acquire)` (odd ⇒ retry); word loads (`Relaxed`) into a
//! `MaybeUninit<T>`; `fence(Acquire)`; `s2 = seq.load(Relaxed)`; accept iff `s1 == s2`.
//!
//! Why an accepted copy is one whole publication: if any word load saw a store of a later
//! publication (made after that publication's release fence), the reader's acquire fence
//! synchronises with it, so the later `seq.store(odd)` happens-before the `s2` load and
//! `s2 != s1`. If `s1 = s+2` was read, the acquire load synchronises with the release store
//! that ended publication `k`, so every word store of `k` is visible and no older value can
//! be read (coherence). The sequence is a `u64`: it does not wrap.
//!
//! # The `unsafe`
//! Converting a `T` to bytes and back needs it: [`Plain`] promises that `T` has no padding
//! (every byte of a value is initialised) so its bytes can be read into words; the reader
//! assembles bytes into a `MaybeUninit<T>` and calls `assume_init` only after validation,
//! when the bytes are exactly those of one valid `T`.

use crate::limits::{SEQLOCK_READ_SPINS_BEFORE_YIELD, SNAPSHOT_BYTES_MAX};
use crate::sync::{fence, spin_loop, yield_now, Arc, AtomicU64, Ordering};
use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use crossbeam::utils::CachePadded;

const WORD_BYTES: usize = size_of::<u64>();

/// A type whose values can be published through a [`Snapshot`]: `Copy`, and every byte of
/// every value is initialised (no padding).
///
/// # Safety
/// Implementors must have no padding bytes and no interior uninitialised bytes. For a
/// struct: `#[repr(C)]`, fields ordered so none needs padding, and a
/// `const _: () = assert!(size_of::<S>() == <sum of field sizes>);` next to the impl.
/// Fieldless enums, integers, floats, `bool` and arrays of `Plain` qualify.
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

macro_rules! plain {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: a primitive scalar: every byte of every value is initialised, no padding.
        unsafe impl Plain for $t {}
    )*};
}
plain!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool);

// SAFETY: an array has no padding between elements (size is a multiple of alignment) and
// no padding of its own, so it is padding-free exactly when its element is.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

// SAFETY: a fieldless enum is a single initialised discriminant byte (checked below).
unsafe impl Plain for crate::domain::reason_codes::TradingMode {}
const _: () = assert!(size_of::<crate::domain::reason_codes::TradingMode>() == 1);

// SAFETY: a one-field struct around a `u32` (size checked below), so no padding.
unsafe impl Plain for crate::mode::ReasonSet {}
const _: () = assert!(size_of::<crate::mode::ReasonSet>() == size_of::<u32>());

/// The shared state: the sequence and the payload words.
///
/// Layout: the whole cell is wrapped in `CachePadded` (128 B aligned on x86-64/aarch64,
/// because the adjacent-line prefetcher pulls line pairs), so the writer's stores do not
/// false-share with whatever the allocator puts next to it. The payload words are a separate
/// allocation made once at construction; sequence and payload are written together by the
/// same writer, so keeping them on different lines would buy nothing.
#[derive(Debug)]
pub struct Snapshot<T: Plain> {
    seq: AtomicU64,
    words: Box<[AtomicU64]>,
    _value: PhantomData<T>,
}

impl<T: Plain> Snapshot<T> {
    /// A cell holding `initial`, split into its single writer and a (cloneable) reader.
    ///
    /// # Panics
    /// If `size_of::<T>()` exceeds [`SNAPSHOT_BYTES_MAX`] (a start-up configuration bug).
    #[must_use]
    #[allow(clippy::new_ret_no_self)]
    pub fn new(initial: T) -> (SnapshotWriter<T>, SnapshotReader<T>) {
        assert!(size_of::<T>() <= SNAPSHOT_BYTES_MAX, "snapshot payload too large");
        let words = (0..size_of::<T>().div_ceil(WORD_BYTES)).map(|_| AtomicU64::new(0)).collect();
        let shared =
            Arc::new(CachePadded::new(Self { seq: AtomicU64::new(0), words, _value: PhantomData }));
        let mut writer = SnapshotWriter { shared: Arc::clone(&shared), seq: 0 };
        writer.publish(initial);
        (writer, SnapshotReader { shared })
    }

    fn try_read(&self) -> Option<(u64, T)> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            return None;
        }
        let mut out = MaybeUninit::<T>::uninit();
        let dst = out.as_mut_ptr().cast::<u8>();
        for (i, word) in self.words.iter().enumerate() {
            let offset = i * WORD_BYTES;
            let len = WORD_BYTES.min(size_of::<T>() - offset);
            let bytes = word.load(Ordering::Relaxed).to_ne_bytes();
            // SAFETY: `offset + len <= size_of::<T>()`, so the write stays inside `out`, a
            // local nobody else can see; `bytes` holds 8 >= `len` bytes; the regions are
            // distinct objects, so they do not overlap.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(offset), len) };
        }
        fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        if s1 != s2 {
            return None;
        }
        // SAFETY: `s1 == s2` and even, so no publication overlapped the word loads (module
        // docs): every byte of `out` was written above from one publication's words, which
        // hold the bytes of one valid `T` (`T: Plain` has no padding, so all were stored).
        Some((s1 / 2, unsafe { out.assume_init() }))
    }
}

/// The single writer of a [`Snapshot`]. Not `Clone`: one writer is what makes the protocol
/// sound, and the type system enforces it.
#[derive(Debug)]
pub struct SnapshotWriter<T: Plain> {
    shared: Arc<CachePadded<Snapshot<T>>>,
    /// The writer's own copy of the sequence (it is the only one that changes it).
    seq: u64,
}

impl<T: Plain> SnapshotWriter<T> {
    /// Publishes `value`. Wait-free: a fixed number of stores, never blocks on readers.
    pub fn publish(&mut self, value: T) {
        let cell: &Snapshot<T> = &self.shared;
        let start = self.seq;
        debug_assert!(start & 1 == 0, "writer sequence is even between publications");
        cell.seq.store(start + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let src = (&raw const value).cast::<u8>();
        for (i, word) in cell.words.iter().enumerate() {
            let offset = i * WORD_BYTES;
            let len = WORD_BYTES.min(size_of::<T>() - offset);
            let mut bytes = [0u8; WORD_BYTES];
            // SAFETY: `T: Plain` has no padding, so all `size_of::<T>()` bytes of `value` are
            // initialised; `offset + len <= size_of::<T>()` keeps the read inside `value`;
            // `bytes` has room for 8 >= `len` bytes; distinct objects, no overlap.
            unsafe { core::ptr::copy_nonoverlapping(src.add(offset), bytes.as_mut_ptr(), len) };
            word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
        }
        cell.seq.store(start + 2, Ordering::Release);
        self.seq = start + 2;
    }

    /// Number of publications so far (the initial value counts as one).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.seq / 2
    }

    /// A new reader of this cell.
    #[must_use]
    pub fn reader(&self) -> SnapshotReader<T> {
        SnapshotReader { shared: Arc::clone(&self.shared) }
    }
}

/// A reader of a [`Snapshot`]; clone it for every thread that reads.
#[derive(Debug)]
pub struct SnapshotReader<T: Plain> {
    shared: Arc<CachePadded<Snapshot<T>>>,
}

impl<T: Plain> Clone for SnapshotReader<T> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<T: Plain> SnapshotReader<T> {
    /// One attempt: the value and its version, or `None` if a publication overlapped.
    #[must_use]
    pub fn try_read(&self) -> Option<(u64, T)> {
        self.shared.try_read()
    }

    /// A consistent copy and its version (number of publications it reflects). Retries
    /// while the writer is mid-publication: spins [`SEQLOCK_READ_SPINS_BEFORE_YIELD`] times,
    /// then yields between attempts. The writer's critical section is a bounded number of
    /// stores (≤ `SNAPSHOT_BYTES_MAX / 8`), so this terminates while the writer makes progress.
    #[must_use]
    pub fn read_versioned(&self) -> (u64, T) {
        let mut failed = 0u32;
        loop {
            if let Some(read) = self.shared.try_read() {
                return read;
            }
            failed = failed.saturating_add(1);
            if failed < SEQLOCK_READ_SPINS_BEFORE_YIELD {
                spin_loop();
            } else {
                yield_now();
            }
        }
    }

    /// A consistent copy of the latest publication.
    #[must_use]
    pub fn read(&self) -> T {
        self.read_versioned().1
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    #[repr(C)]
    struct Odd {
        a: u64,
        b: [u8; 5],
        c: [u8; 3],
        d: u32,
        e: [u16; 2],
    }
    const _: () = assert!(size_of::<Odd>() == 8 + 5 + 3 + 4 + 4);
    // SAFETY: repr(C), fields ordered without padding (size asserted above).
    unsafe impl Plain for Odd {}

    #[test]
    fn round_trips_sizes_that_are_not_word_multiples() {
        let v = Odd { a: u64::MAX - 3, b: [1, 2, 3, 4, 5], c: [6, 7, 8], d: 9, e: [10, 11] };
        let (mut w, r) = Snapshot::new(v);
        assert_eq!(r.read_versioned(), (1, v));
        let v2 = Odd { a: 1, ..v };
        w.publish(v2);
        assert_eq!(r.read_versioned(), (2, v2));
        let (_, r3) = Snapshot::new([7u8; 3]);
        assert_eq!(r3.read(), [7, 7, 7]);
        let (_, unit) = Snapshot::new([0u64; 0]);
        assert_eq!(unit.read(), [0u64; 0]);
    }
}
