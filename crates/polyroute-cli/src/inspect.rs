//! `polyroute models`, `polyroute plan` and `polyroute cost`: the routing core on a catalog, printed for humans or
//! as JSON.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use polyroute_core::catalog::ModelFilter;
use polyroute_core::cost::{cost, CostContext};
use polyroute_core::plan::{plan, HealthSnapshot, PlanContext};
use polyroute_core::{Catalog, ChatRequest, Error, Usage};
use rust_decimal::Decimal;
use serde_json::{json, Value};

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

/// `polyroute models`: list models passing the filter.
#[must_use]
pub fn models(catalog: &Catalog, filter: &ModelFilter, as_json: bool) -> String {
    let list = catalog.filter_models(filter);
    if as_json {
        let data: Vec<Value> = list
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .collect();
        return format!("{}\n", json!({ "data": data, "total_count": list.len() }));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<52} {:>9} {:>9} {:>9} {:>4}  providers",
        "model", "context", "$/M in", "$/M out", "eps"
    );
    let m = Decimal::from(1_000_000);
    for model in &list {
        let providers: Vec<&str> = model.endpoints.iter().map(|e| e.tag.as_str()).collect();
        let (pin, pout) = if model.is_router() {
            ("var".to_string(), "var".to_string())
        } else {
            (
                (model.pricing.prompt * m).normalize().to_string(),
                (model.pricing.completion * m).normalize().to_string(),
            )
        };
        let _ = writeln!(
            out,
            "{:<52} {:>9} {:>9} {:>9} {:>4}  {}",
            model.id,
            model
                .context_length
                .map_or_else(|| "-".into(), |c| c.to_string()),
            pin,
            pout,
            model.endpoints.len(),
            providers.join(", ")
        );
    }
    let _ = writeln!(out, "{} models", list.len());
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
pub fn plan_command(catalog: &Catalog, request: &Value, seed: u64, as_json: bool) -> PlanOutput {
    let health = HealthSnapshot::default();
    let ctx = PlanContext {
        seed,
        health: &health,
        ..PlanContext::default()
    };
    let result = ChatRequest::from_value(request).and_then(|r| plan(catalog, &r, &ctx));
    match result {
        Ok(p) if as_json => PlanOutput {
            text: format!("{}\n", p.to_json()),
            failed: false,
        },
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
            let _ = writeln!(
                out,
                "\n  # {:<40} {:<24} {:>9} {:>9}  why",
                "model", "endpoint", "$/M in", "$/M out"
            );
            let m = Decimal::from(1_000_000);
            for (i, a) in p.attempts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:>3} {:<40} {:<24} {:>9} {:>9}  {}",
                    i + 1,
                    a.model,
                    a.tag,
                    (a.pricing.prompt * m).normalize(),
                    (a.pricing.completion * m).normalize(),
                    a.reason
                );
            }
            if !p.excluded.is_empty() {
                let _ = writeln!(out, "\nexcluded:");
                for e in &p.excluded {
                    let _ = writeln!(
                        out,
                        "    {:<40} {:<24} {:<20} {}",
                        e.model,
                        e.endpoint,
                        e.reason.as_str(),
                        e.detail
                    );
                }
            }
            let _ = writeln!(
                out,
                "\nprimary $/M in/out: {}/{}   worst case across fallbacks: {}/{}{}",
                p.primary_prices.prompt,
                p.primary_prices.completion,
                p.worst_case_prices.prompt,
                p.worst_case_prices.completion,
                if p.fallback_costs_more {
                    "   (a fallback costs more than the primary)"
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
            text: error_text(&e, as_json),
            failed: true,
        },
    }
}

/// Render an error for the terminal or as the OpenRouter envelope.
#[must_use]
pub fn error_text(e: &Error, as_json: bool) -> String {
    if as_json {
        return format!("{}\n", e.to_envelope());
    }
    let mut out = format!("error [{}] (HTTP {}): {e}\n", e.code(), e.http_status());
    if let Some(u) = e.unavailable() {
        for x in &u.excluded {
            let _ = writeln!(
                out,
                "    {:<40} {:<24} {:<20} {}",
                x.model,
                x.endpoint,
                x.reason.as_str(),
                x.detail
            );
        }
    }
    out
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
    let mut out = String::new();
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
            let _ = writeln!(out, "{k:<12} ${}", v.normalize());
        }
    }
    let _ = writeln!(out, "{:<12} ${}", "total", b.total);
    Ok(out)
}
