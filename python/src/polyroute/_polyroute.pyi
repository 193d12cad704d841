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
)

__all__ = ["AsyncChunkIterator", "ChunkIterator", "Router", "__version__", "all_codes", "validate_request"]
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
        self, request: _Request, *, user: str | None = None, session_id: str | None = None, metadata: bool = False
    ) -> ChatCompletion: ...
    def achat(
        self, request: _Request, *, user: str | None = None, session_id: str | None = None, metadata: bool = False
    ) -> Awaitable[ChatCompletion]: ...
    def embeddings(self, request: _Request, *, user: str | None = None) -> Embeddings: ...
    def aembeddings(self, request: _Request, *, user: str | None = None) -> Awaitable[Embeddings]: ...
    def stream(
        self, request: _Request, *, user: str | None = None, session_id: str | None = None, metadata: bool = False
    ) -> ChunkIterator: ...
    def astream(
        self, request: _Request, *, user: str | None = None, session_id: str | None = None, metadata: bool = False
    ) -> AsyncChunkIterator: ...
    def stream_sse(
        self, request: _Request, *, user: str | None = None, session_id: str | None = None, metadata: bool = False
    ) -> ChunkIterator: ...
    def generation(self, id: str) -> Generation | None: ...

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

def all_codes() -> list[str]:
    """Every stable error code of the core."""

def validate_request(request: _Request) -> None:
    """Parse and validate a chat request; raise :class:`polyroute.InvalidRequestError` when it is invalid."""
