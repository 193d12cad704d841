//! [`RedisRate`]: rate windows per key (free-tier requests per minute and per day, per-key rpm and tpm), one
//! atomic Lua script per admission.
//!
//! **Algorithm: an exact sliding log** for [`Span::Sliding`] windows and **an exact calendar counter** for
//! [`Span::UtcDay`]. A sliding window of span `s` admits a hit at `now` only when the units counted in
//! `(now − s, now]` plus the new units stay within the limit, so no interval of length `s` ever holds more than
//! the limit (no fixed-bucket boundary burst, no weighted-bucket estimate). The day counter resets at midnight
//! UTC by Redis's clock. All windows of one hit are checked and counted in one script: a refused hit counts
//! nowhere. Time is Redis's `TIME`, shared by every router.
//!
//! Layout per rate key `k` (hash tag `{p:r:k}`, so one key's windows share a cluster slot):
//!
//! | key | type | content |
//! |---|---|---|
//! | `{p:r:k}:log` | sorted set | one member `<ms>:<seq>:<units>` per counted hit, scored by its time |
//! | `{p:r:k}:m` | hash | `seq` (member counter), `day` (UTC day number), `used` (units counted that day), `w:<span ms>` = `<cutoff ms>:<units logged after the cutoff>` per sliding span in use |
//!
//! Cost: a hit reads only what changed. Each sliding span ever asked for is tracked in the hash as a cutoff and
//! the units logged after it; a hit moves each cutoff to `now − span` and subtracts the events that left (each
//! event leaves each window once), so a hit costs O(log N) plus the events that expired since the last hit, not
//! O(limit). Only a refused hit reads further: the oldest events of the full window, until enough have left to
//! compute `retry_after`. The log keeps events for the longest tracked span (at least [`RedisRate::retention`]),
//! so [`RateLimiter::used`] of a longer sliding span than any window in use counts only what is kept.

use std::time::Duration;

use polyroute::state::{BoxFut, RateDecision, RateLimiter, Span, Window};
use polyroute::{Error, Result};
use redis::Script;

use crate::{store_error, RedisState};

static HIT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/hit.lua")));
static USED: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("lua/used.lua")));

/// Rate windows shared by every router connected to one Valkey/Redis.
#[derive(Debug, Clone)]
pub struct RedisRate {
    st: RedisState,
    retention: Duration,
}

impl RedisRate {
    pub(crate) fn new(st: RedisState) -> Self {
        Self {
            st,
            retention: Duration::ZERO,
        }
    }

    /// Keep logged events at least this long (default: as long as the longest sliding window in use), for
    /// [`RateLimiter::used`] of longer spans.
    #[must_use]
    pub fn retention(mut self, keep: Duration) -> Self {
        self.retention = keep;
        self
    }

    fn keys(&self, key: &str) -> (String, String) {
        let tag = format!("{{{}:r:{key}}}", self.st.prefix);
        (format!("{tag}:log"), format!("{tag}:m"))
    }

    fn err(&self, e: &redis::RedisError) -> Error {
        store_error(&self.st.server, e)
    }
}

fn span_ms(span: Span) -> u64 {
    match span {
        // 0 means the UTC day in the scripts; a zero-length sliding window counts nothing, so 1 ms is exact.
        Span::Sliding(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2).max(1),
        Span::UtcDay => 0,
    }
}

impl RateLimiter for RedisRate {
    fn hit(&self, key: &str, windows: &[Window], amount: u64) -> BoxFut<'_, Result<RateDecision>> {
        let (log, meta) = self.keys(key);
        let windows = windows.to_vec();
        Box::pin(async move {
            let longest = windows.iter().map(|w| span_ms(w.span)).max().unwrap_or(0);
            let keep = longest.max(u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX));
            let mut inv = HIT.prepare_invoke();
            inv.key(log).key(meta);
            inv.arg(amount).arg(keep).arg(windows.len());
            for w in &windows {
                inv.arg(w.limit).arg(span_ms(w.span));
            }
            let mut conn = self.st.conn.clone();
            let reply: Vec<i64> = inv
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.err(&e))?;
            match reply.as_slice() {
                [1] => Ok(RateDecision::Allowed),
                [0, i, wait] => {
                    let w = usize::try_from(*i - 1)
                        .ok()
                        .and_then(|i| windows.get(i))
                        .ok_or_else(|| Error::Internal {
                            message: format!(
                                "redis {}: rate hit answered window {i}",
                                self.st.server
                            ),
                        })?;
                    let secs = (wait.max(&0) + 999) / 1000;
                    Ok(RateDecision::Limited {
                        window: w.name.clone(),
                        retry_after: Duration::from_secs(u64::try_from(secs.max(1)).unwrap_or(1)),
                    })
                }
                other => Err(Error::Internal {
                    message: format!("redis {}: unexpected rate reply {other:?}", self.st.server),
                }),
            }
        })
    }

    fn used(&self, key: &str, span: Span) -> BoxFut<'_, Result<u64>> {
        let (log, meta) = self.keys(key);
        Box::pin(async move {
            let mut conn = self.st.conn.clone();
            let n: i64 = USED
                .key(log)
                .key(meta)
                .arg(span_ms(span))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.err(&e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}
