//! Property: for random ledger / venue / local states, applying the repair actions (ledger
//! records through the real WAL `IntentLedger`, so every record must be a legal transition;
//! cancels; fill and position adoptions) leaves local positions equal to the venue's and no
//! zombie or stale order; a second pass is idempotent (nothing adopted twice).

use std::collections::{BTreeMap, BTreeSet};

use coldpath::reconcile::{
    reconcile, FindingKind, IntentDetail, LabelLookup, LedgerRepair, LedgerSnapshot,
    LocalPositions, ReconcileConfig, RepairAction, VenueOrder, VenuePosition, VenueSnapshot,
    VenueTrade,
};
use hotpath::venue::messages::{Direction, OrderState};
use hotpath::wal::{IntentLedger, Record};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000_000;
const ONE: i64 = 100_000_000;
const INSTRUMENTS: [&str; 3] = ["BTC-A", "BTC-B", "ETH-C"];

/// xorshift64*: the structure is drawn from one proptest seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
}

fn label(gid: u64, ih: u64) -> String {
    format!("s4:0badcafe:{:012x}:0:{:016x}", gid, ih)
}

struct World {
    ledger: IntentLedger,
    details: BTreeMap<u64, IntentDetail>,
    updated: BTreeMap<u64, i64>,
    processed: BTreeSet<String>,
    venue: VenueSnapshot,
    local: LocalPositions,
    seq: u64,
}

impl World {
    fn apply(&mut self, rec: &Record<'_>) {
        self.seq += 1;
        self.ledger
            .apply(self.seq, NOW, rec)
            .unwrap_or_else(|e| panic!("illegal repair {rec:?}: {e}"));
    }

    fn snapshot(&self) -> LedgerSnapshot {
        let mut s = LedgerSnapshot::from_ledger(
            &self.ledger,
            |e| self.details.get(&e.intent_hash).cloned(),
            |e| e.filled_qty * ONE,
        );
        for it in &mut s.intents {
            it.updated_ms = self.updated.get(&it.intent_hash).copied().unwrap_or(NOW - 60_000);
        }
        s.processed_trade_ids = self.processed.clone();
        s
    }
}

fn build(seed: u64) -> World {
    let mut r = Rng(seed | 1);
    let mut w = World {
        ledger: IntentLedger::new(),
        details: BTreeMap::new(),
        updated: BTreeMap::new(),
        processed: BTreeSet::new(),
        venue: VenueSnapshot { trades_complete: true, fetched_ms: NOW, ..VenueSnapshot::default() },
        local: LocalPositions::default(),
        seq: 0,
    };
    let n_intents = r.below(7);
    let n_unknown = r.below(3);
    let mut trade_no = 0;
    for k in 0..(n_intents + n_unknown + 1) {
        let is_intent = k < n_intents;
        let is_foreign = k == n_intents + n_unknown;
        let lbl = if is_foreign { format!("manual-{k}") } else { label(k + 1, 0x100 + k) };
        let inst = INSTRUMENTS[usize::try_from(r.below(3)).unwrap_or(0)].to_owned();
        let dir = if r.coin() { Direction::Buy } else { Direction::Sell };
        let amount_units = 3_i64;
        let order_id = format!("o-{k}");
        if is_intent {
            let h = 0x100 + k;
            w.details.insert(
                h,
                IntentDetail {
                    instrument: inst.clone(),
                    direction: dir,
                    amount: amount_units * ONE,
                    reduce_only: false,
                },
            );
            if r.below(3) == 0 {
                w.updated.insert(h, NOW - i64::try_from(r.below(4_000)).unwrap_or(0));
            }
            w.apply(&Record::IntentRecorded { intent_hash: h, label: &lbl, canonical: b"c" });
            let stage = r.below(8);
            if stage >= 1 {
                w.apply(&Record::Sent { intent_hash: h });
            }
            if stage >= 2 {
                w.apply(&Record::Acknowledged { intent_hash: h, venue_order_id: &order_id });
            }
            let filled = i64::try_from(r.below(3)).unwrap_or(0);
            if stage >= 3 && filled > 0 {
                w.apply(&Record::PartiallyFilled {
                    intent_hash: h,
                    filled_qty: filled,
                    trade_id: "",
                });
            }
            match stage {
                4 => w.apply(&Record::Filled {
                    intent_hash: h,
                    filled_qty: amount_units,
                    trade_id: "",
                }),
                5 => w.apply(&Record::Cancelled {
                    intent_hash: h,
                    filled_qty: if stage >= 3 { filled } else { 0 },
                }),
                6 => w.apply(&Record::Rejected { intent_hash: h, code: 0, reason: "r" }),
                7 => w.apply(&Record::Abandoned { intent_hash: h, reason: "a" }),
                _ => {}
            }
        }
        // Venue side of this label.
        let trades = i64::try_from(r.below(4)).unwrap_or(0).min(amount_units);
        for _ in 0..trades {
            trade_no += 1;
            w.venue.trades.push(VenueTrade {
                trade_id: format!("t{trade_no}"),
                order_id: order_id.clone(),
                instrument: inst.clone(),
                direction: dir,
                amount: ONE,
                price: 1,
                label: lbl.clone(),
                timestamp_ms: NOW - 10_000 + trade_no,
            });
        }
        let open = trades < amount_units && r.coin();
        let mk_order = |id: String, age: i64, reduce_only: bool, state: OrderState| VenueOrder {
            order_id: id,
            instrument: inst.clone(),
            direction: dir,
            amount: amount_units * ONE,
            filled_amount: trades * ONE,
            label: lbl.clone(),
            state,
            reduce_only,
            creation_ms: NOW - age,
        };
        if open {
            let age = i64::try_from(r.below(60_000)).unwrap_or(0);
            let ro = r.coin();
            w.venue.open_orders.push(mk_order(order_id.clone(), age, ro, OrderState::Open));
            if r.below(4) == 0 {
                w.venue.open_orders.push(mk_order(
                    format!("{order_id}-dup"),
                    age / 2,
                    ro,
                    OrderState::Open,
                ));
            }
        } else if !is_foreign {
            let closed = match r.below(3) {
                0 => None,
                1 => Some(mk_order(order_id.clone(), 1_000, false, OrderState::Cancelled)),
                _ => Some(mk_order(
                    order_id.clone(),
                    1_000,
                    false,
                    if trades == amount_units { OrderState::Filled } else { OrderState::Cancelled },
                )),
            };
            w.venue
                .label_lookups
                .insert(lbl.clone(), LabelLookup { orders: closed.into_iter().collect() });
        }
    }
    // Venue positions: the trades plus an older foreign offset; local: anything.
    let mut venue_pos: BTreeMap<String, i64> = BTreeMap::new();
    for t in &w.venue.trades {
        let s = if t.direction == Direction::Buy { t.amount } else { -t.amount };
        *venue_pos.entry(t.instrument.clone()).or_default() += s;
    }
    for inst in INSTRUMENTS {
        let off = i64::try_from(r.below(5)).unwrap_or(0) - 2;
        *venue_pos.entry(inst.to_owned()).or_default() += off * ONE;
        let loc = i64::try_from(r.below(5)).unwrap_or(0) - 2;
        if loc != 0 {
            w.local.0.insert(inst.to_owned(), loc * ONE);
        }
    }
    w.venue.positions = venue_pos
        .into_iter()
        .filter(|(_, s)| *s != 0)
        .map(|(instrument, size)| VenuePosition { instrument, size })
        .collect();
    w
}

