#!/usr/bin/env bash
# Regenerates crates/measure/tests/golden/drift.json from Evidently and SciPy (PyPI),
# installed into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-drift
want="evidently==0.7.14 scipy==1.15.3 pandas==2.2.3"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q $want
  echo "$want" > "$venv/.installed"
fi
"$venv/bin/python" scripts/drift_golden.py > crates/measure/tests/golden/drift.json
