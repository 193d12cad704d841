//! The ledger spool and the settles noted with its records: spooled with them while the ledger is down, listed
//! for a sweep meanwhile, replayed as notes of the ledger (also by a restarted process), and forgotten once they
//! landed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::state::memory::MemoryBudget;
use crate::state::sqlite::SqliteLedger;
use crate::state::sweep_settles;

/// An SQLite ledger (which keeps noted settles) that fails every call while `down`, but for `allow` calls.
struct Flaky {
    inner: SqliteLedger,
    down: AtomicBool,
    allow: AtomicUsize,
}

impl Flaky {
    fn check(&self) -> Result<()> {
        let allowed = self
            .allow
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if self.down.load(Ordering::Acquire) && !allowed {
            return Err(Error::Internal {
                message: "test ledger is down".into(),
            });
        }
        Ok(())
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Release);
    }
}

impl Ledger for Flaky {
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>> {
        Box::pin(async move {
            self.check()?;
            self.inner.insert(rec).await
        })
    }

    fn insert_noting_settle(
        &self,
        rec: GenerationRecord,
        settle: &SettleOrder,
    ) -> BoxFut<'_, Result<bool>> {
        let settle = settle.clone();
        Box::pin(async move {
            self.check()?;
            self.inner.insert_noting_settle(rec, &settle).await
        })
    }

    fn settles_landed(&self, ids: &[ReservationId]) -> BoxFut<'_, Result<()>> {
        let ids = ids.to_vec();
        Box::pin(async move {
            self.check()?;
            self.inner.settles_landed(&ids).await
        })
    }

    fn pending_settles(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<PendingSettle>>> {
        Box::pin(async move {
            self.check()?;
            self.inner.pending_settles(before_ms, limit).await
        })
    }

    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>> {
        let id = id.to_string();
        Box::pin(async move {
            self.check()?;
            self.inner.get(&id).await
        })
    }

    fn list(&self, q: LedgerQuery) -> BoxFut<'_, Result<Vec<GenerationRecord>>> {
        self.inner.list(q)
    }

    fn summary(&self, user: Option<&str>, since_ms: i64) -> BoxFut<'_, Result<SpendSummary>> {
        self.inner.summary(user, since_ms)
    }

    fn activity(&self, q: ActivityQuery) -> BoxFut<'_, Result<Vec<ActivityRow>>> {
        self.inner.activity(q)
    }

    fn totals(&self) -> BoxFut<'_, Result<Totals>> {
        self.inner.totals()
    }

    fn usage(&self, q: UsageQuery) -> BoxFut<'_, Result<Vec<UsageRow>>> {
        self.inner.usage(q)
    }
}

/// A fresh directory, a flaky SQLite ledger in it (up), and the spool's path.
fn setup(name: &str) -> (PathBuf, Arc<Flaky>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("polyroute-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let flaky = Arc::new(Flaky {
        inner: SqliteLedger::open(&dir.join("ledger.sqlite")).unwrap(),
        down: AtomicBool::new(false),
        allow: AtomicUsize::new(0),
    });
    let spool = dir.join("ledger-spool.jsonl");
    (dir, flaky, spool)
}

/// The battery's record, for user `u`.
fn record(id: &str, created_ms: i64, cost: &str) -> GenerationRecord {
    crate::state::battery::record(id, Some("u"), created_ms, cost)
}

fn order(id: &str, billed: &str) -> SettleOrder {
    SettleOrder {
        id: ReservationId(id.into()),
        scopes: vec![
            Scope::Router,
            Scope::User("u".into()),
            Scope::Key("k1".into()),
        ],
        billed: billed.parse().unwrap(),
    }
}

fn pending(order: &SettleOrder, created_ms: i64) -> PendingSettle {
    PendingSettle {
        order: order.clone(),
        created_ms,
    }
}

