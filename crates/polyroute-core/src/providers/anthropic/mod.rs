//! Anthropic Messages API.
//!
//! Request rules (OpenAI → Anthropic):
//! - every `system`/`developer` message becomes a block of the top-level `system` (mid-conversation ones are
//!   hoisted there too, in order);
//! - consecutive same-role turns are merged; `tool` messages become `tool_result` blocks of a user turn, placed
//!   before any user text of that turn;
//! - `name` is prepended to user text as `{name}: ` (Anthropic has no participant names);
//! - images: `https` URLs become `url` sources, data URIs `base64` sources (a PDF data URI or file becomes a
//!   `document`); audio is unsupported;
//! - `response_format: json_schema` becomes `output_config.format` when the endpoint supports native structured
//!   output, otherwise a tool named `json_tool_call` carrying the schema, forced through `tool_choice` (not forced
//!   when thinking is on, which forbids forced tools); its input comes back as message content;
//! - reasoning (`reasoning.effort`, `reasoning.max_tokens` or `reasoning_effort`) becomes
//!   `thinking: {type: enabled, budget_tokens}` with `budget = max(min(max_tokens * ratio, 128000), 1024)`;
//!   when `max_tokens` does not exceed the budget, the budget is added to it; thinking drops `temperature`,
//!   `top_k` and forced tool choice, which Anthropic rejects with thinking;
//! - `max_tokens` is required: the request's limit, else [`TranslateOptions::default_max_tokens`].

mod response;
pub(crate) mod stream;
mod wire;

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::common::{get, get2, get_str, map_get, obj, st};
use super::common::{
    parse_arguments, parse_data_uri, reasoning_wish, sanitize_name_cow, thinking_budget,
};
use super::{drop_param, NativeBody, NativeRequest, ResponseHints, TranslateOptions};
use crate::error::{Error, Result};
use crate::types::{ChatRequest, Message, Role};
use wire::{Block, Body, Field, InputSchema, Kind, Source, Tool, ToolContent, Turn};

pub(crate) use response::{anthropic_usage, parse_response};

/// Name of the synthetic tool that carries structured output when native structured output is unavailable.
pub const JSON_TOOL: &str = "json_tool_call";

/// `reasoning_details[].format` for Anthropic thinking.
pub const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// OpenAI parameters Anthropic has no equivalent for.
const UNSUPPORTED: &[&str] = &[
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "min_p",
    "top_a",
    "repetition_penalty",
    "prediction",
    "web_search_options",
    "verbosity",
    "modalities",
    "audio",
];

struct Ctx<'o, 'a> {
    opts: &'o TranslateOptions<'a>,
    dropped: Vec<String>,
    hints: ResponseHints,
}

impl Ctx<'_, '_> {
    fn drop(&mut self, path: &str) -> Result<()> {
        drop_param(&mut self.dropped, self.opts.strict, "anthropic", path)
    }
}

/// A tool name as Anthropic accepts it (`^[a-zA-Z0-9_-]{1,128}$`).
fn tool_name(name: &str) -> Cow<'_, str> {
    sanitize_name_cow(name, &[], 128)
}

/// A tool-use id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`); applied to calls and results alike.
fn tool_id(id: &str) -> Cow<'_, str> {
    sanitize_name_cow(id, &[], 256)
}

fn block(kind: Kind<'_>) -> Block<'_> {
    Block { kind, cache: None }
}

pub(crate) fn build_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    build(req, opts, false)
}

/// The Anthropic request in Vertex AI's form: no `model` in the body (it is in the path),
/// `anthropic_version` in the body instead of a header, `:rawPredict` or `:streamRawPredict` below
/// `/publishers/anthropic/models/{model}`.
pub(crate) fn build_vertex_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
    build(req, opts, true)
}

