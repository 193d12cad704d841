//! # polyroute-redis
//!
//! polyroute's shared state on Valkey or Redis, for a fleet of routers (web workers, pods, `polyroute serve`
//! replicas) that must enforce one budget, one set of rate limits, one sticky map and one view of endpoint health.
//!
//! | store | trait | on the request path |
//! |---|---|---|
//! | [`RedisBudget`] | [`Budget`](polyroute::state::Budget) | one Lua script to hold, one to settle |
//! | [`RedisRate`] | [`RateLimiter`](polyroute::state::RateLimiter) | one Lua script per admission |
//! | [`RedisSticky`] | [`StickyStore`](polyroute::state::StickyStore) | one `GET`; `SET … PX` after billing |
//! | [`RedisHealth`] | [`HealthStore`](polyroute::state::HealthStore) | none: observations are queued, the snapshot is refreshed in the background |
//!
//! ```no_run
//! # async fn demo() -> polyroute::Result<()> {
//! let redis = polyroute_redis::RedisState::connect("redis://127.0.0.1:6379/").await?;
//! let budget = redis.budget(); // share it: Arc::new(budget) into polyroute::state::Stores
//! let rate = redis.rate();
//! let sticky = redis.sticky();
//! let health = redis.health(polyroute_redis::HealthOptions::default());
//! # let _ = (budget, rate, sticky, health); Ok(()) }
//! ```
//!
//! URLs: `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS, the server verified with the system's roots or
//! [`RedisOptions::tls_root_cert`]; tested against a TLS redis-server), `redis+unix:///path`, and Redis Cluster:
//! `redis+cluster://[user:password@]host:port,host:port,...` (`rediss+cluster://` with TLS; the hosts are seed
//! nodes; tested against a 3-master cluster, with and without TLS).
//! One multiplexed connection per [`RedisState`] (a `redis` connection manager: it reconnects after a failure;
//! the call that met the failure gets an error naming the server, never its password); on a cluster, the `redis`
//! crate's async cluster connection (one connection per node, `MOVED`/`ASK` followed, the slot map refreshed).
//!
//! All keys start with a prefix (default `polyroute`) inside a hash tag, so one Valkey/Redis can serve several
//! fleets and every multi-key script and pipeline touches one cluster slot: `{prefix}:…` for the budget (a hold
//! spans its router, user and key scopes), sticky, cache and health keys; `{prefix:r:<key>}:…` for each rate
//! window's two keys. On a cluster, a fleet's budget, sticky, cache and health keys therefore live on one master
//! (a cluster spreads the rate windows, and several fleets by prefix; it is for availability more than size).
//!
//! Money in Redis is an integer count of pico-dollars (10⁻¹² USD, `HINCRBY`, exact up to 9.2 million USD per
//! scope): a hold is rounded up to the next pico-dollar, a billed cost to the nearest, a limit down. The limit
//! comparison inside the script uses Lua numbers (doubles): exact while `spent + held + amount` stays below
//! 2⁵³ pico-dollars (9,007 USD), and within a few pico-dollars beyond.

mod budget;
mod cache;
mod conn;
mod health;
mod rate;
mod sticky;

use std::sync::Arc;
use std::time::Duration;

use polyroute::Error;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::IntoConnectionInfo;

pub use budget::RedisBudget;
pub use cache::RedisCache;
pub use health::{HealthOptions, RedisHealth};
pub use rate::RedisRate;
pub use sticky::RedisSticky;

/// How to reach Valkey/Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Every key starts with `{prefix}:` (default `polyroute`).
    pub prefix: String,
    /// Give up on a connection attempt after this long (default 2 s).
    pub connect_timeout: Duration,
    /// Give up on one command after this long (default 2 s): the call fails, the request's policy decides.
    pub response_timeout: Duration,
    /// For `rediss://` URLs: the root certificate(s) to verify the server with, PEM (default None: the
    /// system's trust store). The server is always verified (`#insecure` URLs are refused).
    pub tls_root_cert: Option<Vec<u8>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: "polyroute".to_string(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            tls_root_cert: None,
        }
    }
}

