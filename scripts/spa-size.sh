#!/usr/bin/env bash
# What a browser downloads, as served: each file fetched from a running warden
# with the Accept-Encoding Chromium sends, counted in bytes received.
# Prints the first load (index.html and what it names, which is the login
# page), each lazy page's chunks, and the first load of a deep link to each
# lazy page (the first load plus that page's chunks). docs/perf.md records it.
#   scripts/spa-size.sh                                  starts target/debug/warden on a temp database
#   WARDEN_URL=http://host/warden/ scripts/spa-size.sh   measures a running one
#   ACCEPT='gzip, deflate' scripts/spa-size.sh           what Chromium asks for over plain HTTP
#                                                        (it asks for br only over HTTPS)
set -euo pipefail
cd "$(dirname "$0")/.."
accept="Accept-Encoding: ${ACCEPT:-gzip, deflate, br, zstd}"
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

# Bytes received for one path, and how it was encoded.
fetch() {
  curl -fsS -o /dev/null -D - -H "$accept" -w 'size %{size_download}\n' "$url$1" |
    awk 'tolower($1) == "content-encoding:" {enc = $2} $1 == "size" {size = $2} END {gsub("\r", "", enc); print size, (enc == "" ? "identity" : enc)}'
}

# Prints a row per path and sets $sum to their total.
measure() {
  sum=0
  for path in "$@"; do
    read -r size encoding < <(fetch "$path")
    sum=$((sum + size))
    printf '  %-62s %8d bytes  %s\n' "${path:-index.html}" "$size" "$encoding"
  done
}

html=$(curl -fsS "$url")
first=("" $(grep -o 'href="[^"]*"' <<< "$html" | sed 's/^href="\.\{0,1\}\/\{0,1\}//; s/"$//' | grep . | sort -u))
app=$(grep -o 'app-[0-9a-f]\{16\}' <<< "$html" | head -1)
first+=("$app/__wasm_split.js")
echo "first load (the login page):"
measure "${first[@]}"
first_load=$sum
printf '  %-62s %8d bytes (%d KB)\n' "total" "$first_load" $((first_load / 1024))

# The split loader names, for each lazy page, its module and the shared chunks it needs.
loader=$(curl -fsS -H "$accept" --compressed "$url$app/__wasm_split.js")
pages=$(grep -o 'split___[a-z_]*_route_view_[0-9]*\.wasm' <<< "$loader" | sort -u)
for module in $pages; do
  name=${module#split___}
  name=${name%%_route_view_*}
  chunks=$(grep -A4 "\"./$module\"" <<< "$loader" | grep -o '__chunk_[0-9]*' | sed "s|__chunk_\(.*\)|$app/chunk_\1.wasm|")
  echo "page '$name', loaded when first opened:"
  measure "$app/$module" $chunks
  printf '  %-62s %8d bytes (%d KB); a deep link to it loads %d KB\n' "total" "$sum" $((sum / 1024)) $(((first_load + sum) / 1024))
done
