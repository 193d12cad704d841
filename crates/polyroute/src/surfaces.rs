//! The Anthropic Messages and OpenAI Responses surfaces over the one chat lifecycle: each request is translated
//! to a chat request ([`polyroute_core::surfaces`]), routed by [`Router::chat_with`] / [`Router::chat_stream_with`]
//! (admission, limits, failover before the first content only, billing, the ledger and `/generation` all
//! unchanged), and its answer or chunks translated back.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use polyroute_core::surfaces::{messages, responses, Event, MessagesStream, ResponsesStream};
use polyroute_core::{Error, Result};
use serde_json::{json, Value};

use crate::chat_stream::{value_weight, ChatStream, Weigh};
use crate::config::RequestContext;
use crate::router::Router;

/// The chat request of a surface request, with `stream` set as the call wants.
fn chat_of(chat: Result<Value>, stream: bool) -> Result<Value> {
    let mut chat = chat?;
    if let Some(m) = chat.as_object_mut() {
        if stream {
            m.insert("stream".into(), Value::Bool(true));
        } else {
            m.remove("stream");
        }
    }
    Ok(chat)
}

/// Keep the opt-in routing metadata of a chat answer on the surface's answer.
fn with_metadata(mut out: Value, answer: &Value) -> Value {
    if let Some(m) = answer.get("openrouter_metadata") {
        out["openrouter_metadata"] = m.clone();
    }
    out
}

impl Router {
    /// An Anthropic Messages request (`POST /v1/messages` body, with OpenRouter's `models` and `provider`),
    /// answered as a Messages `message` whose `usage` carries `cost`. Routed, limited and billed as chat.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the Messages field, then every error of [`Router::chat_with`].
    pub async fn messages(&self, request: Value, ctx: &RequestContext) -> Result<Value> {
        let chat = chat_of(messages::to_chat(&request), false)?;
        let answer = self.chat_with(chat, ctx).await?;
        Ok(with_metadata(messages::from_chat(&answer), &answer))
    }

    /// A streamed Messages request: Anthropic's events (`message_start` … `message_stop`).
    ///
    /// # Errors
    /// A request that does not translate is refused at once; routing errors before any content come as the
    /// stream's first (and only) item.
    pub fn messages_stream(&self, request: Value, ctx: RequestContext) -> Result<SurfaceStream> {
        let chat = chat_of(messages::to_chat(&request), true)?;
        Ok(SurfaceStream::new(
            self.chat_stream_with(chat, ctx),
            Translator::Messages(MessagesStream::new()),
        ))
    }

    /// An OpenAI Responses request (stateless: `previous_response_id` and `store: true` are refused), answered
    /// as a `response` object whose `usage` carries `cost`. Routed, limited and billed as chat.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] naming the Responses field, then every error of [`Router::chat_with`].
    pub async fn responses(&self, request: Value, ctx: &RequestContext) -> Result<Value> {
        let chat = chat_of(responses::to_chat(&request), false)?;
        let answer = self.chat_with(chat, ctx).await?;
        Ok(with_metadata(
            responses::from_chat(&answer, &request),
            &answer,
        ))
    }

    /// A streamed Responses request: the Responses events (`response.created` … `response.completed`).
    ///
    /// # Errors
    /// As [`Router::messages_stream`].
    pub fn responses_stream(&self, request: Value, ctx: RequestContext) -> Result<SurfaceStream> {
        let chat = chat_of(responses::to_chat(&request), true)?;
        Ok(SurfaceStream::new(
            self.chat_stream_with(chat, ctx),
            Translator::Responses(Box::new(ResponsesStream::new(request))),
        ))
    }
}

enum Translator {
    Messages(MessagesStream),
    Responses(Box<ResponsesStream>),
}

impl Translator {
    fn push(&mut self, chunk: &Value) -> Vec<Event> {
        match self {
            Translator::Messages(t) => t.push(chunk),
            Translator::Responses(t) => t.push(chunk),
        }
    }

