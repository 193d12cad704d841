//! Catalog value types: the OpenRouter model shape plus per-provider endpoints.
//!
//! Prices live in [`super::pricing`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pricing::Pricing;
use crate::dialect::Dialect;

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
    /// Wire dialect of this endpoint when it differs from its provider's (a host serving several API families,
    /// e.g. Claude on Google Vertex); `None` = the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Dialect>,
    /// Length of the vectors an embedding endpoint returns by default (`None` for chat endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_dimensions: Option<u64>,
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

    /// Whether a provider reference (`deepinfra`, `deepinfra/fp8`, `DeepInfra`, `openai/priority`) names this
    /// endpoint. A base slug or display name matches every endpoint of that provider except service-tier
    /// endpoints; a full tag matches exactly one endpoint.
    #[must_use]
    pub fn matches_provider(&self, reference: &str) -> bool {
        let r = reference;
        if r.contains('/') {
            return r.eq_ignore_ascii_case(&self.tag);
        }
        if self.service_tier.is_some() {
            return false;
        }
        // The endpoint carries the provider's display name, so no catalog lookup is needed.
        r.eq_ignore_ascii_case(&self.provider) || r.eq_ignore_ascii_case(&self.provider_name)
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

    /// Whether this is an embedding model (its only output is `embeddings`): chat never routes to it and the
    /// embeddings API routes to nothing else.
    #[must_use]
    pub fn is_embedding(&self) -> bool {
        self.architecture
            .output_modalities
            .iter()
            .any(|m| m == "embeddings")
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
    /// Default wire dialect of the provider's endpoints (`openai`, `anthropic`, `gemini`, … — see [`Dialect`]).
    pub dialect: Dialect,
    /// Default API base URL.
    pub base_url: String,
    /// Environment variable conventionally holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}
