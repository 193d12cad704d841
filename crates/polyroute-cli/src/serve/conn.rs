//! Connection handling: every connection is served by hyper's HTTP/1 server with a header-read timeout (which
//! also closes idle keep-alive connections: the timer runs whenever the server waits for a request head), under
//! a connection cap that refuses the excess with a clear `503`; accept errors are logged at most once a second;
//! the soft file-descriptor limit is raised at start where the hard limit allows.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
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

/// Serve one connection with `app` on the current runtime, watched by `drain`; `slot` is held until it
/// closes.
pub fn serve(tcp: TcpStream, app: axum::Router, limits: &ConnLimits, drain: &Drain, slot: Slot) {
    let svc = TowerToHyperService::new(app);
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = drain.watch(b.serve_connection(TokioIo::new(tcp), svc));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        drop(slot);
    });
}

/// The graceful stop of a set of connections: [`Drain::shutdown`] asks each to finish the request it serves and
/// close, then waits until all have closed.
///
/// A watched connection looks at one flag when it is polled (a server polls its connection once per body chunk
/// it writes) and registers its task's waker once, to be woken by the stop; a channel polled beside every
/// connection poll (what a `watch` receiver does) cost a stream about 2k instructions of its 12 polls.
#[derive(Debug, Default)]
pub struct Drain(Arc<DrainState>);

#[derive(Debug, Default)]
struct DrainState {
    stopping: AtomicBool,
    /// The wakers of the watched connections, by their number.
    wakers: Mutex<HashMap<u64, Waker>>,
    next: AtomicU64,
    /// Connections watched and not yet closed (dropped).
    live: AtomicUsize,
    /// Notified when the last watched connection closes while stopping.
    idle: tokio::sync::Notify,
}

impl DrainState {
    fn wakers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection that can be asked to finish its request and close.
pub trait Closable: Future {
    /// Finish the request under way (if any), then close.
    fn close(self: Pin<&mut Self>);
}

impl<I, S, B> Closable for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl Drain {
    /// `conn`, closed gracefully by [`Drain::shutdown`] (at once when that has begun).
    pub fn watch<C: Closable + Unpin>(&self, conn: C) -> Watched<C> {
        self.0.live.fetch_add(1, Ordering::AcqRel);
        Watched {
            conn,
            drain: self.0.clone(),
            id: self.0.next.fetch_add(1, Ordering::Relaxed),
            waker: None,
            closing: false,
        }
    }

    /// Ask every watched connection to close once its request is answered, then wait until all have closed.
    pub async fn shutdown(&self) {
        let d = &self.0;
        d.stopping.store(true, Ordering::Release);
        let wakers: Vec<Waker> = d.wakers().drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
        while d.live.load(Ordering::Acquire) > 0 {
            let idle = d.idle.notified();
            if d.live.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
    }

    /// Connections watched and not yet closed.
    #[must_use]
    pub fn live(&self) -> usize {
        self.0.live.load(Ordering::Acquire)
    }
}

/// A connection watched by a [`Drain`].
#[derive(Debug)]
pub struct Watched<C> {
    conn: C,
    drain: Arc<DrainState>,
    id: u64,
    /// The waker registered for the stop (the task's, which stays the same from poll to poll).
    waker: Option<Waker>,
    closing: bool,
}

impl<C: Closable + Unpin> Future for Watched<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let me = &mut *self;
        if !me.closing {
            if !me.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                let w = cx.waker().clone();
                me.drain.wakers().insert(me.id, w.clone());
                me.waker = Some(w);
            }
            // Read after the waker is in place: a stop that began before it was added is seen here, and one
            // that begins after finds it.
            if me.drain.stopping.load(Ordering::Acquire) {
                me.closing = true;
                Pin::new(&mut me.conn).close();
            }
        }
        Pin::new(&mut me.conn).poll(cx)
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        if self.waker.is_some() {
            self.drain.wakers().remove(&self.id);
        }
        if self.drain.live.fetch_sub(1, Ordering::AcqRel) == 1
            && self.drain.stopping.load(Ordering::Acquire)
        {
            self.drain.idle.notify_one();
        }
    }
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
    #![allow(clippy::expect_used)] // tests assert by panicking
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

    /// A connection that serves until it is asked to close, then ends at its next poll.
    struct Fake {
        closed: Arc<AtomicBool>,
        polls: Arc<AtomicUsize>,
    }

    impl Future for Fake {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.closed.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl Closable for Fake {
        fn close(self: Pin<&mut Self>) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    fn fake() -> (Fake, Arc<AtomicBool>, Arc<AtomicUsize>) {
        let closed = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let f = Fake {
            closed: closed.clone(),
            polls: polls.clone(),
        };
        (f, closed, polls)
    }

    #[tokio::test]
    async fn a_drain_closes_idle_connections_and_waits_for_them() {
        let drain = Drain::default();
        let (a, a_closed, a_polls) = fake();
        let (b, b_closed, _) = fake();
        let ta = tokio::spawn(drain.watch(a));
        let tb = tokio::spawn(drain.watch(b));
        // Both wait (registered with the drain), neither asked to close.
        for _ in 0..50 {
            if a_polls.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(a_polls.load(Ordering::SeqCst), 1);
        assert!(!a_closed.load(Ordering::SeqCst) && !b_closed.load(Ordering::SeqCst));
        assert_eq!(drain.live(), 2);
        // The stop wakes them, they close, and it returns once both are gone.
        tokio::time::timeout(Duration::from_secs(5), drain.shutdown())
            .await
            .expect("the drain waits only for its connections");
        assert!(a_closed.load(Ordering::SeqCst) && b_closed.load(Ordering::SeqCst));
        assert_eq!(drain.live(), 0);
        ta.await.expect("a ended");
        tb.await.expect("b ended");
    }

    #[tokio::test]
    async fn a_drain_waits_for_a_connection_that_is_slow_to_close() {
        let drain = Arc::new(Drain::default());
        // A connection polled only by hand: it is asked to close but not dropped until later.
        let (c, closed, _) = fake();
        let mut w = Box::pin(drain.watch(c));
        let waker = futures::task::noop_waker();
        assert!(w
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let d = drain.clone();
        let stop = tokio::spawn(async move { d.shutdown().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !stop.is_finished(),
            "the stop returned with a connection open"
        );
        // Polled again (as its task would be, once woken): it sees the stop and closes.
        assert!(w.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
        assert!(closed.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !stop.is_finished(),
            "the stop returned before the connection was dropped"
        );
        assert_eq!(drain.live(), 1);
        drop(w);
        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .expect("the stop ends once the connection is dropped")
            .expect("the stop task");
        // A connection watched after the stop began closes at its first poll.
        let (late, late_closed, _) = fake();
        let mut w = Box::pin(drain.watch(late));
        assert!(w.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
        assert!(late_closed.load(Ordering::SeqCst));
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
