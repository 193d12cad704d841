"""The native module behind polyroute. Use the names re-exported by ``polyroute``."""

import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias, final

from .types import ChatRequest, CostBreakdown, Model, Plan, ProviderSettings, Usage

__version__: str

__all__ = ["Router", "__version__", "all_codes", "validate_request"]

_CatalogSource: TypeAlias = str | bytes | os.PathLike[str] | Mapping[str, Any]

@final
class Router:
    """An LLM router over a catalog of models and providers. Immutable; share one across threads."""

    def __new__(
        cls,
        catalog: _CatalogSource | None = None,
        providers: Mapping[str, ProviderSettings] | None = None,
        *,
        overlay: Mapping[str, Any] | str | None = None,
    ) -> Router: ...
    def plan(
        self,
        request: ChatRequest | Mapping[str, Any] | str | bytes,
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

def all_codes() -> list[str]:
    """Every stable error code of the core."""

def validate_request(request: ChatRequest | Mapping[str, Any] | str | bytes) -> None:
    """Parse and validate a chat request; raise :class:`polyroute.InvalidRequestError` when it is invalid."""
