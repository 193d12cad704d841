//! [`RouterConfig`]: every engine option as one serde type, read alike by the Rust builder
//! ([`RouterBuilder::config`](crate::RouterBuilder::config)), Python's `Router(**options)`, Node's
//! `new Router({...})` and the gateway's TOML.
//!
//! Unknown fields are refused. Money is a [`Decimal`] read exactly from a number or a decimal string. Durations
//! carry their unit in the field name (`_ms`). Every field also answers to its camelCase spelling
//! (`sameEndpointRetries`, `retryBackoffMs`, `apiKey`), so JavaScript objects deserialize unchanged.
//!
//! ```
//! let c: polyroute::RouterConfig = serde_json::from_value(serde_json::json!({
//!     "providers": {"openai": {"api_key": "sk-test-fake", "timeouts": {"first_token_ms": 5000}}},
//!     "read_env": false,
//!     "same_endpoint_retries": 1,
//!     "retry_backoff_ms": 50,
//!     "sticky_ttl_ms": 60000,
//!     "limits": {"router_usd": "12.50", "user_usd": {"alice": 1}, "free_per_minute": 5},
//! })).unwrap();
//! assert_eq!(c.limits.router_usd, Some(rust_decimal::Decimal::new(1250, 2)));
//! let router = polyroute::Router::from_config(&c).unwrap();
//! assert!(router.credentials().contains("openai"));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Limits, Options, ProviderSettings, Timeouts};
use crate::secret::ApiKey;

/// Every option of a router.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// The catalog: a file path, JSON text, or the catalog object itself (default: the embedded catalog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<Value>,
    /// Merged over the catalog: a file path, JSON text, or the overlay object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Value>,
    /// Settings per provider slug. A slug the catalog does not know is an error naming the closest one.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Read provider keys from their conventional environment variables (default true).
    #[serde(alias = "readEnv", skip_serializing_if = "Option::is_none")]
    pub read_env: Option<bool>,
    /// Router-wide timeouts.
    pub timeouts: TimeoutsConfig,
    /// Extra tries of the same endpoint after an availability failure (default 0).
    #[serde(alias = "sameEndpointRetries", skip_serializing_if = "Option::is_none")]
    pub same_endpoint_retries: Option<u32>,
    /// Base backoff between same-endpoint retries, in milliseconds (default 200).
    #[serde(alias = "retryBackoffMs", skip_serializing_if = "Option::is_none")]
    pub retry_backoff_ms: Option<u64>,
    /// How long a conversation stays on the endpoint that served it, in milliseconds (default 600000).
    #[serde(alias = "stickyTtlMs", skip_serializing_if = "Option::is_none")]
    pub sticky_ttl_ms: Option<u64>,
    /// Spend and free-tier limits.
    pub limits: LimitsConfig,
    /// Keep generations, spend and free-tier counts in this SQLite file (default: in memory).
    #[serde(alias = "ledgerPath", skip_serializing_if = "Option::is_none")]
    pub ledger_path: Option<PathBuf>,
    /// Shared state on Valkey/Redis and PostgreSQL. The engine itself does not connect to them: the
    /// `polyroute-stores` crate opens them (the gateway and both bindings call it) and passes the
    /// [`Stores`](crate::Stores) to the builder.
    pub state: StateConfig,
    /// OpenTelemetry traces (off unless `otlp_endpoint` is set).
    #[serde(skip_serializing_if = "is_default")]
    pub telemetry: crate::otel::TelemetryConfig,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// How to reach one provider.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// Credential; when absent the provider's conventional environment variable is read.
    #[serde(alias = "apiKey", skip_serializing)]
    pub api_key: Option<String>,
    /// Base URL override (a self-hosted OpenAI-compatible server, a test mock).
    #[serde(alias = "baseUrl", skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Extra headers sent with every request to this provider.
    pub headers: BTreeMap<String, String>,
    /// Treat the provider as credentialed without a key (local servers that need none).
    #[serde(alias = "noAuth")]
    pub no_auth: bool,
    /// Timeouts of this provider (unset ones: the router's).
    pub timeouts: TimeoutsConfig,
    /// Cloud region (Amazon Bedrock; a Vertex region goes in `location`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS shared-config profile whose credentials sign Bedrock requests.
    #[serde(alias = "awsProfile", skip_serializing_if = "Option::is_none")]
    pub aws_profile: Option<String>,
    /// Google Cloud project (Vertex AI; without one, an `api_key` selects express mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Google Cloud location (Vertex AI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Google credentials file, a service-account key or `authorized_user` credentials (Vertex AI; default
    /// `$GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's application-default credentials, then the GCE metadata
    /// server).
    #[serde(alias = "credentialsFile", skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// OAuth2 token endpoint override (default: the credentials file's `token_uri`).
    #[serde(alias = "tokenUri", skip_serializing_if = "Option::is_none")]
    pub token_uri: Option<String>,
    /// Azure resource name (Azure OpenAI, Azure AI Foundry); `base_url` wins when both are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Azure deployment of every model not in `deployments` (default: the catalog's model id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Azure deployment per model (catalog model id or the provider's model id → deployment name).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub deployments: BTreeMap<String, String>,
    /// Azure dated `api-version` (`2024-10-21`): selects the dated API; unset: the v1 API.
    #[serde(alias = "apiVersion", skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Azure API: `openai` (default) or `foundry` (Azure AI Foundry models).
    #[serde(alias = "azureApi", skip_serializing_if = "Option::is_none")]
    pub azure_api: Option<String>,
    /// Microsoft Entra ID access token for Azure, sent as a bearer token instead of `api-key`.
    #[serde(alias = "azureAdToken", skip_serializing)]
    pub azure_ad_token: Option<String>,
    /// More keys (a pool), tried in this order after `api_key` when a key is answered 401, 403 or 429, before
    /// the next endpoint.
    #[serde(alias = "apiKeys", skip_serializing)]
    pub api_keys: Vec<String>,
    /// Pool credentials with a weight (any weight makes the order a weighted draw) and a model allowlist; after
    /// `api_keys`.
    #[serde(skip_serializing)]
    pub credentials: Vec<CredentialConfig>,
}

