//! [`ChatStream`] and [`SseStream`]: the caller's end of a streamed completion, and where the engine's stream
//! work sends what it translates ([`ChunkTx`], [`Held`]).
//!
//! Both forms run their work inside the reader's own poll (no task, no channel, no wake-up of another task per
//! event): a poll drives the work until it waits, and what it wrote goes to a queue the same poll takes from.
//! The work is polled only when something it waits on woke it (or it waits for room the reader just made). When the reader
//! drops the stream before the work is done, the work moves to a task of its own and sees the reader gone, so a
//! generation is still recorded and billed, as with a task from the start.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::task::AtomicWaker;
use futures::Stream;
use polyroute_core::providers::{write_json_str, StreamTranslator};
use polyroute_core::Result;
use serde_json::Value;

use crate::billing::Billed;
use crate::wire;

/// The chunks of a streamed completion. Dropping it cancels the upstream request (the generation is still
/// recorded, `cancelled`, and billed for what was produced). A reader that does not take chunks holds at most 64
/// of them and about [`STREAM_BUFFER_BYTES`] of their size ([`value_weight`]); past that the stream's work waits.
/// The work runs inside this stream's polls, as an [`SseStream`]'s does.
pub struct ChatStream(Inline<Value>);

impl ChatStream {
    /// A stream whose work `make` builds around the sending end (within a tokio runtime).
    pub(crate) fn new<F>(make: impl FnOnce(ChunkTx) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self(Inline::new(|q| make(ChunkTx::Values(q))))
    }
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChatStream")
    }
}

impl Stream for ChatStream {
    type Item = Result<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_item(cx)
    }
}

/// A streamed completion as SSE bytes: each item holds one or more whole `data: {json}\n\n` events (the same
/// chunks, in the same order, as a [`ChatStream`]); an error before any chunk comes as `Err`. No `[DONE]`.
/// Dropping it cancels the upstream request, as for a [`ChatStream`].
pub struct SseStream(Inline<Bytes>);

impl SseStream {
    /// A stream whose work `make` builds around the sending end (within a tokio runtime).
    pub(crate) fn new<F>(make: impl FnOnce(ChunkTx) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self(Inline::new(|q| make(ChunkTx::Sse(q))))
    }

    /// Whether a poll now would find nothing queued while the work still runs (checked without the poll's
    /// cost; the work itself is driven only by a poll).
    pub(crate) fn nothing_waiting(&self) -> bool {
        self.0.work.is_some() && self.0.queue.is_empty()
    }
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SseStream")
    }
}

impl Stream for SseStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_item(cx)
    }
}

/// The reader's end of a stream whose work runs inside the reader's polls (within the runtime it was made in,
/// whichever thread polls), and on a task of that runtime once the reader drops it before the work ended.
struct Inline<T: Weigh> {
    queue: Arc<Queue<T>>,
    work: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Whether the work was woken, and the reader to wake then.
    flag: Arc<WorkWaker>,
    /// The waker the work is polled with (over `flag`): it notes that the work was woken, then wakes the reader.
    waker: Waker,
    rt: tokio::runtime::Handle,
}

/// What wakes an [`Inline`] stream's work: a flag, so that the reader's polls for other reasons (a server polls
/// its body whenever it has written) do not poll the whole work again, and the reader's waker.
#[derive(Default)]
struct WorkWaker {
    woken: AtomicBool,
    reader: AtomicWaker,
}

impl std::task::Wake for WorkWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.reader.wake();
    }
}

