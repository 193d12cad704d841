//! Catalog value types: the OpenRouter model shape plus per-provider endpoints.
//!
//! Prices are exact decimals in USD per unit (per token for token prices), parsed once from decimal strings
//! exactly as OpenRouter's `/api/v1/models` writes them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Unit prices of a model or endpoint, in USD per unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Per input token.
    #[serde(with = "rust_decimal::serde::str")]
    pub prompt: Decimal,
    /// Per output token (reasoning tokens included unless `internal_reasoning` is listed).
    #[serde(with = "rust_decimal::serde::str")]
    pub completion: Decimal,
    /// Per request.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub request: Option<Decimal>,
    /// Per input image.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub image: Option<Decimal>,
    /// Per image token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub image_token: Option<Decimal>,
    /// Per output image.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub image_output: Option<Decimal>,
    /// Per input audio token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub audio: Option<Decimal>,
    /// Per output audio token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub audio_output: Option<Decimal>,
    /// Per cached input audio token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_audio_cache: Option<Decimal>,
    /// Per web search.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub web_search: Option<Decimal>,
    /// Per internal reasoning token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub internal_reasoning: Option<Decimal>,
    /// Per cache-read input token.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_cache_read: Option<Decimal>,
    /// Per cache-write input token (5-minute TTL).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_cache_write: Option<Decimal>,
    /// Per cache-write input token (1-hour TTL).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub input_cache_write_1h: Option<Decimal>,
    /// Fraction taken off every price: effective = price × (1 − discount).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "discount_serde"
    )]
    pub discount: Option<Decimal>,
    /// Conditional prices (long prompts, UTC time windows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<PricingOverride>,
}

/// A conditional price set: applies when the prompt is longer than `min_prompt_tokens` and/or the UTC time is in
/// `[utc_start, utc_end)`. Later matching overrides win per key; missing keys inherit the base price.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingOverride {
    /// Applies when prompt tokens are strictly greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u64>,
    /// Window start, `HHMM` UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_start: Option<String>,
    /// Window end (exclusive), `HHMM` UTC; may wrap midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_end: Option<String>,
    /// Price keys (`prompt`, `completion`, `input_cache_read`, …) to decimal strings.
    #[serde(flatten)]
    pub prices: std::collections::BTreeMap<String, Value>,
}

/// Model architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// `text+image->text`.
    #[serde(default)]
    pub modality: Option<String>,
    /// Subset of `text`, `image`, `file`, `audio`, `video`.
    #[serde(default)]
    pub input_modalities: Vec<String>,
    /// Subset of `text`, `image`, `embeddings`, `audio`, …
    #[serde(default)]
    pub output_modalities: Vec<String>,
    /// Tokenizer group (`GPT`, `Claude`, `Router`, …).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Instruct template.
    #[serde(default)]
    pub instruct_type: Option<String>,
}

/// Limits of the model's top provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopProvider {
    /// Context window.
    #[serde(default)]
    pub context_length: Option<u64>,
    /// Output limit.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Whether the top provider moderates.
    #[serde(default)]
    pub is_moderated: bool,
}

/// Reasoning capabilities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelReasoning {
    /// Reasoning cannot be turned off.
    #[serde(default)]
    pub mandatory: bool,
    /// Reasoning is on by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_enabled: Option<bool>,
    /// Supported efforts, descending; `None` = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_efforts: Option<Vec<String>>,
    /// Default effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_effort: Option<String>,
    /// Accepts a `reasoning.max_tokens` budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_max_tokens: Option<bool>,
}

/// Target of a `~author/family-latest` alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasTarget {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Concrete slug.
    pub slug: String,
}

/// Data policy of an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPolicy {
    /// The provider may train on prompts.
    #[serde(default)]
    pub training: bool,
    /// The provider retains prompts.
    #[serde(default)]
    pub retains_prompts: bool,
    /// Zero data retention.
    #[serde(default)]
    pub zdr: bool,
}

/// Quantization of an endpoint's weights (`provider.quantizations` vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// 4-bit integer.
    Int4,
    /// 8-bit integer.
    Int8,
    /// 4-bit float (includes mxfp4 and nvfp4 when filtering).
    Fp4,
    /// MX 4-bit float.
    Mxfp4,
    /// NVIDIA 4-bit float.
    Nvfp4,
    /// 6-bit float.
    Fp6,
    /// 8-bit float (includes mxfp8 when filtering).
    Fp8,
    /// MX 8-bit float.
    Mxfp8,
    /// 16-bit float.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 32-bit float.
    Fp32,
    /// Not disclosed.
    Unknown,
}

impl Quantization {
    /// Every value, as strings, for error messages.
    pub const ALL: &'static [&'static str] = &[
        "int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32",
        "unknown",
    ];

    /// Whether an endpoint quantized as `self` satisfies a filter entry `wanted` (fp4 includes mxfp4/nvfp4,
    /// fp8 includes mxfp8).
    #[must_use]
    pub fn satisfies(self, wanted: Quantization) -> bool {
        self == wanted
            || (wanted == Self::Fp4 && matches!(self, Self::Mxfp4 | Self::Nvfp4))
            || (wanted == Self::Fp8 && self == Self::Mxfp8)
    }

    /// Lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL[self as usize]
    }
}

