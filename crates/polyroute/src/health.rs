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

fn pct(mut v: Vec<f64>, p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(idx.min(v.len() - 1)).copied()
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
            let ttft: Vec<f64> = q
                .iter()
                .filter(|s| s.obs.ok)
                .filter_map(|s| s.obs.ttft_ms)
                .collect();
            let tput: Vec<f64> = q
                .iter()
                .filter(|s| s.obs.ok)
                .filter_map(|s| s.obs.throughput)
                .collect();
            let samples = u32::try_from(q.len()).unwrap_or(u32::MAX);
            snap.endpoints.insert(
                k.clone(),
                EndpointHealth {
                    recent_outage,
                    latency_p50_ms: pct(ttft.clone(), 0.5),
                    latency_p90_ms: pct(ttft, 0.9),
                    throughput_p50: pct(tput.clone(), 0.5),
                    throughput_p90: pct(tput, 0.9),
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
