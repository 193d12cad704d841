//! The `polyroute serve` and `polyroute keys` binaries: startup line, keys, SIGTERM, and `kill -9` under load
//! (every acknowledged generation is still in the ledger after a restart).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use serve_support::{
    acknowledged_chat, catalog, chat, spawn_serve, sse_events, ServeProcess, FAKE,
};

type Server = ServeProcess;

/// What a gateway process needs: a data directory, the two labeled mocks, a config naming them, and a key
/// without a credit limit. The directory and mocks live as long as the value.
struct Gateway {
    _dir: tempfile::TempDir,
    _mocks: (polyroute_mock::MockServer, polyroute_mock::MockServer),
    data: std::path::PathBuf,
    cfg: std::path::PathBuf,
    key: String,
}

async fn gateway() -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alpha = polyroute_mock::MockServer::labeled("alpha").await.unwrap();
    let beta = polyroute_mock::MockServer::labeled("beta").await.unwrap();
    let cfg = write_config(dir.path(), &alpha.url(), &beta.url());
    let key = create_key(&data, None);
    Gateway {
        _dir: dir,
        _mocks: (alpha, beta),
        data,
        cfg,
        key,
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_polyroute")
}

fn write_config(dir: &Path, alpha: &str, beta: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("catalog.json"), catalog().to_string()).unwrap();
    let cfg = format!(
        r#"catalog = "catalog.json"
env_keys = false

[server]
keepalive_ms = 1000

[providers.alpha]
api_key = "{FAKE}"
base_url = "{alpha}/v1"

[providers.beta]
api_key = "{FAKE}"
base_url = "{beta}/v1"
"#
    );
    let p = dir.join("polyroute.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn start(config: &Path, data: &Path) -> Server {
    start_with(config, data, &[])
}

fn start_with(config: &Path, data: &Path, extra: &[&str]) -> Server {
    spawn_serve(config, data, extra, Stdio::inherit())
}

