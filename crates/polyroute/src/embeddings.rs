//! The embeddings API ([`Router::embeddings`]): the chat lifecycle's own pieces with an embeddings attempt.
//! Admission ([`crate::admission`], planned by `plan_embeddings` over embedding models only) → the one failover loop
//! ([`crate::failover`]) with the [`Embedder`] driver (`POST {base}/embeddings` on OpenAI-compatible endpoints,
//! `batchEmbedContents` on the Gemini API, through the same request building and reading as a unary chat attempt) → billing ([`crate::billing`]: the
//! input tokens at the endpoint's embedding price, one ledger record, the hold committed). An embedding has no
//! stream, so every failure before the answer fails over exactly as a unary chat attempt does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use polyroute_core::cost::EMBEDDING_FINISH;
use polyroute_core::dialect::Dialect;
use polyroute_core::plan::{plan_embeddings, unsupported_dialect, Attempt, OutcomeClass};
use polyroute_core::providers::ProviderFailure;
use polyroute_core::types::embeddings::{EmbeddingInput, EmbeddingRequest};
use polyroute_core::{Error, Result, Usage};
use serde_json::{json, Value};

use crate::admission::Admission;
use crate::attempt::prepare::internal;
use crate::attempt::unary::exchange;
use crate::attempt::{AttemptEnd, Driver, Served};
use crate::billing::Ending;
use crate::config::RequestContext;
use crate::failover::Ended;
use crate::lifecycle::{panic_error, Detachable};
use crate::router::Router;
use crate::wire;

/// Drives embeddings attempts; `gone` is set when the caller stopped waiting.
struct Embedder<'r> {
    req: &'r EmbeddingRequest,
    gone: Arc<AtomicBool>,
}

impl Driver for Embedder<'_> {
    type Out = Value;

    async fn attempt<'a>(
        &'a mut self,
        router: &'a Router,
        ad: &'a Admission,
        a: &'a Attempt,
        deadline: Instant,
    ) -> AttemptEnd<Value> {
        match try_embed(router, ad, a, self.req, deadline).await {
            Ok((out, served)) => AttemptEnd::Served {
                out,
                served,
                tput: None,
            },
            Err(f) => AttemptEnd::Failed(f),
        }
    }

    fn caller_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }
}

