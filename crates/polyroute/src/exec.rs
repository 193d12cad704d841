//! Executing a plan over HTTP: attempts in plan order, classified outcomes, failover, streaming, billing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use polyroute_core::cost::{self, CostContext};
use polyroute_core::error::AttemptRecord;
use polyroute_core::plan::{Attempt, Next, Outcome, OutcomeClass};
use polyroute_core::types::ChatRequest;
use polyroute_core::{Error, Result, Usage};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::chat_stream::{ChatStream, ChunkTx, SseStream};
use crate::config::RequestContext;
use crate::health::Observation;
use crate::ledger::GenerationRecord;
use crate::router::{utc_minute, Admitted, Router, Upstream};
use crate::secret::scrub;
use crate::wire;
use polyroute_core::providers::{
    self, Credential, ProviderFailure, ResponseContext, ResponseHints, StreamTranslator,
};

fn internal(m: impl Into<String>) -> Error {
    Error::Internal { message: m.into() }
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<f64> {
    let v = h.get("retry-after")?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A finished, successful attempt.
struct Served {
    usage: Usage,
    finish: Option<String>,
    ttft_ms: Option<f64>,
    /// Request parameters the dialect left out for this provider.
    dropped: Vec<String>,
}

/// A request ready to send, and what translating its answer needs.
struct Prepared {
    rb: reqwest::RequestBuilder,
    hints: ResponseHints,
    dropped: Vec<String>,
}

impl Router {
    fn upstream(&self, a: &Attempt) -> Result<&Upstream> {
        self.inner.upstreams.get(&a.provider).ok_or_else(|| {
            internal(format!(
                "no upstream configured for provider {}",
                a.provider
            ))
        })
    }

    #[allow(clippy::result_large_err)]
    fn prepare(
        &self,
        a: &Attempt,
        up: &Upstream,
        req: &ChatRequest,
        stream: bool,
    ) -> std::result::Result<Prepared, ProviderFailure> {
        let opts = wire::translate_options(a, req, stream);
        // The endpoint's own dialect (Claude on Vertex speaks Anthropic on a Gemini-default provider).
        let dialect = a.dialect;
        let native = providers::build_request(dialect, req, &opts).map_err(|e| {
            wire::transport_failure(
                OutcomeClass::InvalidRequest,
                400,
                &e.to_string(),
                &a.provider_name,
            )
        })?;
        let body = native.body.into_bytes();
        let mut rb = match up.endpoint(&native.path) {
            Some(url) => self.http.post(url),
            None => self.http.post(format!("{}{}", up.base_url, native.path)),
        };
        rb = rb.header("content-type", "application/json").body(body);
        if let Some(k) = &up.key {
            match dialect.auth_scheme().credential(k.expose()) {
                Some(Credential::Header(name, value)) => rb = rb.header(name, value),
                Some(Credential::Query(name, value)) => rb = rb.query(&[(name, value)]),
                // A signed scheme (SigV4) needs a signer; plans exclude those dialects until one exists.
                None => {}
            }
        }
        for (k, v) in native.headers.iter().chain(up.headers.iter()) {
            rb = rb.header(k, v);
        }
        Ok(Prepared {
            rb,
            hints: native.hints,
            dropped: native.dropped,
        })
    }

    fn failure_from_reqwest(e: &reqwest::Error, a: &Attempt, up: &Upstream) -> ProviderFailure {
        let class = if e.is_timeout() {
            OutcomeClass::Timeout
        } else {
            OutcomeClass::Overloaded
        };
        let what = if e.is_connect() {
            "connection failed"
        } else if e.is_timeout() {
            "timed out"
        } else {
            "transport error"
        };
        // reqwest errors carry the URL but never headers; scrub anyway.
        let keys: Vec<&crate::secret::ApiKey> = up.key.iter().collect();
        let msg = scrub(&format!("{what}: {e}"), &keys);
        wire::transport_failure(class, 0, &msg, &a.provider_name)
    }

    fn response_ctx(&self, ad: &Admitted, a: &Attempt, hints: ResponseHints) -> ResponseContext {
        ResponseContext {
            id: ad.gen_id.clone(),
            created: u64::try_from(ad.created_ms / 1000).unwrap_or(0),
            model: a.model.clone(),
            provider_name: a.provider_name.clone(),
            hints,
        }
    }

    /// One non-streamed attempt.
    async fn try_unary(
        &self,
        ad: &Admitted,
        a: &Attempt,
        req: &ChatRequest,
        deadline: Instant,
    ) -> std::result::Result<(Value, Served), ProviderFailure> {
        let up = self.upstream(a).map_err(|e| {
            wire::transport_failure(
                OutcomeClass::Overloaded,
                0,
                &e.to_string(),
                &a.provider_name,
            )
        })?;
        let Prepared { rb, hints, dropped } = self.prepare(a, up, req, false)?;
        let t0 = Instant::now();
        let budget = up
            .timeouts
            .first_token
            .min(deadline.saturating_duration_since(t0));
        let resp = match tokio::time::timeout(budget, rb.send()).await {
            Err(_) => {
                return Err(wire::transport_failure(
                    OutcomeClass::Timeout,
                    0,
                    "no response headers before the first-token timeout",
                    &a.provider_name,
                ))
            }
            Ok(Err(e)) => return Err(Self::failure_from_reqwest(&e, a, up)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let ra = retry_after(resp.headers());
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let rest = deadline
            .saturating_duration_since(Instant::now())
            .min(up.timeouts.idle.max(up.timeouts.first_token));
        let body = match tokio::time::timeout(rest, resp.bytes()).await {
            Err(_) => {
                return Err(wire::transport_failure(
                    OutcomeClass::Timeout,
                    status,
                    "response body timed out",
                    &a.provider_name,
                ))
            }
            Ok(Err(e)) => return Err(Self::failure_from_reqwest(&e, a, up)),
            Ok(Ok(b)) => b,
        };
        let ttft = ms(t0.elapsed());
        if !(200..300).contains(&status) {
            let mut f = providers::map_error(a.dialect, status, ra, &body, &a.provider_name);
            f.outcome.retry_after = f.outcome.retry_after.or(ra);
            return Err(f);
        }
        if !ctype.contains("json") {
            return Err(wire::transport_failure(
                OutcomeClass::Overloaded,
                status,
                &format!("unexpected content type {ctype:?}"),
                &a.provider_name,
            ));
        }
        let (value, usage) =
            providers::parse_response(a.dialect, status, &body, &self.response_ctx(ad, a, hints))?;
        let finish = value
            .pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok((
            value,
            Served {
                usage,
                finish,
                ttft_ms: Some(ttft),
                dropped,
            },
        ))
    }

    fn observe(
        &self,
        a: &Attempt,
        outcome: &Outcome,
        ttft_ms: Option<f64>,
        throughput: Option<f64>,
    ) {
        let ok = outcome.class == OutcomeClass::Success;
        let outage = matches!(
            outcome.class,
            OutcomeClass::Overloaded | OutcomeClass::Timeout | OutcomeClass::RateLimited
        );
        self.inner.health.record(
            &format!("{}@{}", a.model, a.tag),
            Observation {
                ok,
                outage,
                ttft_ms: ttft_ms.filter(|_| ok),
                throughput,
            },
        );
    }

    async fn backoff(&self, retry: u32) {
        let base = self.inner.opts.retry_backoff.as_millis() as u64;
        let cap = base.saturating_mul(1 << retry.min(10)).max(1);
        let jitter =
            crate::router::splitmix(crate::router::now_ms() as u64 ^ u64::from(retry)) % cap;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn bill(
        &self,
        ad: &Admitted,
        a: &Attempt,
        served: &Served,
        streamed: bool,
        ctx: &RequestContext,
        records: Vec<AttemptRecord>,
        t0: Instant,
    ) -> Result<Value> {
        let b = cost::cost(
            &a.pricing,
            &served.usage,
            CostContext {
                utc_minute: Some(utc_minute()),
                finish_reason: served.finish.as_deref(),
            },
        );
        let cost_details = serde_json::to_value(&b).unwrap_or(Value::Null);
        let rec = GenerationRecord {
            id: ad.gen_id.clone(),
            created_ms: ad.created_ms,
            model: a.model.clone(),
            provider: a.provider.clone(),
            provider_name: a.provider_name.clone(),
            endpoint: a.tag.clone(),
            streamed,
            usage: served.usage,
            cost: b.total,
            cost_details: cost_details.clone(),
            finish_reason: served.finish.clone(),
            attempts: records,
            app_referer: ctx.http_referer.clone(),
            app_title: ctx.title.clone(),
            user: ctx.user.clone(),
            free: ad.free,
            latency_ms: ms(t0.elapsed()),
            ttft_ms: served.ttft_ms,
            dropped_params: served.dropped.clone(),
        };
        let ledger = self.inner.ledger.clone();
        let res = if ledger.is_blocking() {
            tokio::task::spawn_blocking(move || ledger.insert_owned(rec))
                .await
                .map_err(|e| internal(format!("ledger task: {e}")))?
        } else {
            ledger.insert_owned(rec)
        };
        self.settle(
            ad.reserved,
            ctx.user.as_deref(),
            res.is_ok().then_some(b.total),
        );
        res?;
        self.remember_sticky(ad.sticky_key, &a.tag);
        let mut usage = serde_json::to_value(served.usage).unwrap_or(Value::Null);
        usage["cost"] = json!(b.total.to_string().parse::<f64>().unwrap_or(0.0));
        usage["cost_details"] = cost_details;
        Ok(usage)
    }

    fn metadata(ad: &Admitted, records: &[AttemptRecord], dropped: &[String]) -> Value {
        json!({"generation_id": ad.gen_id, "strategy": ad.plan.strategy, "attempts": records.iter().map(|r| json!({
            "provider": r.provider, "endpoint": r.endpoint, "model": r.model, "status": r.status, "code": r.class.code(),
            "latency_ms": r.latency_ms, "retry_after": r.retry_after})).collect::<Vec<_>>(),
            "dropped_params": dropped})
    }

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
    /// # Errors
    /// As [`Router::chat`].
    pub async fn chat_with(&self, request: Value, ctx: &RequestContext) -> Result<Value> {
        let t0 = Instant::now();
        let req = ChatRequest::from_value(&request)?;
        let mut ad = self.admit(&request, &req, ctx)?;
        let deadline = t0 + self.inner.opts.timeouts.total;
        let Some(mut attempt) = ad.plan.first().cloned() else {
            self.settle(ad.reserved, ctx.user.as_deref(), None);
            return Err(internal("plan has no attempts"));
        };
        loop {
            let mut tries = 0;
            let result = loop {
                let started = Instant::now();
                let r = if Instant::now() >= deadline {
                    Err(wire::transport_failure(
                        OutcomeClass::Timeout,
                        0,
                        "total request timeout",
                        &attempt.provider_name,
                    ))
                } else {
                    self.try_unary(&ad, &attempt, &req, deadline).await
                };
                let lat = ms(started.elapsed());
                match r {
                    Err(mut f)
                        if f.outcome.class.is_availability()
                            && tries < self.inner.opts.same_endpoint_retries
                            && Instant::now() < deadline =>
                    {
                        f.outcome.latency_ms = Some(lat);
                        self.observe(&attempt, &f.outcome, None, None);
                        tries += 1;
                        self.backoff(tries).await;
                    }
                    Err(mut f) => {
                        f.outcome.latency_ms = Some(lat);
                        break Err(f);
                    }
                    Ok(v) => break Ok((v, lat)),
                }
            };
            match result {
                Ok(((mut value, served), lat)) => {
                    let mut ok = Outcome::success(200);
                    ok.latency_ms = Some(lat);
                    let tput = served
                        .ttft_ms
                        .filter(|t| *t > 0.0)
                        .map(|t| served.usage.completion_tokens as f64 / (t / 1000.0));
                    self.observe(&attempt, &ok, served.ttft_ms, tput);
                    let _ = ad.plan.next(&ok);
                    let records = ad.plan.records().to_vec();
                    let usage = match self
                        .bill(&ad, &attempt, &served, false, ctx, records, t0)
                        .await
                    {
                        Ok(x) => x,
                        Err(e) => return Err(e),
                    };
                    value["usage"] = usage;
                    if ctx.metadata {
                        value["router_metadata"] =
                            Self::metadata(&ad, ad.plan.records(), &served.dropped);
                    }
                    return Ok(value);
                }
                Err(f) => {
                    self.observe(&attempt, &f.outcome, None, None);
                    if ad.sticky_key.is_some() && f.outcome.class.is_availability() {
                        self.forget_sticky(ad.sticky_key);
                    }
                    match ad.plan.next(&f.outcome) {
                        Next::Try(a) => attempt = a,
                        Next::Fail(e) => {
                            self.settle(ad.reserved, ctx.user.as_deref(), None);
                            return Err(e);
                        }
                        Next::Done => {
                            self.settle(ad.reserved, ctx.user.as_deref(), None);
                            return Err(internal("plan reported done after a failure"));
                        }
                    }
                }
            }
        }
    }

    /// A streamed chat completion: OpenAI `chat.completion.chunk` values; the last one carries `usage` with
    /// `cost`. Fails over only before the first content reaches the caller; afterwards a provider failure ends
    /// the stream with an in-band error chunk. Dropping the stream cancels the upstream request.
    pub fn chat_stream(&self, request: Value) -> ChatStream {
        self.chat_stream_with(request, RequestContext::default())
    }

    /// [`Router::chat_stream`] with caller context.
    pub fn chat_stream_with(&self, request: Value, ctx: RequestContext) -> ChatStream {
        let (tx, rx) = mpsc::channel(64);
        ChatStream::new(rx, self.spawn_stream(request, ctx, ChunkTx::Values(tx)))
    }

    /// [`Router::chat_stream_with`] as SSE events, `data: {json}\n\n` (several per item), with errors before
    /// any chunk as `Err` (so a server can still answer with their status) and no `[DONE]`. The translators
    /// write the events directly, without building chunk objects: faster than encoding a [`ChatStream`].
    pub fn chat_stream_events(&self, request: Value, ctx: RequestContext) -> SseStream {
        let (tx, rx) = mpsc::channel(64);
        SseStream::new(rx, self.spawn_stream(request, ctx, ChunkTx::Sse(tx)))
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

    fn spawn_stream(
        &self,
        request: Value,
        ctx: RequestContext,
        tx: ChunkTx,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.run_stream(request, &ctx, &tx).await {
                tx.error(e).await;
            }
        })
    }

    async fn run_stream(&self, request: Value, ctx: &RequestContext, tx: &ChunkTx) -> Result<()> {
        let t0 = Instant::now();
        let req = ChatRequest::from_value(&request)?;
        let mut ad = self.admit(&request, &req, ctx)?;
        let deadline = t0 + self.inner.opts.timeouts.total;
        let Some(mut attempt) = ad.plan.first().cloned() else {
            self.settle(ad.reserved, ctx.user.as_deref(), None);
            return Err(internal("plan has no attempts"));
        };
        let mut tries = 0;
        loop {
            let started = Instant::now();
            let r = self.try_stream(&ad, &attempt, &req, deadline, tx).await;
            let lat = ms(started.elapsed());
            match r {
                StreamEnd::Served(served, tput) => {
                    let mut ok = Outcome::success(200);
                    ok.latency_ms = Some(lat);
                    self.observe(&attempt, &ok, served.ttft_ms, tput);
                    let _ = ad.plan.next(&ok);
                    let records = ad.plan.records().to_vec();
                    let usage = self
                        .bill(&ad, &attempt, &served, true, ctx, records, t0)
                        .await?;
                    let rc = self.response_ctx(&ad, &attempt, ResponseHints::default());
                    let mut last = json!({"id": rc.id, "object": "chat.completion.chunk", "created": rc.created,
                        "model": rc.model, "provider": rc.provider_name, "choices": [], "usage": usage});
                    if ctx.metadata {
                        last["router_metadata"] =
                            Self::metadata(&ad, ad.plan.records(), &served.dropped);
                    }
                    let _ = tx.chunk(last).await;
                    return Ok(());
                }
                StreamEnd::Closed => {
                    self.settle(ad.reserved, ctx.user.as_deref(), None);
                    return Ok(());
                }
                StreamEnd::AfterContent(after) => {
                    let (mut f, served, err_chunk) = *after;
                    // Content already reached the caller: no failover; bill what was generated, end in-band.
                    f.outcome.latency_ms = Some(lat);
                    self.observe(&attempt, &f.outcome, None, None);
                    let _ = ad.plan.next(&f.outcome);
                    let records = ad.plan.records().to_vec();
                    let served = Served {
                        finish: Some("error".into()),
                        ..served
                    };
                    let _ = self
                        .bill(&ad, &attempt, &served, true, ctx, records, t0)
                        .await;
                    let chunk = err_chunk.unwrap_or_else(|| {
                        wire::error_chunk(
                            &self.response_ctx(&ad, &attempt, ResponseHints::default()),
                            &f.envelope,
                        )
                    });
                    let _ = tx.chunk(chunk).await;
                    return Ok(());
                }
                StreamEnd::Before(mut f) => {
                    f.outcome.latency_ms = Some(lat);
                    self.observe(&attempt, &f.outcome, None, None);
                    if f.outcome.class.is_availability()
                        && tries < self.inner.opts.same_endpoint_retries
                        && Instant::now() < deadline
                    {
                        tries += 1;
                        self.backoff(tries).await;
                        continue;
                    }
                    tries = 0;
                    if f.outcome.class.is_availability() {
                        self.forget_sticky(ad.sticky_key);
                    }
                    match ad.plan.next(&f.outcome) {
                        Next::Try(a) => attempt = a,
                        Next::Fail(e) => {
                            self.settle(ad.reserved, ctx.user.as_deref(), None);
                            return Err(e);
                        }
                        Next::Done => {
                            self.settle(ad.reserved, ctx.user.as_deref(), None);
                            return Err(internal("plan reported done after a failure"));
                        }
                    }
                }
            }
        }
    }

    async fn try_stream(
        &self,
        ad: &Admitted,
        a: &Attempt,
        req: &ChatRequest,
        deadline: Instant,
        tx: &ChunkTx,
    ) -> StreamEnd {
        let up = match self.upstream(a) {
            Ok(u) => u,
            Err(e) => {
                return StreamEnd::Before(wire::transport_failure(
                    OutcomeClass::Overloaded,
                    0,
                    &e.to_string(),
                    &a.provider_name,
                ))
            }
        };
        let Prepared { rb, hints, dropped } = match self.prepare(a, up, req, true) {
            Ok(p) => p,
            Err(f) => return StreamEnd::Before(f),
        };
        let t0 = Instant::now();
        let first_deadline = (t0 + up.timeouts.first_token).min(deadline);
        if Instant::now() >= deadline {
            return StreamEnd::Before(wire::transport_failure(
                OutcomeClass::Timeout,
                0,
                "total request timeout",
                &a.provider_name,
            ));
        }
        let resp = match tokio::time::timeout_at(first_deadline.into(), rb.send()).await {
            Err(_) => {
                return StreamEnd::Before(wire::transport_failure(
                    OutcomeClass::Timeout,
                    0,
                    "no response headers before the first-token timeout",
                    &a.provider_name,
                ))
            }
            Ok(Err(e)) => return StreamEnd::Before(Self::failure_from_reqwest(&e, a, up)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let ra = retry_after(resp.headers());
        if !(200..300).contains(&status) {
            let body = tokio::time::timeout_at(first_deadline.into(), resp.bytes())
                .await
                .ok()
                .and_then(std::result::Result::ok)
                .unwrap_or_default();
            let mut f = providers::map_error(a.dialect, status, ra, &body, &a.provider_name);
            f.outcome.retry_after = f.outcome.retry_after.or(ra);
            return StreamEnd::Before(f);
        }
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ctype.contains("event-stream") {
            return StreamEnd::Before(wire::transport_failure(
                OutcomeClass::Overloaded,
                status,
                &format!("unexpected content type {ctype:?} for a stream"),
                &a.provider_name,
            ));
        }
        let mut tr = StreamTranslator::new(a.dialect, self.response_ctx(ad, a, hints));
        let mut body = resp.bytes_stream();
        // Translated chunks not yet sent: held back until content appears (so a failure can still fall back).
        let mut held = tx.held();
        let mut ttft: Option<f64> = None;
        let mut first_at: Option<Instant> = None;
        loop {
            let until = if tr.content_emitted() {
                (Instant::now() + up.timeouts.idle).min(deadline)
            } else {
                first_deadline.min(Instant::now() + up.timeouts.idle)
            };
            let next = tokio::time::timeout_at(until.into(), body.next()).await;
            let chunk = match next {
                Err(_) => {
                    let what = if tr.content_emitted() {
                        "idle timeout between stream chunks"
                    } else {
                        "no first token before the first-token timeout"
                    };
                    let f = wire::transport_failure(
                        OutcomeClass::Timeout,
                        status,
                        what,
                        &a.provider_name,
                    );
                    return end_failed(f, &tr, ttft, dropped, None);
                }
                Ok(None) => None,
                Ok(Some(Err(e))) => {
                    let f = wire::transport_failure(
                        OutcomeClass::Overloaded,
                        status,
                        &format!("stream interrupted: {e}"),
                        &a.provider_name,
                    );
                    return end_failed(f, &tr, ttft, dropped, None);
                }
                Ok(Some(Ok(b))) => Some(b),
            };
            let mark = held.mark();
            match &chunk {
                Some(b) => held.push(&mut tr, b),
                // The translator's usage chunk is replaced by the billed one (with cost) after the ledger.
                None => held.finish(&mut tr),
            }
            if let Some(f) = tr.failure() {
                let f = f.clone();
                // The translator ended the stream with its in-band error chunk; it goes out after billing.
                let err_chunk = held.pop_error_since(mark);
                // Deliver what was translated before the failure, then end in-band.
                if tr.content_emitted() && !tx.flush(&mut held).await {
                    return StreamEnd::Closed;
                }
                return end_failed(f, &tr, ttft, dropped, err_chunk);
            }
            if tr.content_emitted() {
                if ttft.is_none() {
                    ttft = Some(ms(t0.elapsed()));
                    first_at = Some(Instant::now());
                }
                if !tx.flush(&mut held).await {
                    return StreamEnd::Closed;
                }
            }
            if chunk.is_none() {
                break;
            }
        }
        if !tx.flush(&mut held).await {
            return StreamEnd::Closed;
        }
        let usage = tr.usage().copied().unwrap_or_default();
        let tput = first_at
            .map(|f| f.elapsed().as_secs_f64())
            .filter(|s| *s > 0.0)
            .map(|s| usage.completion_tokens as f64 / s);
        StreamEnd::Served(
            Served {
                usage,
                finish: tr.finish_reason().map(str::to_string),
                ttft_ms: ttft.or(Some(ms(t0.elapsed()))),
                dropped,
            },
            tput,
        )
    }
}

fn end_failed(
    f: ProviderFailure,
    tr: &StreamTranslator,
    ttft: Option<f64>,
    dropped: Vec<String>,
    err_chunk: Option<Value>,
) -> StreamEnd {
    if tr.content_emitted() {
        StreamEnd::AfterContent(Box::new((
            f,
            Served {
                usage: tr.usage().copied().unwrap_or_default(),
                finish: None,
                ttft_ms: ttft,
                dropped,
            },
            err_chunk,
        )))
    } else {
        StreamEnd::Before(f)
    }
}

enum StreamEnd {
    Served(Served, Option<f64>),
    Before(ProviderFailure),
    /// Content reached the caller, then the attempt failed; the translator's error chunk when it made one.
    AfterContent(Box<(ProviderFailure, Served, Option<Value>)>),
    Closed,
}
