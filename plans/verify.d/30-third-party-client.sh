#!/usr/bin/env bash
# A third-party Deribit client (ccxt from PyPI) against `stoic sim`: markets, order book,
# ticker, balance, post-only order, open orders, cancel, read-only key refusal.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/sim-thirdparty-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import ccxt" 2>/dev/null || "$venv/bin/pip" install --quiet ccxt
cargo build -p stoic --quiet
log=$(mktemp)
journal=$(mktemp)
target/debug/stoic sim --listen 127.0.0.1:0 --seed 7 --journal "$journal" >"$log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; rm -f "$log" "$journal"' EXIT
addr=""
for _ in $(seq 1 100); do
  addr=$(sed -n '1s/^listening on //p' "$log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "simulator did not start:"; cat "$log"; exit 1; }
"$venv/bin/python" simulator/tests/thirdparty/ccxt_client.py "http://$addr"
# The journal saw the order, the cancel and the refused order, none illegal.
grep -q '"method":"private/buy"' "$journal"
grep -q '"method":"private/cancel"' "$journal"
grep -q '"error":13021' "$journal"
echo "third-party client against stoic sim: 1 passed, 0 failed"
