#!/usr/bin/env bash
# The scale test of audit/unenroll that reference 003 lists and Fleet never
# ran (a benchmark for docs/perf.md, not a test): COUNT agents enroll and
# check in once, then all send their final message at once (`warden-agent
# swarm --uninstalled COUNT`: they wait for each other at a barrier). The
# swarm prints the latencies; the script then asks Warden how many agents
# it shows as uninstalled: every one must be.
#   scripts/bench-final-messages.sh                  SQLite
#   DATABASE=postgres scripts/bench-final-messages.sh  a fresh database on 127.0.0.1:5432
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-10000}
port=${PORT:-18097}
cargo build --release -q -p warden-server -p warden-agent
dir=$(mktemp -d)
url="http://127.0.0.1:$port"
ulimit -n "$(ulimit -Hn)"
case "${DATABASE:-sqlite}" in
  sqlite) database_url="sqlite://$dir/warden.db"; dropdb= ;;
  postgres)
    name="warden_bench_final_$$"
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "create database $name"
    database_url="postgres://postgres@127.0.0.1:5432/$name"
    dropdb=$name
    ;;
  *) echo "DATABASE is sqlite or postgres" >&2; exit 2 ;;
esac
warden=
cleanup() {
  kill $warden 2>/dev/null || true
  wait $warden 2>/dev/null || true
  [ -z "$dropdb" ] || psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists $dropdb"
  rm -rf "$dir"
}
trap cleanup EXIT

target/release/warden serve --demo --listen "127.0.0.1:$port" --database-url "$database_url" --log-format json > "$dir/warden.log" 2>&1 &
warden=$!
for _ in $(seq 1 100); do curl -fs "$url/api/status" > /dev/null && break; sleep 0.2; done
token=$(printf '%s' 'demo-enrollment:warden-demo-enrollment-secret' | base64)

echo "== ${DATABASE:-sqlite}: $count agents send their final message at once"
RUST_LOG=error target/release/warden-agent swarm --url "$url" --enrollment-token "$token" --count "$count" --uninstalled "$count"
# Recorded means shown: the status counts are derived from what was stored.
curl -fs -u viewer:warden-demo "$url/api/fleet/agent_status" | sed -n 's/.*"uninstalled":\([0-9]*\).*/Warden shows \1 agents as uninstalled/p'
echo
