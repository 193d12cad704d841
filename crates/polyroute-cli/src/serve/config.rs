//! The gateway configuration file (TOML) and the data directory.
//!
//! ```toml
//! catalog = "catalog.json"          # default: the embedded catalog
//! overlay = "my-endpoints.json"     # merged over the catalog
//! env_keys = true                   # read provider keys from OPENAI_API_KEY, … (default true)
//! ledger = "sqlite"                 # or "memory" (the newest 10,000 records, nothing kept across restarts)
//!
//! [server]
//! host = "127.0.0.1"
//! port = 8080
//! data_dir = "/var/lib/polyroute"   # default: $POLYROUTE_DATA_DIR, $XDG_DATA_HOME/polyroute, ~/.local/share/polyroute
//! body_limit = 4194304              # bytes; larger bodies get 413
//! keepalive_ms = 1000               # `: OPENROUTER PROCESSING` interval while waiting for the first token
//!
//! [providers.openai]
//! api_key = "sk-…"
//! base_url = "http://127.0.0.1:9000/v1"
//! headers = { "x-extra" = "1" }
//!
//! [limits]
//! free_per_minute = 20
//! free_per_day = 50
//! router_usd = 100.0
//!
//! [timeouts]                        # milliseconds
//! first_token = 60000
//!
//! [state]                           # shared by several replicas (see `serve::state`); default: none
//! redis = "redis://127.0.0.1:6379/"
//! postgres = "postgres://polyroute@127.0.0.1/polyroute"
//! ```
//!
//! Relative paths are resolved against the directory of the configuration file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use polyroute::{Limits, Options, ProviderSettings, Router, Timeouts};
use rust_decimal::Decimal;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Catalog file (default: embedded).
    pub catalog: Option<PathBuf>,
    /// Overlay file merged over the catalog.
    pub overlay: Option<PathBuf>,
    /// Read provider keys from their environment variables.
    pub env_keys: Option<bool>,
    /// `sqlite` (default: `<data dir>/ledger.sqlite`, durable) or `memory` (the newest 10,000 records, lost on
    /// exit; benchmarks).
    pub ledger: Option<String>,
    /// Listener and limits of the HTTP server.
    #[serde(default)]
    pub server: ServerSection,
    /// Per provider: key, base URL, headers.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSection>,
    /// Spend and free-tier limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Router timeouts in milliseconds.
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// Shared state on Valkey/Redis and PostgreSQL (see [`super::state`]).
    #[serde(default)]
    pub state: super::state::StateSection,
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Bind address (default 127.0.0.1).
    pub host: Option<String>,
    /// Port (0 = any free port).
    pub port: Option<u16>,
    /// Data directory (keys and ledger).
    pub data_dir: Option<PathBuf>,
    /// Request body limit in bytes (default 4 MiB).
    pub body_limit: Option<usize>,
    /// Keep-alive comment interval while a stream waits for its first token (ms).
    pub keepalive_ms: Option<u64>,
    /// Worker threads (default: one per CPU). Each runs its own single-threaded runtime and owns its
    /// connections, upstream ones included, from accept to close.
    pub workers: Option<usize>,
    /// Busy-poll window after request activity in microseconds (default 0: off). Lower latency on machines
    /// where waking an idle CPU is slow, for up to this much CPU after every burst of requests.
    pub spin_us: Option<u64>,
}

/// `[providers.<slug>]`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Provider key.
    pub api_key: Option<String>,
    /// Base URL override.
    pub base_url: Option<String>,
    /// Extra headers sent to the provider.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentialed without a key (local servers).
    #[serde(default)]
    pub no_auth: bool,
    /// Cloud region (Amazon Bedrock).
    pub region: Option<String>,
    /// AWS shared-config profile to sign Bedrock requests with.
    pub aws_profile: Option<String>,
    /// Google Cloud project (Vertex AI).
    pub project: Option<String>,
    /// Google Cloud location (Vertex AI).
    pub location: Option<String>,
    /// Google service-account key file (Vertex AI).
    pub credentials_file: Option<String>,
}

impl std::fmt::Debug for ProviderSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSection")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("no_auth", &self.no_auth)
            .finish_non_exhaustive()
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// `:free` requests per minute per key.
    pub free_per_minute: Option<u32>,
    /// `:free` requests per UTC day per key.
    pub free_per_day: Option<u32>,
    /// Most the whole gateway may spend (USD; a number or a decimal string, read exactly).
    #[serde(default, with = "super::money")]
    pub router_usd: Option<Decimal>,
}

