//! Fast paths for answers in OpenAI's dialect: the answer is parsed into borrowed [`Json`] (no key hashing, strings
//! borrowed from the body) and written back as text with `id`, `model`, `provider`, `created` and a slot for the
//! billed `usage` spliced in, instead of being built into a `Value` tree and serialized again. Each path gives
//! exactly the bytes the `Value` path gives, or `None` for what it does not handle (an error body, host
//! reasoning fields to rename, an unexpected shape), and the caller then takes the `Value` path.

use std::borrow::Cow;

use serde_json::Value;

use super::common::normalize_finish;
use super::json::Json;
use super::openai::{HostQuirks, MaxTokensField, OPENROUTER_ONLY};
use super::{Dialect, NativeBody, ResponseContext, TranslateOptions};
use crate::types::{ChatRequest, CompletionTokensDetails, PromptTokensDetails, Role, Usage};

/// Append the compact JSON text of `v` (writing to a `Vec` cannot fail, nor can serializing these values).
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(&mut *buf, v);
}

/// Append `s` as a JSON string, the bytes serde_json writes: it escapes only `"`, `\` and control bytes, so text
/// without them (the usual string) is copied as it is.
pub fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    if super::fast_event::string_stop(s.as_bytes()).is_none() {
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        write_json(buf, s);
    }
}

fn u64_at(v: Option<&Json<'_>>, key: &str) -> u64 {
    v.and_then(|v| v.get(key))
        .and_then(Json::as_u64)
        .unwrap_or(0)
}

/// [`super::openai::normalize_usage`] over a parsed [`Json`].
pub(crate) fn normalize_usage(u: &Json<'_>) -> Usage {
    let d = u.get("prompt_tokens_details");
    let c = u.get("completion_tokens_details");
    let cached = d
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Json::as_u64)
        .or_else(|| u.get("prompt_cache_hit_tokens").and_then(Json::as_u64))
        .unwrap_or(0);
    let prompt_tokens = u64_at(Some(u), "prompt_tokens");
    let completion_tokens = u64_at(Some(u), "completion_tokens");
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: cached,
            cache_write_tokens: u64_at(d, "cache_write_tokens"),
            cache_write_1h_tokens: u64_at(d, "cache_write_1h_tokens"),
            audio_tokens: u64_at(d, "audio_tokens"),
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: u64_at(c, "reasoning_tokens"),
            image_tokens: u64_at(c, "image_tokens"),
            audio_tokens: u64_at(c, "audio_tokens"),
        },
        ..Usage::default()
    }
}

/// A whole OpenAI-dialect answer as text, with a slot for the billed `usage` object.
#[derive(Debug, Clone, PartialEq)]
pub struct SplicedAnswer {
    /// The answer's JSON text, without the value of `usage`.
    text: Vec<u8>,
    /// Where the `usage` value goes in `text` (right after `"usage":`).
    usage_at: usize,
    /// The normalized usage the provider reported.
    pub usage: Usage,
    /// The normalized `finish_reason` of the first choice.
    pub finish: Option<&'static str>,
}

impl SplicedAnswer {
    pub(crate) fn new(
        text: Vec<u8>,
        usage_at: usize,
        usage: Usage,
        finish: Option<&'static str>,
    ) -> Self {
        SplicedAnswer {
            text,
            usage_at,
            usage,
            finish,
        }
    }

    /// The answer with `usage` (a JSON object's text) in its slot.
    #[must_use]
    pub fn with_usage(self, usage: &[u8]) -> Vec<u8> {
        self.with_usage_from(|b| b.extend_from_slice(usage))
    }

    /// The answer with the `usage` value `write` appends in its slot: written in place (the text keeps room
    /// for it), without a buffer of its own.
    #[must_use]
    pub fn with_usage_from(self, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut text = self.text;
        let at = self.usage_at.min(text.len());
        let tail = text.len() - at;
        write(&mut text);
        // [tail, usage] becomes [usage, tail].
        text[at..].rotate_left(tail);
        text
    }

    /// The answer with `usage` in its slot, as a [`serde_json::Value`].
    #[must_use]
    pub fn into_value(self, usage: &[u8]) -> serde_json::Value {
        serde_json::from_slice(&self.with_usage(usage)).unwrap_or(serde_json::Value::Null)
    }
}

/// Set `key` as a `Value` object's `insert` does: in place when present, else at the end.
fn set<'a>(entries: &mut Vec<(Cow<'a, str>, Json<'a>)>, key: &'static str, v: Json<'a>) {
    match entries.iter_mut().find(|(k, _)| k == key) {
        Some((_, slot)) => *slot = v,
        None => entries.push((Cow::Borrowed(key), v)),
    }
}

/// The fast path of [`super::parse_response`] for a 2xx answer of the OpenAI family: the same answer (same bytes,
/// `usage` aside, which the engine writes after billing), or `None` when the `Value` path must decide (an error
/// body, invalid JSON, an unexpected shape, host reasoning fields to rename). The text is copied
/// ([`super::splice::splice`]) when the copier handles it, else parsed into a borrowed tree and written back
/// ([`splice_tree`]).
#[must_use]
pub fn splice_response(
    dialect: Dialect,
    body: &[u8],
    ctx: &ResponseContext,
) -> Option<SplicedAnswer> {
    if super::answer_family(dialect) != Dialect::OpenAi {
        return None;
    }
    super::splice::splice(body, ctx)
        .ok()
        .or_else(|| splice_tree(body, ctx))
}

