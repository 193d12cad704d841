//! HTTP error responses in the OpenRouter envelope, `{"error": {"code", "message", "metadata"}}`: the engine's
//! ([`polyroute::http_api`]) error answers, for the gateway's own routes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use polyroute::http_api;
use polyroute::Error;

/// An error answer: status, envelope and extra headers (boxed: handlers return it in `Result`s).
#[derive(Debug)]
pub struct ApiError(Box<http_api::Response>);

impl ApiError {
    /// A gateway-level error with an OpenRouter `error_type`.
    #[must_use]
    pub fn new(status: u16, error_type: &str, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self(Box::new(http_api::Response::error(
            status.as_u16(),
            error_type,
            message,
        )))
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
        Self(Box::new(http_api::error_response(e, free_limits)))
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The engine's answer.
    #[must_use]
    pub fn into_inner(self) -> http_api::Response {
        *self.0
    }
}

impl From<http_api::Response> for ApiError {
    fn from(r: http_api::Response) -> Self {
        Self(Box::new(r))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        super::api::to_axum(*self.0)
    }
}
