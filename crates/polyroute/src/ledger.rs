//! The usage ledger: one record per served generation, committed before the response is returned.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use polyroute_core::error::AttemptRecord;
use polyroute_core::{Error, Result, Usage};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One served generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    /// `gen-…`.
    pub id: String,
    /// Unix milliseconds when the request arrived.
    pub created_ms: i64,
    /// Model that served.
    pub model: String,
    /// Provider slug that served.
    pub provider: String,
    /// Provider display name.
    pub provider_name: String,
    /// Endpoint tag that served.
    pub endpoint: String,
    /// Streamed response.
    pub streamed: bool,
    /// Normalized usage.
    pub usage: Usage,
    /// Total cost in USD (billed for the serving attempt only).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Itemized cost.
    pub cost_details: Value,
    /// Normalized finish reason.
    pub finish_reason: Option<String>,
    /// Every attempt, in order (the last one served).
    pub attempts: Vec<AttemptRecord>,
    /// `HTTP-Referer` of the calling app.
    pub app_referer: Option<String>,
    /// `X-Title` of the calling app.
    pub app_title: Option<String>,
    /// User key the generation is billed to.
    pub user: Option<String>,
    /// Whether the model is a `:free` variant.
    pub free: bool,
    /// Milliseconds from request to the end of the answer.
    pub latency_ms: f64,
    /// Milliseconds to the first token.
    pub ttft_ms: Option<f64>,
    /// Request parameters left out because the serving provider's dialect does not support them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_params: Vec<String>,
}

impl GenerationRecord {
    /// As JSON (what `router.generation(id)` returns).
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Spend totals, per router and per user key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// All generations.
    pub all: Decimal,
    /// Per user key.
    pub by_user: HashMap<String, Decimal>,
    /// Number of generations.
    pub count: u64,
}

/// Where generation records are kept. `insert` must be durable when it returns.
pub trait Ledger: Send + Sync + 'static {
    /// Store a record durably.
    ///
    /// # Errors
    /// When the store fails; the response is then not returned as served.
    fn insert(&self, rec: &GenerationRecord) -> Result<()>;
    /// [`Ledger::insert`] for a record the caller no longer needs: a store that keeps the record itself takes it
    /// without a copy.
    ///
    /// # Errors
    /// As [`Ledger::insert`].
    fn insert_owned(&self, rec: GenerationRecord) -> Result<()> {
        self.insert(&rec)
    }
    /// Look a record up.
    ///
    /// # Errors
    /// When the store fails.
    fn get(&self, id: &str) -> Result<Option<GenerationRecord>>;
    /// Spend totals (read once when a router starts).
    ///
    /// # Errors
    /// When the store fails.
    fn totals(&self) -> Result<Totals>;
    /// Whether calls block on I/O (the router then runs them on the blocking pool).
    fn is_blocking(&self) -> bool {
        false
    }
}

/// How many records a [`MemoryLedger`] keeps by default (the router's ledger when no SQLite file is given).
pub const MEMORY_LEDGER_CAPACITY: usize = 10_000;

/// The newest records, kept in memory (lost on exit): at most a capacity, the oldest dropped first, so that a
/// long-running process does not grow by one record per request. Spend totals and limits do not depend on it
/// (the router keeps its own running totals); only [`Ledger::get`] of an older generation comes back empty.
/// Records are boxed, so that growing the map moves pointers rather than records (a rehash of a large map of
/// records stalled every request behind the lock for milliseconds).
#[derive(Debug)]
pub struct MemoryLedger {
    recs: Mutex<MemoryRecords>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct MemoryRecords {
    by_id: HashMap<Arc<str>, Box<GenerationRecord>>,
    /// Insertion order, oldest first (the same shared ids as the map's keys).
    order: VecDeque<Arc<str>>,
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::with_capacity(MEMORY_LEDGER_CAPACITY)
    }
}

