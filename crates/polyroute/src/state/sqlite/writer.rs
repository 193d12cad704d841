//! The writer of a [`SqliteStore`](super::SqliteStore): one thread owning the write connection, fed by a bounded
//! channel, and beside it a syncer thread that makes the write-ahead log durable.
//!
//! The writer takes whatever operations arrived while it was busy (at most [`MAX_BATCH`]) and commits them in
//! one transaction, in arrival order, with `synchronous=NORMAL`: the commit writes the batch's WAL frames (to
//! the OS, no fsync). Budget and rate-window changes are answered at once (durable when the process dies, not
//! necessarily when the machine loses power). Generation records go to the syncer, which `fdatasync`s the WAL
//! file (once for every batch that arrived while it was busy) and only then answers them, while the writer
//! already gathers the next batch: holds and settles never wait for a disk. A batch of durable operations
//! only, begun while the syncer is busy, stays open until the syncer goes idle or an operation that must not
//! wait arrives (its sender wakes the writer, [`Pace::kick`]); meanwhile the writer sleeps instead of waking
//! for every record that arrives, and takes all of them at once when it wakes: its records could only be
//! synced after the sync under way anyway, and one commit then holds them all (each commit rewrites the last
//! pages of every index it touches, and each sync writes the file's inode too, so fewer, larger commits write
//! fewer WAL frames and syncs per record). Answers to waiters on Tokio runtimes are given by one task per
//! runtime thread and batch ([`answer`]): a runtime thread is woken once per batch, not once per waiter.
//!
//! Why an acknowledged record survives a power loss: its frames are in the WAL file (the writer's `write`
//! returned before the syncer is told), and the syncer's `fdatasync` of that file came after. A checkpoint
//! does not lose them either: with `synchronous` at `NORMAL` or above SQLite syncs the WAL before copying frames
//! into the database file and syncs the database file before it marks them copied, and it starts the WAL over
//! (overwriting frames) only once every frame is marked copied; the WAL header it then writes is synced too.
//! The syncer holds its own descriptor of the WAL file; a WAL that was deleted meanwhile (only a connection that
//! believes itself the last one deletes it, after a checkpoint) is re-opened, and it and the database file are
//! synced. A failed sync fails its waiters and every later durable write (the kernel may have dropped the
//! pages, and WAL frames are chained: a lost frame hides every later one), until the store is opened again.
//!
//! A batch runs its operations one after the other in its transaction. When one fails, the transaction is
//! rolled back and the batch run again with each operation under its own savepoint, so an operation that fails
//! changes nothing and fails alone (operations are pure functions of the database, so the second run decides as
//! the first would have without the failed one). Spends are held back by the batch and written once per scope
//! at its commit ([`Writer`]); a spend that cannot be written then reruns the batch that same careful way, where
//! every settle writes its own spend and fails alone. About once a minute the writer also forgets old settled
//! ids. A failed `BEGIN` or `COMMIT` answers every waiter of that transaction with the error; a writer or syncer
//! that stops (its thread panicked or the store was dropped) drops the waiters' senders, so a waiter
//! gets an error, never a hang. Without a WAL file to sync (an in-memory database, or a file whose journal could
//! not be switched to WAL) the writer commits with `synchronous=FULL` and answers everyone after the commit.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use polyroute_core::{Error, Result};
use rusqlite::{Connection, Statement};
use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot};

use super::{db, internal};

/// Most operations applied in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// Most operations waiting for the writer; a caller past it waits (asynchronously) for room.
pub(super) const QUEUE: usize = 1024;

