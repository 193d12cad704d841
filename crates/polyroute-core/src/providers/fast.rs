//! Fast paths for answers in OpenAI's dialect: the answer is parsed into borrowed [`Json`] (no key hashing, strings
//! borrowed from the body) and written back as text with `id`, `model`, `provider`, `created` and a slot for the
//! billed `usage` spliced in, instead of being built into a `Value` tree and serialized again. Each path gives
//! exactly the bytes the `Value` path gives, or `None` for what it does not handle (an error body, host
//! reasoning fields to rename, an unexpected shape), and the caller then takes the `Value` path.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer};

use super::common::normalize_finish;
use super::json::Json;
use super::{Dialect, ResponseContext};
use crate::types::{CompletionTokensDetails, PromptTokensDetails, Usage};

/// Append the compact JSON text of `v` (writing to a `Vec` cannot fail, nor can serializing these values).
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(&mut *buf, v);
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

/// A present field, `null` included (`Some(Json::Null)`), so "absent" and "null" can be told apart.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json<'de>>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// One `chat.completion.chunk` as the fast path reads it. Fields it does not name are skipped unparsed; a field
/// of another type or a repeated field fails the parse (the `Value` path then decides).
#[derive(serde::Deserialize)]
pub(crate) struct Event<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub system_fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub usage: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub error: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub choices: Option<Vec<Choice<'a>>>,
}

#[derive(serde::Deserialize)]
pub(crate) struct Choice<'a> {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(borrow, default)]
    pub delta: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub native_finish_reason: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub logprobs: Option<Json<'a>>,
}

impl<'a> Event<'a> {
    /// Parse one event's data; `None` when the fast path does not handle it: not this shape, an error, a choice
    /// with `logprobs` or its own `native_finish_reason`, or a delta with host reasoning fields to rename.
    pub fn parse(data: &'a str) -> Option<Self> {
        let ev: Event<'a> = serde_json::from_str(data).ok()?;
        if ev.error.as_ref().is_some_and(|e| !matches!(e, Json::Null)) {
            return None;
        }
        for c in ev.choices.iter().flatten() {
            if c.native_finish_reason.is_some()
                || c.logprobs
                    .as_ref()
                    .is_some_and(|l| !matches!(l, Json::Null))
                || c.delta
                    .as_ref()
                    .is_some_and(|d| d.get("reasoning_content").is_some())
            {
                return None;
            }
        }
        Some(ev)
    }
}

/// Whether a delta field carries something (as the `Value` path judges content).
pub(crate) fn has_payload(v: &Json<'_>) -> bool {
    match v {
        Json::Null => false,
        Json::Str(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Ref(r) => match r {
            serde_json::Value::Null => false,
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            _ => true,
        },
        _ => true,
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
    /// The answer with `usage` (a JSON object's text) in its slot.
    #[must_use]
    pub fn with_usage(self, usage: &[u8]) -> Vec<u8> {
        let mut out = self.text;
        out.splice(self.usage_at..self.usage_at, usage.iter().copied());
        out
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
/// body, invalid JSON, an unexpected shape, host reasoning fields to rename).
#[must_use]
pub fn splice_response<'a>(
    dialect: Dialect,
    body: &'a [u8],
    ctx: &'a ResponseContext,
) -> Option<SplicedAnswer> {
    if super::answer_family(dialect) != Dialect::OpenAi {
        return None;
    }
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
