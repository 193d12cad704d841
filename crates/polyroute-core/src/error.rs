//! Typed errors with stable codes.
//!
//! Every error has a stable snake_case [`Error::code`] from the OpenRouter error vocabulary, an HTTP status
//! ([`Error::http_status`]), a retry hint ([`Error::retryable`]) and renders to the OpenRouter error envelope
//! ([`Error::to_envelope`]). Bindings map codes to exception classes through [`all_codes`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::outcome::OutcomeClass;

/// Why an endpoint was left out of a plan (the `excluded_by` vocabulary, plus a few of polyroute's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionReason {
    /// Not in `provider.only`.
    #[serde(rename = "allowed_providers")]
    AllowedProviders,
    /// In `provider.ignore`.
    #[serde(rename = "ignored_providers")]
    IgnoredProviders,
    /// `provider.zdr` set and the endpoint is not zero-data-retention.
    #[serde(rename = "data_policy:zdr")]
    DataPolicyZdr,
    /// `data_collection: "deny"` and the endpoint trains on or retains prompts.
    #[serde(rename = "data_policy:training")]
    DataPolicyTraining,
    /// `enforce_distillable_text` and the model's author forbids distillation.
    #[serde(rename = "distillable_text")]
    DistillableText,
    /// Quantization not in `provider.quantizations`.
    Quantization,
    /// A unit price above `provider.max_price`.
    MaxPrice,
    /// Prompt plus requested output does not fit the endpoint, or `max_tokens` exceeds its output limit.
    ContextLength,
    /// `require_parameters` and the endpoint lacks a request parameter.
    RequireParameters,
    /// The request uses tools and the endpoint does not support them.
    Tools,
    /// The request carries an input modality (image, audio, file, video) the model does not accept.
    Modality,
    /// A service-tier endpoint (`flex`, `priority`) that the request did not opt into.
    ServiceTier,
    /// Not in `provider.order` while `allow_fallbacks` is false.
    Order,
    /// `allow_fallbacks: false` keeps only the first-choice provider.
    AllowFallbacks,
    /// The engine holds no credential for this provider.
    NoCredentials,
    /// The endpoint is disabled in the catalog (negative status).
    Disabled,
    /// The endpoint speaks a wire dialect polyroute does not translate yet (Bedrock Converse, Vertex's
    /// OpenAI-compatible partner-model endpoint); no request in a wrong format is ever sent to it.
    DialectUnsupported,
    /// The provider has a credential but lacks a setting its endpoints need (an Azure provider without a
    /// `resource` or `base_url`); the detail names the setting.
    SettingsMissing,
}

impl ExclusionReason {
    /// The stable string of this reason, as it appears in `excluded_by`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowedProviders => "allowed_providers",
            Self::IgnoredProviders => "ignored_providers",
            Self::DataPolicyZdr => "data_policy:zdr",
            Self::DataPolicyTraining => "data_policy:training",
            Self::DistillableText => "distillable_text",
            Self::Quantization => "quantization",
            Self::MaxPrice => "max_price",
            Self::ContextLength => "context_length",
            Self::RequireParameters => "require_parameters",
            Self::Tools => "tools",
            Self::Modality => "modality",
            Self::ServiceTier => "service_tier",
            Self::Order => "order",
            Self::AllowFallbacks => "allow_fallbacks",
            Self::NoCredentials => "no_credentials",
            Self::Disabled => "disabled",
            Self::DialectUnsupported => "dialect_unsupported",
            Self::SettingsMissing => "settings_missing",
        }
    }
}

/// One endpoint left out of a plan, with the reason and a human detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Model slug.
    pub model: String,
    /// Endpoint tag (`deepinfra/fp8`).
    pub endpoint: String,
    /// The first hard filter that removed it.
    pub reason: ExclusionReason,
    /// What exactly did not fit (`quantization fp4 not in [fp8, bf16]`).
    pub detail: String,
}

