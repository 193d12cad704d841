//! Core errors as thrown JavaScript `Error`s: `code` is the core's stable code, with `status`, `retryable`,
//! `retryAfter`, `attempts` and `body` (the OpenRouter error envelope).

use napi::bindgen_prelude::{Env, JsValue, Object, Status};
use polyroute::Error as CoreError;

/// Build the JavaScript error object for `e` and wrap it so napi throws (or rejects with) that very object.
pub fn to_napi(env: &Env, e: &CoreError) -> napi::Error {
    match build(env, e) {
        Ok(err) => err,
        Err(fallback) => fallback,
    }
}

fn build(env: &Env, e: &CoreError) -> napi::Result<napi::Error> {
    let mut obj: Object<'_> =
        env.create_error(napi::Error::new(Status::GenericFailure, e.to_string()))?;
    obj.set("name", "PolyrouteError")?;
    obj.set("code", e.code())?;
    obj.set("status", u32::from(e.http_status()))?;
    obj.set("retryable", e.retryable())?;
    obj.set("retryAfter", e.retry_after())?;
    obj.set("attempts", crate::convert::attempts(e))?;
    obj.set("body", e.to_envelope())?;
    Ok(napi::Error::from(obj.to_unknown()))
}

/// Shorthand for an `invalid_request` core error about `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> CoreError {
    CoreError::invalid(field, message)
}
