//! One model and the count: `GET /api/v1/models/{author}/{slug}` (the OpenAI SDKs' `models.retrieve`), OpenRouter's
//! `GET /api/v1/model/{author}/{slug}`, and `GET /api/v1/models/count`. The row is the one `/api/v1/models` lists,
//! so a client sees the same fields whichever path it takes; the in-process transports answer the same paths.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::catalog_api::model_json;
use super::error::ApiError;
use super::Gateway;

/// `GET /api/v1/models/{author}/{slug}` and `GET /api/v1/model/{author}/{slug}`: the model's `/models` row.
pub async fn one(
    State(gw): State<Arc<Gateway>>,
    Path((author, slug)): Path<(String, String)>,
) -> Response {
    let id = format!("{author}/{slug}");
    match gw.router.catalog().model(&id) {
        Some(m) => axum::Json(model_json(m)).into_response(),
        None => ApiError::not_found(format!("{id} is not a valid model ID")).into_response(),
    }
}

/// `GET /api/v1/models/count`: how many models the catalog holds (every output modality).
pub async fn count(State(gw): State<Arc<Gateway>>) -> Response {
    let n = gw.router.catalog().models().len();
    axum::Json(json!({"data": {"count": n}})).into_response()
}
