//! `polyroute serve`: the engine behind an OpenRouter-compatible HTTP API (axum on tokio).
//!
//! The engine's routes ([`polyroute::http_api`]: chat completions, models, endpoints, providers, generation) under
//! `/api/v1/`, behind the gateway's keys ([`api`]) and, for chat completions, the response cache ([`cache`]); the
//! gateway's own routes: `GET /api/v1/key`, `/credits`, `/activity`, the keys API (`/api/v1/keys`), `GET /health`.
//! `GET /metrics` and the `x-polyroute-overhead-ms` header: [`observe`].

pub mod account;
pub mod api;
pub mod auth;
pub mod cache;
pub mod chat;
pub mod cli;
pub mod config;
pub mod conn;
pub mod error;
pub mod files;
pub mod key_policy;
pub mod keys;
pub mod keys_api;
pub mod money;
pub mod observe;
pub mod state;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use polyroute::{HttpApi, MemoryHealth, Router};
use serde_json::Value;

pub use config::Config;
use error::ApiError;
use keys::{KeyEntry, KeyStore, Lookup};

/// Default request body limit (4 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Shared state of the gateway.
pub struct Gateway {
    /// The engine.
    pub router: Router,
    /// The engine's HTTP surface over `router` (keep-alive interval from `[server] keepalive_ms`).
    pub api: HttpApi,
    /// Gateway keys.
    pub keys: Arc<KeyStore>,
    /// Free-tier limits (per minute, per day) for the `X-RateLimit-Limit` header.
    pub free_limits: (u32, u32),
    /// Request body limit in bytes.
    pub body_limit: usize,
    /// OpenRouter's response cache (`X-OpenRouter-Cache`): in process, or Redis with `[state] redis`.
    pub cache: Arc<dyn polyroute::state::cache::ResponseCache>,
    /// Connection timeouts and cap.
    pub limits: conn::ConnLimits,
    /// Open client connections (shared by every worker).
    pub open: conn::Open,
    /// Serve `/metrics` without a key (`[server] metrics_public`).
    pub metrics_public: bool,
    /// On stop, the longest wait for pending budget settles (`[server] settle_wait_ms`).
    pub settle_wait: Duration,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Gateway {
    /// Build the gateway from a configuration and a data directory (created if missing).
    ///
    /// # Errors
    /// A bad catalog, overlay, ledger or key file.
    pub fn new(cfg: &Config, data_dir: &Path) -> Result<Self> {
        Self::with_state(cfg, data_dir, None)
    }

    /// [`Gateway::new`] with the shared state `[state]` connected to ([`state::connect`]).
    ///
    /// # Errors
    /// As [`Gateway::new`].
    pub fn with_state(
        cfg: &Config,
        data_dir: &Path,
        shared: Option<state::Shared>,
    ) -> Result<Self> {
        files::private_dir(data_dir)?;
        let (health, stores, keys, cache) = match shared {
            Some(s) => (s.health, Some(s.stores), s.keys, s.cache),
            None => (
                state::Health::Memory(Arc::new(MemoryHealth::default())),
                None,
                None,
                None,
            ),
        };
        let cache =
            cache.unwrap_or_else(|| Arc::new(polyroute::state::cache::MemoryCache::default()));
        let router = cfg.router(data_dir, health.store(), stores)?;
        let keys = match keys {
            Some(k) => k,
            None => Arc::new(KeyStore::open(data_dir)?),
        };
        let lim = polyroute::Limits::default();
        let free_limits = (
            cfg.router
                .limits
                .free_per_minute
                .unwrap_or(lim.free_per_minute),
            cfg.router.limits.free_per_day.unwrap_or(lim.free_per_day),
        );
        let api = HttpApi::new(router.clone()).keepalive(Duration::from_millis(
            cfg.server.keepalive_ms.unwrap_or(1000).max(1),
        ));
        Ok(Self {
            router,
            api,
            keys,
            free_limits,
            body_limit: cfg.server.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
            cache,
            limits: conn::ConnLimits {
                header_timeout: cfg
                    .server
                    .header_timeout_ms
                    .map_or(conn::DEFAULT_HEADER_TIMEOUT, |ms| {
                        Duration::from_millis(ms.max(1))
                    }),
                body_timeout: cfg
                    .server
                    .body_timeout_ms
                    .map_or(conn::DEFAULT_BODY_TIMEOUT, |ms| {
                        Duration::from_millis(ms.max(1))
                    }),
                max_connections: cfg
                    .server
                    .max_connections
                    .unwrap_or(conn::DEFAULT_MAX_CONNECTIONS)
                    .max(1),
            },
            open: conn::Open::default(),
            metrics_public: cfg.server.metrics_public.unwrap_or(false),
            settle_wait: Duration::from_millis(
                cfg.server.settle_wait_ms.unwrap_or(DEFAULT_SETTLE_WAIT_MS),
            ),
        })
    }

    /// The same gateway (keys, ledger, spend, health, generation ids) for one more worker thread, with its own
    /// upstream connection pool ([`Router::with_own_connections`]).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn for_worker(&self) -> Result<Self> {
        let router = self.router.with_own_connections()?;
        Ok(Self {
            api: self.api.with_router(router.clone()),
            router,
            keys: self.keys.clone(),
            free_limits: self.free_limits,
            body_limit: self.body_limit,
            cache: self.cache.clone(),
            limits: self.limits,
            open: self.open.clone(),
            metrics_public: self.metrics_public,
            settle_wait: self.settle_wait,
        })
    }