impl<T: Weigh> Inline<T> {
    fn new<F>(make: impl FnOnce(Arc<Queue<T>>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let queue = Arc::new(Queue::default());
        // The work's state is large (the attempt, its translator, billing): built straight into its heap slot.
        let work: Box<F> = Box::write(Box::new_uninit(), make(queue.clone()));
        let work: Pin<Box<dyn Future<Output = ()> + Send>> = Box::into_pin(work);
        let flag = Arc::new(WorkWaker::default());
        // The first poll runs the work.
        flag.woken.store(true, Ordering::Relaxed);
        Self {
            queue,
            work: Some(work),
            waker: Waker::from(flag.clone()),
            flag,
            rt: tokio::runtime::Handle::current(),
        }
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if let Some(item) = self.queue.pop() {
            return Poll::Ready(Some(item));
        }
        let Some(work) = self.work.as_mut() else {
            return Poll::Ready(None);
        };
        // The work runs only when something it waits on woke it, or when it waits for the room now made.
        self.flag.reader.register(cx.waker());
        let woken = self.flag.woken.swap(false, Ordering::AcqRel);
        let room = self.queue.blocked.swap(false, Ordering::Relaxed);
        if !woken && !room {
            return Poll::Pending;
        }
        let polled = {
            // The work's timers, sockets and tasks are the runtime's: a poll from outside any task (a binding's
            // synchronous read on its own thread, a `block_on`) enters it.
            let _rt = tokio::task::try_id().is_none().then(|| self.rt.enter());
            work.as_mut().poll(&mut Context::from_waker(&self.waker))
        };
        if polled.is_ready() {
            self.work = None;
        }
        match self.queue.pop() {
            Some(item) => Poll::Ready(Some(item)),
            None if self.work.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl<T: Weigh> Drop for Inline<T> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            // The reader is gone: the work sees it at its next step (a send fails, the wait for the caller
            // ends), cancels the upstream request and bills what was produced, on a task of its own.
            self.queue.gone.store(true, Ordering::Release);
            self.queue.clear();
            drop(self.rt.spawn(work));
        }
    }
}

/// What a stream's work has written and the reader not yet taken: at most 64 items and [`STREAM_BUFFER_BYTES`]
/// of their weight (an item larger than that alone), past which the work waits for the reader.
pub(crate) struct Queue<T> {
    /// The reader dropped the stream.
    gone: AtomicBool,
    /// The work waits for room (it keeps no waker: the reader polls it again once the queue is empty).
    blocked: AtomicBool,
    /// How many items `q` holds (read without the lock: most reader polls find none).
    len: AtomicUsize,
    q: Mutex<Queued<T>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            gone: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            len: AtomicUsize::new(0),
            q: Mutex::new(Queued {
                items: VecDeque::new(),
                bytes: 0,
            }),
        }
    }
}

struct Queued<T> {
    /// Each item with the weight it was counted for.
    items: VecDeque<(Result<T>, usize)>,
    bytes: usize,
}

/// Items a [`Queue`] holds at most.
const QUEUED_ITEMS: usize = 64;

impl<T: Weigh> Queue<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queued<T>> {
        // The queue's state is consistent after every statement: a panic elsewhere leaves it usable.
        self.q.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    fn pop(&self) -> Option<Result<T>> {
        if self.is_empty() {
            return None;
        }
        let mut q = self.lock();
        let (item, weight) = q.items.pop_front()?;
        self.len.store(q.items.len(), Ordering::Release);
        q.bytes -= weight;
        Some(item)
    }

    fn clear(&self) {
        let mut q = self.lock();
        q.items.clear();
        q.bytes = 0;
        self.len.store(0, Ordering::Release);
    }

    /// Queue `item` when there is room (taken from `item`): `Ready(true)`; `Ready(false)` when the reader is
    /// gone. `Pending` when full, with no waker kept but the `blocked` flag: the reader takes an item first and
    /// polls the work again once the queue is empty, so the work is always polled again while the reader is there.
    fn try_push(&self, item: &mut Option<Result<T>>, weight: usize) -> Poll<bool> {
        if self.gone.load(Ordering::Acquire) {
            return Poll::Ready(false);
        }
        let mut q = self.lock();
        let full =
            q.items.len() >= QUEUED_ITEMS || q.bytes.saturating_add(weight) > STREAM_BUFFER_BYTES;
        if full && !q.items.is_empty() {
            self.blocked.store(true, Ordering::Relaxed);
            return Poll::Pending;
        }
        if let Some(it) = item.take() {
            q.bytes += weight;
            q.items.push_back((it, weight));
            self.len.store(q.items.len(), Ordering::Release);
        }
        Poll::Ready(true)
    }

    /// Send once the reader has room for `item`; false when the reader went away.
    async fn send(&self, item: Result<T>) -> bool {
        let weight = item.weight();
        let mut item = Some(item);
        std::future::poll_fn(|_| self.try_push(&mut item, weight)).await
    }

