//! Amazon Bedrock Converse (`POST /model/{modelId}/converse`) and ConverseStream (`…/converse-stream`, answered
//! in the binary event-stream framing, see [`crate::eventstream`]).
//!
//! Converse's conversation model is Anthropic's (alternating user/assistant turns of content blocks, tool results
//! in user turns, a separate system list), so the request is first built by the Anthropic translation (merging,
//! tool results, images, reasoning budgets, structured output as a forced tool) and then rewritten block by block
//! into Converse's shapes:
//! - `text` → `{text}`; a block with `cache_control` is followed by `{cachePoint: {type: default}}` (system,
//!   messages and tools alike);
//! - base64 `image` → `{image: {format, source: {bytes}}}`; a PDF `document` → `{document: {format: pdf, name,
//!   source: {bytes}}}`; URL sources are dropped (Converse takes bytes or S3 locations only);
//! - `tool_use` → `{toolUse: {toolUseId, name, input}}`, `tool_result` → `{toolResult: {toolUseId, content,
//!   status}}`; `thinking` → `{reasoningContent: {reasoningText: {text, signature}}}`, `redacted_thinking` →
//!   `{reasoningContent: {redactedContent}}`;
//! - `max_tokens`, `temperature`, `top_p`, `stop_sequences` → `inferenceConfig`; tools → `toolConfig.tools[].
//!   toolSpec` with `inputSchema.json`; `tool_choice` auto/any/tool → `{auto: {}}`/`{any: {}}`/`{tool: {name}}`
//!   (`none` leaves the choice out);
//! - Claude models (`anthropic.` ids, with or without a cross-region prefix) get `thinking` and `top_k` in
//!   `additionalModelRequestFields`; other families have no reasoning switch in Converse, so they are dropped.
//!
//! Answers are read back through the Anthropic answer translation (see [`response`] and [`stream`]).

pub(crate) mod response;
pub(crate) mod stream;

use serde_json::{json, Map, Value};

use super::{drop_param, NativeBody, NativeRequest, TranslateOptions};
use crate::error::Result;
use crate::types::ChatRequest;

pub(crate) use response::parse_response;
pub use response::{exception_name, map_error};

/// Whether a Bedrock model id is a Claude model (`anthropic.…`, `us.anthropic.…`, an inference-profile ARN).
#[must_use]
pub fn is_claude(model_id: &str) -> bool {
    model_id.contains("anthropic.")
}

