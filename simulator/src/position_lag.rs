//! `FreezePositionSnapshot`: position queries answer from a snapshot taken when the fault was
//! turned on, while trades, fills and `user.*` notifications move on (a venue whose position
//! service lags its own trades).

use std::collections::BTreeMap;

use crate::engine::{Engine, Position};

/// Every account's positions now (the snapshot the fault answers from).
pub fn snapshot(e: &Engine) -> Vec<BTreeMap<usize, Position>> {
    e.accounts.iter().map(|a| a.positions.clone()).collect()
}

/// Runs `f` with account `acct`'s positions replaced by the frozen snapshot when the fault is
/// on, then puts the live positions back: only the answer lags, never the venue's state.
pub fn answer<T>(e: &mut Engine, acct: usize, f: impl FnOnce(&Engine) -> T) -> T {
    let Some(frozen) = e.faults.frozen_positions.as_ref().and_then(|s| s.get(acct)).cloned() else {
        return f(e);
    };
    let live = std::mem::replace(&mut e.accounts[acct].positions, frozen);
    let out = f(e);
    e.accounts[acct].positions = live;
    out
}
