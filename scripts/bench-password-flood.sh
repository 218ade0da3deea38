#!/usr/bin/env bash
# Memory under a flood of bad credentials, for docs/perf.md (a benchmark, not
# a test): ROUNDS rounds of CONCURRENCY concurrent requests with random HTTP
# Basic credentials against one warden (the debug build `make run` uses),
# each request from its own loopback address (127.0.1.x–127.0.2.x), so the
# per-address share does not hide the global bound. Prints warden's resident
# memory before, its peak (VmHWM) and after. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${CONCURRENCY:-200}
rounds=${ROUNDS:-5}
port=${PORT:-18098}
profile=${PROFILE:-debug}
if [ "$profile" = release ]; then cargo build --release -q -p warden-server; else cargo build -q -p warden-server; fi
dir=$(mktemp -d)
url="http://127.0.0.1:$port"

"target/$profile/warden" serve --demo --listen "0.0.0.0:$port" --database-url "sqlite://$dir/warden.db" > "$dir/warden.log" 2>&1 &
warden=$!
trap 'kill $warden 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -fs "$url/api/status" >/dev/null && break; sleep 0.2; done
rss() { awk "/$1/ {printf \"%.0f MB\", \$2 / 1024}" "/proc/$warden/status"; }
echo "warden ($profile) RSS idle: $(rss VmRSS)"

for round in $(seq 1 "$rounds"); do
  seq 1 "$concurrency" | xargs -P "$concurrency" -I{} sh -c '
    n={}; ip="127.0.$(( 1 + n / 250 )).$(( 1 + n % 250 ))"
    curl -s -o /dev/null -w "%{http_code}\n" --interface "$ip" -u "nobody-$RANDOM-$n:guess-$RANDOM" "http://$ip:'"$port"'/internal/security/me"
  ' | sort | uniq -c | tr '\n' ' '
  echo "<- round $round status counts; RSS now $(rss VmRSS), peak $(rss VmHWM)"
done
echo "warden RSS after $rounds rounds: $(rss VmRSS), peak $(rss VmHWM)"
