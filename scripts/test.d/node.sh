#!/usr/bin/env bash
# Node package: install (npm install from the lock), build the addon, prove the generated index.js/index.d.ts are fresh, type-check
# the typed usage file, build the loopback mock, then run `node --test`. Run by scripts/test.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ROOT=$PWD
cd node

# Install from the committed lock when node_modules was not installed from this exact lock file. `npm install`
# rather than `npm ci`: on Node 20, npm ci calls the lock out of sync over optional platform packages of a
# transitive dependency of @napi-rs/cli that declares Node >= 22; `npm install` resolves the same tree from the lock.
if ! cmp -s package-lock.json node_modules/.polyroute-lock 2>/dev/null; then
  echo "-- npm install (from package-lock.json)"
  npm install --no-audit --no-fund
  # The lock is committed and normally comes back unchanged. When npm re-resolves part of the tree (it did once:
  # the optional platform packages above made it pick newer versions published since the lock was written), say
  # so and go on: what is tested is then the current resolution, and a red CI run would only report the registry.
  if ! git diff --quiet -- package-lock.json; then
    echo "note: npm install changed node/package-lock.json (registry drift); commit the new lock to pin it:" >&2
    git diff --stat -- package-lock.json >&2
  fi
  cp package-lock.json node_modules/.polyroute-lock
fi

echo "-- napi build (debug) into a scratch directory"
GEN=$(mktemp -d)
trap 'rm -rf "$GEN"' EXIT
npx napi build --platform --manifest-path ../bindings/node/Cargo.toml --output-dir "$GEN" \
  --no-const-enum --runtime-string-enum
for f in index.js index.d.ts; do
  if ! diff -u "$f" "$GEN/$f" > "$GEN/$f.diff"; then
    cat "$GEN/$f.diff"
    echo "node/$f is stale: run 'npm run build' in node/ and commit it" >&2
    exit 1
  fi
done
cp "$GEN"/polyroute.*.node .
echo "-- generated index.js and index.d.ts are fresh"

echo "-- tsc --noEmit (typed usage)"
npx tsc -p test/types

echo "-- loopback mock provider"
(cd "$ROOT" && cargo build -q -p polyroute-mock)
export POLYROUTE_MOCK_BIN="$CARGO_TARGET_DIR/debug/polyroute-mock"

echo "-- node --test"
node --test test/
