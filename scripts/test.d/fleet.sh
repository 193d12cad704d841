#!/usr/bin/env bash
# The fleet with every kind of process (tests/fleet/fleet.py): 3 `polyroute serve` gateways, 2 Python processes
# and 1 Node process with in-process routers configured with `state`, sharing one throwaway Redis and one
# throwaway PostgreSQL (polyroute-testsupport's state_servers), 256 concurrent clients: a USD limit and an rpm
# held across the fleet, conversations keeping their endpoint from any process. Builds what it runs: the CLI,
# the mock, the Python wheel (into python.sh's venv) and the Node addon (as node.sh does). Skipped with a note
# when redis-server or PostgreSQL is missing, as the Rust state tests are.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   || ! command -v node >/dev/null; then
  echo "fleet: redis-server, PostgreSQL or node missing; skipped" >&2
  exit 0
fi

cargo build --quiet -p polyroute-cli -p polyroute-mock
cargo build --quiet -p polyroute-cli --example state_servers

PY="${PYTHON:-python3}"
VENV="$CARGO_TARGET_DIR/py-venv"
WHEELS="$CARGO_TARGET_DIR/py-wheels-fleet"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade maturin
rm -rf "$WHEELS"
(cd python && "$VENV/bin/maturin" build --quiet --profile "${POLYROUTE_PY_PROFILE:-dev}" \
  --interpreter "$VENV/bin/python" --out "$WHEELS")
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/polyroute-*.whl
rm -rf "$WHEELS"

cd node
if ! cmp -s package-lock.json node_modules/.polyroute-lock 2>/dev/null; then
  npm install --no-audit --no-fund
  cp package-lock.json node_modules/.polyroute-lock
fi
GEN=$(mktemp -d)
trap 'rm -rf "$GEN"' EXIT
npx napi build --platform --manifest-path ../bindings/node/Cargo.toml --output-dir "$GEN" \
  --no-const-enum --runtime-string-enum >/dev/null
cp "$GEN"/polyroute.*.node .
cd "$ROOT"

POLYROUTE_BIN="$CARGO_TARGET_DIR/debug" FLEET_PYTHON="$VENV/bin/python" FLEET_NODE="$ROOT/node" \
  python3 tests/fleet/fleet.py
