//! The writer of a [`SqliteStore`](super::SqliteStore): one thread owning the write connection, fed by a bounded
//! channel. It takes whatever operations arrived while it was busy (at most [`MAX_BATCH`]) and commits them in
//! two transactions: first the budget and rate-window changes, in arrival order, with `synchronous=NORMAL` (no
//! fsync: durable when the process dies, not necessarily when the machine loses power), answered at once; then
//! the generation records with `synchronous=FULL`, one fsync for all of them, answered only after it. Within a
//! transaction each operation runs under its own savepoint (an operation that fails changes nothing and fails
//! alone). A failed `BEGIN` or `COMMIT` answers every waiter of that transaction with the error; a writer that
//! stops (its thread panicked or the store was dropped) drops the waiters' senders, so a waiter gets an error,
//! never a hang.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use polyroute_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{db, internal};

/// Most operations applied in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// Most operations waiting for the writer; a caller past it waits (asynchronously) for room.
pub(super) const QUEUE: usize = 1024;

/// One operation for the writer: apply it inside the batch, then answer its waiter with the commit's outcome.
pub(super) trait Op: Send {
    /// Whether the batch holding this operation must reach the disk before anyone is answered.
    fn durable(&self) -> bool;
    /// Run against the write connection (inside the batch transaction and a savepoint); false when it failed
    /// (its savepoint is then rolled back).
    fn apply(&mut self, c: &Connection) -> bool;
    /// Answer the waiter: `Ok` when the batch committed (the operation's own result is then what it answers).
    fn finish(self: Box<Self>, commit: Result<()>);
}

/// An [`Op`] from a closure: its result is kept until the batch commits, then sent to the waiter.
pub(super) struct Pending<T, F> {
    durable: bool,
    f: Option<F>,
    result: Option<Result<T>>,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    /// The operation and the receiver of its answer.
    pub(super) fn boxed(durable: bool, f: F) -> (Box<dyn Op>, oneshot::Receiver<Result<T>>) {
        let (tx, rx) = oneshot::channel();
        let op = Box::new(Self {
            durable,
            f: Some(f),
            result: None,
            tx,
        });
        (op, rx)
    }
}

impl<T, F> Op for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn apply(&mut self, c: &Connection) -> bool {
        let r = match self.f.take() {
            Some(f) => catch_unwind(AssertUnwindSafe(|| f(c)))
                .unwrap_or_else(|_| Err(internal("sqlite store: an operation panicked"))),
            None => Err(internal("sqlite store: operation applied twice")),
        };
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

/// Start the writer thread on `conn` (in WAL mode, `synchronous=FULL`); it counts its committed batches in
/// `commits` and stops when every sender is dropped.
pub(super) fn spawn(
    conn: Connection,
    commits: Arc<AtomicU64>,
) -> Result<mpsc::Sender<Box<dyn Op>>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("polyroute-sqlite-writer".into())
        .spawn(move || run(&conn, rx, &commits))
        .map_err(|e| internal(format!("sqlite store: cannot start its writer: {e}")))?;
    Ok(tx)
}

fn run(conn: &Connection, mut rx: mpsc::Receiver<Box<dyn Op>>, commits: &AtomicU64) {
    let mut full = true;
    let mut batch: Vec<Box<dyn Op>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        // Budget and rate-window changes (in arrival order) commit first, without waiting for the disk, and are
        // answered at once; the generation records then commit with one fsync (which also carries the first
        // transaction's log to the disk). The two touch different tables, so only their own order matters.
        let (mut durable, mut quick): (Vec<_>, Vec<_>) =
            batch.drain(..).partition(|op| op.durable());
        commit(conn, &mut quick, false, &mut full, commits);
        commit(conn, &mut durable, true, &mut full, commits);
    }
}

/// Apply `ops` in one transaction committed with `synchronous=FULL` when `durable` (else `NORMAL`), then answer
/// each; `full` tracks the connection's current setting.
fn commit(
    c: &Connection,
    ops: &mut Vec<Box<dyn Op>>,
    durable: bool,
    full: &mut bool,
    commits: &AtomicU64,
) {
    if ops.is_empty() {
        return;
    }
    let outcome = if durable == *full {
        Ok(())
    } else {
        let pragma = if durable {
            "PRAGMA synchronous=FULL"
        } else {
            "PRAGMA synchronous=NORMAL"
        };
        let r = c.execute_batch(pragma).map_err(|e| db(&e));
        if r.is_ok() {
            *full = durable;
        }
        r
    };
    let outcome = outcome.and_then(|()| apply(c, ops));
    if outcome.is_ok() {
        commits.fetch_add(1, Ordering::Relaxed);
    }
    for op in ops.drain(..) {
        op.finish(outcome.clone());
    }
}

fn step(c: &Connection, sql: &str) -> Result<()> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(drop)
        .map_err(|e| db(&e))
}

/// Apply `batch` in one transaction and commit it; on an error of the transaction itself, roll it back.
fn apply(c: &Connection, batch: &mut [Box<dyn Op>]) -> Result<()> {
    step(c, "BEGIN IMMEDIATE")?;
    let r = (|| {
        for op in batch.iter_mut() {
            step(c, "SAVEPOINT op")?;
            if !op.apply(c) {
                step(c, "ROLLBACK TO op")?;
            }
            step(c, "RELEASE op")?;
        }
        step(c, "COMMIT")
    })();
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
