//! `[state]`: the gateway's shared state on Valkey/Redis and PostgreSQL, so that several replicas behind a load
//! balancer enforce one credit limit per key, one set of free-tier windows, one sticky map and one health view,
//! and answer `/generation`, `/key` and `/activity` alike.
//!
//! ```toml
//! [state]
//! redis = "redis://:password@10.0.0.5:6379/0"      # budgets, rate windows, sticky routing, health
//! postgres = "postgres://polyroute:pw@10.0.0.6/polyroute"   # the ledger (and the budget when no redis is set)
//! redis_prefix = "polyroute"                        # key prefix (several fleets on one server)
//! ```
//!
//! | set | ledger | budget | rate windows | sticky, health |
//! |---|---|---|---|---|
//! | nothing | `ledger` (SQLite file or memory) | from the ledger | SQLite file or memory | memory |
//! | `redis` | `ledger` (per replica) | Redis | Redis | Redis |
//! | `postgres` | PostgreSQL | PostgreSQL | SQLite file or memory (per replica) | memory |
//! | both | PostgreSQL | Redis | Redis | Redis |
//!
//! Gateway keys follow `postgres` (else the data dir's `keys.json`); the response cache follows `redis` (else
//! in process).
//!
//! The servers are connected to (and PostgreSQL migrated) at start; a server that cannot be reached then stops
//! the gateway with an error naming it (`redis 127.0.0.1:6379`, `postgres 10.0.0.6:5432/polyroute`; never a
//! password). Later, each concern follows its failure policy (`polyroute::state::policy`), and the stores
//! reconnect by themselves:
//!
//! ```toml
//! [state]
//! budget_on_error = "closed"   # "closed": refuse the request (500 naming the server) | "open": admit, uncounted
//! rate_on_error = "open"       # "open": admit uncounted | "closed": refuse
//! sticky_on_error = "open"     # "open": route without stickiness | "closed": refuse
//! ledger_on_error = "spool"    # "spool": append to a local file, fsync, replay when PostgreSQL answers | "closed"
//! spool = "/var/lib/polyroute/ledger-spool.jsonl"   # default: <data dir>/ledger-spool.jsonl
//! ```
//!
//! With `ledger_on_error = "spool"` an acknowledged generation is durable when its answer is sent: in PostgreSQL
//! (committed) or in the local spool (fsynced). The spool is replayed every 500 ms while it holds records, and
//! at the next start if the gateway was killed first; replays upsert by generation id, so nothing is counted
//! twice. Keys are read from PostgreSQL every 200 ms; while it is down the replicas keep the last keys they read.
//! Health is always observed in process; with Redis, the shared view refreshes when Redis answers.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use polyroute::state::cache::ResponseCache;
use polyroute::state::policy::{
    FailOpenBudget, FailOpenRate, FailOpenSticky, OnError, SpoolLedger,
};
use polyroute::state::{memory, Stores};
use polyroute::MemoryHealth;
use polyroute_redis::{HealthOptions, RedisOptions, RedisState};

use super::keys::KeyStore;

pub use polyroute::StateConfig as StateSection;

fn on_error(name: &str, v: Option<&str>, default: OnError) -> Result<OnError> {
    match v {
        None => Ok(default),
        Some("open") => Ok(OnError::Open),
        Some("closed") => Ok(OnError::Closed),
        Some(other) => {
            anyhow::bail!("[state] {name} must be \"open\" or \"closed\", not {other:?}")
        }
    }
}

/// The health window, as the bindings open it too.
pub use polyroute_stores::Health;

/// Stores and health built from `[state]`.
#[derive(Clone)]
pub struct Shared {
    /// For the router.
    pub stores: Stores,
    /// For the router and the endpoints API.
    pub health: Health,
    /// The gateway's keys, when they are in PostgreSQL (else the data dir's key file).
    pub keys: Option<Arc<KeyStore>>,
    /// The response cache, when it is in Redis (else in process).
    pub cache: Option<Arc<dyn ResponseCache>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("health", &self.health)
            .field("keys", &self.keys)
            .field("cache", &self.cache.as_ref().map(|_| "redis"))
            .finish_non_exhaustive()
    }
}