/// [`splice_response`] over a borrowed [`Json`] tree (repeated keys merged as a `Value` merges them).
pub(crate) fn splice_tree<'a>(body: &'a [u8], ctx: &'a ResponseContext) -> Option<SplicedAnswer> {
    let text = std::str::from_utf8(body).ok()?;
    let Json::Object(mut obj) = Json::parse(text)? else {
        return None;
    };
    if obj
        .iter()
        .any(|(k, v)| k == "error" && !matches!(v, Json::Null))
    {
        return None;
    }
    let mut finish = None;
    {
        let (_, Json::Array(choices)) = obj.iter_mut().find(|(k, _)| k == "choices")? else {
            return None;
        };
        for (i, c) in choices.iter_mut().enumerate() {
            let Json::Object(c) = c else { continue };
            let native = c
                .iter()
                .find(|(k, _)| k == "finish_reason")
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string);
            if let Some(native) = native {
                let norm = normalize_finish(&native);
                if i == 0 {
                    finish = Some(norm);
                }
                if !c.iter().any(|(k, _)| k == "native_finish_reason") {
                    c.push((
                        Cow::Borrowed("native_finish_reason"),
                        Json::Str(Cow::Owned(native)),
                    ));
                }
                set(c, "finish_reason", Json::Str(Cow::Borrowed(norm)));
            }
            let renames = c
                .iter()
                .any(|(k, m)| k == "message" && m.get("reasoning_content").is_some());
            if renames {
                return None;
            }
        }
    }
    let usage = obj
        .iter()
        .find(|(k, _)| k == "usage")
        .map_or_else(Usage::default, |(_, u)| normalize_usage(u));
    let field = |obj: &[(Cow<'a, str>, Json<'a>)], key: &str| -> String {
        obj.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let id = if ctx.id.is_empty() {
        Cow::Owned(field(&obj, "id"))
    } else {
        Cow::Borrowed(ctx.id.as_str())
    };
    let model = if ctx.model.is_empty() {
        Cow::Owned(field(&obj, "model"))
    } else {
        Cow::Borrowed(ctx.model.as_str())
    };
    set(&mut obj, "id", Json::Str(id));
    set(&mut obj, "model", Json::Str(model));
    set(
        &mut obj,
        "object",
        Json::Str(Cow::Borrowed("chat.completion")),
    );
    if !obj
        .iter()
        .any(|(k, v)| k == "system_fingerprint" && matches!(v, Json::Str(_)))
    {
        set(&mut obj, "system_fingerprint", Json::Null);
    }
    if ctx.created != 0 {
        set(&mut obj, "created", Json::Number(ctx.created.into()));
    }
    if !ctx.provider_name.is_empty() {
        set(
            &mut obj,
            "provider",
            Json::Str(Cow::Borrowed(ctx.provider_name.as_str())),
        );
    }
    set(&mut obj, "usage", Json::Null);
    let mut out = Vec::with_capacity(body.len() + 256);
    let mut usage_at = 0;
    out.push(b'{');
    for (i, (k, v)) in obj.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&mut out, k.as_ref());
        out.push(b':');
        if k == "usage" {
            usage_at = out.len();
        } else {
            write_json(&mut out, v);
        }
    }
    out.push(b'}');
    Some(SplicedAnswer {
        text: out,
        usage_at,
        usage,
        finish,
    })
}

/// The OpenAI-compatible request body written straight from the typed request (no `Value` tree): for requests
/// whose translation only drops OpenRouter's own fields, sets the model, the output limit and the stream flags.
/// `None` when anything else applies (a parameter the host rejects or renames, reasoning to map, message or tool
/// edits for the host); the `Value` path then translates. The same fields and values as that path's body.
pub(crate) fn openai_body(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
    q: &HostQuirks,
) -> Option<NativeBody> {
    let ext = q.openrouter_extensions;
    for k in req.extra.keys() {
        let k = k.as_str();
        if matches!(k, "reasoning" | "reasoning_effort" | "stream_options")
            || q.rejects.contains(&k)
            || q.renames.iter().any(|(from, _)| *from == k)
        {
            return None;
        }
    }
    if q.tool_choice_required != "required"
        && req.tool_choice.as_ref().and_then(Value::as_str) == Some("required")
    {
        return None;
    }
    for m in &req.messages {
        if !m.extra.is_empty()
            || (m.role == Role::Developer && !q.developer_role)
            || (!q.message_name && m.role != Role::Tool && m.name.is_some())
        {
            return None;
        }
        if let (false, Some(Value::Array(parts))) = (ext, &m.content) {
            if parts.iter().any(|p| p.get("cache_control").is_some()) {
                return None;
            }
        }
    }
    if let (false, Some(tools)) = (ext, &req.tools) {
        if tools.iter().any(|t| t.get("cache_control").is_some()) {
            return None;
        }
    }
    let view = OpenAiBody { req, opts, q };
    NativeBody::from_serialize(&view, 256 + req.messages.len() * 128).ok()
}

