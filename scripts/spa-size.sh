#!/usr/bin/env bash
# Prints the gzip size of the built SPA (run after `make build`); docs/perf.md records it.
set -euo pipefail
cd "$(dirname "$0")/../dist"
total=0
for f in *.wasm *.js *.css index.html; do
  size=$(gzip -9c "$f" | wc -c)
  total=$((total + size))
  printf '%-45s %8d bytes raw %8d bytes gzip\n' "$f" "$(wc -c < "$f")" "$size"
done
printf '%-45s %8s           %8d bytes gzip (%d KB)\n' total "" "$total" $((total / 1024))
