"""Validators for what polyroute emits, built on the OpenRouter Python SDK's own models (``openrouter`` on PyPI):
answers (``ChatResult``), chunks (``ChatStreamChunk``) and error bodies (the SDK's per-status error data).

The SDK's pydantic models accept ``null`` for some fields that OpenRouter omits instead (its TypeScript SDK
rejects those nulls), so the absent-versus-null rules are checked here as well."""

from __future__ import annotations

from typing import Any

from openrouter import components as C

ERROR_MODELS: dict[int, Any] = {
    400: C.BadRequestResponseErrorData,
    401: C.UnauthorizedResponseErrorData,
    402: C.PaymentRequiredResponseErrorData,
    403: C.ForbiddenResponseErrorData,
    404: C.NotFoundResponseErrorData,
    408: C.RequestTimeoutResponseErrorData,
    413: C.PayloadTooLargeResponseErrorData,
    422: C.UnprocessableEntityResponseErrorData,
    429: C.TooManyRequestsResponseErrorData,
    500: C.InternalServerResponseErrorData,
    502: C.BadGatewayResponseErrorData,
    503: C.ServiceUnavailableResponseErrorData,
    524: C.EdgeNetworkTimeoutResponseErrorData,
    529: C.ProviderOverloadedResponseErrorData,
}

ERROR_TYPES = set(C.APIErrorType.__args__[0].__args__)  # type: ignore[attr-defined]


def _usage(u: dict[str, Any]) -> None:
    C.ChatUsage.model_validate(u)
    assert isinstance(u["cost"], (int, float)), u
    cd = u["cost_details"]
    for k in ("upstream_inference_prompt_cost", "upstream_inference_completions_cost"):
        assert isinstance(cd[k], (int, float)) and not isinstance(cd[k], bool), cd
    # The parts add up to the charge (web search fees ride in server_tool_cost).
    parts = cd["upstream_inference_prompt_cost"] + cd["upstream_inference_completions_cost"]
    parts += cd.get("server_tool_cost") or 0
    assert abs(parts - u["cost"]) < 1e-9, u
    assert set(cd) <= {
        "upstream_inference_cost",
        "upstream_inference_prompt_cost",
        "upstream_inference_completions_cost",
        "server_tool_cost",
    }, cd


def _metadata(m: dict[str, Any]) -> None:
    C.OpenRouterMetadata.model_validate(m)
    assert m["attempt"] >= 1 and m["endpoints"]["total"] == len(m["endpoints"]["available"]), m


def _error_metadata(md: dict[str, Any] | None) -> None:
    if md is None:
        return
    assert md.get("error_type") in ERROR_TYPES, md
    # OpenRouter omits provider_code when there is none; the TypeScript SDK rejects null.
    assert md.get("provider_code", "absent") is not None, md


def answer(v: dict[str, Any]) -> C.ChatResult:
    """Validate a non-streamed answer."""
    r = C.ChatResult.model_validate(v)
    assert "system_fingerprint" in v, "system_fingerprint is required (null allowed)"
    assert v["system_fingerprint"] is None or isinstance(v["system_fingerprint"], str)
    _usage(v["usage"])
    if "openrouter_metadata" in v:
        _metadata(v["openrouter_metadata"])
    for c in v["choices"]:
        if "error" in c:
            _error_metadata(c["error"].get("metadata"))
    return r


def chunk(v: dict[str, Any]) -> C.ChatStreamChunk:
    """Validate one streamed chunk."""
    r = C.ChatStreamChunk.model_validate(v)
    # The chunk schema types system_fingerprint as an optional string: absent or a string, never null.
    assert v.get("system_fingerprint", "absent") is not None, v
    if "usage" in v:
        _usage(v["usage"])
    if "openrouter_metadata" in v:
        _metadata(v["openrouter_metadata"])
    if "error" in v:
        assert isinstance(v["error"]["code"], int), v
        _error_metadata(v["error"].get("metadata"))
    return r


def stream(chunks: list[dict[str, Any]]) -> None:
    """Validate a whole stream: every chunk, exactly one usage chunk (``choices: []``), and it comes last."""
    assert chunks, "empty stream"
    for c in chunks:
        chunk(c)
    usage = [i for i, c in enumerate(chunks) if "usage" in c]
    assert usage == [len(chunks) - 1], [sorted(c) for c in chunks]
    assert chunks[-1]["choices"] == []


def error(status: int, body: dict[str, Any]) -> None:
    """Validate an error body ``{"error": {code, message, metadata}}`` sent with HTTP ``status``."""
    model = ERROR_MODELS[status]
    model.model_validate(body["error"])
    assert body["error"]["code"] == status, body
    _error_metadata(body["error"].get("metadata"))
