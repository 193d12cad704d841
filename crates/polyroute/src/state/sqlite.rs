//! SQLite stores: ledger, budget and rate windows in one file (WAL), durable across restarts and shared by the
//! processes that open the same file (each change is one `BEGIN IMMEDIATE` transaction; nothing is cached in
//! process). A generation record is on disk when its insert returns (`synchronous=FULL`); budget and rate-window
//! changes commit with `synchronous=NORMAL` (durable when the process dies, not necessarily when the machine loses
//! power), so billing costs one fsync per generation, as before these tables existed. Calls run on Tokio's
//! blocking pool when a runtime is current.

use std::path::Path;
use std::sync::{Arc, Mutex};

use polyroute_core::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rust_decimal::Decimal;

use super::memory::{add_total, decide, span_start};
use super::{
    now_ms, ActivityQuery, ActivityRow, BoxFut, Budget, GenerationRecord, HoldRequest, Ledger,
    LedgerQuery, RateDecision, RateLimiter, Refusal, ReservationId, Reserved, Scope, Span,
    SpendSummary, Totals, UsageGroup, UsageQuery, UsageRow, Window, DAY_MS,
};

fn internal(m: impl Into<String>) -> Error {
    Error::Internal { message: m.into() }
}

fn db(e: &rusqlite::Error) -> Error {
    internal(format!("sqlite store: {e}"))
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap_or_default()
}

/// Sum of space-separated decimals (an SQL `group_concat(cost, ' ')`), exactly.
fn dec_sum(text: Option<String>) -> Decimal {
    text.as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(dec)
        .sum()
}

/// Settled reservation ids are remembered this long (idempotent settles).
const SETTLED_KEEP_MS: i64 = 2 * DAY_MS;

/// One SQLite file holding the ledger (`generations`), the budget (`budget_spent`, `budget_holds`,
/// `budget_settled`) and the rate windows (`rate_events`). Open it once; [`SqliteStore::ledger`],
/// [`SqliteStore::budget`] and [`SqliteStore::rate`] share its connection.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
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

impl SqliteStore {
    /// Open (or create) the file. A ledger written by an earlier version gains the budget tables, with each
    /// scope's spend seeded from its generations.
    ///
    /// # Errors
    /// The file cannot be opened or initialized.
    pub fn open(path: &Path) -> Result<Self> {
        create_private(path);
        let mut conn = Connection::open(path).map_err(|e| db(&e))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| db(&e))?;
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
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS generations (
                 id TEXT PRIMARY KEY,
                 created_ms INTEGER NOT NULL,
                 user_key TEXT,
                 model TEXT NOT NULL,
                 provider TEXT NOT NULL,
                 cost TEXT NOT NULL,
                 free INTEGER NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS generations_user ON generations(user_key);
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
             CREATE INDEX IF NOT EXISTS rate_events_key ON rate_events(key, at_ms);",
        )
        .map_err(|e| db(&e))?;
        if !had_budget {
            let t = totals_of(&tx)?;
            for (s, c) in super::seed_scopes(&t) {
                tx.execute(
                    "INSERT OR REPLACE INTO budget_spent (scope, spent) VALUES (?1, ?2)",
                    params![s.as_key(), c.to_string()],
                )
                .map_err(|e| db(&e))?;
            }
        }
        tx.commit().map_err(|e| db(&e))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
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

    /// Run `f` with the connection, on the blocking pool when a Tokio runtime is current.
    fn run<'a, T, F>(&self, f: F) -> BoxFut<'a, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let call = move || {
            let mut c = conn
                .lock()
                .map_err(|_| internal("sqlite store lock poisoned"))?;
            f(&mut c)
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

fn totals_of(c: &Connection) -> Result<Totals> {
    let mut st = c
        .prepare(
            "SELECT user_key, group_concat(cost, ' '), count(*) FROM generations GROUP BY user_key",
        )
        .map_err(|e| db(&e))?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(|e| db(&e))?;
    let mut t = Totals::default();
    for row in rows {
        let (user, costs, n) = row.map_err(|e| db(&e))?;
        let c = dec_sum(costs);
        add_total(&mut t, user.as_deref(), c);
        t.count += u64::try_from(n).unwrap_or(0).saturating_sub(1);
    }
    Ok(t)
}

fn parse_rec(text: &str) -> Result<GenerationRecord> {
    serde_json::from_str(text).map_err(|e| internal(format!("ledger record: {e}")))
}

impl Ledger for SqliteLedger {
    fn insert(&self, rec: GenerationRecord) -> BoxFut<'_, Result<()>> {
        self.0.run(move |c| {
            c.execute_batch("PRAGMA synchronous=FULL")
                .map_err(|e| db(&e))?;
            let json = serde_json::to_string(&rec).map_err(|e| internal(e.to_string()))?;
            c.execute(
                "INSERT OR REPLACE INTO generations (id, created_ms, user_key, model, provider, cost, free, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rec.id,
                    rec.created_ms,
                    rec.user,
                    rec.model,
                    rec.provider,
                    rec.cost.to_string(),
                    i64::from(rec.free),
                    json
                ],
            )
            .map_err(|e| db(&e))?;
            Ok(())
        })
    }

