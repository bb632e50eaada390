//! Instrument names, metadata decoding and the cache.

use hotpath::domain::instrument::{
    ExpiryDate, Instrument, InstrumentKind as K, InstrumentParseError as P, OptionRight, Settlement,
};
use hotpath::domain::metadata::{InstrumentCache, InstrumentMeta, MetadataError};
use hotpath::domain::units::{AmountUnit, Price, Qty};
use proptest::prelude::*;

fn p(text: &str) -> Price {
    Price::from_decimal_str(text).unwrap()
}

#[test]
fn parses_every_supported_form() {
    let cases = [
        (
            "BTC-27DEC24-60000-C",
            K::Option,
            Settlement::Inverse,
            Some((2024, 12, 27)),
            Some("60000"),
            Some(OptionRight::Call),
            AmountUnit::Coin,
        ),
        (
            "ETH-28MAR25-3500-P",
            K::Option,
            Settlement::Inverse,
            Some((2025, 3, 28)),
            Some("3500"),
            Some(OptionRight::Put),
            AmountUnit::Coin,
        ),
        (
            "BTC-1AUG25-110000-C",
            K::Option,
            Settlement::Inverse,
            Some((2025, 8, 1)),
            Some("110000"),
            Some(OptionRight::Call),
            AmountUnit::Coin,
        ),
        (
            "XRP_USDC-30JUN23-0d625-C",
            K::Option,
            Settlement::Linear,
            Some((2023, 6, 30)),
            Some("0.625"),
            Some(OptionRight::Call),
            AmountUnit::Coin,
        ),
        (
            "BTC-27DEC24",
            K::Future,
            Settlement::Inverse,
            Some((2024, 12, 27)),
            None,
            None,
            AmountUnit::Usd,
        ),
        ("BTC-PERPETUAL", K::Perpetual, Settlement::Inverse, None, None, None, AmountUnit::Usd),
        (
            "BTC_USDC-PERPETUAL",
            K::Perpetual,
            Settlement::Linear,
            None,
            None,
            None,
            AmountUnit::Coin,
        ),
        (
            "ETH_USDT-PERPETUAL",
            K::Perpetual,
            Settlement::Linear,
            None,
            None,
            None,
            AmountUnit::Coin,
        ),
    ];
    for (name, kind, settlement, expiry, strike, right, unit) in cases {
        let i = Instrument::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(i.as_str(), name);
        assert_eq!(i.kind(), kind, "{name}");
        assert_eq!(i.settlement(), settlement, "{name}");
        assert_eq!(i.expiry().map(|e| (e.year, e.month, e.day)), expiry, "{name}");
        assert_eq!(i.strike(), strike.map(p), "{name}");
        assert_eq!(i.option_right(), right, "{name}");
        assert_eq!(i.amount_unit(), unit, "{name}");
    }
    assert_eq!(Instrument::parse("BTC_USDC-PERPETUAL").unwrap().base_currency().as_str(), "BTC");
}

#[test]
fn expiry_is_0800_utc() {
    // Venue notes §7.1: BTC-1AUG25 expires at 1754035200000.
    assert_eq!(ExpiryDate::parse("1AUG25").unwrap().expiry_ms(), 1_754_035_200_000);
    assert_eq!(ExpiryDate::parse("27DEC24").unwrap().expiry_ms(), 1_735_286_400_000);
    assert_eq!(ExpiryDate::parse("29FEB24").unwrap().day, 29);
    assert_eq!(ExpiryDate::parse("29FEB25"), Err(P::BadExpiry));
}

