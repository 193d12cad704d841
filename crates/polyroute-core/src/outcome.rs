//! Classified attempt outcomes: what a provider answer means for the fallback decision.

use serde::{Deserialize, Serialize};

/// The class of one attempt's outcome. Dialects classify provider answers into these; the plan's `next`
/// decides from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// The provider served the request.
    Success,
    /// 429 or a provider quota error; may carry `retry_after`.
    RateLimited,
    /// 5xx, 529, overloaded, connection refused or reset, invalid upstream response.
    Overloaded,
    /// Connect, first-token, idle or total timeout.
    Timeout,
    /// The prompt plus output does not fit this endpoint.
    ContextLength,
    /// Moderation or safety block.
    Moderation,
    /// The provider rejected our credential (401/403).
    Auth,
    /// The provider rejected the request as malformed (400/422).
    InvalidRequest,
    /// The provider account is out of credit (402).
    PaymentRequired,
    /// The provider does not know the model (404).
    NotFound,
    /// The provider could not be reached: connection refused, DNS or TLS failure. Fails over like an overload.
    Unreachable,
}

impl OutcomeClass {
    /// Every class, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::Success,
        Self::RateLimited,
        Self::Overloaded,
        Self::Timeout,
        Self::ContextLength,
        Self::Moderation,
        Self::Auth,
        Self::InvalidRequest,
        Self::PaymentRequired,
        Self::NotFound,
        Self::Unreachable,
    ];

    /// The class whose [`code`](Self::code) is `code`.
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Stable snake_case code (used in `previous_errors[].code`).
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::ContextLength => "context_length_exceeded",
            Self::Moderation => "moderation",
            Self::Auth => "authentication",
            Self::InvalidRequest => "invalid_request",
            Self::PaymentRequired => "payment_required",
            Self::NotFound => "not_found",
            Self::Unreachable => "unreachable",
        }
    }

    /// OpenRouter `error_type` for this class.
    #[must_use]
    pub fn error_type(self) -> &'static str {
        match self {
            Self::Success => "none",
            Self::RateLimited => "rate_limit_exceeded",
            Self::Overloaded | Self::Unreachable => "provider_unavailable",
            Self::Timeout => "timeout",
            Self::ContextLength => "context_length_exceeded",
            Self::Moderation => "content_policy_violation",
            Self::Auth => "authentication",
            Self::InvalidRequest => "invalid_request",
            Self::PaymentRequired => "payment_required",
            Self::NotFound => "not_found",
        }
    }

    /// Whether this is an availability failure (rate limit, overload, timeout, unreachable) rather than a property of the request.
    #[must_use]
    pub fn is_availability(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Overloaded | Self::Timeout | Self::Unreachable
        )
    }

    /// Classify a bare HTTP status (used when a body carries nothing more specific).
    #[must_use]
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Success,
            429 => Self::RateLimited,
            401 | 403 => Self::Auth,
            402 => Self::PaymentRequired,
            404 => Self::NotFound,
            408 | 504 | 524 => Self::Timeout,
            413 => Self::ContextLength,
            400..=499 => Self::InvalidRequest,
            _ => Self::Overloaded,
        }
    }
}

/// The outcome of one attempt as the engine reports it to the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Class.
    pub class: OutcomeClass,
    /// HTTP status (0 when no response arrived: refused, reset, timeout before headers).
    pub status: u16,
    /// `Retry-After` in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<f64>,
    /// Provider's message (never containing credentials).
    #[serde(default)]
    pub message: String,
    /// Provider's own error code or type string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    /// Milliseconds spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl Outcome {
    /// A success.
    #[must_use]
    pub fn success(status: u16) -> Self {
        Self {
            class: OutcomeClass::Success,
            status,
            retry_after: None,
            message: String::new(),
            provider_code: None,
            latency_ms: None,
        }
    }

    /// A failure of `class` with `status` and `message`.
    pub fn failure(class: OutcomeClass, status: u16, message: impl Into<String>) -> Self {
        Self {
            class,
            status,
            retry_after: None,
            message: message.into(),
            provider_code: None,
            latency_ms: None,
        }
    }
}

/// Serde for an [`OutcomeClass`] written as its [`code`](OutcomeClass::code) (`rate_limited`,
/// `context_length_exceeded`, `authentication`, …): the shape of `previous_errors[].code` and `attempts[].code`.
pub mod as_code {
    use super::OutcomeClass;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the code.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(c: &OutcomeClass, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.code())
    }

    /// Read a code.
    ///
    /// # Errors
    /// An unknown code.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OutcomeClass, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        OutcomeClass::from_code(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome code {s:?}")))
    }
}
