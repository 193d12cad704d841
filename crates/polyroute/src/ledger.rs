//! The usage ledger: one record per served generation, committed before the response is returned.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

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

/// Records kept in memory (lost on exit). Boxed, so that growing the map moves pointers rather than records
/// (a rehash of a large map of records stalled every request behind the lock for milliseconds).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    recs: Mutex<HashMap<String, Box<GenerationRecord>>>,
}

impl MemoryLedger {
    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.recs.lock().map(|m| m.len()).unwrap_or(0)
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
        let rec = Box::new(rec);
        self.recs
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?
            .insert(rec.id.clone(), rec);
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<GenerationRecord>> {
        Ok(self
            .recs
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?
            .get(id)
            .map(|r| GenerationRecord::clone(r)))
    }

    fn totals(&self) -> Result<Totals> {
        let m = self
            .recs
            .lock()
            .map_err(|_| internal("ledger lock poisoned"))?;
        let mut t = Totals::default();
        for r in m.values() {
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
