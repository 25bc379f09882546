#!/usr/bin/env bash
# Regenerates crates/measure/tests/golden/gbstats_ab.jsonl from gbstats 0.8.0 (PyPI),
# installed into a virtualenv under target/. Usage: scripts/gbstats_golden.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-gbstats
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q gbstats==0.8.0
fi
"$venv/bin/python" scripts/gbstats_golden.py "${1:-10000}"
echo "wrote crates/measure/tests/golden/gbstats_ab.jsonl"
