//! A non-streamed attempt: send, read the whole body within the timeouts, translate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use polyroute_core::plan::{Attempt, OutcomeClass};
use polyroute_core::providers::{self, ProviderFailure, SplicedAnswer};
use polyroute_core::types::ChatRequest;
use serde_json::Value;

use super::prepare::{error_type, ms, retry_after, status_failure, Prepared, Upstream};
use super::{
    read_capped, AttemptEnd, Driver, ReadError, Served, MAX_ERROR_BYTES, MAX_RESPONSE_BYTES,
};
use crate::admission::Admission;
use crate::router::Router;
use crate::wire;

/// Drives unary attempts; `gone` is set when the caller stopped waiting. With `text`, an answer in OpenAI's
/// dialect is kept as text with its fields spliced in ([`Answer::Spliced`]) instead of becoming a `Value`.
pub(crate) struct Unary<'r> {
    pub req: &'r ChatRequest,
    pub gone: Arc<AtomicBool>,
    pub text: bool,
}

/// A translated answer: a `Value`, or OpenAI-dialect text awaiting its billed `usage`.
pub(crate) enum Answer {
    Value(Value),
    Spliced(SplicedAnswer),
}

impl Driver for Unary<'_> {
    type Out = Answer;

    async fn attempt<'a>(
        &'a mut self,
        router: &'a Router,
        ad: &'a Admission,
        a: &'a Attempt,
        deadline: Instant,
    ) -> AttemptEnd<Answer> {
        match try_unary(router, ad, a, self.req, deadline, self.text).await {
            Ok((out, served, tput)) => AttemptEnd::Served { out, served, tput },
            Err(f) => AttemptEnd::Failed(f),
        }
    }

    fn caller_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }
}

/// One non-streamed attempt.
async fn try_unary(
    router: &Router,
    ad: &Admission,
    a: &Attempt,
    req: &ChatRequest,
    deadline: Instant,
    text: bool,
) -> Result<(Answer, Served, Option<f64>), ProviderFailure> {
    let up = router.upstream_for(a, ad)?;
    let up = &*up;
    let token = router.access_token(a, up).await?;
    let Prepared { rb, hints, dropped } = router.prepare(a, up, req, false, token.as_ref())?;
    let (status, body, ttft) = exchange(router, a, up, rb, deadline, &ad.waited).await?;
    let rctx = Router::response_ctx(ad, a, hints);
    let spliced = if text {
        providers::splice_response(a.dialect, &body, &rctx)
    } else {
        None
    };
    let (value, usage, finish) = match spliced {
        Some(s) => {
            let (usage, finish) = (s.usage, s.finish.map(str::to_string));
            (Answer::Spliced(s), usage, finish)
        }
        None => {
            let (value, usage) = providers::parse_response(a.dialect, status, &body, &rctx)?;
            let finish = value
                .pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            (Answer::Value(value), usage, finish)
        }
    };
    let tput = Some(ttft)
        .filter(|t| *t > 0.0)
        .map(|t| usage.completion_tokens as f64 / (t / 1000.0));
    Ok((
        value,
        Served {
            usage,
            finish,
            ttft_ms: Some(ttft),
            dropped,
            relayed: 0,
        },
        tput,
    ))
}

/// Send a built request and read its whole JSON answer within the upstream's timeouts and the deadline: the
/// status, the body and the milliseconds it took, or the failure (timeouts, transport, a non-2xx answer mapped by
/// the attempt's dialect, a body too large or not JSON).
pub(crate) async fn exchange(
    router: &Router,
    a: &Attempt,
    up: &Upstream,
    rb: crate::http_client::UpRequest,
    deadline: Instant,
    waited: &crate::metrics::Waited,
) -> Result<(u16, bytes::Bytes, f64), ProviderFailure> {
    let t0 = Instant::now();
    let budget = up
        .timeouts
        .first_token
        .min(deadline.saturating_duration_since(t0));
    let resp = match waited
        .time(tokio::time::timeout(budget, router.http.send(rb)))
        .await
    {
        Err(_) => {
            return Err(wire::transport_failure(
                OutcomeClass::Timeout,
                0,
                "no response headers before the first-token timeout",
                &a.provider_name,
            ))
        }
        Ok(Err(e)) => return Err(Router::failure_from_transport(&e, a, up)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let ok = (200..300).contains(&status);
    // Only a failure reads `retry-after` and the error type; only a success needs its content type.
    let (ra, etype) = if ok {
        (None, None)
    } else {
        (retry_after(resp.headers()), error_type(resp.headers()))
    };
    // A success that is not JSON: its content type (lower case) for the error.
    let not_json = if ok {
        let ctype = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let json = ctype
            .as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"json"));
        (!json).then(|| ctype.to_ascii_lowercase())
    } else {
        None
    };
    let rest = deadline
        .saturating_duration_since(Instant::now())
        .min(up.timeouts.idle.max(up.timeouts.first_token));
    let (cap, truncate) = if ok {
        (MAX_RESPONSE_BYTES, false)
    } else {
        (MAX_ERROR_BYTES, true)
    };
    let body = match waited
        .time(tokio::time::timeout(rest, read_capped(resp, cap, truncate)))
        .await
    {
        Err(_) => {
            return Err(wire::transport_failure(
                OutcomeClass::Timeout,
                status,
                "response body timed out",
                &a.provider_name,
            ))
        }
        Ok(Err(ReadError::Transport(e))) => return Err(Router::failure_from_transport(&e, a, up)),
        Ok(Err(ReadError::TooLarge)) => {
            return Err(wire::transport_failure(
                OutcomeClass::Overloaded,
                status,
                &format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
                &a.provider_name,
            ))
        }
        Ok(Ok(b)) => b,
    };
    let ttft = ms(t0.elapsed());
    if !ok {
        router.token_rejected(up, status).await;
        return Err(status_failure(a, status, ra, etype.as_deref(), &body));
    }
    if let Some(ctype) = not_json {
        return Err(wire::transport_failure(
            OutcomeClass::Overloaded,
            status,
            &format!("unexpected content type {ctype:?}"),
            &a.provider_name,
        ));
    }
    Ok((status, body, ttft))
}
