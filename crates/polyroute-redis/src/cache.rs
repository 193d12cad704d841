//! [`RedisCache`]: the response cache shared by a fleet, `SET {p}:c:<key> <json> PX <ttl>`; Redis expires
//! entries and its `maxmemory` policy bounds them.

use std::time::Duration;

use polyroute::state::cache::{CachedResponse, ResponseCache};
use polyroute::state::BoxFut;
use polyroute::{Error, Result};

use crate::{store_error, RedisState};

/// Cached answers shared by every gateway connected to one Valkey/Redis.
#[derive(Debug, Clone)]
pub struct RedisCache {
    st: RedisState,
}

impl RedisCache {
    pub(crate) fn new(st: RedisState) -> Self {
        Self { st }
    }

    fn key(&self, key: &str) -> String {
        self.st.key(&format!("c:{key}"))
    }
}

impl ResponseCache for RedisCache {
    fn get(&self, key: &str) -> BoxFut<'_, Result<Option<CachedResponse>>> {
        let k = self.key(key);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            let v: Option<String> = redis::cmd("GET")
                .arg(k)
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&self.st.server, &e))?;
            v.map(|t| {
                serde_json::from_str(&t).map_err(|e| Error::Internal {
                    message: format!(
                        "redis {}: a cached answer does not parse: {e}",
                        self.st.server
                    ),
                })
            })
            .transpose()
        })
    }

    fn put(&self, key: &str, resp: &CachedResponse, ttl: Duration) -> BoxFut<'_, Result<()>> {
        let k = self.key(key);
        let text = serde_json::to_string(resp).unwrap_or_default();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            redis::cmd("SET")
                .arg(k)
                .arg(text)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| store_error(&self.st.server, &e))
        })
    }

    fn clear(&self, key: &str) -> BoxFut<'_, Result<()>> {
        let k = self.key(key);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            redis::cmd("DEL")
                .arg(k)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| store_error(&self.st.server, &e))
        })
    }
}
