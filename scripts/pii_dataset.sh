#!/usr/bin/env bash
# Regenerates crates/guard/data/pii_eval.jsonl (committed; CI only reads it).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-piigen
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "faker==40.*" "python-stdnum==2.*"
"$venv/bin/python" scripts/pii_dataset.py "$@"
