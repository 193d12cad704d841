//! OpenAI's Responses API (`POST /v1/responses`) as a stateless surface of the chat lifecycle, as OpenRouter
//! serves it: `previous_response_id`, `conversation`, `background` and `store: true` are refused (the whole
//! conversation comes in `input`).
//!
//! Request ([`to_chat`]): `instructions` becomes the first `system` message; `input` (a string, or items)
//! becomes messages: `message` items (`input_text`, `input_image`, `input_file`, `output_text`, `refusal`
//! parts), `function_call` items assistant `tool_calls` (consecutive ones in one message), `function_call_output`
//! items `tool` messages, `reasoning` items `reasoning_details` of the next assistant message. Function `tools`
//! become chat function tools (other tool types are kept, and dropped by dialects without them), `tool_choice`
//! likewise; `text.format` `json_schema` / `json_object` → `response_format`, `text.verbosity` → `verbosity`,
//! `reasoning.effort` (and OpenRouter's `max_tokens`, `exclude`, `enabled`) → `reasoning`,
//! `max_output_tokens` → `max_tokens`.
//!
//! Answer ([`from_chat`]): a `response` object whose `output` holds a `reasoning` item (when the model reasoned),
//! a `message` item with the text (or a refusal) and one `function_call` item per tool call; `status` is
//! `incomplete` (with `incomplete_details.reason`) when the output limit or a content filter cut the answer;
//! `usage` counts input (with `cached_tokens`), output (with `reasoning_tokens`) and `cost` in USD.

use serde_json::{json, Map, Value};

use super::{
    arguments_text, copy_common, id_tail, object, opt_array, opt_str, opt_u64, req_str, At,
};
use super::{usage_counts, ROUTING_FIELDS};
use crate::error::{Error, Result};

/// `reasoning_details[].format` of OpenAI Responses reasoning.
const FORMAT: &str = "openai-responses-v1";

/// The refusal of stateful features.
fn stateless(field: &str) -> Error {
    Error::invalid(
        field,
        "polyroute's Responses API is stateless, like OpenRouter's: it keeps no responses or conversations. \
         Send the whole conversation in `input` (and leave `store` false)",
    )
}

