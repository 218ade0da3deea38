#!/usr/bin/env bash
# Starts warden for one e2e project with a fresh database: serve.sh NAME ARGS…
# MDE cancel is on (its feature flag) and MDE actions are looked at often,
# so the MDE spec sees a cancel end within its timeouts.
set -euo pipefail
cd "$(dirname "$0")"
name=$1; shift
rm -rf ".run/$name" && mkdir -p ".run/$name"
RUST_LOG=${RUST_LOG:-warn} exec ../target/debug/warden serve --demo --database-url "sqlite://.run/$name/warden.db" --spa-dir ../dist \
  --mde-cancel true --mde-poll-interval 500ms "$@"
