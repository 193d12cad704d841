//! Dialect options of one attempt, filled from catalog facts: what the engine passes to
//! [`crate::providers::build_request`].

use crate::catalog::EndpointRoute;
use crate::providers::{GeminiApiVersion, TranslateOptions};
use crate::types::ChatRequest;

/// The sampling parameters a dialect may drop when the catalog says a model does not take them.
const SAMPLING: [&str; 3] = ["temperature", "top_p", "top_k"];

/// How to translate `req` for the endpoint `route`:
/// - `strict` is `provider.require_parameters`;
/// - native structured output when the endpoint lists `structured_outputs`;
/// - Anthropic's default `max_tokens` is the endpoint's output limit;
/// - adaptive thinking (`thinking: {type: adaptive}` + an effort) when the model takes effort levels, else a
///   `budget_tokens` budget;
/// - sampling parameters are sent only when the endpoint lists one of them (an endpoint that lists no parameters
///   at all is taken to accept them);
/// - the Anthropic API version `2023-06-01` (`vertex-2023-10-16` on Vertex) and Gemini `v1beta`, which serve every
///   model in the catalog.
#[must_use]
pub fn translate_options<'a>(
    route: &'a EndpointRoute,
    req: &ChatRequest,
    stream: bool,
) -> TranslateOptions<'a> {
    let mut o = TranslateOptions::new(&route.provider, &route.upstream_model);
    o.strict = req
        .provider
        .as_ref()
        .and_then(|p| p.require_parameters)
        .unwrap_or(false);
    let params = &route.supported_parameters;
    o.supports_native_structured_output = params.iter().any(|p| p == "structured_outputs");
    o.stream = stream;
    if let Some(m) = route.max_completion_tokens.filter(|m| *m > 0) {
        o.default_max_tokens = m;
    }
    o.anthropic_adaptive_thinking = route.effort_levels;
    o.sampling_params = params.is_empty() || params.iter().any(|p| SAMPLING.contains(&p.as_str()));
    o.gemini_api_version = GeminiApiVersion::V1Beta;
    o
}
