//! # polyroute-postgres
//!
//! polyroute's generation ledger on PostgreSQL, for a fleet of routers (or gateway replicas) that must agree on
//! `/generation`, `/key` and `/activity`; and optionally the budget, for fleets without Redis.
//!
//! ```no_run
//! # async fn demo() -> polyroute::Result<()> {
//! let pg = polyroute_postgres::PostgresState::connect("postgres://polyroute@127.0.0.1:5432/polyroute").await?;
//! let ledger = pg.ledger(); // Arc::new(ledger) as the `ledger` of polyroute::state::Stores
//! let budget = pg.budget(); // optional: holds and spend in PostgreSQL (see `PostgresBudget`)
//! # let _ = (ledger, budget); Ok(()) }
//! ```
//!
//! - **Schema**: versioned migrations run on connect (or with [`migrate`]); see `migrate.rs`. The ledger is one
//!   table, `polyroute_generations`, keyed by generation id and indexed by `(user_key, created_ms)` and
//!   `created_ms`; the budget is three `polyroute_budget_*` tables and three PL/pgSQL functions (`budget.sql`).
//! - **Durability**: [`Ledger::insert`](polyroute::state::Ledger::insert) returns after PostgreSQL has
//!   committed the row (one autocommit `INSERT … ON CONFLICT (id) DO UPDATE`: a replayed insert replaces, never
//!   duplicates). With the server's default `synchronous_commit = on` a record is on disk when `insert`
//!   returns; it survives a kill -9 of the router and of PostgreSQL.
//! - **Aggregates** (`summary`, `activity`, `totals`) are computed by PostgreSQL (`count`, `sum(numeric)`,
//!   `GROUP BY`); money is `numeric`, exact, and crosses the wire as text.
//! - **Gateway keys**: [`PostgresKeys`], `polyroute_keys` (migration 3): id, SHA-256 hash, revision, record.
//! - **Noted settles**: `polyroute_settles_pending` (migration 4). A record whose settle goes to a budget kept
//!   elsewhere (Redis) is written with a note of that settle, in the same statement; the engine forgets the note
//!   once the settle landed, and [`polyroute::state::sweep_settles`] applies the notes a killed process left.
//! - **Connections**: a few (default 4) multiplexed `tokio-postgres` connections, used round-robin; one that
//!   has failed is re-opened by the next call that picks it, so a restarted server is used again without a
//!   restart of the router. Errors name the server (`postgres host:port/db`), never the password.
//! - **TLS** (rustls): libpq's URL parameters. `sslmode=require` and `verify-ca` encrypt and verify the server's
//!   certificate chain (stricter than libpq's `require`, which checks nothing); `verify-full` also checks the
//!   host name or IP address against the certificate. The roots trusted are those of `sslrootcert=/path/ca.pem`
//!   or [`PostgresOptions::tls_root_cert`] when given (only those), else the system's trust store. Without
//!   `sslmode`, or with `disable`, `allow` or `prefer`, the connection is plain TCP (or a unix socket). No client
//!   certificates; SCRAM channel binding (`-PLUS`) is not offered.

mod budget;
mod keys;
mod ledger;
mod migrate;
mod tls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polyroute::Error;
use tokio_postgres::{Client, Config, NoTls, Statement};

pub use budget::PostgresBudget;
pub use keys::{KeyRow, PostgresKeys};
pub use ledger::PostgresLedger;

/// How to reach PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections kept (default 4; each multiplexes concurrent queries).
    pub connections: usize,
    /// Give up on opening a connection after this long (default 5 s).
    pub connect_timeout: Duration,
    /// PEM root certificate(s) to trust for `sslmode=require|verify-ca|verify-full` instead of the system's
    /// trust store (as the URL's `sslrootcert`; this one wins when both are given).
    pub tls_root_cert: Option<Vec<u8>>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            connections: 4,
            connect_timeout: Duration::from_secs(5),
            tls_root_cert: None,
        }
    }
}

/// A PostgreSQL database holding polyroute's state: the [`PostgresLedger`] and the optional [`PostgresBudget`]
/// share its connections. Migrations run on connect.
#[derive(Clone)]
pub struct PostgresState {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for PostgresState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresState")
            .field("server", &self.pool.server)
            .finish_non_exhaustive()
    }
}

impl PostgresState {
    /// Connect with default options and apply pending migrations.
    ///
    /// # Errors
    /// The server cannot be reached or a migration fails (the error names the server).
    pub async fn connect(url: &str) -> polyroute::Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connect with `opts` and apply pending migrations.
    ///
    /// # Errors
    /// As [`PostgresState::connect`].
    pub async fn connect_with(url: &str, opts: PostgresOptions) -> polyroute::Result<Self> {
        let pool = Pool::new(url, opts)?;
        {
            let mut c = pool.open().await?;
            migrate::run(&mut c.client)
                .await
                .map_err(|m| pool.error(&m))?;
        }
        // Open one connection now, so a bad URL or permission fails here rather than on the first request.
        pool.get().await?;
        Ok(Self {
            pool: Arc::new(pool),
        })
    }

