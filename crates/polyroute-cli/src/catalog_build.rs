//! `polyroute catalog build`: generate the embedded default catalog from two public snapshots.
//!
//! Inputs: OpenRouter's `/api/v1/models` list (model facts and model-level prices) and LiteLLM's price map
//! (one entry per provider-specific model id, with its own price and limits). The provider mapping table
//! `catalog_providers.toml` turns LiteLLM providers into polyroute providers; LiteLLM keys are matched to OpenRouter
//! models through a normalised name key (see [`name_key`]).
//!
//! Rules, in order, for each non-router model:
//! 1. every LiteLLM chat entry of a mapped provider whose key normalises to the model's id or Hugging Face id becomes
//!    an endpoint with the entry's own price and limits (closed-weight models only from their maker's first-party
//!    provider or a cloud provider); `:batch` rows use the LiteLLM batch prices;
//! 2. a model whose author has a first-party provider gets that provider's endpoint with OpenRouter's model-level
//!    price when LiteLLM has none for it and the model has no other endpoint or is closed-weight;
//! 3. a model left without endpoints (and every `:free` row) gets one `openrouter` endpoint with OpenRouter's price
//!    and `top_provider` limits.
//!
//! Embedding models (rows with `output_modalities: [embeddings]` of OpenRouter's `output_modalities=all` list,
//! `openrouter-models-all.json` beside the chat list) are added after the chat models and take their endpoints from
//! LiteLLM's `mode: embedding` entries by the same rules; an embedding entry only ever matches an embedding model
//! and a chat entry only a chat model. Their endpoints carry `embedding_dimensions` (`output_vector_size`).
//!
//! Output is minified JSON with a stable order (models in OpenRouter order, endpoints by tag, providers by slug).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use polyroute_core::catalog::{
    Catalog, DataPolicy, Endpoint, EndpointStats, Model, PriceKey, Pricing, PricingOverride,
    ProviderInfo, Quantization,
};
use polyroute_core::dialect::Dialect;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The provider mapping table, kept in the repository as data.
pub const PROVIDERS_TOML: &str = include_str!("catalog_providers.toml");

/// Significant digits kept when converting LiteLLM's float prices to decimals (removes float noise such as
/// `1.9999999e-07`).
const PRICE_SIGNIFICANT_DIGITS: u32 = 6;

/// One row of the mapping table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRow {
    /// Provider slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Wire dialect of the provider's endpoints.
    pub dialect: Dialect,
    /// Dialect per model author where it differs from `dialect` (`*` = every other author): a host serving
    /// several API families (Vertex serves Gemini, Claude in Anthropic's form and partner models OpenAI-style).
    #[serde(default)]
    pub author_dialects: BTreeMap<String, Dialect>,
    /// Default base URL.
    pub base_url: String,
    /// API key environment variable.
    pub api_key_env: Option<String>,
    /// LiteLLM provider names, best first.
    #[serde(default)]
    pub litellm: Vec<String>,
    /// Key prefixes stripped to get the upstream model id.
    #[serde(default)]
    pub strip_prefixes: Vec<String>,
    /// OpenRouter authors this provider is first-party for.
    #[serde(default)]
    pub first_party: Vec<String>,
    /// May serve other makers' closed-weight models.
    #[serde(default)]
    pub cloud: bool,
    /// Only match models by these authors.
    #[serde(default)]
    pub only_authors: Vec<String>,
    /// Bedrock-style `vendor.model-v1:0` keys.
    #[serde(default)]
    pub bedrock_names: bool,
    /// First-party ids use dashes for dots.
    #[serde(default)]
    pub dashed_ids: bool,
    /// `"unknown"` when the data policy is an assumption.
    #[serde(default)]
    pub policy: Option<String>,
    /// Trains on prompts.
    pub training: bool,
    /// Retains prompts.
    pub retains_prompts: bool,
    /// Zero data retention.
    pub zdr: bool,
}

impl ProviderRow {
    /// The dialect an endpoint of this provider serving a model by `author` speaks, when it is not the
    /// provider's default (`None` = the default).
    #[must_use]
    pub fn endpoint_dialect(&self, author: &str) -> Option<Dialect> {
        let d = self
            .author_dialects
            .get(author)
            .or_else(|| self.author_dialects.get("*"))
            .copied()
            .unwrap_or(self.dialect);
        (d != self.dialect).then_some(d)
    }
}

/// The parsed mapping table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTable {
    /// Mapped providers.
    pub provider: Vec<ProviderRow>,
    /// Excluded LiteLLM providers with the reason.
    #[serde(default)]
    pub excluded: BTreeMap<String, String>,
}

impl ProviderTable {
    /// Parse the table embedded in the binary.
    ///
    /// # Errors
    /// If the TOML is malformed or a provider is listed twice.
    pub fn embedded() -> Result<Self> {
        Self::parse(PROVIDERS_TOML)
    }

    /// Parse a table.
    ///
    /// # Errors
    /// If the TOML is malformed or a provider is listed twice.
    pub fn parse(text: &str) -> Result<Self> {
        let table: Self = toml::from_str(text).context("parsing the provider mapping table")?;
        let mut seen_slug = BTreeSet::new();
        let mut seen_litellm = BTreeSet::new();
        for p in &table.provider {
            if !seen_slug.insert(p.slug.as_str()) {
                bail!("provider table: slug {:?} listed twice", p.slug);
            }
            for l in &p.litellm {
                if !seen_litellm.insert(l.as_str()) || table.excluded.contains_key(l) {
                    bail!("provider table: LiteLLM provider {l:?} mapped twice or both mapped and excluded");
                }
            }
        }
        Ok(table)
    }
}

