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

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::common::{get, get2, get_str, map_get, obj, st};
use super::common::{
    parse_arguments, parse_data_uri, reasoning_wish, sanitize_name, thinking_budget,
};
use super::{drop_param, NativeRequest, ResponseHints, TranslateOptions};
use crate::error::{Error, Result};
use crate::types::{ChatRequest, Message, Role};

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
fn tool_name(name: &str) -> String {
    sanitize_name(name, &[], 128)
}

/// A tool-use id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`); applied to calls and results alike.
fn tool_id(id: &str) -> String {
    sanitize_name(id, &[], 256)
}

pub(crate) fn build_request(
    req: &ChatRequest,
    opts: &TranslateOptions<'_>,
) -> Result<NativeRequest> {
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
                    Some(Value::String(s)) => Value::String(s.clone()),
                    Some(Value::Array(parts)) => blocks_value(user_parts(&mut cx, parts, i)?),
                    _ => st(""),
                };
                let mut block = Map::with_capacity(4);
                block.insert("type".into(), st("tool_result"));
                block.insert("tool_use_id".into(), Value::String(tool_id(id)));
                block.insert("content".into(), content);
                if map_get(&m.extra, "is_error").and_then(Value::as_bool) == Some(true) {
                    block.insert("is_error".into(), Value::Bool(true));
                }
                let mut blocks = vec![Block::Json(Value::Object(block))];
                apply_cache_control(m, &mut blocks);
                push_turn(&mut turns, "user", blocks);
            }
        }
    }
    for (role, blocks) in &mut turns {
        if blocks.is_empty() && *role == "user" {
            blocks.push(Block::Text {
                text: Cow::Borrowed("."),
                cache: None,
            });
        }
    }
    turns.retain(|(_, b)| !b.is_empty());

    let mut body = Map::with_capacity(12);
    body.insert("model".into(), st(opts.upstream_model));
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
    body.insert("max_tokens".into(), json!(max_tokens));
    if !system.is_empty() {
        body.insert("system".into(), blocks_value(system));
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| obj([("role", st(role)), ("content", compact(content))]))
        .collect();
    body.insert("messages".into(), Value::Array(messages));

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
                body.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
            }
            Thinking::Adaptive { effort, exclude } => {
                let display = if *exclude { "omitted" } else { "summarized" };
                body.insert(
                    "thinking".into(),
                    json!({"type": "adaptive", "display": display}),
                );
                let oc = body.entry("output_config").or_insert_with(|| json!({}));
                if let Some(oc) = oc.as_object_mut() {
                    oc.insert("effort".into(), json!(effort));
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
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = tool_choice {
        body.insert("tool_choice".into(), tc);
    }
    sampling(&mut cx, req, &mut body, thinking.is_some())?;
    if opts.stream {
        body.insert("stream".into(), json!(true));
    }
    Ok(NativeRequest {
        body: Value::Object(body),
        path: "/v1/messages".into(),
        headers: vec![(
            "anthropic-version".into(),
            opts.anthropic_version.to_string(),
        )],
        dropped: cx.dropped,
        hints: cx.hints,
    })
}

/// A turn that is one plain text block is sent as a string (what the official SDKs send).
fn compact(mut blocks: Vec<Block<'_>>) -> Value {
    if blocks.len() == 1 {
        if let Some(Block::Text { cache: None, .. }) = blocks.first() {
            if let Some(Block::Text { text, .. }) = blocks.pop() {
                return Value::String(text.into_owned());
            }
        }
    }
    blocks_value(blocks)
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
fn sampling_params(
    cx: &mut Ctx<'_, '_>,
    x: &Map<String, Value>,
    body: &mut Map<String, Value>,
    thinking: bool,
) -> Result<()> {
    if let Some(t) = x.get("temperature").and_then(Value::as_f64) {
        if thinking && (t - 1.0).abs() > f64::EPSILON {
            cx.drop("temperature")?;
        } else {
            body.insert("temperature".into(), json!(t.min(1.0)));
        }
    }
    if let Some(p) = x.get("top_p").filter(|v| v.is_number()) {
        body.insert("top_p".into(), p.clone());
    }
    if let Some(k) = x.get("top_k").filter(|v| v.is_number()) {
        if thinking {
            cx.drop("top_k")?;
        } else {
            body.insert("top_k".into(), k.clone());
        }
    }
    Ok(())
}

fn sampling(
    cx: &mut Ctx<'_, '_>,
    req: &ChatRequest,
    body: &mut Map<String, Value>,
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
    let stops: Vec<Value> = match x.get("stop") {
        Some(Value::String(s)) => vec![json!(s)],
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let stops: Vec<Value> = stops
        .into_iter()
        .filter(|s| s.as_str().is_some_and(|s| !s.trim().is_empty()))
        .collect();
    if !stops.is_empty() {
        body.insert("stop_sequences".into(), Value::Array(stops));
    }
    let user = x
        .get("user")
        .or_else(|| x.get("safety_identifier"))
        .and_then(Value::as_str);
    if let Some(u) = user.filter(|u| !u.contains('@') && !u.is_empty()) {
        body.insert("metadata".into(), json!({"user_id": u}));
    }
    if let Some(tier) = &req.service_tier {
        match tier.as_str() {
            "auto" => {
                body.insert("service_tier".into(), json!("auto"));
            }
            "default" => {
                body.insert("service_tier".into(), json!("standard_only"));
            }
            _ => cx.drop("service_tier")?,
        }
    }
    if let Some(cc) = x.get("cache_control").filter(|v| v.is_object()) {
        body.insert("cache_control".into(), cc.clone());
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

fn build_tools(cx: &mut Ctx<'_, '_>, req: &ChatRequest) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(req.tools.as_ref().map_or(0, Vec::len) + 1);
    for (i, t) in req.tools.iter().flatten().enumerate() {
        if get_str(t, "type") != Some("function") {
            cx.drop(&format!("tools[{i}]"))?;
            continue;
        }
        let f = get(t, "function").unwrap_or(&Value::Null);
        let name = get_str(f, "name").unwrap_or("");
        let sent = tool_name(name);
        if sent != name && !cx.hints.tool_names.iter().any(|(s, _)| s == &sent) {
            cx.hints.tool_names.push((sent.clone(), name.to_string()));
        }
        let mut tool = Map::with_capacity(4);
        tool.insert("name".into(), Value::String(sent));
        if let Some(d) = get_str(f, "description").filter(|d| !d.is_empty()) {
            tool.insert("description".into(), st(d));
        }
        tool.insert("input_schema".into(), object_schema(get(f, "parameters")));
        if let Some(cc) = get(t, "cache_control").filter(|v| v.is_object()) {
            tool.insert("cache_control".into(), cc.clone());
        }
        out.push(Value::Object(tool));
    }
    Ok(out)
}

/// A JSON schema whose root is an object, as `input_schema` requires.
fn object_schema(s: Option<&Value>) -> Value {
    match s {
        Some(Value::Object(src)) => {
            let mut m = src.clone();
            if map_get(src, "$schema").is_some() {
                m.remove("$schema");
            }
            // Replacing the value in place keeps the key where `insert` would have kept it.
            match m.iter_mut().find(|(k, _)| k.as_str() == "type") {
                Some((_, t)) => {
                    if t.as_str() != Some("object") {
                        *t = st("object");
                    }
                }
                None => {
                    m.insert("type".into(), st("object"));
                }
            }
            Value::Object(m)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
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
    body: &mut Map<String, Value>,
    tools: &mut Vec<Value>,
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
                body.insert(
                    "output_config".into(),
                    obj([("format", obj([("type", st("json_schema")), ("schema", s)]))]),
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
    tools.push(obj([
        ("name", st(JSON_TOOL)),
        (
            "description",
            st("Respond with a JSON object that matches this schema."),
        ),
        ("input_schema", schema),
    ]));
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

/// A content block while the turns are assembled. Plain text stays unboxed until the end, so a turn that is one
/// text block becomes a string without building (and dropping) a block object.
enum Block<'r> {
    Text {
        text: Cow<'r, str>,
        cache: Option<&'r Value>,
    },
    Json(Value),
}

impl Block<'_> {
    fn is_tool_result(&self) -> bool {
        matches!(self, Block::Json(v) if get_str(v, "type") == Some("tool_result"))
    }

    fn into_value(self) -> Value {
        match self {
            Block::Text { text, cache } => {
                let mut m = Map::with_capacity(if cache.is_some() { 3 } else { 2 });
                m.insert("type".into(), st("text"));
                m.insert("text".into(), Value::String(text.into_owned()));
                if let Some(cc) = cache {
                    m.insert("cache_control".into(), cc.clone());
                }
                Value::Object(m)
            }
            Block::Json(v) => v,
        }
    }
}

fn blocks_value(blocks: Vec<Block<'_>>) -> Value {
    Value::Array(blocks.into_iter().map(Block::into_value).collect())
}

type Turn<'r> = (&'static str, Vec<Block<'r>>);

fn push_turn<'r>(turns: &mut Vec<Turn<'r>>, role: &'static str, blocks: Vec<Block<'r>>) {
    match turns.last_mut() {
        Some((r, existing)) if *r == role => {
            for b in blocks {
                if b.is_tool_result() {
                    let pos = existing.iter().take_while(|x| x.is_tool_result()).count();
                    existing.insert(pos, b);
                } else {
                    existing.push(b);
                }
            }
        }
        _ => turns.push((role, blocks)),
    }
}

/// The `cache_control` object of a message or content part.
fn cache_of(m: &Map<String, Value>) -> Option<&Value> {
    map_get(m, "cache_control").filter(|v| v.is_object())
}

fn apply_cache_control<'r>(m: &'r Message, blocks: &mut [Block<'r>]) {
    if let Some(cc) = cache_of(&m.extra) {
        match blocks.last_mut() {
            Some(Block::Text { cache, .. }) => *cache = Some(cc),
            Some(Block::Json(Value::Object(last))) => {
                last.insert("cache_control".into(), cc.clone());
            }
            _ => {}
        }
    }
}

fn prefix_name(blocks: &mut [Block<'_>], name: &str) {
    if let Some(text) = blocks.iter_mut().find_map(|b| match b {
        Block::Text { text, .. } => Some(text),
        Block::Json(_) => None,
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
    Some(Block::Text {
        text: Cow::Borrowed(text),
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
        let block = match ty {
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
                    Some(d) if d.mime == "application/pdf" => Some(json!({
                        "type": "document",
                        "source": {"type": "base64", "media_type": d.mime, "data": d.data}
                    })),
                    _ => {
                        cx.drop(&format!("messages[{i}].content[{j}]"))?;
                        None
                    }
                }
            }
            "image" | "document" | "tool_result" | "search_result" => Some(p.clone()),
            _ => {
                cx.drop(&format!("messages[{i}].content[{j}]"))?;
                None
            }
        };
        if let Some(mut b) = block {
            if let (Some(cc), Some(obj)) = (
                get(p, "cache_control").filter(|v| v.is_object()),
                b.as_object_mut(),
            ) {
                obj.insert("cache_control".into(), cc.clone());
            }
            out.push(Block::Json(b));
        }
    }
    Ok(out)
}

fn media_block(url: &str) -> Option<Value> {
    if url.is_empty() {
        return None;
    }
    if let Some(d) = parse_data_uri(url) {
        let kind = if d.mime == "application/pdf" {
            "document"
        } else {
            "image"
        };
        return Some(
            json!({"type": kind, "source": {"type": "base64", "media_type": d.mime, "data": d.data}}),
        );
    }
    let is_pdf = url
        .split(['?', '#'])
        .next()
        .is_some_and(|p| p.to_ascii_lowercase().ends_with(".pdf"));
    let kind = if is_pdf { "document" } else { "image" };
    Some(json!({"type": kind, "source": {"type": "url", "url": url}}))
}

fn assistant_blocks(m: &Message, i: usize) -> Result<Vec<Block<'_>>> {
    let mut out = Vec::new();
    // Thinking blocks from an earlier Anthropic answer go back first and unmodified.
    if let Some(Value::Array(details)) = map_get(&m.extra, "reasoning_details") {
        for d in details {
            let fmt = get_str(d, "format").unwrap_or(REASONING_FORMAT);
            if fmt != REASONING_FORMAT && fmt != "unknown" {
                continue;
            }
            match get_str(d, "type") {
                Some("reasoning.text") => {
                    if let Some(sig) = get_str(d, "signature") {
                        let text = get_str(d, "text").unwrap_or("");
                        out.push(Block::Json(obj([
                            ("type", st("thinking")),
                            ("thinking", st(text)),
                            ("signature", st(sig)),
                        ])));
                    }
                }
                Some("reasoning.encrypted") => {
                    if let Some(data) = get_str(d, "data") {
                        out.push(Block::Json(obj([
                            ("type", st("redacted_thinking")),
                            ("data", st(data)),
                        ])));
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
        out.push(Block::Json(obj([
            ("type", st("tool_use")),
            ("id", Value::String(tool_id(id))),
            ("name", Value::String(tool_name(name))),
            ("input", input),
        ])));
    }
    Ok(out)
}