/// Catalog performance figures of an endpoint (used by `sort` when the health window has too few samples).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// Median time to first token, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    /// Median throughput, tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_p50: Option<f64>,
}

/// One provider endpoint serving a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Provider slug (`deepinfra`).
    pub provider: String,
    /// Provider display name (`DeepInfra`).
    pub provider_name: String,
    /// Endpoint tag usable in `order`/`only` (`deepinfra/fp8`); equals `provider` for the base endpoint.
    pub tag: String,
    /// The provider's own model id (what is sent upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_model_id: Option<String>,
    /// Weight quantization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
    /// Context window.
    pub context_length: u64,
    /// Output limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Prompt limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Unit prices.
    pub pricing: Pricing,
    /// Parameters this endpoint accepts.
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    /// Data policy.
    #[serde(default)]
    pub data_policy: DataPolicy,
    /// Whether the provider moderates inputs.
    #[serde(default)]
    pub is_moderated: bool,
    /// Service tier (`flex`, `priority`) for tier endpoints; `None` for the default tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// 0 = normal; negative = degraded or disabled.
    #[serde(default)]
    pub status: i32,
    /// Catalog performance figures.
    #[serde(default, skip_serializing_if = "is_default_stats")]
    pub stats: EndpointStats,
    /// Input modalities this endpoint accepts, when narrower than the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_modalities: Option<Vec<String>>,
    /// Prompt caching without explicit markers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supports_implicit_caching: bool,
    /// Derived numbers for fast filtering, filled in by the catalog when it is loaded (leave the default).
    #[serde(skip)]
    pub cache: EndpointCache,
}

/// Derived per-endpoint numbers, computed once when a catalog is built.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EndpointCache {
    /// Whether the numbers below were computed.
    pub ready: bool,
    /// Prompt price, USD per million tokens.
    pub prompt_per_m: f64,
    /// Completion price, USD per million tokens.
    pub completion_per_m: f64,
}

fn is_default_stats(s: &EndpointStats) -> bool {
    s.latency_p50_ms.is_none() && s.throughput_p50.is_none()
}

impl Endpoint {
    /// Whether this endpoint accepts parameter `p`.
    #[must_use]
    pub fn supports(&self, p: &str) -> bool {
        self.supported_parameters.iter().any(|s| s == p)
    }
}

/// One model in the catalog (the OpenRouter `/api/v1/models` row plus endpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Slug `author/name[:variant]`.
    pub id: String,
    /// Permanent dated slug.
    #[serde(default)]
    pub canonical_slug: Option<String>,
    /// Hugging Face id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugging_face_id: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// Largest context window.
    #[serde(default)]
    pub context_length: Option<u64>,
    /// Modalities and tokenizer.
    #[serde(default)]
    pub architecture: Architecture,
    /// Model-level prices (of the top provider).
    pub pricing: Pricing,
    /// Top provider limits.
    #[serde(default)]
    pub top_provider: TopProvider,
    /// Union of parameters across endpoints.
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    /// Default sampling parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_parameters: Option<Value>,
    /// Reasoning capabilities (absent for non-reasoning models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ModelReasoning>,
    /// Knowledge cutoff `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// Expiration `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    /// Set on `~latest` alias rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasTarget>,
    /// Benchmark facts (`artificial_analysis` indices, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmarks: Option<Value>,
    /// Per-provider endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

impl Model {
    /// The slug without a `:variant` suffix.
    #[must_use]
    pub fn base_id(&self) -> &str {
        self.id.split(':').next().unwrap_or(&self.id)
    }

    /// Whether this is a router row (`openrouter/auto`, `~…-latest`): variable pricing, no endpoints of its own.
    #[must_use]
    pub fn is_router(&self) -> bool {
        self.architecture.tokenizer.as_deref() == Some("Router")
    }

    /// Whether every token price is zero.
    #[must_use]
    pub fn is_free(&self) -> bool {
        self.pricing.prompt.is_zero() && self.pricing.completion.is_zero()
    }

    /// Whether the model accepts input modality `m`.
    #[must_use]
    pub fn accepts(&self, m: &str) -> bool {
        self.architecture.input_modalities.iter().any(|x| x == m)
    }
}

/// A provider known to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Lowercase slug (`deepinfra`).
    pub slug: String,
    /// Display name (`DeepInfra`).
    pub name: String,
    /// Wire dialect: `openai`, `anthropic` or `gemini`.
    pub dialect: String,
    /// Default API base URL.
    pub base_url: String,
    /// Environment variable conventionally holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// `discount` is a JSON number in OpenRouter's schema; accept a number or a decimal string, write a number.
mod discount_serde {
    use rust_decimal::prelude::ToPrimitive;
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Value;

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v.and_then(|d| d.to_f64()) {
            Some(f) => s.serialize_f64(f),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .to_string()
                .parse()
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(Value::String(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
            Some(other) => Err(serde::de::Error::custom(format!(
                "expected a number, got {other}"
            ))),
        }
    }
}
