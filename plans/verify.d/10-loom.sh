#!/usr/bin/env bash
# loom models of every lock-free handoff (loom_tests/run.sh). The log is saved to
# evidence/phase1/loom/loom_run.log with compile noise, binary hashes and timings stripped,
# so the file only changes when a model or its outcome changes.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=evidence/phase1/loom
mkdir -p "$out"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
status=0
bash loom_tests/run.sh >"$raw" 2>&1 || status=$?
{
  echo "# loom_tests/run.sh, LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}, exit status ${status}"
  grep -E '^ *(Running |Doc-tests )|^running [0-9]+ tests?$|^test .* \.\.\. |^test result: ' "$raw" \
    | sed -E 's/^ +//; s/ \([^)]*\)$//; s/; finished in [0-9.]+s$//'
} >"$out/loom_run.log"
if [ "$status" -ne 0 ]; then
  cat "$raw" >&2
fi
exit "$status"
