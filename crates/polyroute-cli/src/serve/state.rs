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
//! settle_sweep_after_ms = 60000 # with redis: apply settles a killed replica noted in its ledger, once this old
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
use polyroute::state::Stores;

use super::keys::KeyStore;

pub use polyroute::StateConfig as StateSection;

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

/// Connect to the configured servers (None when none is configured): the stores and their failure policies are
/// `polyroute_stores::open_with`'s (the same the Python and Node bindings open), the gateway's keys and
/// response cache are added here. `ledger` is the top-level `ledger` setting, used for what no server takes
/// over; the spool defaults to `<data dir>/ledger-spool.jsonl`. Call it inside the runtime that outlives the
/// gateway: the connections' and the health refresh's tasks run there.
///
/// # Errors
/// A server cannot be reached, a migration fails, a policy or `ledger` is invalid.
pub async fn connect(
    state: &StateSection,
    ledger: Option<&str>,
    data_dir: &Path,
) -> Result<Option<Shared>> {
    if state.is_empty() {
        return Ok(None);
    }
    let sqlite = match ledger {
        None | Some("sqlite") => Some(data_dir.join("ledger.sqlite")),
        Some("memory") => None,
        Some(other) => anyhow::bail!("ledger must be \"sqlite\" or \"memory\", not {other:?}"),
    };
    let local = polyroute_stores::Local {
        sqlite,
        dir: Some(data_dir.to_path_buf()),
    };
    let Some(opened) = polyroute_stores::open_with(state, &local)
        .await
        .map_err(|e| anyhow::anyhow!("[state] {e}"))?
    else {
        return Ok(None);
    };
    let keys = match &opened.postgres {
        Some(pg) => Some(KeyStore::postgres(pg.keys()).await?),
        None => None,
    };
    let cache = opened
        .redis
        .as_ref()
        .map(|r| Arc::new(r.cache()) as Arc<dyn ResponseCache>);
    Ok(Some(Shared {
        stores: opened.stores,
        health: opened.health,
        keys,
        cache,
    }))
}
