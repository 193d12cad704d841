//! Shared fixtures: small catalogs whose providers point at in-process mocks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use polyroute::{Options, ProviderSettings, Router, RouterBuilder, Timeouts};
use polyroute_mock::MockServer;
use serde_json::{json, Value};

pub const KEY: &str = "sk-test-fake-0123456789";

/// One provider of the fixture: slug, dialect, base URL.
pub struct P<'a>(pub &'a str, pub &'a str, pub String);

pub fn base(m: &MockServer, dialect: &str) -> String {
    match dialect {
        "openai" => format!("{}/v1", m.url()),
        _ => m.url(),
    }
}

fn endpoint(slug: &str, price: &str) -> Value {
    json!({"provider": slug, "provider_name": format!("{} Cloud", slug.to_uppercase()), "tag": slug,
           "provider_model_id": format!("{slug}-upstream-model"), "context_length": 32768,
           "pricing": {"prompt": price, "completion": price},
           "supported_parameters": ["max_tokens", "temperature", "tools", "stream"]})
}

fn model(id: &str, slugs: &[&str], price: &str) -> Value {
    json!({"id": id, "name": id, "created": 1_700_000_000, "context_length": 32768,
           "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": "Other"},
           "pricing": {"prompt": price, "completion": price},
           "top_provider": {"context_length": 32768, "max_completion_tokens": 4096, "is_moderated": false},
           "supported_parameters": ["max_tokens", "temperature", "tools", "stream"],
           "endpoints": slugs.iter().map(|s| endpoint(s, price)).collect::<Vec<_>>()})
}

/// A catalog with `test/model` served by every provider given (in that order), plus `test/free:free`
/// served by the first one at price 0.
pub fn catalog(providers: &[P<'_>]) -> String {
    let slugs: Vec<&str> = providers.iter().map(|p| p.0).collect();
    let provs: Vec<Value> = providers
        .iter()
        .map(|P(s, d, u)| json!({"slug": s, "name": format!("{} Cloud", s.to_uppercase()), "dialect": d, "base_url": u,
                                "api_key_env": format!("POLYROUTE_TEST_NEVER_SET_{}", s.to_uppercase())}))
        .collect();
    json!({"version": 1, "providers": provs, "models": [
        model("test/model", &slugs, "0.000001"),
        model("test/free:free", &slugs[..1], "0"),
    ]})
    .to_string()
}

/// Short timeouts for a provider a test makes stall: a stall injected by the mock lasts minutes, so these only
/// need to be far below that, not tight.
pub fn fast_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        first_token: Duration::from_millis(1000),
        idle: Duration::from_millis(1000),
        total: Duration::from_secs(60),
    }
}

/// Router-wide timeouts: generous, so that a loaded machine (load average 5+ on 2 cores) never turns a healthy
/// loopback answer into a timeout. Tests that want a timeout give the stalling provider [`fast_timeouts`].
pub fn relaxed_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(30),
        first_token: Duration::from_secs(60),
        idle: Duration::from_secs(60),
        total: Duration::from_secs(180),
    }
}

/// Give `slug` (a provider a test makes stall) [`fast_timeouts`]; the others keep the relaxed ones.
pub fn with_fast(b: RouterBuilder, slug: &str) -> RouterBuilder {
    b.provider(
        slug,
        ProviderSettings::with_key(KEY).timeouts(fast_timeouts()),
    )
}

pub fn builder(providers: &[P<'_>]) -> RouterBuilder {
    let mut b = Router::builder()
        .catalog_json(catalog(providers))
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            ..Options::default()
        });
    for P(slug, _, _) in providers {
        b = b.provider(*slug, ProviderSettings::with_key(KEY));
    }
    b
}

/// A request pinned to an order of providers (deterministic, no sticky routing).
pub fn req(order: &[&str], text: &str) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": text}], "max_tokens": 100,
           "provider": {"order": order}})
}

pub async fn mocks(n: usize) -> Vec<MockServer> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(MockServer::labeled(&format!("m{i}")).await.unwrap());
    }
    v
}

/// A port that refuses connections (bound then closed).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