/// A Bedrock model id as one path segment (`:` and `/` of versions and ARNs escaped).
#[must_use]
pub fn model_path_segment(model_id: &str) -> String {
    let mut s = String::with_capacity(model_id.len() + 8);
    for b in model_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

pub(crate) fn build_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    let mut aopts = *opts;
    // Converse has no native structured-output switch: the schema travels as a forced tool.
    aopts.supports_native_structured_output = false;
    aopts.stream = false;
    let native = super::anthropic::build_request(req, &aopts)?;
    let mut dropped = native.dropped;
    let src = native.body.value().clone();
    let claude = is_claude(opts.upstream_model);
    let mut drop = |path: &str| drop_param(&mut dropped, opts.strict, "amazon-bedrock", path);

    let mut body = Map::new();
    let mut messages = Vec::new();
    for m in src
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = match m.get("content") {
            Some(Value::String(s)) => vec![json!({"text": s})],
            Some(Value::Array(blocks)) => convert_blocks(blocks, &mut drop)?,
            _ => Vec::new(),
        };
        if !content.is_empty() {
            messages.push(json!({"role": role, "content": content}));
        }
    }
    body.insert("messages".into(), Value::Array(messages));
    if let Some(Value::Array(sys)) = src.get("system") {
        let blocks = convert_blocks(sys, &mut drop)?;
        if !blocks.is_empty() {
            body.insert("system".into(), Value::Array(blocks));
        }
    }
    let mut inference = Map::new();
    if let Some(n) = src.get("max_tokens") {
        inference.insert("maxTokens".into(), n.clone());
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("stop_sequences", "stopSequences"),
    ] {
        if let Some(v) = src.get(from) {
            inference.insert(to.into(), v.clone());
        }
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    let mut extra = Map::new();
    if let Some(k) = src.get("top_k") {
        if claude {
            extra.insert("top_k".into(), k.clone());
        } else {
            drop("top_k")?;
        }
    }
    if let Some(t) = src.get("thinking") {
        if claude {
            extra.insert("thinking".into(), t.clone());
            if let Some(effort) = src.pointer("/output_config/effort") {
                extra.insert("output_config".into(), json!({"effort": effort}));
            }
        } else {
            drop("reasoning")?;
        }
    }
    if !extra.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    if let Some(Value::Array(tools)) = src.get("tools") {
        let mut specs = Vec::with_capacity(tools.len());
        for t in tools {
            let Some(name) = t.get("name") else {
                drop("tools")?;
                continue;
            };
            let mut spec = Map::new();
            spec.insert("name".into(), name.clone());
            if let Some(d) = t.get("description") {
                spec.insert("description".into(), d.clone());
            }
            let schema = t
                .get("input_schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            spec.insert("inputSchema".into(), json!({"json": schema}));
            specs.push(json!({"toolSpec": spec}));
            if t.get("cache_control").is_some() {
                specs.push(json!({"cachePoint": {"type": "default"}}));
            }
        }
        let mut tc = Map::new();
        tc.insert("tools".into(), Value::Array(specs));
        if let Some(choice) = src.get("tool_choice") {
            if choice.get("disable_parallel_tool_use").is_some() {
                drop("parallel_tool_calls")?;
            }
            match choice.get("type").and_then(Value::as_str) {
                Some("any") => {
                    tc.insert("toolChoice".into(), json!({"any": {}}));
                }
                Some("tool") => {
                    let name = choice.get("name").cloned().unwrap_or(Value::Null);
                    tc.insert("toolChoice".into(), json!({"tool": {"name": name}}));
                }
                Some("auto") => {
                    tc.insert("toolChoice".into(), json!({"auto": {}}));
                }
                _ => {}
            }
        }
        body.insert("toolConfig".into(), Value::Object(tc));
    }
    let verb = if opts.stream {
        "converse-stream"
    } else {
        "converse"
    };
    let body = Value::Object(body);
    Ok(NativeRequest {
        body: NativeBody::from_serialize(&body, 1024 + 384 * req.messages.len())?,
        path: format!("/model/{}/{verb}", model_path_segment(opts.upstream_model)),
        headers: Vec::new(),
        dropped,
        hints: native.hints,
    })
}

fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// Anthropic content blocks → Converse content blocks.
fn convert_blocks(
    blocks: &[Value],
    drop: &mut impl FnMut(&str) -> Result<()>,
) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let ty = b.get("type").and_then(Value::as_str).unwrap_or("");
        let s = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
        let converted = match ty {
            "text" => Some(json!({"text": s("text")})),
            "image" => match media(b) {
                Some((mt, data)) => match image_format(mt) {
                    Some(f) => Some(json!({"image": {"format": f, "source": {"bytes": data}}})),
                    None => {
                        drop("messages.content.image_url")?;
                        None
                    }
                },
                None => {
                    drop("messages.content.image_url")?;
                    None
                }
            },
            "document" => match media(b) {
                Some(("application/pdf", data)) => Some(json!({"document": {
                    "format": "pdf", "name": format!("document-{}", i + 1), "source": {"bytes": data}}})),
                _ => {
                    drop("messages.content.file")?;
                    None
                }
            },
            "tool_use" => Some(json!({"toolUse": {
                "toolUseId": s("id"), "name": s("name"), "input": b.get("input").cloned().unwrap_or_else(|| json!({}))}})),
            "tool_result" => {
                let content = match b.get("content") {
                    Some(Value::String(t)) => vec![json!({"text": t})],
                    Some(Value::Array(parts)) => convert_blocks(parts, drop)?
                        .into_iter()
                        .filter(|p| p.get("cachePoint").is_none())
                        .collect(),
                    _ => Vec::new(),
                };
                let content = if content.is_empty() {
                    vec![json!({"text": ""})]
                } else {
                    content
                };
                let mut r = json!({"toolUseId": s("tool_use_id"), "content": content});
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    r["status"] = json!("error");
                }
                Some(json!({ "toolResult": r }))
            }
            "thinking" => {
                let mut rt = json!({"text": s("thinking")});
                if let Some(sig) = b.get("signature").filter(|v| !v.is_null()) {
                    rt["signature"] = sig.clone();
                }
                Some(json!({"reasoningContent": {"reasoningText": rt}}))
            }
            "redacted_thinking" => {
                Some(json!({"reasoningContent": {"redactedContent": s("data")}}))
            }
            _ => None,
        };
        if let Some(c) = converted {
            out.push(c);
            if b.get("cache_control").is_some() {
                out.push(json!({"cachePoint": {"type": "default"}}));
            }
        }
    }
    Ok(out)
}

/// `(media_type, base64 data)` of a base64 source.
fn media(b: &Value) -> Option<(&str, &Value)> {
    let src = b.get("source")?;
    if src.get("type").and_then(Value::as_str) != Some("base64") {
        return None;
    }
    Some((src.get("media_type")?.as_str()?, src.get("data")?))
}