/// Statistics printed after a build.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Models written.
    pub models: usize,
    /// Embedding models among them.
    pub embedding_models: usize,
    /// Router rows (no endpoints).
    pub routers: usize,
    /// Endpoints written.
    pub endpoints: usize,
    /// Models with two or more endpoints.
    pub models_with_2plus: usize,
    /// Non-router models without endpoints (should be zero).
    pub models_without_endpoints: usize,
    /// Endpoints per provider slug.
    pub per_provider: BTreeMap<String, usize>,
    /// Endpoints taken from LiteLLM.
    pub litellm_endpoints: usize,
    /// First-party endpoints with the OpenRouter price.
    pub first_party_fallbacks: usize,
    /// `openrouter` default endpoints.
    pub openrouter_fallbacks: usize,
    /// LiteLLM chat entries of mapped providers that matched no model, by LiteLLM provider.
    pub unmatched_by_provider: BTreeMap<String, usize>,
    /// LiteLLM chat entries skipped as excluded or unmapped providers, by LiteLLM provider.
    pub excluded_by_provider: BTreeMap<String, usize>,
    /// LiteLLM entries matched to a closed-weight model of another maker by a non-cloud host (skipped as resale).
    pub resale_skipped: usize,
    /// Size of the output in bytes.
    pub bytes: usize,
}

impl Stats {
    /// Human-readable report.
    #[must_use]
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "models: {} ({} routers, {} embedding models)",
            self.models, self.routers, self.embedding_models
        );
        let _ = writeln!(
            s,
            "endpoints: {} (litellm {}, first-party at OpenRouter price {}, openrouter default {})",
            self.endpoints,
            self.litellm_endpoints,
            self.first_party_fallbacks,
            self.openrouter_fallbacks
        );
        let _ = writeln!(s, "models with >=2 endpoints: {}", self.models_with_2plus);
        let _ = writeln!(
            s,
            "non-router models without endpoints: {}",
            self.models_without_endpoints
        );
        let _ = writeln!(s, "output size: {} bytes", self.bytes);
        let _ = writeln!(s, "endpoints per provider:");
        for (p, n) in &self.per_provider {
            let _ = writeln!(s, "  {p:<20} {n}");
        }
        let _ = writeln!(
            s,
            "unmatched LiteLLM chat entries by provider (mapped providers):"
        );
        for (p, n) in &self.unmatched_by_provider {
            let _ = writeln!(s, "  {p:<28} {n}");
        }
        let _ = writeln!(
            s,
            "skipped as closed-weight resale: {}",
            self.resale_skipped
        );
        let excluded: usize = self.excluded_by_provider.values().sum();
        let _ = writeln!(
            s,
            "LiteLLM chat entries of excluded/unmapped providers: {excluded} across {} providers",
            self.excluded_by_provider.len()
        );
        s
    }
}

/// Result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The catalog file (minified JSON, trailing newline).
    pub json: String,
    /// Statistics.
    pub stats: Stats,
}

/// Build the catalog from the two source texts with the embedded mapping table.
///
/// # Errors
/// If an input is malformed or the result fails catalog validation.
pub fn build(openrouter_json: &str, litellm_json: &str) -> Result<BuildOutput> {
    build_with_table(openrouter_json, litellm_json, &ProviderTable::embedded()?)
}

/// Build the catalog with embedding models: `openrouter_all_json` is OpenRouter's `output_modalities=all` list,
/// from which only the embedding rows are taken.
///
/// # Errors
/// If an input is malformed or the result fails catalog validation.
pub fn build_all(
    openrouter_json: &str,
    openrouter_all_json: &str,
    litellm_json: &str,
) -> Result<BuildOutput> {
    build_with_tables(
        openrouter_json,
        Some(openrouter_all_json),
        litellm_json,
        &ProviderTable::embedded()?,
    )
}

/// The OpenRouter `output_modalities=all` list expected beside the chat list (`openrouter-models-all.json`).
#[must_use]
pub fn all_models_path(openrouter: &Path) -> PathBuf {
    openrouter.with_file_name("openrouter-models-all.json")
}

/// Default input and output paths, relative to the repository root.
#[must_use]
pub fn default_paths(repo_root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let data = repo_root.join("../shared/data/catalog");
    (
        data.join("openrouter-models.json"),
        data.join("litellm_model_prices.json"),
        repo_root.join("crates/polyroute-core/data/catalog.json"),
    )
}

