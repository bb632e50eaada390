//! `strategy::registry::by_name`: known names build, unknown names and unusable universes are
//! refused with a reason.

use hotpath::domain::instrument::{Instrument, InstrumentName};
use hotpath::strategy::registry::{by_name, vertical_pair, UnknownStrategy, STRATEGY_NAMES};

fn names(list: &[&str]) -> Vec<InstrumentName> {
    list.iter().map(|n| Instrument::parse(n).unwrap().name()).collect()
}

#[test]
fn known_names_build_on_a_fitting_universe() {
    let universe = names(&[
        "BTC-PERPETUAL",
        "BTC-25JUL25-110000-C",
        "BTC-25JUL25-95000-P",
        "BTC-25JUL25-100000-C",
        "BTC-26SEP25-90000-C",
    ]);
    for name in STRATEGY_NAMES {
        let s = by_name(name, 1, &universe).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.id().as_str(), *name);
    }
    let quoter = by_name("quoter", 1, &universe).unwrap();
    // Options only, in name order.
    assert_eq!(
        quoter.instruments(),
        names(&[
            "BTC-25JUL25-100000-C",
            "BTC-25JUL25-110000-C",
            "BTC-25JUL25-95000-P",
            "BTC-26SEP25-90000-C"
        ])
        .as_slice()
    );
    let vertical = by_name("vertical", 1, &universe).unwrap();
    assert_eq!(
        vertical.instruments(),
        // The legs and the hedge instrument of the group executor.
        names(&["BTC-25JUL25-100000-C", "BTC-25JUL25-110000-C", "BTC-PERPETUAL"]).as_slice()
    );
    assert_eq!(
        vertical_pair(&universe),
        Some((names(&["BTC-25JUL25-100000-C"])[0], names(&["BTC-25JUL25-110000-C"])[0]))
    );
}

#[test]
fn unknown_names_and_unusable_universes_are_refused() {
    let universe = names(&["BTC-25JUL25-110000-C", "BTC-26SEP25-90000-C", "BTC-PERPETUAL"]);
    match by_name("martingale", 0, &universe) {
        Err(UnknownStrategy::Name(n)) => assert_eq!(n, "martingale"),
        other => panic!("{:?}", other.map(|s| s.id().as_str().to_owned())),
    }
    // No two calls share an expiry.
    assert!(matches!(
        by_name("vertical", 0, &universe),
        Err(UnknownStrategy::Unusable { name: "vertical", .. })
    ));
    // No options at all.
    assert!(matches!(
        by_name("quoter", 0, &names(&["BTC-PERPETUAL"])),
        Err(UnknownStrategy::Unusable { name: "quoter", .. })
    ));
    let text = by_name("x", 0, &universe).err().unwrap().to_string();
    assert!(text.contains("quoter") && text.contains("vertical"), "{text}");
}
