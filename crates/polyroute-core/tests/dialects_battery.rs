#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)] // tests read vectors and goldens
//! Per-dialect battery: text, stream, tools, parallel tools, JSON schema, images, reasoning, usage, refusal,
//! errors, plus the capability table, strict mode and the OpenAI-compatible quirk table.

use polyroute_core::providers::{
    build_request, capabilities, parse_response, Dialect, NativeRequest, ResponseContext,
    StreamTranslator, Support, TranslateOptions, CAPABILITIES,
};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Value};

use Dialect::{Anthropic, AnthropicVertex, Gemini, OpenAi};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden");

fn golden(name: &str, actual: &Value) {
    let path = std::path::Path::new(GOLDEN).join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(actual).unwrap() + "\n").unwrap();
        return;
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        actual, &expected,
        "golden {name} differs; rerun with UPDATE_GOLDEN=1"
    );
}

fn req(v: Value) -> ChatRequest {
    ChatRequest::from_value(&v).unwrap()
}

fn build(d: Dialect, r: &ChatRequest) -> NativeRequest {
    let (p, m) = match d {
        OpenAi => ("openai", "gpt-4o"),
        Anthropic => ("anthropic", "claude-sonnet-4-5"),
        Gemini => ("google-ai-studio", "gemini-2.5-flash"),
        AnthropicVertex => ("google-vertex", "claude-sonnet-4-5"),
        other => panic!("{other} has no translation"),
    };
    build_request(d, r, &TranslateOptions::new(p, m)).unwrap()
}

fn ctx() -> ResponseContext {
    ResponseContext {
        id: "gen-1".into(),
        created: 1,
        model: "x/y".into(),
        provider_name: "P".into(),
        ..Default::default()
    }
}

fn stream(d: Dialect, c: ResponseContext, body: &str) -> (Vec<Value>, StreamTranslator) {
    let mut t = StreamTranslator::new(d, c);
    let mut out = t.push(body.as_bytes());
    out.extend(t.finish());
    (out, t)
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|ch| ch["delta"]["content"].as_str())
        })
        .collect()
}

/// A conversation with every feature: system + developer, names, images, tools, tool results, reasoning.
fn kitchen_sink() -> ChatRequest {
    req(json!({
        "model": "x/y",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "What is in this image and what is the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}
            ]},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call.b", "type": "function", "function": {"name": "get time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 20}"},
            {"role": "tool", "tool_call_id": "call.b", "content": "noon"},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}, "unit": {"anyOf": [{"type": "string", "enum": ["c", "f"]}, {"type": "null"}]}},
                "required": ["city"], "additionalProperties": false}}},
            {"type": "function", "function": {"name": "get time", "parameters": {"type": "object", "properties": {}}}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "max_tokens": 2000,
        "temperature": 0.5,
        "stop": ["END", "  "],
        "reasoning": {"effort": "high"},
        "user": "user-42",
        "frequency_penalty": 0.3
    }))
}

#[test]
fn kitchen_sink_goldens() {
    let r = kitchen_sink();
    let mut all = serde_json::Map::new();
    for (d, provider, model) in [
        (OpenAi, "openai", "gpt-4o"),
        (OpenAi, "mistral", "mistral-large"),
        (Anthropic, "anthropic", "claude-sonnet-4-5"),
        (Gemini, "google-ai-studio", "gemini-2.5-flash"),
        (Gemini, "google-ai-studio", "gemini-3-pro-preview"),
    ] {
        let n = build_request(d, &r, &TranslateOptions::new(provider, model)).unwrap();
        all.insert(
            format!("{}:{provider}:{model}", d.as_str()),
            json!({"path": n.path, "headers": n.headers, "body": n.body, "dropped": n.dropped, "hints": n.hints}),
        );
    }
    golden("battery.kitchen_sink.translated", &Value::Object(all));
}

