//! OpenRouter's key-management API, authorized by a management key (`polyroute keys create --management`):
//!
//! | route | does |
//! |---|---|
//! | `GET /api/v1/keys` | list the inference keys (`?include_disabled=true` adds disabled ones, `?offset=`) |
//! | `POST /api/v1/keys` | create: `name`, `limit`, `limit_reset`, `expires_at`, `include_byok_in_limit`; answers 201 with `data` and the `key` (shown once) |
//! | `GET /api/v1/keys/{hash}` | one key |
//! | `PATCH /api/v1/keys/{hash}` | update `name`, `disabled`, `limit`, `limit_reset`, `expires_at` |
//! | `DELETE /api/v1/keys/{hash}` | delete: `{"deleted": true}` |
//!
//! Keys are named by `hash` (the hex SHA-256 of the key). Besides OpenRouter's fields, create and update accept
//! polyroute's `rpm`, `tpm`, `models` and `providers` (allowlists), and the objects report them. Changes go to
//! the [`KeyStore`](super::keys::KeyStore): with `[state] postgres`, every replica sees them within ~250 ms.
//! `GET /api/v1/key` (the calling key) answers with the same fields ([`key_json`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use polyroute::Scope;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::account::{parse_iso, utc_iso};
use super::error::ApiError;
use super::key_policy::{budget_id, period_start};
use super::keys::{now_ms, KeyEntry, LimitReset};
use super::{parse_object, Gateway};

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn store_error(e: &impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "key store failed");
    ApiError::internal()
}

/// The OpenRouter key object of `key`: limits, usage (all time, this UTC day, week from Monday, month from the
/// first), expiry and polyroute's rate limits and allowlists.
///
/// # Errors
/// The ledger or budget cannot be read.
pub async fn key_json(gw: &Gateway, key: &KeyEntry) -> polyroute::Result<Value> {
    let now = now_ms();
    let ledger = &gw.router.stores().ledger;
    let (day, week, month) = (
        period_start(LimitReset::Daily, now),
        period_start(LimitReset::Weekly, now),
        period_start(LimitReset::Monthly, now),
    );
    let scope = Scope::Key(budget_id(key, now));
    let (d, w, m, period_spent) = futures::try_join!(
        ledger.summary(Some(&key.id), day),
        ledger.summary(Some(&key.id), week),
        ledger.summary(Some(&key.id), month),
        gw.router.spent_in(&scope),
    )?;
    // All-time usage: the budget's count for keys without resets, else the ledger's.
    let usage = match key.limit_reset {
        None => period_spent,
        Some(_) => ledger.summary(Some(&key.id), i64::MIN).await?.cost,
    };
    let free_today = d.free_requests;
    let (per_min, per_day) = gw.free_limits;
    Ok(json!({
        "hash": key.hash,
        "name": key.label,
        "label": key.label,
        "id": key.id,
        "disabled": key.disabled,
        "limit": key.limit.map(f),
        "limit_remaining": key.limit.map(|l| f((l - period_spent).max(Decimal::ZERO))),
        "limit_reset": key.limit_reset.map(LimitReset::as_str),
        "include_byok_in_limit": false,
        "usage": f(usage),
        "usage_daily": f(d.cost),
        "usage_weekly": f(w.cost),
        "usage_monthly": f(m.cost),
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "is_free_tier": false,
        "is_management_key": key.management,
        "is_provisioning_key": key.management,
        "created_at": utc_iso(key.created_ms),
        "updated_at": (key.updated_ms > 0).then(|| utc_iso(key.updated_ms)),
        "expires_at": key.expires_ms.map(utc_iso),
        "free_model_daily_requests": {"limit": per_day, "used": free_today,
                                      "remaining": u64::from(per_day).saturating_sub(free_today)},
        "rate_limit": {"requests": key.rpm.unwrap_or(u64::from(per_min)), "interval": "1m"},
        "rpm": key.rpm,
        "tpm": key.tpm,
        "models": key.models,
        "providers": key.providers,
    }))
}

async fn manager(gw: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let k = gw.authenticate_any(headers).await?;
    if k.management {
        Ok(())
    } else {
        Err(ApiError::new(
            403,
            "forbidden",
            "Only management keys can manage keys",
        ))
    }
}

