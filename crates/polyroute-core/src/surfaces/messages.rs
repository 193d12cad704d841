//! Anthropic's Messages API (`POST /v1/messages`) as a surface of the chat lifecycle.
//!
//! Request ([`to_chat`]), Messages → chat:
//! - `system` (string or text blocks) becomes the first `system` message; `role: system` turns stay in place;
//! - `text` blocks become text parts (`cache_control` kept), `image` blocks `image_url` parts (base64 as a data
//!   URI, `url` as is), base64 PDF `document` blocks `file` parts; other documents (text, URL or file sources,
//!   titles, citations) and blocks without a chat equivalent (`search_result`, server-tool results) are kept
//!   as they are, which the Anthropic dialect forwards and the others drop (listed as dropped);
//! - `tool_result` blocks become `tool` messages (placed before the user's other blocks, as Anthropic orders
//!   them), `tool_use` blocks assistant `tool_calls`, `thinking` / `redacted_thinking` blocks
//!   `reasoning_details` (`anthropic-claude-v1`, signature kept), which the Anthropic dialect sends back
//!   unmodified;
//! - `tools` become function tools (`input_schema` → `parameters`, `cache_control` kept), `tool_choice`
//!   `auto/any/tool/none` → `auto/required/{function}/none` (`disable_parallel_tool_use` →
//!   `parallel_tool_calls: false`);
//! - `thinking: enabled` → `reasoning.max_tokens` (the budget), `adaptive` → `reasoning.effort`
//!   (`output_config.effort`, else medium), `disabled` → `reasoning.enabled: false`, `display: omitted` →
//!   `reasoning.exclude`; `output_config.format` → `response_format: json_schema` (`output_config.effort`
//!   without adaptive thinking is left out: in chat terms it would turn reasoning on);
//! - `stop_sequences` → `stop`, `metadata.user_id` → `user`, `service_tier: standard_only` → `default`;
//!   `temperature`, `top_p`, `top_k`, `cache_control`, `stream` and OpenRouter's `models`, `provider`, … as is;
//!   Anthropic's server-side fields (`container`, `mcp_servers`, `context_management`, `inference_geo`, `speed`)
//!   are accepted and left out; any other unknown field is refused naming it.
//!
//! What the round trip to an Anthropic endpoint does not keep: `caller` on replayed `tool_use` blocks (set by the
//! API itself), empty text blocks, a `cache_control` on a `tool_use` block other than the turn's last, the order of
//! an assistant turn's blocks (always thinking, text, tool_use), and `citations` on text blocks.
//!
//! Answer ([`from_chat`]): thinking blocks first (from `reasoning_details`, else the `reasoning` text), then the
//! text, then one `tool_use` per tool call; `stop_reason` from the provider's own value when it is an Anthropic
//! one, else from `finish_reason` (`stop` → `end_turn`, `length` → `max_tokens`, `tool_calls` → `tool_use`,
//! `content_filter` → `refusal`); `usage.input_tokens` excludes cache reads and writes (Anthropic's rule), and
//! `usage.cost` is polyroute's cost in USD.

use serde_json::{json, Map, Value};

use super::{
    arguments_object, arguments_text, copy_common, object, opt_array, opt_str, opt_u64, At,
};
use super::{req_str, usage_counts, ROUTING_FIELDS};
use crate::error::{Error, Result};

/// `reasoning_details[].format` of Anthropic thinking.
const FORMAT: &str = "anthropic-claude-v1";

/// Top-level Messages fields with no chat equivalent, left out (server-side features of Anthropic's own API).
const IGNORED: &[&str] = &[
    "container",
    "mcp_servers",
    "context_management",
    "inference_geo",
    "speed",
    "betas",
    "anthropic_version",
];

