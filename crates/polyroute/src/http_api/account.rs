//! Account routes over the engine's state: `GET …/generation?id=` and `GET …/credits`.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::routes::Call;
use super::{HttpApi, Response};
use crate::state::{BoxFut, Scope, DAY_MS};
use crate::GenerationRecord;

/// `YYYY-MM-DD` (UTC) of a Unix millisecond time.
#[must_use]
pub fn utc_date(ms: i64) -> String {
    // Howard Hinnant's civil-from-days.
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// ISO-8601 UTC time of a Unix millisecond time.
#[must_use]
pub fn utc_iso(ms: i64) -> String {
    let s = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        utc_date(ms),
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn store_error(e: &crate::Error) -> Response {
    tracing::error!(error = %e, "state store read failed");
    Response::error(500, "server", "Internal Server Error")
}

/// The generation `id`; a caller naming a user sees its own generations only.
pub(super) fn generation<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move {
        let Some(id) = polyroute_core::account_query::generation_id(&c.query) else {
            return Response::error(400, "invalid_request", "id is required");
        };
        let not_found = || Response::error(404, "not_found", format!("Generation {id} not found"));
        let rec = match api.router.stores().ledger.get(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return not_found(),
            Err(e) => return store_error(&e),
        };
        if let Some(user) = &c.caller.context.user {
            if rec.user.as_deref() != Some(user.as_str()) {
                return not_found();
            }
        }
        Response::json(200, &json!({ "data": generation_json(&rec) }))
    })
}

/// OpenRouter's `{total_credits, total_usage}` (USD) of the caller's scope: its budget key (credits: the key's
/// limit), else its user (the router's limit for that user), else the whole router (the router's limit). Nothing
/// is prepaid: `total_credits` is the limit, 0 without one; `total_usage` the settled spend.
pub(super) fn credits<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    Box::pin(async move {
        let ctx = &c.caller.context;
        let limits = &api.router.inner.opts.limits;
        let (limit, scope) = match (&ctx.key_id, &ctx.user) {
            (Some(k), _) => (ctx.key_limit, Scope::Key(k.clone())),
            (None, Some(u)) => (
                limits.user_usd.get(u).copied().or(limits.default_user_usd),
                Scope::User(u.clone()),
            ),
            (None, None) => (limits.router_usd, Scope::Router),
        };
        match api.router.spent_in(&scope).await {
            Ok(spent) => Response::json(
                200,
                &json!({"data": {"total_credits": f(limit.unwrap_or(Decimal::ZERO)), "total_usage": f(spent)}}),
            ),
            Err(e) => store_error(&e),
        }
    })
}

/// The OpenRouter `GenerationResponse.data` shape of a record.
#[must_use]
pub fn generation_json(r: &GenerationRecord) -> Value {
    let u = &r.usage;
    let cost = f(r.cost);
    json!({
        "id": r.id,
        "created_at": utc_iso(r.created_ms),
        "model": r.model,
        "provider_name": r.provider_name,
        "provider": r.provider,
        "endpoint": r.endpoint,
        "api_type": r.api_type.as_str(),
        "streamed": r.streamed,
        "cancelled": r.cancelled,
        "finish_reason": r.finish_reason,
        "latency": r.latency_ms.round() as i64,
        "generation_time": r.ttft_ms.map(|t| (r.latency_ms - t).max(0.0).round() as i64),
        "time_to_first_token": r.ttft_ms,
        "overhead_ms": r.overhead_ms,
        "tokens_prompt": u.prompt_tokens,
        "tokens_completion": u.completion_tokens,
        "native_tokens_prompt": u.prompt_tokens,
        "native_tokens_completion": u.completion_tokens,
        "native_tokens_reasoning": u.completion_tokens_details.reasoning_tokens,
        "native_tokens_cached": u.prompt_tokens_details.cached_tokens,
        "total_cost": cost,
        "usage": cost,
        "cost_details": r.cost_details,
        "is_byok": false,
        "is_free": r.free,
        "session_id": r.session_id,
        "http_referer": r.app_referer,
        "app_title": r.app_title,
        "provider_responses": r.attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
