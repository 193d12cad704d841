//! Streams read in batches: every item already waiting crosses the boundary in one call (chunks as one JSON array
//! text that JavaScript parses once; SSE frames as one `Buffer`), and a call that finds items waiting returns them
//! synchronously, without a promise or a thread hop. The package entry (`polyroute.cjs`, `fetch.cjs`) turns the
//! batches back into one value per iteration, so every public iterator yields what it yielded before.
//! Every stream is read ahead on the runtime ([`ReadAhead`]): a burst of items is waiting by the time JavaScript
//! reads, instead of moving only while JavaScript polls.
//!
//! `router.stream` reads the engine's SSE form of a completion ([`polyroute::Router::chat_stream_events`], the
//! bytes the gateway writes, built without chunk values): its `data: {json}` events become the array's elements
//! as they are, so a chunk is never parsed or re-serialized on the Rust side. Errors stay errors (not in-band
//! envelopes), so a stream fails exactly as the value form does.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use napi::bindgen_prelude::{Buffer, Env, Null, ToNapiValue, TypeName, ValueType};
use napi::sys;
use polyroute::{Error as CoreError, ReadAhead};
use serde_json::Value;

use crate::errors;

/// A stream of JSON values (chunks or events), an error being an item.
pub type ValueStream = Pin<Box<dyn Stream<Item = polyroute::Result<Value>> + Send>>;

/// Where a [`Batches`] reads from: values, or SSE events (`data: {json}\n\n`, one or more per item).
pub enum Source {
    Values(ReadAhead<ValueStream>),
    Sse(ReadAhead<polyroute::SseStream>),
}

/// One item of a [`Source`].
enum Item {
    Value(Value),
    Events(Bytes),
}

impl Source {
    async fn next(&mut self) -> Option<polyroute::Result<Item>> {
        match self {
            Source::Values(s) => s.next().await.map(|r| r.map(Item::Value)),
            Source::Sse(s) => s.next().await.map(|r| r.map(Item::Events)),
        }
    }
}

/// A stream with the error found after a batch's items (given at the next read).
pub struct Batches {
    stream: Option<Source>,
    pending: Option<CoreError>,
    /// Values parsed from SSE events but not yet given (`next_one` reads a whole SSE item at a time).
    queued: VecDeque<Value>,
}

/// What a read found.
pub enum Found {
    /// Items as one JSON array text.
    Items(String),
    /// Nothing is waiting (synchronous reads only).
    Nothing,
    /// The stream ended.
    End,
}

impl Batches {
    pub fn new(s: ValueStream) -> Self {
        Self::from_source(Source::Values(ReadAhead::new(s)))
    }

    /// Batches of a completion's SSE events.
    pub fn sse(s: polyroute::SseStream) -> Self {
        Self::from_source(Source::Sse(ReadAhead::new(s)))
    }

    fn from_source(s: Source) -> Self {
        Self {
            stream: Some(s),
            pending: None,
            queued: VecDeque::new(),
        }
    }

    /// A stream that was refused before it started: the error, then the end.
    pub fn refused(e: CoreError) -> Self {
        Self {
            stream: None,
            pending: Some(e),
            queued: VecDeque::new(),
        }
    }

    /// Close the stream (cancels the upstream request).
    pub fn close(&mut self) {
        self.stream = None;
        self.pending = None;
        self.queued.clear();
    }

    /// One item (the native async iterator's `next`).
    pub async fn next_one(&mut self) -> Option<polyroute::Result<Value>> {
        loop {
            if let Some(v) = self.queued.pop_front() {
                return Some(Ok(v));
            }
            if let Some(e) = self.pending.take() {
                return Some(Err(e));
            }
            let s = self.stream.as_mut()?;
            match s.next().await {
                None => {
                    self.stream = None;
                    return None;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(Item::Value(v))) => return Some(Ok(v)),
                Some(Ok(Item::Events(b))) => {
                    for json in events(&b) {
                        match serde_json::from_slice(json) {
                            Ok(v) => self.queued.push_back(v),
                            Err(e) => return Some(Err(internal(&e))),
                        }
                    }
                }
            }
        }
    }

    /// Append the items already waiting to `buf` (an open JSON array); an error after items is kept for the
    /// next read.
    fn drain(&mut self, buf: &mut Vec<u8>) -> Result<(), CoreError> {
        while let Some(s) = self.stream.as_mut() {
            match s.next().now_or_never() {
                None => break,
                Some(None) => self.stream = None,
                Some(Some(Ok(item))) => push(buf, &item)?,
                Some(Some(Err(e))) => {
                    if buf.is_empty() {
                        return Err(e);
                    }
                    self.pending = Some(e);
                    break;
                }
            }
        }
        Ok(())
    }

