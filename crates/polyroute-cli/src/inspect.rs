//! `polyroute models`, `polyroute plan` and `polyroute cost`: the routing core on a catalog, printed for humans or
//! as JSON.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Context as _, Result};
use polyroute_core::catalog::ModelFilter;
use polyroute_core::cost::{cost, CostContext};
use polyroute_core::plan::{plan, HealthSnapshot, PlanContext};
use polyroute_core::{Catalog, ChatRequest, Error, Usage};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::present::{self, Col, Screen};

/// Load the embedded catalog, a catalog file, and/or an overlay.
///
/// # Errors
/// Unreadable files or an invalid catalog (every bad entry listed).
pub fn load_catalog(catalog: Option<&Path>, overlay: Option<&Path>) -> Result<Catalog> {
    let base = match catalog {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Catalog::from_json(&text).map_err(|e| anyhow!("{}: {e}", p.display()))?
        }
        None => Catalog::embedded().map_err(|e| anyhow!("{e}"))?,
    };
    match overlay {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            base.overlay(&v)
                .map_err(|e| anyhow!("{}: {e}", p.display()))
        }
        None => Ok(base),
    }
}

/// Reject filter values the catalog does not know (`--provider nonexistent`, `--input imgae`, `--param toolz`),
/// naming the close matches, instead of listing 0 models.
///
/// # Errors
/// The first unknown value, with suggestions.
pub fn check_filter(catalog: &Catalog, filter: &ModelFilter) -> Result<()> {
    let mut inputs = BTreeSet::new();
    let mut outputs = BTreeSet::new();
    let mut params = BTreeSet::new();
    for m in catalog.models() {
        inputs.extend(m.architecture.input_modalities.iter().map(String::as_str));
        outputs.extend(m.architecture.output_modalities.iter().map(String::as_str));
        params.extend(m.supported_parameters.iter().map(String::as_str));
    }
    let known = |set: &BTreeSet<&str>, v: &str| set.iter().any(|k| k.eq_ignore_ascii_case(v));
    if let Some(x) = &filter.input_modality {
        if !known(&inputs, x) {
            bail!(
                "--input: {}",
                present::unknown("input modality", x, &Vec::from_iter(inputs))
            );
        }
    }
    if let Some(x) = &filter.output_modality {
        if !known(&outputs, x) {
            bail!(
                "--output: {}",
                present::unknown("output modality", x, &Vec::from_iter(outputs))
            );
        }
    }
    for p in &filter.supported_parameters {
        if !known(&params, p) {
            bail!(
                "--param: {}",
                present::unknown("parameter", p, &Vec::from_iter(params))
            );
        }
    }
    if let Some(p) = &filter.provider {
        if catalog.provider(p).is_none() {
            let mut names: Vec<&str> = Vec::new();
            for info in catalog.providers() {
                names.push(info.slug.as_str());
                if !info.name.eq_ignore_ascii_case(&info.slug) {
                    names.push(info.name.as_str());
                }
            }
            bail!("--provider: {}", present::unknown("provider", p, &names));
        }
    }
    Ok(())
}

/// `polyroute models`: list models passing the filter.
#[must_use]
pub fn models(catalog: &Catalog, filter: &ModelFilter, as_json: bool, screen: Screen) -> String {
    let list = catalog.filter_models(filter);
    if as_json {
        let data: Vec<Value> = list
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .collect();
        return format!("{}\n", json!({ "data": data, "total_count": list.len() }));
    }
    let m = Decimal::from(1_000_000);
    let price = |model: &polyroute_core::catalog::Model, d: Decimal| {
        if model.is_router() {
            "var".to_string()
        } else {
            present::decimal(d * m)
        }
    };
    let pin = present::align_decimals(
        &list
            .iter()
            .map(|x| price(x, x.pricing.prompt))
            .collect::<Vec<_>>(),
    );
    let pout = present::align_decimals(
        &list
            .iter()
            .map(|x| price(x, x.pricing.completion))
            .collect::<Vec<_>>(),
    );
    let rows = list
        .iter()
        .zip(pin.into_iter().zip(pout))
        .map(|(model, (pin, pout))| {
            let providers: Vec<&str> = model.endpoints.iter().map(|e| e.tag.as_str()).collect();
            vec![
                model.id.clone(),
                model
                    .context_length
                    .map_or_else(|| "-".into(), |c| c.to_string()),
                pin,
                pout,
                model.endpoints.len().to_string(),
                providers.join(", "),
            ]
        })
        .collect();
    let mut out = present::table(
        screen,
        &[
            ("model", Col::Keep),
            ("context", Col::Number),
            ("$/M in", Col::Number),
            ("$/M out", Col::Number),
            ("eps", Col::Number),
            ("providers", Col::Wrap),
        ],
        rows,
    );
    let _ = writeln!(
        out,
        "{} model{}",
        list.len(),
        if list.len() == 1 { "" } else { "s" }
    );
    out
}

