#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the test suite.
#
#   tests/postgres_cluster.sh start DIR   # prints the SQLAlchemy URL as its last stdout line
#   tests/postgres_cluster.sh stop DIR    # stops the cluster and removes DIR
#
# The cluster lives entirely in DIR, listens on 127.0.0.1 only (no Unix socket), on a free
# port, with a password generated per cluster. It never uses pg_ctlcluster, the Debian config
# in /etc/postgresql or /var/run/postgresql, so the system cluster 15/main is neither needed
# nor touched. Everything but the URL goes to stderr, so `url=$(... start DIR)` just works.
#
# Environment: PG_BIN (default /usr/lib/postgresql/15/bin), CXLOOP_PG_START_TIMEOUT (seconds,
# default 60), PYTHON (used to pick a free port and a password; default python3).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
START_TIMEOUT=${CXLOOP_PG_START_TIMEOUT:-60}
PYTHON=${PYTHON:-python3}
DB_NAME=cxloop_test
DB_USER=postgres
# Written by `start`; `stop` refuses to delete a directory without it.
MARKER=.cxloop-throwaway-postgres

log() { printf 'postgres_cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    printf 'usage: %s start DIR | stop DIR\n' "$0" >&2
    exit 2
}

# initdb and postgres refuse to run as root: run the server-side tools as the postgres user.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# tests/harness/ports.py, standard library only; -I: nothing from the environment or cwd.
PORTS_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/harness/ports.py"
free_port() {
    "$PYTHON" -I "$PORTS_PY"
}

cmd_start() {
    local dir=$1
    [ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb not found: install postgresql-15 (make test does, as root)"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed to pick a free port)"

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -n "$(ls -A "$dir")" ]; then
        die "$dir is not empty; refusing to create a cluster there"
    fi
    touch "$dir/$MARKER"
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user"
        chown postgres: "$dir"
        as_owner test -w "$dir" \
            || die "user postgres cannot write $dir (is a parent directory closed to it?)"
    fi

    local password pwfile
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
    pwfile="$dir/pwfile"
    (umask 077 && printf '%s\n' "$password" >"$pwfile")
    [ "$(id -u)" -ne 0 ] || chown postgres: "$pwfile"

    log "initdb in $dir/data"
    if ! as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=reject --encoding=UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$pwfile"

    # A free port can be taken between picking it and binding it: retry with a new one.
    local port="" attempt started=0
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        # Later settings win, so these override initdb's defaults. Durability is off on
        # purpose: the cluster is thrown away after the run.
        cat >"$dir/data/cxloop.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
        [ "$(id -u)" -ne 0 ] || chown postgres: "$dir/data/cxloop.conf"
        grep -q "^include_if_exists = 'cxloop.conf'" "$dir/data/postgresql.conf" \
            || echo "include_if_exists = 'cxloop.conf'" >>"$dir/data/postgresql.conf"

        rm -f "$dir/postgres.log"
        log "starting on 127.0.0.1:$port (attempt $attempt)"
        if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
            -w -t "$START_TIMEOUT" start >/dev/null 2>&1; then
            started=1
            break
        fi
        if grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/postgres.log" 2>/dev/null; then
            log "port $port was taken, trying another"
            as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
            continue
        fi
        break
    done
    if [ "$started" -ne 1 ]; then
        tail -n 30 "$dir/postgres.log" >&2 2>/dev/null || true
        as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        die "PostgreSQL did not start (log: $dir/postgres.log)"
    fi

    # pg_ctl -w only reads postmaster.pid; wait until it really accepts TCP connections.
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U "$DB_USER" -t 2; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$dir/postgres.log" >&2 || true
            as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
            die "PostgreSQL on 127.0.0.1:$port not ready after ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done

    if ! PGPASSWORD=$password "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME"; then
        as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        die "createdb $DB_NAME failed"
    fi
    log "ready: database $DB_NAME on 127.0.0.1:$port"
    printf 'postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' "$DB_USER" "$password" "$port" "$DB_NAME"
}

cmd_stop() {
    local dir=$1
    [ -e "$dir" ] || return 0
    if [ ! -f "$dir/$MARKER" ]; then
        # `start` failed before it made anything (e.g. no initdb): the caller's empty
        # directory is all there is. Anything else is not ours to delete.
        rmdir -- "$dir" 2>/dev/null || die "$dir was not made by '$0 start'; not touching it"
        return 0
    fi
    if [ -f "$dir/data/postmaster.pid" ]; then
        if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            log "fast stop failed, stopping immediately"
            as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
        fi
    fi
    rm -rf -- "$dir"
}

[ $# -eq 2 ] || usage
[ -n "$2" ] || usage
case $1 in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    *) usage ;;
esac
