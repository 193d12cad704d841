//! What the engine does when a shared store cannot be reached: one policy per concern.
//!
//! | concern | default | on error |
//! |---|---|---|
//! | budget | [`OnError::Closed`] | the request is refused (500 naming the server): no spend is ever unaccounted |
//! | rate windows | [`OnError::Open`] | the request is admitted uncounted ([`FailOpenRate`]) |
//! | sticky routing | [`OnError::Open`] | routed without stickiness ([`FailOpenSticky`]) |
//! | ledger | spool | the record is appended to a local file and replayed later ([`SpoolLedger`]) |
//! | health | local | observations always land in process; a shared view refreshes when it can |
//!
//! [`FailOpenBudget`] exists for deployments that prefer availability over limits: while the budget store is
//! down, requests are admitted without a hold and their spend is not added to any scope (the ledger still has
//! every record). Every wrapper logs the first error of an outage and the recovery, not every failed call.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use polyroute_core::{Error, Result};
use rust_decimal::Decimal;

use super::{
    ActivityQuery, ActivityRow, BoxFut, Budget, GenerationRecord, HoldRequest, Ledger, LedgerQuery,
    PendingSettle, RateDecision, RateLimiter, ReservationId, Reserved, Scope, SettleOrder, Span,
    SpendSummary, StickyStore, Totals, UsageQuery, UsageRow, Window,
};

/// Fail open (carry on without the store) or closed (fail the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Carry on as if the store had no opinion.
    Open,
    /// Fail the request with the store's error.
    Closed,
}

/// Logs the first failure of an outage and the recovery.
#[derive(Debug, Default)]
struct Outage(AtomicBool);

impl Outage {
    fn failed(&self, what: &str, e: &Error) {
        if !self.0.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %e, "{what} store unreachable; failing open until it answers");
        }
    }

    fn ok(&self, what: &str) {
        if self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed) {
            tracing::warn!("{what} store answers again");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------

/// Rate windows that admit when the store fails (the request is not counted anywhere).
pub struct FailOpenRate {
    inner: Arc<dyn RateLimiter>,
    outage: Outage,
}

impl FailOpenRate {
    /// Wrap `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn RateLimiter>) -> Self {
        Self {
            inner,
            outage: Outage::default(),
        }
    }
}

impl RateLimiter for FailOpenRate {
    fn hit(&self, key: &str, windows: &[Window], amount: u64) -> BoxFut<'_, Result<RateDecision>> {
        let f = self.inner.hit(key, windows, amount);
        Box::pin(async move {
            match f.await {
                Ok(d) => {
                    self.outage.ok("rate");
                    Ok(d)
                }
                Err(e) => {
                    self.outage.failed("rate", &e);
                    Ok(RateDecision::Allowed)
                }
            }
        })
    }

    fn used(&self, key: &str, span: Span) -> BoxFut<'_, Result<u64>> {
        self.inner.used(key, span)
    }
}

/// Sticky routing that forgets when the store fails.
pub struct FailOpenSticky {
    inner: Arc<dyn StickyStore>,
    outage: Outage,
}

impl FailOpenSticky {
    /// Wrap `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn StickyStore>) -> Self {
        Self {
            inner,
            outage: Outage::default(),
        }
    }

    fn settle<T>(&self, r: Result<T>, fallback: T) -> Result<T> {
        match r {
            Ok(v) => {
                self.outage.ok("sticky");
                Ok(v)
            }
            Err(e) => {
                self.outage.failed("sticky", &e);
                Ok(fallback)
            }
        }
    }
}

impl StickyStore for FailOpenSticky {
    fn get(&self, key: u64) -> BoxFut<'_, Result<Option<String>>> {
        let f = self.inner.get(key);
        Box::pin(async move { self.settle(f.await, None) })
    }

    fn put(&self, key: u64, tag: &str, ttl: Duration) -> BoxFut<'_, Result<()>> {
        let f = self.inner.put(key, tag, ttl);
        Box::pin(async move { self.settle(f.await, ()) })
    }

    fn forget(&self, key: u64) -> BoxFut<'_, Result<()>> {
        let f = self.inner.forget(key);
        Box::pin(async move { self.settle(f.await, ()) })
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
}

/// A budget that admits when the store fails (no hold placed, the spend not added).
pub struct FailOpenBudget {
    inner: Arc<dyn Budget>,
    outage: Outage,
}

impl FailOpenBudget {
    /// Wrap `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Budget>) -> Self {
        Self {
            inner,
            outage: Outage::default(),
        }
    }
}

impl Budget for FailOpenBudget {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        let f = self.inner.reserve(req);
        Box::pin(async move {
            match f.await {
                Ok(r) => {
                    self.outage.ok("budget");
                    Ok(r)
                }
                Err(e) => {
                    self.outage.failed("budget", &e);
                    Ok(Reserved::Held)
                }
            }
        })
    }

    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>> {
        let f = self.inner.settle(id, scopes, billed);
        Box::pin(async move {
            match f.await {
                Ok(r) => Ok(r),
                Err(e) => {
                    self.outage.failed("budget", &e);
                    Ok(true)
                }
            }
        })
    }

    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        self.inner.spent(scope)
    }

    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        self.inner.held(scope)
    }

    fn release_now(&self, id: &ReservationId) -> bool {
        self.inner.release_now(id)
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
}

