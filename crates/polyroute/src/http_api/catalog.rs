//! Catalog routes: `GET …/models`, `…/models/count`, `…/models/{author}/{slug}` (and `…/model/{author}/{slug}`),
//! `…/models/{author}/{slug}/endpoints`, `…/providers` (OpenRouter shapes). A model's row is the one `/models`
//! lists, whichever path a client takes.

use std::collections::HashMap;

use polyroute_core::catalog::{Endpoint, Model};
use rust_decimal::prelude::ToPrimitive;
use serde_json::{json, Value};

use super::routes::Call;
use super::{HttpApi, Response};
use crate::state::BoxFut;
use crate::Catalog;

/// The `/models` rows, built once.
#[derive(Debug)]
pub struct ModelRows {
    rows: Vec<Row>,
}

#[derive(Debug)]
struct Row {
    json: Value,
    id: String,
    params: Vec<String>,
    outputs: Vec<String>,
    price: f64,
    context: u64,
    created: i64,
    tags: Vec<String>,
}

pub(crate) fn model_json(m: &Model) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("endpoints");
        let canonical = m.canonical_slug.clone().unwrap_or_else(|| m.id.clone());
        o.insert("canonical_slug".into(), json!(canonical));
        o.entry("hugging_face_id").or_insert(Value::Null);
        o.entry("name").or_insert(json!(m.id));
        o.entry("description").or_insert(json!(""));
        o.entry("per_request_limits").or_insert(Value::Null);
        o.entry("default_parameters").or_insert(Value::Null);
        o.entry("supported_voices").or_insert(Value::Null);
        o.entry("knowledge_cutoff").or_insert(Value::Null);
        o.entry("expiration_date").or_insert(Value::Null);
        o.insert(
            "links".into(),
            json!({"details": format!("/api/v1/models/{canonical}/endpoints")}),
        );
    }
    v
}

impl ModelRows {
    /// Build from the catalog.
    #[must_use]
    pub fn new(c: &Catalog) -> Self {
        let rows = c
            .models()
            .iter()
            .map(|m| Row {
                json: model_json(m),
                id: m.id.clone(),
                params: m.supported_parameters.clone(),
                outputs: m.architecture.output_modalities.clone(),
                price: (m.pricing.prompt + m.pricing.completion)
                    .to_f64()
                    .unwrap_or(0.0),
                context: m.context_length.unwrap_or(0),
                created: m.created,
                tags: m.endpoints.iter().map(|e| e.tag.clone()).collect(),
            })
            .collect();
        Self { rows }
    }
}

const SORTS: &[&str] = &[
    "pricing-low-to-high",
    "pricing-high-to-low",
    "context-high-to-low",
    "throughput-high-to-low",
    "latency-low-to-high",
    "most-popular",
    "top-weekly",
    "newest",
    "intelligence-high-to-low",
    "coding-high-to-low",
    "agentic-high-to-low",
    "design-arena-elo-high-to-low",
];

fn list(q: &HashMap<String, String>, key: &str) -> Vec<String> {
    q.get(key)
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn num(q: &HashMap<String, String>, key: &str) -> Result<Option<usize>, Response> {
    q.get(key)
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                Response::error(
                    400,
                    "invalid_request",
                    format!("{key} must be a non-negative integer"),
                )
            })
        })
        .transpose()
}

pub(super) fn list_models(api: &HttpApi, q: &HashMap<String, String>) -> Result<Value, Response> {
    let params = list(q, "supported_parameters");
    let mut outputs = list(q, "output_modalities");
    if outputs.is_empty() {
        outputs.push("text".into());
    }
    let all_outputs = outputs.iter().any(|o| o == "all");
    let sort = q.get("sort").map(String::as_str);
    if let Some(s) = sort {
        if !SORTS.contains(&s) {
            return Err(Response::error(
                400,
                "invalid_request",
                format!("sort must be one of {}", SORTS.join(", ")),
            ));
        }
    }
    let mut rows: Vec<&Row> = api
        .rows
        .rows
        .iter()
        .filter(|r| params.iter().all(|p| r.params.contains(p)))
        .filter(|r| all_outputs || r.outputs.iter().any(|o| outputs.contains(o)))
        .collect();
    match sort {
        Some("pricing-low-to-high") => rows.sort_by(|a, b| a.price.total_cmp(&b.price)),
        Some("pricing-high-to-low") => rows.sort_by(|a, b| b.price.total_cmp(&a.price)),
        Some("context-high-to-low") => rows.sort_by_key(|r| std::cmp::Reverse(r.context)),
        Some("newest") => rows.sort_by_key(|r| std::cmp::Reverse(r.created)),
        Some(s @ ("throughput-high-to-low" | "latency-low-to-high")) => {
            let snap = api.router.stores().health.snapshot();
            let latency = s.starts_with("latency");
            let key = |r: &Row| -> f64 {
                let vals = r.tags.iter().filter_map(|t| {
                    let h = snap.endpoints.get(&format!("{}@{t}", r.id))?;
                    if latency {
                        h.latency_p50_ms
                    } else {
                        h.throughput_p50
                    }
                });
                if latency {
                    vals.fold(f64::INFINITY, f64::min)
                } else {
                    vals.fold(f64::NEG_INFINITY, f64::max)
                }
            };
            let mut keyed: Vec<(f64, &Row)> = rows.iter().map(|r| (key(r), *r)).collect();
            if latency {
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            } else {
                keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            }
            rows = keyed.into_iter().map(|(_, r)| r).collect();
        }
        _ => {}
    }
    let total = rows.len();
    let offset = num(q, "offset")?;
    let limit = num(q, "limit")?;
    let mut next = Value::Null;
    if offset.is_some() || limit.is_some() {
        let off = offset.unwrap_or(0);
        let lim = limit.unwrap_or(500).clamp(1, 1000);
        rows = rows.into_iter().skip(off).take(lim).collect();
        if off.saturating_add(lim) < total {
            next = json!(format!(
                "/api/v1/models?offset={}&limit={lim}",
                off.saturating_add(lim)
            ));
        }
    }
    Ok(
        json!({"object": "list", "data": rows.iter().map(|r| &r.json).collect::<Vec<_>>(),
              "total_count": total, "links": {"next": next}}),
    )
}

