//! The `Router` class and the `ChatStream` async iterator: each method calls the engine and maps its error.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncGenerator, Env, Object};
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::batch::Batches;
use crate::convert::{self, ChatCompletionChunk, ModelFilters, RequestOptions, Settled};
use crate::errors;
use crate::hooks::JsHooks;
use crate::http::HttpAnswer;

/// The routing engine: one long-lived, immutable router per process is the intended use; share it freely.
#[napi]
pub struct Router {
    pub(crate) inner: polyroute::Router,
    /// The HTTP surface over `inner`, built on first use.
    pub(crate) api: std::sync::OnceLock<polyroute::HttpApi>,
    /// The endpoint routes `planCompact` has named.
    pub(crate) routes: crate::plan::Routes,
}

#[napi]
impl Router {
    /// Build a router from a catalog (file path, JSON text, object, or the embedded default), an optional overlay
    /// and provider settings. Throws `PolyrouteError` (`invalid_catalog`, `invalid_request`, `internal`).
    #[napi(
        constructor,
        ts_args_type = "options?: RouterOptions | undefined | null"
    )]
    pub fn new(env: Env, options: Option<Value>, hooks: Option<Object<'_>>) -> napi::Result<Self> {
        // `hooks` comes from the package entry, which takes it out of `options` (see `hooks.rs`).
        let hooks = JsHooks::from_js(hooks)?.map(|h| Arc::new(h) as Arc<dyn polyroute::Hooks>);
        let inner = convert::router(options, hooks).map_err(|e| errors::to_napi(&env, &e))?;
        Ok(Self {
            inner,
            api: std::sync::OnceLock::new(),
            routes: crate::plan::Routes::default(),
        })
    }

    /// The router's metrics: `{name: {type, help, samples: [{labels, value}]}}` (a histogram sample has `count`,
    /// `sum` and `buckets` instead of `value`).
    #[napi(ts_return_type = "Record<string, MetricFamily>")]
    pub fn metrics(&self) -> Value {
        self.inner.metrics().snapshot()
    }

    /// The router's metrics in the Prometheus text exposition format (to serve from the application's own
    /// `/metrics`).
    #[napi]
    pub fn metrics_text(&self) -> String {
        self.inner.metrics().render()
    }

    /// Export the finished trace spans now (with `telemetry` configured; otherwise they go in batches).
    #[napi]
    pub async fn flush_telemetry(&self) {
        let r = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || r.flush_telemetry()).await;
    }

    /// The plan as JSON text, from the request as JSON text: the form `plan` uses (one parse on each side is
    /// cheaper than converting the objects property by property).
    #[napi(ts_args_type = "request: string, context?: PlanContextOptions")]
    pub fn plan_json(
        &self,
        env: Env,
        request: String,
        context: Option<Value>,
    ) -> napi::Result<String> {
        convert::plan_text(&self.inner, &request, context).map_err(|e| errors::to_napi(&env, &e))
    }

    /// Exact cost in USD (decimal strings) of `usage` on `model`, served by `provider` (slug, tag or display
    /// name) or at the model-level price.
    #[napi(
        ts_args_type = "model: string, usage: Usage, provider?: string | null, context?: CostContextOptions",
        ts_return_type = "CostBreakdown"
    )]
    pub fn cost(
        &self,
        env: Env,
        model: String,
        usage: Value,
        provider: Option<String>,
        context: Option<Value>,
    ) -> napi::Result<Value> {
        match context.filter(|c| !c.is_null()) {
            None => self.inner.cost(&model, &usage, provider.as_deref()),
            Some(c) => convert::cost_with(&self.inner, &model, &usage, provider.as_deref(), &c),
        }
        .map_err(|e| errors::to_napi(&env, &e))
    }

    /// Catalog models (OpenRouter `/api/v1/models` rows plus `endpoints`) passing every given filter.
    #[napi(ts_return_type = "Array<Model>")]
    pub fn models(&self, env: Env, filters: Option<ModelFilters>) -> napi::Result<Vec<Value>> {
        self.inner
            .models(&convert::model_filter(filters))
            .map_err(|e| errors::to_napi(&env, &e))
    }

    /// A chat completion: routed, failed over, billed. Rejects with `PolyrouteError`.
    #[napi(
        ts_args_type = "request: ChatRequest, options?: RequestOptions",
        ts_return_type = "Promise<ChatCompletion>"
    )]
    pub async fn chat(
        &self,
        request: Value,
        options: Option<RequestOptions>,
    ) -> napi::Result<Settled> {
        let ctx = convert::request_context(options);
        Ok(Settled(self.inner.chat_with(request, &ctx).await))
    }

    /// Embeddings (`input` strings or token arrays; `dimensions`, `encoding_format`, `provider`, `models`): routed,
    /// failed over, billed like a completion. Rejects with `PolyrouteError`.
    #[napi(
        ts_args_type = "request: EmbeddingsRequest, options?: RequestOptions",
        ts_return_type = "Promise<Embeddings>"
    )]
    pub async fn embeddings(
        &self,
        request: Value,
        options: Option<RequestOptions>,
    ) -> napi::Result<Settled> {
        let ctx = convert::request_context(options);
        Ok(Settled(self.inner.embeddings_with(request, &ctx).await))
    }

    /// A streamed chat completion: an async iterable of `chat.completion.chunk` objects, the last carrying
    /// `usage` with `cost`. Breaking out of the loop cancels the upstream request.
    #[napi(ts_args_type = "request: ChatRequest, options?: RequestOptions")]
    pub fn stream(&self, request: Value, options: Option<RequestOptions>) -> ChatStream {
        let ctx = convert::request_context(options);
        // The SSE form: the engine writes each chunk's JSON text directly (no chunk values), and the batches
        // pass that text through to JavaScript (see batch.rs).
        let s = napi::bindgen_prelude::within_runtime_if_available(|| {
            self.inner.chat_stream_events(request, ctx)
        });
        ChatStream {
            inner: Arc::new(Mutex::new(Batches::sse(s))),
        }
    }

    /// One request through the engine's OpenRouter HTTP surface, the one the gateway serves (`router.fetch` builds
    /// a WHATWG `Response` from the answer): `target` is the path with its query under any base (`/api/v1/models`).
    #[napi(
        ts_args_type = "method: string, target: string, headers: Array<[string, string]>, body?: string | null"
    )]
    pub async fn http(
        &self,
        method: String,
        target: String,
        headers: Vec<Vec<String>>,
        body: Option<String>,
    ) -> HttpAnswer {
        let api = self
            .api
            .get_or_init(|| polyroute::HttpApi::new(self.inner.clone()));
        crate::http::handle(api, method, target, headers, body).await
    }

    /// `router.fetch`'s native call (internal): headers as one `name\nvalue\n…` text, the body as text or
    /// bytes; answers `{ status, headers (flat), body: Buffer | null, stream: HttpAnswer | null }`.
    #[napi(skip_typescript)]
    pub async fn fetch_call(
        &self,
        method: String,
        target: String,
        headers: String,
        body: Option<napi::bindgen_prelude::Either<String, napi::bindgen_prelude::Buffer>>,
    ) -> crate::http::FetchReply {
        let api = self
            .api
            .get_or_init(|| polyroute::HttpApi::new(self.inner.clone()));
        crate::http::fetch(api, method, target, headers, body).await
    }

    /// The plan in the compact form of `plan.rs` (internal: `router.plan` builds the plan object from it).
    #[napi(skip_typescript)]
    pub fn plan_compact(
        &self,
        env: Env,
        request: String,
        context: Option<Value>,
    ) -> napi::Result<String> {
        crate::plan::plan_compact(&self.inner, &self.routes, &request, context)
            .map_err(|e| errors::to_napi(&env, &e))
    }

    /// The plan as numbers written into `out` (`[head, (route, reason, model index) × attempts]`; see plan.rs),
    /// answering how many numbers it takes (more than `out` holds: nothing was written, call again with room),
    /// or the compact JSON text when its head is not numbered (internal: `router.plan`).
    #[napi(skip_typescript)]
    pub fn plan_into(
        &self,
        env: Env,
        request: String,
        context: Option<Value>,
        mut out: napi::bindgen_prelude::Uint32ArraySlice<'_>,
    ) -> napi::Result<napi::bindgen_prelude::Either<u32, String>> {
        // SAFETY: the slice is the caller's `Uint32Array`, written only here, synchronously on the JavaScript
        // thread, while no JavaScript runs.
        let buf = unsafe { out.as_mut() };
        let req = crate::plan::request(&request);
        match crate::plan::plan_into(&self.inner, &self.routes, req, context, buf) {
            Ok(crate::plan::Planned::Numbers(n)) => Ok(napi::bindgen_prelude::Either::A(n)),
            Ok(crate::plan::Planned::Text(t)) => Ok(napi::bindgen_prelude::Either::B(t)),
            Err(e) => Err(errors::to_napi(&env, &e)),
        }
    }

    /// [`Self::plan_into`] for a request given as its strings (see `plan::request_from_parts`: `model`,
    /// `messages` as `[role, content, …]`, `max_tokens` or null), which `router.plan` passes instead of the
    /// JSON text when the request holds nothing else (internal).
    #[napi(skip_typescript)]
    pub fn plan_parts(
        &self,
        env: Env,
        model: String,
        messages: Vec<String>,
        max_tokens: Option<i64>,
        context: Option<Value>,
        mut out: napi::bindgen_prelude::Uint32ArraySlice<'_>,
    ) -> napi::Result<napi::bindgen_prelude::Either<u32, String>> {
        // SAFETY: as in `plan_into`.
        let buf = unsafe { out.as_mut() };
        let req = crate::plan::request_from_parts(model, messages, max_tokens);
        match crate::plan::plan_into(&self.inner, &self.routes, req, context, buf) {
            Ok(crate::plan::Planned::Numbers(n)) => Ok(napi::bindgen_prelude::Either::A(n)),
            Ok(crate::plan::Planned::Text(t)) => Ok(napi::bindgen_prelude::Either::B(t)),
            Err(e) => Err(errors::to_napi(&env, &e)),
        }
    }

    /// The JSON text `{"p": plan head, "r": [reasons]}` of a head `planInto` numbered, or null (internal).
    #[napi(skip_typescript)]
    pub fn plan_head(&self, id: u32) -> Option<String> {
        crate::plan::head_text(&self.routes, id)
    }

    /// The JSON text of an endpoint route `planCompact` named, or null (internal).
    #[napi(skip_typescript)]
    pub fn plan_route(&self, id: u32) -> Option<String> {
        crate::plan::route_text(&self.routes, id)
    }

    /// The ledger record of a generation (`gen-…` id from a completion), or `null`.
    #[napi(ts_return_type = "Promise<Generation | null>")]
    pub async fn generation(&self, id: String) -> Option<Value> {
        self.inner.generation(&id).await
    }
}

/// Chunks of a streamed completion (`for await (const chunk of router.stream(request))`).
#[napi(async_iterator)]
pub struct ChatStream {
    pub(crate) inner: Arc<Mutex<Batches>>,
}

#[napi]
impl AsyncGenerator for ChatStream {
    type Yield = ChatCompletionChunk;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<Self::Next>,
    ) -> impl std::future::Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let inner = self.inner.clone();
        async move { Ok(inner.lock().await.next_one().await.map(Settled)) }
    }

    fn complete(
        &mut self,
        _value: Option<Self::Return>,
    ) -> impl std::future::Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            inner.lock().await.close();
            Ok(None)
        }
    }
}

crate::batch::batch_methods!(ChatStream);
