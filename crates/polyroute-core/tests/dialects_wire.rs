#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)] // tests read vectors and goldens
//! Every recorded payload in `shared/data/wire/` goes through the dialects; outputs are compared with goldens
//! under `tests/golden/` (regenerate with `UPDATE_GOLDEN=1 cargo test -p polyroute-core --test dialects_wire`).
//! Streams are replayed at every split point and one byte at a time.

use std::collections::BTreeSet;
use std::path::Path;

use polyroute_core::plan::OutcomeClass;
use polyroute_core::providers::{
    build_request, map_error, parse_response, Dialect, ResponseContext, StreamTranslator,
    TranslateOptions,
};
use polyroute_core::sse::{SseEvent, SseParser};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Value};

const WIRE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/wire");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden");

use Dialect::{Anthropic, Gemini, OpenAi};

/// Recorded SSE bodies.
const STREAMS: &[(&str, Dialect)] = &[
    ("openai/stream.text.sse", OpenAi),
    ("openai/stream.parallel_tool_calls.sse", OpenAi),
    ("openai/stream.n3_json_schema.sse", OpenAi),
    ("openai/stream.logprobs.sse", OpenAi),
    ("openai/stream.refusal.sse", OpenAi),
    ("anthropic/stream.basic_text.sse", Anthropic),
    ("anthropic/stream.tool_use.sse", Anthropic),
    ("anthropic/stream.refusal_stop_details.sse", Anthropic),
    (
        "anthropic/stream.thinking_signature_refusal_padded.sse",
        Anthropic,
    ),
    (
        "gemini/googleai.streaming-success-basic-reply-short.sse",
        Gemini,
    ),
    (
        "gemini/googleai.streaming-success-thinking-function-call-thought-summary-signature.sse",
        Gemini,
    ),
    (
        "gemini/googleai.streaming-success-thinking-reply-thought-summary.sse",
        Gemini,
    ),
    (
        "gemini/googleai.streaming-failure-prompt-blocked-safety.sse",
        Gemini,
    ),
    (
        "gemini/vertexai.streaming-success-function-call-short.sse",
        Gemini,
    ),
    (
        "gemini/vertexai.streaming-failure-error-mid-stream.sse",
        Gemini,
    ),
];

/// Whole successful bodies.
const RESPONSES: &[(&str, Dialect)] = &[
    ("openai/chat_completion.text.response.json", OpenAi),
    ("openai/chat_completion.json_schema.response.json", OpenAi),
    ("openai/chat_completion.length.response.json", OpenAi),
    ("openai/chat_completion.refusal.response.json", OpenAi),
    (
        "openai/chat_completion.parallel_tool_calls.response.json",
        OpenAi,
    ),
    (
        "gemini/googleai.unary-success-basic-reply-short.json",
        Gemini,
    ),
    (
        "gemini/googleai.unary-success-thinking-function-call-thought-summary-signature.json",
        Gemini,
    ),
    (
        "gemini/googleai.unary-failure-finish-reason-safety.json",
        Gemini,
    ),
    (
        "gemini/googleai.unary-failure-only-prompt-feedback.json",
        Gemini,
    ),
    (
        "gemini/vertexai.unary-success-function-call-parallel-calls.json",
        Gemini,
    ),
    (
        "gemini/vertexai.unary-success-constraint-decoding-json.json",
        Gemini,
    ),
];

/// Error bodies: file, status, expected class.
const ERRORS: &[(&str, u16, OutcomeClass)] = &[
    (
        "gemini/googleai.unary-failure-api-key.json",
        400,
        OutcomeClass::Auth,
    ),
    (
        "gemini/googleai.unary-failure-unknown-model.json",
        404,
        OutcomeClass::NotFound,
    ),
    (
        "gemini/vertexai.unary-failure-quota-exceeded.json",
        429,
        OutcomeClass::RateLimited,
    ),
];

/// OpenAI requests translated to every dialect.
const REQUESTS: &[&str] = &[
    "openai/chat_completion.text.request.json",
    "openai/chat_completion.json_schema.request.json",
    "openai/chat_completion.parallel_tool_calls.request.json",
];

