//! Cost: usage × unit prices with exact decimals.
//!
//! Steps, in order:
//! 1. Effective prices: start from the base pricing, apply every matching `overrides` entry in order (a later match
//!    wins per key; `min_prompt_tokens` matches when the prompt is strictly longer; a UTC window `[start, end)` may
//!    wrap midnight), then multiply every price by `1 − discount`.
//! 2. Prompt: uncached input (`prompt − cache reads − cache writes`) at `prompt`, cache reads at
//!    `input_cache_read`, 5-minute writes at `input_cache_write`, 1-hour writes at `input_cache_write_1h` (each
//!    falls back to the next more general price when the model lists none: 1h → 5m → prompt; read → prompt).
//! 3. Completion: all completion tokens at `completion`; when `internal_reasoning` is listed, the reasoning tokens
//!    inside the completion are priced at it instead.
//! 4. Fees: `request` × requests, `image` × input images, `web_search` × searches.
//! 5. Zero-completion insurance: no completion tokens and a blank or `error` finish reason → token and request
//!    charges are zero; web-search fees still apply.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::Pricing;
use crate::types::Usage;

/// Conditions that select override prices and insurance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostContext<'a> {
    /// Minute of the UTC day (0..1440) at request time; `None` ignores time-window overrides.
    pub utc_minute: Option<u16>,
    /// The response's finish reason (`None` when unknown or blank).
    pub finish_reason: Option<&'a str>,
}

/// Itemized cost in USD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// Uncached prompt tokens.
    #[serde(with = "rust_decimal::serde::str")]
    pub prompt: Decimal,
    /// Cache reads.
    #[serde(with = "rust_decimal::serde::str")]
    pub cache_read: Decimal,
    /// Cache writes (5 minutes and 1 hour).
    #[serde(with = "rust_decimal::serde::str")]
    pub cache_write: Decimal,
    /// Completion tokens other than separately priced reasoning.
    #[serde(with = "rust_decimal::serde::str")]
    pub completion: Decimal,
    /// Reasoning tokens priced at `internal_reasoning` (zero when the model has no such price).
    #[serde(with = "rust_decimal::serde::str")]
    pub reasoning: Decimal,
    /// Per-request fee.
    #[serde(with = "rust_decimal::serde::str")]
    pub request: Decimal,
    /// Per-image fee.
    #[serde(with = "rust_decimal::serde::str")]
    pub image: Decimal,
    /// Web-search fee.
    #[serde(with = "rust_decimal::serde::str")]
    pub web_search: Decimal,
    /// Sum of the above.
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// Zero-completion insurance applied.
    pub insured: bool,
    /// Indexes of the `overrides` entries that applied.
    pub overrides_applied: Vec<usize>,
}

impl CostBreakdown {
    /// The `usage.cost_details` object in OpenRouter's shape (numbers, USD): `upstream_inference_cost` (the whole
    /// provider charge: polyroute calls providers with the operator's own keys), `upstream_inference_prompt_cost`
    /// (uncached input, cache reads and writes, images, the request fee), `upstream_inference_completions_cost`
    /// (completion and reasoning) and, when web searches were billed, `server_tool_cost`. The decimal breakdown
    /// stays on the generation record.
    #[must_use]
    pub fn openrouter_details(&self) -> serde_json::Value {
        let mut m = serde_json::Map::with_capacity(4);
        for (k, v) in self.openrouter_detail_fields() {
            m.insert(k.into(), v.into());
        }
        serde_json::Value::Object(m)
    }

    /// The fields of [`CostBreakdown::openrouter_details`], in order, as `(name, USD)`.
    pub fn openrouter_detail_fields(&self) -> impl Iterator<Item = (&'static str, f64)> {
        let prompt = self.prompt + self.cache_read + self.cache_write + self.image + self.request;
        let completions = self.completion + self.reasoning;
        let web = !self.web_search.is_zero();
        [
            ("upstream_inference_cost", usd(self.total)),
            ("upstream_inference_prompt_cost", usd(prompt)),
            ("upstream_inference_completions_cost", usd(completions)),
            (
                "server_tool_cost",
                if web { usd(self.web_search) } else { 0.0 },
            ),
        ]
        .into_iter()
        .take(if web { 4 } else { 3 })
    }
}

/// A USD amount as a JSON number (OpenRouter's `cost` fields are numbers): the `f64` nearest the decimal, as
/// parsing its text gives.
#[must_use]
pub fn usd(d: Decimal) -> f64 {
    // Exact powers of ten in `f64` (10^22 is the largest).
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (m, scale) = (d.mantissa(), d.scale() as usize);
    // A mantissa and a power of ten both exact in `f64`: one correctly rounded division gives the nearest
    // `f64` to their quotient, which is what correctly rounded parsing of the text gives.
    if m.unsigned_abs() < 1 << 53 && scale < POW10.len() {
        #[allow(clippy::cast_precision_loss)] // below 2^53: exact
        let m = m as f64;
        return m / POW10[scale];
    }
    usd_by_text(d)
}

