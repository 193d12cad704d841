//! `POST /api/v1/embeddings` and `GET /api/v1/embeddings/models`: key authentication, the key's rules and limits
//! as for chat, then the engine's [`polyroute::Router::embeddings_with`] (no stream: one JSON answer).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::chat::{context, with_gen_id};
use super::error::ApiError;
use super::{parse_object, Gateway};

/// `POST /api/v1/embeddings`.
pub async fn create(
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
    let r = match gw.router.embeddings_with(request, &ctx).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => ApiError::engine(&e, gw.free_limits).into_response(),
    };
    with_gen_id(r, &gen_id)
}

/// `GET /api/v1/embeddings/models`: the `/models` listing of embedding models (its other filters apply).
pub async fn models(
    gw: State<Arc<Gateway>>,
    Query(mut q): Query<HashMap<String, String>>,
) -> Response {
    q.insert("output_modalities".into(), "embeddings".into());
    super::catalog_api::models(gw, Query(q)).await
}