/// Files checked by dedicated tests below (exchanges, SDK-generated requests).
const DEDICATED: &[&str] = &[
    "anthropic/exchange.structured_output_output_config.json",
    "anthropic/exchange.tool_use_roundtrip.json",
    "anthropic/exchange.consecutive_user_then_orphan_tool_result_400.json",
    "anthropic/exchange.stream_429_rate_limit_then_sse.json",
    "anthropic/exchange.stream_tool_use_roundtrip.json",
    "gemini/request.function_calling.generated.json",
    "gemini/request.function_response_json_schema.generated.json",
];

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(WIRE).join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap()
}

fn golden(name: &str, actual: &Value) {
    let path = Path::new(GOLDEN).join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(GOLDEN).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(actual).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        actual, &expected,
        "golden {name} differs; inspect and rerun with UPDATE_GOLDEN=1"
    );
}

fn golden_name(rel: &str, suffix: &str) -> String {
    format!("{}.{suffix}", rel.replace('/', "__"))
}

fn ctx(provider: &str) -> ResponseContext {
    ResponseContext {
        id: "gen-test".into(),
        created: 1_700_000_000,
        provider_name: provider.into(),
        ..Default::default()
    }
}

fn replay_whole(d: Dialect, c: &ResponseContext, body: &[u8]) -> Vec<Value> {
    let mut t = StreamTranslator::new(d, c.clone());
    let mut out = t.push(body);
    out.extend(t.finish());
    out
}

/// The SSE events of a body fed in two pieces split at `cut` (or whole).
fn sse_events(body: &[u8], cut: usize) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = p.push(&body[..cut]);
    out.extend(p.push(&body[cut..]));
    out.extend(p.finish());
    out
}

/// Replays a stream split at every point and one byte at a time; all must equal the whole-body result.
///
/// Splitting only affects the SSE layer (the dialect state machines consume whole events), so every split point
/// is checked at the event level, where it is cheap, and the full translation is checked one byte at a time and
/// at every 37th split point (every split of the full translation is quadratic and slow in debug builds).
fn replay_checked(d: Dialect, c: &ResponseContext, body: &[u8]) -> Vec<Value> {
    let whole = replay_whole(d, c, body);
    let events = sse_events(body, body.len());
    for cut in 0..=body.len() {
        assert_eq!(
            sse_events(body, cut),
            events,
            "sse events differ when split at {cut}"
        );
    }
    for cut in (0..=body.len()).step_by(37) {
        let mut t = StreamTranslator::new(d, c.clone());
        let mut out = t.push(&body[..cut]);
        out.extend(t.push(&body[cut..]));
        out.extend(t.finish());
        assert_eq!(out, whole, "split at {cut}");
    }
    let mut t = StreamTranslator::new(d, c.clone());
    let mut out = Vec::new();
    for b in body {
        out.extend(t.push(std::slice::from_ref(b)));
    }
    out.extend(t.finish());
    assert_eq!(out, whole, "byte at a time");
    // CRLF line endings give the same chunks.
    let crlf = String::from_utf8_lossy(body)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    assert_eq!(replay_whole(d, c, crlf.as_bytes()), whole, "crlf");
    whole
}

/// Structural invariants of every translated stream.
fn check_stream_shape(name: &str, chunks: &[Value]) {
    assert!(!chunks.is_empty(), "{name}: no chunks");
    let last = chunks.last().unwrap();
    let errored = last.get("error").is_some();
    let mut seen_role = BTreeSet::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk", "{name}");
        for ch in c["choices"].as_array().unwrap() {
            let idx = ch["index"].as_u64().unwrap();
            if ch["finish_reason"] != "error" && seen_role.insert(idx) {
                assert_eq!(
                    ch["delta"]["role"], "assistant",
                    "{name}: first delta of choice {idx} lacks the role"
                );
            }
            let f = &ch["finish_reason"];
            assert!(
                f.is_null()
                    || ["stop", "length", "tool_calls", "content_filter", "error"]
                        .contains(&f.as_str().unwrap()),
                "{name}: bad finish_reason {f}"
            );
            if let Some(tcs) = ch["delta"]["tool_calls"].as_array() {
                for tc in tcs {
                    assert!(tc["index"].is_u64(), "{name}: tool call without index");
                }
            }
        }
        if c["choices"].as_array().unwrap().is_empty() {
            assert_eq!(i, chunks.len() - 1, "{name}: usage chunk must be last");
            assert!(c["usage"].is_object());
        }
    }
    if errored {
        assert_eq!(last["choices"][0]["finish_reason"], "error");
    }
}

