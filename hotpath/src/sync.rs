//! The one place that names atomics and cells: loom's under `cfg(loom)`, `std`'s otherwise.
//! Every lock-free primitive in this crate imports them from here so the loom models in
//! `loom_tests/` check the real code, not a copy.

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
