#!/usr/bin/env bash
# Every fenced code block of README.md, python/README.md and node/README.md runs: here, against the loopback mock
# provider (`polyroute-mock`), or — for the Gateway section's shell and SDK blocks — in serve.sh. A block that no
# runner claims fails this script, so a new README example cannot go untested. Run by scripts/test.
#
# What is adapted, and why (everything else runs as written):
#  - `cargo install` gets `--debug --root <tmp>` (reuses this target dir; a release install takes minutes);
#  - `pip install ./python` installs the wheel scripts/test.d/python.sh built (same package; a from-source
#    release build takes many minutes); `.venv` lives under the target dir; `npm install ./node` gets the
#    repository's absolute path and runs in a scratch project under the target dir;
#  - the Gateway configuration gets `port = 0` and a scratch data directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/debug"
TMP=$(mktemp -d)
MOCK_PID=""
SERVE_PID=""
SERVERS_PID=""
cleanup() {
  exec 9>&- 2>/dev/null || true # closing the state servers' stdin stops them (they clean up by PID)
  [ -n "$SERVERS_PID" ] && wait "$SERVERS_PID" 2>/dev/null || true
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  [ -n "$SERVE_PID" ] && wait "$SERVE_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && wait "$MOCK_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

first_line() { # file: wait (bounded) for the first line
  for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.1; done
  head -1 "$1"
}
fail() { echo "readme.sh: $*" >&2; exit 1; }
expect() { # text needle what
  case "$1" in *"$2"*) ;; *) printf '%s\n' "$1" >&2; fail "$3: expected \"$2\" in the output above";; esac
}

cargo build -q -p polyroute-mock -p polyroute-cli -p polyroute-quickstart
cargo build -q -p polyroute-cli --example state_servers

"$BIN/polyroute-mock" --port 0 --wire-dir "$ROOT/../shared/data/wire" >"$TMP/mock.out" &
MOCK_PID=$!
MOCK="http://$(first_line "$TMP/mock.out" | sed 's/^listening on //')"
case "$MOCK" in http://127.0.0.1:*) ;; *) fail "mock did not start: $MOCK";; esac
# What the quickstarts read: an obviously fake key and the mock as OpenAI's base URL.
export OPENAI_API_KEY=sk-test-fake OPENAI_BASE_URL="$MOCK/v1"
# No other provider key may leak in from the caller's environment: the examples must work with OpenAI's alone.
for v in $(env | sed -n 's/^\([A-Z0-9_]*_API_KEY\)=.*/\1/p'); do
  [ "$v" = OPENAI_API_KEY ] || unset "$v"
done

scripts/readme-blocks "$TMP/blocks" README.md python/README.md node/README.md >"$TMP/index"
[ "$(grep -c '' "$TMP/index")" -ge 20 ] || fail "README blocks not found"