#[test]
fn every_vector_is_used() {
    let mut on_disk = BTreeSet::new();
    for dir in std::fs::read_dir(WIRE).unwrap() {
        let dir = dir.unwrap();
        if !dir.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap();
            on_disk.insert(format!(
                "{}/{}",
                dir.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    let used: BTreeSet<String> = STREAMS
        .iter()
        .map(|(f, _)| *f)
        .chain(RESPONSES.iter().map(|(f, _)| *f))
        .chain(ERRORS.iter().map(|(f, _, _)| *f))
        .chain(REQUESTS.iter().copied())
        .chain(DEDICATED.iter().copied())
        .map(str::to_string)
        .collect();
    let unused: Vec<_> = on_disk.difference(&used).collect();
    let missing: Vec<_> = used.difference(&on_disk).collect();
    assert!(unused.is_empty(), "vectors without a test: {unused:?}");
    assert!(
        missing.is_empty(),
        "tests name vectors that do not exist: {missing:?}"
    );
    assert!(on_disk.len() >= 39);
}

#[test]
fn recorded_streams_replay_identically_and_match_goldens() {
    for (file, d) in STREAMS {
        let chunks = replay_checked(*d, &ctx("Test"), &read(file));
        check_stream_shape(file, &chunks);
        golden(&golden_name(file, "chunks"), &Value::Array(chunks));
    }
}

#[test]
fn recorded_responses_match_goldens() {
    for (file, d) in RESPONSES {
        let (resp, usage) = parse_response(*d, 200, &read(file), &ctx("Test")).unwrap();
        assert_eq!(
            usage.total_tokens,
            usage.prompt_tokens + usage.completion_tokens,
            "{file}"
        );
        golden(&golden_name(file, "completion"), &resp);
    }
}

#[test]
fn recorded_errors_classify() {
    for (file, status, class) in ERRORS {
        let f = map_error(Gemini, *status, None, &read(file), "Google AI Studio");
        assert_eq!(f.outcome.class, *class, "{file}");
        assert_eq!(
            f.envelope["error"]["metadata"]["provider_name"],
            "Google AI Studio"
        );
        assert!(
            !f.envelope.to_string().contains("key1234"),
            "{file}: an api key leaked into the envelope"
        );
        // Same through parse_response.
        let e = parse_response(Gemini, *status, &read(file), &ctx("Google AI Studio")).unwrap_err();
        assert_eq!(e.outcome.class, *class);
        golden(&golden_name(file, "error"), &e.envelope);
    }
}

#[test]
fn openai_requests_translate_to_every_dialect() {
    for file in REQUESTS {
        let req = ChatRequest::from_value(&read_json(file)).unwrap();
        let mut all = serde_json::Map::new();
        for (d, provider, model) in [
            (OpenAi, "openai", "gpt-4o-2024-08-06"),
            (OpenAi, "groq", "llama-3.3-70b-versatile"),
            (Anthropic, "anthropic", "claude-sonnet-4-5"),
            (Gemini, "google-ai-studio", "gemini-2.5-flash"),
        ] {
            let mut o = TranslateOptions::new(provider, model);
            o.supports_native_structured_output = true;
            let n = build_request(d, &req, &o).unwrap();
            all.insert(
                format!("{}:{provider}", d.as_str()),
                json!({"path": n.path, "headers": n.headers, "body": n.body, "dropped": n.dropped}),
            );
        }
        // OpenAI passthrough keeps the SDK body (stream false is dropped: the engine decides streaming).
        let mut sent = all["openai:openai"]["body"].clone();
        let mut orig = read_json(file);
        orig.as_object_mut().unwrap().remove("stream");
        sent.as_object_mut().unwrap().remove("stream");
        assert_eq!(sent, orig, "{file}: openai passthrough changed the body");
        golden(&golden_name(file, "translated"), &Value::Object(all));
    }
}

fn exchange(file: &str) -> Vec<Value> {
    read_json(file).as_array().unwrap().clone()
}

fn strip_caller(mut v: Value) -> Value {
    if let Some(msgs) = v["messages"].as_array_mut() {
        for m in msgs {
            if let Some(blocks) = m["content"].as_array_mut() {
                for b in blocks {
                    b.as_object_mut().unwrap().remove("caller");
                }
            }
        }
    }
    v
}

#[test]
fn anthropic_tool_use_roundtrip_exchange() {
    let ex = exchange("anthropic/exchange.tool_use_roundtrip.json");
    // First answer: a tool call.
    let body = serde_json::to_vec(&ex[0]["response"]["body"]).unwrap();
    let (resp, usage) = parse_response(Anthropic, 200, &body, &ctx("Anthropic")).unwrap();
    assert_eq!(resp["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(resp["choices"][0]["native_finish_reason"], "tool_use");
    let call = resp["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(usage.prompt_tokens, 597);
    // Second request: rebuild it from the OpenAI conversation; it must equal what the SDK sent.
    let recorded = &ex[1]["request"]["body"];
    let tool_result = recorded["messages"][2]["content"][0]["content"].clone();
    let req = ChatRequest::from_value(&json!({
        "model": "anthropic/claude-haiku-4.5",
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "What's the weather in SF in Celsius?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": tool_result},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "", "parameters": recorded["tools"][0]["input_schema"]}}],
    }))
    .unwrap();
    let n = build_request(
        Anthropic,
        &req,
        &TranslateOptions::new("anthropic", "claude-haiku-4-5"),
    )
    .unwrap();
    assert_eq!(
        n.body["messages"],
        strip_caller(recorded.clone())["messages"]
    );
    assert_eq!(
        n.body["tools"][0]["input_schema"],
        recorded["tools"][0]["input_schema"]
    );
    assert!(n.dropped.is_empty());
    let body = serde_json::to_vec(&ex[1]["response"]["body"]).unwrap();
    let (resp, _) = parse_response(Anthropic, 200, &body, &ctx("Anthropic")).unwrap();
    golden("anthropic__exchange.tool_use_roundtrip.final", &resp);
}

#[test]
fn anthropic_orphan_tool_result_400_and_merge() {
    let ex = exchange("anthropic/exchange.consecutive_user_then_orphan_tool_result_400.json");
    let resp = &ex[1]["response"];
    let body = serde_json::to_vec(&resp["body"]).unwrap();
    let f = map_error(Anthropic, 400, None, &body, "Anthropic");
    assert_eq!(f.outcome.class, OutcomeClass::InvalidRequest);
    assert_eq!(
        f.outcome.provider_code.as_deref(),
        Some("invalid_request_error")
    );
    golden(
        "anthropic__exchange.orphan_tool_result_400.error",
        &f.envelope,
    );
    // Our translation merges the consecutive user turns client-side and puts the tool_result first.
    let req = ChatRequest::from_value(&json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "What's the weather in SF in Celsius?"},
            {"role": "tool", "tool_call_id": "toolu_01GHndag5wQmbzNihYmV2UBj", "content": "sunny"},
        ],
    }))
    .unwrap();
    let n = build_request(
        Anthropic,
        &req,
        &TranslateOptions::new("anthropic", "claude-haiku-4-5"),
    )
    .unwrap();
    let msgs = n.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["content"][0]["type"], "tool_result");
    assert_eq!(msgs[0]["content"][1]["type"], "text");
    // The first exchange's answer parses.
    let body = serde_json::to_vec(&ex[0]["response"]["body"]).unwrap();
    assert!(parse_response(Anthropic, 200, &body, &ctx("Anthropic")).is_ok());
}

