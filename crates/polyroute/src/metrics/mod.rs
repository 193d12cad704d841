//! Prometheus metrics of the engine, always on: requests, attempts, fallbacks, errors, latency, time to first
//! token, overhead, tokens, cost, cache hits, in-flight requests and limit refusals, recorded from the one
//! lifecycle ([`crate::admission`], [`crate::failover`], [`crate::billing`], [`crate::lifecycle`]).
//!
//! Recording takes one short mutex per event (a request's end, an attempt, a generation) over plain maps keyed
//! by interned label ids, and in-flight is an atomic: well under a microsecond per request. Label values are
//! bounded per label name ([`LABEL_CAPS`]): the first values seen are kept, later new ones are counted as
//! `other`, so the number of series is bounded whatever callers send. [`Metrics::render`] writes the Prometheus
//! text exposition (version 0.0.4), [`Metrics::snapshot`] the same figures as JSON.

mod render;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use polyroute_core::Error;
use rust_decimal::Decimal;

use crate::ledger::GenerationRecord;

/// Distinct values kept per label name; later new values are counted under `other`.
pub const LABEL_CAPS: [(&str, usize); 5] = [
    ("model", 100),
    ("provider", 100),
    ("key", 100),
    ("code", 64),
    ("limit", 16),
];

/// The value new label values fold into once their label name is full.
pub const OTHER: &str = "other";

/// Bucket bounds (seconds) of the request-duration and time-to-first-token histograms.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Bucket bounds (seconds) of the overhead histogram.
pub const OVERHEAD_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// The registry's maps: keys are interned ids and at most [`LABEL_CAPS`] label values per name, so a fast
/// multiplicative hash (FxHash's) serves instead of SipHash (no key set a caller controls can grow large).
type HashMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// Interned values of one label name, at most `cap` of them (id 0 is `other`).
struct Dim {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    cap: usize,
}

impl Dim {
    fn new(cap: usize) -> Self {
        Self {
            ids: HashMap::default(),
            names: vec![OTHER.to_string()],
            cap,
        }
    }

    fn id(&mut self, v: &str) -> u32 {
        if let Some(&i) = self.ids.get(v) {
            return i;
        }
        if self.ids.len() >= self.cap || v == OTHER {
            return 0;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(0);
        self.names.push(v.to_string());
        self.ids.insert(v.to_string(), i);
        i
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or(OTHER, String::as_str)
    }
}

/// A histogram: per-bucket counts (not cumulative; the last one is `+Inf`) and the sum.
#[derive(Debug, Clone)]
struct Hist {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
}

impl Hist {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, v: f64) {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += v;
    }
}

/// The recorded figures, under one lock.
struct Reg {
    model: Dim,
    provider: Dim,
    key: Dim,
    code: Dim,
    limit: Dim,
    /// model, status (code id; `ok` is interned as a code).
    requests: HashMap<[u32; 2], u64>,
    /// provider, model, outcome code.
    attempts: HashMap<[u32; 3], u64>,
    /// provider that failed before the next endpoint was tried.
    fallbacks: HashMap<u32, u64>,
    /// model, provider, served by a later attempt than the first.
    generations: HashMap<([u32; 2], bool), u64>,
    /// code, provider.
    errors: HashMap<[u32; 2], u64>,
    /// provider.
    latency: HashMap<u32, Hist>,
    ttft: HashMap<u32, Hist>,
    overhead: Hist,
    /// model, provider, key → prompt, completion.
    tokens: HashMap<[u32; 3], [u64; 2]>,
    cost: HashMap<[u32; 3], Decimal>,
    /// model.
    cache_hits: HashMap<u32, u64>,
    /// limit.
    refusals: HashMap<u32, u64>,
}

fn cap(name: &str) -> usize {
    LABEL_CAPS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(16, |(_, c)| *c)
}

impl Default for Reg {
    fn default() -> Self {
        Self {
            model: Dim::new(cap("model")),
            provider: Dim::new(cap("provider")),
            key: Dim::new(cap("key")),
            code: Dim::new(cap("code")),
            limit: Dim::new(cap("limit")),
            requests: HashMap::default(),
            attempts: HashMap::default(),
            fallbacks: HashMap::default(),
            generations: HashMap::default(),
            errors: HashMap::default(),
            latency: HashMap::default(),
            ttft: HashMap::default(),
            overhead: Hist::new(OVERHEAD_BUCKETS),
            tokens: HashMap::default(),
            cost: HashMap::default(),
            cache_hits: HashMap::default(),
            refusals: HashMap::default(),
        }
    }
}

