//! The copier writes exactly what a `Value` round trip writes, or declines; the splice it drives gives exactly
//! the tree path's answer.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::expect_used
)]

use super::*;
use crate::providers::fast::splice_tree;
use crate::providers::ResponseHints;
use proptest::prelude::*;
use serde_json::{json, Value};

/// The copier's text for `t`, or `None` when it declines.
fn copied(t: &str) -> Option<String> {
    let mut c = Canon::new(t.as_bytes());
    let mut out = Vec::new();
    c.value(&mut out).ok()?;
    c.at_end().then(|| String::from_utf8(out).unwrap())
}

/// Where the copier takes `t`, a `Value` takes it too and writes the same text.
fn check_copy(t: &str) -> bool {
    let Some(got) = copied(t) else { return false };
    let v: Value = serde_json::from_str(t).unwrap_or_else(|e| panic!("{t:?}: copied, but {e}"));
    assert_eq!(got, serde_json::to_string(&v).unwrap(), "{t:?}");
    true
}

#[test]
fn tokens_are_written_as_a_value_writes_them() {
    let taken = [
        "0",
        "-1",
        "18446744073709551615",
        "-9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "-0",
        "1.5",
        "-2.5E-3",
        "1E5",
        "10.0",
        "123456789012345678901234",
        r#""plain""#,
        r#""caf\u00e9""#,
        r#""\u001F\u001f\u0008\u000a\u0000\u007f""#,
        r#""a\/b""#,
        r#""\ud83d\ude00 é \"q\" \\ \b\f\n\r\t""#,
        "\"\u{7f}\u{10ffff}\"",
        "true",
        "false",
        "null",
        " [ 1 , { \"a\" : [ ] , \"b\" : { } } , \"x\" ] ",
        "{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}",
        "{\"\\u0061\":1,\"b\":2}",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    ];
    for t in taken {
        assert!(check_copy(t), "{t:?}: declined");
    }
    let declined = [
        "",
        "01",
        "-",
        "1.",
        "1e",
        ".5",
        "+1",
        "tru",
        "nul",
        "\"open",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\u12\"",
        "\"tab\there\"",
        "[1,]",
        "[1 2]",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"\\u0061\":2}",
        "{1:2}",
        "[1] x",
        "NaN",
        "1.5-3",
        "1e400",
    ];
    for t in declined {
        assert!(!check_copy(t), "{t:?}: taken");
    }
    let deep = |n| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    assert!(check_copy(&deep(MAX_DEPTH as usize)));
    assert!(!check_copy(&deep(MAX_DEPTH as usize + 1)));
    assert!(!check_copy(&deep(200)));
    let many: Vec<String> = (0..=MAX_KEYS).map(|i| format!("\"k{i}\":{i}")).collect();
    assert!(!check_copy(&format!("{{{}}}", many.join(","))));
    assert!(check_copy(&format!("{{{}}}", many[1..].join(","))));
}

fn contexts() -> Vec<ResponseContext> {
    vec![
        ResponseContext::default(),
        ResponseContext {
            id: "gen-1\"q\"".into(),
            created: 1_700_000_000,
            model: "openai/gpt-4o-mini".into(),
            provider_name: "Prov\u{e9}".into(),
            hints: ResponseHints::default(),
        },
        ResponseContext {
            model: "m".into(),
            ..ResponseContext::default()
        },
    ]
}