/// Connect to the configured servers (None when none is configured). `ledger` is the top-level `ledger`
/// setting, used for what no server takes over. Call it inside the runtime that outlives the gateway: the
/// connections' and the health refresh's tasks run there.
///
/// # Errors
/// A server cannot be reached, a migration fails, or `ledger` is invalid.
pub async fn connect(
    state: &StateSection,
    ledger: Option<&str>,
    data_dir: &Path,
) -> Result<Option<Shared>> {
    let this = state;
    if this.is_empty() {
        return Ok(None);
    }
    let budget_policy = on_error(
        "budget_on_error",
        this.budget_on_error.as_deref(),
        OnError::Closed,
    )?;
    let rate_policy = on_error(
        "rate_on_error",
        this.rate_on_error.as_deref(),
        OnError::Open,
    )?;
    let sticky_policy = on_error(
        "sticky_on_error",
        this.sticky_on_error.as_deref(),
        OnError::Open,
    )?;
    let spool = match this.ledger_on_error.as_deref() {
        None | Some("spool") => true,
        Some("closed") => false,
        Some(other) => {
            anyhow::bail!("[state] ledger_on_error must be \"spool\" or \"closed\", not {other:?}")
        }
    };
    let both = this.redis.is_some() && this.postgres.is_some();
    let mut stores = match ledger {
        // Both servers take over everything: no local file is opened.
        _ if both => Stores::memory(),
        None | Some("sqlite") => Stores::sqlite(&data_dir.join("ledger.sqlite"))
            .map_err(|e| anyhow::anyhow!("cannot open the ledger: {e}"))?,
        Some("memory") => Stores::memory(),
        Some(other) => anyhow::bail!("ledger must be \"sqlite\" or \"memory\", not {other:?}"),
    };
    let mut health = Health::Memory(Arc::new(MemoryHealth::default()));
    let mut keys = None;
    let mut cache: Option<Arc<dyn ResponseCache>> = None;
    if let Some(url) = &this.postgres {
        let pg = polyroute_postgres::PostgresState::connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        stores.ledger = if spool {
            let path = this
                .spool
                .clone()
                .unwrap_or_else(|| data_dir.join("ledger-spool.jsonl"));
            let l = Arc::new(SpoolLedger::new(Arc::new(pg.ledger()), path));
            l.spawn_replay(std::time::Duration::from_millis(500));
            l
        } else {
            Arc::new(pg.ledger())
        };
        stores.budget = Arc::new(pg.budget());
        keys = Some(KeyStore::postgres(pg.keys()).await?);
    }
    if let Some(url) = &this.redis {
        let mut opts = RedisOptions::default();
        if let Some(p) = &this.redis_prefix {
            opts.prefix.clone_from(p);
        }
        let redis = RedisState::connect_with(url, opts)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        cache = Some(Arc::new(redis.cache()));
        stores.budget = Arc::new(redis.budget());
        stores.rate = match rate_policy {
            OnError::Open => Arc::new(FailOpenRate::new(Arc::new(redis.rate()))),
            OnError::Closed => Arc::new(redis.rate()),
        };
        stores.sticky = match sticky_policy {
            OnError::Open => Arc::new(FailOpenSticky::new(Arc::new(redis.sticky()))),
            OnError::Closed => Arc::new(redis.sticky()),
        };
        health = Health::Redis(Arc::new(redis.health(HealthOptions::default())));
    } else {
        stores.sticky = Arc::new(memory::MemorySticky::default());
    }
    if budget_policy == OnError::Open {
        stores.budget = Arc::new(FailOpenBudget::new(stores.budget.clone()));
    }
    stores.health = health.store();
    Ok(Some(Shared {
        stores,
        health,
        keys,
        cache,
    }))
}
