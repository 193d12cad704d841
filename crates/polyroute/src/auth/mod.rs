//! Credentials that are more than a key: AWS Signature V4 for Bedrock ([`sigv4`]).

pub(crate) mod azure;
pub(crate) mod gcp;
pub(crate) mod sigv4;

use polyroute_core::providers::AuthScheme;

use crate::attempt::prepare::Upstream;

/// How an endpoint's requests are authenticated, as `polyroute plan` shows it (never the credential).
pub(crate) fn describe(scheme: AuthScheme, up: Option<&Upstream>) -> String {
    match (scheme, up) {
        (AuthScheme::SigV4 { .. }, Some(u)) if u.key.is_some() => "bearer (Bedrock API key)".into(),
        (AuthScheme::SigV4 { service }, Some(u)) => match &u.aws {
            Some(s) => format!("sigv4 {service} {} ({})", s.region, s.source),
            None => format!("sigv4 {service} (no AWS credentials found)"),
        },
        (AuthScheme::SigV4 { service }, None) => format!("sigv4 {service}"),
        (AuthScheme::Bearer, Some(u)) if u.key.is_none() && u.gcp.is_some() => {
            "oauth2 service account (bearer)".into()
        }
        (AuthScheme::Bearer, _) => "bearer".into(),
        (AuthScheme::Header(h), Some(u)) => match &u.azure {
            Some(az) if az.ad_token.is_some() => "bearer (Entra ID token)".into(),
            Some(az) => format!("header {h} (azure {})", az.api.as_str()),
            None => format!("header {h}"),
        },
        (AuthScheme::Header(h), None) => format!("header {h}"),
        (AuthScheme::QueryKey(q), _) => format!("query {q}"),
    }
}

/// The signer of a SigV4 provider (`None` for the others, or when no AWS credentials are found).
pub(crate) fn aws_signer(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
    env: &sigv4::AwsEnv,
) -> Option<std::sync::Arc<sigv4::AwsSigner>> {
    let AuthScheme::SigV4 { service } = p.dialect.auth_scheme() else {
        return None;
    };
    let base = s.base_url.as_deref().unwrap_or(&p.base_url);
    sigv4::resolve(
        env,
        s.region.as_deref(),
        s.aws_profile.as_deref(),
        base,
        service,
    )
    .map(std::sync::Arc::new)
}

/// The provider's base URL when the settings name none: a region setting picks Bedrock's regional endpoint.
pub(crate) fn default_base_url(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
) -> String {
    match (p.dialect.auth_scheme(), s.region.as_deref()) {
        (AuthScheme::SigV4 { service: "bedrock" }, Some(r)) => sigv4::bedrock_url(r),
        _ => p.base_url.clone(),
    }
}

/// Whether a dialect is one of Google Vertex AI's.
fn is_vertex(d: polyroute_core::providers::Dialect) -> bool {
    use polyroute_core::providers::Dialect;
    matches!(
        d,
        Dialect::GeminiVertex | Dialect::AnthropicVertex | Dialect::OpenAiVertex
    )
}

/// The access-token source of a Vertex provider without a key: the `credentials_file` setting (an unreadable one
/// is an error), else `GOOGLE_APPLICATION_CREDENTIALS` (skipped when it is not a service-account key).
pub(crate) fn gcp_source(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
    read_env: bool,
) -> polyroute_core::Result<Option<std::sync::Arc<gcp::TokenSource>>> {
    if !is_vertex(p.dialect) || s.api_key.is_some() {
        return Ok(None);
    }
    if let Some(f) = &s.credentials_file {
        return gcp::TokenSource::from_file(std::path::Path::new(f), s.token_uri.as_deref())
            .map(|t| Some(std::sync::Arc::new(t)))
            .map_err(|message| polyroute_core::Error::Internal { message });
    }
    let env = read_env
        .then(|| std::env::var("GOOGLE_APPLICATION_CREDENTIALS").ok())
        .flatten()
        .filter(|v| !v.trim().is_empty());
    Ok(env.and_then(|f| {
        gcp::TokenSource::from_file(std::path::Path::new(&f), s.token_uri.as_deref())
            .ok()
            .map(std::sync::Arc::new)
    }))
}

/// A Vertex provider's base URL with its project and location.
pub(crate) fn vertex_base(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
    gcp: Option<&gcp::TokenSource>,
    base: String,
) -> String {
    if !is_vertex(p.dialect) {
        return base;
    }
    let project = s
        .project
        .as_deref()
        .or_else(|| gcp.and_then(|g| g.project_id.as_deref()));
    gcp::vertex_url(&base, project, s.location.as_deref())
}

impl crate::router::Router {
    /// The OAuth2 access token of an attempt whose provider signs in with a service account (None otherwise).
    #[allow(clippy::result_large_err)]
    pub(crate) async fn access_token(
        &self,
        a: &polyroute_core::plan::Attempt,
        up: &Upstream,
    ) -> Result<Option<crate::secret::ApiKey>, polyroute_core::providers::ProviderFailure> {
        if let Some(t) = up.azure.as_ref().and_then(|az| az.ad_token.as_ref()) {
            return Ok(Some(t.clone()));
        }
        let (None, Some(g)) = (&up.key, &up.gcp) else {
            return Ok(None);
        };
        g.token(&self.http).await.map(Some).map_err(|m| {
            crate::wire::transport_failure(
                polyroute_core::plan::OutcomeClass::Auth,
                401,
                &m,
                &a.provider_name,
            )
        })
    }

    /// Vertex answered 401: drop the cached token so the next attempt fetches a new one.
    pub(crate) async fn token_rejected(&self, up: &Upstream, status: u16) {
        if status == 401 {
            if let Some(g) = &up.gcp {
                g.invalidate().await;
            }
        }
    }
}