fn build(req: &ChatRequest, opts: &TranslateOptions<'_>, vertex: bool) -> Result<NativeRequest> {
    let mut cx = Ctx {
        opts,
        dropped: Vec::new(),
        hints: ResponseHints::default(),
    };
    let mut system: Vec<Block<'_>> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(req.messages.len());

    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => {
                let mut blocks = text_blocks(m.content.as_ref());
                apply_cache_control(m, &mut blocks);
                system.extend(blocks);
            }
            Role::User => {
                let mut blocks = user_blocks(&mut cx, m, i)?;
                if let Some(name) = m.name.as_deref().filter(|n| !n.is_empty()) {
                    prefix_name(&mut blocks, name);
                }
                apply_cache_control(m, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
            Role::Assistant => {
                let mut blocks = assistant_blocks(m, i)?;
                apply_cache_control(m, &mut blocks);
                push_turn(&mut turns, "assistant", blocks);
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                if id.is_empty() {
                    return Err(Error::invalid(
                        format!("messages[{i}].tool_call_id"),
                        "required on tool messages",
                    ));
                }
                let content = match &m.content {
                    Some(Value::String(s)) => ToolContent::Text(s),
                    Some(Value::Array(parts)) => {
                        ToolContent::Blocks(user_parts(&mut cx, parts, i)?)
                    }
                    _ => ToolContent::Text(""),
                };
                let is_error = map_get(&m.extra, "is_error").and_then(Value::as_bool) == Some(true);
                let mut blocks = vec![block(Kind::ToolResult {
                    id: tool_id(id),
                    content,
                    is_error,
                })];
                apply_cache_control(m, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
        }
    }
    for t in &mut turns {
        if t.blocks.is_empty() && t.role == "user" {
            t.blocks.push(block(Kind::Text(Cow::Borrowed("."))));
        }
    }
    turns.retain(|t| !t.blocks.is_empty());

    let mut max_tokens = req.output_limit().unwrap_or(opts.default_max_tokens).max(1);
    let thinking = match reasoning_wish(req) {
        Some(w) if !w.disabled => {
            cx.hints.exclude_reasoning = w.exclude;
            if opts.anthropic_adaptive_thinking {
                Some(Thinking::Adaptive {
                    effort: adaptive_effort(&w, max_tokens),
                    exclude: w.exclude,
                })
            } else {
                let budget = thinking_budget(&w, max_tokens);
                if max_tokens <= budget {
                    max_tokens += budget;
                }
                Some(Thinking::Budget(budget))
            }
        }
        _ => None,
    };
    let mut body = Body {
        model: (!vertex).then_some(opts.upstream_model),
        max_tokens,
        system,
        turns,
        fields: Vec::with_capacity(8),
    };

    let mut tools = build_tools(&mut cx, req)?;
    let mut tool_choice = if tools.is_empty() {
        None
    } else {
        map_tool_choice(&mut cx, req.tool_choice.as_ref())?
    };
    structured_output(
        &mut cx,
        req,
        &mut body,
        &mut tools,
        &mut tool_choice,
        thinking.is_some(),
    )?;
    if let Some(Value::Bool(false)) = req.extra.get("parallel_tool_calls") {
        if !tools.is_empty() {
            let tc = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
            if tc["type"] != "none" {
                tc["disable_parallel_tool_use"] = json!(true);
            }
        }
    }
    if let Some(t) = &thinking {
        match t {
            Thinking::Budget(budget) => {
                body.set(
                    "thinking",
                    Field::Owned(json!({"type": "enabled", "budget_tokens": budget})),
                );
            }
            Thinking::Adaptive { effort, exclude } => {
                let display = if *exclude { "omitted" } else { "summarized" };
                body.set(
                    "thinking",
                    Field::Owned(json!({"type": "adaptive", "display": display})),
                );
                match body.get_mut("output_config") {
                    Some(Field::Owned(Value::Object(oc))) => {
                        oc.insert("effort".into(), json!(effort));
                    }
                    Some(_) => {}
                    None => body.set("output_config", Field::Owned(json!({"effort": effort}))),
                }
            }
        }
        if let Some(tc) = &mut tool_choice {
            if tc["type"] == "any" || tc["type"] == "tool" {
                cx.drop("tool_choice")?;
                let parallel = tc.get("disable_parallel_tool_use").cloned();
                *tc = json!({"type": "auto"});
                if let Some(p) = parallel {
                    tc["disable_parallel_tool_use"] = p;
                }
            }
        }
    }
    if !tools.is_empty() {
        body.set("tools", Field::Tools(tools));
    }
    if let Some(tc) = tool_choice {
        body.set("tool_choice", Field::Owned(tc));
    }
    sampling(&mut cx, req, &mut body, thinking.is_some())?;
    if opts.stream {
        body.set("stream", Field::Owned(Value::Bool(true)));
    }
    if vertex {
        body.set(
            "anthropic_version",
            Field::Owned(Value::String(opts.anthropic_vertex_version.to_string())),
        );
    }
    let body = NativeBody::from_serialize(&body, 1024 + 384 * req.messages.len())?;
    let (path, headers) = if vertex {
        let method = if opts.stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        (
            format!(
                "/publishers/anthropic/models/{}:{method}",
                opts.upstream_model
            ),
            Vec::new(),
        )
    } else {
        (
            "/v1/messages".to_string(),
            vec![(
                "anthropic-version".into(),
                opts.anthropic_version.to_string(),
            )],
        )
    };
    Ok(NativeRequest {
        body,
        path,
        headers,
        dropped: cx.dropped,
        hints: cx.hints,
    })
}

/// Reasoning as Anthropic takes it.
enum Thinking {
    /// `thinking: {type: enabled, budget_tokens}`.
    Budget(u64),
    /// `thinking: {type: adaptive}` with `output_config.effort`.
    Adaptive { effort: &'static str, exclude: bool },
}

/// The adaptive-thinking effort: the requested effort (`minimal` → `low`), or the level nearest an explicit
/// budget's share of `max_tokens`.
fn adaptive_effort(w: &super::common::ReasoningWish, max_tokens: u64) -> &'static str {
    match w.effort.as_deref() {
        Some("minimal" | "low") => "low",
        Some("medium") => "medium",
        Some("high") => "high",
        Some("xhigh") => "xhigh",
        Some("max") => "max",
        _ => {
            #[allow(clippy::cast_precision_loss)]
            let share = w.max_tokens.unwrap_or(0) as f64 / max_tokens.max(1) as f64;
            match share {
                s if s >= 0.875 => "xhigh",
                s if s >= 0.65 => "high",
                s if s >= 0.35 => "medium",
                _ => "low",
            }
        }
    }
}

/// `temperature` (clamped to Anthropic's 0–1), `top_p`, `top_k`; thinking rejects non-default temperature and
/// `top_k`.
fn sampling_params<'r>(
    cx: &mut Ctx<'_, '_>,
    x: &'r Map<String, Value>,
    body: &mut Body<'r>,
    thinking: bool,
) -> Result<()> {
    if let Some(t) = x.get("temperature").and_then(Value::as_f64) {
        if thinking && (t - 1.0).abs() > f64::EPSILON {
            cx.drop("temperature")?;
        } else {
            body.set("temperature", Field::F64(t.min(1.0)));
        }
    }
    if let Some(p) = x.get("top_p").filter(|v| v.is_number()) {
        body.set("top_p", Field::Borrowed(p));
    }
    if let Some(k) = x.get("top_k").filter(|v| v.is_number()) {
        if thinking {
            cx.drop("top_k")?;
        } else {
            body.set("top_k", Field::Borrowed(k));
        }
    }
    Ok(())
}

fn sampling<'r>(
    cx: &mut Ctx<'_, '_>,
    req: &'r ChatRequest,
    body: &mut Body<'r>,
    thinking: bool,
) -> Result<()> {
    let x = &req.extra;
    if !cx.opts.sampling_params {
        for p in ["temperature", "top_p", "top_k"] {
            if x.get(p).is_some_and(|v| !v.is_null()) {
                cx.drop(p)?;
            }
        }
    }
    if cx.opts.sampling_params {
        sampling_params(cx, x, body, thinking)?;
    }
    let nonblank = |s: &&Value| s.as_str().is_some_and(|s| !s.trim().is_empty());
    let stops: Vec<&Value> = match x.get("stop") {
        Some(s @ Value::String(_)) => std::iter::once(s).filter(nonblank).collect(),
        Some(Value::Array(a)) => a.iter().filter(nonblank).collect(),
        _ => Vec::new(),
    };
    if !stops.is_empty() {
        body.set("stop_sequences", Field::Values(stops));
    }
    let user = x
        .get("user")
        .or_else(|| x.get("safety_identifier"))
        .and_then(Value::as_str);
    if let Some(u) = user.filter(|u| !u.contains('@') && !u.is_empty()) {
        body.set("metadata", Field::Owned(json!({"user_id": u})));
    }
    if let Some(tier) = &req.service_tier {
        match tier.as_str() {
            "auto" => body.set("service_tier", Field::Owned(json!("auto"))),
            "default" => body.set("service_tier", Field::Owned(json!("standard_only"))),
            _ => cx.drop("service_tier")?,
        }
    }
    if let Some(cc) = x.get("cache_control").filter(|v| v.is_object()) {
        body.set("cache_control", Field::Borrowed(cc));
    }
    for p in UNSUPPORTED {
        if x.get(*p)
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
        {
            cx.drop(p)?;
        }
    }
    if x.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        cx.drop("n")?;
    }
    Ok(())
}

