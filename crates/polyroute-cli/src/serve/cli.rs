//! The `polyroute serve` and `polyroute keys` subcommands.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{keys, Config, Gateway};

/// `polyroute serve` flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML): providers, catalog, overlay, limits, server.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port (0 = any free port) [default: the config's, else 8080].
    #[arg(long)]
    pub port: Option<u16>,
    /// Bind address [default: the config's, else 127.0.0.1].
    #[arg(long)]
    pub host: Option<String>,
    /// Data directory for the ledger and keys.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Worker threads [default: the config's, else one per CPU].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Ignored: busy polling was removed (it did not pay at default settings); kept so old command lines run.
    #[arg(long, hide = true)]
    pub spin_us: Option<u64>,
    /// More logs (-v: one line per request, -vv: debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `polyroute keys …`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key; the key is printed once, on the last line.
    Create {
        /// Label.
        #[arg(long, default_value = "default")]
        label: String,
        /// Credit limit in USD (default: unlimited).
        #[arg(long)]
        limit: Option<rust_decimal::Decimal>,
        /// When the limit resets: daily, weekly or monthly (00:00 UTC) [default: never].
        #[arg(long)]
        limit_reset: Option<String>,
        /// Expiry, ISO-8601 UTC (`2027-01-31T00:00:00Z`).
        #[arg(long)]
        expires_at: Option<String>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// Allowed model (repeat; default: all).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Allowed provider slug (repeat; default: all).
        #[arg(long = "provider")]
        providers: Vec<String>,
        /// A management key (`/api/v1/keys`), not an inference key.
        #[arg(long)]
        management: bool,
    },
    /// List keys (never the keys themselves).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id, label, hash or the key itself.
    Revoke {
        /// Key id, label, hash or key.
        key: String,
    },
}

fn init_logs(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POLYROUTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Run the gateway until SIGINT/SIGTERM.
///
/// # Errors
/// Bad configuration, unusable data directory, or the port cannot be bound.
pub fn serve(args: ServeArgs) -> Result<()> {
    init_logs(args.verbose);
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let dir = cfg.data_dir(args.data_dir.as_deref());
    let host = args
        .host
        .or_else(|| cfg.server.host.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    let port = args.port.or(cfg.server.port).unwrap_or(8080);
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .with_context(|| format!("bad listen address {host}:{port}"))?;
    let workers = args
        .workers
        .or(cfg.server.workers)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if workers == 0 {
        anyhow::bail!("--workers must be at least 1");
    }
    if args.spin_us.or(cfg.server.spin_us).is_some() {
        tracing::warn!("spin_us / --spin-us is ignored: busy polling was removed");
    }
    // The accept loop and signal handling; requests run on the worker threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let shared = super::state::connect(&cfg.router.state, cfg.ledger.as_deref(), &dir).await?;
        let mut gw = Gateway::with_state(&cfg, &dir, shared)?;
        // Raise the soft open-file limit, and keep the connection cap within it.
        let fds = super::conn::raise_fd_limit();
        gw.limits.max_connections = super::conn::cap_for_fds(gw.limits.max_connections, fds);
        let gw = Arc::new(gw);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot bind {addr}"))?;
        let local = listener.local_addr()?;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{local}");
        if let Some(w) = exposure_warning(&local) {
            let _ = writeln!(std::io::stderr(), "{w}");
        }
        if let Some(w) = credentials_warning(gw.router.credentials()) {
            let _ = writeln!(std::io::stderr(), "{w}");
        }
        let _ = out.flush();
        tracing::info!(data_dir = %dir.display(), models = gw.router.catalog().models().len(),
                       providers = ?gw.router.credentials(), workers,
                       max_connections = gw.limits.max_connections, open_files = ?fds, "gateway ready");
        super::serve_workers(
            listener,
            gw,
            workers,
            super::shutdown_signal(),
        )
        .await
    })
}

