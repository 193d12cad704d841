//! The [`Router`]: configuration, planning inputs, limits, sticky routing and the pass-through core calls.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use polyroute_core::catalog::ModelFilter;
use polyroute_core::cost::{self, CostContext};
use polyroute_core::plan::{self, Plan, PlanContext};
use polyroute_core::types::{ChatRequest, Role};
use polyroute_core::{Catalog, Error, Result, Usage};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::config::{Options, ProviderSettings, RequestContext, Timeouts};
use crate::health::{HealthStore, MemoryHealth};
use crate::ledger::{Ledger, MemoryLedger, SqliteLedger, Totals};
use crate::secret::ApiKey;

/// A provider as the engine reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub base_url: String,
    /// `base_url` parsed once (None when it does not parse; the request then reports the bad URL).
    pub base: Option<reqwest::Url>,
    pub key: Option<ApiKey>,
    pub headers: Vec<(String, String)>,
    pub timeouts: Timeouts,
}

impl Upstream {
    /// `base_url` + `path` (which may carry a query, e.g. `?alt=sse`) without parsing the scheme and host again.
    pub fn endpoint(&self, path: &str) -> Option<reqwest::Url> {
        let base = self.base.as_ref()?;
        if base.query().is_some() || base.cannot_be_a_base() {
            return None;
        }
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let mut u = base.clone();
        let mut full = String::with_capacity(base.path().len() + p.len());
        full.push_str(base.path().trim_end_matches('/'));
        full.push_str(p);
        u.set_path(&full);
        u.set_query(q);
        Some(u)
    }
}

#[derive(Debug, Default)]
struct Spend {
    totals: Totals,
    pending_all: Decimal,
    pending_user: HashMap<String, Decimal>,
}

#[derive(Debug, Default)]
struct FreeUse {
    minute: VecDeque<Instant>,
    day: i64,
    day_count: u32,
}

pub(crate) struct Inner {
    pub catalog: Catalog,
    /// Connect timeout of every HTTP client this router opens.
    pub connect_timeout: Duration,
    pub upstreams: HashMap<String, Upstream>,
    pub credentials: BTreeSet<String>,
    pub opts: Options,
    pub health: Arc<dyn HealthStore>,
    pub ledger: Arc<dyn Ledger>,
    spend: Mutex<Spend>,
    free: Mutex<HashMap<String, FreeUse>>,
    sticky: Mutex<HashMap<u64, (String, Instant)>>,
    seq: AtomicU64,
    seed_base: u64,
}

/// Feeds a JSON value into a hasher without serializing it: values equal as JSON text hash equally (objects
/// in their order, as in their text).
fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            b.hash(h);
        }
        Value::Number(n) => {
            h.write_u8(2);
            if let Some(u) = n.as_u64() {
                h.write_u64(u);
            } else if let Some(i) = n.as_i64() {
                h.write_i64(i);
            } else {
                h.write_u64(n.as_f64().map_or(0, f64::to_bits));
            }
        }
        Value::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        Value::Array(a) => {
            h.write_u8(4);
            h.write_usize(a.len());
            for x in a {
                hash_value(x, h);
            }
        }
        Value::Object(m) => {
            h.write_u8(5);
            h.write_usize(m.len());
            for (k, x) in m {
                k.hash(h);
                hash_value(x, h);
            }
        }
    }
}

fn hash_opt(v: Option<&Value>, h: &mut impl Hasher) {
    match v {
        Some(v) => hash_value(v, h),
        None => h.write_u8(0xff),
    }
}

/// The routing engine. Cheap to clone; share one across tasks.
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<Inner>,
    /// The upstream connection pool (clones share it; [`Router::with_own_connections`] opens another).
    pub(crate) http: reqwest::Client,
}