    fn get(&self, id: &str) -> BoxFut<'_, Result<Option<GenerationRecord>>> {
        let id = id.to_string();
        self.0.run(move |c| {
            let text: Option<String> = c
                .prepare_cached("SELECT record FROM generations WHERE id = ?1")
                .and_then(|mut st| st.query_row([&id], |r| r.get(0)).optional())
                .map_err(|e| db(&e))?;
            text.as_deref().map(parse_rec).transpose()
        })
    }

    fn list(&self, q: LedgerQuery) -> BoxFut<'_, Result<Vec<GenerationRecord>>> {
        self.0.run(move |c| {
            let limit = q.limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            let since = q.since_ms.unwrap_or(i64::MIN);
            let mut st = c
                .prepare_cached(
                    "SELECT record FROM generations WHERE (?1 IS NULL OR user_key = ?1) AND created_ms >= ?2
                     ORDER BY created_ms DESC LIMIT ?3",
                )
                .map_err(|e| db(&e))?;
            let rows = st
                .query_map(params![q.user, since, limit], |r| r.get::<_, String>(0))
                .map_err(|e| db(&e))?;
            let mut out = Vec::new();
            for t in rows {
                out.push(parse_rec(&t.map_err(|e| db(&e))?)?);
            }
            Ok(out)
        })
    }

    fn summary(&self, user: Option<&str>, since_ms: i64) -> BoxFut<'_, Result<SpendSummary>> {
        let user = user.map(str::to_string);
        self.0.run(move |c| {
            c.prepare_cached(
                "SELECT count(*), group_concat(cost, ' '), coalesce(sum(free), 0) FROM generations
                 WHERE (?1 IS NULL OR user_key = ?1) AND created_ms >= ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![user, since_ms], |r| {
                    Ok(SpendSummary {
                        requests: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        cost: dec_sum(r.get(1)?),
                        free_requests: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    })
                })
            })
            .map_err(|e| db(&e))
        })
    }

    fn activity(&self, q: ActivityQuery) -> BoxFut<'_, Result<Vec<ActivityRow>>> {
        self.0.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT created_ms / 86400000 AS day,
                            json_extract(record, '$.app_title') AS title,
                            json_extract(record, '$.app_referer') AS referer,
                            model,
                            json_extract(record, '$.provider_name') AS pname,
                            count(*),
                            group_concat(cost, ' '),
                            coalesce(sum(json_extract(record, '$.usage.prompt_tokens')), 0),
                            coalesce(sum(json_extract(record, '$.usage.completion_tokens')), 0),
                            coalesce(sum(json_extract(record, '$.usage.completion_tokens_details.reasoning_tokens')), 0)
                     FROM generations WHERE user_key = ?1 AND created_ms >= ?2 AND created_ms < ?3
                     GROUP BY day, title, referer, model, pname
                     ORDER BY day DESC, title DESC, referer DESC, model DESC, pname DESC
                     LIMIT ?4 OFFSET ?5",
                )
                .map_err(|e| db(&e))?;
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            let rows = st
                .query_map(
                    params![q.user, q.since_ms, q.until(), i64::try_from(q.page()).unwrap_or(i64::MAX), i64::try_from(q.offset).unwrap_or(i64::MAX)],
                    |r| {
                    Ok(ActivityRow {
                        day: r.get(0)?,
                        app_title: r.get(1)?,
                        app_referer: r.get(2)?,
                        model: r.get(3)?,
                        provider_name: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        requests: n(r.get(5)?),
                        cost: dec_sum(r.get(6)?),
                        prompt_tokens: n(r.get(7)?),
                        completion_tokens: n(r.get(8)?),
                        reasoning_tokens: n(r.get(9)?),
                    })
                },
                )
                .map_err(|e| db(&e))?;
            rows.map(|r| r.map_err(|e| db(&e))).collect()
        })
    }

    fn totals(&self) -> BoxFut<'_, Result<Totals>> {
        self.0.run(|c| totals_of(c))
    }

    fn usage(&self, q: UsageQuery) -> BoxFut<'_, Result<Vec<UsageRow>>> {
        self.0.run(move |c| {
            let grp = match q.group {
                UsageGroup::App => {
                    "coalesce(nullif(json_extract(record, '$.app_title'), ''),
                              nullif(json_extract(record, '$.app_referer'), ''))"
                }
                UsageGroup::Model => "model",
                UsageGroup::Provider => "provider",
                UsageGroup::Key => "user_key",
            };
            let sql = format!(
                "SELECT created_ms - ((created_ms % ?3) + ?3) % ?3 AS bucket, {grp} AS grp, count(*),
                        group_concat(cost, ' '),
                        coalesce(sum(json_extract(record, '$.usage.prompt_tokens')), 0),
                        coalesce(sum(json_extract(record, '$.usage.completion_tokens')), 0)
                 FROM generations WHERE (?1 IS NULL OR user_key = ?1) AND created_ms >= ?2
                 GROUP BY bucket, grp ORDER BY bucket, grp"
            );
            let mut st = c.prepare_cached(&sql).map_err(|e| db(&e))?;
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            let rows = st
                .query_map(params![q.user, q.since_ms, q.bucket()], |r| {
                    Ok(UsageRow {
                        bucket_ms: r.get(0)?,
                        group: r.get(1)?,
                        requests: n(r.get(2)?),
                        cost: dec_sum(r.get(3)?),
                        prompt_tokens: n(r.get(4)?),
                        completion_tokens: n(r.get(5)?),
                    })
                })
                .map_err(|e| db(&e))?;
            rows.map(|r| r.map_err(|e| db(&e))).collect()
        })
    }
}