/// One embeddings attempt: the OpenAI body for the endpoint's upstream model, sent and read like a unary chat
/// attempt, then the answer checked and written in the caller's shape.
async fn try_embed(
    router: &Router,
    ad: &Admission,
    a: &Attempt,
    req: &EmbeddingRequest,
    deadline: Instant,
) -> std::result::Result<(Value, Served), ProviderFailure> {
    let gemini = a.dialect == Dialect::Gemini;
    let tokens = matches!(req.input, EmbeddingInput::Tokens(_));
    if let Some(why) = unsupported_dialect(a.dialect, tokens) {
        // The plan excludes these endpoints; a hand-made catalog route still never gets a wrong body.
        return Err(wire::transport_failure(
            OutcomeClass::InvalidRequest,
            400,
            &why,
            &a.provider_name,
        ));
    }
    let up = router.upstream_for(a, ad)?;
    let up = &*up;
    let token = router.access_token(a, up).await?;
    let (path, body) = match req.gemini_request(&a.upstream_model).filter(|_| gemini) {
        Some((path, body)) => (path, body),
        None => (
            "/embeddings".to_string(),
            req.upstream_body(&a.upstream_model),
        ),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let rb = router.post_json(a, up, &path, body, &[], token.as_ref())?;
    let (_, body, ms) = exchange(router, a, up, rb, deadline, &ad.waited).await?;
    let finished = if gemini {
        req.finish_gemini_response(&body, &a.model)
    } else {
        req.finish_response(&body, &a.model)
    };
    let (out, prompt_tokens) = finished.map_err(|m| {
        wire::transport_failure(OutcomeClass::Overloaded, 502, &m, &a.provider_name)
    })?;
    let usage = Usage {
        prompt_tokens,
        total_tokens: prompt_tokens,
        ..Usage::default()
    };
    Ok((
        out,
        Served {
            usage,
            // Not blank: chat's waiver of answers without completion tokens does not apply to vectors.
            finish: Some(EMBEDDING_FINISH.to_string()),
            ttft_ms: Some(ms),
            dropped: Vec::new(),
            relayed: 0,
        },
    ))
}

impl Router {
    /// Embeddings (`POST /api/v1/embeddings`), OpenAI-shaped: `{object: "list", data: [{object, index,
    /// embedding}], model, usage: {prompt_tokens, total_tokens, cost}}` plus `id` (`gen-…`, the ledger record)
    /// and `provider`. `input` is a string, strings, or token arrays; `dimensions`, `encoding_format`
    /// (`float`/`base64`), `provider` preferences and `models` fallbacks route as for chat.
    ///
    /// # Errors
    /// `invalid_request` naming the field (a chat model is refused), limits before any provider is called, or
    /// the aggregated provider error listing every attempt.
    pub async fn embeddings(&self, request: Value) -> Result<Value> {
        self.embeddings_with(request, &RequestContext::default())
            .await
    }

    /// [`Router::embeddings`] with caller context (attribution, user key, gateway key and its limit). Like
    /// [`Router::chat_with`], a caller that stops waiting does not cut billing short.
    ///
    /// # Errors
    /// As [`Router::embeddings`].
    pub async fn embeddings_with(&self, request: Value, ctx: &RequestContext) -> Result<Value> {
        let gone = Arc::new(AtomicBool::new(false));
        let me = self.clone();
        let ctx = ctx.clone();
        Detachable::new(gone.clone(), async move {
            me.run_embeddings(request, &ctx, gone).await
        })
        .await
        .unwrap_or_else(|| Err(panic_error()))
    }

    async fn run_embeddings(
        &self,
        request: Value,
        ctx: &RequestContext,
        gone: Arc<AtomicBool>,
    ) -> Result<Value> {
        let t0 = Instant::now();
        let req = EmbeddingRequest::from_value(&request)?;
        let planning = req.planning();
        let mut ad = self
            .admit_planned(&planning, ctx, |c, p| plan_embeddings(c, &req, p))
            .await?;
        ad.api_type = crate::ledger::ApiType::Embeddings;
        let deadline = t0 + self.inner.opts.timeouts.total;
        let mut driver = Embedder {
            req: &req,
            gone: gone.clone(),
        };
        match self.failover(&mut ad, &mut driver, deadline).await? {
            Ended::Served {
                attempt,
                mut out,
                served,
            } => {
                let ending = if gone.load(Ordering::Relaxed) {
                    Ending::Cancelled
                } else {
                    Ending::Complete
                };
                let billed = self
                    .bill(
                        &mut ad, &attempt, &served, &planning, false, ending, ctx, t0,
                    )
                    .await?;
                out["id"] = json!(ad.gen_id);
                out["provider"] = json!(attempt.provider_name);
                out["usage"] = json!({
                    "prompt_tokens": served.usage.prompt_tokens,
                    "total_tokens": served.usage.total_tokens,
                    "cost": polyroute_core::cost::usd(billed.cost.total),
                });
                if ctx.metadata {
                    out["openrouter_metadata"] =
                        Self::metadata(&ad, Some(&attempt), &served.dropped, t0);
                }
                Ok(out)
            }
            Ended::Broken { failure, .. } => Err(Error::Internal {
                message: failure.outcome.message,
            }),
            Ended::Abandoned { .. } => Err(internal("the caller went away")),
        }
    }

    /// The embedding models of the catalog (`GET /api/v1/embeddings/models`), as `/models` rows.
    ///
    /// # Errors
    /// Never in practice (the filter is fixed).
    pub fn embedding_models(&self) -> Result<Vec<Value>> {
        self.models(&json!({"output_modality": "embeddings"}))
    }
}
