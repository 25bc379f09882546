#!/usr/bin/env bash
# Regenerates the uplift golden files from CausalML and scikit-uplift (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/python_env.sh venv-uplift "causalml==0.15.5 scikit-uplift==0.5.1 scikit-learn==1.7.2 pandas==2.2.3")
"$python" scripts/uplift_golden.py crates/measure/tests/golden