/// With the ledger down, a settle noted with its record is spooled in the record's line and answered as noted;
/// the replay inserts the record with its note (scopes and billed amount intact), and the engine's later
/// `settles_landed` forgets it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_spooled_while_the_ledger_is_down_replays_as_a_note() {
    let (dir, flaky, path) = setup("noted");
    let spool = SpoolLedger::new(flaky.clone(), path);
    flaky.set_down(true);
    let (rec, o) = (record("gen-n1", 1_000, "0.25"), order("gen-n1", "0.25"));
    assert!(spool.insert_noting_settle(rec.clone(), &o).await.unwrap());
    assert!(spool.pending());
    let text = std::fs::read_to_string(spool.path()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let line: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        line[SPOOL_SETTLE],
        serde_json::json!({"id": "gen-n1", "scopes": ["router", "user:u", "key:k1"], "billed": "0.25"})
    );
    assert_eq!(spool.get("gen-n1").await.unwrap(), Some(rec.clone()));
    assert!(spool.replay().await.is_err(), "the ledger is still down");

    flaky.set_down(false);
    assert_eq!(spool.replay().await.unwrap(), 1);
    assert!(!spool.pending());
    assert_eq!(
        flaky.inner.pending_settles(i64::MAX, 10).await.unwrap(),
        [pending(&o, 1_000)]
    );
    assert_eq!(flaky.inner.get("gen-n1").await.unwrap(), Some(rec));
    spool
        .settles_landed(std::slice::from_ref(&o.id))
        .await
        .unwrap();
    assert_eq!(flaky.inner.pending_settles(i64::MAX, 10).await.unwrap(), []);
    let _ = std::fs::remove_dir_all(dir);
}

