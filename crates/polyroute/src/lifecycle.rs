//! The request lifecycle behind [`Router::chat`] and [`Router::chat_stream`]: admission
//! ([`crate::admission`]) → the one failover loop ([`crate::failover`]) with a unary or streamed attempt driver
//! ([`crate::attempt`]) → billing ([`crate::billing`]). A stream and a non-streamed request run in their
//! caller's polls and move to a task of their own when their caller leaves ([`Detachable`], [`ChatStream`]), so
//! a caller that goes away (a dropped stream, a cancelled task, a timeout) does not cut billing short: a
//! generation the provider produced is recorded (`cancelled`) and billed, and a request that produced nothing
//! releases its hold.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use polyroute_core::providers::ResponseHints;
use polyroute_core::types::ChatRequest;
use polyroute_core::{Error, Result};
use serde_json::Value;

use crate::admission::Admission;
use crate::attempt::prepare::internal;
use crate::attempt::stream::Streamed;
use crate::attempt::unary::{Answer, Unary};
use crate::billing::Ending;
use crate::chat_stream::{ChatStream, ChunkTx, SseStream};
use crate::config::RequestContext;
use crate::failover::Ended;
use crate::metrics::{requested_model, Metrics};
use crate::otel::ReqSpan;
use crate::router::Router;
use crate::wire;

/// A finished non-streamed answer: a value, or JSON text (an OpenAI-dialect answer passed through).
pub(crate) enum Finished {
    Value(Value),
    Text(Vec<u8>),
}

impl Finished {
    fn into_value(self) -> Value {
        match self {
            Finished::Value(v) => v,
            Finished::Text(t) => serde_json::from_slice(&t).unwrap_or(Value::Null),
        }
    }

    fn into_text(self) -> Vec<u8> {
        match self {
            Finished::Value(v) => serde_json::to_vec(&v).unwrap_or_default(),
            Finished::Text(t) => t,
        }
    }
}

/// A chat request on its way in: the JSON value of the library API, or the request the HTTP surface already
/// parsed from the body ([`ChatRequest::from_slice`]: no `Value` tree is built).
pub(crate) enum ChatInput {
    Json(Value),
    Parsed(Box<ChatRequest>),
}

impl From<Value> for ChatInput {
    fn from(v: Value) -> Self {
        ChatInput::Json(v)
    }
}

impl ChatInput {
    /// The model asked for (metrics): `model`, else the first of `models`.
    fn model(&self) -> String {
        match self {
            ChatInput::Json(v) => requested_model(v),
            ChatInput::Parsed(r) => r
                .model
                .clone()
                .or_else(|| r.models.as_ref().and_then(|m| m.first().cloned()))
                .unwrap_or_default(),
        }
    }

    /// Parsed and validated (the library API's value is parsed here, on the request's task).
    fn into_request(self) -> Result<ChatRequest> {
        match self {
            ChatInput::Json(v) => ChatRequest::from_value(&v),
            ChatInput::Parsed(r) => Ok(*r),
        }
    }
}

/// A request's work, run in its caller's task. When the caller stops waiting (drops this future) before the work
/// is done, `gone` is set and the rest of the work runs on a task of its own: an attempt under way is still
/// recorded and billed, and no further attempt starts. So a request costs no task of its own unless its caller
/// leaves. Resolves to `None` when the work panicked (the caller answers [`panic_error`]).
pub(crate) struct Detachable<T: Send + 'static> {
    work: Option<Pin<Box<dyn Future<Output = std::thread::Result<T>> + Send>>>,
    gone: Arc<AtomicBool>,
}

impl<T: Send + 'static> Detachable<T> {
    pub(crate) fn new(
        gone: Arc<AtomicBool>,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Self {
        // The work is boxed first: the large future is copied once, into its box, and not again with its wrapper.
        Self {
            work: Some(Box::pin(AssertUnwindSafe(Box::pin(work)).catch_unwind())),
            gone,
        }
    }
}

impl<T: Send + 'static> Future for Detachable<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(work) = this.work.as_mut() else {
            return Poll::Ready(None);
        };
        match work.as_mut().poll(cx) {
            Poll::Ready(r) => {
                this.work = None;
                Poll::Ready(r.ok())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Detachable<T> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            self.gone.store(true, Ordering::Relaxed);
            // Outside a runtime (it is shutting down) the work ends here, as a task of that runtime would.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(work);
            }
        }
    }
}

pub(crate) fn panic_error() -> Error {
    internal("the request's task failed unexpectedly")
}

/// How long a request took ([`Router::chat_timed`]) and how much of that polyroute spent waiting: on providers
/// (sending the upstream request and reading its answer), on the caller, and in retry backoff.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// From the call to the answer.
    pub total: Duration,
    /// Waiting on providers, the caller and backoff.
    pub waited: Duration,
}