impl MemoryLedger {
    /// A ledger keeping the newest `capacity` records (at least one).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            recs: Mutex::new(MemoryRecords::default()),
            capacity: capacity.max(1),
        }
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.recs.lock().map(|m| m.by_id.len()).unwrap_or(0)
    }

    /// Whether empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ledger for MemoryLedger {
    fn insert(&self, rec: &GenerationRecord) -> Result<()> {
        self.insert_owned(rec.clone())
    }

    fn insert_owned(&self, rec: GenerationRecord) -> Result<()> {
        let id: Arc<str> = Arc::from(rec.id.as_str());
        let rec = Box::new(rec);
        let mut m = self
            .recs
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?;
        if m.by_id.insert(Arc::clone(&id), rec).is_none() {
            m.order.push_back(id);
        }
        // One record in, at most one out.
        if m.order.len() > self.capacity {
            if let Some(old) = m.order.pop_front() {
                m.by_id.remove(&old);
            }
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<GenerationRecord>> {
        Ok(self
            .recs
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?
            .by_id
            .get(id)
            .map(|r| GenerationRecord::clone(r)))
    }

    fn totals(&self) -> Result<Totals> {
        let m = self
            .recs
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?;
        let mut t = Totals::default();
        for r in m.by_id.values() {
            add(&mut t, r.user.as_deref(), r.cost);
        }
        Ok(t)
    }
}

fn add(t: &mut Totals, user: Option<&str>, cost: Decimal) {
    t.all += cost;
    t.count += 1;
    if let Some(u) = user {
        *t.by_user.entry(u.to_string()).or_default() += cost;
    }
}

fn internal(m: impl Into<String>) -> Error {
    Error::Internal { message: m.into() }
}

fn db(e: &rusqlite::Error) -> Error {
    internal(format!("ledger: {e}"))
}

/// An embedded SQLite ledger in WAL mode with `synchronous=FULL`: a record is on disk when `insert` returns.
#[derive(Debug)]
pub struct SqliteLedger {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteLedger {
    /// Open (or create) the ledger file.
    ///
    /// # Errors
    /// When the file cannot be opened or initialized.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path).map_err(|e| db(&e))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS generations (
                 id TEXT PRIMARY KEY,
                 created_ms INTEGER NOT NULL,
                 user_key TEXT,
                 model TEXT NOT NULL,
                 provider TEXT NOT NULL,
                 cost TEXT NOT NULL,
                 free INTEGER NOT NULL,
                 record TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS generations_user ON generations(user_key);",
        )
        .map_err(|e| db(&e))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// An in-memory SQLite database (for tests).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn in_memory() -> Result<Self> {
        Self::open(Path::new(":memory:"))
    }
}

impl Ledger for SqliteLedger {
    fn insert(&self, rec: &GenerationRecord) -> Result<()> {
        let json = serde_json::to_string(rec).map_err(|e| internal(e.to_string()))?;
        let conn = self
            .conn
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?;
        conn.execute(
            "INSERT INTO generations (id, created_ms, user_key, model, provider, cost, free, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
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
    }

    fn get(&self, id: &str) -> Result<Option<GenerationRecord>> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?;
        let mut st = conn
            .prepare_cached("SELECT record FROM generations WHERE id = ?1")
            .map_err(|e| db(&e))?;
        let mut rows = st.query([id]).map_err(|e| db(&e))?;
        match rows.next().map_err(|e| db(&e))? {
            Some(row) => {
                let text: String = row.get(0).map_err(|e| db(&e))?;
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| internal(e.to_string()))
            }
            None => Ok(None),
        }
    }

    fn totals(&self) -> Result<Totals> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?;
        let mut st = conn
            .prepare("SELECT user_key, cost FROM generations")
            .map_err(|e| db(&e))?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| db(&e))?;
        let mut t = Totals::default();
        for row in rows {
            let (user, cost) = row.map_err(|e| db(&e))?;
            add(&mut t, user.as_deref(), cost.parse().unwrap_or_default());
        }
        Ok(t)
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, user: &str, cost: i64) -> GenerationRecord {
        GenerationRecord {
            id: id.to_string(),
            created_ms: 1,
            model: "m".into(),
            provider: "p".into(),
            provider_name: "P".into(),
            endpoint: "p".into(),
            streamed: false,
            usage: Usage::default(),
            cost: Decimal::new(cost, 2),
            cost_details: Value::Null,
            finish_reason: None,
            attempts: Vec::new(),
            app_referer: None,
            app_title: None,
            user: Some(user.to_string()),
            free: false,
            latency_ms: 0.0,
            ttft_ms: None,
            dropped_params: Vec::new(),
        }
    }

    #[test]
    fn memory_ledger_keeps_the_newest_records() -> Result<()> {
        let l = MemoryLedger::with_capacity(3);
        for i in 0..5 {
            l.insert_owned(rec(&format!("gen-{i}"), "k", i))?;
        }
        assert_eq!(l.len(), 3);
        for i in 0..2 {
            assert!(l.get(&format!("gen-{i}"))?.is_none(), "gen-{i} kept");
        }
        for i in 2..5 {
            assert_eq!(
                l.get(&format!("gen-{i}"))?.map(|r| r.cost),
                Some(Decimal::new(i, 2))
            );
        }
        // The same id again replaces the record and keeps one slot for it.
        l.insert(&rec("gen-4", "k", 99))?;
        assert_eq!(l.len(), 3);
        assert_eq!(l.get("gen-4")?.map(|r| r.cost), Some(Decimal::new(99, 2)));
        assert!(l.get("gen-2")?.is_some());
        l.insert(&rec("gen-5", "k", 5))?;
        assert!(l.get("gen-2")?.is_none() && l.get("gen-3")?.is_some());
        let t = l.totals()?;
        assert_eq!((t.count, t.all), (3, Decimal::new(3 + 99 + 5, 2)));
        Ok(())
    }

    #[test]
    fn memory_ledger_capacity_is_at_least_one_and_defaults_to_the_constant() -> Result<()> {
        let l = MemoryLedger::with_capacity(0);
        l.insert(&rec("a", "k", 1))?;
        l.insert(&rec("b", "k", 1))?;
        assert_eq!(l.len(), 1);
        assert!(l.get("b")?.is_some());
        assert_eq!(MemoryLedger::default().capacity, MEMORY_LEDGER_CAPACITY);
        Ok(())
    }
}
