#!/usr/bin/env bash
# What a browser downloads on the web app's first load, as served: each file
# `index.html` names, fetched from a running warden with the Accept-Encoding
# Chromium sends, counted in bytes received (docs/perf.md records the figures).
#   scripts/spa-size.sh                  starts target/debug/warden on a temp database
#   WARDEN_URL=http://host/warden/ scripts/spa-size.sh   measures a running one
set -euo pipefail
cd "$(dirname "$0")/.."
accept='Accept-Encoding: gzip, deflate, br, zstd'
url=${WARDEN_URL:-}
if [ -z "$url" ]; then
  [ -x target/debug/warden ] && [ -f dist/index.html ] || { echo "build first: make build" >&2; exit 1; }
  dir=$(mktemp -d)
  port=${PORT:-18098}
  url="http://127.0.0.1:$port/"
  WARDEN_ENCRYPTION_KEY=spa-size-script-key-0123456789abcdef target/debug/warden serve --listen "127.0.0.1:$port" \
    --database-url "sqlite://$dir/warden.db" --spa-dir dist > "$dir/warden.log" 2>&1 &
  warden=$!
  trap 'kill $warden 2>/dev/null || true; rm -rf "$dir"' EXIT
  for _ in $(seq 1 100); do curl -fs "${url}api/status" > /dev/null && break; sleep 0.2; done
fi
url=${url%/}/

fetch() { # prints: bytes received, content-encoding
  curl -fsS -o /dev/null -D - -H "$accept" -w 'size %{size_download}\n' "$1" |
    awk 'tolower($1) == "content-encoding:" {enc = $2} $1 == "size" {size = $2} END {gsub("\r", "", enc); print size, (enc == "" ? "identity" : enc)}'
}

total=0
row() {
  read -r size encoding < <(fetch "$url$1")
  total=$((total + size))
  printf '%-45s %9d bytes  %s\n' "${1:-index.html}" "$size" "$encoding"
}
row ""
html=$(curl -fsS "$url")
for asset in $(grep -o 'href="[^"]*"' <<< "$html" | sed 's/href="\.\{0,1\}\/\{0,1\}//; s/"$//' | sort -u); do
  row "$asset"
done
printf '%-45s %9d bytes (%d KB) over the wire\n' "first load" "$total" $((total / 1024))