/// Translate a Messages request into the chat request the lifecycle routes.
///
/// # Errors
/// [`Error::InvalidRequest`] naming the Messages field that is missing or malformed.
pub fn to_chat(body: &Value) -> Result<Value> {
    let m = object(body)?;
    let mut out = Map::new();
    if let Some(model) = opt_str(m, "model", "model")? {
        out.insert("model".into(), json!(model));
    }
    copy_common(m, &mut out, ROUTING_FIELDS);
    if m.get("fallbacks").is_some_and(|v| !v.is_null()) {
        let mut folded = body.clone();
        fold_fallbacks(&mut folded)?;
        if let Some(models) = folded.get("models") {
            out.insert("models".into(), models.clone());
        }
    }
    match opt_u64(m, "max_tokens", "max_tokens")? {
        Some(0) => return Err(Error::invalid("max_tokens", "must be at least 1")),
        Some(n) => {
            out.insert("max_tokens".into(), json!(n));
        }
        None => return Err(Error::invalid("max_tokens", "required")),
    }
    let mut msgs: Vec<Value> = Vec::new();
    match m.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.is_empty() {
                msgs.push(json!({"role": "system", "content": s}));
            }
        }
        Some(Value::Array(blocks)) => {
            let parts = text_parts(blocks, "system")?;
            if !parts.is_empty() {
                msgs.push(json!({"role": "system", "content": parts}));
            }
        }
        Some(_) => {
            return Err(Error::invalid(
                "system",
                "must be a string or an array of text blocks",
            ))
        }
    }
    let turns = match m.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => {
            return Err(Error::invalid(
                "messages",
                "must contain at least one message",
            ))
        }
        _ => return Err(Error::invalid("messages", "required: an array of messages")),
    };
    for (i, t) in turns.iter().enumerate() {
        turn(&mut msgs, t, i)?;
    }
    out.insert("messages".into(), Value::Array(msgs));
    tools(m, &mut out)?;
    thinking(m, &mut out)?;
    let stops = opt_array(m, "stop_sequences", "stop_sequences")?;
    if !stops.is_empty() {
        if let Some(i) = stops.iter().position(|s| !s.is_string()) {
            return Err(Error::invalid(
                format!("stop_sequences[{i}]"),
                "must be a string",
            ));
        }
        out.insert("stop".into(), Value::Array(stops.to_vec()));
    }
    copy_common(
        m,
        &mut out,
        &["temperature", "top_p", "top_k", "cache_control", "stream"],
    );
    if let Some(meta) = m.get("metadata").filter(|v| !v.is_null()) {
        match meta.get("user_id") {
            Some(Value::String(u)) => {
                out.insert("user".into(), json!(u));
            }
            None | Some(Value::Null) => {}
            Some(_) => return Err(Error::invalid("metadata.user_id", "must be a string")),
        }
    }
    match opt_str(m, "service_tier", "service_tier")? {
        None => {}
        Some("auto") => {
            out.insert("service_tier".into(), json!("auto"));
        }
        Some("standard_only") => {
            out.insert("service_tier".into(), json!("default"));
        }
        Some(other) => {
            return Err(Error::invalid(
                "service_tier",
                format!("{other:?} is not one of auto, standard_only"),
            ))
        }
    }
    for k in m.keys() {
        let known = matches!(
            k.as_str(),
            "model"
                | "fallbacks"
                | "max_tokens"
                | "system"
                | "messages"
                | "tools"
                | "tool_choice"
                | "thinking"
                | "output_config"
                | "stop_sequences"
                | "temperature"
                | "top_p"
                | "top_k"
                | "cache_control"
                | "stream"
                | "metadata"
                | "service_tier"
        ) || ROUTING_FIELDS.contains(&k.as_str())
            || IGNORED.contains(&k.as_str());
        if !known {
            return Err(Error::invalid(
                crate::types::limits::shown(k),
                "unknown field: not a Messages API or OpenRouter request parameter",
            ));
        }
    }
    Ok(Value::Object(out))
}

/// Fold OpenRouter's Anthropic-style `fallbacks: [{model}]` into `models` (`model` first), in place, so that
/// what checks `model`/`models` (a gateway key's model list) sees every model the request may use.
///
/// # Errors
/// `fallbacks` combined with `models`, or not a list of `{model}`.
pub fn fold_fallbacks(body: &mut Value) -> Result<()> {
    let Some(m) = body.as_object_mut() else {
        return Ok(());
    };
    let Some(fb) = m.remove("fallbacks").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    if m.get("models").is_some_and(|v| !v.is_null()) {
        return Err(Error::invalid(
            "fallbacks",
            "cannot be combined with `models`",
        ));
    }
    let list = fb
        .as_array()
        .ok_or_else(|| Error::invalid("fallbacks", "must be an array of {model}"))?;
    let mut models: Vec<Value> = m
        .get("model")
        .filter(|v| v.is_string())
        .cloned()
        .into_iter()
        .collect();
    for (i, f) in list.iter().enumerate() {
        let slug = f
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("fallbacks[{i}].model"), "required string"))?;
        models.push(json!(slug));
    }
    m.insert("models".into(), Value::Array(models));
    Ok(())
}

