#!/usr/bin/env bash
# OpenRouter wire conformance over HTTP: `polyroute serve` on the loopback mock, checked with OpenRouter's own SDKs
# (`openrouter` on PyPI, `@openrouter/sdk` on npm, pinned): every answer, chunk and error validates against the SDKs'
# models (per dialect — openai, anthropic, gemini — streamed and not, tools, structured output, faults), then each
# SDK end to end (chat, stream, tools, streamed tool calls, json_schema, models fallback, an error, usage and cost).
# The in-process surfaces are checked by python/tests/test_openrouter_schema.py and node/test/openrouter-schema.test.mjs.
# 127.0.0.1 only; fake keys; both processes stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/gateway-test.sh
OPENROUTER_PY="openrouter==1.3.84"
cargo build -q -p polyroute-cli -p polyroute-mock

start_mock

# One provider per dialect answering normally; one per fault class: moonshotai 503 (before content), mistral 429,
# deepseek cut mid-stream (after content).
cat >"$TMP/polyroute.toml" <<TOML
env_keys = false

[providers.openai]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"

[providers.anthropic]
api_key = "sk-test-fake"
base_url = "$MOCK"

[providers.google-ai-studio]
api_key = "sk-test-fake"
base_url = "$MOCK"

[providers.moonshotai]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-fault" = "503" }

[providers.mistral]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-fault" = "429" }

[providers.deepseek]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-fault" = "cut" }
TOML

export POLYROUTE_DATA_DIR="$TMP/data"
start_serve "$TMP/polyroute.toml"
export URL
export KEY=$("$BIN/polyroute" keys create --label wire | tail -1)

# Python: the venv of python.sh when present (it installs the same pin), else a venv of its own.
VENV="$CARGO_TARGET_DIR/py-venv"
[ -x "$VENV/bin/python" ] || VENV="$CARGO_TARGET_DIR/wire-venv"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import openrouter" 2>/dev/null ||
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$OPENROUTER_PY"
PYTHONPATH="$ROOT/python/tests" "$VENV/bin/python" "$ROOT/python/tests/gateway_conform.py"

# Node: node/node_modules from the committed lock (node.sh installs it; @openrouter/sdk is a pinned devDependency).
if [ ! -d node/node_modules/@openrouter/sdk ]; then
  (cd node && npm install --no-audit --no-fund)
fi
node node/support/gateway-conform.mjs

stop_serve
echo "wire.sh: openrouter python sdk, openrouter typescript sdk over http: 2 passed, 0 failed"
