//! The instrument universe: BTC and ETH option chains, dated futures and perpetuals, built
//! relative to the simulator's start time with the venue's tick sizes, minimums and
//! contract sizes (protocol notes §7).

use serde_json::{json, Value};

use crate::util::{amt, civil_from_days, days_from_civil, expiry_code, px, strike_str, weekday};

/// Settlement currency / underlying of an instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    /// Bitcoin (inverse instruments quoted against `btc_usd`).
    Btc,
    /// Ether (inverse instruments quoted against `eth_usd`).
    Eth,
}

impl Currency {
    /// Both currencies in a stable order.
    pub const ALL: [Currency; 2] = [Currency::Btc, Currency::Eth];

    /// `BTC` / `ETH`.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Btc => "BTC",
            Currency::Eth => "ETH",
        }
    }

    /// `btc_usd` / `eth_usd`.
    pub fn index_name(self) -> &'static str {
        match self {
            Currency::Btc => "btc_usd",
            Currency::Eth => "eth_usd",
        }
    }

    /// Parses `BTC`/`btc`/`ETH`/`eth`.
    pub fn parse(s: &str) -> Option<Currency> {
        match s.to_ascii_uppercase().as_str() {
            "BTC" => Some(Currency::Btc),
            "ETH" => Some(Currency::Eth),
            _ => None,
        }
    }

    /// Parses an index name (`btc_usd`).
    pub fn from_index(s: &str) -> Option<Currency> {
        match s {
            "btc_usd" => Some(Currency::Btc),
            "eth_usd" => Some(Currency::Eth),
            _ => None,
        }
    }
}

/// Instrument kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Dated future or perpetual (inverse; amount in USD).
    Future,
    /// Inverse option (amount in coin, price in coin).
    Option,
}

impl Kind {
    /// `future` / `option`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Future => "future",
            Kind::Option => "option",
        }
    }
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionType {
    /// Call.
    Call,
    /// Put.
    Put,
}

/// One tradable instrument. Prices and amounts are in the fixed-point units of `util`.
#[derive(Debug, Clone)]
pub struct Instrument {
    /// Venue name, e.g. `BTC-1AUG25-110000-C`.
    pub name: String,
    /// Integer id.
    pub id: u32,
    /// Kind.
    pub kind: Kind,
    /// Underlying / settlement currency.
    pub currency: Currency,
    /// True for `*-PERPETUAL`.
    pub perpetual: bool,
    /// Strike in USD (options).
    pub strike: f64,
    /// Call/put (options).
    pub option_type: Option<OptionType>,
    /// Expiry in ms (perpetual: far future).
    pub expiry_ms: i64,
    /// Creation in ms.
    pub creation_ms: i64,
    /// `perpetual` / `day` / `week` / `month` / `quarter`.
    pub settlement_period: &'static str,
    /// Base tick in price units.
    pub tick: i64,
    /// `(above_price, tick)` steps in price units, ascending.
    pub tick_steps: Vec<(i64, i64)>,
    /// Minimum order amount in amount units.
    pub min_amount: i64,
    /// Contract size in amount units.
    pub contract_size: i64,
    /// Maker fee rate.
    pub maker_fee: f64,
    /// Taker fee rate.
    pub taker_fee: f64,
}

impl Instrument {
    /// Tick size that applies at `price` (units): the last step whose `above_price` is
    /// strictly below the price wins (Deribit: "above price p the tick becomes t").
    pub fn tick_at(&self, price: i64) -> i64 {
        let mut t = self.tick;
        for &(above, step) in &self.tick_steps {
            if price > above {
                t = step;
            }
        }
        t
    }

    /// True when `price` lies on the tick grid, tick steps included.
    pub fn on_grid(&self, price: i64) -> bool {
        let t = self.tick_at(price);
        t > 0 && price % t == 0
    }

    /// The next grid price strictly below `price` (None at/below the first tick).
    pub fn tick_below(&self, price: i64) -> Option<i64> {
        let t = self.tick_at(price - 1);
        let p = (price - 1) / t * t;
        (p >= self.tick).then_some(p)
    }

    /// The next grid price strictly above `price`.
    pub fn tick_above(&self, price: i64) -> i64 {
        let t = self.tick_at(price + 1);
        (price / t + 1) * t
    }

    /// Rounds a price down to the grid, never below one base tick.
    pub fn floor_to_grid(&self, price: i64) -> i64 {
        let t = self.tick_at(price);
        (price / t * t).max(self.tick)
    }

    /// Rounds a price up to the grid.
    pub fn ceil_to_grid(&self, price: i64) -> i64 {
        let t = self.tick_at(price);
        ((price + t - 1) / t * t).max(self.tick)
    }

    /// Granularity of order amounts: options trade in steps of the minimum (0.1 BTC), futures
    /// in whole contracts.
    pub fn amount_step(&self) -> i64 {
        self.contract_size.min(self.min_amount).max(1)
    }