/// Text blocks (`system`, assistant text) as chat text parts, `cache_control` kept.
fn text_parts(blocks: &[Value], path: &str) -> Result<Vec<Value>> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        let bm = b
            .as_object()
            .ok_or_else(|| Error::invalid(format!("{path}[{j}]"), "must be a text block"))?;
        if bm.get("type").and_then(Value::as_str) != Some("text") {
            return Err(Error::invalid(
                format!("{path}[{j}].type"),
                "must be `text`",
            ));
        }
        let text = req_str(bm, "text", &format!("{path}[{j}].text"))?;
        parts.push(text_part(text, bm.get("cache_control")));
    }
    Ok(parts)
}

fn text_part(text: &str, cache: Option<&Value>) -> Value {
    let mut p = json!({"type": "text", "text": text});
    if let Some(cc) = cache.filter(|v| v.is_object()) {
        p["cache_control"] = cc.clone();
    }
    p
}

/// One Messages turn as chat messages.
fn turn(msgs: &mut Vec<Value>, t: &Value, i: usize) -> Result<()> {
    let tm = t
        .as_object()
        .ok_or_else(|| Error::invalid(format!("messages[{i}]"), "must be an object"))?;
    let role = req_str(tm, "role", &format!("messages[{i}].role"))?;
    let content = tm.get("content");
    let cpath = format!("messages[{i}].content");
    let blocks: Vec<Value> = match content {
        Some(Value::String(s)) => {
            let r = if role == "system" { "system" } else { role };
            if !matches!(r, "user" | "assistant" | "system") {
                return Err(Error::invalid(
                    format!("messages[{i}].role"),
                    "must be `user` or `assistant`",
                ));
            }
            msgs.push(json!({"role": r, "content": s}));
            return Ok(());
        }
        Some(Value::Array(a)) => a.clone(),
        _ => {
            return Err(Error::invalid(
                cpath,
                "required: a string or an array of content blocks",
            ))
        }
    };
    for (j, b) in blocks.iter().enumerate() {
        if !b.get("type").is_some_and(Value::is_string) {
            return Err(Error::invalid(
                format!("{cpath}[{j}].type"),
                "required: the block's type",
            ));
        }
    }
    match role {
        "user" => user_turn(msgs, &blocks, &cpath),
        "assistant" => assistant_turn(msgs, &blocks, &cpath),
        "system" => {
            let parts = text_parts(&blocks, &cpath)?;
            msgs.push(json!({"role": "system", "content": parts}));
            Ok(())
        }
        _ => Err(Error::invalid(
            format!("messages[{i}].role"),
            format!("{role:?} is not one of user, assistant"),
        )),
    }
}

