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
//! The section is the engine's [`polyroute::StateConfig`], and the stores are opened by
//! [`polyroute_stores::open`], the function the Python and Node bindings call for the same `state` option; its
//! documentation has the table of which server takes over what. A server that cannot be reached at start stops
//! the gateway with an error naming it.

use std::path::Path;

use anyhow::Result;
pub use polyroute::StateConfig as StateSection;
pub use polyroute_stores::{Health, Shared};

/// Connect to the servers `[state]` names (None when none is). `ledger` is the top-level `ledger` setting, used
/// for what no server takes over. Call it inside the runtime that outlives the gateway.
///
/// # Errors
/// A server cannot be reached, a migration fails, or `ledger` is invalid.
pub async fn connect(
    state: &StateSection,
    ledger: Option<&str>,
    data_dir: &Path,
) -> Result<Option<Shared>> {
    let file = data_dir.join("ledger.sqlite");
    let local = match ledger {
        None | Some("sqlite") => Some(file.as_path()),
        Some("memory") => None,
        Some(other) => anyhow::bail!("ledger must be \"sqlite\" or \"memory\", not {other:?}"),
    };
    polyroute_stores::open(state, local)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
