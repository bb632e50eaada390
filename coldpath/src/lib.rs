//! Stoic's cold path: everything that must never block the hot loop. It reads hot state
//! through published snapshots and talks back only through control rings.
#![forbid(unsafe_code)]
