#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tests, installing it first if needed.
#
#   eval "$(bash .ci/start-postgres.sh)"     # exports GENESYS_ENRICH_TEST_POSTGRES_DSN
#   bash .ci/start-postgres.sh --stop        # when done: stops it and deletes its data
#
# Stdout carries only the export lines, for eval; progress goes to stderr. The server trusts
# loopback connections and keeps its data in a fresh temporary directory.
set -euo pipefail

find_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

bin=$(find_bin || true)
if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "PostgreSQL is not installed: run 'sudo apt-get install -y postgresql' (or your system's package) and retry" >&2
        exit 1
    fi
    echo "+ apt-get install -y postgresql" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(find_bin)
fi

# PostgreSQL refuses to run as root: as root, run it as the postgres user the package created.
as_owner() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    as_owner() { runuser -u postgres -- "$@"; }
fi

if [ "${1:-}" = --stop ]; then
    data=${GENESYS_ENRICH_TEST_POSTGRES_DATA:?"nothing to stop: GENESYS_ENRICH_TEST_POSTGRES_DATA is not set"}
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >&2
    rm -rf "$data"
    exit 0
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/genesys-enrich-postgres.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; fi

as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-instructions >&2
as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off" start >&2

echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $data" >&2
echo "export GENESYS_ENRICH_TEST_POSTGRES_DSN=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
echo "export GENESYS_ENRICH_TEST_POSTGRES_DATA=$data"