/// Read the inputs, build, and write the output; returns the statistics.
///
/// # Errors
/// On I/O errors or build errors.
pub fn run(openrouter: &Path, litellm: &Path, out: &Path, check: bool) -> Result<Stats> {
    let or_text = std::fs::read_to_string(openrouter)
        .with_context(|| format!("reading {}", openrouter.display()))?;
    let ll_text = std::fs::read_to_string(litellm)
        .with_context(|| format!("reading {}", litellm.display()))?;
    let all = all_models_path(openrouter);
    let all_text =
        std::fs::read_to_string(&all).with_context(|| format!("reading {}", all.display()))?;
    let output = build_all(&or_text, &all_text, &ll_text)?;
    if check {
        let current =
            std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
        if current != output.json {
            bail!("{} is stale: run `polyroute catalog build`", out.display());
        }
    } else {
        std::fs::write(out, &output.json).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(output.stats)
}

// ---------------------------------------------------------------------------------------------------------------
// Name normalisation
// ---------------------------------------------------------------------------------------------------------------

/// A normalised LiteLLM or OpenRouter model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey {
    /// Tokens joined with `-` (`llama-3-3-70-b`), trailing variant words removed.
    pub key: String,
    /// Like `key` but with trailing variant words kept (`gpt-4-turbo`): how OpenRouter slugs are indexed.
    pub full: String,
    /// The key without a trailing release date, when there was one.
    pub undated: Option<String>,
    /// Endpoint variant word (`turbo`, `fast`, `lightning`).
    pub variant: Option<String>,
    /// Quantization word (`fp8`).
    pub quantization: Option<Quantization>,
}

fn quant_word(w: &str) -> Option<Quantization> {
    Some(match w {
        "fp8" => Quantization::Fp8,
        "fp4" => Quantization::Fp4,
        "nvfp4" => Quantization::Nvfp4,
        "mxfp4" => Quantization::Mxfp4,
        "fp6" => Quantization::Fp6,
        "fp16" => Quantization::Fp16,
        "bf16" => Quantization::Bf16,
        "fp32" => Quantization::Fp32,
        "int4" => Quantization::Int4,
        "int8" => Quantization::Int8,
        _ => return None,
    })
}

fn is_date_word(w: &str) -> bool {
    w.len() == 8 && w.starts_with("20") && w.bytes().all(|b| b.is_ascii_digit())
}

/// Normalise a model name (the last path segment of an id): lowercase, Fireworks `3p3` → `3.3`, split into words on
/// punctuation, peel trailing quantization/variant words, drop `instruct`/`hf`/`maas`, split words at letter/digit
/// boundaries, drop a `v` before a version number and `meta` before `llama`, and join with `-`. A trailing
/// `YYYYMMDD` or `YYYY-MM-DD` date is reported separately so dated provider ids can match undated slugs.
#[must_use]
pub fn name_key(name: &str) -> NameKey {
    let lower = name.to_ascii_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut cleaned = String::with_capacity(lower.len());
    for (i, &c) in chars.iter().enumerate() {
        let fireworks_point = c == 'p'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        cleaned.push(if fireworks_point { '.' } else { c });
    }
    let mut words: Vec<&str> = cleaned
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut variant = None;
    let mut quantization = None;
    let mut variant_words: Vec<&str> = Vec::new();
    while let Some(&last) = words.last() {
        if let Some(q) = quant_word(last) {
            quantization.get_or_insert(q);
        } else if matches!(last, "turbo" | "fast" | "lightning") && words.len() > 1 {
            variant.get_or_insert_with(|| last.to_string());
            variant_words.insert(0, last);
        } else if !matches!(last, "instruct" | "hf" | "maas") {
            break;
        }
        words.pop();
    }
    words.retain(|w| !matches!(*w, "instruct" | "hf"));
    let full_words: Vec<&str> = words.iter().chain(variant_words.iter()).copied().collect();
    let full = tokens_key(&full_words);
    let mut dated_len = None;
    if let Some(&last) = words.last() {
        if is_date_word(last) {
            dated_len = Some(words.len() - 1);
        } else if words.len() >= 4 {
            let n = words.len();
            let (y, m, d) = (words[n - 3], words[n - 2], words[n - 1]);
            if y.len() == 4
                && y.starts_with("20")
                && m.len() == 2
                && d.len() == 2
                && (y.to_string() + m + d).bytes().all(|b| b.is_ascii_digit())
            {
                dated_len = Some(n - 3);
            }
        }
    }
    let key = tokens_key(&words);
    let undated = dated_len
        .filter(|&n| n > 0)
        .map(|n| tokens_key(&words[..n]));
    NameKey {
        key,
        full,
        undated,
        variant,
        quantization,
    }
}

fn tokens_key(words: &[&str]) -> String {
    let mut tokens: Vec<String> = Vec::new();
    for w in words {
        let mut runs: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut cur_digit = None;
        for c in w.chars() {
            let d = c.is_ascii_digit();
            if cur_digit.is_some_and(|x| x != d) {
                runs.push(std::mem::take(&mut cur));
            }
            cur.push(c);
            cur_digit = Some(d);
        }
        if !cur.is_empty() {
            runs.push(cur);
        }
        for (i, r) in runs.iter().enumerate() {
            let next_is_digit = runs
                .get(i + 1)
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()));
            if r == "v" && next_is_digit {
                continue;
            }
            tokens.push(r.clone());
        }
    }
    let mut out: Vec<&str> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t == "meta" && tokens.get(i + 1).is_some_and(|n| n == "llama") {
            continue;
        }
        out.push(t);
    }
    out.join("-")
}

fn last_segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

// ---------------------------------------------------------------------------------------------------------------
// LiteLLM entries
// ---------------------------------------------------------------------------------------------------------------

/// A LiteLLM entry resolved to a provider and a name key.
#[derive(Debug)]
struct Candidate<'a> {
    entry: &'a Map<String, Value>,
    provider: usize,
    provider_model_id: String,
    name: NameKey,
}

