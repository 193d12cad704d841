"""Shapes of the dicts that polyroute takes and returns, as TypedDicts.

Requests are the OpenAI Chat Completions body plus OpenRouter's routing fields (``models``, ``provider``,
``route``, ``session_id``, ``plugins``); unknown fields are forwarded to the provider as given. Results are plain
dicts; these types only describe them for type checkers.
"""

from __future__ import annotations

import sys
from typing import Any, Literal, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, Required, TypedDict
else:  # pragma: no cover
    from typing_extensions import NotRequired, Required, TypedDict

__all__ = [
    "Attempt",
    "AttemptRecord",
    "Availability",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatRequest",
    "Choice",
    "ChunkChoice",
    "CostBreakdown",
    "CostDetails",
    "Embedding",
    "EmbeddingUsage",
    "Embeddings",
    "CredentialSettings",
    "ErrorBody",
    "ErrorEnvelope",
    "Exclusion",
    "Generation",
    "MaxPrice",
    "Message",
    "Model",
    "ModelArchitecture",
    "ModelPricing",
    "Plan",
    "ProviderPreferences",
    "ProviderSettings",
    "ResolvedModel",
    "SortSpec",
    "UnitPrices",
    "Usage",
    "MessagesRequest",
    "AnthropicMessage",
    "ResponsesRequest",
    "Response",
    "SurfaceEvent",
]

JSON = Any
"""Any JSON value."""


# ---------------------------------------------------------------- requests


class Message(TypedDict, total=False):
    """A chat message; ``content`` is a string, a list of content parts, or None."""

    role: Required[Literal["system", "developer", "user", "assistant", "tool"]]
    content: str | list[dict[str, JSON]] | None
    name: str
    tool_calls: list[dict[str, JSON]]
    tool_call_id: str


class SortSpec(TypedDict, total=False):
    """``provider.sort`` as an object."""

    by: Literal["price", "throughput", "latency", "exacto"]
    partition: Literal["model", "none"]


class MaxPrice(TypedDict, total=False):
    """``provider.max_price``: USD per million tokens (prompt, completion) or per unit."""

    prompt: float | str
    completion: float | str
    image: float | str
    audio: float | str
    request: float | str


Percentile = Union[float, dict[str, float]]


class ProviderPreferences(TypedDict, total=False):
    """OpenRouter provider routing preferences (the ``provider`` field)."""

    order: list[str]
    allow_fallbacks: bool
    require_parameters: bool
    data_collection: Literal["allow", "deny"]
    zdr: bool
    enforce_distillable_text: bool
    only: list[str]
    ignore: list[str]
    quantizations: list[str]
    sort: Literal["price", "throughput", "latency", "exacto"] | SortSpec
    preferred_min_throughput: Percentile
    preferred_max_latency: Percentile
    max_price: MaxPrice


class ChatRequest(TypedDict, total=False):
    """An OpenAI Chat Completions request with OpenRouter's routing extensions."""

    model: str
    models: list[str]
    messages: Required[list[Message]]
    provider: ProviderPreferences
    route: Literal["fallback", "sort"]
    stream: bool
    stream_options: dict[str, JSON]
    tools: list[dict[str, JSON]]
    tool_choice: JSON
    response_format: dict[str, JSON]
    max_tokens: int
    max_completion_tokens: int
    temperature: float
    top_p: float
    stop: str | list[str]
    seed: int
    user: str
    session_id: str
    prompt_cache_key: str
    service_tier: str
    plugins: list[dict[str, JSON]]
    reasoning: dict[str, JSON]


class CredentialSettings(TypedDict, total=False):
    """One credential of a provider's pool: ``{"key": ..., "weight": 2, "models": ["openai/gpt-4o"]}``."""

    key: str
    weight: int
    models: list[str]


class ProviderSettings(TypedDict, total=False):
    """How to reach one provider: ``Router(providers={"openai": {...}})``."""

    api_key: str
    base_url: str
    headers: dict[str, str]
    no_auth: bool
    timeout: float
    connect_timeout: float
    first_token_timeout: float
    idle_timeout: float
    timeouts: dict[str, int]
    region: str
    aws_profile: str
    project: str
    location: str
    credentials_file: str
    token_uri: str
    resource: str
    deployment: str
    deployments: dict[str, str]
    api_version: str
    azure_api: str
    azure_ad_token: str
    api_keys: list[str]
    credentials: list[CredentialSettings]


