#!/usr/bin/env bash
# Runs the loom models in loom_tests/tests/ (one file per lock-free primitive).
#
# Cost: loom explores every interleaving up to LOOM_MAX_PREEMPTIONS preemptions per
# execution; the count grows roughly exponentially with the bound and with the number of
# atomic operations per thread. 3 covers every race the models target (each needs at most
# two preemptions) and finishes in seconds once built. The first build is the expensive part
# (every workspace dependency recompiled with --cfg loom, in release mode, into its own
# target dir so the normal build cache stays valid): minutes on 2 cores. LTO is turned off
# for this build only; it buys nothing for a model checker and costs most of the link time.
#
# Usage: loom_tests/run.sh [extra libtest args, e.g. a test name filter]
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
exec cargo test -p loom_tests --release -- --test-threads=1 "$@"
