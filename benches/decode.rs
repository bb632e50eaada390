//! Decode cost of a Deribit book change: our typed decode (simd-json DOM → structs with
//! exact fixed-point numbers) against a raw simd-json parse of the same bytes, in the same
//! run, with the ratio printed. Plain timing loop (no harness) so the output is one table.
//!
//! Run: `cargo bench -p stoic --bench decode`.

use std::hint::black_box;
use std::time::Instant;

use hotpath::venue::messages::NotificationData;
use hotpath::venue::{Decoder, Message};

const ROUNDS: usize = 15;
const ITERS: usize = 20_000;

fn frame(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/venue_samples/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    serde_json::to_vec(&v).unwrap()
}

/// Median ns per iteration over ROUNDS rounds of ITERS iterations.
fn measure(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERS {
        f();
    }
    let mut per: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            t.elapsed().as_nanos() as f64 / ITERS as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per[ROUNDS / 2]
}

fn main() {
    for name in ["book_change.json", "book_option_change.json"] {
        let src = frame(name);
        let mut buf = Vec::with_capacity(src.len() * 2);
        let mut dec = Decoder::new();
        let mut buffers = simd_json::Buffers::new(src.len());

        let copy_only = measure(|| {
            buf.clear();
            buf.extend_from_slice(&src);
            black_box(&buf);
        });
        let raw_owned = measure(|| {
            buf.clear();
            buf.extend_from_slice(&src);
            black_box(simd_json::to_owned_value(&mut buf).is_ok());
        });
        let raw_borrowed = measure(|| {
            buf.clear();
            buf.extend_from_slice(&src);
            black_box(simd_json::to_borrowed_value_with_buffers(&mut buf, &mut buffers).is_ok());
        });
        let typed = measure(|| {
            buf.clear();
            buf.extend_from_slice(&src);
            let change_id = match dec.decode(&mut buf) {
                Ok(Message::Notification(n)) => match n.data {
                    NotificationData::Book(b) => b.change_id + b.bids.len() as u64,
                    _ => 0,
                },
                _ => 0,
            };
            black_box(change_id);
        });
        println!("{name} ({} bytes)", src.len());
        println!("  memcpy only                         {copy_only:8.1} ns/msg");
        println!("  raw simd-json -> OwnedValue         {raw_owned:8.1} ns/msg");
        println!("  raw simd-json -> BorrowedValue(buf) {raw_borrowed:8.1} ns/msg");
        println!("  stoic typed decode (Decimal8)       {typed:8.1} ns/msg");
        println!(
            "  ratio typed / raw OwnedValue = {:.2}, typed / raw BorrowedValue = {:.2}",
            typed / raw_owned,
            typed / raw_borrowed
        );
    }
}
