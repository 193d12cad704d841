//! The [`Router`]: the public face of the engine (planning, cost, catalog queries, records and spend); the
//! request lifecycle behind `chat` is in [`crate::lifecycle`].

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polyroute_core::catalog::ModelFilter;
use polyroute_core::cost::{self, CostContext};
use polyroute_core::plan::{self, PlanContext};
use polyroute_core::types::ChatRequest;
use polyroute_core::{Catalog, Error, Result, Usage};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::attempt::prepare::Upstream;
use crate::builder::RouterBuilder;
use crate::config::Options;
use crate::state::{Scope, Stores};

/// Inputs of [`Router::plan_with`] (camelCase spellings accepted); each absent one is the router's own.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanInputs {
    /// Seed of the weighted random order (default 0).
    pub seed: Option<u64>,
    /// Health observations (default: the router's observed health).
    pub health: Option<plan::HealthSnapshot>,
    /// Provider slugs holding credentials (default: the router's).
    pub credentials: Option<Vec<String>>,
    /// Endpoint tag the conversation is stuck to.
    pub sticky: Option<String>,
    /// Model a router (`openrouter/auto`) chose earlier in this session.
    #[serde(alias = "previousModel")]
    pub previous_model: Option<String>,
}

/// Conditions of [`Router::cost_with`] (camelCase spellings accepted).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostInputs {
    /// Minute of the UTC day (0–1439) for time-window prices; absent = ignore time windows.
    #[serde(alias = "utcMinute")]
    pub utc_minute: Option<u16>,
    /// The response's finish reason (default `"stop"`).
    #[serde(alias = "finishReason")]
    pub finish_reason: Option<String>,
}

pub(crate) struct Inner {
    pub catalog: Catalog,
    /// Connect timeout of every HTTP client this router opens.
    pub connect_timeout: Duration,
    pub upstreams: rustc_hash::FxHashMap<String, Upstream>,
    pub credentials: BTreeSet<String>,
    /// The same set with its per-model credential flags over `catalog`, made on first need (what plans read).
    pub credential_marks: polyroute_core::select::filters::CredentialMarks,
    /// Providers that cannot be reached until a setting is given (slug → what is missing).
    pub unconfigured: std::collections::BTreeMap<String, String>,
    pub opts: Options,
    pub stores: Stores,
    pub seq: AtomicU64,
    pub seed_base: u64,
    /// Always on; shared by every clone.
    pub metrics: crate::metrics::Metrics,
    /// The hook thread's queue, when hooks are set.
    pub hooks: Option<crate::hooks::HookQueue>,
    /// The tracer, when traces are on.
    pub telemetry: Option<crate::otel::Telemetry>,
    /// Settles running after their answers (remote budgets) or retried after a failure.
    pub settles: Arc<crate::reservation::Settles>,
}

/// The routing engine. Cheap to clone; share one across tasks.
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<Inner>,
    /// The upstream connection pool (clones share it; [`Router::with_own_connections`] opens another).
    pub(crate) http: crate::http_client::HttpClient,
}

