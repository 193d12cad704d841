//! Gateway API keys: `sk-pr-v1-<64 hex>`, kept only as SHA-256 hashes, in one of two places:
//!
//! - **a file**, `<data dir>/keys.json` (the default): the server re-reads it when its modification time
//!   changes, so `polyroute keys create|revoke` in another process takes effect on the next request;
//! - **PostgreSQL**, when `[state] postgres` is set: table `polyroute_keys`, shared by every replica. Each
//!   replica keeps the keys in memory and polls for changes every 200 ms (one indexed query), so a revocation,
//!   update or deletion made anywhere (`polyroute keys`, `/api/v1/keys`) is refused by every replica within
//!   about 250 ms; an unknown token is looked up at once (a key created a moment ago works on its first
//!   request). When PostgreSQL cannot be reached the replicas keep the last keys they read.
//!
//! [`KeyStore`] is the seam: the same lookups and management calls over either place. A token seen before is
//! found through the [`TokenCache`](super::auth::TokenCache) without hashing it again; the store's generation
//! (bumped whenever its keys change) keeps that cache exactly as current as the store.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use polyroute_postgres::PostgresKeys;
use rand::RngCore;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auth::{Hit, TokenCache};

/// One key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Stable id (`key-<12 hex>`): the user the engine bills.
    pub id: String,
    /// Human label (OpenRouter's `name` and `label`).
    pub label: String,
    /// Hex SHA-256 of the key (OpenRouter's `hash`: the key's id in `/api/v1/keys/{hash}`).
    pub hash: String,
    /// First characters, for display (`sk-pr-v1-1a2b…`).
    pub prefix: String,
    /// Credit limit in USD (None = unlimited); a JSON number in the key file.
    #[serde(default, with = "super::money")]
    pub limit: Option<Decimal>,
    /// When the limit resets: `daily`, `weekly` (Monday) or `monthly`, at 00:00 UTC (None: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_reset: Option<LimitReset>,
    /// After this (Unix ms) the key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// Requests per minute (None: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute, counted from usage after each generation (None: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Models the key may use (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Providers the key may be served by (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Disabled through the management API (refused like a revoked key, and can be enabled again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// A management key: authorizes `/api/v1/keys`, not inference.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub management: bool,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Last change (Unix ms; 0 when never changed).
    #[serde(default)]
    pub updated_ms: i64,
    /// Set when revoked.
    #[serde(default)]
    pub revoked_ms: Option<i64>,
    /// Set when deleted (the row stays, so every replica learns of the deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
}

/// When a key's limit resets (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    /// At 00:00 UTC every day.
    Daily,
    /// At 00:00 UTC every Monday.
    Weekly,
    /// At 00:00 UTC on the first of every month.
    Monthly,
}

impl LimitReset {
    /// Parse OpenRouter's names.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }

    /// OpenRouter's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

impl KeyEntry {
    /// A fresh entry for `key`.
    #[must_use]
    pub fn new(key: &str, label: &str, limit: Option<Decimal>) -> Self {
        let mut idb = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut idb);
        Self {
            id: format!("key-{}", hex::encode(idb)),
            label: label.to_string(),
            hash: hash_key(key),
            prefix: format!("{}…", key.get(..13).unwrap_or(key)),
            limit,
            limit_reset: None,
            expires_ms: None,
            rpm: None,
            tpm: None,
            models: Vec::new(),
            providers: Vec::new(),
            disabled: false,
            management: false,
            created_ms: now_ms(),
            updated_ms: 0,
            revoked_ms: None,
            deleted_ms: None,
        }
    }

    /// Whether it can be used at `now` (not revoked, disabled, deleted or expired).
    #[must_use]
    pub fn usable(&self, now: i64) -> bool {
        self.revoked_ms.is_none()
            && !self.disabled
            && self.deleted_ms.is_none()
            && self.expires_ms.is_none_or(|e| now < e)
    }
}

/// A fresh key (`sk-pr-v1-<64 hex>`).
#[must_use]
pub fn new_key() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("sk-pr-v1-{}", hex::encode(raw))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<KeyEntry>,
}

/// Hex SHA-256 of a key.
#[must_use]
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Unix milliseconds now.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn file_of(dir: &Path) -> PathBuf {
    dir.join("keys.json")
}

