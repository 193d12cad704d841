//! Anthropic message → OpenAI `chat.completion`.

use serde_json::{json, Map, Value};

use super::REASONING_FORMAT;
use crate::providers::common::{completion, normalize_finish, pick, u64_at, with_total};
use crate::providers::ResponseContext;
use crate::types::{CompletionTokensDetails, PromptTokensDetails, Usage};

/// Normalized usage from an Anthropic `usage` object: prompt = input + cache writes + cache reads.
pub(crate) fn anthropic_usage(u: &Value) -> Usage {
    let input = u64_at(u, "input_tokens");
    let write = u64_at(u, "cache_creation_input_tokens");
    let read = u64_at(u, "cache_read_input_tokens");
    let write_1h = u
        .pointer("/cache_creation/ephemeral_1h_input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let reasoning = u
        .pointer("/output_tokens_details/thinking_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let searches = u
        .pointer("/server_tool_use/web_search_requests")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    with_total(Usage {
        prompt_tokens: input + write + read,
        completion_tokens: u64_at(u, "output_tokens"),
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: read,
            cache_write_tokens: write,
            cache_write_1h_tokens: write_1h,
            audio_tokens: 0,
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: reasoning,
            ..Default::default()
        },
        web_search_requests: searches,
        ..Usage::default()
    })
}

pub(crate) fn parse_response(v: &Value, ctx: &ResponseContext) -> Option<(Value, Usage)> {
    let blocks = v.get("content")?.as_array()?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut details: Vec<Value> = Vec::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    let mut json_tool_used = false;
    for (index, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                let t = b.get("thinking").and_then(Value::as_str).unwrap_or("");
                reasoning.push_str(t);
                let mut d = json!({"type": "reasoning.text", "text": t, "format": REASONING_FORMAT, "index": index});
                if let Some(sig) = b.get("signature").and_then(Value::as_str) {
                    d["signature"] = json!(sig);
                }
                details.push(d);
            }
            Some("redacted_thinking") => details.push(json!({
                "type": "reasoning.encrypted",
                "data": b.get("data").cloned().unwrap_or(Value::Null),
                "format": REASONING_FORMAT,
                "index": index,
            })),
            Some("tool_use") => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                if ctx.hints.json_tool.as_deref() == Some(name) {
                    json_tool_used = true;
                    let answer = if ctx.hints.json_tool_wrapped {
                        input.get("value").unwrap_or(&Value::Null)
                    } else {
                        &input
                    };
                    text.push_str(&answer.to_string());
                    continue;
                }
                tool_calls.push(json!({
                    "id": b.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {"name": ctx.hints.original_tool_name(name), "arguments": input.to_string()},
                }));
            }
            _ => {}
        }
    }
    let native = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let finish = if json_tool_used && tool_calls.is_empty() && native == "tool_use" {
        "stop"
    } else {
        normalize_finish(native)
    };
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !tool_calls.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    let refusal = if native == "refusal" {
        v.pointer("/stop_details/explanation")
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    };
    message.insert("refusal".into(), refusal.map_or(Value::Null, Value::String));
    if !ctx.hints.exclude_reasoning && !details.is_empty() {
        message.insert("reasoning".into(), json!(reasoning));
        message.insert("reasoning_details".into(), Value::Array(details));
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let choice = json!({
        "index": 0,
        "message": message,
        "finish_reason": finish,
        "native_finish_reason": native,
        "logprobs": null,
    });
    let usage = v.get("usage").map(anthropic_usage).unwrap_or_default();
    let id = pick(&ctx.id, v.get("id").and_then(Value::as_str).unwrap_or(""));
    let model = pick(
        &ctx.model,
        v.get("model").and_then(Value::as_str).unwrap_or(""),
    );
    Some((
        completion(
            id,
            ctx.created,
            model,
            &ctx.provider_name,
            vec![choice],
            &usage,
        ),
        usage,
    ))
}
