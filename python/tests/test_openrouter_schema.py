"""Everything the in-process Router emits validates against the OpenRouter Python SDK's models: per dialect
(openai, anthropic, gemini through the loopback mock), streamed and not, plain, tools and structured output, and
each fault class (provider errors before content, a stream cut after content, an unknown model, fallback)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import polyroute

from . import openrouter_schema as schema
from .mock import KEY, _model, catalog, provider_settings, running_mock

# slug -> (dialect, x-mock-fault), on top of the shared mock catalog.
FAULTY = {
    "cut-openai": ("openai", "cut"),
    "cut-anthropic": ("anthropic", "cut"),
    "cut-gemini": ("gemini", "cut"),
    "down-anthropic": ("anthropic", "503"),
    "limited-gemini": ("gemini", "429"),
    "garbage-openai": ("openai", "garbage"),
}
DIALECT_MODELS = {"openai": "test/model", "anthropic": "test/claude", "gemini": "test/gemini"}
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


@pytest.fixture(scope="module")
def router() -> Iterator[polyroute.Router]:
    with running_mock() as url:
        cat = catalog(url)
        settings = provider_settings()
        for slug, (dialect, fault) in FAULTY.items():
            cat["providers"].append(
                {
                    "slug": slug,
                    "name": slug.capitalize(),
                    "dialect": dialect,
                    "base_url": f"{url}/v1" if dialect == "openai" else url,
                    "api_key_env": "POLYROUTE_TEST_NEVER_SET_SCHEMA",
                }
            )
            cat["models"].append(_model(f"test/{slug}", [(slug, "0.000001")]))
            settings[slug] = {"api_key": KEY, "headers": {"x-mock-fault": fault}}
        yield polyroute.Router(cat, settings, read_env=False, timeout=10, first_token_timeout=5, idle_timeout=5)


def req(model: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "tools": {"tools": TOOLS},
    "json_schema": {"response_format": JSON_SCHEMA},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("dialect", sorted(DIALECT_MODELS))
def test_answers_and_streams_validate(router: polyroute.Router, dialect: str, variant: str) -> None:
    body = req(DIALECT_MODELS[dialect], **VARIANTS[variant])
    out = router.chat(body, metadata=True)
    r = schema.answer(out)
    assert r.choices[0].finish_reason == ("tool_calls" if variant == "tools" else "stop"), out
    if variant == "tools":
        assert r.choices[0].message.tool_calls and r.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert out["openrouter_metadata"]["strategy"] == "direct"

    chunks = list(router.stream(body, metadata=True))
    schema.stream(chunks)  # type: ignore[arg-type]
    assert "openrouter_metadata" in chunks[-1]
    if variant == "tools":
        calls = [t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls") or []]
        assert calls and calls[0]["function"]["name"] == "get_weather", chunks
    # Without the opt-in there is no metadata block.
    assert "openrouter_metadata" not in router.chat(body)


def test_translated_answers_carry_null_fingerprint(router: polyroute.Router) -> None:
    for model in ("test/claude", "test/gemini"):
        out = router.chat(req(model))
        assert "system_fingerprint" in out and out["system_fingerprint"] is None, out


def test_fallback_metadata(router: polyroute.Router) -> None:
    out = router.chat(req("test/broken", models=["test/model"]), metadata=True)
    schema.answer(out)
    meta = out["openrouter_metadata"]
    assert meta["strategy"] == "fallback" and meta["requested"] == "test/broken", meta
    assert meta["attempt"] == 2 and [a["status"] for a in meta["attempts"]] == [503, 200], meta
    assert [e["selected"] for e in meta["endpoints"]["available"]].count(True) == 1, meta


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("test/broken", 503),
        ("test/limited", 429),
        ("test/down-anthropic", 503),
        ("test/limited-gemini", 429),
        ("test/garbage-openai", 503),
        ("acme/not-a-model", 400),
    ],
)
def test_errors_validate(router: polyroute.Router, model: str, status: int) -> None:
    with pytest.raises(polyroute.PolyrouteError) as e:
        router.chat(req(model))
    assert e.value.status == status, e.value.body
    schema.error(status, e.value.body)
    # Before any content a stream fails the same way.
    with pytest.raises(polyroute.PolyrouteError) as e2:
        list(router.stream(req(model)))
    schema.error(e2.value.status, e2.value.body)


@pytest.mark.parametrize("dialect", ["openai", "anthropic", "gemini"])
def test_stream_cut_after_content(router: polyroute.Router, dialect: str) -> None:
    chunks: list[dict[str, Any]] = list(router.stream(req(f"test/cut-{dialect}", "one two three four five six")))
    for c in chunks:
        schema.chunk(c)  # type: ignore[arg-type]
    errors = [c for c in chunks if "error" in c]
    assert len(errors) == 1, chunks
    err = errors[0]["error"]
    assert err["code"] == 502 and "error decoding" not in err["message"], err
    assert err["metadata"]["error_type"] == "provider_unavailable", err
    # The usage of what was billed comes after the error chunk, last.
    assert "usage" in chunks[-1] and chunks[-1]["choices"] == [], chunks[-1]
    assert chunks.index(errors[0]) == len(chunks) - 2
    assert chunks[-1]["usage"]["completion_tokens"] >= 1
    rec = router.generation(chunks[-1]["id"])
    assert rec is not None and float(rec["cost"]) == pytest.approx(chunks[-1]["usage"]["cost"])
    # The record keeps polyroute's itemized decimal breakdown.
    assert set(rec["cost_details"]) >= {"prompt", "completion", "total", "insured"}, rec


def test_openrouter_sdk_in_process(router: polyroute.Router) -> None:
    """The OpenRouter Python SDK itself, served in process through polyroute's httpx transport."""
    import httpx
    import openrouter
    from openrouter import OpenRouter

    http = httpx.Client(transport=polyroute.HTTPTransport(router))
    with OpenRouter(api_key="sk-test-fake", server_url="http://polyroute.invalid/api/v1", client=http) as c:
        msgs: Any = [{"role": "user", "content": "hello sdk"}]
        res = c.chat.send(model="test/model", messages=msgs)
        assert res.choices[0].message.content == "mock: hello sdk"
        assert res.usage is not None and res.usage.cost_details is not None
        assert res.usage.cost_details.upstream_inference_completions_cost > 0
        chunks = list(c.chat.send(model="test/claude", messages=msgs, stream=True))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "mock: hello sdk"
        assert [ch.usage is not None for ch in chunks].count(True) == 1
        res = c.chat.send(model="test/gemini", messages=msgs, tools=TOOLS)  # type: ignore[arg-type]
        assert res.choices[0].message.tool_calls and res.choices[0].message.tool_calls[0].function.name == "get_weather"
        names = [
            t.function.name
            for ch in c.chat.send(model="test/model", messages=msgs, tools=TOOLS, stream=True)  # type: ignore[arg-type]
            if ch.choices
            for t in ch.choices[0].delta.tool_calls or []
            if t.function and t.function.name
        ]
        assert names == ["get_weather"]
        res = c.chat.send(model="test/claude", messages=msgs, response_format=JSON_SCHEMA)  # type: ignore[arg-type]
        assert isinstance(__import__("json").loads(str(res.choices[0].message.content)), dict)
        res = c.chat.send(model="test/broken", models=["test/model"], messages=msgs)
        assert res.model == "test/model"
        with pytest.raises(openrouter.errors.BadRequestResponseError):
            c.chat.send(model="acme/not-a-model", messages=msgs)