/// Translate a Responses request into the chat request the lifecycle routes.
///
/// # Errors
/// [`Error::InvalidRequest`] naming the Responses field that is missing, malformed or unsupported
/// (`previous_response_id`, `store: true`, `conversation`, `background: true`, `prompt`).
pub fn to_chat(body: &Value) -> Result<Value> {
    let m = object(body)?;
    if m.get("previous_response_id").is_some_and(|v| !v.is_null()) {
        return Err(stateless("previous_response_id"));
    }
    if m.get("store").and_then(Value::as_bool) == Some(true) {
        return Err(stateless("store"));
    }
    if m.get("conversation").is_some_and(|v| !v.is_null()) {
        return Err(stateless("conversation"));
    }
    if m.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(stateless("background"));
    }
    if m.get("prompt").is_some_and(|v| !v.is_null()) {
        return Err(Error::invalid(
            "prompt",
            "stored prompt templates are not supported: send `instructions` and `input`",
        ));
    }
    let mut out = Map::new();
    if let Some(model) = opt_str(m, "model", "model")? {
        out.insert("model".into(), json!(model));
    }
    copy_common(m, &mut out, ROUTING_FIELDS);
    let mut msgs: Vec<Value> = Vec::new();
    if let Some(i) = opt_str(m, "instructions", "instructions")?.filter(|s| !s.is_empty()) {
        msgs.push(json!({"role": "system", "content": i}));
    }
    match m.get("input") {
        Some(Value::String(s)) => msgs.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            let mut pending: Vec<Value> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                input_item(&mut msgs, &mut pending, item, i)?;
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(Error::invalid(
                "input",
                "must be a string or an array of input items",
            ))
        }
    }
    if msgs.iter().all(|m| m["role"] == "system") {
        return Err(Error::invalid(
            "input",
            "required: at least one input message or item",
        ));
    }
    out.insert("messages".into(), Value::Array(msgs));
    tools(m, &mut out)?;
    if let Some(n) = opt_u64(m, "max_output_tokens", "max_output_tokens")? {
        out.insert("max_tokens".into(), json!(n));
    }
    text(m, &mut out)?;
    if let Some(r) = m.get("reasoning").filter(|v| !v.is_null()) {
        let rm = r
            .as_object()
            .ok_or_else(|| Error::invalid("reasoning", "must be an object"))?;
        let mut rr = Map::new();
        for k in ["effort", "max_tokens", "exclude", "enabled"] {
            if let Some(v) = rm.get(k).filter(|v| !v.is_null()) {
                rr.insert(k.into(), v.clone());
            }
        }
        if !rr.is_empty() {
            out.insert("reasoning".into(), Value::Object(rr));
        }
    }
    copy_common(
        m,
        &mut out,
        &[
            "temperature",
            "top_p",
            "top_k",
            "top_logprobs",
            "parallel_tool_calls",
            "stream",
            "user",
            "safety_identifier",
            "prompt_cache_key",
            "service_tier",
        ],
    );
    for k in m.keys() {
        let known = matches!(
            k.as_str(),
            "model"
                | "input"
                | "instructions"
                | "tools"
                | "tool_choice"
                | "max_output_tokens"
                | "text"
                | "reasoning"
                | "temperature"
                | "top_p"
                | "top_k"
                | "top_logprobs"
                | "parallel_tool_calls"
                | "stream"
                | "user"
                | "safety_identifier"
                | "prompt_cache_key"
                | "service_tier"
                | "previous_response_id"
                | "store"
                | "background"
                | "conversation"
                | "prompt"
                // Accepted and without effect here: what to include, truncation, metadata, stream options.
                | "include"
                | "truncation"
                | "metadata"
                | "stream_options"
                | "max_tool_calls"
        ) || ROUTING_FIELDS.contains(&k.as_str());
        if !known {
            return Err(Error::invalid(
                crate::types::limits::shown(k),
                "unknown field: not a Responses API or OpenRouter request parameter",
            ));
        }
    }
    Ok(Value::Object(out))
}