    /// A fresh generation id.
    pub fn new_generation_id(&self) -> String {
        self.router.new_generation_id()
    }

    /// The inference key of a request (`Authorization: Bearer …`).
    ///
    /// # Errors
    /// 401 when missing, unknown, revoked, disabled, expired or a management key.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<KeyEntry>, ApiError> {
        self.authenticate_as(headers, None).await
    }

    /// [`Gateway::authenticate`] reusing the key the middleware already authenticated the request with
    /// ([`Authenticated`], on every `POST`), so the token is not looked up twice.
    ///
    /// # Errors
    /// As [`Gateway::authenticate`].
    pub async fn authenticate_as(
        &self,
        headers: &HeaderMap,
        known: Option<&Authenticated>,
    ) -> Result<Arc<KeyEntry>, ApiError> {
        let k = match known {
            Some(Authenticated(k, _)) => k.clone(),
            None => self.authenticate_any(headers).await?,
        };
        if k.management {
            return Err(ApiError::unauthorized(
                "Management keys cannot be used for inference",
            ));
        }
        Ok(k)
    }

    /// The key of a request, inference or management.
    ///
    /// # Errors
    /// 401 when missing, unknown, revoked, disabled or expired.
    pub async fn authenticate_any(&self, headers: &HeaderMap) -> Result<Arc<KeyEntry>, ApiError> {
        let Some(token) = bearer_token(headers) else {
            return Err(ApiError::unauthorized("No auth credentials found"));
        };
        match self.keys.lookup_now(token).await {
            Lookup::Active(k) => Ok(k),
            Lookup::Revoked => Err(ApiError::unauthorized("This API key has been revoked")),
            Lookup::Expired => Err(ApiError::unauthorized("This API key has expired")),
            Lookup::Unknown => Err(ApiError::unauthorized("User not found.")),
        }
    }
}

/// The key a `POST` was authenticated with before its body was read, and that body as read within the limit (a
/// request extension set by the middleware; the chat handler takes the body from here instead of reading the
/// request's again).
#[derive(Clone)]
pub struct Authenticated(pub Arc<KeyEntry>, pub axum::body::Bytes);

/// The token of `Authorization: Bearer <token>`: the scheme is case-insensitive (RFC 9110 section 11.1), the
/// token non-empty; any other scheme, or a bare token, is no credential.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = v.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The axum application.
pub fn app(gw: Arc<Gateway>) -> axum::Router {
    let limit = gw.body_limit;
    axum::Router::new()
        .route(
            "/api/v1/chat/completions",
            // Other methods: the engine's 405.
            post(cache::completions).fallback(api::forward),
        )
        .route("/api/v1/key", get(account::key))
        .route("/api/v1/credits", get(account::credits))
        .route("/api/v1/activity", get(account::activity))
        .route("/api/v1/keys", get(keys_api::list).post(keys_api::create))
        .route(
            "/api/v1/keys/{hash}",
            get(keys_api::get_one)
                .patch(keys_api::update)
                .delete(keys_api::delete),
        )
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/{*file}", get(ui::asset))
        .route("/api/v1/ui/session", get(ui::session))
        .route("/api/v1/ui/usage", get(ui::usage))
        .route("/api/v1/ui/health", get(ui::health))
        .route("/api/v1/ui/generations", get(ui::generations))
        .route("/api/v1/ui/plan", get(ui::plan))
        .route("/health", get(health))
        .route("/metrics", get(observe::metrics))
        // Every other engine route (models, endpoints, providers, generation, …).
        .fallback(api::forward)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            per_request,
        ))
        .with_state(gw)
}

