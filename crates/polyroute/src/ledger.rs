//! The usage ledger's record: one [`GenerationRecord`] per generation, committed before the response is returned
//! (the stores are in [`crate::state`]).

use std::collections::HashMap;

use polyroute_core::cost::CostBreakdown;
use polyroute_core::error::AttemptRecord;
use polyroute_core::Usage;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod decimal;
mod json;
pub(crate) use decimal::{decimal_text, parse_decimal, push_decimal};

/// One served generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRecord {
    /// `gen-…`.
    pub id: String,
    /// Unix milliseconds when the request arrived.
    pub created_ms: i64,
    /// Model that served.
    pub model: String,
    /// Provider slug that served.
    pub provider: String,
    /// Provider display name.
    pub provider_name: String,
    /// Endpoint tag that served.
    pub endpoint: String,
    /// Streamed response.
    pub streamed: bool,
    /// Normalized usage.
    pub usage: Usage,
    /// Total cost in USD (billed for the serving attempt only).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost: Decimal,
    /// Itemized cost.
    pub cost_details: CostDetails,
    /// Normalized finish reason.
    pub finish_reason: Option<String>,
    /// Every attempt, in order (the last one served).
    pub attempts: Vec<AttemptRecord>,
    /// `HTTP-Referer` of the calling app.
    pub app_referer: Option<String>,
    /// `X-Title` of the calling app.
    pub app_title: Option<String>,
    /// User key the generation is billed to.
    pub user: Option<String>,
    /// Whether the model is a `:free` variant.
    pub free: bool,
    /// Milliseconds from request to the end of the answer.
    pub latency_ms: f64,
    /// Milliseconds to the first token.
    pub ttft_ms: Option<f64>,
    /// Request parameters left out because the serving provider's dialect does not support them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_params: Vec<String>,
    /// The caller went away before the answer ended (a dropped stream, a cancelled task, a caller's timeout);
    /// billed for what the provider produced up to then.
    #[serde(default)]
    pub cancelled: bool,
    /// The request's session (`session_id` in the body, else the `x-session-id` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Milliseconds polyroute itself spent on the request: the total minus the time waiting on providers, on
    /// the caller taking stream chunks, and in retry backoff (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead_ms: Option<f64>,
    /// The kind of call, OpenRouter's `api_type` (left out of the record for `completions`, the default, so
    /// records written before it was kept read as chat).
    #[serde(default, skip_serializing_if = "ApiType::is_completions")]
    pub api_type: ApiType,
}

/// OpenRouter's `api_type` of a generation: chat completions (and the Messages and Responses surfaces, which
/// are served as chat) or embeddings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiType {
    /// `completions`.
    #[default]
    Completions,
    /// `embeddings`.
    Embeddings,
}

impl ApiType {
    /// `completions` or `embeddings`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
        }
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
    fn is_completions(&self) -> bool {
        *self == Self::Completions
    }
}

/// A record's itemized cost: the [`CostBreakdown`] billed (kept as it is, written as JSON only when the record
/// is), or other JSON (a cache hit's note, a record read back from a store). Either way it reads and writes as
/// the JSON object it stands for; two are equal when their JSON is.
#[derive(Debug, Clone)]
pub enum CostDetails {
    /// The billed breakdown (its JSON: decimals as strings, `insured`, `overrides_applied`).
    Breakdown(CostBreakdown),
    /// Any JSON.
    Json(Value),
}

impl CostDetails {
    /// As JSON.
    #[must_use]
    pub fn to_value(&self) -> Value {
        match self {
            Self::Breakdown(b) => serde_json::to_value(b).unwrap_or(Value::Null),
            Self::Json(v) => v.clone(),
        }
    }
}

impl Default for CostDetails {
    fn default() -> Self {
        Self::Json(Value::Null)
    }
}

impl From<Value> for CostDetails {
    fn from(v: Value) -> Self {
        Self::Json(v)
    }
}

impl From<CostBreakdown> for CostDetails {
    fn from(b: CostBreakdown) -> Self {
        Self::Breakdown(b)
    }
}

impl PartialEq for CostDetails {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Breakdown(a), Self::Breakdown(b)) => a == b,
            (Self::Json(a), Self::Json(b)) => a == b,
            (Self::Breakdown(_), Self::Json(v)) => self == v,
            (Self::Json(v), Self::Breakdown(_)) => other == v,
        }
    }
}

impl PartialEq<Value> for CostDetails {
    fn eq(&self, other: &Value) -> bool {
        match self {
            Self::Json(v) => v == other,
            Self::Breakdown(_) => self.to_value() == *other,
        }
    }
}

impl Serialize for CostDetails {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Breakdown(b) => b.serialize(s),
            Self::Json(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CostDetails {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::Json)
    }
}

impl GenerationRecord {
    /// As JSON (what `router.generation(id)` returns).
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Spend totals, per router and per user key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// All generations.
    pub all: Decimal,
    /// Per user key.
    pub by_user: HashMap<String, Decimal>,
    /// Number of generations.
    pub count: u64,
}
