//! `POST …/chat/completions`: JSON answers and SSE streams.
//!
//! A stream waits up to the keep-alive interval for its first item: an error then is a plain JSON answer with its
//! status; otherwise the status is 200, `: OPENROUTER PROCESSING` comments fill the wait before the first chunk,
//! later errors are in-band error chunks, and the stream ends with `data: [DONE]`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

use super::reply::{context, error_response, parse_chat, parse_object};
use super::routes::Call;
use super::{HttpApi, Response, SseBody, DONE, KEEPALIVE};
use crate::lifecycle::ChatInput;
use crate::state::BoxFut;
use crate::{RequestContext, SseStream};

impl HttpApi {
    pub(super) fn free_limits(&self) -> (u32, u32) {
        let l = &self.router.inner.opts.limits;
        (l.free_per_minute, l.free_per_day)
    }
}

pub(super) fn completions<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move {
        let t0 = std::time::Instant::now();
        let (request, streamed) = match parse_chat(&c.req.body) {
            // The common case: the body read straight into the typed request, no `Value` tree.
            Some(mut req) => {
                if let Some(a) = &c.caller.admit {
                    if let Err(r) = a.admit_chat(&mut req).await {
                        return r;
                    }
                }
                let streamed = req.stream == Some(true);
                (ChatInput::Parsed(Box::new(req)), streamed)
            }
            // A body the typed parse refuses takes the `Value` path, which keeps its answer: the JSON error, or
            // admission's rules first and then the engine naming the bad field.
            None => {
                let mut request = match parse_object(&c.req.body) {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                if let Some(a) = &c.caller.admit {
                    if let Err(r) = a.admit(&mut request).await {
                        return r;
                    }
                }
                let streamed = request.get("stream").and_then(Value::as_bool) == Some(true);
                (ChatInput::Json(request), streamed)
            }
        };
        let mut ctx = context(c.req, &c.caller.context);
        let gen_id = ctx
            .generation_id
            .get_or_insert_with(|| api.router.new_generation_id())
            .clone();
        let mut r = if streamed {
            stream(api, request, ctx, &gen_id).await
        } else {
            let (r, timing) = api.router.chat_timed_text(request, &ctx).await;
            let mut r = match r {
                Ok(answer) => {
                    // Room for the two headers added below.
                    let mut headers = Vec::with_capacity(3);
                    headers.push(("content-type".into(), "application/json".into()));
                    Response {
                        status: 200,
                        headers,
                        body: super::Body::Full(Bytes::from(answer)),
                    }
                }
                Err(e) => error_response(&e, api.free_limits()),
            };
            // The time polyroute itself spent: this handler's time minus waiting on providers and backoff.
            let us = t0.elapsed().saturating_sub(timing.waited).as_micros();
            r.headers
                .push((super::OVERHEAD_HEADER.into(), millis_text(us)));
            r
        };
        // Header names already in lower case (as `with_header` writes them).
        r.headers.push(("x-generation-id".into(), gen_id));
        r
    })
}