fn scope_sum(c: &Connection, sql: &str, scope: &str, now: i64) -> Result<Decimal> {
    let mut st = c.prepare_cached(sql).map_err(|e| db(&e))?;
    let rows = st
        .query_map(params![scope, now], |r| r.get::<_, String>(0))
        .map_err(|e| db(&e))?;
    let mut total = Decimal::ZERO;
    for r in rows {
        total += dec(&r.map_err(|e| db(&e))?);
    }
    Ok(total)
}

fn spent_of(c: &Connection, scope: &str) -> Result<Decimal> {
    c.prepare_cached("SELECT spent FROM budget_spent WHERE scope = ?1")
        .and_then(|mut st| st.query_row([scope], |r| r.get::<_, String>(0)).optional())
        .map(|v| v.as_deref().map(dec).unwrap_or_default())
        .map_err(|e| db(&e))
}

/// Budget and rate-window writes commit without waiting for the disk (see the module notes).
fn relaxed(c: &Connection) -> Result<()> {
    c.execute_batch("PRAGMA synchronous=NORMAL")
        .map_err(|e| db(&e))
}

const HELD_SQL: &str = "SELECT amount FROM budget_holds WHERE scope = ?1 AND expires_ms > ?2";

impl Budget for SqliteBudget {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        let req = req.clone();
        self.0.run(move |c| {
            let now = now_ms();
            relaxed(c)?;
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| db(&e))?;
            tx.execute("DELETE FROM budget_holds WHERE expires_ms <= ?1", [now])
                .map_err(|e| db(&e))?;
            let known: i64 = tx
                .query_row(
                    "SELECT (SELECT count(*) FROM budget_holds WHERE id = ?1)
                          + (SELECT count(*) FROM budget_settled WHERE id = ?1)",
                    [&req.id.0],
                    |r| r.get(0),
                )
                .map_err(|e| db(&e))?;
            if known > 0 {
                return Ok(Reserved::Held);
            }
            for sl in &req.scopes {
                let Some(limit) = sl.limit else { continue };
                let key = sl.scope.as_key();
                let spent = spent_of(&tx, &key)?;
                let held = scope_sum(&tx, HELD_SQL, &key, now)?;
                if spent + held + req.amount > limit {
                    return Ok(Reserved::Refused(Refusal {
                        scope: sl.scope.clone(),
                        limit,
                        spent,
                        held,
                        amount: req.amount,
                    }));
                }
            }
            let expires = now.saturating_add(i64::try_from(req.ttl.as_millis()).unwrap_or(i64::MAX / 2));
            for sl in &req.scopes {
                tx.execute(
                    "INSERT OR IGNORE INTO budget_holds (id, scope, amount, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![req.id.0, sl.scope.as_key(), req.amount.to_string(), expires],
                )
                .map_err(|e| db(&e))?;
            }
            tx.commit().map_err(|e| db(&e))?;
            Ok(Reserved::Held)
        })
    }

    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>> {
        let id = id.0.clone();
        let scopes: Vec<String> = scopes.iter().map(Scope::as_key).collect();
        self.0.run(move |c| {
            let now = now_ms();
            relaxed(c)?;
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| db(&e))?;
            let fresh = tx
                .execute(
                    "INSERT OR IGNORE INTO budget_settled (id, at_ms) VALUES (?1, ?2)",
                    params![id, now],
                )
                .map_err(|e| db(&e))?
                == 1;
            if !fresh {
                return Ok(false);
            }
            tx.execute("DELETE FROM budget_holds WHERE id = ?1", [&id])
                .map_err(|e| db(&e))?;
            if let Some(b) = billed {
                for s in &scopes {
                    let total = spent_of(&tx, s)? + b;
                    tx.execute(
                        "INSERT OR REPLACE INTO budget_spent (scope, spent) VALUES (?1, ?2)",
                        params![s, total.to_string()],
                    )
                    .map_err(|e| db(&e))?;
                }
            }
            tx.execute(
                "DELETE FROM budget_settled WHERE at_ms < ?1",
                [now - SETTLED_KEEP_MS],
            )
            .map_err(|e| db(&e))?;
            tx.commit().map_err(|e| db(&e))?;
            Ok(true)
        })
    }

    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let key = scope.as_key();
        self.0.run(move |c| spent_of(c, &key))
    }

    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        let key = scope.as_key();
        self.0.run(move |c| scope_sum(c, HELD_SQL, &key, now_ms()))
    }
}

