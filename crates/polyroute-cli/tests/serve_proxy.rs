//! A proxy named in the environment (`HTTP_PROXY`) carries every upstream request of `polyroute serve`: the
//! provider's host here (`upstream.test`, a reserved name that never resolves) is reached only through the proxy,
//! a loopback server in this test that reads the forwarded request and answers for the provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::process::Stdio;

use serde_json::{json, Value};
use serve_support::{catalog, chat, spawn_serve_env, FAKE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The forwarded requests' heads and bodies, one string each.
async fn proxy() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let answer =
        json!({"id": "up-1", "object": "chat.completion", "created": 1, "model": "alpha-upstream",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "through the proxy"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
        .to_string();
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
        answer.len()
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            s.set_nodelay(true).unwrap();
            let (tx, reply) = (tx.clone(), reply.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 8192];
                loop {
                    let n = s.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        tx.send(text).unwrap();
                        s.write_all(reply.as_bytes()).await.unwrap();
                        buf.clear();
                    }
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn upstream_requests_go_through_the_proxy_the_environment_names() {
    let (port, mut forwarded) = proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("catalog.json"), catalog().to_string()).unwrap();
    let cfg = dir.path().join("polyroute.toml");
    std::fs::write(
        &cfg,
        format!(
            "catalog = \"catalog.json\"\nenv_keys = false\n\n[providers.alpha]\napi_key = \"{FAKE}\"\n\
             base_url = \"http://upstream.test/v1\"\n"
        ),
    )
    .unwrap();
    let key = polyroute_cli::serve::keys::create(&data, "test", None)
        .unwrap()
        .1;
    let proxy_url = format!("http://127.0.0.1:{port}");
    let gw = spawn_serve_env(&cfg, &data, &[], Stdio::inherit(), |c| {
        for v in [
            "NO_PROXY",
            "no_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        c.env("HTTP_PROXY", &proxy_url)
    });
    let mut body = chat("acme/chat", "hi");
    body["provider"] = json!({"only": ["alpha"]});
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = c
        .post(format!("{}/api/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "through the proxy");
    assert_eq!(v["provider"], "ALPHA Cloud");
    assert_eq!(v["usage"]["total_tokens"], 7);
    // A forwarding proxy gets the absolute URL and the provider's host, with the provider's credential.
    let head = forwarded.recv().await.unwrap();
    assert!(
        head.starts_with("POST http://upstream.test/v1/chat/completions HTTP/1.1\r\n"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nhost: upstream.test\r\n"), "{head}");
    assert!(
        lower.contains(&format!("\r\nauthorization: bearer {FAKE}\r\n")),
        "{head}"
    );
    assert!(head.contains("\"model\":\"alpha-upstream\""), "{head}");
    drop(gw);
}
