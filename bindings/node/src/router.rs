//! The `Router` class and the `ChatStream` async iterator: each method calls the engine and maps its error.

use std::sync::Arc;

use futures::StreamExt;
use napi::bindgen_prelude::{AsyncGenerator, Env};
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::convert::{
    self, ChatCompletionChunk, CostContextOptions, ModelFilters, PlanContextOptions, RouterOptions,
    Settled,
};
use crate::errors;

/// The routing engine: one long-lived, immutable router per process is the intended use; share it freely.
#[napi]
pub struct Router {
    inner: polyroute::Router,
}

#[napi]
impl Router {
    /// Build a router from a catalog (file path, JSON text, object, or the embedded default), an optional overlay
    /// and provider settings. Throws `PolyrouteError` (`invalid_catalog`, `invalid_request`, `internal`).
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<RouterOptions>) -> napi::Result<Self> {
        let inner = convert::builder(options)
            .and_then(polyroute::RouterBuilder::build)
            .map_err(|e| errors::to_napi(&env, &e))?;
        Ok(Self { inner })
    }

    /// The ordered attempt plan for a request, with every excluded endpoint and why. With `context`, plans with
    /// exactly those inputs (seed, health, credentials); without it, with this router's credentials and health.
    #[napi(
        ts_args_type = "request: ChatRequest, context?: PlanContextOptions",
        ts_return_type = "Plan"
    )]
    pub fn plan(
        &self,
        env: Env,
        request: Value,
        context: Option<PlanContextOptions>,
    ) -> napi::Result<Value> {
        match context {
            None => self.inner.plan(&request),
            Some(c) => convert::plan_with(self.inner.catalog(), &request, c),
        }
        .map_err(|e| errors::to_napi(&env, &e))
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
        context: Option<CostContextOptions>,
    ) -> napi::Result<Value> {
        match context {
            None => self.inner.cost(&model, &usage, provider.as_deref()),
            Some(c) => {
                convert::cost_with(self.inner.catalog(), &model, usage, provider.as_deref(), c)
            }
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
        ts_args_type = "request: ChatRequest",
        ts_return_type = "Promise<ChatCompletion>"
    )]
    pub async fn chat(&self, request: Value) -> napi::Result<Settled> {
        Ok(Settled(self.inner.chat(request).await))
    }

    /// A streamed chat completion: an async iterable of `chat.completion.chunk` objects, the last carrying
    /// `usage` with `cost`. Breaking out of the loop cancels the upstream request.
    #[napi(ts_args_type = "request: ChatRequest")]
    pub fn stream(&self, request: Value) -> ChatStream {
        let s =
            napi::bindgen_prelude::within_runtime_if_available(|| self.inner.chat_stream(request));
        ChatStream {
            inner: Arc::new(Mutex::new(Some(s))),
        }
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
    inner: Arc<Mutex<Option<polyroute::ChatStream>>>,
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
        async move {
            let mut guard = inner.lock().await;
            let Some(s) = guard.as_mut() else {
                return Ok(None);
            };
            match s.next().await {
                Some(item) => Ok(Some(Settled(item))),
                None => {
                    *guard = None;
                    Ok(None)
                }
            }
        }
    }

    fn complete(
        &mut self,
        _value: Option<Self::Return>,
    ) -> impl std::future::Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            inner.lock().await.take();
            Ok(None)
        }
    }
}
