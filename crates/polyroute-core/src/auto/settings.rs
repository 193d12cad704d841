//! Router settings carried in `plugins`: `auto-router` (`auto-beta-router` for `openrouter/auto-beta`) and
//! `pareto-router`, validated strictly. Plugins with other ids are left alone.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::types::ChatRequest;

/// Auto-router cost tier: a band of the price percentile among the candidate models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CostTier {
    /// Percentile [0, 20).
    #[default]
    Low,
    /// Percentile [20, 40).
    Medium,
    /// Percentile [40, 60).
    High,
    /// Percentile [60, 80).
    Xhigh,
    /// Percentile [80, 100].
    Max,
}

impl CostTier {
    /// Every tier, cheapest first.
    pub const ALL: [CostTier; 5] = [Self::Low, Self::Medium, Self::High, Self::Xhigh, Self::Max];

    /// Stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Xhigh => "xhigh",
            Self::Max => "max",
        }
    }

    /// Band index 0..=4.
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The tier of band index `i` (clamped).
    #[must_use]
    pub fn from_index(i: usize) -> Self {
        Self::ALL[i.min(4)]
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Settings of the `auto-router` plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoSettings {
    /// Glob patterns a model must match (empty: any model).
    pub allowed_models: Vec<String>,
    /// Glob patterns that remove a model (applied after `allowed_models`).
    pub excluded_models: Vec<String>,
    /// The cost band.
    pub cost_tier: CostTier,
    /// Reuse the model named by the last assistant message's `model` field while it is a candidate.
    pub pin_model: bool,
}

/// Where `openrouter/pareto-code` reads a model's price from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PriceSource {
    /// The input-token price.
    #[default]
    Prompt,
    /// (3 × input + 1 × output) / 4, a 3:1 input:output token mix.
    WeightedAvg,
}

/// Coding tier of `openrouter/pareto-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CodingTier {
    /// Normalized coding score below 0.33.
    Low,
    /// Normalized coding score in [0.33, 0.66).
    Medium,
    /// Normalized coding score of 0.66 or more.
    High,
}

impl CodingTier {
    /// The tier a normalized coding score falls in.
    #[must_use]
    pub fn of_score(score: f64) -> Self {
        if score >= 0.66 {
            Self::High
        } else if score >= 0.33 {
            Self::Medium
        } else {
            Self::Low
        }
    }

    /// Stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Settings of the `pareto-router` plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct ParetoSettings {
    /// Minimum normalized coding score, 0..=1 (default 0.66: the high tier).
    pub min_coding_score: f64,
    /// USD per million input tokens; when given, tiers are bypassed.
    pub max_price: Option<f64>,
    /// Which price orders the frontier.
    pub price_source: PriceSource,
}

impl Default for ParetoSettings {
    fn default() -> Self {
        Self {
            min_coding_score: 0.66,
            max_price: None,
            price_source: PriceSource::Prompt,
        }
    }
}

const AUTO_FIELDS: &str =
    "id, allowed_models, excluded_models, cost_tier, cost_quality_tradeoff, pin_model, enabled";
const PARETO_FIELDS: &str = "id, min_coding_score, max_price, price_source, enabled";
const MAX_PATTERNS: usize = 1024;
const MAX_PATTERN_LEN: usize = 1024;
const MAX_PATTERNS_TOTAL: usize = 65_536;

/// The plugins of `req` whose id is `id`, with their index.
fn plugins_with_id<'a>(
    req: &'a ChatRequest,
    id: &'a str,
) -> impl Iterator<Item = Result<(usize, &'a Map<String, Value>)>> {
    req.plugins
        .iter()
        .flatten()
        .enumerate()
        .filter_map(move |(i, p)| match p {
            Value::Object(o) => {
                (o.get("id").and_then(Value::as_str) == Some(id)).then_some(Ok((i, o)))
            }
            _ => Some(Err(Error::invalid(
                format!("plugins[{i}]"),
                "must be an object with an `id`",
            ))),
        })
}

fn bool_field(path: &str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| Error::invalid(path, "must be a boolean (true or false)"))
}

