//! The gateway configuration file (TOML) and the data directory.
//!
//! Every key outside `[server]` and `ledger` is the engine's [`RouterConfig`] (the type the Rust builder, Python's
//! `Router(**options)` and Node's `new Router({...})` read), written either at the top level or under `[router]`:
//!
//! ```toml
//! catalog = "catalog.json"          # default: the embedded catalog
//! overlay = "my-endpoints.json"     # merged over the catalog
//! read_env = true                   # read provider keys from OPENAI_API_KEY, … (default true; `env_keys` also)
//! ledger = "sqlite"                 # or "memory" (the newest 10,000 records, nothing kept across restarts)
//! same_endpoint_retries = 1
//! retry_backoff_ms = 200
//! sticky_ttl_ms = 600000
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
//! timeouts = { first_token_ms = 30000 }
//!
//! [limits]
//! free_per_minute = 20
//! free_per_day = 50
//! router_usd = 100.0                # a number or a decimal string, read exactly
//! user_usd = { alice = "5.00" }
//!
//! [timeouts]
//! first_token_ms = 60000            # the older bare names (`first_token = 60000`) are milliseconds too
//!
//! [state]                           # shared by several replicas (see `serve::state`); default: none
//! redis = "redis://127.0.0.1:6379/"
//! postgres = "postgres://polyroute@127.0.0.1/polyroute"
//! ```
//!
//! Relative paths (catalog, overlay, ledger_path, data_dir) are resolved against the directory of the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polyroute::{Router, RouterConfig};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `sqlite` (default: `<data dir>/ledger.sqlite`, durable) or `memory` (the newest 10,000 records, lost on
    /// exit; benchmarks). A `ledger_path` in the router options takes precedence.
    pub ledger: Option<String>,
    /// Listener and limits of the HTTP server.
    pub server: ServerSection,
    /// The engine's options.
    pub router: RouterConfig,
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
    /// Ignored (with a warning): busy polling was removed, as it did not pay for its CPU; accepted so that
    /// existing configuration files still load.
    pub spin_us: Option<u64>,
    /// Time to receive a request head, and the longest a keep-alive connection may sit idle (ms, default 10000).
    pub header_timeout_ms: Option<u64>,
    /// Time to receive a request body once its head arrived (ms, default 30000).
    pub body_timeout_ms: Option<u64>,
    /// Open client connections at most (default 4096, lowered to fit the open-file limit); further ones get a 503.
    pub max_connections: Option<usize>,
    /// Serve `GET /metrics` without a key (default false: a management key is required).
    pub metrics_public: Option<bool>,
    /// On stop, how long to wait for the budget settles still pending once the last answer is sent (ms, default
    /// 10000): with a Redis or PostgreSQL budget, a generation's cost reaches the shared spend just after its
    /// answer, and a settle that met an unreachable store is retried until it answers.
    pub settle_wait_ms: Option<u64>,
}

/// The older spellings of the file, kept working: `env_keys` for `read_env`, bare millisecond names in
/// `[timeouts]`.
fn legacy(t: &mut toml::Table) -> Result<()> {
    if let Some(v) = t.remove("env_keys") {
        anyhow::ensure!(
            !t.contains_key("read_env"),
            "set read_env or env_keys, not both"
        );
        t.insert("read_env".into(), v);
    }
    if let Some(toml::Value::Table(tt)) = t.get_mut("timeouts") {
        for bare in ["connect", "first_token", "idle", "total"] {
            if let Some(v) = tt.remove(bare) {
                let unit = format!("{bare}_ms");
                anyhow::ensure!(
                    !tt.contains_key(&unit),
                    "timeouts: set {unit} or {bare}, not both"
                );
                tt.insert(unit, v);
            }
        }
    }
    Ok(())
}

impl Config {
    /// Parse TOML text (relative paths stay as written).
    ///
    /// # Errors
    /// Invalid TOML, an unknown key (named), or a value of the wrong type.
    pub fn parse(text: &str) -> Result<Self> {
        let mut top: toml::Table = toml::from_str(text)?;
        let server: ServerSection = match top.remove("server") {
            Some(v) => v.try_into().context("[server]")?,
            None => ServerSection::default(),
        };
        let ledger = match top.remove("ledger") {
            Some(toml::Value::String(s)) => Some(s),
            Some(other) => anyhow::bail!("ledger must be \"sqlite\" or \"memory\", not {other}"),
            None => None,
        };
        let mut router = match top.remove("router") {
            Some(toml::Value::Table(t)) => t,
            Some(_) => anyhow::bail!("[router] must be a table"),
            None => toml::Table::new(),
        };
        legacy(&mut top)?;
        legacy(&mut router)?;
        for (k, v) in top {
            anyhow::ensure!(
                !router.contains_key(&k),
                "{k} is set both at the top level and in [router]"
            );
            router.insert(k, v);
        }
        let router: RouterConfig = toml::Value::Table(router).try_into()?;
        Ok(Self {
            ledger,
            server,
            router,
        })
    }

