//! [`RedisHealth`]: endpoint health shared by a fleet, with no Redis round trip on the request path.
//!
//! [`HealthStore::record`] puts the observation on a bounded in-process queue and returns; a background task
//! buffers them and every [`HealthOptions::flush`] writes the buffer in one pipeline (per endpoint: one `LPUSH`
//! of its new samples to `{p}:h:<endpoint>`, `LTRIM` to the newest [`HealthOptions::max_samples`], `PEXPIRE`,
//! and `ZADD {p}:h:idx` with the time last seen), so the commands per flush follow the endpoints seen, not the
//! requests. While Redis fails the buffer is kept (up to [`HealthOptions::queue`], the oldest dropped first)
//! and written when Redis answers again. Every
//! [`HealthOptions::refresh`], reads the index and the samples of the endpoints with new ones since its last read
//! (one pipeline of `LRANGE`; an idle fleet costs one `ZRANGEBYSCORE` per refresh) and swaps
//! in a new [`HealthSnapshot`] built like the memory store's (latency and throughput percentiles of the
//! successes in the window; `recent_outage` = an availability failure within the outage window).
//! [`HealthStore::snapshot`] returns the current one (an `Arc` clone under a read lock).
//!
//! An outage this process observes is in its own snapshot at once (the next plan avoids the endpoint), and
//! stays there for the outage window even if a refresh races the write. Outages other processes observe arrive
//! with the next refresh. When Redis is unreachable, writes and refreshes fail quietly (see
//! [`RedisHealth::last_error`]): the snapshot keeps its last refresh plus this process's own outages, and the
//! observations wait in the buffer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use polyroute::core::plan::EndpointHealth;
use polyroute::state::now_ms;
use polyroute::{Error, HealthSnapshot, HealthStore, Observation, Result};
use tokio::sync::{mpsc, oneshot};

use crate::{store_error, RedisState};

/// How the shared health window behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthOptions {
    /// Samples older than this do not count (default 5 minutes).
    pub window: Duration,
    /// Newest samples kept per endpoint (default 200).
    pub max_samples: usize,
    /// An availability failure this recent marks the endpoint `recent_outage` (default 30 s).
    pub outage_window: Duration,
    /// How often the snapshot is rebuilt from Redis (default 500 ms).
    pub refresh: Duration,
    /// How often buffered observations are written (default 100 ms): one pipeline per flush, one `LPUSH` per
    /// endpoint whatever the number of requests.
    pub flush: Duration,
    /// Observations buffered in process (while Redis is slow or down) before the oldest are dropped (default
    /// 10,000; see [`RedisHealth::dropped`]).
    pub queue: usize,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            max_samples: 200,
            outage_window: Duration::from_secs(30),
            refresh: Duration::from_millis(500),
            flush: Duration::from_millis(100),
            queue: 10_000,
        }
    }
}

enum Msg {
    Obs(String, i64, Observation),
    Sync(oneshot::Sender<Result<()>>),
}

