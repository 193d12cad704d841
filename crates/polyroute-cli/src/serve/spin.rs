//! Optional busy polling after request activity (`[server] spin_us`, `--spin-us`; off by default).
//!
//! A worker that sleeps in `epoll_wait` while its upstream call is out, or between two requests of a keep-alive
//! client, lets its CPU go idle; on virtual machines waking an idle CPU costs tens of microseconds per hop, more
//! than the gateway's own work. With a spin window, the worker's runtime keeps polling its sockets without
//! blocking (each `yield_now` makes the single-threaded scheduler poll the I/O driver with a zero timeout) until
//! no request has started or finished for the window, then sleeps as usual. The price is CPU: up to the window
//! after every burst of activity, never while idle.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

thread_local! {
    static SPIN: Cell<Option<(Duration, Instant)>> = const { Cell::new(None) };
    static WAKE: std::cell::RefCell<Option<Arc<Notify>>> = const { std::cell::RefCell::new(None) };
}

/// Start the spinner on this thread's single-threaded runtime (no-op for a zero window). Call it from inside a
/// current-thread runtime: the spinner must run on the thread whose activity it watches.
pub fn start(window: Duration) {
    if window.is_zero() {
        return;
    }
    if tokio::runtime::Handle::try_current().map_or(true, |h| {
        h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread
    }) {
        tracing::warn!("busy polling needs a current-thread runtime; left off");
        return;
    }
    let wake = Arc::new(Notify::new());
    SPIN.with(|s| s.set(Some((window, Instant::now()))));
    WAKE.with(|w| *w.borrow_mut() = Some(wake.clone()));
    // A single-threaded runtime: the task runs on this thread and sees its thread-locals.
    tokio::spawn(async move {
        loop {
            let busy = SPIN.with(|s| s.get().is_some_and(|(win, last)| last.elapsed() < win));
            if busy {
                tokio::task::yield_now().await;
            } else {
                wake.notified().await;
            }
        }
    });
}

/// Request activity on this thread: restart the window and wake the spinner.
pub fn active() {
    let on = SPIN.with(|s| match s.get() {
        Some((win, _)) => {
            s.set(Some((win, Instant::now())));
            true
        }
        None => false,
    });
    if on {
        WAKE.with(|w| {
            if let Some(n) = w.borrow().as_ref() {
                n.notify_one();
            }
        });
    }
}