fn build_tools<'r>(cx: &mut Ctx<'_, '_>, req: &'r ChatRequest) -> Result<Vec<Tool<'r>>> {
    let mut out = Vec::with_capacity(req.tools.as_ref().map_or(0, Vec::len) + 1);
    for (i, t) in req.tools.iter().flatten().enumerate() {
        if get_str(t, "type") != Some("function") {
            cx.drop(&format!("tools[{i}]"))?;
            continue;
        }
        let f = get(t, "function").unwrap_or(&Value::Null);
        let name = get_str(f, "name").unwrap_or("");
        let sent = tool_name(name);
        if sent != name && !cx.hints.tool_names.iter().any(|(s, _)| *s == sent) {
            cx.hints
                .tool_names
                .push((sent.clone().into_owned(), name.to_string()));
        }
        out.push(Tool::Function {
            name: sent,
            description: get_str(f, "description").filter(|d| !d.is_empty()),
            schema: InputSchema(get(f, "parameters").and_then(Value::as_object)),
            cache: get(t, "cache_control").filter(|v| v.is_object()),
        });
    }
    Ok(out)
}

/// A JSON schema whose root is an object, as `input_schema` requires (see [`InputSchema`]).
fn object_schema(s: Option<&Value>) -> Value {
    serde_json::to_value(InputSchema(s.and_then(Value::as_object)))
        .unwrap_or_else(|_| json!({"type": "object", "properties": {}}))
}

