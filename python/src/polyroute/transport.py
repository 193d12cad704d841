"""httpx transports that serve OpenAI-compatible HTTP calls from a Router, in process.

Plug them into the official ``openai`` SDK (or any httpx client)::

    client = openai.OpenAI(
        base_url="http://polyroute.local/v1",
        api_key="unused",
        http_client=httpx.Client(transport=polyroute.HTTPTransport(router)),
    )
    client.chat.completions.create(model="openai/gpt-4o", messages=[...], extra_body={"models": [...]})

No server and no network hop: each request goes to ``Router.http`` / ``Router.ahttp``, the engine's OpenRouter HTTP
surface that the gateway and Node's ``router.fetch`` answer with too, so paths (chat completions streamed or not,
``models``, ``models/count``, ``models/{author}/{slug}``, ``model/{author}/{slug}``, ``models/{..}/endpoints``,
``providers``, ``generation?id=``, ``credits``), headers (``HTTP-Referer``, ``X-OpenRouter-Title``/``X-Title``,
``x-session-id``, ``X-OpenRouter-Metadata``) and errors (status and OpenRouter envelope, so the SDK raises its own
``APIStatusError`` subclasses with ``.body`` holding the envelope's ``error``) are the same everywhere.

The transports serve ``httpx`` and ``httpx2`` clients alike (the openai SDK from version 3 is built on httpx2, whose
client asserts that a response's stream is its own module's ``SyncByteStream``): every response and stream is made
from the module of the request being answered.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

try:
    import httpx
except ImportError:  # pragma: no cover - an environment with only httpx2 (openai >= 3 installs httpx2)
    import httpx2 as httpx  # type: ignore[no-redef, import-not-found, unused-ignore]

from ._polyroute import ByteStream, Router

__all__ = ["AsyncHTTPTransport", "HTTPTransport"]


def _module(request: Any) -> ModuleType:
    """``httpx`` or ``httpx2``: the package whose ``Request`` this is."""
    return sys.modules.get(type(request).__module__.split(".", 1)[0], httpx)


def _parts(request: httpx.Request) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    # The headers as bytes, undecoded: Router.http reads them so.
    return request.method, request.url.raw_path.decode("ascii"), request.headers.raw


@functools.cache
def _preloadable(mod: ModuleType) -> bool:
    """Whether ``mod``'s ``Response`` takes a body that is already read as ``_content`` (httpx and httpx2 do):
    checked once per module, so a version that reads its body otherwise gets ``content=`` instead."""
    try:
        r = mod.Response(200, stream=mod.ByteStream(b"x"))
        r._content = b"x"  # noqa: SLF001
        r.is_stream_consumed = r.is_closed = True
        return bool(r.read() == b"x" and r.content == b"x" and list(r.iter_bytes()) == [b"x"])
    except Exception:  # noqa: BLE001 - any failure means: build it the documented way
        return False


def _full(mod: ModuleType, status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    """The response with a complete body: what ``Response(status, headers=..., content=body)`` makes (the
    ``Content-Length`` header added when absent, the body already read), without running the body through the
    byte-stream decoding that ``content=`` does to read it."""
    if not _preloadable(mod) or any(k.lower() == "content-encoding" for k, _ in headers):
        return mod.Response(status, headers=headers, content=body)
    r = mod.Response(status, headers=headers, stream=mod.ByteStream(body))
    r.headers.setdefault("Content-Length", str(len(body)))
    r._content = body  # noqa: SLF001
    # As after reading the body.
    r.is_stream_consumed = True
    r.is_closed = True
    return r


@functools.cache
def _sync_stream(mod: ModuleType) -> Any:
    class _SyncStream(mod.SyncByteStream):  # type: ignore[name-defined, misc]
        def __init__(self, chunks: ByteStream) -> None:
            self._chunks = chunks

        def __iter__(self) -> Iterator[bytes]:
            return iter(self._chunks)

        def close(self) -> None:
            self._chunks.close()

    return _SyncStream


@functools.cache
def _async_stream(mod: ModuleType) -> Any:
    class _AsyncStream(mod.AsyncByteStream):  # type: ignore[name-defined, misc]
        def __init__(self, chunks: ByteStream) -> None:
            self._chunks = chunks

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._chunks:
                yield chunk

        async def aclose(self) -> None:
            self._chunks.close()

    return _AsyncStream


class HTTPTransport(httpx.BaseTransport):
    """A synchronous httpx transport answering OpenAI-compatible requests from ``router``."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        mod = _module(request)
        method, target, headers = _parts(request)
        status, out, body = self.router.http(method, target, headers, request.read())
        if isinstance(body, bytes):
            return _full(mod, status, out, body)  # type: ignore[no-any-return]
        return mod.Response(status, headers=out, stream=_sync_stream(mod)(body))  # type: ignore[no-any-return]


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """An asyncio httpx transport answering OpenAI-compatible requests from ``router``."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        mod = _module(request)
        method, target, headers = _parts(request)
        status, out, body = await self.router.ahttp(method, target, headers, await request.aread())
        if isinstance(body, bytes):
            return _full(mod, status, out, body)  # type: ignore[no-any-return]
        return mod.Response(status, headers=out, stream=_async_stream(mod)(body))  # type: ignore[no-any-return]
