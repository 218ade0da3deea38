#!/usr/bin/env bash
# Response-action figures for docs/perf.md (a benchmark, not a test): one
# release warden (SQLite, or DATABASE_URL), COUNT simulated agents.
#   1. POST of an action → its row in an open history page: the time until
#      the browser's event stream announces it plus the list request the page
#      then makes, ROUNDS times (p50/p95)
#   2. one isolate to all COUNT agents: created → every agent's answer
#      recorded (the last target's completedAt), and the wall time until the
#      action read successful
# Needs python3 (to read the event stream and JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-10000}
rounds=${ROUNDS:-30}
port=${PORT:-18099}
cargo build --release -q -p warden-server -p warden-agent
dir=$(mktemp -d)
url="http://127.0.0.1:$port"
db=${DATABASE_URL:-sqlite://$dir/warden.db}
ulimit -n "$(ulimit -Hn)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT

target/release/warden serve --demo --listen "127.0.0.1:$port" --database-url "$db" --log-format json >> "$dir/warden.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "$url/api/status" > /dev/null && break; sleep 0.2; done
token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)
RUST_LOG=error target/release/warden-agent swarm --url "$url" --enrollment-token "$token" --count "$count" \
  --poll-timeout 5m --interval 1s --sandbox "$dir/swarm" > "$dir/swarm.log" 2>&1 &
pids+=($!)

python3 - "$url" "$count" "$rounds" <<'PY'
import base64, json, statistics, sys, threading, time, urllib.request, datetime

url, count, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
auth = "Basic " + base64.b64encode(b"manager:warden-demo").decode()

def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Authorization": auth, "kbn-xsrf": "bench", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())

deadline = time.time() + 900
while True:
    online = call("GET", "/api/fleet/agent_status")["results"].get("online", 0)
    if online >= count:
        break
    if time.time() > deadline:
        sys.exit(f"only {online} of {count} agents online")
    time.sleep(2)
ids = [a["id"] for a in call("GET", f"/api/fleet/agents?perPage={count}")["items"]]
print(f"{len(ids)} agents online")

# 1. POST → the row in an open page (event stream + the page's list request).
seen = {}
def listen():
    req = urllib.request.Request(url + "/internal/warden/events", headers={"Authorization": auth, "accept": "text/event-stream"})
    with urllib.request.urlopen(req, timeout=3600) as stream:
        event = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "response_action_changed":
                action = json.loads(line[5:])["id"]
                seen.setdefault(action, time.perf_counter())
threading.Thread(target=listen, daemon=True).start()
time.sleep(1)
latencies = []
for i in range(rounds):
    route = "isolate" if i % 2 == 0 else "unisolate"
    started = time.perf_counter()
    action = call("POST", f"/api/endpoint/action/{route}", {"endpoint_ids": [ids[i % len(ids)]]})["data"]["id"]
    while action not in seen:
        time.sleep(0.001)
    page = call("GET", "/api/endpoint/action?pageSize=10")
    assert any(a["id"] == action for a in page["data"])
    latencies.append(time.perf_counter() - started)
latencies.sort()
p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
print(f"POST → row in an open page, {rounds} rounds: p50 {statistics.median(latencies)*1000:.0f} ms, p95 {p95*1000:.0f} ms")

# 2. One isolate to every agent.
started = time.perf_counter()
created = call("POST", "/api/endpoint/action/isolate", {"endpoint_ids": ids, "comment": "bench: all hosts"})["data"]
posted = time.perf_counter() - started
while True:
    action = call("GET", f"/api/endpoint/action/{created['id']}")["data"]
    done = sum(1 for s in action["agentState"].values() if s["isCompleted"])
    if action["status"] != "pending":
        break
    time.sleep(0.25)
wall = time.perf_counter() - started
def ms(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
last = max(ms(s["completedAt"]) for s in action["agentState"].values())
print(f"isolate to {len(ids)} agents: POST answered in {posted*1000:.0f} ms; every answer recorded "
      f"{(last - ms(action['startedAt']))*1000:.0f} ms after creation; read {action['status']} after {wall:.1f} s")
PY
