//! Credentials that are more than a key: AWS Signature V4 for Bedrock ([`sigv4`]).

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
        (AuthScheme::Bearer, _) => "bearer".into(),
        (AuthScheme::Header(h), _) => format!("header {h}"),
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