fn input_item(
    msgs: &mut Vec<Value>,
    pending: &mut Vec<Value>,
    item: &Value,
    i: usize,
) -> Result<()> {
    let path = format!("input[{i}]");
    let im = item
        .as_object()
        .ok_or_else(|| Error::invalid(&path, "must be an input item object"))?;
    let ty = opt_str(im, "type", &format!("{path}.type"))?;
    match ty.unwrap_or("message") {
        "message" => {
            let role = req_str(im, "role", &format!("{path}.role"))?;
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(Error::invalid(
                    format!("{path}.role"),
                    format!("{role:?} is not one of user, assistant, system, developer"),
                ));
            }
            let content = message_content(im.get("content"), &format!("{path}.content"))?;
            let mut msg = json!({"role": role, "content": content});
            if role == "assistant" && !pending.is_empty() {
                msg["reasoning_details"] = Value::Array(std::mem::take(pending));
            }
            msgs.push(msg);
        }
        "function_call" => {
            let call_id = req_str(im, "call_id", &format!("{path}.call_id"))?;
            let name = req_str(im, "name", &format!("{path}.name"))?;
            let args = arguments_text(im.get("arguments"));
            let call = json!({"id": call_id, "type": "function",
                              "function": {"name": name, "arguments": args}});
            let reuse = msgs.last().is_some_and(|l| {
                l["role"] == "assistant" && pending.is_empty() && l.get("tool_calls").is_some()
            });
            if reuse {
                if let Some(Value::Array(calls)) =
                    msgs.last_mut().and_then(|l| l.get_mut("tool_calls"))
                {
                    calls.push(call);
                }
            } else if msgs.last().is_some_and(|l| {
                l["role"] == "assistant" && l.get("tool_calls").is_none() && pending.is_empty()
            }) {
                if let Some(l) = msgs.last_mut() {
                    l["tool_calls"] = json!([call]);
                }
            } else {
                let mut msg = json!({"role": "assistant", "content": null, "tool_calls": [call]});
                if !pending.is_empty() {
                    msg["reasoning_details"] = Value::Array(std::mem::take(pending));
                }
                msgs.push(msg);
            }
        }
        "function_call_output" => {
            let call_id = req_str(im, "call_id", &format!("{path}.call_id"))?;
            let output = match im.get("output") {
                Some(Value::String(s)) => json!(s),
                Some(Value::Array(_)) => {
                    message_content(im.get("output"), &format!("{path}.output"))?
                }
                _ => {
                    return Err(Error::invalid(
                        format!("{path}.output"),
                        "required: a string or an array of content parts",
                    ))
                }
            };
            msgs.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
        }
        "reasoning" => {
            for s in opt_array(im, "summary", &format!("{path}.summary"))? {
                if let Some(t) = s.get("text").and_then(Value::as_str) {
                    pending.push(json!({"type": "reasoning.summary", "summary": t, "format": FORMAT,
                                        "index": pending.len()}));
                }
            }
            if let Some(e) = opt_str(im, "encrypted_content", &format!("{path}.encrypted_content"))? {
                let mut d = json!({"type": "reasoning.encrypted", "data": e, "format": FORMAT,
                                   "index": pending.len()});
                if let Some(id) = im.get("id").filter(|v| v.is_string()) {
                    d["id"] = id.clone();
                }
                pending.push(d);
            }
        }
        "item_reference" => return Err(stateless(&format!("{path}.type"))),
        other => {
            return Err(Error::invalid(
                format!("{path}.type"),
                format!("{other:?} is not supported: polyroute takes message, function_call, function_call_output and reasoning items"),
            ))
        }
    }
    Ok(())
}

/// A message's `content` (string or parts) as chat content.
fn message_content(content: Option<&Value>, path: &str) -> Result<Value> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(json!(s)),
        Some(Value::Array(a)) => a,
        _ => {
            return Err(Error::invalid(
                path,
                "required: a string or an array of content parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let ppath = format!("{path}[{j}]");
        let pm = p
            .as_object()
            .ok_or_else(|| Error::invalid(&ppath, "must be a content part object"))?;
        match pm.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                let t = req_str(pm, "text", &format!("{ppath}.text"))?;
                out.push(json!({"type": "text", "text": t}));
            }
            Some("refusal") => {
                let t = req_str(pm, "refusal", &format!("{ppath}.refusal"))?;
                out.push(json!({"type": "text", "text": t}));
            }
            Some("input_image") => {
                let url = opt_str(pm, "image_url", &format!("{ppath}.image_url"))?.ok_or_else(|| {
                    Error::invalid(
                        format!("{ppath}.image_url"),
                        "required (a URL or data URI; file ids need stored files, which polyroute does not keep)",
                    )
                })?;
                let mut iu = json!({"url": url});
                if let Some(d) = pm.get("detail").filter(|v| v.is_string()) {
                    iu["detail"] = d.clone();
                }
                out.push(json!({"type": "image_url", "image_url": iu}));
            }
            Some("input_file") => {
                let data = opt_str(pm, "file_data", &format!("{ppath}.file_data"))?;
                let url = opt_str(pm, "file_url", &format!("{ppath}.file_url"))?;
                let name = opt_str(pm, "filename", &format!("{ppath}.filename"))?.unwrap_or("file.pdf");
                match (data, url) {
                    (Some(d), _) => out.push(json!({"type": "file", "file": {"filename": name, "file_data": d}})),
                    (None, Some(u)) => out.push(json!({"type": "image_url", "image_url": {"url": u}})),
                    (None, None) => {
                        return Err(Error::invalid(
                            format!("{ppath}.file_data"),
                            "required: file_data (a data URI) or file_url",
                        ))
                    }
                }
            }
            Some(other) => {
                return Err(Error::invalid(
                    format!("{ppath}.type"),
                    format!("{other:?} is not one of input_text, input_image, input_file, output_text, refusal"),
                ))
            }
            None => return Err(Error::invalid(format!("{ppath}.type"), "required")),
        }
    }
    Ok(Value::Array(out))
}