struct OpenAiBody<'a> {
    req: &'a ChatRequest,
    opts: &'a TranslateOptions<'a>,
    q: &'a HostQuirks,
}

impl serde::Serialize for OpenAiBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (r, ext) = (self.req, self.q.openrouter_extensions);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.opts.upstream_model)?;
        m.serialize_entry("messages", &r.messages)?;
        if ext {
            if let Some(p) = &r.provider {
                m.serialize_entry("provider", p)?;
            }
        }
        if let Some(t) = &r.tools {
            m.serialize_entry("tools", t)?;
        }
        if let Some(t) = &r.tool_choice {
            m.serialize_entry("tool_choice", t)?;
        }
        if let Some(f) = &r.response_format {
            m.serialize_entry("response_format", f)?;
        }
        if ext {
            if let Some(sid) = &r.session_id {
                m.serialize_entry("session_id", sid)?;
            }
        }
        if let Some(k) = &r.prompt_cache_key {
            m.serialize_entry("prompt_cache_key", k)?;
        }
        if let Some(t) = &r.service_tier {
            m.serialize_entry("service_tier", t)?;
        }
        if ext {
            if let Some(p) = &r.plugins {
                m.serialize_entry("plugins", p)?;
            }
        }
        for (k, v) in &r.extra {
            if !ext && OPENROUTER_ONLY.contains(&k.as_str()) {
                continue;
            }
            m.serialize_entry(k, v)?;
        }
        if let Some(l) = r.output_limit() {
            let field = match self.q.max_tokens_field {
                MaxTokensField::MaxTokens => "max_tokens",
                MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            };
            m.serialize_entry(field, &l)?;
        }
        if self.opts.stream {
            m.serialize_entry("stream", &true)?;
            m.serialize_entry("stream_options", &IncludeUsage)?;
        }
        m.end()
    }
}

/// `{"include_usage": true}`.
struct IncludeUsage;

impl serde::Serialize for IncludeUsage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("include_usage", &true)?;
        m.end()
    }
}

// Tests assert by unwrapping, and read the recorded requests (test data; the core itself never reads files).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::providers::openai::{build_request_value, quirks};
    use serde_json::json;

    const WIRE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/wire/openai"
    );

    fn requests() -> Vec<Value> {
        let mut out: Vec<Value> = std::fs::read_dir(WIRE)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".request.json"))
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect();
        assert!(out.len() >= 3, "recorded requests");
        let base = json!({"model": "openai/gpt-4o-mini", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "caf\u{e9} \"q\""}]}]});
        let with = |extra: Value| {
            let mut v = base.clone();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        out.extend([
            base.clone(),
            with(json!({"max_tokens": 64, "stream": true, "temperature": 0.5, "user": "u", "usage": {"include": true},
                        "provider": {"order": ["openai"]}, "session_id": "s", "models": ["a/b"], "seed": 3,
                        "top_k": 4, "prompt_cache_key": "k", "service_tier": "auto", "debug": null, "n": 2})),
            with(json!({"max_completion_tokens": 9, "max_tokens": 5, "tool_choice": "required",
                        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})),
            with(json!({"reasoning": {"effort": "high"}})),
            with(json!({"reasoning_effort": "low", "stream_options": {"include_usage": false}})),
            with(json!({"messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "y", "name": "n"}]})),
            with(json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "t", "cache_control": {"type": "ephemeral"}}]}]})),
            with(json!({"messages": [{"role": "assistant", "content": "a", "reasoning": "r"}, {"role": "user", "content": "b"}]})),
            with(json!({"tools": [{"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}]})),
            with(json!({"plugins": [{"id": "web"}], "route": "fallback", "top_a": 0.1, "logit_bias": {"1": 2}})),
        ]);
        out
    }

    /// Where the fast path writes a body, it has the fields and values of the `Value` path's body.
    #[test]
    fn typed_bodies_match_the_value_path() {
        let mut taken = 0;
        for (i, r) in requests().iter().enumerate() {
            let req = ChatRequest::from_value(r).unwrap();
            for host in [
                "openai",
                "groq",
                "mistral",
                "openrouter",
                "deepseek",
                "somehost",
            ] {
                for stream in [false, true] {
                    let mut opts = TranslateOptions::new(host, "up-model");
                    opts.stream = stream;
                    let q = quirks(host);
                    let Some(fast) = openai_body(&req, &opts, q) else {
                        continue;
                    };
                    taken += 1;
                    let slow = build_request_value(&req, &opts, q).unwrap();
                    assert_eq!(
                        fast.value(),
                        slow.body.value(),
                        "request {i}, {host}, stream {stream}"
                    );
                    assert!(
                        slow.dropped.is_empty(),
                        "request {i}, {host}: {:?}",
                        slow.dropped
                    );
                }
            }
        }
        assert!(taken >= 40, "the fast path wrote only {taken} bodies");
    }
}