const BEDROCK_REGION_PREFIXES: &[&str] = &[
    "us", "eu", "apac", "global", "au", "jp", "ca", "us-gov", "apac-gov",
];

/// The upstream model id and matchable name of a LiteLLM key for provider `p`; `None` when the key should be
/// skipped (region- or commitment-scoped duplicates, fine-tunes, routers).
fn resolve_key(key: &str, p: &ProviderRow) -> Option<(String, String, bool)> {
    if key.starts_with("ft:") || key.contains("/routers/") || key.contains("commitment") {
        return None;
    }
    let mut id = key;
    for prefix in &p.strip_prefixes {
        if let Some(rest) = id.strip_prefix(prefix.as_str()) {
            id = rest;
            break;
        }
    }
    if p.bedrock_names && id.contains('/') {
        // `bedrock/us-east-1/...`: region-scoped price listings.
        return None;
    }
    if p.slug == "azure" && id.contains('/') {
        // `azure/eu/...`, `azure/global-standard/...`: regional deployment prices.
        return None;
    }
    let mut name = last_segment(id).to_string();
    let mut regional = false;
    if let Some(at) = name.find('@') {
        name.truncate(at);
    }
    if p.bedrock_names {
        let mut parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 2 && BEDROCK_REGION_PREFIXES.contains(&parts[0]) {
            parts.remove(0);
            regional = true;
        }
        if parts.len() >= 2
            && parts[0]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            let vendor = parts.remove(0);
            let rest = parts.join(".");
            name = if rest.starts_with('v') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
                format!("{vendor}-{rest}")
            } else {
                rest
            };
        }
        // `-v1:0`, `-1:0`, `:0`, `-v1`
        if let Some(colon) = name.rfind(':') {
            name.truncate(colon);
        }
        if let Some(dash) = name.rfind('-') {
            let tail = &name[dash + 1..];
            let digits = tail.strip_prefix('v').unwrap_or(tail);
            if tail.starts_with('v')
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                name.truncate(dash);
            }
        }
    }
    Some((id.to_string(), name, regional))
}

fn num(entry: &Map<String, Value>, field: &str) -> Option<Decimal> {
    let v = entry.get(field)?;
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let d = text
        .parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())?;
    if d.is_sign_negative() {
        return None;
    }
    Some(
        d.round_sf(PRICE_SIGNIFICANT_DIGITS)
            .unwrap_or(d)
            .normalize(),
    )
}

fn uint(entry: &Map<String, Value>, field: &str) -> Option<u64> {
    entry.get(field).and_then(Value::as_u64).filter(|&n| n > 0)
}

fn flag(entry: &Map<String, Value>, field: &str) -> Option<bool> {
    entry.get(field).and_then(Value::as_bool)
}

/// Prices of a LiteLLM entry; `batch` selects the `_batches` prices. `None` when the entry has no token prices.
fn litellm_pricing(entry: &Map<String, Value>, batch: bool) -> Option<Pricing> {
    let sfx = if batch { "_batches" } else { "" };
    let prompt = num(entry, &format!("input_cost_per_token{sfx}"))?;
    let embedding = entry.get("mode").and_then(Value::as_str) == Some("embedding");
    // An embedding entry may omit its (zero) output price.
    let completion = num(entry, &format!("output_cost_per_token{sfx}"))
        .or_else(|| embedding.then_some(Decimal::ZERO))?;
    let mut p = Pricing {
        prompt,
        completion,
        input_cache_read: num(entry, &format!("cache_read_input_token_cost{sfx}")),
        input_cache_write: num(entry, &format!("cache_creation_input_token_cost{sfx}")),
        ..Pricing::default()
    };
    if !batch {
        p.input_cache_write_1h = num(entry, "cache_creation_input_token_cost_above_1hr");
        p.audio = num(entry, "input_cost_per_audio_token");
        p.audio_output = num(entry, "output_cost_per_audio_token");
        p.internal_reasoning = num(entry, "output_cost_per_reasoning_token");
        // Long-prompt tiers: `input_cost_per_token_above_200k_tokens` and friends.
        let mut tiers: BTreeMap<u64, BTreeMap<PriceKey, Decimal>> = BTreeMap::new();
        for (field, price_key) in [
            ("input_cost_per_token_above_", PriceKey::Prompt),
            ("output_cost_per_token_above_", PriceKey::Completion),
            (
                "cache_read_input_token_cost_above_",
                PriceKey::InputCacheRead,
            ),
            (
                "cache_creation_input_token_cost_above_",
                PriceKey::InputCacheWrite,
            ),
        ] {
            for (k, _) in entry.iter() {
                let Some(rest) = k.strip_prefix(field) else {
                    continue;
                };
                let Some(thousands) = rest.strip_suffix("k_tokens") else {
                    continue;
                };
                let Ok(t) = thousands.parse::<u64>() else {
                    continue;
                };
                if let Some(d) = num(entry, k) {
                    tiers.entry(t * 1000).or_default().insert(price_key, d);
                }
            }
        }
        p.overrides = tiers
            .into_iter()
            .map(|(min, prices)| PricingOverride {
                min_prompt_tokens: Some(min),
                prices: prices.into_iter().collect(),
                ..PricingOverride::default()
            })
            .collect();
    }
    Some(p)
}

// ---------------------------------------------------------------------------------------------------------------
// OpenRouter models
// ---------------------------------------------------------------------------------------------------------------

