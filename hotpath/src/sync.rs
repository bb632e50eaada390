//! The one place that names atomics, cells and scheduler hints: loom's under `cfg(loom)`,
//! `std`'s otherwise. Every lock-free primitive in this crate imports them from here so the
//! loom models in `loom_tests/` check the real code, not a copy.
//!
//! Only this file differs between a normal build and `RUSTFLAGS="--cfg loom"`.

#[cfg(loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub use loom::sync::Arc;

#[cfg(not(loom))]
pub use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub use std::sync::Arc;

/// A busy-wait hint. Under loom it is a yield point, so a model with a retry loop terminates.
#[inline]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::hint::spin_loop();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Gives the rest of this time slice away. Under loom it lets the model schedule another thread.
#[inline]
pub fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// An `UnsafeCell` that is only reachable through closures, in the style of tokio's
/// `loom/std/unsafe_cell.rs`: with `cfg(loom)` every access goes through loom's cell, which
/// checks that no read is concurrent with a write; otherwise it compiles to a plain
/// `core::cell::UnsafeCell` access.
///
/// Use it for slots that are *owned* by exactly one side at a time (a handoff moves ownership
/// through an atomic). It is not for seqlock data: a seqlock reader may read while the writer
/// writes, which is a data race for a non-atomic cell — see `ring::seqlock` for how that
/// primitive keeps its data in atomic words instead.
#[derive(Debug)]
pub struct UnsafeCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))]
    inner: core::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Self {
        Self { inner: core::cell::UnsafeCell::new(value) }
    }

    /// A cell holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Self {
        Self { inner: loom::cell::UnsafeCell::new(value) }
    }

    /// Runs `f` with a shared raw pointer to the value. The caller of the pointer must prove
    /// that no `with_mut` access runs concurrently (loom checks it under `cfg(loom)`).
    #[cfg(not(loom))]
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.inner.get())
    }

    /// Runs `f` with a shared raw pointer to the value (loom-checked).
    #[cfg(loom)]
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        self.inner.with(f)
    }

    /// Runs `f` with a unique raw pointer to the value. The caller of the pointer must prove
    /// that no other access runs concurrently (loom checks it under `cfg(loom)`).
    #[cfg(not(loom))]
    #[inline]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.inner.get())
    }

    /// Runs `f` with a unique raw pointer to the value (loom-checked).
    #[cfg(loom)]
    #[inline]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        self.inner.with_mut(f)
    }
}
