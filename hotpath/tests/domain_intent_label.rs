//! Intents, canonical bytes, hashes, labels (contract §5.4) and fixed-point units (§5.1).

use hotpath::domain::instrument::Instrument;
use hotpath::domain::intent::{
    GroupId, IntentFields, IntentHash, IntentHashError, OrderIntent, OrderType, Side, StrategyId,
    TimeInForce, CANONICAL_LAYOUT_VERSION, INTENT_HASH_VERSION,
};
use hotpath::domain::label::{Label, LabelError, LABEL_LEN_MAX};
use hotpath::domain::reason_codes::RejectReasonCode;
use hotpath::domain::units::{AmountUnit, OrderSize, OrderSizeError, Price, Qty, UnitError, Usd};
use proptest::prelude::*;

fn intent_fields() -> IntentFields {
    let strategy_id = StrategyId::new_checked("strangle_btc_low_vol").unwrap();
    IntentFields {
        strategy_id,
        group_id: GroupId::derive(&strategy_id, b"tick-1"),
        leg_index: 1,
        instrument: Instrument::parse("BTC-27DEC24-60000-C").unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
        reduce_only: false,
        linked_order_type: None,
        trigger_price: None,
        qty: Qty::from_decimal_str("0.3").unwrap(),
        limit_price: Some(Price::from_decimal_str("0.0455").unwrap()),
        contracts: None,
        emergency_close: false,
    }
}

/// Pinned values: a change here is a hash-version change, never an edit in place.
#[test]
fn hash_and_canonical_bytes_are_pinned() {
    let intent = OrderIntent::new(intent_fields());
    let bytes = intent.canonical_bytes().as_bytes();
    assert_eq!(bytes[0], CANONICAL_LAYOUT_VERSION);
    assert_eq!(bytes[1], INTENT_HASH_VERSION);
    assert_eq!(usize::from(bytes[2]), "BTC-27DEC24-60000-C".len());
    assert_eq!(&bytes[3..22], b"BTC-27DEC24-60000-C");
    assert_eq!(intent.canonical_bytes().identity().len(), 1 + 1 + 19 + 1 + 8 + 1 + 8 + 16 + 1);
    assert_eq!(intent.hash(), OrderIntent::new(intent_fields()).hash());
    assert_eq!(intent.hash().to_string(), "f86d493c1fc8d53a");
}

#[test]
fn hash_covers_identity_fields_only() {
    let base = OrderIntent::new(intent_fields()).hash();
    let mutations: [fn(&mut IntentFields); 6] = [
        |f| f.side = Side::Sell,
        |f| f.qty = Qty::from_decimal_str("0.4").unwrap(),
        |f| f.limit_price = Some(Price::from_decimal_str("0.046").unwrap()),
        |f| f.leg_index = 0,
        |f| f.group_id = GroupId::from_bytes([7; 16]),
        |f| f.instrument = Instrument::parse("BTC-27DEC24-60000-P").unwrap(),
    ];
    for mutate in mutations {
        let mut f = intent_fields();
        mutate(&mut f);
        assert_ne!(OrderIntent::new(f).hash(), base);
    }
    // Attributes travel in the canonical bytes but are not part of the §5.4 hash.
    let mut f = intent_fields();
    f.time_in_force = TimeInForce::GoodTilCancelled;
    let other = OrderIntent::new(f);
    assert_eq!(other.hash(), base);
    assert_ne!(other.canonical_bytes(), OrderIntent::new(intent_fields()).canonical_bytes());
}

#[test]
fn intent_hash_untrusted_bytes() {
    let h = OrderIntent::new(intent_fields()).hash();
    assert_eq!(IntentHash::new_checked(&h.to_be_bytes()), Ok(h));
    let intent = OrderIntent::new(intent_fields());
    assert_eq!(
        IntentHash::of_identity(intent.canonical_bytes().identity()),
        h,
        "replay recomputes the hash"
    );
    assert_eq!(IntentHash::new_checked(&[1, 2, 3]), Err(IntentHashError::Length));
    assert_eq!(IntentHash::from_hex16(&h.to_hex16()), Ok(h));
    assert_eq!(IntentHash::from_hex16(b"0123456789ABCDEF"), Err(IntentHashError::NotHex));
}

