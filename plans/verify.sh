#!/usr/bin/env bash
# Runs every test Stoic has, on a fresh machine, and writes the AUTO evidence under evidence/.
#   fmt check -> clippy -D warnings -> the whole test suite (nextest) -> plans/verify.d/*.sh
# Each step installs what it needs. Exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export STOIC_REPO_ROOT="$PWD"
start=$(date +%s)
step() { printf '\n==> %s (t+%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "toolchain"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

step "reason-code registry is generated from spec/reason_codes.json"
python3 plans/gen_reason_codes.py >/dev/null
git diff --exit-code -- hotpath/src/domain/reason_codes.rs

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features failpoints -- -D warnings

step "tests (cargo nextest, workspace, failpoints compiled in for the crash tests)"
# The chaos results are this run's only: a scenario that fails or does not run leaves no
# stale "pass" behind (summary.json counts a missing result as a failure).
rm -rf evidence/phase2/chaos/results
cargo nextest run --workspace --features failpoints --no-fail-fast

for extra in plans/verify.d/*.sh; do
  [ -e "$extra" ] || continue
  step "$extra"
  bash "$extra"
done

step "done in $(( $(date +%s) - start ))s"
