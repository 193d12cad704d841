//! Gateway API keys: `sk-pr-v1-<64 hex>`, kept only as SHA-256 hashes in `<data dir>/keys.json`.
//!
//! The server re-reads the file when its modification time changes, so `polyroute keys create|revoke` in another
//! process takes effect on the next request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rand::RngCore;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Stable id (`key-<12 hex>`): the user the engine bills.
    pub id: String,
    /// Human label.
    pub label: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// First characters, for display (`sk-pr-v1-1a2b…`).
    pub prefix: String,
    /// Credit limit in USD (None = unlimited); a JSON number in the key file.
    #[serde(default, with = "super::money")]
    pub limit: Option<Decimal>,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Set when revoked.
    #[serde(default)]
    pub revoked_ms: Option<i64>,
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

fn now_ms() -> i64 {
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

/// Create a key; returns the entry and the key (shown once).
///
/// # Errors
/// The key file cannot be read or written.
pub fn create(dir: &Path, label: &str, limit: Option<Decimal>) -> Result<(KeyEntry, String)> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let key = format!("sk-pr-v1-{}", hex::encode(raw));
    let mut idb = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut idb);
    let entry = KeyEntry {
        id: format!("key-{}", hex::encode(idb)),
        label: label.to_string(),
        hash: hash_key(&key),
        prefix: format!("{}…", &key[..13]),
        limit,
        created_ms: now_ms(),
        revoked_ms: None,
    };
    let mut f = read_file(dir)?;
    f.keys.push(entry.clone());
    write_file(dir, &f)?;
    Ok((entry, key))
}

/// All keys.
///
/// # Errors
/// The key file cannot be read.
pub fn list(dir: &Path) -> Result<Vec<KeyEntry>> {
    Ok(read_file(dir)?.keys)
}

/// Revoke by id, label or full key; returns the revoked entries.
///
/// # Errors
/// No such key, or the file cannot be written.
pub fn revoke(dir: &Path, which: &str) -> Result<Vec<KeyEntry>> {
    let mut f = read_file(dir)?;
    let h = hash_key(which);
    let now = now_ms();
    let mut out = Vec::new();
    for k in &mut f.keys {
        if k.revoked_ms.is_none() && (k.id == which || k.label == which || k.hash == h) {
            k.revoked_ms = Some(now);
            out.push(k.clone());
        }
    }
    if out.is_empty() {
        anyhow::bail!("no active key matches {which:?}");
    }
    write_file(dir, &f)?;
    Ok(out)
}

/// What a bearer token turned out to be.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// An active key.
    Active(Arc<KeyEntry>),
    /// A revoked key.
    Revoked,
    /// Unknown.
    Unknown,
}

struct Cache {
    mtime: Option<SystemTime>,
    checked: Instant,
    by_hash: HashMap<String, Arc<KeyEntry>>,
}

/// The server's view of the key file, reloaded when it changes.
pub struct KeyStore {
    dir: PathBuf,
    cache: RwLock<Cache>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// How often the file's modification time is checked.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(200);

impl KeyStore {
    /// Open the store of `dir` (the file may not exist yet).
    ///
    /// # Errors
    /// A corrupt key file.
    pub fn open(dir: &Path) -> Result<Self> {
        let s = Self {
            dir: dir.to_path_buf(),
            cache: RwLock::new(Cache {
                mtime: None,
                checked: Instant::now(),
                by_hash: HashMap::new(),
            }),
        };
        s.reload()?;
        Ok(s)
    }

    fn mtime(&self) -> Option<SystemTime> {
        std::fs::metadata(file_of(&self.dir))
            .and_then(|m| m.modified())
            .ok()
    }

    fn reload(&self) -> Result<()> {
        let mtime = self.mtime();
        let f = read_file(&self.dir)?;
        let by_hash = f
            .keys
            .into_iter()
            .map(|k| (k.hash.clone(), Arc::new(k)))
            .collect();
        let mut c = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c = Cache {
            mtime,
            checked: Instant::now(),
            by_hash,
        };
        Ok(())
    }

    fn refresh(&self) {
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
            let mut c = self
                .cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.checked = Instant::now();
            c.mtime != m
        };
        if changed {
            if let Err(e) = self.reload() {
                tracing::error!(error = %e, "cannot reload keys; keeping the previous set");
            }
        }
    }

    /// Force a reload now (tests, after `create` in the same process).
    pub fn invalidate(&self) {
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "cannot reload keys");
        }
    }

    fn find(&self, h: &str) -> Lookup {
        let c = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match c.by_hash.get(h) {
            Some(k) if k.revoked_ms.is_none() => Lookup::Active(k.clone()),
            Some(_) => Lookup::Revoked,
            None => Lookup::Unknown,
        }
    }

    /// Look up a bearer token. An unknown token makes the store check the file at once (a key created a moment
    /// ago works on its first request).
    pub fn lookup(&self, token: &str) -> Lookup {
        self.refresh();
        let h = hash_key(token);
        match self.find(&h) {
            Lookup::Unknown => {
                let changed = {
                    let c = self
                        .cache
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    c.mtime != self.mtime()
                };
                if changed {
                    self.invalidate();
                    self.find(&h)
                } else {
                    Lookup::Unknown
                }
            }
            found => found,
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
}
