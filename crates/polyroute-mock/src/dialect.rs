//! Synthetic, deterministic responses in each provider dialect, generated in code (no files needed).

use serde_json::{json, Value};

/// The wire dialect a request arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST …/chat/completions`.
    OpenAi,
    /// `POST …/messages`.
    Anthropic,
    /// `POST …/models/{model}:generateContent` or `:streamGenerateContent`.
    Gemini,
}

impl Dialect {
    /// Lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

/// What a generation endpoint was asked for.
#[derive(Debug, Clone)]
pub struct Call {
    /// Dialect.
    pub dialect: Dialect,
    /// Streamed response wanted.
    pub stream: bool,
    /// Model id from the body or the path.
    pub model: String,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// The parsed body (Null when it was not JSON).
    pub body: Value,
}

/// Recognize a generation call from method, path and query.
#[must_use]
pub fn classify(method: &str, path: &str, query: &str, body: &[u8]) -> Option<Call> {
    if method != "POST" {
        return None;
    }
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let model_field = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_string();
    let stream_field = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if path.ends_with("/chat/completions") {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return Some(Call {
            dialect: Dialect::OpenAi,
            stream: stream_field,
            model: model_field,
            include_usage,
            body,
        });
    }
    if path.ends_with("/embeddings") {
        // Answered by `crate::embeddings` (after faults, like any OpenAI call).
        return Some(Call {
            dialect: Dialect::OpenAi,
            stream: false,
            model: model_field,
            include_usage: false,
            body,
        });
    }
    if path.ends_with("/messages") {
        return Some(Call {
            dialect: Dialect::Anthropic,
            stream: stream_field,
            model: model_field,
            include_usage: true,
            body,
        });
    }
    let (_, tail) = path.split_once("/models/")?;
    let (model, action) = tail.rsplit_once(':')?;
    let stream = match action {
        // `batchEmbedContents` is answered by `crate::embeddings` (after faults).
        "generateContent" | "batchEmbedContents" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    let _ = query;
    Some(Call {
        dialect: Dialect::Gemini,
        stream,
        model: model.to_string(),
        include_usage: true,
        body,
    })
}

fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let t: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            if t.is_empty() {
                None
            } else {
                Some(t.join(" "))
            }
        }
        _ => None,
    }
}

/// The text of the last user turn, in any dialect.
#[must_use]
pub fn last_user_text(call: &Call) -> Option<String> {
    let (list, key) = match call.dialect {
        Dialect::Gemini => (call.body.get("contents")?, "parts"),
        _ => (call.body.get("messages")?, "content"),
    };
    list.as_array()?
        .iter()
        .rev()
        .find(|m| {
            m.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user")
        })
        .and_then(|m| m.get(key))
        .and_then(text_of)
}

/// The synthetic answer: its text pieces and token counts.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Content pieces, one per stream event; their concatenation is the whole text.
    pub pieces: Vec<String>,
    /// Prompt token count reported.
    pub prompt_tokens: u64,
    /// Completion token count reported (= pieces).
    pub completion_tokens: u64,
    /// Response id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// A tool call answers instead of text: the tool's name and its JSON arguments.
    pub tool: Option<(String, String)>,
}

/// The tool the request forces, else its first tool, in any dialect (None when the request has no tools).
#[must_use]
pub fn wanted_tool(call: &Call) -> Option<String> {
    let b = &call.body;
    let s = |p: &str| b.pointer(p).and_then(Value::as_str).map(str::to_string);
    match call.dialect {
        Dialect::OpenAi => {
            if b.get("tool_choice").and_then(Value::as_str) == Some("none") {
                return None;
            }
            s("/tool_choice/function/name").or_else(|| s("/tools/0/function/name"))
        }
        Dialect::Anthropic => {
            if b.pointer("/tool_choice/type").and_then(Value::as_str) == Some("none") {
                return None;
            }
            s("/tool_choice/name").or_else(|| s("/tools/0/name"))
        }
        Dialect::Gemini => {
            // `functionCallingConfig.mode = "NONE"` (either casing of the key) forbids function calls.
            let mode = s("/toolConfig/functionCallingConfig/mode")
                .or_else(|| s("/tool_config/function_calling_config/mode"));
            if mode.is_some_and(|m| m.eq_ignore_ascii_case("none")) {
                return None;
            }
            s("/toolConfig/functionCallingConfig/allowedFunctionNames/0")
                .or_else(|| s("/tools/0/functionDeclarations/0/name"))
                .or_else(|| s("/tools/0/function_declarations/0/name"))
        }
    }
}

/// Whether the request asks for a JSON answer (`response_format`, `output_config.format`, `responseMimeType`).
#[must_use]
pub fn wants_json(call: &Call) -> bool {
    let b = &call.body;
    match call.dialect {
        Dialect::OpenAi => matches!(
            b.pointer("/response_format/type").and_then(Value::as_str),
            Some("json_schema" | "json_object")
        ),
        Dialect::Anthropic => b.pointer("/output_config/format").is_some(),
        Dialect::Gemini => {
            b.pointer("/generationConfig/responseMimeType")
                .and_then(Value::as_str)
                == Some("application/json")
        }
    }
}

