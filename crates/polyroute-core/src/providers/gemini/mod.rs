//! Google Gemini `generateContent` (Developer API, `v1beta` or `v1`).
//!
//! Request rules (OpenAI → Gemini):
//! - all `system`/`developer` messages become `systemInstruction.parts`, in order;
//! - `assistant` → role `model`; consecutive same-role turns are merged (Gemini requires alternation), so all
//!   tool results answering one model turn land in one user `Content`;
//! - a `tool` message becomes `functionResponse`; its `name` is recovered from the assistant tool call with the
//!   same id (an unknown id is an error); a JSON-object result is sent as the response, anything else as
//!   `{"output": …}`;
//! - function-call `id`s are echoed only to Gemini 3 and later (older models reject the field);
//! - thought signatures come back from `reasoning_details` entries of format `google-gemini-v1`: one with an `id`
//!   goes on that tool call's `functionCall` part, one without on the turn's first part;
//! - tool parameters and `responseSchema` are cleaned by [`schema::to_gemini_schema`];
//! - reasoning becomes `thinkingConfig`: `thinkingLevel` on Gemini 3+, otherwise `thinkingBudget` (effort ratio of
//!   the output limit, 0 when reasoning is off) with `includeThoughts` unless `reasoning.exclude`.

mod response;
pub mod schema;
pub(crate) mod stream;
mod wire;

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::common::{
    effort_ratio, mime_from_url, parse_arguments, parse_data_uri, reasoning_wish, sanitize_name_cow,
};
use super::common::{get, get2, get_str, map_get};
use super::json::Json;
use super::{drop_param, NativeBody, NativeRequest, ResponseHints, TranslateOptions};
use crate::error::{Error, Result};
use crate::types::{ChatRequest, Role};
use wire::{Body, Decl, Part, PartKind, Response, Turn};

pub(crate) use response::parse_response;

/// `reasoning_details[].format` for Gemini thought signatures and summaries.
pub const REASONING_FORMAT: &str = "google-gemini-v1";

const UNSUPPORTED: &[&str] = &[
    "logit_bias",
    "min_p",
    "top_a",
    "repetition_penalty",
    "prediction",
    "verbosity",
    "web_search_options",
    "audio",
];

/// The Gemini major generation of a model id (`gemini-3-pro-preview` → 3), 0 when unknown.
fn generation(model: &str) -> u32 {
    let m = model.rsplit('/').next().unwrap_or(model);
    m.strip_prefix("gemini-")
        .and_then(|r| r.split(['-', '.']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A function name as Gemini accepts it: `[A-Za-z_][A-Za-z0-9_.:-]{0,127}`.
fn function_name(name: &str) -> Cow<'_, str> {
    let s = sanitize_name_cow(name, &['.', ':'], 128);
    if s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s
    } else {
        let mut p = format!("_{s}");
        p.truncate(128);
        Cow::Owned(p)
    }
}

fn push_turn<'r>(turns: &mut Vec<Turn<'r>>, role: &'static str, parts: Vec<Part<'r>>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(t) if t.role == role => t.parts.extend(parts),
        _ => turns.push(Turn { role, parts }),
    }
}

pub(crate) fn build_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    build(req, opts, false)
}

/// The same request in Vertex AI's form: the body is identical; the path is
/// `/publishers/google/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`) below the project's
/// location URL.
pub(crate) fn build_vertex_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    build(req, opts, true)
}