/// Where the copier splices `body`, the tree path splices it to the same answer; returns whether it did.
fn check_splice(body: &str) -> bool {
    let mut taken = None;
    for ctx in contexts() {
        let fast = splice(body.as_bytes(), &ctx);
        assert!(
            taken.is_none() || taken == Some(fast.is_ok()),
            "{body}: taken under one context only"
        );
        taken = Some(fast.is_ok());
        if let Ok(fast) = fast {
            // The usage written in place lands in the answer's `usage` and nowhere else: the answer with it and
            // the answer with `null` there are the same JSON apart from that value.
            let answer = |u: &[u8]| -> Value {
                let text = fast.clone().with_usage_from(|b| b.extend_from_slice(u));
                serde_json::from_slice(&text).unwrap()
            };
            let mut with = answer(br#"{"prompt_tokens":1,"cost":0.5}"#);
            assert_eq!(
                with["usage"],
                json!({"prompt_tokens": 1, "cost": 0.5}),
                "{body}"
            );
            with["usage"] = Value::Null;
            assert_eq!(with, answer(b"null"), "{body}");
            let tree = splice_tree(body.as_bytes(), &ctx);
            assert_eq!(Some(fast), tree, "{body}: ctx {ctx:?}");
        }
    }
    taken == Some(true)
}

#[test]
fn answers_splice_like_the_tree_path() {
    let taken = [
        json!({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\u{e9} \"q\"\n"},
               "finish_reason": "end_turn", "native_finish_reason": "eos"}], "model": "m"}).to_string(),
        r#"{"id":7,"object":"x","choices":[{"finish_reason":"tool_calls","message":{"tool_calls":[]}},5,{"finish_reason":null}],"usage":{"prompt_tokens":3,"completion_tokens":2,"prompt_cache_hit_tokens":1},"system_fingerprint":7,"created":3}"#.to_string(),
        r#"{"choices":[],"provider":"up","usage":null,"error":null}"#.to_string(),
        r#"  {"choices":[{"message":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1.5}}  "#.to_string(),
        r#"{"choices":[5,{"finish_reason":"st\u006fp"},{"finish_reason":"MAX_TOKENS","logprobs":{"content":[{"logprob":-0.25,"bytes":[104]}]}}],"system_fingerprint":"fp\/1","model":null}"#.to_string(),
        r#"{ "model" : "m" , "choices" : [ { "finish_reason" : "length" , "message" : { "content" : "reasoning_content" } } ] , "created" : 1.0 }"#.to_string(),
        r#"{"choices":[{}],"id":"","usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#.to_string(),
    ];
    for b in &taken {
        assert!(check_splice(b), "{b}: declined");
    }
    let declined = [
        r#"{"id":"a","id":"b","choices":[]}"#,
        r#"{"choices":[{"finish_reason":"stop","finish_reason":"length"}]}"#,
        r#"{"error":{"message":"bad","code":400}}"#,
        r#"{"choices":{"not":"an array"}}"#,
        r#"{"id":"x"}"#,
        r#"[1,2]"#,
        r#"{"choices":[]"#,
        r#"{"choices":[]} {}"#,
        r#"{"choices":[{"message":{"reasoning_content":"think","content":"x"},"finish_reason":"stop"}]}"#,
    ];
    for b in declined {
        assert!(!check_splice(b), "{b}: taken");
    }
    assert!(splice(b"{\"choices\":[\"\xff\"]}", &ResponseContext::default()).is_err());
}

#[test]
fn recorded_answers_are_copied() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/wire/openai"
    );
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".response.json") {
            let body = std::fs::read_to_string(&p).unwrap();
            assert!(check_splice(&body), "{}", p.display());
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(
                check_splice(&serde_json::to_string_pretty(&v).unwrap()),
                "{} (pretty)",
                p.display()
            );
            n += 1;
        }
    }
    assert!(n >= 4, "only {n} recorded answers");
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z]{0,6}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "stop",
            "length",
            "end_turn",
            "tool_calls",
            "x\"y",
            "\u{1}\u{8}/\u{7f}"
        ])
        .prop_map(|s| Value::String(s.into())),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "id",
        "model",
        "object",
        "created",
        "provider",
        "usage",
        "error",
        "choices",
        "finish_reason",
        "native_finish_reason",
        "message",
        "content",
        "system_fingerprint",
        "a",
        "é\n",
        "reasoning_content",
    ]);
    leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// `v` as JSON text in a spelling a provider may use: `style` bit 0 spaces and newlines between tokens, bit 1