    /// Years to expiry from `now_ms` (floored at one minute so pricing stays finite).
    #[allow(clippy::cast_precision_loss)]
    pub fn years_to_expiry(&self, now_ms: i64) -> f64 {
        ((self.expiry_ms - now_ms).max(60_000)) as f64 / (365.0 * 86_400_000.0)
    }

    /// Wire object for `public/get_instrument(s)`.
    pub fn to_json(&self, now_ms: i64) -> Value {
        let steps: Vec<Value> = self
            .tick_steps
            .iter()
            .map(|&(above, t)| json!({"above_price": px(above), "tick_size": px(t)}))
            .collect();
        let ccy = self.currency.code();
        let mut v = json!({
            "instrument_name": self.name,
            "instrument_id": self.id,
            "kind": self.kind.as_str(),
            "instrument_type": "reversed",
            "base_currency": ccy,
            "quote_currency": if self.kind == Kind::Option { ccy } else { "USD" },
            "counter_currency": "USD",
            "settlement_currency": ccy,
            "price_index": self.currency.index_name(),
            "tick_size": px(self.tick),
            "tick_size_steps": steps,
            "min_trade_amount": amt(self.min_amount),
            "contract_size": amt(self.contract_size),
            "settlement_period": self.settlement_period,
            "creation_timestamp": self.creation_ms,
            "expiration_timestamp": self.expiry_ms,
            "is_active": self.expiry_ms > now_ms,
            "maker_commission": self.maker_fee,
            "taker_commission": self.taker_fee,
            "block_trade_commission": if self.kind == Kind::Option { 0.0003 } else { 0.00025 },
            "block_trade_min_trade_amount": if self.kind == Kind::Option { 25 } else { 200_000 },
            "block_trade_tick_size": if self.kind == Kind::Option { 0.0001 } else { 0.01 },
            "rfq": false,
        });
        if let Some(map) = v.as_object_mut() {
            match self.kind {
                Kind::Option => {
                    map.insert("strike".into(), json!(self.strike));
                    let ot = match self.option_type {
                        Some(OptionType::Put) => "put",
                        _ => "call",
                    };
                    map.insert("option_type".into(), json!(ot));
                }
                Kind::Future => {
                    map.insert("max_leverage".into(), json!(50));
                    map.insert("max_liquidation_commission".into(), json!(0.0075));
                    map.insert("future_type".into(), json!("reversed"));
                }
            }
        }
        v
    }
}

const DAY_MS: i64 = 86_400_000;
const EIGHT_H_MS: i64 = 8 * 3_600_000;

/// Last Friday of (year, month) as a day number.
fn last_friday(y: i64, m: u32) -> i64 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let mut d = days_from_civil(ny, nm, 1) - 1;
    while weekday(d) != 4 {
        d -= 1;
    }
    d
}

/// Expiry day numbers (each settles 08:00 UTC) relative to `now_ms`: a daily, a weekly, a
/// monthly and a quarterly, as (day, settlement_period). Distinct and strictly ascending.
pub fn expiry_days(now_ms: i64) -> Vec<(i64, &'static str)> {
    let today = now_ms.div_euclid(DAY_MS);
    // Next 08:00 at least 12 h away, so a fresh sim never lists a nearly expired daily.
    let mut daily = today + 1;
    if daily * DAY_MS + EIGHT_H_MS - now_ms < 12 * 3_600_000 {
        daily += 1;
    }
    let mut weekly = daily + 1;
    while weekday(weekly) != 4 {
        weekly += 1;
    }
    let (y, m, _) = civil_from_days(today);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let mut monthly = last_friday(ny, nm);
    if monthly <= weekly {
        let (y2, m2) = if nm == 12 { (ny + 1, 1) } else { (ny, nm + 1) };
        monthly = last_friday(y2, m2);
    }
    // Quarter months are Mar/Jun/Sep/Dec; take the first quarter-end after the monthly.
    let mut qy = ny;
    let mut qm = nm;
    loop {
        qm += 1;
        if qm > 12 {
            qm = 1;
            qy += 1;
        }
        if qm % 3 == 0 && last_friday(qy, qm) > monthly {
            break;
        }
    }
    let quarterly = last_friday(qy, qm);
    vec![(daily, "day"), (weekly, "week"), (monthly, "month"), (quarterly, "quarter")]
}

/// Strike step per expiry bucket and currency.
fn strike_step(ccy: Currency, period: &str) -> f64 {
    match (ccy, period) {
        (Currency::Btc, "day") => 1000.0,
        (Currency::Btc, "week") => 2000.0,
        (Currency::Btc, "month") => 5000.0,
        (Currency::Btc, _) => 10_000.0,
        (Currency::Eth, "day") => 25.0,
        (Currency::Eth, "week") => 50.0,
        (Currency::Eth, "month") => 100.0,
        (Currency::Eth, _) => 200.0,
    }
}

/// Strikes on each side of the money per expiry.
pub const STRIKES_EACH_SIDE: i64 = 4;

