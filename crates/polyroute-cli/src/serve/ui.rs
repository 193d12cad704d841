//! The dashboard: `GET /ui` (a static page, its script and style, and the vendored uPlot, all compiled into the
//! binary) and the JSON it reads under `/api/v1/ui/`, each behind a key (`Authorization: Bearer …`):
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /api/v1/ui/session` | who the key is, what it sees (`all` or `key`), the catalog's model ids |
//! | `GET /api/v1/ui/usage?group=app\|model\|provider\|key&range=1h\|24h\|7d\|30d` | requests, cost and tokens per time bucket and group ([`polyroute::state::Ledger::usage`]) |
//! | `GET /api/v1/ui/health` | the health window per endpoint and per provider: uptime, latency, throughput |
//! | `GET /api/v1/ui/generations?limit=` | the newest generations, each with every attempt |
//! | `GET /api/v1/ui/plan?model=&sort=` | the plan a request for that model would get now |
//!
//! A management key sees every key's usage and generations; an inference key sees only its own (the health
//! window and plans are the same for everyone). The page is served without a key; it asks for one, keeps it in
//! the tab's `sessionStorage` and sends it in the `Authorization` header only (never in a URL). Its
//! Content-Security-Policy allows scripts, styles and requests from this origin only (no inline code), and the
//! page inserts data as text nodes only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use polyroute::state::{LedgerQuery, UsageGroup, UsageQuery, UsageRow};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::error::ApiError;
use super::keys::KeyEntry;
use super::{now_ms, Gateway};

/// The page's Content-Security-Policy: everything from this origin only, nothing inline, no frames.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The static files of `/ui`: path under `/ui/`, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("ui/dashboard.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/LICENSE-uPlot",
        "text/plain; charset=utf-8",
        include_str!("ui/vendor/LICENSE-uPlot"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("ui/vendor/uPlot.min.css"),
    ),
];

const INDEX: &str = include_str!("ui/index.html");

/// Series drawn in a chart; the other groups are summed into one `other` series.
const TOP_SERIES: usize = 8;
/// Groups listed in a usage table at most (the rest are summed into one `other` row).
const MAX_GROUPS: usize = 100;
/// Generations listed at most.
const MAX_GENERATIONS: usize = 200;

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /ui`: the page.
pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/{*file}`: the page's script, style and vendored chart library (with its license).
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == file) {
        Some((_, ct, body)) => page(ct, body),
        None => ApiError::not_found("Not Found").into_response(),
    }
}

fn data(v: Value) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn store_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "dashboard: state store read failed");
    ApiError::internal().into_response()
}

fn usd(d: Decimal) -> Value {
    json!(d.to_f64().unwrap_or(0.0))
}

/// The user whose records `key` may see: None (all) for a management key.
fn visible_user(key: &KeyEntry) -> Option<String> {
    (!key.management).then(|| key.id.clone())
}

/// Key id → label, for the keys the caller may see.
async fn key_labels(gw: &Gateway, key: &KeyEntry) -> HashMap<String, String> {
    if !key.management {
        return HashMap::from([(key.id.clone(), key.label.clone())]);
    }
    match gw.keys.list().await {
        Ok(all) => all.into_iter().map(|k| (k.id, k.label)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: keys cannot be listed; showing key ids");
            HashMap::new()
        }
    }
}

/// `GET /api/v1/ui/session`.
pub async fn session(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let key = match gw.authenticate_any(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let models: Vec<&str> = gw
        .router
        .catalog()
        .models()
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    data(
        json!({"label": key.label, "scope": if key.management { "all" } else { "key" }, "models": models}),
    )
}

/// A time range of the usage view: its length and its bucket width (ms).
fn range(name: &str) -> Option<(i64, i64)> {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    match name {
        "1h" => Some((HOUR, 5 * MIN)),
        "24h" => Some((24 * HOUR, HOUR)),
        "7d" => Some((7 * 24 * HOUR, 6 * HOUR)),
        "30d" => Some((30 * 24 * HOUR, 24 * HOUR)),
        _ => None,
    }
}

#[derive(Default, Clone)]
struct Sums {
    requests: u64,
    cost: Decimal,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Sums {
    fn add(&mut self, r: &UsageRow) {
        self.requests += r.requests;
        self.cost += r.cost;
        self.prompt_tokens += r.prompt_tokens;
        self.completion_tokens += r.completion_tokens;
    }

    fn merge(&mut self, o: &Sums) {
        self.requests += o.requests;
        self.cost += o.cost;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }

    fn json(&self, name: Option<&str>, label: Option<&str>) -> Value {
        json!({"name": name, "label": label, "requests": self.requests, "cost": usd(self.cost),
               "cost_usd": self.cost.normalize().to_string(), "prompt_tokens": self.prompt_tokens,
               "completion_tokens": self.completion_tokens})
    }
}

/// The usage view from the store's rows: buckets, the top series (by cost, then requests), every group's
/// totals and the overall totals.
fn usage_view(
    rows: &[UsageRow],
    since: i64,
    bucket: i64,
    n: usize,
    labels: &HashMap<String, String>,
) -> Value {
    let idx = |b: i64| {
        usize::try_from((b - since).div_euclid(bucket))
            .ok()
            .filter(|i| *i < n)
    };
    let mut per_group: BTreeMap<Option<String>, Sums> = BTreeMap::new();
    let mut total = Sums::default();
    for r in rows {
        per_group.entry(r.group.clone()).or_default().add(r);
        total.add(r);
    }
    let mut order: Vec<(Option<String>, Sums)> = per_group.into_iter().collect();
    order.sort_by(|a, b| {
        b.1.cost
            .cmp(&a.1.cost)
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(&b.0))
    });
    let rank: HashMap<Option<String>, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (g, _))| (g.clone(), i))
        .collect();
    let drawn = order.len().min(TOP_SERIES);
    let other = order.len() > TOP_SERIES;
    let slots = drawn + usize::from(other);
    let mut req = vec![vec![0u64; n]; slots];
    let mut cost = vec![vec![Decimal::ZERO; n]; slots];
    for r in rows {
        let (Some(i), Some(&g)) = (idx(r.bucket_ms), rank.get(&r.group)) else {
            continue;
        };
        let s = g.min(TOP_SERIES);
        req[s][i] += r.requests;
        cost[s][i] += r.cost;
    }
    let label = |g: &Option<String>| g.as_ref().and_then(|id| labels.get(id)).map(String::as_str);
    let mut series: Vec<Value> = order
        .iter()
        .take(drawn)
        .enumerate()
        .map(|(s, (g, _))| {
            json!({"name": g, "label": label(g), "requests": req[s],
                   "cost": cost[s].iter().map(|c| usd(*c)).collect::<Vec<_>>()})
        })
        .collect();
    if other {
        series.push(
            json!({"name": "other", "label": format!("{} others", order.len() - TOP_SERIES),
                           "other": true, "requests": req[TOP_SERIES],
                           "cost": cost[TOP_SERIES].iter().map(|c| usd(*c)).collect::<Vec<_>>()}),
        );
    }
    let mut groups: Vec<Value> = order
        .iter()
        .take(MAX_GROUPS)
        .map(|(g, s)| s.json(g.as_deref(), label(g)))
        .collect();
    if order.len() > MAX_GROUPS {
        let mut rest = Sums::default();
        for (_, s) in &order[MAX_GROUPS..] {
            rest.merge(s);
        }
        let mut v = rest.json(
            Some("other"),
            Some(&format!("{} others", order.len() - MAX_GROUPS)),
        );
        v["other"] = json!(true);
        groups.push(v);
    }
    let buckets: Vec<i64> = (0..n).map(|i| since + bucket * i as i64).collect();
    json!({"bucket_ms": bucket, "since": since, "buckets": buckets, "series": series, "groups": groups,
           "totals": total.json(None, None)})
}

/// `GET /api/v1/ui/usage?group=&range=`.
pub async fn usage(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate_any(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let group = match q.get("group").map_or("model", String::as_str) {
        "app" => UsageGroup::App,
        "model" => UsageGroup::Model,
        "provider" => UsageGroup::Provider,
        "key" => UsageGroup::Key,
        _ => {
            return ApiError::bad_request("group must be app, model, provider or key")
                .into_response()
        }
    };
    let range_name = q.get("range").map_or("24h", String::as_str);
    let Some((len, bucket)) = range(range_name) else {
        return ApiError::bad_request("range must be 1h, 24h, 7d or 30d").into_response();
    };
    let n = usize::try_from(len / bucket).unwrap_or(1);
    let last = now_ms().div_euclid(bucket) * bucket;
    let since = last - bucket * (len / bucket - 1);
    let rows = match gw
        .router
        .stores()
        .ledger
        .usage(UsageQuery {
            user: visible_user(&key),
            since_ms: since,
            bucket_ms: bucket,
            group,
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(&e),
    };
    let labels = if group == UsageGroup::Key {
        key_labels(&gw, &key).await
    } else {
        HashMap::new()
    };
    let mut v = usage_view(&rows, since, bucket, n, &labels);
    v["scope"] = json!(if key.management { "all" } else { "key" });
    v["group"] = json!(q.get("group").map_or("model", String::as_str));
    v["range"] = json!(range_name);
    data(v)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `GET /api/v1/ui/health`: every endpoint in the health window, and per provider the sample-weighted uptime,
/// p50 latency and p50 throughput of its endpoints.
pub async fn health(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(e) = gw.authenticate_any(&headers).await {
        return e.into_response();
    }
    let snap = gw.router.stores().health.snapshot();
    let cat = gw.router.catalog();
    let mut keys: Vec<&String> = snap.endpoints.keys().collect();
    keys.sort();
    #[derive(Default)]
    struct Prov {
        name: String,
        endpoints: u64,
        samples: u64,
        up: (f64, f64),
        lat: (f64, f64),
        tput: (f64, f64),
        outage: bool,
    }
    let mut provs: BTreeMap<String, Prov> = BTreeMap::new();
    let mut eps = Vec::new();
    for k in keys {
        let h = &snap.endpoints[k];
        let (model, tag) = k.rsplit_once('@').unwrap_or((k.as_str(), ""));
        let ep = cat
            .model(model)
            .and_then(|m| m.endpoints.iter().find(|e| e.tag == tag));
        let provider = ep.map_or_else(
            || tag.split('/').next().unwrap_or(tag).to_string(),
            |e| e.provider.clone(),
        );
        let provider_name = ep.map_or_else(|| provider.clone(), |e| e.provider_name.clone());
        let uptime = gw
            .router
            .stores()
            .health
            .success_rate(k)
            .map(|r| round2(r * 100.0));
        let w = f64::from(h.samples);
        let p = provs.entry(provider.clone()).or_default();
        p.name.clone_from(&provider_name);
        p.endpoints += 1;
        p.samples += u64::from(h.samples);
        p.outage |= h.recent_outage;
        let acc = |slot: &mut (f64, f64), v: Option<f64>| {
            if let Some(v) = v {
                slot.0 += v * w;
                slot.1 += w;
            }
        };
        acc(&mut p.up, uptime);
        acc(&mut p.lat, h.latency_p50_ms);
        acc(&mut p.tput, h.throughput_p50);
        eps.push(json!({"model": model, "endpoint": tag, "provider": provider, "provider_name": provider_name,
                        "samples": h.samples, "uptime": uptime, "recent_outage": h.recent_outage,
                        "latency_p50_ms": h.latency_p50_ms, "latency_p90_ms": h.latency_p90_ms,
                        "throughput_p50": h.throughput_p50, "throughput_p90": h.throughput_p90}));
    }
    let avg = |s: (f64, f64)| (s.1 > 0.0).then(|| round2(s.0 / s.1));
    let providers: Vec<Value> = provs
        .into_iter()
        .map(|(slug, p)| {
            json!({"provider": slug, "provider_name": p.name, "endpoints": p.endpoints, "samples": p.samples,
                   "uptime": avg(p.up), "latency_p50_ms": avg(p.lat), "throughput_p50": avg(p.tput),
                   "recent_outage": p.outage})
        })
        .collect();
    data(json!({"window_seconds": 300, "providers": providers, "endpoints": eps}))
}

/// `GET /api/v1/ui/generations?limit=`: the newest generations the key may see, in `/generation`'s shape
/// (with `provider_responses`: every attempt) and the key's label.
pub async fn generations(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate_any(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if n >= 1 => n.min(MAX_GENERATIONS),
        Some(_) => {
            return ApiError::bad_request("limit must be a positive integer").into_response()
        }
    };
    let recs = match gw
        .router
        .stores()
        .ledger
        .list(LedgerQuery {
            user: visible_user(&key),
            since_ms: None,
            limit: Some(limit),
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(&e),
    };
    let labels = key_labels(&gw, &key).await;
    let rows: Vec<Value> = recs
        .iter()
        .map(|r| {
            let mut v = polyroute::http_api::generation_json(r);
            v["key"] = json!(r.user);
            v["key_label"] = json!(r.user.as_ref().and_then(|u| labels.get(u)));
            v["created_ms"] = json!(r.created_ms);
            v
        })
        .collect();
    data(json!({"data": rows}))
}

/// `GET /api/v1/ui/plan?model=&sort=`: the plan a chat request for `model` would get now (with this key's
/// model and provider allowlists), as `polyroute plan` prints it.
pub async fn plan(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = match gw.authenticate_any(&headers).await {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Some(model) = q.get("model").map(|m| m.trim()).filter(|m| !m.is_empty()) else {
        return ApiError::bad_request("model is required").into_response();
    };
    let mut request = json!({"model": model, "messages": [{"role": "user", "content": "plan"}]});
    match q.get("sort").map(String::as_str) {
        None | Some("") => {}
        Some(s @ ("price" | "throughput" | "latency")) => request["provider"] = json!({"sort": s}),
        Some(_) => {
            return ApiError::bad_request("sort must be price, throughput or latency")
                .into_response()
        }
    }
    if !key.management {
        if !key.models.is_empty() && !super::key_policy::allowed(&key.models, model) {
            return ApiError::new(
                403,
                "forbidden",
                format!("This key does not allow the model {model}"),
            )
            .into_response();
        }
        if !key.providers.is_empty() {
            request["provider"]["only"] = json!(key.providers);
        }
    }
    match gw.router.plan(&request) {
        Ok(p) => data(json!({"data": p})),
        Err(e) => ApiError::engine(&e, gw.free_limits).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(b: i64, g: Option<&str>, n: u64, c: &str) -> UsageRow {
        UsageRow {
            bucket_ms: b,
            group: g.map(str::to_string),
            requests: n,
            cost: c.parse().unwrap(),
            prompt_tokens: n * 10,
            completion_tokens: n,
        }
    }

    #[test]
    fn series_are_bucketed_ranked_and_the_rest_summed() {
        let mut rows = vec![row(100, None, 1, "0.5"), row(110, Some("a"), 2, "0.25")];
        for i in 0..9u64 {
            rows.push(row(120, Some(&format!("g{i}")), 1, "0.01"));
        }
        rows.push(row(90, Some("old"), 5, "9")); // before `since`: totals only, no bucket
        let v = usage_view(&rows, 100, 10, 3, &HashMap::new());
        assert_eq!(v["buckets"], json!([100, 110, 120]));
        let s = v["series"].as_array().unwrap();
        assert_eq!(s.len(), TOP_SERIES + 1);
        assert_eq!(s[0]["name"], "old");
        assert_eq!(s[1]["name"], Value::Null);
        assert_eq!(s[1]["requests"], json!([1, 0, 0]));
        assert_eq!(s[2]["name"], "a");
        assert_eq!(s[2]["requests"], json!([0, 2, 0]));
        // 9 groups of 0.01: five are drawn (g0..g4), four are summed into `other`.
        assert_eq!(s[TOP_SERIES]["requests"], json!([0, 0, 4]));
        assert_eq!(v["totals"]["requests"], 17);
        assert_eq!(v["totals"]["cost_usd"], "9.84");
        assert_eq!(v["groups"].as_array().unwrap().len(), 12);
    }

    #[test]
    fn ranges() {
        assert_eq!(range("24h"), Some((86_400_000, 3_600_000)));
        assert_eq!(range("2y"), None);
    }
}