/// One credential of a provider's pool.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialConfig {
    /// The key.
    pub key: String,
    /// Weight in a weighted order (default 1).
    pub weight: Option<u32>,
    /// Models this key may serve (catalog ids such as `openai/gpt-4o`, or the provider's ids); empty: all.
    pub models: Vec<String>,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("key", &"<redacted>")
            .field("weight", &self.weight)
            .field("models", &self.models)
            .finish()
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "azure_ad_token",
                &self.azure_ad_token.as_ref().map(|_| "<redacted>"),
            )
            .field("base_url", &self.base_url)
            .field("no_auth", &self.no_auth)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// Timeouts in milliseconds; unset ones keep their default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// TCP/TLS connect (router-wide: the smallest configured value applies).
    #[serde(alias = "connectMs", skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    /// To the response headers and, when streaming, the first content token.
    #[serde(alias = "firstTokenMs", skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<u64>,
    /// Longest silence between two stream chunks.
    #[serde(alias = "idleMs", skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// Whole request, across all attempts.
    #[serde(alias = "totalMs", skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
}

impl TimeoutsConfig {
    /// `base` with the set fields replaced.
    #[must_use]
    pub fn apply(&self, base: Timeouts) -> Timeouts {
        let ms = Duration::from_millis;
        Timeouts {
            connect: self.connect_ms.map_or(base.connect, ms),
            first_token: self.first_token_ms.map_or(base.first_token, ms),
            idle: self.idle_ms.map_or(base.idle, ms),
            total: self.total_ms.map_or(base.total, ms),
        }
    }

    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Spend (USD, exact decimals) and free-tier limits; unset ones keep their default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most the whole router may spend.
    #[serde(
        alias = "routerUsd",
        with = "usd::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub router_usd: Option<Decimal>,
    /// Per user key limits.
    #[serde(alias = "userUsd", with = "usd::map")]
    pub user_usd: BTreeMap<String, Decimal>,
    /// Limit of user keys not listed in `user_usd`.
    #[serde(
        alias = "defaultUserUsd",
        with = "usd::opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_user_usd: Option<Decimal>,
    /// `:free` model requests per minute (per user key, or router-wide without one; default 20).
    #[serde(alias = "freePerMinute", skip_serializing_if = "Option::is_none")]
    pub free_per_minute: Option<u32>,
    /// `:free` model requests per UTC day (default 50).
    #[serde(alias = "freePerDay", skip_serializing_if = "Option::is_none")]
    pub free_per_day: Option<u32>,
    /// Requests per minute of each user key, every model (sliding 60 s, shared through `state.redis`).
    #[serde(alias = "userRpm", skip_serializing_if = "Option::is_none")]
    pub user_rpm: Option<u64>,
    /// Output tokens assumed for the worst-case estimate when a request sets no `max_tokens` (default 4096).
    #[serde(
        alias = "defaultOutputEstimate",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_output_estimate: Option<u64>,
}

