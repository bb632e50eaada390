//! Intent hashing: xxh64 of the canonical identity bytes (what `IntentHash` is) against a
//! baseline hash of the same bytes (std's SipHash-1-3 `DefaultHasher`), plus the full
//! `OrderIntent::new` (encode + hash). The ratio of the two hashes, measured in the same run,
//! is printed so machine noise cancels out.

use std::hash::{DefaultHasher, Hasher};
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use hotpath::domain::instrument::Instrument;
use hotpath::domain::intent::{
    GroupId, IntentFields, IntentHash, OrderIntent, OrderType, Side, StrategyId, TimeInForce,
};
use hotpath::domain::units::{Price, Qty};

fn fields() -> IntentFields {
    let strategy_id = StrategyId::new_checked("strangle_btc_low_vol").expect("id");
    IntentFields {
        strategy_id,
        group_id: GroupId::derive(&strategy_id, b"bench"),
        leg_index: 0,
        instrument: Instrument::parse("BTC-27DEC24-60000-C").expect("instrument"),
        side: Side::Buy,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
        reduce_only: false,
        linked_order_type: None,
        trigger_price: None,
        qty: Qty::from_decimal_str("0.3").expect("qty"),
        limit_price: Some(Price::from_decimal_str("0.0455").expect("price")),
        contracts: None,
        emergency_close: false,
    }
}

fn siphash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// ns per call of `f`, best of 5 rounds of `iterations` calls.
fn ns_per_call(iterations: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_secs_f64() * 1e9 / f64::from(iterations)
        })
        .fold(f64::INFINITY, f64::min)
}

fn bench(c: &mut Criterion) {
    // Fields are built once (parsing the instrument name is not part of hashing).
    let fields = fields();
    let intent = OrderIntent::new(fields);
    let identity = intent.canonical_bytes().identity().to_vec();

    c.bench_function("intent_hash/xxh64_identity", |b| {
        b.iter(|| IntentHash::of_identity(black_box(&identity)));
    });
    c.bench_function("intent_hash/siphash13_identity_baseline", |b| {
        b.iter(|| siphash(black_box(&identity)));
    });
    c.bench_function("intent_hash/order_intent_new_encode_and_hash", |b| {
        b.iter(|| OrderIntent::new(black_box(fields)));
    });

    let iterations = 2_000_000;
    let xxh = ns_per_call(iterations, || {
        black_box(IntentHash::of_identity(black_box(&identity)));
    });
    let sip = ns_per_call(iterations, || {
        black_box(siphash(black_box(&identity)));
    });
    println!(
        "intent_hash: identity {} bytes; xxh64 {xxh:.1} ns, siphash13 baseline {sip:.1} ns, ratio xxh64/baseline = {:.2}",
        identity.len(),
        xxh / sip
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
