#!/usr/bin/env bash
# Makes (once) a virtualenv under target/NAME with exactly the given PyPI packages and
# prints its python. Usage: python=$(scripts/python_env.sh NAME "pkg==1.0 other==2.0")
set -euo pipefail
cd "$(dirname "$0")/.."
venv="target/$1"
want="$2"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q $want >&2
  printf '%s' "$want" > "$venv/.installed"
fi
echo "$PWD/$venv/bin/python"
