//! Opens the stores a [`StateConfig`] names, so the gateway and both bindings build the same
//! [`Stores`] from the same configuration (`state = {redis, postgres, redis_prefix}`).
//!
//! | set | ledger | budget | rate windows | sticky, health |
//! |---|---|---|---|---|
//! | nothing | `local` (SQLite file or memory) | from the ledger | SQLite file or memory | memory |
//! | `redis` | `local` (per process) | Redis | Redis | Redis |
//! | `postgres` | PostgreSQL | PostgreSQL | SQLite file or memory (per process) | memory |
//! | both | PostgreSQL | Redis | Redis | Redis |
//!
//! The servers are connected to (and PostgreSQL migrated) when opened; a server that cannot be reached is an
//! error naming it. Later failures fail the request that met them and the stores reconnect by themselves.

use std::path::Path;
use std::sync::Arc;

use polyroute::state::{memory, Stores};
use polyroute::{Error, HealthSnapshot, HealthStore, MemoryHealth, Result, StateConfig};
use polyroute_redis::{HealthOptions, RedisHealth, RedisOptions, RedisState};

/// The health window: in process, or shared through Redis.
#[derive(Debug, Clone)]
pub enum Health {
    /// This process's observations only.
    Memory(Arc<MemoryHealth>),
    /// The fleet's, refreshed in the background.
    Redis(Arc<RedisHealth>),
}

impl Health {
    /// The current snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Arc<HealthSnapshot> {
        match self {
            Health::Memory(h) => h.snapshot(),
            Health::Redis(h) => h.snapshot(),
        }
    }

    /// Success rate of `model@tag` over the window.
    #[must_use]
    pub fn success_rate(&self, key: &str) -> Option<f64> {
        match self {
            Health::Memory(h) => h.success_rate(key),
            Health::Redis(h) => h.success_rate(key),
        }
    }

    /// As the engine's health store.
    #[must_use]
    pub fn store(&self) -> Arc<dyn HealthStore> {
        match self {
            Health::Memory(h) => h.clone(),
            Health::Redis(h) => h.clone(),
        }
    }
}

/// Stores and health opened from a [`StateConfig`].
#[derive(Debug, Clone)]
pub struct Shared {
    /// For the router ([`polyroute::RouterBuilder::stores`]).
    pub stores: Stores,
    /// For the router and a gateway's endpoints API.
    pub health: Health,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Internal {
        message: e.to_string(),
    }
}

/// Connect to the servers `state` names; `None` when it names none. `local` is the SQLite file for what no
/// server takes over (`None`: memory). Call it inside the runtime that outlives the router: the connections' and
/// the health refresh's tasks run there.
///
/// # Errors
/// A server cannot be reached, a migration fails, or the SQLite file cannot be opened.
pub async fn open(state: &StateConfig, local: Option<&Path>) -> Result<Option<Shared>> {
    if state.is_empty() {
        return Ok(None);
    }
    let both = state.redis.is_some() && state.postgres.is_some();
    let mut stores = match local {
        // Both servers take over everything: no local file is opened.
        _ if both => Stores::memory(),
        Some(p) => Stores::sqlite(p).map_err(|e| err(format!("cannot open the ledger: {e}")))?,
        None => Stores::memory(),
    };
    let mut health = Health::Memory(Arc::new(MemoryHealth::default()));
    if let Some(url) = &state.postgres {
        let pg = polyroute_postgres::PostgresState::connect(url)
            .await
            .map_err(err)?;
        stores.ledger = Arc::new(pg.ledger());
        stores.budget = Arc::new(pg.budget());
    }
    if let Some(url) = &state.redis {
        let mut opts = RedisOptions::default();
        if let Some(p) = &state.redis_prefix {
            opts.prefix.clone_from(p);
        }
        let redis = RedisState::connect_with(url, opts).await.map_err(err)?;
        stores.budget = Arc::new(redis.budget());
        stores.rate = Arc::new(redis.rate());
        stores.sticky = Arc::new(redis.sticky());
        health = Health::Redis(Arc::new(redis.health(HealthOptions::default())));
    } else {
        stores.sticky = Arc::new(memory::MemorySticky::default());
    }
    stores.health = health.store();
    Ok(Some(Shared { stores, health }))
}