fn endpoint_json(api: &HttpApi, m: &Model, e: &Endpoint) -> Value {
    let key = format!("{}@{}", m.id, e.tag);
    let snap = api.router.stores().health.snapshot();
    let h = snap.endpoints.get(&key);
    let uptime = api
        .router
        .stores()
        .health
        .success_rate(&key)
        .map(|r| (r * 10_000.0).round() / 100.0);
    let name = m.name.clone().unwrap_or_else(|| m.id.clone());
    let latency = h.filter(|h| h.latency_p50_ms.is_some()).map(
        |h| json!({"p50": h.latency_p50_ms, "p75": null, "p90": h.latency_p90_ms, "p99": null}),
    );
    let throughput = h.filter(|h| h.throughput_p50.is_some()).map(
        |h| json!({"p50": h.throughput_p50, "p75": null, "p90": h.throughput_p90, "p99": null}),
    );
    json!({
        "name": format!("{}: {name}", e.provider_name),
        "model_id": m.canonical_slug.clone().unwrap_or_else(|| m.id.clone()),
        "model_name": name,
        "provider_name": e.provider_name,
        "tag": e.tag,
        "quantization": e.quantization.map(|q| q.as_str()),
        "context_length": e.context_length,
        "max_completion_tokens": e.max_completion_tokens,
        "max_prompt_tokens": e.max_prompt_tokens,
        "pricing": e.pricing,
        "supported_parameters": e.supported_parameters,
        "status": e.status,
        "uptime_last_5m": uptime,
        "uptime_last_30m": null,
        "uptime_last_1d": null,
        "latency_last_30m": latency,
        "throughput_last_30m": throughput,
        "supports_implicit_caching": e.supports_implicit_caching,
        "supports_voice_cloning": false,
        "health": {"samples": h.map_or(0, |h| h.samples), "recent_outage": h.is_some_and(|h| h.recent_outage),
                    "window_seconds": 300},
    })
}

fn ready<'a>(r: Response) -> BoxFut<'a, Response> {
    Box::pin(std::future::ready(r))
}

pub(super) fn models<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    ready(match list_models(api, &c.query) {
        Ok(v) => Response::json(200, &v),
        Err(r) => r,
    })
}

pub(super) fn count<'a>(api: &'a HttpApi, _c: Call<'a>) -> BoxFut<'a, Response> {
    let n = api.router.catalog().models().len();
    ready(Response::json(200, &json!({"data": {"count": n}})))
}

pub(super) fn one<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    let id = c.params.join("/");
    ready(match api.router.catalog().model(&id) {
        Some(m) => Response::json(200, &model_json(m)),
        None => Response::error(404, "not_found", format!("{id} is not a valid model ID")),
    })
}

pub(super) fn endpoints<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    let id = c.params.join("/");
    let Some(m) = api.router.catalog().model(&id) else {
        return ready(Response::error(
            404,
            "not_found",
            format!("Model {id} not found"),
        ));
    };
    let eps: Vec<Value> = m
        .endpoints
        .iter()
        .map(|e| endpoint_json(api, m, e))
        .collect();
    ready(Response::json(
        200,
        &json!({"data": {
            "id": m.id,
            "name": m.name.clone().unwrap_or_else(|| m.id.clone()),
            "created": m.created,
            "description": "",
            "architecture": m.architecture,
            "endpoints": eps,
        }}),
    ))
}

/// Which providers hold credentials is shown to a trusted caller only.
pub(super) fn providers<'a>(api: &'a HttpApi, c: Call<'a>) -> BoxFut<'a, Response> {
    let known = c.caller.trusted;
    let creds = api.router.credentials();
    let data: Vec<Value> = api
        .router
        .catalog()
        .providers()
        .iter()
        .map(|p| {
            json!({"name": p.name, "slug": p.slug, "privacy_policy_url": null, "terms_of_service_url": null,
                   "status_page_url": null, "headquarters": null, "datacenters": [],
                   "configured": known.then(|| creds.contains(&p.slug))})
        })
        .collect();
    ready(Response::json(200, &json!({ "data": data })))
}
