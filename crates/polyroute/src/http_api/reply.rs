//! Error answers in the OpenRouter envelope, body parsing, and the request context read from headers.

use serde_json::{json, Value};

use super::{Request, Response};
use crate::{Error, RequestContext};

pub(super) fn envelope(status: u16, error_type: &str, message: String) -> Value {
    json!({"error": {"code": status, "message": message, "metadata": {"error_type": error_type}}})
}

/// Parse a JSON body: 400 on bad JSON or a non-object, and, before any value tree is built, on a body nested
/// deeper or holding more values than [`limits`](polyroute_core::types::limits) allow (`prescan_json`).
///
/// # Errors
/// The OpenRouter-shaped 400.
pub fn parse_object(body: &[u8]) -> Result<Value, Response> {
    if let Err(e) = polyroute_core::types::limits::prescan_json(body) {
        let message = match e {
            Error::InvalidRequest { message, .. } => message,
            other => other.to_string(),
        };
        return Err(Response::error(400, "invalid_request", message));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Response::error(
            400,
            "invalid_request",
            format!("Invalid JSON in request body: {e}"),
        )
    })?;
    if !v.is_object() {
        return Err(Response::error(
            400,
            "invalid_request",
            "The request body must be a JSON object",
        ));
    }
    Ok(v)
}

/// A chat request body read straight into the typed request (within the size and nesting limits), or `None`
/// for anything it refuses: the caller then takes the [`parse_object`] path, which words the answer.
pub(crate) fn parse_chat(body: &[u8]) -> Option<polyroute_core::types::ChatRequest> {
    polyroute_core::types::limits::prescan_json(body).ok()?;
    polyroute_core::types::ChatRequest::try_from_slice(body)
}

/// An engine error as an answer: its status and envelope; `Retry-After` and `X-RateLimit-*` on rate limits
/// (`free_limits`: the per-minute and per-day caps those headers name). An internal error is masked (500).
#[must_use]
pub fn error_response(e: &Error, free_limits: (u32, u32)) -> Response {
    let status = e.http_status();
    if status >= 500 && matches!(e, Error::Internal { .. }) {
        tracing::error!(error = %e, "internal error");
        return Response::error(500, "server", "Internal Server Error");
    }
    let mut body = e.to_envelope();
    let mut headers = Vec::new();
    if let Some(ra) = e.retry_after() {
        let secs = ra.ceil().max(0.0) as u64;
        headers.push(("retry-after".to_string(), secs.to_string()));
    }
    if let Error::RateLimited { limit, retry_after } = e {
        let cap = if limit.contains("day") {
            free_limits.1
        } else {
            free_limits.0
        };
        let reset_ms =
            crate::state::now_ms() + (retry_after.unwrap_or(60.0).max(0.0) * 1000.0) as i64;
        headers.push(("x-ratelimit-limit".into(), cap.to_string()));
        headers.push(("x-ratelimit-remaining".into(), "0".into()));
        headers.push(("x-ratelimit-reset".into(), reset_ms.to_string()));
        body["error"]["message"] = json!(format!("Rate limit exceeded: {limit}"));
    }
    let mut r = Response::json(status, &body);
    r.headers.extend(headers);
    r
}

/// The request context: the caller's scope, plus attribution (`HTTP-Referer`, else `Referer`;
/// `X-OpenRouter-Title`, else `X-Title`), session (`x-session-id`) and metadata opt-in
/// (`X-OpenRouter-Metadata: enabled`) from the headers.
pub(super) fn context(req: &Request, base: &RequestContext) -> RequestContext {
    let h = |n: &str| req.header_value(n).map(str::to_string);
    let metadata = h("x-openrouter-metadata")
        .or_else(|| h("x-openrouter-experimental-metadata"))
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    RequestContext {
        http_referer: h("http-referer")
            .or_else(|| h("referer"))
            .or_else(|| base.http_referer.clone()),
        title: h("x-openrouter-title")
            .or_else(|| h("x-title"))
            .or_else(|| base.title.clone()),
        session_id: h("x-session-id").or_else(|| base.session_id.clone()),
        traceparent: h("traceparent").or_else(|| base.traceparent.clone()),
        metadata: metadata || base.metadata,
        ..base.clone()
    }
}