impl Reply {
    /// Build the answer for `call`: `"{label}: {last user text}"`, split into word pieces, or cycled to
    /// exactly `chunks` pieces when given. A request that asks for JSON gets `{"answer": "{label}: …"}`; a
    /// request with tools gets a call to the forced (else first) tool with arguments `{"query": "{user text}"}`.
    #[must_use]
    pub fn new(call: &Call, label: &str, chunks: Option<usize>, seq: u64, body_len: usize) -> Self {
        let user = last_user_text(call).unwrap_or_else(|| "hello".to_string());
        let tool = wanted_tool(call).map(|name| (name, json!({"query": user}).to_string()));
        let text = if wants_json(call) {
            json!({"answer": format!("{label}: {user}")}).to_string()
        } else {
            format!("{label}: {user}")
        };
        let mut words: Vec<String> = Vec::new();
        for (i, w) in text.split(' ').enumerate() {
            words.push(if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            });
        }
        let pieces = match chunks {
            Some(n) if n > 0 => (0..n).map(|i| words[i % words.len()].clone()).collect(),
            _ => words,
        };
        let completion_tokens = pieces.len() as u64;
        Self {
            pieces,
            prompt_tokens: (body_len as u64 / 4).max(1),
            completion_tokens,
            id: format!("mock-{seq}"),
            created: 1_700_000_000 + seq,
            tool,
        }
    }

    /// The whole text.
    #[must_use]
    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