fn read_file(dir: &Path) -> Result<KeyFile> {
    let p = file_of(dir);
    match std::fs::read_to_string(&p) {
        Ok(t) => {
            serde_json::from_str(&t).with_context(|| format!("corrupt key file {}", p.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

fn write_file(dir: &Path, f: &KeyFile) -> Result<()> {
    super::files::private_dir(dir)?;
    let p = file_of(dir);
    let tmp = dir.join(format!("keys.json.tmp{}", std::process::id()));
    let text = serde_json::to_string_pretty(f)?;
    super::files::write_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, &p).with_context(|| format!("cannot replace {}", p.display()))?;
    Ok(())
}

/// Create a key in the key file of `dir`; returns the entry and the key (shown once).
///
/// # Errors
/// The key file cannot be read or written.
pub fn create(dir: &Path, label: &str, limit: Option<Decimal>) -> Result<(KeyEntry, String)> {
    let key = new_key();
    let entry = KeyEntry::new(&key, label, limit);
    put_file(dir, &entry)?;
    Ok((entry, key))
}

/// Insert or replace (by id) an entry of the key file of `dir`.
///
/// # Errors
/// The key file cannot be read or written.
pub fn put_file(dir: &Path, entry: &KeyEntry) -> Result<()> {
    let mut f = read_file(dir)?;
    match f.keys.iter_mut().find(|k| k.id == entry.id) {
        Some(k) => *k = entry.clone(),
        None => f.keys.push(entry.clone()),
    }
    write_file(dir, &f)
}

/// All keys of the key file of `dir` (deleted ones included).
///
/// # Errors
/// The key file cannot be read.
pub fn list(dir: &Path) -> Result<Vec<KeyEntry>> {
    Ok(read_file(dir)?.keys)
}

/// Revoke by id, label or full key in the key file of `dir`; returns the revoked entries.
///
/// # Errors
/// No such key, or the file cannot be written.
pub fn revoke(dir: &Path, which: &str) -> Result<Vec<KeyEntry>> {
    let mut f = read_file(dir)?;
    let out = revoke_in(&mut f.keys, which, now_ms())?;
    write_file(dir, &f)?;
    Ok(out)
}

fn revoke_in(keys: &mut [KeyEntry], which: &str, now: i64) -> Result<Vec<KeyEntry>> {
    let h = hash_key(which);
    let mut out = Vec::new();
    for k in keys {
        if k.revoked_ms.is_none()
            && k.deleted_ms.is_none()
            && (k.id == which || k.label == which || k.hash == h || k.hash == which)
        {
            k.revoked_ms = Some(now);
            k.updated_ms = now;
            out.push(k.clone());
        }
    }
    if out.is_empty() {
        anyhow::bail!("no active key matches {which:?}");
    }
    Ok(out)
}

/// What a bearer token turned out to be.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A usable key.
    Active(Arc<KeyEntry>),
    /// A revoked or disabled key.
    Revoked,
    /// A key past its `expires_at`.
    Expired,
    /// Unknown (or deleted).
    Unknown,
}

enum Backend {
    File(PathBuf),
    Postgres(PostgresKeys),
}

struct Cache {
    mtime: Option<SystemTime>,
    checked: Instant,
    by_hash: HashMap<String, Arc<KeyEntry>>,
}

/// The server's view of its keys (see the module docs), and the management calls over them.
pub struct KeyStore {
    backend: Backend,
    cache: RwLock<Cache>,
    /// Bumped (under the cache's write lock) whenever the keys in `cache` change.
    generation: AtomicU64,
    tokens: TokenCache,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match &self.backend {
            Backend::File(d) => d.display().to_string(),
            Backend::Postgres(p) => format!("postgres {}", p.server()),
        };
        f.debug_struct("KeyStore")
            .field("place", &place)
            .finish_non_exhaustive()
    }
}

/// How often the file's modification time is checked.
const RECHECK: Duration = Duration::from_millis(200);
/// How often a replica asks PostgreSQL for changed keys.
pub const POLL: Duration = Duration::from_millis(200);
/// Revisions newer than what was seen this long ago are read again (see `polyroute_postgres::keys`).
const REREAD: Duration = Duration::from_secs(2);

fn parse_entry(text: &str) -> Option<KeyEntry> {
    match serde_json::from_str(text) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, "a stored key record does not parse; skipped");
            None
        }
    }
}

