#!/usr/bin/env bash
# Gateway end-to-end: `polyroute serve` backed by the loopback `polyroute-mock`, exercised by every ```sh example of
# the README's Gateway section and by the official openai Python and npm SDKs over real HTTP
# (non-streaming, streaming, tools, fallback, an error, a 402 and a 429). 127.0.0.1 only; fake keys; both processes
# are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/gateway-test.sh
cargo build -q -p polyroute-cli -p polyroute-mock

WIRE="$ROOT/../shared/data/wire"
[ -d "$WIRE" ] || WIRE="$ROOT/crates/polyroute-mock/../../../shared/data/wire"
start_mock --wire-dir "$WIRE"

cat >"$TMP/polyroute.toml" <<EOF
env_keys = false

[server]
keepalive_ms = 300

[limits]
free_per_minute = 2

[providers.openai]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"

[providers.anthropic]
api_key = "sk-test-fake"
base_url = "$MOCK"
headers = { "x-mock-fault" = "503" }

[providers.openrouter]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"

[providers.xai]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-replay" = "openai/chat_completion.parallel_tool_calls.response.json" }

[providers.mistral]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-fault" = "cut" }

[providers.perplexity]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"
headers = { "x-mock-fault" = "503" }
EOF

export POLYROUTE_DATA_DIR="$TMP/data"
start_serve "$TMP/polyroute.toml"
echo "gateway at $URL (pid $SERVE_PID), mock at $MOCK (pid $MOCK_PID)"

# 1. Every ```sh block of the README section, in order, in one shell (exports carry over), against this gateway.
# The section runs from its "## Gateway" heading to the next "## " heading of the top-level README.
awk '/^## Gateway/ {sec=1; next} /^## / {sec=0} !sec {next} /^```sh$/ {on=1; next} /^```/ {if (on) print ""; on=0; next} on {print}' \
  README.md | sed "s#http://127.0.0.1:8080#$URL#g" >"$TMP/readme.sh"
N_EX=$(grep -c '' "$TMP/readme.sh" || true)
[ "$N_EX" -gt 10 ] || { echo "README examples not found" >&2; exit 1; }
PATH="$BIN:$PATH" bash -euo pipefail "$TMP/readme.sh" >"$TMP/readme.out" 2>&1 || {
  cat "$TMP/readme.out" >&2
  echo "README examples failed" >&2
  exit 1
}
grep -q '"object":"chat.completion"' "$TMP/readme.out"
grep -q 'data: \[DONE\]' "$TMP/readme.out"
grep -q 'is not a valid model ID' "$TMP/readme.out"
grep -q '"provider_responses"' "$TMP/readme.out"
grep -q '"type":"message"' "$TMP/readme.out"
grep -q '"input_tokens":' "$TMP/readme.out"
grep -q 'event: response.completed' "$TMP/readme.out"
echo "README examples: ok ($(grep -c '^curl\|^export\|^polyroute\|^GEN' "$TMP/readme.sh") commands)"

key() { "$BIN/polyroute" keys create --label "$1" ${2:+--limit "$2"} | tail -1; }
export URL
export KEY=$(key sdk) ZERO_KEY=$(key zero 0) FREE_KEY_PY=$(key free-py) FREE_KEY_JS=$(key free-js)

# 2. The openai Python SDK.
VENV="$CARGO_TARGET_DIR/serve-sdk-venv"
if ! "$VENV/bin/python" -c "import openai, anthropic" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q openai anthropic
fi
cat >"$TMP/sdk_test.py" <<'PYEOF'
import os
import openai
from openai import OpenAI

base = os.environ["URL"] + "/api/v1"
c = OpenAI(base_url=base, api_key=os.environ["KEY"], max_retries=0)
msg = lambda t: [{"role": "user", "content": t}]

raw = c.chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=msg("hello python"))
r = raw.parse()
assert "hello python" in r.choices[0].message.content, r
assert raw.headers["x-generation-id"] == r.id

chunks = list(c.chat.completions.create(model="openai/gpt-4o-mini", messages=msg("stream python"), stream=True))
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert "stream python" in text, text
assert len([ch for ch in chunks if ch.usage]) == 1

tools = [{"type": "function", "function": {"name": "get_stock_price", "parameters": {
    "type": "object", "properties": {"ticker": {"type": "string"}}}}}]
r = c.chat.completions.create(model="x-ai/grok-4.5", messages=msg("price of AAPL?"), tools=tools)
assert r.choices[0].finish_reason == "tool_calls", r
assert r.choices[0].message.tool_calls[1].function.name == "get_stock_price"

