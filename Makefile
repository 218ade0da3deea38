# Two commands for a new user: `make run` and `make test`. Both install what is
# missing first (scripts/bootstrap.sh).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

WARDEN := target/debug/warden

.PHONY: run test setup setup-test build build-server build-spa test-lint test-unit test-api test-postgres test-wasm test-e2e bench clean

## Build everything and serve Warden with demo data on http://127.0.0.1:8080
run: build
	@scripts/run-demo.sh

## Every test: unit, API (SQLite and PostgreSQL), wasm build of the core, e2e in Chromium (direct and behind nginx)
test: setup-test test-lint build test-unit test-api test-postgres test-wasm test-e2e
	@echo "make test: all suites passed"

setup:
	@scripts/bootstrap.sh build

setup-test:
	@scripts/bootstrap.sh test

build: setup build-server build-spa

build-server:
	cargo build -p warden-server -p warden-agent -p warden-mde-emulator -p warden-cloud-emulator

build-spa:
	scripts/build-spa.sh

# Formatting (rustfmt.toml) and clippy with warnings as errors, native and wasm32.
test-lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --exclude warden-ui --all-targets -- -D warnings
	cargo clippy -p warden-ui -p warden-core --target wasm32-unknown-unknown -- -D warnings

test-unit:
	cargo test -p warden-core -p warden-server -p warden-agent --lib --bins
	cargo test -p warden-mde-emulator
	cargo test -p warden-cloud-emulator

test-api:
	cargo test -p warden-server --test api

test-postgres:
	@scripts/test-postgres.sh

# crates/core is shared with the browser: it must build for wasm32.
test-wasm:
	cargo check -p warden-core --target wasm32-unknown-unknown

test-e2e:
	cd e2e && npx playwright test

## Benchmarks (not tests): figures for docs/perf.md
bench:
	cargo bench -p warden-server --bench api_key_invalidation
	scripts/bench-fleet.sh

clean:
	rm -rf dist target/spa e2e/.run e2e/test-results