#[test]
fn capability_table_is_complete_and_explicit() {
    for d in [OpenAi, Anthropic, Gemini] {
        let caps = capabilities(d);
        let names: Vec<_> = caps.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, CAPABILITIES, "{d:?}");
    }
    let get = |d, n: &str| {
        capabilities(d)
            .into_iter()
            .find(|(k, _)| *k == n)
            .unwrap()
            .1
    };
    assert!(matches!(
        get(Anthropic, "logprobs"),
        Support::Unsupported(_)
    ));
    assert!(matches!(
        get(Gemini, "parallel_tools"),
        Support::Unsupported(_)
    ));
    assert!(matches!(
        get(Anthropic, "json_schema"),
        Support::Emulated(_)
    ));
    assert_eq!(get(OpenAi, "tools"), Support::Native);
    // Unsupported means the parameter is reported as dropped, never sent.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 2}),
    );
    let n = build(Anthropic, &r);
    assert!(n.dropped.contains(&"logprobs".to_string()) && n.body.get("logprobs").is_none());
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "parallel_tool_calls": false,
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    );
    assert_eq!(build(Gemini, &r).dropped, ["parallel_tool_calls"]);
}

#[test]
fn dialect_names_and_auth_headers() {
    assert_eq!(Dialect::from_name("Anthropic"), Some(Anthropic));
    assert_eq!(Dialect::from_name("google"), Some(Gemini));
    assert_eq!(Dialect::from_name("openai"), Some(OpenAi));
    assert_eq!(Dialect::from_name("bedrock"), None);
    assert_eq!(Anthropic.auth_header(), "x-api-key");
    assert_eq!(Gemini.auth_header(), "x-goog-api-key");
}

#[test]
fn text_all_dialects() {
    let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let a = build(Anthropic, &r);
    assert_eq!(a.body["max_tokens"], 4096);
    assert_eq!(
        a.body["messages"],
        json!([{"role": "user", "content": "hi"}])
    );
    assert_eq!(a.path, "/v1/messages");
    let g = build(Gemini, &r);
    assert_eq!(
        g.body["contents"],
        json!([{"role": "user", "parts": [{"text": "hi"}]}])
    );
    assert_eq!(g.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    let o = build(OpenAi, &r);
    assert_eq!(o.body["model"], "gpt-4o");
    let answers = [
        (
            Anthropic,
            json!({"id": "msg_1", "model": "c", "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}),
        ),
        (
            Gemini,
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hello"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}}),
        ),
        (
            OpenAi,
            json!({"id": "c1", "object": "chat.completion", "model": "g", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "eos"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
        ),
    ];
    for (d, body) in answers {
        let (resp, usage) = parse_response(d, 200, body.to_string().as_bytes(), &ctx()).unwrap();
        assert_eq!(resp["choices"][0]["message"]["content"], "hello", "{d:?}");
        assert_eq!(resp["choices"][0]["finish_reason"], "stop", "{d:?}");
        assert_eq!(resp["id"], "gen-1");
        assert_eq!(resp["model"], "x/y");
        assert_eq!(resp["provider"], "P");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (3, 1, 4),
            "{d:?}"
        );
    }
}

#[test]
fn streams_all_dialects() {
    let an = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":2,\"output_tokens\":1}}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        : keepalive\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"he\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"llo\"}}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let (chunks, t) = stream(Anthropic, ctx(), an);
    assert_eq!(content_of(&chunks), "hello");
    assert_eq!(t.finish_reason(), Some("length"));
    let u = t.usage().unwrap();
    assert_eq!(
        (
            u.prompt_tokens,
            u.prompt_tokens_details.cached_tokens,
            u.completion_tokens
        ),
        (7, 2, 7)
    );
    assert!(t.content_emitted());
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));

    let ge = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"he\"}]}}]}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"llo\"}]},\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":3}}\r\n\r\n";
    let (chunks, t) = stream(Gemini, ctx(), ge);
    assert_eq!(content_of(&chunks), "hello");
    assert_eq!(t.finish_reason(), Some("length"));
    assert_eq!(t.usage().unwrap().completion_tokens, 5);
    assert_eq!(
        t.usage()
            .unwrap()
            .completion_tokens_details
            .reasoning_tokens,
        3
    );

    // OpenAI-compatible host: OpenRouter comments, reasoning_content renamed, no [DONE], usage inside the last choice chunk.
    let oa = ": OPENROUTER PROCESSING\n\ndata: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\"},\"finish_reason\":null}]}\n\n\
        data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"},\"finish_reason\":\"eos\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3,\"prompt_cache_hit_tokens\":1}}\n\n";
    let (chunks, t) = stream(OpenAi, ctx(), oa);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["reasoning"], "hm");
    assert_eq!(content_of(&chunks), "hello");
    assert_eq!(t.finish_reason(), Some("stop"));
    assert_eq!(t.native_finish_reason(), Some("eos"));
    assert_eq!(t.usage().unwrap().prompt_tokens_details.cached_tokens, 1);
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 3);
}

