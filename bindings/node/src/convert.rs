//! Every conversion between JavaScript values and the engine's types: router options, plan and cost contexts,
//! model filters, and results that settle as either a value or a thrown `PolyrouteError`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use napi::bindgen_prelude::{Env, ToNapiValue, TypeName, ValueType};
use napi::sys;
use napi_derive::napi;
use polyroute::core::cost::{self, CostContext};
use polyroute::core::plan::{self, HealthSnapshot, PlanContext};
use polyroute::{
    ApiKey, Catalog, ChatRequest, Error as CoreError, Options, ProviderSettings, RequestContext,
    RouterBuilder, Timeouts, Usage,
};
use serde_json::Value;

use crate::errors;

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
    /// Keep generation records in this SQLite file (default: in memory, the newest 10,000).
    pub ledger_path: Option<String>,
}

/// Inputs of a plan besides the request. Passing this object plans with exactly these inputs (the conformance
/// cases do); without it the router plans with its own credentials and observed health.
#[napi(object)]
#[derive(Default)]
pub struct PlanContextOptions {
    /// Seed of the weighted random order (default 0).
    pub seed: Option<i64>,
    /// Health observations keyed by `model@tag` or `tag`.
    #[napi(ts_type = "{ endpoints: Record<string, EndpointHealth> }")]
    pub health: Option<Value>,
    /// Provider slugs that hold credentials; absent = do not filter on credentials.
    pub credentials: Option<Vec<String>>,
    /// Endpoint tag the conversation is stuck to.
    pub sticky: Option<String>,
    /// Model a router (`openrouter/auto`) chose earlier in this session.
    pub previous_model: Option<String>,
}

/// Conditions of a cost computation. Without it, cost uses the current UTC time and `finish_reason: "stop"`.
#[napi(object)]
#[derive(Default)]
pub struct CostContextOptions {
    /// Minute of the UTC day (0–1439) for time-window prices; absent = ignore time windows.
    pub utc_minute: Option<u32>,
    /// The response's finish reason (`stop`, `length`, `error`, …); blank or `error` with no completion tokens
    /// applies zero-completion insurance.
    pub finish_reason: Option<String>,
}

/// Facts about the caller of one request (`router.chat(request, options)`, `router.stream(request, options)`).
#[napi(object)]
#[derive(Default)]
pub struct RequestOptions {
    /// User key the generation is billed to (spend limits, free-tier limits).
    pub user: Option<String>,
    /// Session id for sticky routing (what the `x-session-id` header carries).
    pub session_id: Option<String>,
    /// `HTTP-Referer` of the calling app (attribution).
    pub http_referer: Option<String>,
    /// `X-Title` of the calling app (attribution).
    pub title: Option<String>,
    /// Add `openrouter_metadata` (strategy and every attempt) to the response.
    pub metadata: Option<bool>,
}

/// Filters of `router.models(filters)`; every given filter must pass.
#[napi(object)]
#[derive(Default)]
pub struct ModelFilters {
    /// Accepts this input modality (`text`, `image`, `audio`, `file`, `video`).
    pub input_modality: Option<String>,
    /// Produces this output modality (`text`, `image`, …).
    pub output_modality: Option<String>,
    /// Supports every one of these parameters (`tools`, `response_format`, …).
    pub supported_parameters: Option<Vec<String>>,
    /// Served by this provider (slug or display name).
    pub provider: Option<String>,
    /// Model-level prompt price at most this, USD per million tokens (a number or a decimal string).
    #[napi(ts_type = "number | string")]
    pub max_prompt_price: Option<Value>,
    /// Only free models (`true`) or only paid ones (`false`).
    pub free: Option<bool>,
    /// Case-insensitive substring of the id or name.
    pub search: Option<String>,
}

fn timeouts(base: Timeouts, t: Option<TimeoutOptions>) -> Timeouts {
    let Some(t) = t else { return base };
    let ms = |v: Option<u32>, d: Duration| v.map_or(d, |v| Duration::from_millis(u64::from(v)));
    Timeouts {
        connect: ms(t.connect_ms, base.connect),
        first_token: ms(t.first_token_ms, base.first_token),
        idle: ms(t.idle_ms, base.idle),
        total: ms(t.total_ms, base.total),
    }
}

