//! What the gateway shows of its own work: `GET /metrics` (Prometheus text exposition of the engine's metrics)
//! and the `x-polyroute-overhead-ms` response header.
//!
//! `/metrics` needs a management key (`Authorization: Bearer <management key>`, as Prometheus sends with
//! `authorization: {credentials: …}` in its scrape config): the key labels name the gateway's keys and their
//! spend. With `[server] metrics_public = true` it is served without a key (for a scraper on a private network).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::Gateway;

/// The overhead header (set by the engine's HTTP surface on non-streamed answers and their errors).
pub use polyroute::http_api::OVERHEAD_HEADER;

/// The Prometheus text exposition content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !gw.metrics_public {
        match gw.authenticate_any(&headers).await {
            Ok(k) if k.management => {}
            Ok(_) => {
                return ApiError::new(403, "forbidden", "Only management keys can read /metrics")
                    .into_response()
            }
            Err(e) => return e.into_response(),
        }
    }
    let mut r = gw.router.metrics().render().into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    r
}
