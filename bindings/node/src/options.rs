//! The TypeScript declarations of the option objects (`index.d.ts`): `new Router(options)`, `plan(request,
//! context)`, `cost(…, context)`. The values themselves are read by serde into the engine's one configuration
//! type ([`polyroute::RouterConfig`], camelCase accepted) and its [`polyroute::PlanInputs`] /
//! [`polyroute::CostInputs`], which refuse unknown keys; so these structs are declarations only.
#![allow(dead_code)]

use std::collections::HashMap;

use napi_derive::napi;
use serde_json::Value;

/// How to reach one provider.
#[napi(object)]
#[derive(Default)]
pub struct ProviderOptions {
    /// API key. When absent, the provider's conventional environment variable (`OPENAI_API_KEY`, …) is read.
    pub api_key: Option<String>,
    /// Base URL override: a self-hosted OpenAI-compatible server, a proxy, a test mock.
    pub base_url: Option<String>,
    /// Extra headers sent with every request to this provider.
    pub headers: Option<HashMap<String, String>>,
    /// Treat the provider as credentialed without a key (local servers that need none).
    pub no_auth: Option<bool>,
    /// Timeouts for this provider (default: the router's).
    pub timeouts: Option<TimeoutOptions>,
    /// Azure resource name (Azure OpenAI, Azure AI Foundry); `baseUrl` wins when both are set.
    pub resource: Option<String>,
    /// Azure deployment of every model not in `deployments` (default: the catalog's model id).
    pub deployment: Option<String>,
    /// Azure deployment per model (catalog model id or Azure's model id to deployment name).
    pub deployments: Option<HashMap<String, String>>,
    /// Azure dated `api-version` (`2024-10-21`): selects the dated API; unset: the v1 API.
    pub api_version: Option<String>,
    /// Azure API: `openai` (default) or `foundry` (Azure AI Foundry models).
    pub azure_api: Option<String>,
    /// Microsoft Entra ID access token for Azure, sent as a bearer token instead of `api-key`.
    pub azure_ad_token: Option<String>,
    /// More keys (a pool), tried in order after `apiKey` on 401, 403 and 429 before the next endpoint.
    pub api_keys: Option<Vec<String>>,
    /// Pool credentials with a weight and a model allowlist, after `apiKeys`.
    pub credentials: Option<Vec<CredentialOptions>>,
}

/// One credential of a provider's pool.
#[napi(object)]
#[derive(Default)]
pub struct CredentialOptions {
    /// The key.
    pub key: String,
    /// Weight in a weighted order (default 1); any weight makes the order a weighted draw.
    pub weight: Option<u32>,
    /// Models this key may serve (catalog ids or the provider's ids); absent: every model.
    pub models: Option<Vec<String>>,
}

/// Timeouts in milliseconds; each expiry is a `timeout` outcome and the plan moves on to the next attempt.
#[napi(object)]
#[derive(Default, Clone, Copy)]
pub struct TimeoutOptions {
    /// TCP/TLS connect.
    pub connect_ms: Option<u32>,
    /// From sending the request to the response headers (and, when streaming, the first content token).
    pub first_token_ms: Option<u32>,
    /// Longest silence between two stream chunks.
    pub idle_ms: Option<u32>,
    /// The whole request, across all attempts.
    pub total_ms: Option<u32>,
}

/// Options of `new Router(options)`. Every field is optional.
#[napi(object)]
#[derive(Default)]
pub struct RouterOptions {
    /// The catalog: a file path, JSON text, or a catalog object `{version, providers, models}`.
    /// Default: the catalog embedded in the addon.
    #[napi(ts_type = "string | CatalogFile")]
    pub catalog: Option<Value>,
    /// Merged over the catalog: new models and providers are added, endpoints replaced by tag.
    #[napi(ts_type = "Partial<CatalogFile>")]
    pub overlay: Option<Value>,
    /// Settings per provider slug, e.g. `{ openai: { apiKey: 'sk-…', baseUrl: 'http://127.0.0.1:8000/v1' } }`.
    pub providers: Option<HashMap<String, ProviderOptions>>,
    /// Read provider keys from their conventional environment variables (default `true`).
    pub read_env: Option<bool>,
    /// Router-wide timeouts.
    pub timeouts: Option<TimeoutOptions>,
    /// Extra tries of the same endpoint after an availability failure (default 0).
    pub same_endpoint_retries: Option<u32>,
    /// Base backoff between same-endpoint retries in milliseconds (default 200).
    pub retry_backoff_ms: Option<u32>,
    /// How long a conversation stays on the endpoint that served it, in milliseconds (default 600000).
    pub sticky_ttl_ms: Option<u32>,
    /// Spend and free-tier limits.
    pub limits: Option<LimitOptions>,
    /// Keep generation records in this SQLite file (default: in memory, the newest 10,000).
    pub ledger_path: Option<String>,
    /// Shared state on Valkey/Redis and PostgreSQL (the same stores the gateway's `[state]` opens).
    pub state: Option<StateOptions>,
    /// Functions called for every attempt and every generation, off the request's path.
    #[napi(ts_type = "RouterHooks")]
    pub hooks: Option<Value>,
    /// OpenTelemetry traces (off unless `otlpEndpoint` is set).
    pub telemetry: Option<TelemetryOptions>,
}

