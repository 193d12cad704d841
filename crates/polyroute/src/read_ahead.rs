//! [`ReadAhead`]: a stream read ahead on the runtime, for a reader on a thread of its own (a binding's
//! JavaScript or Python thread). Once the first item is asked for, a task drives the stream (for a completion:
//! the upstream body and the translation of its events) and queues what it yields while the reader is busy with
//! the items it already has, up to [`AHEAD_ITEMS`] items and [`AHEAD_BYTES`] of their size.
//!
//! An engine stream ([`crate::SseStream`], [`crate::ChatStream`]) runs its work inside the reader's polls. That
//! suits a reader on the runtime (the gateway's connection task), but a reader on another thread then moves the
//! stream only while it polls: every item takes a wake-up of the upstream connection's task on a runtime thread
//! (hyper reads one chunk of a body per demand) and the reader's next poll, so a burst of events crosses one at a
//! time with two thread hand-offs each. Read ahead, a burst is waiting by the time the reader asks, and the
//! reader takes it in one go.
//!
//! Dropping a `ReadAhead` aborts its task, which drops the stream it reads (for a completion: cancels the
//! upstream request, as dropping the stream itself does). A reader that takes nothing holds what is queued here
//! as well as what the stream itself holds.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::chat_stream::Weigh;

/// Items queued ahead of the reader at most.
pub const AHEAD_ITEMS: usize = 64;
/// Bytes queued ahead of the reader at most (an item larger than that alone), as for an engine stream
/// ([`crate::STREAM_BUFFER_BYTES`]).
pub const AHEAD_BYTES: usize = crate::STREAM_BUFFER_BYTES;

/// `S` read ahead on a task once polled (see the module docs); polled outside a Tokio runtime, it reads `S` in
/// place.
pub struct ReadAhead<S: Stream> {
    state: State<S>,
}

enum State<S: Stream> {
    /// Not polled yet: nothing is read before the first item is asked for.
    Idle(S),
    Ahead {
        shared: Arc<Shared<S::Item>>,
        task: JoinHandle<()>,
    },
    /// No runtime to read ahead on.
    InPlace(S),
    Done,
}

/// The queue between the task and the reader.
struct Shared<T> {
    q: Mutex<Queued<T>>,
    /// The reader waiting for an item.
    reader: AtomicWaker,
    /// The task waiting for room.
    pump: AtomicWaker,
}

struct Queued<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    /// The stream ended (after the items queued).
    ended: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued<T>> {
        // Consistent after every statement: a panic elsewhere leaves it usable.
        self.q.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Queued<T> {
    fn has_room(&self) -> bool {
        self.items.is_empty() || (self.items.len() < AHEAD_ITEMS && self.bytes < AHEAD_BYTES)
    }
}

impl<S: Stream> ReadAhead<S> {
    /// Read `s` ahead from its first poll on.
    #[must_use]
    pub fn new(s: S) -> Self {
        Self {
            state: State::Idle(s),
        }
    }
}

impl<S: Stream> Drop for ReadAhead<S> {
    fn drop(&mut self) {
        if let State::Ahead { task, .. } = &self.state {
            task.abort();
        }
    }
}

impl<S> Stream for ReadAhead<S>
where
    S: Stream + Send + Unpin + 'static,
    S::Item: Weigh + Send + 'static,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        if matches!(this.state, State::Idle(_)) {
            this.start();
        }
        let next = match &mut this.state {
            State::Ahead { shared, .. } => take(shared, cx),
            State::InPlace(s) => s.poll_next_unpin(cx),
            State::Done => return Poll::Ready(None),
            State::Idle(_) => unreachable!("started above"),
        };
        if let Poll::Ready(None) = next {
            this.state = State::Done;
        }
        next
    }
}

impl<S> ReadAhead<S>
where
    S: Stream + Send + Unpin + 'static,
    S::Item: Weigh + Send + 'static,
{
    fn start(&mut self) {
        let State::Idle(s) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        self.state = match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let shared = Arc::new(Shared {
                    q: Mutex::new(Queued {
                        items: VecDeque::new(),
                        bytes: 0,
                        ended: false,
                    }),
                    reader: AtomicWaker::new(),
                    pump: AtomicWaker::new(),
                });
                State::Ahead {
                    task: rt.spawn(pump(s, shared.clone())),
                    shared,
                }
            }
            Err(_) => State::InPlace(s),
        };
    }
}

/// The reader's side: the next queued item, the end, or a wait (woken by the task).
fn take<T>(shared: &Shared<T>, cx: &mut Context<'_>) -> Poll<Option<T>> {
    for registered in [false, true] {
        let mut q = shared.lock();
        let was_full = !q.has_room();
        if let Some((item, weight)) = q.items.pop_front() {
            q.bytes -= weight;
            drop(q);
            if was_full {
                shared.pump.wake();
            }
            return Poll::Ready(Some(item));
        }
        if q.ended {
            return Poll::Ready(None);
        }
        drop(q);
        if registered {
            break;
        }
        // Registered before looking again: an item queued in between wakes this waker.
        shared.reader.register(cx.waker());
    }
    Poll::Pending
}