/// [`usd`] through the decimal's text (any mantissa and scale).
fn usd_by_text(d: Decimal) -> f64 {
    d.normalize().to_string().parse::<f64>().unwrap_or(0.0)
}

/// The prices that apply under `usage`/`ctx`, discount included, and the overrides used.
#[must_use]
pub fn effective_pricing(
    p: &Pricing,
    prompt_tokens: u64,
    utc_minute: Option<u16>,
) -> (Pricing, Vec<usize>) {
    let mut out = p.clone();
    out.overrides = Vec::new();
    let mut applied = Vec::new();
    for (i, o) in p.overrides.iter().enumerate() {
        if let Some(min) = o.min_prompt_tokens {
            if prompt_tokens <= min {
                continue;
            }
        }
        if let Some(w) = o.window {
            if !utc_minute.is_some_and(|t| w.contains(t)) {
                continue;
            }
        }
        applied.push(i);
        for &(k, d) in &o.prices {
            out.set(k, d);
        }
    }
    if let Some(disc) = p.discount {
        let f = Decimal::ONE - disc;
        let scale = |x: &mut Decimal| *x *= f;
        scale(&mut out.prompt);
        scale(&mut out.completion);
        for x in [
            &mut out.request,
            &mut out.image,
            &mut out.web_search,
            &mut out.internal_reasoning,
            &mut out.input_cache_read,
            &mut out.input_cache_write,
            &mut out.input_cache_write_1h,
            &mut out.audio,
        ]
        .into_iter()
        .flatten()
        {
            scale(x);
        }
        out.discount = None;
    }
    (out, applied)
}

/// The finish reason recorded for an embeddings answer (the vectors are the whole answer, so chat's waiver of
/// answers without completion tokens does not apply).
pub const EMBEDDING_FINISH: &str = "stop";

/// Price an embeddings request: `prompt_tokens` input tokens at the endpoint's prompt price (its embedding price;
/// long-prompt and time-window overrides apply as for chat).
#[must_use]
pub fn embedding_cost(
    pricing: &Pricing,
    prompt_tokens: u64,
    utc_minute: Option<u16>,
) -> CostBreakdown {
    let usage = Usage {
        prompt_tokens,
        total_tokens: prompt_tokens,
        ..Usage::default()
    };
    cost(
        pricing,
        &usage,
        CostContext {
            utc_minute,
            finish_reason: Some(EMBEDDING_FINISH),
        },
    )
}

