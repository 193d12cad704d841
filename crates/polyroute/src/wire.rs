//! Glue between the engine and the core's provider dialects ([`polyroute_core::providers`]): translation options
//! for an attempt, failures that are not provider answers (connect errors, timeouts, bad content types), and the
//! in-band error chunk for those. Request and response translation, stream state machines and error mapping
//! all live in the core.

use polyroute_core::plan::{self, Attempt, Outcome, OutcomeClass};
use polyroute_core::providers::{ProviderFailure, ResponseContext, TranslateOptions};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Map, Value};

/// How to translate `req` for attempt `a`: the core fills the dialect options from the catalog's facts about the
/// endpoint and model ([`polyroute_core::plan::translate_options`]: strictness, native structured output, default
/// `max_tokens`, adaptive vs budget thinking, which sampling parameters the model takes, API versions).
pub(crate) fn translate_options<'a>(
    a: &'a Attempt,
    req: &ChatRequest,
    stream: bool,
) -> TranslateOptions<'a> {
    plan::translate_options(&a.route, req, stream)
}

/// The message of a stream whose upstream body broke off before its end.
pub(crate) const STREAM_INTERRUPTED: &str =
    "Provider returned error: the upstream stream was interrupted before the response finished";

/// HTTP status shown to the caller for an engine-side failure of this class.
fn envelope_code(class: OutcomeClass) -> u16 {
    match class {
        OutcomeClass::RateLimited => 429,
        OutcomeClass::Timeout => 408,
        OutcomeClass::Auth => 401,
        OutcomeClass::PaymentRequired => 402,
        OutcomeClass::NotFound => 404,
        OutcomeClass::Moderation => 403,
        OutcomeClass::ContextLength | OutcomeClass::InvalidRequest => 400,
        OutcomeClass::Overloaded | OutcomeClass::Unreachable | OutcomeClass::Success => 502,
    }
}

/// A failure that is not a provider error answer (no connection, a timeout, a cut body, a wrong content type, a
/// request the dialect cannot express), in the same envelope shape as the core's mapped provider errors.
#[must_use]
pub(crate) fn transport_failure(
    class: OutcomeClass,
    status: u16,
    message: &str,
    provider_name: &str,
) -> ProviderFailure {
    ProviderFailure {
        outcome: Outcome::failure(class, status, message),
        envelope: json!({"error": {"code": envelope_code(class), "message": message,
            "metadata": {"provider_name": provider_name, "error_type": class.error_type()}}}),
    }
}

/// The final chunk of a stream that failed after content reached the caller, for failures the core's translator
/// did not see (timeouts, interrupted bodies): the same shape the translator emits for in-band provider errors.
#[must_use]
pub(crate) fn error_chunk(ctx: &ResponseContext, envelope: &Value) -> Value {
    let err = envelope
        .get("error")
        .cloned()
        .unwrap_or_else(|| json!({"code": 502, "message": "provider error"}));
    let mut m = Map::with_capacity(7);
    m.insert("id".into(), json!(ctx.id));
    m.insert("object".into(), json!("chat.completion.chunk"));
    m.insert("created".into(), json!(ctx.created));
    m.insert("model".into(), json!(ctx.model));
    m.insert("provider".into(), json!(ctx.provider_name));
    m.insert(
        "choices".into(),
        json!([{"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": null}]),
    );
    m.insert("error".into(), err);
    Value::Object(m)
}

/// Whether `v` is the translator's own usage chunk (`choices: []` with `usage`); the engine replaces it with the
/// billed one carrying `cost`.
#[must_use]
pub(crate) fn is_usage_chunk(v: &Value) -> bool {
    v.get("usage").is_some()
        && v.get("error").is_none()
        && v.get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
}