impl RateLimiter for SqliteRate {
    fn hit(&self, key: &str, windows: &[Window], amount: u64) -> BoxFut<'_, Result<RateDecision>> {
        let key = key.to_string();
        let windows = windows.to_vec();
        self.0.run(move |c| {
            let now = now_ms();
            let from = windows
                .iter()
                .map(|w| span_start(w.span, now))
                .min()
                .unwrap_or(now);
            relaxed(c)?;
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| db(&e))?;
            tx.execute(
                "DELETE FROM rate_events WHERE key = ?1 AND at_ms < ?2",
                params![key, from.min(now - DAY_MS)],
            )
            .map_err(|e| db(&e))?;
            let events: Vec<(i64, u64)> = {
                let mut st = tx
                    .prepare_cached(
                        "SELECT at_ms, amount FROM rate_events WHERE key = ?1 AND at_ms >= ?2 ORDER BY at_ms",
                    )
                    .map_err(|e| db(&e))?;
                let rows = st
                    .query_map(params![key, from], |r| {
                        Ok((r.get::<_, i64>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
                    })
                    .map_err(|e| db(&e))?;
                rows.collect::<rusqlite::Result<_>>().map_err(|e| db(&e))?
            };
            let d = decide(&events, &windows, amount, now);
            if d == RateDecision::Allowed {
                tx.execute(
                    "INSERT INTO rate_events (key, at_ms, amount) VALUES (?1, ?2, ?3)",
                    params![key, now, i64::try_from(amount).unwrap_or(i64::MAX)],
                )
                .map_err(|e| db(&e))?;
            }
            tx.commit().map_err(|e| db(&e))?;
            Ok(d)
        })
    }

    fn used(&self, key: &str, span: Span) -> BoxFut<'_, Result<u64>> {
        let key = key.to_string();
        self.0.run(move |c| {
            let now = now_ms();
            let start = span_start(span, now);
            let start = match span {
                Span::Sliding(_) => start + 1,
                Span::UtcDay => start,
            };
            c.query_row(
                "SELECT coalesce(sum(amount), 0) FROM rate_events WHERE key = ?1 AND at_ms >= ?2",
                params![key, start],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| db(&e))
        })
    }
}
