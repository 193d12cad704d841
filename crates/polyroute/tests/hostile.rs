//! Hostile upstreams: a provider that echoes the credential back (in an error body, in an in-band stream
//! error), and one that answers with far more than any completion (issue 17, items 1 and 7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{builder, KEY, P};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
enum Mode {
    /// 401 whose message echoes the `Authorization` header.
    Echo401,
    /// A stream with one content chunk, then an in-band error echoing the key.
    StreamEcho,
    /// A stream with one content chunk, then silence.
    StreamStall,
    /// 200 JSON of `n` MiB without a `Content-Length` (read until close).
    Huge(usize),
    /// 200 JSON announcing `n` MiB in `Content-Length`.
    HugeDeclared(usize),
}

/// Read a request head and its body; the `Authorization` value.
async fn read_request(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut tmp).await.unwrap_or(0);
        if n == 0 {
            return String::new();
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut auth = String::new();
    let mut len = 0usize;
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = v.trim().to_string(),
                "content-length" => len = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    while buf.len() < head_end + len {
        let n = s.read(&mut tmp).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    auth
}

async fn serve_one(mut s: TcpStream, mode: Mode) {
    let auth = read_request(&mut s).await;
    match mode {
        Mode::Echo401 => {
            let body = json!({"error": {"message": format!("Incorrect API key provided: {auth}"),
                "type": "invalid_request_error", "code": "invalid_api_key", "param": auth}})
            .to_string();
            let resp = format!(
                "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
        Mode::StreamEcho => {
            let content = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]});
            let err = json!({"error": {"message": format!("key {auth} was revoked"), "code": 401}});
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {content}\n\ndata: {err}\n\n"
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
        Mode::StreamStall => {
            let content = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]});
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: {content}\n\n"
            );
            let _ = s.write_all(resp.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Mode::Huge(mib) | Mode::HugeDeclared(mib) => {
            let len = if let Mode::HugeDeclared(_) = mode {
                format!("content-length: {}\r\n", mib * 1024 * 1024)
            } else {
                String::new()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{len}connection: close\r\n\r\n{{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"finish_reason\":\"stop\",\"message\":{{\"role\":\"assistant\",\"content\":\""
            );
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'a'; 1024 * 1024];
            for _ in 0..mib {
                if s.write_all(&block).await.is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"\"}}]}").await;
        }
    }
    let _ = s.shutdown().await;
}

async fn hostile(mode: Mode) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve_one(s, mode));
        }
    });
    url
}

fn req(stream: bool) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10,
           "stream": stream, "provider": {"order": ["h"], "allow_fallbacks": false}})
}

#[tokio::test]
async fn an_echoed_key_never_reaches_the_caller() {
    let url = hostile(Mode::Echo401).await;
    let router = builder(&[P("h", "openai", url)]).build().unwrap();
    let e = router.chat(req(false)).await.unwrap_err();
    let text = e.to_envelope().to_string();
    assert!(!text.contains(KEY), "unary error leaks the key: {text}");
    assert!(
        text.contains("***"),
        "the message is kept, scrubbed: {text}"
    );
    // The same failure on a stream (before content: an error item).
    let mut s = router.chat_stream(req(true));
    let mut all = String::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(v) => all.push_str(&v.to_string()),
            Err(e) => all.push_str(&e.to_envelope().to_string()),
        }
    }
    assert!(!all.contains(KEY), "stream error leaks the key: {all}");
}

#[tokio::test]
async fn an_echoed_key_in_an_in_band_error_chunk_is_scrubbed() {
    let url = hostile(Mode::StreamEcho).await;
    let router = builder(&[P("h", "openai", url)]).build().unwrap();
    let mut s = router.chat_stream(req(true));
    let mut all = String::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(v) => all.push_str(&v.to_string()),
            Err(e) => all.push_str(&e.to_envelope().to_string()),
        }
    }
    assert!(all.contains("Hi"), "content was relayed: {all}");
    assert!(!all.contains(KEY), "in-band error leaks the key: {all}");
    // The SSE form too.
    let body: Vec<u8> = router
        .chat_stream_sse(req(true), polyroute::RequestContext::default())
        .collect::<Vec<_>>()
        .await
        .concat();
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains(KEY),
        "in-band SSE error leaks the key: {text}"
    );
}

#[tokio::test]
async fn a_huge_answer_fails_clearly_instead_of_being_buffered() {
    // A valid completion, only too large: without the cap it would be read whole and served.
    for mode in [Mode::Huge(40), Mode::HugeDeclared(200)] {
        let url = hostile(mode).await;
        let router = builder(&[P("h", "openai", url)]).build().unwrap();
        let e = tokio::time::timeout(Duration::from_secs(60), router.chat(req(false)))
            .await
            .expect("bounded")
            .unwrap_err();
        let text = e.to_envelope().to_string();
        assert!(text.contains(r#""status":200"#), "{text}");
    }
}

#[tokio::test]
async fn a_total_deadline_mid_stream_is_not_called_an_idle_timeout() {
    let url = hostile(Mode::StreamStall).await;
    let router = builder(&[P("h", "openai", url)])
        .options(polyroute::Options {
            timeouts: polyroute::Timeouts {
                connect: Duration::from_secs(5),
                first_token: Duration::from_secs(20),
                idle: Duration::from_secs(20),
                total: Duration::from_millis(700),
            },
            read_env: false,
            ..polyroute::Options::default()
        })
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut s = router.chat_stream(req(true));
    let mut all = String::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(15), s.next())
        .await
        .expect("bounded")
    {
        match item {
            Ok(v) => all.push_str(&v.to_string()),
            Err(e) => all.push_str(&e.to_envelope().to_string()),
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(all.contains("Hi"), "{all}");
    assert!(all.contains("total request timeout"), "{all}");
    assert!(!all.contains("idle timeout"), "{all}");
}