impl Timing {
    /// The time polyroute itself spent: `total - waited`.
    #[must_use]
    pub fn overhead(&self) -> Duration {
        self.total.saturating_sub(self.waited)
    }
}

/// An admission that reports the time its request waited into `.1` when dropped (on every path out).
struct Tracked<'a>(Admission, &'a mut Duration);

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        *self.1 = self.0.waited.get();
    }
}

impl std::ops::Deref for Tracked<'_> {
    type Target = Admission;
    fn deref(&self) -> &Admission {
        &self.0
    }
}

impl std::ops::DerefMut for Tracked<'_> {
    fn deref_mut(&mut self) -> &mut Admission {
        &mut self.0
    }
}

impl Router {
    /// A chat completion (non-streamed), OpenAI-shaped, with `provider`, a `gen-…` id and `usage.cost`.
    ///
    /// # Errors
    /// Planning errors, limits (`payment_required`, `rate_limited`) before any provider is called, or the
    /// aggregated provider error listing every attempt.
    pub async fn chat(&self, request: Value) -> Result<Value> {
        self.chat_with(request, &RequestContext::default()).await
    }

    /// [`Router::chat`] with caller context (attribution, user key, session, metadata).
    ///
    /// When the caller stops waiting (drops this future, e.g. in a timeout), the request moves to a task of its
    /// own: the attempt under way still finishes and is recorded (`cancelled`) and billed, and no further
    /// attempt is started.
    ///
    /// # Errors
    /// As [`Router::chat`].
    pub async fn chat_with(&self, request: Value, ctx: &RequestContext) -> Result<Value> {
        self.chat_timed(request, ctx).await.0
    }

    /// [`Router::chat_with`] with the request's [`Timing`] (its overhead: what a server reports as
    /// `x-polyroute-overhead-ms`).
    pub async fn chat_timed(
        &self,
        request: Value,
        ctx: &RequestContext,
    ) -> (Result<Value>, Timing) {
        let (r, timing) = self.chat_timed_as(request.into(), ctx, false).await;
        (r.map(Finished::into_value), timing)
    }

    /// [`Router::chat_timed`] as the answer's JSON text. An answer in OpenAI's dialect is passed through as text
    /// with `id`, `model`, `provider` and the billed `usage` spliced in (no `Value` is built) unless traces or
    /// `openrouter_metadata` need the value.
    pub(crate) async fn chat_timed_text(
        &self,
        request: ChatInput,
        ctx: &RequestContext,
    ) -> (Result<Vec<u8>>, Timing) {
        let (r, timing) = self.chat_timed_as(request, ctx, true).await;
        (r.map(Finished::into_text), timing)
    }

    async fn chat_timed_as(
        &self,
        request: ChatInput,
        ctx: &RequestContext,
        text: bool,
    ) -> (Result<Finished>, Timing) {
        let text = text && self.inner.telemetry.is_none() && !ctx.metadata;
        let t0 = Instant::now();
        let gone = Arc::new(AtomicBool::new(false));
        let me = self.clone();
        let ctx = ctx.clone();
        let work = Detachable::new(gone.clone(), async move {
            let _in_flight = Metrics::start(&me.inner);
            let model = request.model();
            let span = me.trace_request(&request, &model, &ctx);
            let mut waited = Duration::ZERO;
            let r = me
                .run_unary(request, &ctx, gone, &mut waited, span.clone(), text)
                .await;
            me.inner.metrics.request_end(&model, &r);
            if let Some(s) = span {
                // Traces are on: the answer is a value (`text` is off).
                s.end(match &r {
                    Ok(Finished::Value(v)) => Ok(v),
                    Ok(Finished::Text(_)) => Ok(&Value::Null),
                    Err(e) => Err(e),
                });
            }
            (r, waited)
        });
        let (r, waited) = work
            .await
            .unwrap_or_else(|| (Err(panic_error()), Duration::ZERO));
        let total = t0.elapsed();
        (r, Timing { total, waited })
    }

