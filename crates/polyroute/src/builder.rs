//! [`RouterBuilder`]: catalog, provider settings (keys from settings or the environment), options and stores.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use polyroute_core::{Catalog, Error, Result};
use serde_json::Value;

use crate::attempt::prepare::Upstream;
use crate::config::{Options, ProviderSettings};
use crate::health::HealthStore;
use crate::router::{http_client, Inner, Router};
use crate::router_config::{closest, RouterConfig};
use crate::secret::ApiKey;
use crate::state::memory::{MemoryBudget, MemoryLedger, MemoryRate, MemorySticky};
use crate::state::{Ledger, MemoryHealth, Stores};

/// Builds a [`Router`].
#[derive(Default)]
pub struct RouterBuilder {
    catalog: Option<Catalog>,
    catalog_json: Option<String>,
    catalog_file: Option<PathBuf>,
    overlay: Option<Value>,
    providers: HashMap<String, ProviderSettings>,
    opts: Options,
    stores: Option<Stores>,
    ledger: Option<Arc<dyn Ledger>>,
    ledger_path: Option<PathBuf>,
    health: Option<Arc<dyn HealthStore>>,
    config_catalog: Option<Value>,
    config_overlay: Option<Value>,
    needs_state: bool,
    hooks: Option<Arc<dyn crate::hooks::Hooks>>,
    telemetry: Option<crate::otel::TelemetryConfig>,
}