/// One operation for the writer: apply it inside the batch, then answer its waiter with the commit's outcome.
pub(super) trait Op: Send {
    /// Whether its answer must wait until the batch holding it is on disk.
    fn durable(&self) -> bool;
    /// Run against the write connection, inside the batch transaction; false when it failed. It may run again
    /// (after the batch was rolled back, under a savepoint of its own); the last run's result is answered.
    fn apply(&mut self, w: &Writer<'_>) -> bool;
    /// Answer the waiter: `Ok` when the batch committed (and, for a durable operation, reached the disk); the
    /// operation's own result is then what it answers.
    fn finish(self: Box<Self>, commit: Result<()>);
    /// Whether it may run SQL of its own on `budget_spent` (not only through the [`Writer`]'s spend methods):
    /// the spends the batch holds back are written before it runs ([`Writer::flush_spends`]).
    fn raw(&self) -> bool {
        true
    }
    /// The thread and Tokio runtime the waiter asked from, if it ran on one ([`answer`]).
    fn home(&self) -> Option<&Home> {
        None
    }
}

/// Where a waiter asked from: its thread and its Tokio runtime.
pub(super) type Home = (std::thread::ThreadId, tokio::runtime::Handle);

/// Answer `ops` with `outcome`. Waking a task of a runtime from a thread outside it costs that runtime a wake-up
/// (a system call); the operations asked from one runtime thread are answered by one task spawned there, so a
/// batch wakes each runtime thread once, and its tasks are woken from inside (the others are answered here).
fn answer(ops: Vec<Box<dyn Op>>, outcome: &Result<()>) {
    let mut groups: Vec<(Home, Vec<Box<dyn Op>>)> = Vec::new();
    for op in ops {
        let Some(home) = op.home() else {
            op.finish(outcome.clone());
            continue;
        };
        match groups.iter_mut().find(|(h, _)| h.0 == home.0) {
            Some((_, g)) => g.push(op),
            None => {
                let home = home.clone();
                groups.push((home, vec![op]));
            }
        }
    }
    for ((_, rt), mut g) in groups {
        if g.len() == 1 {
            if let Some(op) = g.pop() {
                op.finish(outcome.clone());
            }
            continue;
        }
        let outcome = outcome.clone();
        // A runtime that has shut down drops the task, and with it the senders: its waiters get an error.
        drop(rt.spawn(async move {
            for op in g {
                op.finish(outcome.clone());
            }
        }));
    }
}

/// Whether the syncer is busy, and whether the writer sleeps on an open batch until it is idle (see [`run`]).
/// The writer is woken by the syncer going idle, or by the sender of an operation that must not wait for a
/// disk ([`Pace::kick`]), not by every operation that arrives meanwhile (each such wake-up is a system call on
/// both sides and a context switch).
#[derive(Debug, Default)]
pub(super) struct Pace {
    state: std::sync::Mutex<PaceState>,
    wake: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct PaceState {
    /// Durable operations were handed to the syncer and it has not gone idle since.
    syncing: bool,
    /// The writer holds an open batch of durable operations and sleeps (or is about to) until the syncer is
    /// idle or it is kicked.
    waiting: bool,
    /// An operation that must not wait was queued while the writer was waiting.
    kicked: bool,
}

impl Pace {
    fn lock(&self) -> std::sync::MutexGuard<'_, PaceState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer handed durable operations to the syncer (`true`), or could not (`false`).
    fn syncing(&self, on: bool) {
        self.lock().syncing = on;
    }

    /// The syncer went idle (or stopped): a waiting writer commits now.
    fn idle(&self) {
        let mut s = self.lock();
        s.syncing = false;
        if s.waiting {
            self.wake.notify_one();
        }
    }

    /// An operation that must not wait for a disk was queued (called by its sender after queueing it): a
    /// waiting writer wakes, takes it and commits.
    pub(super) fn kick(&self) {
        let mut s = self.lock();
        if s.waiting {
            s.kicked = true;
            self.wake.notify_one();
        }
    }

    /// The writer is about to take what is queued and then wait: whether the syncer is still busy (when it
    /// is not, the writer commits at once). Operations queued after this call kick it.
    fn arm(&self) -> bool {
        let mut s = self.lock();
        s.kicked = false;
        s.waiting = s.syncing;
        s.syncing
    }

    /// The writer does not wait after all (it took an operation that must not wait, or its batch is full).
    fn disarm(&self) {
        self.lock().waiting = false;
    }