/// AT-216: label starts `s4:`, ≤ 64 chars, parses back into its parts.
#[test]
fn at_216_label_format_and_parse() {
    let intent = OrderIntent::new(intent_fields());
    let label = Label::for_intent(&intent).unwrap();
    assert!(label.as_str().starts_with("s4:"));
    assert!(label.len() <= LABEL_LEN_MAX);
    let parts = Label::parse(label.as_str()).unwrap();
    assert_eq!(parts.intent_hash, intent.hash());
    assert_eq!(parts.leg_index, 1);
    assert_eq!(parts.gid12, intent.fields().group_id.gid12());
    assert_eq!(parts.sid8, intent.fields().strategy_id.sid8());
}

/// AT-921: the general form refuses anything over 64 chars — no truncation.
#[test]
fn at_921_label_too_long_is_rejected() {
    let sid = "strangle_btc_low_vol_with_a_very_long_name";
    let gid = "0f8fad5bd9cb469fa16570867728950e";
    assert_eq!(Label::compose(sid, gid, 0, "847f5bfce2c36d5e"), Err(LabelError::TooLong));
    assert_eq!(LabelError::TooLong.reject_code(), RejectReasonCode::LabelTooLong);
    let exact = Label::compose(&"a".repeat(64 - 3 - 1 - 1 - 1 - 1 - 1 - 1), "b", 0, "c").unwrap();
    assert_eq!(exact.len(), 64);
    assert_eq!(Label::compose("a:b", "c", 0, "d"), Err(LabelError::BadComponent));
}

#[test]
fn label_parse_errors_are_enumerated() {
    let cases = [
        ("x4:fe3c1e9f:fe7505630c73:0:847f5bfce2c36d5e", LabelError::BadPrefix),
        ("s4:fe3c1e9f:fe7505630c73:0", LabelError::FieldCount),
        ("s4:fe3c1e9f:fe7505630c73:0:847f5bfce2c36d5e:x", LabelError::FieldCount),
        ("s4:FE3C1E9F:fe7505630c73:0:847f5bfce2c36d5e", LabelError::BadSid),
        ("s4:fe3c1e9f:fe7505630c7:0:847f5bfce2c36d5e", LabelError::BadGid),
        ("s4:fe3c1e9f:fe7505630c73:01:847f5bfce2c36d5e", LabelError::BadLegIndex),
        ("s4:fe3c1e9f:fe7505630c73:256:847f5bfce2c36d5e", LabelError::BadLegIndex),
        ("s4:fe3c1e9f:fe7505630c73:0:847f5bfce2c36d5", LabelError::BadIntentHash),
    ];
    for (text, expected) in cases {
        assert_eq!(Label::parse(text), Err(expected), "{text}");
    }
}

#[test]
fn ids_are_validated() {
    assert!(StrategyId::new_checked("").is_err());
    assert!(StrategyId::new_checked("Upper").is_err());
    assert!(StrategyId::new_checked(&"a".repeat(33)).is_err());
}

