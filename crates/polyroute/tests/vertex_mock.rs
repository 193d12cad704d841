//! Vertex AI against the loopback token endpoint and Vertex mock of `tests/cloud/vertex_mock.py`, which verifies
//! each JWT assertion with the service account's public key. `scripts/test.d/vertex.sh` makes the key pairs and
//! the key files, starts the mock and runs this test with `POLYROUTE_VERTEX_MOCK` set; without it the test has
//! nothing to talk to and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{catalog, relaxed_timeouts, P};
use polyroute::{Options, ProviderSettings, Router};
use serde_json::{json, Value};

fn router(url: &str, s: ProviderSettings) -> Router {
    let base = format!("{url}/v1/projects/PROJECT-ID/locations/global");
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

async fn log(url: &str) -> Value {
    reqwest::get(format!("{url}/_log"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn vertex_tokens_from_a_service_account() {
    let Ok(url) = std::env::var("POLYROUTE_VERTEX_MOCK") else {
        eprintln!("POLYROUTE_VERTEX_MOCK is not set: run scripts/test.d/vertex.sh");
        return;
    };
    let s = ProviderSettings::default()
        .project("test-project")
        .location("us-east5");
    let r = router(&url, s.clone());
    let plan = r.plan(&req("x")).unwrap();
    assert!(plan["attempts"][0]["auth"]
        .as_str()
        .unwrap()
        .starts_with("oauth2 service account"));
    for text in ["one", "two"] {
        let out = r.chat(req(text)).await.unwrap();
        assert_eq!(
            out["choices"][0]["message"]["content"],
            format!("echo: {text}")
        );
    }
    // The token lives 4 s and is refreshed with half its life left: after 2.5 s a new one is fetched.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let out = r.chat(req("three")).await.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "echo: three");
    let l = log(&url).await;
    assert_eq!(l["issued"], json!(["ya29.fake-1", "ya29.fake-2"]), "{l}");
    let used: Vec<&str> = l["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["token"].as_str().unwrap())
        .collect();
    assert_eq!(used, ["ya29.fake-1", "ya29.fake-1", "ya29.fake-2"]);
    assert!(l["calls"][0]["path"]
        .as_str()
        .unwrap()
        .starts_with("/v1/projects/test-project/locations/us-east5/publishers/google/models/"));

    // A key the token endpoint does not know: its signature fails there, and the caller is told so.
    let other = std::env::var("POLYROUTE_VERTEX_OTHER_KEY").unwrap();
    let r = router(&url, s.credentials_file(other));
    let e = r.chat(req("bad key")).await.unwrap_err();
    let env = e.to_envelope().to_string();
    assert!(env.contains("token endpoint refused"), "{env}");
    assert!(!env.contains("PRIVATE KEY"));
    assert_eq!(log(&url).await["refused"], json!(["signature"]));
}
