#!/usr/bin/env bash
# Fleet load figures for docs/perf.md (a benchmark, not a test): one release
# warden on SQLite and `warden-agent swarm` with COUNT agents, all on loopback.
#   1. check-ins per second and latency with poll_timeout 0
#   2. warden's memory with COUNT long polls held open
#   3. time to deliver one action (bulk unenroll) to all COUNT waiting agents
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-10000}
port=${PORT:-18099}
duration=${DURATION:-30s}
cargo build --release -q -p warden-server -p warden-agent
dir=$(mktemp -d)
url="http://127.0.0.1:$port"
ulimit -n "$(ulimit -Hn)"

target/release/warden serve --demo --listen "127.0.0.1:$port" --database-url "sqlite://$dir/warden.db" \
  --agent-poll-timeout 15m --log-format json > "$dir/warden.log" 2>&1 &
warden=$!
trap 'kill $warden 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -fs "$url/api/status" >/dev/null && break; sleep 0.2; done
token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)
swarm=(target/release/warden-agent swarm --url "$url" --enrollment-token "$token" --count "$count" --state "$dir/swarm.json")

# Offered load = count / interval: below, near and above what one node serves.
for interval in 5s 2s 1s; do
  echo "== 1. $count agents, poll_timeout 0, one check-in per agent every $interval, $duration"
  RUST_LOG=error "${swarm[@]}" --poll-timeout 0s --interval "$interval" --duration "$duration"
done
echo "== 1b. the same agents as fast as they can (saturation), 15s"
RUST_LOG=error "${swarm[@]}" --poll-timeout 0s --interval 0s --duration 15s

echo "== 1c. the Fleet view's request with $count agents (page 1, a kuery, status counts), 20 times"
for _ in $(seq 1 20); do
  curl -fs -o /dev/null -w '%{time_total}\n' -u viewer:warden-demo \
    "$url/api/fleet/agents?perPage=20&sortField=local_metadata.host.hostname&sortOrder=asc&getStatusSummary=true&kuery=status:online%20and%20tags:servers"
done | sort -n | awk '{a[NR]=$1} END {printf "list agents: median %.1f ms, max %.1f ms\n", a[int((NR+1)/2)]*1000, a[NR]*1000}'

echo "== 2. $count long polls held open"
RUST_LOG=error "${swarm[@]}" --poll-timeout 15m --interval 0s > "$dir/swarm.out" 2>&1 &
swarm_pid=$!
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$warden/status)
for _ in $(seq 1 600); do
  waiting=$(curl -fs "$url/api/status" | sed -n 's/.*"waiting_checkins":\([0-9]*\).*/\1/p')
  [ "${waiting:-0}" -ge "$count" ] && break
  sleep 0.5
done
echo "waiting check-ins: $waiting; warden RSS $(awk '/VmRSS/ {print $2}' /proc/$warden/status) kB (was $rss_before kB before they parked)"

echo "== 3. one action (bulk unenroll) to all $count waiting agents"
start=$(date +%s%3N)
curl -fs -u platform:warden-demo -H 'kbn-xsrf: bench' -H 'content-type: application/json' \
  -d '{"agents": "tags:simulated", "batchSize": 10000}' "$url/api/fleet/agents/bulk_unenroll" > /dev/null
answered=$(date +%s%3N)
wait $swarm_pid || true
last=$(sed -n 's/.*received its UNENROLL at \([0-9]*\).*/\1/p' "$dir/swarm.out")
acked=$(sed -n 's/.*last ack was answered at \([0-9]*\).*/\1/p' "$dir/swarm.out")
grep 'unenrolled by Fleet' "$dir/swarm.out" || true
echo "bulk_unenroll answered in $((answered - start)) ms; the last agent had its UNENROLL $((last - start)) ms after the request; every unenroll was confirmed (acks answered) $((acked - start)) ms after it"