/// The key store `polyroute keys` works on: PostgreSQL when the config sets `[state] postgres`, else the key
/// file of the data directory (`--data-dir`, else the config's, else the default).
///
/// # Errors
/// A bad config, or PostgreSQL cannot be reached.
pub async fn key_store(config: Option<&Path>, data_dir: Option<&Path>) -> Result<keys::KeyStore> {
    let cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(url) = &cfg.router.state.postgres {
        let pg = polyroute_postgres::PostgresState::connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(keys::KeyStore::postgres_once(pg.keys()));
    }
    keys::KeyStore::open(&cfg.data_dir(data_dir))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// `polyroute migrate --config`: apply pending PostgreSQL migrations.
///
/// # Errors
/// No `[state] postgres`, the server cannot be reached, or a migration fails.
pub fn migrate(config: &Path) -> Result<()> {
    let cfg = Config::load(config)?;
    let Some(url) = cfg.router.state.postgres.as_deref() else {
        anyhow::bail!("{} sets no [state] postgres", config.display());
    };
    let applied = runtime()?
        .block_on(polyroute_postgres::migrate(url))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout();
    if applied.is_empty() {
        writeln!(out, "up to date")?;
    } else {
        let v: Vec<String> = applied.iter().map(ToString::to_string).collect();
        writeln!(out, "applied migrations {}", v.join(", "))?;
    }
    Ok(())
}

/// The warning printed when no provider holds a credential: every chat request would then fail with
/// `no_credentials`, which a newcomer should learn at start, not at the first request.
#[must_use]
pub fn credentials_warning(credentials: &std::collections::BTreeSet<String>) -> Option<String> {
    credentials.is_empty().then(|| {
        "warning: no provider has credentials, so every chat request will fail with no_credentials. Set \
         [providers.<slug>] api_key (or no_auth = true for a local server) in the config, or env_keys = true \
         with OPENAI_API_KEY, ANTHROPIC_API_KEY, … in the environment."
            .to_string()
    })
}

/// The warning printed when the gateway listens beyond loopback (`--host 0.0.0.0`, a LAN address).
#[must_use]
pub fn exposure_warning(addr: &SocketAddr) -> Option<String> {
    let ip = addr.ip();
    (!ip.is_loopback()).then(|| {
        let what = if ip.is_unspecified() {
            "every network interface"
        } else {
            "a network interface"
        };
        format!(
            "warning: listening on {addr} ({what}): the gateway is reachable from the network; anyone who can \
             connect can try keys. Use --host 127.0.0.1 unless this is intended, and put TLS in front of it."
        )
    })
}

/// Run a `keys` subcommand.
///
/// # Errors
/// The key store cannot be read or written, or no key matches.
pub fn keys(cmd: KeysCommand, config: Option<&Path>, data_dir: Option<&Path>) -> Result<()> {
    runtime()?.block_on(keys_async(cmd, config, data_dir))
}

async fn keys_async(
    cmd: KeysCommand,
    config: Option<&Path>,
    data_dir: Option<&Path>,
) -> Result<()> {
    let store = key_store(config, data_dir).await?;
    let mut out = std::io::stdout();
    match cmd {
        KeysCommand::Create {
            label,
            limit,
            limit_reset,
            expires_at,
            rpm,
            tpm,
            models,
            providers,
            management,
        } => {
            if limit.is_some_and(|l| l.is_sign_negative()) {
                anyhow::bail!("--limit must be a non-negative number of USD");
            }
            let key = keys::new_key();
            let mut e = keys::KeyEntry::new(&key, &label, limit);
            e.limit_reset = match limit_reset.as_deref() {
                None => None,
                Some(r) => Some(keys::LimitReset::parse(r).with_context(|| {
                    format!("--limit-reset must be daily, weekly or monthly, not {r:?}")
                })?),
            };
            e.expires_ms = match expires_at.as_deref() {
                None => None,
                Some(t) => Some(super::account::parse_iso(t).with_context(|| {
                    format!("--expires-at must be an ISO-8601 UTC time, not {t:?}")
                })?),
            };
            e.rpm = rpm;
            e.tpm = tpm;
            e.models = models;
            e.providers = providers;
            e.management = management;
            store.put(&e).await?;
            writeln!(
                out,
                "created key {} ({}) in {}",
                e.id,
                e.label,
                store.place()
            )?;
            writeln!(
                out,
                "limit: {}",
                e.limit.map_or("none".to_string(), |l| format!("${l}"))
            )?;
            writeln!(out, "store this key now; it is not shown again:")?;
            writeln!(out, "{key}")?;
        }
        KeysCommand::List { json } => {
            let all: Vec<_> = store
                .list()
                .await?
                .into_iter()
                .filter(|k| k.deleted_ms.is_none())
                .collect();
            if json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|k| {
                        serde_json::json!({"id": k.id, "label": k.label, "prefix": k.prefix, "hash": k.hash,
                                           "limit": k.limit.and_then(|l| rust_decimal::prelude::ToPrimitive::to_f64(&l)),
                                           "limit_reset": k.limit_reset.map(keys::LimitReset::as_str),
                                           "expires_ms": k.expires_ms, "rpm": k.rpm, "tpm": k.tpm,
                                           "management": k.management, "disabled": k.disabled,
                                           "created_ms": k.created_ms, "revoked": k.revoked_ms.is_some()})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                writeln!(
                    out,
                    "{:<18} {:<16} {:<18} {:>10}  status",
                    "id", "label", "key", "limit"
                )?;
                for k in all {
                    let status = if k.revoked_ms.is_some() {
                        "revoked"
                    } else if k.disabled {
                        "disabled"
                    } else if !k.usable(keys::now_ms()) {
                        "expired"
                    } else if k.management {
                        "management"
                    } else {
                        "active"
                    };
                    writeln!(
                        out,
                        "{:<18} {:<16} {:<18} {:>10}  {status}",
                        k.id,
                        k.label,
                        k.prefix,
                        k.limit.map_or("-".to_string(), |l| format!("${l}")),
                    )?;
                }
            }
        }
        KeysCommand::Revoke { key } => {
            for k in store.revoke(&key).await? {
                writeln!(out, "revoked {} ({})", k.id, k.label)?;
            }
        }
    }
    Ok(())
}