struct Inner {
    st: RedisState,
    opts: HealthOptions,
    tx: mpsc::Sender<Msg>,
    snap: RwLock<Arc<HealthSnapshot>>,
    /// Success rate per endpoint over the window, as of the last refresh.
    rates: RwLock<Arc<HashMap<String, f64>>>,
    /// This process's own outages (endpoint → ms), merged into every refresh until they age out.
    local_outages: Mutex<HashMap<String, i64>>,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Endpoint health shared through Valkey/Redis (see the module docs). Dropping it stops its background task.
pub struct RedisHealth {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHealth")
            .field("server", &self.inner.st.server)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisHealth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl RedisHealth {
    pub(crate) fn start(st: RedisState, opts: HealthOptions) -> Self {
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let inner = Arc::new(Inner {
            st,
            opts,
            tx,
            snap: RwLock::new(Arc::new(HealthSnapshot::default())),
            rates: RwLock::new(Arc::new(HashMap::new())),
            local_outages: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let task = tokio::spawn(run(Arc::clone(&inner), rx));
        Self { inner, task }
    }

    /// Write every observation queued so far, then rebuild the snapshot from Redis (tests, shutdown).
    ///
    /// # Errors
    /// Redis failed (the error names the server), or the background task is gone.
    pub async fn sync(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Internal {
            message: "redis health: background task stopped".to_string(),
        };
        self.inner
            .tx
            .send(Msg::Sync(tx))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// The fleet's success rate of `key` (`model@tag`) over the window, as of the last refresh (None without
    /// samples): what the gateway reports as an endpoint's uptime.
    #[must_use]
    pub fn success_rate(&self, key: &str) -> Option<f64> {
        self.inner
            .rates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .copied()
    }

    /// Observations dropped because the buffer was full (Redis down or slower than the request rate for long).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// The last background failure, if the last write or refresh failed.
    #[must_use]
    pub fn last_error(&self) -> Option<String> {
        lock(&self.inner.last_error).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl HealthStore for RedisHealth {
    fn success_rate(&self, key: &str) -> Option<f64> {
        RedisHealth::success_rate(self, key)
    }

    fn record(&self, key: &str, obs: Observation) {
        let now = now_ms();
        if self
            .inner
            .tx
            .try_send(Msg::Obs(key.to_string(), now, obs))
            .is_err()
        {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if obs.outage {
            lock(&self.inner.local_outages).insert(key.to_string(), now);
            let mut s = self
                .inner
                .snap
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !s.endpoints.get(key).is_some_and(|e| e.recent_outage) {
                let mut next = HealthSnapshot::clone(&s);
                next.endpoints
                    .entry(key.to_string())
                    .or_default()
                    .recent_outage = true;
                *s = Arc::new(next);
            }
        }
    }

    fn snapshot(&self) -> Arc<HealthSnapshot> {
        self.inner
            .snap
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn run(inner: Arc<Inner>, mut rx: mpsc::Receiver<Msg>) {
    let mut tick = tokio::time::interval(inner.opts.refresh.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(inner.opts.flush.max(Duration::from_millis(1)));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cap = inner.opts.queue.max(1);
    let mut buf = Vec::with_capacity(1024);
    // Observations not yet written: kept while Redis fails, written when it answers again.
    let mut pending: VecDeque<(String, i64, Observation)> = VecDeque::new();
    let mut cache = Cache::new();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, 1024) => {
                if n == 0 {
                    return;
                }
                let mut syncs = Vec::new();
                for m in buf.drain(..) {
                    match m {
                        Msg::Obs(k, at, o) => {
                            if pending.len() >= cap {
                                pending.pop_front();
                                inner.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            pending.push_back((k, at, o));
                        }
                        Msg::Sync(tx) => syncs.push(tx),
                    }
                }
                if !syncs.is_empty() {
                    let mut res = flush_pending(&inner, &mut pending).await;
                    if res.is_ok() {
                        res = refresh(&inner, &mut cache).await;
                    }
                    note(&inner, &res);
                    for tx in syncs {
                        let _ = tx.send(res.clone());
                    }
                }
            }
            _ = flush.tick() => {
                if !pending.is_empty() {
                    let res = flush_pending(&inner, &mut pending).await;
                    note(&inner, &res);
                }
            }
            _ = tick.tick() => {
                let res = refresh(&inner, &mut cache).await;
                note(&inner, &res);
            }
        }
    }
}

/// Write every pending observation (one pipeline); they stay pending when Redis fails.
async fn flush_pending(
    inner: &Inner,
    pending: &mut VecDeque<(String, i64, Observation)>,
) -> Result<()> {
    let obs = pending.make_contiguous();
    write(inner, obs).await?;
    pending.clear();
    Ok(())
}

fn note(inner: &Inner, res: &Result<()>) {
    *lock(&inner.last_error) = res.as_ref().err().map(ToString::to_string);
}

fn sample_text(at: i64, o: &Observation) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| x.to_string());
    format!(
        "{at}|{}|{}|{}|{}",
        u8::from(o.ok),
        u8::from(o.outage),
        f(o.ttft_ms),
        f(o.throughput)
    )
}

fn parse_sample(s: &str) -> Option<(i64, Observation)> {
    let mut p = s.split('|');
    let at = p.next()?.parse().ok()?;
    let ok = p.next()? == "1";
    let outage = p.next()? == "1";
    let num = |t: Option<&str>| t.and_then(|t| t.parse::<f64>().ok());
    let ttft_ms = num(p.next());
    let throughput = num(p.next());
    Some((
        at,
        Observation {
            ok,
            outage,
            ttft_ms,
            throughput,
        },
    ))
}

async fn write(inner: &Inner, obs: &[(String, i64, Observation)]) -> Result<()> {
    if obs.is_empty() {
        return Ok(());
    }
    let o = &inner.opts;
    let idx = inner.st.key("h:idx");
    // Per endpoint: its samples in time order (LPUSH of several values leaves the last one at the head) and the
    // newest time.
    let mut by: BTreeMap<&str, (Vec<String>, i64)> = BTreeMap::new();
    for (k, at, ob) in obs {
        let e = by.entry(k.as_str()).or_insert_with(|| (Vec::new(), *at));
        e.0.push(sample_text(*at, ob));
        e.1 = e.1.max(*at);
    }
    let keep = i64::try_from(o.max_samples.max(1)).unwrap_or(200) - 1;
    let mut pipe = redis::pipe();
    for (k, (samples, at)) in &by {
        let lk = inner.st.key(&format!("h:{k}"));
        pipe.cmd("LPUSH").arg(&lk).arg(samples).ignore();
        pipe.cmd("LTRIM").arg(&lk).arg(0).arg(keep).ignore();
        pipe.cmd("PEXPIRE").arg(&lk).arg(ms(o.window) * 2).ignore();
        pipe.cmd("ZADD").arg(&idx).arg(*at).arg(*k).ignore();
    }
    let mut conn = inner.st.conn.clone();
    pipe.query_async::<()>(&mut conn)
        .await
        .map_err(|e| store_error(&inner.st.server, &e))
}

/// The samples read so far per endpoint, with the index score (time of its newest sample) they were read at.
type Cache = HashMap<String, (f64, Vec<(i64, Observation)>)>;

/// Rebuild the snapshot. Only endpoints with samples newer than what `cache` holds are read again (one pipeline
/// of `LRANGE`), so an idle fleet's refresh is one `ZRANGEBYSCORE`.
async fn refresh(inner: &Inner, cache: &mut Cache) -> Result<()> {
    let o = &inner.opts;
    let now = now_ms();
    let since = now - ms(o.window);
    let idx = inner.st.key("h:idx");
    let mut conn = inner.st.conn.clone();
    let err = |e: redis::RedisError| store_error(&inner.st.server, &e);
    let (_, seen): ((), Vec<(String, f64)>) = redis::pipe()
        .cmd("ZREMRANGEBYSCORE")
        .arg(&idx)
        .arg("-inf")
        .arg(format!("({since}"))
        .cmd("ZRANGEBYSCORE")
        .arg(&idx)
        .arg("-inf")
        .arg("+inf")
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .map_err(err)?;
    let stale: Vec<&(String, f64)> = seen
        .iter()
        .filter(|(k, score)| cache.get(k).is_none_or(|(s, _)| s != score))
        .collect();
    if !stale.is_empty() {
        let mut pipe = redis::pipe();
        let keep = i64::try_from(o.max_samples.max(1)).unwrap_or(200) - 1;
        for (k, _) in &stale {
            pipe.cmd("LRANGE")
                .arg(inner.st.key(&format!("h:{k}")))
                .arg(0)
                .arg(keep);
        }
        let lists: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(err)?;
        for ((k, score), list) in stale.into_iter().zip(lists) {
            let samples = list.iter().filter_map(|s| parse_sample(s)).collect();
            cache.insert(k.clone(), (*score, samples));
        }
    }
    let live: std::collections::HashSet<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    cache.retain(|k, _| live.contains(k.as_str()));
    let outage_since = now - ms(o.outage_window);
    let mut snap = HealthSnapshot::default();
    let mut rates = HashMap::new();
    for (k, (_, all)) in cache.iter() {
        let samples: Vec<(i64, Observation)> =
            all.iter().filter(|(at, _)| *at > since).copied().collect();
        if samples.is_empty() {
            continue;
        }
        let ok = samples.iter().filter(|(_, o)| o.ok).count();
        rates.insert(k.clone(), ok as f64 / samples.len() as f64);
        snap.endpoints
            .insert(k.clone(), build(&samples, outage_since));
    }
    {
        let mut local = lock(&inner.local_outages);
        local.retain(|_, at| *at > outage_since);
        for k in local.keys() {
            snap.endpoints.entry(k.clone()).or_default().recent_outage = true;
        }
    }
    *inner
        .rates
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rates);
    *inner
        .snap
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(snap);
    Ok(())
}

fn pct(mut v: Vec<f64>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(idx.min(v.len() - 1)).copied()
}

/// One endpoint's health from its samples (as the memory store computes it).
fn build(samples: &[(i64, Observation)], outage_since: i64) -> EndpointHealth {
    let ok = || samples.iter().filter(|(_, o)| o.ok);
    let ttft: Vec<f64> = ok().filter_map(|(_, o)| o.ttft_ms).collect();
    let tput: Vec<f64> = ok().filter_map(|(_, o)| o.throughput).collect();
    EndpointHealth {
        recent_outage: samples.iter().any(|(at, o)| o.outage && *at > outage_since),
        latency_p50_ms: pct(ttft.clone(), 0.5),
        latency_p90_ms: pct(ttft, 0.9),
        throughput_p50: pct(tput.clone(), 0.5),
        throughput_p90: pct(tput, 0.9),
        samples: u32::try_from(samples.len()).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_and_build_percentiles_from_successes() {
        let o = Observation {
            ok: true,
            outage: false,
            ttft_ms: Some(12.5),
            throughput: None,
        };
        assert_eq!(parse_sample(&sample_text(7, &o)), Some((7, o)));
        assert_eq!(parse_sample("garbage"), None);
        let mut s: Vec<(i64, Observation)> = (0..10)
            .map(|i| {
                (
                    100 + i,
                    Observation {
                        ok: true,
                        outage: false,
                        ttft_ms: Some(f64::from(i as i32) * 10.0),
                        throughput: Some(50.0),
                    },
                )
            })
            .collect();
        s.push((
            50,
            Observation {
                ok: false,
                outage: true,
                ttft_ms: Some(1e9),
                throughput: None,
            },
        ));
        let h = build(&s, 60);
        assert_eq!(h.samples, 11);
        assert_eq!(h.latency_p50_ms, Some(50.0));
        assert_eq!(h.throughput_p90, Some(50.0));
        assert!(
            !h.recent_outage,
            "an outage before the outage window counted"
        );
        assert!(build(&s, 40).recent_outage);
    }
}