/// every non-ASCII character and `/` escaped, bit 2 integers written as floats.
fn spell(v: &Value, style: u8, out: &mut String) {
    let ws = if style & 1 != 0 { " \n " } else { "" };
    match v {
        Value::String(s) if style & 2 != 0 => {
            out.push('"');
            for ch in s.chars() {
                match ch {
                    '/' => out.push_str("\\/"),
                    c if c.is_ascii() => {
                        let e = serde_json::to_string(&c.to_string()).unwrap();
                        out.push_str(&e[1..e.len() - 1]);
                    }
                    c => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{u:04X}"));
                        }
                    }
                }
            }
            out.push('"');
        }
        Value::Number(n) if style & 4 != 0 && n.is_u64() => out.push_str(&format!("{n}e0")),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(ws);
                    out.push(',');
                }
                out.push_str(ws);
                spell(x, style, out);
            }
            out.push_str(ws);
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                spell(&Value::String(k.clone()), style, out);
                out.push_str(ws);
                out.push(':');
                spell(x, style, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Any value in any spelling: copied as a `Value` writes it (the copier takes every spelling of a value).
    #[test]
    fn values_copy_like_a_value(v in tree(), style in 0u8..8) {
        let mut t = String::new();
        spell(&v, style, &mut t);
        prop_assert!(check_copy(&t), "declined {}", t);
    }

    /// Answers built from random parts: spliced as the tree path splices them, or declined by both.
    #[test]
    fn answers_splice_like_the_tree(
        extra in prop::collection::vec((prop::sample::select(vec!["id", "model", "object", "created",
            "provider", "usage", "error", "system_fingerprint", "x"]), tree()), 0..5),
        choices in prop::collection::vec(prop::collection::vec((prop::sample::select(vec!["finish_reason",
            "native_finish_reason", "message", "index", "logprobs"]), tree()), 0..4), 0..3),
        style in 0u8..8,
    ) {
        let mut o = serde_json::Map::new();
        for (k, v) in extra {
            o.insert(k.to_string(), v);
        }
        let choices: Vec<Value> = choices
            .into_iter()
            .map(|c| Value::Object(c.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
            .collect();
        o.insert("choices".into(), Value::Array(choices));
        let mut t = String::new();
        spell(&Value::Object(o), style, &mut t);
        let tree_took = splice_tree(t.as_bytes(), &ResponseContext::default()).is_some();
        let took = check_splice(&t);
        prop_assert!(!took || tree_took);
    }
}

#[test]
fn usage_is_read_as_the_tree_path_reads_it() {
    let usages = [
        r#"{"prompt_tokens":16,"completion_tokens":5,"total_tokens":21}"#,
        r#"{"prompt_tokens":16.0,"completion_tokens":-5,"total_tokens":1}"#,
        r#"{"prompt_tokens":-0,"completion_tokens":"5"}"#,
        r#"{"prompt_tokens":18446744073709551615,"completion_tokens":0}"#,
        r#"{"prompt_tokens":18446744073709551616,"completion_tokens":1e2}"#,
        r#"{"prompt_cache_hit_tokens":4,"prompt_tokens_details":{"cached_tokens":2.5}}"#,
        r#"{"prompt_cache_hit_tokens":4,"prompt_tokens_details":{"cached_tokens":3}}"#,
        r#"{"prompt_cache_hit_tokens":4,"prompt_tokens_details":null}"#,
        r#"{"prompt_tokens_details":{"cached_tokens":1,"cache_write_tokens":2,"cache_write_1h_tokens":3,"audio_tokens":4,"reasoning_tokens":9}}"#,
        r#"{"completion_tokens_details":{"reasoning_tokens":1,"image_tokens":2,"audio_tokens":3,"cached_tokens":9}}"#,
        r#"{"completion_tokens_details":[1,2],"prompt_tokens_details":"x","cached_tokens":5,"reasoning_tokens":6}"#,
        r#"{ "prompt_tokens" : 1 , "prompt_tokens_details" : { "cached_tokens" : 1 } }"#,
        r#"{"\u0070rompt_tokens":7,"usage":{"prompt_tokens":8}}"#,
        r#"{}"#,
        r#"[]"#,
        r#"7"#,
        r#""usage""#,
    ];
    for u in usages {
        let body = format!(r#"{{"id":"x","choices":[{{"finish_reason":"stop"}}],"usage":{u}}}"#);
        assert!(check_splice(&body), "{body}: declined");
    }
    for u in [
        r#"{"prompt_tokens":1,"prompt_tokens":2}"#,
        r#"{"prompt_tokens_details":{"cached_tokens":1,"cached_tokens":2}}"#,
    ] {
        let body = format!(r#"{{"choices":[],"usage":{u}}}"#);
        assert!(!check_splice(&body), "{body}: taken");
    }
}

#[test]
fn plain_runs_end_where_bytes_do() {
    let mut s: Vec<u8> = (0u8..=255).collect();
    s.extend_from_slice(&[b'a'; 40]);
    for start in 0..s.len() {
        let want = (start..s.len())
            .find(|&i| s[i] < 0x20 || s[i] == b'"' || s[i] == b'\\')
            .unwrap_or(s.len());
        assert_eq!(plain_run(&s, start), want, "{start}");
    }
    for stop in [0u8, 0x1f, b'"', b'\\'] {
        for at in 0..24 {
            let mut t = vec![0xe9u8; 24];
            t[at] = stop;
            assert_eq!(plain_run(&t, 0), at);
        }
    }
}

fn usage_value() -> impl Strategy<Value = Value> {
    let n = prop_oneof![
        (0u64..1_000_000).prop_map(|n| json!(n)),
        (-5i64..0).prop_map(|n| json!(n)),
        Just(json!(2.5)),
        Just(json!("3")),
        Just(Value::Null),
    ];
    let keys = |ks: Vec<&'static str>, v: BoxedStrategy<Value>| {
        prop::collection::vec((prop::sample::select(ks), v), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    };
    let detail_keys = vec![
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "audio_tokens",
        "reasoning_tokens",
        "image_tokens",
        "x",
    ];
    let details = prop_oneof![keys(detail_keys, n.clone().boxed()), n.clone()].boxed();
    let field = prop_oneof![n, details].boxed();
    keys(
        vec![
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "prompt_cache_hit_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
            "cached_tokens",
        ],
        field,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Any `usage` in any spelling: normalized as the tree path normalizes it.
    #[test]
    fn usage_splices_like_the_tree(u in usage_value(), style in 0u8..8) {
        let mut t = String::new();
        spell(&json!({"choices": [{"finish_reason": "length"}], "usage": u}), style, &mut t);
        prop_assert!(check_splice(&t), "declined {}", t);
    }
}
