//! Provider wire dialects as the engine uses them.
//!
//! This is a stand-in with the same shape as `polyroute_core::providers` (build a native request, parse a whole
//! answer, translate a stream, map an error to a classified [`Outcome`]), covering text chat in the three
//! dialects. It is replaced by the core's dialect module when that lands; nothing else in the engine changes.

use polyroute_core::plan::{Outcome, OutcomeClass};
use polyroute_core::types::{ChatRequest, Role};
use polyroute_core::{Error, Result, Usage};
use serde_json::{json, Map, Value};

/// A provider wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions and compatible hosts.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini generateContent.
    Gemini,
}

impl Dialect {
    /// Parse a catalog dialect name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "gemini" | "google" => Some(Self::Gemini),
            _ => None,
        }
    }

    /// Credential header name (OpenAI's value is `Bearer <key>`).
    #[must_use]
    pub fn auth_header(self) -> &'static str {
        match self {
            Self::OpenAi => "authorization",
            Self::Anthropic => "x-api-key",
            Self::Gemini => "x-goog-api-key",
        }
    }
}

/// The native request.
#[derive(Debug, Clone)]
pub struct NativeRequest {
    /// JSON body.
    pub body: Value,
    /// Path below the base URL.
    pub path: String,
    /// Non-secret headers.
    pub headers: Vec<(String, String)>,
}

/// What translating an answer needs.
#[derive(Debug, Clone, Default)]
pub struct ResponseContext {
    /// Generation id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Model slug to report.
    pub model: String,
    /// Provider display name.
    pub provider_name: String,
}

/// A failed attempt.
#[derive(Debug, Clone)]
pub struct ProviderFailure {
    /// Classification.
    pub outcome: Outcome,
    /// OpenRouter error envelope.
    pub envelope: Value,
}

const ROUTING_FIELDS: &[&str] = &[
    "models",
    "route",
    "provider",
    "plugins",
    "session_id",
    "transforms",
    "usage",
];

