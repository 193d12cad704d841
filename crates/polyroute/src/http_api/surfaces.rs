//! `POST …/messages` and `POST …/messages/count_tokens` (Anthropic Messages) and `POST …/responses` (OpenAI
//! Responses, stateless), with chat's admission and request context: the engine's [`Router::messages`] family
//! translates and routes them through the chat lifecycle. Messages errors have Anthropic's shape
//! (`{type: "error", error: {type, message}}`, status and rate-limit headers unchanged); Responses errors keep
//! OpenRouter's envelope. Streams are the surface's own events (`event:` lines, no `[DONE]`), with the
//! keep-alive comment until the first one.
//!
//! [`Router::messages`]: crate::Router::messages

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use polyroute_core::surfaces::{messages, tokens, Event};
use serde_json::{json, Value};

use super::reply::{context, error_response, parse_object};
use super::routes::Call;
use super::{Body, HttpApi, Response, SseBody, KEEPALIVE};
use crate::state::BoxFut;
use crate::{SurfaceSse, SurfaceStream};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Messages,
    Responses,
}

/// An answer in the surface's error shape.
fn shaped(surface: Surface, r: Response) -> Response {
    if surface == Surface::Responses || r.status < 400 {
        return r;
    }
    let Body::Full(b) = &r.body else { return r };
    let env: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
    let body = messages::error_body(r.status, &env);
    Response {
        status: r.status,
        headers: r.headers,
        body: Body::Full(Bytes::from(body.to_string())),
    }
}

pub(super) fn messages<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move { shaped(Surface::Messages, handle(api, c, Surface::Messages).await) })
}

pub(super) fn responses<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move { handle(api, c, Surface::Responses).await })
}

/// The request body, with `fallbacks` folded into `models` (so that the caller's model rules see them) and the
/// caller's admission applied, as chat applies it.
async fn admitted(c: &Call<'_>, surface: Surface) -> Result<Value, Response> {
    let mut request = parse_object(&c.req.body)?;
    if surface == Surface::Messages {
        messages::fold_fallbacks(&mut request).map_err(|e| error_response(&e, (0, 0)))?;
    }
    if let Some(a) = &c.caller.admit {
        a.admit(&mut request).await?;
    }
    Ok(request)
}

async fn handle(api: &HttpApi, c: Call<'_>, surface: Surface) -> Response {
    let request = match admitted(&c, surface).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut ctx = context(c.req, &c.caller.context);
    let gen_id = ctx
        .generation_id
        .get_or_insert_with(|| api.router.new_generation_id())
        .clone();
    let r = if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let s = match surface {
            Surface::Messages => api.router.messages_stream(request, ctx),
            Surface::Responses => api.router.responses_stream(request, ctx),
        };
        match s {
            Ok(s) => stream(api, surface, s).await,
            Err(e) => error_response(&e, api.free_limits()),
        }
    } else {
        let answer = match surface {
            Surface::Messages => api.router.messages(request, &ctx).await,
            Surface::Responses => api.router.responses(request, &ctx).await,
        };
        match answer {
            Ok(v) => Response::json(200, &v),
            Err(e) => error_response(&e, api.free_limits()),
        }
    };
    r.with_header("x-generation-id", gen_id)
}

/// `POST …/messages/count_tokens`: `{"input_tokens": n}`, an estimate (see [`tokens`]); admission as for
/// `/messages`, no provider called.
pub(super) fn count_tokens<'a>(_api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move {
        let request = match admitted(&c, Surface::Messages).await {
            Ok(r) => r,
            Err(r) => return shaped(Surface::Messages, r),
        };
        match tokens::count_messages(&request) {
            Ok(n) => Response::json(200, &json!({"input_tokens": n})),
            Err(e) => shaped(Surface::Messages, error_response(&e, (0, 0))),
        }
    })
}

/// A failure after the 200 went out (only after keep-alive comments): the surface's in-band `error` event.
fn in_band(surface: Surface, e: &crate::Error) -> Bytes {
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
    s: SurfaceSse,
    surface: Surface,
    head: Option<Bytes>,
    started: bool,
    done: bool,
    keepalive: Duration,
}

async fn next_frame(mut st: Sse) -> Option<(Bytes, Sse)> {
    if let Some(b) = st.head.take() {
        return Some((b, st));
    }
    if st.done {
        return None;
    }
    let item = if st.started {
        st.s.next().await
    } else {
        match tokio::time::timeout(st.keepalive, st.s.next()).await {
            Ok(x) => x,
            Err(_) => return Some((Bytes::from_static(KEEPALIVE), st)),
        }
    };
    st.started = true;
    match item {
        Some(Ok(b)) => Some((b, st)),
        Some(Err(e)) => {
            st.done = true;
            let b = in_band(st.surface, &e);
            Some((b, st))
        }
        None => None,
    }
}

/// Errors before anything is sent get a plain answer with their status; after the first keep-alive comment or
/// event the status is 200 and errors are in-band.
async fn stream(api: &HttpApi, surface: Surface, s: SurfaceStream) -> Response {
    let mut s = s.sse();
    let (head, started, done) = match tokio::time::timeout(api.keepalive, s.next()).await {
        Ok(Some(Err(e))) => return error_response(&e, api.free_limits()),
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
        keepalive: api.keepalive,
    };
    Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/event-stream".into()),
            ("cache-control".into(), "no-cache".into()),
            ("x-accel-buffering".into(), "no".into()),
        ],
        body: Body::Sse(SseBody::new(futures::stream::unfold(st, next_frame))),
    }
}