    /// Read a file (relative paths inside are resolved against its directory).
    ///
    /// # Errors
    /// Unreadable file or invalid configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut c =
            Self::parse(&text).with_context(|| format!("invalid config {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &Path| {
            if p.is_relative() {
                dir.join(p)
            } else {
                p.to_path_buf()
            }
        };
        for v in [&mut c.router.catalog, &mut c.router.overlay]
            .into_iter()
            .flatten()
        {
            if let serde_json::Value::String(s) = v {
                if !s.trim_start().starts_with('{') {
                    *s = rel(Path::new(s.as_str())).to_string_lossy().into_owned();
                }
            }
        }
        c.router.ledger_path = c.router.ledger_path.as_deref().map(rel);
        c.server.data_dir = c.server.data_dir.as_deref().map(rel);
        Ok(c)
    }

    /// The data directory: `explicit`, else this file's `[server] data_dir`, else the default ([`data_dir`]).
    #[must_use]
    pub fn data_dir(&self, explicit: Option<&Path>) -> PathBuf {
        data_dir(explicit.or(self.server.data_dir.as_deref()))
    }

    /// Build the engine with this configuration: the ledger in `data_dir`, or `stores` (from `[state]`).
    ///
    /// # Errors
    /// A bad catalog, overlay or ledger file, or an unknown provider.
    pub fn router(
        &self,
        data_dir: &Path,
        health: std::sync::Arc<dyn polyroute::HealthStore>,
        stores: Option<polyroute::Stores>,
    ) -> Result<Router> {
        let mut b = Router::builder().config(&self.router).health_store(health);
        match (stores, self.ledger.as_deref()) {
            (Some(s), _) => b = b.stores(s),
            (None, _) if self.router.ledger_path.is_some() => {}
            (None, None | Some("sqlite")) => b = b.ledger_path(data_dir.join("ledger.sqlite")),
            (None, Some("memory")) => {}
            (None, Some(other)) => {
                anyhow::bail!("ledger must be \"sqlite\" or \"memory\", not {other:?}")
            }
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
    use rust_decimal::Decimal;
    use std::time::Duration;

    #[test]
    fn parses_a_full_file() {
        let c = Config::parse(
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
        assert_eq!(c.router.limits.free_per_minute, Some(2));
        assert_eq!(c.router.read_env, Some(false));
        assert!(format!("{:?}", c.router.providers).contains("redacted"));
        assert!(!format!("{:?}", c.router.providers).contains("sk-test-fake"));
        assert!(Config::parse("bogus = 1").is_err());
        assert!(Config::parse("[limits]\nrouter = 1").is_err());
    }

    #[test]
    fn every_engine_option_is_reachable_and_both_spellings_agree() {
        let top = Config::parse(
            r#"
same_endpoint_retries = 2
retry_backoff_ms = 50
sticky_ttl_ms = 9000
ledger_path = "/tmp/x.sqlite"
[timeouts]
first_token = 1500
[limits]
router_usd = "0.10"
user_usd = { alice = 1.5 }
default_user_usd = 3
free_per_day = 7
default_output_estimate = 100
[providers.openai]
timeouts = { idle_ms = 700 }
[state]
redis_prefix = "p"
"#,
        )
        .unwrap_or_default();
        let nested = Config::parse(
            r#"
[router]
same_endpoint_retries = 2
retry_backoff_ms = 50
sticky_ttl_ms = 9000
ledger_path = "/tmp/x.sqlite"
timeouts = { first_token_ms = 1500 }
limits = { router_usd = 0.1, user_usd = { alice = "1.5" }, default_user_usd = "3", free_per_day = 7, default_output_estimate = 100 }
providers.openai.timeouts = { idle_ms = 700 }
state = { redis_prefix = "p" }
"#,
        )
        .unwrap_or_default();
        assert_eq!(top.router, nested.router);
        let o = top.router.options();
        assert_eq!(o.same_endpoint_retries, 2);
        assert_eq!(o.retry_backoff, Duration::from_millis(50));
        assert_eq!(o.sticky_ttl, Duration::from_millis(9000));
        assert_eq!(o.timeouts.first_token, Duration::from_millis(1500));
        assert_eq!(o.limits.router_usd, Some(Decimal::new(10, 2)));
        assert_eq!(o.limits.user_usd.get("alice"), Some(&Decimal::new(15, 1)));
        assert_eq!(o.limits.default_user_usd, Some(Decimal::from(3)));
        assert_eq!(o.limits.free_per_day, 7);
        assert_eq!(o.limits.default_output_estimate, 100);
        let p = top.router.provider_settings();
        assert_eq!(
            p[0].1.timeouts.map(|t| t.idle),
            Some(Duration::from_millis(700))
        );
        assert_eq!(top.router.state.redis_prefix.as_deref(), Some("p"));
        assert!(
            Config::parse("same_endpoint_retries = 1\n[router]\nsame_endpoint_retries = 2")
                .is_err()
        );
    }

    #[test]
    fn an_unknown_provider_names_the_close_match() {
        let c = Config::parse("read_env = false\n[providers.opneai]\napi_key = \"sk-test-fake\"")
            .unwrap_or_default();
        let dir = std::env::temp_dir();
        let e = c
            .router(
                &dir,
                std::sync::Arc::new(polyroute::MemoryHealth::default()),
                Some(polyroute::Stores::memory()),
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("opneai") && e.contains("\"openai\""), "{e}");
    }
}
