//! Wire dialects as data: each provider API family a catalog endpoint can speak, with how a request is
//! authenticated ([`AuthScheme`]) and how a streamed answer is framed ([`Framing`]).
//!
//! The translations themselves live in [`crate::providers`]; this module is the vocabulary the catalog names and
//! the engine executes generically (put the credential where [`AuthScheme::credential`] says, read the body with
//! the decoder [`Framing`] names).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A provider wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions and OpenAI-compatible hosts.
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini `generateContent` (Developer API, v1beta or v1).
    Gemini,
    /// Gemini `generateContent` on Google Vertex AI: the same body below `/publishers/google/models/{model}`
    /// (`:generateContent`, `:streamGenerateContent?alt=sse`); OAuth bearer token.
    GeminiVertex,
    /// Anthropic Messages on Google Vertex AI: the body has no `model` and carries
    /// `anthropic_version: "vertex-2023-10-16"`; the model is in the path
    /// (`/publishers/anthropic/models/{model}:rawPredict`, `:streamRawPredict` when streaming); OAuth bearer token.
    AnthropicVertex,
    /// Vertex AI's OpenAI-compatible endpoint for partner and open models (`/endpoints/openapi/chat/completions`).
    /// Declared, not translated yet: plans exclude these endpoints (`dialect_unsupported`).
    OpenAiVertex,
    /// AWS Bedrock Converse (`/model/{id}/converse`, `/model/{id}/converse-stream`; SigV4 or a Bedrock API key
    /// as a bearer token; binary event-stream framing).
    BedrockConverse,
    /// Azure OpenAI and Azure AI Foundry: the OpenAI Chat Completions body and answers, the key in the `api-key`
    /// header (or an Entra ID bearer token), and a path the engine completes from the provider's settings
    /// (deployment, `api-version`): see [`crate::providers::azure`].
    AzureOpenAi,
}

/// Where the credential of a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The bare key in the named header (`x-api-key`).
    Header(&'static str),
    /// The key as the named query parameter (`?key=`).
    QueryKey(&'static str),
    /// An AWS Signature V4 over method, URL, headers, body and time, for `service`; needs more than a key.
    SigV4 {
        /// The AWS service name in the credential scope (`bedrock`).
        service: &'static str,
    },
}

impl AuthScheme {
    /// A short label for tables and plans (`bearer`, `x-api-key`, `sigv4 bedrock`); never a credential.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::Bearer => "bearer".into(),
            Self::Header(h) => h.to_string(),
            Self::QueryKey(q) => format!("?{q}="),
            Self::SigV4 { service } => format!("sigv4 {service}"),
        }
    }
}

/// What to add to a request to authenticate it with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A header `(name, value)`.
    Header(&'static str, String),
    /// A query parameter `(name, value)`.
    Query(&'static str, String),
}

impl AuthScheme {
    /// The header or query parameter that carries `key` under this scheme; `None` for a signed scheme
    /// ([`AuthScheme::SigV4`]), which a bare key cannot satisfy.
    #[must_use]
    pub fn credential(self, key: &str) -> Option<Credential> {
        match self {
            Self::Bearer => Some(Credential::Header("authorization", format!("Bearer {key}"))),
            Self::Header(name) => Some(Credential::Header(name, key.to_string())),
            Self::QueryKey(name) => Some(Credential::Query(name, key.to_string())),
            Self::SigV4 { .. } => None,
        }
    }
}

/// How a streamed answer is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Server-sent events (`text/event-stream`).
    Sse,
    /// AWS binary event stream (`application/vnd.amazon.eventstream`).
    AwsEventStream,
}

