//! OpenAI Chat Completions and OpenAI-compatible hosts: a passthrough with a quirk table.

use serde_json::{json, Map, Value};

use super::common::{normalize_finish, pick, u64_at, usage_json, with_total};
use super::{
    drop_param, NativeBody, NativeRequest, ResponseContext, ResponseHints, TranslateOptions,
};
use crate::error::Result;
use crate::types::{ChatRequest, CompletionTokensDetails, PromptTokensDetails, Usage};

/// Which field carries the output limit upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_tokens`.
    MaxTokens,
    /// `max_completion_tokens`.
    MaxCompletionTokens,
}

/// How one OpenAI-compatible host deviates from OpenAI.
#[derive(Debug, Clone, Copy)]
pub struct HostQuirks {
    /// Provider slug.
    pub slug: &'static str,
    /// Parameters the host rejects or ignores; dropped (or an error when strict).
    pub rejects: &'static [&'static str],
    /// Parameters the host knows under another name: `(openai, host)`.
    pub renames: &'static [(&'static str, &'static str)],
    /// Field for the output limit.
    pub max_tokens_field: MaxTokensField,
    /// Accepts the `developer` role; otherwise it is sent as `system`.
    pub developer_role: bool,
    /// Accepts `name` on messages; otherwise it is prepended to the text as `{name}: `.
    pub message_name: bool,
    /// `tool_choice: "required"` is spelled this way.
    pub tool_choice_required: &'static str,
    /// Accepts `reasoning_effort` (the OpenRouter `reasoning.effort` is mapped onto it).
    pub reasoning_effort: bool,
    /// Understands OpenRouter's own extensions (`provider`, `reasoning`, `plugins`, …): OpenRouter as upstream.
    pub openrouter_extensions: bool,
}

const NON_OPENAI_SAMPLING: &[&str] = &["top_k", "min_p", "top_a", "repetition_penalty"];

const fn host(slug: &'static str) -> HostQuirks {
    HostQuirks {
        slug,
        rejects: &["top_a"],
        renames: &[],
        max_tokens_field: MaxTokensField::MaxTokens,
        developer_role: false,
        message_name: true,
        tool_choice_required: "required",
        reasoning_effort: false,
        openrouter_extensions: false,
    }
}

/// The quirk table. Unknown hosts get [`GENERIC`].
pub const HOSTS: &[HostQuirks] = &[
    HostQuirks {
        rejects: NON_OPENAI_SAMPLING,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        developer_role: true,
        reasoning_effort: true,
        ..host("openai")
    },
    HostQuirks {
        rejects: &[
            "logprobs",
            "top_logprobs",
            "logit_bias",
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
            "prediction",
            "web_search_options",
        ],
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        message_name: false,
        reasoning_effort: true,
        ..host("groq")
    },
    HostQuirks {
        rejects: &["top_a", "prediction", "web_search_options", "verbosity"],
        ..host("together")
    },
    HostQuirks {
        rejects: &["top_a", "prediction", "web_search_options", "verbosity"],
        ..host("deepinfra")
    },
    HostQuirks {
        rejects: &["top_a", "prediction", "web_search_options", "verbosity"],
        reasoning_effort: true,
        ..host("fireworks")
    },
    HostQuirks {
        rejects: &[
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
            "prediction",
            "web_search_options",
            "verbosity",
        ],
        renames: &[("seed", "random_seed")],
        message_name: false,
        tool_choice_required: "any",
        ..host("mistral")
    },
    HostQuirks {
        rejects: &[
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
            "logit_bias",
            "prediction",
            "verbosity",
        ],
        reasoning_effort: true,
        ..host("xai")
    },
    HostQuirks {
        rejects: &[
            "logit_bias",
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
            "seed",
            "prediction",
            "web_search_options",
            "verbosity",
        ],
        ..host("deepseek")
    },
    HostQuirks {
        rejects: &[
            "frequency_penalty",
            "presence_penalty",
            "logit_bias",
            "top_k",
            "min_p",
            "top_a",
            "repetition_penalty",
            "prediction",
            "web_search_options",
            "verbosity",
        ],
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        reasoning_effort: true,
        ..host("cerebras")
    },
    HostQuirks {
        rejects: &["top_a", "prediction", "web_search_options", "verbosity"],
        ..host("nebius")
    },
    HostQuirks {
        rejects: &["top_a", "prediction", "web_search_options", "verbosity"],
        ..host("novita")
    },
    HostQuirks {
        rejects: &[],
        developer_role: true,
        reasoning_effort: true,
        openrouter_extensions: true,
        ..host("openrouter")
    },
];

/// The row for hosts not in [`HOSTS`].
pub const GENERIC: HostQuirks = host("generic");