    /// Whether the reader went away.
    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Resolves when the reader went away (no waker is kept: the flag is set only before the work moves to a
    /// task of its own, which polls it afresh).
    async fn closed(&self) {
        std::future::poll_fn(|_| {
            if self.is_gone() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// Bytes a stream holds for a reader that has not taken them yet (256 KiB; for a [`ChatStream`], the chunks'
/// [`value_weight`]): past it the stream's work waits (and so reads no more from the provider), whatever the size
/// of each item.
pub const STREAM_BUFFER_BYTES: usize = 256 * 1024;

/// The size an item counts for in a stream's byte budget (an error: nothing).
pub trait Weigh {
    /// Approximate bytes the item holds.
    fn weight(&self) -> usize;
}

impl<T: Weigh, E> Weigh for std::result::Result<T, E> {
    fn weight(&self) -> usize {
        self.as_ref().map_or(0, Weigh::weight)
    }
}

impl Weigh for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for Value {
    fn weight(&self) -> usize {
        value_weight(self)
    }
}

/// Approximate memory a JSON value holds: one node size per value plus its strings' and keys' bytes. Linear in
/// the value (whose depth the JSON parser already bounds).
#[must_use]
pub fn value_weight(v: &Value) -> usize {
    let node = std::mem::size_of::<Value>();
    node.saturating_add(match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(value_weight).fold(0, usize::saturating_add),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| k.len().saturating_add(node).saturating_add(value_weight(v)))
            .fold(0, usize::saturating_add),
    })
}

/// Append `data: <json>\n\n` (the encoding `StreamTranslator::push_sse_into` writes).
pub(crate) fn write_event(buf: &mut Vec<u8>, v: &Value) {
    buf.extend_from_slice(b"data: ");
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *buf, v);
    buf.extend_from_slice(b"\n\n");
}

/// What a stream's own chunks (the last, billed one) are named by: the generation id, `created`, the model and
/// the provider, borrowed from the admission and the attempt (as a `ResponseContext` holds them, without copies).
pub(crate) struct ChunkIds<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
    pub provider_name: &'a str,
}

/// Where a stream's work sends chunks: as values ([`ChatStream`]) or SSE-encoded ([`SseStream`]).
pub(crate) enum ChunkTx {
    Values(Arc<Queue<Value>>),
    Sse(Arc<Queue<Bytes>>),
}

impl ChunkTx {
    /// An empty buffer for translated chunks in this sender's form.
    pub fn held(&self) -> Held {
        match self {
            ChunkTx::Values(_) => Held::Values(Vec::new()),
            ChunkTx::Sse(_) => Held::Sse(Vec::with_capacity(4096), 0),
        }
    }

    /// Resolves when the caller went away (the receiving stream was dropped).
    pub async fn closed(&self) {
        match self {
            ChunkTx::Values(q) => q.closed().await,
            ChunkTx::Sse(q) => q.closed().await,
        }
    }

    /// Whether the caller went away.
    pub fn is_closed(&self) -> bool {
        match self {
            ChunkTx::Values(q) => q.is_gone(),
            ChunkTx::Sse(q) => q.is_gone(),
        }
    }

    /// Send one chunk; false when the caller went away.
    pub async fn chunk(&self, v: Value) -> bool {
        match self {
            ChunkTx::Values(tx) => tx.send(Ok(v)).await,
            ChunkTx::Sse(tx) => {
                let mut buf = Vec::with_capacity(256);
                write_event(&mut buf, &v);
                tx.send(Ok(Bytes::from(buf))).await
            }
        }
    }

