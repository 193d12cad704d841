//! Connection handling: every connection is served by hyper's HTTP/1 server with a header-read timeout (which
//! also closes idle keep-alive connections: the timer runs whenever the server waits for a request head), under
//! a connection cap that refuses the excess with a clear `503`; accept errors are logged at most once a second;
//! the soft file-descriptor limit is raised at start where the hard limit allows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Default time to receive a whole request head, and the longest a keep-alive connection may sit idle (10 s).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to receive a whole request body once its head arrived (30 s).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open client connections (further ones are refused with a 503).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// File descriptors kept free of client connections (upstream sockets, the ledger, logs).
pub const FD_RESERVE: u64 = 256;

/// The answer to a connection over the cap (then closed).
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 93\r\n\r\n{\"error\":{\"code\":503,\"message\":\"Too many open connections to this gateway; retry shortly.\"}}\n";

/// Limits on client connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// See [`DEFAULT_BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Open client connections, shared by the accept loop and every worker.
#[derive(Debug, Clone, Default)]
pub struct Open(Arc<AtomicUsize>);

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Open {
    /// A place for one more connection, unless `max` are open.
    #[must_use]
    pub fn take(&self, max: usize) -> Option<Slot> {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur >= max {
                return None;
            }
            match self
                .0
                .compare_exchange_weak(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Slot(self.0.clone())),
                Err(now) => cur = now,
            }
        }
    }

    /// How many connections are open.
    #[must_use]
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// Answer a connection over the cap with [`REFUSAL`] and close it (within one second whatever the peer does).
pub fn refuse(tcp: TcpStream) {
    tokio::spawn(async move {
        let mut tcp = tcp;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if tcp.write_all(REFUSAL).await.is_ok() {
                let _ = tcp.shutdown().await;
                // Read what the client sent so that closing does not reset the connection before it reads the
                // answer.
                let mut sink = [0u8; 4096];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        })
        .await;
    });
}

/// Serve one connection with `app` on the current runtime, watched by `graceful`; `slot` is held until it
/// closes.
pub fn serve(
    tcp: TcpStream,
    app: axum::Router,
    limits: &ConnLimits,
    graceful: &GracefulShutdown,
    slot: Slot,
) {
    let svc = TowerToHyperService::new(app);
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = graceful.watch(b.serve_connection(TokioIo::new(tcp), svc));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        drop(slot);
    });
}

/// Accept errors (out of file descriptors and the like) logged at most once a second, with the count of those
/// left out.
#[derive(Debug, Default)]
pub struct AcceptLog {
    last: Option<Instant>,
    quiet: u64,
}

impl AcceptLog {
    /// Record one accept error; true when it was logged.
    pub fn error(&mut self, e: &std::io::Error) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.quiet += 1;
            return false;
        }
        tracing::warn!(error = %e, suppressed = self.quiet, "accept failed");
        self.last = Some(now);
        self.quiet = 0;
        true
    }
}

/// Raise the soft limit on open files to the hard limit; the soft limit in force after (None where unknown).
#[must_use]
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut l = getrlimit(Resource::Nofile);
        let before = l.current;
        if let (Some(cur), Some(max)) = (l.current, l.maximum) {
            if cur < max {
                l.current = Some(max);
                if setrlimit(Resource::Nofile, l).is_err() {
                    return before;
                }
            }
            return getrlimit(Resource::Nofile).current;
        }
        // Unlimited hard limit: leave the soft one.
        before
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap that fits `fds` open files (keeping [`FD_RESERVE`] for everything else), at most
/// `configured`.
#[must_use]
pub fn cap_for_fds(configured: usize, fds: Option<u64>) -> usize {
    match fds {
        Some(n) => {
            let fit =
                usize::try_from(n.saturating_sub(FD_RESERVE).max(n / 2)).unwrap_or(usize::MAX);
            configured.min(fit.max(1))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_freed() {
        let open = Open::default();
        let a = open.take(2);
        let b = open.take(2);
        assert!(a.is_some() && b.is_some());
        assert!(open.take(2).is_none());
        drop(a);
        assert_eq!(open.count(), 1);
        assert!(open.take(2).is_some());
    }

    #[test]
    fn accept_errors_are_rate_limited() {
        let mut log = AcceptLog::default();
        let e = std::io::Error::other("EMFILE");
        let logged = (0..2750).filter(|_| log.error(&e)).count();
        assert_eq!(logged, 1);
    }

    #[test]
    fn the_cap_leaves_room_for_other_files() {
        assert_eq!(cap_for_fds(4096, Some(512)), 256);
        assert_eq!(cap_for_fds(4096, Some(1_048_576)), 4096);
        assert_eq!(cap_for_fds(100, None), 100);
    }

    #[test]
    fn the_refusal_is_one_valid_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or("");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head} / {}",
            body.len()
        );
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
