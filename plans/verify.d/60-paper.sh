#!/usr/bin/env bash
# Accelerated paper run (issue 8, "Paper run"): `stoic paper` runs the engine against the
# embedded simulator for 14 simulated days at 6720x (one market tick = 56 simulated minutes,
# about 3 minutes of wall time, plus ~16 s of held simulated time per stale-data fault while
# the engine's 15 s wall-time zombie rule trips) with 3 seeded venue faults per simulated day,
# then reconciles engine vs venue positions and PnL and writes
# evidence/phase2/paper/{summary.json,report.md}.
# Exit non-zero when positions are unreconciled, the journal oracle finds duplicate
# dispatches or illegal orders, the engine stopped with an error, trading stopped being
# meaningful (expired-instrument refusals, a day without orders), a fault had no containment
# effect, the PnL does not reconcile, or the run outlived its wall-time bound (PAPER_TIMEOUT_S).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p stoic
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
timeout --kill-after=30 "${PAPER_TIMEOUT_S:-540}" ./target/debug/stoic paper --days 14 --speed 6720 --tick-ms 500 --seed 1 --faults-per-day 3 \
  --out evidence/phase2/paper --work-dir "$WORK"
