//! Provider settings, router options and per-request context.

use std::collections::HashMap;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::secret::ApiKey;

/// Timeouts of one attempt; each expiry is a classified `timeout` outcome and the plan moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP/TLS connect (router-wide: the smallest configured value applies).
    pub connect: Duration,
    /// From sending the request to the response headers and, when streaming, the first content token.
    pub first_token: Duration,
    /// Longest silence between two stream chunks.
    pub idle: Duration,
    /// Whole request, across all attempts.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_token: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: Duration::from_secs(600),
        }
    }
}

/// How to reach one provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderSettings {
    /// Credential; when absent the provider's conventional environment variable is read.
    pub api_key: Option<ApiKey>,
    /// Base URL override (a self-hosted OpenAI-compatible server, a test mock).
    pub base_url: Option<String>,
    /// Extra headers sent with every request to this provider.
    pub headers: Vec<(String, String)>,
    /// Timeouts for this provider (defaults: the router's).
    pub timeouts: Option<Timeouts>,
    /// Treat the provider as credentialed even without a key (local servers that need none).
    pub no_auth: bool,
    /// Cloud region (Amazon Bedrock: `us-east-1`; sets the default base URL and the SigV4 scope).
    pub region: Option<String>,
    /// AWS shared-config profile to sign with (default: the environment's keys, then `AWS_PROFILE`, then
    /// `default`).
    pub aws_profile: Option<String>,
    /// Google Cloud project (Vertex AI: replaces `PROJECT-ID` in the base URL; default: the credentials' project,
    /// then `GOOGLE_CLOUD_PROJECT`). A Vertex provider with an API key and no project uses express mode.
    pub project: Option<String>,
    /// Google Cloud location (Vertex AI: `us-east5`, `global`; a region also picks the regional host).
    pub location: Option<String>,
    /// Google credentials file, a service-account key or gcloud's `authorized_user` credentials (default:
    /// `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's application-default credentials, then the GCE metadata
    /// server).
    pub credentials_file: Option<String>,
    /// OAuth2 token endpoint override (default: the key file's `token_uri`).
    pub token_uri: Option<String>,
    /// Azure OpenAI / Azure AI Foundry: resource, deployments, API version, Entra token.
    pub azure: AzureSettings,
    /// More credentials (a pool), tried after `api_key` on 401, 403 and 429 before the next endpoint.
    pub pool: Vec<PoolCredential>,
}

/// One credential of a provider's pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolCredential {
    /// The key.
    pub key: ApiKey,
    /// Weight of a weighted order (when any credential of the pool has one; default 1); else the listed order.
    pub weight: Option<u32>,
    /// Models this credential may serve (catalog ids or the provider's ids); empty: every model.
    pub models: Vec<String>,
}

/// How to reach an Azure OpenAI or Azure AI Foundry resource (providers of the `azure-openai` dialect).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AzureSettings {
    /// Resource name: the base URL becomes `https://{resource}.openai.azure.com/openai/v1` (v1 API),
    /// `…/openai` (dated API) or `https://{resource}.services.ai.azure.com/models` (Foundry). `base_url` wins.
    pub resource: Option<String>,
    /// Deployment of every model not in `deployments` (default: the catalog's model id for the provider).
    pub deployment: Option<String>,
    /// Deployment per model (the catalog model id, `openai/gpt-4o`, or the provider's model id, `gpt-4o`).
    pub deployments: Vec<(String, String)>,
    /// A dated `api-version` (`2024-10-21`): selects the dated API (`/deployments/{deployment}/…`); unset: the v1 API.
    pub api_version: Option<String>,
    /// `openai` (default) or `foundry` (the Azure AI Foundry models API, `api-version` default `2024-05-01-preview`).
    pub api: Option<String>,
    /// A Microsoft Entra ID access token, sent as `Authorization: Bearer` instead of the `api-key` header.
    pub ad_token: Option<ApiKey>,
}

impl AzureSettings {
    /// Whether no field is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl ProviderSettings {
    /// Settings with a key.
    #[must_use]
    pub fn with_key(key: impl Into<String>) -> Self {
        Self {
            api_key: Some(ApiKey::new(key)),
            ..Self::default()
        }
    }

