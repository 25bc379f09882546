#!/usr/bin/env bash
# Regenerates crates/measure/tests/golden/obp_ope.json with obp 0.4.1 from PyPI, installed
# into a virtualenv under target/ (obp pulls PyTorch: a large download, needed only here,
# never in CI, which reads the committed golden file).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv-obp
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import obp" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q obp==0.4.1 "pandas<2" "numpy<2" "scikit-learn<1.6"
fi
"$venv/bin/python" scripts/obp_golden.py