/// Shared state servers (see `polyroute-stores`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Valkey/Redis URL (`redis://`, `rediss://`, or a cluster's `redis+cluster://h:p,h:p`): budgets, rate
    /// windows, sticky routing, health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// PostgreSQL URL (`postgres://`; TLS with `?sslmode=verify-full&sslrootcert=ca.pem`): the ledger (and the
    /// budget when no redis is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<String>,
    /// Prefix of every Redis key (default `polyroute`).
    #[serde(alias = "redisPrefix", skip_serializing_if = "Option::is_none")]
    pub redis_prefix: Option<String>,
    /// When the budget's server fails: `closed` (default: refuse the request) or `open` (admit, uncounted).
    #[serde(alias = "budgetOnError", skip_serializing_if = "Option::is_none")]
    pub budget_on_error: Option<String>,
    /// When the rate limiter's server fails: `open` (default: admit uncounted) or `closed`.
    #[serde(alias = "rateOnError", skip_serializing_if = "Option::is_none")]
    pub rate_on_error: Option<String>,
    /// When the sticky store's server fails: `open` (default: route without stickiness) or `closed`.
    #[serde(alias = "stickyOnError", skip_serializing_if = "Option::is_none")]
    pub sticky_on_error: Option<String>,
    /// When PostgreSQL fails: `spool` (default: append to a local fsynced file, replay later) or `closed`.
    #[serde(alias = "ledgerOnError", skip_serializing_if = "Option::is_none")]
    pub ledger_on_error: Option<String>,
    /// The ledger spool file (default `<data dir>/ledger-spool.jsonl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool: Option<std::path::PathBuf>,
    /// With Redis: apply the budget settles that killed processes noted in the ledger (PostgreSQL, or the
    /// process's own SQLite file) and never confirmed, once their generation is this old (ms, default 60000; swept every half of it, at most every
    /// 30 s). See [`crate::state::sweep_settles`].
    #[serde(alias = "settleSweepAfterMs", skip_serializing_if = "Option::is_none")]
    pub settle_sweep_after_ms: Option<u64>,
}

impl StateConfig {
    /// Whether no server is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.redis.is_none() && self.postgres.is_none()
    }
}

impl std::fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry passwords.
        f.debug_struct("StateConfig")
            .field("redis", &self.redis.as_ref().map(|_| "<set>"))
            .field("postgres", &self.postgres.as_ref().map(|_| "<set>"))
            .field("redis_prefix", &self.redis_prefix)
            .field("budget_on_error", &self.budget_on_error)
            .field("rate_on_error", &self.rate_on_error)
            .field("sticky_on_error", &self.sticky_on_error)
            .field("ledger_on_error", &self.ledger_on_error)
            .field("spool", &self.spool)
            .finish()
    }
}

