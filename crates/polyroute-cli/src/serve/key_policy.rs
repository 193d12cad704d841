//! OpenRouter key semantics at admission: expiry (in [`KeyStore`](super::keys::KeyStore) lookups), the credit
//! limit per `limit_reset` period, requests and tokens per minute, model and provider allowlists.
//!
//! - **Limit periods**: a key with `limit_reset` bills its requests against a budget scope of the current
//!   period, `key:<id>@<YYYY-MM-DD of the period's start>` (day; Monday of the week; first of the month; UTC),
//!   so the limit starts afresh at each reset, on every replica at once (they read one clock: UTC).
//! - **rpm**: an exact sliding 60 s log in the rate store, `key-rpm:<id>`, checked and counted atomically at
//!   admission (shared by replicas with Redis). A refused request is counted nowhere and answered 429 with
//!   `Retry-After` and `X-RateLimit-*`.
//! - **tpm**: a request is admitted while the tokens (prompt + completion) of the key's generations recorded
//!   in the last 60 s are below `tpm`, summed from the ledger (shared by replicas with PostgreSQL). A request's
//!   tokens are known only once it is answered, so the minute may end above `tpm` by the requests in flight
//!   when it filled; generations still in a ledger spool are not counted until replayed.
//! - **Allowlists**: `model` (and each `models` fallback) must be allowed (exact id, or `author/*`); an
//!   allowlist of providers becomes `provider.only` (intersected with the request's own).

use std::time::Duration;

use polyroute::state::{LedgerQuery, RateDecision, Span, Window, DAY_MS};
use polyroute::ChatRequest;
use serde_json::{json, Value};

use super::account::{parse_iso, utc_date};
use super::error::ApiError;
use super::keys::{KeyEntry, LimitReset};
use super::Gateway;

const MINUTE: Span = Span::Sliding(Duration::from_secs(60));

/// Start (Unix ms) of the `reset` period holding `now`.
#[must_use]
pub fn period_start(reset: LimitReset, now: i64) -> i64 {
    let day = now.div_euclid(DAY_MS);
    match reset {
        LimitReset::Daily => day * DAY_MS,
        // 1970-01-01 was a Thursday: Monday is 3 days before.
        LimitReset::Weekly => (day - (day + 3).rem_euclid(7)) * DAY_MS,
        LimitReset::Monthly => {
            let d = utc_date(now);
            parse_iso(&format!("{}-01", &d[..7])).unwrap_or(day * DAY_MS)
        }
    }
}

/// The budget scope id of `key` at `now`: its id, or `<id>@<period start date>` with a `limit_reset`.
#[must_use]
pub fn budget_id(key: &KeyEntry, now: i64) -> String {
    match key.limit_reset {
        None => key.id.clone(),
        Some(r) => format!("{}@{}", key.id, utc_date(period_start(r, now))),
    }
}

pub(crate) fn allowed(list: &[String], model: &str) -> bool {
    list.is_empty()
        || list.iter().any(|m| {
            m == model
                || m.strip_suffix("/*")
                    .is_some_and(|author| model.split_once('/').is_some_and(|(a, _)| a == author))
        })
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(403, "forbidden", message)
}

fn rate_error(window: &str, limit: u64, retry_after: Duration) -> ApiError {
    let cap = u32::try_from(limit).unwrap_or(u32::MAX);
    ApiError::engine(
        &polyroute::Error::RateLimited {
            limit: window.to_string(),
            retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0)),
        },
        (cap, cap),
    )
}

fn store_error(e: &polyroute::Error) -> ApiError {
    tracing::error!(error = %e, "key limits cannot be read");
    ApiError::internal()
}

/// Apply `key`'s allowlists to `request` (in place) and its rpm and tpm: the admission hook of the surfaces whose
/// bodies stay JSON values (messages, responses, embeddings, and a chat body the typed parse refused).
///
/// # Errors
/// 403 for a model or provider the key does not allow; 429 over rpm or tpm; 500 when the rate store fails
/// (and is configured to fail closed).
pub async fn admit(gw: &Gateway, key: &KeyEntry, request: &mut Value) -> Result<(), ApiError> {
    if !key.models.is_empty() {
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        check_model(key, &model)?;
        if let Some(Value::Array(ms)) = request.get_mut("models") {
            ms.retain(|m| m.as_str().is_some_and(|m| allowed(&key.models, m)));
            check_fallbacks_left(ms.is_empty(), &model)?;
        }
    }
    if !key.providers.is_empty() {
        let asked = match request.pointer("/provider/only") {
            Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>()),
            _ => None,
        };
        let only = providers_allowed(key, asked.as_deref())?;
        if let Some(obj) = request.as_object_mut() {
            let p = obj.entry("provider").or_insert_with(|| json!({}));
            if let Some(p) = p.as_object_mut() {
                p.insert("only".into(), json!(only));
            }
        }
    }
    limits(gw, key).await
}

