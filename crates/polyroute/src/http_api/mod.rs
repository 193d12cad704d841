//! The OpenRouter HTTP surface without sockets: [`HttpApi::handle`] takes a method, a path (under any base such as
//! `/api/v1` or `/v1`), headers and body bytes and answers a status, headers and a body that is either complete
//! bytes (JSON) or a stream of SSE byte chunks. The gateway, the Python httpx transports and Node's
//! `router.fetch` all call it, so every path, header and error is the same everywhere.
//!
//! | route | access | answer |
//! |---|---|---|
//! | `POST chat/completions` | caller | a completion, or SSE (`: OPENROUTER PROCESSING` until the first chunk) |
//! | `POST messages`, `POST messages/count_tokens` | caller | Anthropic Messages (answer or its events; errors in Anthropic's shape), a token estimate |
//! | `POST responses` | caller | OpenAI Responses, stateless (answer or its events) |
//! | `GET models` | public | `/models` rows (`supported_parameters`, `output_modalities`, `sort`, `offset`, `limit`) |
//! | `GET models/count` | public | `{data: {count}}` |
//! | `GET models/{author}/{slug}`, `GET model/{author}/{slug}` | public | one `/models` row |
//! | `GET models/{author}/{slug}/endpoints` | public | the model's endpoints with health |
//! | `GET providers` | public | providers (`configured` for a trusted caller only) |
//! | `GET generation?id=` | caller | the generation (the caller's own when it names a user) |
//! | `GET credits` | caller | `{total_credits, total_usage}` of the caller's scope (key, user or router) |
//!
//! Request headers read: `HTTP-Referer` (else `Referer`), `X-OpenRouter-Title` (else `X-Title`), `x-session-id`,
//! `X-OpenRouter-Metadata: enabled`. Answers carry `x-generation-id` on chat completions. Errors use the OpenRouter
//! envelope `{"error": {"code", "message", "metadata"}}` with the engine error's status.
//!
//! Who is asking is a [`Caller`]: the in-process transports use [`Caller::in_process`]; the gateway authenticates
//! a key first and passes its scope (user, budget key, limit) and an [`Admit`] hook for the key's policies. To add
//! a route, add a line to `ROUTES` in `routes.rs`.

mod account;
mod catalog;
mod chat;
mod embeddings;
mod reply;
mod routes;
mod surfaces;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use bytes::Bytes;
use futures::Stream;
use serde_json::Value;

use crate::state::BoxFut;
use crate::{RequestContext, Router};

pub use account::{generation_json, utc_date, utc_iso};
pub use reply::{error_response, parse_object};
pub use routes::Access;

/// The keep-alive comment OpenRouter sends while a stream has no first chunk yet.
pub const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";
/// The last event of a stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";
/// The response header with the milliseconds polyroute itself spent on a non-streamed request (the handler's
/// time minus the time waiting on providers and in retry backoff; 3 decimals).
pub const OVERHEAD_HEADER: &str = "x-polyroute-overhead-ms";

/// One HTTP request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, … (any case).
    pub method: String,
    /// The path with its query (`/api/v1/generation?id=gen-…`); a full URL is accepted too.
    pub target: String,
    /// Header names and values (names in any case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Request {
    /// A request without headers or body.
    #[must_use]
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            target: target.into(),
            ..Self::default()
        }
    }

    /// Add a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name` (case-insensitive), trimmed, if not empty.
    #[must_use]
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

/// A complete body, or a stream of SSE byte chunks.
#[derive(Debug)]
pub enum Body {
    /// The whole body (JSON).
    Full(Bytes),
    /// `text/event-stream` chunks, ending with `data: [DONE]`.
    Sse(SseBody),
}

/// The chunks of a streamed answer; dropping it cancels the upstream request.
pub struct SseBody(Pin<Box<dyn Stream<Item = Bytes> + Send>>);

impl SseBody {
    /// Wrap a stream of SSE bytes.
    pub fn new(s: impl Stream<Item = Bytes> + Send + 'static) -> Self {
        Self(Box::pin(s))
    }
}

impl fmt::Debug for SseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SseBody")
    }
}

impl Stream for SseBody {
    type Item = Bytes;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.0.as_mut().poll_next(cx)
    }
}

/// The same chunks as an HTTP body (one data frame each), for a server to send without wrapping the stream
/// in a stream-to-body adapter (one layer less on every poll of the body).
impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|b| b.map(|b| Ok(http_body::Frame::data(b))))
    }
}