impl KeyStore {
    /// The key file of `dir` (it may not exist yet).
    ///
    /// # Errors
    /// A corrupt key file.
    pub fn open(dir: &Path) -> Result<Self> {
        let s = Self {
            backend: Backend::File(dir.to_path_buf()),
            cache: RwLock::new(Cache {
                mtime: None,
                checked: Instant::now(),
                by_hash: HashMap::new(),
            }),
            generation: AtomicU64::new(0),
            tokens: TokenCache::default(),
        };
        s.reload()?;
        Ok(s)
    }

    /// The keys in PostgreSQL, without the background refresh (management commands).
    #[must_use]
    pub fn postgres_once(keys: PostgresKeys) -> Self {
        Self {
            backend: Backend::Postgres(keys),
            cache: RwLock::new(Cache {
                mtime: None,
                checked: Instant::now(),
                by_hash: HashMap::new(),
            }),
            generation: AtomicU64::new(0),
            tokens: TokenCache::default(),
        }
    }

    /// The keys in PostgreSQL: read them all now, then poll for changes every [`POLL`] on a task of the current
    /// runtime (it stops when the store is dropped).
    ///
    /// # Errors
    /// PostgreSQL cannot be read.
    pub async fn postgres(keys: PostgresKeys) -> Result<Arc<Self>> {
        let rows = keys.all().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let s = Arc::new(Self::postgres_once(keys));
        let max = rows.iter().map(|r| r.rev).max().unwrap_or(0);
        s.apply(rows.iter().filter_map(|r| parse_entry(&r.record)));
        tokio::spawn(poll(Arc::downgrade(&s), max));
        Ok(s)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn apply(&self, entries: impl Iterator<Item = KeyEntry>) {
        let mut c = self.write_cache();
        let mut changed = false;
        for e in entries {
            c.by_hash.insert(e.hash.clone(), Arc::new(e));
            changed = true;
        }
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        drop(c);
    }

    fn mtime(&self) -> Option<SystemTime> {
        match &self.backend {
            Backend::File(dir) => std::fs::metadata(file_of(dir))
                .and_then(|m| m.modified())
                .ok(),
            Backend::Postgres(_) => None,
        }
    }

    fn reload(&self) -> Result<()> {
        let Backend::File(dir) = &self.backend else {
            return Ok(());
        };
        let mtime = self.mtime();
        let f = read_file(dir)?;
        let by_hash = f
            .keys
            .into_iter()
            .map(|k| (k.hash.clone(), Arc::new(k)))
            .collect();
        let mut c = self.write_cache();
        *c = Cache {
            mtime,
            checked: Instant::now(),
            by_hash,
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(c);
        Ok(())
    }

    fn refresh(&self) {
        if !matches!(self.backend, Backend::File(_)) {
            return;
        }
        let stale = {
            let c = self
                .cache
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.checked.elapsed() >= RECHECK
        };
        if !stale {
            return;
        }
        let m = self.mtime();
        let changed = {
            let mut c = self.write_cache();
            c.checked = Instant::now();
            c.mtime != m
        };
        if changed {
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "cannot reload keys; keeping the previous set");
            }
        }
    }

