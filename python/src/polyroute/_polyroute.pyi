"""The native module behind polyroute. Use the names re-exported by ``polyroute``."""

import os
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, TypeAlias, final

from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    CostBreakdown,
    Embeddings,
    Generation,
    Model,
    Plan,
    ProviderSettings,
    Usage,
    AnthropicMessage,
    MessagesRequest,
    Response,
    ResponsesRequest,
    SurfaceEvent,
)

__all__ = [
    "AsyncChunkIterator",
    "AsyncEventIterator",
    "ByteStream",
    "ChunkIterator",
    "EventIterator",
    "Router",
    "__version__",
    "all_codes",
    "validate_request",
]
__version__: str

_CatalogSource: TypeAlias = str | bytes | os.PathLike[str] | Mapping[str, Any]
_Request: TypeAlias = ChatRequest | Mapping[str, Any] | str | bytes

@final
class Router:
    """An LLM router over a catalog of models and providers. Immutable; share one across threads."""

    def __new__(
        cls,
        catalog: _CatalogSource | None = None,
        providers: Mapping[str, ProviderSettings] | None = None,
        *,
        overlay: Mapping[str, Any] | str | None = None,
        hooks: Any | None = None,
        read_env: bool = ...,
        timeout: float = ...,
        connect_timeout: float = ...,
        first_token_timeout: float = ...,
        idle_timeout: float = ...,
        same_endpoint_retries: int = ...,
        retry_backoff: float = ...,
        sticky_ttl: float = ...,
        timeouts: Mapping[str, int] | None = ...,
        retry_backoff_ms: int = ...,
        sticky_ttl_ms: int = ...,
        limits: Mapping[str, Any] | None = ...,
        ledger_path: str | os.PathLike[str] | None = ...,
        state: Mapping[str, str] | None = ...,
        telemetry: Mapping[str, Any] | None = ...,
    ) -> Router: ...
    @property
    def credentials(self) -> list[str]:
        """Provider slugs that hold a credential."""
    def plan(
        self,
        request: _Request,
        *,
        seed: int | None = None,
        health: Mapping[str, Mapping[str, Any]] | None = None,
        credentials: Iterable[str] | None = None,
        sticky: str | None = None,
        previous_model: str | None = None,
    ) -> Plan: ...
    def cost(
        self,
        model: str,
        usage: Usage | Mapping[str, Any],
        provider: str | None = None,
        *,
        utc_minute: int | None = None,
        finish_reason: str | None = None,
    ) -> CostBreakdown: ...
    def models(
        self,
        *,
        input_modality: str | None = ...,
        output_modality: str | None = ...,
        supported_parameter: str | None = ...,
        supported_parameters: list[str] = ...,
        provider: str | None = ...,
        max_prompt_price: float | str | None = ...,
        free: bool | None = ...,
        search: str | None = ...,
    ) -> list[Model]: ...
    def chat(
        self,
        request: _Request,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
        traceparent: str | None = None,
    ) -> ChatCompletion: ...
    def achat(
        self,
        request: _Request,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
        traceparent: str | None = None,
    ) -> Awaitable[ChatCompletion]: ...
    def embeddings(self, request: _Request, *, user: str | None = None) -> Embeddings: ...
    def aembeddings(self, request: _Request, *, user: str | None = None) -> Awaitable[Embeddings]: ...
    def stream(
        self,
        request: _Request,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
        traceparent: str | None = None,
    ) -> ChunkIterator: ...
    def astream(
        self,
        request: _Request,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
        traceparent: str | None = None,
    ) -> AsyncChunkIterator: ...
    def stream_sse(
        self,
        request: _Request,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
        traceparent: str | None = None,
    ) -> ChunkIterator: ...
    def generation(self, id: str) -> Generation | None: ...
    def messages(
        self,
        request: MessagesRequest | Mapping[str, Any] | str | bytes,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
    ) -> AnthropicMessage | EventIterator:
        """An Anthropic Messages request: the message, or with ``"stream": True`` an iterator of event dicts."""
    def amessages(
        self,
        request: MessagesRequest | Mapping[str, Any] | str | bytes,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
    ) -> Awaitable[AnthropicMessage | AsyncEventIterator]: ...
    def responses(
        self,
        request: ResponsesRequest | Mapping[str, Any] | str | bytes,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
    ) -> Response | EventIterator:
        """An OpenAI Responses request (stateless): the response, or with ``"stream": True`` an event iterator."""
    def aresponses(
        self,
        request: ResponsesRequest | Mapping[str, Any] | str | bytes,
        *,
        user: str | None = None,
        session_id: str | None = None,
        metadata: bool = False,
    ) -> Awaitable[Response | AsyncEventIterator]: ...
    def http(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | list[tuple[bytes, bytes]] = ...,
        body: bytes | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes | ByteStream]:
        """One request through the engine's OpenRouter HTTP surface: ``(status, headers, body)``, the body
        ``bytes`` or a :class:`ByteStream` of SSE chunks."""
    def ahttp(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | list[tuple[bytes, bytes]] = ...,
        body: bytes | None = None,
    ) -> Awaitable[tuple[int, list[tuple[str, str]], bytes | ByteStream]]:
        """:meth:`http` on the running asyncio loop."""
    def metrics(self) -> dict[str, Any]:
        """The router's metrics: ``{name: {"type", "help", "samples": [{"labels", "value"}]}}``."""
    def flush_telemetry(self) -> None:
        """Export the finished trace spans now (with ``telemetry`` configured)."""
    def metrics_text(self) -> str:
        """The router's metrics in the Prometheus text exposition format."""