/// Price `usage` under `pricing`.
#[must_use]
pub fn cost(pricing: &Pricing, usage: &Usage, ctx: CostContext<'_>) -> CostBreakdown {
    let (p, overrides_applied) = effective_pricing(pricing, usage.prompt_tokens, ctx.utc_minute);
    let d = |n: u64| Decimal::from(n);
    let pd = &usage.prompt_tokens_details;
    let reads = pd.cached_tokens.min(usage.prompt_tokens);
    let writes = pd.cache_write_tokens.min(usage.prompt_tokens - reads);
    let writes_1h = pd.cache_write_1h_tokens.min(writes);
    let writes_5m = writes - writes_1h;
    let uncached = usage.prompt_tokens - reads - writes;

    let read_price = p.input_cache_read.unwrap_or(p.prompt);
    let write_price = p.input_cache_write.unwrap_or(p.prompt);
    let write_1h_price = p
        .input_cache_write_1h
        .or(p.input_cache_write)
        .unwrap_or(p.prompt);

    let reasoning_tokens = usage
        .completion_tokens_details
        .reasoning_tokens
        .min(usage.completion_tokens);
    let (completion, reasoning) = match p.internal_reasoning {
        Some(r) => (
            d(usage.completion_tokens - reasoning_tokens) * p.completion,
            d(reasoning_tokens) * r,
        ),
        None => (d(usage.completion_tokens) * p.completion, Decimal::ZERO),
    };
    let mut b = CostBreakdown {
        prompt: d(uncached) * p.prompt,
        cache_read: d(reads) * read_price,
        cache_write: d(writes_5m) * write_price + d(writes_1h) * write_1h_price,
        completion,
        reasoning,
        request: p.request.map_or(Decimal::ZERO, |r| r * d(usage.requests)),
        image: p.image.map_or(Decimal::ZERO, |r| r * d(usage.images)),
        web_search: p
            .web_search
            .map_or(Decimal::ZERO, |r| r * d(usage.web_search_requests)),
        total: Decimal::ZERO,
        insured: false,
        overrides_applied,
    };
    let blank = ctx
        .finish_reason
        .is_none_or(|f| f.trim().is_empty() || f == "error");
    if usage.completion_tokens == 0 && blank {
        b.insured = true;
        b.prompt = Decimal::ZERO;
        b.cache_read = Decimal::ZERO;
        b.cache_write = Decimal::ZERO;
        b.completion = Decimal::ZERO;
        b.reasoning = Decimal::ZERO;
        b.request = Decimal::ZERO;
        b.image = Decimal::ZERO;
    }
    b.total = b.prompt
        + b.cache_read
        + b.cache_write
        + b.completion
        + b.reasoning
        + b.request
        + b.image
        + b.web_search;
    b.total = b.total.normalize();
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{PriceKey, PricingOverride, UtcWindow};

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn usage(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            ..Usage::default()
        }
    }

    #[test]
    fn plain_tokens() {
        let p = Pricing {
            prompt: dec("0.000003"),
            completion: dec("0.000015"),
            ..Pricing::default()
        };
        let c = cost(
            &p,
            &usage(1000, 500),
            CostContext {
                finish_reason: Some("stop"),
                ..CostContext::default()
            },
        );
        assert_eq!(c.total, dec("0.0105"));
    }

    #[test]
    fn cache_and_reasoning() {
        let p = Pricing {
            prompt: dec("0.000003"),
            completion: dec("0.000015"),
            input_cache_read: Some(dec("0.0000003")),
            input_cache_write: Some(dec("0.00000375")),
            input_cache_write_1h: Some(dec("0.000006")),
            internal_reasoning: Some(dec("0.00001")),
            ..Pricing::default()
        };
        let mut u = usage(10_000, 1000);
        u.prompt_tokens_details.cached_tokens = 6000;
        u.prompt_tokens_details.cache_write_tokens = 3000;
        u.prompt_tokens_details.cache_write_1h_tokens = 1000;
        u.completion_tokens_details.reasoning_tokens = 400;
        let c = cost(
            &p,
            &u,
            CostContext {
                finish_reason: Some("stop"),
                ..CostContext::default()
            },
        );
        assert_eq!(c.prompt, dec("0.003"));
        assert_eq!(c.cache_read, dec("0.0018"));
        assert_eq!(c.cache_write, dec("0.0075") + dec("0.006"));
        assert_eq!(c.completion, dec("0.009"));
        assert_eq!(c.reasoning, dec("0.004"));
    }

    #[test]
    fn overrides_and_windows() {
        let p = Pricing {
            prompt: dec("0.000001"),
            completion: dec("0.000004"),
            overrides: vec![
                PricingOverride {
                    min_prompt_tokens: Some(1000),
                    prices: vec![(PriceKey::Prompt, dec("0.000002"))],
                    ..PricingOverride::default()
                },
                PricingOverride {
                    window: Some(UtcWindow {
                        start: 22 * 60,
                        end: 6 * 60,
                    }),
                    prices: vec![(PriceKey::Completion, dec("0.000001"))],
                    ..PricingOverride::default()
                },
            ],
            ..Pricing::default()
        };
        let ctx = |m| CostContext {
            utc_minute: Some(m),
            finish_reason: Some("stop"),
        };
        assert_eq!(cost(&p, &usage(1000, 1), ctx(720)).prompt, dec("0.001"));
        assert_eq!(cost(&p, &usage(1001, 1), ctx(720)).prompt, dec("0.002002"));
        assert_eq!(
            cost(&p, &usage(10, 1), ctx(23 * 60)).completion,
            dec("0.000001")
        );
        assert_eq!(cost(&p, &usage(10, 1), ctx(60)).completion, dec("0.000001"));
        assert_eq!(
            cost(&p, &usage(10, 1), ctx(6 * 60)).completion,
            dec("0.000004")
        );
    }

    /// The division gives what parsing the text gives, zeros and negative amounts included.
    #[test]
    fn usd_matches_parsing_the_text() {
        let mut cases = vec![
            Decimal::ZERO,
            Decimal::new(0, 9),
            -Decimal::new(0, 3),
            Decimal::MAX,
            Decimal::MIN,
            dec("0.0105"),
            dec("0.000000000000000000000000001"),
            dec("1.5e-7"),
            dec("123456789.123456789"),
            Decimal::new((1 << 53) - 1, 22),
            Decimal::new(1 << 53, 22),
            Decimal::new(-(1 << 53) + 1, 7),
        ];
        // A deterministic spread of mantissas and scales (a linear congruential sequence).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = (x >> 58) as u32;
            let m = (x >> 6) as i64 >> (63 - bits.min(62));
            let scale = (x % 29) as u32;
            cases.push(Decimal::new(m, scale.min(28)));
        }
        for d in cases {
            assert_eq!(usd(d).to_bits(), usd_by_text(d).to_bits(), "{d:?}");
        }
    }

    #[test]
    fn insurance() {
        let p = Pricing {
            prompt: dec("0.000001"),
            completion: dec("0.000002"),
            web_search: Some(dec("0.004")),
            ..Pricing::default()
        };
        let mut u = usage(500, 0);
        u.web_search_requests = 1;
        let c = cost(
            &p,
            &u,
            CostContext {
                finish_reason: Some("error"),
                ..CostContext::default()
            },
        );
        assert!(c.insured);
        assert_eq!(c.total, dec("0.004"));
        let c = cost(
            &p,
            &u,
            CostContext {
                finish_reason: Some("stop"),
                ..CostContext::default()
            },
        );
        assert!(!c.insured);
        assert_eq!(c.total, dec("0.0045"));
    }
}
