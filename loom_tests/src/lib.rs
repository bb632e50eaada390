//! loom models of hotpath's lock-free handoffs live in `tests/`; run them with
//! `loom_tests/run.sh` (sets `RUSTFLAGS="--cfg loom"` and a preemption bound).