// ---------------------------------------------------------------------------------------------------------------

/// A ledger that never loses an acknowledged record: when the inner ledger fails, the record is appended to a
/// local file (one JSON line, `fsync`ed before `insert` returns) and a background task replays the file into
/// the inner ledger once it answers again, then empties it. Replays are idempotent (the ledger upserts by
/// generation id), so a crash during a replay re-inserts, never duplicates. A spool left by a killed process
/// is replayed by the next one that opens it.
///
/// While the spool holds records, new records go straight to it (no waiting on a server that is down); the
/// replay task probes the inner ledger every `every`. `get` also looks in the spool; the aggregates
/// (`summary`, `activity`, `totals`, `list`) are the inner ledger's and include spooled records once replayed.
pub struct SpoolLedger {
    inner: Arc<dyn Ledger>,
    path: PathBuf,
    lock: tokio::sync::Mutex<()>,
    pending: AtomicBool,
}

impl std::fmt::Debug for SpoolLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolLedger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::Internal {
        message: format!("ledger spool {}: {what}: {e}", path.display()),
    }
}

impl SpoolLedger {
    /// Wrap `inner`, spooling to `path` (created on first use; an existing spool is replayed).
    #[must_use]
    pub fn new(inner: Arc<dyn Ledger>, path: PathBuf) -> Self {
        let pending = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        Self {
            inner,
            path,
            lock: tokio::sync::Mutex::new(()),
            pending: AtomicBool::new(pending),
        }
    }

    /// The spool file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether records wait in the spool.
    #[must_use]
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Replay the spool into the inner ledger every `every` while it holds records, on a task of the current
    /// runtime (it stops when the ledger is dropped).
    pub fn spawn_replay(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(s) = weak.upgrade() else { return };
                if s.pending() {
                    match s.replay().await {
                        Ok(n) if n > 0 => {
                            tracing::warn!(records = n, path = %s.path.display(), "ledger spool replayed");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "ledger spool replay deferred"),
                    }
                }
            }
        });
    }

    fn read_spool(&self) -> Result<Vec<GenerationRecord>> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.path, "open", &e)),
        };
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(|e| io_err(&self.path, "read", &e))?;
            if line.trim().is_empty() {
                continue;
            }
            // A torn last line (killed mid-write, before the fsync acknowledged it) is skipped.
            match serde_json::from_str(&line) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable ledger spool line"),
            }
        }
        Ok(out)
    }

    /// Insert every spooled record into the inner ledger, then empty the spool; answers how many. On an error
    /// the spool is kept whole (the records inserted so far are inserted again next time, harmlessly).
    ///
    /// # Errors
    /// The inner ledger still fails, or the spool cannot be read.
    pub async fn replay(&self) -> Result<usize> {
        let _g = self.lock.lock().await;
        let recs = self.read_spool()?;
        for r in &recs {
            self.inner.insert(r.clone()).await?;
        }
        std::fs::File::create(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err(&self.path, "truncate", &e))?;
        self.pending.store(false, Ordering::Release);
        Ok(recs.len())
    }

    async fn spool(&self, rec: &GenerationRecord) -> Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(|e| Error::Internal {
            message: format!("ledger spool: encode: {e}"),
        })?;
        line.push(b'\n');
        let _g = self.lock.lock().await;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_err(&self.path, "open", &e))?;
        f.write_all(&line)
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&self.path, "append", &e))?;
        self.pending.store(true, Ordering::Release);
        Ok(())
    }
}

impl Ledger for SpoolLedger {
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>> {
        Box::pin(async move {
            if !self.pending() {
                match self.inner.insert(rec.clone()).await {
                    Ok(()) => return Ok(()),
                    Err(e) => tracing::error!(error = %e, path = %self.path.display(),
                                              "ledger unreachable; spooling records locally"),
                }
            }
            self.spool(&rec).await
        })
    }

    /// Through to the ledger while it answers; otherwise the record alone is spooled (the settle is not noted:
    /// it is lost only if this process dies before the budget answers).
    fn insert_noting_settle(
        &self,
        rec: GenerationRecord,
        settle: &SettleOrder,
    ) -> BoxFut<'_, Result<bool>> {
        let settle = settle.clone();
        Box::pin(async move {
            if !self.pending() {
                match self.inner.insert_noting_settle(rec.clone(), &settle).await {
                    Ok(noted) => return Ok(noted),
                    Err(e) => tracing::error!(error = %e, path = %self.path.display(),
                                              "ledger unreachable; spooling records locally"),
                }
            }
            self.spool(&rec).await.map(|()| false)
        })
    }

    fn settles_landed(&self, ids: &[ReservationId]) -> BoxFut<'_, Result<()>> {
        self.inner.settles_landed(ids)
    }

    fn pending_settles(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<PendingSettle>>> {
        self.inner.pending_settles(before_ms, limit)
    }

    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>> {
        let id = id.to_string();
        Box::pin(async move {
            let found = self.inner.get(&id).await;
            if !self.pending() || matches!(found, Ok(Some(_))) {
                return found;
            }
            let spooled = {
                let _g = self.lock.lock().await;
                self.read_spool()?
            };
            match spooled.into_iter().rev().find(|r| r.id == id) {
                Some(r) => Ok(Some(r)),
                None => found,
            }
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