fn create_key(data: &Path, limit: Option<&str>) -> String {
    let mut c = Command::new(bin());
    c.args(["keys", "create", "--label", "proc", "--data-dir"])
        .arg(data);
    if let Some(l) = limit {
        c.args(["--limit", l]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().last().unwrap().trim().to_string()
}

/// `GET url` with the gateway key.
async fn get(c: &reqwest::Client, url: String, key: &str) -> reqwest::Response {
    c.get(url).bearer_auth(key).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_commands_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alpha = polyroute_mock::MockServer::labeled("alpha").await.unwrap();
    let cfg = write_config(dir.path(), &alpha.url(), &alpha.url());
    let key = create_key(&data, Some("5.00"));
    assert!(key.starts_with("sk-pr-v1-"));
    let list = Command::new(bin())
        .args(["keys", "list", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["limit"], json!(5.0));
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&key));
    let mut srv = start(&cfg, &data);
    let c = reqwest::Client::new();
    let ok = |k: &str| {
        c.post(format!("{}/api/v1/chat/completions", srv.url))
            .bearer_auth(k.to_string())
            .json(&chat("acme/chat", "hi"))
            .send()
    };
    assert_eq!(ok(&key).await.unwrap().status(), 200);
    // a key created while the server runs works; a revoked one stops working
    let key2 = create_key(&data, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ok(&key2).await.unwrap().status(), 200);
    let id = rows[0]["id"].as_str().unwrap();
    let rv = Command::new(bin())
        .args(["keys", "revoke", id, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(rv.status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ok(&key).await.unwrap().status(), 401);
    // SIGTERM: clean exit
    let pid = srv.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let st = srv.child.wait().unwrap();
    assert!(st.success(), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_keeps_every_acknowledged_generation() {
    let Gateway {
        _dir,
        _mocks,
        data,
        cfg,
        key,
    } = gateway().await;
    let mut srv = start(&cfg, &data);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, url, key, acked) = (c.clone(), srv.url.clone(), key.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..10_000 {
                let mut body = chat("acme/chat", &format!("load {i} {n}"));
                let stream = (i + n) % 3 == 0;
                body["stream"] = json!(stream);
                let id = acknowledged_chat(&c, &url, &key, &body).await;
                match id {
                    Some(id) => acked.lock().unwrap().push(id),
                    None => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    srv.child.kill().unwrap(); // SIGKILL
    srv.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!("acknowledged {} generations before kill -9", acked.len());
    assert!(acked.len() > 20, "only {} acknowledged", acked.len());
    drop(srv);
    let srv = start(&cfg, &data);
    let mut missing = Vec::new();
    for id in &acked {
        let r = get(&c, format!("{}/api/v1/generation?id={id}", srv.url), &key).await;
        if r.status() != 200 {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged generations lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    // spend totals are rebuilt from the ledger
    let k: Value = get(&c, format!("{}/api/v1/key", srv.url), &key)
        .await
        .json()
        .await
        .unwrap();
    assert!(k["data"]["usage"].as_f64().unwrap() > 0.0);
}

/// Several worker threads, each owning its connections (and busy polling): concurrent clients on separate
/// connections are all served, every generation id is distinct, and the shared ledger sees every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_threads_share_keys_ledger_and_ids() {
    let Gateway {
        _dir,
        _mocks,
        data,
        cfg,
        key,
    } = gateway().await;

    let bad = Command::new(bin())
        .args(["serve", "--port", "0", "--workers", "0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success(), "--workers 0 accepted");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--workers"));

    // A removed option (`--spin-us`) is still accepted, and ignored.
    let srv = start_with(&cfg, &data, &["--workers", "3", "--spin-us", "200"]);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (url, key) = (srv.url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            // One client per task: its own keep-alive connection, dealt to a worker in turn.
            let c = reqwest::Client::new();
            let mut ids = Vec::new();
            for n in 0..10 {
                let mut body = chat("acme/chat", &format!("worker {i} {n}"));
                let stream = n % 2 == 1;
                body["stream"] = json!(stream);
                let r = c
                    .post(format!("{url}/api/v1/chat/completions"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let header = r.headers()["x-generation-id"].to_str().unwrap().to_string();
                let text = r.text().await.unwrap();
                let id = if stream {
                    let ev = sse_events(&text);
                    assert_eq!(ev.last(), Some(&json!("[DONE]")), "{text}");
                    ev[0]["id"].as_str().unwrap().to_string()
                } else {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
                    v["id"].as_str().unwrap().to_string()
                };
                assert_eq!(id, header);
                ids.push(id);
            }
            ids
        }));
    }
    let mut all = std::collections::BTreeSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(all.insert(id.clone()), "duplicate generation id {id}");
        }
    }
    assert_eq!(all.len(), 120);
    let c = reqwest::Client::new();
    for id in all.iter().step_by(17) {
        let r = get(&c, format!("{}/api/v1/generation?id={id}", srv.url), &key).await;
        assert_eq!(r.status(), 200, "{id}");
    }
    let act: Value = get(&c, format!("{}/api/v1/activity", srv.url), &key)
        .await
        .json()
        .await
        .unwrap();
    let requests: u64 = act["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(requests, 120, "{act}");
}

/// `polyroute keys … --config F` and `polyroute serve --config F` use the same data directory (the config's
/// `[server] data_dir`), so a key created that way is known to the gateway; before, `keys` ignored the config
/// and wrote to the default directory (401 at the gateway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_read_the_configured_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = polyroute_mock::MockServer::labeled("alpha").await.unwrap();
    let cfg = write_config(dir.path(), &alpha.url(), &alpha.url());
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[server]\n", "[server]\ndata_dir = \"configured\"\n");
    std::fs::write(&cfg, text).unwrap();
    // Neither the default directories nor the working directory may be where the key lands.
    let elsewhere = dir.path().join("home");
    let out = Command::new(bin())
        .args(["keys", "create", "--label", "cfg", "--config"])
        .arg(&cfg)
        .env("POLYROUTE_DATA_DIR", &elsewhere)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    assert!(dir.path().join("configured/keys.json").is_file());
    assert!(!elsewhere.join("keys.json").exists());
    let mut child = Command::new(bin())
        .args(["serve", "--port", "0", "--config"])
        .arg(&cfg)
        .env("POLYROUTE_DATA_DIR", &elsewhere)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let srv = Server {
        child,
        url: line.trim().trim_start_matches("listening on ").to_string(),
    };
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/api/v1/chat/completions", srv.url))
        .bearer_auth(&key)
        .json(&chat("acme/chat", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list = Command::new(bin())
        .args(["keys", "list", "--json", "--config"])
        .arg(&cfg)
        .env("POLYROUTE_DATA_DIR", &elsewhere)
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
}
