//! Streams read in batches: every item already waiting crosses the boundary in one call (chunks as one JSON array
//! text that JavaScript parses once; SSE frames as one `Buffer`), and a call that finds items waiting returns them
//! synchronously, without a promise or a thread hop. The package entry (`polyroute.cjs`, `fetch.cjs`) turns the
//! batches back into one value per iteration, so every public iterator yields what it yielded before.

use std::pin::Pin;

use futures::{FutureExt, Stream, StreamExt};
use napi::bindgen_prelude::{Buffer, Env, Null, ToNapiValue, TypeName, ValueType};
use napi::sys;
use polyroute::Error as CoreError;
use serde_json::Value;

use crate::errors;

/// A stream of JSON values (chunks or events), an error being an item.
pub type ValueStream = Pin<Box<dyn Stream<Item = polyroute::Result<Value>> + Send>>;

/// A value stream with the error found after a batch's items (given at the next read).
pub struct Batches {
    stream: Option<ValueStream>,
    pending: Option<CoreError>,
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
        Self {
            stream: Some(s),
            pending: None,
        }
    }

    /// A stream that was refused before it started: the error, then the end.
    pub fn refused(e: CoreError) -> Self {
        Self {
            stream: None,
            pending: Some(e),
        }
    }

    /// Close the stream (cancels the upstream request).
    pub fn close(&mut self) {
        self.stream = None;
        self.pending = None;
    }

    /// One item (the native async iterator's `next`).
    pub async fn next_one(&mut self) -> Option<polyroute::Result<Value>> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        let s = self.stream.as_mut()?;
        let item = s.next().await;
        if item.is_none() {
            self.stream = None;
        }
        item
    }

    /// Append the items already waiting to `buf` (an open JSON array); an error after items is kept for the
    /// next read.
    fn drain(&mut self, buf: &mut Vec<u8>) -> Result<(), CoreError> {
        while let Some(s) = self.stream.as_mut() {
            match s.next().now_or_never() {
                None => break,
                Some(None) => self.stream = None,
                Some(Some(Ok(v))) => push(buf, &v)?,
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
        // serde_json writes UTF-8.
        Found::Items(String::from_utf8(buf).unwrap_or_default())
    }

    /// The items waiting now, without waiting.
    pub fn ready(&mut self) -> Result<Found, CoreError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let mut buf = Vec::new();
        self.drain(&mut buf)?;
        Ok(self.found(buf))
    }

    /// At least one item (waiting for it) and every item waiting after it; `End` at the end.
    pub async fn batch(&mut self) -> Result<Found, CoreError> {
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
            Some(Ok(v)) => {
                push(&mut buf, &v)?;
                self.drain(&mut buf)?;
            }
        }
        Ok(self.found(buf))
    }
}

fn push(buf: &mut Vec<u8>, v: &Value) -> Result<(), CoreError> {
    buf.push(if buf.is_empty() { b'[' } else { b',' });
    serde_json::to_writer(&mut *buf, v).map_err(|e| CoreError::Internal {
        message: e.to_string(),
    })
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