async fn health(State(gw): State<Arc<Gateway>>) -> Response {
    axum::Json(serde_json::json!({"status": "ok", "models": gw.router.catalog().models().len()}))
        .into_response()
}

static REQ_SEQ: AtomicU64 = AtomicU64::new(0);

/// The most of an unauthenticated request's body read (and dropped) before its 401.
const UNAUTHENTICATED_DRAIN: usize = 64 * 1024;

/// Read and drop up to `max` bytes of `body` within `timeout`.
async fn discard(body: axum::body::Body, max: usize, timeout: Duration) {
    use futures::StreamExt;
    let mut s = body.into_data_stream();
    let _ = tokio::time::timeout(timeout, async {
        let mut seen = 0usize;
        while let Some(Ok(b)) = s.next().await {
            seen += b.len();
            if seen > max {
                break;
            }
        }
    })
    .await;
}

/// A request with a body (every `POST`) is authenticated from its headers before any of its body is read, and
/// its body is then read within the size limit and the body timeout: an unknown key costs no body buffering, and
/// a client that never sends its announced body holds the connection for the body timeout at most.
async fn body_after_auth(gw: &Gateway, req: Request) -> Result<Request, Response> {
    if req.method() != axum::http::Method::POST {
        return Ok(req);
    }
    let key = match gw.authenticate_any(req.headers()).await {
        Ok(k) => k,
        Err(e) => {
            // Nothing is buffered for an unknown key. A small body (a client with a wrong key) is read and dropped so
            // that the client gets its 401 rather than a reset; past that the connection closes after the answer.
            let wait = gw.limits.body_timeout.min(Duration::from_secs(1));
            discard(req.into_body(), UNAUTHENTICATED_DRAIN, wait).await;
            return Err(e.into_response());
        }
    };
    let too_large = || {
        ApiError::new(
            413,
            "invalid_request",
            format!("Request body larger than {} bytes", gw.body_limit),
        )
        .into_response()
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gw.body_limit as u64) {
        return Err(too_large());
    }
    let (mut parts, body) = req.into_parts();
    match tokio::time::timeout(
        gw.limits.body_timeout,
        axum::body::to_bytes(body, gw.body_limit),
    )
    .await
    {
        Err(_) => Err(ApiError::new(
            408,
            "invalid_request",
            format!(
                "Request body not received within {} ms",
                gw.limits.body_timeout.as_millis()
            ),
        )
        .into_response()),
        Ok(Err(_)) => Err(too_large()),
        Ok(Ok(bytes)) => {
            parts.extensions.insert(Authenticated(key, bytes.clone()));
            Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
        }
    }
}