/// A catalog or overlay given as a file path, JSON text, or the object itself.
fn json_source(v: &Value, what: &str) -> Result<String> {
    match v {
        Value::String(s) if s.trim_start().starts_with('{') => Ok(s.clone()),
        Value::String(p) => std::fs::read_to_string(p).map_err(|e| Error::Internal {
            message: format!("cannot read {what} {p}: {e}"),
        }),
        Value::Object(_) => Ok(v.to_string()),
        _ => Err(Error::invalid(
            what,
            "expected a file path, JSON text or an object",
        )),
    }
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

    /// Keep all state in these stores (ledger, budget, rate windows, sticky routing, health). [`Self::ledger`]
    /// and [`Self::health_store`] still replace their part.
    #[must_use]
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Keep generations in this ledger (spend limits then count from its totals at start, in memory).
    #[must_use]
    pub fn ledger(mut self, ledger: Arc<dyn Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Keep generations, spend and free-tier counts in an SQLite file ([`Stores::sqlite`]; default:
    /// [`Stores::memory`], with a [`MemoryLedger`] of the newest
    /// [`MEMORY_LEDGER_CAPACITY`](crate::MEMORY_LEDGER_CAPACITY) records).
    #[must_use]
    pub fn ledger_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.ledger_path = Some(path.into());
        self
    }

    /// Apply a whole [`RouterConfig`]: providers, options, ledger file, and its catalog and overlay unless
    /// [`Self::catalog`] (or its siblings) and [`Self::overlay`] set them. Its `state` servers are opened by
    /// `polyroute-stores`, whose [`Stores`] go to [`Self::stores`]; building with `state` set and no stores is an
    /// error rather than a silent fallback to memory.
    #[must_use]
    pub fn config(mut self, c: &RouterConfig) -> Self {
        self.opts = c.options();
        for (slug, s) in c.provider_settings() {
            self.providers.insert(slug, s);
        }
        if let Some(p) = &c.ledger_path {
            self.ledger_path = Some(p.clone());
        }
        self.config_catalog.clone_from(&c.catalog);
        if self.overlay.is_none() {
            self.config_overlay.clone_from(&c.overlay);
        }
        self.needs_state = !c.state.is_empty();
        self.telemetry = Some(c.telemetry.clone());
        self
    }

    /// Export OpenTelemetry traces as configured ([`crate::otel`]; default: none).
    #[must_use]
    pub fn telemetry(mut self, t: crate::otel::TelemetryConfig) -> Self {
        self.telemetry = Some(t);
        self
    }

    /// Call these hooks for every attempt and every generation, on a thread of their own ([`crate::hooks`]).
    #[must_use]
    pub fn hooks(mut self, hooks: Arc<dyn crate::hooks::Hooks>) -> Self {
        self.hooks = Some(hooks);
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
            (None, None, None) => match &self.config_catalog {
                Some(v) => Catalog::from_json(&json_source(v, "catalog")?)?,
                None => Catalog::embedded()?,
            },
        };
        if let Some(o) = &self.overlay {
            catalog = catalog.overlay(o)?;
        } else if let Some(o) = &self.config_overlay {
            let text = json_source(o, "overlay")?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| Error::invalid("overlay", e.to_string()))?;
            catalog = catalog.overlay(&v)?;
        }
        if self.needs_state && self.stores.is_none() {
            return Err(Error::invalid(
                "state",
                "redis/postgres state is opened by polyroute-stores (`polyroute_stores::open`), not by the engine",
            ));
        }
        for slug in self.providers.keys() {
            if catalog.providers().iter().all(|p| &p.slug != slug) {
                let hint = closest(slug, catalog.providers().iter().map(|p| p.slug.as_str()))
                    .map(|c| format!(" (did you mean {c:?}?)"))
                    .unwrap_or_default();
                return Err(Error::invalid(
                    "providers",
                    format!("unknown provider {slug:?}{hint}"),
                ));
            }
        }
        let opts = self.opts;
        let aws_env = crate::auth::sigv4::AwsEnv::from_process(opts.read_env);
        let gcp_env = crate::auth::GcpEnv::from_process(opts.read_env);
        let mut upstreams = rustc_hash::FxHashMap::default();
        let mut credentials = BTreeSet::new();
        let mut unconfigured = std::collections::BTreeMap::new();
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
            // A pool: the key above first, then the pool's credentials.
            let pool = if s.pool.is_empty() {
                None
            } else {
                let first = key.clone().map(|k| crate::config::PoolCredential {
                    key: k,
                    weight: None,
                    models: Vec::new(),
                });
                let all: Vec<_> = first.into_iter().chain(s.pool.iter().cloned()).collect();
                crate::pool::CredentialPool::new(&all).map(Arc::new)
            };
            let key = key.or_else(|| pool.as_ref().and_then(|p| p.key(0).cloned()));
            let aws = crate::auth::aws_signer(p, &s, &aws_env);
            let gcp = if key.is_some() {
                None
            } else {
                crate::auth::gcp_source(p, &s, &gcp_env)?
            };
            let (azure, azure_base, missing) = crate::auth::azure::resolve(p, &s)?;
            let entra = azure.as_ref().is_some_and(|a| a.ad_token.is_some());
            if key.is_some() || s.no_auth || aws.is_some() || gcp.is_some() || entra {
                credentials.insert(p.slug.clone());
            }
            if let Some(m) = missing {
                unconfigured.insert(p.slug.clone(), m);
            }
            let base_url = s
                .base_url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .or(azure_base)
                .unwrap_or_else(|| crate::auth::default_base_url(p, &s))
                .trim_end_matches('/')
                .to_string();
            let express = crate::auth::vertex_express(p, &s, key.is_some(), &base_url);
            let base_url =
                crate::auth::vertex_base(p, &s, gcp.as_deref(), &gcp_env, express, base_url);
            if gcp.is_some() && base_url.contains("PROJECT-ID") {
                unconfigured.insert(
                    p.slug.clone(),
                    "the Google Cloud project is not known: set `project` (or GOOGLE_CLOUD_PROJECT), or use an \
                     API key without a project (express mode)"
                        .to_string(),
                );
            }
            upstreams.insert(
                p.slug.clone(),
                Upstream {
                    base: reqwest::Url::parse(&base_url).ok(),
                    base_url,
                    key,
                    headers: s.headers.clone(),
                    timeouts: s.timeouts.unwrap_or(opts.timeouts),
                    aws,
                    gcp,
                    express,
                    azure: azure.map(std::sync::Arc::new),
                    pool,
                    endpoints: Default::default(),
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
        let mut stores = match (self.stores, self.ledger_path) {
            (Some(s), _) => s,
            (None, Some(p)) => Stores::sqlite(Path::new(&p))?,
            (None, None) => {
                let ledger: Arc<dyn Ledger> = match &self.ledger {
                    Some(l) => l.clone(),
                    None => Arc::new(MemoryLedger::default()),
                };
                // A process-local budget starts from the ledger's totals.
                let totals = futures::executor::block_on(ledger.totals())?;
                Stores {
                    ledger,
                    budget: Arc::new(MemoryBudget::seeded(&totals)),
                    rate: Arc::new(MemoryRate::default()),
                    sticky: Arc::new(MemorySticky::default()),
                    health: Arc::new(MemoryHealth::default()),
                }
            }
        };
        if let Some(l) = self.ledger {
            stores.ledger = l;
        }
        if let Some(h) = self.health {
            stores.health = h;
        }
        let seed_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        let telemetry = match &self.telemetry {
            Some(t) => crate::otel::Telemetry::start(t)?,
            None => None,
        };
        let hooks = match self.hooks {
            Some(h) => Some(
                crate::hooks::HookQueue::start(h).map_err(|e| Error::Internal {
                    message: format!("cannot start the hook thread: {e}"),
                })?,
            ),
            None => None,
        };
        Ok(Router {
            http,
            inner: Arc::new(Inner {
                credential_marks: polyroute_core::select::filters::CredentialMarks::new(
                    &catalog,
                    credentials.clone(),
                ),
                catalog,
                connect_timeout,
                upstreams,
                credentials,
                unconfigured,
                opts,
                stores,
                seq: AtomicU64::new(0),
                seed_base,
                metrics: crate::metrics::Metrics::default(),
                hooks,
                telemetry,
                settles: Arc::default(),
            }),
        })
    }
}
