#!/usr/bin/env bash
# Regenerates the uplift golden files from CausalML and scikit-uplift (PyPI), installed
# into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-uplift
want="causalml==0.15.5 scikit-uplift==0.5.1 scikit-learn==1.7.2 pandas==2.2.3"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q $want
  echo "$want" > "$venv/.installed"
fi
"$venv/bin/python" scripts/uplift_golden.py crates/measure/tests/golden