#[test]
fn tools_and_tool_choice() {
    let base = |tc: Value| {
        req(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": tc,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                      {"type": "web_search"}]}),
        )
    };
    for (tc, an, ge) in [
        (json!("auto"), json!({"type": "auto"}), json!("AUTO")),
        (json!("required"), json!({"type": "any"}), json!("ANY")),
        (json!("none"), json!({"type": "none"}), json!("NONE")),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
            json!("ANY"),
        ),
    ] {
        let a = build(Anthropic, &base(tc.clone()));
        assert_eq!(a.body["tool_choice"], an);
        assert_eq!(a.dropped, ["tools[1]"]);
        let g = build(Gemini, &base(tc));
        assert_eq!(g.body["toolConfig"]["functionCallingConfig"]["mode"], ge);
    }
    let g = build(
        Gemini,
        &base(json!({"type": "function", "function": {"name": "f"}})),
    );
    assert_eq!(
        g.body["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"],
        json!(["f"])
    );
    // parallel_tool_calls: false → disable_parallel_tool_use.
    let mut r = base(json!("auto"));
    r.extra.insert("parallel_tool_calls".into(), json!(false));
    assert_eq!(
        build(Anthropic, &r).body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    // A tool result without a known call cannot name its function for Gemini.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
    );
    assert!(build_request(Gemini, &r, &TranslateOptions::new("g", "gemini-2.5-flash")).is_err());
    // Unparseable arguments are an error, not a silent {}.
    let r = req(
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}),
    );
    assert!(build_request(Anthropic, &r, &TranslateOptions::new("a", "c")).is_err());
}

#[test]
fn parallel_tool_calls_in_responses_and_streams() {
    let an = json!({"id": "m", "model": "c", "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}, "content": [
        {"type": "text", "text": "ok"},
        {"type": "tool_use", "id": "t1", "name": "get_time_x", "input": {"a": 1}},
        {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]});
    let mut c = ctx();
    c.hints
        .tool_names
        .push(("get_time_x".into(), "get time x".into()));
    let (resp, _) = parse_response(Anthropic, 200, an.to_string().as_bytes(), &c).unwrap();
    let tcs = resp["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(tcs.len(), 2);
    assert_eq!(tcs[0]["function"]["name"], "get time x");
    assert_eq!(tcs[0]["function"]["arguments"], "{\"a\":1}");
    // Gemini: calls in separate events keep distinct indexes.
    let ge = "data: {\"responseId\":\"r\",\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]}}]}\n\n\
              data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"g\",\"args\":{\"x\":1},\"id\":\"own\"}}]},\"finishReason\":\"STOP\"}]}\n\n";
    let (chunks, t) = stream(Gemini, ctx(), ge);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["id"], "call_r_0");
    assert_eq!(calls[1]["index"], 1);
    assert_eq!(calls[1]["id"], "own");
    assert_eq!(t.finish_reason(), Some("tool_calls"));
}

