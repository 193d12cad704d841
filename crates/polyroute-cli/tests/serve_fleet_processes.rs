//! A fleet of 3 `polyroute serve` processes sharing one Redis and one PostgreSQL (throwaway servers from
//! polyroute-testsupport), many concurrent clients: the key's USD limit and rpm hold across the fleet, a
//! conversation keeps its endpoint from any replica, a revocation is refused everywhere within 1 s,
//! `/api/v1/key` is the same from every replica, and a gateway killed with SIGKILL mid-load loses no
//! acknowledged generation while its holds expire.
//!
//! The same fleet with in-process Python and Node routers beside the gateways: `tests/fleet/fleet.py`
//! (`scripts/test.d/fleet.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polyroute::state::Budget;
use polyroute::Scope;
use polyroute_mock::MockServer;
use polyroute_testsupport::{skip_unless_available, PostgresServer, RedisServer};
use rust_decimal::Decimal;
use serde_json::Value;
use serve_support::{catalog, chat, spawn_serve, ServeProcess, FAKE};

const TOTAL_MS: u64 = 2000;

type Proc = ServeProcess;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_polyroute")
}

fn write_config(dir: &Path, alpha: &str, beta: &str, redis: &str, pg: &str) -> PathBuf {
    std::fs::write(dir.join("catalog.json"), catalog().to_string()).unwrap();
    let cfg = format!(
        r#"catalog = "catalog.json"
env_keys = false

[server]
keepalive_ms = 1000
workers = 1

[timeouts]
total = {TOTAL_MS}

[state]
redis = "{redis}"
postgres = "{pg}"

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

fn start(config: &Path, data: &Path) -> Proc {
    spawn_serve(config, data, &[], Stdio::null())
}

fn keys(config: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["keys", "--config"])
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn create(config: &Path, label: &str, extra: &[&str]) -> String {
    let mut a = vec!["create", "--label", label];
    a.extend_from_slice(extra);
    keys(config, &a).lines().last().unwrap().trim().to_string()
}

/// A gateway config with Redis as its only server (the ledger in the data directory `data`), `workers`
/// workers and `state_extra` lines in `[state]`, in front of the two mocks.
fn redis_only_config(
    dir: &Path,
    data: &Path,
    workers: usize,
    redis: &str,
    state_extra: &str,
    alpha: &MockServer,
    beta: &MockServer,
) -> PathBuf {
    std::fs::write(dir.join("catalog.json"), catalog().to_string()).unwrap();
    let cfg = dir.join("polyroute.toml");
    std::fs::write(
        &cfg,
        format!(
            "catalog = \"catalog.json\"\nread_env = false\n\n[server]\nworkers = {workers}\ndata_dir = \"{}\"\n\n\
             [state]\nredis = \"{redis}\"\n{state_extra}\n\
             [providers.alpha]\napi_key = \"{FAKE}\"\nbase_url = \"{}/v1\"\n\n\
             [providers.beta]\napi_key = \"{FAKE}\"\nbase_url = \"{}/v1\"\n",
            data.display(),
            alpha.url(),
            beta.url()
        ),
    )
    .unwrap();
    cfg
}

/// A key with a $1000 limit: its token and its id.
fn create_with_id(config: &Path, label: &str) -> (String, String) {
    let key = create(config, label, &["--limit", "1000"]);
    let list: Value = serde_json::from_str(&keys(config, &["list", "--json"])).unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == label)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    (key, id)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Status (0 for a connection error) and generation id of one chat request.
async fn post(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
    session: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut r = http
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    if let Some(s) = session {
        r = r.header("x-session-id", s);
    }
    match r.send().await {
        Ok(resp) => {
            let s = resp.status().as_u16();
            let id = resp
                .headers()
                .get("x-generation-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let v = resp.json().await.unwrap_or(Value::Null);
            (s, id, v)
        }
        Err(_) => (0, None, Value::Null),
    }
}

async fn pg_rows(url: &str, user: &str) -> (HashSet<String>, Decimal) {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = c
        .query(
            "SELECT id, cost::text FROM polyroute_generations WHERE user_key = $1",
            &[&user],
        )
        .await
        .unwrap();
    (
        rows.iter().map(|r| r.get::<_, String>(0)).collect(),
        rows.iter()
            .map(|r| r.get::<_, String>(1).parse::<Decimal>().unwrap())
            .sum(),
    )
}

async fn key_info(url: &str, key: &str) -> Value {
    client()
        .get(format!("{url}/api/v1/key"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateway_processes_share_limits_sessions_keys_and_survive_kill_9() {
    if !skip_unless_available("gateway process fleet test").expect("servers required") {
        return;
    }
    let redis = RedisServer::start().unwrap();
    let pg = PostgresServer::start().unwrap();
    let pg_url = pg.create_database("fleet").unwrap();
    let alpha = MockServer::labeled("alpha").await.unwrap();
    let beta = MockServer::labeled("beta").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &alpha.url(), &beta.url(), &redis.url(), &pg_url);
    let datas: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("data{i}")))
        .collect();
    let mut procs: Vec<Option<Proc>> = datas.iter().map(|d| Some(start(&cfg, d))).collect();
    let urls: Vec<String> = procs
        .iter()
        .map(|p| p.as_ref().unwrap().url.clone())
        .collect();
    let http = client();

    // 1. kill -9 mid-load: slow answers keep requests in flight when replica 2 dies.
    let kill_key = create(&cfg, "kill", &["--limit", "1000"]);
    let kill_list: Value = serde_json::from_str(&keys(&cfg, &["list", "--json"])).unwrap();
    let kill_id = kill_list[0]["id"].as_str().unwrap().to_string();
    alpha.set_fault(Some("slow-first-byte=150")).unwrap();
    beta.set_fault(Some("slow-first-byte=150")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let lost = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for c in 0..48 {
        let (urls, key, stop, acked, lost, http) = (
            urls.clone(),
            kill_key.clone(),
            stop.clone(),
            acked.clone(),
            lost.clone(),
            http.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 500 {
                i += 1;
                let (s, id, _) = post(
                    &http,
                    &urls[(c + i) % 3],
                    &key,
                    &chat("acme/chat", &format!("k{c} {i}")),
                    None,
                )
                .await;
                match s {
                    200 => acked.lock().unwrap().push(id.unwrap()),
                    0 => *lost.lock().unwrap() += 1,
                    other => panic!("status {other}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let budget = polyroute_redis::RedisState::connect(&redis.url())
        .await
        .unwrap()
        .budget();
    let kill_scope = Scope::Key(kill_id.clone());
    let killed = procs[2].take().unwrap();
    let pid = killed.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    let t_kill = Instant::now();
    drop(killed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    alpha.set_fault(None).unwrap();
    beta.set_fault(None).unwrap();
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let (rows, _) = pg_rows(&pg_url, &kill_id).await;
    assert!(
        acked.is_subset(&rows),
        "{} acknowledged generations missing",
        acked.difference(&rows).count()
    );
    let held_after_kill = budget.held(&kill_scope).await.unwrap();
    assert!(
        held_after_kill > Decimal::ZERO,
        "no hold of the killed gateway to expire"
    );
    eprintln!(
        "kill -9: {} acknowledged, all in the ledger; {} connection errors; held by the dead gateway {held_after_kill}",
        acked.len(),
        lost.lock().unwrap()
    );
    let urls: Vec<String> = urls[..2].to_vec();

    // 2. USD limit and rpm across the fleet: 128 clients, 2 requests each.
    let rpm = 40u64;
    let limit = Decimal::new(3, 4); // $0.0003: about five worst cases of one request
    let key = create(
        &cfg,
        "limited",
        &["--limit", "0.0003", "--rpm", &rpm.to_string()],
    );
    let list: Value = serde_json::from_str(&keys(&cfg, &["list", "--json"])).unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "limited")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tasks = Vec::new();
    for c in 0..128 {
        let (urls, key, http) = (urls.clone(), key.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..2 {
                out.push(
                    post(
                        &http,
                        &urls[(c + i) % 2],
                        &key,
                        &chat("acme/chat", &format!("l{c} {i}")),
                        None,
                    )
                    .await
                    .0,
                );
            }
            out
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    let n = |s: u16| statuses.iter().filter(|x| **x == s).count() as u64;
    assert!(
        statuses.iter().all(|s| [200, 402, 429].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        n(200) + n(402),
        rpm,
        "admitted within the minute = rpm exactly (exact sliding log)"
    );
    assert!(n(200) > 0 && n(402) > 0, "200: {}, 402: {}", n(200), n(402));
    let (rows, billed) = pg_rows(&pg_url, &id).await;
    assert_eq!(rows.len() as u64, n(200));
    assert!(billed <= limit, "billed {billed} over the limit {limit}");
    // Settles land just after their answers (off the request path): the spend reaches the ledger's sum.
    let t = Instant::now();
    while budget.spent(&Scope::Key(id.clone())).await.unwrap() != billed {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "spent {} in Redis, billed {billed}",
            budget.spent(&Scope::Key(id.clone())).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The same /api/v1/key from every replica.
    let infos: Vec<Value> = futures::future::join_all(urls.iter().map(|u| key_info(u, &key))).await;
    assert_eq!(infos[0], infos[1]);
    assert_eq!(infos[0]["data"]["rpm"], rpm);
    eprintln!(
        "limits: {} × 200, {} × 402, {} × 429; billed {billed} of {limit}",
        n(200),
        n(402),
        n(429)
    );

    // 3. Sticky conversations: each keeps its first endpoint from either replica.
    let plain = create(&cfg, "sticky", &[]);
    for conv in 0..8 {
        let session = format!("conversation-{conv}");
        let body = chat("acme/chat", "hello");
        let mut seen = Vec::new();
        for turn in 0..4 {
            let (s, _, v) = post(
                &http,
                &urls[(conv + turn) % 2],
                &plain,
                &body,
                Some(&session),
            )
            .await;
            assert_eq!(s, 200, "{v}");
            seen.push(v["provider"].as_str().unwrap().to_string());
        }
        assert!(seen.iter().all(|p| *p == seen[0]), "{session}: {seen:?}");
    }

    // 4. Revocation: refused by every replica within 1 s.
    let t0 = Instant::now();
    keys(&cfg, &["revoke", "sticky"]);
    let mut refused = vec![None; urls.len()];
    while refused.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(5) {
        for (i, u) in urls.iter().enumerate() {
            if refused[i].is_none()
                && post(&http, u, &plain, &chat("acme/chat", "r"), None)
                    .await
                    .0
                    == 401
            {
                refused[i] = Some(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in &refused {
        assert!(r.is_some_and(|t| t < Duration::from_secs(1)), "{refused:?}");
    }

    // 5. The dead gateway's holds expire (total timeout + 60 s margin) and free the key's budget.
    let expiry = Duration::from_millis(TOTAL_MS) + Duration::from_secs(61);
    while t_kill.elapsed() < expiry + Duration::from_secs(5) {
        if budget.held(&kill_scope).await.unwrap() == Decimal::ZERO {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        budget.held(&kill_scope).await.unwrap(),
        Decimal::ZERO,
        "holds of the killed gateway never expired"
    );
    eprintln!(
        "holds of the killed gateway gone {:?} after the kill",
        t_kill.elapsed()
    );
    drop(procs);
}

/// Send `sig` (`TERM`, `STOP`, `CONT`) to a process.
fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// A rolling deploy: `SIGTERM` reaches a gateway whose last answer's settle is still waiting for Redis (frozen
/// with `SIGSTOP` between the hold and the answer). The gateway must not exit before the settle lands once Redis
/// is back: the key's spend in Redis then equals the cost in the gateway's ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_gateway_lands_the_settles_of_its_last_answers() {
    if !skip_unless_available("gateway graceful stop test").expect("servers required") {
        return;
    }
    let redis = RedisServer::start().unwrap();
    let redis_pid = redis.pid().unwrap();
    let alpha = MockServer::labeled("alpha").await.unwrap();
    let beta = MockServer::labeled("beta").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.json"), catalog().to_string()).unwrap();
    let data = dir.path().join("data");
    let cfg = redis_only_config(dir.path(), &data, 2, &redis.url(), "", &alpha, &beta);
    let (key, id) = create_with_id(&cfg, "stop");
    let mut gw = spawn_serve(&cfg, &data, &[], Stdio::null());

    // The upstream answers slowly, so Redis can be frozen after the hold and before the settle.
    let req = held_request(&gw.url, &key, &alpha, &beta).await;
    signal(redis_pid, "STOP");
    let (status, gen, body) = req.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(gen.is_some());

    // SIGTERM with the settle pending: the gateway keeps running while Redis is frozen …
    let pid = gw.child.id();
    signal(pid, "TERM");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let early = gw.child.try_wait().unwrap();
    signal(redis_pid, "CONT");
    assert!(
        early.is_none(),
        "the gateway exited ({early:?}) with its last settle pending"
    );
    // … and exits once the settle has landed.
    let t = Instant::now();
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the gateway did not exit"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");

    let db = rusqlite::Connection::open(data.join("ledger.sqlite")).unwrap();
    let costs: Vec<String> = db
        .prepare("SELECT cost FROM generations WHERE user_key = ?1")
        .unwrap()
        .query_map([&id], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(costs.len(), 1, "one generation in the ledger");
    let cost: Decimal = costs[0].parse().unwrap();
    assert!(cost > Decimal::ZERO);
    let budget = polyroute_redis::RedisState::connect(&redis.url())
        .await
        .unwrap()
        .budget();
    assert_eq!(
        budget.spent(&Scope::Key(id)).await.unwrap(),
        cost,
        "the key's spend in Redis is the ledger's cost"
    );
}

/// A chat request through the gateway at `url` with `key`, its upstream answering in 600 ms; returns once the
/// upstream has the call (the request's hold is placed), with the request's task.
async fn held_request(
    url: &str,
    key: &str,
    alpha: &MockServer,
    beta: &MockServer,
) -> tokio::task::JoinHandle<(u16, Option<String>, Value)> {
    alpha.set_fault(Some("slow-first-byte=600")).unwrap();
    beta.set_fault(Some("slow-first-byte=600")).unwrap();
    let (url, k) = (url.to_string(), key.to_string());
    let req = tokio::spawn(async move {
        post(
            &client(),
            &url,
            &k,
            &chat("acme/chat", "held upstream"),
            None,
        )
        .await
    });
    let t = Instant::now();
    while alpha.calls() + beta.calls() == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "no upstream call");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    req
}

/// One request through the replica `a` with the key `key`, answered while Redis is down (the hold was placed
/// before `redis` stopped), then `a` killed (SIGKILL) while its settle retries; answers the generation id.
async fn answer_then_die(
    a: Proc,
    key: &str,
    alpha: &MockServer,
    beta: &MockServer,
    redis: &mut RedisServer,
) -> String {
    let req = held_request(&a.url, key, alpha, beta).await;
    redis.stop();
    let (status, gen, body) = req.await.unwrap();
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(a);
    alpha.set_fault(None).unwrap();
    beta.set_fault(None).unwrap();
    gen.unwrap()
}

async fn pending_notes(url: &str) -> Vec<String> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.query("SELECT id FROM polyroute_settles_pending", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A replica killed (`SIGKILL`) after answering, while its settle waits for a Redis that is down: the
/// PostgreSQL ledger noted the settle with the record, and another replica's sweep applies it once Redis is
/// back, so the key's spend in Redis reaches the ledger's cost. The sweep keeps running beside live traffic
/// without counting anything twice, and landed notes are forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_lost_with_a_killed_replica_is_swept_into_the_budget() {
    if !skip_unless_available("gateway settle sweep test").expect("servers required") {
        return;
    }
    let mut redis = RedisServer::start().unwrap();
    let pg = PostgresServer::start().unwrap();
    let pg_url = pg.create_database("sweep").unwrap();
    let alpha = MockServer::labeled("alpha").await.unwrap();
    let beta = MockServer::labeled("beta").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &alpha.url(), &beta.url(), &redis.url(), &pg_url);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen("[state]\n", "[state]\nsettle_sweep_after_ms = 300\n", 1),
    )
    .unwrap();
    let (key, id) = create_with_id(&cfg, "swept");
    let scope = Scope::Key(id.clone());
    let http = client();

    // Replica A answers while Redis is down (the hold was placed before), then dies before the settle lands.
    let a = start(&cfg, &dir.path().join("a"));
    let gen = answer_then_die(a, &key, &alpha, &beta, &mut redis).await;
    let (rows, billed) = pg_rows(&pg_url, &id).await;
    assert_eq!(rows, HashSet::from([gen.clone()]));
    assert!(billed > Decimal::ZERO);
    assert_eq!(
        pending_notes(&pg_url).await,
        vec![gen.clone()],
        "the settle is noted"
    );

    // Redis is back (empty: no persistence); replica B sweeps the note into the key's spend.
    redis.restart().unwrap();
    let budget = polyroute_redis::RedisState::connect(&redis.url())
        .await
        .unwrap()
        .budget();
    assert_eq!(budget.spent(&scope).await.unwrap(), Decimal::ZERO);
    let b = start(&cfg, &dir.path().join("b"));
    let t = Instant::now();
    while budget.spent(&scope).await.unwrap() != billed {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "spent {} in Redis, billed {billed}",
            budget.spent(&scope).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The sweep forgets the notes it applied just after applying them.
    let t = Instant::now();
    while !pending_notes(&pg_url).await.is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the applied note stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Live traffic beside the sweep: every settle counts once, and its note is forgotten once it landed.
    for i in 0..10 {
        let (s, _, v) = post(
            &http,
            &b.url,
            &key,
            &chat("acme/chat", &format!("live {i}")),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let (rows, billed) = pg_rows(&pg_url, &id).await;
    assert_eq!(rows.len(), 11);
    let t = Instant::now();
    while !pending_notes(&pg_url).await.is_empty() || budget.spent(&scope).await.unwrap() != billed
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "notes {:?}, spent {} in Redis, billed {billed}",
            pending_notes(&pg_url).await,
            budget.spent(&scope).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Sweeps keep running (every 150 ms here): nothing is counted twice.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(budget.spent(&scope).await.unwrap(), billed);
    assert!(pending_notes(&pg_url).await.is_empty());
    drop(b);
}

/// The same with Redis alone: the replica's own SQLite ledger notes the settle, and the replica restarted on its
/// data directory sweeps it into the key's spend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_lost_with_a_killed_replica_is_swept_from_its_sqlite_ledger_on_restart() {
    if !skip_unless_available("gateway settle sweep test (sqlite)").expect("servers required") {
        return;
    }
    let mut redis = RedisServer::start().unwrap();
    let alpha = MockServer::labeled("alpha").await.unwrap();
    let beta = MockServer::labeled("beta").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = redis_only_config(
        dir.path(),
        &data,
        1,
        &redis.url(),
        "settle_sweep_after_ms = 300\n",
        &alpha,
        &beta,
    );
    let (key, id) = create_with_id(&cfg, "swept");
    let scope = Scope::Key(id.clone());

    let a = start(&cfg, &data);
    answer_then_die(a, &key, &alpha, &beta, &mut redis).await;
    let cost: Decimal = {
        let db = rusqlite::Connection::open(data.join("ledger.sqlite")).unwrap();
        let c: String = db
            .query_row(
                "SELECT cost FROM generations WHERE user_key = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        let noted: i64 = db
            .query_row("SELECT count(*) FROM settles_pending", [], |r| r.get(0))
            .unwrap();
        assert_eq!(noted, 1, "the settle is noted in the replica's file");
        c.parse().unwrap()
    };
    assert!(cost > Decimal::ZERO);

    redis.restart().unwrap();
    let budget = polyroute_redis::RedisState::connect(&redis.url())
        .await
        .unwrap()
        .budget();
    assert_eq!(budget.spent(&scope).await.unwrap(), Decimal::ZERO);
    let _b = start(&cfg, &data);
    let t = Instant::now();
    while budget.spent(&scope).await.unwrap() != cost {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "spent {} in Redis, billed {cost}",
            budget.spent(&scope).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
