//! Tests of the mock providers themselves (loopback only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use polyroute_mock::{MockConfig, MockServer};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn chat(stream: bool) -> Value {
    json!({"model": "m1", "messages": [{"role": "user", "content": "ping 42"}], "stream": stream,
           "stream_options": {"include_usage": true}})
}

fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/wire")
}

async fn sse_datas(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn openai_unary_and_models() {
    let s = MockServer::labeled("alpha").await.unwrap();
    let c = client();
    let r = c
        .post(format!("{}/v1/chat/completions", s.url()))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-server"], "alpha");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "alpha: ping 42");
    assert_eq!(v["model"], "m1");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let m: Value = c
        .get(format!("{}/v1/models", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["data"][0]["id"], "mock-model");
    assert_eq!(s.calls(), 1);
    assert_eq!(s.received()[0].body["messages"][0]["content"], "ping 42");
}

#[tokio::test]
async fn openai_stream_has_usage_and_done() {
    let s = MockServer::start().await.unwrap();
    let r = client()
        .post(format!("{}/v1/chat/completions", s.url()))
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let d = sse_datas(r).await;
    assert_eq!(d.last().unwrap(), "[DONE]");
    let usage: Value = serde_json::from_str(&d[d.len() - 2]).unwrap();
    assert!(usage["choices"].as_array().unwrap().is_empty());
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() >= 1);
    let text: String = d[..d.len() - 1]
        .iter()
        .filter_map(|x| serde_json::from_str::<Value>(x).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "mock: ping 42");
}

#[tokio::test]
async fn chunks_header_sets_event_count() {
    let s = MockServer::start().await.unwrap();
    let r = client()
        .post(format!("{}/v1/chat/completions", s.url()))
        .header("x-mock-chunks", "50")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    // role chunk + 50 content + finish + usage + [DONE]
    assert_eq!(sse_datas(r).await.len(), 54);
}

#[tokio::test]
async fn anthropic_and_gemini() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let body = json!({"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]});
    let v: Value = c
        .post(format!("{}/v1/messages", s.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "mock: hi");
    assert_eq!(v["stop_reason"], "end_turn");
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let r = c
        .post(format!("{}/v1/messages", s.url()))
        .json(&sb)
        .send()
        .await
        .unwrap();
    let t = r.text().await.unwrap();
    assert!(t.starts_with("event: message_start"));
    assert!(t.contains("event: message_stop"));

    let g = json!({"contents": [{"role": "user", "parts": [{"text": "yo"}]}]});
    let v: Value = c
        .post(format!(
            "{}/v1beta/models/gemini-x:generateContent",
            s.url()
        ))
        .json(&g)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "mock: yo"
    );
    assert_eq!(v["modelVersion"], "gemini-x");
    let r = c
        .post(format!(
            "{}/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
            s.url()
        ))
        .json(&g)
        .send()
        .await
        .unwrap();
    let d = sse_datas(r).await;
    let last: Value = serde_json::from_str(d.last().unwrap()).unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(s.calls(), 4);
}

#[tokio::test]
async fn faults_by_header_and_script() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/v1/chat/completions", s.url());
    let r = c
        .post(&url)
        .header("x-mock-fault", "429=7")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_exceeded");

    s.script(["503", "ok", "502"]).unwrap();
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(
            c.post(&url)
                .json(&chat(false))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(seen, vec![503, 200, 502, 200]);
    assert!(s.script(["bogus"]).is_err());

    s.set_fault(Some("500")).unwrap();
    assert_eq!(
        c.post(&url)
            .json(&chat(false))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    s.set_fault(None).unwrap();
    assert_eq!(s.calls(), 6);
    assert_eq!(s.stats()["by_fault"]["503"], 1);
}

#[tokio::test]
async fn stall_cut_garbage_wrong_type_close() {
    let s = MockServer::start().await.unwrap();
    let url = format!("{}/v1/chat/completions", s.url());
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let t = Instant::now();
    let e = quick
        .post(&url)
        .header("x-mock-fault", "stall")
        .json(&chat(false))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    assert!(t.elapsed() < Duration::from_secs(2));

    let c = client();
    // cut mid-stream: some events, then the body errors
    let r = c
        .post(&url)
        .header("x-mock-fault", "cut")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(item) = body.next().await {
        match item {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a cut stream must end in a body error");
    assert!(String::from_utf8_lossy(&got).contains("data: "));
    assert!(!String::from_utf8_lossy(&got).contains("[DONE]"));

    // cut unary: body shorter than content-length
    let r = c
        .post(&url)
        .header("x-mock-fault", "cut")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.is_err());

    let r = c
        .post(&url)
        .header("x-mock-fault", "garbage")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_err());

    let r = c
        .post(&url)
        .header("x-mock-fault", "wrong-content-type")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    let e = c
        .post(&url)
        .header("x-mock-fault", "close")
        .json(&chat(false))
        .send()
        .await;
    assert!(e.is_err());

    let t = Instant::now();
    let r = c
        .post(&url)
        .header("x-mock-fault", "slow-first-byte=150")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn control_endpoints() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let r: Value = c
        .post(format!("{}/__mock/script", s.url()))
        .json(&json!({"faults": ["429", "ok"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["queued"], 2);
    let url = format!("{}/v1/chat/completions", s.url());
    assert_eq!(
        c.post(&url)
            .json(&chat(false))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        c.post(&url)
            .json(&chat(false))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let calls: Value = c
        .get(format!("{}/__mock/calls", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["total"], 2);
    assert_eq!(calls["requests"][1]["body"]["model"], "m1");
    assert_eq!(calls["by_path"]["/v1/chat/completions"], 2);
    c.post(format!("{}/__mock/reset", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(s.calls(), 0);
    let bad = c
        .post(format!("{}/__mock/script", s.url()))
        .json(&json!(["nope"]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn replays_recorded_payloads() {
    let dir = wire_dir();
    if !dir.join("openai/stream.text.sse").exists() {
        eprintln!("wire dir not present; skipping");
        return;
    }
    let s = MockServer::start_with(
        MockConfig {
            wire_dir: Some(dir),
            ..MockConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let c = client();
    let url = format!("{}/v1/chat/completions", s.url());
    let r = c
        .post(&url)
        .header("x-mock-replay", "openai/stream.text.sse")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    let d = sse_datas(r).await;
    assert_eq!(d.last().unwrap(), "[DONE]");
    let r = c
        .post(format!("{}/v1/messages", s.url()))
        .header(
            "x-mock-replay",
            "anthropic/exchange.stream_429_rate_limit_then_sse.json#0",
        )
        .json(&json!({"model": "x", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = c
        .post(format!("{}/v1beta/models/g:generateContent", s.url()))
        .header(
            "x-mock-replay",
            "gemini/vertexai.unary-failure-quota-exceeded.json",
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = c
        .post(&url)
        .header("x-mock-replay", "../secrets")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
}

#[tokio::test]
async fn keep_alive_many_sequential_requests() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/v1/chat/completions", s.url());
    for i in 0..200 {
        let body =
            json!({"model": "m", "messages": [{"role": "user", "content": format!("n{i}")}]});
        let v: Value = c
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], format!("mock: n{i}"));
    }
    assert_eq!(s.calls(), 200);
}

#[test]
fn binary_prints_port_and_serves() {
    let bin = env!("CARGO_BIN_EXE_polyroute-mock");
    let mut child = Command::new(bin)
        .args(["--port", "0", "--label", "bin"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let v: Value = rt.block_on(async {
        client()
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&chat(false))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(v["choices"][0]["message"]["content"], "bin: ping 42");
    assert_eq!(child.id(), pid);
    child.kill().unwrap();
    child.wait().unwrap();
}