    /// Sleep until the syncer is idle or the writer is kicked (after [`Pace::arm`]).
    fn wait(&self) {
        let mut s = self.lock();
        while s.waiting && s.syncing && !s.kicked {
            s = self
                .wake
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        s.waiting = false;
        s.kicked = false;
    }
}

/// The syncer's side of [`Pace`]: tells a waiting writer that the syncer went idle (also when the syncer
/// stops, so a writer never waits for a syncer that is gone).
struct Idle {
    pace: Arc<Pace>,
}

impl Idle {
    fn now(&self) {
        self.pace.idle();
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.now();
    }
}

/// The statements every record's write runs, kept prepared by the [`Writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hot {
    /// `BEGIN IMMEDIATE` of a batch.
    Begin,
    /// `COMMIT` of a batch.
    Commit,
    /// [`super::queries::UPSERT_GENERATION`].
    Upsert,
    /// [`super::queries::INSERT_NEW_GENERATION`].
    InsertNew,
    /// [`super::queries::SETTLED_APART`].
    SettledApart,
    /// [`super::queries::GET_SPENT`].
    GetSpent,
    /// [`super::queries::ADD_SPENT_IN_ORDER`] of one scope, …
    AddInOrder1,
    /// … of two, …
    AddInOrder2,
    /// … of three, …
    AddInOrder3,
    /// … of four.
    AddInOrder4,
    /// [`super::queries::DELETE_HOLDS`].
    DeleteHolds,
    /// [`super::queries::EMPTY`].
    Empty,
    /// [`super::queries::ADD_SPENT`] of one scope, …
    AddSpent1,
    /// … of two scopes, …
    AddSpent2,
    /// … of three, …
    AddSpent3,
    /// … of four.
    AddSpent4,
}

impl Hot {
    const COUNT: usize = 16;

    fn sql(self) -> &'static str {
        match self {
            Self::Begin => "BEGIN IMMEDIATE",
            Self::Commit => "COMMIT",
            Self::Upsert => super::queries::UPSERT_GENERATION,
            Self::InsertNew => super::queries::INSERT_NEW_GENERATION,
            Self::SettledApart => super::queries::SETTLED_APART,
            Self::GetSpent => super::queries::GET_SPENT,
            Self::AddInOrder1 => super::queries::ADD_SPENT_IN_ORDER[0],
            Self::AddInOrder2 => super::queries::ADD_SPENT_IN_ORDER[1],
            Self::AddInOrder3 => super::queries::ADD_SPENT_IN_ORDER[2],
            Self::AddInOrder4 => super::queries::ADD_SPENT_IN_ORDER[3],
            Self::DeleteHolds => super::queries::DELETE_HOLDS,
            Self::Empty => super::queries::EMPTY,
            Self::AddSpent1 => super::queries::ADD_SPENT[0],
            Self::AddSpent2 => super::queries::ADD_SPENT[1],
            Self::AddSpent3 => super::queries::ADD_SPENT[2],
            Self::AddSpent4 => super::queries::ADD_SPENT[3],
        }
    }
}

/// The write connection, as operations see it (it derefs to the [`Connection`]), with the [`Hot`] statements
/// kept prepared for as long as the writer runs: rusqlite's statement cache hashes the whole SQL text (SipHash)
/// to find a statement and again to put it back, and copies the text into a new key each time.
///
/// It also holds back the spends of a batch ([`Writer::add_spent`]): each scope's settles are kept in order and
/// added to its spend by one statement when the batch commits (or before an operation that may read the table
/// itself runs), one after the other: the same exact sums one statement per settle made. Only while the batch
/// runs without savepoints: once an operation failed (or a held-back spend could not be written), the batch
/// runs again with every spend written by its own settle, so a failing operation changes nothing.
pub(super) struct Writer<'c> {
    conn: &'c Connection,
    hot: [RefCell<Option<Statement<'c>>>; Hot::COUNT],
    /// Whether spends are held back (see above).
    defer: Cell<bool>,
    /// The spends of the scopes the batch settled so far (held back while `defer`).
    spends: RefCell<Vec<Spend>>,
    /// Whether `budget_holds` and `budget_settled` are empty, as far as the batch knows ([`Writer::empty`]).
    empty: Cell<Option<Empty>>,
}

/// Whether the tables a record's settle looks into are empty ([`Writer::empty`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Empty {
    /// `budget_holds` has no row: no hold to drop.
    pub(super) holds: bool,
    /// `budget_settled` has no row: no reservation was settled apart from its record.
    pub(super) settled: bool,
}

/// Whether `a` and `b` are the same amounts in the same order, written alike (scale included).
fn same_amounts(a: &[Decimal], b: &[Decimal]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.serialize() == y.serialize())
}

/// The settles a batch holds back on one scope: their amounts, in order.
struct Spend {
    scope: String,
    amounts: Vec<Decimal>,
}