impl RouterConfig {
    /// Parse a JSON value (an object; `null` = all defaults), naming the offending field on error.
    ///
    /// # Errors
    /// An unknown field, a wrong type, or an amount that is not a decimal.
    pub fn from_value(v: &Value) -> polyroute_core::Result<Self> {
        if v.is_null() {
            return Ok(Self::default());
        }
        Self::deserialize(v).map_err(|e| polyroute_core::Error::invalid("config", e.to_string()))
    }

    /// The router-wide [`Options`].
    #[must_use]
    pub fn options(&self) -> Options {
        let d = Options::default();
        let dl = Limits::default();
        let l = &self.limits;
        Options {
            timeouts: self.timeouts.apply(d.timeouts),
            same_endpoint_retries: self
                .same_endpoint_retries
                .unwrap_or(d.same_endpoint_retries),
            retry_backoff: self
                .retry_backoff_ms
                .map_or(d.retry_backoff, Duration::from_millis),
            sticky_ttl: self
                .sticky_ttl_ms
                .map_or(d.sticky_ttl, Duration::from_millis),
            limits: Limits {
                router_usd: l.router_usd,
                user_usd: l
                    .user_usd
                    .iter()
                    .map(|(k, v)| (k.clone(), *v))
                    .collect::<HashMap<_, _>>(),
                default_user_usd: l.default_user_usd,
                free_per_minute: l.free_per_minute.unwrap_or(dl.free_per_minute),
                free_per_day: l.free_per_day.unwrap_or(dl.free_per_day),
                user_rpm: l.user_rpm,
                default_output_estimate: l
                    .default_output_estimate
                    .unwrap_or(dl.default_output_estimate),
            },
            read_env: self.read_env.unwrap_or(d.read_env),
        }
    }

    /// The [`ProviderSettings`] of each configured provider (timeouts over the router's).
    #[must_use]
    pub fn provider_settings(&self) -> Vec<(String, ProviderSettings)> {
        let base = self.timeouts.apply(Timeouts::default());
        self.providers
            .iter()
            .map(|(slug, p)| {
                // Fields added to `ProviderSettings` later keep their defaults until configured here.
                #[allow(clippy::needless_update)]
                let s = ProviderSettings {
                    api_key: p
                        .api_key
                        .as_deref()
                        .filter(|k| !k.is_empty())
                        .map(ApiKey::new),
                    base_url: p.base_url.clone().filter(|u| !u.is_empty()),
                    headers: p
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    timeouts: (!p.timeouts.is_empty()).then(|| p.timeouts.apply(base)),
                    no_auth: p.no_auth,
                    region: p.region.clone(),
                    aws_profile: p.aws_profile.clone(),
                    project: p.project.clone(),
                    location: p.location.clone(),
                    credentials_file: p.credentials_file.clone(),
                    token_uri: p.token_uri.clone(),
                    azure: crate::config::AzureSettings {
                        resource: p.resource.clone(),
                        deployment: p.deployment.clone(),
                        deployments: p
                            .deployments
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        api_version: p.api_version.clone(),
                        api: p.azure_api.clone(),
                        ad_token: p
                            .azure_ad_token
                            .as_deref()
                            .filter(|k| !k.is_empty())
                            .map(ApiKey::new),
                    },
                    pool: p
                        .api_keys
                        .iter()
                        .map(|k| crate::config::PoolCredential {
                            key: ApiKey::new(k),
                            weight: None,
                            models: Vec::new(),
                        })
                        .chain(p.credentials.iter().map(|c| crate::config::PoolCredential {
                            key: ApiKey::new(&c.key),
                            weight: c.weight,
                            models: c.models.clone(),
                        }))
                        .filter(|c| !c.key.is_empty())
                        .collect(),
                    ..ProviderSettings::default()
                };
                (slug.clone(), s)
            })
            .collect()
    }
}

