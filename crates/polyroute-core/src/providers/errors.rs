//! Provider error bodies (OpenAI, Anthropic, Google RPC) → [`Outcome`] + OpenRouter error envelope.

use serde_json::{json, Value};

use super::{Dialect, ProviderFailure};
use crate::outcome::{Outcome, OutcomeClass};

/// What an error body says, dialect-independent.
#[derive(Debug, Default)]
struct Parsed {
    message: Option<String>,
    /// OpenAI `type`, Anthropic `error.type`, Google `status`.
    kind: Option<String>,
    /// OpenAI `code`, Google `details[].reason`, Anthropic `error.details.error_code`.
    code: Option<String>,
    /// Google `RetryInfo.retryDelay` in seconds.
    retry_delay: Option<f64>,
    /// Google `error.code`.
    status: Option<u16>,
}

fn parse(body: &Value) -> Parsed {
    // Google sometimes wraps the error in a one-element array.
    let body = match body {
        Value::Array(a) => a.first().unwrap_or(body),
        other => other,
    };
    let Some(err) = body.get("error") else {
        return Parsed::default();
    };
    let str_at = |v: &Value, k: &str| {
        v.get(k).and_then(|x| {
            x.as_str()
                .map(str::to_string)
                .or_else(|| x.as_u64().map(|n| n.to_string()))
        })
    };
    match err {
        Value::String(s) => Parsed {
            message: Some(s.clone()),
            ..Parsed::default()
        },
        Value::Object(_) => {
            let mut p = Parsed {
                message: str_at(err, "message"),
                kind: str_at(err, "type").or_else(|| str_at(err, "status")),
                code: err.get("code").and_then(Value::as_str).map(str::to_string),
                status: err
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok()),
                retry_delay: None,
            };
            if let Some(c) = err.pointer("/details/error_code").and_then(Value::as_str) {
                p.code = Some(c.to_string());
            }
            if let Some(details) = err.get("details").and_then(Value::as_array) {
                for d in details {
                    if let Some(r) = d.get("reason").and_then(Value::as_str) {
                        p.code.get_or_insert_with(|| r.to_string());
                    }
                    if let Some(delay) = d.get("retryDelay").and_then(Value::as_str) {
                        p.retry_delay = delay.trim_end_matches('s').parse::<f64>().ok();
                    }
                }
            }
            p
        }
        _ => Parsed::default(),
    }
}

fn looks_like_context_length(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("context length")
        || m.contains("context_length")
        || m.contains("context window")
        || m.contains("prompt is too long")
        || m.contains("too many tokens")
        || (m.contains("input token count") && m.contains("exceeds"))
        || m.contains("maximum number of tokens")
}

fn classify(dialect: Dialect, status: u16, p: &Parsed) -> OutcomeClass {
    let dialect = super::answer_family(dialect);
    let kind = p.kind.as_deref().unwrap_or("");
    let code = p.code.as_deref().unwrap_or("");
    let msg = p.message.as_deref().unwrap_or("");
    if matches!(code, "context_length_exceeded" | "string_above_max_length")
        || looks_like_context_length(msg)
    {
        return OutcomeClass::ContextLength;
    }
    if matches!(
        code,
        "content_policy_violation" | "content_filter" | "moderation_blocked"
    ) || matches!(kind, "content_policy_violation")
    {
        return OutcomeClass::Moderation;
    }
    if matches!(
        code,
        "insufficient_quota" | "enforced_spend_limit_reached" | "billing_not_active"
    ) || kind == "billing_error"
    {
        return OutcomeClass::PaymentRequired;
    }
    if matches!(
        code,
        "API_KEY_INVALID" | "invalid_api_key" | "API_KEY_SERVICE_BLOCKED"
    ) {
        return OutcomeClass::Auth;
    }
    let by_kind = match (dialect, kind) {
        (
            _,
            "rate_limit_error"
            | "rate_limit_exceeded"
            | "RESOURCE_EXHAUSTED"
            | "tokens"
            | "requests",
        ) => Some(OutcomeClass::RateLimited),
        (
            _,
            "overloaded_error" | "api_error" | "server_error" | "UNAVAILABLE" | "INTERNAL"
            | "CANCELLED" | "UNKNOWN",
        ) => Some(OutcomeClass::Overloaded),
        (_, "timeout_error" | "DEADLINE_EXCEEDED") => Some(OutcomeClass::Timeout),
        (
            _,
            "authentication_error" | "permission_error" | "UNAUTHENTICATED" | "PERMISSION_DENIED",
        ) => Some(OutcomeClass::Auth),
        (_, "not_found_error" | "NOT_FOUND") => Some(OutcomeClass::NotFound),
        (_, "request_too_large") => Some(OutcomeClass::ContextLength),
        (
            _,
            "invalid_request_error" | "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE",
        ) if (400..500).contains(&status) => Some(OutcomeClass::from_status(status)),
        _ => None,
    };
    if let Some(c) = by_kind {
        return c;
    }
    match status {
        529 | 499 => OutcomeClass::Overloaded,
        200..=299 => OutcomeClass::Overloaded,
        s => OutcomeClass::from_status(s),
    }
}