/// One provider attempt as it is kept in an aggregated error or a generation record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Model slug.
    pub model: String,
    /// Provider slug.
    pub provider: String,
    /// Endpoint tag.
    pub endpoint: String,
    /// HTTP status the provider answered with (0 when no response arrived).
    pub status: u16,
    /// Outcome class, written as its code (`rate_limited`, `overloaded`, `timeout`, …).
    #[serde(rename = "code", with = "crate::outcome::as_code")]
    pub class: OutcomeClass,
    /// Provider's `Retry-After` hint in seconds, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
    /// Milliseconds spent on this attempt, when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// Why nothing could serve a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unavailable {
    /// The models that were asked for, in order.
    pub requested_models: Vec<String>,
    /// Every excluded endpoint with its reason.
    pub excluded: Vec<Exclusion>,
    /// Every attempt made, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Smallest `Retry-After` among attempts, in seconds.
    pub retry_after: Option<f64>,
    /// Human summary.
    pub message: String,
}

impl Unavailable {
    /// The distinct exclusion reasons, sorted.
    #[must_use]
    pub fn excluded_by(&self) -> Vec<&'static str> {
        let mut v: Vec<ExclusionReason> = self.excluded.iter().map(|e| e.reason).collect();
        v.sort();
        v.dedup();
        v.into_iter().map(ExclusionReason::as_str).collect()
    }

    /// The distinct providers involved, in first-seen order.
    #[must_use]
    pub fn affected_providers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let names = self.attempts.iter().map(|a| a.provider.clone()).chain(
            self.excluded
                .iter()
                .map(|e| base_slug(&e.endpoint).to_string()),
        );
        for n in names {
            if !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }
}

fn base_slug(tag: &str) -> &str {
    tag.split('/').next().unwrap_or(tag)
}

/// The error type of the core. Each variant documents when it happens.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed: a wrong type, an unknown field, a value outside the allowed set.
    #[error("invalid request: {field}: {message}")]
    InvalidRequest {
        /// Dotted path of the offending field (`provider.sort`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The model slug is not in the catalog.
    #[error("{slug} is not a valid model ID{}", suggest(.suggestions))]
    ModelNotFound {
        /// The slug as given.
        slug: String,
        /// Closest catalog slugs.
        suggestions: Vec<String>,
    },
    /// The model was retired; `successor` names the model to use instead.
    #[error("{slug} is no longer available{}", successor.as_ref().map(|s| format!("; use {s} instead")).unwrap_or_default())]
    ModelDeprecated {
        /// The slug as given.
        slug: String,
        /// The current successor, if one is known.
        successor: Option<String>,
    },
    /// A `:free` variant whose promotion ended; `paid` names the paid slug.
    #[error("the free variant {slug} has ended; use {paid}")]
    FreeVariantEnded {
        /// The slug as given.
        slug: String,
        /// The paid model.
        paid: String,
    },
    /// No endpoint of any requested model exists (the catalog lists none).
    #[error("{}", .0.message)]
    NoEndpoints(Box<Unavailable>),
    /// Endpoints exist but every one was removed by a request constraint (price, context, parameters, quantization, providers).
    #[error("{}", .0.message)]
    ConstraintFiltered(Box<Unavailable>),
    /// Every endpoint was removed by a data policy (`zdr`, `data_collection`).
    #[error("{}", .0.message)]
    PrivacyRestricted(Box<Unavailable>),
    /// Every attempt was rate limited.
    #[error("{}", .0.message)]
    CapacityExhausted(Box<Unavailable>),
    /// Every attempt failed with a server error, overload or timeout.
    #[error("{}", .0.message)]
    TemporarilyUnavailable(Box<Unavailable>),
    /// The last provider's own error, returned when fallbacks end on a non-availability failure
    /// (invalid request, context length, moderation, authentication).
    #[error("{message}")]
    Provider {
        /// HTTP status to return.
        status: u16,
        /// OpenRouter `error_type` (`context_length_exceeded`, `content_policy_violation`, …).
        error_type: String,
        /// The provider's message.
        message: String,
        /// Provider slug.
        provider: String,
        /// Every attempt made.
        attempts: Vec<AttemptRecord>,
    },
    /// A spend limit would be exceeded; refused before any provider is called.
    #[error("{message}")]
    PaymentRequired {
        /// What limit and by how much.
        message: String,
    },
    /// A platform rate limit (free-tier requests per minute or day) was hit.
    #[error("rate limit exceeded: {limit}")]
    RateLimited {
        /// Which limit (`free-models-per-minute`, `free-models-per-day`).
        limit: String,
        /// Seconds until the limit resets.
        retry_after: Option<f64>,
    },
    /// The gateway credential is missing or invalid.
    #[error("{message}")]
    Unauthorized {
        /// What is wrong.
        message: String,
    },
    /// A catalog file failed validation; every bad entry is listed with its path.
    #[error("invalid catalog: {}", .issues.join("; "))]
    InvalidCatalog {
        /// `path: problem` for each bad entry.
        issues: Vec<String>,
    },
    /// An internal failure (a bug or an I/O failure outside the provider call).
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

/// Every stable error code, for binding completeness tests.
#[must_use]
pub fn all_codes() -> &'static [&'static str] {
    &[
        "invalid_request",
        "model_not_found",
        "model_deprecated",
        "free_variant_ended",
        "no_endpoints",
        "constraint_filtered",
        "privacy_restricted",
        "capacity_exhausted",
        "temporarily_unavailable",
        "provider_error",
        "payment_required",
        "rate_limited",
        "unauthorized",
        "invalid_catalog",
        "internal",
    ]
}