    fn found(&self, mut buf: Vec<u8>) -> Found {
        if buf.is_empty() {
            return if self.stream.is_none() {
                Found::End
            } else {
                Found::Nothing
            };
        }
        buf.push(b']');
        // serde_json writes UTF-8, and SSE items are the engine's UTF-8 text; `from_utf8` only checks.
        match String::from_utf8(buf) {
            Ok(s) => Found::Items(s),
            Err(e) => Found::Items(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }

    /// The items waiting now, without waiting.
    pub fn ready(&mut self) -> Result<Found, CoreError> {
        let mut buf = Vec::new();
        for v in std::mem::take(&mut self.queued) {
            push(&mut buf, &Item::Value(v))?;
        }
        if let Some(e) = self.pending.take() {
            if buf.is_empty() {
                return Err(e);
            }
            self.pending = Some(e);
            return Ok(self.found(buf));
        }
        self.drain(&mut buf)?;
        Ok(self.found(buf))
    }

    /// At least one item (waiting for it) and every item waiting after it; `End` at the end.
    pub async fn batch(&mut self) -> Result<Found, CoreError> {
        loop {
            match self.ready()? {
                Found::Nothing => {}
                found => return Ok(found),
            }
            let Some(s) = self.stream.as_mut() else {
                return Ok(Found::End);
            };
            let mut buf = Vec::new();
            match s.next().await {
                None => self.stream = None,
                Some(Err(e)) => return Err(e),
                Some(Ok(item)) => {
                    push(&mut buf, &item)?;
                    self.drain(&mut buf)?;
                }
            }
            if !buf.is_empty() {
                return Ok(self.found(buf));
            }
            // An SSE item without events (or the end): read again.
        }
    }
}

fn internal(e: &serde_json::Error) -> CoreError {
    CoreError::Internal {
        message: e.to_string(),
    }
}

/// The JSON texts of the `data:` lines of SSE `events` (other lines, blank lines and `[DONE]` are skipped).
fn events(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = b;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (line, next) = match find_newline(rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = next;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if !data.is_empty() && data != b"[DONE]" {
                return Some(data);
            }
        }
        None
    })
}

/// The position of the first `\n` in `b`, eight bytes at a time (an event is one long line of JSON).
fn find_newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    const NL: u64 = u64::from_le_bytes([b'\n'; 8]);
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ NL;
        // A byte of `x` is zero where `b` has a newline; the lowest flagged byte is always a real one.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'\n')
        .map(|p| at + p)
}

fn push(buf: &mut Vec<u8>, item: &Item) -> Result<(), CoreError> {
    match item {
        Item::Value(v) => {
            buf.push(if buf.is_empty() { b'[' } else { b',' });
            serde_json::to_writer(&mut *buf, v).map_err(|e| internal(&e))
        }
        Item::Events(b) => {
            for json in events(b) {
                buf.push(if buf.is_empty() { b'[' } else { b',' });
                buf.extend_from_slice(json);
            }
            Ok(())
        }
    }
}

/// A batch read's answer on the JavaScript side: the JSON array text of the items, `""` when nothing is waiting
/// (synchronous reads), `null` at the end; an error is thrown (or the promise rejected) as a `PolyrouteError`.
pub struct Batch(pub Result<Found, CoreError>);

impl TypeName for Batch {
    fn type_name() -> &'static str {
        "string | null"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

// napi's conversion trait is an unsafe FFI entry point; the body only calls napi's own conversions.
#[allow(unsafe_code)]
impl ToNapiValue for Batch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        // SAFETY (each arm): called by napi on the JavaScript thread with a live env.
        match val.0 {
            Ok(Found::Items(s)) => unsafe { String::to_napi_value(env, s) },
            Ok(Found::Nothing) => unsafe { String::to_napi_value(env, String::new()) },
            Ok(Found::End) => unsafe { Null::to_napi_value(env, Null) },
            Err(e) => Err(errors::to_napi(&Env::from_raw(env), &e)),
        }
    }
}

/// SSE frames: every frame waiting, concatenated; an empty buffer at the end, `null` (synchronous reads) when
/// nothing is waiting.
pub fn frames_ready<S, B>(s: &mut Option<S>, buf: &mut Vec<u8>)
where
    S: Stream<Item = B> + Unpin,
    B: AsRef<[u8]>,
{
    while let Some(st) = s.as_mut() {
        match st.next().now_or_never() {
            None => break,
            Some(None) => *s = None,
            Some(Some(b)) => buf.extend_from_slice(b.as_ref()),
        }
    }
}

/// The buffer of a frames read: the frames, or empty at the end; None when nothing is waiting and the stream
/// is open.
pub fn frames_buffer<S>(s: &Option<S>, buf: Vec<u8>) -> Option<Buffer> {
    if buf.is_empty() && s.is_some() {
        None
    } else {
        Some(Buffer::from(buf))
    }
}

/// `nextBatch()` (a promise of the next items) and `takeReady()` (the items waiting now) on a class whose
/// `inner` is an `Arc<tokio::sync::Mutex<Batches>>`, and `closeBatch()` (what the iterator's `return` does).
macro_rules! batch_methods {
    ($class:ident) => {
        #[napi_derive::napi]
        impl $class {
            /// The next items as one JSON array text, `null` at the end (internal: the package entry's
            /// iterator).
            #[napi(skip_typescript)]
            pub async fn next_batch(&self) -> $crate::batch::Batch {
                let inner = self.inner.clone();
                let mut g = inner.lock().await;
                $crate::batch::Batch(g.batch().await)
            }

            /// The items waiting now as one JSON array text, `""` when none is, `null` at the end (internal).
            #[napi(skip_typescript)]
            pub fn take_ready(&self) -> $crate::batch::Batch {
                match self.inner.try_lock() {
                    Ok(mut g) => $crate::batch::Batch(
                        napi::bindgen_prelude::within_runtime_if_available(|| g.ready()),
                    ),
                    Err(_) => $crate::batch::Batch(Ok($crate::batch::Found::Nothing)),
                }
            }

            /// Close the stream: the upstream request is cancelled (internal).
            #[napi(skip_typescript)]
            pub async fn close_batch(&self) {
                self.inner.lock().await.close();
            }
        }
    };
}
pub(crate) use batch_methods;
