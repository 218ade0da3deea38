#!/usr/bin/env bash
# Rule figures for docs/perf.md (a benchmark, not a test): one release warden
# on SQLite, a webhook receiver (`warden-agent receive`) and simulated agents.
#   1. an agent's uninstall message → the webhook receiver's request, ROUNDS
#      times with a fresh agent each (the rule's schedule is 1m, so what is
#      measured is the Fleet trigger, not the schedule)
#   2. one fleet.agent_status run over COUNT agents: the runs' own durations
#      (rule_runs), the first with UNINSTALLED + ORPHANED new alerts, then
#      while the swarm checks in and nothing changes
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-20}
count=${COUNT:-10000}
uninstalled=${UNINSTALLED:-100}
orphaned=${ORPHANED:-100}
port=${PORT:-18097}
sink_port=${SINK_PORT:-18098}
cargo build --release -q -p warden-server -p warden-agent
dir=$(mktemp -d)
url="http://127.0.0.1:$port"
ulimit -n "$(ulimit -Hn)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT

target/release/warden-agent receive --listen "127.0.0.1:$sink_port" > "$dir/webhooks.log" &
pids+=($!)
target/release/warden serve --demo --listen "127.0.0.1:$port" --database-url "sqlite://$dir/warden.db" --log-format json >> "$dir/warden.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "$url/api/status" > /dev/null && break; sleep 0.2; done

api() { curl -fsS -u admin:warden-demo -H 'kbn-xsrf: bench' -H 'content-type: application/json' "$@"; }
api -X POST "$url/api/actions/connector/bench-hook" -d "{\"name\": \"bench\", \"connector_type_id\": \".webhook\",
  \"config\": {\"url\": \"http://127.0.0.1:$sink_port/hook\", \"method\": \"post\", \"hasAuth\": false}}" > /dev/null
api -X POST "$url/api/alerting/rule/bench-rule" -d '{"name": "bench", "rule_type_id": "fleet.agent_status", "consumer": "alerts",
  "schedule": {"interval": "1m"}, "params": {"statuses": ["uninstalled", "orphaned"]},
  "actions": [{"id": "bench-hook", "group": "default", "frequency": {"summary": false, "notify_when": "onActionGroupChange", "throttle": null},
               "params": {"body": "{\"agent\": \"{{context.agent.id}}\"}"}}]}' > /dev/null
token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)

echo "== 1. uninstall → webhook, $rounds rounds"
latencies=()
for i in $(seq 1 "$rounds"); do
  state="$dir/agent-$i.json"
  target/release/warden-agent enroll --url "$url" --enrollment-token "$token" --hostname "bench-$i" --state "$state" > /dev/null 2>&1
  agent=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['agent_id'])" "$state")
  start=$(date +%s%3N)
  target/release/warden-agent uninstall --state "$state" > /dev/null 2>&1
  for _ in $(seq 1 600); do
    line=$(grep -F "\"agent\": \"$agent\"" "$dir/webhooks.log" || true)
    [ -n "$line" ] && break
    sleep 0.01
  done
  [ -n "$line" ] || { echo "no webhook for $agent" >&2; exit 1; }
  at=$(sed -n 's/^webhook #[0-9]* at \([0-9]*\):.*/\1/p' <<< "$line")
  latencies+=($((at - start)))
done
printf '%s\n' "${latencies[@]}" | sort -n | awk '{a[NR]=$1} END {printf "uninstall → webhook: p50 %d ms, p95 %d ms, max %d ms (%d rounds)\n", a[int(NR*0.5+0.5)], a[int(NR*0.95+0.5)], a[NR], NR}'

echo "== 2. one rule run over $count agents ($uninstalled uninstalled, $orphaned orphaned)"
before=$(api "$url/internal/alerting/rule/bench-rule/_runs" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
target/release/warden-agent swarm --url "$url" --enrollment-token "$token" --count "$count" --uninstalled "$uninstalled" --orphaned "$orphaned" \
  --poll-timeout 5m --interval 5s --duration 60s > "$dir/swarm.log" 2>&1 &
pids+=($!)
wait "${pids[-1]}" || true
api "$url/internal/alerting/rule/bench-rule/_runs" | python3 -c "
import json, sys
runs = [r for r in json.load(sys.stdin)][: -$before or None]
first = [r for r in runs if r['alerts_count']['new'] > 0]
quiet = sorted(r['duration_ms'] for r in runs if r['alerts_count']['new'] == 0 and r['alerts_count']['recovered'] == 0)
if first:
    r = max(first, key=lambda r: r['alerts_count']['new'])
    print(f\"run with {r['alerts_count']['new']} new alerts: {r['duration_ms']} ms ({r['actions_scheduled']} actions queued)\")
if quiet:
    p = lambda q: quiet[min(len(quiet) - 1, int(len(quiet) * q))]
    print(f'runs with nothing new: p50 {p(0.5)} ms, p95 {p(0.95)} ms, max {quiet[-1]} ms ({len(quiet)} runs)')
"
grep -o 'enrolled [0-9]* agents in [0-9.]* s' "$dir/swarm.log" || true
