//! Per-endpoint health: a rolling window of attempt results feeding planning as a [`HealthSnapshot`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use polyroute_core::plan::{EndpointHealth, HealthSnapshot};

/// One attempt's observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The attempt succeeded.
    pub ok: bool,
    /// The failure was an availability failure (5xx, timeout, refused, rate limit) — an outage signal.
    pub outage: bool,
    /// Time to first token (or to the whole answer when not streamed), milliseconds.
    pub ttft_ms: Option<f64>,
    /// Output tokens per second after the first token.
    pub throughput: Option<f64>,
}

/// Where health observations go and where planning reads them from. Implement it to share health across
/// processes; [`MemoryHealth`] is the default.
pub trait HealthStore: Send + Sync + 'static {
    /// Record one attempt against `key` (`model@endpoint-tag`).
    fn record(&self, key: &str, obs: Observation);
    /// The current snapshot (cheap: shared).
    fn snapshot(&self) -> Arc<HealthSnapshot>;
    /// Success rate of `key` over the window (None without samples, or when the store does not keep it): what
    /// the endpoints API reports as uptime.
    fn success_rate(&self, _key: &str) -> Option<f64> {
        None
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    obs: Observation,
}

/// In-memory rolling windows: the last 5 minutes (at most 200 samples) per endpoint; `recent_outage` is an
/// availability failure in the last 30 seconds. The snapshot is rebuilt at most every 250 ms.
#[derive(Debug)]
pub struct MemoryHealth {
    windows: Mutex<HashMap<String, VecDeque<Sample>>>,
    cached: RwLock<(Instant, bool, Arc<HealthSnapshot>)>,
    outage_window: Duration,
}

impl Default for MemoryHealth {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

const WINDOW: Duration = Duration::from_secs(300);
const MAX_SAMPLES: usize = 200;
const REFRESH: Duration = Duration::from_millis(250);

/// The index of percentile `p` in a sorted list of `len` values (the nearest rank, rounded).
fn rank(len: usize, p: f64) -> usize {
    (((len as f64 - 1.0) * p).round() as usize).min(len - 1)
}

/// The 50th and 90th percentiles of `v` (nearest rank), as sorting it would give them, found by selection
/// (linear on average) rather than a full sort: the snapshot is rebuilt often under load.
fn p50_p90(v: &mut [f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let (i50, i90) = (rank(v.len(), 0.5), rank(v.len(), 0.9));
    let (below, p90, _) = v.select_nth_unstable_by(i90, f64::total_cmp);
    let p90 = *p90;
    // `below` holds the i90 smallest values, so the i50-th smallest of all is the i50-th smallest of `below`.
    let p50 = if i50 < i90 {
        *below.select_nth_unstable_by(i50, f64::total_cmp).1
    } else {
        p90
    };
    (Some(p50), Some(p90))
}

impl MemoryHealth {
    /// With a custom outage window.
    #[must_use]
    pub fn new(outage_window: Duration) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            cached: RwLock::new((Instant::now(), false, Arc::new(HealthSnapshot::default()))),
            outage_window,
        }
    }

    fn rebuild(&self, now: Instant) -> HealthSnapshot {
        let mut snap = HealthSnapshot::default();
        let mut w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.retain(|_, q| {
            while q.front().is_some_and(|s| now.duration_since(s.at) > WINDOW) {
                q.pop_front();
            }
            !q.is_empty()
        });
        for (k, q) in w.iter() {
            let recent_outage = q
                .iter()
                .any(|s| s.obs.outage && now.duration_since(s.at) <= self.outage_window);
            let mut ttft: Vec<f64> = q
                .iter()
                .filter(|s| s.obs.ok)
                .filter_map(|s| s.obs.ttft_ms)
                .collect();
            let mut tput: Vec<f64> = q
                .iter()
                .filter(|s| s.obs.ok)
                .filter_map(|s| s.obs.throughput)
                .collect();
            let samples = u32::try_from(q.len()).unwrap_or(u32::MAX);
            let (latency_p50_ms, latency_p90_ms) = p50_p90(&mut ttft);
            let (throughput_p50, throughput_p90) = p50_p90(&mut tput);
            snap.endpoints.insert(
                k.clone(),
                EndpointHealth {
                    recent_outage,
                    latency_p50_ms,
                    latency_p90_ms,
                    throughput_p50,
                    throughput_p90,
                    samples,
                },
            );
        }
        snap
    }

    /// Success rate of `key` over the window (None without samples).
    #[must_use]
    pub fn success_rate(&self, key: &str) -> Option<f64> {
        let w = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let q = w.get(key)?;
        if q.is_empty() {
            return None;
        }
        Some(q.iter().filter(|s| s.obs.ok).count() as f64 / q.len() as f64)
    }
}

impl HealthStore for MemoryHealth {
    fn success_rate(&self, key: &str) -> Option<f64> {
        MemoryHealth::success_rate(self, key)
    }

    fn record(&self, key: &str, obs: Observation) {
        let now = Instant::now();
        let new_endpoint;
        {
            let mut w = self
                .windows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let q = w.entry(key.to_string()).or_default();
            new_endpoint = q.is_empty();
            q.push_back(Sample { at: now, obs });
            while q.len() > MAX_SAMPLES {
                q.pop_front();
            }
        }
        if obs.outage || new_endpoint {
            // An outage (or a first observation) must be visible to the very next plan.
            let mut c = self
                .cached
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.1 = true;
        }
    }

    fn snapshot(&self) -> Arc<HealthSnapshot> {
        let now = Instant::now();
        {
            let c = self
                .cached
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !c.1 && now.duration_since(c.0) < REFRESH {
                return c.2.clone();
            }
        }
        let snap = Arc::new(self.rebuild(now));
        let mut c = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c = (now, false, snap.clone());
        snap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_percentiles_equal_sorted_ones() {
        fn sorted(v: &[f64], p: f64) -> Option<f64> {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(rank(v.len(), p)).copied()
        }
        assert_eq!(p50_p90(&mut []), (None, None));
        // A fixed pseudo-random sequence (with repeats) of every length up to 200.
        let mut x: u64 = 12345;
        for len in 1..=200usize {
            let v: Vec<f64> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((x >> 33) % 97) as f64 * 1.5
                })
                .collect();
            let want = (sorted(&v, 0.5), sorted(&v, 0.9));
            assert_eq!(p50_p90(&mut v.clone()), want, "len {len}");
        }
    }

    #[test]
    fn outage_is_visible_at_once_and_percentiles_come_from_successes() {
        let h = MemoryHealth::default();
        for i in 0..10 {
            h.record(
                "m@a",
                Observation {
                    ok: true,
                    outage: false,
                    ttft_ms: Some(f64::from(i) * 10.0),
                    throughput: Some(50.0),
                },
            );
        }
        let s = h.snapshot();
        let e = s.endpoints.get("m@a").cloned().unwrap_or_default();
        assert!(!e.recent_outage);
        assert_eq!(e.samples, 10);
        assert_eq!(e.latency_p50_ms, Some(50.0));
        assert_eq!(e.throughput_p50, Some(50.0));
        h.record(
            "m@a",
            Observation {
                ok: false,
                outage: true,
                ttft_ms: None,
                throughput: None,
            },
        );
        assert!(h
            .snapshot()
            .endpoints
            .get("m@a")
            .is_some_and(|e| e.recent_outage));
        assert_eq!(h.success_rate("m@a"), Some(10.0 / 11.0));
    }
}