fn build(req: &ChatRequest, opts: &TranslateOptions<'_>, vertex: bool) -> Result<NativeRequest> {
    let gen = generation(opts.upstream_model);
    let echo_ids = gen >= 3;
    let mut dropped = Vec::new();
    let mut hints = ResponseHints::default();
    let mut drop =
        |dropped: &mut Vec<String>, p: &str| drop_param(dropped, opts.strict, "gemini", p);
    let mut system: Vec<Part<'_>> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(req.messages.len());
    let mut calls: Vec<(&str, Cow<'_, str>)> = Vec::new();

    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => {
                system.extend(texts(m.content.as_ref()).map(Part::text));
            }
            Role::User => {
                let mut parts = Vec::new();
                match &m.content {
                    Some(Value::Array(items)) => {
                        for (j, p) in items.iter().enumerate() {
                            match user_part(p) {
                                Some(kind) => parts.push(Part::new(kind)),
                                None => drop(&mut dropped, &format!("messages[{i}].content[{j}]"))?,
                            }
                        }
                    }
                    other => parts.extend(texts(other.as_ref()).map(Part::text)),
                }
                if let Some(name) = m.name.as_deref().filter(|n| !n.is_empty()) {
                    if let Some(t) = parts.iter_mut().find_map(|p| match &mut p.kind {
                        PartKind::Text(t) => Some(t),
                        _ => None,
                    }) {
                        *t = Cow::Owned(format!("{name}: {t}"));
                    }
                }
                push_turn(&mut turns, "user", parts);
            }
            Role::Assistant => {
                let calls_n = m.tool_calls.as_ref().map_or(0, Vec::len);
                let mut parts: Vec<Part<'_>> = Vec::with_capacity(1 + calls_n);
                parts.extend(texts(m.content.as_ref()).map(Part::text));
                let sigs = signatures(map_get(&m.extra, "reasoning_details"));
                for (j, c) in m.tool_calls.iter().flatten().enumerate() {
                    let id = get_str(c, "id").unwrap_or("");
                    let f = get(c, "function");
                    let name = function_name(f.and_then(|f| get_str(f, "name")).unwrap_or(""));
                    let args =
                        parse_arguments(f.and_then(|f| get(f, "arguments"))).ok_or_else(|| {
                            Error::invalid(
                                format!("messages[{i}].tool_calls[{j}].function.arguments"),
                                "must be a JSON object string",
                            )
                        })?;
                    let sig = sigs
                        .iter()
                        .find(|(sid, _)| *sid == Some(id))
                        .map(|(_, s)| *s);
                    parts.push(Part {
                        kind: PartKind::Call {
                            name: name.clone(),
                            args,
                            id: Some(id).filter(|id| echo_ids && !id.is_empty()),
                        },
                        sig,
                    });
                    calls.push((id, name));
                }
                if let Some((_, s)) = sigs.iter().find(|(sid, _)| sid.is_none()) {
                    if let Some(first) = parts.first_mut() {
                        first.sig.get_or_insert(s);
                    }
                }
                push_turn(&mut turns, "model", parts);
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                let name = calls
                    .iter()
                    .rev()
                    .find(|(cid, _)| *cid == id)
                    .map(|(_, n)| n.clone())
                    .or_else(|| m.name.as_deref().map(function_name))
                    .ok_or_else(|| {
                        Error::invalid(
                            format!("messages[{i}].tool_call_id"),
                            format!("no earlier assistant tool call has id {id:?}; gemini needs the function name"),
                        )
                    })?;
                let mut pieces = texts(m.content.as_ref());
                let text = match (pieces.next(), pieces.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(t), None) => Cow::Borrowed(t),
                    (Some(a), Some(b)) => {
                        let mut s = String::from(a);
                        s.push_str(b);
                        pieces.for_each(|t| s.push_str(t));
                        Cow::Owned(s)
                    }
                };
                let parsed = match &text {
                    Cow::Borrowed(t) => Json::parse(t),
                    Cow::Owned(t) => Json::parse(t).map(Json::into_owned),
                };
                let response = match parsed {
                    Some(v) if v.is_object() => Response::Object(v),
                    Some(v) => Response::Output(v),
                    None => Response::Text(text),
                };
                let part = Part::new(PartKind::Response {
                    name,
                    response,
                    id: Some(id).filter(|id| echo_ids && !id.is_empty()),
                });
                push_turn(&mut turns, "user", vec![part]);
            }
        }
    }
    if turns.is_empty() {
        push_turn(&mut turns, "user", vec![Part::text(" ")]);
    }

    let mut decls = Vec::with_capacity(req.tools.as_ref().map_or(0, Vec::len));
    for (i, t) in req.tools.iter().flatten().enumerate() {
        if get_str(t, "type") != Some("function") {
            drop(&mut dropped, &format!("tools[{i}]"))?;
            continue;
        }
        let f = get(t, "function").unwrap_or(&Value::Null);
        let orig = get_str(f, "name").unwrap_or("");
        let name = function_name(orig);
        if name != orig {
            hints
                .tool_names
                .push((name.clone().into_owned(), orig.to_string()));
        }
        let parameters = get(f, "parameters")
            .filter(|p| p.is_object())
            .map(schema::gemini_schema)
            .filter(schema::Schema::says_something);
        decls.push(Decl {
            name,
            description: get_str(f, "description").filter(|d| !d.is_empty()),
            parameters,
        });
    }
    let tool_config = if decls.is_empty() {
        None
    } else {
        tool_config(req.tool_choice.as_ref())
    };
    if req.extra.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        drop(&mut dropped, "parallel_tool_calls")?;
    }
    let generation_config = generation_config(
        req,
        gen,
        opts.sampling_params,
        &mut hints,
        &mut dropped,
        &mut drop,
    )?;
    for p in UNSUPPORTED {
        if req.extra.get(*p).is_some_and(|v| !v.is_null()) {
            drop(&mut dropped, p)?;
        }
    }
    if req
        .service_tier
        .as_deref()
        .is_some_and(|t| t != "auto" && t != "default")
    {
        drop(&mut dropped, "service_tier")?;
    }
    let body = Body {
        contents: turns,
        system,
        decls,
        tool_config,
        generation_config,
    };
    let body = NativeBody::from_serialize(&body, 1024 + 384 * req.messages.len())?;
    let model = opts
        .upstream_model
        .strip_prefix("models/")
        .unwrap_or(opts.upstream_model);
    let method = if opts.stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    let path = if vertex {
        format!("/publishers/google/models/{model}:{method}")
    } else {
        format!(
            "/{}/models/{model}:{method}",
            opts.gemini_api_version.as_str()
        )
    };
    Ok(NativeRequest {
        body,
        path,
        headers: Vec::new(),
        dropped,
        hints,
    })
}