    async fn run_unary(
        &self,
        request: ChatInput,
        ctx: &RequestContext,
        gone: Arc<AtomicBool>,
        waited: &mut Duration,
        span: Option<ReqSpan>,
        text: bool,
    ) -> Result<Finished> {
        let t0 = Instant::now();
        let req = request.into_request()?;
        let mut ad = Tracked(self.admit(&req, ctx).await?, waited);
        ad.trace = span;
        let deadline = t0 + self.inner.opts.timeouts.total;
        let mut driver = Unary {
            req: &req,
            gone: gone.clone(),
            text,
        };
        match self.failover(&mut ad, &mut driver, deadline).await? {
            Ended::Served {
                attempt,
                out,
                served,
            } => {
                let ending = if gone.load(Ordering::Relaxed) {
                    Ending::Cancelled
                } else {
                    Ending::Complete
                };
                let billed = self
                    .bill(&mut ad, &attempt, &served, &req, false, ending, ctx, t0)
                    .await?;
                match out {
                    Answer::Spliced(s) => {
                        Ok(Finished::Text(s.with_usage_from(|b| billed.write_json(b))))
                    }
                    Answer::Value(mut out) => {
                        out["usage"] = billed.to_value();
                        if ctx.metadata {
                            out["openrouter_metadata"] =
                                Self::metadata(&ad, Some(&attempt), &served.dropped, t0);
                        }
                        Ok(Finished::Value(out))
                    }
                }
            }
            // A unary attempt neither breaks after content nor is abandoned mid-answer; the caller left between
            // attempts: nothing more to bill (the reservation is released when `ad` drops).
            Ended::Broken { failure, .. } => Err(Error::Internal {
                message: failure.outcome.message,
            }),
            Ended::Abandoned { .. } => Err(internal("the caller went away")),
        }
    }

    /// A streamed chat completion: OpenAI `chat.completion.chunk` values; the last one carries `usage` with
    /// `cost`. Fails over only before the first content reaches the caller; afterwards a provider failure ends
    /// the stream with an in-band error chunk. Dropping the stream cancels the upstream request; what the
    /// provider produced up to then is recorded (`cancelled`) and billed.
    pub fn chat_stream(&self, request: Value) -> ChatStream {
        self.chat_stream_with(request, RequestContext::default())
    }

    /// [`Router::chat_stream`] with caller context.
    pub fn chat_stream_with(&self, request: Value, ctx: RequestContext) -> ChatStream {
        let me = self.clone();
        ChatStream::new(move |tx| me.stream_task(request.into(), ctx, tx))
    }

    /// [`Router::chat_stream_with`] as SSE events, `data: {json}\n\n` (several per item), with errors before
    /// any chunk as `Err` (so a server can still answer with their status) and no `[DONE]`. The translators
    /// write the events directly, without building chunk objects: faster than encoding a [`ChatStream`].
    pub fn chat_stream_events(&self, request: Value, ctx: RequestContext) -> SseStream {
        self.chat_stream_input(request.into(), ctx)
    }

    /// [`Router::chat_stream_events`] of a request on its way in (the HTTP surface's, already parsed).
    /// Its work runs inside the stream's polls (no task of its own unless the stream is dropped early).
    pub(crate) fn chat_stream_input(&self, request: ChatInput, ctx: RequestContext) -> SseStream {
        let me = self.clone();
        SseStream::new(move |tx| me.stream_task(request, ctx, tx))
    }

    /// [`Router::chat_stream`] as SSE bytes (`data: {json}\n\n` … `data: [DONE]\n\n`); an error before any
    /// chunk is written as `data: {"error": …}` per the OpenRouter envelope.
    pub fn chat_stream_sse(
        &self,
        request: Value,
        ctx: RequestContext,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        self.chat_stream_events(request, ctx)
            .map(|item| match item {
                Ok(events) => events,
                Err(e) => Bytes::from(format!("data: {}\n\n", e.to_envelope())),
            })
            .chain(futures::stream::once(async {
                Bytes::from_static(b"data: [DONE]\n\n")
            }))
    }

    /// The work of a stream (run inside its reader's polls).
    async fn stream_task(self, request: ChatInput, ctx: RequestContext, tx: ChunkTx) {
        let _in_flight = Metrics::start(&self.inner);
        let model = request.model();
        let span = self.trace_request(&request, &model, &ctx);
        guarded(&tx, async {
            // Boxed: the request's state is most of the work's, and the panic guard's wrappers move what they
            // wrap as they are built: a pointer then, not the whole state (copied three times otherwise).
            let r = Box::pin(self.run_stream(request, &ctx, &tx, span.clone())).await;
            self.inner.metrics.request_end(&model, &r);
            if let Some(s) = &span {
                s.end(r.as_ref().map(|()| &Value::Null));
            }
            r
        })
        .await;
    }

    /// The request's span, when traces are on.
    fn trace_request(
        &self,
        request: &ChatInput,
        model: &str,
        ctx: &RequestContext,
    ) -> Option<ReqSpan> {
        let t = self.inner.telemetry.as_ref()?;
        let parsed;
        let value = match request {
            ChatInput::Json(v) => v,
            ChatInput::Parsed(r) => {
                parsed = serde_json::to_value(r).unwrap_or(Value::Null);
                &parsed
            }
        };
        Some(t.request(value, model, ctx.traceparent.as_deref()))
    }

