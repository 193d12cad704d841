#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! "No input may panic": random bytes into the SSE parser, the stream translators, the response and error
//! parsers, and random JSON requests into every dialect's `build_request`. The in-CI stand-in for the long
//! `cargo fuzz` runs in `fuzz/`.

use polyroute_core::providers::{
    build_request, map_error, parse_response, Dialect, GeminiApiVersion, ResponseContext,
    StreamTranslator, TranslateOptions,
};
use polyroute_core::sse::SseParser;
use polyroute_core::types::ChatRequest;
use proptest::prelude::*;
use serde_json::{json, Value};

const DIALECTS: [Dialect; 3] = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini];

/// SSE-ish bytes: fragments of real framing glued with random bytes, so the parser's interesting paths run.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"event: message_start\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b": comment\n".to_vec()),
        Just(b"data: [DONE]\n\n".to_vec()),
        Just(br#"data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#.to_vec()),
        Just(br#"data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]},"finishReason":"STOP"}]}"#.to_vec()),
        Just(br#"data: {"choices":[{"index":3,"delta":{"tool_calls":[{"index":0}]},"finish_reason":"stop"}]}"#.to_vec()),
        Just(br#"{"error":{"code":499,"status":"CANCELLED"}}"#.to_vec()),
        Just(br#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":1}}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0.0f64..3.0).prop_map(Value::from),
        "[a-z_ ]{0,8}".prop_map(Value::from),
        prop_oneof![
            Just("user"),
            Just("assistant"),
            Just("tool"),
            Just("system"),
            Just("function"),
            Just("text"),
            Just("image_url"),
            Just("json_schema"),
            Just("required"),
            Just("data:image/png;base64,AA"),
            Just("{}")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("role".to_string()),
                    Just("content".to_string()),
                    Just("type".to_string()),
                    Just("text".to_string()),
                    Just("tool_calls".to_string()),
                    Just("function".to_string()),
                    Just("name".to_string()),
                    Just("arguments".to_string()),
                    Just("parameters".to_string()),
                    Just("id".to_string()),
                    Just("tool_call_id".to_string()),
                    Just("schema".to_string()),
                    Just("$ref".to_string()),
                    Just("anyOf".to_string()),
                    Just("properties".to_string()),
                    Just("image_url".to_string()),
                    Just("url".to_string()),
                    Just("reasoning_details".to_string()),
                    "[a-z]{1,6}".prop_map(|s| s)
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request skeleton with random messages, tools and parameters.
fn arb_request() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(arb_json(), 1..6),
        prop::option::of(arb_json()),
        prop::option::of(arb_json()),
        prop::option::of(arb_json()),
        prop::option::of(arb_json()),
        prop::option::of(1u64..300_000),
    )
        .prop_map(|(msgs, tools, tc, rf, reasoning, max)| {
            let messages: Vec<Value> = msgs
                .into_iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Value::Object(mut o) => {
                        let role = ["user", "assistant", "tool", "system", "developer"][i % 5];
                        o.entry("role").or_insert(json!(role));
                        Value::Object(o)
                    }
                    other => json!({"role": "user", "content": other}),
                })
                .collect();
            let mut r = json!({"model": "m", "messages": messages});
            for (k, v) in [
                ("tools", tools),
                ("tool_choice", tc),
                ("response_format", rf),
                ("reasoning", reasoning),
            ] {
                if let Some(v) = v {
                    r[k] = v;
                }
            }
            if let Some(m) = max {
                r["max_tokens"] = json!(m);
            }
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn sse_parser_never_panics_and_is_split_invariant(body in sse_bytes(), cut in any::<prop::sample::Index>()) {
        let mut p = SseParser::new();
        let mut whole = p.push(&body);
        whole.extend(p.finish());
        let c = cut.index(body.len() + 1);
        let mut p = SseParser::new();
        let mut split = p.push(&body[..c]);
        split.extend(p.push(&body[c..]));
        split.extend(p.finish());
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn stream_translators_never_panic(body in sse_bytes(), cut in any::<prop::sample::Index>()) {
        for d in DIALECTS {
            let mut ctx = ResponseContext::default();
            ctx.hints.json_tool = Some("f".into());
            ctx.hints.json_tool_wrapped = true;
            let mut t = StreamTranslator::new(d, ctx.clone());
            let mut whole = t.push(&body);
            whole.extend(t.finish());
            let c = cut.index(body.len() + 1);
            let mut t = StreamTranslator::new(d, ctx);
            let mut split = t.push(&body[..c]);
            split.extend(t.push(&body[c..]));
            split.extend(t.finish());
            prop_assert_eq!(&whole, &split);
            // Every translated stream ends in a finish, a usage chunk or an error.
            prop_assert!(!whole.is_empty());
        }
    }

    #[test]
    fn response_and_error_parsers_never_panic(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ], status in prop_oneof![Just(200u16), Just(400), Just(429), Just(529), 0u16..1000]) {
        for d in DIALECTS {
            let _ = parse_response(d, status, &body, &ResponseContext::default());
            let f = map_error(d, status, None, &body, "p");
            prop_assert!(f.envelope["error"]["code"].is_u64());
        }
    }

    #[test]
    fn build_request_never_panics(raw in arb_request(), strict in any::<bool>(), stream in any::<bool>()) {
        if let Ok(req) = ChatRequest::from_value(&raw) {
            for (d, provider, model) in [
                (Dialect::OpenAi, "mistral", "m"),
                (Dialect::OpenAi, "openrouter", "m"),
                (Dialect::Anthropic, "anthropic", "claude"),
                (Dialect::Gemini, "google", "gemini-3-pro"),
                (Dialect::Gemini, "google", "gemini-2.5-flash"),
            ] {
                let mut o = TranslateOptions::new(provider, model);
                o.strict = strict;
                o.stream = stream;
                o.supports_native_structured_output = strict;
                o.gemini_api_version = if stream { GeminiApiVersion::V1 } else { GeminiApiVersion::V1Beta };
                if let Ok(n) = build_request(d, &req, &o) {
                    prop_assert!(n.body.is_object());
                    if d == Dialect::Anthropic {
                        prop_assert!(n.body["max_tokens"].as_u64().unwrap_or(0) >= 1);
                        if let Some(b) = n.body["thinking"]["budget_tokens"].as_u64() {
                            prop_assert!(n.body["max_tokens"].as_u64().unwrap() > b);
                        }
                    }
                }
            }
        }
    }
}
