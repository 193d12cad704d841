//! Bedrock against the loopback Python mock of `tests/cloud/bedrock_mock.py`, which re-signs every request with
//! botocore and refuses a wrong signature. `scripts/test.d/bedrock.sh` starts the mock (fake credentials, region
//! us-west-2), sets the AWS environment and the shared files, and runs this test with `POLYROUTE_BEDROCK_MOCK`
//! set; without it the test has nothing to talk to and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{catalog, collect_ok, relaxed_timeouts, stream_text, P};
use polyroute::{Options, ProviderSettings, Router};
use serde_json::{json, Value};

const MODEL_ID: &str = "anthropic.claude-test-v1:0";

fn mock() -> Option<String> {
    let m = std::env::var("POLYROUTE_BEDROCK_MOCK").ok();
    if m.is_none() {
        eprintln!("POLYROUTE_BEDROCK_MOCK is not set: run scripts/test.d/bedrock.sh");
    }
    m
}

/// `bedrock` (and `throttled`, whose model the mock throttles) speaking Converse at the mock.
fn router(url: &str, bedrock: ProviderSettings) -> Router {
    let cat = catalog(&[
        P("throttled", "bedrock-converse", url.to_string()),
        P("bedrock", "bedrock-converse", url.to_string()),
    ])
    .replace("bedrock-upstream-model", MODEL_ID);
    Router::builder()
        .catalog_json(cat)
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: true,
            ..Options::default()
        })
        .provider("bedrock", bedrock)
        .provider(
            "throttled",
            ProviderSettings::default()
                .base_url(url)
                .region("us-west-2"),
        )
        .build()
        .unwrap()
}

fn settings(url: &str) -> ProviderSettings {
    ProviderSettings::default()
        .base_url(url)
        .region("us-west-2")
}

fn req(order: &[&str], text: &str) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": text}], "max_tokens": 50,
           "provider": {"order": order, "allow_fallbacks": order.len() > 1}})
}

async fn received(url: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{url}/_requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn bedrock_signed_requests_verify_with_botocore() {
    let Some(url) = mock() else { return };

    // 1. Keys and session token from the environment; the region from the settings.
    let r = router(&url, settings(&url));
    let out = r.chat(req(&["bedrock"], "hello from env")).await.unwrap();
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "echo: hello from env"
    );
    assert_eq!(out["usage"]["prompt_tokens"], 11);
    let got = received(&url).await;
    let last = got.last().unwrap();
    assert_eq!(last["refused"], Value::Null, "{last}");
    assert_eq!(last["auth"], "sigv4");
    assert_eq!(last["access_key_id"], "AKIDPOLYROUTEENV1");
    assert_eq!(last["session_token"], true);
    assert_eq!(last["path"], "/model/anthropic.claude-test-v1%3A0/converse");
    assert_eq!(
        last["body"]["messages"][0]["content"][0]["text"],
        "hello from env"
    );
    assert_eq!(last["body"]["inferenceConfig"]["maxTokens"], 50);

    // 2. ConverseStream: the mock's event-stream frames, CRCs included, split across reads.
    let mut sreq = req(&["bedrock"], "stream me");
    sreq["stream"] = json!(true);
    let chunks = collect_ok(r.chat_stream(sreq)).await;
    assert_eq!(stream_text(&chunks), "echo: stream me");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(chunks.iter().any(|c| c["usage"]["completion_tokens"] == 3));
    assert_eq!(
        received(&url).await.last().unwrap()["path"],
        "/model/anthropic.claude-test-v1%3A0/converse-stream"
    );

    // 3. A profile of the shared files; the plan names the scheme, region and source, never the secret.
    let r = router(&url, settings(&url).aws_profile("dev"));
    let plan = r.plan(&req(&["bedrock"], "x")).unwrap();
    assert_eq!(plan["attempts"][0]["dialect"], "bedrock-converse");
    assert_eq!(
        plan["attempts"][0]["auth"],
        "sigv4 bedrock us-west-2 (profile dev)"
    );
    assert!(!plan.to_string().contains("fake-dev-secret"));
    let out = r.chat(req(&["bedrock"], "from a profile")).await.unwrap();
    assert_eq!(
        out["choices"][0]["message"]["content"],
        "echo: from a profile"
    );
    let got = received(&url).await;
    assert_eq!(got.last().unwrap()["access_key_id"], "AKIDPOLYROUTEDEV1");
    assert_eq!(got.last().unwrap()["session_token"], false);

    // 4. A wrong secret: botocore's signature differs, the mock refuses, the caller sees an auth error.
    let r = router(&url, settings(&url).aws_profile("bad"));
    let e = r.chat(req(&["bedrock"], "bad secret")).await.unwrap_err();
    assert_eq!(e.http_status(), 403, "{}", e.to_envelope());
    assert!(e
        .to_envelope()
        .to_string()
        .contains("signature we calculated"));
    assert_eq!(
        received(&url).await.last().unwrap()["refused"],
        "InvalidSignatureException"
    );

    // 5. Signed for another region than the endpoint's: refused too.
    let r = router(
        &url,
        ProviderSettings::default()
            .base_url(&url)
            .region("eu-central-1"),
    );
    assert!(r.chat(req(&["bedrock"], "wrong region")).await.is_err());

    // 6. A Bedrock API key goes as a bearer token, unsigned.
    let r = router(&url, settings(&url).api_key("fake-bedrock-api-key"));
    let out = r.chat(req(&["bedrock"], "bearer")).await.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "echo: bearer");
    assert_eq!(received(&url).await.last().unwrap()["auth"], "bearer");

    // 7. ThrottlingException (429, named in x-amzn-ErrorType) fails over to the next endpoint.
    let r = router(&url, settings(&url));
    let out = r
        .chat(req(&["throttled", "bedrock"], "after a 429"))
        .await
        .unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "echo: after a 429");
    let got = received(&url).await;
    let n = got.len();
    assert_eq!(
        got[n - 2]["path"],
        "/model/throttled-upstream-model/converse"
    );
    assert_eq!(got[n - 2]["refused"], Value::Null);
    let e = r
        .chat(req(&["throttled"], "only throttled"))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 429, "{}", e.to_envelope());
}