/// The upstream HTTP client: rustls, pooled keep-alive, `TCP_NODELAY`, gzip.
fn http_client(connect: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(2048)
        .tcp_nodelay(true)
        .gzip(true)
        .user_agent(concat!("polyroute/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Internal {
            message: format!("http client: {e}"),
        })
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("models", &self.inner.catalog.models().len())
            .field("providers_with_credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Router`].
#[derive(Default)]
pub struct RouterBuilder {
    catalog: Option<Catalog>,
    catalog_json: Option<String>,
    catalog_file: Option<PathBuf>,
    overlay: Option<Value>,
    providers: HashMap<String, ProviderSettings>,
    opts: Options,
    ledger: Option<Arc<dyn Ledger>>,
    ledger_path: Option<PathBuf>,
    health: Option<Arc<dyn HealthStore>>,
}

impl std::fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterBuilder")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl RouterBuilder {
    /// Use this catalog (default: the embedded one).
    #[must_use]
    pub fn catalog(mut self, c: Catalog) -> Self {
        self.catalog = Some(c);
        self
    }

    /// Use a catalog given as JSON text.
    #[must_use]
    pub fn catalog_json(mut self, text: impl Into<String>) -> Self {
        self.catalog_json = Some(text.into());
        self
    }

    /// Use a catalog file.
    #[must_use]
    pub fn catalog_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.catalog_file = Some(path.into());
        self
    }

    /// Merge an overlay (models, endpoints, providers) over the catalog.
    #[must_use]
    pub fn overlay(mut self, overlay: Value) -> Self {
        self.overlay = Some(overlay);
        self
    }

    /// Settings of one provider (by slug).
    #[must_use]
    pub fn provider(mut self, slug: impl Into<String>, settings: ProviderSettings) -> Self {
        self.providers.insert(slug.into(), settings);
        self
    }

    /// Shorthand: a key for one provider.
    #[must_use]
    pub fn api_key(self, slug: impl Into<String>, key: impl Into<String>) -> Self {
        let slug = slug.into();
        let mut s = self.providers.get(&slug).cloned().unwrap_or_default();
        s.api_key = Some(ApiKey::new(key));
        self.provider(slug, s)
    }

    /// Router options.
    #[must_use]
    pub fn options(mut self, opts: Options) -> Self {
        self.opts = opts;
        self
    }

    /// Keep generations in this ledger.
    #[must_use]
    pub fn ledger(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Keep generations in an SQLite file (default: a [`MemoryLedger`] of the newest
    /// [`MEMORY_LEDGER_CAPACITY`](crate::MEMORY_LEDGER_CAPACITY) records).
    #[must_use]
    pub fn ledger_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.ledger_path = Some(path.into());
        self
    }

    /// Use this health store (default: in memory).
    #[must_use]
    pub fn health_store(mut self, h: Arc<dyn HealthStore>) -> Self {
        self.health = Some(h);
        self
    }

    /// Build the router.
    ///
    /// # Errors
    /// An invalid catalog or overlay, an unreadable catalog or ledger file, or an HTTP client failure.
    pub fn build(self) -> Result<Router> {
        let mut catalog = match (self.catalog, self.catalog_json, self.catalog_file) {
            (Some(c), _, _) => c,
            (None, Some(t), _) => Catalog::from_json(&t)?,
            (None, None, Some(p)) => {
                let t = std::fs::read_to_string(&p).map_err(|e| Error::Internal {
                    message: format!("cannot read catalog {}: {e}", p.display()),
                })?;
                Catalog::from_json(&t)?
            }
            (None, None, None) => Catalog::embedded()?,
        };
        if let Some(o) = &self.overlay {
            catalog = catalog.overlay(o)?;
        }
        let opts = self.opts;
        let mut upstreams = HashMap::new();
        let mut credentials = BTreeSet::new();
        for p in catalog.providers() {
            let s = self.providers.get(&p.slug).cloned().unwrap_or_default();
            let key = s.api_key.clone().filter(|k| !k.is_empty()).or_else(|| {
                if !opts.read_env {
                    return None;
                }
                let conventional = p.api_key_env.clone();
                let fallback = format!(
                    "{}_API_KEY",
                    p.slug.to_ascii_uppercase().replace(['-', '.'], "_")
                );
                conventional
                    .into_iter()
                    .chain(std::iter::once(fallback))
                    .find_map(|v| std::env::var(v).ok().filter(|k| !k.trim().is_empty()))
                    .map(ApiKey::new)
            });
            if key.is_some() || s.no_auth {
                credentials.insert(p.slug.clone());
            }
            let base_url = s
                .base_url
                .clone()
                .unwrap_or_else(|| p.base_url.clone())
                .trim_end_matches('/')
                .to_string();
            upstreams.insert(
                p.slug.clone(),
                Upstream {
                    base: reqwest::Url::parse(&base_url).ok(),
                    base_url,
                    key,
                    headers: s.headers.clone(),
                    timeouts: s.timeouts.unwrap_or(opts.timeouts),
                },
            );
        }
        let connect = upstreams
            .values()
            .map(|u| u.timeouts.connect)
            .chain([opts.timeouts.connect])
            .min();
        let connect_timeout = connect.unwrap_or(Duration::from_secs(10));
        let http = http_client(connect_timeout)?;
        let ledger: Arc<dyn Ledger> = match (self.ledger, self.ledger_path) {
            (Some(l), _) => l,
            (None, Some(p)) => Arc::new(SqliteLedger::open(Path::new(&p))?),
            (None, None) => Arc::new(MemoryLedger::default()),
        };
        let totals = ledger.totals()?;
        let seed_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        Ok(Router {
            http,
            inner: Arc::new(Inner {
                catalog,
                connect_timeout,
                upstreams,
                credentials,
                opts,
                health: self
                    .health
                    .unwrap_or_else(|| Arc::new(MemoryHealth::default())),
                ledger,
                spend: Mutex::new(Spend {
                    totals,
                    ..Spend::default()
                }),
                free: Mutex::new(HashMap::new()),
                sticky: Mutex::new(HashMap::new()),
                seq: AtomicU64::new(0),
                seed_base,
            }),
        })
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

/// What the execution loop needs after admission.
pub(crate) struct Admitted {
    pub plan: Plan,
    pub gen_id: String,
    pub created_ms: i64,
    pub sticky_key: Option<u64>,
    pub reserved: Decimal,
    pub free: bool,
}

impl Router {
    /// Start building a router.
    #[must_use]
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
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
        Ok(self
            .plan_request(&ChatRequest::from_value(request)?)?
            .to_json())
    }

    /// The plan for an already parsed request, as the core's [`plan::Plan`] (serialize it directly when JSON
    /// text is wanted; that skips building a `Value` tree).
    ///
    /// # Errors
    /// As [`Router::plan`].
    pub fn plan_request(&self, req: &ChatRequest) -> Result<plan::Plan> {
        let health = self.inner.health.snapshot();
        let ctx = PlanContext {
            seed: 0,
            health: &health,
            credentials: Some(&self.inner.credentials),
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
        let ledger = self.inner.ledger.clone();
        let id = id.to_string();
        if ledger.is_blocking() {
            tokio::task::spawn_blocking(move || ledger.get(&id))
                .await
                .ok()?
                .ok()?
                .map(|r| r.to_json())
        } else {
            ledger.get(&id).ok()?.map(|r| r.to_json())
        }
    }

    /// Spend so far (USD): router-wide, or of one user key.
    #[must_use]
    pub fn spent(&self, user: Option<&str>) -> Decimal {
        let s = self
            .inner
            .spend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match user {
            Some(u) => s.totals.by_user.get(u).copied().unwrap_or_default(),
            None => s.totals.all,
        }
    }

    fn sticky_key(req: &ChatRequest, raw: &Value, ctx: &RequestContext) -> Option<u64> {
        if req.provider.as_ref().is_some_and(|p| p.order.is_some()) {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        hash_opt(raw.get("model"), &mut h);
        hash_opt(raw.get("models"), &mut h);
        if let Some(k) = req
            .session_id
            .as_ref()
            .or(ctx.session_id.as_ref())
            .or(req.prompt_cache_key.as_ref())
        {
            ("key", k).hash(&mut h);
        } else {
            let sys = req
                .messages
                .iter()
                .find(|m| matches!(m.role, Role::System | Role::Developer));
            let first = req
                .messages
                .iter()
                .find(|m| !matches!(m.role, Role::System | Role::Developer));
            first?;
            for m in [sys, first].into_iter().flatten() {
                hash_opt(m.content.as_ref(), &mut h);
            }
        }
        Some(h.finish())
    }

    /// Plan the request and admit it under the spend and free-tier limits.
    pub(crate) fn admit(
        &self,
        raw: &Value,
        req: &ChatRequest,
        ctx: &RequestContext,
    ) -> Result<Admitted> {
        let inner = &self.inner;
        let n = inner.seq.fetch_add(1, Ordering::Relaxed);
        let seed = splitmix(inner.seed_base ^ n);
        let sticky_key = Self::sticky_key(req, raw, ctx);
        let sticky_tag = sticky_key.and_then(|k| {
            let mut m = inner
                .sticky
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match m.get(&k) {
                Some((tag, at)) if at.elapsed() < inner.opts.sticky_ttl => Some(tag.clone()),
                Some(_) => {
                    m.remove(&k);
                    None
                }
                None => None,
            }
        });
        let health = inner.health.snapshot();
        let pctx = PlanContext {
            seed,
            health: &health,
            credentials: Some(&inner.credentials),
            sticky: sticky_tag.as_deref(),
            ..PlanContext::default()
        };
        let plan = plan::plan(&inner.catalog, req, &pctx)?;
        let free = plan.attempts.iter().any(|a| a.model.ends_with(":free"));
        if free {
            self.check_free(ctx.user.as_deref())?;
        }
        let reserved = self.reserve(&plan, req, ctx.user.as_deref())?;
        let created_ms = now_ms();
        let gen_id = ctx.generation_id.clone().unwrap_or_else(|| {
            format!("gen-{}-{:016x}", created_ms / 1000, splitmix(seed ^ 0x5EED))
        });
        Ok(Admitted {
            plan,
            gen_id,
            created_ms,
            sticky_key,
            reserved,
            free,
        })
    }

    fn check_free(&self, user: Option<&str>) -> Result<()> {
        let lim = &self.inner.opts.limits;
        let mut m = self
            .inner
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(user.unwrap_or("").to_string()).or_default();
        let now = Instant::now();
        while e
            .minute
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            e.minute.pop_front();
        }
        let day = now_ms() / 86_400_000;
        if e.day != day {
            e.day = day;
            e.day_count = 0;
        }
        if e.day_count >= lim.free_per_day {
            let retry = (86_400_000 - now_ms() % 86_400_000) as f64 / 1000.0;
            return Err(Error::RateLimited {
                limit: "free-models-per-day".into(),
                retry_after: Some(retry.ceil()),
            });
        }
        if e.minute.len() >= lim.free_per_minute as usize {
            let retry = e
                .minute
                .front()
                .map_or(60.0, |t| 60.0 - now.duration_since(*t).as_secs_f64());
            return Err(Error::RateLimited {
                limit: "free-models-per-minute".into(),
                retry_after: Some(retry.ceil().max(1.0)),
            });
        }
        e.minute.push_back(now);
        e.day_count += 1;
        Ok(())
    }

    fn reserve(&self, plan: &Plan, req: &ChatRequest, user: Option<&str>) -> Result<Decimal> {
        let lim = &self.inner.opts.limits;
        let user_limit = user.and_then(|u| lim.user_usd.get(u).copied().or(lim.default_user_usd));
        if lim.router_usd.is_none() && user_limit.is_none() {
            return Ok(Decimal::ZERO);
        }
        let w = &plan.worst_case_prices;
        let million = Decimal::from(1_000_000);
        let prompt = Decimal::from(req.estimate_prompt_tokens());
        let out = Decimal::from(req.output_limit().unwrap_or(lim.default_output_estimate));
        let estimate = (w.prompt * prompt + w.completion * out) / million + w.request;
        let mut s = self
            .inner
            .spend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(l) = lim.router_usd {
            let have = s.totals.all + s.pending_all;
            if have + estimate > l {
                return Err(Error::PaymentRequired {
                    message: format!("router spend limit ${l} would be exceeded: spent ${have}, this request may cost up to ${}", estimate.round_dp(6)),
                });
            }
        }
        if let (Some(u), Some(l)) = (user, user_limit) {
            let have = s.totals.by_user.get(u).copied().unwrap_or_default()
                + s.pending_user.get(u).copied().unwrap_or_default();
            if have + estimate > l {
                return Err(Error::PaymentRequired {
                    message: format!("spend limit ${l} of this key would be exceeded: spent ${have}, this request may cost up to ${}", estimate.round_dp(6)),
                });
            }
            *s.pending_user.entry(u.to_string()).or_default() += estimate;
        }
        s.pending_all += estimate;
        Ok(estimate)
    }

    /// Release a reservation and add the billed cost.
    pub(crate) fn settle(&self, reserved: Decimal, user: Option<&str>, billed: Option<Decimal>) {
        let mut s = self
            .inner
            .spend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.pending_all -= reserved;
        if let Some(u) = user {
            if let Some(p) = s.pending_user.get_mut(u) {
                *p -= reserved;
            }
        }
        if let Some(c) = billed {
            s.totals.all += c;
            s.totals.count += 1;
            if let Some(u) = user {
                *s.totals.by_user.entry(u.to_string()).or_default() += c;
            }
        }
    }

    pub(crate) fn remember_sticky(&self, key: Option<u64>, tag: &str) {
        if let Some(k) = key {
            let mut m = self
                .inner
                .sticky
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if m.len() > 100_000 {
                let ttl = self.inner.opts.sticky_ttl;
                m.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            m.insert(k, (tag.to_string(), Instant::now()));
        }
    }

    pub(crate) fn forget_sticky(&self, key: Option<u64>) {
        if let Some(k) = key {
            self.inner
                .sticky
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&k);
        }
    }
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
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn up(base: &str) -> Upstream {
        Upstream {
            base_url: base.trim_end_matches('/').to_string(),
            base: reqwest::Url::parse(base.trim_end_matches('/')).ok(),
            key: None,
            headers: Vec::new(),
            timeouts: Timeouts::default(),
        }
    }

    fn h(v: Option<&Value>) -> u64 {
        let mut s = std::collections::hash_map::DefaultHasher::new();
        hash_opt(v, &mut s);
        s.finish()
    }

    #[test]
    fn sticky_hash_follows_json_equality() {
        let same = [
            (
                json!({"a": 1, "b": [true, null, "x"]}),
                r#"{"a":1,"b":[true,null,"x"]}"#,
            ),
            (json!("hello"), r#""hello""#),
            (json!(-3), "-3"),
            (json!(2.5), "2.5"),
        ];
        for (v, text) in same {
            let parsed: Value = serde_json::from_str(text).expect("json");
            assert_eq!(h(Some(&v)), h(Some(&parsed)), "{text}");
        }
        let distinct = [
            json!(null),
            json!("1"),
            json!(1),
            json!(1.5),
            json!(["1"]),
            json!([["1"]]),
            json!({"1": null}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"b": 1}),
            json!(["a", "b"]),
            json!(["ab"]),
            json!(true),
            json!(false),
        ];
        let mut seen: Vec<u64> = distinct.iter().map(|v| h(Some(v))).collect();
        seen.push(h(None));
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n, "two distinct values hashed alike");
    }

    #[test]
    fn endpoint_urls_match_plain_concatenation() {
        for base in [
            "http://127.0.0.1:8000/v1",
            "http://127.0.0.1:8000/v1/",
            "https://api.example.com",
            "https://generativelanguage.googleapis.com/v1beta",
            "http://[::1]:9/a%20b/v1",
        ] {
            let u = up(base);
            for path in [
                "/chat/completions",
                "/v1/messages",
                "/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            ] {
                let fast = u.endpoint(path).expect("parsed base").to_string();
                let slow = reqwest::Url::parse(&format!("{}{}", u.base_url, path))
                    .expect("valid")
                    .to_string();
                assert_eq!(fast, slow, "{base} + {path}");
            }
        }
        assert!(up("not a url").endpoint("/chat/completions").is_none());
        assert!(up("http://h/v1?x=1").endpoint("/chat").is_none());
    }
}
