//! The `stoic` library: the engine (`engine`), shared by the `stoic` binary and by the
//! integration tests that drive the engine's stages in-process (`tests/engine_zero_alloc.rs`).
#![deny(unsafe_code)]

pub mod engine;
