//! Token usage, normalized: `prompt_tokens` includes cache reads and cache writes; `completion_tokens` includes
//! reasoning tokens.

use serde::{Deserialize, Serialize};

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Tokens read from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Tokens written to the prompt cache (5-minute TTL unless `cache_write_1h_tokens` says otherwise).
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Of `cache_write_tokens`, those written with a 1-hour TTL.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_1h_tokens: u64,
    /// Input audio tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_tokens: u64,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Reasoning tokens (inside `completion_tokens`).
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Output image tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_tokens: u64,
    /// Output audio tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_tokens: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Normalized usage of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens, cached reads and cache writes included.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// All output tokens, reasoning included.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum of both.
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt breakdown.
    #[serde(default)]
    pub prompt_tokens_details: PromptTokensDetails,
    /// Completion breakdown.
    #[serde(default)]
    pub completion_tokens_details: CompletionTokensDetails,
    /// Input images (priced per image when the model lists an image price).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images: u64,
    /// Web searches performed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub web_search_requests: u64,
    /// Requests billed (normally 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub requests: u64,
}

fn one() -> u64 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(v: &u64) -> bool {
    *v == 1
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            prompt_tokens_details: PromptTokensDetails::default(),
            completion_tokens_details: CompletionTokensDetails::default(),
            images: 0,
            web_search_requests: 0,
            requests: 1,
        }
    }
}