/// [`admit`] for a chat request already parsed (the `chat/completions` hook): the same rules on the typed
/// fields.
///
/// # Errors
/// As [`admit`].
pub async fn admit_chat(
    gw: &Gateway,
    key: &KeyEntry,
    req: &mut ChatRequest,
) -> Result<(), ApiError> {
    if !key.models.is_empty() {
        let model = req.model.as_deref().unwrap_or("");
        check_model(key, model)?;
        if let Some(ms) = req.models.as_mut() {
            ms.retain(|m| allowed(&key.models, m));
            check_fallbacks_left(ms.is_empty(), model)?;
        }
    }
    if !key.providers.is_empty() {
        let asked = req
            .provider
            .as_ref()
            .and_then(|p| p.only.as_ref())
            .map(|a| a.iter().map(String::as_str).collect::<Vec<_>>());
        let only = providers_allowed(key, asked.as_deref())?;
        req.provider.get_or_insert_with(Default::default).only = Some(only);
    }
    limits(gw, key).await
}

/// The key's model allowlist on the requested `model` (empty: none asked for).
fn check_model(key: &KeyEntry, model: &str) -> Result<(), ApiError> {
    if !model.is_empty() && !allowed(&key.models, model) {
        return Err(forbidden(format!(
            "This key does not allow the model {model}"
        )));
    }
    Ok(())
}

/// Refuses a request left with no model: no `model`, and no allowed fallback.
fn check_fallbacks_left(none_left: bool, model: &str) -> Result<(), ApiError> {
    if none_left && model.is_empty() {
        return Err(forbidden(
            "This key allows none of the requested models".into(),
        ));
    }
    Ok(())
}

/// The key's provider allowlist, intersected with the request's own `provider.only` (when it has one): the
/// `provider.only` the request is given.
fn providers_allowed(key: &KeyEntry, asked: Option<&[&str]>) -> Result<Vec<String>, ApiError> {
    let mut only = key.providers.clone();
    if let Some(asked) = asked {
        only.retain(|p| asked.contains(&p.as_str()));
        if only.is_empty() {
            return Err(forbidden(
                "This key allows none of the providers in provider.only".into(),
            ));
        }
    }
    Ok(only)
}

/// The key's tpm and rpm (the rpm counted when admitted).
async fn limits(gw: &Gateway, key: &KeyEntry) -> Result<(), ApiError> {
    let stores = gw.router.stores();
    if let Some(tpm) = key.tpm {
        let recent = stores
            .ledger
            .list(LedgerQuery {
                user: Some(key.id.clone()),
                since_ms: Some(super::now_ms() - 60_000),
                limit: None,
            })
            .await
            .map_err(|e| store_error(&e))?;
        let used: u64 = recent
            .iter()
            .map(|r| r.usage.prompt_tokens + r.usage.completion_tokens)
            .sum();
        if used >= tpm {
            gw.router.metrics().limit_refused("key_tpm");
            return Err(rate_error(
                "key-tokens-per-minute",
                tpm,
                Duration::from_secs(1),
            ));
        }
    }
    if let Some(rpm) = key.rpm {
        let w = [Window {
            name: "key-requests-per-minute".into(),
            limit: rpm,
            span: MINUTE,
        }];
        match stores.rate.hit(&format!("key-rpm:{}", key.id), &w, 1).await {
            Ok(RateDecision::Allowed) => {}
            Ok(RateDecision::Limited {
                window,
                retry_after,
            }) => {
                gw.router.metrics().limit_refused("key_rpm");
                return Err(rate_error(&window, rpm, retry_after));
            }
            Err(e) => return Err(store_error(&e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn periods_start_at_utc_boundaries() {
        let t = parse_iso("2026-12-02T15:04:05Z").unwrap(); // a Wednesday
        assert_eq!(utc_date(period_start(LimitReset::Daily, t)), "2026-12-02");
        assert_eq!(utc_date(period_start(LimitReset::Weekly, t)), "2026-11-30");
        assert_eq!(utc_date(period_start(LimitReset::Monthly, t)), "2026-12-01");
        let monday = parse_iso("2026-11-30T00:00:00Z").unwrap();
        assert_eq!(period_start(LimitReset::Weekly, monday), monday);
    }

    #[test]
    fn allowlists() {
        let l = vec!["acme/chat".to_string(), "open/*".to_string()];
        assert!(allowed(&l, "acme/chat"));
        assert!(allowed(&l, "open/anything"));
        assert!(!allowed(&l, "acme/big"));
        assert!(allowed(&[], "acme/big"));
    }
}