/// A spool an older version left (bare records, no settle member), then appended to by this one, replays
/// every record; only the line spooled with a settle brings a note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_of_bare_records_from_an_older_version_still_replays() {
    let (dir, flaky, path) = setup("old-format");
    let old = record("gen-old", 1_000, "1.5");
    std::fs::write(&path, format!("{}\n", serde_json::to_string(&old).unwrap())).unwrap();
    let spool = SpoolLedger::new(flaky.clone(), path);
    assert!(spool.pending());
    assert_eq!(spool.pending_settles(i64::MAX, 10).await.unwrap(), []);
    flaky.set_down(true);
    let (noted, o) = (record("gen-new", 2_000, "0.5"), order("gen-new", "0.5"));
    assert!(spool.insert_noting_settle(noted.clone(), &o).await.unwrap());
    let plain = record("gen-plain", 3_000, "2");
    spool.insert(plain.clone()).await.unwrap();

    flaky.set_down(false);
    assert_eq!(spool.replay().await.unwrap(), 3);
    for r in [old, noted, plain] {
        assert_eq!(flaky.inner.get(&r.id).await.unwrap(), Some(r));
    }
    assert_eq!(
        flaky.inner.pending_settles(i64::MAX, 10).await.unwrap(),
        [pending(&o, 2_000)]
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A process killed with notes in its spool: the next one opened on the file lists them (oldest first, by
/// creation, at most the limit) while the ledger is still down, and its replay inserts them as notes of the
/// ledger, for any replica's sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_replays_the_spooled_notes() {
    let (dir, flaky, path) = setup("restart");
    let (o1, o2) = (order("gen-r1", "0.25"), order("gen-r2", "3"));
    flaky.set_down(true);
    {
        let spool = SpoolLedger::new(flaky.clone(), path.clone());
        assert!(spool
            .insert_noting_settle(record("gen-r2", 2_000, "3"), &o2)
            .await
            .unwrap());
        assert!(spool
            .insert_noting_settle(record("gen-r1", 1_000, "0.25"), &o1)
            .await
            .unwrap());
    }
    let spool = SpoolLedger::new(flaky.clone(), path);
    assert!(spool.pending());
    let both = [pending(&o1, 1_000), pending(&o2, 2_000)];
    assert_eq!(spool.pending_settles(i64::MAX, 10).await.unwrap(), both);
    assert_eq!(
        spool.pending_settles(1_500, 10).await.unwrap(),
        [pending(&o1, 1_000)]
    );
    assert_eq!(
        spool.pending_settles(i64::MAX, 1).await.unwrap(),
        [pending(&o1, 1_000)]
    );

    flaky.set_down(false);
    assert_eq!(spool.replay().await.unwrap(), 2);
    assert_eq!(
        flaky.inner.pending_settles(i64::MAX, 10).await.unwrap(),
        both
    );
    assert_eq!(spool.pending_settles(i64::MAX, 10).await.unwrap(), both);
    let _ = std::fs::remove_dir_all(dir);
}

/// A settle that landed while its record sat in the spool is forgotten there, even with the ledger down, and
/// its record replays without a note, also after a replay that failed part way had inserted the note. Ids
/// not in the spool still go to the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_landed_before_the_replay_is_replayed_without_its_note() {
    let (dir, flaky, path) = setup("landed");
    let spool = SpoolLedger::new(flaky.clone(), path);
    let (o1, o2, o3) = (
        order("gen-l1", "1"),
        order("gen-l2", "2"),
        order("gen-l3", "4"),
    );
    flaky.set_down(true);
    for (o, at) in [(&o1, 1_000), (&o2, 2_000), (&o3, 3_000)] {
        let rec = record(&o.id.0, at, &o.billed.to_string());
        assert!(spool.insert_noting_settle(rec, o).await.unwrap());
    }
    spool
        .settles_landed(std::slice::from_ref(&o1.id))
        .await
        .unwrap();
    assert!(spool
        .settles_landed(&[ReservationId("gen-elsewhere".into())])
        .await
        .is_err());
    assert_eq!(
        spool.pending_settles(i64::MAX, 10).await.unwrap(),
        [pending(&o2, 2_000), pending(&o3, 3_000)]
    );

    // A replay that inserts gen-l1 (landed: alone) and gen-l2 (with its note), then fails on gen-l3.
    flaky.allow.store(2, Ordering::Release);
    assert!(spool.replay().await.is_err());
    assert!(spool.pending());
    assert_eq!(flaky.allow.load(Ordering::Acquire), 0);
    // gen-l2's settle lands now: its note is still the spool's (and, from the failed replay, the ledger's).
    spool
        .settles_landed(std::slice::from_ref(&o2.id))
        .await
        .unwrap();

    flaky.set_down(false);
    assert_eq!(spool.replay().await.unwrap(), 3);
    assert_eq!(
        flaky.inner.pending_settles(i64::MAX, 10).await.unwrap(),
        [pending(&o3, 3_000)]
    );
    for o in [&o1, &o2, &o3] {
        assert!(flaky.inner.get(&o.id.0).await.unwrap().is_some());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A sweep in this process applies the spooled notes while the ledger is down (once: a second sweep finds
/// them landed), and their records replay without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_applies_spooled_notes_while_the_ledger_is_down() {
    let (dir, flaky, path) = setup("sweep");
    let spool = SpoolLedger::new(flaky.clone(), path);
    let budget = MemoryBudget::default();
    let o = order("gen-s1", "0.75");
    flaky.set_down(true);
    let at = crate::router::now_ms() - 1_000;
    assert!(spool
        .insert_noting_settle(record("gen-s1", at, "0.75"), &o)
        .await
        .unwrap());
    assert_eq!(
        sweep_settles(&spool, &budget, Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    for s in &o.scopes {
        assert_eq!(budget.spent(s).await.unwrap(), o.billed, "{s:?}");
    }
    assert!(sweep_settles(&spool, &budget, Duration::ZERO)
        .await
        .is_err());

    flaky.set_down(false);
    assert_eq!(spool.replay().await.unwrap(), 1);
    assert_eq!(flaky.inner.pending_settles(i64::MAX, 10).await.unwrap(), []);
    assert_eq!(
        sweep_settles(&spool, &budget, Duration::ZERO)
            .await
            .unwrap(),
        0
    );
    assert_eq!(budget.spent(&Scope::Router).await.unwrap(), o.billed);
    let _ = std::fs::remove_dir_all(dir);
}
