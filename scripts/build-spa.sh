#!/usr/bin/env bash
# The web app's release build (run by `make build`): Trunk builds dist/, then
# each asset gets a .br and a .gz beside it, which `warden` sends to browsers
# that accept them (crates/server/src/http/spa.rs). index.html is left out:
# the server rewrites its <base href> on every request.
set -euo pipefail
cd "$(dirname "$0")/.."
trunk build --release
find dist -type f \( -name '*.br' -o -name '*.gz' \) -delete
find dist -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.svg' \) -print0 |
  while IFS= read -r -d '' f; do
    gzip -9 -k -f -n "$f"
    brotli -q 11 -k -f "$f"
  done
