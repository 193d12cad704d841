//! The durable SQLite ledger alone, at a chosen concurrency: `n` generation records written with their settles
//! ([`Ledger::insert_settled`], three scopes each, as `polyroute serve` writes a request with a budgeted key),
//! `concurrency` at a time, into a fresh file. Run it under callgrind twice with two `--n` and divide the
//! difference in instructions by the difference in records: the ledger's CPU per record (writer and syncer
//! threads included) at that concurrency, without a gateway around it.
//!
//! `cargo run --release -p polyroute --example ledger_batch -- [--n 2000] [--concurrency 64] [--dir DIR]
//! [--ids worker|random|ordered]`. Prints the records, commits and syncs (records per commit is the batch size the
//! writer reached). `--ids`: how the records are named: `worker` (default) `gen-<worker>-<i>-<hash>`; `random`
//! `gen-<secs>-<16 hex scattered>`, as the gateway named them before its ids were ordered; `ordered`
//! `gen-<secs>-<16 hex rising>`, as it names them now (one tag, a count).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use polyroute::state::sqlite::SqliteStore;
use polyroute::state::{Ledger, ReservationId, Scope, SettleOrder};
use polyroute::GenerationRecord;
use rust_decimal::Decimal;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A record shaped as the gateway writes one for a JSON chat request (billed breakdown, one attempt).
const RECORD: &str = r#"{"id":"gen-0","created_ms":1764730000000,"model":"openai/gpt-4o-mini","provider":"openai",
"provider_name":"OpenAI","endpoint":"openai","streamed":false,
"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21},"cost":"0.0000072",
"cost_details":{"prompt":"0.0000018","completion":"0.0000054","total":"0.0000072","insured":false},
"finish_reason":"stop","attempts":[{"model":"openai/gpt-4o-mini","provider":"openai","endpoint":"openai",
"status":200,"code":"success","latency_ms":0.41}],"app_referer":null,"app_title":null,"user":"key-bench",
"free":false,"latency_ms":0.52,"ttft_ms":null,"overhead_ms":0.11}"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = arg("--n").map_or(2000, |v| v.parse().unwrap());
    let conc: usize = arg("--concurrency").map_or(64, |v| v.parse().unwrap());
    let dir = arg("--dir").map_or_else(
        || std::env::temp_dir().join(format!("polyroute-ledger-batch-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(&dir.join("ledger.sqlite")).unwrap();
    let ledger = Arc::new(store.ledger());
    let template: GenerationRecord = serde_json::from_str(RECORD).unwrap();
    let scopes = vec![
        Scope::Router,
        Scope::User("key-bench".into()),
        Scope::Key("k-bench".into()),
    ];
    let ids = Arc::new(arg("--ids").unwrap_or_else(|| "worker".into()));
    assert!(
        ["worker", "random", "ordered"].contains(&ids.as_str()),
        "--ids: worker, random or ordered"
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..conc)
        .map(|w| {
            let (ledger, template, scopes, next, ids) = (
                ledger.clone(),
                template.clone(),
                scopes.clone(),
                next.clone(),
                ids.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let mut rec = template.clone();
                    let scattered = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    rec.id = match ids.as_str() {
                        "random" => format!("gen-1764730000-{scattered:016x}"),
                        "ordered" => format!("gen-1764730000-{:016x}", 0x5eed_u64 << 40 | i as u64),
                        _ => format!("gen-{w}-{i}-{scattered:016x}"),
                    };
                    rec.created_ms += i64::try_from(i).unwrap();
                    let order = SettleOrder {
                        id: ReservationId(rec.id.clone()),
                        scopes: scopes.clone(),
                        billed: Decimal::new(72, 7),
                    };
                    ledger.insert_settled(rec, order).await.unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    println!(
        "records {n} concurrency {conc} commits {} syncs {}",
        store.commits(),
        store.syncs()
    );
    drop(ledger);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
