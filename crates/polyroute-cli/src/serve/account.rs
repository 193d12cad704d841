//! Account APIs over the ledger: `GET /api/v1/generation?id=`, `/key`, `/activity`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use polyroute::GenerationRecord;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{now_ms, Gateway};

const DAY_MS: i64 = 86_400_000;

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

/// Records of one key since `since_ms`, read from the ledger file on the blocking pool.
async fn records_of(
    gw: &Gateway,
    user: &str,
    since_ms: i64,
) -> Result<Vec<GenerationRecord>, ApiError> {
    let path = gw.ledger_path.clone();
    let user = user.to_string();
    tokio::task::spawn_blocking(move || -> rusqlite::Result<Vec<GenerationRecord>> {
        if !path.exists() {
            return Ok(Vec::new()); // `ledger = "memory"`
        }
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut st = conn.prepare(
            "SELECT record FROM generations WHERE user_key = ?1 AND created_ms >= ?2 ORDER BY created_ms",
        )?;
        let rows = st.query_map(rusqlite::params![user, since_ms], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for text in rows {
            if let Ok(rec) = serde_json::from_str::<GenerationRecord>(&text?) {
                out.push(rec);
            }
        }
        Ok(out)
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|e| {
        tracing::error!(error = %e, "ledger read failed");
        ApiError::internal()
    })
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// `GET /api/v1/generation?id=gen-…` (only the calling key's generations).
pub async fn generation(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate(&headers) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Some(id) = q.get("id").filter(|s| !s.is_empty()) else {
        return ApiError::bad_request("id is required").into_response();
    };
    let Some(v) = gw.router.generation(id).await else {
        return ApiError::not_found(format!("Generation {id} not found")).into_response();
    };
    let rec: GenerationRecord = match serde_json::from_value(v) {
        Ok(r) => r,
        Err(_) => return ApiError::internal().into_response(),
    };
    if rec.user.as_deref() != Some(key.id.as_str()) {
        return ApiError::not_found(format!("Generation {id} not found")).into_response();
    }
    axum::Json(json!({ "data": generation_json(&rec) })).into_response()
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
        "api_type": "completions",
        "streamed": r.streamed,
        "cancelled": false,
        "finish_reason": r.finish_reason,
        "latency": r.latency_ms.round() as i64,
        "generation_time": r.ttft_ms.map(|t| (r.latency_ms - t).max(0.0).round() as i64),
        "time_to_first_token": r.ttft_ms,
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
        "http_referer": r.app_referer,
        "app_title": r.app_title,
        "provider_responses": r.attempts,
    })
}

/// `GET /api/v1/key`: the calling key's label, limit and usage.
pub async fn key(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let key = match gw.authenticate(&headers) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let now = now_ms();
    let month = match records_of(&gw, &key.id, now - 31 * DAY_MS).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let today = utc_date(now);
    let sum = |since: i64| -> f64 {
        f(month
            .iter()
            .filter(|r| r.created_ms >= since)
            .map(|r| r.cost)
            .sum())
    };
    let day_start = now - now.rem_euclid(DAY_MS);
    let free_today = month
        .iter()
        .filter(|r| r.free && utc_date(r.created_ms) == today)
        .count();
    let usage = f(gw.router.spent(Some(&key.id)));
    let (per_min, per_day) = gw.free_limits;
    axum::Json(json!({"data": {
        "label": key.label,
        "id": key.id,
        "limit": key.limit,
        "limit_remaining": key.limit.map(|l| (l - usage).max(0.0)),
        "limit_reset": null,
        "include_byok_in_limit": false,
        "usage": usage,
        "usage_daily": sum(day_start),
        "usage_weekly": sum(now - 7 * DAY_MS),
        "usage_monthly": sum(now - 30 * DAY_MS),
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "is_free_tier": false,
        "is_management_key": false,
        "is_provisioning_key": false,
        "expires_at": null,
        "created_at": utc_iso(key.created_ms),
        "free_model_daily_requests": {"limit": per_day, "used": free_today,
                                      "remaining": (per_day as usize).saturating_sub(free_today)},
        "rate_limit": {"requests": per_min, "interval": "1m"},
    }}))
    .into_response()
}

/// `GET /api/v1/activity[?date=YYYY-MM-DD]`: the calling key's last 30 days, one row per day, app, model and
/// provider.
pub async fn activity(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate(&headers) {
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
    let recs = match records_of(&gw, &key.id, now_ms() - 30 * DAY_MS).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    #[derive(Default)]
    struct Agg {
        requests: u64,
        usage: Decimal,
        prompt: u64,
        completion: u64,
        reasoning: u64,
    }
    let mut groups: BTreeMap<(String, String, String, String, String), Agg> = BTreeMap::new();
    for r in &recs {
        let day = utc_date(r.created_ms);
        if date.is_some_and(|d| *d != day) {
            continue;
        }
        let title = r.app_title.clone().unwrap_or_default();
        let referer = r.app_referer.clone().unwrap_or_default();
        let g = groups
            .entry((
                day,
                title,
                referer,
                r.model.clone(),
                r.provider_name.clone(),
            ))
            .or_default();
        g.requests += 1;
        g.usage += r.cost;
        g.prompt += r.usage.prompt_tokens;
        g.completion += r.usage.completion_tokens;
        g.reasoning += r.usage.completion_tokens_details.reasoning_tokens;
    }
    let data: Vec<Value> = groups
        .into_iter()
        .rev()
        .map(|((day, title, referer, model, provider), g)| {
            json!({"date": day,
                   "app": {"title": (!title.is_empty()).then_some(title), "http_referer": (!referer.is_empty()).then_some(referer)},
                   "model": model, "model_permaslug": model, "provider_name": provider,
                   "requests": g.requests, "usage": f(g.usage), "byok_usage_inference": 0,
                   "prompt_tokens": g.prompt, "completion_tokens": g.completion, "reasoning_tokens": g.reasoning})
        })
        .collect();
    axum::Json(json!({ "data": data })).into_response()
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
