//! Property test: random order actions against the matching engine keep its invariants:
//! no crossed book at rest, book entries agree with orders, quantity conservation
//! (filled = sum of the order's trades), positions = signed sum of fills.

use std::collections::HashMap;

use proptest::prelude::*;
use simulator::engine::{Engine, EngineCfg, NewOrder, Tif};
use simulator::journal::Journal;
use simulator::{book::Side, AccountsFile};

#[derive(Debug, Clone)]
enum Action {
    Place {
        acct: usize,
        inst: usize,
        buy: bool,
        ticks_from_mark: i64,
        lots: i64,
        tif: u8,
        post_only: bool,
        reduce_only: bool,
    },
    Cancel {
        pick: usize,
    },
    Edit {
        pick: usize,
        ticks: i64,
        lots: i64,
    },
    Tick,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0usize..2, 0usize..3, any::<bool>(), -8i64..8, 1i64..40, 0u8..4, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(acct, inst, buy, t, lots, tif, post_only, reduce_only)| Action::Place { acct, inst, buy, ticks_from_mark: t, lots, tif, post_only, reduce_only }),
        2 => (0usize..64).prop_map(|pick| Action::Cancel { pick }),
        1 => (0usize..64, -4i64..4, 1i64..40).prop_map(|(pick, ticks, lots)| Action::Edit { pick, ticks, lots }),
        1 => Just(Action::Tick),
    ]
}

fn engine(dir: &std::path::Path) -> Engine {
    let j = Journal::create(&dir.join("j.jsonl")).unwrap();
    Engine::new(
        EngineCfg { seed: 9, spot_btc: 100_000.0, spot_eth: 3_500.0, tick_ms: 100, testnet: false },
        AccountsFile::builtin(),
        j,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_actions_keep_invariants(actions in prop::collection::vec(action(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        let names: Vec<String> = {
            let opt = e.instruments.iter().find(|i| i.kind == simulator::instruments::Kind::Option && i.name.starts_with("BTC") && i.name.ends_with("-C")).unwrap().name.clone();
            vec!["BTC-PERPETUAL".into(), "ETH-PERPETUAL".into(), opt]
        };
        let mut placed: Vec<String> = Vec::new();
        for a in actions {
            match a {
                Action::Place { acct, inst, buy, ticks_from_mark, lots, tif, post_only, reduce_only } => {
                    let i = e.inst(&names[inst]).unwrap();
                    let ins = e.instruments[i].clone();
                    #[allow(clippy::cast_possible_truncation)]
                    let mark_u = (e.md[i].mark * 1e8) as i64;
                    let base = ins.floor_to_grid(mark_u);
                    let mut p = base;
                    for _ in 0..ticks_from_mark.abs() {
                        p = if ticks_from_mark > 0 { ins.tick_above(p) } else { ins.tick_below(p).unwrap_or(p) };
                    }
                    let no = NewOrder {
                        instrument: names[inst].clone(),
                        side: if buy { Side::Buy } else { Side::Sell },
                        amount: simulator::util::amt(ins.amount_step() * lots),
                        order_type: "limit".into(),
                        price: Some(simulator::util::px(p)),
                        tif: [Tif::Gtc, Tif::Ioc, Tif::Fok, Tif::Gtc][usize::from(tif)],
                        post_only,
                        reject_post_only: post_only && lots % 2 == 0,
                        reduce_only,
                        label: format!("p{}", placed.len()),
                        trigger: None,
                        trigger_price: None,
                    };
                    if let Ok(r) = e.place(acct, 1, &no) {
                        placed.push(r.order["order_id"].as_str().unwrap().to_string());
                        if post_only {
                            prop_assert!(r.trades.is_empty(), "post-only order traded");
                        }
                    }
                }
                Action::Cancel { pick } => {
                    if !placed.is_empty() {
                        let id = placed[pick % placed.len()].clone();
                        let acct = e.orders.get(&simulator::engine::parse_order_id(&id).unwrap()).map_or(0, |o| o.account);
                        let _ = e.cancel(acct, &id, "user_request");
                    }
                }
                Action::Edit { pick, ticks, lots } => {
                    if !placed.is_empty() {
                        let id = placed[pick % placed.len()].clone();
                        if let Some(o) = e.orders.get(&simulator::engine::parse_order_id(&id).unwrap()).cloned() {
                            let ins = e.instruments[o.inst].clone();
                            let mut p = o.price.unwrap_or(ins.tick);
                            for _ in 0..ticks.abs() {
                                p = if ticks > 0 { ins.tick_above(p) } else { ins.tick_below(p).unwrap_or(p) };
                            }
                            let _ = e.edit(o.account, &id, Some(simulator::util::amt(ins.amount_step() * lots)), Some(simulator::util::px(p)), None, None);
                        }
                    }
                }
                Action::Tick => {
                    let now = e.now_ms();
                    e.tick(now);
                }
            }
            prop_assert_eq!(e.check_invariants(), Ok(()));
        }
        // Conservation: each order's filled amount equals the sum of its trades, and each
        // position equals the signed sum of its fills.
        for acct in 0..e.accounts.len() {
            let mut by_order: HashMap<String, f64> = HashMap::new();
            let mut by_inst: HashMap<String, f64> = HashMap::new();
            for t in &e.accounts[acct].trades {
                let a = t.json["amount"].as_f64().unwrap();
                *by_order.entry(t.json["order_id"].as_str().unwrap().to_string()).or_default() += a;
                let s = if t.json["direction"] == "buy" { a } else { -a };
                *by_inst.entry(t.json["instrument_name"].as_str().unwrap().to_string()).or_default() += s;
            }
            for o in e.orders.values().filter(|o| o.account == acct) {
                let oid = e.order_json(o)["order_id"].as_str().unwrap().to_string();
                let traded = by_order.get(&oid).copied().unwrap_or(0.0);
                prop_assert!((traded - simulator::util::amt(o.filled)).abs() < 1e-9, "order {} filled {} vs trades {}", oid, o.filled, traded);
            }
            for (i, pos) in &e.accounts[acct].positions {
                let name = &e.instruments[*i].name;
                let fills = by_inst.get(name).copied().unwrap_or(0.0);
                prop_assert!((simulator::util::amt(pos.size) - fills).abs() < 1e-9, "position {} {} vs fills {}", name, pos.size, fills);
            }
        }
    }
}
