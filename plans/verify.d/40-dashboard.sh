#!/usr/bin/env bash
# Owner dashboard, end to end in headless Chromium (issue 6, "Owner dashboard"):
# serve the real status server + dashboard, switch the mode through the real
# POST /api/v1/emergency/reduce_only with the bearer token, and assert the ReduceOnly banner
# and its reason sentence appear within 5 s. Writes evidence/phase2/status/.
#
# The server is the real product: `stoic run` (embedded simulator + engine in paper mode +
# status server); the emergency switch goes through the engine thread, PolicyGuard and the WAL.
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

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  # The e2e driver is a small Node script (playwright-core); Debian's nodejs + npm run it.
  if [ "$(id -u)" -ne 0 ]; then
    echo "40-dashboard: node/npm are missing and we are not root to install them" >&2
    exit 1
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi

if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
  # playwright-core ships no browser and downloads none; we drive /usr/bin/chromium.
  (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts)
fi
cargo build -q -p stoic
STOIC_BIN="$ROOT/target/debug/stoic"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

umask 077
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/token"
SERVER_CMD=("$STOIC_BIN" run --status-addr 127.0.0.1:0 --control-token-file "$WORK/token" --wal-dir "$WORK/wal")
"${SERVER_CMD[@]}" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
# Start-up reconciliation must finish (mode Active, latch clear) before the browser looks.
for _ in $(seq 1 300); do
  grep -q '^trading:' "$WORK/server.log" && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q '^trading:' "$WORK/server.log" || { echo "40-dashboard: stoic run did not start trading" >&2; cat "$WORK/server.log" >&2; exit 1; }
URL="$(sed -n 's#^status: \(http://[0-9.:]*\)/ .*#\1#p' "$WORK/server.log" | head -n 1)"
[ -n "$URL" ] || { echo "40-dashboard: no status address in stoic run output" >&2; cat "$WORK/server.log" >&2; exit 1; }

node "$BROWSER_DIR/dashboard_e2e.mjs" "$URL" "$WORK/token" \
  evidence/phase2/status/dashboard_reduce_only.png evidence/phase2/status/dashboard_e2e.json

# The Phase 0 health/status snapshot is written by plans/verify.d/45-health-snapshot.sh
# (its own engine, a strategy that places nothing, so the file is the same on every run).
