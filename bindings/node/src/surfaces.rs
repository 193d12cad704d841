//! `router.messages` / `router.messagesStream` (Anthropic Messages) and `router.responses` /
//! `router.responsesStream` (OpenAI Responses, stateless): routed, limited and billed as chat.

use std::sync::Arc;

use futures::StreamExt;
use napi::bindgen_prelude::AsyncGenerator;
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::batch::Batches;
use crate::convert::{self, RequestOptions, Settled};
use crate::router::Router;

#[napi]
impl Router {
    /// An Anthropic Messages request (with OpenRouter's `models` and `provider`): the `message`, whose
    /// `usage.cost` is the cost in USD. Rejects with `PolyrouteError` (`invalid_request` names the field).
    #[napi(
        ts_args_type = "request: MessagesRequest, options?: RequestOptions",
        ts_return_type = "Promise<AnthropicMessage>"
    )]
    pub async fn messages(
        &self,
        request: Value,
        options: Option<RequestOptions>,
    ) -> napi::Result<Settled> {
        let ctx = convert::request_context(options);
        Ok(Settled(self.inner.messages(request, &ctx).await))
    }

    /// A streamed Messages request: an async iterable of Anthropic's events (`message_start` … `message_stop`).
    /// An error before any content rejects the first `next()`; later failures are `error` events.
    #[napi(ts_args_type = "request: MessagesRequest, options?: RequestOptions")]
    pub fn messages_stream(
        &self,
        request: Value,
        options: Option<RequestOptions>,
    ) -> SurfaceEvents {
        let ctx = convert::request_context(options);
        SurfaceEvents::new(napi::bindgen_prelude::within_runtime_if_available(|| {
            self.inner.messages_stream(request, ctx)
        }))
    }

    /// An OpenAI Responses request: the `response` object, whose `usage.cost` is the cost in USD. Stateless:
    /// `previous_response_id` and `store: true` reject with `invalid_request`.
    #[napi(
        ts_args_type = "request: ResponsesRequest, options?: RequestOptions",
        ts_return_type = "Promise<ResponseObject>"
    )]
    pub async fn responses(
        &self,
        request: Value,
        options: Option<RequestOptions>,
    ) -> napi::Result<Settled> {
        let ctx = convert::request_context(options);
        Ok(Settled(self.inner.responses(request, &ctx).await))
    }

    /// A streamed Responses request: an async iterable of the Responses events (`response.created` …
    /// `response.completed`).
    #[napi(ts_args_type = "request: ResponsesRequest, options?: RequestOptions")]
    pub fn responses_stream(
        &self,
        request: Value,
        options: Option<RequestOptions>,
    ) -> SurfaceEvents {
        let ctx = convert::request_context(options);
        SurfaceEvents::new(napi::bindgen_prelude::within_runtime_if_available(|| {
            self.inner.responses_stream(request, ctx)
        }))
    }
}

/// One streamed event (typed `SurfaceEvent` in `index.d.ts`).
pub type SurfaceEvent = Settled;

/// Events of a streamed Messages or Responses request; each is an object whose `type` is the event name.
/// Breaking out of the loop cancels the upstream request.
#[napi(async_iterator)]
pub struct SurfaceEvents {
    inner: Arc<Mutex<Batches>>,
}

impl SurfaceEvents {
    fn new(s: polyroute::Result<polyroute::SurfaceStream>) -> Self {
        // A request that did not translate is rejected at the first `next()`.
        let b = match s {
            Ok(s) => Batches::new(Box::pin(s.map(|item| item.map(|e| e.data)))),
            Err(e) => Batches::refused(e),
        };
        Self {
            inner: Arc::new(Mutex::new(b)),
        }
    }
}

#[napi]
impl AsyncGenerator for SurfaceEvents {
    type Yield = SurfaceEvent;
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

crate::batch::batch_methods!(SurfaceEvents);
