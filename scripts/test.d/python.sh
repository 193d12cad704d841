#!/usr/bin/env bash
# Python package: build the abi3 wheel, install it into a venv under the target dir, check the stub against the
# native module (mypy.stubtest), type-check the package, and run pytest (conformance cases, errors, threads, metrics,
# hooks, OpenTelemetry spans decoded with opentelemetry-proto, the
# openai SDK through polyroute's transports on httpx and on httpx2 against the loopback mock providers).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PY="${PYTHON:-python3}"
VENV="$CARGO_TARGET_DIR/py-venv"
WHEELS="$CARGO_TARGET_DIR/py-wheels"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade maturin pytest openai anthropic httpx httpx2 mypy opentelemetry-sdk opentelemetry-proto

if [ -d crates/polyroute-mock ]; then
  cargo build --quiet -p polyroute-mock
  export POLYROUTE_MOCK_BIN="$CARGO_TARGET_DIR/debug/polyroute-mock"
fi

# OpenRouter's Python SDK, pinned: its models validate what the Router emits (tests/test_openrouter_schema.py).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openrouter==1.3.84"

rm -rf "$WHEELS"
(cd python && "$VENV/bin/maturin" build --quiet --profile "${POLYROUTE_PY_PROFILE:-dev}" \
  --interpreter "$VENV/bin/python" --out "$WHEELS")
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/polyroute-*.whl

cd python
"$VENV/bin/python" -m mypy.stubtest polyroute._polyroute --allowlist stubtest-allowlist.txt
"$VENV/bin/python" -m mypy --strict --no-incremental -p polyroute
# Run against the installed wheel, not the source tree.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --import-mode=importlib --rootdir=. tests
