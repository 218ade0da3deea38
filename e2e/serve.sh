#!/usr/bin/env bash
# Starts warden for one e2e project with a fresh database: serve.sh NAME ARGS…
# MDE cancel is on (its feature flag) and MDE actions are looked at often,
# so the MDE spec sees a cancel end within its timeouts.
# Each project gets its own cloud emulator (the demo principals of
# crates/cloud-emulator/demo.toml, on a free port) as the cloud the cloud
# connector verifier asks; its URL is written to .run/NAME/cloud.url for
# the specs (they grant, revoke, hold and release there).
set -euo pipefail
cd "$(dirname "$0")"
name=$1; shift
run=".run/$name"
rm -rf "$run" && mkdir -p "$run"

# Starts a helper in the background and sets $url to the URL its first line
# gives ("… listening on URL"); the helpers stop when warden does, and all
# of them when this script is stopped.
helpers=()
trap 'kill "${helpers[@]}" 2> /dev/null || true' EXIT
start() {
  local log=$1; shift
  "$@" > "$run/$log.out" 2> "$run/$log.log" &
  helpers+=($!)
  for _ in $(seq 1 100); do
    grep -q ' listening on ' "$run/$log.out" && break
    kill -0 "${helpers[-1]}" 2> /dev/null || { cat "$run/$log.log" >&2; exit 1; }
    sleep 0.1
  done
  url=$(sed -n 's/^.* listening on //p' "$run/$log.out")
  [ -n "$url" ] || { echo "$log did not start" >&2; exit 1; }
}
start cloud-emulator ../target/debug/warden-cloud-emulator --listen 127.0.0.1:0 --config ../crates/cloud-emulator/demo.toml
echo "$url" > "$run/cloud.url"

RUST_LOG=${RUST_LOG:-warn} ../target/debug/warden serve --demo --database-url "sqlite://$run/warden.db" --spa-dir ../dist \
  --mde-cancel true --mde-poll-interval 500ms \
  --enable-otel-verifier true --verifier-cloud-url "$url" "$@" &
helpers+=($!)
# A signal to this script stops warden and the helpers (the EXIT trap).
trap 'exit 143' TERM INT
wait "${helpers[-1]}"
