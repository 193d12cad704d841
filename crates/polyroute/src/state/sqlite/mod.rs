//! SQLite stores: ledger, budget and rate windows in one file (WAL), durable across restarts and shared by the
//! processes that open the same file (nothing is cached in process: every call reads or changes the file).
//!
//! Writes go through one writer thread per store ([`writer`]): it takes whatever arrived while it was busy and
//! commits it at once (group commit, one transaction in arrival order, WAL frames written without a sync), then
//! answers budget and rate-window changes (durable when the process dies, not necessarily when the machine loses
//! power). A generation record is on disk when its insert returns: a syncer thread `fdatasync`s the WAL after
//! the commit, once for every batch committed meanwhile, and only then answers the batch's inserts, while the
//! writer goes on with the next batch, so holds and settles never wait for a disk (a settle written with its
//! record, [`Ledger::insert_settled`], is answered with the record: one write, so a crash keeps both or neither,
//! and one operation for the writer instead of two). A budget hold is checked and
//! placed by one operation of the writer, after every budget operation that arrived before it, so holds stay
//! atomic. Reads use their own connections (WAL lets them run beside the writer) on Tokio's blocking pool when a
//! runtime is current, and see every write that has returned (and a committed record a moment before its insert
//! returns, while the sync runs); an in-memory database (one connection only) reads through its writer.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use polyroute_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use super::{
    now_ms, ActivityQuery, ActivityRow, BoxFut, Budget, GenerationRecord, HoldRequest, Ledger,
    LedgerQuery, PendingSettle, RateDecision, RateLimiter, ReservationId, Reserved, Scope,
    SettleOrder, Span, SpendSummary, Totals, UsageQuery, UsageRow, Window,
};

mod queries;
#[cfg(test)]
mod tests;
mod writer;

fn internal(m: impl Into<String>) -> Error {
    Error::Internal { message: m.into() }
}

fn db(e: &rusqlite::Error) -> Error {
    internal(format!("sqlite store: {e}"))
}

/// Read connections kept open between reads (more are opened while many reads run at once, then closed).
const READERS_KEPT: usize = 4;

/// Prepared statements each connection keeps (rusqlite keeps 16 by default; the writer runs about 20).
const STATEMENTS_KEPT: usize = 64;

/// One SQLite file holding the ledger (`generations`), the budget (`budget_spent`, `budget_holds`,
/// `budget_settled`, and the `settled` mark of a record settled with its own reservation) and the rate windows
/// (`rate_events`). Open it once; [`SqliteStore::ledger`],
/// [`SqliteStore::budget`] and [`SqliteStore::rate`] share its writer and read connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The writer's queue (bounded: callers wait for room).
    jobs: mpsc::Sender<Box<dyn writer::Op>>,
    /// Wakes a writer that sleeps on its open batch while the syncer is busy, for an operation that must not
    /// wait for a disk.
    pace: Arc<writer::Pace>,
    /// Where read connections come from; None for an in-memory database (reads go through the writer).
    path: Option<std::path::PathBuf>,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
    /// Batches the writer has committed, WAL syncs the syncer has done.
    counts: Arc<writer::Counts>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The ledger of a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteLedger(SqliteStore);

/// The budget of a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteBudget(SqliteStore);

/// The rate windows of a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteRate(SqliteStore);

/// Create a missing database file readable by its owner only (`0600`; SQLite gives its `-wal` and `-shm` files
/// the same mode). Best effort: SQLite reports the error that matters when it opens the file.
fn create_private(path: &Path) {
    let name = path.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let _ = o.open(path);
}

/// Whether `path` names a database that lives in one connection's memory.
fn in_memory_path(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.is_empty()
        || name == ":memory:"
        || (name.starts_with("file:") && name.contains("mode=memory"))
}