# ---------------------------------------------------------------- plans


class UnitPrices(TypedDict):
    """USD per million tokens (prompt, completion) and per request, as decimal strings."""

    prompt: str
    completion: str
    request: str


class ResolvedModel(TypedDict):
    """How a requested model string became a catalog model."""

    requested: str
    id: str
    strategy: Literal["direct", "alias", "latest", "auto", "pareto", "free"]
    variant: NotRequired[Literal["nitro", "floor", "exacto"]]


class Attempt(TypedDict):
    """One planned provider attempt."""

    model: str
    provider: str
    provider_name: str
    endpoint: str
    upstream_model: str
    dialect: Literal["openai", "anthropic", "gemini"]
    prices: UnitPrices
    context_length: int
    max_completion_tokens: NotRequired[int]
    reason: str
    model_index: int


class Exclusion(TypedDict):
    """An endpoint left out of the plan, with the first hard filter that removed it."""

    model: str
    endpoint: str
    reason: str
    detail: str


class Plan(TypedDict):
    """An ordered fallback plan (``Router.plan``)."""

    requested_models: list[str]
    models: list[ResolvedModel]
    router: NotRequired[dict[str, JSON]]
    strategy: str
    attempts: list[Attempt]
    excluded: list[Exclusion]
    primary_prices: UnitPrices
    worst_case_prices: UnitPrices
    fallback_costs_more: bool


# ---------------------------------------------------------------- usage and cost


class Usage(TypedDict, total=False):
    """Token usage; ``prompt_tokens`` includes cache reads and writes, ``completion_tokens`` reasoning."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]
    completion_tokens_details: dict[str, int]
    images: int
    web_search_requests: int
    requests: int
    cost: float | str
    cost_details: CostDetails


class CostDetails(TypedDict, total=False):
    """``usage.cost_details`` in OpenRouter's shape (USD numbers); the itemized decimal breakdown is on the
    generation record (``Generation.cost_details``)."""

    upstream_inference_cost: float | None
    upstream_inference_prompt_cost: Required[float]
    upstream_inference_completions_cost: Required[float]
    server_tool_cost: float | None


class CostBreakdown(TypedDict):
    """Itemized cost in USD, as exact decimal strings (``Router.cost``)."""

    prompt: str
    cache_read: str
    cache_write: str
    completion: str
    reasoning: str
    request: str
    image: str
    web_search: str
    total: str
    insured: bool
    overrides_applied: list[int]


# ---------------------------------------------------------------- catalog


class ModelArchitecture(TypedDict, total=False):
    """``architecture`` of a model row."""

    modality: str | None
    input_modalities: list[str]
    output_modalities: list[str]
    tokenizer: str | None
    instruct_type: str | None


class ModelPricing(TypedDict, total=False):
    """Unit prices of a model or endpoint, USD per token (decimal strings)."""

    prompt: Required[str]
    completion: Required[str]
    request: str
    image: str
    web_search: str
    internal_reasoning: str
    input_cache_read: str
    input_cache_write: str
    discount: float


class Model(TypedDict, total=False):
    """A catalog model: the OpenRouter ``/api/v1/models`` row plus its provider ``endpoints``."""

    id: Required[str]
    canonical_slug: str | None
    name: str | None
    created: int
    context_length: int | None
    architecture: ModelArchitecture
    pricing: ModelPricing
    top_provider: dict[str, JSON]
    supported_parameters: list[str]
    default_parameters: dict[str, JSON]
    reasoning: dict[str, JSON]
    endpoints: list[dict[str, JSON]]


# ---------------------------------------------------------------- responses


class Choice(TypedDict, total=False):
    """A choice of a chat completion."""

    index: int
    message: dict[str, JSON]
    finish_reason: str | None
    native_finish_reason: str | None
    logprobs: JSON


class ChatCompletion(TypedDict, total=False):
    """An OpenAI-shaped chat completion (``Router.chat``)."""

    id: Required[str]
    object: Literal["chat.completion"]
    created: int
    model: str
    provider: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None
    openrouter_metadata: dict[str, JSON]
    """With ``metadata=True``: OpenRouter's ``openrouter_metadata`` (requested, strategy, summary, attempts, ...)."""