impl Error {
    /// Shorthand for [`Error::InvalidRequest`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Stable snake_case code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::ModelDeprecated { .. } => "model_deprecated",
            Self::FreeVariantEnded { .. } => "free_variant_ended",
            Self::NoEndpoints(_) => "no_endpoints",
            Self::ConstraintFiltered(_) => "constraint_filtered",
            Self::PrivacyRestricted(_) => "privacy_restricted",
            Self::CapacityExhausted(_) => "capacity_exhausted",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::Provider { .. } => "provider_error",
            Self::PaymentRequired { .. } => "payment_required",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized { .. } => "unauthorized",
            Self::InvalidCatalog { .. } => "invalid_catalog",
            Self::Internal { .. } => "internal",
        }
    }

    /// HTTP status of the OpenRouter error model (§6.4).
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidRequest { .. }
            | Self::ModelNotFound { .. }
            | Self::InvalidCatalog { .. } => 400,
            Self::ModelDeprecated { .. }
            | Self::FreeVariantEnded { .. }
            | Self::NoEndpoints(_)
            | Self::ConstraintFiltered(_)
            | Self::PrivacyRestricted(_) => 404,
            Self::CapacityExhausted(_) | Self::RateLimited { .. } => 429,
            Self::TemporarilyUnavailable(_) => 503,
            Self::Provider { status, .. } => *status,
            Self::PaymentRequired { .. } => 402,
            Self::Unauthorized { .. } => 401,
            Self::Internal { .. } => 500,
        }
    }

    /// OpenRouter `error_type`.
    #[must_use]
    pub fn error_type(&self) -> &str {
        match self {
            Self::InvalidRequest { .. }
            | Self::ModelNotFound { .. }
            | Self::InvalidCatalog { .. } => "invalid_request",
            Self::ModelDeprecated { .. }
            | Self::FreeVariantEnded { .. }
            | Self::NoEndpoints(_)
            | Self::ConstraintFiltered(_)
            | Self::PrivacyRestricted(_) => "not_found",
            Self::CapacityExhausted(_) | Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::TemporarilyUnavailable(_) => "provider_overloaded",
            Self::Provider { error_type, .. } => error_type,
            Self::PaymentRequired { .. } => "payment_required",
            Self::Unauthorized { .. } => "authentication",
            Self::Internal { .. } => "server",
        }
    }

    /// Whether retrying the same request later may succeed.
    #[must_use]
    pub fn retryable(&self) -> bool {
        match self {
            Self::CapacityExhausted(_)
            | Self::TemporarilyUnavailable(_)
            | Self::RateLimited { .. } => true,
            Self::Provider { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The availability details, when this error is about nothing being able to serve.
    #[must_use]
    pub fn unavailable(&self) -> Option<&Unavailable> {
        match self {
            Self::NoEndpoints(u)
            | Self::ConstraintFiltered(u)
            | Self::PrivacyRestricted(u)
            | Self::CapacityExhausted(u)
            | Self::TemporarilyUnavailable(u) => Some(u),
            _ => None,
        }
    }

    /// Every provider attempt this error aggregates.
    #[must_use]
    pub fn attempts(&self) -> &[AttemptRecord] {
        match self {
            Self::Provider { attempts, .. } => attempts,
            _ => self.unavailable().map_or(&[], |u| &u.attempts),
        }
    }

    /// Seconds after which a retry may succeed.
    #[must_use]
    pub fn retry_after(&self) -> Option<f64> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => self.unavailable().and_then(|u| u.retry_after),
        }
    }

    /// The OpenRouter error envelope: `{"error": {code, message, metadata, availability?}}`.
    #[must_use]
    pub fn to_envelope(&self) -> Value {
        let mut metadata =
            json!({ "error_type": self.error_type(), "polyroute_code": self.code() });
        match self {
            Self::InvalidRequest { field, .. } => {
                metadata["field"] = json!(field);
            }
            Self::Provider { provider, .. } => {
                metadata["provider_name"] = json!(provider);
            }
            Self::InvalidCatalog { issues } => {
                metadata["issues"] = json!(issues);
            }
            _ => {}
        }
        if !self.attempts().is_empty() {
            metadata["previous_errors"] = Value::Array(
                self.attempts()
                    .iter()
                    .map(|a| json!({"provider": a.provider, "code": a.class.code(), "status": a.status}))
                    .collect(),
            );
        }
        let mut error = json!({
            "code": self.http_status(),
            "message": self.to_string(),
            "metadata": metadata,
        });
        if let Some(av) = self.availability() {
            error["availability"] = av;
        }
        json!({ "error": error })
    }

    fn availability(&self) -> Option<Value> {
        let mut av = json!({ "code": self.code(), "retryable": self.retryable() });
        match self {
            Self::ModelNotFound { slug, suggestions } => {
                av["requested_models"] = json!([slug]);
                av["fallback_models"] = json!(suggestions);
            }
            Self::ModelDeprecated { slug, successor } => {
                av["requested_models"] = json!([slug]);
                av["fallback_models"] = json!(successor.iter().collect::<Vec<_>>());
            }
            Self::FreeVariantEnded { slug, paid } => {
                av["requested_models"] = json!([slug]);
                av["fallback_models"] = json!([paid]);
            }
            _ => {
                let u = self.unavailable()?;
                av["requested_models"] = json!(u.requested_models);
                av["affected_providers"] = json!(u.affected_providers());
                av["excluded_by"] = json!(u.excluded_by());
                av["excluded"] = serde_json::to_value(&u.excluded).unwrap_or(Value::Null);
                if let Some(r) = u.retry_after {
                    av["retry_after"] = json!(r);
                }
            }
        }
        Some(av)
    }
}

