"""Router.messages / amessages (Anthropic Messages) and Router.responses / aresponses (OpenAI Responses) against
the loopback mock: answers, streamed events, errors naming the field."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import polyroute

MSG = {"model": "test/model", "max_tokens": 64, "messages": [{"role": "user", "content": "hi there"}]}


def test_messages_answer_and_stream(mock_router: polyroute.Router) -> None:
    m = mock_router.messages(MSG)
    assert isinstance(m, dict) and m["type"] == "message"
    assert m["content"][0]["text"] == "mock: hi there"
    assert m["stop_reason"] == "end_turn" and m["usage"]["cost"] > 0
    events = list(mock_router.messages({**MSG, "stream": True}))
    assert [e["type"] for e in events][:2] == ["message_start", "ping"]
    assert events[-1]["type"] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "mock: hi there"


def test_responses_answer_and_stream(mock_router: polyroute.Router) -> None:
    r = mock_router.responses({"model": "test/model", "input": "hello", "instructions": "Be brief."})
    assert isinstance(r, dict) and r["object"] == "response" and r["status"] == "completed"
    assert r["output"][0]["content"][0]["text"] == "mock: hello"
    events = list(mock_router.responses({"model": "test/model", "input": "hello", "stream": True}))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["cost"] > 0


def test_async_surfaces(mock_router: polyroute.Router) -> None:
    async def go() -> tuple[Any, list[str]]:
        m = await mock_router.amessages(MSG)
        it = await mock_router.aresponses({"model": "test/model", "input": "async", "stream": True})
        assert isinstance(it, polyroute.AsyncEventIterator)
        return m, [e["type"] async for e in it]

    m, types = asyncio.run(go())
    assert m["content"][0]["text"] == "mock: hi there"
    assert types[0] == "response.created" and types[-1] == "response.completed"


def test_errors_name_the_field(mock_router: polyroute.Router) -> None:
    with pytest.raises(polyroute.InvalidRequestError, match="max_tokens"):
        mock_router.messages({"model": "test/model", "messages": [{"role": "user", "content": "x"}]})
    with pytest.raises(polyroute.InvalidRequestError, match="stateless"):
        mock_router.responses({"model": "test/model", "input": "x", "previous_response_id": "resp_1"})


def test_sdks_in_process_through_the_transports(mock_router: polyroute.Router) -> None:
    """The official anthropic SDK and the openai SDK's Responses, with no server: polyroute's httpx transports."""
    httpx = pytest.importorskip("httpx2")  # what the anthropic and openai SDKs are built on
    anthropic = pytest.importorskip("anthropic")
    openai = pytest.importorskip("openai")
    transport = polyroute.HTTPTransport(mock_router)
    a = anthropic.Anthropic(base_url="http://polyroute.invalid", api_key="unused", max_retries=0,
                            http_client=httpx.Client(transport=transport))
    m = a.messages.create(model="test/model", max_tokens=32, messages=[{"role": "user", "content": "in process"}])
    assert m.content[0].text == "mock: in process" and m.stop_reason == "end_turn"
    with a.messages.stream(model="test/model", max_tokens=32, messages=[{"role": "user", "content": "streamed"}]) as s:
        assert "".join(s.text_stream) == "mock: streamed"
    with pytest.raises(anthropic.BadRequestError) as err:
        a.messages.create(model="acme/nope", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert err.value.body["error"]["type"] == "invalid_request_error"

    o = openai.OpenAI(base_url="http://polyroute.invalid/v1", api_key="unused", max_retries=0,
                      http_client=httpx.Client(transport=transport))
    r = o.responses.create(model="test/model", input="responses in process")
    assert r.output_text == "mock: responses in process"
    types = [e.type for e in o.responses.create(model="test/model", input="x", stream=True)]
    assert types[0] == "response.created" and types[-1] == "response.completed"

    async def go() -> str:
        aa = anthropic.AsyncAnthropic(base_url="http://polyroute.invalid", api_key="unused", max_retries=0,
                                      http_client=httpx.AsyncClient(transport=polyroute.AsyncHTTPTransport(mock_router)))
        async with aa.messages.stream(model="test/model", max_tokens=32,
                                      messages=[{"role": "user", "content": "async"}]) as s:
            return "".join([t async for t in s.text_stream])

    assert asyncio.run(go()) == "mock: async"
