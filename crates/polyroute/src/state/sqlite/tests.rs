//! The writer of the SQLite stores: group commit, atomic holds under concurrency, and errors that reach every
//! waiter (the trait contracts themselves are checked by the state battery in `tests/state.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use polyroute_core::Usage;
use rust_decimal::Decimal;
use serde_json::Value;

use super::writer::Op;
use super::*;
use crate::state::ScopeLimit;

fn temp_db(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "polyroute-sqlite-writer-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (dir.join("state.sqlite"), dir)
}

fn record(id: &str, cost: &str) -> GenerationRecord {
    GenerationRecord {
        id: id.to_string(),
        created_ms: now_ms(),
        model: "test/model".into(),
        provider: "alpha".into(),
        provider_name: "Alpha".into(),
        endpoint: "alpha".into(),
        streamed: false,
        usage: Usage::default(),
        cost: cost.parse().unwrap(),
        cost_details: Value::Null.into(),
        finish_reason: Some("stop".into()),
        attempts: Vec::new(),
        app_referer: None,
        app_title: None,
        user: Some("u".into()),
        free: false,
        latency_ms: 1.0,
        ttft_ms: None,
        dropped_params: Vec::new(),
        cancelled: false,
        session_id: None,
        overhead_ms: None,
        api_type: crate::ledger::ApiType::Completions,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_share_commits_and_all_land() {
    let (path, dir) = temp_db("group");
    let store = SqliteStore::open(&path).unwrap();
    let ledger = store.ledger();
    let before = store.commits();
    let n = 300;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let l = ledger.clone();
            tokio::spawn(async move { l.insert(record(&format!("gen-{i}"), "0.001")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let commits = store.commits() - before;
    assert!(
        commits >= 1 && commits < n,
        "{commits} commits for {n} inserts"
    );
    let syncs = store.syncs();
    assert!(
        syncs >= 1 && syncs <= commits,
        "{syncs} syncs for {commits} commits"
    );
    // Every insert is readable from another connection (and another handle on the file).
    let other = SqliteStore::open(&path).unwrap().ledger();
    let s = other.summary(None, 0).await.unwrap();
    assert_eq!(s.requests, n);
    assert_eq!(s.cost, Decimal::new(300, 3));
    assert!(other.get("gen-17").await.unwrap().is_some());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_never_exceed_a_limit() {
    let (path, dir) = temp_db("holds");
    let budget = SqliteStore::open(&path).unwrap().budget();
    let scope = Scope::Key("k".into());
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (b, scope) = (budget.clone(), scope.clone());
            tokio::spawn(async move {
                b.reserve(&HoldRequest {
                    id: ReservationId(format!("r{i}")),
                    amount: Decimal::ONE,
                    scopes: vec![ScopeLimit {
                        scope,
                        limit: Some(Decimal::TEN),
                    }],
                    ttl: Duration::from_secs(60),
                })
                .await
                .unwrap()
            })
        })
        .collect();
    let mut held = 0;
    for t in tasks {
        if t.await.unwrap() == Reserved::Held {
            held += 1;
        }
    }
    assert_eq!(held, 10);
    assert_eq!(budget.held(&scope).await.unwrap(), Decimal::TEN);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operation_changes_nothing_and_fails_alone() {
    let store = SqliteStore::in_memory().unwrap();
    let ledger = store.ledger();
    // Writes a record, then fails: its savepoint is rolled back, the batch still commits the others.
    let bad = store.write(true, |c| {
        queries::insert(c, &record("gen-bad", "1"), "{}")?;
        c.execute_batch("INSERT INTO no_such_table VALUES (1)")
            .map_err(|e| db(&e))
    });
    let good = ledger.insert(record("gen-good", "2"));
    let panics = store.write(false, |_| -> Result<()> {
        panic!("an operation that panics")
    });
    let (bad, good, panics) = tokio::join!(bad, good, panics);
    assert!(bad.is_err());
    good.unwrap();
    assert!(panics.is_err());
    assert!(ledger.get("gen-bad").await.unwrap().is_none());
    assert!(ledger.get("gen-good").await.unwrap().is_some());
    // The writer survived the panic.
    ledger.insert(record("gen-after", "3")).await.unwrap();
    assert_eq!(ledger.summary(None, 0).await.unwrap().requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_file_fails_every_waiter_of_the_batch_then_recovers() {
    let (path, dir) = temp_db("busy");
    let store = SqliteStore::open(&path).unwrap();
    let ledger = store.ledger();
    store
        .write(false, |c| {
            c.execute_batch("PRAGMA busy_timeout=50")
                .map_err(|e| db(&e))
        })
        .await
        .unwrap();
    // Another connection holds the write lock: the batch cannot begin.
    let mut other = Connection::open(&path).unwrap();
    let tx = other
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let waiters: Vec<_> = (0..5)
        .map(|i| ledger.insert(record(&format!("gen-locked-{i}"), "1")))
        .collect();
    for r in futures::future::join_all(waiters).await {
        let e = r.unwrap_err();
        assert!(e.to_string().contains("locked"), "{e}");
    }
    tx.rollback().unwrap();
    ledger.insert(record("gen-unlocked", "1")).await.unwrap();
    assert_eq!(ledger.summary(None, 0).await.unwrap().requests, 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// An operation that kills the writer thread (a panic outside any operation's own guard).
struct Crash;

impl Op for Crash {
    fn durable(&self) -> bool {
        false
    }
    fn apply(&mut self, _: &super::writer::Writer<'_>) -> bool {
        panic!("the writer thread dies")
    }
    fn finish(self: Box<Self>, _: Result<()>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_writer_answers_every_waiter_with_an_error() {
    let store = SqliteStore::in_memory().unwrap();
    let ledger = store.ledger();
    let queued: Vec<_> = (0..20)
        .map(|i| {
            let l = ledger.clone();
            tokio::spawn(async move { l.insert(record(&format!("gen-{i}"), "1")).await })
        })
        .collect();
    tokio::task::yield_now().await;
    store.inner.jobs.send(Box::new(Crash)).await.ok().unwrap();
    let after: Vec<_> = (0..20)
        .map(|i| ledger.insert(record(&format!("gen-late-{i}"), "1")))
        .collect();
    // Each waiter is answered (committed before the crash, or an error), none hangs.
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut all = futures::future::join_all(after).await;
        for t in queued {
            all.push(t.await.unwrap());
        }
        all
    })
    .await
    .expect("a waiter hung");
    let errors = answered.iter().filter(|r| r.is_err()).count();
    assert!(errors >= 20, "{errors} errors");
    let e = ledger.get("gen-0").await.unwrap_err();
    assert!(e.to_string().contains("writer"), "{e}");
}

/// A sync the test lets through one at a time: `entered` hears of each call, `gate` releases it.
fn gated_sync() -> (
    writer::SyncFn,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<std::io::Result<()>>,
) {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (gate, gate_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let f: writer::SyncFn = Box::new(move || {
        let _ = entered_tx.send(());
        gate_rx
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("gate dropped")))
    });
    (f, entered, gate)
}

/// Until the syncer has called the sync (bounded).
async fn sync_entered(entered: &Arc<Mutex<std::sync::mpsc::Receiver<()>>>) {
    let e = entered.clone();
    tokio::task::spawn_blocking(move || {
        e.lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10))
            .expect("the syncer never synced")
    })
    .await
    .unwrap();
}

async fn still_pending<T>(h: &mut tokio::task::JoinHandle<T>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), h)
        .await
        .is_err()
}

fn hold(id: &str) -> HoldRequest {
    HoldRequest {
        id: ReservationId(id.into()),
        amount: Decimal::ONE,
        scopes: vec![ScopeLimit {
            scope: Scope::Key("k".into()),
            limit: Some(Decimal::TEN),
        }],
        ttl: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_is_answered_only_after_its_sync_and_holds_never_wait_for_it() {
    let (path, dir) = temp_db("sync");
    let (f, entered, gate) = gated_sync();
    let entered = Arc::new(Mutex::new(entered));
    let store = SqliteStore::open_with(&path, Some(f)).unwrap();
    let ledger = store.ledger();
    let l = ledger.clone();
    let mut first = tokio::spawn(async move { l.insert(record("gen-1", "1")).await });
    sync_entered(&entered).await;
    // Committed (another connection reads it) but not answered while its sync runs.
    assert!(still_pending(&mut first).await);
    assert!(ledger.get("gen-1").await.unwrap().is_some());
    // Holds, settles and a second batch's insert go through the writer meanwhile.
    let budget = store.budget();
    assert_eq!(budget.reserve(&hold("r1")).await.unwrap(), Reserved::Held);
    let settled = budget.settle(
        &ReservationId("r1".into()),
        &[Scope::Key("k".into())],
        Some(Decimal::ONE),
    );
    assert!(settled.await.unwrap());
    let l = ledger.clone();
    let mut second = tokio::spawn(async move { l.insert(record("gen-2", "2")).await });
    assert!(still_pending(&mut second).await);
    // A durable insert arriving while the syncer is busy waits in the writer's open batch (only committed
    // when the syncer is idle; holds and settles meanwhile commit at once, above).
    assert!(ledger.get("gen-2").await.unwrap().is_none());
    // A hold arriving meanwhile is answered at once (its sender wakes the writer sleeping on its open batch),
    // and commits the waiting insert with it.
    let r2 = tokio::time::timeout(Duration::from_secs(10), budget.reserve(&hold("r2")))
        .await
        .expect("a hold waited for the sync under way");
    assert_eq!(r2.unwrap(), Reserved::Held);
    assert!(ledger.get("gen-2").await.unwrap().is_some());
    let l = ledger.clone();
    let mut third = tokio::spawn(async move { l.insert(record("gen-3", "3")).await });
    assert!(still_pending(&mut third).await);
    assert!(ledger.get("gen-3").await.unwrap().is_none());
    // The first sync answers the first insert only; the syncer goes on with the second at once (the third
    // still waits), and only when it is idle is the third committed, and synced.
    gate.send(Ok(())).unwrap();
    first.await.unwrap().unwrap();
    sync_entered(&entered).await;
    assert!(still_pending(&mut second).await);
    assert!(ledger.get("gen-3").await.unwrap().is_none());
    gate.send(Ok(())).unwrap();
    second.await.unwrap().unwrap();
    sync_entered(&entered).await;
    assert!(ledger.get("gen-3").await.unwrap().is_some());
    assert!(still_pending(&mut third).await);
    gate.send(Ok(())).unwrap();
    third.await.unwrap().unwrap();
    assert_eq!(store.syncs(), 3);
    let _ = std::fs::remove_dir_all(dir);
}

/// Inserts arriving while the syncer is busy wait in the writer's open batch (the writer sleeps meanwhile) and
/// are committed together, by one commit and one sync, once the syncer is idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_arriving_during_a_sync_share_the_next_commit() {
    let (path, dir) = temp_db("sleeps");
    let (f, entered, gate) = gated_sync();
    let entered = Arc::new(Mutex::new(entered));
    let store = SqliteStore::open_with(&path, Some(f)).unwrap();
    let ledger = store.ledger();
    let l = ledger.clone();
    let first = tokio::spawn(async move { l.insert(record("gen-0", "1")).await });
    sync_entered(&entered).await;
    let commits = store.commits();
    let mut rest: Vec<_> = (1..=20)
        .map(|i| {
            let l = ledger.clone();
            tokio::spawn(async move { l.insert(record(&format!("gen-{i}"), "1")).await })
        })
        .collect();
    for t in &mut rest {
        assert!(still_pending(t).await);
    }
    assert_eq!(
        store.commits(),
        commits,
        "committed while the syncer was busy"
    );
    gate.send(Ok(())).unwrap();
    first.await.unwrap().unwrap();
    sync_entered(&entered).await;
    assert_eq!(
        store.commits(),
        commits + 1,
        "one commit for the 20 inserts"
    );
    gate.send(Ok(())).unwrap();
    for t in rest {
        t.await.unwrap().unwrap();
    }
    assert_eq!((store.commits(), store.syncs()), (commits + 1, 2));
    assert_eq!(ledger.summary(None, 0).await.unwrap().requests, 21);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_fails_its_inserts_and_every_later_one() {
    let (path, dir) = temp_db("sync-fails");
    let (f, entered, gate) = gated_sync();
    let store = SqliteStore::open_with(&path, Some(f)).unwrap();
    let ledger = store.ledger();
    gate.send(Err(std::io::Error::other("disk on fire")))
        .unwrap();
    let e = ledger.insert(record("gen-1", "1")).await.unwrap_err();
    assert!(e.to_string().contains("disk on fire"), "{e}");
    // Later syncs would succeed, but a lost WAL frame hides every later one: the store refuses durable writes.
    gate.send(Ok(())).unwrap();
    let e = ledger.insert(record("gen-2", "1")).await.unwrap_err();
    assert!(
        e.to_string().contains("until the store is opened again"),
        "{e}"
    );
    assert_eq!(
        entered.try_iter().count(),
        1,
        "synced again after a failure"
    );
    assert_eq!(store.syncs(), 0);
    // Budget changes do not wait for a sync.
    let budget = store.budget();
    assert_eq!(budget.reserve(&hold("r1")).await.unwrap(), Reserved::Held);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn the_wal_file_is_followed_when_deleted() {
    use std::os::unix::fs::MetadataExt;
    let (path, dir) = temp_db("wal-file");
    let wal = dir.join("state.sqlite-wal");
    std::fs::write(&path, b"db").unwrap();
    std::fs::write(&wal, b"old").unwrap();
    let mut w = writer::WalFile::open(&path).unwrap();
    w.sync().unwrap();
    // Deleted and made anew: the new file is synced and followed.
    std::fs::remove_file(&wal).unwrap();
    std::fs::write(&wal, b"new").unwrap();
    w.sync().unwrap();
    let ino = std::fs::metadata(&wal).unwrap().ino();
    assert_eq!(w.inode().unwrap(), ino);
    // Deleted and not made anew: nothing to sync but the database file.
    std::fs::remove_file(&wal).unwrap();
    w.sync().unwrap();
    assert!(!wal.exists());
    assert!(writer::WalFile::open(&path).is_err(), "no WAL to open");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_wal_mode_syncs_apart_from_its_writer() {
    let (path, dir) = temp_db("wal-mode");
    let store = SqliteStore::open(&path).unwrap();
    store.ledger().insert(record("gen-1", "1")).await.unwrap();
    assert_eq!(store.syncs(), 1);
    // In memory there is no file to sync: the writer answers after its commit.
    let mem = SqliteStore::in_memory().unwrap();
    mem.ledger().insert(record("gen-1", "1")).await.unwrap();
    assert_eq!(mem.syncs(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A record and its settle are one write: both land, a replay bills nothing more, and a settle that fails takes
/// the record back with it (so a crash or an error never keeps one without the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_and_its_settle_land_together_or_not_at_all() {
    let (path, dir) = temp_db("joint");
    let store = SqliteStore::open(&path).unwrap();
    let (ledger, budget) = (store.ledger(), store.budget());
    // Only this store's own budget is settled with its records.
    assert!(ledger.settles_with(&budget));
    let other = SqliteStore::open(&path).unwrap();
    assert!(!ledger.settles_with(&other.budget()));
    assert!(!ledger.settles_with(&crate::state::memory::MemoryBudget::default()));

    let scopes = vec![Scope::Router, Scope::User("u".into())];
    let hold = HoldRequest {
        id: ReservationId("gen-joint".into()),
        amount: Decimal::ONE,
        scopes: scopes
            .iter()
            .map(|s| ScopeLimit {
                scope: s.clone(),
                limit: Some(Decimal::TEN),
            })
            .collect(),
        ttl: Duration::from_secs(60),
    };
    assert_eq!(budget.reserve(&hold).await.unwrap(), Reserved::Held);
    let order = SettleOrder {
        id: hold.id.clone(),
        scopes: scopes.clone(),
        billed: Decimal::new(25, 2),
    };
    ledger
        .insert_settled(record("gen-joint", "0.25"), order.clone())
        .await
        .unwrap();
    // Read through another handle on the file: the record, the spend on every scope, the hold gone.
    let (l2, b2) = (other.ledger(), other.budget());
    assert!(l2.get("gen-joint").await.unwrap().is_some());
    for s in &scopes {
        assert_eq!(b2.spent(s).await.unwrap(), Decimal::new(25, 2), "{s:?}");
        assert_eq!(b2.held(s).await.unwrap(), Decimal::ZERO, "{s:?}");
    }
    // A replay replaces the record and bills nothing more; a later settle of the id is a no-op.
    ledger
        .insert_settled(record("gen-joint", "0.25"), order)
        .await
        .unwrap();
    assert!(!budget
        .settle(&hold.id, &scopes, Some(Decimal::ONE))
        .await
        .unwrap());
    assert_eq!(b2.spent(&Scope::Router).await.unwrap(), Decimal::new(25, 2));

    // The settle is marked in the record's row, not in `budget_settled`; the id is known to holds as settled.
    let c = rusqlite::Connection::open(&path).unwrap();
    let (settled, separate): (i64, i64) = c
        .query_row(
            "SELECT (SELECT settled FROM generations WHERE id = 'gen-joint'),
                    (SELECT count(*) FROM budget_settled)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((settled, separate), (1, 0));
    assert_eq!(budget.reserve(&hold).await.unwrap(), Reserved::Held);
    assert_eq!(budget.held(&Scope::Router).await.unwrap(), Decimal::ZERO);
    // A plain insert replacing the record keeps its mark: a later settle still bills nothing.
    ledger.insert(record("gen-joint", "0.25")).await.unwrap();
    assert!(!budget
        .settle(&hold.id, &scopes, Some(Decimal::ONE))
        .await
        .unwrap());
    assert_eq!(b2.spent(&Scope::Router).await.unwrap(), Decimal::new(25, 2));

    // A reservation settled apart first: its record with the settle is stored, and billed nothing more.
    assert!(budget
        .settle(
            &ReservationId("gen-apart".into()),
            &scopes,
            Some(Decimal::ONE)
        )
        .await
        .unwrap());
    ledger
        .insert_settled(
            record("gen-apart", "1"),
            SettleOrder {
                id: ReservationId("gen-apart".into()),
                scopes: scopes.clone(),
                billed: Decimal::ONE,
            },
        )
        .await
        .unwrap();
    assert!(l2.get("gen-apart").await.unwrap().is_some());
    assert_eq!(
        b2.spent(&Scope::Router).await.unwrap(),
        Decimal::new(125, 2)
    );

    // A settle of another id than the record's is kept in `budget_settled`.
    ledger
        .insert_settled(
            record("gen-other", "0.5"),
            SettleOrder {
                id: ReservationId("res-other".into()),
                scopes: scopes.clone(),
                billed: Decimal::new(5, 1),
            },
        )
        .await
        .unwrap();
    assert!(!budget
        .settle(
            &ReservationId("res-other".into()),
            &scopes,
            Some(Decimal::ONE)
        )
        .await
        .unwrap());
    assert_eq!(
        b2.spent(&Scope::Router).await.unwrap(),
        Decimal::new(175, 2)
    );

    // A settle that fails (the file refuses spend changes) leaves no record, no mark and no spend behind.
    c.execute_batch(
        "CREATE TRIGGER refuse_settles BEFORE UPDATE ON budget_spent
         BEGIN SELECT RAISE(ABORT, 'settles refused'); END;",
    )
    .unwrap();
    let e = ledger
        .insert_settled(
            record("gen-refused", "1"),
            SettleOrder {
                id: ReservationId("gen-refused".into()),
                scopes: scopes.clone(),
                billed: Decimal::ONE,
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("settles refused"), "{e}");
    assert!(l2.get("gen-refused").await.unwrap().is_none());
    assert_eq!(
        b2.spent(&Scope::Router).await.unwrap(),
        Decimal::new(175, 2)
    );
    c.execute_batch("DROP TRIGGER refuse_settles").unwrap();
    assert!(budget
        .settle(
            &ReservationId("gen-refused".into()),
            &scopes,
            Some(Decimal::ONE)
        )
        .await
        .unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

/// Spends are summed exactly in SQL at any scale, a scope listed more times than one statement takes is added
/// each time, and an overflowing sum fails the settle without changing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spends_add_exactly_and_overflow_changes_nothing() {
    let store = SqliteStore::in_memory().unwrap();
    let budget = store.budget();
    let scopes: Vec<Scope> = (0..6).map(|i| Scope::User(format!("u{i}"))).collect();
    let tiny = Decimal::new(1, 27);
    for i in 0..3 {
        let id = ReservationId(format!("s{i}"));
        assert!(budget.settle(&id, &scopes, Some(tiny)).await.unwrap());
    }
    for s in &scopes {
        assert_eq!(budget.spent(s).await.unwrap(), Decimal::new(3, 27), "{s:?}");
    }
    // Five entries, one scope twice: one statement takes four, the rest goes in a second.
    let twice = vec![
        Scope::Router,
        Scope::Key("k".into()),
        Scope::Router,
        Scope::User("x".into()),
        Scope::Key("k2".into()),
    ];
    budget
        .settle(
            &ReservationId("t".into()),
            &twice,
            Some(Decimal::new(15, 1)),
        )
        .await
        .unwrap();
    assert_eq!(
        budget.spent(&Scope::Router).await.unwrap(),
        Decimal::new(3, 0)
    );
    assert_eq!(
        budget.spent(&Scope::Key("k2".into())).await.unwrap(),
        Decimal::new(15, 1)
    );
    // Past Decimal::MAX the settle fails whole: no spend, and the id is not taken.
    let big = vec![Scope::Router];
    let id = ReservationId("huge".into());
    budget
        .settle(&id, &big, Some(Decimal::MAX))
        .await
        .unwrap_err();
    assert_eq!(
        budget.spent(&Scope::Router).await.unwrap(),
        Decimal::new(3, 0)
    );
    assert!(budget.settle(&id, &big, Some(Decimal::ONE)).await.unwrap());
    assert_eq!(
        budget.spent(&Scope::Router).await.unwrap(),
        Decimal::new(4, 0)
    );
}

/// The writer forgets settled ids older than they are kept on its first batch (and then about once a minute),
/// not on every settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_settled_ids_are_forgotten_by_the_writer() {
    let (path, dir) = temp_db("tidy");
    drop(SqliteStore::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "INSERT INTO budget_settled (id, at_ms) VALUES ('ancient', 0);
         INSERT INTO budget_settled (id, at_ms) VALUES ('recent', strftime('%s','now') * 1000);",
    )
    .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    // Any write makes the first batch.
    store
        .budget()
        .settle(&ReservationId("now".into()), &[Scope::Router], None)
        .await
        .unwrap();
    let ids: Vec<String> = c
        .prepare("SELECT id FROM budget_settled ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, ["now", "recent"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// A ledger file written by an earlier version (no `settled` column, settles in `budget_settled` only) opens:
/// it gains the column, its records and settles read as before, and new records settle in their rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_from_an_earlier_version_opens_and_keeps_its_settles() {
    let (path, dir) = temp_db("earlier");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE generations (
                 id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, user_key TEXT, model TEXT NOT NULL,
                 provider TEXT NOT NULL, cost TEXT NOT NULL, free INTEGER NOT NULL, record TEXT NOT NULL
             );
             CREATE INDEX generations_user_time ON generations(user_key, created_ms);
             CREATE INDEX generations_time ON generations(created_ms);
             CREATE TABLE budget_spent (scope TEXT PRIMARY KEY, spent TEXT NOT NULL);
             CREATE TABLE budget_holds (
                 id TEXT NOT NULL, scope TEXT NOT NULL, amount TEXT NOT NULL, expires_ms INTEGER NOT NULL,
                 PRIMARY KEY (id, scope)
             );
             CREATE TABLE budget_settled (id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
             CREATE TABLE rate_events (key TEXT NOT NULL, at_ms INTEGER NOT NULL, amount INTEGER NOT NULL);
             INSERT INTO budget_spent VALUES ('router', '0.5');
             INSERT INTO budget_settled VALUES ('gen-old', strftime('%s','now') * 1000);",
        )
        .unwrap();
        let rec = record("gen-old", "0.5");
        c.execute(
            "INSERT INTO generations VALUES (?1, ?2, 'u', 'test/model', 'alpha', '0.5', 0, ?3)",
            rusqlite::params![rec.id, rec.created_ms, serde_json::to_string(&rec).unwrap()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let (ledger, budget) = (store.ledger(), store.budget());
    assert_eq!(
        ledger.get("gen-old").await.unwrap().unwrap().cost,
        Decimal::new(5, 1)
    );
    let s = ledger.summary(Some("u"), 0).await.unwrap();
    assert_eq!((s.requests, s.cost), (1, Decimal::new(5, 1)));
    // The old settle is still known: settling again or replaying the record with its settle bills nothing.
    let old = ReservationId("gen-old".into());
    assert!(!budget
        .settle(&old, &[Scope::Router], Some(Decimal::ONE))
        .await
        .unwrap());
    ledger
        .insert_settled(
            record("gen-old", "0.5"),
            SettleOrder {
                id: old,
                scopes: vec![Scope::Router],
                billed: Decimal::ONE,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        budget.spent(&Scope::Router).await.unwrap(),
        Decimal::new(5, 1)
    );
    // A new record settles in its row.
    ledger
        .insert_settled(
            record("gen-new", "0.25"),
            SettleOrder {
                id: ReservationId("gen-new".into()),
                scopes: vec![Scope::Router],
                billed: Decimal::new(25, 2),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        budget.spent(&Scope::Router).await.unwrap(),
        Decimal::new(75, 2)
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let marks: Vec<(String, i64)> = c
        .prepare("SELECT id, settled FROM generations ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        marks,
        [("gen-new".to_string(), 1), ("gen-old".to_string(), 0)]
    );
    // Opening it again changes nothing more.
    drop(store);
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.ledger().summary(None, 0).await.unwrap().requests, 2);
    let _ = std::fs::remove_dir_all(dir);
}

/// What a batch is given, for [`one_batch`]: a record settled with it, a settle apart, or an operation that adds
/// to spends and then fails.
#[derive(Debug, Clone)]
enum Step {
    Record {
        id: String,
        scopes: Vec<Scope>,
        billed: Decimal,
    },
    Apart {
        id: String,
        scopes: Vec<Scope>,
        billed: Decimal,
    },
    Fails {
        scopes: Vec<Scope>,
        billed: Decimal,
    },
}

fn keys(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(Scope::as_key).collect()
}

/// Run `steps` in one batch of the writer (they queue while an operation ahead of them keeps it busy); each
/// step's outcome, in order.
async fn one_batch(store: &SqliteStore, steps: &[Step]) -> Vec<bool> {
    let busy = store.write(false, |_| {
        std::thread::sleep(Duration::from_millis(150));
        Ok(())
    });
    let busy = tokio::spawn(busy);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let before = store.commits();
    let (ledger, budget) = (store.ledger(), store.budget());
    let futs: Vec<BoxFut<'_, Result<()>>> = steps
        .iter()
        .map(|s| match s.clone() {
            Step::Record { id, scopes, billed } => ledger.insert_settled(
                record(&id, &billed.to_string()),
                SettleOrder {
                    id: ReservationId(id),
                    scopes,
                    billed,
                },
            ),
            Step::Apart { id, scopes, billed } => {
                let budget = budget.clone();
                Box::pin(async move {
                    budget
                        .settle(&ReservationId(id), &scopes, Some(billed))
                        .await
                        .map(drop)
                }) as BoxFut<'_, Result<()>>
            }
            Step::Fails { scopes, billed } => store.write_op(true, false, move |w| {
                w.add_spent(&keys(&scopes), billed)?;
                Err(internal("this operation fails after adding to spends"))
            }),
        })
        .collect();
    let out = futures::future::join_all(futs).await;
    busy.await.unwrap().unwrap();
    assert_eq!(store.commits() - before, 2, "the steps were not one batch");
    out.into_iter().map(|r| r.is_ok()).collect()
}

/// Spends held back by a batch are the sums one statement per settle made: when an operation of the batch fails
/// (after adding to spends, or because a scope's spend cannot be written), the spends are exactly those of the
/// settles that committed, in their order; the failed ones leave no record and no spend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operation_in_a_batch_leaves_the_spends_of_those_that_committed() {
    let store = SqliteStore::in_memory().unwrap();
    let budget = store.budget();
    let (good, bad) = (Scope::Key("good".into()), Scope::Key("bad".into()));
    // `bad` has a row the file refuses to change.
    budget
        .settle(
            &ReservationId("seed".into()),
            std::slice::from_ref(&bad),
            Some(Decimal::ONE),
        )
        .await
        .unwrap();
    store
        .write(false, |w| {
            w.execute_batch(
                "CREATE TRIGGER refuse_bad BEFORE UPDATE ON budget_spent WHEN OLD.scope = 'key:bad'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .map_err(|e| db(&e))
        })
        .await
        .unwrap();
    let both = vec![Scope::Router, good.clone()];
    let steps = vec![
        Step::Record {
            id: "gen-a".into(),
            scopes: both.clone(),
            billed: Decimal::new(1, 1),
        },
        Step::Fails {
            scopes: both.clone(),
            billed: Decimal::new(7, 0),
        },
        Step::Record {
            id: "gen-b".into(),
            scopes: vec![Scope::Router, bad.clone()],
            billed: Decimal::new(5, 0),
        },
        Step::Record {
            id: "gen-c".into(),
            scopes: both.clone(),
            billed: Decimal::new(2, 1),
        },
        Step::Apart {
            id: "res-d".into(),
            scopes: both.clone(),
            billed: Decimal::new(3, 2),
        },
        Step::Record {
            id: "gen-a".into(),
            scopes: both.clone(),
            billed: Decimal::new(1, 1),
        },
    ];
    let ok = one_batch(&store, &steps).await;
    assert_eq!(ok, [true, false, false, true, true, true]);
    assert_eq!(
        budget.spent(&Scope::Router).await.unwrap(),
        Decimal::new(33, 2)
    );
    assert_eq!(budget.spent(&good).await.unwrap(), Decimal::new(33, 2));
    assert_eq!(budget.spent(&bad).await.unwrap(), Decimal::ONE);
    let ledger = store.ledger();
    assert!(ledger.get("gen-b").await.unwrap().is_none());
    assert_eq!(ledger.summary(None, 0).await.unwrap().requests, 2);
}

/// Keep the writer busy for 150 ms, so that what is sent meanwhile is applied as one batch.
async fn hold_writer(store: &SqliteStore) -> tokio::task::JoinHandle<Result<()>> {
    let busy = tokio::spawn(store.write(false, |_| {
        std::thread::sleep(Duration::from_millis(150));
        Ok(())
    }));
    tokio::time::sleep(Duration::from_millis(30)).await;
    busy
}

/// A hold placed in the batch that settled the scope sees the settle (the spend held back counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_sees_the_spends_its_batch_holds_back() {
    let store = SqliteStore::in_memory().unwrap();
    let (ledger, budget) = (store.ledger(), store.budget());
    let key = Scope::Key("k".into());
    let busy = hold_writer(&store).await;
    let settle = ledger.insert_settled(
        record("gen-1", "8"),
        SettleOrder {
            id: ReservationId("gen-1".into()),
            scopes: vec![key.clone()],
            billed: Decimal::new(8, 0),
        },
    );
    let hold = budget.reserve(&HoldRequest {
        id: ReservationId("gen-2".into()),
        amount: Decimal::new(3, 0),
        scopes: vec![ScopeLimit {
            scope: key.clone(),
            limit: Some(Decimal::TEN),
        }],
        ttl: Duration::from_secs(60),
    });
    let (settle, hold) = tokio::join!(settle, hold);
    busy.await.unwrap().unwrap();
    settle.unwrap();
    assert!(
        matches!(hold.unwrap(), Reserved::Refused(r) if r.spent == Decimal::new(8, 0)),
        "the hold did not see the settle of its batch"
    );
}

mod model {
    use super::*;
    use proptest::prelude::*;

    fn amount() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (0i64..100_000, 0u32..10).prop_map(|(m, s)| Decimal::new(m, s)),
            // Long fractions and large sums: the sums round, so their order shows.
            (1i64..i64::MAX, 20u32..28).prop_map(|(m, s)| Decimal::new(m, s)),
            (1i64..1_000_000, 0u32..2)
                .prop_map(|(m, s)| Decimal::new(m, s) + Decimal::from(10u64.pow(12))),
            // Past the largest decimal once a few are summed.
            Just(Decimal::MAX / Decimal::new(3, 0)),
        ]
    }

    fn scopes() -> impl Strategy<Value = Vec<Scope>> {
        proptest::sample::subsequence(
            vec![
                Scope::Router,
                Scope::Key("k1".into()),
                Scope::Key("k2".into()),
                Scope::User("u".into()),
            ],
            1..=4,
        )
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u8..12, scopes(), amount()).prop_map(|(i, scopes, billed)| Step::Record {
                id: format!("gen-{i}"), scopes, billed
            }),
            2 => (0u8..12, scopes(), amount()).prop_map(|(i, scopes, billed)| Step::Apart {
                id: format!("gen-{i}"), scopes, billed
            }),
            1 => (scopes(), amount()).prop_map(|(scopes, billed)| Step::Fails { scopes, billed }),
        ]
    }

    /// The spends, settled ids and records one operation at a time would leave, and each step's outcome.
    #[derive(Default)]
    struct Model {
        spent: std::collections::BTreeMap<String, Decimal>,
        settled: std::collections::BTreeSet<String>,
        records: std::collections::BTreeSet<String>,
    }

    impl Model {
        /// Add to each scope in turn, as one statement per settle did (a new scope starts at the amount);
        /// None (nothing changed) past the largest decimal.
        fn add(&mut self, scopes: &[Scope], billed: Decimal) -> Option<()> {
            let mut next = self.spent.clone();
            for k in keys(scopes) {
                let v = match next.get(&k) {
                    Some(s) => s.checked_add(billed)?,
                    None => billed,
                };
                next.insert(k, v);
            }
            self.spent = next;
            Some(())
        }

        fn step(&mut self, s: &Step) -> bool {
            match s {
                Step::Record { id, scopes, billed } => {
                    if !self.settled.contains(id) {
                        if self.add(scopes, *billed).is_none() {
                            return false;
                        }
                        self.settled.insert(id.clone());
                    }
                    self.records.insert(id.clone());
                    true
                }
                Step::Apart { id, scopes, billed } => {
                    if !self.settled.contains(id) {
                        if self.add(scopes, *billed).is_none() {
                            return false;
                        }
                        self.settled.insert(id.clone());
                    }
                    true
                }
                Step::Fails { .. } => false,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Batches of records, settles apart, replays, overflowing and failing operations leave exactly the
        /// spends (to the last digit and scale) and records of running the steps one at a time.
        #[test]
        fn batches_leave_the_spends_of_one_operation_at_a_time(
            batches in proptest::collection::vec(proptest::collection::vec(step(), 1..24), 1..4)
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let store = SqliteStore::in_memory().unwrap();
                let mut model = Model::default();
                for steps in &batches {
                    let want: Vec<bool> = steps.iter().map(|s| model.step(s)).collect();
                    let got = one_batch(&store, steps).await;
                    assert_eq!(got, want, "{steps:?}");
                }
                let budget = store.budget();
                for scope in [
                    Scope::Router,
                    Scope::Key("k1".into()),
                    Scope::Key("k2".into()),
                    Scope::User("u".into()),
                ] {
                    let want = model.spent.get(&scope.as_key()).copied().unwrap_or_default();
                    let got = budget.spent(&scope).await.unwrap();
                    assert_eq!(got.to_string(), want.to_string(), "{scope:?}");
                }
                let ledger = store.ledger();
                for i in 0..12 {
                    let id = format!("gen-{i}");
                    assert_eq!(
                        ledger.get(&id).await.unwrap().is_some(),
                        model.records.contains(&id),
                        "{id}"
                    );
                }
            });
        }
    }
}

/// The writer knows within a batch whether holds or separate settles exist: a hold placed after a record found
/// none is still dropped when its own record settles it in the same batch, and a settle apart is still seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_settles_placed_in_a_batch_are_seen_by_its_records() {
    let store = SqliteStore::in_memory().unwrap();
    let (ledger, budget) = (store.ledger(), store.budget());
    let key = Scope::Key("k".into());
    let busy = hold_writer(&store).await;
    let order = |id: &str, billed: i64| SettleOrder {
        id: ReservationId(id.into()),
        scopes: vec![key.clone()],
        billed: Decimal::new(billed, 0),
    };
    let first = ledger.insert_settled(record("gen-1", "1"), order("gen-1", 1));
    let hold = budget.reserve(&HoldRequest {
        id: ReservationId("gen-2".into()),
        amount: Decimal::new(3, 0),
        scopes: vec![ScopeLimit {
            scope: key.clone(),
            limit: Some(Decimal::new(100, 0)),
        }],
        ttl: Duration::from_secs(60),
    });
    let apart = budget.settle(
        &ReservationId("gen-3".into()),
        std::slice::from_ref(&key),
        Some(Decimal::TEN),
    );
    let second = ledger.insert_settled(record("gen-2", "2"), order("gen-2", 2));
    let third = ledger.insert_settled(record("gen-3", "5"), order("gen-3", 5));
    let (first, hold, apart, second, third) = tokio::join!(first, hold, apart, second, third);
    busy.await.unwrap().unwrap();
    first.unwrap();
    assert_eq!(hold.unwrap(), Reserved::Held);
    assert!(apart.unwrap());
    second.unwrap();
    third.unwrap();
    assert_eq!(budget.held(&key).await.unwrap(), Decimal::ZERO);
    assert_eq!(budget.spent(&key).await.unwrap(), Decimal::new(13, 0));
    assert_eq!(ledger.summary(None, 0).await.unwrap().requests, 3);
    assert_eq!(Scope::User("u".into()).as_key(), "user:u");
    assert_eq!(Scope::Key("k".into()).as_key(), "key:k");
    assert_eq!(Scope::Router.as_key(), "router");
}

/// Settles noted with their records (a Redis budget beside this ledger) are kept in the file: a reopened ledger
/// lists them (the battery's `ledger_notes_settles` checks the rest, in `tests/state.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noted_settles_outlive_a_reopen() {
    let (path, dir) = temp_db("noted-settles");
    let order = SettleOrder {
        id: ReservationId("n-1".into()),
        scopes: vec![Scope::Router, Scope::Key("k1".into())],
        billed: "0.25".parse().unwrap(),
    };
    {
        let led = SqliteLedger::open(&path).unwrap();
        let mut rec = record("n-1", "0.25");
        rec.created_ms = 1_000;
        assert!(led.insert_noting_settle(rec, &order).await.unwrap());
    }
    let led = SqliteLedger::open(&path).unwrap();
    assert_eq!(
        led.pending_settles(i64::MAX, 10).await.unwrap(),
        [PendingSettle {
            order,
            created_ms: 1_000
        }]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The detail lines of SQLite's plan for `sql` on a ledger's schema.
fn query_plan(sql: &str) -> String {
    let mut conn = Connection::open_in_memory().unwrap();
    init(&mut conn).unwrap();
    let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let nulls = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
    let rows = st
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
}

/// One user's listing and summary search `generations_user_time` (that user's rows of the period only); every
/// user's search `generations_time`.
#[test]
fn a_users_listing_and_summary_use_the_users_index() {
    for sql in [
        queries::list_sql(Some("u")),
        queries::summary_sql(Some("u")),
    ] {
        let plan = query_plan(&sql);
        assert!(
            plan.contains("USING INDEX generations_user_time (user_key=? AND created_ms>?)"),
            "{sql}: {plan}"
        );
    }
    for sql in [queries::list_sql(None), queries::summary_sql(None)] {
        let plan = query_plan(&sql);
        assert!(
            plan.contains("USING INDEX generations_time (created_ms>?)"),
            "{sql}: {plan}"
        );
    }
}
