//! Recorded provider payloads replayed by the mock (`x-mock-replay`), through the engine: content and usage come
//! out as recorded, reasoning is surfaced, errors are classified and enveloped; and dropped parameters are
//! visible, never silently sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures::StreamExt;
use polyroute::{ProviderSettings, RequestContext};
use serde_json::{json, Value};

fn replaying(spec: &str) -> ProviderSettings {
    ProviderSettings::with_key(KEY).header("x-mock-replay", spec)
}

/// A router whose one provider (`p`, of `dialect`) answers every call with the recorded payload `spec`.
async fn replay_router(
    dialect: &str,
    spec: &str,
) -> (polyroute_mock::MockServer, polyroute::Router) {
    let m = replay_mock().await;
    let r = rich_router(
        &[Rich("p", dialect, base(&m, dialect), &[])],
        &[("p", replaying(spec))],
    );
    (m, r)
}

fn check_usage(v: &Value, prompt: u64, completion: u64) {
    let u = &v["usage"];
    assert_eq!(u["prompt_tokens"], prompt, "{u}");
    assert_eq!(u["completion_tokens"], completion, "{u}");
    let want = prompt as f64 * 1e-6 + completion as f64 * 2e-6;
    assert!((u["cost"].as_f64().unwrap() - want).abs() < 1e-12, "{u}");
}

#[tokio::test]
async fn recorded_unary_answers_per_dialect() {
    let cases = [
        (
            "openai",
            "openai/chat_completion.text.response.json",
            "I'm unable to provide real-time weather updates.",
            (14, 37),
        ),
        (
            "gemini",
            "gemini/googleai.unary-success-basic-reply-short.json",
            "Google's headquarters, also known as the Googleplex, is located in **Mountain View, California**.\n",
            (7, 22),
        ),
        (
            "anthropic",
            "anthropic/exchange.tool_use_roundtrip.json#1",
            "The weather in SF is currently **20\u{b0}C** (68\u{b0}F) and **Sunny**!",
            (705, 25),
        ),
    ];
    for (dialect, spec, text, (p, c)) in cases {
        let (_m, r) = replay_router(dialect, spec).await;
        let v = r.chat(rich_req("p", json!("x"))).await.unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(content.starts_with(text), "{dialect}: {content:?}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{dialect}");
        assert_eq!(v["model"], "test/rich");
        check_usage(&v, p, c);
    }
}