r = c.chat.completions.create(model="anthropic/claude-haiku-4.5", messages=msg("fallback"),
                              extra_body={"models": ["anthropic/claude-haiku-4.5", "openai/gpt-4o-mini"]})
assert r.model == "openai/gpt-4o-mini", r.model

try:
    c.chat.completions.create(model="acme/not-a-model", messages=msg("x"))
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert e.status_code == 400 and "not a valid model" in str(e), e

try:
    OpenAI(base_url=base, api_key=os.environ["ZERO_KEY"], max_retries=0).chat.completions.create(
        model="openai/gpt-4o-mini", messages=msg("x"))
    raise SystemExit("expected 402")
except openai.APIStatusError as e:
    assert e.status_code == 402, e

free = OpenAI(base_url=base, api_key=os.environ["FREE_KEY_PY"], max_retries=0)
for _ in range(2):
    free.chat.completions.create(model="openai/gpt-oss-20b:free", messages=msg("free"))
try:
    free.chat.completions.create(model="openai/gpt-oss-20b:free", messages=msg("free"))
    raise SystemExit("expected 429")
except openai.RateLimitError as e:
    h = e.response.headers
    assert h["x-ratelimit-limit"] == "2" and h["x-ratelimit-remaining"] == "0", dict(h)
    assert int(h["retry-after"]) >= 1

# Embeddings: the SDK asks for base64 by default and decodes it; dimensions; a failing first provider (perplexity
# answers 503) falls back to the next model; the generation is in the ledger with its cost.
import urllib.request, json
e = c.embeddings.create(model="openai/text-embedding-3-small", input=["hello world", "x"], dimensions=4)
assert [len(d.embedding) for d in e.data] == [4, 4], e
assert all(-1.0 <= x < 1.0 for x in e.data[0].embedding) and e.data[0].embedding != e.data[1].embedding
assert e.usage.prompt_tokens == 3, e.usage
f = c.embeddings.create(model="openai/text-embedding-3-small", input="hello world", encoding_format="float",
                        dimensions=4)
assert f.data[0].embedding == e.data[0].embedding, (f.data[0].embedding, e.data[0].embedding)
fb = c.embeddings.with_raw_response.create(model="perplexity/pplx-embed-v1-0.6b", input="fallback",
                                           extra_body={"models": ["openai/text-embedding-3-small"]})
fbe = fb.parse()
assert fbe.model == "openai/text-embedding-3-small", fbe.model
gid = fb.headers["x-generation-id"]
req = urllib.request.Request(f"{base}/generation?id={gid}", headers={"Authorization": f"Bearer {os.environ['KEY']}"})
g = json.load(urllib.request.urlopen(req))["data"]
assert g["model"] == "openai/text-embedding-3-small" and g["tokens_prompt"] == 1, g
assert abs(g["total_cost"] - 1 * 0.00000002) < 1e-12, g["total_cost"]
tried = [p["provider"] for p in g["provider_responses"]]
assert tried[0] == "perplexity" and tried[-1] == "openai", g["provider_responses"]
try:
    c.embeddings.create(model="openai/gpt-4o-mini", input="x")
    raise SystemExit("expected 400 for a chat model")
except openai.BadRequestError as err:
    assert "not an embedding model" in str(err), err
names = [m["id"] for m in json.load(urllib.request.urlopen(f"{base}/embeddings/models"))["data"]]
assert "openai/text-embedding-3-small" in names and "openai/gpt-4o-mini" not in names, names

print("python sdk: 8 scenarios passed")
PYEOF
"$VENV/bin/python" "$TMP/sdk_test.py"

# 3. The openai npm SDK.
NPMDIR="$CARGO_TARGET_DIR/serve-sdk-npm"
if [ ! -d "$NPMDIR/node_modules/openai" ] || [ ! -d "$NPMDIR/node_modules/@anthropic-ai/sdk" ]; then
  mkdir -p "$NPMDIR"
  (cd "$NPMDIR" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --silent --no-audit --no-fund openai @anthropic-ai/sdk)
fi
cat >"$NPMDIR/sdk_test.mjs" <<'JSEOF'
import assert from "node:assert/strict";
import OpenAI from "openai";

const baseURL = process.env.URL + "/api/v1";
const c = new OpenAI({ baseURL, apiKey: process.env.KEY, maxRetries: 0 });
const msg = (t) => [{ role: "user", content: t }];

const { data: r, response } = await c.chat.completions
  .create({ model: "openai/gpt-4o-mini", messages: msg("hello node") })
  .withResponse();
assert.ok(r.choices[0].message.content.includes("hello node"));
assert.equal(response.headers.get("x-generation-id"), r.id);

