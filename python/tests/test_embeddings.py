"""Router.embeddings / aembeddings against the loopback mock: vectors, base64, fallback, cost, errors."""

from __future__ import annotations

import asyncio
import base64
import struct
from typing import Any

import pytest

import polyroute

from .mock import KEY


def _catalog(base: str) -> dict[str, Any]:
    def ep(slug: str, price: str) -> dict[str, Any]:
        return {"provider": slug, "provider_name": slug.capitalize(), "tag": slug,
                "provider_model_id": f"{slug}-embed", "context_length": 8192,
                "pricing": {"prompt": price, "completion": "0"}}

    def model(mid: str, output: str, eps: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": mid, "name": mid, "created": 1, "context_length": 8192,
                "architecture": {"input_modalities": ["text"], "output_modalities": [output]},
                "pricing": {"prompt": "0.0000001", "completion": "0"}, "top_provider": {"context_length": 8192},
                "endpoints": eps}

    return {
        "version": 1,
        "providers": [{"slug": s, "name": s.capitalize(), "dialect": "openai", "base_url": f"{base}/v1"}
                      for s in ("alpha", "broken")],
        "models": [
            model("test/embed", "embeddings", [ep("alpha", "0.0000001")]),
            model("test/embed-broken", "embeddings", [ep("broken", "0.00000001")]),
            model("test/chat", "text", [ep("alpha", "0.000001")]),
        ],
    }


@pytest.fixture(scope="module")
def router(mock_url: str) -> polyroute.Router:
    return polyroute.Router(
        _catalog(mock_url),
        {"alpha": {"api_key": KEY}, "broken": {"api_key": KEY, "headers": {"x-mock-fault": "503"}}},
        read_env=False,
        timeout=10,
    )


def test_embeddings_floats_base64_and_cost(router: polyroute.Router) -> None:
    out = router.embeddings({"model": "test/embed", "input": ["one two three", "four"], "dimensions": 5})
    assert out["object"] == "list" and out["model"] == "test/embed"
    vecs = [d["embedding"] for d in out["data"]]
    assert [len(v) for v in vecs] == [5, 5] and vecs[0] != vecs[1]
    assert out["usage"]["prompt_tokens"] == 4  # the mock counts words
    assert out["usage"]["cost"] == pytest.approx(4 * 0.0000001)
    rec = router.generation(out["id"])
    assert rec is not None and rec["model"] == "test/embed" and rec["usage"]["prompt_tokens"] == 4
    b64 = router.embeddings({"model": "test/embed", "input": "one two three", "dimensions": 5,
                             "encoding_format": "base64"})
    raw = base64.b64decode(b64["data"][0]["embedding"])  # type: ignore[arg-type]
    assert list(struct.unpack("<5f", raw)) == pytest.approx(vecs[0])


def test_embeddings_fallback_and_errors(router: polyroute.Router) -> None:
    out = router.embeddings({"model": "test/embed-broken", "models": ["test/embed"], "input": "x"})
    assert out["model"] == "test/embed"
    rec = router.generation(out["id"])
    assert rec is not None and [a["provider"] for a in rec["attempts"]] == ["broken", "alpha"]
    with pytest.raises(polyroute.InvalidRequestError, match="not an embedding model"):
        router.embeddings({"model": "test/chat", "input": "x"})
    with pytest.raises(polyroute.InvalidRequestError, match=r"input\[1\]"):
        router.embeddings({"model": "test/embed", "input": ["a", 1]})
    with pytest.raises(polyroute.InvalidRequestError, match="embedding model"):
        router.chat({"model": "test/embed", "messages": [{"role": "user", "content": "hi"}]})


def test_aembeddings(router: polyroute.Router) -> None:
    async def main() -> polyroute.types.Embeddings:
        return await router.aembeddings({"model": "test/embed", "input": [[1, 2, 3]]})

    out = asyncio.run(main())
    assert out["usage"]["prompt_tokens"] == 3 and len(out["data"]) == 1


def test_openai_sdk_through_the_transport(router: polyroute.Router) -> None:
    import httpx
    import openai

    client = openai.OpenAI(base_url="http://polyroute.local/v1", api_key="unused", max_retries=0,
                           http_client=httpx.Client(transport=polyroute.HTTPTransport(router)))
    # The SDK asks for base64 by default and decodes it.
    e = client.embeddings.create(model="test/embed", input=["one two", "three"], dimensions=4)
    assert [len(d.embedding) for d in e.data] == [4, 4] and e.usage.prompt_tokens == 3
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="test/chat", input="x")
    listed: Any = client.get("/embeddings/models", cast_to=object)
    assert [m["id"] for m in listed["data"]] == ["test/embed", "test/embed-broken"]
    count: Any = client.get("/models/count", cast_to=object)
    assert count["data"]["count"] == 3
