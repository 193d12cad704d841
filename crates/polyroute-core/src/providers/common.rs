//! Helpers shared by the dialects: finish reasons, reasoning budgets, data URIs, text extraction.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::json::Json;
use crate::types::{ChatRequest, Usage};

/// An object from owned values, without the deep copy `json!` makes of `Value` arguments (it serializes them).
pub(crate) fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(N);
    for (k, v) in pairs {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

/// `m[key]` by a linear scan for small maps: cheaper than hashing the key (keys are unique, so the result is the
/// same as [`Map::get`]).
pub(crate) fn map_get<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if m.len() <= 8 {
        m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

/// `v[key]` when `v` is an object (see [`map_get`]).
pub(crate) fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(m) => map_get(m, key),
        _ => None,
    }
}

/// `v[a][b]` (what `pointer("/a/b")` finds for plain keys, without its allocations).
pub(crate) fn get2<'v>(v: &'v Value, a: &str, b: &str) -> Option<&'v Value> {
    get(v, a).and_then(|x| get(x, b))
}

/// `v[key]` as a string.
pub(crate) fn get_str<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    get(v, key).and_then(Value::as_str)
}

/// A string value.
pub(crate) fn st(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Normalize a native finish/stop reason to `stop | length | tool_calls | content_filter | error`.
/// Unknown values become `stop` (the native value is kept in `native_finish_reason`).
pub(crate) fn normalize_finish(native: &str) -> &'static str {
    match native {
        "stop" | "end_turn" | "stop_sequence" | "STOP" | "eos" | "COMPLETE" | "STOP_SEQUENCE"
        | "pause_turn" => "stop",
        "length"
        | "max_tokens"
        | "MAX_TOKENS"
        | "model_length"
        | "model_context_window_exceeded"
        | "CONTINUATION" => "length",
        "tool_calls" | "tool_use" | "function_call" | "TOOL_CALL" => "tool_calls",
        "content_filter"
        | "refusal"
        | "SAFETY"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "RECITATION"
        | "LANGUAGE"
        | "NO_IMAGE"
        | "IMAGE_RECITATION"
        | "IMAGE_OTHER"
        | "ESCALATION"
        | "MODEL_ARMOR"
        | "guardrail_intervened"
        | "content_filtered" => "content_filter",
        "error" | "ERROR" | "insufficient_system_resource" => "error",
        _ => "stop",
    }
}

/// Usage as the OpenAI-shaped JSON object.
pub(crate) fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(u).unwrap_or(Value::Null)
}

/// Fill `total_tokens`.
pub(crate) fn with_total(mut u: Usage) -> Usage {
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    u
}

pub(crate) fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Effort → share of `max_tokens` given to reasoning.
pub(crate) fn effort_ratio(effort: &str) -> Option<f64> {
    match effort {
        "max" | "xhigh" => Some(0.95),
        "high" => Some(0.8),
        "medium" => Some(0.5),
        "low" => Some(0.2),
        "minimal" => Some(0.1),
        _ => None,
    }
}

/// The request's reasoning wish, from `reasoning` (OpenRouter) or `reasoning_effort` (OpenAI).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReasoningWish {
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, `max`.
    pub effort: Option<String>,
    /// Explicit budget (`reasoning.max_tokens`).
    pub max_tokens: Option<u64>,
    /// Reasoning off.
    pub disabled: bool,
    /// Do not return the reasoning text.
    pub exclude: bool,
}

