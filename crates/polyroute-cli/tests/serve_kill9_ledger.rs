//! Durability of the default (SQLite) ledger under group commit: a `polyroute serve` process under 64
//! concurrent clients is killed with SIGKILL by its PID; the SQLite file, opened directly afterwards, holds every
//! generation the gateway acknowledged (200 with its id); every generation in it, acknowledged or not, is settled
//! (a record and its settle are one write), and each scope's settled spend equals the summed cost of the
//! generations (unacknowledged generations may or may not be there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::json;
use serve_support::{acknowledged_chat, catalog, chat, spawn_serve, ServeProcess, FAKE};

const CLIENTS: usize = 64;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_polyroute")
}

/// The gateway in front of the two loopback mocks, with the default ledger (`<data>/ledger.sqlite`).
fn write_config(dir: &Path, alpha: &str, beta: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("catalog.json"), catalog().to_string()).unwrap();
    let cfg = format!(
        r#"catalog = "catalog.json"
env_keys = false

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

fn start(cfg: &Path, data: &Path) -> (ServeProcess, String) {
    let p = spawn_serve(cfg, data, &[], Stdio::inherit());
    let url = p.url.clone();
    (p, url)
}

fn create_key(data: &Path) -> String {
    let out = Command::new(bin())
        .args(["keys", "create", "--label", "kill9", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// One client: requests until the gateway stops answering; every acknowledged generation id is pushed.
async fn client(
    i: usize,
    c: reqwest::Client,
    url: String,
    key: String,
    acked: Arc<Mutex<Vec<String>>>,
) {
    for n in 0..100_000usize {
        let mut body = chat("acme/chat", &format!("kill9 {i} {n}"));
        let stream = (i + n).is_multiple_of(4);
        body["stream"] = json!(stream);
        let id = acknowledged_chat(&c, &url, &key, &body).await;
        match id {
            Some(id) => acked.lock().unwrap().push(id),
            None => return,
        }
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_64_clients_loses_no_acknowledged_generation_or_spend() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alpha = polyroute_mock::MockServer::labeled("alpha").await.unwrap();
    let beta = polyroute_mock::MockServer::labeled("beta").await.unwrap();
    let cfg = write_config(dir.path(), &alpha.url(), &beta.url());
    let key = create_key(&data);
    let (mut proc, url) = start(&cfg, &data);
    let pid = proc.child.id();

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                i,
                c.clone(),
                url.clone(),
                key.clone(),
                acked.clone(),
            ))
        })
        .collect();
    // Mid-load: once a few hundred generations are acknowledged (bounded wait), SIGKILL by PID.
    let t0 = Instant::now();
    while acked.lock().unwrap().len() < 300 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid}");
    proc.child.wait().unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("a client hung after the kill")
            .unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!("acknowledged {} generations before kill -9", acked.len());
    assert!(acked.len() >= 300, "only {} acknowledged", acked.len());
    drop(proc);

    // The file as the killed process left it (SQLite replays its write-ahead log on open).
    let db = rusqlite::Connection::open(data.join("ledger.sqlite")).unwrap();
    let mut gens: BTreeMap<String, (Option<String>, Decimal)> = BTreeMap::new();
    {
        let mut st = db
            .prepare("SELECT id, user_key, cost FROM generations")
            .unwrap();
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (id, user, cost) = row.unwrap();
            gens.insert(id, (user, dec(&cost)));
        }
    }
    // Settled ids: those settled apart, and those marked in the row of the record they were settled with.
    let settled: HashSet<String> = db
        .prepare("SELECT id FROM budget_settled UNION ALL SELECT id FROM generations WHERE settled")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let spent: BTreeMap<String, Decimal> = db
        .prepare("SELECT scope, spent FROM budget_spent")
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (s, v) = r.unwrap();
            (s, dec(&v))
        })
        .collect();

    // Every acknowledged generation is on disk, and settled (the answer waits for both).
    let lost: Vec<&String> = acked.iter().filter(|id| !gens.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged generations lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    let unsettled: Vec<&String> = acked.iter().filter(|id| !settled.contains(*id)).collect();
    assert!(
        unsettled.is_empty(),
        "acknowledged but not settled: {unsettled:?}"
    );
    // Not only the acknowledged ones: the kill falls between no record and its settle.
    let unsettled: Vec<&String> = gens.keys().filter(|id| !settled.contains(*id)).collect();
    assert!(
        unsettled.is_empty(),
        "on disk but not settled: {unsettled:?}"
    );
    eprintln!(
        "on disk: {} generations ({} acknowledged), {} settled",
        gens.len(),
        acked.len(),
        settled.len()
    );

    // Spend equals the records' costs: the router's and each user's settled spend is the sum over the settled
    // generations, and at least the sum over the acknowledged ones.
    let mut expect: BTreeMap<String, Decimal> = BTreeMap::new();
    for (id, (user, cost)) in &gens {
        if settled.contains(id) {
            *expect.entry("router".into()).or_default() += *cost;
            if let Some(u) = user {
                *expect.entry(format!("user:{u}")).or_default() += *cost;
            }
        }
    }
    let acked_cost: Decimal = acked.iter().map(|id| gens[id].1).sum();
    assert!(acked_cost > Decimal::ZERO);
    let router = spent.get("router").copied().unwrap_or_default();
    assert_eq!(
        router, expect["router"],
        "router spend vs settled generations"
    );
    assert!(
        router >= acked_cost,
        "router spend {router} < acknowledged cost {acked_cost}"
    );
    for (scope, want) in &expect {
        assert_eq!(
            spent.get(scope).copied().unwrap_or_default(),
            *want,
            "{scope}"
        );
    }
    eprintln!("spend: {spent:?}; acknowledged cost {acked_cost}");
    drop((alpha, beta));
}