/// Parameters every endpoint of [`rich_catalog`] lists.
pub const RICH_PARAMS: &[&str] = &[
    "max_tokens",
    "temperature",
    "stream",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning",
    "include_reasoning",
];

/// One provider of [`rich_catalog`]: slug, dialect, base URL and supported parameters beyond [`RICH_PARAMS`].
pub struct Rich<'a>(pub &'a str, pub &'a str, pub String, pub &'a [&'a str]);

/// A catalog with `test/rich` (text and image input, tools, JSON output, reasoning) served by every provider
/// given, each with its own extra supported parameters (`structured_outputs`, `logprobs`, …).
pub fn rich_catalog(providers: &[Rich<'_>]) -> String {
    let provs: Vec<Value> = providers
        .iter()
        .map(|Rich(s, d, u, _)| {
            json!({"slug": s, "name": format!("{} Cloud", s.to_uppercase()), "dialect": d,
            "base_url": u, "api_key_env": format!("POLYROUTE_TEST_NEVER_SET_{}", s.to_uppercase())})
        })
        .collect();
    let endpoints: Vec<Value> = providers
        .iter()
        .map(|Rich(s, _, _, extra)| {
            let params: Vec<&str> = RICH_PARAMS.iter().chain(extra.iter()).copied().collect();
            json!({"provider": s, "provider_name": format!("{} Cloud", s.to_uppercase()), "tag": s,
                   "provider_model_id": format!("{s}-upstream-model"), "context_length": 32768,
                   "max_completion_tokens": 2048,
                   "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                   "supported_parameters": params})
        })
        .collect();
    let mut all: Vec<&str> = RICH_PARAMS.to_vec();
    for Rich(_, _, _, extra) in providers {
        all.extend(extra.iter().copied());
    }
    json!({"version": 1, "providers": provs, "models": [{
        "id": "test/rich", "name": "Rich", "created": 1_700_000_000, "context_length": 32768,
        "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                         "output_modalities": ["text"], "tokenizer": "Other"},
        "pricing": {"prompt": "0.000001", "completion": "0.000002"},
        "top_provider": {"context_length": 32768, "max_completion_tokens": 2048, "is_moderated": false},
        "supported_parameters": all,
        "endpoints": endpoints}]})
    .to_string()
}

/// A router over [`rich_catalog`] with relaxed timeouts; `settings` overrides one provider's settings.
pub fn rich_router(providers: &[Rich<'_>], settings: &[(&str, ProviderSettings)]) -> Router {
    let mut b = Router::builder()
        .catalog_json(rich_catalog(providers))
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            ..Options::default()
        });
    for Rich(slug, _, _, _) in providers {
        b = b.provider(*slug, ProviderSettings::with_key(KEY));
    }
    for (slug, s) in settings {
        b = b.provider(*slug, s.clone());
    }
    b.build().unwrap()
}

/// A `test/rich` request pinned to one provider.
pub fn rich_req(provider: &str, content: Value) -> Value {
    json!({"model": "test/rich", "messages": [{"role": "user", "content": content}], "max_tokens": 200,
           "provider": {"order": [provider], "allow_fallbacks": false}})
}

/// The wire directory of recorded payloads (shared data beside the repository).
pub fn wire_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/wire")
}

/// A mock that can replay recorded payloads.
pub async fn replay_mock() -> MockServer {
    let cfg = polyroute_mock::MockConfig {
        label: "m0".into(),
        wire_dir: Some(wire_dir()),
        ..Default::default()
    };
    MockServer::start_with(cfg, 0).await.unwrap()
}

/// Collect a stream, failing the test with the error if any item is one.
pub async fn collect_ok(s: polyroute::ChatStream) -> Vec<Value> {
    use futures::StreamExt;
    let items: Vec<polyroute::Result<Value>> = s.collect().await;
    items
        .into_iter()
        .map(|c| c.unwrap_or_else(|e| panic!("stream error: {e} {}", e.to_envelope())))
        .collect()
}

/// Concatenated `delta.content` of choice 0.
pub fn stream_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str())
        .collect()
}