fn patterns(path: &str, v: &Value) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or_else(|| Error::invalid(path, "must be an array of model slug glob patterns"))?;
    if arr.len() > MAX_PATTERNS {
        return Err(Error::invalid(
            path,
            format!(
                "at most {MAX_PATTERNS} patterns are allowed, got {}",
                arr.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(arr.len());
    let mut total = 0;
    for (j, p) in arr.iter().enumerate() {
        let s = p.as_str().ok_or_else(|| {
            Error::invalid(
                format!("{path}[{j}]"),
                "must be a string glob pattern (`anthropic/*`, `openai/gpt-5*`)",
            )
        })?;
        if s.trim().is_empty() || s.chars().count() > MAX_PATTERN_LEN {
            return Err(Error::invalid(
                format!("{path}[{j}]"),
                format!("must be a non-empty pattern of at most {MAX_PATTERN_LEN} characters"),
            ));
        }
        total += s.len();
        out.push(s.trim().to_ascii_lowercase());
    }
    if total > MAX_PATTERNS_TOTAL {
        return Err(Error::invalid(
            path,
            format!("patterns may total at most {MAX_PATTERNS_TOTAL} characters"),
        ));
    }
    Ok(out)
}

/// Parse the `auto-router` settings (`plugin_id` is `auto-router` or `auto-beta-router`). Several plugins with the
/// id are applied in order. `enabled: false` keeps the defaults. `cost_quality_tradeoff` (deprecated, 0..=10) maps
/// to a tier — 0–1 low, 2–3 medium, 4–5 high, 6–7 xhigh, 8–10 max — unless `cost_tier` is given.
///
/// # Errors
/// [`Error::InvalidRequest`] naming the field (`plugins[0].cost_tier`) and the allowed values.
pub fn auto_settings(req: &ChatRequest, plugin_id: &str) -> Result<AutoSettings> {
    let mut out = AutoSettings::default();
    for entry in plugins_with_id(req, plugin_id) {
        let (i, o) = entry?;
        let mut s = AutoSettings::default();
        let mut tier: Option<CostTier> = None;
        let mut tradeoff: Option<CostTier> = None;
        let mut enabled = true;
        for (k, v) in o {
            let path = format!("plugins[{i}].{k}");
            match k.as_str() {
                "id" => {}
                "allowed_models" => s.allowed_models = patterns(&path, v)?,
                "excluded_models" => s.excluded_models = patterns(&path, v)?,
                "cost_tier" => {
                    let t = v.as_str().and_then(CostTier::parse).ok_or_else(|| {
                        Error::invalid(
                            &path,
                            format!("{v} is not one of low, medium, high, xhigh, max"),
                        )
                    })?;
                    tier = Some(t);
                }
                "cost_quality_tradeoff" => {
                    let n = v.as_u64().filter(|n| *n <= 10).ok_or_else(|| {
                        Error::invalid(&path, format!("{v} is not an integer from 0 to 10"))
                    })?;
                    tradeoff = Some(CostTier::from_index(n as usize / 2));
                }
                "pin_model" => s.pin_model = bool_field(&path, v)?,
                "enabled" => enabled = bool_field(&path, v)?,
                _ => {
                    return Err(Error::invalid(
                        &path,
                        format!("unknown auto-router setting; allowed: {AUTO_FIELDS}"),
                    ));
                }
            }
        }
        if enabled {
            s.cost_tier = tier.or(tradeoff).unwrap_or_default();
            out = s;
        }
    }
    Ok(out)
}

/// Parse the `pareto-router` settings.
///
/// # Errors
/// [`Error::InvalidRequest`] naming the field and the allowed values.
pub fn pareto_settings(req: &ChatRequest) -> Result<ParetoSettings> {
    let mut out = ParetoSettings::default();
    for entry in plugins_with_id(req, "pareto-router") {
        let (i, o) = entry?;
        let mut s = ParetoSettings::default();
        let mut enabled = true;
        for (k, v) in o {
            let path = format!("plugins[{i}].{k}");
            match k.as_str() {
                "id" => {}
                "min_coding_score" => {
                    s.min_coding_score = v
                        .as_f64()
                        .filter(|x| (0.0..=1.0).contains(x))
                        .ok_or_else(|| {
                            Error::invalid(&path, format!("{v} is not a number from 0 to 1"))
                        })?;
                }
                "max_price" => {
                    let x = match v {
                        Value::Null => None,
                        Value::String(t) => t.trim().parse::<f64>().ok(),
                        _ => v.as_f64(),
                    };
                    s.max_price = match (v, x) {
                        (Value::Null, _) => None,
                        (_, Some(x)) if x.is_finite() && x >= 0.0 => Some(x),
                        _ => {
                            return Err(Error::invalid(
                                &path,
                                format!(
                                "{v} is not a non-negative price in USD per million input tokens"
                            ),
                            ))
                        }
                    };
                }
                "price_source" => {
                    s.price_source = match v.as_str() {
                        Some("prompt") => PriceSource::Prompt,
                        Some("weighted_avg") => PriceSource::WeightedAvg,
                        _ => {
                            return Err(Error::invalid(
                                &path,
                                format!("{v} is not one of prompt, weighted_avg"),
                            ))
                        }
                    };
                }
                "enabled" => enabled = bool_field(&path, v)?,
                _ => {
                    return Err(Error::invalid(
                        &path,
                        format!("unknown pareto-router setting; allowed: {PARETO_FIELDS}"),
                    ));
                }
            }
        }
        if enabled {
            out = s;
        }
    }
    Ok(out)
}

/// Case-insensitive glob match of a model slug: `*` matches any run of characters (slashes included), `?` one
/// character; anything else matches itself. `pattern` must already be lower-case.
#[must_use]
pub fn glob_match(pattern: &str, slug: &str) -> bool {
    let p = pattern.as_bytes();
    let s = slug.as_bytes();
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si].to_ascii_lowercase()) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `slug` passes the allow list (empty: everything) and is not on the exclude list.
#[must_use]
pub fn allowed_by(settings: &AutoSettings, slug: &str) -> bool {
    (settings.allowed_models.is_empty()
        || settings.allowed_models.iter().any(|p| glob_match(p, slug)))
        && !settings.excluded_models.iter().any(|p| glob_match(p, slug))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("anthropic/*", "anthropic/claude-sonnet-4.6"));
        assert!(glob_match("openai/gpt-5*", "openai/gpt-5.2-mini"));
        assert!(!glob_match("openai/gpt-5*", "openai/gpt-4o"));
        assert!(glob_match("*/claude-*", "anthropic/claude-haiku-4.5"));
        assert!(!glob_match("*/claude-*", "anthropic/opus"));
        assert!(glob_match("x-ai/grok-4", "X-AI/Grok-4"));
        assert!(!glob_match("x-ai/grok-4", "x-ai/grok-4.1"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("**a**", "bab"));
    }
}