/// A connection to one Valkey/Redis server, from which the stores are made (they share it; clone freely).
#[derive(Clone)]
pub struct RedisState {
    pub(crate) conn: conn::Conn,
    pub(crate) prefix: Arc<str>,
    pub(crate) server: Arc<str>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("server", &self.server)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Connect with default options.
    ///
    /// # Errors
    /// A malformed URL, or the server cannot be reached (the error names it).
    pub async fn connect(url: &str) -> polyroute::Result<Self> {
        Self::connect_with(url, RedisOptions::default()).await
    }

    /// Connect with `opts`.
    ///
    /// # Errors
    /// As [`RedisState::connect`].
    pub async fn connect_with(url: &str, opts: RedisOptions) -> polyroute::Result<Self> {
        let bad_url = |e: redis::RedisError| Error::Internal {
            message: format!("redis url {}: {e}", redact(url)),
        };
        if let Some(nodes) = conn::cluster_nodes(url) {
            let nodes = nodes.map_err(|m| Error::Internal {
                message: format!("redis url {}: {m}", redact(url)),
            })?;
            return Self::connect_cluster(url, &nodes, &opts).await;
        }
        // TCP_NODELAY: commands issued together (the sticky lookup and the hold) leave in one round trip instead
        // of the second waiting for the first one's acknowledgement (Nagle).
        let info = url
            .into_connection_info()
            .map_err(bad_url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = match &opts.tls_root_cert {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
        .map_err(bad_url)?;
        let server: Arc<str> = Arc::from(client.get_connection_info().addr().to_string());
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.connect_timeout))
            .set_response_timeout(Some(opts.response_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(|e| store_error(&server, &e))?;
        Ok(Self {
            conn: conn::Conn::Single(conn),
            prefix: Arc::from(opts.prefix.as_str()),
            server,
        })
    }

    async fn connect_cluster(
        url: &str,
        nodes: &[String],
        opts: &RedisOptions,
    ) -> polyroute::Result<Self> {
        let mut b = redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(opts.connect_timeout)
            .response_timeout(opts.response_timeout)
            .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true))
            .retries(2)
            .max_retry_wait(500);
        if let Some(pem) = &opts.tls_root_cert {
            b = b.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            });
        }
        let server: Arc<str> = Arc::from(format!("cluster {}", redact(url)));
        let client = b.build().map_err(|e| Error::Internal {
            message: format!("redis url {}: {e}", redact(url)),
        })?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| store_error(&server, &e))?;
        Ok(Self {
            conn: conn::Conn::Cluster(conn),
            prefix: Arc::from(opts.prefix.as_str()),
            server,
        })
    }

    /// The server's `host:port` (for messages).
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The budget store.
    #[must_use]
    pub fn budget(&self) -> RedisBudget {
        RedisBudget::new(self.clone())
    }

    /// The rate-window store.
    #[must_use]
    pub fn rate(&self) -> RedisRate {
        RedisRate::new(self.clone())
    }

    /// The sticky-routing store.
    #[must_use]
    pub fn sticky(&self) -> RedisSticky {
        RedisSticky::new(self.clone())
    }

    /// The response cache.
    #[must_use]
    pub fn cache(&self) -> RedisCache {
        RedisCache::new(self.clone())
    }

    /// The shared health store: starts its background task on the current Tokio runtime (call it inside one).
    #[must_use]
    pub fn health(&self, opts: HealthOptions) -> RedisHealth {
        RedisHealth::start(self.clone(), opts)
    }

    /// `{prefix}:<rest>`.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{{{}}}:{rest}", self.prefix)
    }
}

/// An error naming the server (never its credentials).
pub(crate) fn store_error(server: &str, e: &redis::RedisError) -> Error {
    Error::Internal {
        message: format!("redis {server}: {e}"),
    }
}

/// `url` without a password (`redis://user:***@host`).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(unparsable)".to_string();
    };
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_credentials_only() {
        assert_eq!(
            super::redact("redis://:fake-pass@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(
            super::redact("rediss://127.0.0.1:6380/"),
            "rediss://127.0.0.1:6380/"
        );
        assert_eq!(super::redact("nonsense"), "(unparsable)");
    }
}
