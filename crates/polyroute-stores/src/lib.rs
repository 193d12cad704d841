//! Opens the stores a [`StateConfig`] names, with the failure policy of each concern applied, so the gateway
//! and both bindings build the same [`Stores`] from the same configuration (`state = {redis, postgres,
//! redis_prefix, budget_on_error, rate_on_error, sticky_on_error, ledger_on_error, spool}`).
//!
//! | set | ledger | budget | rate windows | sticky, health |
//! |---|---|---|---|---|
//! | nothing | `local` (SQLite file or memory) | from the ledger | SQLite file or memory | memory |
//! | `redis` | `local` (per process) | Redis | Redis | Redis |
//! | `postgres` | PostgreSQL | PostgreSQL | SQLite file or memory (per process) | memory |
//! | both | PostgreSQL | Redis | Redis | Redis |
//!
//! The servers are connected to (and PostgreSQL migrated) when opened; a server that cannot be reached then is
//! an error naming it. Later failures follow each concern's policy ([`polyroute::state::policy`]):
//!
//! | concern | setting | default | on error |
//! |---|---|---|---|
//! | budget | `budget_on_error` | `closed` | the request is refused (an error naming the server); `open`: admitted, uncounted |
//! | rate windows | `rate_on_error` | `open` | admitted uncounted; `closed`: refused |
//! | sticky routing | `sticky_on_error` | `open` | routed without stickiness; `closed`: refused |
//! | ledger | `ledger_on_error` | `spool` | appended to a local fsynced file ([`Opened::spool`]), replayed every 500 ms; `closed`: the request fails |
//! | health | (none) | local | observations always land in process and are kept while Redis is down; the shared view refreshes when it answers |
//!
//! A settle (a hold turned into spend after the answer) that meets a failure never fails the request: the engine
//! retries it in the background until the store answers (settles are idempotent by id).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use polyroute::state::policy::{
    FailOpenBudget, FailOpenRate, FailOpenSticky, OnError, SpoolLedger,
};
use polyroute::state::{memory, Stores};
use polyroute::{Error, HealthSnapshot, HealthStore, MemoryHealth, Result, StateConfig};
use polyroute_postgres::PostgresState;
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
    /// For the router ([`polyroute::RouterBuilder::stores`]), with the failure policies applied.
    pub stores: Stores,
    /// For the router and a gateway's endpoints API.
    pub health: Health,
    /// The Redis connection, when `redis` is set (a gateway builds its response cache from it).
    pub redis: Option<RedisState>,
    /// The PostgreSQL pool, when `postgres` is set (a gateway keeps its keys there).
    pub postgres: Option<PostgresState>,
    /// The ledger spool file, when the ledger spools.
    pub spool: Option<PathBuf>,
}

/// Where [`open_with`] keeps what stays on this machine.
#[derive(Debug, Clone, Default)]
pub struct Local {
    /// The SQLite file for what no server takes over (None: memory).
    pub sqlite: Option<PathBuf>,
    /// The directory of the ledger spool when `state.spool` is not set (None: the SQLite file's directory,
    /// else the system's temporary directory with a per-process name: then a spool left by a killed process is
    /// not replayed by the next one, so set `state.spool` where that matters).
    pub dir: Option<PathBuf>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Internal {
        message: e.to_string(),
    }
}

fn on_error(name: &str, v: Option<&str>, default: OnError) -> Result<OnError> {
    match v {
        None => Ok(default),
        Some("open") => Ok(OnError::Open),
        Some("closed") => Ok(OnError::Closed),
        Some(other) => Err(Error::invalid(
            format!("state.{name}"),
            format!("must be \"open\" or \"closed\", not {other:?}"),
        )),
    }
}

/// The failure policies a [`StateConfig`] sets, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    /// `budget_on_error` (default closed).
    pub budget: OnError,
    /// `rate_on_error` (default open).
    pub rate: OnError,
    /// `sticky_on_error` (default open).
    pub sticky: OnError,
    /// `ledger_on_error`: spool (true, the default) or closed.
    pub spool: bool,
}

impl Policies {
    /// Read and check them.
    ///
    /// # Errors
    /// A value other than the documented ones.
    pub fn of(state: &StateConfig) -> Result<Self> {
        Ok(Self {
            budget: on_error(
                "budget_on_error",
                state.budget_on_error.as_deref(),
                OnError::Closed,
            )?,
            rate: on_error(
                "rate_on_error",
                state.rate_on_error.as_deref(),
                OnError::Open,
            )?,
            sticky: on_error(
                "sticky_on_error",
                state.sticky_on_error.as_deref(),
                OnError::Open,
            )?,
            spool: match state.ledger_on_error.as_deref() {
                None | Some("spool") => true,
                Some("closed") => false,
                Some(other) => {
                    return Err(Error::invalid(
                        "state.ledger_on_error",
                        format!("must be \"spool\" or \"closed\", not {other:?}"),
                    ))
                }
            },
        })
    }
}

/// [`open_with`] with the SQLite file `local` (`None`: memory) and the spool beside it.
///
/// # Errors
/// As [`open_with`].
pub async fn open(state: &StateConfig, local: Option<&Path>) -> Result<Option<Shared>> {
    open_with(
        state,
        &Local {
            sqlite: local.map(Path::to_path_buf),
            dir: None,
        },
    )
    .await
}

