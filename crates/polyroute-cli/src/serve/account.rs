//! Account APIs of gateway keys: `GET /api/v1/key`, `/credits`, `/activity` (`/generation` is the engine's).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{now_ms, Gateway};

use polyroute::state::DAY_MS;

pub use polyroute::http_api::{generation_json, utc_date, utc_iso};

/// Unix milliseconds of an ISO-8601 UTC time (`2027-01-31`, `2027-01-31T12:00:00Z`, fractions and `+00:00`
/// accepted); None when it does not parse.
#[must_use]
pub fn parse_iso(t: &str) -> Option<i64> {
    let t = t.trim();
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, ""));
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))
        .unwrap_or(time);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut parts = hms.split(':').filter(|p| !p.is_empty());
    let h: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let mi: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let s: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let ms: i64 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain("000".chars()).take(3).collect();
        f.parse().ok()?
    };
    // Howard Hinnant's days-from-civil.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 + ms)
}

fn store_error(e: &polyroute::Error) -> ApiError {
    tracing::error!(error = %e, "state store read failed");
    ApiError::internal()
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// `GET /api/v1/key`: the calling key's label, limits, usage, expiry and rate limits
/// ([`key_json`](super::keys_api::key_json)).
pub async fn key(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let key = match gw.authenticate_any(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match super::keys_api::key_json(&gw, &key).await {
        Ok(v) => axum::Json(json!({ "data": v })).into_response(),
        Err(e) => store_error(&e).into_response(),
    }
}

/// `GET /api/v1/credits`: OpenRouter's `{total_credits, total_usage}` for the calling key. A gateway key is not
/// prepaid: `total_credits` is the key's credit limit (0 when it has none) and `total_usage` its spend, both in USD,
/// read from the same record as `/api/v1/key`.
pub async fn credits(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let key = match gw.authenticate_any(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    match super::keys_api::key_json(&gw, &key).await {
        Ok(v) => {
            let num = |f: &str| v.get(f).and_then(Value::as_f64).unwrap_or(0.0);
            axum::Json(
                json!({"data": {"total_credits": num("limit"), "total_usage": num("usage")}}),
            )
            .into_response()
        }
        Err(e) => store_error(&e).into_response(),
    }
}

/// `GET /api/v1/activity[?date=YYYY-MM-DD]`: the calling key's last 30 days, one row per day, app, model and
/// provider.
pub async fn activity(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let date = q.get("date").filter(|d| !d.is_empty());
    if let Some(d) = date {
        let ok = d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !ok {
            return ApiError::bad_request("date must be YYYY-MM-DD").into_response();
        }
    }
    let rows = match gw
        .router
        .stores()
        .ledger
        .activity(&key.id, now_ms() - 30 * DAY_MS)
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(&e).into_response(),
    };
    // Newest day first (and within a day, the store's order reversed).
    let data: Vec<Value> = rows
        .iter()
        .rev()
        .map(|g| (utc_date(g.day * DAY_MS), g))
        .filter(|(day, _)| date.is_none_or(|d| d == day))
        .map(|(day, g)| {
            json!({"date": day,
                   "app": {"title": g.app_title.as_ref().filter(|t| !t.is_empty()), "http_referer": g.app_referer.as_ref().filter(|r| !r.is_empty())},
                   "model": g.model, "model_permaslug": g.model, "provider_name": g.provider_name,
                   "requests": g.requests, "usage": f(g.cost), "byok_usage_inference": 0,
                   "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                   "reasoning_tokens": g.reasoning_tokens})
        })
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_iso("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_iso("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_iso("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(parse_iso("2023-13-01"), None);
        assert_eq!(parse_iso("tomorrow"), None);
    }
}