fn apply_actions(w: &mut World, actions: &[RepairAction]) {
    for a in actions {
        match a {
            RepairAction::Ledger(rep) => {
                let h = rep.intent_hash();
                let steps = rep.filled_amount().map(|f| f / ONE).unwrap_or(0);
                match rep {
                    LedgerRepair::Acknowledged { venue_order_id, .. } => {
                        w.apply(&Record::Acknowledged { intent_hash: h, venue_order_id });
                    }
                    LedgerRepair::PartiallyFilled { trade_id, .. } => {
                        w.apply(&Record::PartiallyFilled {
                            intent_hash: h,
                            filled_qty: steps,
                            trade_id,
                        });
                    }
                    LedgerRepair::Filled { trade_id, .. } => {
                        w.apply(&Record::Filled { intent_hash: h, filled_qty: steps, trade_id });
                    }
                    LedgerRepair::Cancelled { .. } => {
                        w.apply(&Record::Cancelled { intent_hash: h, filled_qty: steps });
                    }
                    LedgerRepair::Rejected { .. } => {
                        w.apply(&Record::Rejected { intent_hash: h, code: 0, reason: "reconcile" });
                    }
                    LedgerRepair::Abandoned { .. } => {
                        w.apply(&Record::Abandoned { intent_hash: h, reason: "reconcile" });
                    }
                }
            }
            RepairAction::AdoptFill { instrument, delta, trade_ids } => {
                *w.local.0.entry(instrument.clone()).or_default() += delta;
                w.processed.extend(trade_ids.iter().cloned());
            }
            RepairAction::AdoptPosition { instrument, size } => {
                w.local.0.insert(instrument.clone(), *size);
            }
            RepairAction::Cancel(c) => w.venue.open_orders.retain(|o| o.order_id != c.order_id),
            RepairAction::SetLatch(_) | RepairAction::RaiseMode(_) => {}
        }
    }
}

fn venue_positions(v: &VenueSnapshot) -> BTreeMap<String, i64> {
    v.positions.iter().filter(|p| p.size != 0).map(|p| (p.instrument.clone(), p.size)).collect()
}

fn local_nonzero(l: &LocalPositions) -> BTreeMap<String, i64> {
    l.0.iter().filter(|(_, s)| **s != 0).map(|(k, v)| (k.clone(), *v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn repairs_converge(seed in any::<u64>()) {
        let cfg = ReconcileConfig::default();
        let mut w = build(seed);
        let first = reconcile(&w.snapshot(), &w.local, &w.venue, &cfg);
        apply_actions(&mut w, &first.actions);
        prop_assert_eq!(local_nonzero(&w.local), venue_positions(&w.venue));

        let second = reconcile(&w.snapshot(), &w.local, &w.venue, &cfg);
        for k in [
            FindingKind::ZombieOrder,
            FindingKind::StaleOrder,
            FindingKind::LateFill,
            FindingKind::OrphanFill,
            FindingKind::PositionMismatch,
            FindingKind::LateAck,
        ] {
            prop_assert_eq!(second.count(k), 0, "{:?} left after repair: {:?}", k, second.findings);
        }
        prop_assert!(!second.actions.iter().any(|a| matches!(
            a,
            RepairAction::AdoptFill { .. } | RepairAction::AdoptPosition { .. } | RepairAction::Cancel(_)
        )), "second pass repaired again: {:?}", second.actions);
        // Every surviving open order with our prefix belongs to a live intent.
        let snap = w.snapshot();
        for o in &w.venue.open_orders {
            if o.label.starts_with("s4:") {
                let live = snap.intents.iter().any(|i| i.label == o.label && !i.state.is_terminal());
                prop_assert!(live, "zombie {} survived", o.order_id);
            }
        }
        // Applying the second pass keeps positions equal (idempotent).
        apply_actions(&mut w, &second.actions);
        prop_assert_eq!(local_nonzero(&w.local), venue_positions(&w.venue));
        prop_assert_eq!(second.risk_degraded, false);
    }
}
