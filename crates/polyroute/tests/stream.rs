//! Streamed execution: failover before content, in-band errors after, cancellation, concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use polyroute::RequestContext;
use serde_json::{json, Value};

fn sreq(order: &[&str], text: &str) -> Value {
    let mut v = req(order, text);
    v["stream"] = json!(true);
    v
}

async fn collect(s: polyroute::ChatStream) -> Vec<polyroute::Result<Value>> {
    s.collect().await
}

fn text_of(chunks: &[polyroute::Result<Value>]) -> String {
    chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn stream_success_ends_with_usage_and_cost() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    let chunks = collect(r.chat_stream(sreq(&["alpha"], "stream me please"))).await;
    assert!(chunks.iter().all(Result::is_ok));
    assert_eq!(text_of(&chunks), "m0: stream me please");
    let last = chunks.last().unwrap().as_ref().unwrap();
    assert!(last["usage"]["cost"].as_f64().unwrap() > 0.0);
    assert_eq!(last["provider"], "ALPHA Cloud");
    let id = last["id"].as_str().unwrap();
    assert!(chunks.iter().all(|c| c.as_ref().unwrap()["id"] == id));
    let rec = r.generation(id).await.unwrap();
    assert_eq!(rec["streamed"], true);
    assert_eq!(m[0].received()[0].body["stream"], true);
}

#[tokio::test]
async fn stream_fails_over_before_content() {
    let m = mocks(2).await;
    let r = with_fast(
        builder(&[
            P("alpha", "openai", base(&m[0], "openai")),
            P("beta", "openai", base(&m[1], "openai")),
        ]),
        "alpha",
    )
    .build()
    .unwrap();
    for fault in [
        "503",
        "429",
        "garbage",
        "wrong-content-type",
        "stall",
        "close",
    ] {
        m[0].script([fault]).unwrap();
        let chunks = collect(r.chat_stream(sreq(&["alpha", "beta"], "x y"))).await;
        assert!(
            chunks.iter().all(Result::is_ok),
            "fault {fault}: {chunks:?}"
        );
        assert_eq!(text_of(&chunks), "m1: x y", "fault {fault}");
        assert_eq!(
            chunks.last().unwrap().as_ref().unwrap()["provider"],
            "BETA Cloud"
        );
    }
}

#[tokio::test]
async fn cut_mid_stream_ends_in_band_without_failover() {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .build()
    .unwrap();
    m[0].script(["cut"]).unwrap();
    let body = sreq(
        &["alpha", "beta"],
        "one two three four five six seven eight",
    );
    let chunks = collect(r.chat_stream(body)).await;
    // The in-band error chunk, then the usage chunk of what was billed.
    let usage = chunks.last().unwrap().as_ref().unwrap();
    assert_eq!(usage["choices"], json!([]), "{usage}");
    assert!(
        usage["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
        "{usage}"
    );
    let last = chunks[chunks.len() - 2].as_ref().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    // Said in OpenRouter's terms, not the HTTP library's.
    let msg = last["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Provider returned error"), "{msg}");
    assert!(!msg.contains("decoding"), "{msg}");
    assert!(
        last["error"]["metadata"].get("provider_code").is_none(),
        "{last}"
    );
    assert!(!text_of(&chunks).is_empty());
    assert_eq!(
        m[1].calls(),
        0,
        "no failover after content reached the caller"
    );
    let id = last["id"].as_str().unwrap();
    assert_eq!(r.generation(id).await.unwrap()["finish_reason"], "error");
}

/// The time a stream waits for its upstream's chunks is waiting, not the gateway's overhead: a stream whose
/// chunks come 60 ms apart records most of its latency as waited.
#[tokio::test]
async fn a_streams_waits_between_chunks_are_not_overhead() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    m[0].script(["chunk-delay=60"]).unwrap();
    let chunks = collect(r.chat_stream(sreq(&["alpha"], "a b c d"))).await;
    assert!(chunks.iter().all(Result::is_ok));
    let id = chunks.last().unwrap().as_ref().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rec = r.generation(&id).await.unwrap();
    let latency = rec["latency_ms"].as_f64().unwrap();
    let overhead = rec["overhead_ms"].as_f64().unwrap();
    assert!(latency >= 240.0, "{rec}");
    assert!(overhead >= 0.0 && overhead < latency / 4.0, "{rec}");
}

