#!/usr/bin/env bash
# Regenerates crates/measure/tests/golden/drift.json from Evidently and SciPy (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/python_env.sh venv-drift "evidently==0.7.14 scipy==1.15.3 pandas==2.2.3")
"$python" scripts/drift_golden.py > crates/measure/tests/golden/drift.json
