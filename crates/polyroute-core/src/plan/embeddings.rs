//! Plans for the embeddings API: the chat pipeline (resolution, provider preferences, hard filters, ordering,
//! `next(outcome)`) over embedding models only, each input checked against the endpoint's context on its own, and
//! endpoints polyroute cannot send an embeddings request to excluded with the reason.

use super::{plan_for, Plan, PlanContext};
use crate::catalog::Catalog;
use crate::dialect::Dialect;
use crate::error::Result;
use crate::types::embeddings::EmbeddingRequest;

/// Why an endpoint of dialect `d` cannot serve an embeddings request, or `None` when it can (OpenAI-compatible
/// endpoints: `POST {base}/embeddings`).
#[must_use]
pub fn unsupported_dialect(d: Dialect) -> Option<String> {
    match d {
        Dialect::OpenAi => None,
        other => Some(format!(
            "embeddings are sent to OpenAI-compatible endpoints only; this endpoint speaks the {other} dialect \
             (its embeddings API is not translated yet)"
        )),
    }
}

/// Build the plan for an embeddings request: only embedding models (a chat model, or a model-choosing router,
/// is an `invalid_request` naming it), only OpenAI-compatible endpoints, provider preferences as for chat.
///
/// # Errors
/// Resolution errors, a model of the wrong kind, or an availability error carrying every exclusion.
pub fn plan_embeddings(
    catalog: &Catalog,
    req: &EmbeddingRequest,
    ctx: &PlanContext<'_>,
) -> Result<Plan> {
    plan_for(catalog, &req.planning(), ctx, true)
}
