#!/usr/bin/env bash
# Fleet load figures for docs/perf.md (a benchmark, not a test): one release
# warden on SQLite and `warden-agent swarm` with COUNT agents, all on loopback.
#   1. check-ins per second and latency with poll_timeout 0
#   1c. the Fleet view's list request, p50/p95/max: with the swarm idle
#       (enrolled, not checking in: the server's own figure), then while it
#       checks in
#   2. warden's memory with COUNT long polls held open, on a fresh warden
#      (same database), so it is the polls' figure and not what the runs
#      above left in malloc's arenas
#   3. time to deliver one action (bulk unenroll) to all COUNT waiting agents
# Memory is read from /proc/PID/status: VmRSS (resident now), RssAnon (its
# heap and stacks part), VmHWM (the peak resident size so far).
# WARDEN_ENV: variables for warden alone, for experiments, e.g.
#   WARDEN_ENV="MALLOC_ARENA_MAX=2" scripts/bench-fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-10000}
port=${PORT:-18099}
duration=${DURATION:-30s}
list_requests=${LIST_REQUESTS:-60}
read -r -a warden_env <<< "${WARDEN_ENV:-}"
cargo build --release -q -p warden-server -p warden-agent
dir=$(mktemp -d)
url="http://127.0.0.1:$port"
ulimit -n "$(ulimit -Hn)"
warden=
swarm_pid=
trap 'kill $warden $swarm_pid 2>/dev/null || true; rm -rf "$dir"' EXIT

start_warden() {
  env "${warden_env[@]}" target/release/warden serve --demo --listen "127.0.0.1:$port" --database-url "sqlite://$dir/warden.db" \
    --agent-poll-timeout 15m --log-format json >> "$dir/warden.log" 2>&1 &
  warden=$!
  for _ in $(seq 1 100); do curl -fs "$url/api/status" > /dev/null && return; sleep 0.2; done
  echo "warden did not start; see its log:" >&2
  tail -20 "$dir/warden.log" >&2
  exit 1
}

stop_warden() {
  kill "$warden"
  wait "$warden" || true
}

memory() {
  awk '/^(VmRSS|RssAnon|VmHWM|Threads):/ {v[$1] = $2} END {
    printf "VmRSS %.0f MB, RssAnon %.0f MB, VmHWM %.0f MB, %d threads\n", v["VmRSS:"]/1024, v["RssAnon:"]/1024, v["VmHWM:"]/1024, v["Threads:"]
  }' "/proc/$warden/status"
}

waiting_checkins() {
  curl -fs "$url/api/status" | sed -n 's/.*"waiting_checkins":\([0-9]*\).*/\1/p'
}

# The Fleet view's request: page 1 sorted by host name, a kuery, status counts.
list_url="$url/api/fleet/agents?perPage=20&sortField=local_metadata.host.hostname&sortOrder=asc&getStatusSummary=true&kuery=status:online%20and%20tags:servers"
list_latency() {
  # Warm-up: also puts the viewer's Basic credentials in the server's cache,
  # so no measured request runs argon2.
  for _ in $(seq 1 5); do curl -fs -o /dev/null -u viewer:warden-demo "$list_url"; done
  for _ in $(seq 1 "$list_requests"); do
    curl -fs -o /dev/null -w '%{time_total}\n' -u viewer:warden-demo "$list_url"
  done | sort -n | awk -v what="$1" '
    function rank(q,   r) { r = q * NR; return (r == int(r)) ? r : int(r) + 1 }
    {a[NR] = $1}
    END {printf "list agents (%s): %d requests, p50 %.1f ms, p95 %.1f ms, max %.1f ms\n", what, NR, a[rank(0.50)] * 1000, a[rank(0.95)] * 1000, a[NR] * 1000}'
}

start_warden
echo "== 0. a fresh warden --demo, no agents: $(memory)"
token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)
swarm=(target/release/warden-agent swarm --url "$url" --enrollment-token "$token" --count "$count" --state "$dir/swarm.json")

# Offered load = count / interval: below, near and above what one node serves.
for interval in 5s 2s 1s; do
  echo "== 1. $count agents, poll_timeout 0, one check-in per agent every $interval, $duration"
  RUST_LOG=error "${swarm[@]}" --poll-timeout 0s --interval "$interval" --duration "$duration"
done
echo "== 1b. the same agents as fast as they can (saturation), 15s"
RUST_LOG=error "${swarm[@]}" --poll-timeout 0s --interval 0s --duration 15s
echo "warden after 1-1b: $(memory)"

echo "== 1c. the Fleet view's request with $count agents (page 1 of 20, a kuery, status counts), $list_requests times in a row after 5 to warm up"
# The swarm's last check-ins are written with the next heartbeat batch (every
# 30 s); after it the node does nothing but answer.
sleep 35
list_latency "swarm idle"
RUST_LOG=error "${swarm[@]}" --poll-timeout 0s --interval 5s --duration 30s &
swarm_pid=$!
sleep 5
list_latency "while $count agents check in every 5 s"
wait "$swarm_pid"
swarm_pid=
echo "warden after 1c: $(memory)"

echo "== 2. $count long polls held open, on a fresh warden (same database)"
stop_warden
start_warden
echo "before the polls: $(memory)"
RUST_LOG=error "${swarm[@]}" --poll-timeout 15m --interval 0s > "$dir/swarm.out" 2>&1 &
swarm_pid=$!
waiting=0
for _ in $(seq 1 600); do
  waiting=$(waiting_checkins)
  [ "${waiting:-0}" -ge "$count" ] && break
  sleep 0.5
done
sleep 5
echo "with $waiting check-ins waiting: $(memory)"

echo "== 3. one action (bulk unenroll) to all $count waiting agents"
start=$(date +%s%3N)
curl -fs -u platform:warden-demo -H 'kbn-xsrf: bench' -H 'content-type: application/json' \
  -d '{"agents": "tags:simulated", "batchSize": 10000}' "$url/api/fleet/agents/bulk_unenroll" > /dev/null
answered=$(date +%s%3N)
wait "$swarm_pid" || true
swarm_pid=
last=$(sed -n 's/.*received its UNENROLL at \([0-9]*\).*/\1/p' "$dir/swarm.out")
acked=$(sed -n 's/.*last ack was answered at \([0-9]*\).*/\1/p' "$dir/swarm.out")
grep 'unenrolled by Fleet' "$dir/swarm.out" || true
echo "bulk_unenroll answered in $((answered - start)) ms; the last agent had its UNENROLL $((last - start)) ms after the request; every unenroll was confirmed (acks answered) $((acked - start)) ms after it"
# An allocator that gives memory back does it within seconds, not at once.
sleep 15
echo "warden 15 s after every poll has ended (connections closed): $(memory)"