/// Create the tables (a ledger written by an earlier version gains the budget tables, with each scope's spend
/// seeded from its generations); whether the file is in WAL mode.
fn init(conn: &mut Connection) -> Result<bool> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| db(&e))?;
    conn.execute_batch(
        "PRAGMA synchronous=FULL;
         PRAGMA busy_timeout=5000;",
    )
    .map_err(|e| db(&e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| db(&e))?;
    let had_budget: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='budget_spent'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| db(&e))?
        > 0;
    let had_generations: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='generations'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| db(&e))?
        > 0;
    // `generations_user` (an earlier version's index on `user_key` alone) is dropped: `generations_user_time`
    // serves the same lookups, and every insert paid for both. `settled` (1: the reservation of the record's
    // own id was settled with it, [`Ledger::insert_settled`]) marks in the record's row what `budget_settled`
    // would otherwise hold, so such a record writes one row and its indexes, not three more trees.
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS generations (
             id TEXT PRIMARY KEY,
             created_ms INTEGER NOT NULL,
             user_key TEXT,
             model TEXT NOT NULL,
             provider TEXT NOT NULL,
             cost TEXT NOT NULL,
             free INTEGER NOT NULL,
             record TEXT NOT NULL,
             settled INTEGER NOT NULL DEFAULT 0
         );
         DROP INDEX IF EXISTS generations_user;
         CREATE INDEX IF NOT EXISTS generations_user_time ON generations(user_key, created_ms);
         CREATE INDEX IF NOT EXISTS generations_time ON generations(created_ms);
         CREATE TABLE IF NOT EXISTS budget_spent (scope TEXT PRIMARY KEY, spent TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS budget_holds (
             id TEXT NOT NULL, scope TEXT NOT NULL, amount TEXT NOT NULL, expires_ms INTEGER NOT NULL,
             PRIMARY KEY (id, scope)
         );
         CREATE INDEX IF NOT EXISTS budget_holds_scope ON budget_holds(scope, expires_ms);
         CREATE INDEX IF NOT EXISTS budget_holds_expiry ON budget_holds(expires_ms);
         CREATE TABLE IF NOT EXISTS budget_settled (id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS budget_settled_at ON budget_settled(at_ms);
         CREATE TABLE IF NOT EXISTS rate_events (key TEXT NOT NULL, at_ms INTEGER NOT NULL, amount INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS rate_events_key ON rate_events(key, at_ms);
         CREATE TABLE IF NOT EXISTS settles_pending (
             id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, scopes TEXT NOT NULL, billed TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS settles_pending_time ON settles_pending(created_ms);",
    )
    .map_err(|e| db(&e))?;
    // A ledger written by an earlier version gains the column (its settles are all in `budget_settled`).
    if had_generations && !queries::has_settled_column(&tx)? {
        tx.execute_batch("ALTER TABLE generations ADD COLUMN settled INTEGER NOT NULL DEFAULT 0")
            .map_err(|e| db(&e))?;
    }
    if !had_budget {
        let t = queries::totals(&tx)?;
        for (s, c) in super::seed_scopes(&t) {
            queries::set_spent(&tx, &s.as_key(), c)?;
        }
    }
    tx.commit().map_err(|e| db(&e))?;
    Ok(mode.eq_ignore_ascii_case("wal"))
}

impl SqliteStore {
    /// Open (or create) the file and start its writer thread. A ledger written by an earlier version gains the
    /// budget tables, with each scope's spend seeded from its generations.
    ///
    /// # Errors
    /// The file cannot be opened or initialized.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, None)
    }

    /// [`SqliteStore::open`], with `sync` (tests) in place of the WAL file's own sync.
    fn open_with(path: &Path, sync: Option<writer::SyncFn>) -> Result<Self> {
        create_private(path);
        let mut conn = Connection::open(path).map_err(|e| db(&e))?;
        let wal = init(&mut conn)?;
        let file = conn
            .path()
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        // Without a WAL file of its own to sync (in memory, or not in WAL mode), the writer syncs as it commits.
        let sync = match (sync, wal, file) {
            (Some(f), _, _) => Some(f),
            (None, true, Some(file)) => writer::WalFile::open(&file).ok().map(|mut w| {
                let f: writer::SyncFn = Box::new(move || w.sync());
                f
            }),
            _ => None,
        };
        queries::register_functions(&conn)?;
        let counts = Arc::new(writer::Counts::default());
        let (jobs, pace) = writer::spawn(conn, sync, counts.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                pace,
                path: (!in_memory_path(path)).then(|| path.to_path_buf()),
                readers: Mutex::new(Vec::new()),
                counts,
            }),
        })
    }

    /// Transactions the writer has committed since the store was opened (each holds every write that arrived
    /// while the one before was committing): with many concurrent writers, far fewer than the writes.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.inner.counts.commits.load(Ordering::Relaxed)
    }

    /// Syncs of the write-ahead log since the store was opened (each makes every record committed before it
    /// durable): at most one per commit.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.inner.counts.syncs.load(Ordering::Relaxed)
    }

    /// A private in-memory database (tests).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn in_memory() -> Result<Self> {
        Self::open(Path::new(":memory:"))
    }

    /// The ledger.
    #[must_use]
    pub fn ledger(&self) -> SqliteLedger {
        SqliteLedger(self.clone())
    }

    /// The budget.
    #[must_use]
    pub fn budget(&self) -> SqliteBudget {
        SqliteBudget(self.clone())
    }

    /// The rate windows.
    #[must_use]
    pub fn rate(&self) -> SqliteRate {
        SqliteRate(self.clone())
    }

    /// Run `f` in the writer's next batch, after every operation queued before it; answers once the batch has
    /// committed (on disk when `durable`). `f` may run any SQL: the spends the batch holds back are written
    /// before it runs.
    fn write<'a, T, F>(&self, durable: bool, f: F) -> BoxFut<'a, Result<T>>
    where
        T: Send + 'static,
        F: Fn(&writer::Writer<'_>) -> Result<T> + Send + 'static,
    {
        self.write_op(durable, true, f)
    }

    /// [`SqliteStore::write`] of an operation that reads and changes spends only through the writer
    /// ([`writer::Writer::spent`], [`writer::Writer::add_spent`]), so that they stay held back for the batch
    /// (`raw` false).
    fn write_op<'a, T, F>(&self, durable: bool, raw: bool, f: F) -> BoxFut<'a, Result<T>>
    where
        T: Send + 'static,
        F: Fn(&writer::Writer<'_>) -> Result<T> + Send + 'static,
    {
        let (op, rx) = writer::Pending::boxed(durable, raw, f);
        let jobs = self.inner.jobs.clone();
        let pace = (!durable).then(|| self.inner.pace.clone());
        Box::pin(async move {
            jobs.send(op)
                .await
                .map_err(|_| internal("sqlite store: its writer has stopped"))?;
            // Queued first, then the kick: a writer that went to sleep before the operation was queued wakes.
            if let Some(p) = pace {
                p.kick();
            }
            rx.await
                .map_err(|_| internal("sqlite store: its writer stopped before answering"))?
        })
    }

    /// Run the query `f` on a read connection (on the blocking pool when a Tokio runtime is current), or through
    /// the writer for an in-memory database.
    fn read<'a, T, F>(&self, f: F) -> BoxFut<'a, Result<T>>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Send + 'static,
    {
        if self.inner.path.is_none() {
            return self.write(false, move |w| f(w));
        }
        let inner = self.inner.clone();
        let call = move || {
            let conn = inner.reader()?;
            let r = f(&conn);
            inner.put_back(conn);
            r
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                let task = h.spawn_blocking(call);
                Box::pin(async move {
                    task.await
                        .map_err(|e| internal(format!("sqlite store task: {e}")))?
                })
            }
            Err(_) => Box::pin(std::future::ready(call())),
        }
    }
}