let text = "", usage = 0;
for await (const ch of await c.chat.completions.create({ model: "openai/gpt-4o-mini", messages: msg("stream node"), stream: true })) {
  if (ch.choices?.length) text += ch.choices[0].delta?.content ?? "";
  if (ch.usage) usage += 1;
}
assert.ok(text.includes("stream node"), text);
assert.equal(usage, 1);

const tools = [{ type: "function", function: { name: "get_stock_price", parameters: { type: "object", properties: { ticker: { type: "string" } } } } }];
const t = await c.chat.completions.create({ model: "x-ai/grok-4.5", messages: msg("AAPL?"), tools });
assert.equal(t.choices[0].finish_reason, "tool_calls");
assert.equal(t.choices[0].message.tool_calls[1].function.name, "get_stock_price");

const fb = await c.chat.completions.create({ model: "anthropic/claude-haiku-4.5", messages: msg("fallback"),
  models: ["anthropic/claude-haiku-4.5", "openai/gpt-4o-mini"] });
assert.equal(fb.model, "openai/gpt-4o-mini");

await assert.rejects(c.chat.completions.create({ model: "acme/not-a-model", messages: msg("x") }),
  (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /not a valid model/.test(e.message));

const zero = new OpenAI({ baseURL, apiKey: process.env.ZERO_KEY, maxRetries: 0 });
await assert.rejects(zero.chat.completions.create({ model: "openai/gpt-4o-mini", messages: msg("x") }),
  (e) => e instanceof OpenAI.APIError && e.status === 402);

const free = new OpenAI({ baseURL, apiKey: process.env.FREE_KEY_JS, maxRetries: 0 });
for (let i = 0; i < 2; i++) await free.chat.completions.create({ model: "openai/gpt-oss-20b:free", messages: msg("free") });
await assert.rejects(free.chat.completions.create({ model: "openai/gpt-oss-20b:free", messages: msg("free") }),
  (e) => e instanceof OpenAI.RateLimitError && e.headers.get("x-ratelimit-limit") === "2" && Number(e.headers.get("retry-after")) >= 1);

const emb = await c.embeddings.create({ model: "openai/text-embedding-3-small", input: ["node", "two words"], dimensions: 3 });
assert.deepEqual(emb.data.map((d) => d.embedding.length), [3, 3]);
assert.equal(emb.usage.prompt_tokens, 3);
assert.equal(emb.model, "openai/text-embedding-3-small");

console.log("node sdk: 8 scenarios passed");
JSEOF
node "$NPMDIR/sdk_test.mjs"

# 3b. The Anthropic Messages and OpenAI Responses surfaces with the official SDKs (Python and npm).
"$VENV/bin/python" "$ROOT/scripts/test.d/sdk_surfaces.py"
cp "$ROOT/scripts/test.d/sdk_surfaces.mjs" "$NPMDIR/sdk_surfaces.mjs"
node "$NPMDIR/sdk_surfaces.mjs"

# 4. The README's "With the OpenAI SDKs" examples (the ```python and ```js blocks of the Gateway section), as
# written, against this gateway.
"$ROOT/scripts/readme-blocks" "$TMP/blocks" README.md >"$TMP/blocks.idx"
N_SDK=0
while IFS=$'\t' read -r n _file lang heading _line; do
  [ "$heading" = "With the OpenAI SDKs" ] || continue
  case "$lang" in
    python)
      sed "s#http://127.0.0.1:8080#$URL#g" "$TMP/blocks/$n.$lang" >"$TMP/readme_$n.py"
      out=$(POLYROUTE_KEY="$KEY" "$VENV/bin/python" "$TMP/readme_$n.py") ;;
    js)
      sed "s#http://127.0.0.1:8080#$URL#g" "$TMP/blocks/$n.$lang" >"$NPMDIR/readme_$n.mjs"
      out=$(cd "$NPMDIR" && POLYROUTE_KEY="$KEY" node "readme_$n.mjs") ;;
    *) echo "README: no runner for a $lang block under 'With the OpenAI SDKs'" >&2; exit 1 ;;
  esac
  case "$out" in *"hi"*) ;; *) echo "README $lang SDK example printed: $out" >&2; exit 1 ;; esac
  N_SDK=$((N_SDK + 1))
done <"$TMP/blocks.idx"
[ "$N_SDK" -eq 2 ] || { echo "expected 2 SDK examples in the README, ran $N_SDK" >&2; exit 1; }
echo "README SDK examples: ok ($N_SDK)"

# 5. Graceful stop.
stop_serve
echo "serve.sh: README examples, python sdk, node sdk, surface sdks, README sdk examples: 5 passed, 0 failed"