/// The upstream HTTP client ([`crate::http_client`]).
pub(crate) fn http_client(connect: Duration) -> Result<crate::http_client::HttpClient> {
    crate::http_client::HttpClient::new(connect)
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("models", &self.inner.catalog.models().len())
            .field("providers_with_credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Router {
    /// Start building a router.
    #[must_use]
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// A router from a whole [`RouterConfig`](crate::RouterConfig) (`state` servers need
    /// [`RouterBuilder::stores`]; see `polyroute-stores`).
    ///
    /// # Errors
    /// As [`RouterBuilder::build`], and an unknown provider slug.
    pub fn from_config(c: &crate::RouterConfig) -> Result<Router> {
        Router::builder().config(c).build()
    }

    /// The plan with explicit inputs; every input left out is the router's own (seed 0, its credentials, its
    /// observed health). Credentials given as an input describe a setup of their own, so the router's
    /// `settings_missing` exclusions (an Azure provider without a resource) do not apply to them. Both bindings'
    /// `plan(request, …)` call this, so they plan alike.
    ///
    /// # Errors
    /// As [`Router::plan`].
    pub fn plan_with(&self, req: &ChatRequest, inputs: &PlanInputs) -> Result<plan::Plan> {
        let observed;
        let health = match &inputs.health {
            Some(h) => h,
            None => {
                observed = self.inner.stores.health.snapshot();
                &*observed
            }
        };
        let creds: Option<BTreeSet<String>> = inputs
            .credentials
            .as_ref()
            .map(|c| c.iter().cloned().collect());
        let ctx = PlanContext {
            seed: inputs.seed.unwrap_or(0),
            health,
            // The router's own set is the one its precomputed marks hold.
            credentials: Some(
                creds
                    .as_ref()
                    .unwrap_or(self.inner.credential_marks.credentials()),
            ),
            // Credentials given as an input describe a setup of their own: its providers count as configured.
            unconfigured: creds.is_none().then_some(&self.inner.unconfigured),
            sticky: inputs.sticky.as_deref(),
            previous_router_model: inputs.previous_model.as_deref(),
            credential_marks: Some(&self.inner.credential_marks),
        };
        plan::plan(&self.inner.catalog, req, &ctx)
    }

    /// Cost with explicit conditions: `utc_minute` absent ignores time-window prices, `finish_reason` absent is
    /// `"stop"` (a blank one applies zero-completion insurance). Both bindings' `cost(…, context)` call this.
    ///
    /// # Errors
    /// As [`Router::cost`].
    pub fn cost_with(
        &self,
        model: &str,
        usage: &Value,
        provider: Option<&str>,
        inputs: &CostInputs,
    ) -> Result<Value> {
        let pricing = self.inner.catalog.pricing_for(model, provider)?;
        let u: Usage = serde_json::from_value(usage.clone())
            .map_err(|e| Error::invalid("usage", e.to_string()))?;
        let ctx = CostContext {
            utc_minute: inputs.utc_minute,
            finish_reason: Some(inputs.finish_reason.as_deref().unwrap_or("stop")),
        };
        serde_json::to_value(cost::cost(pricing, &u, ctx)).map_err(|e| Error::Internal {
            message: e.to_string(),
        })
    }

    /// The same router (catalog, credentials, ledger, spend, health, sticky routing) with its own upstream
    /// connection pool. For thread-per-core servers: a connection lives on the runtime that opened it, so each
    /// single-threaded runtime should send through a pool of its own rather than wake another thread per call.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS roots).
    pub fn with_own_connections(&self) -> Result<Router> {
        Ok(Router {
            inner: self.inner.clone(),
            http: http_client(self.inner.connect_timeout)?,
        })
    }

    /// A fresh generation id (`gen-<unix seconds>-<16 hex>`), unique in this router: for a caller that must
    /// name a request's generation before it runs ([`crate::RequestContext::generation_id`]).
    #[must_use]
    pub fn new_generation_id(&self) -> String {
        let n = self
            .inner
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        generation_id(now_ms() / 1000, ordered_bits(self.inner.seed_base, n))
    }

    /// The router's metrics (requests, attempts, tokens, cost, latency …; shared by every clone): render them
    /// with [`Metrics::render`](crate::Metrics::render) (Prometheus text) or
    /// [`Metrics::snapshot`](crate::Metrics::snapshot) (JSON).
    #[must_use]
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Export the finished spans now (when traces are on; they are otherwise exported in batches, and when the
    /// router is dropped).
    pub fn flush_telemetry(&self) {
        if let Some(t) = &self.inner.telemetry {
            t.flush();
        }
    }

    /// The catalog in use.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Provider slugs that have a credential.
    #[must_use]
    pub fn credentials(&self) -> &BTreeSet<String> {
        &self.inner.credentials
    }

    /// The plan for a request, as JSON, with the router's credentials and current health.
    ///
    /// # Errors
    /// The core's planning errors (invalid request, unknown model, nothing eligible).
    pub fn plan(&self, request: &Value) -> Result<Value> {
        let p = self.plan_request(&ChatRequest::from_value(request)?)?;
        let mut v = p.to_json();
        // How each attempt would authenticate (`sigv4 bedrock us-west-2 (profile dev)`); never the credential.
        if let Some(Value::Array(at)) = v.get_mut("attempts") {
            for (j, a) in at.iter_mut().zip(&p.attempts) {
                let up = self.inner.upstreams.get(&a.provider);
                j["auth"] = Value::String(crate::auth::describe(a.dialect.auth_scheme(), up));
            }
        }
        Ok(v)
    }

    /// The plan for an already parsed request, as the core's [`plan::Plan`] (serialize it directly when JSON
    /// text is wanted; that skips building a `Value` tree).
    ///
    /// # Errors
    /// As [`Router::plan`].
    pub fn plan_request(&self, req: &ChatRequest) -> Result<plan::Plan> {
        let health = self.inner.stores.health.snapshot();
        let ctx = PlanContext {
            seed: 0,
            health: &health,
            credentials: Some(self.inner.credential_marks.credentials()),
            unconfigured: Some(&self.inner.unconfigured),
            credential_marks: Some(&self.inner.credential_marks),
            ..PlanContext::default()
        };
        plan::plan(&self.inner.catalog, req, &ctx)
    }

    /// Cost of `usage` on `model` (served by `provider`, or at the model-level price).
    ///
    /// # Errors
    /// Unknown model, a provider that does not serve it, or usage that does not parse.
    pub fn cost(&self, model: &str, usage: &Value, provider: Option<&str>) -> Result<Value> {
        let pricing = self.inner.catalog.pricing_for(model, provider)?;
        let u: Usage = serde_json::from_value(usage.clone())
            .map_err(|e| Error::invalid("usage", e.to_string()))?;
        let b = cost::cost(
            pricing,
            &u,
            CostContext {
                utc_minute: Some(utc_minute()),
                finish_reason: Some("stop"),
            },
        );
        serde_json::to_value(&b).map_err(|e| Error::Internal {
            message: e.to_string(),
        })
    }

    /// Catalog models matching `filters` (a `ModelFilter` object; `null` = all), as JSON rows.
    ///
    /// # Errors
    /// A filter that does not parse.
    pub fn models(&self, filters: &Value) -> Result<Vec<Value>> {
        let f: ModelFilter = if filters.is_null() {
            ModelFilter::default()
        } else {
            serde_json::from_value(filters.clone())
                .map_err(|e| Error::invalid("filters", e.to_string()))?
        };
        Ok(self
            .inner
            .catalog
            .filter_models(&f)
            .into_iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .collect())
    }

    /// The ledger record of a generation.
    pub async fn generation(&self, id: &str) -> Option<Value> {
        self.inner
            .stores
            .ledger
            .get(id)
            .await
            .ok()
            .flatten()
            .map(|r| r.to_json())
    }

    /// The stores this router keeps its state in (ledger queries, budget, rate windows).
    #[must_use]
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// Settled spend so far (USD): router-wide, or of one user key.
    ///
    /// # Errors
    /// The budget store failed.
    pub async fn spent(&self, user: Option<&str>) -> Result<Decimal> {
        let scope = match user {
            Some(u) => Scope::User(u.to_string()),
            None => Scope::Router,
        };
        self.spent_in(&scope).await
    }

    /// Settled spend of any scope (a gateway key's: [`Scope::Key`]).
    ///
    /// # Errors
    /// The budget store failed.
    pub async fn spent_in(&self, scope: &Scope) -> Result<Decimal> {
        self.settled(Duration::from_secs(2)).await;
        self.inner.stores.budget.spent(scope).await
    }

    /// Wait until this router's background settles (and the sticky writes sent after answers) have landed, or
    /// `max` passed; answers how many are still pending. With a remote budget (Redis, PostgreSQL) a generation's cost is added to the spend just after
    /// its answer is sent (its hold counts against the limits until then), and a settle that met a failure is
    /// retried until the store answers: readers of the spend ([`Router::spent_in`] calls this) wait here.
    pub async fn settled(&self, max: Duration) -> usize {
        self.inner.settles.wait(max).await;
        self.inner.settles.pending()
    }

    /// Apply the budget settles the ledger noted with their records and never saw land, for generations
    /// created at least `min_age` ago ([`crate::state::sweep_settles`] over this router's stores); answers how
    /// many were applied. Stores opened with both servers sweep by themselves.
    ///
    /// # Errors
    /// The ledger or the budget failed; what was applied before stays applied.
    pub async fn sweep_settles(&self, min_age: Duration) -> Result<usize> {
        let st = &self.inner.stores;
        crate::state::sweep_settles(&*st.ledger, &*st.budget, min_age).await
    }
}

/// The 16 hex digits of a router's `n`th generation id: 24 bits naming the router (drawn from its seed) over a
/// 40-bit count starting at a point drawn from the seed too. A router's ids sort in the order it made them (the
/// seconds lead, and within a second the count rises), so a ledger's index on ids grows at its end: ids at
/// random places there put each record of a batch on its own index page, and the SQLite ledger then wrote
/// about twice the WAL pages per record at 64 clients. Unique within the router (the count would have to wrap
/// within one second); two routers' ids meet only with the same 24-bit tag and overlapping counts in the same
/// second.
pub(crate) fn ordered_bits(seed: u64, n: u64) -> u64 {
    const COUNT: u64 = (1 << 40) - 1;
    let tag = splitmix(seed) >> 40;
    let start = splitmix(seed ^ 0x2545_F491_4F6C_DD1D);
    (tag << 40) | (start.wrapping_add(n) & COUNT)
}

/// `gen-<unix seconds>-<bits as 16 hex digits>`, written without the formatting machinery (one per request).
pub(crate) fn generation_id(secs: i64, bits: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32);
    id.push_str("gen-");
    id.push_str(itoa::Buffer::new().format(secs));
    id.push('-');
    // The 16 digits written into an array, then appended at once (a push per digit checks the room each time).
    let mut hex = [0u8; 16];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = HEX[((bits >> ((15 - i) * 4)) & 0xf) as usize];
    }
    id.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    id
}

