//! Gateway keys shared by replicas through `[state] postgres`: `polyroute keys --config` and `polyroute
//! migrate --config` work on the same store the replicas read; a key created by the CLI works on every replica
//! at once; a revocation is refused by every replica within 1 s; only SHA-256 hashes are stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute_cli::serve::{self, Gateway, Running};
use polyroute_testsupport::{skip_unless_available, PostgresServer};
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn polyroute(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_polyroute"))
        .args(args)
        .env("POLYROUTE_DATA_DIR", "/nonexistent-polyroute-test-dir")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn replica(env: &Env, dir: &Path) -> Running {
    let shared = serve::state::connect(&env.cfg.router.state, env.cfg.ledger.as_deref(), dir)
        .await
        .unwrap();
    let gw = Arc::new(Gateway::with_state(&env.cfg, dir, shared).unwrap());
    serve::start(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

async fn status(url: &str, key: &str) -> u16 {
    client()
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat("acme/chat", "hello"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_keys_and_see_a_revocation_within_a_second() {
    if !skip_unless_available("shared keys test").expect("servers required") {
        return;
    }
    let pg = PostgresServer::start().unwrap();
    let url = pg.create_database("keys").unwrap();
    let mut env = Env::new().await;
    env.cfg.router.state.postgres = Some(url.clone());
    let cfg_file = env.data().join("gateway.toml");
    std::fs::write(&cfg_file, format!("[state]\npostgres = {url:?}\n")).unwrap();
    let cfg_arg = cfg_file.to_str().unwrap();

    // `polyroute migrate` applies the schema the replicas need; a second run has nothing to do.
    let (ok, out, err) = polyroute(&["migrate", "--config", cfg_arg]);
    assert!(
        ok && out.contains("applied migrations 1, 2, 3"),
        "{out}{err}"
    );
    let (ok, out, _) = polyroute(&["migrate", "--config", cfg_arg]);
    assert!(ok && out.contains("up to date"), "{out}");

    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (
        replica(&env, dirs[0].path()).await,
        replica(&env, dirs[1].path()).await,
    );

    // A key created by the CLI after the replicas started works on both at once.
    let (ok, out, err) = polyroute(&[
        "keys", "--config", cfg_arg, "create", "--label", "shared", "--limit", "2",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("postgres 127.0.0.1:"), "{out}");
    let key = out.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("sk-pr-v1-"), "{out}");
    assert_eq!(status(&a.url(), &key).await, 200);
    assert_eq!(status(&b.url(), &key).await, 200);
    for d in &dirs {
        assert!(!d.path().join("keys.json").exists());
    }

    // Only the hash is stored.
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = c
        .query("SELECT hash, record FROM polyroute_keys", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (hash, record): (String, String) = (rows[0].get(0), rows[0].get(1));
    assert_eq!(hash, serve::keys::hash_key(&key));
    assert!(
        !record.contains(&key[9..]),
        "the key itself is never stored"
    );

    let (ok, out, _) = polyroute(&["keys", "--config", cfg_arg, "list", "--json"]);
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["label"], "shared");
    assert_eq!(listed[0]["limit"], 2.0);

    // Revoked by the CLI: both replicas refuse it within a second.
    let t0 = Instant::now();
    let (ok, out, err) = polyroute(&["keys", "--config", cfg_arg, "revoke", "shared"]);
    assert!(ok && out.contains("revoked"), "{out}{err}");
    let mut refused = [None, None];
    while refused.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(5) {
        for (i, r) in [&a, &b].iter().enumerate() {
            if refused[i].is_none() && status(&r.url(), &key).await == 401 {
                refused[i] = Some(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in refused {
        let t = r.expect("a replica still accepts the revoked key after 5 s");
        assert!(t < Duration::from_secs(1), "revocation seen after {t:?}");
    }
    // A second revocation finds nothing to revoke.
    let (ok, _, err) = polyroute(&["keys", "--config", cfg_arg, "revoke", "shared"]);
    assert!(!ok && err.contains("no active key"), "{err}");

    // PostgreSQL down: the replicas keep the keys they read (the revoked one stays refused).
    let (_, out, _) = polyroute(&["keys", "--config", cfg_arg, "create", "--label", "second"]);
    let second = out.lines().last().unwrap().trim().to_string();
    assert_eq!(status(&a.url(), &second).await, 200);
    drop(c);
    let mut pg = pg;
    pg.stop();
    let v = client()
        .get(format!("{}/api/v1/models", a.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(v.status().as_u16(), 200);
    assert_eq!(status(&a.url(), &key).await, 401);
    // The key itself is still known (its requests fail on the ledger, not on authentication).
    assert_ne!(status(&a.url(), &second).await, 401);
    let (ok, _, err) = polyroute(&["keys", "--config", cfg_arg, "list"]);
    assert!(!ok && err.contains("postgres 127.0.0.1:"), "{err}");
    assert!(!err.contains("password"), "{err}");
    drop((a, b));
}