impl<'c> Writer<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            hot: Default::default(),
            defer: Cell::new(false),
            spends: RefCell::new(Vec::new()),
            empty: Cell::new(None),
        }
    }

    /// Whether `budget_holds` and `budget_settled` are empty: looked up once per batch (one statement), and
    /// kept while the batch's operations run, which note what they add to them ([`Writer::added`]). Forgotten
    /// at each transaction's start and before an operation that may run SQL of its own ([`Op::raw`]); a
    /// rollback only takes rows away, so what is kept stays true.
    pub(super) fn empty(&self) -> Result<Empty> {
        if let Some(e) = self.empty.get() {
            return Ok(e);
        }
        let e = super::queries::empty(self)?;
        self.empty.set(Some(e));
        Ok(e)
    }

    /// An operation added rows to `budget_holds` (`holds`) or `budget_settled` (`settled`).
    pub(super) fn added(&self, holds: bool, settled: bool) {
        if let Some(e) = self.empty.get() {
            self.empty.set(Some(Empty {
                holds: e.holds && !holds,
                settled: e.settled && !settled,
            }));
        }
    }

    /// Forget whether the tables are empty (an operation may have changed them).
    fn forget_empty(&self) {
        self.empty.set(None);
    }

    /// Hold spends back from now on (`true`), or write each with its settle (`false`); either way forget what is
    /// held (the caller has written it, or rolled the transaction back).
    fn defer_spends(&self, on: bool) {
        self.defer.set(on);
        self.spends.borrow_mut().clear();
        self.forget_empty();
    }

    /// The spend of `scope`: stored, plus what the batch holds back (added in order, as SQL would).
    pub(super) fn spent(&self, scope: &str) -> Result<Decimal> {
        let stored = super::queries::read_spent(self, scope)?;
        let spends = self.spends.borrow();
        let Some(s) = spends.iter().find(|s| s.scope == scope) else {
            return Ok(stored.unwrap_or_default());
        };
        super::queries::add_in_order(stored, &s.amounts)
            .ok_or_else(|| internal("sqlite store: the spend does not fit a decimal"))
    }

    /// Add `amount` to the spend of each of `scopes` (a scope listed twice gets it twice): held back while the
    /// batch runs without savepoints, else written at once.
    pub(super) fn add_spent(&self, scopes: &[String], amount: Decimal) -> Result<()> {
        if !self.defer.get() {
            return super::queries::add_spent_now(self, scopes, amount);
        }
        let mut spends = self.spends.borrow_mut();
        for scope in scopes {
            match spends.iter_mut().find(|s| &s.scope == scope) {
                Some(s) => s.amounts.push(amount),
                None => spends.push(Spend {
                    scope: scope.clone(),
                    amounts: vec![amount],
                }),
            }
        }
        Ok(())
    }

    /// Write the spends held back, and forget them: the scopes given the same amounts (usually every scope of
    /// a batch: its requests share them) by one statement (for up to four scopes).
    pub(super) fn flush_spends(&self) -> Result<()> {
        let spends = std::mem::take(&mut *self.spends.borrow_mut());
        let mut done = vec![false; spends.len()];
        let mut scopes: Vec<&str> = Vec::with_capacity(spends.len());
        for (i, s) in spends.iter().enumerate() {
            if done[i] {
                continue;
            }
            scopes.clear();
            for (j, t) in spends.iter().enumerate().skip(i) {
                if !done[j] && same_amounts(&s.amounts, &t.amounts) {
                    done[j] = true;
                    scopes.push(&t.scope);
                }
            }
            super::queries::add_spent_in_order(self, &scopes, &s.amounts)?;
        }
        Ok(())
    }

    /// Run `f` on the statement `h` (prepared on its first use). A statement already in use further up (no
    /// operation does that) is taken from the connection's cache instead.
    pub(super) fn with<T>(
        &self,
        h: Hot,
        f: impl FnOnce(&mut Statement<'c>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let Ok(mut slot) = self.hot[h as usize].try_borrow_mut() else {
            let mut st = self.conn.prepare_cached(h.sql())?;
            return f(&mut st);
        };
        let st = match &mut *slot {
            Some(st) => st,
            empty => empty.insert(self.conn.prepare(h.sql())?),
        };
        f(st)
    }
}

