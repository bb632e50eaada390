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
  (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts)
fi

cargo build -q -p coldpath --example status_fixture
cargo build -q -p stoic
STOIC_BIN="$ROOT/target/debug/stoic"

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
  evidence/phase2/status/dashboard_reduce_only.png evidence/phase2/status/dashboard_e2e.json

# Phase 0 (P0-E) snapshot: real `stoic health` / `stoic status` runs against the same server,
# taken after the switch to ReduceOnly. Marked as fixture-served until `stoic run` serves it.
SNAP="$ROOT/evidence/phase0/health/health_endpoint_snapshot.md"
mkdir -p "$(dirname "$SNAP")"
run_cmd() {
  local rc=0 out
  out="$("$STOIC_BIN" "$@" 2>&1)" || rc=$?
  printf '```console\n$ stoic %s\n%s\n[exit %s]\n```\n\n' "$*" "$out" "$rc"
}
DEAD_URL="http://127.0.0.1:9"   # discard port: nothing listens there on a normal host
{
  echo "# Health endpoint snapshot (P0-E)"
  echo
  echo "Written by \`plans/verify.d/40-dashboard.sh\` at $(date -u +%Y-%m-%dT%H:%M:%SZ) from real runs of the"
  echo "\`stoic\` binary ($("$STOIC_BIN" --version)). **Server: \`coldpath/examples/status_fixture\`** — the real"
  echo "status server over an in-memory test fixture, *not* the engine: \`stoic run\` does not serve the"
  echo "endpoints yet. The runs below are after the dashboard test forced ReduceOnly through"
  echo "\`POST /api/v1/emergency/reduce_only\`. Format and exit codes: \`docs/health_endpoint.md\`."
  echo
  run_cmd health --url "$URL"
  run_cmd health --url "$URL" --json
  run_cmd status --url "$URL"
  echo "Unreachable engine (nothing listens at $DEAD_URL):"
  echo
  run_cmd health --url "$DEAD_URL"
} > "$SNAP"
echo "40-dashboard: wrote $SNAP"