/// Around every request: reads a body only after its key is known ([`body_after_auth`]), and with `-v` logs one
/// line with a request id (never a key or a body).
async fn per_request(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let req = match body_after_auth(&gw, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let log = tracing::enabled!(tracing::Level::INFO).then(|| {
        let id = REQ_SEQ.fetch_add(1, Ordering::Relaxed);
        (
            id,
            req.method().clone(),
            req.uri().path().to_string(),
            Instant::now(),
        )
    });
    let resp = next.run(req).await;
    if let Some((id, method, path, t0)) = log {
        let gen = resp
            .headers()
            .get("x-generation-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            request_id = %format!("req-{id}"),
            %method,
            path,
            status = resp.status().as_u16(),
            generation = gen,
            ms = t0.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
    resp
}

/// A running server (for in-process use and tests).
#[derive(Debug)]
pub struct Running {
    /// Bound address.
    pub addr: SocketAddr,
    /// The gateway state.
    pub gateway: Arc<Gateway>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish in-flight requests and streams, and wait.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// SSE frames are small writes: without `TCP_NODELAY` they wait for delayed ACKs (tens of milliseconds).
fn nodelay(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

/// Bind and serve in the background until [`Running::shutdown`].
///
/// # Errors
/// The address cannot be bound.
pub async fn start(gw: Arc<Gateway>, addr: SocketAddr) -> Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let addr = listener.local_addr()?;
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let app = app(gw.clone());
    let g = gw.clone();
    let task = tokio::spawn(async move {
        let drain = conn::Drain::default();
        let mut log = conn::AcceptLog::default();
        loop {
            tokio::select! {
                _ = &mut rx => break,
                r = listener.accept() => match r {
                    Ok((tcp, _)) => {
                        nodelay(&tcp);
                        match g.open.take(g.limits.max_connections) {
                            Some(slot) => conn::serve(tcp, app.clone(), &g.limits, &drain, slot),
                            None => conn::refuse(tcp),
                        }
                    }
                    Err(e) => {
                        log.error(&e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        drop(listener);
        drain.shutdown().await;
        await_settles(&g).await;
    });
    Ok(Running {
        addr,
        gateway: gw,
        stop: Some(tx),
        task,
    })
}

/// How long a stopping gateway waits for pending settles by default (`[server] settle_wait_ms`).
pub const DEFAULT_SETTLE_WAIT_MS: u64 = 10_000;

/// Once the last answer is sent: wait (up to `[server] settle_wait_ms`) for the budget settles still pending,
/// which run on the runtime about to stop. Without this a stop (a rolling deploy's `SIGTERM`) would drop the
/// settles of its last answers, and of any retrying while the budget store was away: their cost would stay in the
/// ledger but never reach the shared spend. Every worker waits on the router's one count.
async fn await_settles(gw: &Gateway) {
    let left = gw.router.settled(gw.settle_wait).await;
    if left > 0 {
        tracing::error!(
            pending = left,
            waited_ms = u64::try_from(gw.settle_wait.as_millis()).unwrap_or(u64::MAX),
            "stopping with budget settles pending: their cost is in the ledger, not in the shared spend"
        );
    }
}

/// A connection handed to a worker thread by the accept loop, with its place under the connection cap.
type Handoff = tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, conn::Slot)>;

/// One worker: a single-threaded runtime serving the connections it is handed until `stop` turns true, then
/// finishing its in-flight requests and streams.
fn spawn_worker(
    i: usize,
    gw: Arc<Gateway>,
    mut conns: Handoff,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<std::thread::JoinHandle<()>> {
    // Built here, so that a runtime that cannot start is an error of `serve_workers` rather than a worker whose
    // connections are silently dropped.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a worker runtime")?;
    std::thread::Builder::new()
        .name(format!("polyroute-worker-{i}"))
        .spawn(move || {
            rt.block_on(async move {
                let app = app(gw.clone());
                let drain = conn::Drain::default();
                loop {
                    let next = tokio::select! {
                        _ = stop.wait_for(|s| *s) => None,
                        c = conns.recv() => c,
                    };
                    // None: stopping, or the accept loop has stopped.
                    let Some((std, slot)) = next else { break };
                    match tokio::net::TcpStream::from_std(std) {
                        Ok(tcp) => conn::serve(tcp, app.clone(), &gw.limits, &drain, slot),
                        Err(e) => tracing::debug!(error = %e, "cannot register a connection"),
                    }
                }
                drain.shutdown().await;
                // Before this runtime (and the settle tasks on it) is dropped.
                await_settles(&gw).await;
            });
        })
        .context("cannot start a worker thread")
}

/// Serve on `listener` with `workers` threads until `shutdown` resolves, then finish in-flight requests.
///
/// Each worker runs a single-threaded tokio runtime with its own [`Gateway::for_worker`] copy, so a request, its
/// upstream call and its answer never cross threads (on loopback a cross-thread wake-up costs as much as the
/// gateway's own work). This runtime only accepts, refuses connections over the cap ([`conn`]) and deals the
/// others out in turn.
///
/// # Errors
/// A worker cannot be started.
pub async fn serve_workers(
    listener: tokio::net::TcpListener,
    gw: Arc<Gateway>,
    workers: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for i in 0..workers.max(1) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let g = if i == 0 {
            gw.clone()
        } else {
            Arc::new(gw.for_worker()?)
        };
        threads.push(spawn_worker(i, g, rx, stop_rx.clone())?);
        senders.push(tx);
    }
    tokio::pin!(shutdown);
    let mut next = 0usize;
    let mut log = conn::AcceptLog::default();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    nodelay(&tcp);
                    let Some(slot) = gw.open.take(gw.limits.max_connections) else {
                        conn::refuse(tcp);
                        continue;
                    };
                    match tcp.into_std() {
                        Ok(std) => {
                            let _ = senders[next % senders.len()].send((std, slot));
                            next = next.wrapping_add(1);
                        }
                        Err(e) => tracing::debug!(error = %e, "cannot hand a connection over"),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning, and log at most once a
                    // second.
                    log.error(&e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(senders);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await
    .context("worker join failed")?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Parse a JSON body already limited in size: 400 on bad JSON or a non-object (the engine's rule).
///
/// # Errors
/// The OpenRouter-shaped 400.
pub fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    polyroute::http_api::parse_object(body).map_err(ApiError::from)
}