/// The engine's metrics (one per router, shared by its clones). See the module documentation.
#[derive(Default)]
pub struct Metrics {
    reg: Mutex<Reg>,
    in_flight: AtomicI64,
    hooks_dropped: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Counts a request in flight until dropped.
pub(crate) struct InFlight(Arc<crate::router::Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The provider an error names: the provider's own error's, else the last attempt's; `none` when no provider
/// was called.
fn error_provider(e: &Error) -> &str {
    match e {
        Error::Provider { provider, .. } => provider,
        Error::NoEndpoints(u)
        | Error::ConstraintFiltered(u)
        | Error::PrivacyRestricted(u)
        | Error::CapacityExhausted(u)
        | Error::TemporarilyUnavailable(u) => u.attempts.last().map_or("none", |a| &a.provider),
        _ => "none",
    }
}

/// The model a request asked for (`model`, else the first of `models`), for the `model` label of requests.
pub(crate) fn requested_model(request: &serde_json::Value) -> String {
    request
        .get("model")
        .and_then(serde_json::Value::as_str)
        .or_else(|| {
            request
                .pointer("/models/0")
                .and_then(serde_json::Value::as_str)
        })
        .unwrap_or("")
        .to_string()
}

impl Metrics {
    fn reg(&self) -> std::sync::MutexGuard<'_, Reg> {
        self.reg.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request entered the lifecycle.
    pub(crate) fn start(inner: &Arc<crate::router::Inner>) -> InFlight {
        inner.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(inner.clone())
    }

    /// A request ended: answered (`Ok`) or with an error (its code, and the provider it names).
    pub(crate) fn request_end<T>(&self, model: &str, r: &Result<T, Error>) {
        let mut g = self.reg();
        let m = g.model.id(model);
        match r {
            Ok(_) => {
                let s = g.code.id("ok");
                *g.requests.entry([m, s]).or_default() += 1;
            }
            Err(e) => {
                let c = g.code.id(e.code());
                let p = g.provider.id(error_provider(e));
                *g.requests.entry([m, c]).or_default() += 1;
                *g.errors.entry([c, p]).or_default() += 1;
            }
        }
    }

    /// One attempt ended with outcome `code` (`success`, `overloaded`, `timeout`, …).
    pub(crate) fn attempt(&self, provider: &str, model: &str, code: &str) {
        let mut g = self.reg();
        let k = [g.provider.id(provider), g.model.id(model), g.code.id(code)];
        *g.attempts.entry(k).or_default() += 1;
    }

    /// The loop moved on to another endpoint after `provider` failed.
    pub(crate) fn fallback(&self, provider: &str) {
        let mut g = self.reg();
        let p = g.provider.id(provider);
        *g.fallbacks.entry(p).or_default() += 1;
    }

    /// A request was refused by a limit before any provider was called: the engine's `router_budget`,
    /// `user_budget`, `key_credit` and `free_tier`, or a server's own (the gateway's `key_rpm`, `key_tpm`).
    pub fn limit_refused(&self, limit: &str) {
        let mut g = self.reg();
        let l = g.limit.id(limit);
        *g.refusals.entry(l).or_default() += 1;
    }

    /// An answer served from a response cache (the gateway's `X-OpenRouter-Cache`).
    pub fn cache_hit(&self, model: &str) {
        let mut g = self.reg();
        let m = g.model.id(model);
        *g.cache_hits.entry(m).or_default() += 1;
    }

    /// A hook event was dropped because the hook queue was full.
    pub(crate) fn hook_dropped(&self) {
        self.hooks_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// A generation was billed (`rec`; its `overhead_ms` is observed when set).
    pub(crate) fn generation(&self, rec: &GenerationRecord) {
        let fallback = rec.attempts.len() > 1;
        let mut g = self.reg();
        let (m, p) = (g.model.id(&rec.model), g.provider.id(&rec.provider));
        let k = g.key.id(rec.user.as_deref().unwrap_or(""));
        *g.generations.entry(([m, p], fallback)).or_default() += 1;
        let t = g.tokens.entry([m, p, k]).or_default();
        t[0] += rec.usage.prompt_tokens;
        t[1] += rec.usage.completion_tokens;
        *g.cost.entry([m, p, k]).or_default() += rec.cost;
        g.latency
            .entry(p)
            .or_insert_with(|| Hist::new(LATENCY_BUCKETS))
            .observe(rec.latency_ms / 1000.0);
        if let Some(t) = rec.ttft_ms {
            g.ttft
                .entry(p)
                .or_insert_with(|| Hist::new(LATENCY_BUCKETS))
                .observe(t / 1000.0);
        }
        if let Some(o) = rec.overhead_ms {
            g.overhead.observe(o / 1000.0);
        }
    }

    /// Requests under way now.
    #[must_use]
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Time a request spent waiting rather than working: on providers (sending the upstream request and reading its
/// answer), on the caller taking stream chunks, and in retry backoff. A request's overhead is its total time
/// minus this.
#[derive(Debug, Default)]
pub(crate) struct Waited(AtomicU64);

impl Waited {
    /// Run `f`, counting its time as waiting.
    pub(crate) async fn time<F: std::future::Future>(&self, f: F) -> F::Output {
        let t = Instant::now();
        let out = f.await;
        self.add(t.elapsed());
        out
    }

    pub(crate) fn add(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(ns, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    /// `elapsed` minus the time waited, in milliseconds (never negative).
    pub(crate) fn overhead_ms(&self, elapsed: Duration) -> f64 {
        elapsed.saturating_sub(self.get()).as_secs_f64() * 1000.0
    }
}

#[cfg(test)]
mod tests;
