"""httpx transports that serve OpenAI-compatible HTTP calls from a Router, in process.

Plug them into the official ``openai`` SDK (or any httpx client)::

    client = openai.OpenAI(
        base_url="http://polyroute.local/v1",
        api_key="unused",
        http_client=httpx.Client(transport=polyroute.HTTPTransport(router)),
    )
    client.chat.completions.create(model="openai/gpt-4o", messages=[...], extra_body={"models": [...]})

No server and no network hop: ``POST …/chat/completions`` (streamed or not) runs ``router.chat`` /
``router.stream_sse``; ``POST …/embeddings`` runs ``router.embeddings``; ``GET …/models`` lists the catalog, ``GET …/models/{author}/{slug}`` (and OpenRouter's
``…/model/{author}/{slug}``) returns one model, ``GET …/models/count`` counts them; ``GET …/generation?id=``
returns a ledger record. ``x-session-id`` and ``X-OpenRouter-Metadata: enabled`` are read as the gateway reads them.
Failures come back as the HTTP status and OpenRouter error envelope that a gateway would send, so the SDK raises
its own ``APIStatusError`` subclasses with ``.body`` holding the envelope's ``error``.

The transports serve ``httpx`` and ``httpx2`` clients alike (the openai SDK from version 3 is built on httpx2, whose
client asserts that a response's stream is its own module's ``SyncByteStream``): every response and stream is made
from the module of the request being answered.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from types import ModuleType
from typing import Any

try:
    import httpx
except ImportError:  # pragma: no cover - an environment with only httpx2 (openai >= 3 installs httpx2)
    import httpx2 as httpx  # type: ignore[no-redef, import-not-found, unused-ignore]

from ._polyroute import AsyncChunkIterator, ChunkIterator, Router
from .errors import PolyrouteError

__all__ = ["AsyncHTTPTransport", "HTTPTransport"]

_JSON = {"content-type": "application/json"}
_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
_DONE = b"data: [DONE]\n\n"


def _module(request: Any) -> ModuleType:
    """``httpx`` or ``httpx2``: the package whose ``Request`` this is."""
    return sys.modules.get(type(request).__module__.split(".", 1)[0], httpx)


def _error(mod: ModuleType, status: int, message: str, code: str) -> httpx.Response:
    body = {"error": {"code": status, "message": message, "metadata": {"polyroute_code": code}}}
    return mod.Response(status, headers=_JSON, content=json.dumps(body).encode())  # type: ignore[no-any-return]


def _from_exc(mod: ModuleType, e: PolyrouteError) -> httpx.Response:
    return mod.Response(e.status, headers=_JSON, content=json.dumps(e.body).encode())  # type: ignore[no-any-return]


def _ok(mod: ModuleType, doc: Any) -> httpx.Response:
    return mod.Response(200, headers=_JSON, content=json.dumps(doc).encode())  # type: ignore[no-any-return]


def _model_row(m: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in m.items() if k != "endpoints"}
    row.setdefault("object", "model")
    row.setdefault("owned_by", m["id"].split("/", 1)[0])
    return row


def _body(mod: ModuleType, content: bytes) -> dict[str, Any] | httpx.Response:
    try:
        doc = json.loads(content)
    except ValueError as e:
        return _error(mod, 400, f"body is not valid JSON: {e}", "invalid_request")
    if not isinstance(doc, dict):
        return _error(mod, 400, "the request body must be a JSON object", "invalid_request")
    return doc


def _options(request: httpx.Request) -> dict[str, Any]:
    """The session and metadata headers the gateway reads (``x-session-id``, ``X-OpenRouter-Metadata: enabled``)."""
    h = request.headers
    meta = h.get("x-openrouter-metadata") or h.get("x-openrouter-experimental-metadata") or ""
    return {"session_id": h.get("x-session-id") or None, "metadata": meta.strip().lower() == "enabled"}


def _get(mod: ModuleType, router: Router, request: httpx.Request) -> httpx.Response:
    path = request.url.path.rstrip("/")
    if path.endswith("/embeddings/models"):
        rows = router.models(output_modality="embeddings")
        return _ok(mod, {"object": "list", "data": [_model_row(m) for m in rows]})
    if path.endswith("/models"):
        return _ok(mod, {"object": "list", "data": [_model_row(m) for m in router.models()]})
    if path.endswith("/models/count"):
        # Every output modality, as the gateway counts (the default listing leaves embedding models out).
        count = len(router.models()) + len(router.models(output_modality="embeddings"))
        return _ok(mod, {"data": {"count": count}})
    if "/models/" in path or "/model/" in path:
        # `GET …/models/{author}/{slug}` (the openai SDK's models.retrieve) and OpenRouter's `…/model/{author}/{slug}`
        wanted = path.split("/models/" if "/models/" in path else "/model/", 1)[1]
        for m in router.models(search=wanted):
            if m["id"] == wanted:
                return _ok(mod, _model_row(m))
        return _error(mod, 404, f"{wanted} is not a valid model ID", "model_not_found")
    if path.endswith("/generation"):
        gen_id = request.url.params.get("id", "")
        record = router.generation(gen_id)
        if record is None:
            return _error(mod, 404, f"generation {gen_id!r} not found", "not_found")
        return _ok(mod, {"data": record})
    return _error(mod, 404, f"no route for GET {path}", "not_found")


@functools.cache
def _sync_sse(mod: ModuleType) -> Any:
    class _SyncSSE(mod.SyncByteStream):  # type: ignore[name-defined, misc]
        def __init__(self, events: ChunkIterator) -> None:
            self._events = events

        def __iter__(self) -> Iterator[bytes]:
            return iter(self._events)  # type: ignore[arg-type]

        def close(self) -> None:
            self._events.close()

    return _SyncSSE


class HTTPTransport(httpx.BaseTransport):
    """A synchronous httpx transport answering OpenAI-compatible requests from ``router``."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        mod = _module(request)
        try:
            if request.method == "POST" and request.url.path.rstrip("/").endswith("/chat/completions"):
                doc = _body(mod, request.read())
                if not isinstance(doc, dict):
                    return doc
                opts = _options(request)
                if doc.get("stream"):
                    stream = _sync_sse(mod)(self.router.stream_sse(doc, **opts))
                    return mod.Response(200, headers=_SSE_HEADERS, stream=stream)  # type: ignore[no-any-return]
                return _ok(mod, self.router.chat(doc, **opts))
            if request.method == "POST" and request.url.path.rstrip("/").endswith("/embeddings"):
                doc = _body(mod, request.read())
                return _ok(mod, self.router.embeddings(doc)) if isinstance(doc, dict) else doc
            if request.method == "GET":
                return _get(mod, self.router, request)
            return _error(mod, 405, f"{request.method} {request.url.path} is not served", "method_not_allowed")
        except PolyrouteError as e:
            return _from_exc(mod, e)


