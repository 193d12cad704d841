//! The gateway against hostile clients (issue 17): slow or partial heads, idle keep-alives, missing bodies,
//! unauthenticated uploads, too many connections, huge identifiers and numbers, unknown fields, the Bearer
//! scheme, what `/providers` tells a caller without a key, and the modes of the files it writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute_cli::serve::{self, Gateway, Running};
use serde_json::{json, Value};
use serve_support::{chat, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A gateway with short connection timeouts and `max` connections.
async fn start(env: &Env, header_ms: u64, body_ms: u64, max: usize) -> Running {
    let mut gw = Gateway::new(&env.cfg, env.data()).unwrap();
    gw.limits.header_timeout = Duration::from_millis(header_ms);
    gw.limits.body_timeout = Duration::from_millis(body_ms);
    gw.limits.max_connections = max;
    serve::start(Arc::new(gw), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Send `bytes` on a new connection, then read until the server closes it or `wait` passes: what was read and
/// whether the server closed the connection.
async fn raw(srv: &Running, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(end.into(), s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn head(key: Option<&str>, len: usize) -> Vec<u8> {
    let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    format!(
        "POST /api/v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{auth}content-length: {len}\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_partial_head_and_an_idle_keep_alive_are_closed() {
    let env = Env::new().await;
    let srv = start(&env, 300, 300, 100).await;
    let t0 = Instant::now();
    let (_, closed) = raw(
        &srv,
        b"POST /api/v1/chat/completions HTTP/1.1\r\nhost: x\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(closed, "a partial head must not hold the connection");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // An idle keep-alive connection after one answer.
    let t0 = Instant::now();
    let (text, closed) = raw(
        &srv,
        b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive must be closed");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    srv.shutdown().await;
}

#[tokio::test]
async fn a_body_is_read_only_for_a_known_key_and_within_the_body_timeout() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = start(&env, 5000, 300, 100).await;
    // No key, a body announced and never sent: refused from the headers alone.
    let (text, _) = raw(&srv, &head(None, 60_000), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    let (text, _) = raw(
        &srv,
        &head(Some("sk-or-v1-unknown-fake"), 60_000),
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    // A known key whose body never comes: 408 after the body timeout.
    let t0 = Instant::now();
    let (text, _) = raw(&srv, &head(Some(&key), 1000), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // Too large, announced: 413 without reading it.
    let (text, _) = raw(&srv, &head(Some(&key), 10 << 20), Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    srv.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_get_a_clear_refusal() {
    let env = Env::new().await;
    let srv = start(&env, 5000, 5000, 4).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET").await.unwrap();
        idle.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (text, closed) = raw(
        &srv,
        b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("Too many open connections"), "{text}");
    assert!(closed);
    assert_eq!(srv.gateway.open.count(), 4);
    drop(idle);
    // Places free up once the idle ones close.
    let end = Instant::now() + Duration::from_secs(5);
    while srv.gateway.open.count() > 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = client()
        .get(format!("{}/health", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    srv.shutdown().await;
}

async fn post(srv: &Running, key: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/api/v1/chat/completions", srv.url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_values_are_400s_naming_the_field() {
    let mut env = Env::new().await;
    env.cfg.server.body_limit = Some(4 << 20);
    let key = env.key(None);
    let srv = env.start().await;
    let t0 = Instant::now();
    let (s, v) = post(
        &srv,
        &key,
        &chat(&format!("acme/{}", "x".repeat(1 << 20)), "hi"),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("model"),
        "{v}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let cases = [
        ("max_tokens", json!(u64::MAX)),
        ("n", json!(1_000_000_000u64)),
        ("padding", json!(vec![0; 10_000])),
    ];
    for (field, value) in cases {
        let mut b = chat("acme/chat", "hi");
        b[field] = value;
        let (s, v) = post(&srv, &key, &b).await;
        assert_eq!(s, 400, "{field}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {v}"
        );
    }
    // A body that would make a value tree far larger than itself is refused before it is parsed: 300,000 zeros
    // (600 KB of text), and arrays nested 65 deep; a long string is not a shape problem.
    let mut b = chat("acme/chat", "hi");
    b["padding"] = json!(vec![0; 300_000]);
    let (s, v) = post(&srv, &key, &b).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON values"),
        "{v}"
    );
    let mut deep = json!(0);
    for _ in 0..65 {
        deep = json!([deep]);
    }
    let mut b = chat("acme/chat", "hi");
    b["padding"] = deep;
    let (s, v) = post(&srv, &key, &b).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nests deeper"),
        "{v}"
    );
    // 300,000 brackets and commas inside a string pass the body check and reach routing (where the prompt is too
    // long for the mock's context).
    let (s, v) = post(&srv, &key, &chat("acme/chat", &"[{,".repeat(100_000))).await;
    assert_eq!(
        (s, &v["error"]["metadata"]["polyroute_code"]),
        (404, &json!("constraint_filtered")),
        "{v}"
    );
    // Paging far past the end neither wraps nor panics.
    let r = client()
        .get(format!(
            "{}/api/v1/models?offset={}&limit=1000",
            srv.url(),
            usize::MAX
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    srv.shutdown().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_required() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let status = |auth: String| {
        let url = format!("{}/api/v1/key", srv.url());
        async move {
            client()
                .get(url)
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(format!("Bearer {key}")).await, 200);
    assert_eq!(status(format!("BEARER {key}")).await, 200);
    assert_eq!(status(format!("bearer  {key}")).await, 200);
    assert_eq!(
        status(key.clone()).await,
        401,
        "a bare key is no credential"
    );
    assert_eq!(status(format!("Basic {key}")).await, 401);
    srv.shutdown().await;
}

#[tokio::test]
async fn providers_without_a_key_do_not_say_which_hold_credentials() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let url = format!("{}/api/v1/providers", srv.url());
    let anon: Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        anon["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["configured"].is_null()),
        "{anon}"
    );
    let known: Value = client()
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        known["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["configured"] == json!(true)),
        "{known}"
    );
    srv.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn keys_and_ledger_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new().await;
    let dir = env.data().join("fresh");
    let _gw = Gateway::new(&env.cfg, &dir).unwrap();
    serve::keys::create(&dir, "t", None).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("keys.json")), 0o600);
    assert_eq!(mode(&dir.join("ledger.sqlite")), 0o600);
}

#[test]
fn listening_beyond_loopback_is_announced() {
    use serve::cli::exposure_warning;
    assert!(exposure_warning(&"127.0.0.1:8080".parse().unwrap()).is_none());
    assert!(exposure_warning(&"[::1]:8080".parse().unwrap()).is_none());
    let w = exposure_warning(&"0.0.0.0:8080".parse().unwrap()).unwrap();
    assert!(w.contains("reachable from the network"), "{w}");
    assert!(exposure_warning(&"192.168.1.5:8080".parse().unwrap()).is_some());
}

#[test]
fn serve_without_credentials_says_so() {
    use serve::cli::credentials_warning;
    let none = std::collections::BTreeSet::new();
    let w = credentials_warning(&none).unwrap();
    assert!(w.contains("no_credentials") && w.contains("api_key"), "{w}");
    let one: std::collections::BTreeSet<String> = ["openai".to_string()].into();
    assert!(credentials_warning(&one).is_none());
}
