//! A stream that Python reads item by item (`for` and `async for`: chunk dicts, event dicts, SSE bytes), answered
//! from what the engine's read-ahead ([`polyroute::ReadAhead`]) already holds whenever it can.
//!
//! Waiting for an item on the runtime costs an asyncio `__anext__` a task, the GIL taken on a runtime thread,
//! and a wake-up of the event loop through `call_soon_threadsafe`: about 150 µs per item on a 2-core machine,
//! where a burst of streamed chunks arrives microseconds apart. So a read first looks into the read-ahead's
//! queue, on the calling thread and without waiting; an item already there is answered at once: by a future that
//! is already done for `__anext__` (`await` on it returns without a turn of the event loop), and without releasing
//! the GIL for `__next__`. Only an empty queue takes the runtime's way. Each such `__anext__` takes its place in
//! line for the stream before it returns (the lock is fair), and an item is taken at once only when no read is in
//! line, so `__anext__` calls made before earlier ones were awaited are still answered in the order they were
//! made.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{FutureExt, Stream, StreamExt};
use polyroute::{ReadAhead, Weigh};
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use crate::detached;
use crate::router::{awaitable, done};

/// Turns the next item (`None`: the stream ended) into the Python value an iterator answers, or its exception
/// (`StopAsyncIteration` at the end, for `async for`).
pub(crate) type Finish<T> = fn(Python<'_>, Option<T>) -> PyResult<Py<PyAny>>;

/// The reading side of a stream for Python: read ahead on the runtime, dropped (cancelling the upstream
/// request) when the iterator is closed or dropped.
pub(crate) struct Reader<S: Stream> {
    rt: Arc<Runtime>,
    stream: Arc<Mutex<Option<ReadAhead<S>>>>,
    /// Set by [`Reader::close`]: a read waiting on the runtime stops waiting and drops the stream.
    closed: watch::Sender<bool>,
}

type Guard<S> = OwnedMutexGuard<Option<ReadAhead<S>>>;

/// A read's place for the stream: holding it, or in line for it (the lock's future, polled once).
enum Turn<S: Stream, F> {
    Held(Guard<S>),
    InLine(Pin<Box<F>>),
}

/// The next item of the stream `g` holds (`None` when it ends or is closed, which drops it).
async fn read<S>(mut g: Guard<S>, mut closed: watch::Receiver<bool>) -> Option<S::Item>
where
    S: Stream + Send + Unpin + 'static,
    S::Item: Weigh + Send + 'static,
{
    let s = g.as_mut()?;
    let item = tokio::select! {
        item = s.next() => item,
        _ = closed.wait_for(|c| *c) => None,
    };
    if item.is_none() {
        *g = None;
    }
    item
}

impl<S> Reader<S>
where
    S: Stream + Send + Unpin + 'static,
    S::Item: Weigh + Send + 'static,
{
    pub(crate) fn new(rt: Arc<Runtime>, stream: S) -> Self {
        Self {
            rt,
            stream: Arc::new(Mutex::new(Some(ReadAhead::new(stream)))),
            closed: watch::channel(false).0,
        }
    }

    /// The next item if it can be had without waiting: `Some(None)` when the stream ended (or was closed),
    /// `None` when the caller must wait (nothing queued yet, or another read holds or waits for the stream).
    fn ready(&self) -> Option<Option<S::Item>> {
        let mut g = self.stream.try_lock().ok()?;
        let item = match g.as_mut() {
            None => None,
            Some(_) if *self.closed.borrow() => None,
            Some(s) => {
                // The first read starts the read-ahead's task, which needs the runtime.
                let _entered = self.rt.enter();
                s.next().now_or_never()?
            }
        };
        if item.is_none() {
            *g = None;
        }
        Some(item)
    }

    /// The next item for `for`: at once when it is there, else waited for with the GIL released.
    pub(crate) fn next_blocking(&self, py: Python<'_>) -> Option<S::Item> {
        if let Some(item) = self.ready() {
            return item;
        }
        let (s, c) = (self.stream.clone(), self.closed.subscribe());
        detached(py, || {
            self.rt
                .block_on(async move { read(s.lock_owned().await, c).await })
        })
    }

    /// The next item for `async for`: an asyncio future, already done when the item is there.
    pub(crate) fn anext<'py>(
        &self,
        py: Python<'py>,
        finish: Finish<S::Item>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(item) = self.ready() {
            return done(py, finish(py, item));
        }
        // In line for the stream now, before the task runs: reads are served in the order they were made.
        let mut lock = Box::pin(self.stream.clone().lock_owned());
        let held = match lock
            .as_mut()
            .poll(&mut Context::from_waker(futures::task::noop_waker_ref()))
        {
            Poll::Ready(g) => Turn::Held(g),
            Poll::Pending => Turn::InLine(lock),
        };
        let closed = self.closed.subscribe();
        awaitable(
            py,
            async move {
                let g = match held {
                    Turn::Held(g) => g,
                    Turn::InLine(lock) => lock.await,
                };
                read(g, closed).await
            },
            finish,
        )
    }

    /// Stop the stream and cancel the upstream request (never waits: a read waiting on the runtime ends, and
    /// drops the stream).
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
        if let Ok(mut g) = self.stream.try_lock() {
            g.take();
        }
    }
}
