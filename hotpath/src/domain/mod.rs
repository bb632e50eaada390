//! Domain types: instruments and classification, fixed-point units, quantization, intents,
//! canonical bytes and hashing, labels, reason codes, typed policy and config.
//!
//! Everything here is deterministic: no wall clock (time comes in as `now_ms`), no randomness,
//! ordered maps for anything that is iterated.

pub mod instrument;
pub mod intent;
pub mod label;
pub mod metadata;
pub mod policy;
pub mod quantize;
pub mod reason_codes;
pub mod units;