fn user_turn(msgs: &mut Vec<Value>, blocks: &[Value], cpath: &str) -> Result<()> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        let path = format!("{cpath}[{j}]");
        let bm = b
            .as_object()
            .ok_or_else(|| Error::invalid(&path, "must be an object"))?;
        let cache = bm.get("cache_control").filter(|v| v.is_object());
        match bm.get("type").and_then(Value::as_str).unwrap_or("") {
            "tool_result" => msgs.push(tool_message(bm, &path)?),
            "text" => {
                let text = req_str(bm, "text", &format!("{path}.text"))?;
                parts.push(text_part(text, cache));
            }
            "image" | "document" => parts.push(media_part(bm, &path)?),
            "thinking" | "redacted_thinking" | "tool_use" => {
                return Err(Error::invalid(
                    format!("{path}.type"),
                    "only assistant turns carry thinking and tool_use blocks",
                ))
            }
            // search_result and other native blocks: forwarded to Anthropic as they are.
            _ => parts.push(b.clone()),
        }
    }
    if !parts.is_empty() {
        msgs.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// A `tool_result` block as a chat `tool` message.
fn tool_message(bm: &Map<String, Value>, path: &str) -> Result<Value> {
    let id = req_str(bm, "tool_use_id", &format!("{path}.tool_use_id"))?;
    let content = match bm.get("content") {
        None | Some(Value::Null) => json!(""),
        Some(Value::String(s)) => json!(s),
        Some(Value::Array(inner)) => {
            let mut parts = Vec::with_capacity(inner.len());
            for (k, p) in inner.iter().enumerate() {
                let ipath = format!("{path}.content[{k}]");
                let pm = p
                    .as_object()
                    .ok_or_else(|| Error::invalid(&ipath, "must be a content block"))?;
                match pm.get("type").and_then(Value::as_str) {
                    Some("text") => parts.push(text_part(
                        req_str(pm, "text", &format!("{ipath}.text"))?,
                        pm.get("cache_control"),
                    )),
                    Some("image" | "document") => parts.push(media_part(pm, &ipath)?),
                    Some(_) => parts.push(p.clone()),
                    None => return Err(Error::invalid(format!("{ipath}.type"), "required")),
                }
            }
            Value::Array(parts)
        }
        Some(_) => {
            return Err(Error::invalid(
                format!("{path}.content"),
                "must be a string or an array of blocks",
            ))
        }
    };
    let mut msg = json!({"role": "tool", "tool_call_id": id, "content": content});
    if bm.get("is_error").and_then(Value::as_bool) == Some(true) {
        msg["is_error"] = json!(true);
    }
    if let Some(cc) = bm.get("cache_control").filter(|v| v.is_object()) {
        msg["cache_control"] = cc.clone();
    }
    Ok(msg)
}

/// An `image` or `document` block as a chat part: base64 images and URL images as `image_url`, base64 PDFs as
/// `file`; anything else (text/file sources, titles, citations) kept in Anthropic's shape.
fn media_part(bm: &Map<String, Value>, path: &str) -> Result<Value> {
    let kind = bm.get("type").and_then(Value::as_str).unwrap_or("image");
    let src = bm
        .get("source")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::invalid(format!("{path}.source"), "required: an object"))?;
    let spath = format!("{path}.source");
    let cache = bm.get("cache_control").filter(|v| v.is_object());
    let plain = !["title", "context", "citations"]
        .iter()
        .any(|k| bm.get(*k).is_some_and(|v| !v.is_null()));
    let mut part = match (kind, src.get("type").and_then(Value::as_str)) {
        ("image", Some("base64")) => {
            let mt = req_str(src, "media_type", &format!("{spath}.media_type"))?;
            let data = req_str(src, "data", &format!("{spath}.data"))?;
            json!({"type": "image_url", "image_url": {"url": format!("data:{mt};base64,{data}")}})
        }
        ("image", Some("url")) => {
            let url = req_str(src, "url", &format!("{spath}.url"))?;
            json!({"type": "image_url", "image_url": {"url": url}})
        }
        ("document", Some("base64")) if plain => {
            let mt = req_str(src, "media_type", &format!("{spath}.media_type"))?;
            let data = req_str(src, "data", &format!("{spath}.data"))?;
            if mt != "application/pdf" {
                return Err(Error::invalid(
                    format!("{spath}.media_type"),
                    "base64 documents must be application/pdf",
                ));
            }
            json!({"type": "file", "file": {"filename": "document.pdf",
                   "file_data": format!("data:{mt};base64,{data}")}})
        }
        (_, Some(_)) => return Ok(Value::Object(bm.clone())),
        (_, None) => return Err(Error::invalid(format!("{spath}.type"), "required")),
    };
    if let Some(cc) = cache {
        part["cache_control"] = cc.clone();
    }
    Ok(part)
}

fn assistant_turn(msgs: &mut Vec<Value>, blocks: &[Value], cpath: &str) -> Result<()> {
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut details = Vec::new();
    let mut last_cache: Option<Value> = None;
    for (j, b) in blocks.iter().enumerate() {
        let path = format!("{cpath}[{j}]");
        let bm = b
            .as_object()
            .ok_or_else(|| Error::invalid(&path, "must be an object"))?;
        last_cache = None;
        match bm.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let text = req_str(bm, "text", &format!("{path}.text"))?;
                parts.push(text_part(text, bm.get("cache_control")));
            }
            "thinking" => {
                let text = req_str(bm, "thinking", &format!("{path}.thinking"))?;
                let sig = opt_str(bm, "signature", &format!("{path}.signature"))?.unwrap_or("");
                details.push(json!({"type": "reasoning.text", "text": text, "signature": sig,
                                    "format": FORMAT, "index": details.len()}));
            }
            "redacted_thinking" => {
                let data = req_str(bm, "data", &format!("{path}.data"))?;
                details.push(json!({"type": "reasoning.encrypted", "data": data, "format": FORMAT,
                                    "index": details.len()}));
            }
            "tool_use" => {
                let id = req_str(bm, "id", &format!("{path}.id"))?;
                let name = req_str(bm, "name", &format!("{path}.name"))?;
                let input = bm.get("input").cloned().unwrap_or_else(|| json!({}));
                if !input.is_object() {
                    return Err(Error::invalid(format!("{path}.input"), "must be an object"));
                }
                calls.push(json!({"id": id, "type": "function",
                                  "function": {"name": name, "arguments": input.to_string()}}));
                last_cache = bm.get("cache_control").filter(|v| v.is_object()).cloned();
            }
            other => {
                return Err(Error::invalid(
                    format!("{path}.type"),
                    format!("{other:?} is not an assistant block polyroute can replay (text, thinking, redacted_thinking, tool_use)"),
                ))
            }
        }
    }
    let plain = parts.iter().all(|p| p.get("cache_control").is_none());
    let content = if parts.is_empty() {
        Value::Null
    } else if plain {
        let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        json!(text.concat())
    } else {
        Value::Array(parts)
    };
    let mut msg = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    if !details.is_empty() {
        msg["reasoning_details"] = Value::Array(details);
    }
    // A `cache_control` on the closing tool_use: the Anthropic dialect puts a message's on its last block.
    if let Some(cc) = last_cache {
        msg["cache_control"] = cc;
    }
    msgs.push(msg);
    Ok(())
}