type DropFn<'f> = dyn FnMut(&mut Vec<String>, &str) -> Result<()> + 'f;

fn generation_config(
    req: &ChatRequest,
    gen: u32,
    sampling: bool,
    hints: &mut ResponseHints,
    dropped: &mut Vec<String>,
    drop: &mut DropFn<'_>,
) -> Result<Map<String, Value>> {
    let x = &req.extra;
    let mut gc = Map::new();
    let limit = req.output_limit();
    if let Some(l) = limit {
        gc.insert("maxOutputTokens".into(), json!(l));
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
        ("n", "candidateCount"),
    ] {
        if let Some(v) = x.get(from).filter(|v| v.is_number()) {
            if !sampling && matches!(from, "temperature" | "top_p" | "top_k") {
                drop(dropped, from)?;
            } else {
                gc.insert(to.into(), v.clone());
            }
        }
    }
    match x.get("stop") {
        Some(Value::String(s)) => {
            gc.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            gc.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if x.get("logprobs") == Some(&Value::Bool(true)) {
        gc.insert("responseLogprobs".into(), json!(true));
        if let Some(n) = x.get("top_logprobs").and_then(Value::as_u64) {
            gc.insert("logprobs".into(), json!(n.min(20)));
        }
    }
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                gc.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                gc.insert("responseMimeType".into(), json!("application/json"));
                if let Some(s) = rf.pointer("/json_schema/schema").filter(|s| s.is_object()) {
                    gc.insert("responseSchema".into(), schema::to_gemini_schema(s));
                }
            }
            Some("text") | None => {}
            Some(_) => drop(dropped, "response_format")?,
        }
    }
    if let Some(w) = reasoning_wish(req) {
        hints.exclude_reasoning = w.exclude;
        let mut tc = Map::new();
        if gen >= 3 && w.max_tokens.is_none() {
            let level = match w.effort.as_deref() {
                _ if w.disabled => "MINIMAL",
                Some("minimal") => "MINIMAL",
                Some("low") => "LOW",
                Some("medium") => "MEDIUM",
                _ => "HIGH",
            };
            tc.insert("thinkingLevel".into(), json!(level));
        } else {
            let budget = if w.disabled {
                0
            } else if let Some(b) = w.max_tokens {
                b
            } else {
                let ratio = w.effort.as_deref().and_then(effort_ratio).unwrap_or(0.5);
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let b = (limit.unwrap_or(8192) as f64 * ratio) as u64;
                b.clamp(128, 32_768)
            };
            tc.insert("thinkingBudget".into(), json!(budget));
        }
        if !w.disabled && !w.exclude {
            tc.insert("includeThoughts".into(), json!(true));
        }
        gc.insert("thinkingConfig".into(), Value::Object(tc));
    }
    Ok(gc)
}

