#!/usr/bin/env bash
# OpenRouter wire conformance over HTTP: `polyroute serve` on the loopback mock, checked with OpenRouter's own SDKs
# (`openrouter` on PyPI, `@openrouter/sdk` on npm, pinned): every answer, chunk and error validates against the SDKs'
# models (per dialect — openai, anthropic, gemini — streamed and not, tools, structured output, faults), then each
# SDK end to end (chat, stream, tools, streamed tool calls, json_schema, models fallback, an error, usage and cost).
# The in-process surfaces are checked by python/tests/test_openrouter_schema.py and node/test/openrouter-schema.test.mjs.
# 127.0.0.1 only; fake keys; both processes stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OPENROUTER_PY="openrouter==1.3.84"
cargo build -q -p polyroute-cli -p polyroute-mock
BIN="$CARGO_TARGET_DIR/debug"

TMP=$(mktemp -d)
MOCK_PID=""
SERVE_PID=""
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  [ -n "$SERVE_PID" ] && wait "$SERVE_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && wait "$MOCK_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

first_line() { # file: wait for the first line
  for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.1; done
  head -1 "$1"
}

"$BIN/polyroute-mock" --port 0 >"$TMP/mock.out" &
MOCK_PID=$!
MOCK="http://$(first_line "$TMP/mock.out" | sed 's/^listening on //')"

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
"$BIN/polyroute" serve --config "$TMP/polyroute.toml" --port 0 >"$TMP/serve.out" &
SERVE_PID=$!
URL=$(first_line "$TMP/serve.out" | sed 's/^listening on //')
case "$URL" in http://127.0.0.1:*) ;; *) echo "serve did not start: $URL" >&2; exit 1;; esac
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

kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
SERVE_PID=""
echo "wire.sh: openrouter python sdk, openrouter typescript sdk over http: 2 passed, 0 failed"
