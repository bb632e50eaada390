#!/usr/bin/env bash
# P0-D: `stoic drill break-glass` — the runaway strategy against the embedded simulator, Kill
# through the runbook's CLI command, the simulator journal must show no open after the Kill was
# acknowledged, the engine's automatic Kill containment (AT-338) must flatten with reduce-only IOC
# orders before the operator's command, the runbook's emergency close must still succeed, then
# relax. drill.md marks each order after the Kill with its source (containment or the command).
# Writes evidence/phase0/break_glass/{drill.md,log_excerpt.txt,runbook_snapshot.md}; exits
# non-zero when any step fails. drill.md carries the run's timestamps by design (the contract
# asks for them), so it changes on every run; the step table's verdicts do not.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=evidence/phase0/break_glass
mkdir -p "$out"
# The debug build the test suite already made (failpoints off here: a drill is an ops run).
cargo build --quiet --bin stoic
./target/debug/stoic drill break-glass --out-dir "$out"