/// Classify a provider error answer and build the OpenRouter envelope.
///
/// `status` is the HTTP status (200 for an error found in a 200 body or mid-stream), `retry_after` the parsed
/// `Retry-After` header in seconds, `body` the raw response body, `provider_name` the display name for metadata.
#[must_use]
pub fn map_error(
    dialect: Dialect,
    status: u16,
    retry_after: Option<f64>,
    body: &[u8],
    provider_name: &str,
) -> ProviderFailure {
    if dialect == Dialect::BedrockConverse {
        return super::bedrock::map_error(status, retry_after, None, body, provider_name);
    }
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let parsed = value.as_ref().map(parse).unwrap_or_default();
    failure_from(
        dialect,
        status,
        retry_after,
        parsed,
        value,
        body,
        provider_name,
    )
}

/// A mid-stream or in-body error given as an already parsed JSON value.
pub(crate) fn map_error_value(
    dialect: Dialect,
    status: u16,
    value: &Value,
    provider_name: &str,
) -> ProviderFailure {
    let parsed = parse(value);
    failure_from(
        dialect,
        status,
        None,
        parsed,
        Some(value.clone()),
        &[],
        provider_name,
    )
}

fn failure_from(
    dialect: Dialect,
    status: u16,
    retry_after: Option<f64>,
    parsed: Parsed,
    value: Option<Value>,
    body: &[u8],
    provider_name: &str,
) -> ProviderFailure {
    let effective = if (200..300).contains(&status) {
        parsed.status.unwrap_or(status)
    } else {
        status
    };
    let class = classify(dialect, effective, &parsed);
    let message = parsed
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("provider returned error (http {effective})"));
    let provider_code = parsed.code.clone().or_else(|| parsed.kind.clone());
    let outcome = Outcome {
        class,
        status,
        retry_after: retry_after.or(parsed.retry_delay),
        message: message.clone(),
        provider_code: provider_code.clone(),
        latency_ms: None,
    };
    let raw = value.map_or_else(
        || Value::String(String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned()),
        redact,
    );
    let code = envelope_code(class, effective);
    // OpenRouter omits `provider_code` when the provider sent none (its schema: an optional string, not null).
    let mut metadata = json!({
        "provider_name": provider_name,
        "error_type": class.error_type(),
        "raw": raw,
    });
    if let Some(pc) = provider_code {
        metadata["provider_code"] = Value::String(pc);
    }
    let envelope = json!({"error": {"code": code, "message": message, "metadata": metadata}});
    ProviderFailure { outcome, envelope }
}

/// Remove Google `DebugInfo` details from a raw body: they can echo the request's API key
/// (`"Invalid API key: …"`), which must never reach the caller or a log.
fn redact(mut v: Value) -> Value {
    let target = match &mut v {
        Value::Array(a) => a.first_mut(),
        other => Some(other),
    };
    if let Some(Value::Array(details)) = target.and_then(|t| t.pointer_mut("/error/details")) {
        details.retain(|d| {
            !d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("DebugInfo"))
        });
    }
    v
}

/// HTTP status shown to the caller for a provider failure.
fn envelope_code(class: OutcomeClass, status: u16) -> u16 {
    match class {
        OutcomeClass::RateLimited => 429,
        OutcomeClass::Overloaded if status == 529 => 529,
        OutcomeClass::Overloaded | OutcomeClass::Unreachable => 502,
        OutcomeClass::Timeout => 408,
        OutcomeClass::Auth if status == 403 => 403,
        OutcomeClass::Auth => 401,
        OutcomeClass::PaymentRequired => 402,
        OutcomeClass::NotFound => 404,
        OutcomeClass::Moderation => 403,
        OutcomeClass::ContextLength | OutcomeClass::InvalidRequest | OutcomeClass::Success => 400,
    }
}

/// A 2xx answer that is not a valid response body.
pub(crate) fn invalid_response(provider_name: &str, message: &str, body: &[u8]) -> ProviderFailure {
    let outcome = Outcome::failure(OutcomeClass::Overloaded, 200, message);
    let raw = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    let envelope = json!({
        "error": {
            "code": 502,
            "message": message,
            "metadata": {"provider_name": provider_name, "error_type": OutcomeClass::Overloaded.error_type(), "raw": raw}
        }
    });
    ProviderFailure { outcome, envelope }
}