#[test]
fn malformed_names_get_enumerated_errors() {
    let cases = [
        ("", P::Empty),
        ("BTC-27DEC24-60000-C-EXTRA-LONG-NAME-XXXXXXXXXXXXX", P::TooLong),
        ("btc-PERPETUAL", P::InvalidChar),
        ("BTC PERPETUAL", P::InvalidChar),
        ("BTC-PERPETUAL\u{e9}", P::InvalidChar),
        ("BTC_USDC", P::UnsupportedShape),
        ("BTC-FS-27DEC24_PERP", P::UnsupportedShape),
        ("BTC-27DEC24-60000", P::UnsupportedShape),
        ("B-PERPETUAL", P::BadCurrency),
        ("BTC_EUR-PERPETUAL", P::BadQuoteCurrency),
        ("BTC-07DEC24", P::BadExpiry),
        ("BTC-27DEX24", P::BadExpiry),
        ("BTC-32DEC24", P::BadExpiry),
        ("BTC-31NOV24", P::BadExpiry),
        ("BTC-27DEC24-0-C", P::BadStrike),
        ("BTC-27DEC24-060000-C", P::BadStrike),
        ("BTC-27DEC24-0d5-C", P::BadStrike),
        ("XRP_USDC-30JUN23-0d6250-C", P::BadStrike),
        ("XRP_USDC-30JUN23-0d-C", P::BadStrike),
        ("BTC-27DEC24-60000-X", P::BadOptionRight),
        ("BTC-27DEC24-60000-", P::BadOptionRight),
        ("BTC--PERPETUAL", P::UnsupportedShape),
    ];
    for (name, expected) in cases {
        assert_eq!(Instrument::parse(name), Err(expected), "{name:?}");
        assert_eq!(
            expected.reject_code(),
            hotpath::domain::reason_codes::RejectReasonCode::InstrumentUnknown
        );
    }
}

fn option_json() -> serde_json::Value {
    serde_json::json!({
        "instrument_name": "BTC-25JUL25-110000-C", "kind": "option", "tick_size": 0.0001,
        "tick_size_steps": [{"tick_size": 0.0005, "above_price": 0.005}], "min_trade_amount": 0.1,
        "contract_size": 1, "expiration_timestamp": 1_753_430_400_000_i64,
        "creation_timestamp": 1_750_406_400_000_i64, "is_active": true
    })
}

#[test]
fn metadata_decodes_venue_json_into_fixed_point() {
    let meta = InstrumentMeta::from_venue_json(&option_json(), 5).unwrap();
    assert_eq!(meta.tick_size, p("0.0001"));
    assert_eq!(meta.tick_steps().len(), 1);
    assert_eq!(meta.tick_at(p("0.005")), p("0.0001"), "at the threshold the base tick applies");
    assert_eq!(meta.tick_at(p("0.0051")), p("0.0005"));
    assert_eq!(meta.amount_step, Qty::from_decimal_str("0.1").unwrap());
    assert!(meta.is_on_tick(p("0.0049")));
    assert!(!meta.is_on_tick(p("0.0052")));
    assert_eq!(meta.expiration_timestamp_ms, Some(1_753_430_400_000));

    let perp = serde_json::json!({
        "instrument_name": "BTC-PERPETUAL", "kind": "future", "tick_size": 0.5, "tick_size_steps": [],
        "min_trade_amount": 10, "contract_size": 10, "expiration_timestamp": 32_503_708_800_000_i64,
        "creation_timestamp": 1_534_242_287_000_i64, "is_active": true
    });
    let perp = InstrumentMeta::from_venue_json(&perp, 0).unwrap();
    assert_eq!(perp.expiration_timestamp_ms, None, "perpetual far-future expiry means none");
    assert_eq!(perp.amount_step.to_string(), "10");
}

#[test]
fn metadata_errors_are_enumerated() {
    let with = |key: &str, value: serde_json::Value| {
        let mut v = option_json();
        v[key] = value;
        InstrumentMeta::from_venue_json(&v, 0)
    };
    assert_eq!(
        with("tick_size", serde_json::Value::Null),
        Err(MetadataError::FieldMissing("tick_size"))
    );
    assert_eq!(
        with("tick_size", serde_json::json!("0.1")),
        Err(MetadataError::FieldInvalid("tick_size"))
    );
    assert_eq!(
        with("tick_size", serde_json::json!(-0.1)),
        Err(MetadataError::NotPositive("tick_size"))
    );
    assert_eq!(
        with("min_trade_amount", serde_json::json!(0)),
        Err(MetadataError::NotPositive("min_trade_amount"))
    );
    assert_eq!(with("kind", serde_json::json!("future")), Err(MetadataError::KindMismatch));
    assert_eq!(
        with("instrument_name", serde_json::json!("NOPE")),
        Err(MetadataError::Name(P::UnsupportedShape))
    );
    assert_eq!(
        with(
            "tick_size_steps",
            serde_json::json!([{"tick_size": 0.0005, "above_price": 0.005}, {"tick_size": 0.001, "above_price": 0.001}])
        ),
        Err(MetadataError::TickStepsInvalid)
    );
    assert_eq!(
        with("is_active", serde_json::json!(1)),
        Err(MetadataError::FieldInvalid("is_active"))
    );
    assert_eq!(
        InstrumentMeta::from_venue_json(&serde_json::json!([1]), 0),
        Err(MetadataError::FieldInvalid("instrument"))
    );
}