#[tokio::test]
async fn recorded_streams_per_dialect() {
    let cases = [
        (
            "openai",
            "openai/stream.text.sse",
            "I'm unable to provide",
            (14, 30),
        ),
        (
            "anthropic",
            "anthropic/stream.basic_text.sse",
            "Hello there!",
            (11, 6),
        ),
        (
            "gemini",
            "gemini/googleai.streaming-success-basic-reply-short.sse",
            "The capital of Wyoming is **Cheyenne**.\n",
            (7, 10),
        ),
    ];
    for (dialect, spec, text, (p, c)) in cases {
        let (_m, r) = replay_router(dialect, spec).await;
        let mut body = rich_req("p", json!("x"));
        body["stream"] = json!(true);
        let chunks = collect_ok(r.chat_stream(body)).await;
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let got = stream_text(&chunks);
        assert!(got.starts_with(text), "{dialect}: {got:?}");
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        check_usage(last, p, c);
        let rec = r.generation(last["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(rec["usage"]["prompt_tokens"], p);
        assert_eq!(rec["finish_reason"], "stop");
    }
}

#[tokio::test]
async fn recorded_reasoning_is_surfaced() {
    for (dialect, spec, finish) in [
        (
            "anthropic",
            "anthropic/stream.thinking_signature_refusal_padded.sse",
            "content_filter",
        ),
        (
            "gemini",
            "gemini/googleai.streaming-success-thinking-reply-thought-summary.sse",
            "stop",
        ),
    ] {
        let (_m, r) = replay_router(dialect, spec).await;
        let mut body = rich_req("p", json!("x"));
        body["stream"] = json!(true);
        body["reasoning"] = json!({"effort": "low"});
        let chunks = collect_ok(r.chat_stream(body)).await;
        let reasoning: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
            .collect();
        assert!(!reasoning.is_empty(), "{dialect}: {chunks:?}");
        assert!(!stream_text(&chunks).is_empty(), "{dialect}");
        let finishes: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(finishes, vec![finish], "{dialect}");
        assert!(chunks.last().unwrap()["usage"]["cost"].as_f64().unwrap() > 0.0);
    }
}

#[tokio::test]
async fn recorded_tool_call_stream_comes_back_in_openai_shape() {
    let (_m, r) = replay_router("anthropic", "anthropic/stream.tool_use.sse").await;
    let mut body = rich_req("p", json!("x"));
    body["stream"] = json!(true);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
    let chunks = collect_ok(r.chat_stream(body)).await;
    let frags: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(frags[0]["id"].as_str().is_some(), "{frags:?}");
    assert!(frags[0]["function"]["name"].as_str().is_some());
    let args: String = frags
        .iter()
        .filter_map(|f| f["function"]["arguments"].as_str())
        .collect();
    assert!(
        serde_json::from_str::<Value>(&args).unwrap().is_object(),
        "{args}"
    );
    let finishes: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finishes, vec!["tool_calls"]);
}

#[tokio::test]
async fn recorded_mid_stream_error_ends_in_band() {
    let (_m, r) = replay_router(
        "gemini",
        "gemini/vertexai.streaming-failure-error-mid-stream.sse",
    )
    .await;
    let mut body = rich_req("p", json!("x"));
    body["stream"] = json!(true);
    let chunks = collect_ok(r.chat_stream(body)).await;
    assert!(stream_text(&chunks).starts_with("First "), "{chunks:?}");
    // The in-band error chunk, then the usage chunk of what was billed, last.
    let [.., last, usage] = chunks.as_slice() else {
        panic!("{chunks:?}")
    };
    assert_eq!(usage["choices"], json!([]), "{usage}");
    assert!(usage["usage"]["cost"].is_number(), "{usage}");
    assert!(usage["usage"]["cost_details"]["upstream_inference_prompt_cost"].is_number());
    assert_eq!(last["choices"][0]["finish_reason"], "error", "{last}");
    let meta = &last["error"]["metadata"];
    assert_eq!(meta["provider_name"], "P Cloud", "{last}");
    assert_eq!(meta["provider_code"], "CANCELLED", "{last}");
    assert!(meta["error_type"].as_str().is_some());
    assert_eq!(meta["raw"]["error"]["status"], "CANCELLED");
    let rec = r.generation(last["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(rec["finish_reason"], "error");
}

#[tokio::test]
async fn recorded_provider_errors_are_classified_and_fail_over() {
    let m = replay_mock().await;
    let r = rich_router(
        &[
            Rich("gq", "gemini", base(&m, "gemini"), &[]),
            Rich("ar", "anthropic", base(&m, "anthropic"), &[]),
            Rich("ok", "openai", base(&m, "openai"), &[]),
        ],
        &[
            (
                "gq",
                replaying("gemini/vertexai.unary-failure-quota-exceeded.json"),
            ),
            (
                "ar",
                replaying("anthropic/exchange.stream_429_rate_limit_then_sse.json#0"),
            ),
        ],
    );
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let mut body = rich_req("gq", json!("after two refusals"));
    body["provider"] = json!({"order": ["gq", "ar", "ok"]});
    let v = r.chat_with(body, &ctx).await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "m0: after two refusals"
    );
    let att = v["openrouter_metadata"]["attempts"].as_array().unwrap();
    let codes: Vec<&str> = att.iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        vec!["rate_limited", "rate_limited", "success"],
        "{att:?}"
    );
    assert_eq!(att[0]["status"], 429);
}

#[tokio::test]
async fn dropped_parameters_are_visible_and_never_sent() {
    let m = replay_mock().await;
    let r = rich_router(
        &[Rich("anth", "anthropic", base(&m, "anthropic"), &[])],
        &[],
    );
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let mut body = rich_req("anth", json!("no logprobs here"));
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(2);
    let v = r.chat_with(body.clone(), &ctx).await.unwrap();
    let dropped = &v["openrouter_metadata"]["dropped_params"];
    assert!(
        dropped.as_array().unwrap().iter().any(|d| d == "logprobs"),
        "{dropped}"
    );
    let sent = m.received().last().unwrap().body.clone();
    assert!(
        sent.get("logprobs").is_none() && sent.get("top_logprobs").is_none(),
        "{sent}"
    );
    let rec = r.generation(v["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(&rec["dropped_params"], dropped);
    // Streamed: the final chunk's metadata says the same.
    body["stream"] = json!(true);
    let chunks: Vec<Value> = r
        .chat_stream_with(body, ctx)
        .map(|c| c.unwrap())
        .collect()
        .await;
    assert_eq!(
        &chunks.last().unwrap()["openrouter_metadata"]["dropped_params"],
        dropped
    );
}

#[tokio::test]
async fn require_parameters_refuses_what_the_dialect_would_drop() {
    // The catalog claims logprobs for this Anthropic endpoint, so selection keeps it; the dialect cannot send
    // logprobs, and with require_parameters the attempt fails instead of dropping it.
    let m = replay_mock().await;
    let r = rich_router(
        &[Rich(
            "anth",
            "anthropic",
            base(&m, "anthropic"),
            &["logprobs"],
        )],
        &[],
    );
    let mut body = rich_req("anth", json!("x"));
    body["logprobs"] = json!(true);
    body["provider"]["require_parameters"] = json!(true);
    let e = r.chat(body).await.unwrap_err();
    assert_eq!(e.attempts().len(), 1, "{e}");
    assert_eq!(e.attempts()[0].class.code(), "invalid_request");
    assert_eq!(m.calls(), 0, "nothing was sent");
}
