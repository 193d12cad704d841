//! HTTP error responses in the OpenRouter envelope: `{"error": {"code", "message", "metadata"}}`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use polyroute::Error;
use serde_json::{json, Value};

/// An error answer: status, envelope and extra headers (boxed: handlers return it in `Result`s).
#[derive(Debug)]
pub struct ApiError(Box<Parts>);

#[derive(Debug)]
struct Parts {
    status: StatusCode,
    body: Value,
    headers: HeaderMap,
}

impl ApiError {
    /// A gateway-level error with an OpenRouter `error_type`.
    #[must_use]
    pub fn new(status: u16, error_type: &str, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self(Box::new(Parts {
            status,
            body: json!({"error": {"code": status.as_u16(), "message": message.into(),
                                   "metadata": {"error_type": error_type}}}),
            headers: HeaderMap::new(),
        }))
    }

    /// 400 `invalid_request`.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    /// 401 `authentication`.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "authentication", message)
    }

    /// 404 `not_found`.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 500 with a masked message.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(500, "server", "Internal Server Error")
    }

    /// An engine error: its status and envelope; `Retry-After` and `X-RateLimit-*` on rate limits.
    #[must_use]
    pub fn engine(e: &Error, free_limits: (u32, u32)) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = e.to_envelope();
        if status.is_server_error() && matches!(e, Error::Internal { .. }) {
            tracing::error!(error = %e, "internal error");
            return Self::internal();
        }
        let mut headers = HeaderMap::new();
        if let Some(ra) = e.retry_after() {
            let secs = ra.ceil().max(0.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                headers.insert("retry-after", v);
            }
        }
        if let Error::RateLimited { limit, retry_after } = e {
            let cap = if limit.contains("day") {
                free_limits.1
            } else {
                free_limits.0
            };
            let reset_ms =
                crate::serve::now_ms() + (retry_after.unwrap_or(60.0).max(0.0) * 1000.0) as i64;
            for (k, v) in [
                ("x-ratelimit-limit", cap.to_string()),
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", reset_ms.to_string()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(k, v);
                }
            }
            body["error"]["message"] = json!(format!("Rate limit exceeded: {limit}"));
        }
        Self(Box::new(Parts {
            status,
            body,
            headers,
        }))
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The envelope.
    #[must_use]
    pub fn body(&self) -> &Value {
        &self.0.body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = *self.0;
        let mut r = (p.status, axum::Json(p.body)).into_response();
        r.headers_mut().extend(p.headers);
        r
    }
}
