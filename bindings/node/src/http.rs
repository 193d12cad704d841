//! `router.http(...)`: one request through the engine's OpenRouter HTTP surface (`polyroute::http_api`), the
//! native half of `router.fetch` (node/fetch.cjs builds the WHATWG `Response`).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use napi::bindgen_prelude::{
    AsyncGenerator, Buffer, Either, Env, Null, Object, ToNapiValue, TypeName, Uint8Array, ValueType,
};
use napi::sys;
use napi_derive::napi;
use polyroute::http_api::{Body, Caller, Request, SseBody};
use polyroute::ReadAhead;
use tokio::sync::Mutex;

use crate::batch;

pub(crate) async fn handle(
    api: &polyroute::HttpApi,
    method: String,
    target: String,
    headers: Vec<Vec<String>>,
    body: Option<String>,
) -> HttpAnswer {
    let req = Request {
        method,
        target,
        headers: headers
            .into_iter()
            .filter_map(|h| {
                let mut it = h.into_iter();
                Some((it.next()?, it.next()?))
            })
            .collect(),
        body: body.unwrap_or_default().into(),
    };
    answer(api.handle(req, &Caller::in_process()).await)
}

/// `router.fetch`'s native call: headers as one text, `name\nvalue\n…` (names and values as `Headers` gives
/// them, which never hold a line feed; one string crosses the boundary instead of an array of them, which cost
/// ~35k instructions for the openai SDK's dozen headers), the body as text or bytes; the answer as one object
/// (see [`FetchReply`]).
pub(crate) async fn fetch(
    api: &polyroute::HttpApi,
    method: String,
    target: String,
    headers: String,
    body: Option<Either<String, Buffer>>,
) -> FetchReply {
    let pairs = header_pairs(&headers);
    let body = match body {
        None => Bytes::new(),
        Some(Either::A(s)) => Bytes::from(s),
        Some(Either::B(b)) => Bytes::copy_from_slice(&b),
    };
    let req = Request {
        method,
        target,
        headers: pairs,
        body,
    };
    FetchReply(answer(api.handle(req, &Caller::in_process()).await))
}

/// The `(name, value)` pairs of a `name\nvalue\n…` text (empty: none; a trailing name without a value is
/// dropped).
fn header_pairs(text: &str) -> Vec<(String, String)> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut it = text.split('\n');
    let mut pairs = Vec::with_capacity(16);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        pairs.push((k.to_owned(), v.to_owned()));
    }
    pairs
}

fn answer(r: polyroute::http_api::Response) -> HttpAnswer {
    let (full, stream) = match r.body {
        Body::Full(b) => (Some(b.to_vec()), None),
        Body::Sse(s) => (None, Some(ReadAhead::new(s))),
    };
    HttpAnswer {
        status: r.status,
        headers: r.headers,
        full,
        stream: Arc::new(Mutex::new(stream)),
    }
}

/// The answer of `fetchCall`: `{ status, headers: [name, value, …], body: Buffer | null, stream: HttpAnswer |
/// null }` (a stream's frames are read with `read` / `readReady`).
pub struct FetchReply(HttpAnswer);

impl TypeName for FetchReply {
    fn type_name() -> &'static str {
        "unknown"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

// napi's conversion trait is an unsafe FFI entry point; the body only calls napi's own conversions.
#[allow(unsafe_code)]
impl ToNapiValue for FetchReply {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let e = Env::from_raw(env);
        let mut a = val.0;
        let mut o = Object::new(&e)?;
        o.set("status", u32::from(a.status))?;
        let mut flat = Vec::with_capacity(a.headers.len() * 2);
        for (k, v) in std::mem::take(&mut a.headers) {
            flat.push(k);
            flat.push(v);
        }
        o.set("headers", flat)?;
        match a.full.take() {
            Some(b) => {
                o.set("body", Buffer::from(b))?;
                o.set("stream", Null)?;
            }
            None => {
                o.set("body", Null)?;
                o.set("stream", a)?;
            }
        }
        // SAFETY: called by napi on the JavaScript thread with a live env.
        unsafe { Object::to_napi_value(env, o) }
    }
}

/// An HTTP answer: status, headers, and the whole body or (streams) an async iterable of SSE chunks.
#[napi(async_iterator)]
pub struct HttpAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    full: Option<Vec<u8>>,
    stream: Arc<Mutex<Option<ReadAhead<SseBody>>>>,
}

#[napi]
impl HttpAnswer {
    /// The status code.
    #[napi(getter)]
    pub fn status(&self) -> u32 {
        u32::from(self.status)
    }

    /// Header names (lower case) and values.
    #[napi(getter, ts_return_type = "Array<[string, string]>")]
    pub fn headers(&self) -> Vec<Vec<String>> {
        self.headers
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect()
    }

    /// The whole body; null for a stream (iterate the answer for its chunks).
    #[napi(getter)]
    pub fn body(&self) -> Option<Uint8Array> {
        self.full.clone().map(Uint8Array::from)
    }

    /// The SSE frames waiting now, or the next ones (waiting for them), concatenated; an empty buffer at the end
    /// (internal: `router.fetch`'s body stream).
    #[napi(skip_typescript)]
    pub async fn read(&self) -> Buffer {
        let inner = self.stream.clone();
        let mut g = inner.lock().await;
        let mut buf = Vec::new();
        batch::frames_ready(&mut g, &mut buf);
        if buf.is_empty() {
            if let Some(s) = g.as_mut() {
                match s.next().await {
                    Some(b) => {
                        buf.extend_from_slice(&b);
                        batch::frames_ready(&mut g, &mut buf);
                    }
                    None => *g = None,
                }
            }
        }
        Buffer::from(buf)
    }

    /// The SSE frames waiting now, concatenated; `null` when none is, an empty buffer at the end (internal).
    #[napi(skip_typescript)]
    pub fn read_ready(&self) -> Option<Buffer> {
        let mut g = self.stream.try_lock().ok()?;
        let mut buf = Vec::new();
        napi::bindgen_prelude::within_runtime_if_available(|| {
            batch::frames_ready(&mut g, &mut buf);
        });
        batch::frames_buffer(&g, buf)
    }

    /// Close the stream: the upstream request is cancelled (internal).
    #[napi(skip_typescript)]
    pub async fn close(&self) {
        self.stream.lock().await.take();
    }
}

#[napi]
impl AsyncGenerator for HttpAnswer {
    type Yield = Uint8Array;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<Self::Next>,
    ) -> impl std::future::Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let inner = self.stream.clone();
        async move {
            let mut g = inner.lock().await;
            let Some(s) = g.as_mut() else {
                return Ok(None);
            };
            match s.next().await {
                Some(b) => Ok(Some(Uint8Array::from(b.to_vec()))),
                None => {
                    *g = None;
                    Ok(None)
                }
            }
        }
    }

    fn complete(
        &mut self,
        _value: Option<Self::Return>,
    ) -> impl std::future::Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let inner = self.stream.clone();
        async move {
            inner.lock().await.take();
            Ok(None)
        }
    }
}