/// Apply the fields of a create or update body to `e`.
fn apply(e: &mut KeyEntry, body: &Map<String, Value>, create: bool) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::bad_request(m.to_string()));
    for (k, v) in body {
        match (k.as_str(), v) {
            ("name" | "label", Value::String(s)) if !s.trim().is_empty() => e.label = s.clone(),
            ("name" | "label", _) => return bad("name must be a non-empty string"),
            ("limit", Value::Null) => e.limit = None,
            ("limit", Value::Number(n)) => {
                let d = n
                    .to_string()
                    .parse::<Decimal>()
                    .or_else(|_| Decimal::from_scientific(&n.to_string()));
                match d {
                    Ok(d) if !d.is_sign_negative() => e.limit = Some(d),
                    _ => return bad("limit must be a non-negative number of USD"),
                }
            }
            ("limit", _) => return bad("limit must be a number or null"),
            ("limit_reset", Value::Null) => e.limit_reset = None,
            ("limit_reset", Value::String(s)) => match LimitReset::parse(s) {
                Some(r) => e.limit_reset = Some(r),
                None => return bad("limit_reset must be daily, weekly, monthly or null"),
            },
            ("limit_reset", _) => return bad("limit_reset must be daily, weekly, monthly or null"),
            ("expires_at", Value::Null) => e.expires_ms = None,
            ("expires_at", Value::String(s)) => match parse_iso(s) {
                Some(t) if !create || t > now_ms() => e.expires_ms = Some(t),
                Some(_) => return bad("expires_at must be in the future"),
                None => return bad("expires_at must be an ISO-8601 UTC time"),
            },
            ("expires_at", _) => return bad("expires_at must be an ISO-8601 time or null"),
            ("disabled", Value::Bool(b)) if !create => e.disabled = *b,
            ("disabled", _) if !create => return bad("disabled must be a boolean"),
            ("rpm" | "tpm", Value::Null) => {
                if k == "rpm" {
                    e.rpm = None;
                } else {
                    e.tpm = None;
                }
            }
            ("rpm" | "tpm", v) => match v.as_u64().filter(|n| *n > 0) {
                Some(n) if k == "rpm" => e.rpm = Some(n),
                Some(n) => e.tpm = Some(n),
                None => return bad("rpm and tpm must be positive integers or null"),
            },
            ("models" | "providers", Value::Array(a)) => {
                let list: Option<Vec<String>> =
                    a.iter().map(|x| x.as_str().map(str::to_string)).collect();
                let Some(list) = list else {
                    return bad("models and providers must be arrays of strings");
                };
                if k == "models" {
                    e.models = list;
                } else {
                    e.providers = list;
                }
            }
            ("models" | "providers", Value::Null) => {
                if k == "models" {
                    e.models.clear();
                } else {
                    e.providers.clear();
                }
            }
            ("include_byok_in_limit", Value::Bool(_)) => {}
            (other, _) => return bad(&format!("unknown or invalid field {other}")),
        }
    }
    Ok(())
}

async fn find(gw: &Gateway, hash: &str) -> Result<KeyEntry, ApiError> {
    let all = gw.keys.list().await.map_err(|e| store_error(&e))?;
    all.into_iter()
        .find(|k| k.hash == hash && k.deleted_ms.is_none() && !k.management)
        .ok_or_else(|| ApiError::not_found("Key not found"))
}

async fn respond(gw: &Gateway, e: &KeyEntry) -> Response {
    match key_json(gw, e).await {
        Ok(v) => axum::Json(json!({ "data": v })).into_response(),
        Err(e) => store_error(&e).into_response(),
    }
}

/// `GET /api/v1/keys`.
pub async fn list(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = manager(&gw, &headers).await {
        return e.into_response();
    }
    let polyroute_core::account_query::KeysListParams {
        include_disabled: disabled,
        offset,
    } = polyroute_core::account_query::keys_list_params(&q);
    let all = match gw.keys.list().await {
        Ok(a) => a,
        Err(e) => return store_error(&e).into_response(),
    };
    let mut data = Vec::new();
    for k in all
        .iter()
        .filter(|k| k.deleted_ms.is_none() && !k.management && (disabled || !k.disabled))
        .skip(offset)
        .take(100)
    {
        match key_json(&gw, k).await {
            Ok(v) => data.push(v),
            Err(e) => return store_error(&e).into_response(),
        }
    }
    axum::Json(json!({ "data": data })).into_response()
}

/// `POST /api/v1/keys`.
pub async fn create(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = manager(&gw, &headers).await {
        return e.into_response();
    }
    let body = match parse_object(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let Some(obj) = body.as_object() else {
        return ApiError::bad_request("The request body must be a JSON object").into_response();
    };
    if !obj.get("name").is_some_and(Value::is_string) {
        return ApiError::bad_request("name is required").into_response();
    }
    let key = super::keys::new_key();
    let mut e = KeyEntry::new(&key, "", None);
    if let Err(err) = apply(&mut e, obj, true) {
        return err.into_response();
    }
    if let Err(err) = gw.keys.put(&e).await {
        return store_error(&err).into_response();
    }
    match key_json(&gw, &e).await {
        Ok(v) => (
            StatusCode::CREATED,
            axum::Json(json!({"data": v, "key": key})),
        )
            .into_response(),
        Err(err) => store_error(&err).into_response(),
    }
}

/// `GET /api/v1/keys/{hash}`.
pub async fn get_one(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    if let Err(e) = manager(&gw, &headers).await {
        return e.into_response();
    }
    match find(&gw, &hash).await {
        Ok(e) => respond(&gw, &e).await,
        Err(e) => e.into_response(),
    }
}

/// `PATCH /api/v1/keys/{hash}`.
pub async fn update(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = manager(&gw, &headers).await {
        return e.into_response();
    }
    let body = match parse_object(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut e = match find(&gw, &hash).await {
        Ok(e) => e,
        Err(err) => return err.into_response(),
    };
    if let Some(obj) = body.as_object() {
        if let Err(err) = apply(&mut e, obj, false) {
            return err.into_response();
        }
    }
    e.updated_ms = now_ms();
    if let Err(err) = gw.keys.put(&e).await {
        return store_error(&err).into_response();
    }
    respond(&gw, &e).await
}

/// `DELETE /api/v1/keys/{hash}`.
pub async fn delete(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    if let Err(e) = manager(&gw, &headers).await {
        return e.into_response();
    }
    let mut e = match find(&gw, &hash).await {
        Ok(e) => e,
        Err(err) => return err.into_response(),
    };
    let now = now_ms();
    e.deleted_ms = Some(now);
    e.updated_ms = now;
    if let Err(err) = gw.keys.put(&e).await {
        return store_error(&err).into_response();
    }
    axum::Json(json!({"deleted": true})).into_response()
}
