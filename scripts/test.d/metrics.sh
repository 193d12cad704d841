#!/usr/bin/env bash
# Gateway metrics end to end: `polyroute serve` backed by the loopback `polyroute-mock` answers a known sequence of
# requests (served, streamed, a fallback, provider errors, an unknown model, a key over its credit limit); then
# `GET /metrics` is parsed by an independent parser (`prometheus_client` from PyPI) and its counts must match the
# sequence; the overhead header and the `/generation` figure are checked too. With `[telemetry]` pointed at an
# OTLP/HTTP receiver in the test, a request's `traceparent` header is the parent of its exported span (decoded with
# `opentelemetry-proto` from PyPI). 127.0.0.1 only; fake keys; both processes are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/gateway-test.sh
cargo build -q -p polyroute-cli -p polyroute-mock

start_mock

OTLP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export OTLP_PORT

# openai answers; anthropic always fails with a 503 (so anthropic models fall back or fail).
cat >"$TMP/polyroute.toml" <<EOF
env_keys = false

[telemetry]
otlp_endpoint = "http://127.0.0.1:$OTLP_PORT"
service_name = "gateway-test"

[providers.openai]
api_key = "sk-test-fake"
base_url = "$MOCK/v1"

[providers.anthropic]
api_key = "sk-test-fake"
base_url = "$MOCK"
headers = { "x-mock-fault" = "503" }
EOF

export POLYROUTE_DATA_DIR="$TMP/data"
start_serve "$TMP/polyroute.toml"

key() { "$BIN/polyroute" keys create "$@" | tail -1; }
export URL
KEY=$(key --label app)
ZERO_KEY=$(key --label broke --limit 0)
ADMIN_KEY=$(key --label scraper --management)
export KEY ZERO_KEY ADMIN_KEY

VENV="$CARGO_TARGET_DIR/metrics-venv"
if ! "$VENV/bin/python" -c "import prometheus_client, opentelemetry.proto" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check prometheus_client opentelemetry-proto
fi

cat >"$TMP/metrics_test.py" <<'PYEOF'
import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

URL = os.environ["URL"]

# The OTLP/HTTP receiver the gateway exports its spans to.
otlp = []