#[test]
fn anthropic_429_then_stream() {
    let ex = exchange("anthropic/exchange.stream_429_rate_limit_then_sse.json");
    for e in &ex[..2] {
        let body = serde_json::to_vec(&e["response"]["body"]).unwrap();
        let f = map_error(Anthropic, 429, Some(7.0), &body, "Anthropic");
        assert_eq!(f.outcome.class, OutcomeClass::RateLimited);
        assert_eq!(f.outcome.retry_after, Some(7.0));
        assert_eq!(f.envelope["error"]["code"], 429);
        assert_eq!(
            f.envelope["error"]["metadata"]["error_type"],
            "rate_limit_exceeded"
        );
    }
    // The request used native structured output with an array root.
    let recorded = &ex[0]["request"]["body"];
    let req = ChatRequest::from_value(&json!({
        "model": "m", "max_tokens": 1024,
        "messages": [{"role": "user", "content": recorded["messages"][0]["content"]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "ids", "schema": recorded["output_config"]["format"]["schema"]}},
    }))
    .unwrap();
    let mut o = TranslateOptions::new("anthropic", "claude-sonnet-4-5");
    o.supports_native_structured_output = true;
    o.stream = true;
    let n = build_request(Anthropic, &req, &o).unwrap();
    assert_eq!(&n.body, recorded);
    let sse = ex[2]["response"]["body"].as_str().unwrap();
    let chunks = replay_checked(Anthropic, &ctx("Anthropic"), sse.as_bytes());
    check_stream_shape("429-then-sse", &chunks);
    golden(
        "anthropic__exchange.stream_429_rate_limit_then_sse.chunks",
        &Value::Array(chunks),
    );
}

