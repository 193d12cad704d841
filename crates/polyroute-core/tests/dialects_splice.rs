#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]
//! `splice_response` (an OpenAI-dialect answer passed through as text with its fields spliced in) gives exactly
//! the bytes of `parse_response`'s value with the same `usage` put in, the same usage and finish reason, or
//! declines (and the `Value` path decides): recorded answers and synthetic ones, under several contexts.

use std::path::Path;

use polyroute_core::providers::{
    parse_response, splice_response, Dialect, ResponseContext, ResponseHints,
};
use serde_json::{json, Value};

const WIRE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/wire");

fn contexts() -> Vec<ResponseContext> {
    vec![
        ResponseContext::default(),
        ResponseContext {
            id: "gen-1\"quoted\"".into(),
            created: 1_700_000_000,
            model: "openai/gpt-4o-mini".into(),
            provider_name: "OpenAI".into(),
            hints: ResponseHints::default(),
        },
        ResponseContext {
            provider_name: "Prov\u{e9}".into(),
            ..ResponseContext::default()
        },
    ]
}

const USAGE: &str =
    r#"{"prompt_tokens":1,"cost":1.5e-7,"cost_details":{"upstream_inference_cost":1.5e-7}}"#;

/// Whether the fast path took `body`; panics when it disagrees with the `Value` path.
fn check(body: &[u8], name: &str) -> bool {
    let mut taken = None;
    for ctx in contexts() {
        let fast = splice_response(Dialect::OpenAi, body, &ctx);
        assert!(
            splice_response(Dialect::Anthropic, body, &ctx).is_none(),
            "{name}: only the OpenAI family"
        );
        let slow = parse_response(Dialect::OpenAi, 200, body, &ctx);
        let Some(fast) = fast else {
            assert!(taken != Some(true), "{name}: taken under one context only");
            taken = Some(false);
            continue;
        };
        assert!(taken != Some(false), "{name}: taken under one context only");
        taken = Some(true);
        let (mut value, usage) =
            slow.unwrap_or_else(|f| panic!("{name}: fast path took a failure {f:?}"));
        assert_eq!(fast.usage, usage, "{name}");
        assert_eq!(
            fast.finish,
            value
                .pointer("/choices/0/finish_reason")
                .and_then(Value::as_str),
            "{name}"
        );
        value["usage"] = serde_json::from_str(USAGE).unwrap();
        let want = serde_json::to_string(&value).unwrap();
        let got = String::from_utf8(fast.with_usage(USAGE.as_bytes())).unwrap();
        assert_eq!(got, want, "{name}: ctx {ctx:?}");
    }
    taken == Some(true)
}

#[test]
fn recorded_answers_splice_like_the_value_path() {
    let mut n = 0;
    for e in std::fs::read_dir(Path::new(WIRE).join("openai")).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".response.json") {
            let body = std::fs::read(&p).unwrap();
            assert!(
                check(&body, &p.display().to_string()),
                "{}: not taken",
                p.display()
            );
            // The same answer pretty-printed: the text is rewritten compactly, as the value path writes it.
            let v: Value = serde_json::from_slice(&body).unwrap();
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            assert!(check(&pretty, &format!("{} (pretty)", p.display())));
            n += 1;
        }
    }
    assert!(n >= 4, "only {n} recorded answers");
}

#[test]
fn synthetic_answers_splice_like_the_value_path_or_decline() {
    let taken = [
        // Escapes, a repeated key, no usage, no system_fingerprint, a native reason of its own.
        json!({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\u{e9} \"q\"\n"},
               "finish_reason": "end_turn", "native_finish_reason": "eos"}], "model": "m"}).to_string(),
        r#"{"id":"a","id":"b","object":"x","choices":[{"finish_reason":"tool_calls","message":{"tool_calls":[]}},5,{"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":2,"prompt_cache_hit_tokens":1},"system_fingerprint":7,"created":3}"#.to_string(),
        r#"{"choices":[],"provider":"up","usage":null,"error":null}"#.to_string(),
        r#"  {"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1.5}}  "#.to_string(),
    ];
    for (i, b) in taken.iter().enumerate() {
        assert!(
            check(b.as_bytes(), &format!("synthetic {i}")),
            "synthetic {i}: not taken"
        );
    }
    let declined = [
        r#"{"error":{"message":"bad","code":400}}"#,
        r#"{"choices":{"not":"an array"}}"#,
        r#"{"id":"x"}"#,
        r#"[1,2]"#,
        r#"{"choices":[]"#,
        r#"{"choices":[{"message":{"reasoning_content":"think","content":"x"},"finish_reason":"stop"}]}"#,
    ];
    for (i, b) in declined.iter().enumerate() {
        assert!(
            !check(b.as_bytes(), &format!("declined {i}")),
            "declined {i}: taken"
        );
    }
    assert!(!check(b"{\"choices\":[\"\xff\"]}", "not UTF-8"));
}