/// AT-277: option sized in coin, perp in USD; AT-920: mismatch refused.
#[test]
fn at_277_at_920_order_size() {
    let index = Some(Price::from_decimal_str("100000").unwrap());
    let option = OrderSize::new_checked(
        AmountUnit::Coin,
        Qty::from_decimal_str("0.3").unwrap(),
        None,
        Qty::from_decimal_str("1").unwrap(),
        index,
    )
    .unwrap();
    assert_eq!(option.qty_coin, Some(Qty::from_decimal_str("0.3").unwrap()));
    assert_eq!(option.qty_usd, None);
    assert_eq!(option.notional_usd, Usd::from_decimal_str("30000").unwrap());
    let perp = OrderSize::new_checked(
        AmountUnit::Usd,
        Qty::from_decimal_str("30000").unwrap(),
        Some(3_000),
        Qty::from_decimal_str("10").unwrap(),
        index,
    )
    .unwrap();
    assert_eq!(perp.qty_usd, Some(Qty::from_decimal_str("30000").unwrap()));
    assert_eq!(perp.qty_coin, Some(Qty::from_decimal_str("0.3").unwrap()));
    assert_eq!(perp.notional_usd, Usd::from_decimal_str("30000").unwrap());
    assert_eq!(
        OrderSize::new_checked(
            AmountUnit::Usd,
            Qty::from_decimal_str("30000").unwrap(),
            Some(3_004),
            Qty::from_decimal_str("10").unwrap(),
            index
        ),
        Err(OrderSizeError::ContractsAmountMismatch)
    );
    // Within 0.1 %: 3002 contracts = 30 020 vs 30 000 (0.067 %).
    assert!(OrderSize::new_checked(
        AmountUnit::Usd,
        Qty::from_decimal_str("30000").unwrap(),
        Some(3_002),
        Qty::from_decimal_str("10").unwrap(),
        index
    )
    .is_ok());
    assert_eq!(
        OrderSize::new_checked(
            AmountUnit::Coin,
            Qty::from_decimal_str("0.3").unwrap(),
            None,
            Qty::from_decimal_str("1").unwrap(),
            None
        ),
        Err(OrderSizeError::IndexPriceMissing)
    );
}

#[test]
fn fixed_point_boundary() {
    assert_eq!(Price::from_f64_checked(0.0001).unwrap().raw(), 10_000);
    assert_eq!(Price::from_f64_checked(f64::NAN), Err(UnitError::NotFinite));
    assert_eq!(Price::from_f64_checked(1e11), Err(UnitError::OutOfRange));
    assert_eq!(Price::from_decimal_str("0.123456789"), Err(UnitError::TooPrecise));
    assert_eq!(Price::from_decimal_str("1.2.3"), Err(UnitError::Malformed));
    assert_eq!(Price::from_decimal_str("-"), Err(UnitError::Malformed));
    assert_eq!(Price::from_decimal_str("-12.5").unwrap().to_string(), "-12.5");
    assert_eq!(Price::from_decimal_str("0.0455").unwrap().to_string(), "0.0455");
    assert_eq!(Qty::from_whole_checked(3).unwrap().to_string(), "3");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Label round trip for every leg index and any hash/group/strategy.
    #[test]
    fn label_round_trip(sid in "[a-z0-9_]{1,32}", key in proptest::collection::vec(any::<u8>(), 0..32), leg in any::<u8>(), raw_qty in 1_i64..1_000_000_000_000) {
        let strategy_id = StrategyId::new_checked(&sid).unwrap();
        let mut f = intent_fields();
        f.strategy_id = strategy_id;
        f.group_id = GroupId::derive(&strategy_id, &key);
        f.leg_index = leg;
        f.qty = Qty::from_raw(raw_qty);
        let intent = OrderIntent::new(f);
        let label = Label::for_intent(&intent).unwrap();
        prop_assert!(label.len() <= LABEL_LEN_MAX);
        let parts = Label::parse(label.as_str()).unwrap();
        prop_assert_eq!(parts.intent_hash, intent.hash());
        prop_assert_eq!(parts.leg_index, leg);
        prop_assert_eq!(parts.gid12, f.group_id.gid12());
        prop_assert_eq!(parts.sid8, strategy_id.sid8());
        let rebuilt = Label::compose(
            std::str::from_utf8(&parts.sid8).unwrap(),
            std::str::from_utf8(&parts.gid12).unwrap(),
            parts.leg_index,
            &parts.intent_hash.to_string(),
        ).unwrap();
        prop_assert_eq!(rebuilt, label);
    }

    /// Arbitrary text never panics the label parser.
    #[test]
    fn label_parser_never_panics(text in ".{0,80}") {
        let _ = Label::parse(&text);
    }

    /// Decimal text round-trips through the fixed-point type.
    #[test]
    fn decimal_round_trip(raw in -1_000_000_000_000_000_i64..1_000_000_000_000_000) {
        let price = Price::from_raw(raw);
        prop_assert_eq!(Price::from_decimal_str(&price.to_string()), Ok(price));
    }
}
