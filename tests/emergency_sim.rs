//! The emergency-close planner against the real simulator (in-process, 127.0.0.1:0).
//!
//! TEST SET-UP / ORACLE ONLY: positions are opened, and the planner's orders are sent, through
//! the simulator's own test client (`simulator::client::WsClient`), because order entry through
//! the public venue `Connection` is refused by design — only `hotpath::dispatch` may trade. The
//! engine connects the planner to dispatch; this test proves the planner's reduce-only IOC
//! orders, priced off the simulator's real books, actually flatten real positions, in Kill,
//! with the rate-limit breaker open (reserve credits), and that the simulator journal (the
//! independent oracle) saw only reduce-only, labelled, IOC limit orders from it.
//!
//! Lives in the root crate because `hotpath` has no dev-dependency on `simulator`.

use std::time::{SystemTime, UNIX_EPOCH};

use hotpath::clock::SystemClock;
use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::domain::intent::{GroupId, OrderIntent, Side, StrategyId};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta};
use hotpath::domain::reason_codes::TradingMode;
use hotpath::domain::units::{Price, Qty};
use hotpath::emergency::{
    run_emergency_close, CloseIdentity, CreditReserve, DriverError, EmergencyConfig,
    EmergencyDriver, EmergencyMarket, ExposedPosition, HedgeQuote, PriceInputs,
};
use hotpath::gates::{BookLevel, BookView};
use serde_json::{json, Value};
use simulator::client::{ClientError, WsClient};
use simulator::{SimConfig, Simulator};

const DEV_TRADE: (&str, &str) = ("sim-dev-trade", "sim-dev-trade-secret-0001");
const PERP: &str = "BTC-PERPETUAL";

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The simulator seen through its test client: positions, books, IOC orders.
struct SimDriver {
    client: std::cell::RefCell<WsClient>,
    cache: InstrumentCache,
    instruments: Vec<String>,
}

impl SimDriver {
    fn call(&self, method: &str, params: &Value) -> Result<Value, ClientError> {
        self.client.borrow_mut().call(method, params)
    }
}

fn level(pair: &Value) -> BookLevel {
    BookLevel {
        price: Price::from_f64_checked(num(&pair[0])).unwrap(),
        qty: Qty::from_f64_checked(num(&pair[1])).unwrap(),
    }
}

impl EmergencyMarket for SimDriver {
    fn meta(&self, instrument: &str) -> Option<&InstrumentMeta> {
        self.cache.get(instrument)
    }
    fn prices(&self, instrument: InstrumentName) -> PriceInputs {
        let Ok(ob) = self.call(
            "public/get_order_book",
            &json!({"instrument_name": instrument.as_str(), "depth": 10}),
        ) else {
            return PriceInputs::default();
        };
        let side = |k: &str| {
            ob[k].as_array().map(|l| l.iter().map(level).collect::<Vec<_>>()).unwrap_or_default()
        };
        // The venue's own book timestamp (same epoch-ms scale as the engine clock).
        let ts = ob["timestamp"].as_i64().unwrap_or(0);
        let book = BookView::from_levels(instrument, &side("bids"), &side("asks"), ts, false);
        PriceInputs { book: Some(book), ticker: None }
    }
}

impl EmergencyDriver for SimDriver {
    fn cancel_all(&mut self) -> Result<(), DriverError> {
        self.call("private/cancel_all", &json!({})).map(|_| ()).map_err(|e| map_err(&e))
    }
    fn positions(&mut self) -> Result<Vec<ExposedPosition>, DriverError> {
        let list = self
            .call("private/get_positions", &json!({"currency": "BTC"}))
            .map_err(|e| map_err(&e))?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| self.instruments.iter().any(|i| p["instrument_name"] == i.as_str()))
            .map(|p| ExposedPosition {
                instrument: Instrument::parse(p["instrument_name"].as_str().unwrap()).unwrap(),
                position: Qty::from_f64_checked(num(&p["size"])).unwrap(),
            })
            .collect())
    }
    fn send_ioc(&mut self, intent: &OrderIntent) -> Result<Qty, DriverError> {
        let f = intent.fields();
        let method = match f.side {
            Side::Buy => "private/buy",
            Side::Sell => "private/sell",
        };
        let label = hotpath::domain::label::Label::for_intent(intent).unwrap();
        let r = self
            .call(
                method,
                &json!({
                    "instrument_name": f.instrument.as_str(),
                    "amount": f.qty.to_f64_lossy(),
                    "type": f.order_type.as_str(),
                    "price": f.limit_price.unwrap().to_f64_lossy(),
                    "time_in_force": f.time_in_force.as_str(),
                    "reduce_only": f.reduce_only,
                    "label": label.as_str(),
                }),
            )
            .map_err(|e| map_err(&e))?;
        Ok(Qty::from_f64_checked(num(&r["order"]["filled_amount"])).unwrap())
    }
    fn hedge_for(&mut self, _residual: &ExposedPosition) -> Option<HedgeQuote> {
        None
    }
}

