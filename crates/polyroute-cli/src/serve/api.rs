//! The engine's HTTP surface ([`polyroute::http_api`]) behind the gateway's keys: every route the engine serves
//! under `/api/v1/` is answered by [`HttpApi::handle`](polyroute::HttpApi::handle); the gateway authenticates
//! first (a route's [`Access`]: public routes show more to a known key, caller routes need an inference key) and
//! passes the key's scope (its user, its budget scope with the credit limit) and its admission rules
//! ([`key_policy::admit`]) as the [`Caller`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use polyroute::http_api::{self, Access, Admit, Caller};
use polyroute::state::BoxFut;
use polyroute::RequestContext;
use serde_json::Value;

use polyroute::ChatRequest;

use super::error::ApiError;
use super::keys::KeyEntry;
use super::{key_policy, now_ms, Gateway};

/// An engine answer as an axum response (a stream as a streamed body).
pub fn to_axum(r: http_api::Response) -> Response {
    let mut resp = match r.body {
        http_api::Body::Full(b) => Response::new(axum::body::Body::from(b)),
        http_api::Body::Sse(s) => Response::new(axum::body::Body::new(s)),
    };
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    // One allocation for the answer's few headers instead of growing from empty.
    h.reserve(r.headers.len());
    for (k, v) in r.headers {
        if let (Some(k), Some(v)) = (header_name(&k), header_value(v)) {
            h.append(k, v);
        }
    }
    resp
}

const GENERATION_ID: HeaderName = HeaderName::from_static("x-generation-id");
const OVERHEAD: HeaderName = HeaderName::from_static(polyroute::http_api::OVERHEAD_HEADER);

const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// A header name of an engine answer: the ones every chat answer (JSON or SSE) carries without parsing them
/// (constants, checked once at compile time).
fn header_name(k: &str) -> Option<HeaderName> {
    Some(match k {
        "content-type" => axum::http::header::CONTENT_TYPE,
        "x-generation-id" => GENERATION_ID,
        polyroute::http_api::OVERHEAD_HEADER => OVERHEAD,
        "cache-control" => axum::http::header::CACHE_CONTROL,
        "x-accel-buffering" => ACCEL_BUFFERING,
        _ => return HeaderName::from_bytes(k.as_bytes()).ok(),
    })
}

/// A header value of an engine answer: the fixed ones of JSON and SSE answers without checking or copying them
/// again.
fn header_value(v: String) -> Option<HeaderValue> {
    Some(match v.as_str() {
        "application/json" => HeaderValue::from_static("application/json"),
        "text/event-stream" => HeaderValue::from_static("text/event-stream"),
        "no-cache" => HeaderValue::from_static("no-cache"),
        "no" => HeaderValue::from_static("no"),
        _ => return HeaderValue::try_from(v).ok(),
    })
}

/// Headers the engine is not given: the gateway's own credential (the key stays in the gateway) and the
/// connection's framing, which the engine never reads.
fn gateway_only(name: &HeaderName) -> bool {
    use axum::http::header;
    [
        header::AUTHORIZATION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::ACCEPT_ENCODING,
    ]
    .contains(name)
}

/// An engine request from the parts of an axum one (every header but [`gateway_only`] ones).
#[must_use]
pub fn engine_request(
    method: &str,
    target: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> http_api::Request {
    // Sized once (a filtered iterator gives no size hint, so collecting would grow the vector step by step).
    let mut kept = Vec::with_capacity(headers.len());
    kept.extend(
        headers
            .iter()
            .filter(|(k, _)| !gateway_only(k))
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))),
    );
    http_api::Request {
        method: method.to_string(),
        target: target.to_string(),
        headers: kept,
        body,
    }
}

struct KeyRules {
    gw: Arc<Gateway>,
    key: Arc<KeyEntry>,
}

impl Admit for KeyRules {
    fn admit<'a>(&'a self, request: &'a mut Value) -> BoxFut<'a, Result<(), http_api::Response>> {
        Box::pin(async move {
            key_policy::admit(&self.gw, &self.key, request)
                .await
                .map_err(ApiError::into_inner)
        })
    }

    fn admit_chat<'a>(
        &'a self,
        request: &'a mut ChatRequest,
    ) -> BoxFut<'a, Result<(), http_api::Response>> {
        Box::pin(async move {
            key_policy::admit_chat(&self.gw, &self.key, request)
                .await
                .map_err(ApiError::into_inner)
        })
    }
}

/// The caller of an authenticated inference key: billed as its user, its credit limit held as a budget scope of
/// the current limit period, its admission rules run on each body.
#[must_use]
pub fn key_caller(gw: &Arc<Gateway>, key: Arc<KeyEntry>) -> Caller {
    Caller {
        context: RequestContext {
            user: Some(key.id.clone()),
            key_id: Some(key_policy::budget_id(&key, now_ms())),
            key_limit: key.limit,
            ..RequestContext::default()
        },
        trusted: true,
        admit: Some(Arc::new(KeyRules {
            gw: gw.clone(),
            key,
        })),
    }
}

/// Every engine route under `/api/v1/` that the gateway has no route of its own for.
pub async fn forward(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if !path.starts_with("/api/v1/") {
        return ApiError::not_found("Not Found").into_response();
    }
    let target = parts.uri.path_and_query().map_or(path, |p| p.as_str());
    let method = parts.method.as_str();
    let caller = match gw.api.access(method, target) {
        Some(Access::Caller) => match gw
            .authenticate_as(&parts.headers, parts.extensions.get())
            .await
        {
            Ok(k) => key_caller(&gw, k),
            Err(e) => return e.into_response(),
        },
        Some(_) => Caller {
            trusted: gw.authenticate_any(&parts.headers).await.is_ok(),
            ..Caller::default()
        },
        None => Caller::default(),
    };
    // A body was already read within the limit (`body_after_auth`).
    let body = match axum::body::to_bytes(body, gw.body_limit).await {
        Ok(b) => b,
        Err(_) => return ApiError::bad_request("The request body cannot be read").into_response(),
    };
    let r = gw
        .api
        .handle(
            engine_request(method, target, &parts.headers, body),
            &caller,
        )
        .await;
    to_axum(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants stand for exactly what parsing the engine's text would give, and other text is parsed.
    #[test]
    fn fixed_headers_read_as_parsed_ones() {
        for k in [
            "content-type",
            "x-generation-id",
            polyroute::http_api::OVERHEAD_HEADER,
            "cache-control",
            "x-accel-buffering",
            "x-other",
        ] {
            assert_eq!(
                header_name(k),
                HeaderName::from_bytes(k.as_bytes()).ok(),
                "{k}"
            );
        }
        assert_eq!(header_name("bad name"), None);
        for v in [
            "application/json",
            "text/event-stream",
            "no-cache",
            "no",
            "gen-123",
        ] {
            assert_eq!(
                header_value(v.to_string()),
                HeaderValue::try_from(v).ok(),
                "{v}"
            );
        }
        assert_eq!(header_value("a\nb".to_string()), None);
    }
}
