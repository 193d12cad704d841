"""polyroute: an embeddable LLM router (an in-process OpenRouter).

>>> import polyroute
>>> router = polyroute.Router()
>>> plan = router.plan({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
"""

from __future__ import annotations

from . import types
from ._polyroute import Router, __version__, all_codes, validate_request
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

__all__ = [
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