    /// The server's `host:port/db` (for messages).
    #[must_use]
    pub fn server(&self) -> &str {
        &self.pool.server
    }

    /// The ledger.
    #[must_use]
    pub fn ledger(&self) -> PostgresLedger {
        PostgresLedger {
            pool: Arc::clone(&self.pool),
        }
    }

    /// The budget.
    #[must_use]
    pub fn budget(&self) -> PostgresBudget {
        PostgresBudget {
            pool: Arc::clone(&self.pool),
        }
    }

    /// A gateway's API keys (hashes only).
    #[must_use]
    pub fn keys(&self) -> PostgresKeys {
        PostgresKeys {
            pool: Arc::clone(&self.pool),
        }
    }
}

/// Apply the migrations the database at `url` lacks (what `polyroute migrate` runs); answers the versions
/// applied now (empty when up to date).
///
/// # Errors
/// The server cannot be reached, a migration fails, or the database is newer than this build.
pub async fn migrate(url: &str) -> polyroute::Result<Vec<i32>> {
    let pool = Pool::new(url, PostgresOptions::default())?;
    let mut client = pool.open().await?;
    migrate::run(&mut client.client)
        .await
        .map_err(|m| pool.error(&m))
}

/// The text of a PostgreSQL error: the server's message and SQLSTATE when it sent one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s.push_str(": ");
                s.push_str(&x.to_string());
                src = x.source();
            }
            s
        }
    }
}

/// One open connection with the ledger's statements prepared on it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) st: Vec<Statement>,
}

/// A handful of connections, opened lazily and re-opened when closed.
pub(crate) struct Pool {
    config: Config,
    sql: Vec<String>,
    pub(crate) server: Arc<str>,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    connect_timeout: Duration,
    tls: Option<tls::Rustls>,
}

impl Pool {
    pub(crate) fn new(url: &str, opts: PostgresOptions) -> polyroute::Result<Self> {
        let url_error = |m: String| Error::Internal {
            message: format!("postgres url: {m}"),
        };
        let (url, mode, root_file) = tls::split_url(url).map_err(url_error)?;
        let mut config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| url_error(describe(&e)))?;
        let tls = if mode == tls::Mode::Plain {
            None
        } else {
            let pem = match (&opts.tls_root_cert, &root_file) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(f)) => {
                    Some(std::fs::read(f).map_err(|e| url_error(format!("sslrootcert {f}: {e}")))?)
                }
                (None, None) => None,
            };
            let cfg = tls::client_config(mode, pem.as_deref()).map_err(url_error)?;
            Some(tls::Rustls(Arc::new(cfg)))
        };
        config.connect_timeout(opts.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("polyroute");
        }
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres");
        let server: Arc<str> = Arc::from(format!("{host}:{port}/{db}"));
        let mut sql = ledger::statements();
        sql.extend(budget::statements());
        sql.extend(keys::statements());
        Ok(Self {
            config,
            sql,
            server,
            slots: (0..opts.connections.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            connect_timeout: opts.connect_timeout,
            tls,
        })
    }

    pub(crate) fn error(&self, message: &str) -> Error {
        Error::Internal {
            message: format!("postgres {}: {message}", self.server),
        }
    }

    pub(crate) fn db_error(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        self.error(&format!("{what}: {}", describe(e)))
    }

    /// Open a connection (its driver runs on a spawned task until the connection ends).
    pub(crate) async fn open(&self) -> polyroute::Result<Conn> {
        let timed_out = |_| self.error("connect timed out");
        let client = match &self.tls {
            None => {
                let connecting = self.config.connect(NoTls);
                let (client, connection) = tokio::time::timeout(self.connect_timeout, connecting)
                    .await
                    .map_err(timed_out)?
                    .map_err(|e| self.db_error("connect", &e))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }
            Some(t) => {
                let connecting = self.config.connect(t.clone());
                let (client, connection) = tokio::time::timeout(self.connect_timeout, connecting)
                    .await
                    .map_err(timed_out)?
                    .map_err(|e| self.db_error("connect (tls)", &e))?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }
        };
        Ok(Conn {
            client,
            st: Vec::new(),
        })
    }

    /// A live connection with every statement prepared, round-robin over the slots; a closed one is replaced.
    pub(crate) async fn get(&self) -> polyroute::Result<Arc<Conn>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        *slot = None;
        let mut c = self.open().await?;
        for sql in &self.sql {
            let st = c
                .client
                .prepare(sql)
                .await
                .map_err(|e| self.db_error("prepare", &e))?;
            c.st.push(st);
        }
        let c = Arc::new(c);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }
}