/// Marks the stream ended when the task stops for any reason: a panic in the stream it reads ends the
/// reader's stream instead of leaving the reader waiting.
struct EndOnDrop<'a, T>(&'a Shared<T>);

impl<T> Drop for EndOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.lock().ended = true;
        self.0.reader.wake();
    }
}

/// The task: `s`'s items into the queue until `s` ends, waiting while the queue is full.
async fn pump<S>(mut s: S, shared: Arc<Shared<S::Item>>)
where
    S: Stream + Unpin,
    S::Item: Weigh,
{
    let _end = EndOnDrop(&shared);
    loop {
        std::future::poll_fn(|cx| {
            if shared.lock().has_room() {
                return Poll::Ready(());
            }
            shared.pump.register(cx.waker());
            if shared.lock().has_room() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        let next = s.next().await;
        let Some(item) = next else {
            return;
        };
        let weight = item.weight();
        let mut q = shared.lock();
        q.bytes += weight;
        q.items.push_back((item, weight));
        drop(q);
        shared.reader.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stream of `n` items of `size` bytes that counts how many it gave.
    fn counted(n: usize, size: usize) -> (impl Stream<Item = Bytes> + Unpin, Arc<AtomicUsize>) {
        let given = Arc::new(AtomicUsize::new(0));
        let g = given.clone();
        let s = futures::stream::iter(0..n).map(move |i| {
            g.fetch_add(1, Ordering::SeqCst);
            Bytes::from(vec![(i % 251) as u8; size])
        });
        (Box::pin(s), given)
    }

    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn nothing_is_read_before_the_first_poll_then_a_burst_is_read_ahead() {
        let (s, given) = counted(10, 8);
        let mut p = ReadAhead::new(s);
        settle().await;
        assert_eq!(given.load(Ordering::SeqCst), 0);
        assert_eq!(p.next().await.map(|b| b[0]), Some(0));
        settle().await;
        assert_eq!(given.load(Ordering::SeqCst), 10, "the rest was read ahead");
        let mut rest = Vec::new();
        while let Some(Some(b)) = p.next().now_or_never() {
            rest.push(b[0]);
        }
        assert_eq!(rest, (1..10).collect::<Vec<u8>>(), "in order, then the end");
        assert!(matches!(p.state, State::Done));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_that_takes_nothing_holds_at_most_the_limits() {
        let (s, given) = counted(1000, 1);
        let mut p = ReadAhead::new(s);
        let _ = p.next().await;
        settle().await;
        // The first item was taken once the queue was full; then the queue filled again.
        assert_eq!(given.load(Ordering::SeqCst), AHEAD_ITEMS + 1);
        let _ = p.next().await;
        settle().await;
        assert_eq!(
            given.load(Ordering::SeqCst),
            AHEAD_ITEMS + 2,
            "one taken, one more read"
        );

        let big = AHEAD_BYTES / 4 + 1;
        let (s, given) = counted(100, big);
        let mut p = ReadAhead::new(s);
        let _ = p.next().await;
        settle().await;
        let held = given.load(Ordering::SeqCst) - 1;
        assert!(held * big >= AHEAD_BYTES, "held {held}");
        assert!((held - 1) * big < AHEAD_BYTES, "held {held}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_reader_drops_the_stream() {
        struct Flag(Arc<AtomicUsize>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let flag = Flag(dropped.clone());
        // One item, then a stream that never ends (an upstream that stalls).
        let s = futures::stream::iter([Bytes::from_static(b"a")])
            .chain(futures::stream::pending())
            .map(move |b| {
                let _keep = &flag;
                b
            });
        let mut p = ReadAhead::new(Box::pin(s));
        assert_eq!(p.next().await.as_deref(), Some(&b"a"[..]));
        settle().await;
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(p);
        settle().await;
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the stalled stream was dropped"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stream_that_panics_ends_the_readers_stream_after_its_items() {
        let s = futures::stream::iter(0..3).map(|i| {
            assert!(i < 2, "the stream read ahead panics at its third item");
            Bytes::from(vec![i; 1])
        });
        let mut p = ReadAhead::new(Box::pin(s));
        let mut got = Vec::new();
        while let Some(b) = p.next().await {
            got.push(b[0]);
        }
        assert_eq!(got, [0, 1]);
    }

    #[test]
    fn outside_a_runtime_the_stream_is_read_in_place() {
        let (s, given) = counted(3, 1);
        let mut p = ReadAhead::new(s);
        assert_eq!(p.next().now_or_never().flatten().map(|b| b[0]), Some(0));
        assert_eq!(given.load(Ordering::SeqCst), 1);
        assert!(matches!(p.state, State::InPlace(_)));
    }
}
