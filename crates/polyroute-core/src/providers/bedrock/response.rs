//! Converse answers and Bedrock errors.
//!
//! A Converse answer (`output.message.content[]`, `stopReason`, `usage`) is rewritten into the Anthropic message
//! it mirrors and read by the Anthropic translation, so tool calls, reasoning and the structured-output tool
//! behave alike. Usage: `inputTokens` excludes the cache (`cacheReadInputTokens`, `cacheWriteInputTokens`), as
//! Anthropic's `input_tokens` does.
//!
//! Errors: Bedrock names the exception in the `x-amzn-ErrorType` header (`ThrottlingException:http://…`) or, in a
//! stream, the `:exception-type` header; the body is `{"message": …}`. [`map_error`] takes that name.

use serde_json::{json, Map, Value};

use crate::providers::errors::map_error_value;
use crate::providers::{Dialect, ProviderFailure, ResponseContext};
use crate::types::Usage;

/// Converse `usage` → Anthropic `usage`.
pub(crate) fn anthropic_usage_of(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    json!({
        "input_tokens": n("inputTokens"),
        "output_tokens": n("outputTokens"),
        "cache_read_input_tokens": n("cacheReadInputTokens"),
        "cache_creation_input_tokens": n("cacheWriteInputTokens"),
    })
}

/// One Converse content block → the Anthropic block.
pub(crate) fn anthropic_block(b: &Value) -> Option<Value> {
    if let Some(t) = b.get("text") {
        return Some(json!({"type": "text", "text": t}));
    }
    if let Some(t) = b.get("toolUse") {
        return Some(
            json!({"type": "tool_use", "id": t.get("toolUseId"), "name": t.get("name"),
            "input": t.get("input").cloned().unwrap_or_else(|| json!({}))}),
        );
    }
    if let Some(r) = b.get("reasoningContent") {
        if let Some(rt) = r.get("reasoningText") {
            return Some(
                json!({"type": "thinking", "thinking": rt.get("text").cloned().unwrap_or(json!("")),
                "signature": rt.get("signature")}),
            );
        }
        if let Some(d) = r.get("redactedContent") {
            return Some(json!({"type": "redacted_thinking", "data": d}));
        }
    }
    None
}

pub(crate) fn parse_response(v: &Value, ctx: &ResponseContext) -> Option<(Value, Usage)> {
    let content = v.pointer("/output/message/content")?.as_array()?;
    let blocks: Vec<Value> = content.iter().filter_map(anthropic_block).collect();
    let mut msg = Map::new();
    msg.insert("content".into(), Value::Array(blocks));
    msg.insert(
        "stop_reason".into(),
        v.get("stopReason").cloned().unwrap_or(json!("end_turn")),
    );
    if let Some(u) = v.get("usage") {
        msg.insert("usage".into(), anthropic_usage_of(u));
    }
    crate::providers::anthropic::parse_response(&Value::Object(msg), ctx)
}

/// The error kind (Anthropic vocabulary) of a Bedrock exception name.
fn kind_of(exception: &str, message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    match exception {
        "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException" => {
            "rate_limit_error"
        }
        "ServiceUnavailableException" | "ModelNotReadyException" => "overloaded_error",
        "InternalServerException"
        | "ModelErrorException"
        | "ModelStreamErrorException"
        | "InternalFailure" => "api_error",
        "ModelTimeoutException" => "timeout_error",
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException" => {
            if m.contains("signature expired") || m.contains("request has expired") {
                "clock_skew"
            } else {
                "authentication_error"
            }
        }
        "ResourceNotFoundException" => "not_found_error",
        "ValidationException" => "invalid_request_error",
        _ => "",
    }
}

/// The exception name from `x-amzn-ErrorType` (`ThrottlingException:http://internal…`) or a `__type` field
/// (`com.amazon.coral.service#ThrottlingException`).
#[must_use]
pub fn exception_name(raw: &str) -> &str {
    let s = raw.split(':').next().unwrap_or(raw);
    s.rsplit('#').next().unwrap_or(s).trim()
}

/// Classify a Bedrock error: `exception` is the exception name (header or stream), `body` its `{"message"}` body.
#[must_use]
pub fn map_error(
    status: u16,
    retry_after: Option<f64>,
    exception: Option<&str>,
    body: &[u8],
    provider_name: &str,
) -> ProviderFailure {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    let exception = exception
        .map(exception_name)
        .or_else(|| v.get("__type").and_then(Value::as_str).map(exception_name))
        .unwrap_or("");
    let mut kind = kind_of(exception, &message);
    let mut message = message;
    if kind == "clock_skew" {
        message = format!(
            "request signature rejected for clock skew: check this machine's clock ({message})"
        );
        kind = "authentication_error";
    }
    let lower = message.to_ascii_lowercase();
    let code = if exception == "ValidationException"
        && (lower.contains("input is too long") || lower.contains("too many input tokens"))
    {
        json!("context_length_exceeded")
    } else if exception.is_empty() {
        Value::Null
    } else {
        json!(exception)
    };
    // The exception name decides; the message is classified only for a validation error or an unknown name
    // (Bedrock's throttling message, "Too many tokens", must not read as a context-length error).
    let classify_by_message = matches!(kind, "" | "invalid_request_error");
    let shown = if classify_by_message {
        message.as_str()
    } else {
        ""
    };
    let mut err = json!({"message": shown, "code": code});
    if !kind.is_empty() {
        err["type"] = json!(kind);
    }
    let mut f = map_error_value(
        Dialect::BedrockConverse,
        status,
        &json!({ "error": err }),
        provider_name,
    );
    if !classify_by_message && !message.trim().is_empty() {
        f.outcome.message.clone_from(&message);
        f.envelope["error"]["message"] = json!(message);
        f.envelope["error"]["metadata"]["raw"]["error"]["message"] = json!(message);
    }
    f.outcome.retry_after = f.outcome.retry_after.or(retry_after);
    f
}
