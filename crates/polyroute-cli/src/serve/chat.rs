//! `POST /api/v1/chat/completions`: JSON answers and SSE streams.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use polyroute::{RequestContext, SseStream};
use serde_json::{json, Value};

use super::error::ApiError;
use super::keys::KeyEntry;
use super::{parse_object, Gateway};

const KEEPALIVE: &[u8] = b": OPENROUTER PROCESSING\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The request context: attribution headers, the billed key, session, metadata opt-in.
pub(super) fn context(h: &HeaderMap, key: &KeyEntry, gen_id: String) -> RequestContext {
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
        // The key's credit limit is a budget scope: admission holds each request's worst case against it.
        key_id: Some(super::key_policy::budget_id(key, super::now_ms())),
        key_limit: key.limit,
    }
}

pub(super) fn with_gen_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-generation-id", v);
    }
    r
}

/// The handler.
pub async fn completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match gw.authenticate(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::new(
                413,
                "payload_too_large",
                format!("Request body is larger than {} bytes", gw.body_limit),
            )
            .into_response()
        }
        Err(r) => return ApiError::bad_request(r.body_text()).into_response(),
    };
    let mut request = match parse_object(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = super::key_policy::admit(&gw, &key, &mut request).await {
        return e.into_response();
    }
    let gen_id = gw.new_generation_id();
    let ctx = context(&headers, &key, gen_id.clone());
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        return stream(&gw, request, ctx, gen_id).await;
    }
    let r = match gw.router.chat_with(request, &ctx).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => ApiError::engine(&e, gw.free_limits).into_response(),
    };
    with_gen_id(r, &gen_id)
}

fn data(v: &Value) -> Bytes {
    let mut s = Vec::with_capacity(256);
    s.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut s, v).is_err() {
        s.extend_from_slice(b"{}");
    }
    s.extend_from_slice(b"\n\n");
    Bytes::from(s)
}

/// A pre-content engine error after the 200 headers went out: an in-band error chunk (OpenRouter §6.6).
fn error_chunk(e: &polyroute::Error, id: &str, model: &Value) -> Value {
    let env = e.to_envelope();
    json!({"id": id, "object": "chat.completion.chunk", "created": super::now_ms() / 1000,
           "model": model, "error": env["error"],
           "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]})
}

struct Sse {
    s: SseStream,
    head: VecDeque<Bytes>,
    started: bool,
    done: bool,
    keepalive: Duration,
    id: String,
    model: Value,
}

async fn next_frame(mut st: Sse) -> Option<(Result<Bytes, Infallible>, Sse)> {
    if let Some(b) = st.head.pop_front() {
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
    let mut frame = Vec::new();
    let mut item = item;
    loop {
        match item {
            Some(Ok(events)) => frame.extend_from_slice(&events),
            Some(Err(e)) => frame.extend_from_slice(&data(&error_chunk(&e, &st.id, &st.model))),
            None => {
                st.done = true;
                frame.extend_from_slice(DONE);
                break;
            }
        }
        // Chunks already waiting go out in the same write.
        match st.s.next().now_or_never() {
            Some(next) => item = next,
            None => break,
        }
    }
    Some((Ok(Bytes::from(frame)), st))
}

/// Streams: errors that come before anything is sent get a plain JSON answer with their status; after the
/// first keep-alive comment or chunk the status is 200 and errors are in-band.
async fn stream(gw: &Gateway, request: Value, ctx: RequestContext, id: String) -> Response {
    let model = request.get("model").cloned().unwrap_or(Value::Null);
    let mut s = gw.router.chat_stream_events(request, ctx);
    let mut head = VecDeque::new();
    let mut done = false;
    match tokio::time::timeout(gw.keepalive, s.next()).await {
        Ok(Some(Err(e))) => {
            return with_gen_id(ApiError::engine(&e, gw.free_limits).into_response(), &id)
        }
        Ok(Some(Ok(events))) => head.push_back(events),
        Ok(None) => {
            head.push_back(Bytes::from_static(DONE));
            done = true;
        }
        Err(_) => head.push_back(Bytes::from_static(KEEPALIVE)),
    }
    let st = Sse {
        s,
        head,
        started: false,
        done,
        keepalive: gw.keepalive,
        id: id.clone(),
        model,
    };
    let st = Sse {
        started: st.head.front().is_some_and(|b| b.as_ref() != KEEPALIVE),
        ..st
    };
    let body = Body::from_stream(futures::stream::unfold(st, next_frame));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    with_gen_id(r, &id)
}