/// Builds the whole universe for a sim that starts at `now_ms` with the given spot levels.
pub fn build_universe(now_ms: i64, spot_btc: f64, spot_eth: f64) -> Vec<Instrument> {
    let mut out = Vec::new();
    let mut id: u32 = 100_000;
    let creation = now_ms - 30 * DAY_MS;
    let expiries = expiry_days(now_ms);
    for ccy in Currency::ALL {
        let spot = match ccy {
            Currency::Btc => spot_btc,
            Currency::Eth => spot_eth,
        };
        let (fut_tick, perp_tick, cs, min_fut) = match ccy {
            // BTC inverse: 10 USD contracts, perp tick 0.5, dated futures tick 2.5.
            Currency::Btc => (250_000_000, 50_000_000, 10_000_000, 10_000_000),
            // ETH inverse: 1 USD contracts, tick 0.05 (perp and dated).
            Currency::Eth => (5_000_000, 5_000_000, 1_000_000, 1_000_000),
        };
        id += 1;
        out.push(Instrument {
            name: format!("{}-PERPETUAL", ccy.code()),
            id,
            kind: Kind::Future,
            currency: ccy,
            perpetual: true,
            strike: 0.0,
            option_type: None,
            expiry_ms: 32_503_708_800_000,
            creation_ms: creation,
            settlement_period: "perpetual",
            tick: perp_tick,
            tick_steps: Vec::new(),
            min_amount: min_fut,
            contract_size: cs,
            maker_fee: 0.0,
            taker_fee: 0.0005,
        });
        // Dated futures on the monthly and quarterly expiries.
        for &(day, period) in expiries.iter().filter(|(_, p)| *p == "month" || *p == "quarter") {
            id += 1;
            out.push(Instrument {
                name: format!("{}-{}", ccy.code(), expiry_code(day)),
                id,
                kind: Kind::Future,
                currency: ccy,
                perpetual: false,
                strike: 0.0,
                option_type: None,
                expiry_ms: day * DAY_MS + EIGHT_H_MS,
                creation_ms: creation,
                settlement_period: period,
                tick: fut_tick,
                tick_steps: Vec::new(),
                min_amount: min_fut,
                contract_size: cs,
                maker_fee: 0.0,
                taker_fee: 0.0005,
            });
        }
        let min_opt = match ccy {
            Currency::Btc => 100_000,   // 0.1 BTC
            Currency::Eth => 1_000_000, // 1 ETH
        };
        for &(day, period) in &expiries {
            let step = strike_step(ccy, period);
            let atm = (spot / step).round() * step;
            for i in -STRIKES_EACH_SIDE..=STRIKES_EACH_SIDE {
                #[allow(clippy::cast_precision_loss)]
                let k = atm + i as f64 * step;
                if k <= 0.0 {
                    continue;
                }
                for (ot, suffix) in [(OptionType::Call, "C"), (OptionType::Put, "P")] {
                    id += 1;
                    out.push(Instrument {
                        name: format!(
                            "{}-{}-{}-{}",
                            ccy.code(),
                            expiry_code(day),
                            strike_str(k),
                            suffix
                        ),
                        id,
                        kind: Kind::Option,
                        currency: ccy,
                        perpetual: false,
                        strike: k,
                        option_type: Some(ot),
                        expiry_ms: day * DAY_MS + EIGHT_H_MS,
                        creation_ms: creation,
                        settlement_period: period,
                        tick: 10_000,                        // 0.0001
                        tick_steps: vec![(500_000, 50_000)], // above 0.005: 0.0005
                        min_amount: min_opt,
                        contract_size: 1_000_000,
                        maker_fee: 0.0003,
                        taker_fee: 0.0003,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_tick_steps_follow_the_venue() {
        let u = build_universe(1_752_139_800_000, 100_000.0, 3_500.0);
        let o = u.iter().find(|i| i.kind == Kind::Option).unwrap();
        assert!(o.on_grid(1_650_000)); // 0.0165 on the 0.0005 grid
        assert!(!o.on_grid(520_000)); // 0.0052 is not
        assert!(o.on_grid(490_000)); // 0.0049 below 0.005 on the 0.0001 grid
        assert_eq!(o.tick_below(1_650_000), Some(1_600_000));
        assert_eq!(o.tick_above(500_000), 550_000);
        assert_eq!(o.tick_below(10_000), None);
    }

    #[test]
    fn universe_has_both_chains_and_perps() {
        let u = build_universe(1_752_139_800_000, 100_000.0, 3_500.0);
        assert!(u.iter().any(|i| i.name == "BTC-PERPETUAL"));
        assert!(u.iter().any(|i| i.name == "ETH-PERPETUAL"));
        let names: std::collections::HashSet<_> = u.iter().map(|i| i.name.clone()).collect();
        assert_eq!(names.len(), u.len(), "names are unique");
        let exp = expiry_days(1_752_139_800_000);
        assert!(exp.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(u.iter().filter(|i| i.kind == Kind::Option).count() >= 100);
    }
}
