#!/usr/bin/env bash
# The web app's release build (run by `make build`), in the order
# ../shared/recipes/wasm-split.md gives (Trunk cannot split a wasm):
#   1. cargo builds the wasm; .cargo/config.toml keeps the linker's relocations
#   2. wasm-split-cli cuts each lazy page (src/app.rs, `lazy_pages!`) and the
#      code only pages share into chunks, loaded when a page is first opened
#   3. wasm-bindgen writes the JS glue for the main module
#   4. wasm-opt -Oz shrinks every module
#   5. everything goes into dist/app-<content hash>/ with the stylesheets;
#      index.html names that folder; each file gets a .br and a .gz beside it,
#      which `warden` sends to browsers that accept them
#      (crates/server/src/http/spa.rs, which also marks the folder immutable).
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=target/wasm32-unknown-unknown/wasm-release/warden-ui.wasm
split=target/spa/split
pkg=target/spa/pkg

cargo build --profile wasm-release --target wasm32-unknown-unknown -p warden-ui
rm -rf target/spa && mkdir -p "$split" "$pkg"
wasm-split-cli "$wasm" "$split" --out-name warden-ui --target web
wasm-bindgen "$split/warden-ui.wasm" --out-dir "$pkg" --target web --keep-lld-exports --no-demangle --no-typescript --out-name warden-ui
cp "$split"/*.js "$pkg"/
find "$split" -name '*.wasm' ! -name 'warden-ui.wasm' -exec cp {} "$pkg"/ \;
for module in "$pkg"/*.wasm; do
  # binaryen does not know the name section's field names; harmless.
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types "$module" -o "$module" 2>&1 |
    { grep -v 'unknown name subsection' || true; } >&2
done
cat style/main.css style/layout.css style/components.css style/rules.css > "$pkg/warden.css"
# A lazy page's own stylesheet loads with it (components::page_style), not in the first load.
cp style/response_actions.css style/console.css style/bulk_actions.css style/fleet.css "$pkg/"

app="app-$(cat "$pkg"/* | sha256sum | cut -c1-16)"
rm -rf dist && mkdir -p dist
mv "$pkg" "dist/$app"
cp public/* dist/
sed "s/@APP@/$app/g" index.html > dist/index.html
find dist -type f ! -name index.html -print0 |
  while IFS= read -r -d '' f; do
    gzip -9 -k -f -n "$f"
    brotli -q 11 -k -f "$f"
  done
echo "built dist/ ($app)"
