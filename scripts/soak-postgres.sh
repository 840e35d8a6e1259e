#!/usr/bin/env bash
# The PostgreSQL soak on a server of its own with PostgreSQL's default
# settings (autovacuum on): the project machines' shared server runs with
# autovacuum off, which would show bloat that no production server keeps.
# Starts a throwaway PostgreSQL 15 cluster as the `postgres` user on port
# 55432 in a temporary folder, runs `cargo bench --bench soak` against it
# (SOAK_SECONDS, ROW_SECONDS, SOAK_HOOK as usual), then stops and removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=/usr/lib/postgresql/15/bin
port=${SOAK_PG_PORT:-55432}
data=$(mktemp -d /tmp/scenarist-soak-pg.XXXXXX)
chown postgres "$data"
stop() {
    su postgres -c "$bin/pg_ctl -D '$data/db' -m fast stop" >/dev/null 2>&1 || true
    rm -rf "$data"
}
trap stop EXIT
su postgres -c "$bin/initdb -D '$data/db' -A trust -U postgres" >/dev/null
su postgres -c "$bin/pg_ctl -D '$data/db' -l '$data/log' -o '-p $port -k $data -c listen_addresses=127.0.0.1' -w start" >/dev/null
echo "private PostgreSQL on 127.0.0.1:$port, autovacuum $(psql "postgres://postgres@127.0.0.1:$port/postgres" -Atc 'show autovacuum')"
SOAK_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres" cargo bench --bench soak
