#!/usr/bin/env bash
# `make run`: Warden with demo data on http://127.0.0.1:8080, plus a small
# swarm of simulated agents so every Fleet status is on screen: some online,
# some degraded, some uninstalled, some orphaned (Detached Endpoint), and some
# that go silent and turn offline after a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
listen=${WARDEN_LISTEN:-127.0.0.1:8080}

target/debug/warden serve --demo --listen "$listen" --agent-offline-after 1m &
warden=$!
swarm=
trap 'kill $warden $swarm 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 120); do
  curl -fs "http://$listen/api/status" >/dev/null 2>&1 && break
  kill -0 $warden 2>/dev/null || exit 1
  sleep 0.5
done

token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)
RUST_LOG=warn target/debug/warden-agent swarm --url "http://$listen" --enrollment-token "$token" \
  --count 25 --uninstalled 3 --orphaned 3 --silent 4 --degraded 2 --poll-timeout 5m --interval 2s \
  --state data/demo-swarm.json &
swarm=$!
echo "Simulated agents are checking in: open http://$listen/fleet"
wait $warden
