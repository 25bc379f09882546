#!/usr/bin/env bash
# Regenerates crates/measure/tests/golden/geo.json from pysyncon and statsmodels (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/python_env.sh venv-geo "pysyncon==1.5.2 statsmodels==0.14.4 pandas==2.2.3 scipy==1.15.3")
"$python" scripts/geo_golden.py ../shared/data/causal/california_prop99.csv > crates/measure/tests/golden/geo.json