impl Deref for Writer<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// An [`Op`] from a closure: its result is kept until the batch commits, then sent to the waiter.
pub(super) struct Pending<T, F> {
    durable: bool,
    raw: bool,
    home: Option<Home>,
    f: F,
    result: Option<Result<T>>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Pending<T, F>
where
    T: Send + 'static,
    F: Fn(&Writer<'_>) -> Result<T> + Send + 'static,
{
    /// The operation and the receiver of its answer; `raw` as [`Op::raw`].
    pub(super) fn boxed(
        durable: bool,
        raw: bool,
        f: F,
    ) -> (Box<dyn Op>, oneshot::Receiver<Result<T>>) {
        let (tx, rx) = oneshot::channel();
        let op = Box::new(Self {
            durable,
            raw,
            home: tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| (std::thread::current().id(), h)),
            f,
            result: None,
            tx,
        });
        (op, rx)
    }
}

impl<T, F> Op for Pending<T, F>
where
    T: Send + 'static,
    F: Fn(&Writer<'_>) -> Result<T> + Send + 'static,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn home(&self) -> Option<&Home> {
        self.home.as_ref()
    }

    fn raw(&self) -> bool {
        self.raw
    }

    fn apply(&mut self, w: &Writer<'_>) -> bool {
        let r = catch_unwind(AssertUnwindSafe(|| (self.f)(w)))
            .unwrap_or_else(|_| Err(internal("sqlite store: an operation panicked")));
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<()>) {
        let r = match (commit, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(internal("sqlite store: operation not applied")),
        };
        let _ = self.tx.send(r);
    }
}

/// Makes every WAL frame written so far durable (the syncer's one blocking call).
pub(super) type SyncFn = Box<dyn FnMut() -> io::Result<()> + Send>;

/// The WAL file of a database, synced by its own descriptor.
pub(super) struct WalFile {
    db: PathBuf,
    wal: PathBuf,
    file: File,
}

fn open_rw(path: &Path) -> io::Result<File> {
    // Write access only because some systems refuse to flush a read-only handle; nothing is written.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
}

impl WalFile {
    /// The WAL of the database file `db` (which must exist: SQLite creates it when the connection first reads
    /// in WAL mode). Syncs the directory once, so that the WAL's directory entry is on disk too.
    pub(super) fn open(db: &Path) -> io::Result<Self> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let file = open_rw(&wal)?;
        // Best effort, as SQLite's own directory sync: not every file system syncs directories.
        #[cfg(unix)]
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(Self {
            db: db.to_path_buf(),
            wal,
            file,
        })
    }

