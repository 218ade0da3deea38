#!/usr/bin/env bash
# Console figures for docs/perf.md (a benchmark, not a test): one release
# warden (SQLite, or DATABASE_URL) with one simulated agent; another
# analyst's POST of an action → its row in an open console's cancel
# selector, in headless Chromium, ROUNDS times (e2e/bench/selector-latency.mjs).
# Needs `make build` (the SPA in dist/) and the e2e packages (make setup-test).
# PROFILE=debug measures the debug build instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-18098}
profile=${PROFILE:-release}
[ "$profile" = debug ] || cargo build --release -q -p warden-server -p warden-agent
dir=$(mktemp -d)
url="http://127.0.0.1:$port"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
target/$profile/warden serve --demo --listen "127.0.0.1:$port" --database-url "${DATABASE_URL:-sqlite://$dir/warden.db}" \
  --spa-dir dist >> "$dir/warden.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "$url/api/status" > /dev/null && break; sleep 0.2; done
token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)
target/$profile/warden-agent enroll --url "$url" --enrollment-token "$token" --hostname bench-console --state "$dir/agent.json" > /dev/null
RUST_LOG=error target/$profile/warden-agent run --state "$dir/agent.json" --interval 200ms --sandbox "$dir/sandbox" > "$dir/agent.log" 2>&1 &
pids+=($!)
agent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent_id"])' "$dir/agent.json")
cd e2e && node bench/selector-latency.mjs "$url/" "$agent"