/// Result alias of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed() {
        let u = Box::new(Unavailable {
            requested_models: vec![],
            excluded: vec![],
            attempts: vec![],
            retry_after: None,
            message: String::new(),
        });
        let samples = [
            Error::invalid("a", "b"),
            Error::ModelNotFound {
                slug: "x".into(),
                suggestions: vec![],
            },
            Error::ModelDeprecated {
                slug: "x".into(),
                successor: None,
            },
            Error::FreeVariantEnded {
                slug: "x".into(),
                paid: "y".into(),
            },
            Error::NoEndpoints(u.clone()),
            Error::ConstraintFiltered(u.clone()),
            Error::PrivacyRestricted(u.clone()),
            Error::CapacityExhausted(u.clone()),
            Error::TemporarilyUnavailable(u),
            Error::Provider {
                status: 400,
                error_type: "invalid_request".into(),
                message: "m".into(),
                provider: "p".into(),
                attempts: vec![],
            },
            Error::PaymentRequired {
                message: "m".into(),
            },
            Error::RateLimited {
                limit: "l".into(),
                retry_after: None,
            },
            Error::Unauthorized {
                message: "m".into(),
            },
            Error::InvalidCatalog { issues: vec![] },
            Error::Internal {
                message: "m".into(),
            },
        ];
        let codes: Vec<&str> = samples.iter().map(Error::code).collect();
        assert_eq!(codes, all_codes());
        for e in &samples {
            let env = e.to_envelope();
            assert_eq!(env["error"]["code"], json!(e.http_status()));
        }
    }
}