    /// `fdatasync` the WAL. When the file was deleted meanwhile, its frames were checkpointed into the database
    /// file first: the database file and the new WAL (if any) are synced, and the new WAL is kept.
    pub(super) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        if !self.unlinked()? {
            return Ok(());
        }
        open_rw(&self.db)?.sync_all()?;
        match open_rw(&self.wal) {
            Ok(f) => {
                f.sync_all()?;
                self.file = f;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The inode of the file synced (tests).
    #[cfg(all(test, unix))]
    pub(super) fn inode(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        Ok(self.file.metadata()?.ino())
    }

    #[cfg(unix)]
    fn unlinked(&self) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        Ok(self.file.metadata()?.nlink() == 0)
    }

    #[cfg(not(unix))]
    fn unlinked(&self) -> io::Result<bool> {
        Ok(false)
    }
}

/// Counters of a store's writer and syncer.
#[derive(Debug, Default)]
pub(super) struct Counts {
    /// Transactions committed.
    pub(super) commits: AtomicU64,
    /// WAL syncs done (each answers every durable operation of the batches committed before it).
    pub(super) syncs: AtomicU64,
}

/// Start the writer thread on `conn` (in WAL mode) and, with `sync`, the syncer thread: the connection is set
/// to `synchronous=NORMAL` and durable operations are answered after `sync`; without it, to
/// `synchronous=FULL` and every operation is answered after its commit. Both threads stop when every sender is
/// dropped.
pub(super) fn spawn(
    conn: Connection,
    sync: Option<SyncFn>,
    counts: Arc<Counts>,
) -> Result<(Jobs, Arc<Pace>)> {
    let pragma = if sync.is_some() {
        "PRAGMA synchronous=NORMAL"
    } else {
        "PRAGMA synchronous=FULL"
    };
    conn.execute_batch(pragma).map_err(|e| db(&e))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let pace = Arc::new(Pace::default());
    let synced = match sync {
        Some(f) => {
            let (stx, srx) = std::sync::mpsc::channel();
            let c = counts.clone();
            let idle = Idle { pace: pace.clone() };
            std::thread::Builder::new()
                .name("polyroute-sqlite-sync".into())
                .spawn(move || syncer(f, &srx, &c, &idle))
                .map_err(|e| internal(format!("sqlite store: cannot start its syncer: {e}")))?;
            Some(stx)
        }
        None => None,
    };
    std::thread::Builder::new()
        .name("polyroute-sqlite-writer".into())
        .spawn({
            let pace = pace.clone();
            move || run(&conn, rx, synced.as_ref(), &counts, &pace)
        })
        .map_err(|e| internal(format!("sqlite store: cannot start its writer: {e}")))?;
    Ok((tx, pace))
}

/// The writer's queue.
pub(super) type Jobs = mpsc::Sender<Box<dyn Op>>;

/// Durable operations of committed batches, on their way to the syncer.
type Synced = std::sync::mpsc::Sender<Vec<Box<dyn Op>>>;

/// How often the writer forgets old settled ids.
const TIDY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Add the operations already queued to `batch` (up to [`MAX_BATCH`]).
fn take_queued(rx: &mut mpsc::Receiver<Box<dyn Op>>, batch: &mut Vec<Box<dyn Op>>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}

/// Whether the batch may wait for the syncer: not full, and only durable operations.
fn may_wait(batch: &[Box<dyn Op>]) -> bool {
    batch.len() < MAX_BATCH && batch.iter().all(|op| op.durable())
}

fn run(
    conn: &Connection,
    mut rx: mpsc::Receiver<Box<dyn Op>>,
    synced: Option<&Synced>,
    counts: &Counts,
    pace: &Pace,
) {
    let writer = Writer::new(conn);
    let mut batch: Vec<Box<dyn Op>> = Vec::with_capacity(MAX_BATCH);
    let mut next_tidy = std::time::Instant::now();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        take_queued(&mut rx, &mut batch);
        let mut tx = Batch::begin(&writer);
        tx.apply(&mut batch);
        // While the syncer is busy, a batch of durable operations only stays open and takes what arrives: its
        // records would only be synced after the sync under way anyway, and one commit then holds every record
        // that arrived meanwhile (fewer WAL frames, commits and syncs per record). The writer sleeps meanwhile
        // (records arriving do not wake it); it commits when the syncer goes idle, when an operation that must
        // not wait for a disk arrives (its sender wakes the writer), or when the batch is full.
        while synced.is_some() && tx.open() && may_wait(&batch) && pace.arm() {
            take_queued(&mut rx, &mut batch);
            if may_wait(&batch) {
                pace.wait();
                take_queued(&mut rx, &mut batch);
            } else {
                pace.disarm();
            }
            tx.apply(&mut batch);
        }
        let tidy = std::time::Instant::now() >= next_tidy;
        if tidy {
            next_tidy = std::time::Instant::now() + TIDY_EVERY;
        }
        let outcome = tx.commit(&mut batch, tidy);
        if outcome.is_ok() {
            counts.commits.fetch_add(1, Ordering::Relaxed);
        }
        // The durable operations go to the syncer first (its fsync starts at once), then the others are answered.
        if let (Ok(()), Some(synced)) = (&outcome, synced) {
            let (durable, quick): (Vec<_>, Vec<_>) = batch.drain(..).partition(|op| op.durable());
            batch.extend(quick);
            if !durable.is_empty() {
                pace.syncing(true);
                if let Err(std::sync::mpsc::SendError(ops)) = synced.send(durable) {
                    pace.syncing(false);
                    for op in ops {
                        op.finish(Err(internal("sqlite store: its syncer has stopped")));
                    }
                }
            }
        }
        answer(std::mem::take(&mut batch), &outcome);
    }
}

/// The syncer: waits for committed durable operations, syncs once for all that arrived meanwhile, answers them.
fn syncer(
    mut sync: SyncFn,
    rx: &std::sync::mpsc::Receiver<Vec<Box<dyn Op>>>,
    counts: &Counts,
    idle: &Idle,
) {
    let mut failed: Option<String> = None;
    let mut next: Option<Vec<Box<dyn Op>>> = None;
    loop {
        let mut ops = match next.take() {
            Some(ops) => ops,
            None => match rx.recv() {
                Ok(ops) => ops,
                Err(_) => break,
            },
        };
        while let Ok(more) = rx.try_recv() {
            ops.extend(more);
        }
        if failed.is_none() {
            match catch_unwind(AssertUnwindSafe(&mut sync)) {
                Ok(Ok(())) => {
                    counts.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    failed = Some(format!("the write-ahead log could not be synced: {e}"))
                }
                Err(_) => failed = Some("syncing the write-ahead log panicked".into()),
            }
        }
        let outcome = match &failed {
            None => Ok(()),
            Some(m) => Err(internal(format!(
                "sqlite store: {m} (durable writes fail until the store is opened again)"
            ))),
        };
        answer(ops, &outcome);
        // Idle, unless more was committed meanwhile.
        match rx.try_recv() {
            Ok(more) => next = Some(more),
            Err(std::sync::mpsc::TryRecvError::Empty) => idle.now(),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
        }
    }
}

