//! `router.http(...)`: one request through the engine's OpenRouter HTTP surface (`polyroute::http_api`), the
//! native half of `router.fetch` (node/fetch.cjs builds the WHATWG `Response`).

use std::sync::Arc;

use futures::StreamExt;
use napi::bindgen_prelude::{AsyncGenerator, Uint8Array};
use napi_derive::napi;
use polyroute::http_api::{Body, Caller, Request, SseBody};
use tokio::sync::Mutex;

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
    let r = api.handle(req, &Caller::in_process()).await;
    let (full, stream) = match r.body {
        Body::Full(b) => (Some(b.to_vec()), None),
        Body::Sse(s) => (None, Some(s)),
    };
    HttpAnswer {
        status: r.status,
        headers: r.headers,
        full,
        stream: Arc::new(Mutex::new(stream)),
    }
}

/// An HTTP answer: status, headers, and the whole body or (streams) an async iterable of SSE chunks.
#[napi(async_iterator)]
pub struct HttpAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    full: Option<Vec<u8>>,
    stream: Arc<Mutex<Option<SseBody>>>,
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