/// Milliseconds with three decimals from whole microseconds (`12.345`; no float formatting).
fn millis_text(us: u128) -> String {
    let mut s = String::with_capacity(24);
    s.push_str(itoa::Buffer::new().format(us / 1000));
    s.push('.');
    let frac = us % 1000;
    for d in [frac / 100, frac / 10 % 10, frac % 10] {
        s.push(char::from(b'0' + u8::try_from(d).unwrap_or(0)));
    }
    s
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

/// An engine error after the 200 headers went out: an in-band error chunk (OpenRouter §6.6).
fn error_chunk(e: &crate::Error, id: &str, model: &Value) -> Value {
    let env = e.to_envelope();
    json!({"id": id, "object": "chat.completion.chunk", "created": crate::state::now_ms() / 1000,
           "model": model, "error": env["error"],
           "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]})
}

/// The SSE body of a stream: what came before the body was answered (`head`), then the stream's items, several
/// in one frame when they are already waiting, then `[DONE]`. Written as a stream by hand (not an `unfold` of
/// an async step): a frame is one poll, with no step future built and moved per frame.
struct Sse {
    s: SseStream,
    head: Option<Bytes>,
    started: bool,
    done: bool,
    keepalive: Duration,
    /// The keep-alive wait while no item has come yet (a comment goes out each time it ends).
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    id: String,
    model: Value,
}

impl Sse {
    /// An item as the bytes that go out.
    fn frame(&self, item: Result<Bytes, crate::Error>) -> Bytes {
        match item {
            Ok(events) => events,
            Err(e) => data(&error_chunk(&e, &self.id, &self.model)),
        }
    }
}

impl Stream for Sse {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let st = self.get_mut();
        if let Some(b) = st.head.take() {
            return Poll::Ready(Some(b));
        }
        if st.done {
            return Poll::Ready(None);
        }
        let item = match st.s.poll_next_unpin(cx) {
            Poll::Ready(item) => item,
            Poll::Pending if st.started => return Poll::Pending,
            Poll::Pending => {
                // Before the first item: a keep-alive comment each interval without one.
                let keepalive = st.keepalive;
                let wait = st
                    .wait
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(keepalive)));
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                st.wait = None;
                return Poll::Ready(Some(Bytes::from_static(KEEPALIVE)));
            }
        };
        st.started = true;
        st.wait = None;
        // The usual case, one item and nothing else waiting: it goes out as it came (no copy).
        let first = match item {
            Some(item) => st.frame(item),
            None => {
                st.done = true;
                return Poll::Ready(Some(Bytes::from_static(DONE)));
            }
        };
        if st.s.nothing_waiting() {
            return Poll::Ready(Some(first));
        }
        let mut next = match st.s.poll_next_unpin(cx) {
            Poll::Ready(next) => next,
            Poll::Pending => return Poll::Ready(Some(first)),
        };
        // Chunks already waiting go out in the same write.
        let mut frame = Vec::with_capacity(first.len() + 512);
        frame.extend_from_slice(&first);
        loop {
            match next {
                Some(item) => frame.extend_from_slice(&st.frame(item)),
                None => {
                    st.done = true;
                    frame.extend_from_slice(DONE);
                    break;
                }
            }
            if st.s.nothing_waiting() {
                break;
            }
            match st.s.poll_next_unpin(cx) {
                Poll::Ready(n) => next = n,
                Poll::Pending => break,
            }
        }
        Poll::Ready(Some(Bytes::from(frame)))
    }
}

async fn stream(api: &HttpApi, request: ChatInput, ctx: RequestContext, id: &str) -> Response {
    let model = match &request {
        ChatInput::Json(v) => v.get("model").cloned().unwrap_or(Value::Null),
        ChatInput::Parsed(r) => r.model.clone().map_or(Value::Null, Value::String),
    };
    let mut s = api.router.chat_stream_input(request, ctx);
    let head;
    let mut done = false;
    match tokio::time::timeout(api.keepalive, s.next()).await {
        Ok(Some(Err(e))) => return error_response(&e, api.free_limits()),
        Ok(Some(Ok(events))) => head = events,
        Ok(None) => {
            head = Bytes::from_static(DONE);
            done = true;
        }
        Err(_) => head = Bytes::from_static(KEEPALIVE),
    }
    let started = head.as_ref() != KEEPALIVE;
    let st = Sse {
        s,
        head: Some(head),
        started,
        done,
        keepalive: api.keepalive,
        wait: None,
        id: id.to_string(),
        model,
    };
    // Room for the generation id added by the caller.
    let mut headers = Vec::with_capacity(4);
    headers.extend([
        ("content-type".into(), "text/event-stream".into()),
        ("cache-control".into(), "no-cache".into()),
        ("x-accel-buffering".into(), "no".into()),
    ]);
    Response {
        status: 200,
        headers,
        body: super::Body::Sse(SseBody::new(st)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn millis_read_as_the_formatted_ones() {
        for us in [
            0u128,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            1001,
            12_345,
            1_000_000,
            u128::MAX,
        ] {
            assert_eq!(
                super::millis_text(us),
                format!("{}.{:03}", us / 1000, us % 1000)
            );
        }
    }
}
