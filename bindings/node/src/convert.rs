//! Every conversion between JavaScript values and the engine's types: router options, plan and cost contexts,
//! model filters, and results that settle as either a value or a thrown `PolyrouteError`.

use napi::bindgen_prelude::{Env, ToNapiValue, TypeName, ValueType};
use napi::sys;
use napi_derive::napi;
use polyroute::{
    ChatRequest, CostInputs, Error as CoreError, PlanInputs, RequestContext, RouterConfig,
};
use serde::Deserialize;
use serde_json::Value;

use crate::errors;

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
    /// The caller's W3C `traceparent` (e.g. from `propagation.inject` of `@opentelemetry/api`): the parent of the
    /// request's span when `telemetry` is configured.
    pub traceparent: Option<String>,
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

/// The router from the JavaScript options: the object is the engine's `RouterConfig` in camelCase (the same
/// keys as Python's `Router(**options)` and the gateway's TOML; unknown keys are refused).
pub fn router(
    options: Option<Value>,
    hooks: Option<std::sync::Arc<dyn polyroute::Hooks>>,
) -> Result<polyroute::Router, CoreError> {
    let config = RouterConfig::from_value(&options.unwrap_or(Value::Null))?;
    let mut b = polyroute::Router::builder().config(&config);
    if let Some(h) = hooks {
        b = b.hooks(h);
    }
    if !config.state.is_empty() {
        // The same stores the gateway opens for the same `state`, on the addon's runtime.
        let shared = napi::bindgen_prelude::block_on(polyroute_stores::open(
            &config.state,
            config.ledger_path.as_deref(),
        ))?;
        if let Some(s) = shared {
            b = b.stores(s.stores);
        }
    }
    napi::bindgen_prelude::within_runtime_if_available(|| b.build())
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
        traceparent: o.traceparent,
        ..RequestContext::default()
    }
}

/// The plan as JSON text. With `context`, the core plan with exactly those inputs; without it, the engine's plan
/// (the router's credentials and observed health).
pub fn plan_text(
    router: &polyroute::Router,
    request: &str,
    context: Option<Value>,
) -> Result<String, CoreError> {
    let value: Value =
        serde_json::from_str(request).map_err(|e| errors::invalid("request", e.to_string()))?;
    let req = ChatRequest::from_value(&value)?;
    let Some(c) = context.filter(|c| !c.is_null()) else {
        let plan = router.plan_request(&req)?;
        return serde_json::to_string(&plan).map_err(|e| CoreError::Internal {
            message: e.to_string(),
        });
    };
    let inputs =
        PlanInputs::deserialize(&c).map_err(|e| errors::invalid("context", e.to_string()))?;
    let plan = router.plan_with(&req, &inputs)?;
    serde_json::to_string(&plan).map_err(|e| CoreError::Internal {
        message: e.to_string(),
    })
}

/// The cost with explicit conditions ([`polyroute::Router::cost_with`], as Python's).
pub fn cost_with(
    router: &polyroute::Router,
    model: &str,
    usage: &Value,
    provider: Option<&str>,
    context: &Value,
) -> Result<Value, CoreError> {
    let inputs =
        CostInputs::deserialize(context).map_err(|e| errors::invalid("context", e.to_string()))?;
    router.cost_with(model, usage, provider, &inputs)
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