/// Connect to the servers `state` names and apply its failure policies; `None` when it names none. Call it
/// inside the runtime that outlives the router: the connections', the spool replay's and the health refresh's
/// tasks run there.
///
/// # Errors
/// A policy value is invalid, a server cannot be reached, a migration fails, or the SQLite file cannot be
/// opened.
pub async fn open_with(state: &StateConfig, local: &Local) -> Result<Option<Shared>> {
    if state.is_empty() {
        return Ok(None);
    }
    let pol = Policies::of(state)?;
    let both = state.redis.is_some() && state.postgres.is_some();
    let mut stores = match &local.sqlite {
        // Both servers take over everything: no local file is opened.
        _ if both => Stores::memory(),
        Some(p) => Stores::sqlite(p).map_err(|e| err(format!("cannot open the ledger: {e}")))?,
        None => Stores::memory(),
    };
    let mut health = Health::Memory(Arc::new(MemoryHealth::default()));
    let mut spool = None;
    let mut postgres = None;
    let mut redis_state = None;
    if let Some(url) = &state.postgres {
        let pg = PostgresState::connect(url).await?;
        stores.ledger = if pol.spool {
            let path = spool_path(state, local);
            let l = Arc::new(SpoolLedger::new(Arc::new(pg.ledger()), path.clone()));
            l.spawn_replay(Duration::from_millis(500));
            spool = Some(path);
            l
        } else {
            Arc::new(pg.ledger())
        };
        stores.budget = Arc::new(pg.budget());
        postgres = Some(pg);
    }
    if let Some(url) = &state.redis {
        let mut opts = RedisOptions::default();
        if let Some(p) = &state.redis_prefix {
            opts.prefix.clone_from(p);
        }
        let redis = RedisState::connect_with(url, opts).await?;
        stores.budget = Arc::new(redis.budget());
        stores.rate = match pol.rate {
            OnError::Open => Arc::new(FailOpenRate::new(Arc::new(redis.rate()))),
            OnError::Closed => Arc::new(redis.rate()),
        };
        stores.sticky = match pol.sticky {
            OnError::Open => Arc::new(FailOpenSticky::new(Arc::new(redis.sticky()))),
            OnError::Closed => Arc::new(redis.sticky()),
        };
        health = Health::Redis(Arc::new(redis.health(HealthOptions::default())));
        redis_state = Some(redis);
    } else {
        stores.sticky = Arc::new(memory::MemorySticky::default());
    }
    if pol.budget == OnError::Open {
        stores.budget = Arc::new(FailOpenBudget::new(stores.budget.clone()));
    }
    if state.redis.is_some() {
        // The ledger (PostgreSQL, or this process's SQLite file) notes each Redis settle with its record: apply
        // those a killed process left.
        polyroute::state::spawn_settle_sweep(
            &stores.ledger,
            &stores.budget,
            Duration::from_millis(state.settle_sweep_after_ms.unwrap_or(60_000)),
        );
    }
    stores.health = health.store();
    Ok(Some(Shared {
        stores,
        health,
        redis: redis_state,
        postgres,
        spool,
    }))
}

fn spool_path(state: &StateConfig, local: &Local) -> PathBuf {
    if let Some(p) = &state.spool {
        return p.clone();
    }
    let dir = local.dir.clone().or_else(|| {
        local
            .sqlite
            .as_ref()
            .and_then(|p| p.parent())
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
    });
    match dir {
        Some(d) => d.join("ledger-spool.jsonl"),
        None => std::env::temp_dir().join(format!(
            "polyroute-ledger-spool-{}.jsonl",
            std::process::id()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn policies_default_and_refuse_unknown_values() {
        let mut s = StateConfig::default();
        let p = Policies::of(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.budget, p.rate, p.sticky, p.spool),
            (OnError::Closed, OnError::Open, OnError::Open, true)
        );
        s.rate_on_error = Some("closed".into());
        s.ledger_on_error = Some("closed".into());
        let p = Policies::of(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.rate, p.spool), (OnError::Closed, false));
        s.budget_on_error = Some("sometimes".into());
        let e = Policies::of(&s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("budget_on_error"), "{e}");
    }

    #[test]
    fn the_spool_goes_where_configured_else_beside_the_local_file() {
        let mut s = StateConfig::default();
        let l = Local {
            sqlite: Some(PathBuf::from("/var/lib/pr/ledger.sqlite")),
            dir: None,
        };
        assert_eq!(
            spool_path(&s, &l),
            PathBuf::from("/var/lib/pr/ledger-spool.jsonl")
        );
        let d = Local {
            sqlite: None,
            dir: Some(PathBuf::from("/srv/data")),
        };
        assert_eq!(
            spool_path(&s, &d),
            PathBuf::from("/srv/data/ledger-spool.jsonl")
        );
        let t = spool_path(&s, &Local::default());
        assert!(t.starts_with(std::env::temp_dir()), "{}", t.display());
        s.spool = Some(PathBuf::from("/x/spool.jsonl"));
        assert_eq!(spool_path(&s, &l), PathBuf::from("/x/spool.jsonl"));
    }
}
