//! [`RedisSticky`]: conversation → endpoint tag, `SET {p}:s:<key> <tag> PX <ttl>`; Redis expires entries and
//! its `maxmemory` policy bounds them.

use std::time::Duration;

use polyroute::state::{BoxFut, StickyStore};
use polyroute::Result;

use crate::{store_error, RedisState};

/// Sticky routing shared by every router connected to one Valkey/Redis: a conversation keeps its endpoint
/// whichever process serves its next turn.
#[derive(Debug, Clone)]
pub struct RedisSticky {
    st: RedisState,
}

impl RedisSticky {
    pub(crate) fn new(st: RedisState) -> Self {
        Self { st }
    }

    fn key(&self, key: u64) -> String {
        self.st.key(&format!("s:{key:016x}"))
    }
}

impl StickyStore for RedisSticky {
    fn get(&self, key: u64) -> BoxFut<'_, Result<Option<String>>> {
        let k = self.key(key);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            redis::cmd("GET")
                .arg(k)
                .query_async(&mut conn)
                .await
                .map_err(|e| store_error(&self.st.server, &e))
        })
    }

    fn put(&self, key: u64, tag: &str, ttl: Duration) -> BoxFut<'_, Result<()>> {
        let k = self.key(key);
        let tag = tag.to_string();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            redis::cmd("SET")
                .arg(k)
                .arg(tag)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| store_error(&self.st.server, &e))
        })
    }

    fn forget(&self, key: u64) -> BoxFut<'_, Result<()>> {
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

    fn is_remote(&self) -> bool {
        true
    }
}