#[tokio::test]
async fn idle_timeout_mid_stream_is_in_band() {
    let m = mocks(1).await;
    let r = with_fast(
        builder(&[P("alpha", "openai", base(&m[0], "openai"))]),
        "alpha",
    )
    .build()
    .unwrap();
    m[0].script(["stall-after=3"]).unwrap();
    let chunks = collect(r.chat_stream(sreq(&["alpha"], "a b c d"))).await;
    assert!(chunks.last().unwrap().as_ref().unwrap()["usage"].is_object());
    let last = chunks[chunks.len() - 2].as_ref().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    assert!(last["error"]["message"].as_str().unwrap().contains("idle"));
}

#[tokio::test]
async fn silence_before_first_token_fails_over() {
    let m = mocks(2).await;
    let r = with_fast(
        builder(&[
            P("alpha", "openai", base(&m[0], "openai")),
            P("beta", "openai", base(&m[1], "openai")),
        ]),
        "alpha",
    )
    .build()
    .unwrap();
    // The first content would come 5 s after the head; alpha's first-token timeout is 1 s.
    m[0].script(["chunk-delay=5000"]).unwrap();
    let chunks = collect(r.chat_stream(sreq(&["alpha", "beta"], "a b"))).await;
    assert_eq!(text_of(&chunks), "m1: a b");
}

#[tokio::test]
async fn all_fail_before_content_yields_one_error() {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .build()
    .unwrap();
    m[0].script(["500"]).unwrap();
    m[1].script(["429=3"]).unwrap();
    let chunks = collect(r.chat_stream(sreq(&["alpha", "beta"], "x"))).await;
    assert_eq!(chunks.len(), 1);
    let e = chunks[0].as_ref().unwrap_err();
    assert_eq!(e.code(), "temporarily_unavailable");
    assert_eq!(e.attempts().len(), 2);
    assert_eq!(e.retry_after(), Some(3.0));
}

#[tokio::test]
async fn an_event_that_never_ends_is_cut_off_at_the_size_cap() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    // The first piece of content, then 40 MB of one `data:` line: past the 32 MiB cap.
    m[0].script(["endless-line=40000000"]).unwrap();
    let chunks = collect(r.chat_stream(sreq(&["alpha"], "hello there"))).await;
    assert!(!text_of(&chunks).is_empty(), "{chunks:?}");
    // The stream ends in band, saying which limit cut it off (without the cap the line is read whole).
    let err = chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .find(|c| c.get("error").is_some())
        .expect("an in-band error chunk");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("larger than 33554432 bytes"), "{msg}");
}

#[tokio::test]
async fn dropping_the_stream_cancels_upstream() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    let mut body = sreq(
        &["alpha"],
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    );
    body["max_tokens"] = json!(1000);
    m[0].script(["chunk-delay=30"]).unwrap();
    let mut s = r.chat_stream(body);
    let mut got = 0;
    while let Some(c) = s.next().await {
        c.unwrap();
        got += 1;
        if got == 3 {
            break;
        }
    }
    drop(s);
    let mut ok = false;
    // Up to 20 s: the abort is seen quickly, but a loaded machine may schedule the mock late.
    for _ in 0..1000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if m[0].aborted_streams() >= 1 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the mock should see the client go away");
}

#[tokio::test]
async fn sse_helper_frames_and_terminates() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    let parts: Vec<bytes::Bytes> = r
        .chat_stream_sse(sreq(&["alpha"], "hi"), RequestContext::default())
        .collect()
        .await;
    let all: String = parts
        .iter()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .collect();
    assert!(all.starts_with("data: {"));
    assert!(all.ends_with("data: [DONE]\n\n"));
}

