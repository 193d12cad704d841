//! OpenRouter's response cache in front of `POST /api/v1/chat/completions`:
//!
//! - opt in per request with `X-OpenRouter-Cache: true`; `X-OpenRouter-Cache-TTL` sets the life of a stored
//!   answer in seconds (1-86400, default 300); `X-OpenRouter-Cache-Clear: true` drops the stored answer and
//!   answers afresh (storing the new one);
//! - the key is SHA-256 over the API key's hash, the model, the stream flag and the SHA-256 of the body as sent
//!   (so property order matters, as on OpenRouter);
//! - only complete 200 answers are stored (a stream only when it ended with `data: [DONE]` and no in-band
//!   error); keep-alive comments are not stored;
//! - a hit is answered from the cache with `X-OpenRouter-Cache-Status: HIT`, `X-OpenRouter-Cache-Age`,
//!   `X-OpenRouter-Cache-TTL` and `X-OpenRouter-Cache-Source-Id` (the generation that produced it); a stream is
//!   replayed as the same SSE events. It has its own generation id, billed 0: the ledger gets a copy of the
//!   source record with cost 0 and `cost_details: {"cache_hit": true, "source_generation_id": …}`;
//! - a miss carries `X-OpenRouter-Cache-Status: MISS`; a hit still passes the key's admission rules (rpm,
//!   allowlists) first.
//!
//! The cache is in process by default and in Redis (shared by replicas) when `[state] redis` is set. A cache
//! that cannot be read is a miss.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use polyroute::http_api::KEEPALIVE;
use polyroute::state::cache::CachedResponse;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::{chat, now_ms, parse_object, Authenticated, Gateway};

