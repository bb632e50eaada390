//! Fuzz-style properties: the decoder and the book never panic on arbitrary or mutated
//! input, and every failure is an enumerated error.

use std::path::PathBuf;

use hotpath::feed::L2Book;
use hotpath::venue::messages::NotificationData;
use hotpath::venue::{Decimal8, Decoder, Message};
use proptest::prelude::*;

fn samples() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/venue_samples");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| {
            let j: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            serde_json::to_vec(&j).unwrap()
        })
        .collect()
}

fn exercise(bytes: &[u8], dec: &mut Decoder, book: &mut L2Book) {
    let mut b = bytes.to_vec();
    match dec.decode(&mut b) {
        Ok(Message::Notification(n)) => {
            if let NotificationData::Book(u) = &n.data {
                let _ = book.apply(u);
                assert!(book.bids().windows(2).all(|w| w[0].0 > w[1].0), "bids sorted");
                assert!(book.asks().windows(2).all(|w| w[0].0 < w[1].0), "asks sorted");
            }
        }
        Ok(_) => {}
        Err(e) => assert!(!e.name().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut dec = Decoder::new();
        let mut book = L2Book::new("BTC-25JUL25-110000-C", 8);
        exercise(&bytes, &mut dec, &mut book);
    }

    #[test]
    fn mutated_samples_never_panic(
        idx in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let all = samples();
        let mut bytes = all[idx.index(all.len())].clone();
        for (pos, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = pos.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let mut dec = Decoder::new();
        let mut book = L2Book::new("BTC-25JUL25-110000-C", 8);
        // Warm the book so changes have something to act on.
        let snap = all.iter().find(|s| s.windows(17).any(|w| w == b"\"type\":\"snapshot\"")).unwrap();
        exercise(snap, &mut dec, &mut book);
        exercise(&bytes, &mut dec, &mut book);
    }

    #[test]
    fn decimal_text_round_trips(raw in any::<i64>()) {
        let d = Decimal8::from_raw(raw);
        prop_assert_eq!(Decimal8::parse_str(&d.to_string()), Ok(d));
    }

    #[test]
    fn decimal_parse_never_panics(s in "[-+0-9.eE]{0,40}") {
        let _ = Decimal8::parse_str(&s);
    }
}
