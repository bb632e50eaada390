//! Named crash points for the kill/restart tests.
//!
//! With the `failpoints` feature, [`hit`] kills the process with SIGKILL when the environment
//! variable `STOIC_FAILPOINT` equals the point's name: a real kill at exactly that instant
//! (no unwinding, no destructors, no flush), like the tests' external `kill -9`. Without the
//! feature, [`hit`] is an empty inline function and release builds carry no crash points.
//!
//! Points placed in the WAL: `wal_after_append_before_sync` (at the start of a `sync` that has
//! something to make durable).

/// Environment variable naming the crash point to fire.
pub const ENV_VAR: &str = "STOIC_FAILPOINT";

/// Optional environment variable: fire on the N-th hit of the armed point (default 1), so a
/// test can let some orders flow before the crash.
pub const ENV_VAR_AFTER: &str = "STOIC_FAILPOINT_AFTER";

/// Crash here if `STOIC_FAILPOINT == name` (only with the `failpoints` feature).
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    static AFTER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| std::env::var(ENV_VAR).ok().filter(|s| !s.is_empty()));
    if armed.as_deref() != Some(name) {
        return;
    }
    let after = *AFTER.get_or_init(|| {
        std::env::var(ENV_VAR_AFTER).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1).max(1)
    });
    let hit = HITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if hit >= after {
        eprintln!("failpoint {name}: SIGKILL");
        // SAFETY: getpid and kill have no memory-safety preconditions; SIGKILL to ourselves
        // ends the process here.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL is not deliverable late; if kill somehow returned, never continue past the
        // crash point.
        std::process::abort();
    }
}

/// Crash point (compiled out: the `failpoints` feature is off).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &'static str) {}

/// Whether crash points are compiled into this build.
#[must_use]
pub const fn enabled() -> bool {
    cfg!(feature = "failpoints")
}
