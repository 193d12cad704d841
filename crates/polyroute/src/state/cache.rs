//! [`ResponseCache`]: OpenRouter's opt-in response cache (`X-OpenRouter-Cache: true`). The engine does not call
//! it; a front end (the gateway) looks answers up by a key it derives (API key, model, stream flag, body hash)
//! and stores complete, successful answers with a TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use polyroute_core::Result;
use serde::{Deserialize, Serialize};

use super::BoxFut;

/// A stored answer: the JSON body, or the SSE events of a stream (replayed as they were sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedResponse {
    /// The body as sent (JSON text, or `data: …\n\n` events ending with `data: [DONE]`).
    pub body: String,
    /// Whether `body` is an SSE stream.
    pub stream: bool,
    /// The generation that produced it.
    pub generation_id: String,
    /// When it was stored (Unix ms).
    pub created_ms: i64,
}

/// Answers by cache key, each alive for its TTL.
pub trait ResponseCache: Send + Sync + 'static {
    /// The answer stored under `key`, if its TTL has not passed.
    fn get(&self, key: &str) -> BoxFut<'_, Result<Option<CachedResponse>>>;
    /// Store `resp` under `key` for `ttl` (replacing an earlier one).
    fn put(&self, key: &str, resp: &CachedResponse, ttl: Duration) -> BoxFut<'_, Result<()>>;
    /// Forget `key` (missing is not an error).
    fn clear(&self, key: &str) -> BoxFut<'_, Result<()>>;
}

/// Entries a [`MemoryCache`] keeps by default.
pub const MEMORY_CACHE_ENTRIES: usize = 10_000;

/// In-process cache, bounded: when full, expired entries go first, then the entry expiring soonest.
#[derive(Debug)]
pub struct MemoryCache {
    cap: usize,
    map: Mutex<HashMap<String, (Instant, CachedResponse)>>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::with_capacity(MEMORY_CACHE_ENTRIES)
    }
}

impl MemoryCache {
    /// A cache of at most `cap` entries.
    #[must_use]
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, CachedResponse)>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ResponseCache for MemoryCache {
    fn get(&self, key: &str) -> BoxFut<'_, Result<Option<CachedResponse>>> {
        let now = Instant::now();
        let mut m = self.lock();
        let out = match m.get(key) {
            Some((exp, r)) if *exp > now => Some(r.clone()),
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        };
        Box::pin(std::future::ready(Ok(out)))
    }

    fn put(&self, key: &str, resp: &CachedResponse, ttl: Duration) -> BoxFut<'_, Result<()>> {
        let now = Instant::now();
        let mut m = self.lock();
        if m.len() >= self.cap && !m.contains_key(key) {
            m.retain(|_, (exp, _)| *exp > now);
            if m.len() >= self.cap {
                if let Some(k) = m
                    .iter()
                    .min_by_key(|(_, (e, _))| *e)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&k);
                }
            }
        }
        m.insert(key.to_string(), (now + ttl, resp.clone()));
        Box::pin(std::future::ready(Ok(())))
    }

    fn clear(&self, key: &str) -> BoxFut<'_, Result<()>> {
        self.lock().remove(key);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn r(id: &str) -> CachedResponse {
        CachedResponse {
            body: "{}".into(),
            stream: false,
            generation_id: id.into(),
            created_ms: 0,
        }
    }

    #[tokio::test]
    async fn ttl_clear_and_bound() {
        let c = MemoryCache::with_capacity(2);
        c.put("a", &r("1"), Duration::from_millis(30))
            .await
            .unwrap();
        c.put("b", &r("2"), Duration::from_secs(60)).await.unwrap();
        assert_eq!(c.get("a").await.unwrap().unwrap().generation_id, "1");
        c.put("c", &r("3"), Duration::from_secs(60)).await.unwrap();
        // Full: the entry expiring soonest ("a") made room.
        assert!(c.get("a").await.unwrap().is_none());
        assert!(c.get("b").await.unwrap().is_some());
        c.clear("b").await.unwrap();
        assert!(c.get("b").await.unwrap().is_none());
        c.put("d", &r("4"), Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(c.get("d").await.unwrap().is_none());
    }
}