@final
class ChunkIterator:
    """Chunks of a streamed completion (dicts; bytes from ``Router.stream_sse``)."""

    def __iter__(self) -> ChunkIterator: ...
    def __next__(self) -> ChatCompletionChunk: ...
    def close(self) -> None:
        """Stop the stream and cancel the upstream request."""

@final
class AsyncChunkIterator:
    """Chunks of a streamed completion, for ``async for``."""

    def __aiter__(self) -> AsyncChunkIterator: ...
    def __anext__(self) -> Awaitable[ChatCompletionChunk]: ...
    def close(self) -> None:
        """Stop the stream and cancel the upstream request."""
    def aclose(self) -> Awaitable[None]:
        """``close`` as an awaitable (for ``contextlib.aclosing``)."""

@final
class EventIterator:
    """Events of a streamed Messages or Responses request (dicts whose ``type`` is the event name)."""

    def __iter__(self) -> EventIterator: ...
    def __next__(self) -> SurfaceEvent: ...
    def close(self) -> None:
        """Stop the stream and cancel the upstream request."""

@final
class AsyncEventIterator:
    """Events of a streamed Messages or Responses request, for ``async for``."""

    def __aiter__(self) -> AsyncEventIterator: ...
    def __anext__(self) -> Awaitable[SurfaceEvent]: ...
    def close(self) -> None:
        """Stop the stream and cancel the upstream request."""
    def aclose(self) -> Awaitable[None]:
        """``close`` as an awaitable (for ``contextlib.aclosing``)."""

@final
class ByteStream:
    """The SSE chunks of a streamed HTTP answer, for ``for`` and ``async for``."""

    def __iter__(self) -> ByteStream: ...
    def __next__(self) -> bytes: ...
    def __aiter__(self) -> ByteStream: ...
    def __anext__(self) -> Awaitable[bytes]: ...
    def close(self) -> None:
        """Stop the stream and cancel the upstream request."""

def all_codes() -> list[str]:
    """Every stable error code of the core."""

def validate_request(request: _Request) -> None:
    """Parse and validate a chat request; raise :class:`polyroute.InvalidRequestError` when it is invalid."""