/// Read a request: a file path, `-` for stdin.
///
/// # Errors
/// Unreadable input or invalid JSON.
pub fn read_request(source: &str) -> Result<Value> {
    let text = if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?
    };
    serde_json::from_str(&text).with_context(|| format!("{source} is not valid JSON"))
}

/// Build a request from flags.
#[must_use]
pub fn request_from_flags(
    model: &str,
    fallbacks: &[String],
    provider: Option<Value>,
    prompt: &str,
    max_tokens: Option<u64>,
) -> Value {
    let mut r = json!({ "model": model, "messages": [{"role": "user", "content": prompt}] });
    if !fallbacks.is_empty() {
        r["models"] = json!(fallbacks);
    }
    if let Some(p) = provider {
        r["provider"] = p;
    }
    if let Some(m) = max_tokens {
        r["max_tokens"] = json!(m);
    }
    r
}

/// The outcome of `polyroute plan`: what to print and whether it is an error.
pub struct PlanOutput {
    /// Text to print on stdout.
    pub text: String,
    /// The plan failed (no endpoint can serve, or bad input).
    pub failed: bool,
}

/// `polyroute plan`.
#[must_use]
pub fn plan_command(
    catalog: &Catalog,
    request: &Value,
    seed: u64,
    as_json: bool,
    screen: Screen,
) -> PlanOutput {
    let health = HealthSnapshot::default();
    let ctx = PlanContext {
        seed,
        health: &health,
        ..PlanContext::default()
    };
    let result = ChatRequest::from_value(request).and_then(|r| plan(catalog, &r, &ctx));
    match result {
        Ok(p) if as_json => {
            let mut v = p.to_json();
            if let Some(Value::Array(at)) = v.get_mut("attempts") {
                for (j, a) in at.iter_mut().zip(&p.attempts) {
                    j["auth"] = Value::String(a.dialect.auth_scheme().label());
                }
            }
            PlanOutput {
                text: format!("{v}\n"),
                failed: false,
            }
        }
        Ok(p) => {
            let mut out = String::new();
            let models: Vec<&str> = p.models.iter().map(|m| m.id.as_str()).collect();
            let _ = writeln!(
                out,
                "models: {}   strategy: {}   seed: {seed}",
                models.join(" → "),
                p.strategy
            );
            if let Some(r) = &p.router {
                let _ = writeln!(out, "router: {r}");
            }
            let m = Decimal::from(1_000_000);
            let pin = present::align_decimals(
                &p.attempts
                    .iter()
                    .map(|a| present::decimal(a.pricing.prompt * m))
                    .collect::<Vec<_>>(),
            );
            let pout = present::align_decimals(
                &p.attempts
                    .iter()
                    .map(|a| present::decimal(a.pricing.completion * m))
                    .collect::<Vec<_>>(),
            );
            let rows = p
                .attempts
                .iter()
                .zip(pin.into_iter().zip(pout))
                .enumerate()
                .map(|(i, (a, (pin, pout)))| {
                    vec![
                        (i + 1).to_string(),
                        a.model.clone(),
                        a.tag.clone(),
                        a.dialect.as_str().to_string(),
                        a.dialect.auth_scheme().label(),
                        pin,
                        pout,
                        a.reason.to_string(),
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&present::table(
                screen,
                &[
                    ("#", Col::Number),
                    ("model", Col::Keep),
                    ("endpoint", Col::Keep),
                    ("dialect", Col::Wrap),
                    ("auth", Col::Wrap),
                    ("$/M in", Col::Number),
                    ("$/M out", Col::Number),
                    ("why", Col::Wrap),
                ],
                rows,
            ));
            if !p.excluded.is_empty() {
                let _ = writeln!(out, "\nexcluded:");
                out.push_str(&exclusions(
                    p.excluded
                        .iter()
                        .map(|e| (&e.model, &e.endpoint, e.reason.as_str(), &e.detail)),
                    screen,
                ));
            }
            let _ = writeln!(
                out,
                "\nprimary $/M in/out: {}/{}\nworst case across fallbacks: {}/{}{}",
                present::decimal(p.primary_prices.prompt),
                present::decimal(p.primary_prices.completion),
                present::decimal(p.worst_case_prices.prompt),
                present::decimal(p.worst_case_prices.completion),
                if p.fallback_costs_more {
                    " (a fallback costs more than the primary)"
                } else {
                    ""
                }
            );
            PlanOutput {
                text: out,
                failed: false,
            }
        }
        Err(e) => PlanOutput {
            text: error_text(&e, as_json, screen),
            failed: true,
        },
    }
}

/// Render an error for the terminal or as the OpenRouter envelope.
#[must_use]
pub fn error_text(e: &Error, as_json: bool, screen: Screen) -> String {
    if as_json {
        return format!("{}\n", e.to_envelope());
    }
    let mut out = format!("error [{}] (HTTP {}): {e}\n", e.code(), e.http_status());
    if let Some(u) = e.unavailable() {
        if !u.excluded.is_empty() {
            out.push_str(&exclusions(
                u.excluded
                    .iter()
                    .map(|x| (&x.model, &x.endpoint, x.reason.as_str(), &x.detail)),
                screen,
            ));
        }
    }
    out
}

/// Excluded endpoints as a table: model, endpoint, reason, detail.
fn exclusions<'a>(
    rows: impl Iterator<Item = (&'a String, &'a String, &'a str, &'a String)>,
    screen: Screen,
) -> String {
    let rows = rows
        .map(|(m, e, r, d)| vec![m.clone(), e.clone(), r.to_string(), d.clone()])
        .collect();
    present::table(
        screen,
        &[
            ("model", Col::Keep),
            ("endpoint", Col::Keep),
            ("reason", Col::Keep),
            ("detail", Col::Wrap),
        ],
        rows,
    )
}

/// `polyroute cost`.
///
/// # Errors
/// Unknown model or provider.
pub fn cost_command(
    catalog: &Catalog,
    model: &str,
    provider: Option<&str>,
    usage: &Usage,
    utc_minute: Option<u16>,
    as_json: bool,
) -> std::result::Result<String, Error> {
    let pricing = catalog.pricing_for(model, provider)?;
    let b = cost(
        pricing,
        usage,
        CostContext {
            utc_minute,
            finish_reason: Some("stop"),
        },
    );
    if as_json {
        return Ok(format!(
            "{}\n",
            serde_json::to_value(&b).unwrap_or(Value::Null)
        ));
    }
    let mut lines: Vec<(&str, Decimal)> = Vec::new();
    for (k, v) in [
        ("prompt", b.prompt),
        ("cache read", b.cache_read),
        ("cache write", b.cache_write),
        ("completion", b.completion),
        ("reasoning", b.reasoning),
        ("request", b.request),
        ("image", b.image),
        ("web search", b.web_search),
    ] {
        if !v.is_zero() {
            lines.push((k, v));
        }
    }
    lines.push(("total", b.total));
    let amounts = present::align_decimals(
        &lines
            .iter()
            .map(|(_, v)| present::usd(*v))
            .collect::<Vec<_>>(),
    );
    let width = amounts.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for ((k, _), amount) in lines.iter().zip(amounts) {
        let line = format!("{k:<12} {amount:>width$}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    Ok(out)
}
