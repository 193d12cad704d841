//! Shared fixtures of the gateway tests: a small catalog whose providers point at loopback mocks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use polyroute::ProviderConfig;
use polyroute_cli::serve::{self, Config, Gateway, Running};
use polyroute_mock::MockServer;
use serde_json::{json, Value};

fn endpoint(slug: &str, price: &str) -> Value {
    json!({"provider": slug, "provider_name": format!("{} Cloud", slug.to_uppercase()), "tag": slug,
           "provider_model_id": format!("{slug}-upstream"), "context_length": 32768,
           "pricing": {"prompt": price, "completion": price},
           "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "stream"]})
}

fn model(id: &str, slugs: &[&str], price: &str, ctx: u64, created: i64) -> Value {
    json!({"id": id, "name": id, "created": created, "context_length": ctx,
           "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": "Other"},
           "pricing": {"prompt": price, "completion": price},
           "top_provider": {"context_length": ctx, "max_completion_tokens": 4096, "is_moderated": false},
           "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "stream"],
           "endpoints": slugs.iter().map(|s| endpoint(s, price)).collect::<Vec<_>>()})
}

/// `acme/chat` (alpha, beta), `acme/chat:free` (alpha), `acme/big` (beta, pricier, longer context),
/// `acme/image` (image output).
pub fn catalog() -> Value {
    let provs: Vec<Value> = ["alpha", "beta"]
        .iter()
        .map(|s| json!({"slug": s, "name": format!("{} Cloud", s.to_uppercase()), "dialect": "openai",
                        "base_url": "http://127.0.0.1:9/v1", "api_key_env": format!("POLYROUTE_TEST_NEVER_SET_{s}")}))
        .collect();
    let mut image = model("acme/image", &["alpha"], "0.000002", 8192, 1_700_000_003);
    image["architecture"]["output_modalities"] = json!(["image"]);
    image["supported_parameters"] = json!(["max_tokens"]);
    json!({"version": 1, "providers": provs, "models": [
        model("acme/chat", &["alpha", "beta"], "0.000001", 32768, 1_700_000_000),
        model("acme/chat:free", &["alpha"], "0", 32768, 1_700_000_001),
        model("acme/big", &["beta"], "0.00001", 200_000, 1_700_000_002),
        image,
    ]})
}

pub const FAKE: &str = "sk-test-fake";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub alpha: MockServer,
    pub beta: MockServer,
    pub cfg: Config,
}

impl Env {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let alpha = MockServer::labeled("alpha").await.unwrap();
        let beta = MockServer::labeled("beta").await.unwrap();
        let cat = dir.path().join("catalog.json");
        std::fs::write(&cat, catalog().to_string()).unwrap();
        let mut cfg = Config::default();
        cfg.router.catalog = Some(Value::String(cat.to_string_lossy().into_owned()));
        cfg.router.read_env = Some(false);
        for (slug, m) in [("alpha", &alpha), ("beta", &beta)] {
            cfg.router.providers.insert(
                slug.into(),
                ProviderConfig {
                    api_key: Some(FAKE.into()),
                    base_url: Some(format!("{}/v1", m.url())),
                    ..ProviderConfig::default()
                },
            );
        }
        cfg.router.limits.free_per_minute = Some(2);
        cfg.server.keepalive_ms = Some(1000);
        cfg.server.body_limit = Some(64 * 1024);
        cfg.router.timeouts.first_token_ms = Some(2000);
        cfg.router.timeouts.idle_ms = Some(500);
        Self {
            dir,
            alpha,
            beta,
            cfg,
        }
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn key(&self, limit: Option<f64>) -> String {
        serve::keys::create(
            self.data(),
            "test",
            limit.map(|l| rust_decimal::Decimal::try_from(l).unwrap()),
        )
        .unwrap()
        .1
    }

    pub async fn start(&self) -> Running {
        let gw = Arc::new(Gateway::new(&self.cfg, self.data()).unwrap());
        serve::start(gw, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    }
}

pub fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 50})
}

/// SSE `data:` payloads of a body (comments skipped), `[DONE]` kept as a string.
pub fn sse_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|ev| ev.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_string())))
        .collect()
}

/// One chat request (`body`, streamed when its `stream` is true) to the gateway at `url`: the generation id when
/// the answer was acknowledged in full (a 200 and, for a stream, the usage chunk and `[DONE]`), else None (the
/// gateway went away, refused, or cut the answer).
pub async fn acknowledged_chat(
    c: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> Option<String> {
    let r = c
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let text = r.text().await.ok()?;
    if body["stream"] == json!(true) {
        let ev = sse_events(&text);
        if ev.last() != Some(&json!("[DONE]")) {
            return None;
        }
        ev.iter()
            .find(|e| e.get("usage").is_some_and(|u| !u.is_null()))
            .and_then(|e| e["id"].as_str().map(str::to_string))
    } else {
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
    }
}

/// A `polyroute serve` child process, killed (SIGKILL) and reaped when dropped, whatever happened.
pub struct ServeProcess {
    pub child: Child,
    pub url: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the built `polyroute serve` on a free loopback port with `config`, the data directory `data` and `extra`
/// arguments; returns once it printed `listening on <url>` (its stderr goes to `stderr`).
pub fn spawn_serve(config: &Path, data: &Path, extra: &[&str], stderr: Stdio) -> ServeProcess {
    spawn_serve_env(config, data, extra, stderr, |c| c)
}

/// [`spawn_serve`] with the child's environment changed by `env` first.
pub fn spawn_serve_env(
    config: &Path,
    data: &Path,
    extra: &[&str],
    stderr: Stdio,
    env: impl FnOnce(&mut Command) -> &mut Command,
) -> ServeProcess {
    let mut child = env(&mut Command::new(env!("CARGO_BIN_EXE_polyroute")))
        .args(["serve", "--port", "0", "--config"])
        .arg(config)
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    ServeProcess { child, url }
}