fn tool_config(tc: Option<&Value>) -> Option<Value> {
    let mode = |m: &str| json!({"functionCallingConfig": {"mode": m}});
    match tc? {
        Value::String(s) => match s.as_str() {
            "auto" => Some(mode("AUTO")),
            "none" => Some(mode("NONE")),
            "required" => Some(mode("ANY")),
            _ => None,
        },
        v => v.pointer("/function/name").and_then(Value::as_str).map(|n| {
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function_name(n)]}})
        }),
    }
}

/// `(tool call id, signature)` pairs from `reasoning_details`.
fn signatures(details: Option<&Value>) -> Vec<(Option<&str>, &str)> {
    let Some(Value::Array(ds)) = details else {
        return Vec::new();
    };
    ds.iter()
        .filter(|d| get_str(d, "format") == Some(REASONING_FORMAT))
        .filter(|d| get_str(d, "type") == Some("reasoning.encrypted"))
        .filter_map(|d| Some((get_str(d, "id"), get_str(d, "data")?)))
        .collect()
}

fn texts(content: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, parts) = match content {
        Some(Value::String(s)) if !s.is_empty() => (Some(s.as_str()), None),
        Some(Value::Array(parts)) => (None, Some(parts.iter())),
        _ => (None, None),
    };
    one.into_iter().chain(
        parts
            .into_iter()
            .flatten()
            .filter_map(|p| {
                get(p, "text")
                    .or_else(|| get(p, "refusal"))
                    .and_then(Value::as_str)
            })
            .filter(|t| !t.is_empty()),
    )
}

fn media(url: &str) -> Option<PartKind<'_>> {
    if url.is_empty() {
        return None;
    }
    Some(match parse_data_uri(url) {
        Some(d) => PartKind::Inline {
            mime: Cow::Borrowed(d.mime),
            data: d.data,
        },
        None => PartKind::File {
            mime: mime_from_url(url),
            uri: url,
        },
    })
}

fn user_part(p: &Value) -> Option<PartKind<'_>> {
    match get_str(p, "type").unwrap_or("text") {
        "text" => Some(PartKind::Text(Cow::Borrowed(
            get_str(p, "text").unwrap_or(""),
        ))),
        "image_url" => media(
            get2(p, "image_url", "url")
                .or_else(|| get(p, "image_url"))
                .and_then(Value::as_str)?,
        ),
        "input_audio" => {
            let data = get2(p, "input_audio", "data").and_then(Value::as_str)?;
            let fmt = get2(p, "input_audio", "format")
                .and_then(Value::as_str)
                .unwrap_or("wav");
            Some(PartKind::Inline {
                mime: Cow::Owned(format!("audio/{fmt}")),
                data,
            })
        }
        "file" => media(get2(p, "file", "file_data").and_then(Value::as_str)?),
        _ => None,
    }
}