fn tools(m: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<()> {
    let list = opt_array(m, "tools", "tools")?;
    let mut tools = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let tm = t
            .as_object()
            .ok_or_else(|| Error::invalid(format!("tools[{i}]"), "must be an object"))?;
        match tm.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = req_str(tm, "name", &format!("tools[{i}].name"))?;
                let mut f = json!({"name": name});
                for k in ["description", "parameters", "strict"] {
                    if let Some(v) = tm.get(k).filter(|v| !v.is_null()) {
                        f[k] = v.clone();
                    }
                }
                tools.push(json!({"type": "function", "function": f}));
            }
            Some(_) => tools.push(t.clone()),
            None => return Err(Error::invalid(format!("tools[{i}].type"), "required")),
        }
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    match m.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
            out.insert("tool_choice".into(), json!(s));
        }
        Some(tc) if tc.get("type").and_then(Value::as_str) == Some("function") => {
            let name = tc.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::invalid("tool_choice.name", "required for type `function`")
            })?;
            out.insert(
                "tool_choice".into(),
                json!({"type": "function", "function": {"name": name}}),
            );
        }
        Some(_) => {
            return Err(Error::invalid(
                "tool_choice",
                "must be auto, none, required or {type: function, name}",
            ))
        }
    }
    Ok(())
}

fn text(m: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<()> {
    let Some(t) = m.get("text").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let tm = t
        .as_object()
        .ok_or_else(|| Error::invalid("text", "must be an object"))?;
    if let Some(v) = tm.get("verbosity").filter(|v| !v.is_null()) {
        out.insert("verbosity".into(), v.clone());
    }
    let Some(f) = tm.get("format").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match f.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some("json_schema") => {
            let schema = f.get("schema").filter(|s| s.is_object()).ok_or_else(|| {
                Error::invalid("text.format.schema", "required: a JSON schema object")
            })?;
            let name = f.get("name").and_then(Value::as_str).unwrap_or("output");
            let mut js = json!({"name": name, "schema": schema});
            for k in ["strict", "description"] {
                if let Some(v) = f.get(k).filter(|v| !v.is_null()) {
                    js[k] = v.clone();
                }
            }
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": js}),
            );
        }
        _ => {
            return Err(Error::invalid(
                "text.format.type",
                "must be one of text, json_object, json_schema",
            ))
        }
    }
    Ok(())
}

