//! [`PostgresKeys`]: a gateway's API keys in `polyroute_keys` (migration 3), shared by every replica.
//!
//! The store is opaque to key semantics: each row is an id, the hex SHA-256 of the key (never the key itself),
//! a revision and the caller's JSON record. Every write (insert, update, revoke, delete: all are upserts of the
//! record) takes a fresh revision from the sequence `polyroute_keys_rev`, so a replica learns every change with
//! one indexed query, [`PostgresKeys::changed_since`]`(rev)`. Sequence values are handed out before commit, so
//! a slow transaction can commit a lower revision than one already seen: callers re-read a short window of
//! revisions (the gateway re-reads what changed in the last 2 s) rather than trusting the maximum alone.

use std::sync::Arc;

use polyroute::Result;

use crate::Pool;

const BASE: usize = crate::ledger::COUNT + crate::budget::COUNT;
const UPSERT: usize = BASE;
const SINCE: usize = BASE + 1;
const BY_HASH: usize = BASE + 2;
const ALL: usize = BASE + 3;

pub(crate) const MIGRATION: &str = "CREATE SEQUENCE polyroute_keys_rev;
     CREATE TABLE polyroute_keys (
         id     text PRIMARY KEY,
         hash   text NOT NULL UNIQUE,
         rev    bigint NOT NULL DEFAULT nextval('polyroute_keys_rev'),
         record text NOT NULL
     );
     CREATE INDEX polyroute_keys_by_rev ON polyroute_keys (rev);";

pub(crate) fn statements() -> Vec<String> {
    vec![
        "INSERT INTO polyroute_keys (id, hash, record) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET hash = EXCLUDED.hash, record = EXCLUDED.record,
                                        rev = nextval('polyroute_keys_rev')
         RETURNING rev"
            .to_string(),
        "SELECT rev, record FROM polyroute_keys WHERE rev > $1 ORDER BY rev".to_string(),
        "SELECT rev, record FROM polyroute_keys WHERE hash = $1".to_string(),
        "SELECT rev, record FROM polyroute_keys ORDER BY id".to_string(),
    ]
}

/// One stored key row: its revision and the caller's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Revision of the last write.
    pub rev: i64,
    /// The record as written (JSON text).
    pub record: String,
}

/// Gateway keys on PostgreSQL (see the module docs).
#[derive(Clone)]
pub struct PostgresKeys {
    pub(crate) pool: Arc<Pool>,
}

impl std::fmt::Debug for PostgresKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresKeys")
            .field("server", &self.pool.server)
            .finish_non_exhaustive()
    }
}

fn rows(v: &[tokio_postgres::Row]) -> Vec<KeyRow> {
    v.iter()
        .map(|r| KeyRow {
            rev: r.get(0),
            record: r.get(1),
        })
        .collect()
}

impl PostgresKeys {
    /// The server's `host:port/db` (for messages).
    #[must_use]
    pub fn server(&self) -> &str {
        &self.pool.server
    }

    /// Insert or replace the key `id` (its hash and record); answers the new revision.
    ///
    /// # Errors
    /// The server cannot be reached, or `hash` belongs to another id.
    pub async fn put(&self, id: &str, hash: &str, record: &str) -> Result<i64> {
        let c = self.pool.get().await?;
        let row = c
            .client
            .query_one(&c.st[UPSERT], &[&id, &hash, &record])
            .await
            .map_err(|e| self.pool.db_error("put key", &e))?;
        Ok(row.get(0))
    }

    /// Rows written with a revision above `rev`, in revision order.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn changed_since(&self, rev: i64) -> Result<Vec<KeyRow>> {
        let c = self.pool.get().await?;
        let v = c
            .client
            .query(&c.st[SINCE], &[&rev])
            .await
            .map_err(|e| self.pool.db_error("read keys", &e))?;
        Ok(rows(&v))
    }

    /// The row of the key whose hash is `hash`.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn by_hash(&self, hash: &str) -> Result<Option<KeyRow>> {
        let c = self.pool.get().await?;
        let v = c
            .client
            .query(&c.st[BY_HASH], &[&hash])
            .await
            .map_err(|e| self.pool.db_error("read key", &e))?;
        Ok(rows(&v).pop())
    }

    /// Every row, by id.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn all(&self) -> Result<Vec<KeyRow>> {
        let c = self.pool.get().await?;
        let v = c
            .client
            .query(&c.st[ALL], &[])
            .await
            .map_err(|e| self.pool.db_error("read keys", &e))?;
        Ok(rows(&v))
    }
}