    /// Send a stream's last chunk: `choices: []` with the billed `usage` (and `openrouter_metadata` when asked
    /// for); false when the caller went away. SSE: written as text, the bytes of encoding the chunk value.
    pub async fn usage_chunk(
        &self,
        rc: &ChunkIds<'_>,
        billed: &Billed,
        metadata: Option<Value>,
    ) -> bool {
        match self {
            ChunkTx::Values(_) => {
                let mut last = serde_json::json!({"id": rc.id, "object": "chat.completion.chunk",
                    "created": rc.created, "model": rc.model, "provider": rc.provider_name,
                    "choices": [], "usage": billed.to_value()});
                if let Some(m) = metadata {
                    last["openrouter_metadata"] = m;
                }
                self.chunk(last).await
            }
            ChunkTx::Sse(tx) => {
                let mut buf = Vec::with_capacity(512);
                buf.extend_from_slice(b"data: {\"id\":");
                write_json_str(&mut buf, rc.id);
                buf.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
                buf.extend_from_slice(itoa::Buffer::new().format(rc.created).as_bytes());
                buf.extend_from_slice(b",\"model\":");
                write_json_str(&mut buf, rc.model);
                buf.extend_from_slice(b",\"provider\":");
                write_json_str(&mut buf, rc.provider_name);
                buf.extend_from_slice(b",\"choices\":[],\"usage\":");
                billed.write_json(&mut buf);
                if let Some(m) = metadata {
                    buf.extend_from_slice(b",\"openrouter_metadata\":");
                    let _ = serde_json::to_writer(&mut buf, &m);
                }
                buf.extend_from_slice(b"}\n\n");
                tx.send(Ok(Bytes::from(buf))).await
            }
        }
    }

    /// Send an error (the stream ends after it).
    pub async fn error(&self, e: polyroute_core::Error) {
        let _ = match self {
            ChunkTx::Values(tx) => tx.send(Err(e)).await,
            ChunkTx::Sse(tx) => tx.send(Err(e)).await,
        };
    }

    /// [`flush`](Self::flush) of SSE bytes when the reader has room, without a future: `Some(sent)`; `None` when
    /// it has none (nothing is sent then) or for values (`flush` sends those).
    pub fn try_flush(&self, held: &mut Held) -> Option<bool> {
        let (ChunkTx::Sse(tx), Held::Sse(h, n)) = (self, held) else {
            return None;
        };
        if h.is_empty() {
            return Some(true);
        }
        let weight = h.len();
        // A copy of exactly the held bytes (one allocation, no shared header); the buffer is reused.
        let mut item = Some(Ok(Bytes::copy_from_slice(h)));
        match tx.try_push(&mut item, weight) {
            Poll::Ready(sent) => {
                h.clear();
                *n = 0;
                Some(sent)
            }
            Poll::Pending => None,
        }
    }

    /// Send every held chunk, emptying `held`; false when the caller went away.
    pub async fn flush(&self, held: &mut Held) -> bool {
        match (self, held) {
            (ChunkTx::Values(tx), Held::Values(h)) => {
                for v in h.drain(..) {
                    if !tx.send(Ok(v)).await {
                        return false;
                    }
                }
                true
            }
            (ChunkTx::Sse(tx), Held::Sse(h, n)) => {
                if h.is_empty() {
                    return true;
                }
                // A copy of exactly the held bytes (one allocation, no shared header); the buffer is reused.
                let bytes = Bytes::copy_from_slice(h);
                h.clear();
                *n = 0;
                tx.send(Ok(bytes)).await
            }
            // `held` comes from `ChunkTx::held`, so the forms always match.
            (ChunkTx::Values(_), Held::Sse(..)) | (ChunkTx::Sse(_), Held::Values(_)) => true,
        }
    }
}

/// Translated chunks not yet sent: values, or their SSE encoding written by the translator directly and how
/// many events that is (as the translator counted them while writing).
pub(crate) enum Held {
    Values(Vec<Value>),
    Sse(Vec<u8>, u64),
}

impl Held {
    /// A position to compare against after the next push.
    pub fn mark(&self) -> usize {
        match self {
            Held::Values(v) => v.len(),
            Held::Sse(b, _) => b.len(),
        }
    }

    /// How many chunks are held.
    pub fn events(&self) -> u64 {
        match self {
            Held::Values(v) => v.len() as u64,
            Held::Sse(_, n) => *n,
        }
    }

    /// Translate body bytes into the held chunks.
    pub fn push(&mut self, tr: &mut StreamTranslator, bytes: &[u8]) {
        match self {
            Held::Values(v) => tr.push_into(bytes, v),
            Held::Sse(b, n) => {
                let before = tr.sse_events();
                tr.push_sse_into(bytes, b);
                *n += tr.sse_events() - before;
            }
        }
    }

    /// The body ended: the translator's final chunks, without its usage chunk (the engine sends the billed one).
    pub fn finish(&mut self, tr: &mut StreamTranslator) {
        match self {
            Held::Values(h) => {
                let mut v = tr.finish();
                v.retain(|c| !wire::is_usage_chunk(c));
                h.extend(v);
            }
            Held::Sse(b, n) => {
                let before = tr.sse_events();
                tr.finish_sse_into_without_usage(b);
                *n += tr.sse_events() - before;
            }
        }
    }

