#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 on a loopback port for the tests, installing it from
# Debian's packages when it is missing. Prints the connection URL on stdout.
# Usage: scripts/postgres.sh start DIR [PORT] | scripts/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?data directory}
port=${3:-54329}

find_bin() {
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

case "$cmd" in
  start)
    if ! bin=$(find_bin); then
      echo "installing PostgreSQL 15 from Debian's packages" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq postgresql-15 >&2
      bin=$(find_bin)
    fi
    mkdir -p "$dir"
    owner=""
    if [ "$(id -u)" = 0 ]; then
      id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
      chown postgres "$dir"
      owner="runuser -u postgres --"
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      $owner "$bin/initdb" -D "$dir" -U regelkreis --auth=trust -E UTF8 >/dev/null
    fi
    $owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200" start >&2
    echo "postgres://regelkreis@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(find_bin)
    owner=""
    [ "$(id -u)" = 0 ] && owner="runuser -u postgres --"
    $owner "$bin/pg_ctl" -D "$dir" -m fast stop >&2 || true
    ;;
  *) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac
