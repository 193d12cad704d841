"""polyroute: an embeddable LLM router (an in-process OpenRouter).

>>> import polyroute
>>> router = polyroute.Router()
>>> plan = router.plan({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
"""

from __future__ import annotations

from . import types
from typing import TYPE_CHECKING, Any

from ._polyroute import (
    AsyncChunkIterator,
    AsyncEventIterator,
    ChunkIterator,
    EventIterator,
    Router,
    __version__,
    all_codes,
    validate_request,
)
from .errors import (
    AuthenticationError,
    CatalogError,
    InternalError,
    InvalidRequestError,
    ModelNotFoundError,
    NoEndpointsError,
    NotFoundError,
    PaymentRequiredError,
    PolyrouteError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)

if TYPE_CHECKING:
    from .transport import AsyncHTTPTransport, HTTPTransport


def __getattr__(name: str) -> Any:
    # The transports import httpx; load them on first use only.
    if name in ("HTTPTransport", "AsyncHTTPTransport"):
        from . import transport

        return getattr(transport, name)
    raise AttributeError(f"module 'polyroute' has no attribute {name!r}")


__all__ = [
    "AsyncChunkIterator",
    "AsyncEventIterator",
    "EventIterator",
    "AsyncHTTPTransport",
    "ChunkIterator",
    "HTTPTransport",
    "AuthenticationError",
    "CatalogError",
    "InternalError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoEndpointsError",
    "NotFoundError",
    "PaymentRequiredError",
    "PolyrouteError",
    "ProviderError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "Router",
    "__version__",
    "all_codes",
    "types",
    "validate_request",
]