impl Inner {
    /// An idle read connection, or a new one.
    fn reader(&self) -> Result<Connection> {
        if let Some(c) = self.readers.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let path = self
            .path
            .as_deref()
            .ok_or_else(|| internal("sqlite store: no file to read"))?;
        let c = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db(&e))?;
        c.execute_batch("PRAGMA busy_timeout=5000; PRAGMA query_only=1;")
            .map_err(|e| db(&e))?;
        c.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        Ok(c)
    }

    /// Keep `c` for the next read (up to [`READERS_KEPT`]).
    fn put_back(&self, c: Connection) {
        if let Ok(mut v) = self.readers.lock() {
            if v.len() < READERS_KEPT {
                v.push(c);
            }
        }
    }
}

impl SqliteLedger {
    /// Open (or create) a ledger file (with the budget and rate tables beside it).
    ///
    /// # Errors
    /// When the file cannot be opened or initialized.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(SqliteStore::open(path)?.ledger())
    }

    /// An in-memory SQLite database (for tests).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn in_memory() -> Result<Self> {
        Ok(SqliteStore::in_memory()?.ledger())
    }

    /// The store this ledger is part of.
    #[must_use]
    pub fn store(&self) -> &SqliteStore {
        &self.0
    }
}

impl Ledger for SqliteLedger {
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>> {
        // Serialized by the caller's task, not the writer thread: the writer only runs SQL.
        let json = rec.to_json_string();
        self.0
            .write_op(true, false, move |c| queries::insert(c, &rec, &json))
    }

