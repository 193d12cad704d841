#!/usr/bin/env bash
# The gateway's dashboard (/ui) in headless Chromium: `polyroute serve` backed by the loopback `polyroute-mock`,
# seeded with real requests by ui.mjs (several apps, models, providers and keys; one provider that always fails,
# so a fallback leaves two attempts), then driven with Playwright (playwright-core from npm, Debian's chromium):
# no console errors, the totals and tables match what the test sent, a key is required, screenshots at phone and
# desktop widths in $CARGO_TARGET_DIR/ui/. 127.0.0.1 only; fake keys; processes stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/gateway-test.sh

# Debian's /usr/bin/chromium is a wrapper script; Playwright starts the browser binary itself.
CHROMIUM="${POLYROUTE_CHROMIUM:-}"
[ -z "$CHROMIUM" ] && [ -x /usr/lib/chromium/chromium ] && CHROMIUM=/usr/lib/chromium/chromium
[ -z "$CHROMIUM" ] && CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$CHROMIUM" ]; then
  echo "ui.sh: Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)" >&2
  exit 1
fi

cargo build -q -p polyroute-cli -p polyroute-mock

# playwright-core (no browser download: it drives the system chromium), pinned, outside the repository.
NODE_DIR="$CARGO_TARGET_DIR/ui-node"
PW_VERSION=1.65.1
if [ "$(node -p "try{require('$NODE_DIR/node_modules/playwright-core/package.json').version}catch(e){''}")" != "$PW_VERSION" ]; then
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"name":"polyroute-ui-test","private":true}' >"$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --no-save "playwright-core@$PW_VERSION" >/dev/null)
fi

start_mock --label mock

# A small catalog with round prices (USD per token), so that the test computes every cost itself.
cat >"$TMP/catalog.json" <<'EOF'
{"version": 1,
 "providers": [
   {"slug": "alpha", "name": "Alpha Cloud", "dialect": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "POLYROUTE_UI_TEST_NEVER_SET"},
   {"slug": "beta", "name": "Beta Cloud", "dialect": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "POLYROUTE_UI_TEST_NEVER_SET"},
   {"slug": "gamma", "name": "Gamma Cloud", "dialect": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "POLYROUTE_UI_TEST_NEVER_SET"}],
 "models": [
   {"id": "acme/chat", "name": "Acme Chat", "created": 1700000000, "context_length": 32768,
    "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": "Other"},
    "pricing": {"prompt": "0.000001", "completion": "0.000002"},
    "supported_parameters": ["max_tokens", "temperature", "stream"],
    "endpoints": [
      {"provider": "alpha", "provider_name": "Alpha Cloud", "tag": "alpha", "provider_model_id": "chat", "context_length": 32768,
       "pricing": {"prompt": "0.000001", "completion": "0.000002"}, "supported_parameters": ["max_tokens", "temperature", "stream"]},
      {"provider": "gamma", "provider_name": "Gamma Cloud", "tag": "gamma", "provider_model_id": "chat", "context_length": 32768,
       "pricing": {"prompt": "0.0000005", "completion": "0.000001"}, "supported_parameters": ["max_tokens", "temperature", "stream"]}]},
   {"id": "acme/big", "name": "Acme Big", "created": 1700000001, "context_length": 65536,
    "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": "Other"},
    "pricing": {"prompt": "0.00001", "completion": "0.00003"},
    "supported_parameters": ["max_tokens", "temperature", "stream"],
    "endpoints": [
      {"provider": "beta", "provider_name": "Beta Cloud", "tag": "beta", "provider_model_id": "big", "context_length": 65536,
       "pricing": {"prompt": "0.00001", "completion": "0.00003"}, "supported_parameters": ["max_tokens", "temperature", "stream"]}]}]}
EOF

cat >"$TMP/polyroute.toml" <<EOF
env_keys = false
catalog = "$TMP/catalog.json"

[providers.alpha]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"

[providers.beta]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"

[providers.gamma]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-fault" = "503" }
EOF

export POLYROUTE_DATA_DIR="$TMP/data"
start_serve "$TMP/polyroute.toml"
echo "gateway at $URL (pid $SERVE_PID), mock at $MOCK (pid $MOCK_PID)"

key() { "$BIN/polyroute" keys create --config "$TMP/polyroute.toml" "$@" | tail -1; }
export URL CHROMIUM
export ADMIN_KEY=$(key --label admin --management)
export TEAM_A_KEY=$(key --label team-a) TEAM_B_KEY=$(key --label team-b)
export SHOTS="$CARGO_TARGET_DIR/ui"
mkdir -p "$SHOTS"

NODE_DIR="$NODE_DIR" node "$ROOT/scripts/test.d/ui.mjs"

# The gateway never logged a key.
for k in "$ADMIN_KEY" "$TEAM_A_KEY" "$TEAM_B_KEY"; do
  if grep -qF "$k" "$TMP/serve.out" "$TMP/serve.err"; then
    echo "ui.sh: the gateway logged a key" >&2
    exit 1
  fi
done
echo "screenshots: $SHOTS/dashboard-desktop.png $SHOTS/dashboard-phone.png"
