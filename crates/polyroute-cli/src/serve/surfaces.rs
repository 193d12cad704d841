//! `POST /api/v1/messages`, `POST /api/v1/messages/count_tokens` (Anthropic Messages) and `POST /api/v1/responses`
//! (OpenAI Responses, stateless): the same key authentication, key limits, generation ids and error statuses
//! as `POST /api/v1/chat/completions`; the engine routes each through the chat lifecycle. Messages errors are
//! Anthropic-shaped (`{type: "error", error: {type, message}}`), Responses errors keep OpenRouter's envelope.
//!
//! Thin glue on purpose: request context and key admission are chat's; what differs is the body translation
//! (in the engine) and the SSE framing (`event:` lines, no `[DONE]`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::StreamExt;
use polyroute::core::surfaces::{messages, tokens, Event};
use polyroute::{RequestContext, SurfaceStream};
use serde_json::{json, Value};

use super::error::ApiError;
use super::keys::KeyEntry;
use super::{parse_object, Gateway};

const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Messages,
    Responses,
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The request context, as chat builds it (attribution headers, the billed key, session, metadata opt-in).
fn context(h: &HeaderMap, key: &KeyEntry, gen_id: String) -> RequestContext {
    let meta = header(h, "x-openrouter-metadata")
        .or_else(|| header(h, "x-openrouter-experimental-metadata"))
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    RequestContext {
        http_referer: header(h, "http-referer").or_else(|| header(h, "referer")),
        title: header(h, "x-openrouter-title").or_else(|| header(h, "x-title")),
        user: Some(key.id.clone()),
        session_id: header(h, "x-session-id"),
        metadata: meta,
        generation_id: Some(gen_id),
        key_id: Some(super::key_policy::budget_id(key, super::now_ms())),
        key_limit: key.limit,
    }
}

fn with_gen_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-generation-id", v);
    }
    r
}

/// An error answer in the surface's shape (status and rate-limit headers unchanged).
fn error(surface: Surface, e: ApiError) -> Response {
    if surface == Surface::Responses {
        return e.into_response();
    }
    let body = messages::error_body(e.status().as_u16(), e.body());
    let mut r = e.into_response();
    *r.body_mut() = Body::from(body.to_string());
    r
}

fn engine_error(gw: &Gateway, surface: Surface, e: &polyroute::Error) -> Response {
    error(surface, ApiError::engine(e, gw.free_limits))
}

/// Authenticate, read and admit the body as chat does.
async fn admitted(
    gw: &Gateway,
    surface: Surface,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Arc<KeyEntry>, Value), Response> {
    let key = gw
        .authenticate(headers)
        .await
        .map_err(|e| error(surface, e))?;
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(error(
                surface,
                ApiError::new(
                    413,
                    "payload_too_large",
                    format!("Request body is larger than {} bytes", gw.body_limit),
                ),
            ))
        }
        Err(r) => return Err(error(surface, ApiError::bad_request(r.body_text()))),
    };
    let mut request = parse_object(&body).map_err(|e| error(surface, e))?;
    if surface == Surface::Messages {
        // `fallbacks` become `models` first, so that the key's model list checks them too.
        messages::fold_fallbacks(&mut request).map_err(|e| engine_error(gw, surface, &e))?;
    }
    super::key_policy::admit(gw, &key, &mut request)
        .await
        .map_err(|e| error(surface, e))?;
    Ok((key, request))
}

/// `POST /api/v1/messages`.
pub async fn messages(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&gw, Surface::Messages, &headers, body).await
}

/// `POST /api/v1/responses`.
pub async fn responses(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(&gw, Surface::Responses, &headers, body).await
}

async fn handle(
    gw: &Gateway,
    surface: Surface,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (key, request) = match admitted(gw, surface, headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let gen_id = gw.new_generation_id();
    let ctx = context(headers, &key, gen_id.clone());
    let r = if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let s = match surface {
            Surface::Messages => gw.router.messages_stream(request, ctx),
            Surface::Responses => gw.router.responses_stream(request, ctx),
        };
        match s {
            Ok(s) => stream(gw, surface, s).await,
            Err(e) => engine_error(gw, surface, &e),
        }
    } else {
        let answer = match surface {
            Surface::Messages => gw.router.messages(request, &ctx).await,
            Surface::Responses => gw.router.responses(request, &ctx).await,
        };
        match answer {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => engine_error(gw, surface, &e),
        }
    };
    with_gen_id(r, &gen_id)
}

/// `POST /api/v1/messages/count_tokens`: `{"input_tokens": n}`, an estimate (see
/// [`polyroute::core::surfaces::tokens`]); the key is checked, no provider is called.
pub async fn count_tokens(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (_, request) = match admitted(&gw, Surface::Messages, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match tokens::count_messages(&request) {
        Ok(n) => axum::Json(json!({"input_tokens": n})).into_response(),
        Err(e) => engine_error(&gw, Surface::Messages, &e),
    }
}

/// A failure after the 200 went out (only after keep-alive comments): the surface's in-band `error` event.
fn in_band(surface: Surface, e: &polyroute::Error) -> Bytes {
    let env = e.to_envelope();
    let data = match surface {
        Surface::Messages => messages::error_body(e.http_status(), &env),
        Surface::Responses => json!({"type": "error", "code": e.code(),
            "message": env["error"]["message"], "param": null, "sequence_number": 0}),
    };
    let mut buf = Vec::new();
    Event {
        name: "error",
        data,
    }
    .write_sse(&mut buf);
    Bytes::from(buf)
}

struct Sse {
    s: BoxStream<'static, polyroute::Result<Bytes>>,
    surface: Surface,
    head: Option<Bytes>,
    started: bool,
    done: bool,
    keepalive: Duration,
}

async fn next_frame(mut st: Sse) -> Option<(Result<Bytes, std::convert::Infallible>, Sse)> {
    if let Some(b) = st.head.take() {
        return Some((Ok(b), st));
    }
    if st.done {
        return None;
    }
    let item = if st.started {
        st.s.next().await
    } else {
        match tokio::time::timeout(st.keepalive, st.s.next()).await {
            Ok(x) => x,
            Err(_) => return Some((Ok(Bytes::from_static(KEEPALIVE)), st)),
        }
    };
    st.started = true;
    match item {
        Some(Ok(b)) => Some((Ok(b), st)),
        Some(Err(e)) => {
            st.done = true;
            let b = in_band(st.surface, &e);
            Some((Ok(b), st))
        }
        None => None,
    }
}

/// Errors before anything is sent get a plain answer with their status; after the first keep-alive comment or
/// event the status is 200 and errors are in-band.
async fn stream(gw: &Gateway, surface: Surface, s: SurfaceStream) -> Response {
    let mut s = s.sse().boxed();
    let (head, started, done) = match tokio::time::timeout(gw.keepalive, s.next()).await {
        Ok(Some(Err(e))) => return engine_error(gw, surface, &e),
        Ok(Some(Ok(b))) => (Some(b), true, false),
        Ok(None) => (None, true, true),
        Err(_) => (Some(Bytes::from_static(KEEPALIVE)), false, false),
    };
    let st = Sse {
        s,
        surface,
        head,
        started,
        done,
        keepalive: gw.keepalive,
    };
    let mut r = Response::new(Body::from_stream(futures::stream::unfold(st, next_frame)));
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