fn map_tool_choice(cx: &mut Ctx<'_, '_>, tc: Option<&Value>) -> Result<Option<Value>> {
    Ok(match tc {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" | "any" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => {
                cx.drop("tool_choice")?;
                None
            }
        },
        Some(v) => match v.get("type").and_then(Value::as_str) {
            Some("function") => v
                .pointer("/function/name")
                .and_then(Value::as_str)
                .map(|n| json!({"type": "tool", "name": tool_name(n)})),
            Some("allowed_tools") => match v.pointer("/allowed_tools/mode").and_then(Value::as_str)
            {
                Some("required") => Some(json!({"type": "any"})),
                _ => Some(json!({"type": "auto"})),
            },
            _ => {
                cx.drop("tool_choice")?;
                None
            }
        },
    })
}

fn structured_output(
    cx: &mut Ctx<'_, '_>,
    req: &ChatRequest,
    body: &mut Body<'_>,
    tools: &mut Vec<Tool<'_>>,
    tool_choice: &mut Option<Value>,
    thinking: bool,
) -> Result<()> {
    let Some(rf) = &req.response_format else {
        return Ok(());
    };
    let schema = match rf.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let s = rf
                .pointer("/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            if cx.opts.supports_native_structured_output {
                let mut s = s;
                close_objects(&mut s);
                body.set(
                    "output_config",
                    Field::Owned(obj([(
                        "format",
                        obj([("type", st("json_schema")), ("schema", s)]),
                    )])),
                );
                return Ok(());
            }
            if s.get("type").and_then(Value::as_str) == Some("object") {
                object_schema(Some(&s))
            } else {
                cx.hints.json_tool_wrapped = true;
                obj([
                    ("type", st("object")),
                    ("properties", obj([("value", s)])),
                    ("required", json!(["value"])),
                ])
            }
        }
        Some("json_object") => {
            json!({"type": "object", "additionalProperties": true, "properties": {}})
        }
        Some("text") | None => return Ok(()),
        Some(_) => return cx.drop("response_format"),
    };
    let had_user_tools = !tools.is_empty();
    tools.push(Tool::Built(obj([
        ("name", st(JSON_TOOL)),
        (
            "description",
            st("Respond with a JSON object that matches this schema."),
        ),
        ("input_schema", schema),
    ])));
    if !had_user_tools && !thinking {
        *tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
    } else if tool_choice.is_none() {
        *tool_choice = Some(json!({"type": "auto"}));
    }
    cx.hints.json_tool = Some(JSON_TOOL.to_string());
    Ok(())
}