    /// Set the base URL.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Set the key (a Bedrock API key is sent as a bearer token instead of signing).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey::new(key));
        self
    }

    /// Set the cloud region.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sign with this AWS shared-config profile.
    #[must_use]
    pub fn aws_profile(mut self, profile: impl Into<String>) -> Self {
        self.aws_profile = Some(profile.into());
        self
    }

    /// Set the Google Cloud project.
    #[must_use]
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Set the Google Cloud location.
    #[must_use]
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Use this Google credentials file (a service-account key or `authorized_user` credentials).
    #[must_use]
    pub fn credentials_file(mut self, path: impl Into<String>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Exchange Google credentials at this OAuth2 token endpoint (instead of the file's `token_uri`).
    #[must_use]
    pub fn token_uri(mut self, uri: impl Into<String>) -> Self {
        self.token_uri = Some(uri.into());
        self
    }

    /// Set the Azure resource, deployments and API version.
    #[must_use]
    pub fn azure(mut self, azure: AzureSettings) -> Self {
        self.azure = azure;
        self
    }

    /// Add a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set timeouts.
    #[must_use]
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = Some(t);
        self
    }
}

/// Spend and free-tier limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most the whole router may spend (USD), counted from the ledger.
    pub router_usd: Option<Decimal>,
    /// Per user key limits (USD).
    pub user_usd: HashMap<String, Decimal>,
    /// Limit for user keys not listed in `user_usd`.
    pub default_user_usd: Option<Decimal>,
    /// `:free` model requests per minute (per user key, or router-wide without one).
    pub free_per_minute: u32,
    /// `:free` model requests per UTC day.
    pub free_per_day: u32,
    /// Requests per minute of each user key, every model (a sliding 60 s window in the rate store, shared by
    /// every process on the same store; None: no limit). Requests without a user are not counted.
    pub user_rpm: Option<u64>,
    /// Output tokens assumed for the worst-case estimate when the request sets no `max_tokens`.
    pub default_output_estimate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            router_usd: None,
            user_usd: HashMap::new(),
            default_user_usd: None,
            free_per_minute: 20,
            free_per_day: 50,
            user_rpm: None,
            default_output_estimate: 4096,
        }
    }
}

/// Router-wide behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Default timeouts.
    pub timeouts: Timeouts,
    /// Extra tries of the same endpoint after an availability failure (0 = each endpoint once).
    pub same_endpoint_retries: u32,
    /// Base backoff between same-endpoint retries (full jitter up to 2× this, doubling per retry).
    pub retry_backoff: Duration,
    /// How long a conversation stays on the endpoint that served it.
    pub sticky_ttl: Duration,
    /// Spend and free-tier limits.
    pub limits: Limits,
    /// Read provider keys from their conventional environment variables.
    pub read_env: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            same_endpoint_retries: 0,
            retry_backoff: Duration::from_millis(200),
            sticky_ttl: Duration::from_secs(600),
            limits: Limits::default(),
            read_env: true,
        }
    }
}

/// Facts about the caller of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `HTTP-Referer` of the calling app.
    pub http_referer: Option<String>,
    /// `X-Title` / `X-OpenRouter-Title` of the calling app.
    pub title: Option<String>,
    /// User key billed (spend limits, free-tier limits).
    pub user: Option<String>,
    /// `x-session-id` header (sticky routing).
    pub session_id: Option<String>,
    /// Add the router metadata block (every attempt) to the response.
    pub metadata: bool,
    /// Use this generation id (`gen-…`) instead of a generated one, so a gateway can send it in a response
    /// header before the first chunk is known. Must be unique per request.
    pub generation_id: Option<String>,
    /// A gateway API key the request is billed to as well (its spend counts against
    /// [`Scope::Key`](crate::state::Scope::Key) of this id).
    pub key_id: Option<String>,
    /// The credit limit of `key_id` (USD): admission holds the request's worst-case cost against it, so
    /// concurrent requests never spend more than the limit.
    pub key_limit: Option<Decimal>,
    /// The caller's W3C `traceparent` (`00-<trace id>-<span id>-<flags>`): the parent of the request's span when
    /// traces are on ([`crate::otel`]); ignored when malformed.
    pub traceparent: Option<String>,
}
