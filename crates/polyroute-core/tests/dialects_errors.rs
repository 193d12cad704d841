#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Dialect battery, part two: errors (bodies, statuses, mid-stream and truncated streams), the OpenAI-compatible
//! quirk table, and Anthropic message shaping.

use polyroute_core::plan::OutcomeClass;
use polyroute_core::providers::{
    build_request, map_error, openai, parse_response, Dialect, NativeRequest, ResponseContext,
    StreamTranslator, TranslateOptions,
};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Value};

use Dialect::{Anthropic, AnthropicVertex, Gemini, OpenAi};

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

#[test]
fn error_matrix() {
    let cases: &[(Dialect, u16, Value, OutcomeClass, u16)] = &[
        (
            Anthropic,
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            OutcomeClass::Overloaded,
            529,
        ),
        (
            Anthropic,
            401,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}),
            OutcomeClass::Auth,
            401,
        ),
        (
            Anthropic,
            402,
            json!({"type": "error", "error": {"type": "billing_error", "message": "pay"}}),
            OutcomeClass::PaymentRequired,
            402,
        ),
        (
            Anthropic,
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 300000 tokens > 200000 maximum"}}),
            OutcomeClass::ContextLength,
            400,
        ),
        (
            Anthropic,
            429,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "spend", "details": {"error_code": "enforced_spend_limit_reached"}}}),
            OutcomeClass::PaymentRequired,
            402,
        ),
        (
            Anthropic,
            504,
            json!({"type": "error", "error": {"type": "timeout_error", "message": "t"}}),
            OutcomeClass::Timeout,
            408,
        ),
        (
            OpenAi,
            400,
            json!({"error": {"message": "This model's maximum context length is 128000 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}}),
            OutcomeClass::ContextLength,
            400,
        ),
        (
            OpenAi,
            400,
            json!({"error": {"message": "flagged", "type": "invalid_request_error", "code": "content_policy_violation"}}),
            OutcomeClass::Moderation,
            403,
        ),
        (
            OpenAi,
            429,
            json!({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
            OutcomeClass::PaymentRequired,
            402,
        ),
        (
            OpenAi,
            500,
            json!({"error": {"message": "boom", "type": "server_error"}}),
            OutcomeClass::Overloaded,
            502,
        ),
        (
            OpenAi,
            404,
            json!({"error": {"message": "The model does not exist", "type": "invalid_request_error", "code": "model_not_found"}}),
            OutcomeClass::NotFound,
            404,
        ),
        (
            Gemini,
            503,
            json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
            OutcomeClass::Overloaded,
            502,
        ),
        (
            Gemini,
            400,
            json!({"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}),
            OutcomeClass::ContextLength,
            400,
        ),
        (
            Gemini,
            403,
            json!({"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}),
            OutcomeClass::Auth,
            403,
        ),
        (
            Gemini,
            429,
            json!([{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}}]),
            OutcomeClass::RateLimited,
            429,
        ),
    ];
    for (d, status, body, class, code) in cases {
        let f = map_error(*d, *status, None, body.to_string().as_bytes(), "P");
        assert_eq!(f.outcome.class, *class, "{d:?} {status} {body}");
        assert_eq!(f.envelope["error"]["code"], *code, "{d:?} {status} {body}");
        assert_eq!(
            f.envelope["error"]["metadata"]["error_type"],
            class.error_type()
        );
        assert_eq!(f.envelope["error"]["metadata"]["raw"], *body);
        assert_eq!(f.outcome.status, *status);
    }
    let f = map_error(
        Gemini,
        429,
        None,
        json!([{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}}])
        .to_string()
        .as_bytes(),
        "P",
    );
    assert_eq!(f.outcome.retry_after, Some(13.0));
    // Garbage bodies still classify by status; a 2xx that is not JSON is an invalid upstream response.
    assert_eq!(
        map_error(OpenAi, 502, None, b"<html>bad gateway</html>", "P")
            .outcome
            .class,
        OutcomeClass::Overloaded
    );
    assert_eq!(
        map_error(OpenAi, 413, None, b"", "P").outcome.class,
        OutcomeClass::ContextLength
    );
    let e = parse_response(Anthropic, 200, b"not json", &ctx()).unwrap_err();
    assert_eq!(e.outcome.class, OutcomeClass::Overloaded);
    let e = parse_response(
        OpenAi,
        200,
        br#"{"error": {"message": "x", "type": "server_error"}}"#,
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(e.outcome.class, OutcomeClass::Overloaded);
}

#[test]
fn openai_quirk_table() {
    let r = req(
        json!({"model": "m", "models": ["a", "b"], "provider": {"sort": "price"}, "route": "fallback", "session_id": "s",
        "transforms": ["middle-out"], "usage": {"include": true}, "plugins": [{"id": "web"}],
        "messages": [{"role": "developer", "content": "d"}, {"role": "user", "name": "bob", "content": "hi"}],
        "max_tokens": 100, "logprobs": true, "seed": 7, "top_k": 5, "tool_choice": "required",
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    );
    let o = build_request(OpenAi, &r, &TranslateOptions::new("openai", "gpt-4o")).unwrap();
    for f in [
        "models",
        "provider",
        "route",
        "session_id",
        "transforms",
        "usage",
        "plugins",
        "top_k",
        "max_tokens",
    ] {
        assert!(o.body.get(f).is_none(), "openai got {f}");
    }
    assert_eq!(o.body["max_completion_tokens"], 100);
    assert_eq!(o.body["messages"][0]["role"], "developer");
    assert_eq!(o.dropped, ["top_k"]);
    let g = build_request(OpenAi, &r, &TranslateOptions::new("groq", "llama")).unwrap();
    assert!(g.body.get("logprobs").is_none());
    assert_eq!(g.body["messages"][0]["role"], "system");
    assert_eq!(
        g.body["messages"][1],
        json!({"role": "user", "content": "bob: hi"})
    );
    let m = build_request(
        OpenAi,
        &r,
        &TranslateOptions::new("mistral", "mistral-large"),
    )
    .unwrap();
    assert_eq!(m.body["random_seed"], 7);
    assert!(m.body.get("seed").is_none());
    assert_eq!(m.body["tool_choice"], "any");
    assert_eq!(m.body["max_tokens"], 100);
    let d = build_request(OpenAi, &r, &TranslateOptions::new("deepinfra/fp8", "x")).unwrap();
    assert_eq!(d.body["top_k"], 5);
    let or = build_request(
        OpenAi,
        &r,
        &TranslateOptions::new("openrouter", "openai/gpt-4o"),
    )
    .unwrap();
    assert!(or.body.get("models").is_none() && or.body.get("route").is_none());
    assert_eq!(or.body["provider"]["sort"]["by"], "price");
    assert_eq!(or.body["model"], "openai/gpt-4o");
    let mut so = TranslateOptions::new("groq", "llama");
    so.strict = true;
    so.stream = true;
    assert!(build_request(OpenAi, &r, &so).is_err());
    let r2 = req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
    let s = build_request(OpenAi, &r2, &so).unwrap();
    assert_eq!(s.body["stream_options"], json!({"include_usage": true}));
    for slug in [
        "groq",
        "together",
        "deepinfra",
        "fireworks",
        "mistral",
        "xai",
        "deepseek",
        "cerebras",
        "nebius",
        "novita",
        "openrouter",
    ] {
        assert_eq!(openai::quirks(slug).slug, slug);
    }
    assert_eq!(openai::quirks("somewhere-new").slug, "generic");
    // Reasoning carried on assistant turns: DeepSeek gets it back as reasoning_content, others not at all.
    let r = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "a"},
        {"role": "assistant", "content": "b", "reasoning": "why", "reasoning_details": [{"type": "reasoning.text", "text": "why"}]},
        {"role": "user", "content": "c"}]}),
    );
    let ds = build_request(
        OpenAi,
        &r,
        &TranslateOptions::new("deepseek", "deepseek-reasoner"),
    )
    .unwrap();
    assert_eq!(
        ds.body["messages"][1],
        json!({"role": "assistant", "content": "b", "reasoning_content": "why"})
    );
    let gq = build_request(OpenAi, &r, &TranslateOptions::new("groq", "x")).unwrap();
    assert_eq!(
        gq.body["messages"][1],
        json!({"role": "assistant", "content": "b"})
    );
    let or = build_request(OpenAi, &r, &TranslateOptions::new("openrouter", "x")).unwrap();
    assert_eq!(or.body["messages"][1]["reasoning"], "why");
}

#[test]
fn anthropic_message_shaping() {
    let r = req(json!({"model": "m", "messages": [
        {"role": "system", "content": "a"},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "there"}], "cache_control": {"type": "ephemeral"}},
        {"role": "system", "content": "late"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": "ok"}
    ], "stop": "X", "service_tier": "default", "user": "me@example.com"}));
    let a = build(Anthropic, &r);
    assert_eq!(
        a.body["system"],
        json!([{"type": "text", "text": "a"}, {"type": "text", "text": "late"}])
    );
    assert_eq!(
        a.body["messages"][0]["content"][1],
        json!({"type": "text", "text": "there", "cache_control": {"type": "ephemeral"}})
    );
    assert_eq!(
        a.body["messages"][1],
        json!({"role": "assistant", "content": "ok"})
    );
    assert_eq!(a.body["stop_sequences"], json!(["X"]));
    assert_eq!(a.body["service_tier"], "standard_only");
    assert!(
        a.body.get("metadata").is_none(),
        "emails are not sent as user ids"
    );
    assert_eq!(
        a.headers,
        [("anthropic-version".to_string(), "2023-06-01".to_string())]
    );
    let mut o = TranslateOptions::new("anthropic", "c");
    o.stream = true;
    assert_eq!(
        build_request(Anthropic, &r, &o).unwrap().body["stream"],
        true
    );
    let mut o = TranslateOptions::new("g", "models/gemini-2.0-flash");
    o.stream = true;
    assert_eq!(
        build_request(Gemini, &r, &o).unwrap().path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
}

#[test]
fn truncated_and_errored_streams_end_with_an_error_chunk() {
    for (d, body) in [
        (Anthropic, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n"),
        (OpenAi, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n"),
        (Gemini, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"par\"}]}}]}\n\n"),
    ] {
        let (chunks, t) = stream(d, ctx(), body);
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "error", "{d:?}");
        assert!(last["error"]["message"].is_string());
        assert_eq!(t.outcome_class(), OutcomeClass::Overloaded);
        assert!(t.content_emitted());
    }
    let body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (chunks, t) = stream(Anthropic, ctx(), body);
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[1]["error"]["metadata"]["error_type"],
        "provider_unavailable"
    );
    assert_eq!(
        chunks[1]["choices"][0]["native_finish_reason"],
        "overloaded_error"
    );
    assert_eq!(t.failure().unwrap().outcome.class, OutcomeClass::Overloaded);
    assert!(!t.content_emitted());
    let body = "data: {\"error\":{\"message\":\"Rate limit\",\"type\":\"rate_limit_exceeded\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let (_, t) = stream(OpenAi, ctx(), body);
    assert_eq!(t.outcome_class(), OutcomeClass::RateLimited);
}