/// Native structured output requires `additionalProperties: false` on every object.
fn close_objects(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("object")
                && !m.contains_key("additionalProperties")
            {
                m.insert("additionalProperties".into(), json!(false));
            }
            m.remove("$schema");
            for (_, child) in m.iter_mut() {
                close_objects(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn push_turn<'r>(turns: &mut Vec<Turn<'r>>, role: &'static str, blocks: Vec<Block<'r>>) {
    match turns.last_mut() {
        Some(t) if t.role == role => {
            for b in blocks {
                if b.is_tool_result() {
                    let pos = t.blocks.iter().take_while(|x| x.is_tool_result()).count();
                    t.blocks.insert(pos, b);
                } else {
                    t.blocks.push(b);
                }
            }
        }
        _ => turns.push(Turn { role, blocks }),
    }
}

/// The `cache_control` object of a message or content part.
fn cache_of(m: &Map<String, Value>) -> Option<&Value> {
    map_get(m, "cache_control").filter(|v| v.is_object())
}

fn apply_cache_control<'r>(m: &'r Message, blocks: &mut [Block<'r>]) {
    if let Some(cc) = cache_of(&m.extra) {
        if let Some(last) = blocks.last_mut() {
            last.cache = Some(cc);
        }
    }
}

fn prefix_name(blocks: &mut [Block<'_>], name: &str) {
    if let Some(text) = blocks.iter_mut().find_map(|b| match &mut b.kind {
        Kind::Text(text) => Some(text),
        _ => None,
    }) {
        *text = Cow::Owned(format!("{name}: {text}"));
    }
}

fn text_block<'r>(text: &'r str, part: Option<&'r Value>) -> Option<Block<'r>> {
    if text.is_empty() {
        return None;
    }
    let cache = match part {
        Some(Value::Object(p)) => cache_of(p),
        _ => None,
    };
    Some(Block {
        kind: Kind::Text(Cow::Borrowed(text)),
        cache,
    })
}

fn text_blocks(content: Option<&Value>) -> Vec<Block<'_>> {
    match content {
        Some(Value::String(s)) => text_block(s, None).into_iter().collect(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| text_block(get_str(p, "text").unwrap_or(""), Some(p)))
            .collect(),
        _ => Vec::new(),
    }
}

fn user_blocks<'r>(cx: &mut Ctx<'_, '_>, m: &'r Message, i: usize) -> Result<Vec<Block<'r>>> {
    match &m.content {
        Some(Value::Array(parts)) => user_parts(cx, parts, i),
        other => Ok(text_blocks(other.as_ref())),
    }
}

