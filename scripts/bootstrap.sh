#!/usr/bin/env bash
# Installs what Warden's build needs (and, with `test`, what its tests need),
# each piece only when it is missing. Everything comes from the package
# registries (crates.io, npm, Debian); nothing is downloaded from elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}

# Splits the lazy pages out of the web app's wasm (scripts/build-spa.sh);
# 0.2.4 is the first that works with wasm-bindgen 0.2.128 and later.
WASM_SPLIT_VERSION=0.2.4
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first (https://rustup.rs)" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is missing: install Node.js 20+ first" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32 target"
  rustup target add wasm32-unknown-unknown
fi

# make test checks formatting and lints.
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "adding the $component component"
    rustup component add "$component"
  fi
done

# (The binary has no --version; cargo's list of installed crates says.)
if ! command -v wasm-split-cli >/dev/null || ! cargo install --list | grep -qx "wasm_split_cli_support v$WASM_SPLIT_VERSION:"; then
  say "installing wasm-split-cli $WASM_SPLIT_VERSION (a few minutes, once)"
  cargo install wasm_split_cli_support --version "$WASM_SPLIT_VERSION" --features build-binary --locked
fi

# wasm-bindgen-cli must be exactly the wasm-bindgen that Cargo.lock pins.
wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
grep -q "wasm-bindgen = \"=$wbg\"" Cargo.toml || { echo "Cargo.toml's wasm-bindgen must be =$wbg (Cargo.lock)" >&2; exit 1; }
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$"; then
  say "installing wasm-bindgen-cli $wbg (a few minutes, once)"
  # Without --locked: its own lock file pins a crate release the registry lacks.
  cargo install wasm-bindgen-cli --version "$wbg"
fi

# wasm-opt from npm's binaryen (Debian's older binaryen breaks the app).
if [ ! -x tools/node_modules/.bin/wasm-opt ]; then
  say "installing wasm-opt (npm binaryen)"
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi

# The release build writes a brotli copy of each asset (scripts/build-spa.sh).
command -v brotli >/dev/null || apt_install brotli

if [ "$mode" = test ]; then
  [ -x /usr/bin/chromium ] || apt_install chromium
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx-light
  if [ ! -d e2e/node_modules ] || [ e2e/package-lock.json -nt e2e/node_modules ]; then
    say "installing Playwright (no browser download: tests use Debian's chromium)"
    (cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    touch e2e/node_modules
  fi
fi
