//! Azure OpenAI and Azure AI Foundry ([`Dialect::AzureOpenAi`](crate::dialect::Dialect::AzureOpenAi)): the OpenAI
//! Chat Completions body, answers, streams and errors, sent to a path that depends on which Azure API the provider
//! is configured for ([`AzureApi`]); the model in the body is the deployment name.
//!
//! ```
//! use polyroute_core::providers::azure::{chat_path, AzureApi};
//! assert_eq!(chat_path(AzureApi::V1, "gpt-4o-prod", None), "/chat/completions");
//! assert_eq!(
//!     chat_path(AzureApi::Deployments, "gpt-4o-prod", Some("2024-10-21")),
//!     "/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
//! );
//! assert_eq!(
//!     chat_path(AzureApi::Foundry, "Phi-4", Some("2024-05-01-preview")),
//!     "/chat/completions?api-version=2024-05-01-preview"
//! );
//! ```

use super::{openai, NativeRequest, TranslateOptions};
use crate::error::Result;
use crate::types::ChatRequest;

/// Which Azure API a provider speaks; each has its own base URL and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AzureApi {
    /// The v1 API: `https://{resource}.openai.azure.com/openai/v1` + `/chat/completions`, the deployment as the
    /// body's `model`, no `api-version`.
    V1,
    /// The dated API: `https://{resource}.openai.azure.com/openai` +
    /// `/deployments/{deployment}/chat/completions?api-version=YYYY-MM-DD`.
    Deployments,
    /// Azure AI Foundry models: `https://{resource}.services.ai.azure.com/models` +
    /// `/chat/completions?api-version=…`, the deployment as the body's `model`.
    Foundry,
}

impl AzureApi {
    /// The default base URL of `resource` for this API (no trailing slash).
    #[must_use]
    pub fn base_url(self, resource: &str) -> String {
        let r = encode(resource);
        match self {
            Self::V1 => format!("https://{r}.openai.azure.com/openai/v1"),
            Self::Deployments => format!("https://{r}.openai.azure.com/openai"),
            Self::Foundry => format!("https://{r}.services.ai.azure.com/models"),
        }
    }

    /// Stable name (`v1`, `deployments`, `foundry`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Deployments => "deployments",
            Self::Foundry => "foundry",
        }
    }
}

/// The chat completions path below the base URL, with the `api-version` query when there is one. The deployment
/// and the version are percent-encoded (anything but `A-Z a-z 0-9 - . _ ~`).
#[must_use]
pub fn chat_path(api: AzureApi, deployment: &str, api_version: Option<&str>) -> String {
    let mut p = match api {
        AzureApi::Deployments => format!("/deployments/{}/chat/completions", encode(deployment)),
        AzureApi::V1 | AzureApi::Foundry => "/chat/completions".to_string(),
    };
    if let Some(v) = api_version {
        p.push_str("?api-version=");
        p.push_str(&encode(v));
    }
    p
}

/// The OpenAI Chat Completions request (with `opts.upstream_model`, the deployment, as `model`); the engine
/// replaces the path with [`chat_path`].
///
/// # Errors
/// As [`openai::build_request`].
pub fn build_request(req: &ChatRequest, opts: &TranslateOptions<'_>) -> Result<NativeRequest> {
    openai::build_request(req, opts)
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_bases_per_api() {
        assert_eq!(
            chat_path(AzureApi::Deployments, "my dep/x", Some("2024-10-21")),
            "/deployments/my%20dep%2Fx/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            chat_path(AzureApi::V1, "d", Some("preview")),
            "/chat/completions?api-version=preview"
        );
        assert_eq!(
            AzureApi::V1.base_url("contoso"),
            "https://contoso.openai.azure.com/openai/v1"
        );
        assert_eq!(
            AzureApi::Foundry.base_url("contoso"),
            "https://contoso.services.ai.azure.com/models"
        );
        assert_eq!(
            AzureApi::Deployments.base_url("a/b"),
            "https://a%2Fb.openai.azure.com/openai"
        );
    }
}
