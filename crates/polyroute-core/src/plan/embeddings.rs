//! Plans for the embeddings API: the chat pipeline (resolution, provider preferences, hard filters, ordering,
//! `next(outcome)`) over embedding models only, each input checked against the endpoint's context on its own, and
//! endpoints polyroute cannot send an embeddings request to excluded with the reason.

use super::{plan_for, Kind, Plan, PlanContext};
use crate::catalog::Catalog;
use crate::dialect::Dialect;
use crate::error::Result;
use crate::types::embeddings::{EmbeddingInput, EmbeddingRequest};

/// Why an endpoint of dialect `d` cannot serve an embeddings request (`tokens`: the input is token arrays), or
/// `None` when it can: OpenAI-compatible endpoints (`POST {base}/embeddings`) and Gemini's API
/// (`batchEmbedContents`, text only).
#[must_use]
pub fn unsupported_dialect(d: Dialect, tokens: bool) -> Option<String> {
    match d {
        Dialect::OpenAi => None,
        Dialect::Gemini if !tokens => None,
        Dialect::Gemini => Some(
            "Gemini's batchEmbedContents embeds text; token-array input needs an OpenAI-compatible endpoint".into(),
        ),
        other => Some(format!(
            "embeddings are sent to OpenAI-compatible and Gemini API endpoints only; this endpoint speaks the \
             {other} dialect (its embeddings API is not translated yet)"
        )),
    }
}

/// Build the plan for an embeddings request: only embedding models (a chat model, or a model-choosing router,
/// is an `invalid_request` naming it), only endpoints [`unsupported_dialect`] accepts, provider preferences as
/// for chat.
///
/// # Errors
/// Resolution errors, a model of the wrong kind, or an availability error carrying every exclusion.
pub fn plan_embeddings(
    catalog: &Catalog,
    req: &EmbeddingRequest,
    ctx: &PlanContext<'_>,
) -> Result<Plan> {
    let tokens = matches!(req.input, EmbeddingInput::Tokens(_));
    plan_for(catalog, &req.planning(), ctx, Kind::Embeddings { tokens })
}