fn user_parts<'r>(cx: &mut Ctx<'_, '_>, parts: &'r [Value], i: usize) -> Result<Vec<Block<'r>>> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let ty = get_str(p, "type").unwrap_or("text");
        let kind = match ty {
            "text" => {
                out.extend(text_block(get_str(p, "text").unwrap_or(""), Some(p)));
                continue;
            }
            "image_url" => {
                let url = get2(p, "image_url", "url")
                    .or_else(|| get(p, "image_url"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                media_block(url)
            }
            "file" => {
                let data = get2(p, "file", "file_data")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match parse_data_uri(data) {
                    Some(d) if d.mime == "application/pdf" => Some(Kind::Media {
                        kind: "document",
                        source: Source::Base64 {
                            media_type: d.mime,
                            data: d.data,
                        },
                    }),
                    _ => {
                        cx.drop(&format!("messages[{i}].content[{j}]"))?;
                        None
                    }
                }
            }
            "image" | "document" | "tool_result" | "search_result" => p.as_object().map(Kind::Raw),
            _ => {
                cx.drop(&format!("messages[{i}].content[{j}]"))?;
                None
            }
        };
        if let Some(kind) = kind {
            // A forwarded block keeps its own `cache_control`; the others take the part's.
            let cache = match kind {
                Kind::Raw(_) => None,
                _ => get(p, "cache_control").filter(|v| v.is_object()),
            };
            out.push(Block { kind, cache });
        }
    }
    Ok(out)
}

fn media_block(url: &str) -> Option<Kind<'_>> {
    if url.is_empty() {
        return None;
    }
    if let Some(d) = parse_data_uri(url) {
        let kind = if d.mime == "application/pdf" {
            "document"
        } else {
            "image"
        };
        return Some(Kind::Media {
            kind,
            source: Source::Base64 {
                media_type: d.mime,
                data: d.data,
            },
        });
    }
    let is_pdf = url
        .split(['?', '#'])
        .next()
        .is_some_and(|p| p.to_ascii_lowercase().ends_with(".pdf"));
    let kind = if is_pdf { "document" } else { "image" };
    Some(Kind::Media {
        kind,
        source: Source::Url(url),
    })
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>> {
    let mut out = Vec::with_capacity(1 + m.tool_calls.as_ref().map_or(0, Vec::len));
    // Thinking blocks from an earlier Anthropic answer go back first and unmodified.
    if let Some(Value::Array(details)) = map_get(&m.extra, "reasoning_details") {
        for d in details {
            let fmt = get_str(d, "format").unwrap_or(REASONING_FORMAT);
            if fmt != REASONING_FORMAT && fmt != "unknown" {
                continue;
            }
            match get_str(d, "type") {
                Some("reasoning.text") => {
                    if let Some(signature) = get_str(d, "signature") {
                        let thinking = get_str(d, "text").unwrap_or("");
                        out.push(block(Kind::Thinking {
                            thinking,
                            signature,
                        }));
                    }
                }
                Some("reasoning.encrypted") => {
                    if let Some(data) = get_str(d, "data") {
                        out.push(block(Kind::RedactedThinking(data)));
                    }
                }
                _ => {}
            }
        }
    }
    match &m.content {
        Some(Value::Array(parts)) => {
            for p in parts {
                let text = get(p, "text")
                    .or_else(|| get(p, "refusal"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.extend(text_block(text, Some(p)));
            }
        }
        other => out.extend(text_blocks(other.as_ref())),
    }
    for (j, c) in m.tool_calls.iter().flatten().enumerate() {
        let id = get_str(c, "id").unwrap_or("");
        let f = get(c, "function");
        let name = f.and_then(|f| get_str(f, "name")).unwrap_or("");
        let input = parse_arguments(f.and_then(|f| get(f, "arguments"))).ok_or_else(|| {
            Error::invalid(
                format!("messages[{i}].tool_calls[{j}].function.arguments"),
                "must be a JSON object string",
            )
        })?;
        out.push(block(Kind::ToolUse {
            id: tool_id(id),
            name: tool_name(name),
            input,
        }));
    }
    Ok(out)
}