#[test]
fn json_schema_native_fallback_and_gemini() {
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "n?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}),
    );
    let mut o = TranslateOptions::new("anthropic", "claude");
    o.supports_native_structured_output = true;
    let native = build_request(Anthropic, &r, &o).unwrap();
    assert_eq!(
        native.body["output_config"]["format"]["schema"]["additionalProperties"],
        false
    );
    let fallback = build(Anthropic, &r);
    assert_eq!(
        fallback.body["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
    assert_eq!(fallback.hints.json_tool.as_deref(), Some("json_tool_call"));
    let mut c = ctx();
    c.hints = fallback.hints.clone();
    let answer = json!({"id": "m", "model": "c", "stop_reason": "tool_use", "usage": {},
        "content": [{"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {"n": 3}}]});
    let (resp, _) = parse_response(Anthropic, 200, answer.to_string().as_bytes(), &c).unwrap();
    assert_eq!(resp["choices"][0]["message"]["content"], "{\"n\":3}");
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert!(resp["choices"][0]["message"].get("tool_calls").is_none());
    // Streamed fallback: the tool's JSON arrives as content.
    let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"json_tool_call\",\"input\":{}}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"n\\\":\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"3}\"}}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":3}}\n\n";
    let (chunks, t) = stream(Anthropic, c, sse);
    assert_eq!(content_of(&chunks), "{\"n\":3}");
    assert_eq!(t.finish_reason(), Some("stop"));
    // A non-object root is wrapped and unwrapped.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "ids"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array", "items": {"type": "integer"}}}}}),
    );
    let n = build(Anthropic, &r);
    assert!(n.hints.json_tool_wrapped);
    let mut c = ctx();
    c.hints = n.hints;
    let answer = json!({"id": "m", "model": "c", "stop_reason": "tool_use", "usage": {},
        "content": [{"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {"value": [1, 2]}}]});
    let (resp, _) = parse_response(Anthropic, 200, answer.to_string().as_bytes(), &c).unwrap();
    assert_eq!(resp["choices"][0]["message"]["content"], "[1,2]");
    // Gemini: cleaned responseSchema.
    let g = build(Gemini, &r);
    assert_eq!(
        g.body["generationConfig"]["responseSchema"],
        json!({"type": "ARRAY", "items": {"type": "INTEGER"}})
    );
}

#[test]
fn images() {
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]}]}),
    );
    let a = build(Anthropic, &r);
    let blocks = &a.body["messages"][0]["content"];
    assert_eq!(
        blocks[0]["source"],
        json!({"type": "base64", "media_type": "image/jpeg", "data": "AAAA"})
    );
    assert_eq!(
        blocks[1]["source"],
        json!({"type": "url", "url": "https://x.test/a.png"})
    );
    assert_eq!(blocks[2]["type"], "document");
    assert_eq!(a.dropped, ["messages[0].content[3]"]);
    let g = build(Gemini, &r);
    let parts = &g.body["contents"][0]["parts"];
    assert_eq!(
        parts[0],
        json!({"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}})
    );
    assert_eq!(
        parts[1],
        json!({"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.png"}})
    );
    assert_eq!(parts[3]["inlineData"]["mimeType"], "audio/wav");
    // Strict mode refuses to drop the audio.
    let mut o = TranslateOptions::new("anthropic", "c");
    o.strict = true;
    assert!(build_request(Anthropic, &r, &o).is_err());
}