impl Framing {
    /// Whether a response `content-type` (lower case) is this framing's.
    #[must_use]
    pub fn matches_content_type(self, content_type: &str) -> bool {
        match self {
            // The usual header compared whole, before the two substring searches (each costs more than the
            // comparison).
            Self::Sse if content_type == "text/event-stream" => true,
            Self::Sse => content_type.contains("event-stream") && !content_type.contains("amazon"),
            Self::AwsEventStream => content_type.contains("vnd.amazon.eventstream"),
        }
    }
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Self; 8] = [
        Self::OpenAi,
        Self::Anthropic,
        Self::Gemini,
        Self::GeminiVertex,
        Self::AnthropicVertex,
        Self::OpenAiVertex,
        Self::BedrockConverse,
        Self::AzureOpenAi,
    ];

    /// Parse a catalog `dialect` string: a stable name ([`Dialect::as_str`]) or an alias (`google` and
    /// `google-ai-studio` for gemini, `openai-compatible` for openai, `_` for `-`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "openai" | "openai-compatible" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "gemini" | "google" | "google-ai-studio" => Some(Self::Gemini),
            "gemini-vertex" | "vertex-gemini" => Some(Self::GeminiVertex),
            "anthropic-vertex" | "vertex-anthropic" => Some(Self::AnthropicVertex),
            "openai-vertex" | "vertex-openai" => Some(Self::OpenAiVertex),
            "bedrock-converse" => Some(Self::BedrockConverse),
            "azure-openai" | "azure" | "azure-foundry" => Some(Self::AzureOpenAi),
            _ => None,
        }
    }

    /// Stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::GeminiVertex => "gemini-vertex",
            Self::AnthropicVertex => "anthropic-vertex",
            Self::OpenAiVertex => "openai-vertex",
            Self::BedrockConverse => "bedrock-converse",
            Self::AzureOpenAi => "azure-openai",
        }
    }

    /// How a request in this dialect is authenticated.
    #[must_use]
    pub fn auth_scheme(self) -> AuthScheme {
        match self {
            Self::OpenAi | Self::GeminiVertex | Self::AnthropicVertex | Self::OpenAiVertex => {
                AuthScheme::Bearer
            }
            Self::Anthropic => AuthScheme::Header("x-api-key"),
            Self::Gemini => AuthScheme::Header("x-goog-api-key"),
            Self::BedrockConverse => AuthScheme::SigV4 { service: "bedrock" },
            Self::AzureOpenAi => AuthScheme::Header("api-key"),
        }
    }

    /// How a streamed answer in this dialect is framed.
    #[must_use]
    pub fn framing(self) -> Framing {
        match self {
            Self::BedrockConverse => Framing::AwsEventStream,
            _ => Framing::Sse,
        }
    }

    /// Whether polyroute translates this dialect (requests, answers, streams, errors). Plans exclude endpoints of
    /// the others with `dialect_unsupported`.
    #[must_use]
    pub fn is_translated(self) -> bool {
        !matches!(self, Self::OpenAiVertex)
    }

    /// Name of the header that carries the credential (`authorization`, `x-api-key`, `x-goog-api-key`); see
    /// [`Dialect::auth_scheme`] for the value's form. `authorization` for a signed scheme.
    #[must_use]
    pub fn auth_header(self) -> &'static str {
        match self.auth_scheme() {
            AuthScheme::Header(name) => name,
            AuthScheme::Bearer | AuthScheme::QueryKey(_) | AuthScheme::SigV4 { .. } => {
                "authorization"
            }
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Dialect {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Dialect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Self::from_name(&s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|d| d.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown dialect {s:?}; expected one of {}",
                names.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::from_name(d.as_str()), Some(d));
            let v = serde_json::to_value(d).unwrap_or_default();
            assert_eq!(v, serde_json::json!(d.as_str()));
            assert_eq!(serde_json::from_value::<Dialect>(v).ok(), Some(d));
        }
        assert_eq!(
            Dialect::from_name("openai_compatible"),
            Some(Dialect::OpenAi)
        );
        assert_eq!(
            Dialect::from_name("bedrock_converse"),
            Some(Dialect::BedrockConverse)
        );
        assert_eq!(Dialect::from_name("bedrock"), None);
        assert!(serde_json::from_str::<Dialect>("\"smoke-signals\"").is_err());
    }

    #[test]
    fn auth_and_framing_are_declared_per_dialect() {
        let key = "sk-fake";
        assert_eq!(
            Dialect::OpenAi.auth_scheme().credential(key),
            Some(Credential::Header("authorization", "Bearer sk-fake".into()))
        );
        assert_eq!(
            Dialect::Anthropic.auth_scheme().credential(key),
            Some(Credential::Header("x-api-key", "sk-fake".into()))
        );
        assert_eq!(
            Dialect::AnthropicVertex.auth_scheme().credential(key),
            Some(Credential::Header("authorization", "Bearer sk-fake".into()))
        );
        assert_eq!(
            AuthScheme::QueryKey("key").credential(key),
            Some(Credential::Query("key", "sk-fake".into()))
        );
        assert_eq!(
            Dialect::BedrockConverse.auth_scheme(),
            AuthScheme::SigV4 { service: "bedrock" }
        );
        assert_eq!(Dialect::BedrockConverse.auth_scheme().credential(key), None);
        assert_eq!(Dialect::BedrockConverse.framing(), Framing::AwsEventStream);
        assert_eq!(Dialect::Gemini.framing(), Framing::Sse);
        assert!(Framing::Sse.matches_content_type("text/event-stream; charset=utf-8"));
        assert!(Framing::Sse.matches_content_type("text/event-stream"));
        assert!(!Framing::AwsEventStream.matches_content_type("text/event-stream"));
        assert!(!Framing::Sse.matches_content_type("application/vnd.amazon.eventstream"));
        assert!(Framing::AwsEventStream.matches_content_type("application/vnd.amazon.eventstream"));
        assert!(Dialect::AnthropicVertex.is_translated());
        assert!(Dialect::BedrockConverse.is_translated());
        assert!(!Dialect::OpenAiVertex.is_translated());
        assert_eq!(
            Dialect::AzureOpenAi.auth_scheme().credential(key),
            Some(Credential::Header("api-key", "sk-fake".into()))
        );
        assert_eq!(Dialect::from_name("azure"), Some(Dialect::AzureOpenAi));
        assert_eq!(Dialect::AzureOpenAi.framing(), Framing::Sse);
        assert!(Dialect::AzureOpenAi.is_translated());
    }
}
