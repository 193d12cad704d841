//! A streamed attempt: translated chunks are held back until content appears (so a failure before it can still
//! fail over), then relayed as they come; the caller going away ends the attempt as
//! [`AttemptEnd::Abandoned`] with what the provider produced so far.

use std::future::Future;
use std::task::{Poll, Waker};
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use polyroute_core::plan::{Attempt, OutcomeClass};
use polyroute_core::providers::{ProviderFailure, StreamTranslator};
use polyroute_core::types::ChatRequest;
use serde_json::Value;

use super::prepare::{error_type, ms, retry_after, status_failure, Prepared};
use super::{read_capped, AttemptEnd, Driver, Served, MAX_ERROR_BYTES, MAX_RESPONSE_BYTES};
use crate::admission::Admission;
use crate::chat_stream::{ChunkTx, Held};
use crate::metrics::Waited;
use crate::router::Router;
use crate::wire;

/// Drives streamed attempts into `tx`.
pub(crate) struct Streamed<'r> {
    pub req: &'r ChatRequest,
    pub tx: &'r ChunkTx,
}

impl Driver for Streamed<'_> {
    type Out = ();

    fn attempt<'a>(
        &'a mut self,
        router: &'a Router,
        ad: &'a Admission,
        a: &'a Attempt,
        deadline: Instant,
    ) -> impl Future<Output = AttemptEnd<()>> + Send + 'a {
        // Boxed: an attempt's state (request, translator, timers) is the largest part of a stream's work, which
        // is moved whole into its heap slot (and again if it moves to a task); boxed, it is allocated once, when
        // the attempt starts.
        Box::pin(try_stream(router, ad, a, self.req, deadline, self.tx))
    }

    fn caller_gone(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Send the held chunks; false when the caller went away. Time spent waiting for the caller to make room
/// counts as waiting (a send that does not wait is not timed).
async fn flush(tx: &ChunkTx, held: &mut Held, waited: &Waited) -> bool {
    // The usual case, SSE bytes and room for them: sent without a future.
    if let Some(sent) = tx.try_flush(held) {
        return sent;
    }
    let mut send = std::pin::pin!(tx.flush(held));
    if let Some(ok) = send.as_mut().now_or_never() {
        return ok;
    }
    let t = Instant::now();
    let ok = send.await;
    waited.add(t.elapsed());
    ok
}

/// How a body read ended.
enum Read<T> {
    /// The body's next item (`None` at its end).
    Frame(Option<T>),
    /// The caller went away.
    Gone,
    /// The read's time limit passed.
    Expired,
}

/// What the translator has produced so far.
fn partial(tr: &StreamTranslator, ttft: Option<f64>, dropped: &[String], relayed: u64) -> Served {
    Served {
        usage: tr.usage().copied().unwrap_or_default(),
        finish: tr.finish_reason().map(str::to_string),
        ttft_ms: ttft,
        dropped: dropped.to_vec(),
        relayed,
    }
}

fn end_failed(
    f: ProviderFailure,
    tr: &StreamTranslator,
    ttft: Option<f64>,
    dropped: &[String],
    relayed: u64,
    err_chunk: Option<Value>,
) -> AttemptEnd<()> {
    if tr.content_emitted() {
        let mut p = partial(tr, ttft, dropped, relayed);
        p.finish = Some("error".into());
        AttemptEnd::Broken {
            failure: f,
            partial: p,
            err_chunk,
        }
    } else {
        AttemptEnd::Failed(f)
    }
}

async fn try_stream(
    router: &Router,
    ad: &Admission,
    a: &Attempt,
    req: &ChatRequest,
    deadline: Instant,
    tx: &ChunkTx,
) -> AttemptEnd<()> {
    let up = match router.upstream_for(a, ad) {
        Ok(u) => u,
        Err(f) => return AttemptEnd::Failed(f),
    };
    let up = &*up;
    let token = match router.access_token(a, up).await {
        Ok(t) => t,
        Err(f) => return AttemptEnd::Failed(f),
    };
    let Prepared { rb, hints, dropped } = match router.prepare(a, up, req, true, token.as_ref()) {
        Ok(p) => p,
        Err(f) => return AttemptEnd::Failed(f),
    };
    let t0 = Instant::now();
    let first_deadline = (t0 + up.timeouts.first_token).min(deadline);
    if t0 >= deadline {
        return AttemptEnd::Failed(wire::transport_failure(
            OutcomeClass::Timeout,
            0,
            "total request timeout",
            &a.provider_name,
        ));
    }
    // One timer for the whole attempt: the wait for the response head, then every body read (it is moved, not
    // made again: each timer costs a registration with the runtime's wheel and its removal).
    let timer = tokio::time::sleep_until(first_deadline.into());
    tokio::pin!(timer);
    // As `timeout_at(first_deadline, send)`: the send first, then the deadline.
    let sent = tokio::select! {
        biased;
        () = tx.closed() => return AttemptEnd::Abandoned(None),
        r = router.http.send(rb) => Some(r),
        () = &mut timer => None,
    };
    ad.waited.add(t0.elapsed());
    let resp = match sent {
        None => {
            return AttemptEnd::Failed(wire::transport_failure(
                OutcomeClass::Timeout,
                0,
                "no response headers before the first-token timeout",
                &a.provider_name,
            ))
        }
        Some(Err(e)) => return AttemptEnd::Failed(Router::failure_from_transport(&e, a, up)),
        Some(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let ra = retry_after(resp.headers());
        let etype = error_type(resp.headers());
        let body = ad
            .waited
            .time(tokio::time::timeout_at(
                first_deadline.into(),
                read_capped(resp, MAX_ERROR_BYTES, true),
            ))
            .await
            .ok()
            .and_then(std::result::Result::ok)
            .unwrap_or_default();
        router.token_rejected(up, status).await;
        return AttemptEnd::Failed(status_failure(a, status, ra, etype.as_deref(), &body));
    }
    let ctype = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Compared in lower case (a copy only when the header has upper case).
    let lower;
    let ctype = if ctype.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = ctype.to_ascii_lowercase();
        lower.as_str()
    } else {
        ctype
    };
    if !a.dialect.framing().matches_content_type(ctype) {
        return AttemptEnd::Failed(wire::transport_failure(
            OutcomeClass::Overloaded,
            status,
            &format!("unexpected content type {ctype:?} for a stream"),
            &a.provider_name,
        ));
    }
    let mut tr = StreamTranslator::new(a.dialect, Router::response_ctx(ad, a, hints));
    let mut body = resp.into_body();
    // Translated chunks not yet sent: held back until content appears (so a failure can still fall back).
    let mut held = tx.held();
    let mut ttft: Option<f64> = None;
    let mut first_at: Option<Instant> = None;
    let mut relayed: u64 = 0;
    // One wait for the caller going away and one timer for the whole body, reset before each read (a timer
    // made and dropped per read, and a fresh wait on the channel each time, cost more than the read).
    let closed = tx.closed();
    tokio::pin!(closed);
    // When the timer is set to fire. A read's limit only moves later (the idle gap runs from a later read; the
    // first-token wait gives way to the later total deadline), so the timer is moved back only when it fires
    // before the current limit: not on every read, which costs as much as the read.
    let mut armed = first_deadline;
    // The waker of the timer's last poll since it was last set (None: not polled since).
    let mut timer_waker: Option<Waker> = None;
    // The limit of the last read that waited (named when it expires).
    let mut until = armed;
    loop {
        // The caller going away is checked first, as a flag (the wait for it is polled only when the read waits).
        if tx.is_closed() {
            return AttemptEnd::Abandoned(Some(partial(&tr, ttft, &dropped, relayed)));
        }
        let emitted = tr.content_emitted();
        // When the read began to wait: the clock is read only by a read that waits (most reads of a stream find
        // their bytes buffered), and the read's limit runs from then.
        let mut waiting_since: Option<Instant> = None;
        // As `timeout_at(until, body.next())`: the read first, then the caller going away, then the deadline.
        // The timer is polled only when it may have news: when it was set since its last poll, when the work
        // runs with another waker than that poll's, or when it fired (a flag read). A timer polled on every
        // read that waits costs more than the read's own wait.
        let next = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = body.poll_next_unpin(cx) {
                return Poll::Ready(Read::Frame(r));
            }
            if closed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Read::Gone);
            }
            if waiting_since.is_none() {
                let now = Instant::now();
                waiting_since = Some(now);
                let idle_at = now + up.timeouts.idle;
                until = if emitted {
                    idle_at.min(deadline)
                } else {
                    first_deadline.min(idle_at)
                };
                if until < armed {
                    timer.as_mut().reset(until.into());
                    timer_waker = None;
                    armed = until;
                }
            }
            loop {
                let registered = timer_waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()));
                if registered && !timer.is_elapsed() {
                    return Poll::Pending;
                }
                if timer.as_mut().poll(cx).is_pending() {
                    timer_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                if armed >= until {
                    return Poll::Ready(Read::Expired);
                }
                timer.as_mut().reset(until.into());
                timer_waker = None;
                armed = until;
            }
        })
        .await;
        let next = match next {
            Read::Frame(r) => Ok(r),
            Read::Expired => Err(()),
            Read::Gone => {
                return AttemptEnd::Abandoned(Some(partial(&tr, ttft, &dropped, relayed)));
            }
        };
        if let Some(t) = waiting_since {
            ad.waited.add(t.elapsed());
        }
        let chunk = match next {
            Err(_) => {
                // Name the limit that expired: the total deadline, the idle gap or the first-token wait.
                let what = if until >= deadline {
                    "total request timeout"
                } else if tr.content_emitted() {
                    "idle timeout between stream chunks"
                } else {
                    "no first token before the first-token timeout"
                };
                let f =
                    wire::transport_failure(OutcomeClass::Timeout, status, what, &a.provider_name);
                return end_failed(f, &tr, ttft, &dropped, relayed, None);
            }
            Ok(None) => None,
            // The body broke off (connection reset, a cut chunk): said in OpenRouter's terms, not the HTTP
            // library's (its text names no cause the caller can act on).
            Ok(Some(Err(_))) => {
                let f = wire::transport_failure(
                    OutcomeClass::Overloaded,
                    status,
                    wire::STREAM_INTERRUPTED,
                    &a.provider_name,
                );
                return end_failed(f, &tr, ttft, &dropped, relayed, None);
            }
            Ok(Some(Ok(b))) => Some(b),
        };
        let mark = held.mark();
        match &chunk {
            Some(b) => held.push(&mut tr, b),
            // The translator's usage chunk is replaced by the billed one (with cost) after the ledger.
            None => held.finish(&mut tr),
        }
        // An upstream that never ends a line or an event (broken or hostile) is cut off at the answer size
        // cap instead of being buffered without end: a broken stream, as a cut connection is.
        if tr.buffered() > MAX_RESPONSE_BYTES {
            let f = wire::transport_failure(
                OutcomeClass::Overloaded,
                status,
                &format!("Stream event larger than {MAX_RESPONSE_BYTES} bytes"),
                &a.provider_name,
            );
            return end_failed(f, &tr, ttft, &dropped, relayed, None);
        }
        if let Some(f) = tr.failure() {
            let f = f.clone();
            // The translator ended the stream with its in-band error chunk; it goes out after billing.
            let err_chunk = held.pop_error_since(mark);
            // Deliver what was translated before the failure, then end in-band.
            if tr.content_emitted() {
                relayed += held.events();
                if !flush(tx, &mut held, &ad.waited).await {
                    return AttemptEnd::Abandoned(Some(partial(&tr, ttft, &dropped, relayed)));
                }
            }
            return end_failed(f, &tr, ttft, &dropped, relayed, err_chunk);
        }
        if tr.content_emitted() {
            if ttft.is_none() {
                ttft = Some(ms(t0.elapsed()));
                first_at = Some(Instant::now());
            }
            relayed += held.events();
            if !flush(tx, &mut held, &ad.waited).await {
                return AttemptEnd::Abandoned(Some(partial(&tr, ttft, &dropped, relayed)));
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    relayed += held.events();
    if !flush(tx, &mut held, &ad.waited).await {
        return AttemptEnd::Abandoned(Some(partial(&tr, ttft, &dropped, relayed)));
    }
    let usage = tr.usage().copied().unwrap_or_default();
    let tput = first_at
        .map(|f| f.elapsed().as_secs_f64())
        .filter(|s| *s > 0.0)
        .map(|s| usage.completion_tokens as f64 / s);
    AttemptEnd::Served {
        out: (),
        served: Served {
            usage,
            finish: tr.finish_reason().map(str::to_string),
            ttft_ms: ttft.or(Some(ms(t0.elapsed()))),
            dropped,
            relayed,
        },
        tput,
    }
}
