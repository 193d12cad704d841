//! Vertex AI credentials beyond a service-account key, against loopback mocks written here: gcloud's
//! application-default credentials (`authorized_user`, the refresh-token grant, checked form field by form field
//! by the token endpoint mock), the GCE metadata server (the mock refuses a request without
//! `Metadata-Flavor: Google`) and express-mode API keys (the Vertex mock records the path and the key header).
//! One test: it sets the process environment the credentials are looked up in, step by step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{catalog, closed_port, relaxed_timeouts, P};
use polyroute::{Options, ProviderSettings, Router};
use polyroute_mock::MockServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENT_ID: &str = "fake-client.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "fake-client-secret";
const REFRESH: &str = "1//fake-refresh+token";
const EXPRESS_KEY: &str = "fake-vertex-express-key-0123";

/// One request as the mock read it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

type Handler = Arc<dyn Fn(&Req, usize) -> (u16, Value) + Send + Sync>;

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1; `handler` gets the request and its number.
struct Tiny {
    url: String,
    host: String,
    seen: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tiny {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tiny(handler: Handler) -> Tiny {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.lines();
            let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
            let headers: BTreeMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let req = Req {
                method: first.first().unwrap_or(&"").to_string(),
                path: first.get(1).unwrap_or(&"").to_string(),
                headers,
                body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
            };
            let n = {
                let mut g = log.lock().unwrap();
                g.push(req.clone());
                g.len()
            };
            let (status, body) = handler(&req, n);
            let body = body.to_string();
            let out = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(out.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    Tiny {
        url: format!("http://{host}"),
        host,
        seen,
        task,
    }
}

/// `application/x-www-form-urlencoded` decoding, written here independently of the engine's encoder.
fn form(body: &str) -> BTreeMap<String, String> {
    let dec = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(h, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

/// The token endpoint: the refresh-token grant of the fake client only; tokens live 4 s.
fn token_endpoint() -> Handler {
    Arc::new(|r: &Req, n: usize| {
        let f = form(&r.body);
        let want = [
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", REFRESH),
        ];
        let ok = r.method == "POST"
            && r.path == "/token"
            && r.headers.get("content-type").map(String::as_str)
                == Some("application/x-www-form-urlencoded")
            && want
                .iter()
                .all(|(k, v)| f.get(*k).map(String::as_str) == Some(*v));
        if ok {
            (
                200,
                json!({"access_token": format!("ya29.user-{n}"), "expires_in": 4, "token_type": "Bearer"}),
            )
        } else {
            // A careless endpoint echoing the refresh token: the engine must not pass it on.
            let echo = f.get("refresh_token").cloned().unwrap_or_default();
            (
                400,
                json!({"error": "invalid_grant", "error_description": format!("Bad Request: {echo}")}),
            )
        }
    })
}

/// The metadata server: the default service account's token, only with `Metadata-Flavor: Google`.
fn metadata_server() -> Handler {
    Arc::new(|r: &Req, n: usize| {
        let ok = r.method == "GET"
            && r.path == "/computeMetadata/v1/instance/service-accounts/default/token"
            && r.headers.get("metadata-flavor").map(String::as_str) == Some("Google");
        if ok {
            (
                200,
                json!({"access_token": format!("ya29.gce-{n}"), "expires_in": 3599, "token_type": "Bearer"}),
            )
        } else {
            (403, json!({"error": "missing Metadata-Flavor header"}))
        }
    })
}

fn router(vertex: &MockServer, s: ProviderSettings) -> Router {
    let base = format!("{}/v1/projects/PROJECT-ID/locations/global", vertex.url());
    Router::builder()
        .catalog_json(catalog(&[P("vertex", "gemini-vertex", base)]))
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: true,
            ..Options::default()
        })
        .provider("vertex", s)
        .build()
        .unwrap()
}

fn req(text: &str) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": text}], "max_tokens": 20,
           "provider": {"order": ["vertex"], "allow_fallbacks": false}})
}