/// Quirks for a provider slug (an endpoint tag such as `deepinfra/fp8` uses its base slug).
#[must_use]
pub fn quirks(provider: &str) -> &'static HostQuirks {
    let base = provider
        .split('/')
        .next()
        .unwrap_or(provider)
        .trim()
        .to_ascii_lowercase();
    HOSTS.iter().find(|h| h.slug == base).unwrap_or(&GENERIC)
}

/// OpenRouter-only request fields, never sent to a host that is not OpenRouter.
pub(crate) const OPENROUTER_ONLY: &[&str] = &[
    "models",
    "provider",
    "route",
    "plugins",
    "session_id",
    "transforms",
    "usage",
    "debug",
    "reasoning",
    "include_reasoning",
    "top_a",
    "trace",
    "user_id",
];

/// Fields stripped even when OpenRouter is the upstream (the routing decision is ours).
const ROUTING_ONLY: &[&str] = &["models", "route"];

pub(crate) fn build_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    let q = quirks(opts.provider);
    if let Some(body) = super::fast::openai_body(req, opts, q) {
        return Ok(NativeRequest {
            body,
            path: "/chat/completions".into(),
            headers: Vec::new(),
            dropped: Vec::new(),
            hints: ResponseHints::default(),
        });
    }
    build_request_value(req, opts, q)
}

/// [`build_request`] by editing the request as a `Value` (every host quirk).
pub(crate) fn build_request_value(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
    q: &HostQuirks,
) -> Result<NativeRequest> {
    let mut body = match serde_json::to_value(req) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut dropped = Vec::new();
    // Map OpenRouter reasoning onto reasoning_effort before stripping.
    if !q.openrouter_extensions && q.reasoning_effort && !body.contains_key("reasoning_effort") {
        if let Some(e) = body
            .get("reasoning")
            .and_then(|r| r.get("effort"))
            .and_then(Value::as_str)
        {
            body.insert("reasoning_effort".into(), json!(e));
        }
    }
    let strip: &[&str] = if q.openrouter_extensions {
        ROUTING_ONLY
    } else {
        OPENROUTER_ONLY
    };
    for f in strip {
        let present = body.remove(*f).is_some_and(|v| !v.is_null());
        // `reasoning` is a real parameter: report it when it could not be mapped.
        if present && *f == "reasoning" && !body.contains_key("reasoning_effort") {
            drop_param(&mut dropped, opts.strict, q.slug, "reasoning")?;
        }
    }
    if !q.reasoning_effort
        && body
            .remove("reasoning_effort")
            .is_some_and(|v| !v.is_null())
    {
        drop_param(&mut dropped, opts.strict, q.slug, "reasoning_effort")?;
    }
    for f in q.rejects {
        if body.remove(*f).is_some_and(|v| !v.is_null()) {
            drop_param(&mut dropped, opts.strict, q.slug, f)?;
        }
    }
    for (from, to) in q.renames {
        if let Some(v) = body.remove(*from) {
            body.insert((*to).to_string(), v);
        }
    }
    // Output limit.
    let limit = req.output_limit();
    body.remove("max_tokens");
    body.remove("max_completion_tokens");
    if let Some(l) = limit {
        let field = match q.max_tokens_field {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        body.insert(field.into(), json!(l));
    }
    if q.tool_choice_required != "required"
        && body.get("tool_choice").and_then(Value::as_str) == Some("required")
    {
        body.insert("tool_choice".into(), json!(q.tool_choice_required));
    }
    // Messages: developer role and names.
    if let Some(Value::Array(msgs)) = body.get_mut("messages") {
        for m in msgs.iter_mut() {
            let Some(obj) = m.as_object_mut() else {
                continue;
            };
            if !q.developer_role && obj.get("role").and_then(Value::as_str) == Some("developer") {
                obj.insert("role".into(), json!("system"));
            }
            if !q.openrouter_extensions {
                strip_cache_control(obj);
                // OpenRouter's reasoning fields on assistant turns: DeepSeek wants its reasoning back as
                // `reasoning_content`; other hosts do not know them.
                obj.remove("reasoning_details");
                match obj.remove("reasoning") {
                    Some(r) if q.slug == "deepseek" && !r.is_null() => {
                        obj.insert("reasoning_content".into(), r);
                    }
                    _ => {}
                }
            }
            if !q.message_name && obj.get("role").and_then(Value::as_str) != Some("tool") {
                if let Some(Value::String(name)) = obj.remove("name") {
                    prefix_name(obj, &name);
                }
            }
        }
    }
    if !q.openrouter_extensions {
        if let Some(Value::Array(tools)) = body.get_mut("tools") {
            for t in tools.iter_mut().filter_map(Value::as_object_mut) {
                t.remove("cache_control");
            }
        }
    }
    body.insert("model".into(), json!(opts.upstream_model));
    if opts.stream {
        body.insert("stream".into(), json!(true));
        if !body.get("stream_options").is_some_and(Value::is_object) {
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
    } else {
        body.remove("stream");
        body.remove("stream_options");
    }
    Ok(NativeRequest {
        body: NativeBody::from_value(Value::Object(body))?,
        path: "/chat/completions".into(),
        headers: Vec::new(),
        dropped,
        hints: ResponseHints::default(),
    })
}

/// `cache_control` is an Anthropic-style hint OpenRouter accepts; OpenAI-compatible hosts would reject it.
fn strip_cache_control(msg: &mut Map<String, Value>) {
    msg.remove("cache_control");
    if let Some(Value::Array(parts)) = msg.get_mut("content") {
        for p in parts.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("cache_control");
        }
    }
}

fn prefix_name(msg: &mut Map<String, Value>, name: &str) {
    match msg.get_mut("content") {
        Some(Value::String(s)) => *s = format!("{name}: {s}"),
        Some(Value::Array(parts)) => {
            if let Some(t) = parts.iter_mut().find_map(|p| p.get_mut("text")) {
                if let Some(s) = t.as_str() {
                    *t = json!(format!("{name}: {s}"));
                }
            }
        }
        _ => {}
    }
}

/// Normalize an OpenAI-shaped usage object (DeepSeek cache fields, missing details).
pub(crate) fn normalize_usage(u: &Value) -> Usage {
    let cached = u
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .or_else(|| u.get("prompt_cache_hit_tokens").and_then(Value::as_u64))
        .unwrap_or(0);
    let d = u
        .get("prompt_tokens_details")
        .cloned()
        .unwrap_or(Value::Null);
    let c = u
        .get("completion_tokens_details")
        .cloned()
        .unwrap_or(Value::Null);
    with_total(Usage {
        prompt_tokens: u64_at(u, "prompt_tokens"),
        completion_tokens: u64_at(u, "completion_tokens"),
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: cached,
            cache_write_tokens: u64_at(&d, "cache_write_tokens"),
            cache_write_1h_tokens: u64_at(&d, "cache_write_1h_tokens"),
            audio_tokens: u64_at(&d, "audio_tokens"),
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: u64_at(&c, "reasoning_tokens"),
            image_tokens: u64_at(&c, "image_tokens"),
            audio_tokens: u64_at(&c, "audio_tokens"),
        },
        ..Usage::default()
    })
}

