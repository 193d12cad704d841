"""The in-process fast paths: plan results built from per-router cached parts, blocking calls from many threads,
raw (bytes) headers for Router.http, and complete bodies handed to httpx already read."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest

import polyroute
from polyroute import transport

from .conftest import hi


def test_plan_results_are_fresh_objects_each_call(basic_router: polyroute.Router) -> None:
    first = basic_router.plan(hi())
    second = basic_router.plan(hi())
    assert first == second and len(first["attempts"]) >= 2
    a, b = first["attempts"][0], second["attempts"][0]
    assert a is not b and a["prices"] is not b["prices"]
    # Changing one result leaves the routers' cached parts, and so the next result, as they were.
    a["prices"]["prompt"] = "changed"
    a["provider"] = "changed"
    first["primary_prices"]["prompt"] = "changed"
    third = basic_router.plan(hi())
    assert third == second
    assert list(third["attempts"][0]) == list(json.loads(json.dumps(second["attempts"][0])))


def test_plan_models_and_exclusions_are_fresh_objects_each_call(basic_router: polyroute.Router) -> None:
    req = hi(provider={"sort": "price"})
    first = basic_router.plan(req, credentials=["gamma"])
    second = basic_router.plan(req, credentials=["gamma"])
    assert first == second and first["excluded"] and first["models"]
    for key in ("requested_models", "models", "excluded", "attempts", "primary_prices", "worst_case_prices"):
        assert first[key] is not second[key], key
    assert first["models"][0] is not second["models"][0]
    assert first["excluded"][0] is not second["excluded"][0]
    # Changing one result's resolved models, exclusions and lists leaves the next result as it was.
    first["models"][0]["id"] = "changed"
    first["excluded"][0]["reason"] = "changed"
    first["requested_models"].append("changed")
    first["worst_case_prices"]["prompt"] = "changed"
    first["strategy"] = "changed"
    third = basic_router.plan(req, credentials=["gamma"])
    assert third == second
    assert list(third) == list(json.loads(json.dumps(second)))
    # A request that excludes differently gets its own exclusions, not the cached ones.
    other = basic_router.plan(hi(provider={"sort": "price"}), credentials=["alpha"])
    assert other["excluded"] != second["excluded"]


def test_plan_keeps_the_per_attempt_reason_and_index(basic_router: polyroute.Router) -> None:
    p = basic_router.plan(hi())
    for i, a in enumerate(p["attempts"]):
        assert isinstance(a["reason"], str) and a["reason"]
        assert a["model_index"] == 0, (i, a)
        assert list(a)[-2:] == ["reason", "model_index"]


class _Str(str):
    """A str subclass: read as text, as the JSON path reads it."""


# Requests read from a dict field by field (the common fields directly, the rest by their own deserializers):
# each must plan, or fail, exactly as the same request sent as JSON text.
_REQUESTS: list[Any] = [
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "hi"}], "model": "test/open-70b", "temperature": 0.2, "user": "u"},
    {"model": "test/open-70b", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}]},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": None, "name": "n", "cache_control": {}}]},
    {"model": None, "models": ["test/open-70b"], "messages": [{"role": "user", "content": "hi"}]},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": "price"}},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": False},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "seed": -3, "stop": ["a"]},
    {
        "model": "test/open-70b",
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "1"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "auto",
        "session_id": "s",
        "service_tier": "auto",
        "route": "fallback",
    },
    # Not the common shapes: a str subclass, messages in a tuple.
    {"model": _Str("test/open-70b"), "messages": [{"role": _Str("user"), "content": _Str("hi")}]},
    {"model": "test/open-70b", "messages": ({"role": "user", "content": "hi"},)},
    # Errors: each names the same field the same way.
    {"model": "test/open-70b"},
    {"model": "test/open-70b", "messages": []},
    {"model": 5, "messages": [{"role": "user", "content": "hi"}]},
    {"model": "test/open-70b", "messages": [{"role": "robot", "content": "hi"}]},
    {"model": "test/open-70b", "messages": [{"content": "hi"}]},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
    {"model": "test/open-70b", "messages": [{"role": "user", "content": "hi"}], "provider": {"nope": 1}},
    {"model": "test/open-70b", "messages": {"role": "user"}},
]


@pytest.mark.parametrize("req", _REQUESTS)
def test_a_request_dict_plans_as_its_json_text(basic_router: polyroute.Router, req: dict[str, Any]) -> None:
    def outcome(r: Any) -> Any:
        try:
            return basic_router.plan(r)
        except Exception as e:  # noqa: BLE001  (the error is the outcome compared)
            return (type(e), str(e))

    assert outcome(req) == outcome(json.dumps(req))


def test_http_takes_headers_as_bytes_or_str(mock_router: polyroute.Router) -> None:
    as_str = mock_router.http("GET", "/api/v1/models/count", [("accept", "application/json")])
    as_bytes = mock_router.http("GET", "/api/v1/models/count", [(b"Accept", b"application/json")])
    assert as_str[0] == as_bytes[0] == 200
    assert as_str[2] == as_bytes[2]
    with pytest.raises(TypeError):
        mock_router.http("GET", "/api/v1/models/count", [(1, 2)])  # type: ignore[arg-type]


def test_blocking_calls_from_many_threads(mock_router: polyroute.Router) -> None:
    body = json.dumps({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}).encode()
    errors: list[BaseException] = []
    answers: list[Any] = []

    def work() -> None:
        try:
            for _ in range(3):
                status, _, out = mock_router.http("POST", "/api/v1/chat/completions", [], body)
                assert isinstance(out, bytes)
                answers.append((status, json.loads(out)["choices"][0]["message"]["content"]))
                answers.append(mock_router.chat(hi("test/model"))["choices"][0]["message"]["content"])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(answers) == 24
    assert all(a == (200, "mock: hi") or a == "mock: hi" for a in answers)


def test_a_blocking_stream_can_be_read_from_asyncio(mock_router: polyroute.Router) -> None:
    body = json.dumps({"model": "test/model", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    status, _, stream = mock_router.http("POST", "/api/v1/chat/completions", [], body.encode())
    assert status == 200 and isinstance(stream, polyroute._polyroute.ByteStream)

    async def read() -> bytes:
        return b"".join([chunk async for chunk in stream])

    text = asyncio.run(asyncio.wait_for(read(), 20)).decode()
    assert text.rstrip().endswith("data: [DONE]")
    assert "mock" in text


def test_a_complete_body_is_the_response_httpx_would_make() -> None:
    out = [("content-type", "application/json"), ("x-generation-id", "gen-test")]
    body = b'{"ok": true}'
    made = transport._full(httpx, 200, out, body)  # noqa: SLF001
    plain = httpx.Response(200, headers=out, content=body)
    assert list(made.headers.multi_items()) == list(plain.headers.multi_items())
    assert (made.content, made.is_closed, made.is_stream_consumed) == (
        plain.content,
        plain.is_closed,
        plain.is_stream_consumed,
    )
    assert made.json() == {"ok": True} and made.read() == body
    # An encoded body goes the documented way (httpx decodes it).
    encoded = transport._full(httpx, 200, [*out, ("content-encoding", "identity")], body)  # noqa: SLF001
    assert encoded.content == body
