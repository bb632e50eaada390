#!/usr/bin/env bash
# Accelerated paper run (issue 8, "Paper run"): `stoic paper` runs the engine against the
# embedded simulator for 14 simulated days at 6720x (one market tick = 56 simulated minutes,
# about 3 minutes of wall time) with 3 seeded venue faults per simulated day, then reconciles
# engine vs venue positions and writes evidence/phase2/paper/{summary.json,report.md}.
# Exit non-zero when positions are unreconciled, the journal oracle finds duplicate
# dispatches or illegal orders, or the engine stopped with an error.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p stoic
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
./target/debug/stoic paper --days 14 --speed 6720 --tick-ms 500 --seed 1 --faults-per-day 3 \
  --out evidence/phase2/paper --work-dir "$WORK"