    async fn run_stream(
        &self,
        request: ChatInput,
        ctx: &RequestContext,
        tx: &ChunkTx,
        span: Option<ReqSpan>,
    ) -> Result<()> {
        let t0 = Instant::now();
        let req = request.into_request()?;
        let mut ad = self.admit(&req, ctx).await?;
        ad.trace = span;
        let deadline = t0 + self.inner.opts.timeouts.total;
        let mut driver = Streamed { req: &req, tx };
        match self.failover(&mut ad, &mut driver, deadline).await? {
            Ended::Served {
                attempt, served, ..
            } => {
                let billed = self
                    .bill(
                        &mut ad,
                        &attempt,
                        &served,
                        &req,
                        true,
                        Ending::Complete,
                        ctx,
                        t0,
                    )
                    .await?;
                let meta = ctx
                    .metadata
                    .then(|| Self::metadata(&ad, Some(&attempt), &served.dropped, t0));
                let _ = tx
                    .usage_chunk(&Self::chunk_ids(&ad, &attempt), &billed, meta)
                    .await;
            }
            Ended::Broken {
                attempt,
                failure,
                partial,
                err_chunk,
            } => {
                // Content already reached the caller: no failover; bill what was generated, end in-band with
                // the error chunk, then the usage chunk of what was billed (as a finished stream's last chunk).
                let usage = self
                    .bill(
                        &mut ad,
                        &attempt,
                        &partial,
                        &req,
                        true,
                        Ending::Complete,
                        ctx,
                        t0,
                    )
                    .await;
                let chunk = err_chunk.unwrap_or_else(|| {
                    wire::error_chunk(
                        &Self::response_ctx(&ad, &attempt, ResponseHints::default()),
                        &failure.envelope,
                    )
                });
                let _ = tx.chunk(chunk).await;
                if let Ok(billed) = usage {
                    let meta = ctx
                        .metadata
                        .then(|| Self::metadata(&ad, Some(&attempt), &partial.dropped, t0));
                    let _ = tx
                        .usage_chunk(&Self::chunk_ids(&ad, &attempt), &billed, meta)
                        .await;
                }
            }
            Ended::Abandoned {
                attempt,
                partial: Some(p),
            } => {
                self.bill(
                    &mut ad,
                    &attempt,
                    &p,
                    &req,
                    true,
                    Ending::Cancelled,
                    ctx,
                    t0,
                )
                .await?;
            }
            // Nothing produced: the reservation is released when `ad` drops.
            Ended::Abandoned { partial: None, .. } => {}
        }
        Ok(())
    }
}

/// Run a stream's work; an error, or a panic, ends the stream with an error item (in-band: the caller
/// never sees a stream that just stops).
async fn guarded(tx: &ChunkTx, body: impl std::future::Future<Output = Result<()>>) {
    match AssertUnwindSafe(body).catch_unwind().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tx.error(e).await,
        Err(_) => tx.error(panic_error()).await,
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn detached_work_finishes_after_its_caller_leaves() {
        let gone = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let seen = gone.clone();
        let work = Detachable::new(gone.clone(), async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = tx.send(seen.load(Ordering::Relaxed));
        });
        // The caller gives up first: the flag is up, and the work still runs to its end and sees it.
        assert!(tokio::time::timeout(Duration::from_millis(1), work)
            .await
            .is_err());
        assert!(gone.load(Ordering::Relaxed));
        let saw_gone = tokio::time::timeout(Duration::from_secs(5), rx).await;
        assert_eq!(saw_gone.ok().and_then(Result::ok), Some(true));
        // A caller that waits gets the answer, and the flag stays down.
        let stays = Arc::new(AtomicBool::new(false));
        assert_eq!(Detachable::new(stays.clone(), async { 7 }).await, Some(7));
        assert!(!stays.load(Ordering::Relaxed));
        // A panic is `None`, not an unwinding caller.
        let flag = stays.clone();
        let fails = Detachable::new(Arc::new(AtomicBool::new(false)), async move {
            if flag.load(Ordering::Relaxed) {
                return 1;
            }
            panic!("the work failed")
        });
        assert_eq!(fails.await, None);
    }

    #[tokio::test]
    async fn a_panicking_stream_task_ends_with_an_error_item() {
        let first = json!({"choices": [{"delta": {"content": "a"}}]});
        let sent = first.clone();
        let mut stream = ChatStream::new(move |tx| async move {
            guarded(&tx, async {
                assert!(tx.chunk(sent).await);
                if tx.is_closed() {
                    return Ok(());
                }
                panic!("boom");
            })
            .await;
        });
        assert_eq!(stream.next().await.unwrap().unwrap(), first);
        let e = stream.next().await.unwrap().unwrap_err();
        assert_eq!(e.code(), "internal");
        assert!(stream.next().await.is_none());
    }
}