class Embedding(TypedDict):
    """One vector of ``Router.embeddings``: floats, or base64 of little-endian float32 (``encoding_format``)."""

    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(TypedDict, total=False):
    """Input tokens and their cost (USD)."""

    prompt_tokens: Required[int]
    total_tokens: int
    cost: float


class Embeddings(TypedDict, total=False):
    """An OpenAI-shaped embeddings answer (``Router.embeddings``); ``id`` is the ledger's ``gen-...`` id."""

    id: Required[str]
    object: Literal["list"]
    data: Required[list[Embedding]]
    model: str
    provider: str
    usage: EmbeddingUsage


class ChunkChoice(TypedDict, total=False):
    """A choice of a streamed chunk."""

    index: int
    delta: dict[str, JSON]
    finish_reason: str | None
    native_finish_reason: str | None


class ChatCompletionChunk(TypedDict, total=False):
    """One streamed chunk (``Router.stream``)."""

    id: Required[str]
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    provider: str
    choices: list[ChunkChoice]
    usage: Usage
    system_fingerprint: str
    error: dict[str, JSON]
    openrouter_metadata: dict[str, JSON]


class Generation(TypedDict, total=False):
    """The ledger record of a generation (``Router.generation``)."""

    id: Required[str]
    model: str
    provider: str
    cost: str
    """Total cost in USD (decimal string)."""
    usage: Usage
    cost_details: CostBreakdown
    streamed: bool
    cancelled: bool
    """The caller went away before the answer ended; billed for what the provider produced."""
    latency_ms: float
    overhead_ms: float
    """Milliseconds polyroute itself spent (the total minus waiting on providers, the caller and backoff)."""


# ---------------------------------------------------------------- errors


class AttemptRecord(TypedDict):
    """One provider attempt kept in an error."""

    model: str
    provider: str
    endpoint: str
    status: int
    code: str
    retry_after: NotRequired[float]
    latency_ms: NotRequired[float]


class Availability(TypedDict, total=False):
    """Why nothing could serve a request."""

    code: Required[str]
    retryable: Required[bool]
    requested_models: list[str]
    fallback_models: list[str]
    affected_providers: list[str]
    excluded_by: list[str]
    excluded: list[Exclusion]
    retry_after: float


class ErrorBody(TypedDict):
    """The ``error`` member of the envelope."""

    code: int
    message: str
    metadata: dict[str, JSON]
    availability: NotRequired[Availability]


class ErrorEnvelope(TypedDict):
    """The OpenRouter error envelope."""

    error: ErrorBody


# ---------------------------------------------------------------- other API surfaces


class MessagesRequest(TypedDict, total=False):
    """An Anthropic Messages request (``Router.messages``), with OpenRouter's ``models`` and ``provider``."""

    model: str
    models: list[str]
    provider: ProviderPreferences
    max_tokens: Required[int]
    system: str | list[dict[str, JSON]]
    messages: Required[list[dict[str, JSON]]]
    tools: list[dict[str, JSON]]
    tool_choice: dict[str, JSON]
    thinking: dict[str, JSON]
    output_config: dict[str, JSON]
    stop_sequences: list[str]
    stream: bool


class AnthropicMessage(TypedDict, total=False):
    """An Anthropic Messages answer (``Router.messages``); ``usage.cost`` is polyroute's cost in USD."""

    id: Required[str]
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    provider: str
    content: list[dict[str, JSON]]
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, JSON]


class ResponsesRequest(TypedDict, total=False):
    """An OpenAI Responses request (``Router.responses``); stateless: no ``previous_response_id``, no ``store``."""

    model: str
    models: list[str]
    provider: ProviderPreferences
    input: Required[str | list[dict[str, JSON]]]
    instructions: str
    tools: list[dict[str, JSON]]
    tool_choice: str | dict[str, JSON]
    text: dict[str, JSON]
    reasoning: dict[str, JSON]
    max_output_tokens: int
    stream: bool


class Response(TypedDict, total=False):
    """An OpenAI Responses ``response`` object (``Router.responses``); ``usage.cost`` is the cost in USD."""

    id: Required[str]
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    provider: str
    output: list[dict[str, JSON]]
    incomplete_details: dict[str, JSON] | None
    usage: dict[str, JSON]


class SurfaceEvent(TypedDict, total=False):
    """One event of a streamed Messages or Responses request; ``type`` is the event name."""

    type: Required[str]

