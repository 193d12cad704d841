//! Azure OpenAI and Azure AI Foundry against the loopback mock: the exact path and `api-version` query of each API
//! (v1, dated deployments, Foundry models), the `api-key` header (and no `Authorization`), the deployment as the
//! body's `model`, an Entra ID bearer token, a stream, a 429 with `Retry-After`, and the `settings_missing`
//! exclusion of an Azure provider that has a key but no resource. The expected URLs are written out from Azure's
//! documented forms, not computed with the code under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{catalog, relaxed_timeouts, P};
use futures::StreamExt;
use polyroute::{AzureSettings, Options, ProviderSettings, Router, RouterConfig};
use polyroute_mock::{MockServer, Received};
use serde_json::{json, Value};

const AZ_KEY: &str = "azure-test-fake-key-0123";

fn router(base: String, s: ProviderSettings) -> Router {
    Router::builder()
        .catalog_json(catalog(&[P("azure", "azure-openai", base)]))
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            ..Options::default()
        })
        .provider("azure", s)
        .build()
        .unwrap()
}

fn req(text: &str) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": text}], "max_tokens": 20,
           "provider": {"order": ["azure"], "allow_fallbacks": false}})
}

fn only(m: &MockServer) -> Received {
    let r = m.received();
    assert_eq!(r.len(), 1, "{r:?}");
    r.into_iter().next().unwrap()
}

/// The request carries the key in `api-key` only.
fn assert_api_key(r: &Received) {
    assert_eq!(r.header("api-key"), Some(AZ_KEY));
    assert_eq!(r.header("authorization"), None);
}

#[tokio::test]
async fn v1_api_sends_the_deployment_as_model() {
    let m = MockServer::labeled("az").await.unwrap();
    let s = ProviderSettings::with_key(AZ_KEY).azure(AzureSettings {
        deployments: vec![("test/model".into(), "gpt4o-prod".into())],
        ..AzureSettings::default()
    });
    let r = router(format!("{}/openai/v1", m.url()), s);
    let plan = r.plan(&req("x")).unwrap();
    assert_eq!(plan["attempts"][0]["dialect"], "azure-openai", "{plan}");
    assert_eq!(plan["attempts"][0]["auth"], "header api-key (azure v1)");
    let out = r.chat(req("hello azure")).await.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "az: hello azure");
    let got = only(&m);
    assert_eq!(got.path, "/openai/v1/chat/completions");
    assert_eq!(got.query, "");
    assert_api_key(&got);
    assert_eq!(got.body["model"], "gpt4o-prod");
}

#[tokio::test]
async fn dated_api_puts_the_deployment_in_the_path_and_streams() {
    let m = MockServer::labeled("az").await.unwrap();
    let s = ProviderSettings::with_key(AZ_KEY).azure(AzureSettings {
        deployment: Some("chat-dep".into()),
        api_version: Some("2024-10-21".into()),
        ..AzureSettings::default()
    });
    let r = router(format!("{}/openai", m.url()), s);
    let out = r.chat(req("dated")).await.unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "az: dated");
    let got = only(&m);
    assert_eq!(got.path, "/openai/deployments/chat-dep/chat/completions");
    assert_eq!(got.query, "api-version=2024-10-21");
    assert_api_key(&got);
    assert_eq!(got.body["model"], "chat-dep");

    m.reset();
    let mut sreq = req("stream me");
    sreq["stream"] = json!(true);
    let chunks: Vec<polyroute::Result<Value>> = r.chat_stream(sreq).collect().await;
    assert!(chunks.iter().all(Result::is_ok), "{chunks:?}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "az: stream me");
    let got = only(&m);
    assert_eq!(got.path, "/openai/deployments/chat-dep/chat/completions");
    assert_eq!(got.query, "api-version=2024-10-21");
    assert_eq!(got.body["stream"], true);
    assert_api_key(&got);
}

