//! The cache of authenticated tokens in front of [`KeyStore`](super::keys::KeyStore) lookups: a bearer token
//! seen before is found without hashing it with SHA-256 again.
//!
//! - **Keyed by a secret-seeded hash, then verified.** A slot is found by SipHash-1-3 of the token under
//!   random keys drawn at start ([`RandomState`]), and accepted only when the stored token equals the one
//!   presented, compared in constant time ([`same`]). The map's layout depends on a seed the client does not
//!   know, and the comparison takes the same time wherever the bytes differ, so timing tells nothing about
//!   which tokens are valid.
//! - **Only known tokens are cached**: a token whose SHA-256 names a stored key (usable or not). Unknown
//!   tokens are hashed every time and never take a slot, so a flood of invented tokens cannot evict real
//!   ones or grow the cache.
//! - **Bounded**: at most [`CAP`] slots; past that an arbitrary slot makes room. The tokens held are
//!   overwritten with zeros when a slot is dropped.
//! - **Invalidation**: a slot holds the key as it was at a *generation* of the store, a counter the store
//!   bumps whenever its keys change (a reload of `keys.json`, a poll of PostgreSQL that read rows, a change
//!   made through this process). A slot of an older generation is looked up again by its SHA-256 (kept in the
//!   slot, so still no hashing); the token → SHA-256 part never changes. A change is therefore seen exactly
//!   when the store sees it: at once in this process, within the store's re-check for `keys.json`
//!   (200 ms) and within its poll for PostgreSQL (200 ms plus the query).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use super::keys::KeyEntry;

/// Most tokens cached.
pub const CAP: usize = 4096;

/// The map's keys are already keyed hashes: use them as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in rather than panic.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
#[must_use]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

struct Slot {
    token: Box<[u8]>,
    /// Hex SHA-256 of the token.
    hash: Arc<str>,
    /// The key at `generation` (None: the hash names no key then).
    entry: Option<Arc<KeyEntry>>,
    generation: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.token.fill(0);
        // Keep the zeroing from being dropped as a dead store before the buffer is freed.
        std::hint::black_box(&self.token);
    }
}

/// What a cached token resolved to.
pub enum Hit {
    /// Current as of the store's generation: the key (None: deleted or unknown now).
    Current(Option<Arc<KeyEntry>>),
    /// Known token, but the store changed since: look its hash up again.
    Stale(Arc<str>),
}

/// See the module docs.
pub struct TokenCache {
    seed: RandomState,
    slots: RwLock<HashMap<u64, Slot, BuildHasherDefault<Prehashed>>>,
    cap: usize,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_cap(CAP)
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.len())
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache of at most `cap` tokens (at least 1).
    #[must_use]
    pub fn with_cap(cap: usize) -> Self {
        Self {
            seed: RandomState::new(),
            slots: RwLock::new(HashMap::default()),
            cap: cap.max(1),
        }
    }

    /// The slot key of `token`.
    #[must_use]
    pub fn slot_of(&self, token: &str) -> u64 {
        self.seed.hash_one(token.as_bytes())
    }

    /// How many tokens are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached resolution of `token` (slot `at`) against the store's `generation`, if it is cached.
    #[must_use]
    pub fn get(&self, at: u64, token: &str, generation: u64) -> Option<Hit> {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = slots.get(&at)?;
        if !same(&s.token, token.as_bytes()) {
            return None;
        }
        Some(if s.generation == generation {
            Hit::Current(s.entry.clone())
        } else {
            Hit::Stale(s.hash.clone())
        })
    }

    /// Remember that `token` (slot `at`, SHA-256 `hash`) named `entry` at `generation`.
    pub fn put(
        &self,
        at: u64,
        token: &str,
        hash: Arc<str>,
        entry: Option<Arc<KeyEntry>>,
        generation: u64,
    ) {
        let mut slots = self
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !slots.contains_key(&at) && slots.len() >= self.cap {
            if let Some(&victim) = slots.keys().next() {
                slots.remove(&victim);
            }
        }
        slots.insert(
            at,
            Slot {
                token: token.as_bytes().into(),
                hash,
                entry,
                generation,
            },
        );
    }

    #[cfg(test)]
    fn plant(&self, at: u64, token: &str, entry: Arc<KeyEntry>) {
        self.put(at, token, Arc::from(entry.hash.as_str()), Some(entry), 0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn equality_is_exact() {
        assert!(same(b"sk-pr-v1-aa", b"sk-pr-v1-aa"));
        assert!(!same(b"sk-pr-v1-aa", b"sk-pr-v1-ab"));
        assert!(!same(b"sk-pr-v1-aa", b"sk-pr-v1-a"));
        assert!(same(b"", b""));
    }

    #[test]
    fn a_slot_answers_only_its_own_token() {
        let c = TokenCache::default();
        let e = Arc::new(KeyEntry::new("sk-test-fake-a", "a", None));
        // Token B's entry planted under token A's slot (a collision of the keyed hash): A is not let in as B.
        let at = c.slot_of("sk-test-fake-a");
        c.plant(at, "sk-test-fake-b", e.clone());
        assert!(c.get(at, "sk-test-fake-a", 0).is_none());
        assert!(
            matches!(c.get(at, "sk-test-fake-b", 0), Some(Hit::Current(Some(k))) if k.id == e.id)
        );
        assert!(matches!(c.get(at, "sk-test-fake-b", 1), Some(Hit::Stale(h)) if *h == *e.hash));
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = TokenCache::with_cap(8);
        for i in 0..100 {
            let t = format!("sk-test-fake-{i}");
            c.put(c.slot_of(&t), &t, Arc::from("00"), None, 0);
            assert!(c.len() <= 8);
        }
        assert_eq!(c.len(), 8);
        let last = "sk-test-fake-99";
        assert!(c.get(c.slot_of(last), last, 0).is_some());
    }
}