    fn settles_with(&self, budget: &dyn Budget) -> bool {
        budget
            .as_any()
            .and_then(|a| a.downcast_ref::<SqliteBudget>())
            .is_some_and(|b| Arc::ptr_eq(&b.0.inner, &self.0.inner))
    }

    fn insert_settled(&self, rec: GenerationRecord, settle: SettleOrder) -> BoxFut<'_, Result<()>> {
        let json = rec.to_json_string();
        let scopes: Vec<String> = settle.scopes.iter().map(Scope::as_key).collect();
        // One operation, so one savepoint: a failed settle takes the insert back with it.
        self.0.write_op(true, false, move |c| {
            if settle.id.0 == rec.id {
                return queries::insert_settled(c, &rec, &json, &scopes, settle.billed);
            }
            queries::insert(c, &rec, &json)?;
            queries::settle(c, &settle.id.0, &scopes, Some(settle.billed)).map(drop)
        })
    }

    /// The record and its note (`settles_pending`) in one operation, so one transaction: after a crash both are
    /// there or neither is. The scopes are kept as a JSON array of their text forms.
    fn insert_noting_settle(
        &self,
        rec: GenerationRecord,
        settle: &SettleOrder,
    ) -> BoxFut<'_, Result<bool>> {
        let json = rec.to_json_string();
        let noted = settle.id.0 == rec.id;
        let scopes: Vec<String> = settle.scopes.iter().map(Scope::as_key).collect();
        let scopes = serde_json::to_string(&scopes).unwrap_or_default();
        let billed = settle.billed;
        let fut = self.0.write_op(true, false, move |w| {
            queries::insert(w, &rec, &json)?;
            if noted {
                queries::note_settle(w, &rec.id, rec.created_ms, &scopes, billed)?;
            }
            Ok(())
        });
        Box::pin(async move { fut.await.map(|()| noted) })
    }

    fn settles_landed(&self, ids: &[ReservationId]) -> BoxFut<'_, Result<()>> {
        let ids: Vec<String> = ids.iter().map(|i| i.0.clone()).collect();
        // Not waited on a disk sync: a note forgotten by a crash is applied again by the sweep, to no effect.
        self.0
            .write_op(false, false, move |w| queries::forget_notes(w, &ids))
    }

    fn pending_settles(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<PendingSettle>>> {
        self.0
            .read(move |c| queries::pending_settles(c, before_ms, limit))
    }

    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>> {
        let id = id.to_string();
        self.0.read(move |c| queries::get(c, &id))
    }

    fn list(&self, q: LedgerQuery) -> BoxFut<'_, Result<Vec<GenerationRecord>>> {
        self.0.read(move |c| queries::list(c, &q))
    }

    fn summary(&self, user: Option<&str>, since_ms: i64) -> BoxFut<'_, Result<SpendSummary>> {
        let user = user.map(str::to_string);
        self.0
            .read(move |c| queries::summary(c, user.as_deref(), since_ms))
    }

    fn activity(&self, q: ActivityQuery) -> BoxFut<'_, Result<Vec<ActivityRow>>> {
        self.0.read(move |c| queries::activity(c, &q))
    }

    fn totals(&self) -> BoxFut<'_, Result<Totals>> {
        self.0.read(queries::totals)
    }

    fn usage(&self, q: UsageQuery) -> BoxFut<'_, Result<Vec<UsageRow>>> {
        self.0.read(move |c| queries::usage(c, &q))
    }
}

impl Budget for SqliteBudget {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        let req = req.clone();
        self.0
            .write_op(false, false, move |c| queries::reserve(c, &req))
    }

    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>> {
        let id = id.0.clone();
        let scopes: Vec<String> = scopes.iter().map(Scope::as_key).collect();
        self.0.write_op(false, false, move |c| {
            queries::settle(c, &id, &scopes, billed)
        })
    }

    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let key = scope.as_key();
        self.0.read(move |c| queries::spent(c, &key))
    }

    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let key = scope.as_key();
        self.0.read(move |c| queries::held(c, &key, now_ms()))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl RateLimiter for SqliteRate {
    fn hit(&self, key: &str, windows: &[Window], amount: u64) -> BoxFut<'_, Result<RateDecision>> {
        let key = key.to_string();
        let windows = windows.to_vec();
        self.0.write_op(false, false, move |c| {
            queries::hit(c, &key, &windows, amount)
        })
    }

    fn used(&self, key: &str, span: Span) -> BoxFut<'_, Result<u64>> {
        let key = key.to_string();
        self.0.read(move |c| queries::used(c, &key, span))
    }
}