/// A chat `usage` (with `cost`) as Responses usage.
#[must_use]
pub fn usage(u: &Value) -> Value {
    let (prompt, completion, read, _, reasoning) = usage_counts(u);
    let mut out = json!({
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": read},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    });
    if let Some(c) = u.get("cost").filter(|c| !c.is_null()) {
        out["cost"] = c.clone();
    }
    out
}

/// The request fields a response object echoes.
/// The request fields a response object echoes, in the order they follow its own fields.
pub(super) fn echo(req: &Value) -> Map<String, Value> {
    let get = |k: &str, d: Value| req.get(k).filter(|v| !v.is_null()).cloned().unwrap_or(d);
    let mut out = Map::with_capacity(13);
    out.insert("instructions".into(), get("instructions", Value::Null));
    out.insert("tools".into(), get("tools", json!([])));
    out.insert("tool_choice".into(), get("tool_choice", json!("auto")));
    out.insert(
        "parallel_tool_calls".into(),
        get("parallel_tool_calls", json!(true)),
    );
    out.insert("temperature".into(), get("temperature", Value::Null));
    out.insert("top_p".into(), get("top_p", Value::Null));
    out.insert(
        "max_output_tokens".into(),
        get("max_output_tokens", Value::Null),
    );
    out.insert("reasoning".into(), get("reasoning", Value::Null));
    out.insert(
        "text".into(),
        get("text", json!({"format": {"type": "text"}})),
    );
    out.insert("metadata".into(), get("metadata", json!({})));
    out.insert("previous_response_id".into(), Value::Null);
    out.insert("store".into(), json!(false));
    out.insert("truncation".into(), json!("disabled"));
    out
}

/// The skeleton of a response object (no output yet): `status`, the echoed request fields, `created_at`.
#[must_use]
pub fn skeleton(id: &str, created: u64, model: &str, status: &str, req: &Value) -> Value {
    with_echo(id, created, model, status, echo(req))
}

/// A response object's own fields (no output yet), then the echoed ones.
pub(super) fn with_echo(
    id: &str,
    created: u64,
    model: &str,
    status: &str,
    echo: Map<String, Value>,
) -> Value {
    let mut out = json!({"id": id, "object": "response", "created_at": created, "status": status,
        "model": model, "output": [], "error": null, "incomplete_details": null, "usage": null});
    if let Some(m) = out.as_object_mut() {
        m.extend(echo);
    }
    out
}

/// Item ids for a response: `msg_…`, `fc_…_{n}`, `rs_…`.
#[must_use]
pub fn item_id(prefix: &str, response_id: &str, n: usize) -> String {
    format!("{prefix}_{}{n}", id_tail(response_id))
}

/// Status and `incomplete_details` for a chat finish reason.
#[must_use]
pub fn status_of(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// Translate a chat completion (as the engine returns it) into a Responses `response` object; `req` is the
/// Responses request (its fields are echoed, as OpenAI's API does).
#[must_use]
pub fn from_chat(answer: &Value, req: &Value) -> Value {
    let id = answer.get("id").and_then(Value::as_str).unwrap_or("");
    let choice = answer.at(&["choices", "0"]).unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut output = Vec::new();
    let summary: Vec<Value> = match msg.get("reasoning").and_then(Value::as_str) {
        Some(r) if !r.is_empty() => vec![json!({"type": "summary_text", "text": r})],
        _ => Vec::new(),
    };
    let encrypted = msg
        .get("reasoning_details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|d| d["type"] == "reasoning.encrypted")
        .and_then(|d| d.get("data"))
        .cloned();
    if !summary.is_empty() || encrypted.is_some() {
        let mut item = json!({"type": "reasoning", "id": item_id("rs", id, 0), "summary": summary});
        if let Some(e) = encrypted {
            item["encrypted_content"] = e;
        }
        output.push(item);
    }
    let text = match msg.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    let refusal = msg
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    if !text.is_empty() || refusal.is_some() {
        let part = match refusal {
            Some(r) if text.is_empty() => json!({"type": "refusal", "refusal": r}),
            _ => json!({"type": "output_text", "text": text, "annotations": []}),
        };
        output.push(
            json!({"type": "message", "id": item_id("msg", id, 0), "status": "completed",
                           "role": "assistant", "content": [part]}),
        );
    }
    for (n, c) in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        output.push(json!({"type": "function_call", "id": item_id("fc", id, n),
            "call_id": c.get("id").and_then(Value::as_str).unwrap_or(""),
            "name": c.at(&["function", "name"]).and_then(Value::as_str).unwrap_or(""),
            "arguments": arguments_text(c.at(&["function", "arguments"])),
            "status": "completed"}));
    }
    let (status, incomplete) = status_of(choice.get("finish_reason").and_then(Value::as_str));
    let model = answer.get("model").and_then(Value::as_str).unwrap_or("");
    let created = answer.get("created").and_then(Value::as_u64).unwrap_or(0);
    let mut out = skeleton(id, created, model, status, req);
    out["output"] = Value::Array(output);
    out["incomplete_details"] = incomplete;
    out["usage"] = usage(answer.get("usage").unwrap_or(&Value::Null));
    if let Some(p) = answer.get("provider").filter(|p| !p.is_null()) {
        out["provider"] = p.clone();
    }
    out
}