VENV="$CARGO_TARGET_DIR/readme-venv"
NPMDIR="$CARGO_TARGET_DIR/readme-npm"
WHEEL=""
ran=0
while IFS=$'\t' read -r n file lang heading line; do
  block="$TMP/blocks/$n.$lang"
  where="$file:$line ($lang, \"$heading\")"
  case "$file|$lang|$heading" in
    "README.md|sh|Install")
      mkdir -p "$TMP/cargo-root"
      sed -e "s#^cargo install --locked --path crates/polyroute-cli#cargo install --quiet --locked --debug --root $TMP/cargo-root --path crates/polyroute-cli#" \
        "$block" >"$TMP/install.sh"
      grep -q -- "--root $TMP/cargo-root" "$TMP/install.sh" || fail "$where: the cargo install line changed; update readme.sh"
      out=$(PATH="$TMP/cargo-root/bin:$PATH" bash -euo pipefail "$TMP/install.sh" 2>&1) || { printf '%s\n' "$out" >&2; fail "$where failed"; }
      [ -x "$TMP/cargo-root/bin/polyroute" ] || fail "$where: cargo install put no polyroute in the root"
      expect "$out" "worst case across fallbacks" "$where"
      expect "$out" "total" "$where"
      ;;
    "README.md|toml|Rust")
      # The README's [dependencies] are the example crate's, bar the path a published crate does not need.
      sed -n '/^\[dependencies\]/,$p' examples/quickstart/Cargo.toml |
        sed 's#^polyroute = { version = "\([^"]*\)", path = "[^"]*" }#polyroute = "\1"#' >"$TMP/deps.toml"
      diff -u "$block" "$TMP/deps.toml" || fail "$where differs from examples/quickstart/Cargo.toml"
      ;;
    "README.md|rust|Rust")
      diff -u "$block" examples/quickstart/src/main.rs || fail "$where differs from examples/quickstart/src/main.rs"
      out=$("$BIN/polyroute-quickstart" 2>&1) || { printf '%s\n' "$out" >&2; fail "$where failed"; }
      expect "$out" "mock: Hello" "$where"
      expect "$out" '"openai/gpt-4o-mini" via "OpenAI", cost $0.0' "$where"
      # Without the key it says which variable to set (no dump).
      out=$(env -u OPENAI_API_KEY "$BIN/polyroute-quickstart" 2>&1) && fail "$where: ran without a key"
      expect "$out" "set OPENAI_API_KEY" "$where"
      ;;
    "README.md|sh|Python")
      WHEEL=$(ls "$CARGO_TARGET_DIR"/py-wheels/polyroute-*.whl 2>/dev/null | head -1 || true)
      if [ -z "$WHEEL" ]; then
        echo "-- no wheel from python.sh: building one"
        python3 -m venv "$CARGO_TARGET_DIR/readme-build-venv"
        "$CARGO_TARGET_DIR/readme-build-venv/bin/pip" install -q --disable-pip-version-check maturin
        (cd python && "$CARGO_TARGET_DIR/readme-build-venv/bin/maturin" build --quiet --profile dev \
          --interpreter python3 --out "$CARGO_TARGET_DIR/py-wheels")
        WHEEL=$(ls "$CARGO_TARGET_DIR"/py-wheels/polyroute-*.whl | head -1)
      fi
      sed -e "s#\.venv#$VENV#g" \
        -e "s#^pip install ./python #pip install --quiet --disable-pip-version-check --force-reinstall --no-deps $WHEEL \&\& pip install --quiet --disable-pip-version-check --upgrade #" \
        "$block" >"$TMP/py-setup.sh"
      grep -q -- "$WHEEL" "$TMP/py-setup.sh" || fail "$where: the pip install line changed; update readme.sh"
      (cd "$TMP" && bash -euo pipefail "$TMP/py-setup.sh") || fail "$where failed"
      "$VENV/bin/python" -c 'import httpx, openai, polyroute' || fail "$where: packages missing after setup"
      ;;
    *"|python|"*)
      [ "$file|$heading" = "README.md|With the OpenAI SDKs" ] && continue # serve.sh runs it
      [ -x "$VENV/bin/python" ] || fail "$where: the README's Python setup block must come first"
      out=$(cd "$TMP" && "$VENV/bin/python" "$block" 2>&1) || { printf '%s\n' "$out" >&2; fail "$where failed"; }
      expect "$out" "mock: hi" "$where"
      ;;
    "README.md|sh|Node")
      mkdir -p "$NPMDIR"
      [ -f "$NPMDIR/package.json" ] || (cd "$NPMDIR" && npm init -y >/dev/null)
      sed -e "s#^npm install ./node #npm install --no-audit --no-fund $ROOT/node #" "$block" >"$TMP/npm-setup.sh"
      grep -q -- "$ROOT/node" "$TMP/npm-setup.sh" || fail "$where: the npm install line changed; update readme.sh"
      (cd "$NPMDIR" && bash -euo pipefail "$TMP/npm-setup.sh") || fail "$where failed"
      ;;
    *"|js|"*)
      [ "$file|$heading" = "README.md|With the OpenAI SDKs" ] && continue # serve.sh runs it
      [ -d "$NPMDIR/node_modules/polyroute" ] || fail "$where: the README's Node setup block must come first"
      cp "$block" "$NPMDIR/example_$n.mjs"
      out=$(cd "$NPMDIR" && node "example_$n.mjs" 2>&1) || { printf '%s\n' "$out" >&2; fail "$where failed"; }
      expect "$out" "mock: hi" "$where"
      ;;
    "README.md|toml|Configure and start")
      sed -e 's/^port = 8080 /port = 0    /' "$block" >"$TMP/polyroute.toml"
      grep -q '^port = 0 ' "$TMP/polyroute.toml" || fail "$where: the port line changed; update readme.sh"
      ;;
    "README.md|shell|Configure and start")
      [ -f "$TMP/polyroute.toml" ] || fail "$where: the configuration block must come first"
      sed -e "s#^polyroute serve --config polyroute.toml#exec polyroute serve --config $TMP/polyroute.toml --data-dir $TMP/data#" "$block" >"$TMP/serve.sh"
      grep -q "^exec polyroute serve" "$TMP/serve.sh" || fail "$where: the serve line changed; update readme.sh"
      (PATH="$BIN:$PATH" exec bash "$TMP/serve.sh" >"$TMP/serve.out" 2>"$TMP/serve.err") &
      SERVE_PID=$!
      first=$(first_line "$TMP/serve.out")
      case "$first" in "listening on http://127.0.0.1:"*) ;; *) cat "$TMP/serve.err" >&2; fail "$where: serve did not start";; esac
      kill -TERM "$SERVE_PID"
      wait "$SERVE_PID" || true
      SERVE_PID=""
      ;;
    "README.md|toml|A fleet: \`[state]\`")
      # The fleet configuration against real throwaway servers: Redis and PostgreSQL on loopback
      # (polyroute-testsupport), the block's two URLs swapped for theirs. It must migrate, hold a key made from the
      # command line, and start a gateway that knows that key.
      mkfifo "$TMP/servers.in"
      "$BIN/examples/state_servers" <"$TMP/servers.in" >"$TMP/servers.out" 2>"$TMP/servers.err" &
      SERVERS_PID=$!
      exec 9>"$TMP/servers.in"
      for _ in $(seq 300); do grep -q '^postgres ' "$TMP/servers.out" 2>/dev/null && break; sleep 0.1; done
      REDIS=$(sed -n 's/^redis //p' "$TMP/servers.out"); PG=$(sed -n 's/^postgres //p' "$TMP/servers.out")
      [ -n "$REDIS" ] && [ -n "$PG" ] || { cat "$TMP/servers.err" >&2; fail "$where: throwaway servers did not start"; }
      sed -e "s#redis://:password@10.0.0.5:6379/0#$REDIS#" -e "s#postgres://polyroute:pw@10.0.0.6/polyroute#$PG#" \
        "$block" >"$TMP/fleet-state.toml"
      grep -q "$REDIS" "$TMP/fleet-state.toml" && grep -q "$PG" "$TMP/fleet-state.toml" \
        || fail "$where: the example URLs changed; update readme.sh"
      { printf 'env_keys = false\n[providers.openai]\napi_key = "sk-test-fake"\nbase_url = "%s/v1"\n' "$MOCK"
        cat "$TMP/fleet-state.toml"; } >"$TMP/fleet.toml"
      out=$("$BIN/polyroute" migrate --config "$TMP/fleet.toml" 2>&1) || { printf '%s\n' "$out" >&2; fail "$where: migrate failed"; }
      FKEY=$("$BIN/polyroute" keys --config "$TMP/fleet.toml" create --label fleet-readme | tail -1)
      expect "$("$BIN/polyroute" keys --config "$TMP/fleet.toml" list)" "fleet-readme" "$where"
      "$BIN/polyroute" serve --config "$TMP/fleet.toml" --data-dir "$TMP/fleet-data" --port 0 >"$TMP/fleet.out" 2>"$TMP/fleet.err" &
      SERVE_PID=$!
      FURL=$(first_line "$TMP/fleet.out" | sed 's/^listening on //')
      case "$FURL" in http://127.0.0.1:*) ;; *) cat "$TMP/fleet.err" >&2; fail "$where: the fleet gateway did not start";; esac
      out=$(curl -sS --fail-with-body "$FURL/api/v1/key" -H "Authorization: Bearer $FKEY") || fail "$where: /api/v1/key: $out"
      expect "$out" '"label"' "$where"
      kill -TERM "$SERVE_PID"; wait "$SERVE_PID" || true; SERVE_PID=""
      exec 9>&-; wait "$SERVERS_PID" || true; SERVERS_PID=""
      ;;
    "README.md|sh|Keys" | "README.md|sh|Chat completions" | "README.md|sh|Embeddings" | \
      "README.md|sh|Catalog, generations, key and activity" | "README.md|sh|Anthropic Messages and OpenAI Responses")
      continue # serve.sh runs every ```sh block of the Gateway section, in order
      ;;
    "README.md|sh|Dashboard")
      continue # serve.sh runs it too (a ```sh block of the Gateway section)
      ;;
    *)
      fail "$where: no runner for this block; run it here (or in serve.sh) so that it cannot rot"
      ;;
  esac
  ran=$((ran + 1))
done <"$TMP/index"
echo "readme.sh: $ran README blocks ran against the loopback mock ($(grep -c '' "$TMP/index") in all; the rest run in serve.sh)"