pub(crate) fn utc_minute() -> u16 {
    u16::try_from((now_ms() / 60_000) % 1440).unwrap_or(0)
}

/// A JSON summary of options useful for debugging (no credentials).
#[must_use]
pub fn describe(router: &Router) -> Value {
    json!({"providers_with_credentials": router.inner.credentials, "models": router.inner.catalog.models().len()})
}

#[cfg(test)]
mod tests {
    /// A router's ids keep its tag, differ, and sort in the order they were made (but where the count wraps).
    #[test]
    fn a_routers_generation_ids_sort_in_the_order_they_were_made() {
        for seed in [0, 7, 1_764_633_600_123_456_789, u64::MAX] {
            let ids: Vec<String> = (0..1000)
                .map(|n| super::generation_id(1_764_633_600, super::ordered_bits(seed, n)))
                .collect();
            let first = super::ordered_bits(seed, 0);
            let wraps = (0..1000).any(|n| super::ordered_bits(seed, n) & ((1 << 40) - 1) == 0);
            if !wraps {
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "seed {seed}");
            }
            assert!((0..1000).all(|n| super::ordered_bits(seed, n) >> 40 == first >> 40));
            let mut sorted = ids.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len());
        }
        // Two seeds name their routers apart.
        assert_ne!(
            super::ordered_bits(1, 0) >> 40,
            super::ordered_bits(2, 0) >> 40
        );
    }

    #[test]
    fn generation_ids_read_as_the_formatted_ones() {
        for (secs, bits) in [
            (0, 0),
            (1_764_633_600, 0x0123_4567_89ab_cdef),
            (i64::MAX, u64::MAX),
            (-5, 1),
        ] {
            assert_eq!(
                super::generation_id(secs, bits),
                format!("gen-{secs}-{bits:016x}")
            );
        }
    }
}