/// A non-streamed tool-call answer.
fn unary_tool(call: &Call, r: &Reply, name: &str, args: &str) -> Value {
    let total = r.prompt_tokens + r.completion_tokens;
    let input: Value = serde_json::from_str(args).unwrap_or(Value::Null);
    match call.dialect {
        Dialect::OpenAi => json!({
            "id": format!("chatcmpl-{}", r.id), "object": "chat.completion", "created": r.created, "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": format!("call_{}", r.id), "type": "function",
                                "function": {"name": name, "arguments": args}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "total_tokens": total}
        }),
        Dialect::Anthropic => json!({
            "id": format!("msg_{}", r.id), "type": "message", "role": "assistant", "model": call.model,
            "content": [{"type": "tool_use", "id": format!("toolu_{}", r.id), "name": name, "input": input}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens}
        }),
        Dialect::Gemini => json!({
            "candidates": [{"content": {"parts": [{"functionCall": {"name": name, "args": input}}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": r.prompt_tokens, "candidatesTokenCount": r.completion_tokens,
                              "totalTokenCount": total},
            "modelVersion": call.model, "responseId": r.id
        }),
    }
}

/// The SSE events of a streamed tool-call answer (arguments in two fragments where the dialect streams them).
fn stream_tool(call: &Call, r: &Reply, name: &str, args: &str) -> Vec<Vec<u8>> {
    let total = r.prompt_tokens + r.completion_tokens;
    let mid = args
        .char_indices()
        .nth(args.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let frags = [&args[..mid], &args[mid..]];
    let mut out = Vec::new();
    match call.dialect {
        Dialect::OpenAi => {
            let id = format!("chatcmpl-{}", r.id);
            let chunk = |delta: Value, finish: Value| {
                json!({"id": id, "object": "chat.completion.chunk", "created": r.created, "model": call.model,
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            };
            out.push(data(&chunk(
                json!({"role": "assistant", "content": null}),
                Value::Null,
            )));
            out.push(data(&chunk(
                json!({"tool_calls": [{"index": 0, "id": format!("call_{}", r.id), "type": "function",
                                       "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            )));
            for f in frags {
                out.push(data(&chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}),
                    Value::Null,
                )));
            }
            out.push(data(&chunk(json!({}), json!("tool_calls"))));
            if call.include_usage {
                out.push(data(&json!({"id": id, "object": "chat.completion.chunk", "created": r.created,
                    "model": call.model, "choices": [],
                    "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                              "total_tokens": total}})));
            }
            out.push(b"data: [DONE]\n\n".to_vec());
        }
        Dialect::Anthropic => {
            out.push(event("message_start", &json!({"type": "message_start", "message": {
                "id": format!("msg_{}", r.id), "type": "message", "role": "assistant", "model": call.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 1}}})));
            out.push(event("content_block_start", &json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": format!("toolu_{}", r.id), "name": name, "input": {}}})));
            for f in ["", frags[0], frags[1]] {
                out.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": f}}),
                ));
            }
            out.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            out.push(event(
                "message_delta",
                &json!({"type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"output_tokens": r.completion_tokens}}),
            ));
            out.push(event("message_stop", &json!({"type": "message_stop"})));
        }
        Dialect::Gemini => out.push(data(&unary_tool(call, r, name, args))),
    }
    out
}

/// A non-streamed success body.
#[must_use]
pub fn unary(call: &Call, r: &Reply) -> Value {
    if let Some((name, args)) = &r.tool {
        return unary_tool(call, r, name, args);
    }
    let total = r.prompt_tokens + r.completion_tokens;
    match call.dialect {
        Dialect::OpenAi => json!({
            "id": format!("chatcmpl-{}", r.id), "object": "chat.completion", "created": r.created, "model": call.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": r.text(), "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens, "total_tokens": total},
            "system_fingerprint": "fp_mock"
        }),
        Dialect::Anthropic => json!({
            "id": format!("msg_{}", r.id), "type": "message", "role": "assistant", "model": call.model,
            "content": [{"type": "text", "text": r.text()}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": r.prompt_tokens, "output_tokens": r.completion_tokens}
        }),
        Dialect::Gemini => json!({
            "candidates": [{"content": {"parts": [{"text": r.text()}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": r.prompt_tokens, "candidatesTokenCount": r.completion_tokens,
                              "totalTokenCount": total},
            "modelVersion": call.model, "responseId": r.id
        }),
    }
}

fn data(v: &Value) -> Vec<u8> {
    format!("data: {v}\n\n").into_bytes()
}

fn event(name: &str, v: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {v}\n\n").into_bytes()
}

/// The SSE events of a streamed success, each already framed.
#[must_use]
pub fn stream_events(call: &Call, r: &Reply) -> Vec<Vec<u8>> {
    if let Some((name, args)) = &r.tool {
        return stream_tool(call, r, name, args);
    }
    let mut out = Vec::with_capacity(r.pieces.len() + 4);
    let total = r.prompt_tokens + r.completion_tokens;
    match call.dialect {
        Dialect::OpenAi => {
            let id = format!("chatcmpl-{}", r.id);
            let chunk = |delta: Value, finish: Value| {
                json!({"id": id, "object": "chat.completion.chunk", "created": r.created, "model": call.model,
                       "system_fingerprint": "fp_mock",
                       "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            };
            out.push(data(&chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null,
            )));
            for p in &r.pieces {
                out.push(data(&chunk(json!({"content": p}), Value::Null)));
            }
            out.push(data(&chunk(json!({}), json!("stop"))));
            if call.include_usage {
                out.push(data(&json!({"id": id, "object": "chat.completion.chunk", "created": r.created,
                    "model": call.model, "system_fingerprint": "fp_mock", "choices": [],
                    "usage": {"prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                              "total_tokens": total}})));
            }
            out.push(b"data: [DONE]\n\n".to_vec());
        }
        Dialect::Anthropic => {
            out.push(event("message_start", &json!({"type": "message_start", "message": {
                "id": format!("msg_{}", r.id), "type": "message", "role": "assistant", "model": call.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": r.prompt_tokens, "output_tokens": 1}}})));
            out.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            for p in &r.pieces {
                out.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
                ));
            }
            out.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            out.push(event(
                "message_delta",
                &json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": r.completion_tokens}}),
            ));
            out.push(event("message_stop", &json!({"type": "message_stop"})));
        }
        Dialect::Gemini => {
            let n = r.pieces.len();
            for (i, p) in r.pieces.iter().enumerate() {
                let done = i + 1 == n;
                let mut cand =
                    json!({"content": {"parts": [{"text": p}], "role": "model"}, "index": 0});
                if done {
                    cand["finishReason"] = json!("STOP");
                }
                let so_far = i as u64 + 1;
                out.push(data(&json!({"candidates": [cand],
                    "usageMetadata": {"promptTokenCount": r.prompt_tokens, "candidatesTokenCount": so_far,
                                      "totalTokenCount": r.prompt_tokens + so_far},
                    "modelVersion": call.model, "responseId": r.id})));
            }
        }
    }
    out
}

/// A dialect-shaped error body for `status`.
#[must_use]
pub fn error_body(dialect: Dialect, status: u16) -> Value {
    let msg = format!("polyroute-mock injected status {status}");
    match dialect {
        Dialect::OpenAi => {
            let ty = match status {
                429 => "rate_limit_exceeded",
                400 | 422 => "invalid_request_error",
                401 | 403 => "authentication_error",
                404 => "not_found_error",
                _ => "server_error",
            };
            json!({"error": {"message": msg, "type": ty, "param": null, "code": ty}})
        }
        Dialect::Anthropic => {
            let ty = match status {
                429 => "rate_limit_error",
                400 | 413 | 422 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": ty, "message": msg}, "request_id": "req_mock"})
        }
        Dialect::Gemini => {
            let st = match status {
                429 => "RESOURCE_EXHAUSTED",
                400 | 422 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": msg, "status": st}})
        }
    }
}

/// The `GET /v1/models` listing.
#[must_use]
pub fn models_list(models: &[String]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "polyroute-mock"}))
        .collect();
    json!({"object": "list", "data": data})
}
