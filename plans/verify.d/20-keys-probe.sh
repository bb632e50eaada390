#!/usr/bin/env bash
# P0-C: `stoic keys probe` against an embedded simulator with config/keys.json: each key's
# granted scopes, plus real out-of-scope requests (an order with a read key, a withdrawal with a
# trade key) that must be refused with 13021. Writes evidence/phase0/keys/key_scope_probe.json;
# exits 1 when a key can do more than its role, 4 when a probe proved nothing. Only the top-level
# `timestamp_utc` differs between runs: P0-C requires it (when the probe ran), so it is kept, not
# normalised (see evidence/phase0/keys/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=evidence/phase0/keys
mkdir -p "$out"
cargo build --quiet --bin stoic
./target/debug/stoic keys probe --keys config/keys.json --out "$out/key_scope_probe.json"
