//! `POST /api/v1/chat/completions`: the key is authenticated and the body read within the limit here; the answer
//! (JSON or SSE, the key's rules, the request context from the headers) is the engine's
//! ([`polyroute::http_api`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::api::{engine_request, key_caller, to_axum};
use super::error::ApiError;
use super::{Authenticated, Gateway};

/// The handler.
pub async fn completions(
    State(gw): State<Arc<Gateway>>,
    known: Option<Extension<Authenticated>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let key = match gw.authenticate_as(&headers, known.as_deref()).await {
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
    let req = engine_request("POST", "/api/v1/chat/completions", &headers, body);
    to_axum(gw.api.chat_completions(req, &key_caller(&gw, key)).await)
}