#[test]
fn anthropic_stream_tool_use_roundtrip() {
    let ex = exchange("anthropic/exchange.stream_tool_use_roundtrip.json");
    let mut all = Vec::new();
    for (i, e) in ex.iter().enumerate() {
        let sse = e["response"]["body"].as_str().unwrap();
        let chunks = replay_checked(Anthropic, &ctx("Anthropic"), sse.as_bytes());
        check_stream_shape("stream_tool_use_roundtrip", &chunks);
        if i == 0 {
            assert!(chunks
                .iter()
                .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"].is_string()));
            assert!(chunks
                .iter()
                .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
        }
        all.push(Value::Array(chunks));
    }
    golden(
        "anthropic__exchange.stream_tool_use_roundtrip.chunks",
        &Value::Array(all),
    );
}

#[test]
fn anthropic_structured_output_exchange() {
    let ex = exchange("anthropic/exchange.structured_output_output_config.json");
    let recorded = &ex[0]["request"]["body"];
    let req = ChatRequest::from_value(&json!({
        "model": "m", "max_tokens": 1024,
        "messages": recorded["messages"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "OrderItem", "strict": true,
            "schema": recorded["output_config"]["format"]["schema"]}},
    }))
    .unwrap();
    let mut o = TranslateOptions::new("anthropic", "claude-sonnet-4-5");
    o.supports_native_structured_output = true;
    let n = build_request(Anthropic, &req, &o).unwrap();
    assert_eq!(n.body["output_config"], recorded["output_config"]);
    assert_eq!(n.body["messages"], recorded["messages"]);
    let body = serde_json::to_vec(&ex[0]["response"]["body"]).unwrap();
    let (resp, _) = parse_response(Anthropic, 200, &body, &ctx("Anthropic")).unwrap();
    let content: Value =
        serde_json::from_str(resp["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["product_name"], "Green Tea");
    golden("anthropic__exchange.structured_output.completion", &resp);
}

#[test]
fn gemini_generated_function_calling_request() {
    let g = read_json("gemini/request.function_calling.generated.json");
    let sdk = &g["body"];
    let params = &sdk["tools"][0]["functionDeclarations"][0]["parameters_json_schema"];
    let req = ChatRequest::from_value(&json!({
        "model": "google/gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": sdk["systemInstruction"]["parts"][0]["text"]},
            {"role": "user", "content": sdk["contents"][0]["parts"][0]["text"]},
        ],
        "tools": [{"type": "function", "function": {"name": "sum", "description": "Adds two integers", "parameters": params}}],
        "tool_choice": {"type": "function", "function": {"name": "sum"}},
        "temperature": 0.2, "top_p": 0.9, "n": 1, "max_tokens": 256, "stop": ["END"],
        "reasoning": {"enabled": false},
    }))
    .unwrap();
    let mut o = TranslateOptions::new("google-ai-studio", "gemini-2.5-flash");
    o.gemini_api_version = polyroute_core::providers::GeminiApiVersion::V1;
    let n = build_request(Gemini, &req, &o).unwrap();
    assert!(
        g["url"].as_str().unwrap().ends_with(&n.path),
        "{} vs {}",
        g["url"],
        n.path
    );
    assert_eq!(n.body["contents"], sdk["contents"]);
    assert_eq!(
        n.body["systemInstruction"]["parts"],
        sdk["systemInstruction"]["parts"]
    );
    assert_eq!(n.body["toolConfig"], sdk["toolConfig"]);
    let gc = &n.body["generationConfig"];
    for k in [
        "temperature",
        "topP",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
    ] {
        assert_eq!(gc[k], sdk["generationConfig"][k], "{k}");
    }
    assert_eq!(
        gc["thinkingConfig"]["thinkingBudget"],
        sdk["generationConfig"]["thinkingConfig"]["thinking_budget"]
    );
    let decl = &n.body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "sum");
    assert_eq!(decl["parameters"]["properties"]["x"]["type"], "INTEGER");
    assert!(decl["parameters"].get("additionalProperties").is_none());
}

