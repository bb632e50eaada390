//! Domain types: instruments and classification, fixed-point units, quantization, intents,
//! canonical bytes and hashing, labels, reason codes, typed policy and config.

pub mod reason_codes;
