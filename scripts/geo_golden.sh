#!/usr/bin/env bash
# Regenerates crates/measure/tests/golden/geo.json from pysyncon and statsmodels (PyPI),
# installed into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-geo
want="pysyncon==1.5.2 statsmodels==0.14.4 pandas==2.2.3 scipy==1.15.3"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q $want
  echo "$want" > "$venv/.installed"
fi
"$venv/bin/python" scripts/geo_golden.py ../shared/data/causal/california_prop99.csv > crates/measure/tests/golden/geo.json
