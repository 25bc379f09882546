#!/usr/bin/env bash
# Regenerates the statistics golden files from their reference implementations on PyPI,
# installed into a virtualenv under target/:
#   crates/measure/tests/golden/gbstats_ab.jsonl    gbstats 0.8.0 (GrowthBook's stats engine)
#   crates/measure/tests/golden/multitest_ssrm.json statsmodels 0.14.4 multipletests,
#                                                   ssrm-test 0.1.5 sequential SRM
# Usage: scripts/stats_golden.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/python_env.sh venv-gbstats "gbstats==0.8.0 statsmodels==0.14.4 ssrm-test==0.1.5")
"$python" scripts/gbstats_golden.py "${1:-10000}"
"$python" scripts/reference_golden.py