/// `[timeouts]` (milliseconds).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    /// Connect.
    pub connect: Option<u64>,
    /// To the first token.
    pub first_token: Option<u64>,
    /// Between chunks.
    pub idle: Option<u64>,
    /// Whole request.
    pub total: Option<u64>,
}

impl Config {
    /// Read a file (relative paths inside are resolved against its directory).
    ///
    /// # Errors
    /// Unreadable file or invalid TOML.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut c: Self =
            toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(x) = p.as_mut() {
                if x.is_relative() {
                    *x = dir.join(&*x);
                }
            }
        };
        fix(&mut c.catalog);
        fix(&mut c.overlay);
        fix(&mut c.server.data_dir);
        Ok(c)
    }

    /// Build the engine with this configuration: the ledger in `data_dir`, or `stores` (from `[state]`).
    ///
    /// # Errors
    /// A bad catalog, overlay or ledger file.
    pub fn router(
        &self,
        data_dir: &Path,
        health: std::sync::Arc<dyn polyroute::HealthStore>,
        stores: Option<polyroute::Stores>,
    ) -> Result<Router> {
        let mut timeouts = Timeouts::default();
        let t = &self.timeouts;
        let ms = Duration::from_millis;
        if let Some(v) = t.connect {
            timeouts.connect = ms(v);
        }
        if let Some(v) = t.first_token {
            timeouts.first_token = ms(v);
        }
        if let Some(v) = t.idle {
            timeouts.idle = ms(v);
        }
        if let Some(v) = t.total {
            timeouts.total = ms(v);
        }
        let mut limits = Limits::default();
        if let Some(v) = self.limits.free_per_minute {
            limits.free_per_minute = v;
        }
        if let Some(v) = self.limits.free_per_day {
            limits.free_per_day = v;
        }
        limits.router_usd = self.limits.router_usd;
        let opts = Options {
            timeouts,
            limits,
            read_env: self.env_keys.unwrap_or(true),
            ..Options::default()
        };
        let mut b = Router::builder().options(opts).health_store(health);
        match (stores, self.ledger.as_deref()) {
            (Some(s), _) => b = b.stores(s),
            (None, None | Some("sqlite")) => b = b.ledger_path(data_dir.join("ledger.sqlite")),
            (None, Some("memory")) => {}
            (None, Some(other)) => {
                anyhow::bail!("ledger must be \"sqlite\" or \"memory\", not {other:?}")
            }
        }
        if let Some(p) = &self.catalog {
            b = b.catalog_file(p);
        }
        if let Some(p) = &self.overlay {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read overlay {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("overlay {} is not JSON", p.display()))?;
            b = b.overlay(v);
        }
        for (slug, p) in &self.providers {
            let mut s = ProviderSettings::default();
            if let Some(k) = p.api_key.as_ref().filter(|k| !k.is_empty()) {
                s = ProviderSettings::with_key(k.clone());
            }
            if let Some(u) = &p.base_url {
                s = s.base_url(u.clone());
            }
            for (k, v) in &p.headers {
                s = s.header(k.clone(), v.clone());
            }
            s.no_auth = p.no_auth;
            s.region.clone_from(&p.region);
            s.aws_profile.clone_from(&p.aws_profile);
            s.project.clone_from(&p.project);
            s.location.clone_from(&p.location);
            s.credentials_file.clone_from(&p.credentials_file);
            b = b.provider(slug.clone(), s);
        }
        b.build()
            .map_err(|e| anyhow::anyhow!("cannot build router: {e}"))
    }
}

/// The data directory: `explicit`, else `$POLYROUTE_DATA_DIR`, `$XDG_DATA_HOME/polyroute`,
/// `~/.local/share/polyroute`.
#[must_use]
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = env("POLYROUTE_DATA_DIR") {
        return p;
    }
    if let Some(p) = env("XDG_DATA_HOME") {
        return p.join("polyroute");
    }
    env("HOME")
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".local/share/polyroute")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let c: Config = toml::from_str(
            r#"
catalog = "c.json"
env_keys = false
[server]
port = 0
body_limit = 1024
[providers.openai]
api_key = "sk-test-fake"
base_url = "http://127.0.0.1:1/v1"
headers = { "x-a" = "b" }
[limits]
free_per_minute = 2
"#,
        )
        .unwrap_or_default();
        assert_eq!(c.server.body_limit, Some(1024));
        assert_eq!(c.limits.free_per_minute, Some(2));
        assert!(format!("{:?}", c.providers).contains("redacted"));
        assert!(!format!("{:?}", c.providers).contains("sk-test-fake"));
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
    }
}
