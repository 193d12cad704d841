//! Credential pools against the loopback mock, which answers by credential (`MockServer::fault_for_key`): a
//! revoked key (401) is followed by the next key of the same endpoint and then skipped; a rate-limited key (429)
//! rotates; a key's model allowlist is kept; weights order the draw; when every key fails the plan moves to the
//! next endpoint; no key ever appears in an answer or an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{base, catalog, mocks, P};
use polyroute::{RequestContext, Router, RouterConfig};
use serde_json::{json, Value};

const REVOKED: &str = "sk-test-revoked-fake-0001";
const GOOD: &str = "sk-test-good-fake-0002";
const OTHER: &str = "sk-test-other-fake-0003";

fn router(cat: &str, alpha: Value) -> Router {
    let c = RouterConfig::from_value(&json!({
        "catalog": cat, "read_env": false,
        "timeouts": {"first_token_ms": 60000, "total_ms": 120000},
        "providers": {"alpha": alpha, "beta": {"api_key": OTHER}},
    }))
    .unwrap();
    Router::from_config(&c).unwrap()
}

fn req() -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10,
           "provider": {"order": ["alpha", "beta"]}})
}

/// The bearer tokens the mock received, in order.
fn tokens(m: &polyroute_mock::MockServer) -> Vec<String> {
    m.received()
        .iter()
        .map(|r| {
            r.header("authorization")
                .unwrap_or("")
                .trim_start_matches("Bearer ")
                .to_string()
        })
        .collect()
}

fn no_key_in(text: &str) {
    for k in [REVOKED, GOOD, OTHER] {
        assert!(!text.contains(k), "a key leaked: {text}");
    }
}

#[tokio::test]
async fn a_revoked_key_is_followed_by_the_next_then_skipped() {
    let m = mocks(2).await;
    let cat = catalog(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ]);
    let r = router(&cat, json!({"api_key": REVOKED, "api_keys": [GOOD]}));
    m[0].fault_for_key(REVOKED, "401").unwrap();
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let out = r.chat_with(req(), &ctx).await.unwrap();
    assert_eq!(
        out["provider"], "ALPHA Cloud",
        "the same endpoint, next key"
    );
    assert_eq!(out["choices"][0]["message"]["content"], "m0: hi");
    assert_eq!(tokens(&m[0]), [REVOKED, GOOD]);
    assert_eq!(m[1].calls(), 0);
    no_key_in(&out.to_string());
    // The revoked key rests: the next request goes straight to the good one.
    r.chat(req()).await.unwrap();
    assert_eq!(tokens(&m[0]), [REVOKED, GOOD, GOOD]);
}

#[tokio::test]
async fn a_rate_limited_key_rotates_and_every_key_failing_moves_on() {
    let m = mocks(2).await;
    let cat = catalog(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ]);
    let r = router(&cat, json!({"api_keys": [GOOD, REVOKED]}));
    m[0].fault_for_key(GOOD, "429=30").unwrap();
    let out = r.chat(req()).await.unwrap();
    assert_eq!(out["provider"], "ALPHA Cloud");
    assert_eq!(tokens(&m[0]), [GOOD, REVOKED]);

    // Now the second key is revoked too: the resting first key goes last; then beta serves.
    m[0].reset();
    m[0].fault_for_key(GOOD, "429=30").unwrap();
    m[0].fault_for_key(REVOKED, "401").unwrap();
    let out = r.chat(req()).await.unwrap();
    assert_eq!(out["provider"], "BETA Cloud");
    assert_eq!(tokens(&m[0]), [REVOKED, GOOD]);
    assert_eq!(tokens(&m[1]), [OTHER]);
    no_key_in(&out.to_string());

    // Only alpha, every key refused: the error names no key.
    let mut only = req();
    only["provider"] = json!({"order": ["alpha"], "allow_fallbacks": false});
    let e = r.chat(only).await.unwrap_err();
    no_key_in(&format!("{e} {} {e:?}", e.to_envelope()));
}

#[tokio::test]
async fn model_allowlists_and_weights() {
    let m = mocks(2).await;
    let cat = catalog(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ]);
    // The only key of alpha is for another model: alpha is never called for test/model.
    let r = router(
        &cat,
        json!({"credentials": [{"key": GOOD, "models": ["other/model"]}]}),
    );
    let out = r.chat(req()).await.unwrap();
    assert_eq!(out["provider"], "BETA Cloud");
    assert_eq!(m[0].calls(), 0);
    // Allowed by the provider's model id.
    let r = router(
        &cat,
        json!({"credentials": [{"key": GOOD, "models": ["alpha-upstream-model"]}]}),
    );
    assert_eq!(r.chat(req()).await.unwrap()["provider"], "ALPHA Cloud");

    // Weight 0 is never drawn while a weighted key is usable.
    m[0].reset();
    let r = router(
        &cat,
        json!({"credentials": [{"key": REVOKED, "weight": 0}, {"key": GOOD, "weight": 5}]}),
    );
    for _ in 0..5 {
        r.chat(req()).await.unwrap();
    }
    assert_eq!(tokens(&m[0]), vec![GOOD; 5]);
}