    /// Take the last chunk added since `mark`, returned when it is an error chunk (a failed translator's last).
    pub fn pop_error_since(&mut self, mark: usize) -> Option<Value> {
        let last = match self {
            Held::Values(h) => (h.len() > mark).then(|| h.pop()).flatten(),
            Held::Sse(b, n) => {
                if b.len() <= mark || !b.ends_with(b"\n\n") {
                    return None;
                }
                // Events are `data: <compact json>\n\n` and compact JSON has no raw newline, so the last event
                // starts after the last blank line before the final one.
                let body_end = b.len() - 2;
                let start = b[mark..body_end]
                    .windows(2)
                    .rposition(|w| w == b"\n\n")
                    .map_or(mark, |p| mark + p + 2);
                let v = b
                    .get(start..body_end)
                    .and_then(|e| e.strip_prefix(b"data: "))
                    .and_then(|j| serde_json::from_slice::<Value>(j).ok());
                b.truncate(start);
                *n = n.saturating_sub(1);
                v
            }
        };
        last.filter(|c| c.get("error").is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests assert by unwrapping
mod tests {
    use super::*;
    use polyroute_core::providers::{Dialect, ResponseContext};
    use serde_json::json;

    const CUT: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\\n\\nthere\"}}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

    fn both(body: &[u8]) -> (Held, Held, Option<Value>, Option<Value>) {
        let mut values = Held::Values(Vec::new());
        let mut sse = Held::Sse(Vec::new(), 0);
        let mut tv = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
        let mut ts = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
        let (mv, ms) = (values.mark(), sse.mark());
        values.push(&mut tv, body);
        sse.push(&mut ts, body);
        let ev = values.pop_error_since(mv);
        let es = sse.pop_error_since(ms);
        (values, sse, ev, es)
    }

    #[test]
    fn sse_form_matches_values_and_splits_off_the_error_chunk() {
        let (values, sse, ev, es) = both(CUT);
        let (Held::Values(v), Held::Sse(b, _)) = (values, sse) else {
            panic!("forms")
        };
        let mut encoded = Vec::new();
        v.iter().for_each(|c| write_event(&mut encoded, c));
        assert_eq!(
            String::from_utf8(b).unwrap(),
            String::from_utf8(encoded).unwrap()
        );
        assert!(ev.is_some() && ev == es, "{ev:?} vs {es:?}");
        assert_eq!(ev.unwrap()["choices"][0]["finish_reason"], "error");
    }

    /// The SSE form counts as many events as the value form holds chunks (each event's one blank line).
    #[test]
    fn events_are_counted_alike_in_both_forms() {
        let (values, sse, _, _) = both(CUT);
        assert!(values.events() >= 2, "{}", values.events());
        assert_eq!(values.events(), sse.events());
        let Held::Sse(b, _) = &sse else {
            panic!("form")
        };
        let blank_lines = b.windows(2).filter(|w| *w == b"\n\n").count() as u64;
        assert_eq!(sse.events(), blank_lines);
    }

    #[test]
    fn finish_drops_the_usage_chunk_in_both_forms() {
        let ok = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n";
        let mut tv = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
        let mut ts = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
        let (mut values, mut sse) = (Held::Values(Vec::new()), Held::Sse(Vec::new(), 0));
        values.push(&mut tv, ok);
        sse.push(&mut ts, ok);
        values.finish(&mut tv);
        sse.finish(&mut ts);
        let (Held::Values(v), Held::Sse(b, _)) = (values, sse) else {
            panic!("forms")
        };
        assert!(!v.is_empty() && v.iter().all(|c| !wire::is_usage_chunk(c)));
        let mut encoded = Vec::new();
        v.iter().for_each(|c| write_event(&mut encoded, c));
        assert_eq!(b, encoded);
        assert_eq!(ts.usage().map(|u| u.total_tokens), Some(4));
    }

    /// An SSE stream whose work flushes `n` items of `size` bytes, counting what it queued.
    fn producing(n: usize, size: usize) -> (SseStream, Arc<AtomicUsize>) {
        let queued = Arc::new(AtomicUsize::new(0));
        let count = queued.clone();
        let s = SseStream::new(move |tx| async move {
            for _ in 0..n {
                let mut held = Held::Sse(vec![b'x'; size], 1);
                if !tx.flush(&mut held).await {
                    break;
                }
                count.fetch_add(size, Ordering::SeqCst);
            }
        });
        (s, queued)
    }

    /// A reader that takes nothing holds at most [`STREAM_BUFFER_BYTES`] and 64 items, however large or small
    /// the events: the work waits. Reading everything lets it finish, every byte in order.
    #[tokio::test]
    async fn a_stalled_reader_bounds_the_queue_in_bytes_and_items() {
        use futures::StreamExt;
        let (mut stream, queued) = producing(64, 64 * 1024);
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.len(), 64 * 1024);
        // Nothing more runs while the reader takes nothing.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let held = queued.load(Ordering::SeqCst);
        assert!(held <= STREAM_BUFFER_BYTES, "held {held} bytes");
        assert!(held >= STREAM_BUFFER_BYTES / 2, "held only {held} bytes");
        let mut got = first.len();
        while let Some(Ok(b)) = stream.next().await {
            got += b.len();
        }
        assert_eq!(got, 64 * 64 * 1024);
        assert_eq!(queued.load(Ordering::SeqCst), got);

        let (mut stream, queued) = producing(1000, 10);
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 10);
        assert_eq!(
            queued.load(Ordering::SeqCst),
            QUEUED_ITEMS * 10,
            "items cap"
        );
        let mut n = 1;
        while let Some(Ok(_)) = stream.next().await {
            n += 1;
        }
        assert_eq!(n, 1000);
    }

    /// A reader that drops the stream early: the work moves to a task of its own, sees the reader gone (its
    /// sends fail, its wait for the caller ends) and runs to its end.
    #[tokio::test]
    async fn a_dropped_stream_s_work_goes_on_and_sees_the_reader_gone() {
        use futures::StreamExt;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut stream = SseStream::new(move |tx| async move {
            let mut held = Held::Sse(b"data: {}\n\n".to_vec(), 1);
            assert!(tx.flush(&mut held).await);
            assert!(!tx.is_closed());
            // Waits until the reader leaves (a tokio sleep as well, to show the work keeps its runtime).
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            tx.closed().await;
            let mut held = Held::Sse(b"data: {}\n\n".to_vec(), 1);
            let _ = done_tx.send((tx.is_closed(), tx.flush(&mut held).await));
        });
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"data: {}\n\n");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(30), stream.next())
                .await
                .is_err(),
            "the work waits for the reader to leave"
        );
        drop(stream);
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), done_rx).await;
        assert_eq!(seen.ok().and_then(Result::ok), Some((true, false)));
    }

    /// A reader's polls run the work only when the work was woken (or waits for room): a server that polls its
    /// body after every write does not walk the whole work each time.
    #[tokio::test]
    async fn the_work_is_polled_only_when_woken() {
        use futures::StreamExt;
        let polls = Arc::new(AtomicUsize::new(0));
        let wake: Arc<Mutex<Option<Waker>>> = Arc::default();
        let (p, w) = (polls.clone(), wake.clone());
        let mut stream = SseStream::new(move |tx| async move {
            let mut step = 0;
            std::future::poll_fn(|cx| {
                p.fetch_add(1, Ordering::SeqCst);
                step += 1;
                if step < 3 {
                    *w.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            let mut held = Held::Sse(b"data: 1\n\n".to_vec(), 1);
            tx.flush(&mut held).await;
        });
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10 {
            assert!(stream.poll_next_unpin(&mut cx).is_pending());
        }
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "only the first poll ran the work"
        );
        wake.lock().unwrap().take().unwrap().wake();
        for _ in 0..10 {
            assert!(stream.poll_next_unpin(&mut cx).is_pending());
        }
        assert_eq!(
            polls.load(Ordering::SeqCst),
            2,
            "one more run after one wake"
        );
        wake.lock().unwrap().take().unwrap().wake();
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"data: 1\n\n");
        assert!(stream.next().await.is_none());
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    /// A stream polled from a thread outside its runtime (a binding's synchronous read) runs its work within
    /// the runtime it was made in: timers and tasks work.
    #[test]
    fn a_stream_polled_off_its_runtime_runs_in_it() {
        use futures::StreamExt;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut stream = rt.block_on(async {
            SseStream::new(|tx| async move {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                let t = tokio::spawn(async { 7 });
                let mut held = Held::Sse(format!("data: {}\n\n", t.await.unwrap()).into_bytes(), 1);
                tx.flush(&mut held).await;
            })
        });
        let got = std::thread::spawn(move || futures::executor::block_on(stream.next()))
            .join()
            .unwrap();
        assert_eq!(&got.unwrap().unwrap()[..], b"data: 7\n\n");
    }

    /// A library reader ([`ChatStream`]) that takes nothing holds at most [`STREAM_BUFFER_BYTES`] of chunk weight,
    /// however large each chunk (64 items of 64 KiB would be 4 MiB); reading takes them all, in order.
    #[tokio::test]
    async fn a_stalled_value_reader_bounds_the_buffer_in_bytes() {
        use futures::StreamExt;
        let chunk =
            |i: usize| json!({"i": i, "choices": [{"delta": {"content": "x".repeat(64 * 1024)}}]});
        let weight = value_weight(&chunk(0));
        assert!(weight > 64 * 1024 && weight < 65 * 1024, "{weight}");
        let sent = Arc::new(AtomicUsize::new(0));
        let count = sent.clone();
        let mut stream = ChatStream::new(move |tx| async move {
            for i in 0..64 {
                if !tx.chunk(chunk(i)).await {
                    break;
                }
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first["i"], json!(0));
        let held = sent.load(Ordering::SeqCst);
        assert!(
            held * weight <= STREAM_BUFFER_BYTES,
            "held {held} chunks of {weight} bytes"
        );
        assert!(held >= 2, "held only {held} chunks");
        for i in 1..64 {
            let v = stream.next().await.unwrap().unwrap();
            assert_eq!(v["i"], json!(i));
        }
        assert!(stream.next().await.is_none());
        assert_eq!(sent.load(Ordering::SeqCst), 64);
    }

    #[test]
    fn weights() {
        let node = std::mem::size_of::<Value>();
        assert_eq!(value_weight(&json!(null)), node);
        assert_eq!(value_weight(&json!("abc")), node + 3);
        assert_eq!(value_weight(&json!([1, 2])), 3 * node);
        assert_eq!(value_weight(&json!({"ab": "cd"})), 3 * node + 4);
    }

    /// The future-free flush sends while there is room, leaves the held bytes when there is none (for `flush`
    /// to wait with), and reports a reader gone.
    #[test]
    fn try_flush_sends_when_there_is_room() {
        let q: Arc<Queue<Bytes>> = Arc::default();
        let tx = ChunkTx::Sse(q.clone());
        let mut empty = Held::Sse(Vec::new(), 0);
        assert_eq!(tx.try_flush(&mut empty), Some(true));
        assert!(q.is_empty());
        for i in 0..QUEUED_ITEMS {
            let mut held = Held::Sse(format!("data: {i}\n\n").into_bytes(), 1);
            assert_eq!(tx.try_flush(&mut held), Some(true));
            assert_eq!((held.mark(), held.events()), (0, 0));
        }
        let mut held = Held::Sse(b"data: x\n\n".to_vec(), 1);
        assert_eq!(tx.try_flush(&mut held), None, "full");
        assert_eq!((held.mark(), held.events()), (9, 1), "kept for flush");
        assert_eq!(&q.pop().unwrap().unwrap()[..], b"data: 0\n\n");
        assert_eq!(tx.try_flush(&mut held), Some(true));
        q.gone.store(true, Ordering::Release);
        let mut held = Held::Sse(b"data: y\n\n".to_vec(), 1);
        assert_eq!(tx.try_flush(&mut held), Some(false));
        let values = ChunkTx::Values(Arc::default());
        assert_eq!(values.try_flush(&mut Held::Values(vec![json!(1)])), None);
    }

    #[test]
    fn nothing_new_means_nothing_popped() {
        let mut sse = Held::Sse(b"data: {\"error\":{}}\n\n".to_vec(), 1);
        let m = sse.mark();
        assert!(sse.pop_error_since(m).is_none());
        assert_eq!(sse.mark(), m);
    }
}
