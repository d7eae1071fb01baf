#!/usr/bin/env bash
# A throwaway PostgreSQL server for sweep tests and local multi-worker sweeps.
#
#   scripts/postgres.sh install              install Debian's postgresql if initdb/pg_ctl are missing
#   scripts/postgres.sh start DIR [PORT]     initialise a cluster in DIR, start it on 127.0.0.1:PORT
#                                            (default 55432), create database "gnnrec", print its URL
#   scripts/postgres.sh stop DIR             stop the server of DIR (the caller removes DIR)
#
# The server trusts local connections (no password): it listens on 127.0.0.1 only and lives
# as long as the test session. PostgreSQL refuses to run as root, so as root the cluster is
# owned by and run as the "postgres" system user (created by the Debian package, or here).
set -euo pipefail

find_bin() {
    # initdb/pg_ctl are on PATH on some systems; Debian keeps them in /usr/lib/postgresql/N/bin.
    local d
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

install_pg() {
    if find_bin >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "postgres.sh: PostgreSQL is not installed and installing it needs root (apt-get install postgresql)" >&2
        return 1
    fi
    echo "postgres.sh: installing the Debian package postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    find_bin >/dev/null
}

# Run a command as the cluster's owner (postgres when we are root, else ourselves).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

cmd="${1:-}"
case "$cmd" in
install)
    install_pg
    echo "postgres.sh: PostgreSQL binaries in $(find_bin)" >&2
    ;;
start)
    dir="${2:?usage: postgres.sh start DIR [PORT]}"
    port="${3:-55432}"
    install_pg
    bin="$(find_bin)"
    PG_USER=postgres
    if [ "$(id -u)" = 0 ] && ! id -u "$PG_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ "$(id -u)" = 0 ]; then
        chown "$PG_USER" "$dir"
        chmod 700 "$dir"
        # every parent folder must be searchable by the server's user (mktemp -d makes 0700 ones)
        runuser -u "$PG_USER" -- test -x "$dir" || {
            echo "postgres.sh: user $PG_USER cannot reach $dir (a parent folder is not searchable); use e.g. /tmp/..." >&2
            exit 1
        }
    fi
    # The cluster's data, socket and log all live in DIR; fsync off: a test server.
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
        echo "postgres.sh: initdb failed:" >&2
        tail -5 "$dir/initdb.log" >&2
        exit 1
    }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=100" start >/dev/null || {
        echo "postgres.sh: server did not start:" >&2
        tail -5 "$dir/server.log" >&2
        exit 1
    }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres gnnrec
    echo "postgresql://postgres@127.0.0.1:$port/gnnrec"
    ;;
stop)
    dir="${2:?usage: postgres.sh stop DIR}"
    bin="$(find_bin)"
    PG_USER=postgres
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    fi
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