/// Rename host reasoning fields (`reasoning_content`) to OpenRouter's `reasoning`.
pub(crate) fn normalize_reasoning_field(obj: &mut Map<String, Value>) {
    if let Some(rc) = obj.remove("reasoning_content") {
        if obj.get("reasoning").is_none_or(Value::is_null) {
            obj.insert("reasoning".into(), rc);
        }
    }
}

/// Set `finish_reason` to the normalized value, keeping the native one.
pub(crate) fn normalize_choice_finish(choice: &mut Map<String, Value>) {
    if let Some(native) = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        let norm = normalize_finish(&native);
        if !choice.contains_key("native_finish_reason") {
            choice.insert("native_finish_reason".into(), json!(native));
        }
        choice.insert("finish_reason".into(), json!(norm));
    }
}

pub(crate) fn parse_response(v: Value, ctx: &ResponseContext) -> Option<(Value, Usage)> {
    // Owned: the answer is edited in place, not copied.
    let Value::Object(mut obj) = v else {
        return None;
    };
    let choices = obj.get_mut("choices")?.as_array_mut()?;
    for c in choices.iter_mut() {
        let Some(c) = c.as_object_mut() else { continue };
        normalize_choice_finish(c);
        if let Some(Value::Object(m)) = c.get_mut("message") {
            normalize_reasoning_field(m);
        }
    }
    let usage = obj.get("usage").map(normalize_usage).unwrap_or_default();
    let id = pick(&ctx.id, obj.get("id").and_then(Value::as_str).unwrap_or("")).to_string();
    let model = pick(
        &ctx.model,
        obj.get("model").and_then(Value::as_str).unwrap_or(""),
    )
    .to_string();
    obj.insert("id".into(), json!(id));
    obj.insert("model".into(), json!(model));
    obj.insert("object".into(), json!("chat.completion"));
    // Required by OpenRouter's `ChatResult` (nullable): null when the host sends none or not a string.
    if !obj.get("system_fingerprint").is_some_and(Value::is_string) {
        obj.insert("system_fingerprint".into(), Value::Null);
    }
    if ctx.created != 0 {
        obj.insert("created".into(), json!(ctx.created));
    }
    if !ctx.provider_name.is_empty() {
        obj.insert("provider".into(), json!(ctx.provider_name));
    }
    obj.insert("usage".into(), usage_json(&usage));
    Some((Value::Object(obj), usage))
}