const MODEL_FIELDS: &[&str] = &[
    "id",
    "canonical_slug",
    "hugging_face_id",
    "name",
    "created",
    "context_length",
    "architecture",
    "pricing",
    "top_provider",
    "supported_parameters",
    "default_parameters",
    "reasoning",
    "knowledge_cutoff",
    "expiration_date",
    "alias_target",
];

/// Keep the facts of an OpenRouter row (no description, links or other prose) and parse it into a [`Model`].
fn model_facts(row: &Value, index: usize) -> Result<Model> {
    let obj = row
        .as_object()
        .ok_or_else(|| anyhow!("openrouter data[{index}]: expected an object"))?;
    let mut out = Map::new();
    for &f in MODEL_FIELDS {
        if let Some(v) = obj.get(f) {
            if v.is_null() && f != "context_length" {
                continue;
            }
            out.insert(f.to_string(), v.clone());
        }
    }
    if let Some(Value::String(s)) = out.get("hugging_face_id") {
        if s.is_empty() {
            out.remove("hugging_face_id");
        }
    }
    if let Some(pricing) = out.get_mut("pricing") {
        normalize_overrides(pricing);
    }
    if let Some(aa) = obj
        .get("benchmarks")
        .and_then(|b| b.get("artificial_analysis"))
        .and_then(Value::as_object)
    {
        let numeric: Map<String, Value> = aa
            .iter()
            .filter(|(_, v)| v.is_number())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !numeric.is_empty() {
            let mut b = Map::new();
            b.insert("artificial_analysis".into(), Value::Object(numeric));
            out.insert("benchmarks".into(), Value::Object(b));
        }
    }
    let id = out
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    serde_path_to_model(Value::Object(out))
        .with_context(|| format!("openrouter data[{index}] ({id})"))
}

fn serde_path_to_model(v: Value) -> Result<Model> {
    serde_json::from_value::<Model>(v).map_err(|e| anyhow!("{e}"))
}

/// OpenRouter writes `utc_start`/`utc_end` as numbers (`100` = 01:00); the catalog uses `HHMM` strings.
fn normalize_overrides(pricing: &mut Value) {
    let Some(overrides) = pricing.get_mut("overrides").and_then(Value::as_array_mut) else {
        return;
    };
    for o in overrides {
        let Some(obj) = o.as_object_mut() else {
            continue;
        };
        for k in ["utc_start", "utc_end"] {
            if let Some(n) = obj.get(k).and_then(Value::as_u64) {
                obj.insert(k.to_string(), Value::String(format!("{n:04}")));
            }
        }
    }
}

fn alnum_lower(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// When the provider's id names an organisation (`OpenPipe/Qwen3-14B-Instruct`), it must resemble the model's author
/// or Hugging Face organisation; this keeps third-party fine-tunes from matching the base model.
fn org_compatible(provider_model_id: &str, model: &Model) -> bool {
    let segs: Vec<&str> = provider_model_id.split('/').collect();
    if segs.len() < 2 {
        return true;
    }
    let org = alnum_lower(segs[segs.len() - 2]);
    if org.is_empty() || matches!(org.as_str(), "models" | "cf") {
        return true;
    }
    let mut owners = vec![alnum_lower(author(&model.id))];
    if let Some(hf) = model.hugging_face_id.as_deref().filter(|h| h.contains('/')) {
        owners.push(alnum_lower(author(hf)));
    }
    owners
        .iter()
        .any(|o| !o.is_empty() && (org.contains(o.as_str()) || o.contains(org.as_str())))
}

fn author(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

fn variant(id: &str) -> Option<&str> {
    id.split_once(':').map(|(_, v)| v)
}

fn is_closed(m: &Model) -> bool {
    m.hugging_face_id.as_deref().is_none_or(str::is_empty)
}

/// Parameters an endpoint accepts: the model's list minus what the LiteLLM flags rule out.
fn endpoint_params(model: &Model, entry: &Map<String, Value>) -> Vec<String> {
    let no_tools = flag(entry, "supports_function_calling") == Some(false);
    let no_tool_choice = no_tools || flag(entry, "supports_tool_choice") == Some(false);
    let no_schema = flag(entry, "supports_response_schema") == Some(false);
    let no_reasoning = flag(entry, "supports_reasoning") == Some(false);
    model
        .supported_parameters
        .iter()
        .filter(|p| match p.as_str() {
            "tools" | "parallel_tool_calls" => !no_tools,
            "tool_choice" => !no_tool_choice,
            "structured_outputs" | "response_format" => !no_schema,
            "reasoning" | "include_reasoning" | "reasoning_effort" => !no_reasoning,
            _ => true,
        })
        .cloned()
        .collect()
}

fn policy(p: &ProviderRow) -> DataPolicy {
    DataPolicy {
        training: p.training,
        retains_prompts: p.retains_prompts,
        zdr: p.zdr,
    }
}

fn fallback_endpoint(
    model: &Model,
    p: &ProviderRow,
    provider_model_id: String,
) -> Option<Endpoint> {
    let context_length = model
        .top_provider
        .context_length
        .or(model.context_length)
        .filter(|&c| c > 0)?;
    Some(Endpoint {
        provider: p.slug.clone(),
        provider_name: p.name.clone(),
        tag: p.slug.clone(),
        provider_model_id: Some(provider_model_id),
        quantization: None,
        context_length,
        max_completion_tokens: model.top_provider.max_completion_tokens,
        max_prompt_tokens: None,
        pricing: model.pricing.clone(),
        supported_parameters: model.supported_parameters.clone(),
        data_policy: policy(p),
        is_moderated: model.top_provider.is_moderated,
        service_tier: None,
        status: 0,
        stats: EndpointStats::default(),
        input_modalities: None,
        supports_implicit_caching: false,
        dialect: p.endpoint_dialect(author(&model.id)),
        embedding_dimensions: None,
    })
}

/// Build the catalog with an explicit mapping table.
///
/// # Errors
/// If an input is malformed or the result fails catalog validation.
#[allow(clippy::too_many_lines)]
pub fn build_with_table(
    openrouter_json: &str,
    litellm_json: &str,
    table: &ProviderTable,
) -> Result<BuildOutput> {
    build_with_tables(openrouter_json, None, litellm_json, table)
}

/// Embedding rows of OpenRouter's `output_modalities=all` list that the chat list lacks.
fn embedding_rows(openrouter_all_json: &str, known: &[Model]) -> Result<Vec<Model>> {
    let all: Value = serde_json::from_str(openrouter_all_json)
        .context("parsing the OpenRouter all-modalities models file")?;
    let rows = all
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("OpenRouter all-modalities file: expected `data` array"))?;
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let embedding = r
            .pointer("/architecture/output_modalities")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|m| m.as_str() == Some("embeddings")));
        if !embedding {
            continue;
        }
        let m = model_facts(r, i).context("in the all-modalities file")?;
        if !known.iter().any(|k| k.id == m.id) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Build with an explicit mapping table, optionally adding the embedding models of the all-modalities list.
