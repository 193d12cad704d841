//! Node.js bindings of polyroute: the `Router` class over the engine, values in and out as plain objects, errors
//! thrown as `PolyrouteError` with the core's stable `code`.
// napi-derive expands `#[napi]` items into unsafe FFI glue; the hand-written code adds one conversion impl.
#![allow(unsafe_code)]

mod batch;
mod convert;
mod errors;
mod hooks;
mod http;
mod options;
mod plan;
mod router;
mod surfaces;

use napi::bindgen_prelude::Env;
use napi_derive::napi;
use serde_json::Value;

pub use router::{ChatStream, Router};
pub use surfaces::SurfaceEvents;

/// Every stable error code a `PolyrouteError` can carry, in the core's order.
#[napi(ts_return_type = "Array<`${ErrorCode}`>")]
pub fn all_codes() -> Vec<&'static str> {
    polyroute::core::error::all_codes().to_vec()
}

/// Validate a chat request as routing reads it; throws `PolyrouteError` (`invalid_request` with the dotted
/// `field` in `body.error.metadata.field`) when it is malformed.
#[napi(ts_args_type = "request: ChatRequest")]
pub fn validate_request(env: Env, request: Value) -> napi::Result<()> {
    polyroute::ChatRequest::from_value(&request)
        .map(|_| ())
        .map_err(|e| errors::to_napi(&env, &e))
}

/// The stable error codes (`PolyrouteError.code`), the vocabulary of the OpenRouter error model.
#[napi(string_enum)]
pub enum ErrorCode {
    /// The request is malformed.
    #[napi(value = "invalid_request")]
    InvalidRequest,
    /// The model slug is not in the catalog.
    #[napi(value = "model_not_found")]
    ModelNotFound,
    /// The model was retired.
    #[napi(value = "model_deprecated")]
    ModelDeprecated,
    /// A `:free` variant whose promotion ended.
    #[napi(value = "free_variant_ended")]
    FreeVariantEnded,
    /// No endpoint of any requested model exists.
    #[napi(value = "no_endpoints")]
    NoEndpoints,
    /// Every endpoint was removed by a request constraint.
    #[napi(value = "constraint_filtered")]
    ConstraintFiltered,
    /// Every endpoint was removed by a data policy.
    #[napi(value = "privacy_restricted")]
    PrivacyRestricted,
    /// Every attempt was rate limited.
    #[napi(value = "capacity_exhausted")]
    CapacityExhausted,
    /// Every attempt failed with a server error, overload or timeout.
    #[napi(value = "temporarily_unavailable")]
    TemporarilyUnavailable,
    /// The last provider's own error.
    #[napi(value = "provider_error")]
    ProviderError,
    /// A spend limit would be exceeded.
    #[napi(value = "payment_required")]
    PaymentRequired,
    /// A platform rate limit was hit.
    #[napi(value = "rate_limited")]
    RateLimited,
    /// The gateway credential is missing or invalid.
    #[napi(value = "unauthorized")]
    Unauthorized,
    /// A catalog failed validation.
    #[napi(value = "invalid_catalog")]
    InvalidCatalog,
    /// An internal failure.
    #[napi(value = "internal")]
    Internal,
}