fn map_err(e: &ClientError) -> DriverError {
    match e {
        ClientError::Venue { code, .. } => DriverError::Refused(*code),
        _ => DriverError::Unreachable,
    }
}

/// Picks a two-sided BTC call with a bid above the first tick band.
fn pick_option(c: &mut WsClient) -> String {
    let list =
        c.call("public/get_instruments", &json!({"currency": "BTC", "kind": "option"})).unwrap();
    for i in list.as_array().unwrap() {
        let name = i["instrument_name"].as_str().unwrap();
        if !name.ends_with("-C") {
            continue;
        }
        let ob = c.call("public/get_order_book", &json!({"instrument_name": name})).unwrap();
        let (b, a) = (num(&ob["best_bid_price"]), num(&ob["best_ask_price"]));
        if b > 0.006 && a > b {
            return name.to_string();
        }
    }
    panic!("no two-sided option book");
}

#[test]
fn planner_orders_flatten_real_positions_in_kill() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig {
        journal: dir.path().join("journal.jsonl"),
        ..SimConfig::default()
    })
    .expect("simulator starts");
    let mut client = WsClient::connect(sim.addr()).unwrap();
    client.auth(DEV_TRADE.0, DEV_TRADE.1).unwrap();

    // Set-up (oracle client, not engine code): long 0.5 of a call, short 2000 USD of perp.
    let option = pick_option(&mut client);
    let ob = client.call("public/get_order_book", &json!({"instrument_name": option})).unwrap();
    client
        .call("private/buy", &json!({"instrument_name": option, "amount": 0.5, "type": "limit",
            "price": num(&ob["best_ask_price"]), "time_in_force": "immediate_or_cancel", "label": "setup-opt"}))
        .unwrap();
    let ob = client.call("public/get_order_book", &json!({"instrument_name": PERP})).unwrap();
    client
        .call("private/sell", &json!({"instrument_name": PERP, "amount": 2000, "type": "limit",
            "price": num(&ob["best_bid_price"]), "time_in_force": "immediate_or_cancel", "label": "setup-perp"}))
        .unwrap();

    let instruments = client.call("public/get_instruments", &json!({"currency": "BTC"})).unwrap();
    let mut cache = InstrumentCache::new();
    cache.load_get_instruments(&instruments, now_ms()).unwrap();
    let mut driver = SimDriver {
        client: std::cell::RefCell::new(client),
        cache,
        instruments: vec![option.clone(), PERP.to_string()],
    };
    let before = driver.positions().unwrap();
    assert_eq!(before.len(), 2, "set-up opened two positions: {before:?}");
    assert!(before.iter().all(|p| p.position.raw() != 0));

    let strategy = StrategyId::new_checked("containment").unwrap();
    let identity =
        CloseIdentity { strategy_id: strategy, group_id: GroupId::derive(&strategy, b"sim") };
    let mut credits = CreditReserve::new(true);
    let market = SimDriver {
        client: std::cell::RefCell::new({
            let mut c = WsClient::connect(sim.addr()).unwrap();
            c.auth(DEV_TRADE.0, DEV_TRADE.1).unwrap();
            c
        }),
        cache: driver.cache.clone(),
        instruments: driver.instruments.clone(),
    };
    let report = run_emergency_close(
        &mut driver,
        &market,
        TradingMode::Kill,
        true,
        &mut credits,
        &EmergencyConfig::default(),
        &SystemClock,
        &identity,
    )
    .expect("emergency close runs in Kill");
    assert!(
        report.residual.is_empty(),
        "still exposed: {:?} blocked {:?}",
        report.residual,
        report.blocked
    );
    assert!((1..=3).contains(&report.close_attempts));
    assert!(!report.hedge_used);
    assert!(credits.drawn >= 3, "breaker open: cancel-all + closes drew on the reserve");
    let after = driver.positions().unwrap();
    assert!(after.iter().all(|p| p.position.raw() == 0), "{after:?}");

    // Oracle: the simulator's journal saw only reduce-only IOC limit orders from the planner.
    drop(driver);
    drop(market);
    sim.shutdown();
    let journal = std::fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
    let planner: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.to_string().contains("s4:"))
        .collect();
    assert!(!planner.is_empty(), "planner orders journaled");
    for order in &planner {
        let text = order.to_string();
        assert!(text.contains("\"reduce_only\":true"), "{text}");
        assert!(text.contains("immediate_or_cancel"), "{text}");
        assert!(!text.contains("\"market\""), "{text}");
    }
}