/// OpenTelemetry GenAI traces exported over OTLP/HTTP (protobuf) or OTLP/gRPC.
#[napi(object)]
#[derive(Default)]
pub struct TelemetryOptions {
    /// OTLP/HTTP endpoint, e.g. `http://127.0.0.1:4318` (`/v1/traces` is appended).
    pub otlp_endpoint: Option<String>,
    /// `http/protobuf` (the default) or `grpc` (an OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`).
    pub otlp_protocol: Option<String>,
    /// Headers sent with every export (a collector's credentials).
    pub otlp_headers: Option<HashMap<String, String>>,
    /// `service.name` of the exported resource (default `polyroute`).
    pub service_name: Option<String>,
    /// Record prompt and completion content on request spans (default false).
    pub capture_content: Option<bool>,
}

/// Spend limits (USD: a number or a decimal string, read exactly) and free-tier limits.
#[napi(object)]
#[derive(Default)]
pub struct LimitOptions {
    /// Most the whole router may spend.
    #[napi(ts_type = "number | string")]
    pub router_usd: Option<Value>,
    /// Per user key limits.
    #[napi(ts_type = "Record<string, number | string>")]
    pub user_usd: Option<Value>,
    /// Limit of user keys not listed in `userUsd`.
    #[napi(ts_type = "number | string")]
    pub default_user_usd: Option<Value>,
    /// `:free` model requests per minute (per user, or router-wide without one; default 20).
    pub free_per_minute: Option<u32>,
    /// `:free` model requests per UTC day (default 50).
    pub free_per_day: Option<u32>,
    /// Requests per minute of each user, every model (a sliding 60 s window, shared through `state.redis`).
    pub user_rpm: Option<u32>,
    /// Output tokens assumed for the worst-case estimate when a request sets no `max_tokens` (default 4096).
    pub default_output_estimate: Option<u32>,
}

/// Shared state servers.
#[napi(object)]
#[derive(Default)]
pub struct StateOptions {
    /// Valkey/Redis URL: budgets, rate windows, sticky routing, health.
    pub redis: Option<String>,
    /// PostgreSQL URL: the ledger (and the budget when no redis is set).
    pub postgres: Option<String>,
    /// Prefix of every Redis key (default `polyroute`).
    pub redis_prefix: Option<String>,
    /// When the budget's server fails: `closed` (default: the request fails) or `open` (admitted, uncounted).
    pub budget_on_error: Option<String>,
    /// When the rate windows' server fails: `open` (default: admitted uncounted) or `closed`.
    pub rate_on_error: Option<String>,
    /// When the sticky store's server fails: `open` (default: routed without stickiness) or `closed`.
    pub sticky_on_error: Option<String>,
    /// When PostgreSQL fails: `spool` (default: a local fsynced file, replayed when it answers) or `closed`.
    pub ledger_on_error: Option<String>,
    /// The ledger spool file (default: beside `ledgerPath`, else a per-process file in the temporary directory).
    pub spool: Option<String>,
    /// With Redis: apply the budget settles killed processes noted in the ledger, once this old (ms, default
    /// 60000).
    pub settle_sweep_after_ms: Option<u32>,
}

/// Inputs of a plan besides the request (the engine's `PlanInputs`, as Python's `plan(request, **inputs)`): each
/// absent one is the router's own (seed 0, its credentials, its observed health).
#[napi(object)]
#[derive(Default)]
pub struct PlanContextOptions {
    /// Seed of the weighted random order (a non-negative integer; default 0).
    pub seed: Option<i64>,
    /// Health observations keyed by `model@tag` or `tag`.
    #[napi(ts_type = "{ endpoints: Record<string, EndpointHealth> }")]
    pub health: Option<Value>,
    /// Provider slugs that hold credentials (default: the router's).
    pub credentials: Option<Vec<String>>,
    /// Endpoint tag the conversation is stuck to.
    pub sticky: Option<String>,
    /// Model a router (`openrouter/auto`) chose earlier in this session.
    pub previous_model: Option<String>,
}

/// Conditions of a cost computation (the engine's `CostInputs`, as Python's). Without it, cost uses the current UTC
/// time and `finish_reason: "stop"`; with it, an absent `finishReason` is `"stop"` too.
#[napi(object)]
#[derive(Default)]
pub struct CostContextOptions {
    /// Minute of the UTC day (0–1439) for time-window prices; absent = ignore time windows.
    pub utc_minute: Option<u32>,
    /// The response's finish reason (`stop`, `length`, `error`, …); blank or `error` with no completion tokens
    /// applies zero-completion insurance.
    pub finish_reason: Option<String>,
}