/// SSE events of a `chat_stream_sse` body, parsed; panics unless it is `data: <json>\n\n` events then `[DONE]`.
fn sse_events(parts: &[bytes::Bytes]) -> Vec<Value> {
    let all: Vec<u8> = parts.concat();
    let text = String::from_utf8(all).unwrap();
    let body = text
        .strip_suffix("data: [DONE]\n\n")
        .expect("ends with [DONE]");
    body.split_terminator("\n\n")
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").expect("a data line")).unwrap())
        .collect()
}

/// Without the per-request `id` and `created`, which differ between two runs.
fn normalized(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("created");
    }
    v
}

/// The byte path (`chat_stream_sse`, translators writing SSE directly) sends the same chunks as the value path,
/// for every dialect, whole or cut mid-stream (in-band error).
#[tokio::test]
async fn sse_bytes_match_the_chunk_stream_in_every_dialect() {
    for dialect in ["openai", "anthropic", "gemini"] {
        for fault in ["ok", "cut"] {
            let m = mocks(1).await;
            let r = builder(&[P("alpha", dialect, base(&m[0], dialect))])
                .build()
                .unwrap();
            let text = "one two three four five six seven eight nine ten";
            m[0].script([fault, fault]).unwrap();
            let values: Vec<Value> = collect(r.chat_stream(sreq(&["alpha"], text)))
                .await
                .into_iter()
                .map(|c| normalized(c.unwrap()))
                .collect();
            let parts: Vec<bytes::Bytes> = r
                .chat_stream_sse(sreq(&["alpha"], text), RequestContext::default())
                .collect()
                .await;
            let events: Vec<Value> = sse_events(&parts).into_iter().map(normalized).collect();
            assert!(values.len() > 2, "{dialect} {fault}: {values:?}");
            assert_eq!(events, values, "{dialect} {fault}");
            let last = values.last().unwrap();
            if fault == "cut" {
                assert!(last["usage"]["cost"].is_number(), "{dialect}");
                let err = &values[values.len() - 2];
                assert_eq!(err["choices"][0]["finish_reason"], "error", "{dialect}");
            } else {
                assert!(last["usage"]["cost"].as_f64().unwrap() > 0.0, "{dialect}");
                let content: String = values
                    .iter()
                    .filter_map(|v| v["choices"][0]["delta"]["content"].as_str())
                    .collect();
                assert_eq!(content, format!("m0: {text}"), "{dialect}");
            }
        }
    }
}

/// Under heavy machine load a stream may be slow but must never fail, mix with another, lose chunks or be billed
/// twice: the router-wide timeouts here are the relaxed ones (60 s first token and idle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_streams_are_never_mixed_up() {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "anthropic", base(&m[1], "anthropic")),
    ])
    .build()
    .unwrap();
    let n = 100;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move {
                let order: &[&str] = if i % 2 == 0 { &["alpha"] } else { &["beta"] };
                let text = format!("request number {i} says hello");
                let chunks: Vec<_> = r.chat_stream(sreq(order, &text)).collect().await;
                (i, text, chunks)
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (i, text, chunks) = t.await.unwrap();
        let errors: Vec<String> = chunks
            .iter()
            .filter_map(|c| c.as_ref().err().map(|e| format!("{e} {}", e.to_envelope())))
            .collect();
        assert!(errors.is_empty(), "request {i} failed: {errors:?}");
        let label = if i % 2 == 0 { "m0" } else { "m1" };
        assert_eq!(text_of(&chunks), format!("{label}: {text}"), "request {i}");
        let last = chunks.last().unwrap().as_ref().unwrap();
        assert!(
            last["usage"]["cost"].as_f64().unwrap() > 0.0,
            "request {i}: {last}"
        );
        let id = last["id"].as_str().unwrap().to_string();
        assert!(
            chunks
                .iter()
                .all(|c| c.as_ref().unwrap()["id"] == id.as_str()),
            "request {i}: one generation id across its chunks"
        );
        assert!(ids.insert(id.clone()), "generation ids are unique");
        let rec = r.generation(&id).await.unwrap();
        let provider = if i % 2 == 0 { "alpha" } else { "beta" };
        assert_eq!(rec["provider"], provider, "request {i}");
        assert_eq!(rec["attempts"].as_array().unwrap().len(), 1, "request {i}");
    }
    assert_eq!(m[0].calls() + m[1].calls(), n);
}