    /// Force a reload of the key file now (tests, after `create` in the same process).
    pub fn invalidate(&self) {
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "cannot reload keys");
        }
    }

    /// The entry of hash `h` and the generation it belongs to (read under one lock).
    fn entry(&self, h: &str) -> (Option<Arc<KeyEntry>>, u64) {
        let c = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            c.by_hash.get(h).cloned(),
            self.generation.load(Ordering::Acquire),
        )
    }

    fn file_changed(&self) -> bool {
        if !matches!(self.backend, Backend::File(_)) {
            return false;
        }
        let seen = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .mtime;
        seen != self.mtime()
    }

    /// The lookup of `token` and its SHA-256.
    fn resolve(&self, token: &str) -> (Lookup, Arc<str>) {
        self.refresh();
        let at = self.tokens.slot_of(token);
        let generation = self.generation.load(Ordering::Acquire);
        let hash = match self.tokens.get(at, token, generation) {
            Some(Hit::Current(Some(k))) => return (classify(Some(&k)), Arc::from(k.hash.as_str())),
            Some(Hit::Current(None)) => Arc::from(hash_key(token)),
            Some(Hit::Stale(h)) => h,
            None => Arc::from(hash_key(token)),
        };
        let (mut found, mut generation) = self.entry(&hash);
        // An unknown token in a file store: a key created a moment ago by another process works at once.
        if found.is_none() && self.file_changed() {
            self.invalidate();
            (found, generation) = self.entry(&hash);
        }
        // Only tokens that name a key take a slot (see `auth`).
        if found.is_some() {
            self.tokens
                .put(at, token, hash.clone(), found.clone(), generation);
        }
        (classify(found.as_ref()), hash)
    }

    /// Look up a bearer token in memory (a file store first re-reads a changed file).
    pub fn lookup(&self, token: &str) -> Lookup {
        self.resolve(token).0
    }

    /// [`KeyStore::lookup`], and for an unknown token in PostgreSQL, one query by its hash (a key created on
    /// another replica a moment ago works on its first request).
    pub async fn lookup_now(&self, token: &str) -> Lookup {
        let (found, h) = self.resolve(token);
        let (Lookup::Unknown, Backend::Postgres(pg)) = (&found, &self.backend) else {
            return found;
        };
        match pg.by_hash(&h).await {
            Ok(Some(row)) => {
                self.apply(parse_entry(&row.record).into_iter());
                self.lookup(token)
            }
            Ok(None) => Lookup::Unknown,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look a key up; treating it as unknown");
                Lookup::Unknown
            }
        }
    }

    /// How many tokens the cache of authenticated tokens holds.
    #[must_use]
    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Where the keys are (`<dir>/keys.json` or `postgres host:port/db`).
    #[must_use]
    pub fn place(&self) -> String {
        match &self.backend {
            Backend::File(d) => file_of(d).display().to_string(),
            Backend::Postgres(p) => format!("postgres {}", p.server()),
        }
    }

    /// Insert or replace (by id) a key, and see it at once in this process.
    ///
    /// # Errors
    /// The file or the server cannot be written.
    pub async fn put(&self, entry: &KeyEntry) -> Result<()> {
        match &self.backend {
            Backend::File(dir) => {
                put_file(dir, entry)?;
                self.invalidate();
            }
            Backend::Postgres(pg) => {
                let text = serde_json::to_string(entry)?;
                pg.put(&entry.id, &entry.hash, &text)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                self.apply(std::iter::once(entry.clone()));
            }
        }
        Ok(())
    }

    /// Create a key; returns the entry and the key (shown once).
    ///
    /// # Errors
    /// As [`KeyStore::put`].
    pub async fn create(&self, label: &str, limit: Option<Decimal>) -> Result<(KeyEntry, String)> {
        let key = new_key();
        let entry = KeyEntry::new(&key, label, limit);
        self.put(&entry).await?;
        Ok((entry, key))
    }

    /// Every key, deleted ones included, by creation time.
    ///
    /// # Errors
    /// The file or the server cannot be read.
    pub async fn list(&self) -> Result<Vec<KeyEntry>> {
        let mut v = match &self.backend {
            Backend::File(dir) => list(dir)?,
            Backend::Postgres(pg) => pg
                .all()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .iter()
                .filter_map(|r| parse_entry(&r.record))
                .collect(),
        };
        v.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Revoke by id, label, hash or the key itself; returns the revoked entries.
    ///
    /// # Errors
    /// No active key matches, or the store cannot be written.
    pub async fn revoke(&self, which: &str) -> Result<Vec<KeyEntry>> {
        let mut all = self.list().await?;
        let out = revoke_in(&mut all, which, now_ms())?;
        for e in &out {
            self.put(e).await?;
        }
        Ok(out)
    }
}

/// What `entry` means for a request now.
fn classify(entry: Option<&Arc<KeyEntry>>) -> Lookup {
    match entry {
        None => Lookup::Unknown,
        Some(k) if k.deleted_ms.is_some() => Lookup::Unknown,
        Some(k) if k.revoked_ms.is_some() || k.disabled => Lookup::Revoked,
        Some(k) if k.expires_ms.is_some_and(|e| now_ms() >= e) => Lookup::Expired,
        Some(k) => Lookup::Active(k.clone()),
    }
}