fn text_of(content: &Option<Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Translate the canonical request.
///
/// # Errors
/// When the request cannot be serialized.
pub fn build_request(
    dialect: Dialect,
    req: &ChatRequest,
    upstream_model: &str,
    stream: bool,
) -> Result<NativeRequest> {
    let out_limit = req.output_limit();
    match dialect {
        Dialect::OpenAi => {
            let mut v =
                serde_json::to_value(req).map_err(|e| Error::invalid("$", e.to_string()))?;
            if let Some(o) = v.as_object_mut() {
                for f in ROUTING_FIELDS {
                    o.remove(*f);
                }
                o.insert("model".into(), json!(upstream_model));
                if stream {
                    o.insert("stream".into(), json!(true));
                    o.insert("stream_options".into(), json!({"include_usage": true}));
                } else {
                    o.remove("stream");
                    o.remove("stream_options");
                }
            }
            Ok(NativeRequest {
                body: v,
                path: "/chat/completions".into(),
                headers: vec![],
            })
        }
        Dialect::Anthropic => {
            let mut system = Vec::new();
            let mut messages = Vec::new();
            for m in &req.messages {
                match m.role {
                    Role::System | Role::Developer => system.push(text_of(&m.content)),
                    Role::Assistant => {
                        messages.push(json!({"role": "assistant", "content": text_of(&m.content)}))
                    }
                    _ => messages.push(json!({"role": "user", "content": text_of(&m.content)})),
                }
            }
            let mut body = json!({"model": upstream_model, "messages": messages, "max_tokens": out_limit.unwrap_or(4096)});
            if !system.is_empty() {
                body["system"] = json!(system.join("\n"));
            }
            if stream {
                body["stream"] = json!(true);
            }
            for k in ["temperature", "top_p", "top_k"] {
                if let Some(x) = req.extra.get(k) {
                    body[k] = x.clone();
                }
            }
            Ok(NativeRequest {
                body,
                path: "/v1/messages".into(),
                headers: vec![("anthropic-version".into(), "2023-06-01".into())],
            })
        }
        Dialect::Gemini => {
            let mut system = Vec::new();
            let mut contents = Vec::new();
            for m in &req.messages {
                let t = text_of(&m.content);
                match m.role {
                    Role::System | Role::Developer => system.push(t),
                    Role::Assistant => {
                        contents.push(json!({"role": "model", "parts": [{"text": t}]}))
                    }
                    _ => contents.push(json!({"role": "user", "parts": [{"text": t}]})),
                }
            }
            let mut body = json!({"contents": contents});
            if !system.is_empty() {
                body["systemInstruction"] =
                    json!({"role": "user", "parts": [{"text": system.join("\n")}]});
            }
            if let Some(n) = out_limit {
                body["generationConfig"] = json!({"maxOutputTokens": n});
            }
            let path = if stream {
                format!("/v1beta/models/{upstream_model}:streamGenerateContent?alt=sse")
            } else {
                format!("/v1beta/models/{upstream_model}:generateContent")
            };
            Ok(NativeRequest {
                body,
                path,
                headers: vec![],
            })
        }
    }
}

fn envelope(
    class: OutcomeClass,
    status: u16,
    message: &str,
    provider_name: &str,
    raw: Value,
) -> Value {
    json!({"error": {"code": if status >= 400 { status } else { 502 }, "message": message,
        "metadata": {"provider_name": provider_name, "error_type": class.error_type(), "raw": raw}}})
}

/// Classify a provider error answer.
#[must_use]
pub fn map_error(
    dialect: Dialect,
    status: u16,
    retry_after: Option<f64>,
    body: &[u8],
    provider_name: &str,
) -> ProviderFailure {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = v.get("error").cloned().unwrap_or(Value::Null);
    let message = err.get("message").and_then(Value::as_str).map_or_else(
        || format!("provider returned error (http {status})"),
        str::to_string,
    );
    let kind = err
        .get("type")
        .or_else(|| err.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let class = match (dialect, kind) {
        (_, "overloaded_error") => OutcomeClass::Overloaded,
        (_, "context_length_exceeded") => OutcomeClass::ContextLength,
        _ if (200..300).contains(&status) => OutcomeClass::Overloaded,
        _ => OutcomeClass::from_status(status),
    };
    let outcome = Outcome {
        class,
        status,
        retry_after,
        message: message.clone(),
        provider_code: (!kind.is_empty()).then(|| kind.to_string()),
        latency_ms: None,
    };
    ProviderFailure {
        envelope: envelope(class, status, &message, provider_name, v),
        outcome,
    }
}

/// A failure that is not an HTTP error answer (invalid JSON, wrong content type, cut stream, timeout).
#[must_use]
pub fn transport_failure(
    class: OutcomeClass,
    status: u16,
    message: &str,
    provider_name: &str,
) -> ProviderFailure {
    ProviderFailure {
        outcome: Outcome::failure(class, status, message),
        envelope: envelope(class, status, message, provider_name, Value::Null),
    }
}

fn finish_of(dialect: Dialect, native: &str) -> &'static str {
    match (dialect, native) {
        (_, "stop" | "end_turn" | "STOP" | "stop_sequence") => "stop",
        (_, "length" | "max_tokens" | "MAX_TOKENS") => "length",
        (_, "tool_calls" | "tool_use") => "tool_calls",
        (_, "content_filter" | "refusal" | "SAFETY" | "RECITATION" | "PROHIBITED_CONTENT") => {
            "content_filter"
        }
        _ => "stop",
    }
}

fn usage_from(dialect: Dialect, v: &Value) -> Option<Usage> {
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let (p, c) = match dialect {
        Dialect::OpenAi => {
            v.get("usage").filter(|u| !u.is_null())?;
            (n("/usage/prompt_tokens"), n("/usage/completion_tokens"))
        }
        Dialect::Anthropic => (n("/usage/input_tokens"), n("/usage/output_tokens")),
        Dialect::Gemini => {
            v.get("usageMetadata")?;
            (
                n("/usageMetadata/promptTokenCount"),
                n("/usageMetadata/candidatesTokenCount"),
            )
        }
    };
    let mut u = Usage {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: p + c,
        ..Usage::default()
    };
    if dialect == Dialect::OpenAi {
        u.prompt_tokens_details.cached_tokens = n("/usage/prompt_tokens_details/cached_tokens");
        u.completion_tokens_details.reasoning_tokens =
            n("/usage/completion_tokens_details/reasoning_tokens");
    }
    Some(u)
}

/// Translate a whole answer into a `chat.completion` plus usage.
///
/// # Errors
/// A [`ProviderFailure`] for an error status, an error body or an unexpected shape.
#[allow(clippy::result_large_err)]
pub fn parse_response(
    dialect: Dialect,
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> std::result::Result<(Value, Usage), ProviderFailure> {
    if !(200..300).contains(&status) {
        return Err(map_error(dialect, status, None, body, &ctx.provider_name));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        transport_failure(
            OutcomeClass::Overloaded,
            status,
            &format!("invalid upstream json: {e}"),
            &ctx.provider_name,
        )
    })?;
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(map_error(dialect, status, None, body, &ctx.provider_name));
    }
    let bad = || {
        transport_failure(
            OutcomeClass::Overloaded,
            status,
            "upstream answer has an unexpected shape",
            &ctx.provider_name,
        )
    };
    let usage = usage_from(dialect, &v).unwrap_or_default();
    let (message, finish) = match dialect {
        Dialect::OpenAi => {
            let c = v.pointer("/choices/0").ok_or_else(bad)?;
            (
                c.get("message").cloned().ok_or_else(bad)?,
                c.get("finish_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("stop")
                    .to_string(),
            )
        }
        Dialect::Anthropic => {
            let blocks = v.get("content").and_then(Value::as_array).ok_or_else(bad)?;
            let text: String = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            let stop = v
                .get("stop_reason")
                .and_then(Value::as_str)
                .unwrap_or("end_turn");
            (
                json!({"role": "assistant", "content": text}),
                finish_of(dialect, stop).to_string(),
            )
        }
        Dialect::Gemini => {
            let c = v.pointer("/candidates/0").ok_or_else(bad)?;
            let parts = c
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let text: String = parts
                .iter()
                .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| p["text"].as_str())
                .collect();
            let stop = c
                .get("finishReason")
                .and_then(Value::as_str)
                .unwrap_or("STOP");
            (
                json!({"role": "assistant", "content": text}),
                finish_of(dialect, stop).to_string(),
            )
        }
    };
    let out = json!({
        "id": ctx.id, "object": "chat.completion", "created": ctx.created, "model": ctx.model,
        "provider": ctx.provider_name,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish,
                     "native_finish_reason": finish}],
        "usage": usage,
    });
    Ok((out, usage))
}

