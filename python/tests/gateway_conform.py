"""The gateway (`polyroute serve` on the loopback mock) against OpenRouter's Python SDK (`openrouter` on PyPI): every
answer, chunk and error over HTTP validates against the SDK's models (raw HTTP, per dialect, streamed and not,
tools, structured output, each fault class), then the SDK itself is used end to end. Run by
scripts/test.d/wire.sh with URL and KEY set; not collected by pytest."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx
import openrouter
from openrouter import OpenRouter

import openrouter_schema as schema

BASE = os.environ["URL"] + "/api/v1"
KEY = os.environ["KEY"]
HEADERS = {"Authorization": f"Bearer {KEY}", "X-OpenRouter-Metadata": "enabled"}
DIALECTS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4.5",
    "gemini": "google/gemini-3.7-flash",
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
    },
}
VARIANTS: dict[str, dict[str, Any]] = {"plain": {}, "tools": {"tools": TOOLS}, "json_schema": {"response_format": JSON_SCHEMA}}
http = httpx.Client(timeout=30)
checked = 0


def body(model: str, text: str = "hello gateway", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sse(b: dict[str, Any]) -> tuple[int, list[dict[str, Any]], bool]:
    """POST a streamed request; the status, the JSON events and whether `[DONE]` ended them."""
    chunks: list[dict[str, Any]] = []
    done = False
    with http.stream("POST", BASE + "/chat/completions", json={**b, "stream": True}, headers=HEADERS) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, [r.json()], False
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                continue
            assert not done, "an event after [DONE]"
            chunks.append(json.loads(data))
    return 200, chunks, done


# 1. Raw HTTP: every answer and chunk of each dialect and variant.
for dialect, model in DIALECTS.items():
    for variant, extra in VARIANTS.items():
        r = http.post(BASE + "/chat/completions", json=body(model, **extra), headers=HEADERS)
        assert r.status_code == 200, (dialect, variant, r.text)
        out = r.json()
        schema.answer(out)
        assert out["openrouter_metadata"]["strategy"] == "direct", out
        want = "tool_calls" if variant == "tools" else "stop"
        assert out["choices"][0]["finish_reason"] == want, (dialect, variant, out)
        status, chunks, done = sse(body(model, **extra))
        assert status == 200 and done, (dialect, variant, chunks)
        schema.stream(chunks)
        assert "openrouter_metadata" in chunks[-1]
        checked += 2 + len(chunks)

# Model fallback, with metadata.
r = http.post(BASE + "/chat/completions", json=body("moonshotai/kimi-k3", models=["openai/gpt-4o-mini"]), headers=HEADERS)
out = r.json()
schema.answer(out)
meta = out["openrouter_metadata"]
assert meta["strategy"] == "fallback" and meta["attempt"] >= 2 and out["model"] == "openai/gpt-4o-mini", meta

# 2. Faults: provider errors before content (503, 429), an unknown model, each streamed and not.
for model, status in (("moonshotai/kimi-k3", 503), ("mistralai/mistral-small-2603", 429), ("acme/not-a-model", 400)):
    r = http.post(BASE + "/chat/completions", json=body(model), headers=HEADERS)
    assert r.status_code == status, (model, r.status_code, r.text)
    schema.error(status, r.json())
    s_status, events, _ = sse(body(model))
    assert s_status == status, (model, s_status, events)
    schema.error(status, events[0])
    checked += 2

# A stream cut after content: the error chunk, the billed usage chunk, then [DONE].
status, chunks, done = sse(body("deepseek/deepseek-v4-flash", "one two three four five six"))
assert status == 200 and done, chunks
for c in chunks:
    schema.chunk(c)
assert "error" in chunks[-2] and chunks[-2]["error"]["code"] == 502, chunks[-2:]
assert "decoding" not in chunks[-2]["error"]["message"], chunks[-2]
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1, chunks[-1]
gen = http.get(BASE + "/generation", params={"id": chunks[-1]["id"]}, headers=HEADERS).json()["data"]
assert abs(float(gen["total_cost"]) - chunks[-1]["usage"]["cost"]) < 1e-9, gen
checked += len(chunks)
print(f"gateway wire: {checked} answers, chunks and errors match the openrouter Python SDK models")

# 3. The OpenRouter Python SDK end to end.
features: dict[str, str] = {}
with OpenRouter(api_key=KEY, server_url=BASE) as c:
    msgs: Any = [{"role": "user", "content": "hello sdk"}]
    res = c.chat.send(model=DIALECTS["openai"], messages=msgs)
    assert "hello sdk" in str(res.choices[0].message.content), res
    assert res.usage is not None and res.usage.cost is not None and res.usage.cost > 0, res.usage
    assert res.usage.cost_details is not None and res.usage.cost_details.upstream_inference_prompt_cost > 0
    features["chat"] = features["usage"] = features["cost"] = "ok"

    text, usage_chunks = "", 0
    for ch in c.chat.send(model=DIALECTS["anthropic"], messages=msgs, stream=True):
        if ch.choices:
            text += ch.choices[0].delta.content or ""
        usage_chunks += ch.usage is not None
    assert "hello sdk" in text and usage_chunks == 1, (text, usage_chunks)
    features["stream"] = "ok"

    res = c.chat.send(model=DIALECTS["gemini"], messages=msgs, tools=TOOLS)  # type: ignore[arg-type]
    assert res.choices[0].finish_reason == "tool_calls" and res.choices[0].message.tool_calls, res
    assert res.choices[0].message.tool_calls[0].function.name == "get_weather"
    features["tools"] = "ok"

    names = []
    for ch in c.chat.send(model=DIALECTS["openai"], messages=msgs, tools=TOOLS, stream=True):  # type: ignore[arg-type]
        for t in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
            if t.function and t.function.name:
                names.append(t.function.name)
    assert names == ["get_weather"], names
    features["streamed tool calls"] = "ok"

    res = c.chat.send(model=DIALECTS["anthropic"], messages=msgs, response_format=JSON_SCHEMA)  # type: ignore[arg-type]
    parsed = json.loads(str(res.choices[0].message.content))
    assert isinstance(parsed, dict), parsed
    features["json_schema"] = "ok"

    res = c.chat.send(model="moonshotai/kimi-k3", models=["openai/gpt-4o-mini"], messages=msgs, x_open_router_metadata="enabled")
    assert res.model == "openai/gpt-4o-mini" and res.openrouter_metadata is not None, res
    assert res.openrouter_metadata.strategy == "fallback", res.openrouter_metadata
    features["fallback"] = "ok"

    try:
        c.chat.send(model="acme/not-a-model", messages=msgs)
        sys.exit("expected a 400")
    except openrouter.errors.BadRequestResponseError as e:
        assert e.data.error.code == 400 and "not a valid model" in e.data.error.message, e
    features["error"] = "ok"
print("openrouter python sdk over http: " + ", ".join(f"{k} {v}" for k, v in features.items()))