/// Default TTL (s).
pub const DEFAULT_TTL: u64 = 300;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn set(h: &mut HeaderMap, name: &'static str, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

/// The cache key of a request.
#[must_use]
pub fn cache_key(key_hash: &str, model: &str, stream: bool, body: &[u8]) -> String {
    let body_hash = hex::encode(Sha256::digest(body));
    let mut h = Sha256::new();
    for part in [
        key_hash,
        model,
        if stream { "stream" } else { "json" },
        &body_hash,
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// The handler: [`chat::completions`] behind the cache. A request the middleware authenticated carries its body
/// already read ([`Authenticated`]): its headers are moved out and the body taken from there, instead of the
/// extractors' copy of the headers and second read of the body.
pub async fn completions(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let known = req.extensions().get::<Authenticated>().cloned();
    let (known, headers, body) = match known {
        Some(a) => {
            let body = Ok(a.1.clone());
            (Some(Extension(a)), req.into_parts().0.headers, body)
        }
        None => {
            let headers = req.headers().clone();
            (None, headers, Bytes::from_request(req, &gw).await)
        }
    };
    cached(gw, known, headers, body).await
}

async fn cached(
    gw: Arc<Gateway>,
    known: Option<Extension<Authenticated>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Looked up by a constant name: every chat request asks, and a `&str` name is parsed on each lookup.
    const CACHE: HeaderName = HeaderName::from_static("x-openrouter-cache");
    let on = headers
        .get(CACHE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let Ok(bytes) = body.as_ref() else {
        return chat::completions(State(gw), known, headers, body).await;
    };
    if !on {
        return chat::completions(State(gw), known, headers, body).await;
    }
    let ttl = match header(&headers, "x-openrouter-cache-ttl") {
        None => DEFAULT_TTL,
        Some(t) => match t.parse::<u64>() {
            Ok(n) if (1..=86_400).contains(&n) => n,
            _ => {
                return ApiError::bad_request(
                    "X-OpenRouter-Cache-TTL must be an integer from 1 to 86400",
                )
                .into_response()
            }
        },
    };
    let key = match gw.authenticate(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Ok(request) = parse_object(bytes) else {
        return chat::completions(State(gw), known, headers, body).await;
    };
    let model = request.get("model").and_then(Value::as_str).unwrap_or("");
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let ck = cache_key(&key.hash, model, stream, bytes);
    let clear = header(&headers, "x-openrouter-cache-clear")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if clear {
        if let Err(e) = gw.cache.clear(&ck).await {
            tracing::warn!(error = %e, "cannot clear a cached answer");
        }
    } else {
        match gw.cache.get(&ck).await {
            Ok(Some(hit)) => {
                // The key's rules still apply to a hit (rpm counted, allowlists, changed since the miss).
                let mut request = request;
                if let Err(e) = super::key_policy::admit(&gw, &key, &mut request).await {
                    return e.into_response();
                }
                let model = request.get("model").and_then(Value::as_str).unwrap_or("");
                gw.router.metrics().cache_hit(model);
                return replay(&gw, hit, ttl).await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "response cache unreadable; answering afresh"),
        }
    }
    let bytes = bytes.clone();
    let resp = chat::completions(State(gw.clone()), known, headers, Ok(bytes)).await;
    store(&gw, resp, ck, stream, ttl).await
}

/// A hit: the stored body under a new generation id, billed 0 and recorded as such.
async fn replay(gw: &Gateway, hit: CachedResponse, ttl: u64) -> Response {
    let id = gw.new_generation_id();
    let ledger = &gw.router.stores().ledger;
    match ledger.get(&hit.generation_id).await {
        Ok(Some(mut rec)) => {
            rec.id.clone_from(&id);
            rec.created_ms = now_ms();
            rec.cost = Decimal::ZERO;
            rec.cost_details =
                json!({"cache_hit": true, "source_generation_id": hit.generation_id}).into();
            rec.latency_ms = 0.0;
            rec.ttft_ms = None;
            rec.attempts = Vec::new();
            rec.streamed = hit.stream;
            if let Err(e) = ledger.insert(rec).await {
                tracing::warn!(error = %e, "cannot record a cache hit");
            }
        }
        Ok(None) => tracing::debug!("the source generation of a cache hit is not in the ledger"),
        Err(e) => tracing::warn!(error = %e, "cannot read the source of a cache hit"),
    }
    let age = ((now_ms() - hit.created_ms).max(0) / 1000).to_string();
    let mut r = Response::new(Body::from(hit.body));
    let h = r.headers_mut();
    if hit.stream {
        h.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert("cache-control", HeaderValue::from_static("no-cache"));
    } else {
        h.insert("content-type", HeaderValue::from_static("application/json"));
    }
    set(h, "x-generation-id", &id);
    h.insert("x-openrouter-cache-status", HeaderValue::from_static("HIT"));
    set(h, "x-openrouter-cache-age", &age);
    set(h, "x-openrouter-cache-ttl", &ttl.to_string());
    set(h, "x-openrouter-cache-source-id", &hit.generation_id);
    r
}

fn complete_stream(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.ends_with("data: [DONE]\n\n") && !text.contains("\"finish_reason\":\"error\"")
}

/// A miss: pass the answer on, and store it when it is complete and successful.
async fn store(gw: &Arc<Gateway>, resp: Response, ck: String, stream: bool, ttl: u64) -> Response {
    let (mut parts, body) = resp.into_parts();
    parts.headers.insert(
        "x-openrouter-cache-status",
        HeaderValue::from_static("MISS"),
    );
    set(
        &mut parts.headers,
        "x-openrouter-cache-ttl",
        &ttl.to_string(),
    );
    let gen_id = parts
        .headers
        .get("x-generation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (true, Some(gen_id)) = (parts.status.is_success(), gen_id) else {
        return Response::from_parts(parts, body);
    };
    let ttl = Duration::from_secs(ttl);
    if !stream {
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "answer body failed");
                return ApiError::internal().into_response();
            }
        };
        let entry = CachedResponse {
            body: String::from_utf8_lossy(&bytes).into_owned(),
            stream: false,
            generation_id: gen_id,
            created_ms: now_ms(),
        };
        if let Err(e) = gw.cache.put(&ck, &entry, ttl).await {
            tracing::warn!(error = %e, "cannot store an answer in the cache");
        }
        return Response::from_parts(parts, Body::from(bytes));
    }
    // A stream: forward each frame as it comes, keep a copy, store it once the stream ended cleanly.
    let copy = Arc::new(Mutex::new(Vec::<u8>::new()));
    let (c2, gw2) = (copy.clone(), gw.clone());
    let frames = body.into_data_stream().map(move |f| {
        if let Ok(b) = &f {
            if b.as_ref() != KEEPALIVE {
                let mut c = c2.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                c.extend_from_slice(b.as_ref().strip_prefix(KEEPALIVE).unwrap_or(b));
            }
        }
        f
    });
    let done = futures::stream::once(async move {
        let body = std::mem::take(
            &mut *copy
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if complete_stream(&body) {
            let entry = CachedResponse {
                body: String::from_utf8_lossy(&body).into_owned(),
                stream: true,
                generation_id: gen_id,
                created_ms: now_ms(),
            };
            if let Err(e) = gw2.cache.put(&ck, &entry, ttl).await {
                tracing::warn!(error = %e, "cannot store a stream in the cache");
            }
        }
        None::<Result<Bytes, axum::Error>>
    })
    .filter_map(|x| async move { x });
    Response::from_parts(parts, Body::from_stream(frames.chain(done)))
}