    fn finish(&mut self) -> Vec<Event> {
        match self {
            Translator::Messages(t) => t.finish(),
            Translator::Responses(t) => t.finish(),
        }
    }

    /// [`Translator::push`] as SSE text (the frequent events written without building values).
    fn push_sse(&mut self, chunk: &Value, buf: &mut Vec<u8>) {
        match self {
            Translator::Messages(t) => t.push_sse(chunk, buf),
            Translator::Responses(t) => t.push_sse(chunk, buf),
        }
    }

    fn finish_sse(&mut self, buf: &mut Vec<u8>) {
        match self {
            Translator::Messages(t) => t.finish_sse(buf),
            Translator::Responses(t) => t.finish_sse(buf),
        }
    }
}

/// The events of a streamed Messages or Responses request. An error before any content is the first and only
/// item (`Err`, so a server can still answer with its status); later failures are in-band `error` events.
/// Dropping it cancels the upstream request, as dropping a [`ChatStream`] does (what was produced is billed).
pub struct SurfaceStream {
    chat: ChatStream,
    t: Translator,
    queue: VecDeque<Event>,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for SurfaceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SurfaceStream")
    }
}

impl SurfaceStream {
    fn new(chat: ChatStream, t: Translator) -> Self {
        Self {
            chat,
            t,
            queue: VecDeque::new(),
            started: false,
            done: false,
        }
    }

    /// The stream as SSE text (`event: …\ndata: …\n\n`): one item holds the events of one chat chunk; a
    /// pre-content error is the first and only item, as `Err`.
    #[must_use]
    pub fn sse(self) -> SurfaceSse {
        SurfaceSse(self)
    }
}

/// [`SurfaceStream::sse`]: the events as SSE text, written without building the frequent Messages events as
/// values (the bytes [`Event::write_sse`] writes).
#[derive(Debug)]
pub struct SurfaceSse(SurfaceStream);

impl Stream for SurfaceSse {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut self.0;
        let mut buf = Vec::new();
        // Events a caller read as values before turning the stream into text.
        for e in me.queue.drain(..) {
            e.write_sse(&mut buf);
        }
        loop {
            if me.done {
                return Poll::Ready((!buf.is_empty()).then(|| Ok(Bytes::from(buf))));
            }
            if !buf.is_empty() {
                return Poll::Ready(Some(Ok(Bytes::from(buf))));
            }
            match Pin::new(&mut me.chat).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    me.started = true;
                    me.t.push_sse(&chunk, &mut buf);
                }
                Poll::Ready(Some(Err(e))) if !me.started => {
                    me.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Err(e))) => {
                    let chunk = json!({"error": error_object(&e), "choices": []});
                    me.t.push_sse(&chunk, &mut buf);
                }
                Poll::Ready(None) => {
                    me.done = true;
                    me.t.finish_sse(&mut buf);
                }
            }
        }
    }
}

/// An event counts for its JSON (for [`crate::ReadAhead`]'s byte limit).
impl Weigh for Event {
    fn weight(&self) -> usize {
        value_weight(&self.data)
    }
}

impl Stream for SurfaceStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let me = &mut *self;
        loop {
            if let Some(e) = me.queue.pop_front() {
                return Poll::Ready(Some(Ok(e)));
            }
            if me.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut me.chat).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    me.started = true;
                    me.queue.extend(me.t.push(&chunk));
                }
                Poll::Ready(Some(Err(e))) if !me.started => {
                    me.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Err(e))) => {
                    let chunk = json!({"error": error_object(&e), "choices": []});
                    me.queue.extend(me.t.push(&chunk));
                }
                Poll::Ready(None) => {
                    me.done = true;
                    me.queue.extend(me.t.finish());
                }
            }
        }
    }
}

fn error_object(e: &Error) -> Value {
    e.to_envelope()
        .get("error")
        .cloned()
        .unwrap_or_else(|| json!({"code": e.http_status(), "message": e.to_string()}))
}