pub(crate) fn reasoning_wish(req: &ChatRequest) -> Option<ReasoningWish> {
    let r = req.extra.get("reasoning").filter(|v| v.is_object());
    let effort_field = req.extra.get("reasoning_effort").and_then(Value::as_str);
    if r.is_none() && effort_field.is_none() {
        return None;
    }
    let effort = r
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .or(effort_field)
        .map(str::to_string);
    let max_tokens = r.and_then(|r| r.get("max_tokens")).and_then(Value::as_u64);
    let enabled = r.and_then(|r| r.get("enabled")).and_then(Value::as_bool);
    let exclude = r
        .and_then(|r| r.get("exclude"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let disabled = enabled == Some(false) || effort.as_deref() == Some("none");
    let effort = if effort.is_none() && max_tokens.is_none() && !disabled {
        Some("medium".to_string())
    } else {
        effort
    };
    Some(ReasoningWish {
        effort,
        max_tokens,
        disabled,
        exclude,
    })
}

/// Anthropic-style budget: `max(min(max_tokens * ratio, 128000), 1024)`, or an explicit budget (at least 1024).
pub(crate) fn thinking_budget(wish: &ReasoningWish, max_tokens: u64) -> u64 {
    if let Some(b) = wish.max_tokens {
        return b.clamp(1024, 128_000);
    }
    let ratio = wish.effort.as_deref().and_then(effort_ratio).unwrap_or(0.5);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let scaled = (max_tokens as f64 * ratio) as u64;
    scaled.clamp(1024, 128_000)
}

/// A parsed `data:` URI.
pub(crate) struct DataUri<'a> {
    pub mime: &'a str,
    pub data: &'a str,
}

pub(crate) fn parse_data_uri(url: &str) -> Option<DataUri<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some(DataUri {
        mime: if mime.is_empty() {
            "application/octet-stream"
        } else {
            mime
        },
        data,
    })
}

/// MIME type guessed from a URL's extension.
pub(crate) fn mime_from_url(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "mp4" => "video/mp4",
        "txt" => "text/plain",
        _ => "image/jpeg",
    }
}

/// Parse tool-call `arguments` (a JSON string; empty means `{}`) into a [`Json`] borrowing from it.
pub(crate) fn parse_arguments(args: Option<&Value>) -> Option<Json<'_>> {
    match args {
        None | Some(Value::Null) => Some(Json::empty_object()),
        Some(Value::String(s)) if s.trim().is_empty() => Some(Json::empty_object()),
        Some(Value::String(s)) => Json::parse(s),
        Some(v @ Value::Object(_)) => Some(Json::Ref(v)),
        Some(_) => None,
    }
}

/// Keep `[A-Za-z0-9_-]` (and the extra characters in `also`), replace the rest with `_`, cut to `max` chars.
pub(crate) fn sanitize_name(name: &str, also: &[char], max: usize) -> String {
    sanitize_name_cow(name, also, max).into_owned()
}

/// [`sanitize_name`], borrowing `name` when it is already valid (the common case).
pub(crate) fn sanitize_name_cow<'n>(name: &'n str, also: &[char], max: usize) -> Cow<'n, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || also.contains(&c);
    // Common case: already valid (every accepted character is ASCII, so bytes count characters).
    if !name.is_empty()
        && name.len() <= max
        && name.bytes().all(|b| b.is_ascii() && ok(char::from(b)))
    {
        return Cow::Borrowed(name);
    }
    let s: String = name
        .chars()
        .map(|c| if ok(c) { c } else { '_' })
        .take(max)
        .collect();
    if s.is_empty() {
        Cow::Borrowed("_")
    } else {
        Cow::Owned(s)
    }
}

/// The OpenAI `chat.completion` envelope around one or more choices.
pub(crate) fn completion(
    id: &str,
    created: u64,
    model: &str,
    provider: &str,
    choices: Vec<Value>,
    usage: &Usage,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("object".into(), json!("chat.completion"));
    m.insert("created".into(), json!(created));
    m.insert("model".into(), json!(model));
    if !provider.is_empty() {
        m.insert("provider".into(), json!(provider));
    }
    // Required by OpenRouter's `ChatResult` (nullable): translated dialects have no fingerprint.
    m.insert("system_fingerprint".into(), Value::Null);
    m.insert("choices".into(), Value::Array(choices));
    m.insert("usage".into(), usage_json(usage));
    Value::Object(m)
}

/// Pick the context value when set, else the upstream one.
pub(crate) fn pick<'a>(ctx: &'a str, upstream: &'a str) -> &'a str {
    if ctx.is_empty() {
        upstream
    } else {
        ctx
    }
}