fn auth_of(r: &Router) -> String {
    r.plan(&req("x")).unwrap()["attempts"][0]["auth"]
        .as_str()
        .unwrap()
        .to_string()
}

fn set_env(vars: &[(&str, Option<&str>)]) {
    for (k, v) in vars {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
}

#[tokio::test]
async fn vertex_adc_metadata_server_and_express_keys() {
    let dir = std::env::temp_dir().join(format!("polyroute-vertex-adc-{}", std::process::id()));
    let gcloud = dir.join("gcloud");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&gcloud).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    let tokens = tiny(token_endpoint()).await;
    let meta = tiny(metadata_server()).await;
    let vertex = MockServer::labeled("vertex").await.unwrap();
    let user = |refresh: &str| {
        json!({"type": "authorized_user", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
               "refresh_token": refresh, "quota_project_id": "quota-project"})
        .to_string()
    };
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        user(REFRESH),
    )
    .unwrap();
    let revoked = dir.join("revoked.json");
    std::fs::write(&revoked, user("1//fake-revoked")).unwrap();
    let token_uri = format!("{}/token", tokens.url);
    let oauth = || {
        ProviderSettings::default()
            .project("test-project")
            .location("us-east5")
            .token_uri(token_uri.clone())
    };

    // 1. gcloud's application-default credentials (CLOUDSDK_CONFIG), the refresh-token grant, cached 4 s.
    // A metadata server is there too, but a file comes first.
    set_env(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", None),
        ("GCE_METADATA_HOST", Some(meta.host.as_str())),
        ("GOOGLE_CLOUD_PROJECT", None),
        ("CLOUDSDK_CONFIG", Some(gcloud.to_str().unwrap())),
    ]);
    let r = router(&vertex, oauth());
    let auth = auth_of(&r);
    assert!(auth.starts_with("oauth2 authorized user"), "{auth}");
    assert!(
        auth.contains("application_default_credentials.json"),
        "{auth}"
    );
    for text in ["one", "two"] {
        let out = r.chat(req(text)).await.unwrap();
        let content = out["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(content.contains(text), "{content}");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    r.chat(req("three")).await.unwrap();
    let got = vertex.received();
    let used: Vec<&str> = got
        .iter()
        .map(|c| c.header("authorization").unwrap())
        .collect();
    assert_eq!(
        used,
        [
            "Bearer ya29.user-1",
            "Bearer ya29.user-1",
            "Bearer ya29.user-2"
        ]
    );
    assert!(got[0]
        .path
        .starts_with("/v1/projects/test-project/locations/us-east5/publishers/google/models/"));
    assert_eq!(tokens.seen.lock().unwrap().len(), 2);
    assert!(meta.seen.lock().unwrap().is_empty());

    // GOOGLE_APPLICATION_CREDENTIALS comes before gcloud's file: its refresh token is refused, and the error
    // names the file but holds no secret.
    set_env(&[(
        "GOOGLE_APPLICATION_CREDENTIALS",
        Some(revoked.to_str().unwrap()),
    )]);
    let r = router(&vertex, oauth());
    let env = r
        .chat(req("revoked"))
        .await
        .unwrap_err()
        .to_envelope()
        .to_string();
    assert!(
        env.contains("token endpoint refused the authorized user"),
        "{env}"
    );
    assert!(env.contains("revoked.json"), "{env}");
    assert!(env.contains("Bad Request"), "{env}");
    for secret in [CLIENT_SECRET, "fake-revoked", REFRESH] {
        assert!(!env.contains(secret), "{env}");
    }
    assert_eq!(tokens.seen.lock().unwrap().len(), 3);

    // 2. No file anywhere: the metadata server named by GCE_METADATA_HOST; the project from GOOGLE_CLOUD_PROJECT.
    set_env(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", None),
        ("CLOUDSDK_CONFIG", Some(empty.to_str().unwrap())),
        ("GCE_METADATA_HOST", Some(meta.host.as_str())),
        ("GOOGLE_CLOUD_PROJECT", Some("gce-project")),
    ]);
    vertex.reset();
    let r = router(&vertex, ProviderSettings::default());
    assert!(auth_of(&r).starts_with("oauth2 GCE metadata server"));
    for text in ["a", "b"] {
        r.chat(req(text)).await.unwrap();
    }
    let got = vertex.received();
    assert_eq!(got.len(), 2);
    for c in &got {
        assert_eq!(c.header("authorization"), Some("Bearer ya29.gce-1"));
        assert!(c
            .path
            .starts_with("/v1/projects/gce-project/locations/global/"));
    }
    assert_eq!(meta.seen.lock().unwrap().len(), 1);
    // The mock does check the header: without it, no token.
    let plain = reqwest::get(format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/token",
        meta.url
    ))
    .await
    .unwrap();
    assert_eq!(plain.status(), 403);

    // Without a project anywhere, the endpoint is left out of the plan (never sent to `PROJECT-ID`).
    set_env(&[("GOOGLE_CLOUD_PROJECT", None)]);
    let r = router(&vertex, ProviderSettings::default());
    let env = r.chat(req("no project")).await.unwrap_err().to_envelope();
    let av = &env["error"]["availability"];
    assert_eq!(av["excluded_by"], json!(["settings_missing"]), "{env}");
    let detail = av["excluded"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("`project`"), "{detail}");
    assert_eq!(meta.seen.lock().unwrap().len(), 2, "no token fetched");
    assert_eq!(vertex.received().len(), 2);

    // A metadata host that does not answer fails fast, and says which source it tried.
    let dead = format!("127.0.0.1:{}", closed_port());
    set_env(&[
        ("GCE_METADATA_HOST", Some(dead.as_str())),
        ("GOOGLE_CLOUD_PROJECT", Some("gce-project")),
    ]);
    let r = router(&vertex, ProviderSettings::default());
    let t0 = Instant::now();
    let env = r
        .chat(req("dead"))
        .await
        .unwrap_err()
        .to_envelope()
        .to_string();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(
        env.contains(&format!("GCE metadata server {dead}")),
        "{env}"
    );
    assert!(env.contains("cannot connect"), "{env}");

    // 3. Express mode: an API key and no project; the global path, the key in x-goog-api-key, no token fetched.
    set_env(&[
        ("GCE_METADATA_HOST", Some(meta.host.as_str())),
        ("GOOGLE_CLOUD_PROJECT", None),
    ]);
    vertex.reset();
    let r = router(
        &vertex,
        ProviderSettings::with_key(EXPRESS_KEY).location("us-east5"),
    );
    assert_eq!(auth_of(&r), "header x-goog-api-key (Vertex express mode)");
    let out = r.chat(req("express")).await.unwrap();
    let content = out["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("express"), "{content}");
    let got = vertex.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].path,
        "/v1/publishers/google/models/vertex-upstream-model:generateContent"
    );
    assert_eq!(got[0].header("x-goog-api-key"), Some(EXPRESS_KEY));
    assert_eq!(got[0].header("authorization"), None);
    // Streamed: the same path with `:streamGenerateContent`, the same key header.
    let chunks = common::collect_ok(r.chat_stream(req("streamed"))).await;
    assert!(common::stream_text(&chunks).contains("streamed"));
    let got = vertex.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].path,
        "/v1/publishers/google/models/vertex-upstream-model:streamGenerateContent"
    );
    assert_eq!(got[1].header("x-goog-api-key"), Some(EXPRESS_KEY));
    assert_eq!(meta.seen.lock().unwrap().len(), 2, "no token for a key");

    set_env(&[("GCE_METADATA_HOST", None), ("CLOUDSDK_CONFIG", None)]);
    std::fs::remove_dir_all(&dir).unwrap();
}
