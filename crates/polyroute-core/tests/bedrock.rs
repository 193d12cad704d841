#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)] // tests read vectors
//! Bedrock Converse: requests built, answers, streams (event-stream frames, split anywhere) and errors read back,
//! against the vectors in `tests/wire/bedrock_converse.json` (shapes from the Bedrock API reference).

use polyroute_core::eventstream::encode;
use polyroute_core::plan::OutcomeClass;
use polyroute_core::providers::{
    build_request, map_error, parse_response, Dialect, ResponseContext, StreamTranslator,
    TranslateOptions,
};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Value};

const D: Dialect = Dialect::BedrockConverse;
const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

fn vectors() -> Value {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wire/bedrock_converse.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn ctx() -> ResponseContext {
    ResponseContext {
        id: "gen-1".into(),
        created: 1,
        model: "anthropic/claude-sonnet-4.5".into(),
        provider_name: "Amazon Bedrock".into(),
        ..Default::default()
    }
}

#[test]
fn request_is_converse_shaped() {
    let req = ChatRequest::from_value(&json!({"model": "anthropic/claude-sonnet-4.5", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required", "max_tokens": 300, "temperature": 0.2, "top_p": 0.9, "stop": ["END"],
        "top_k": 5, "frequency_penalty": 0.5}))
    .unwrap();
    let mut opts = TranslateOptions::new("amazon-bedrock", CLAUDE);
    let n = build_request(D, &req, &opts).unwrap();
    assert_eq!(
        n.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    );
    let b = n.body.value();
    assert_eq!(
        b["system"],
        json!([{"text": "Be brief."}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(b["messages"][0]["role"], "user");
    assert_eq!(
        b["messages"][0]["content"][0],
        json!({"text": "Weather in Paris?"})
    );
    assert_eq!(
        b["messages"][0]["content"][1],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
    assert_eq!(
        b["messages"][1]["content"][0],
        json!({"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}})
    );
    assert_eq!(
        b["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        "call_1"
    );
    assert_eq!(
        b["messages"][2]["content"][0]["toolResult"]["content"],
        json!([{"text": "18C"}])
    );
    assert_eq!(
        b["inferenceConfig"],
        json!({"maxTokens": 300, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]})
    );
    assert_eq!(b["additionalModelRequestFields"], json!({"top_k": 5}));
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["city"]
            ["type"],
        "string"
    );
    assert_eq!(b["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert!(b.get("model").is_none() && b.get("stream").is_none() && b.get("max_tokens").is_none());
    assert!(n.dropped.contains(&"frequency_penalty".to_string()));
    assert!(n.headers.is_empty());

    // Streaming, another family: top_k and reasoning have no Converse switch outside Claude.
    opts = TranslateOptions::new("amazon-bedrock", "amazon.nova-pro-v1:0");
    opts.stream = true;
    let req = ChatRequest::from_value(&json!({"model": "amazon/nova-pro-v1",
        "messages": [{"role": "user", "content": "hi"}], "top_k": 3, "reasoning": {"effort": "high"}}))
    .unwrap();
    let n = build_request(D, &req, &opts).unwrap();
    assert_eq!(n.path, "/model/amazon.nova-pro-v1%3A0/converse-stream");
    assert!(n.body.value().get("additionalModelRequestFields").is_none());
    assert!(n.dropped.contains(&"top_k".to_string()));
    opts.strict = true;
    assert!(build_request(D, &req, &opts).is_err());

    // Claude reasoning goes to additionalModelRequestFields.
    let req = ChatRequest::from_value(
        &json!({"model": "anthropic/claude-sonnet-4.5", "max_tokens": 8000,
        "messages": [{"role": "user", "content": "hi"}], "reasoning": {"max_tokens": 2000}}),
    )
    .unwrap();
    let n = build_request(D, &req, &TranslateOptions::new("amazon-bedrock", CLAUDE)).unwrap();
    assert_eq!(
        n.body.value()["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 2000})
    );
}

#[test]
fn answers_translate() {
    let v = vectors();
    let body = serde_json::to_vec(&v["converse_text"]).unwrap();
    let (out, usage) = parse_response(D, 200, &body, &ctx()).unwrap();
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "Hello! How can I help you today?"
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["id"], "gen-1");
    // prompt = input + cache writes + cache reads
    assert_eq!(usage.prompt_tokens, 1036);
    assert_eq!(usage.prompt_tokens_details.cached_tokens, 1000);
    assert_eq!(usage.prompt_tokens_details.cache_write_tokens, 24);
    assert_eq!(usage.completion_tokens, 9);

    let body = serde_json::to_vec(&v["converse_tool_use"]).unwrap();
    let (out, _) = parse_response(D, 200, &body, &ctx()).unwrap();
    let m = &out["choices"][0]["message"];
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(m["content"], "Let me check.");
    assert_eq!(m["reasoning"], "The user wants the weather.");
    assert_eq!(m["reasoning_details"][0]["signature"], "c2lnLWZha2U=");
    assert_eq!(m["tool_calls"][0]["id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(m["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );

    let body = serde_json::to_vec(&v["converse_guardrail"]).unwrap();
    let (out, _) = parse_response(D, 200, &body, &ctx()).unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        out["choices"][0]["native_finish_reason"],
        "guardrail_intervened"
    );
    assert!(parse_response(D, 200, b"{\"nope\":1}", &ctx()).is_err());
}

fn frames(events: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    for e in events.as_array().unwrap() {
        let payload = serde_json::to_vec(&e["payload"]).unwrap();
        bytes.extend(encode(
            &[
                (":event-type", e["event"].as_str().unwrap()),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            &payload,
        ));
    }
    bytes
}

fn run(bytes: &[u8], step: usize) -> (Vec<Value>, StreamTranslator) {
    let mut tr = StreamTranslator::new(D, ctx());
    let mut chunks = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        chunks.extend(tr.push(piece));
    }
    chunks.extend(tr.finish());
    (chunks, tr)
}

#[test]
fn stream_translates_at_any_split() {
    let bytes = frames(&vectors()["stream_events"]);
    let (whole, _) = run(&bytes, bytes.len());
    for step in [1, 7, 64] {
        assert_eq!(run(&bytes, step).0, whole, "step {step}");
    }
    let (chunks, tr) = run(&bytes, 13);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, "Weather");
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "tooluse_1"));
    assert_eq!(tr.finish_reason(), Some("tool_calls"));
    let u = tr.usage().unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (130, 40));
    assert_eq!(u.prompt_tokens_details.cached_tokens, 50);
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 130);
    assert!(tr.failure().is_none());
}

#[test]
fn stream_exceptions_and_corruption_fail() {
    let events = vectors()["stream_events"].clone();
    let first_two = json!([events[0], events[4]]);
    let mut bytes = frames(&first_two);
    bytes.extend(encode(
        &[
            (":message-type", "exception"),
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    ));
    let (chunks, tr) = run(&bytes, 5);
    let f = tr.failure().expect("failure");
    assert_eq!(f.outcome.class, OutcomeClass::RateLimited);
    assert!(tr.content_emitted());
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "error"
    );

    // A flipped payload byte: the message CRC catches it.
    let mut bad = frames(&first_two);
    let n = bad.len();
    bad[n - 8] ^= 0x20;
    let (_, tr) = run(&bad, 3);
    assert!(tr.failure().unwrap().outcome.message.contains("checksum"));

    // Cut short: a truncated frame, and no finish reason.
    let whole = frames(&events);
    let (_, tr) = run(&whole[..whole.len() - 3], 9);
    assert!(tr.failure().is_some());
}

#[test]
fn errors_classify() {
    for e in vectors()["errors"].as_array().unwrap() {
        let status = u16::try_from(e["status"].as_u64().unwrap()).unwrap();
        let body = serde_json::to_vec(&e["body"]).unwrap();
        let f = polyroute_core::providers::bedrock::map_error(
            status,
            None,
            e["type"].as_str(),
            &body,
            "Amazon Bedrock",
        );
        assert_eq!(f.outcome.class.code(), e["class"].as_str().unwrap(), "{e}");
        if let Some(s) = e["message_contains"].as_str() {
            assert!(f.outcome.message.contains(s), "{}", f.outcome.message);
        }
        assert_eq!(
            f.envelope["error"]["metadata"]["provider_name"],
            "Amazon Bedrock"
        );
    }
    // Without the header, the status decides.
    let f = map_error(
        D,
        429,
        Some(2.0),
        br#"{"message":"slow down"}"#,
        "Amazon Bedrock",
    );
    assert_eq!(f.outcome.class, OutcomeClass::RateLimited);
    assert_eq!(f.outcome.retry_after, Some(2.0));
    assert_eq!(f.outcome.message, "slow down");
}
