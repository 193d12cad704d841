//! Model listing filters (`polyroute models`, `GET /api/v1/models`, the bindings' `models()`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Catalog, Model};

/// Filters for listing models. Every given filter must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFilter {
    /// Accepts this input modality (`image`, `audio`, `file`, `video`, `text`).
    #[serde(default)]
    pub input_modality: Option<String>,
    /// Produces this output modality (`text`, `image`, `embeddings`, …). When unset, embedding models are left
    /// out (as OpenRouter's model list does by default).
    #[serde(default)]
    pub output_modality: Option<String>,
    /// Supports every one of these parameters (`tools`, `structured_outputs`, …).
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    /// Served by this provider (slug or display name).
    #[serde(default)]
    pub provider: Option<String>,
    /// Model-level prompt price at most this, USD per million tokens.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub max_prompt_price: Option<Decimal>,
    /// Only free models.
    #[serde(default)]
    pub free: Option<bool>,
    /// Case-insensitive substring of the id or name.
    #[serde(default)]
    pub search: Option<String>,
}

impl ModelFilter {
    /// Whether `m` passes.
    #[must_use]
    pub fn matches(&self, catalog: &Catalog, m: &Model) -> bool {
        if let Some(x) = &self.input_modality {
            if !m.architecture.input_modalities.iter().any(|i| i == x) {
                return false;
            }
        }
        let wanted = match &self.output_modality {
            Some(x) => m.architecture.output_modalities.iter().any(|i| i == x),
            None => !m.is_embedding(),
        };
        if !wanted {
            return false;
        }
        if !self
            .supported_parameters
            .iter()
            .all(|p| m.supported_parameters.iter().any(|s| s == p))
        {
            return false;
        }
        if let Some(p) = &self.provider {
            let slug = catalog
                .provider(p)
                .map_or_else(|| p.to_ascii_lowercase(), |i| i.slug.clone());
            if !m.endpoints.iter().any(|e| e.provider == slug) {
                return false;
            }
        }
        if let Some(max) = self.max_prompt_price {
            if m.is_router() || m.pricing.prompt * Decimal::from(1_000_000) > max {
                return false;
            }
        }
        if let Some(free) = self.free {
            if m.is_free() != free || m.is_router() {
                return false;
            }
        }
        if let Some(s) = &self.search {
            let s = s.to_ascii_lowercase();
            let name = m.name.as_deref().unwrap_or("").to_ascii_lowercase();
            if !m.id.to_ascii_lowercase().contains(&s) && !name.contains(&s) {
                return false;
            }
        }
        true
    }
}

impl Catalog {
    /// Models passing `filter`, in catalog order.
    #[must_use]
    pub fn filter_models(&self, filter: &ModelFilter) -> Vec<&Model> {
        self.models()
            .iter()
            .filter(|m| filter.matches(self, m))
            .collect()
    }
}