fn step(c: &Connection, sql: &str) -> Result<()> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(drop)
        .map_err(|e| db(&e))
}

fn step_hot(w: &Writer<'_>, h: Hot) -> Result<()> {
    w.with(h, |st| st.execute([])).map(drop).map_err(|e| db(&e))
}

/// The transaction of a batch, open while operations are added to it.
struct Batch<'w, 'c> {
    w: &'w Writer<'c>,
    /// Every operation runs under a savepoint of its own (after one failed).
    careful: bool,
    /// Operations of the batch applied so far.
    applied: usize,
    /// What failed the transaction itself (`BEGIN`, a savepoint, the rollback): nothing more is applied.
    failed: Option<Error>,
}

impl<'w, 'c> Batch<'w, 'c> {
    fn begin(w: &'w Writer<'c>) -> Self {
        w.defer_spends(true);
        Batch {
            w,
            careful: false,
            applied: 0,
            failed: step_hot(w, Hot::Begin).err(),
        }
    }

    /// Whether operations can still be added.
    fn open(&self) -> bool {
        self.failed.is_none()
    }

    /// Apply the operations of `batch` not applied yet. Every operation at once, spends held back
    /// ([`Writer::add_spent`]); when one fails (or writing the spends held back does), its partial changes and
    /// the rest are rolled back, and the batch so far runs again with each operation under its own savepoint
    /// and every spend written by its own settle, as every later one then does.
    fn apply(&mut self, batch: &mut [Box<dyn Op>]) {
        if self.failed.is_some() {
            return;
        }
        let w = self.w;
        let c: &Connection = w;
        let r = (|| {
            if !self.careful {
                if batch[self.applied..].iter_mut().all(|op| {
                    if op.raw() {
                        w.forget_empty();
                        if w.flush_spends().is_err() {
                            return false;
                        }
                    }
                    op.apply(w)
                }) {
                    return Ok(());
                }
                self.be_careful()?;
            }
            for op in &mut batch[self.applied..] {
                if op.raw() {
                    w.forget_empty();
                }
                step(c, "SAVEPOINT op")?;
                if !op.apply(w) {
                    step(c, "ROLLBACK TO op")?;
                }
                step(c, "RELEASE op")?;
            }
            Ok(())
        })();
        self.applied = batch.len();
        if let Err(e) = r {
            self.failed = Some(e);
        }
    }

    /// Roll the batch back and start it over in careful mode (savepoints, spends written at once): every
    /// operation is applied again.
    fn be_careful(&mut self) -> Result<()> {
        self.w.defer_spends(false);
        step(self.w, "ROLLBACK")?;
        step_hot(self.w, Hot::Begin)?;
        self.careful = true;
        self.applied = 0;
        Ok(())
    }

    /// Write the spends held back and commit (with `tidy`, forgetting old settled ids too); when the spends
    /// cannot be written, run `batch` again in careful mode first; on an error of the transaction itself, roll
    /// it back.
    fn commit(mut self, batch: &mut [Box<dyn Op>], tidy: bool) -> Result<()> {
        let c: &Connection = self.w;
        if self.failed.is_none() && !self.careful && self.w.flush_spends().is_err() {
            match self.be_careful() {
                Ok(()) => self.apply(batch),
                Err(e) => self.failed = Some(e),
            }
        }
        self.w.defer_spends(false);
        let r = match self.failed {
            Some(e) => Err(e),
            None => {
                if tidy {
                    // Housekeeping only: a failure leaves the ids for the next time.
                    let _ = super::queries::forget_old_settles(c, super::now_ms());
                }
                step_hot(self.w, Hot::Commit)
            }
        };
        if let Err(e) = &r {
            if !c.is_autocommit() {
                let _ = c.execute_batch("ROLLBACK");
            }
            return Err(Error::Internal {
                message: format!("sqlite store: batch not committed: {e}"),
            });
        }
        r
    }
}