///
/// # Errors
/// If an input is malformed or the result fails catalog validation.
#[allow(clippy::too_many_lines)]
pub fn build_with_tables(
    openrouter_json: &str,
    openrouter_all_json: Option<&str>,
    litellm_json: &str,
    table: &ProviderTable,
) -> Result<BuildOutput> {
    let or: Value =
        serde_json::from_str(openrouter_json).context("parsing the OpenRouter models file")?;
    let rows = or
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("OpenRouter models file: expected `data` array"))?;
    let mut models = rows
        .iter()
        .enumerate()
        .map(|(i, r)| model_facts(r, i))
        .collect::<Result<Vec<_>>>()?;
    if let Some(all) = openrouter_all_json {
        let extra = embedding_rows(all, &models)?;
        models.extend(extra);
    }

    let ll: Value = serde_json::from_str(litellm_json).context("parsing the LiteLLM price map")?;
    let ll = ll
        .as_object()
        .ok_or_else(|| anyhow!("LiteLLM price map: expected an object"))?;

    let mut stats = Stats::default();

    // Index of base (non-variant, non-router) models by normalised name; lower priority value wins.
    let mut index: HashMap<String, (u8, usize)> = HashMap::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, m) in models.iter().enumerate() {
        by_id.insert(m.id.clone(), i);
        if m.is_router() || variant(&m.id).is_some() {
            continue;
        }
        // Embedding models live in their own key space: `e` + key.
        let kind = if m.is_embedding() { "e" } else { "" };
        let own = last_segment(&m.id);
        let mut keys = vec![
            (0u8, format!("={}", own.to_ascii_lowercase())),
            (1, name_key(own).full),
        ];
        if let Some(hf) = m.hugging_face_id.as_deref().filter(|s| !s.is_empty()) {
            keys.push((0, format!("={}", last_segment(hf).to_ascii_lowercase())));
            keys.push((2, name_key(last_segment(hf)).full));
        }
        for (prio, k) in keys {
            let k = format!("{kind}{k}");
            match index.get(&k) {
                Some(&(p, j)) if (p, models[j].id.len()) <= (prio, m.id.len()) => {}
                _ => {
                    index.insert(k, (prio, i));
                }
            }
        }
    }

    let litellm_to_provider: HashMap<&str, (usize, usize)> = table
        .provider
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            p.litellm
                .iter()
                .enumerate()
                .map(move |(rank, l)| (l.as_str(), (pi, rank)))
        })
        .collect();

    // Best candidate per (model, endpoint tag).
    type Score = (bool, bool, usize, usize, String);
    let mut chosen: BTreeMap<(usize, String), (Score, Candidate<'_>)> = BTreeMap::new();
    for (key, entry) in ll {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let Some(lp) = entry.get("litellm_provider").and_then(Value::as_str) else {
            continue;
        };
        let mode = entry.get("mode").and_then(Value::as_str).unwrap_or("chat");
        let kind = match mode {
            "chat" | "responses" => "",
            "embedding" if openrouter_all_json.is_some() => "e",
            _ => continue,
        };
        let look = |k: &str| index.get(&format!("{kind}{k}"));
        let Some(&(pi, rank)) = litellm_to_provider.get(lp) else {
            *stats
                .excluded_by_provider
                .entry(lp.to_string())
                .or_default() += 1;
            continue;
        };
        let p = &table.provider[pi];
        let Some((provider_model_id, name, regional)) = resolve_key(key, p) else {
            continue;
        };
        let mut nk = name_key(&name);
        let exact = look(&format!("={}", name.to_ascii_lowercase()))
            .or_else(|| look(&nk.full))
            .map(|&(_, i)| (i, false));
        if exact.is_some() {
            // The variant word is part of the model's own name (`gpt-4-turbo`), not an endpoint variant.
            nk.variant = None;
        }
        let hit = exact
            .or_else(|| look(&nk.key).map(|&(_, i)| (i, false)))
            .or_else(|| {
                nk.undated
                    .as_ref()
                    .and_then(|u| look(u))
                    .map(|&(_, i)| (i, true))
            });
        let Some((mi, undated)) = hit else {
            *stats
                .unmatched_by_provider
                .entry(lp.to_string())
                .or_default() += 1;
            continue;
        };
        let model = &models[mi];
        let a = author(&model.id);
        if !org_compatible(&provider_model_id, model) {
            *stats
                .unmatched_by_provider
                .entry(lp.to_string())
                .or_default() += 1;
            continue;
        }
        if !p.only_authors.is_empty() && !p.only_authors.iter().any(|x| x == a) {
            *stats
                .unmatched_by_provider
                .entry(lp.to_string())
                .or_default() += 1;
            continue;
        }
        if is_closed(model) && !p.cloud && !p.first_party.iter().any(|x| x == a) {
            stats.resale_skipped += 1;
            continue;
        }
        if litellm_pricing(entry, false).is_none() {
            *stats
                .unmatched_by_provider
                .entry(lp.to_string())
                .or_default() += 1;
            continue;
        }
        let suffix = nk
            .variant
            .clone()
            .or_else(|| nk.quantization.map(|q| q.as_str().to_string()));
        let tag = match &suffix {
            Some(s) => format!("{}/{s}", p.slug),
            None => p.slug.clone(),
        };
        let score: Score = (
            undated,
            regional,
            rank,
            provider_model_id.len(),
            provider_model_id.clone(),
        );
        let cand = Candidate {
            entry,
            provider: pi,
            provider_model_id,
            name: nk,
        };
        match chosen.get(&(mi, tag.clone())) {
            Some((s, _)) if *s <= score => {}
            _ => {
                chosen.insert((mi, tag), (score, cand));
            }
        }
    }

    // Endpoints for base models from LiteLLM.
    let mut endpoints: Vec<Vec<Endpoint>> = vec![Vec::new(); models.len()];
    let mut base_candidates: Vec<Vec<(String, &Candidate<'_>)>> = vec![Vec::new(); models.len()];
    for ((mi, tag), (_, c)) in &chosen {
        let model = &models[*mi];
        let Some(ep) = litellm_endpoint(model, &table.provider[c.provider], tag, c, false) else {
            continue;
        };
        endpoints[*mi].push(ep);
        base_candidates[*mi].push((tag.clone(), c));
        stats.litellm_endpoints += 1;
    }
    // Variants: `:batch` rows take LiteLLM batch prices from the base model's candidates; `:thinking` and other
    // variants share the base model's endpoints; `:free` rows are OpenRouter-only.
    for mi in 0..models.len() {
        let Some(v) = variant(&models[mi].id) else {
            continue;
        };
        if models[mi].is_router() || v == "free" {
            continue;
        }
        let Some(&base) = by_id.get(models[mi].base_id()) else {
            continue;
        };
        let cands = base_candidates[base].clone();
        for (tag, c) in cands {
            let ep = litellm_endpoint(
                &models[mi],
                &table.provider[c.provider],
                &tag,
                c,
                v == "batch",
            );
            if let Some(ep) = ep {
                endpoints[mi].push(ep);
                stats.litellm_endpoints += 1;
            }
        }
    }

    let first_party: HashMap<&str, usize> = table
        .provider
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| p.first_party.iter().map(move |a| (a.as_str(), pi)))
        .collect();
    let openrouter = table
        .provider
        .iter()
        .find(|p| p.slug == "openrouter")
        .ok_or_else(|| anyhow!("provider table: the `openrouter` default provider is missing"))?;

    for (mi, m) in models.iter_mut().enumerate() {
        let mut eps = std::mem::take(&mut endpoints[mi]);
        if m.is_router() {
            stats.routers += 1;
            m.endpoints = Vec::new();
            continue;
        }
        let free = variant(&m.id) == Some("free");
        if !free {
            if let Some(&pi) = first_party.get(author(&m.id)) {
                let p = &table.provider[pi];
                let has_own = eps.iter().any(|e| e.provider == p.slug);
                if !has_own && (eps.is_empty() || is_closed(m)) {
                    let base = last_segment(m.base_id());
                    let upstream = if p.dashed_ids {
                        base.replace('.', "-")
                    } else {
                        base.to_string()
                    };
                    if let Some(ep) = fallback_endpoint(m, p, upstream) {
                        eps.push(ep);
                        stats.first_party_fallbacks += 1;
                    }
                }
            }
        }
        if eps.is_empty() {
            if let Some(mut ep) = fallback_endpoint(m, openrouter, m.id.clone()) {
                ep.is_moderated = false;
                eps.push(ep);
                stats.openrouter_fallbacks += 1;
            }
        }
        eps.sort_by(|a, b| a.tag.cmp(&b.tag));
        if eps.is_empty() {
            stats.models_without_endpoints += 1;
        }
        if eps.len() >= 2 {
            stats.models_with_2plus += 1;
        }
        for e in &eps {
            *stats.per_provider.entry(e.provider.clone()).or_default() += 1;
        }
        stats.endpoints += eps.len();
        m.endpoints = eps;
    }
    stats.models = models.len();
    stats.embedding_models = models.iter().filter(|m| m.is_embedding()).count();

    let used: BTreeSet<&str> = models
        .iter()
        .flat_map(|m| m.endpoints.iter().map(|e| e.provider.as_str()))
        .collect();
    let mut providers: Vec<ProviderInfo> = table
        .provider
        .iter()
        .filter(|p| used.contains(p.slug.as_str()))
        .map(|p| ProviderInfo {
            slug: p.slug.clone(),
            name: p.name.clone(),
            dialect: p.dialect,
            base_url: p.base_url.clone(),
            api_key_env: p.api_key_env.clone(),
        })
        .collect();
    providers.sort_by(|a, b| a.slug.cmp(&b.slug));

    let file = serde_json::json!({ "version": 1, "providers": providers, "models": models });
    let mut json = serde_json::to_string(&file).context("serializing the catalog")?;
    json.push('\n');
    Catalog::from_json(&json).map_err(|e| anyhow!("generated catalog failed validation: {e}"))?;
    stats.bytes = json.len();
    Ok(BuildOutput { json, stats })
}