/// Incremental SSE → OpenAI chunk translation.
#[derive(Debug)]
pub struct StreamTranslator {
    dialect: Dialect,
    ctx: ResponseContext,
    buf: Vec<u8>,
    usage: Option<Usage>,
    finish: Option<&'static str>,
    content: bool,
    failure: Option<ProviderFailure>,
    done: bool,
}

impl StreamTranslator {
    /// A translator for one attempt.
    #[must_use]
    pub fn new(dialect: Dialect, ctx: ResponseContext) -> Self {
        Self {
            dialect,
            ctx,
            buf: Vec::new(),
            usage: None,
            finish: None,
            content: false,
            failure: None,
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.ctx.id, "object": "chat.completion.chunk", "created": self.ctx.created,
               "model": self.ctx.model, "provider": self.ctx.provider_name,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// Feed bytes; returns the chunks completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Value> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_event_end(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end + sep).collect();
            let text = String::from_utf8_lossy(&raw[..end]).to_string();
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("data:")
                        .map(|d| d.strip_prefix(' ').unwrap_or(d))
                })
                .collect();
            if data.is_empty() {
                continue;
            }
            self.event(&data.join("\n"), &mut out);
        }
        out
    }

    fn fail(&mut self, message: &str, raw: Option<&Value>) {
        let f = match raw {
            Some(v) => map_error(
                self.dialect,
                200,
                None,
                v.to_string().as_bytes(),
                &self.ctx.provider_name,
            ),
            None => transport_failure(
                OutcomeClass::Overloaded,
                200,
                message,
                &self.ctx.provider_name,
            ),
        };
        self.failure.get_or_insert(f);
    }

    fn event(&mut self, data: &str, out: &mut Vec<Value>) {
        if data.trim() == "[DONE]" {
            self.done = true;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            self.fail("invalid JSON in upstream stream", None);
            return;
        };
        if v.get("error").is_some_and(|e| !e.is_null())
            || v.get("type").and_then(Value::as_str) == Some("error")
        {
            self.fail("upstream stream error", Some(&v));
            return;
        }
        match self.dialect {
            Dialect::OpenAi => {
                if let Some(u) = usage_from(Dialect::OpenAi, &v) {
                    self.usage = Some(u);
                }
                let Some(c) = v.pointer("/choices/0") else {
                    return;
                };
                let delta = c.get("delta").cloned().unwrap_or(json!({}));
                if delta
                    .get("content")
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                    || delta.get("tool_calls").is_some()
                    || delta
                        .get("refusal")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
                {
                    self.content = true;
                }
                let fin = c
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .map(|f| finish_of(Dialect::OpenAi, f));
                if fin.is_some() {
                    self.finish = fin;
                }
                out.push(self.chunk(delta, fin));
            }
            Dialect::Anthropic => match v.get("type").and_then(Value::as_str).unwrap_or("") {
                "message_start" => {
                    let p = v
                        .pointer("/message/usage/input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    self.usage = Some(Usage {
                        prompt_tokens: p,
                        total_tokens: p,
                        ..Usage::default()
                    });
                    out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
                }
                "content_block_delta" => {
                    if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
                        self.content |= !t.is_empty();
                        out.push(self.chunk(json!({"content": t}), None));
                    }
                }
                "message_delta" => {
                    let c = v
                        .pointer("/usage/output_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let u = self.usage.get_or_insert_with(Usage::default);
                    u.completion_tokens = c;
                    u.total_tokens = u.prompt_tokens + c;
                    let stop = v
                        .pointer("/delta/stop_reason")
                        .and_then(Value::as_str)
                        .unwrap_or("end_turn");
                    self.finish = Some(finish_of(Dialect::Anthropic, stop));
                    out.push(self.chunk(json!({}), self.finish));
                }
                "message_stop" => self.done = true,
                _ => {}
            },
            Dialect::Gemini => {
                if let Some(u) = usage_from(Dialect::Gemini, &v) {
                    self.usage = Some(u);
                }
                let Some(c) = v.pointer("/candidates/0") else {
                    return;
                };
                let text: String = c
                    .pointer("/content/parts")
                    .and_then(Value::as_array)
                    .map(|ps| ps.iter().filter_map(|p| p["text"].as_str()).collect())
                    .unwrap_or_default();
                self.content |= !text.is_empty();
                let fin = c
                    .get("finishReason")
                    .and_then(Value::as_str)
                    .map(|f| finish_of(Dialect::Gemini, f));
                if fin.is_some() {
                    self.finish = fin;
                    self.done = true;
                }
                out.push(self.chunk(json!({"content": text}), fin));
            }
        }
    }

    /// The body ended; a stream that never finished is a failure.
    pub fn finish(&mut self) -> Vec<Value> {
        if self.failure.is_none() && !(self.done || self.finish.is_some()) {
            self.fail("upstream stream ended before completion", None);
        }
        Vec::new()
    }

    /// Usage seen so far.
    #[must_use]
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// Normalized finish reason.
    #[must_use]
    pub fn finish_reason(&self) -> Option<&'static str> {
        self.finish
    }

    /// Whether any content delta has been produced.
    #[must_use]
    pub fn content_emitted(&self) -> bool {
        self.content
    }

    /// The failure seen, if any.
    #[must_use]
    pub fn failure(&self) -> Option<&ProviderFailure> {
        self.failure.as_ref()
    }
}

fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Build an in-band error chunk for a stream that already delivered content.
#[must_use]
pub fn error_chunk(ctx: &ResponseContext, envelope: &Value) -> Value {
    let mut err = envelope
        .get("error")
        .cloned()
        .unwrap_or_else(|| json!({"message": "provider error"}));
    if let Some(o) = err.as_object_mut() {
        o.entry("code").or_insert(json!(502));
    }
    let mut m = Map::new();
    m.insert("id".into(), json!(ctx.id));
    m.insert("object".into(), json!("chat.completion.chunk"));
    m.insert("created".into(), json!(ctx.created));
    m.insert("model".into(), json!(ctx.model));
    m.insert("provider".into(), json!(ctx.provider_name));
    m.insert("error".into(), err);
    m.insert(
        "choices".into(),
        json!([{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]),
    );
    Value::Object(m)
}