#[test]
fn cache_is_ordered_and_tracks_staleness() {
    let names = ["ETH-PERPETUAL", "BTC-PERPETUAL", "BTC-27DEC24"];
    let mut cache = InstrumentCache::new();
    for name in names {
        let v = serde_json::json!({
            "instrument_name": name, "kind": "future", "tick_size": 0.5, "min_trade_amount": 10,
            "contract_size": 10, "expiration_timestamp": 1_735_286_400_000_i64,
            "creation_timestamp": 0, "is_active": true
        });
        cache.upsert(InstrumentMeta::from_venue_json(&v, 1_000).unwrap()).unwrap();
    }
    let order: Vec<&str> = cache.iter().map(|m| m.instrument.as_str()).collect();
    assert_eq!(order, ["BTC-27DEC24", "BTC-PERPETUAL", "ETH-PERPETUAL"]);
    let meta = cache.get("BTC-PERPETUAL").unwrap();
    assert!(!meta.is_stale(1_000 + 3_600_000, 3_600));
    assert!(meta.is_stale(1_000 + 3_600_001, 3_600));
    assert!(meta.is_stale(999, 3_600), "fetched in the future (clock went back) counts as stale");
    assert_eq!(cache.age_s_max(61_000), 60);

    // A listing envelope loads all-or-nothing.
    let listing = serde_json::json!({"jsonrpc": "2.0", "result": [option_json()]});
    assert_eq!(cache.load_get_instruments(&listing, 0), Ok(1));
    assert_eq!(cache.len(), 4);
    assert_eq!(
        cache.load_get_instruments(&serde_json::json!({"result": 3}), 0),
        Err(MetadataError::FieldInvalid("result"))
    );
}

fn name_strategy() -> impl Strategy<Value = String> {
    let currency = prop_oneof![
        Just("BTC".to_owned()),
        Just("ETH".to_owned()),
        Just("XRP_USDC".to_owned()),
        Just("BTC_USDC".to_owned())
    ];
    let month = prop::sample::select(vec![
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ]);
    (currency, 1_u8..=28, month, 20_u8..=40, 1_u32..=500_000, prop::bool::ANY, 0_u8..3).prop_map(
        |(ccy, day, month, year, strike, call, shape)| match shape {
            0 => format!("{ccy}-PERPETUAL"),
            1 => format!("{ccy}-{day}{month}{year}"),
            _ => format!("{ccy}-{day}{month}{year}-{strike}-{}", if call { "C" } else { "P" }),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Any string: an error or a valid instrument, never a panic.
    #[test]
    fn arbitrary_strings_never_panic(text in ".{0,48}") {
        if let Ok(i) = Instrument::parse(&text) {
            prop_assert_eq!(i.as_str(), text.as_str());
        }
    }

    /// Strings over the instrument alphabet (much likelier to get deep into the parser).
    #[test]
    fn alphabet_strings_never_panic(text in "[A-Z0-9_d-]{0,44}") {
        if let Ok(i) = Instrument::parse(&text) {
            prop_assert_eq!(i.as_str(), text.as_str());
        }
    }

    /// Valid names round-trip; single-byte mutations of them are errors or other valid names.
    #[test]
    fn valid_names_round_trip_and_mutations_do_not_panic(name in name_strategy(), at in 0_usize..40, byte in 0_u8..128) {
        let parsed = Instrument::parse(&name).unwrap();
        prop_assert_eq!(parsed.as_str(), name.as_str());
        let mut bytes = name.into_bytes();
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        if let Ok(mutated) = String::from_utf8(bytes) {
            if let Ok(i) = Instrument::parse(&mutated) {
                prop_assert_eq!(i.as_str(), mutated.as_str());
            }
        }
    }

    /// Random JSON for metadata never panics the decoder.
    #[test]
    fn metadata_decoder_never_panics(tick in proptest::num::f64::ANY, min in proptest::num::f64::ANY, steps in 0_usize..7) {
        let mut v = option_json();
        v["tick_size"] = serde_json::json!(tick);
        v["min_trade_amount"] = serde_json::json!(min);
        v["tick_size_steps"] = serde_json::Value::Array((0..steps).map(|i| serde_json::json!({"tick_size": tick, "above_price": i})).collect());
        let _ = InstrumentMeta::from_venue_json(&v, 0);
    }
}