fn tools(m: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<()> {
    let list = opt_array(m, "tools", "tools")?;
    let mut tools = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let tm = t
            .as_object()
            .ok_or_else(|| Error::invalid(format!("tools[{i}]"), "must be an object"))?;
        match tm.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            // Server tools (web search, code execution, …): kept; dialects without them drop them.
            Some(_) => {
                tools.push(t.clone());
                continue;
            }
        }
        let name = req_str(tm, "name", &format!("tools[{i}].name"))?;
        let schema = tm.get("input_schema").filter(|v| !v.is_null());
        if schema.is_some_and(|s| !s.is_object()) {
            return Err(Error::invalid(
                format!("tools[{i}].input_schema"),
                "must be a JSON schema object",
            ));
        }
        let mut f = json!({"name": name,
                           "parameters": schema.cloned().unwrap_or_else(|| json!({"type": "object"}))});
        if let Some(d) = opt_str(tm, "description", &format!("tools[{i}].description"))? {
            f["description"] = json!(d);
        }
        if let Some(s) = tm.get("strict").filter(|v| v.is_boolean()) {
            f["strict"] = s.clone();
        }
        let mut tool = json!({"type": "function", "function": f});
        if let Some(cc) = tm.get("cache_control").filter(|v| v.is_object()) {
            tool["cache_control"] = cc.clone();
        }
        tools.push(tool);
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    let Some(tc) = m.get("tool_choice").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let ty = tc.get("type").and_then(Value::as_str);
    let choice = match ty {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = tc
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("tool_choice.name", "required for type `tool`"))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(Error::invalid(
                "tool_choice.type",
                "must be one of auto, any, tool, none",
            ))
        }
    };
    out.insert("tool_choice".into(), choice);
    if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

fn thinking(m: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<()> {
    let oc = m.get("output_config").filter(|v| !v.is_null());
    if oc.is_some_and(|v| !v.is_object()) {
        return Err(Error::invalid("output_config", "must be an object"));
    }
    let effort = oc
        .and_then(|o| o.get("effort"))
        .filter(|v| !v.is_null())
        .map(|e| {
            e.as_str()
                .ok_or_else(|| Error::invalid("output_config.effort", "must be a string"))
        })
        .transpose()?;
    if let Some(fmt) = oc.and_then(|o| o.get("format")).filter(|v| !v.is_null()) {
        match fmt.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let schema = fmt.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
                    Error::invalid(
                        "output_config.format.schema",
                        "required: a JSON schema object",
                    )
                })?;
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema",
                           "json_schema": {"name": "output", "strict": true, "schema": schema}}),
                );
            }
            _ => {
                return Err(Error::invalid(
                    "output_config.format.type",
                    "must be `json_schema`",
                ))
            }
        }
    }
    let mut reasoning = Map::new();
    match m.get("thinking").filter(|v| !v.is_null()) {
        None => {}
        Some(t) => {
            match t.get("type").and_then(Value::as_str) {
                Some("enabled") => {
                    let budget =
                        t.get("budget_tokens")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| {
                                Error::invalid(
                                    "thinking.budget_tokens",
                                    "required: a positive integer",
                                )
                            })?;
                    reasoning.insert("max_tokens".into(), json!(budget));
                }
                Some("adaptive") => {
                    reasoning.insert("effort".into(), json!(effort.unwrap_or("medium")));
                }
                Some("disabled") => {
                    reasoning.insert("enabled".into(), json!(false));
                }
                _ => {
                    return Err(Error::invalid(
                        "thinking.type",
                        "must be one of enabled, adaptive, disabled",
                    ))
                }
            }
            if t.get("display").and_then(Value::as_str) == Some("omitted") {
                reasoning.insert("exclude".into(), json!(true));
            }
        }
    }
    // `output_config.effort` without `thinking` has no chat equivalent that would not turn reasoning on: left out.
    if !reasoning.is_empty() {
        out.insert("reasoning".into(), Value::Object(reasoning));
    }
    Ok(())
}

