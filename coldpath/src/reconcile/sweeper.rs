//! Zombie sweeper (contract §3.5): decides, for every open venue order, whether it is ours
//! and alive, a zombie to cancel, stale, foreign or ambiguous. Pure; the reconciler runs it
//! on every pass (default every 5 s, inside the 10 s cadence §3.5 asks for), independent of
//! the WebSocket.
//!
//! | Case | Verdict |
//! |---|---|
//! | no `s4:` label | `Foreign` — never touched, only reported |
//! | `s4:` label, no ledger intent | `Zombie(NoIntent)` → cancel (`GhostOrderCanceled`, AT-122) |
//! | ledger intent terminal (filled/cancelled/rejected/abandoned) | `Zombie(IntentTerminal)` → cancel |
//! | a second open order for one live intent | `Zombie(Duplicate)` → cancel all but the acked/oldest one |
//! | live intent, age > `stale_order_sec` (30 s), not reduce-only | `Stale` → cancel; never replaced here (AT-124, AT-303) |
//! | label ambiguous after §1.1.2 tie-breaks | `Ambiguous` → no cancel; Degraded + opens blocked |
//! | live intent, otherwise | `Live` |

use super::label_match::{Matcher, Resolution, VenueKey};
use super::model::{LedgerSnapshot, VenueOrder};
use super::{CancelOrder, CancelReason, ReconcileConfig};

/// Why an order is a zombie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZombieReason {
    /// Our prefix, no ledger intent.
    NoIntent,
    /// The ledger says the intent is over.
    IntentTerminal,
    /// Another open order already represents the intent.
    Duplicate,
}

impl ZombieReason {
    /// Stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoIntent => "NoIntent",
            Self::IntentTerminal => "IntentTerminal",
            Self::Duplicate => "Duplicate",
        }
    }
}

/// The sweeper's verdict on one open order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderVerdict {
    /// Not ours.
    Foreign,
    /// Ours and alive: the intent at this index of the sorted intents.
    Live(usize),
    /// Ours, alive, but older than `stale_order_sec` and not reduce-only.
    Stale {
        /// Intent index.
        intent: usize,
        /// Age at the snapshot, ms.
        age_ms: i64,
    },
    /// To cancel.
    Zombie {
        /// Why.
        reason: ZombieReason,
        /// Intent index when the label resolved to one.
        intent: Option<usize>,
    },
    /// §1.1.2 could not decide.
    Ambiguous(Vec<u64>),
}

/// Classifies every open order; output is in `orders` order (the caller sorts its input).
#[must_use]
pub fn classify(
    matcher: &Matcher<'_>,
    orders: &[VenueOrder],
    now_ms: i64,
    cfg: &ReconcileConfig,
) -> Vec<OrderVerdict> {
    let intents = matcher.intents();
    let mut verdicts: Vec<OrderVerdict> = orders
        .iter()
        .map(|o| {
            let key = VenueKey {
                order_id: &o.order_id,
                label: &o.label,
                instrument: &o.instrument,
                direction: o.direction,
                amount: Some(o.amount),
            };
            match matcher.resolve(&key) {
                Resolution::Foreign => OrderVerdict::Foreign,
                Resolution::Unknown => {
                    OrderVerdict::Zombie { reason: ZombieReason::NoIntent, intent: None }
                }
                Resolution::Ambiguous(c) => OrderVerdict::Ambiguous(c),
                Resolution::Intent(i) if intents[i].state.is_terminal() => {
                    OrderVerdict::Zombie { reason: ZombieReason::IntentTerminal, intent: Some(i) }
                }
                Resolution::Intent(i) => OrderVerdict::Live(i),
            }
        })
        .collect();
    // One live order per intent: keep the one whose id the ledger holds, else the oldest.
    let mut kept: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for (oi, v) in verdicts.iter().enumerate() {
        let OrderVerdict::Live(i) = *v else { continue };
        let better = |cand: usize, cur: usize| {
            let acked = intents[i].venue_order_id.as_deref();
            let rank = |k: usize| {
                let o = &orders[k];
                (acked != Some(o.order_id.as_str()), o.creation_ms, o.order_id.as_str())
            };
            rank(cand) < rank(cur)
        };
        match kept.get(&i) {
            Some(&cur) if !better(oi, cur) => {}
            _ => {
                kept.insert(i, oi);
            }
        }
    }
    for (oi, v) in verdicts.iter_mut().enumerate() {
        let OrderVerdict::Live(i) = *v else { continue };
        if kept.get(&i) != Some(&oi) {
            *v = OrderVerdict::Zombie { reason: ZombieReason::Duplicate, intent: Some(i) };
            continue;
        }
        let o = &orders[oi];
        let age_ms = now_ms.saturating_sub(o.creation_ms);
        if age_ms > cfg.stale_order_ms && !o.reduce_only {
            *v = OrderVerdict::Stale { intent: i, age_ms };
        }
    }
    verdicts
}

/// The sweeper alone: the cancels it would send for `open_orders` now (sorted by order id).
#[must_use]
pub fn sweep(
    ledger: &LedgerSnapshot,
    open_orders: &[VenueOrder],
    now_ms: i64,
    cfg: &ReconcileConfig,
) -> Vec<CancelOrder> {
    let mut intents = ledger.intents.clone();
    intents.sort_by_key(|i| i.intent_hash);
    let mut orders = open_orders.to_vec();
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    let matcher = Matcher::new(&intents);
    let verdicts = classify(&matcher, &orders, now_ms, cfg);
    let mut out: Vec<CancelOrder> = orders
        .iter()
        .zip(verdicts)
        .filter_map(|(o, v)| {
            let reason = match v {
                OrderVerdict::Zombie { reason, .. } => CancelReason::Zombie(reason),
                OrderVerdict::Stale { .. } => CancelReason::Stale,
                _ => return None,
            };
            Some(CancelOrder::of(o, reason))
        })
        .collect();
    out.sort();
    out
}
