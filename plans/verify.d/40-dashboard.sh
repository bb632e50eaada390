#!/usr/bin/env bash
# Owner dashboard, end to end in headless Chromium (issue 6, "Owner dashboard"):
# serve the real status server + dashboard, switch the mode through the real
# POST /api/v1/emergency/reduce_only with the bearer token, and assert the ReduceOnly banner
# and its reason sentence appear within 5 s. Writes evidence/phase2/status/.
#
# The server is coldpath/examples/status_fixture.rs: the real HTTP server over an in-memory
# FIXTURE state, not the engine. When `stoic run` serves the status endpoints, switch
# SERVER_CMD below to it (same flags: --addr, --token-file) and drop the fixture.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
OUT="$ROOT/evidence/phase2/status"
BROWSER_DIR="$ROOT/coldpath/tests/browser"
mkdir -p "$OUT"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "40-dashboard: Debian chromium is missing and we are not root to install it" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
  # playwright-core ships no browser and downloads none; we drive /usr/bin/chromium.
  (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --ignore-scripts)
fi

cargo build -q -p coldpath --example status_fixture

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

umask 077
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token"
SERVER_CMD=("$ROOT/target/debug/examples/status_fixture" --addr 127.0.0.1:0 --token-file "$WORK/token" --addr-file "$WORK/addr")
"${SERVER_CMD[@]}" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do
  [ -s "$WORK/addr" ] && break
  sleep 0.1
done
[ -s "$WORK/addr" ] || { echo "40-dashboard: server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
URL="$(cat "$WORK/addr")"

node "$BROWSER_DIR/dashboard_e2e.mjs" "$URL" "$WORK/token" \
  "$OUT/dashboard_reduce_only.png" "$OUT/dashboard_e2e.json"