/// The replica's refresh: every [`POLL`], the rows changed since what was seen [`REREAD`] ago.
async fn poll(store: Weak<KeyStore>, seen: i64) {
    let mut watermark = seen;
    let mut hist: VecDeque<(Instant, i64)> = VecDeque::from([(Instant::now(), seen)]);
    let mut max = seen;
    let mut failing = false;
    loop {
        tokio::time::sleep(POLL).await;
        let Some(s) = store.upgrade() else { return };
        let Backend::Postgres(pg) = &s.backend else {
            return;
        };
        while let Some(&(t, rev)) = hist.front() {
            if t.elapsed() < REREAD {
                break;
            }
            watermark = watermark.max(rev);
            hist.pop_front();
        }
        // Re-read the recent window: a revision below `max` may commit late.
        let from = watermark.min(max);
        match pg.changed_since(from).await {
            Ok(rows) => {
                if failing {
                    tracing::warn!(server = pg.server(), "keys readable again");
                    failing = false;
                }
                max = rows.iter().map(|r| r.rev).fold(max, i64::max);
                s.apply(rows.iter().filter_map(|r| parse_entry(&r.record)));
                hist.push_back((Instant::now(), max));
            }
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "cannot refresh keys; keeping the last set read");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn create_list_revoke_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let (e, key) = create(dir.path(), "ci", Some(Decimal::new(5, 0))).unwrap();
        assert!(key.starts_with("sk-pr-v1-") && key.len() == 9 + 64);
        let text = std::fs::read_to_string(dir.path().join("keys.json")).unwrap();
        assert!(!text.contains(&key), "the key itself is never stored");
        let store = KeyStore::open(dir.path()).unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Active(k) if k.id == e.id));
        assert!(matches!(store.lookup("sk-test-fake"), Lookup::Unknown));
        revoke(dir.path(), &e.id).unwrap();
        store.invalidate();
        assert!(matches!(store.lookup(&key), Lookup::Revoked));
        assert!(revoke(dir.path(), &e.id).is_err());
        assert_eq!(list(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn old_key_files_parse_and_expiry_refuses() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keys.json"),
            r#"{"keys":[{"id":"key-1","label":"old","hash":"ab","prefix":"sk-pr-v1-00…","limit":1.5,"created_ms":1}]}"#,
        )
        .unwrap();
        let mut e = list(dir.path()).unwrap().remove(0);
        assert_eq!(e.limit, Some(Decimal::new(15, 1)));
        assert!(e.usable(now_ms()));
        e.expires_ms = Some(now_ms() - 1);
        assert!(!e.usable(now_ms()));
        let key = new_key();
        let mut x = KeyEntry::new(&key, "x", None);
        x.expires_ms = Some(now_ms() - 1);
        put_file(dir.path(), &x).unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Expired));
    }

    #[test]
    fn cached_tokens_follow_changes_in_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let (mut e, key) = create(dir.path(), "ci", None).unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        assert!(matches!(store.lookup(&key), Lookup::Active(_)));
        assert_eq!(store.cached_tokens(), 1);
        // Limits changed: the next lookup returns the new entry.
        e.rpm = Some(7);
        put_file(dir.path(), &e).unwrap();
        store.invalidate();
        assert!(matches!(store.lookup(&key), Lookup::Active(k) if k.rpm == Some(7)));
        e.disabled = true;
        put_file(dir.path(), &e).unwrap();
        store.invalidate();
        assert!(matches!(store.lookup(&key), Lookup::Revoked));
        e.disabled = false;
        e.deleted_ms = Some(now_ms());
        put_file(dir.path(), &e).unwrap();
        store.invalidate();
        assert!(matches!(store.lookup(&key), Lookup::Unknown));
        // Unknown tokens take no slot.
        for i in 0..50 {
            assert!(matches!(
                store.lookup(&format!("sk-test-fake-{i}")),
                Lookup::Unknown
            ));
        }
        assert_eq!(store.cached_tokens(), 1);
    }

    #[test]
    fn a_revocation_written_by_another_process_is_seen_within_the_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let (e, key) = create(dir.path(), "ci", None).unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        for _ in 0..100 {
            assert!(matches!(store.lookup(&key), Lookup::Active(_)));
        }
        // What `polyroute keys revoke` in another process does: rewrite the file, nothing else.
        revoke(dir.path(), &e.id).unwrap();
        let t0 = Instant::now();
        let mut refused = None;
        for _ in 0..200 {
            if matches!(store.lookup(&key), Lookup::Revoked) {
                refused = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(refused.is_some(), "the revoked key still works after 1 s");
        let took = refused.unwrap_or_default();
        assert!(took <= RECHECK + Duration::from_millis(100), "{took:?}");
    }
}
