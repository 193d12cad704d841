"""The official openai SDK served in process by a Router through polyroute's httpx transports."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

import polyroute

BASE = "http://polyroute.invalid/v1"


# Every test runs with an httpx client and an httpx2 one (the openai SDK from version 3 is built on httpx2).
HTTP_LIBS = ["httpx", "httpx2"]


@pytest.fixture(params=HTTP_LIBS)
def client(request: pytest.FixtureRequest, mock_router: polyroute.Router) -> openai.OpenAI:
    lib = pytest.importorskip(request.param)
    return openai.OpenAI(
        base_url=BASE,
        api_key="sk-test-fake",
        max_retries=0,
        http_client=lib.Client(transport=polyroute.HTTPTransport(mock_router)),
    )


@pytest.fixture(params=HTTP_LIBS)
def aclient(request: pytest.FixtureRequest, mock_router: polyroute.Router) -> openai.AsyncOpenAI:
    lib = pytest.importorskip(request.param)
    return openai.AsyncOpenAI(
        base_url=BASE,
        api_key="sk-test-fake",
        max_retries=0,
        http_client=lib.AsyncClient(transport=polyroute.AsyncHTTPTransport(mock_router)),
    )


def msgs(text: str = "hello") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_create(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="test/model", messages=msgs())  # type: ignore[arg-type]
    assert out.choices[0].message.content == "mock: hello"
    assert out.usage is not None and out.usage.total_tokens > 0
    assert out.model == "test/model"


def test_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="test/model",
        messages=msgs(),  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "mock: hello"


def test_routing_through_extra_body(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="test/broken",
        messages=msgs(),  # type: ignore[arg-type]
        extra_body={"models": ["test/model"], "provider": {"order": ["beta"], "allow_fallbacks": False}},
    )
    assert out.model == "test/model"
    assert out.model_extra is not None and out.model_extra["provider"] == "Beta"


def test_tools(client: openai.OpenAI) -> None:
    tools = [
        {"type": "function", "function": {"name": "GetWeatherArgs", "parameters": {"type": "object", "properties": {}}}}
    ]
    out = client.chat.completions.create(model="test/tools", messages=msgs(), tools=tools)  # type: ignore[arg-type]
    calls = out.choices[0].message.tool_calls or []
    assert calls[0].function.name == "GetWeatherArgs"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments)["city"] == "Edinburgh"  # type: ignore[union-attr]
    stream = client.chat.completions.create(
        model="test/tools-stream",
        messages=msgs(),  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        stream=True,
    )
    names = [
        tc.function.name
        for c in stream
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
        if tc.function and tc.function.name
    ]
    assert names == ["GetWeatherArgs", "get_stock_price"]


def test_json_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "Location",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}, "units": {"type": "string"}},
                "required": ["city", "temperature", "units"],
                "additionalProperties": False,
            },
        },
    }
    out = client.chat.completions.create(
        model="test/schema",
        messages=msgs("weather in SF?"),  # type: ignore[arg-type]
        response_format=schema,  # type: ignore[arg-type]
    )
    assert json.loads(out.choices[0].message.content or "")["city"] == "San Francisco"


def test_errors_are_sdk_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="test/broken", messages=msgs())  # type: ignore[arg-type]
    assert info.value.status_code == 503
    body = info.value.body
    assert isinstance(body, dict) and body["metadata"]["polyroute_code"] == "temporarily_unavailable"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="test/limited", messages=msgs())  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="nobody/nothing", messages=msgs())  # type: ignore[arg-type]
    assert isinstance(bad.value.body, dict) and bad.value.body["availability"]["code"] == "model_not_found"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="test/broken", messages=msgs(), stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="test/model",
            messages=msgs(),  # type: ignore[arg-type]
            extra_body={"provider": {"only": ["nobody"]}},
        )


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "test/model" in ids and "test/claude" in ids
    assert client.models.retrieve("test/model").id == "test/model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("test/none")
    # OpenRouter's paths beside the SDK's
    assert client.get("/model/test/model", cast_to=object)["id"] == "test/model"  # type: ignore[index]
    count = client.get("/models/count", cast_to=object)["data"]["count"]  # type: ignore[index]
    assert count == len(ids)


def test_session_and_metadata_headers(client: openai.OpenAI) -> None:
    out = client.chat.completions.with_raw_response.create(
        model="test/model",
        messages=msgs(),  # type: ignore[arg-type]
        extra_headers={"x-session-id": "s-1", "X-OpenRouter-Metadata": "enabled"},
    )
    body = json.loads(out.text)
    # metadata on: the routing block (every attempt) is in the answer, as the gateway sends it
    assert any(k.endswith("metadata") and isinstance(v, dict) for k, v in body.items()), body.keys()


def test_async_client(aclient: openai.AsyncOpenAI) -> None:
    async def main() -> None:
        out = await aclient.chat.completions.create(model="test/model", messages=msgs())  # type: ignore[arg-type]
        assert out.choices[0].message.content == "mock: hello"
        stream = await aclient.chat.completions.create(
            model="test/model",
            messages=msgs("async"),  # type: ignore[arg-type]
            stream=True,
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "mock: async"
        with pytest.raises(openai.InternalServerError):
            await aclient.chat.completions.create(model="test/broken", messages=msgs())  # type: ignore[arg-type]
        with pytest.raises(openai.InternalServerError):
            await aclient.chat.completions.create(model="test/broken", messages=msgs(), stream=True)  # type: ignore[arg-type]
        models = await aclient.models.list()
        assert any(m.id == "test/gemini" for m in models.data)
        await aclient.close()

    asyncio.run(main())