#[test]
fn reasoning_budgets() {
    for (effort, max, budget, sent_max) in [
        ("high", 10_000u64, 8_000u64, 10_000u64),
        ("medium", 10_000, 5_000, 10_000),
        ("low", 10_000, 2_000, 10_000),
        ("minimal", 10_000, 1_024, 10_000),
        ("xhigh", 200_000, 128_000, 200_000),
        ("max", 1_000, 1_024, 2_024),
    ] {
        let r = req(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": max,
            "reasoning": {"effort": effort}, "temperature": 0.3, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}),
        );
        let a = build(Anthropic, &r);
        assert_eq!(
            a.body["thinking"],
            json!({"type": "enabled", "budget_tokens": budget}),
            "{effort}"
        );
        assert_eq!(a.body["max_tokens"], sent_max, "{effort}");
        assert!(a.body["max_tokens"].as_u64().unwrap() > budget);
        assert_eq!(a.body["tool_choice"], json!({"type": "auto"}));
        assert!(
            a.dropped.contains(&"temperature".to_string())
                && a.dropped.contains(&"tool_choice".to_string())
        );
    }
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "none"}),
    );
    assert!(build(Anthropic, &r).body.get("thinking").is_none());
    assert_eq!(
        build(Gemini, &r).body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0})
    );
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low", "exclude": true}}),
    );
    let n = build_request(Gemini, &r, &TranslateOptions::new("g", "gemini-3-flash")).unwrap();
    assert_eq!(
        n.body["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "LOW"})
    );
    assert!(n.hints.exclude_reasoning);
    // OpenAI hosts: reasoning.effort → reasoning_effort where supported, reported where not.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low"}}),
    );
    assert_eq!(
        build_request(OpenAi, &r, &TranslateOptions::new("openai", "o3"))
            .unwrap()
            .body["reasoning_effort"],
        "low"
    );
    assert_eq!(
        build_request(OpenAi, &r, &TranslateOptions::new("together", "x"))
            .unwrap()
            .dropped,
        ["reasoning"]
    );
}

#[test]
fn adaptive_thinking_and_sampling_gates() {
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 8000,
        "reasoning": {"effort": "minimal"}, "temperature": 0.2, "top_k": 3, "stop": ["Z"],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object", "properties": {}}}}}),
    );
    let mut o = TranslateOptions::new("anthropic", "claude-opus-4-7");
    o.anthropic_adaptive_thinking = true;
    o.sampling_params = false;
    o.supports_native_structured_output = true;
    let n = build_request(Anthropic, &r, &o).unwrap();
    assert_eq!(
        n.body["thinking"],
        json!({"type": "adaptive", "display": "summarized"})
    );
    assert_eq!(n.body["output_config"]["effort"], "low");
    assert_eq!(n.body["output_config"]["format"]["type"], "json_schema");
    assert_eq!(n.body["max_tokens"], 8000);
    assert!(n.body.get("temperature").is_none() && n.body.get("top_k").is_none());
    assert_eq!(n.body["stop_sequences"], json!(["Z"]));
    assert_eq!(n.dropped, ["temperature", "top_k"]);
    // A budget maps to the nearest effort.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10000,
        "reasoning": {"max_tokens": 7000, "exclude": true}}),
    );
    let n = build_request(Anthropic, &r, &o).unwrap();
    assert_eq!(n.body["output_config"], json!({"effort": "high"}));
    assert_eq!(n.body["thinking"]["display"], "omitted");
    // Gemini honours the gate too.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.2, "seed": 1}),
    );
    let mut o = TranslateOptions::new("g", "gemini-3-pro");
    o.sampling_params = false;
    let n = build_request(Gemini, &r, &o).unwrap();
    assert_eq!(n.body["generationConfig"], json!({"seed": 1}));
    assert_eq!(n.dropped, ["temperature"]);
}