/// Anthropic stop reasons a provider's own value may already be.
const STOP_REASONS: &[&str] = &[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

/// The Anthropic `stop_reason` of a chat finish (the provider's own value when it is an Anthropic one).
#[must_use]
pub fn stop_reason(finish: Option<&str>, native: Option<&str>) -> &'static str {
    if let Some(n) = native.and_then(|n| STOP_REASONS.iter().find(|s| **s == n)) {
        return n;
    }
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// A chat `usage` (with `cost`) as Messages usage: `input_tokens` without cache reads and writes.
#[must_use]
pub fn usage(u: &Value) -> Value {
    let (prompt, completion, read, write, _) = usage_counts(u);
    let mut out = json!({
        "input_tokens": prompt.saturating_sub(read).saturating_sub(write),
        "output_tokens": completion,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    });
    if let Some(c) = u.get("cost").filter(|c| !c.is_null()) {
        out["cost"] = c.clone();
    }
    out
}

/// Translate a chat completion (as the engine returns it) into a Messages response.
#[must_use]
pub fn from_chat(answer: &Value) -> Value {
    let choice = answer.at(&["choices", "0"]).unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let mut thinking = false;
    if let Some(Value::Array(details)) = msg.get("reasoning_details") {
        for d in details {
            match d.get("type").and_then(Value::as_str) {
                Some("reasoning.text") => {
                    thinking = true;
                    content.push(json!({"type": "thinking",
                        "thinking": d.get("text").and_then(Value::as_str).unwrap_or(""),
                        "signature": d.get("signature").and_then(Value::as_str).unwrap_or("")}));
                }
                Some("reasoning.encrypted") => {
                    thinking = true;
                    content.push(json!({"type": "redacted_thinking",
                        "data": d.get("data").and_then(Value::as_str).unwrap_or("")}));
                }
                _ => {}
            }
        }
    }
    if !thinking {
        if let Some(r) = msg
            .get("reasoning")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
        }
    }
    let text = match msg.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    let text = if text.is_empty() {
        msg.get("refusal")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    } else {
        text
    };
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for c in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = arguments_text(c.at(&["function", "arguments"]));
        content.push(json!({"type": "tool_use",
            "id": c.get("id").and_then(Value::as_str).unwrap_or(""),
            "name": c.at(&["function", "name"]).and_then(Value::as_str).unwrap_or(""),
            "input": arguments_object(&args)}));
    }
    let reason = stop_reason(
        choice.get("finish_reason").and_then(Value::as_str),
        choice.get("native_finish_reason").and_then(Value::as_str),
    );
    let mut out = json!({
        "id": answer.get("id").cloned().unwrap_or_else(|| json!("")),
        "type": "message",
        "role": "assistant",
        "model": answer.get("model").cloned().unwrap_or_else(|| json!("")),
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": usage(answer.get("usage").unwrap_or(&Value::Null)),
    });
    if let Some(p) = answer.get("provider").filter(|p| !p.is_null()) {
        out["provider"] = p.clone();
    }
    out
}

/// An Anthropic error `type` for an HTTP status.
#[must_use]
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// An OpenRouter error envelope (`{error: {code, message, metadata}}`) as Anthropic's error body
/// (`{type: "error", error: {type, message}}`), keeping OpenRouter's `error_type` beside it.
#[must_use]
pub fn error_body(status: u16, envelope: &Value) -> Value {
    let e = envelope.get("error").unwrap_or(envelope);
    let message = e.get("message").and_then(Value::as_str).unwrap_or("error");
    let mut err = json!({"type": error_type(status), "message": message});
    if let Some(t) = e.at(&["metadata", "error_type"]).filter(|v| v.is_string()) {
        err["error_type"] = t.clone();
    }
    json!({"type": "error", "error": err})
}

/// The error for a Messages request: its status and Anthropic-shaped body.
#[must_use]
pub fn error_of(e: &Error) -> (u16, Value) {
    let status = e.http_status();
    (status, error_body(status, &e.to_envelope()))
}
