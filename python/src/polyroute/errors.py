"""Exceptions raised by polyroute.

Every error carries the core's stable ``code``, the HTTP ``status`` of the OpenRouter error model, whether a retry
may succeed (``retryable``), the provider ``attempts`` it aggregates, and ``body``: the OpenRouter error envelope
``{"error": {"code", "message", "metadata", "availability"?}}``.

The class is chosen by code from :data:`ERROR_CLASSES`; a test proves the table covers every code of the core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .types import AttemptRecord, ErrorEnvelope

__all__ = [
    "ERROR_CLASSES",
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
    "from_core",
]


class PolyrouteError(Exception):
    """Base class of every polyroute error."""

    code: str
    """Stable snake_case code of the core (``no_endpoints``, ``capacity_exhausted``, ...)."""
    status: int
    """HTTP status of the OpenRouter error model."""
    retryable: bool
    """Whether retrying the same request later may succeed."""
    retry_after: float | None
    """Seconds after which a retry may succeed, when known."""
    attempts: list[AttemptRecord]
    """Every provider attempt made before giving up, in order."""
    body: ErrorEnvelope
    """The OpenRouter error envelope, as an HTTP gateway would return it."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: Sequence[AttemptRecord] = (),
        body: ErrorEnvelope | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = list(attempts)
        self.body = body if body is not None else {"error": {"code": status, "message": message, "metadata": {}}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class InvalidRequestError(PolyrouteError, ValueError):
    """The request is malformed (400). ``body["error"]["metadata"]["field"]`` names the offending field."""


class CatalogError(PolyrouteError, ValueError):
    """A catalog or overlay failed validation; every bad entry is listed in the message."""


class AuthenticationError(PolyrouteError):
    """The gateway credential is missing or invalid (401)."""


class PaymentRequiredError(PolyrouteError):
    """A spend limit would be exceeded; refused before any provider was called (402)."""


class NotFoundError(PolyrouteError):
    """Nothing can serve the request as asked (400/404)."""


class ModelNotFoundError(NotFoundError):
    """The model slug is unknown, retired, or a free variant that ended; see ``availability.fallback_models``."""


class NoEndpointsError(NotFoundError):
    """No endpoint is left: none exists, or request constraints or data policy removed every one."""


class RateLimitedError(PolyrouteError):
    """A rate limit was hit: a platform limit, or every provider attempt was rate limited (429)."""


class ProviderUnavailableError(PolyrouteError):
    """Every attempt failed with a server error, overload or timeout (503)."""


class ProviderError(PolyrouteError):
    """The last provider's own error (context length, moderation, authentication, ...), with its status."""


class InternalError(PolyrouteError):
    """A failure inside polyroute (500)."""


ERROR_CLASSES: Mapping[str, type[PolyrouteError]] = {
    "invalid_request": InvalidRequestError,
    "invalid_catalog": CatalogError,
    "model_not_found": ModelNotFoundError,
    "model_deprecated": ModelNotFoundError,
    "free_variant_ended": ModelNotFoundError,
    "no_endpoints": NoEndpointsError,
    "constraint_filtered": NoEndpointsError,
    "privacy_restricted": NoEndpointsError,
    "capacity_exhausted": RateLimitedError,
    "rate_limited": RateLimitedError,
    "temporarily_unavailable": ProviderUnavailableError,
    "provider_error": ProviderError,
    "payment_required": PaymentRequiredError,
    "unauthorized": AuthenticationError,
    "internal": InternalError,
}
"""Exception class of each core error code."""


def from_core(message: str, **fields: Any) -> PolyrouteError:
    """Build the exception for a core error (called by the native module)."""
    cls = ERROR_CLASSES.get(fields.get("code", ""), PolyrouteError)
    return cls(message, **fields)