#[test]
fn reasoning_round_trips_signatures() {
    // Anthropic thinking → reasoning_details → thinking block again.
    let answer = json!({"id": "m", "model": "c", "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 9, "output_tokens_details": {"thinking_tokens": 5}},
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "SIG"}, {"type": "redacted_thinking", "data": "ENC"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]});
    let (resp, usage) =
        parse_response(Anthropic, 200, answer.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(usage.completion_tokens_details.reasoning_tokens, 5);
    let msg = resp["choices"][0]["message"].clone();
    assert_eq!(msg["reasoning"], "hmm");
    let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning": {"effort": "low"}, "max_tokens": 4000}))
        .messages[0]
        .clone();
    let mut next = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}, msg,
        {"role": "tool", "tool_call_id": "t1", "content": "ok"}]}),
    );
    next.messages[0] = r;
    let n = build(Anthropic, &next);
    let blocks = &n.body["messages"][1]["content"];
    assert_eq!(
        blocks[0],
        json!({"type": "thinking", "thinking": "hmm", "signature": "SIG"})
    );
    assert_eq!(
        blocks[1],
        json!({"type": "redacted_thinking", "data": "ENC"})
    );
    assert_eq!(blocks[2]["type"], "tool_use");
    // Gemini thought signature on a function call comes back on the same part.
    let answer = json!({"responseId": "R", "candidates": [{"content": {"role": "model", "parts": [
        {"text": "plan", "thought": true}, {"functionCall": {"name": "now", "args": {}}, "thoughtSignature": "GSIG"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "thoughtsTokenCount": 4}});
    let (resp, usage) = parse_response(Gemini, 200, answer.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(usage.completion_tokens, 5);
    assert_eq!(resp["choices"][0]["finish_reason"], "tool_calls");
    let msg = resp["choices"][0]["message"].clone();
    let id = msg["tool_calls"][0]["id"].as_str().unwrap().to_string();
    let next = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}, msg, {"role": "tool", "tool_call_id": id, "content": "noon"}]}),
    );
    let n = build(Gemini, &next);
    let part = &n.body["contents"][1]["parts"][0];
    assert_eq!(part["thoughtSignature"], "GSIG");
    assert_eq!(part["functionCall"]["name"], "now");
    assert_eq!(
        n.body["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "now", "response": {"output": "noon"}})
    );
}

#[test]
fn usage_normalization() {
    let an = json!({"id": "m", "model": "c", "stop_reason": "end_turn", "content": [{"type": "text", "text": "x"}],
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 30, "output_tokens": 5,
                  "cache_creation": {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 15},
                  "server_tool_use": {"web_search_requests": 2}}});
    let (resp, u) = parse_response(Anthropic, 200, an.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(u.prompt_tokens, 60);
    assert_eq!(u.prompt_tokens_details.cached_tokens, 30);
    assert_eq!(u.prompt_tokens_details.cache_write_tokens, 20);
    assert_eq!(u.prompt_tokens_details.cache_write_1h_tokens, 15);
    assert_eq!(u.web_search_requests, 2);
    assert_eq!(u.total_tokens, 65);
    assert_eq!(
        resp["usage"]["prompt_tokens_details"]["cache_write_tokens"],
        20
    );
    let ge = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 40, "candidatesTokenCount": 7, "thoughtsTokenCount": 3, "toolUsePromptTokenCount": 5}});
    let (_, u) = parse_response(Gemini, 200, ge.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(
        (
            u.prompt_tokens,
            u.prompt_tokens_details.cached_tokens,
            u.completion_tokens,
            u.total_tokens
        ),
        (105, 40, 10, 115)
    );
}

#[test]
fn refusals_and_safety() {
    let an = json!({"id": "m", "model": "c", "stop_reason": "refusal", "stop_details": {"type": "refusal", "explanation": "no"}, "content": [], "usage": {}});
    let (resp, _) = parse_response(Anthropic, 200, an.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(resp["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(resp["choices"][0]["native_finish_reason"], "refusal");
    assert_eq!(resp["choices"][0]["message"]["refusal"], "no");
    let ge = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}});
    let (resp, _) = parse_response(Gemini, 200, ge.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(resp["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        resp["choices"][0]["native_finish_reason"],
        "PROHIBITED_CONTENT"
    );
    for native in ["SAFETY", "RECITATION", "BLOCKLIST", "SPII"] {
        let ge = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": native}]});
        let (resp, _) = parse_response(Gemini, 200, ge.to_string().as_bytes(), &ctx()).unwrap();
        assert_eq!(
            resp["choices"][0]["finish_reason"], "content_filter",
            "{native}"
        );
    }
    let ge = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "SOMETHING_NEW"}]});
    let (resp, _) = parse_response(Gemini, 200, ge.to_string().as_bytes(), &ctx()).unwrap();
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert_eq!(resp["choices"][0]["native_finish_reason"], "SOMETHING_NEW");
}