#[test]
fn gemini_generated_function_response_request() {
    let g = read_json("gemini/request.function_response_json_schema.generated.json");
    let sdk = &g["body"];
    let req = ChatRequest::from_value(&json!({
        "model": "google/gemini-2.5-flash",
        "messages": [
            {"role": "user", "content": "What is 2+1, 4+3 and 6+5?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "sum", "arguments": "{\"x\": 2, \"y\": 1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"result\": 3}"},
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a",
            "schema": sdk["generationConfig"]["responseJsonSchema"]}},
    }))
    .unwrap();
    let n = build_request(
        Gemini,
        &req,
        &TranslateOptions::new("google-ai-studio", "gemini-2.5-flash"),
    )
    .unwrap();
    assert_eq!(n.body["contents"], sdk["contents"]);
    assert_eq!(
        n.body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        n.body["generationConfig"]["responseSchema"]["properties"]["answer"]["type"],
        "INTEGER"
    );
    // Gemini 3 echoes the call id on both sides.
    let n3 = build_request(
        Gemini,
        &req,
        &TranslateOptions::new("google-ai-studio", "gemini-3-pro-preview"),
    )
    .unwrap();
    assert_eq!(
        n3.body["contents"][1]["parts"][0]["functionCall"]["id"],
        "call_1"
    );
    assert_eq!(
        n3.body["contents"][2]["parts"][0]["functionResponse"]["id"],
        "call_1"
    );
}

/// Claude on Google Vertex: the plan keeps the endpoint in the Anthropic dialect's Vertex form (never a Gemini
/// `generateContent` body), and the request built for it is Vertex's Anthropic shape.
#[test]
fn claude_on_vertex_plans_and_builds_the_anthropic_vertex_form() {
    use polyroute_core::plan::{plan, translate_options, PlanContext};
    use polyroute_core::Catalog;

    let catalog = Catalog::embedded().unwrap();
    let req = ChatRequest::from_value(&json!({"model": "anthropic/claude-opus-4.7",
        "messages": [{"role": "user", "content": "hi"}], "temperature": 0.3,
        "reasoning": {"effort": "medium"}, "provider": {"order": ["google-vertex"]}}))
    .unwrap();
    let p = plan(&catalog, &req, &PlanContext::default()).unwrap();
    let a = &p.attempts[0];
    assert_eq!(a.tag, "google-vertex");
    assert_eq!(a.dialect, Dialect::AnthropicVertex);
    assert_eq!(p.to_json()["attempts"][0]["dialect"], "anthropic-vertex");
    // Claude on Bedrock is translated (Converse) now: planned in its own dialect, never excluded for it.
    assert!(p
        .excluded
        .iter()
        .all(|e| e.reason.as_str() != "dialect_unsupported" || e.endpoint != "amazon-bedrock"));
    if let Some(b) = p.attempts.iter().find(|a| a.tag == "amazon-bedrock") {
        assert_eq!(b.dialect, Dialect::BedrockConverse);
    }
    assert!(p.attempts.iter().all(|a| a.dialect.is_translated()));

    for (stream, method) in [(false, "rawPredict"), (true, "streamRawPredict")] {
        let native = build_request(a.dialect, &req, &translate_options(a, &req, stream)).unwrap();
        assert_eq!(
            native.path,
            format!("/publishers/anthropic/models/claude-opus-4-7:{method}")
        );
        let body = native.body.value().clone();
        assert!(body.get("model").is_none(), "{body}");
        assert!(body.get("contents").is_none(), "{body}");
        assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
        let content = &body["messages"][0]["content"];
        assert!(
            content == "hi" || content[0]["text"] == "hi",
            "the user turn in Anthropic form: {body}"
        );
        // claude-opus-4.7 takes effort levels and lists no sampling parameter.
        assert_eq!(body["thinking"]["type"], "adaptive", "{body}");
        assert_eq!(body["output_config"]["effort"], "medium", "{body}");
        assert!(body.get("temperature").is_none(), "{body}");
        assert!(native.dropped.iter().any(|d| d == "temperature"));
        assert!(native.headers.iter().all(|(k, _)| k != "anthropic-version"));
        assert_eq!(body.get("stream").is_some(), stream);
    }
    assert_eq!(
        a.dialect.auth_scheme(),
        polyroute_core::dialect::AuthScheme::Bearer
    );
}