fn litellm_endpoint(
    model: &Model,
    p: &ProviderRow,
    tag: &str,
    c: &Candidate<'_>,
    batch: bool,
) -> Option<Endpoint> {
    let pricing = litellm_pricing(c.entry, batch)?;
    let context_length = uint(c.entry, "max_input_tokens")
        .or_else(|| uint(c.entry, "max_tokens"))
        .or(model.top_provider.context_length)
        .or(model.context_length)?;
    let input_modalities =
        (flag(c.entry, "supports_vision") == Some(false) && model.accepts("image")).then(|| {
            model
                .architecture
                .input_modalities
                .iter()
                .filter(|m| m.as_str() != "image")
                .cloned()
                .collect()
        });
    let first_party = p.first_party.iter().any(|a| a == author(&model.id));
    Some(Endpoint {
        provider: p.slug.clone(),
        provider_name: p.name.clone(),
        tag: tag.to_string(),
        provider_model_id: Some(c.provider_model_id.clone()),
        quantization: c.name.quantization,
        context_length,
        max_completion_tokens: uint(c.entry, "max_output_tokens"),
        max_prompt_tokens: None,
        pricing,
        supported_parameters: endpoint_params(model, c.entry),
        data_policy: policy(p),
        is_moderated: first_party && model.top_provider.is_moderated,
        service_tier: None,
        status: 0,
        stats: EndpointStats::default(),
        input_modalities,
        supports_implicit_caching: false,
        dialect: p.endpoint_dialect(author(&model.id)),
        embedding_dimensions: model
            .is_embedding()
            .then(|| uint(c.entry, "output_vector_size"))
            .flatten(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_provider_spellings() {
        let or = name_key("llama-3.3-70b-instruct").key;
        assert_eq!(name_key("Llama-3.3-70B-Instruct-Turbo").key, or);
        assert_eq!(
            name_key("Llama-3.3-70B-Instruct-Turbo").variant.as_deref(),
            Some("turbo")
        );
        assert_eq!(name_key("llama-v3p3-70b-instruct").key, or);
        assert_eq!(name_key("llama3.3-70b-instruct-fp8").key, or);
        assert_eq!(
            name_key("llama3.3-70b-instruct-fp8").quantization,
            Some(Quantization::Fp8)
        );
        assert_eq!(
            name_key("Meta-Llama-3.1-8B-Instruct").key,
            name_key("llama-3.1-8b-instruct").key
        );
        assert_eq!(
            name_key("claude-sonnet-4-5-20250929").undated,
            Some(name_key("claude-sonnet-4.5").key)
        );
        assert_eq!(
            name_key("gpt-4o-2024-08-06").undated,
            Some(name_key("gpt-4o").key)
        );
        assert_ne!(name_key("glm-4.5v").key, name_key("glm-4.5").key);
        assert_eq!(name_key("DeepSeek-V3.1").key, name_key("deepseek-v3p1").key);
    }

    #[test]
    fn bedrock_keys_resolve() {
        let table = ProviderTable::embedded().unwrap();
        let p = table
            .provider
            .iter()
            .find(|p| p.slug == "amazon-bedrock")
            .unwrap();
        let (id, name, regional) = resolve_key("us.meta.llama3-3-70b-instruct-v1:0", p).unwrap();
        assert_eq!(id, "us.meta.llama3-3-70b-instruct-v1:0");
        assert_eq!(name_key(&name).key, name_key("llama-3.3-70b-instruct").key);
        assert!(regional);
        let (_, name, _) = resolve_key("anthropic.claude-haiku-4-5@20251001", p).unwrap();
        assert_eq!(name_key(&name).key, name_key("claude-haiku-4.5").key);
        let (_, name, _) = resolve_key("deepseek.v3.2", p).unwrap();
        assert_eq!(name_key(&name).key, name_key("deepseek-v3.2").key);
        assert!(resolve_key("bedrock/us-east-1/anthropic.claude-v2:1", p).is_none());
    }

    #[test]
    fn float_noise_is_rounded() {
        let mut m = Map::new();
        m.insert("x".into(), serde_json::json!(1.9999999e-07));
        assert_eq!(num(&m, "x").unwrap().to_string(), "0.0000002");
        m.insert("x".into(), serde_json::json!(3.75e-8));
        assert_eq!(num(&m, "x").unwrap().to_string(), "0.0000000375");
    }
}
