#!/usr/bin/env bash
# Starts warden for one e2e project with a fresh database: serve.sh NAME ARGS…
set -euo pipefail
cd "$(dirname "$0")"
name=$1; shift
rm -rf ".run/$name" && mkdir -p ".run/$name"
RUST_LOG=${RUST_LOG:-warn} exec ../target/debug/warden serve --demo --database-url "sqlite://.run/$name/warden.db" --spa-dir ../dist "$@"