class Otlp(BaseHTTPRequestHandler):
    def do_POST(self):
        otlp.append((self.path, self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

receiver = HTTPServer(("127.0.0.1", int(os.environ["OTLP_PORT"])), Otlp)
threading.Thread(target=receiver.serve_forever, daemon=True).start()

def call(path, key, body=None, headers=None):
    req = urllib.request.Request(URL + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"authorization": f"Bearer {key}", "content-type": "application/json",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()

def chat(model, key=None, headers=None, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return call("/api/v1/chat/completions", key or os.environ["KEY"], body, headers)

# The known sequence.
served = []
for _ in range(2):
    st, h, body = chat("openai/gpt-4o-mini")
    assert st == 200, body
    overhead = float(h["x-polyroute-overhead-ms"])
    assert 0 <= overhead < 5000, overhead
    served.append(json.loads(body)["id"])
st, h, body = chat("openai/gpt-4o-mini", stream=True)
assert st == 200 and "data: [DONE]" in body, body
TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
st, h, body = chat("anthropic/claude-haiku-4.5", models=["anthropic/claude-haiku-4.5", "openai/gpt-4o-mini"],
                   headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
assert st == 200 and json.loads(body)["model"] == "openai/gpt-4o-mini", body
traced_id = json.loads(body)["id"]
st, h, body = chat("anthropic/claude-haiku-4.5")
assert st >= 500, (st, body)
assert "x-polyroute-overhead-ms" in h
error_code = None
st, _, body = chat("acme/not-a-model")
assert st == 400, body
st, _, body = chat("openai/gpt-4o-mini", key=os.environ["ZERO_KEY"])
assert st == 402, body

# The overhead is in the generation record too.
st, _, body = call(f"/api/v1/generation?id={served[0]}", os.environ["KEY"])
assert st == 200, body
gen = json.loads(body)["data"]
assert 0 <= gen["overhead_ms"] <= gen["latency"] + 1, gen

# /metrics needs a management key.
st, _, _ = call("/metrics", "")
assert st == 401, st
st, _, _ = call("/metrics", os.environ["KEY"])
assert st == 403, st
st, h, text = call("/metrics", os.environ["ADMIN_KEY"])
assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4"), (st, h)

if os.environ.get("METRICS_DUMP"):
    print(text)
samples = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        samples.setdefault(s.name, []).append((s.labels, s.value))

def total(name, **want):
    return sum(v for labels, v in samples.get(name, []) if all(labels.get(k) == w for k, w in want.items()))

# Requests: 4 answered (2 + a stream + the fallback), the anthropic-only one failed, the unknown model, the 402.
assert total("polyroute_requests_total", status="ok") == 4, samples["polyroute_requests_total"]
assert total("polyroute_requests_total", model="openai/gpt-4o-mini", status="ok") == 3
assert total("polyroute_requests_total", model="acme/not-a-model", status="model_not_found") == 1
assert total("polyroute_requests_total", status="payment_required") == 1
assert total("polyroute_requests_total") == 7
# Errors by code and provider: the anthropic failure names anthropic; the others called no provider.
anthropic_errors = [l for l, v in samples["polyroute_errors_total"] if l["provider"] == "anthropic" and v == 1]
assert len(anthropic_errors) == 1, samples["polyroute_errors_total"]
assert total("polyroute_errors_total", code="model_not_found", provider="none") == 1
assert total("polyroute_errors_total", code="payment_required", provider="none") == 1
assert total("polyroute_errors_total") == 3
# Attempts: openai served 4 times; anthropic failed once per anthropic request (same_endpoint_retries = 0).
assert total("polyroute_attempts_total", provider="openai", outcome="success") == 4
assert total("polyroute_attempts_total", provider="anthropic", outcome="success") == 0
assert total("polyroute_attempts_total", provider="anthropic") == 2, samples["polyroute_attempts_total"]
assert total("polyroute_fallbacks_total", provider="anthropic") == 1
assert total("polyroute_generations_total", fallback="true") == 1
assert total("polyroute_generations_total") == 4
# Histograms: one observation per generation.
assert total("polyroute_request_duration_seconds_count", provider="openai") == 4
assert total("polyroute_time_to_first_token_seconds_count", provider="openai") == 4
assert total("polyroute_overhead_seconds_count") == 4
assert total("polyroute_request_duration_seconds_bucket", provider="openai", le="+Inf") == 4
# Tokens and cost by key label match the ledger (the key's /api/v1/key usage).
st, _, body = call("/api/v1/key", os.environ["KEY"])
usage = json.loads(body)["data"]["usage"]
keys = {l["key"] for l, _ in samples["polyroute_cost_usd_total"]}
assert len(keys) == 1, keys
assert abs(total("polyroute_cost_usd_total") - usage) < 1e-9, (total("polyroute_cost_usd_total"), usage)
assert total("polyroute_tokens_total", type="prompt") > 0 and total("polyroute_tokens_total", type="completion") > 0
assert total("polyroute_limit_refusals_total", limit="key_credit") == 1
assert total("polyroute_in_flight_requests") == 0

# The traced request: its span (exported in the next batch, within seconds) has the caller's span as parent, and
# its two attempts (anthropic failed, openai served) are its children.
spans = []
for _ in range(150):
    spans = []
    for path, b in list(otlp):
        assert path == "/v1/traces", path
        req = ExportTraceServiceRequest()
        req.ParseFromString(b)
        spans += [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    if any(s.parent_span_id.hex() == PARENT for s in spans):
        break
    time.sleep(0.1)
mine = [s for s in spans if s.parent_span_id.hex() == PARENT]
assert len(mine) == 1, spans
root = mine[0]
assert root.trace_id.hex() == TRACE and root.name == "chat anthropic/claude-haiku-4.5", root
a = {kv.key: kv.value for kv in root.attributes}
assert a["gen_ai.response.id"].string_value == traced_id
assert a["gen_ai.provider.name"].string_value == "openai"
assert a["polyroute.fallback_index"].int_value == 1
kids = sorted((s for s in spans if s.parent_span_id == root.span_id), key=lambda s: s.start_time_unix_nano)
outcomes = [{kv.key: kv.value.string_value for kv in s.attributes}["polyroute.attempt.outcome"] for s in kids]
assert outcomes == ["overloaded", "success"], outcomes
print("metrics.sh: sequence of 7 requests counted; /metrics auth; overhead header and record; traceparent: ok")
PYEOF
"$VENV/bin/python" "$TMP/metrics_test.py"

stop_serve