#[tokio::test]
async fn foundry_models_api_and_an_entra_token() {
    let m = MockServer::labeled("az").await.unwrap();
    let s = ProviderSettings::default().azure(AzureSettings {
        api: Some("foundry".into()),
        ad_token: Some(polyroute::ApiKey::new("ey-entra-fake-token")),
        ..AzureSettings::default()
    });
    let r = router(format!("{}/models", m.url()), s);
    assert!(
        r.credentials().contains("azure"),
        "an Entra token is a credential"
    );
    let plan = r.plan(&req("x")).unwrap();
    assert_eq!(plan["attempts"][0]["auth"], "bearer (Entra ID token)");
    r.chat(req("foundry")).await.unwrap();
    let got = only(&m);
    assert_eq!(got.path, "/models/chat/completions");
    assert_eq!(got.query, "api-version=2024-05-01-preview");
    assert_eq!(
        got.header("authorization"),
        Some("Bearer ey-entra-fake-token")
    );
    assert_eq!(got.header("api-key"), None);
    // No deployment configured: the catalog's model id for the provider.
    assert_eq!(got.body["model"], "azure-upstream-model");
}

#[tokio::test]
async fn rate_limit_maps_with_retry_after() {
    let m = MockServer::labeled("az").await.unwrap();
    let r = router(
        format!("{}/openai/v1", m.url()),
        ProviderSettings::with_key(AZ_KEY),
    );
    m.script(["429=7"]).unwrap();
    let e = r.chat(req("x")).await.unwrap_err();
    assert_eq!(e.http_status(), 429, "{e}");
    assert_eq!(e.retry_after(), Some(7.0));
    assert_eq!(only(&m).path, "/openai/v1/chat/completions");
}

#[tokio::test]
async fn config_keys_route_and_a_missing_resource_is_excluded() {
    let m = MockServer::labeled("az").await.unwrap();
    // The catalog's placeholder URL, as in the embedded catalog.
    let cat = catalog(&[P(
        "azure",
        "azure-openai",
        "https://YOUR-RESOURCE.openai.azure.com/openai/v1".into(),
    )]);
    let unconfigured = RouterConfig::from_value(&json!({
        "catalog": cat, "read_env": false,
        "providers": {"azure": {"api_key": AZ_KEY}},
    }))
    .unwrap();
    let r = Router::from_config(&unconfigured).unwrap();
    let e = r.chat(req("x")).await.unwrap_err();
    let env = e.to_envelope();
    let av = &env["error"]["availability"];
    assert_eq!(av["excluded_by"], json!(["settings_missing"]), "{env}");
    assert_eq!(av["excluded"][0]["reason"], "settings_missing");
    let detail = av["excluded"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("`resource`") && detail.contains("`base_url`"),
        "{detail}"
    );
    assert!(!env.to_string().contains(AZ_KEY));
    // Credentials given as a plan input describe a setup of their own (the conformance runners use this).
    let inputs = polyroute::PlanInputs {
        credentials: Some(vec!["azure".into()]),
        ..Default::default()
    };
    let chat = polyroute::ChatRequest::from_value(&req("x")).unwrap();
    let p = r.plan_with(&chat, &inputs).unwrap();
    assert_eq!(p.attempts[0].provider, "azure");
    assert_eq!(m.calls(), 0);

    // The same provider configured through the one config type (TOML, Python and Node read it alike).
    let configured = RouterConfig::from_value(&json!({
        "catalog": cat, "read_env": false,
        "providers": {"azure": {"apiKey": AZ_KEY, "base_url": format!("{}/openai", m.url()),
                                "deployments": {"azure-upstream-model": "mapped-dep"},
                                "apiVersion": "2025-01-01-preview"}},
    }))
    .unwrap();
    let r = Router::from_config(&configured).unwrap();
    r.chat(req("configured")).await.unwrap();
    let got = only(&m);
    assert_eq!(got.path, "/openai/deployments/mapped-dep/chat/completions");
    assert_eq!(got.query, "api-version=2025-01-01-preview");
    assert_api_key(&got);

    // Azure settings on a provider of another dialect, and an unknown API, are errors at build.
    for bad in [
        json!({"providers": {"openai": {"deployment": "d"}}}),
        json!({"providers": {"azure": {"resource": "r", "azure_api": "classic"}}}),
    ] {
        let c = RouterConfig::from_value(&bad).unwrap();
        assert!(Router::from_config(&c).is_err(), "{bad}");
    }
}