/// The known name closest to `name` (edit distance at most a third of its length, at least 2), if any.
#[must_use]
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// USD amounts read exactly from numbers or decimal strings.
mod usd {
    use rust_decimal::Decimal;
    use serde::de::{self, Deserializer, Visitor};

    struct Usd;

    fn parse<E: de::Error>(text: &str) -> Result<Decimal, E> {
        let t = text.trim();
        t.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(t))
            .ok()
            .filter(|d| !d.is_sign_negative())
            .ok_or_else(|| E::custom(format!("{text:?} is not an amount of USD")))
    }

    impl Visitor<'_> for Usd {
        type Value = Decimal;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an amount of USD (a number or a decimal string)")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            parse(&v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // The shortest text that reads back as `v`: what the caller wrote (`0.1`, not 0.1000000000000000055…).
            parse(&v.to_string())
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            parse(v)
        }
    }

    struct Amount(Decimal);

    impl<'de> serde::Deserialize<'de> for Amount {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Usd).map(Amount)
        }
    }

    pub mod opt {
        use rust_decimal::Decimal;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            Ok(Option::<super::Amount>::deserialize(d)?.map(|a| a.0))
        }

        #[allow(clippy::ref_option)] // serde's `with` passes a reference to the field
        pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(d) => s.serialize_str(&d.to_string()),
                None => s.serialize_none(),
            }
        }
    }

    pub mod map {
        use std::collections::BTreeMap;

        use rust_decimal::Decimal;
        use serde::ser::SerializeMap;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, Decimal>, D::Error> {
            Ok(BTreeMap::<String, super::Amount>::deserialize(d)?
                .into_iter()
                .map(|(k, a)| (k, a.0))
                .collect())
        }

        pub fn serialize<S: Serializer>(
            v: &BTreeMap<String, Decimal>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(Some(v.len()))?;
            for (k, d) in v {
                m.serialize_entry(k, &d.to_string())?;
            }
            m.end()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_and_camel_spellings_agree() {
        let snake = RouterConfig::from_value(&json!({
            "read_env": false, "same_endpoint_retries": 2, "retry_backoff_ms": 5, "sticky_ttl_ms": 7,
            "timeouts": {"first_token_ms": 1000},
            "providers": {"openai": {"api_key": "k", "base_url": "http://127.0.0.1:1", "no_auth": true}},
            "limits": {"router_usd": 0.1, "user_usd": {"u": "2"}, "default_user_usd": 3, "free_per_minute": 1},
            "ledger_path": "x.sqlite", "state": {"redis_prefix": "p"},
        }))
        .unwrap_or_default();
        let camel = RouterConfig::from_value(&json!({
            "readEnv": false, "sameEndpointRetries": 2, "retryBackoffMs": 5, "stickyTtlMs": 7,
            "timeouts": {"firstTokenMs": 1000},
            "providers": {"openai": {"apiKey": "k", "baseUrl": "http://127.0.0.1:1", "noAuth": true}},
            "limits": {"routerUsd": "0.1", "userUsd": {"u": 2}, "defaultUserUsd": "3", "freePerMinute": 1},
            "ledgerPath": "x.sqlite", "state": {"redisPrefix": "p"},
        }))
        .unwrap_or_default();
        assert_eq!(snake, camel);
        let o = snake.options();
        assert_eq!(o.limits.router_usd, Some(Decimal::new(1, 1)));
        assert_eq!(o.limits.user_usd.get("u"), Some(&Decimal::from(2)));
        assert_eq!(o.retry_backoff, Duration::from_millis(5));
        assert_eq!(o.sticky_ttl, Duration::from_millis(7));
        assert_eq!(o.timeouts.first_token, Duration::from_secs(1));
        assert_eq!(o.timeouts.total, Timeouts::default().total);
        assert!(!o.read_env);
        assert_eq!(o.same_endpoint_retries, 2);
    }

    #[test]
    fn refuses_unknown_fields_and_bad_money() {
        for bad in [
            json!({"retry_backoff": 1}),
            json!({"limits": {"router": 1}}),
            json!({"limits": {"router_usd": "ten"}}),
            json!({"limits": {"router_usd": -1}}),
            json!({"providers": {"openai": {"key": "k"}}}),
            json!({"timeouts": {"connect": 5}}),
        ] {
            let e = RouterConfig::from_value(&bad);
            assert!(e.is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn closest_names_a_near_miss_only() {
        let known = ["openai", "anthropic", "google-vertex"];
        assert_eq!(closest("opneai", known), Some("openai"));
        assert_eq!(closest("antropic", known), Some("anthropic"));
        assert_eq!(closest("mistral", known), None);
    }

    #[test]
    fn azure_keys_reach_the_settings() {
        let snake = RouterConfig::from_value(&json!({"providers": {"azure": {
            "api_key": "k", "resource": "contoso", "deployment": "d", "deployments": {"openai/gpt-4o": "g"},
            "api_version": "2024-10-21", "azure_api": "openai", "azure_ad_token": "ey-fake"}}}))
        .unwrap_or_default();
        let camel = RouterConfig::from_value(&json!({"providers": {"azure": {
            "apiKey": "k", "resource": "contoso", "deployment": "d", "deployments": {"openai/gpt-4o": "g"},
            "apiVersion": "2024-10-21", "azureApi": "openai", "azureAdToken": "ey-fake"}}}))
        .unwrap_or_default();
        assert_eq!(snake, camel);
        let s = &snake.provider_settings()[0].1.azure;
        assert_eq!(s.resource.as_deref(), Some("contoso"));
        assert_eq!(s.deployments, vec![("openai/gpt-4o".into(), "g".into())]);
        assert_eq!(s.api_version.as_deref(), Some("2024-10-21"));
        assert_eq!(s.ad_token.as_ref().map(ApiKey::expose), Some("ey-fake"));
        assert!(!format!("{snake:?}").contains("ey-fake"));
        assert!(!serde_json::to_string(&snake)
            .unwrap_or_default()
            .contains("ey-fake"));
        assert!(
            RouterConfig::from_value(&json!({"providers": {"azure": {"deploymnet": "d"}}}))
                .is_err()
        );
    }

    #[test]
    fn pools_read_keys_and_credentials_without_showing_them() {
        let c = RouterConfig::from_value(&json!({"providers": {"openai": {
            "api_keys": ["sk-pool-a", ""],
            "credentials": [{"key": "sk-pool-b", "weight": 3, "models": ["openai/gpt-4o"]}]}}}))
        .unwrap_or_default();
        let pool = &c.provider_settings()[0].1.pool;
        assert_eq!(pool.len(), 2);
        assert_eq!(pool[1].key.expose(), "sk-pool-b");
        assert_eq!((pool[1].weight, pool[1].models.len()), (Some(3), 1));
        for shown in [
            format!("{c:?}"),
            serde_json::to_string(&c).unwrap_or_default(),
        ] {
            assert!(!shown.contains("sk-pool"), "{shown}");
        }
        assert!(RouterConfig::from_value(&json!({"providers": {"openai": {
            "credentials": [{"key": "k", "wieght": 1}]}}}))
        .is_err());
    }

    #[test]
    fn debug_never_shows_a_key() {
        let c = RouterConfig::from_value(&json!({"providers": {"x": {"api_key": "sk-test-fake"}}}))
            .unwrap_or_default();
        assert!(!format!("{c:?}").contains("sk-test-fake"));
        assert!(!serde_json::to_string(&c)
            .unwrap_or_default()
            .contains("sk-test-fake"));
    }
}
