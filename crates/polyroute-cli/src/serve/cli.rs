//! The `polyroute serve` and `polyroute keys` subcommands.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{config, keys, Config, Gateway};

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
    /// Busy-poll this many microseconds after request activity before sleeping [default: the config's, else 0].
    #[arg(long)]
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
    },
    /// List keys (never the keys themselves).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id, label or the key itself.
    Revoke {
        /// Key id, label or key.
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
    let dir = config::data_dir(args.data_dir.as_deref().or(cfg.server.data_dir.as_deref()));
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
    let spin_us = args.spin_us.or(cfg.server.spin_us).unwrap_or(0);
    if spin_us > 10_000 {
        anyhow::bail!("--spin-us must be at most 10000 (10 ms); got {spin_us}");
    }
    // The accept loop and signal handling; requests run on the worker threads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async move {
        let shared = cfg.state.connect(cfg.ledger.as_deref(), &dir).await?;
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
        let _ = out.flush();
        tracing::info!(data_dir = %dir.display(), models = gw.router.catalog().models().len(),
                       providers = ?gw.router.credentials(), workers,
                       max_connections = gw.limits.max_connections, open_files = ?fds, "gateway ready");
        super::serve_workers(
            listener,
            gw,
            workers,
            std::time::Duration::from_micros(spin_us),
            super::shutdown_signal(),
        )
        .await
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
/// The key file cannot be read or written, or no key matches.
pub fn keys(cmd: KeysCommand, data_dir: Option<&Path>) -> Result<()> {
    let dir = config::data_dir(data_dir);
    let mut out = std::io::stdout();
    match cmd {
        KeysCommand::Create { label, limit } => {
            if limit.is_some_and(|l| l.is_sign_negative()) {
                anyhow::bail!("--limit must be a non-negative number of USD");
            }
            let (e, key) = keys::create(&dir, &label, limit)?;
            writeln!(
                out,
                "created key {} ({}) in {}",
                e.id,
                e.label,
                dir.display()
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
            let all = keys::list(&dir)?;
            if json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|k| {
                        serde_json::json!({"id": k.id, "label": k.label, "prefix": k.prefix, "limit": k.limit.and_then(|l| rust_decimal::prelude::ToPrimitive::to_f64(&l)),
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
                    writeln!(
                        out,
                        "{:<18} {:<16} {:<18} {:>10}  {}",
                        k.id,
                        k.label,
                        k.prefix,
                        k.limit.map_or("-".to_string(), |l| format!("${l}")),
                        if k.revoked_ms.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    )?;
                }
            }
        }
        KeysCommand::Revoke { key } => {
            for k in keys::revoke(&dir, &key)? {
                writeln!(out, "revoked {} ({})", k.id, k.label)?;
            }
        }
    }
    Ok(())
}
