#!/usr/bin/env bash
# Runs the PyPI package pii-leak-benchmark (0.6.0) against the gateway: its capture server
# stands in for the model provider on 127.0.0.1:8765 and checks that no test value reaches
# it unmasked, and that the client gets the original values back (streams included).
# Usage: scripts/pii_leak_benchmark.sh [--guard off|input|full]   (default full)
set -euo pipefail
cd "$(dirname "$0")/.."
guard=full
if [[ "${1:-}" == "--guard" ]]; then guard="$2"; fi

venv=target/venv-pii-leak
if [[ ! -x "$venv/bin/pii-leak-benchmark" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "pii-leak-benchmark==0.6.0"
fi
cargo build --release --locked -q -p regelkreis
bin=target/release/regelkreis

work=$(mktemp -d /tmp/regelkreis-plb.XXXXXX)
cleanup() { [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/regelkreis.toml" <<TOML
[gateway]
guard = "$guard"
cache_entries = 0
[[gateway.providers]]
name = "capture"
kind = "openai_compatible"
base_url = "http://127.0.0.1:8765/v1"
api_key = "sk-capture"
[gateway.tiers]
conformance = ["capture/conformance-model"]
[gateway.aliases]
conformance-model = "conformance"
TOML
key=$("$bin" keys create --tenant plb --scope chat --data "$work/data")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --config "$work/regelkreis.toml" --data "$work/data" --addr "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
"$venv/bin/pii-leak-benchmark" ci --target-base-url "http://127.0.0.1:$port/v1" \
  --target-api-key "$key" --out "$work/out" --target-version "regelkreis guard=$guard" || status=$?
cat "$work/out"/*.md 2>/dev/null | head -80
exit "${status:-0}"
