//! Gemini `GenerateContentResponse` → OpenAI `chat.completion`.

use serde_json::{json, Map, Value};

use super::REASONING_FORMAT;
use crate::providers::common::{
    completion, normalize_finish, pick, sanitize_name, u64_at, with_total,
};
use crate::providers::ResponseContext;
use crate::types::{CompletionTokensDetails, PromptTokensDetails, Usage};

/// Normalized usage from `usageMetadata`: completion = candidates + thoughts (candidates exclude thoughts).
pub(crate) fn gemini_usage(u: &Value) -> Usage {
    let thoughts = u64_at(u, "thoughtsTokenCount");
    with_total(Usage {
        prompt_tokens: u64_at(u, "promptTokenCount") + u64_at(u, "toolUsePromptTokenCount"),
        completion_tokens: u64_at(u, "candidatesTokenCount") + thoughts,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: u64_at(u, "cachedContentTokenCount"),
            ..Default::default()
        },
        completion_tokens_details: CompletionTokensDetails {
            reasoning_tokens: thoughts,
            ..Default::default()
        },
        ..Usage::default()
    })
}

/// The id given to a function call that came without one: stable for the same response.
pub(crate) fn synthetic_call_id(response_id: &str, n: u64) -> String {
    if response_id.is_empty() {
        format!("call_{n}")
    } else {
        format!("call_{}_{n}", sanitize_name(response_id, &[], 64))
    }
}

/// What one candidate part contributes to a message or delta.
pub(crate) enum PartOut {
    Text(String),
    Thought(String),
    Call {
        id: String,
        name: String,
        arguments: String,
    },
    None,
}

/// Translate one part; `calls` numbers function calls that come without an id. A part's `thoughtSignature` is
/// returned as a `reasoning_details` entry (with the tool call's id when the part is a function call).
pub(crate) fn part_out(
    p: &Value,
    index: usize,
    response_id: &str,
    calls: &mut u64,
    ctx: &ResponseContext,
) -> (PartOut, Option<Value>) {
    let out = if let Some(fc) = p.get("functionCall") {
        let id = fc
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| synthetic_call_id(response_id, *calls), str::to_string);
        *calls += 1;
        let name = fc.get("name").and_then(Value::as_str).unwrap_or("");
        let args = fc.get("args").cloned().unwrap_or_else(|| json!({}));
        PartOut::Call {
            id,
            name: ctx.hints.original_tool_name(name).to_string(),
            arguments: args.to_string(),
        }
    } else if let Some(t) = p.get("text").and_then(Value::as_str) {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            PartOut::Thought(t.to_string())
        } else {
            PartOut::Text(t.to_string())
        }
    } else {
        PartOut::None
    };
    let sig = p.get("thoughtSignature").and_then(Value::as_str).map(|s| {
        let mut d = json!({"type": "reasoning.encrypted", "data": s, "format": REASONING_FORMAT, "index": index});
        if let PartOut::Call { id, .. } = &out {
            d["id"] = json!(id);
        }
        d
    });
    (out, sig)
}

/// Gemini `logprobsResult` → OpenAI `logprobs`.
pub(crate) fn logprobs(c: &Value) -> Value {
    let Some(chosen) = c
        .pointer("/logprobsResult/chosenCandidates")
        .and_then(Value::as_array)
    else {
        return Value::Null;
    };
    let tops = c
        .pointer("/logprobsResult/topCandidates")
        .and_then(Value::as_array);
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let top: Vec<Value> = tops
                .and_then(|t| t.get(i))
                .and_then(|t| t.get("candidates"))
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(|x| json!({"token": x["token"], "logprob": x["logProbability"], "bytes": null})).collect())
                .unwrap_or_default();
            json!({"token": t["token"], "logprob": t["logProbability"], "bytes": null, "top_logprobs": top})
        })
        .collect();
    json!({"content": content, "refusal": null})
}

pub(crate) fn parse_response(v: &Value, ctx: &ResponseContext) -> Option<(Value, Usage)> {
    if !v.is_object() {
        return None;
    }
    let response_id = v.get("responseId").and_then(Value::as_str).unwrap_or("");
    let mut choices = Vec::new();
    let mut calls = 0u64;
    for (pos, c) in v
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut details = Vec::new();
        let mut tool_calls = Vec::new();
        let parts = c.pointer("/content/parts").and_then(Value::as_array);
        for (i, p) in parts.into_iter().flatten().enumerate() {
            let (out, sig) = part_out(p, i, response_id, &mut calls, ctx);
            match out {
                PartOut::Text(t) => text.push_str(&t),
                PartOut::Thought(t) => {
                    details.push(json!({"type": "reasoning.text", "text": t, "format": REASONING_FORMAT, "index": i}));
                    reasoning.push_str(&t);
                }
                PartOut::Call {
                    id,
                    name,
                    arguments,
                } => tool_calls.push(json!({
                    "id": id, "type": "function", "function": {"name": name, "arguments": arguments}
                })),
                PartOut::None => {}
            }
            details.extend(sig);
        }
        let native = c
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("STOP");
        let finish = if !tool_calls.is_empty() && native == "STOP" {
            "tool_calls"
        } else {
            normalize_finish(native)
        };
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        message.insert(
            "content".into(),
            if text.is_empty() && (parts.is_none() || !tool_calls.is_empty()) {
                Value::Null
            } else {
                json!(text)
            },
        );
        message.insert("refusal".into(), Value::Null);
        if !ctx.hints.exclude_reasoning && !details.is_empty() {
            message.insert(
                "reasoning".into(),
                if reasoning.is_empty() {
                    Value::Null
                } else {
                    json!(reasoning)
                },
            );
            message.insert("reasoning_details".into(), Value::Array(details));
        }
        if !tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(tool_calls));
        }
        choices.push(json!({
            "index": index,
            "message": message,
            "finish_reason": finish,
            "native_finish_reason": native,
            "logprobs": logprobs(c),
        }));
    }
    if choices.is_empty() {
        // The prompt was blocked (with or without a stated reason): no candidates.
        let native = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("BLOCKED_REASON_UNSPECIFIED");
        let msg = v
            .pointer("/promptFeedback/blockReasonMessage")
            .and_then(Value::as_str);
        choices.push(json!({
            "index": 0,
            "message": {"role": "assistant", "content": null, "refusal": msg},
            "finish_reason": "content_filter",
            "native_finish_reason": native,
            "logprobs": null,
        }));
    }
    let usage = v.get("usageMetadata").map(gemini_usage).unwrap_or_default();
    let id = pick(&ctx.id, response_id);
    let model = pick(
        &ctx.model,
        v.get("modelVersion").and_then(Value::as_str).unwrap_or(""),
    );
    Some((
        completion(id, ctx.created, model, &ctx.provider_name, choices, &usage),
        usage,
    ))
}
