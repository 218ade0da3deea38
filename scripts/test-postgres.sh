#!/usr/bin/env bash
# Runs the API tests on PostgreSQL when a server answers at 127.0.0.1:5432
# (CI requires one). Each test creates its own database; old ones are dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${TEST_POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432}

if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "PostgreSQL is required in CI but nothing answers at 127.0.0.1:5432" >&2
    exit 1
  fi
  echo "SKIPPED: the PostgreSQL API tests (no server at 127.0.0.1:5432)"
  exit 0
fi

if command -v psql >/dev/null; then
  psql "$server/postgres" -Atqc "select datname from pg_database where datname like 'warden_test_%'" |
    while read -r db; do psql "$server/postgres" -qc "drop database if exists \"$db\"" >/dev/null; done
fi
echo "API tests on PostgreSQL ($server)"
TEST_POSTGRES_URL="$server" cargo test -p warden-server --test api
