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
