#!/usr/bin/env bash
# P0-C: `stoic keys probe` against an embedded simulator with config/keys.json. Writes
# evidence/phase0/keys/key_scope_probe.json; exits non-zero when any key has more scope than
# its role. Only `run_metadata.timestamp_utc` differs between runs (see the folder's README).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=evidence/phase0/keys
mkdir -p "$out"
cargo build --quiet --bin stoic
./target/debug/stoic keys probe --keys config/keys.json --out "$out/key_scope_probe.json"