@functools.cache
def _async_sse(mod: ModuleType) -> Any:
    class _AsyncSSE(mod.AsyncByteStream):  # type: ignore[name-defined, misc]
        def __init__(self, first: dict[str, Any] | None, rest: AsyncChunkIterator) -> None:
            self._first = first
            self._rest = rest

        async def __aiter__(self) -> AsyncIterator[bytes]:
            if self._first is not None:
                yield b"data: " + json.dumps(self._first).encode() + b"\n\n"
            try:
                async for chunk in self._rest:
                    yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            except PolyrouteError as e:
                yield b"data: " + json.dumps(e.body).encode() + b"\n\n"
            yield _DONE

    return _AsyncSSE


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """An asyncio httpx transport answering OpenAI-compatible requests from ``router``."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        mod = _module(request)
        try:
            if request.method == "POST" and request.url.path.rstrip("/").endswith("/chat/completions"):
                doc = _body(mod, await request.aread())
                if not isinstance(doc, dict):
                    return doc
                opts = _options(request)
                if doc.get("stream"):
                    chunks = self.router.astream(doc, **opts)
                    # Wait for the first chunk so that an error before any content becomes an HTTP error status.
                    first: dict[str, Any] | None
                    try:
                        first = dict(await chunks.__anext__())
                    except StopAsyncIteration:
                        first = None
                    stream = _async_sse(mod)(first, chunks)
                    return mod.Response(200, headers=_SSE_HEADERS, stream=stream)  # type: ignore[no-any-return]
                return _ok(mod, await self.router.achat(doc, **opts))
            if request.method == "POST" and request.url.path.rstrip("/").endswith("/embeddings"):
                doc = _body(mod, await request.aread())
                return _ok(mod, await self.router.aembeddings(doc)) if isinstance(doc, dict) else doc
            if request.method == "GET":
                return _get(mod, self.router, request)
            return _error(mod, 405, f"{request.method} {request.url.path} is not served", "method_not_allowed")
        except PolyrouteError as e:
            return _from_exc(mod, e)
