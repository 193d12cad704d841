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

use polyroute::state::{ActivityQuery, DAY_MS};

pub use polyroute::http_api::{generation_json, utc_date, utc_iso};

pub use polyroute_core::account_query::parse_iso;

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

/// `GET /api/v1/activity[?date=YYYY-MM-DD][&offset=N][&limit=N]`: the calling key's last 30 days, one row per day,
/// app, model and provider, newest day first. OpenRouter's endpoint takes only `date`; this one also pages
/// (`limit` 1..=1000, default 1000; `offset` default 0) so one call's memory is bounded whatever the ledger size:
/// the store groups, sorts and cuts the page, and the date filter is applied in the store. `links.next` is the
/// next page's path, null on the last page.
pub async fn activity(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let (page, date) = match activity_page(&q, now_ms()) {
        Ok(p) => p,
        Err(m) => return ApiError::bad_request(m).into_response(),
    };
    let (offset, limit) = (page.offset, page.limit);
    // One row more than the page tells whether a next page exists.
    let query = ActivityQuery {
        user: key.id.clone(),
        limit: limit.saturating_add(1),
        ..page
    };
    let mut rows = match gw.router.stores().ledger.activity(query).await {
        Ok(r) => r,
        Err(e) => return store_error(&e).into_response(),
    };
    let next = if rows.len() > limit {
        rows.truncate(limit);
        let date = date.map(|d| format!("&date={d}")).unwrap_or_default();
        json!(format!(
            "/api/v1/activity?offset={}&limit={limit}{date}",
            offset.saturating_add(limit)
        ))
    } else {
        Value::Null
    };
    let data: Vec<Value> = rows
        .iter()
        .map(|g| {
            json!({"date": utc_date(g.day * DAY_MS),
                   "app": {"title": g.app_title.as_ref().filter(|t| !t.is_empty()), "http_referer": g.app_referer.as_ref().filter(|r| !r.is_empty())},
                   "model": g.model, "model_permaslug": g.model, "provider_name": g.provider_name,
                   "requests": g.requests, "usage": f(g.cost), "byok_usage_inference": 0,
                   "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                   "reasoning_tokens": g.reasoning_tokens})
        })
        .collect();
    axum::Json(json!({ "data": data, "links": {"next": next} })).into_response()
}

/// The store query of an `/activity` call (its `user` left empty) and its `date`, from the query string at
/// `now` (Unix ms) ([`activity_params`](polyroute_core::account_query::activity_params)). Err: the 400's message.
///
/// # Errors
/// A malformed `date`, `offset` or `limit`, or a `limit` outside 1..=1000.
pub fn activity_page(
    q: &HashMap<String, String>,
    now: i64,
) -> Result<(ActivityQuery, Option<String>), &'static str> {
    let p = polyroute_core::account_query::activity_params(q, now)?;
    let page = ActivityQuery {
        user: String::new(),
        since_ms: p.since_ms,
        until_ms: p.until_ms,
        offset: p.offset,
        limit: p.limit,
    };
    Ok((page, p.date))
}

#[cfg(test)]
#[allow(clippy::panic)] // tests assert by panicking
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

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn activity_pages() {
        let now = parse_iso("2027-03-10T12:00:00Z").unwrap_or_default();
        let (p, d) = activity_page(&q(&[]), now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.offset, p.limit, p.until_ms, d), (0, 1000, None, None));
        assert_eq!(p.since_ms, now - 30 * DAY_MS);
        let (p, d) = activity_page(
            &q(&[("date", "2027-03-09"), ("offset", "5"), ("limit", "2")]),
            now,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let day = parse_iso("2027-03-09").unwrap_or_default();
        assert_eq!(
            (p.since_ms, p.until_ms, p.offset, p.limit, d.as_deref()),
            (day, Some(day + DAY_MS), 5, 2, Some("2027-03-09"))
        );
        // A date older than 30 days keeps the 30-day floor: an empty window, not a full scan.
        let (p, _) =
            activity_page(&q(&[("date", "2000-01-01")]), now).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.since_ms >= p.until_ms.unwrap_or(i64::MAX));
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "-1"),
            ("offset", "x"),
            ("date", "2027-3-9"),
            ("date", "2027-13-01"),
            ("limit", "99999999999999999999999"),
        ] {
            assert!(activity_page(&q(&[bad]), now).is_err(), "{bad:?}");
        }
    }
}