impl Response {
    /// A JSON answer.
    #[must_use]
    pub fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Full(Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
        }
    }

    /// An error in the OpenRouter envelope with an `error_type`.
    #[must_use]
    pub fn error(status: u16, error_type: &str, message: impl Into<String>) -> Self {
        Self::json(status, &reply::envelope(status, error_type, message.into()))
    }

    /// Add a header.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    #[must_use]
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The whole body (a stream read to its end).
    pub async fn bytes(self) -> Bytes {
        use futures::StreamExt;
        match self.body {
            Body::Full(b) => b,
            Body::Sse(s) => {
                let parts: Vec<Bytes> = s.collect().await;
                Bytes::from(parts.concat())
            }
        }
    }
}

/// A gateway's admission rules for a request body (key allowlists, rate limits), run after the body parsed and
/// before the engine: `Err` is the answer.
pub trait Admit: Send + Sync {
    /// Check (and possibly narrow, e.g. `provider.only`) the request.
    fn admit<'a>(&'a self, request: &'a mut Value) -> BoxFut<'a, Result<(), Response>>;

    /// [`Admit::admit`] for a chat request already parsed and validated (`chat/completions` parses the body
    /// straight into the typed request). The default goes through a `Value`; implement it to skip that.
    fn admit_chat<'a>(
        &'a self,
        request: &'a mut polyroute_core::types::request::ChatRequest,
    ) -> BoxFut<'a, Result<(), Response>> {
        Box::pin(async move {
            let internal =
                |e: &dyn fmt::Display| Response::error(500, "internal", format!("admission: {e}"));
            let mut v = serde_json::to_value(&*request).map_err(|e| internal(&e))?;
            self.admit(&mut v).await?;
            *request = polyroute_core::types::request::ChatRequest::from_value(&v)
                .map_err(|e| reply::error_response(&e, (0, 0)))?;
            Ok(())
        })
    }
}

/// Who is asking.
#[derive(Clone, Default)]
pub struct Caller {
    /// The base request context: the billed user, budget key and its limit, a generation id. The request's
    /// headers add attribution, session and metadata.
    pub context: RequestContext,
    /// May see which providers hold credentials (`/providers`' `configured`).
    pub trusted: bool,
    /// Admission rules run on each request body.
    pub admit: Option<Arc<dyn Admit>>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("context", &self.context)
            .field("trusted", &self.trusted)
            .field("admit", &self.admit.is_some())
            .finish()
    }
}

impl Caller {
    /// The caller of an in-process transport: the router's own scope, trusted.
    #[must_use]
    pub fn in_process() -> Self {
        Self {
            trusted: true,
            ..Self::default()
        }
    }
}

/// The HTTP surface of one [`Router`]. Cheap to clone.
#[derive(Clone)]
pub struct HttpApi {
    router: Router,
    keepalive: Duration,
    rows: Arc<catalog::ModelRows>,
}

impl fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpApi")
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

impl HttpApi {
    /// The surface of `router` (the `/models` rows are built here, once).
    #[must_use]
    pub fn new(router: Router) -> Self {
        let rows = Arc::new(catalog::ModelRows::new(router.catalog()));
        Self {
            router,
            keepalive: Duration::from_secs(1),
            rows,
        }
    }

    /// How long a stream waits for its first chunk before a keep-alive comment (default 1 s).
    #[must_use]
    pub fn keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every.max(Duration::from_millis(1));
        self
    }

    /// The same surface over another router handle of the same engine (e.g. with its own connections).
    #[must_use]
    pub fn with_router(&self, router: Router) -> Self {
        Self {
            router,
            keepalive: self.keepalive,
            rows: self.rows.clone(),
        }
    }

    /// The router.
    #[must_use]
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Who may call `method path`: None when no route matches the path.
    #[must_use]
    pub fn access(&self, method: &str, target: &str) -> Option<Access> {
        routes::find(method, target).ok().map(|m| m.access)
    }

    /// [`HttpApi::handle`] for a `POST …/chat/completions` the server routed itself (no route lookup).
    pub async fn chat_completions(&self, req: Request, caller: &Caller) -> Response {
        let call = routes::Call {
            req: &req,
            params: Vec::new(),
            query: std::collections::HashMap::new(),
            caller,
        };
        chat::completions(self, call).await
    }

    /// Answer one request.
    pub async fn handle(&self, req: Request, caller: &Caller) -> Response {
        let m = match routes::find(&req.method, &req.target) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let call = routes::Call {
            req: &req,
            params: m.params,
            query: m.query,
            caller,
        };
        (m.handler)(self, call).await
    }
}

use polyroute_core::account_query::percent_decode;

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("test%2Fchat", false), "test/chat");
        assert_eq!(percent_decode("a+b%20c", true), "a b c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
    }
}