/// A router builder from the JavaScript options.
pub fn builder(options: Option<RouterOptions>) -> Result<RouterBuilder, CoreError> {
    let o = options.unwrap_or_default();
    let mut b = polyroute::Router::builder();
    match o.catalog {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim_start().starts_with('{') => b = b.catalog_json(s),
        Some(Value::String(path)) => b = b.catalog_file(path),
        Some(v @ Value::Object(_)) => b = b.catalog(Catalog::from_value(&v)?),
        Some(_) => {
            return Err(errors::invalid(
                "catalog",
                "expected a path, JSON text or a catalog object",
            ))
        }
    }
    if let Some(ov) = o.overlay {
        b = b.overlay(ov);
    }
    let defaults = Options::default();
    let router_timeouts = timeouts(defaults.timeouts, o.timeouts);
    b = b.options(Options {
        timeouts: router_timeouts,
        same_endpoint_retries: o
            .same_endpoint_retries
            .unwrap_or(defaults.same_endpoint_retries),
        read_env: o.read_env.unwrap_or(defaults.read_env),
        ..defaults
    });
    for (slug, p) in o.providers.unwrap_or_default() {
        let mut s = ProviderSettings {
            api_key: p.api_key.map(ApiKey::new),
            base_url: p.base_url,
            no_auth: p.no_auth.unwrap_or(false),
            timeouts: p.timeouts.map(|t| timeouts(router_timeouts, Some(t))),
            ..ProviderSettings::default()
        };
        for (name, value) in p.headers.unwrap_or_default() {
            s = s.header(name, value);
        }
        b = b.provider(slug, s);
    }
    if let Some(path) = o.ledger_path {
        b = b.ledger_path(path);
    }
    Ok(b)
}

/// The engine's request context from the JavaScript options.
pub fn request_context(o: Option<RequestOptions>) -> RequestContext {
    let o = o.unwrap_or_default();
    RequestContext {
        http_referer: o.http_referer,
        title: o.title,
        user: o.user,
        session_id: o.session_id,
        metadata: o.metadata.unwrap_or(false),
        ..RequestContext::default()
    }
}

/// The plan as JSON text. With `context`, the core plan with exactly those inputs; without it, the engine's plan
/// (the router's credentials and observed health).
pub fn plan_text(
    router: &polyroute::Router,
    request: &str,
    context: Option<PlanContextOptions>,
) -> Result<String, CoreError> {
    let value: Value =
        serde_json::from_str(request).map_err(|e| errors::invalid("request", e.to_string()))?;
    let req = ChatRequest::from_value(&value)?;
    let Some(c) = context else {
        let plan = router.plan_request(&req)?;
        return serde_json::to_string(&plan).map_err(|e| CoreError::Internal {
            message: e.to_string(),
        });
    };
    let health: HealthSnapshot = match c.health {
        None | Some(Value::Null) => HealthSnapshot::default(),
        Some(h) => serde_json::from_value(h)
            .map_err(|e| errors::invalid("context.health", e.to_string()))?,
    };
    let credentials: Option<BTreeSet<String>> = c.credentials.map(|v| v.into_iter().collect());
    let ctx = PlanContext {
        seed: c.seed.map_or(0, |s| s.unsigned_abs()),
        health: &health,
        credentials: credentials.as_ref(),
        sticky: c.sticky.as_deref(),
        previous_router_model: c.previous_model.as_deref(),
    };
    let plan = plan::plan(router.catalog(), &req, &ctx)?;
    serde_json::to_string(&plan).map_err(|e| CoreError::Internal {
        message: e.to_string(),
    })
}

/// The core cost with explicit conditions.
pub fn cost_with(
    catalog: &Catalog,
    model: &str,
    usage: Value,
    provider: Option<&str>,
    c: CostContextOptions,
) -> Result<Value, CoreError> {
    let pricing = catalog.pricing_for(model, provider)?;
    let usage: Usage =
        serde_json::from_value(usage).map_err(|e| errors::invalid("usage", e.to_string()))?;
    let ctx = CostContext {
        utc_minute: c.utc_minute.and_then(|m| u16::try_from(m).ok()),
        finish_reason: c.finish_reason.as_deref(),
    };
    serde_json::to_value(cost::cost(pricing, &usage, ctx)).map_err(|e| CoreError::Internal {
        message: e.to_string(),
    })
}

/// The engine's filter object from the JavaScript filters.
pub fn model_filter(f: Option<ModelFilters>) -> Value {
    let Some(f) = f else { return Value::Null };
    let price = f.max_prompt_price.map(|p| match p {
        Value::Number(n) => Value::String(n.to_string()),
        other => other,
    });
    serde_json::json!({
        "input_modality": f.input_modality,
        "output_modality": f.output_modality,
        "supported_parameters": f.supported_parameters.unwrap_or_default(),
        "provider": f.provider,
        "max_prompt_price": price,
        "free": f.free,
        "search": f.search,
    })
}

/// The attempts an error aggregates, as plain objects.
pub fn attempts(e: &CoreError) -> Value {
    serde_json::to_value(e.attempts()).unwrap_or(Value::Array(Vec::new()))
}

/// One item of a streamed completion (named for the TypeScript declarations).
pub type ChatCompletionChunk = Settled;

/// A JSON value or a core error, settled on the JavaScript thread: the value is returned, the error thrown (or a
/// promise rejected) as a `PolyrouteError`.
pub struct Settled(pub Result<Value, CoreError>);

impl TypeName for Settled {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

// napi's conversion trait is an unsafe FFI entry point; the body only calls napi's own safe-by-contract helpers.
#[allow(unsafe_code)]
impl ToNapiValue for Settled {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.0 {
            // SAFETY: called by napi on the JavaScript thread with a live env.
            Ok(v) => unsafe { Value::to_napi_value(env, v) },
            Err(e) => Err(errors::to_napi(&Env::from_raw(env), &e)),
        }
    }
}
