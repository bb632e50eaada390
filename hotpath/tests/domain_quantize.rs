//! Quantization (contract §5.5): AT-219 (BUY down / SELL up), AT-908 (too small), AT-926
//! (missing metadata), and properties: never more aggressive, idempotent, always on the grid.

use hotpath::domain::instrument::Instrument;
use hotpath::domain::intent::Side;
use hotpath::domain::metadata::{InstrumentMeta, TickStep};
use hotpath::domain::quantize::{quantize, quantize_price, quantize_qty};
use hotpath::domain::reason_codes::RejectReasonCode as R;
use hotpath::domain::units::{Price, Qty};
use proptest::prelude::*;

fn p(text: &str) -> Price {
    Price::from_decimal_str(text).unwrap()
}
fn q(text: &str) -> Qty {
    Qty::from_decimal_str(text).unwrap()
}

fn btc_option() -> InstrumentMeta {
    InstrumentMeta::new_checked(
        Instrument::parse("BTC-27DEC24-60000-C").unwrap(),
        p("0.0001"),
        &[TickStep { above_price: p("0.005"), tick_size: p("0.0005") }],
        q("0.1"),
        q("1"),
        Some(1_735_286_400_000),
        0,
        true,
        0,
    )
    .unwrap()
}

fn btc_perp() -> InstrumentMeta {
    InstrumentMeta::new_checked(
        Instrument::parse("BTC-PERPETUAL").unwrap(),
        p("0.5"),
        &[],
        q("10"),
        q("10"),
        None,
        0,
        true,
        0,
    )
    .unwrap()
}

/// A synthetic instrument with three bands whose thresholds are not multiples of the coarser
/// ticks, to exercise band crossings.
fn awkward() -> InstrumentMeta {
    InstrumentMeta::new_checked(
        Instrument::parse("ETH-27DEC24").unwrap(),
        p("0.01"),
        &[
            TickStep { above_price: p("10.003"), tick_size: p("0.05") },
            TickStep { above_price: p("100.07"), tick_size: p("0.25") },
        ],
        q("1"),
        q("1"),
        None,
        0,
        true,
        0,
    )
    .unwrap()
}

#[test]
fn at_219_buy_rounds_down_sell_rounds_up() {
    let m = btc_option();
    assert_eq!(quantize_price(&m, Side::Buy, p("0.00457")), Ok(p("0.0045")));
    assert_eq!(quantize_price(&m, Side::Sell, p("0.00457")), Ok(p("0.0046")));
    // Above the 0.005 step the tick is 0.0005.
    assert_eq!(quantize_price(&m, Side::Buy, p("0.04573")), Ok(p("0.0455")));
    assert_eq!(quantize_price(&m, Side::Sell, p("0.04573")), Ok(p("0.046")));
    // Crossing down into the fine band, and up into the coarse band.
    assert_eq!(quantize_price(&m, Side::Buy, p("0.00512")), Ok(p("0.005")));
    assert_eq!(quantize_price(&m, Side::Sell, p("0.00501")), Ok(p("0.0055")));
    let perp = btc_perp();
    assert_eq!(quantize_price(&perp, Side::Buy, p("99999.74")), Ok(p("99999.5")));
    assert_eq!(quantize_price(&perp, Side::Sell, p("99999.74")), Ok(p("100000")));
    assert_eq!(
        quantize_price(&perp, Side::Buy, p("0.2")),
        Err(R::LimitPriceInvalid),
        "rounds to zero"
    );
    assert_eq!(quantize_price(&perp, Side::Sell, p("-1")), Err(R::LimitPriceInvalid));
}

#[test]
fn at_908_qty_rounds_down_and_too_small_is_rejected() {
    let m = btc_option();
    assert_eq!(quantize_qty(&m, q("0.37")), Ok(q("0.3")));
    assert_eq!(quantize_qty(&m, q("0.1")), Ok(q("0.1")));
    assert_eq!(quantize_qty(&m, q("0.09")), Err(R::TooSmallAfterQuantization));
    assert_eq!(quantize_qty(&m, q("0")), Err(R::QtyNotPositive));
    let perp = btc_perp();
    assert_eq!(quantize_qty(&perp, q("1239")), Ok(q("1230")), "USD amounts step by contract size");
    assert_eq!(quantize_qty(&perp, q("9.99")), Err(R::TooSmallAfterQuantization));
}

#[test]
fn at_926_missing_metadata() {
    assert_eq!(quantize(None, Side::Buy, p("1"), q("1")), Err(R::InstrumentMetadataMissing));
}

fn meta_strategy() -> impl Strategy<Value = InstrumentMeta> {
    prop_oneof![Just(btc_option()), Just(btc_perp()), Just(awkward())]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn price_quantization_never_more_aggressive_and_idempotent(
        meta in meta_strategy(),
        raw in 1_i64..50_000_000_000_000,
        buy in prop::bool::ANY,
    ) {
        let side = if buy { Side::Buy } else { Side::Sell };
        let raw_price = Price::from_raw(raw);
        match quantize_price(&meta, side, raw_price) {
            Ok(qp) => {
                match side {
                    Side::Buy => prop_assert!(qp <= raw_price, "buy {raw_price} -> {qp}"),
                    Side::Sell => prop_assert!(qp >= raw_price, "sell {raw_price} -> {qp}"),
                }
                prop_assert!(meta.is_on_tick(qp), "{qp} on grid");
                prop_assert_eq!(quantize_price(&meta, side, qp), Ok(qp), "idempotent");
                // Nearest: no grid price strictly between the raw price and the result.
                let tick = meta.tick_at(qp).raw();
                let closer = match side { Side::Buy => qp.raw() + tick, Side::Sell => qp.raw() - tick };
                let closer = Price::from_raw(closer);
                let between = match side { Side::Buy => closer <= raw_price, Side::Sell => closer >= raw_price };
                prop_assert!(!(between && meta.is_on_tick(closer)), "{closer} is closer than {qp}");
            }
            Err(code) => prop_assert!(side == Side::Buy && code == R::LimitPriceInvalid, "{code:?}"),
        }
    }

    #[test]
    fn qty_quantization_never_rounds_up_and_is_idempotent(meta in meta_strategy(), raw in 1_i64..10_000_000_000_000) {
        let raw_qty = Qty::from_raw(raw);
        match quantize_qty(&meta, raw_qty) {
            Ok(qq) => {
                prop_assert!(qq <= raw_qty);
                prop_assert!(meta.is_on_step(qq));
                prop_assert!(qq >= meta.min_trade_amount);
                prop_assert!(raw_qty.raw() - qq.raw() < meta.amount_step.raw(), "rounded down by less than a step");
                prop_assert_eq!(quantize_qty(&meta, qq), Ok(qq));
            }
            Err(code) => {
                prop_assert_eq!(code, R::TooSmallAfterQuantization);
                prop_assert!(raw_qty.raw() / meta.amount_step.raw() * meta.amount_step.raw() < meta.min_trade_amount.raw());
            }
        }
    }
}
