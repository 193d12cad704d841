//! Credentials that are more than a key: AWS Signature V4 for Bedrock ([`sigv4`]), Google OAuth2 tokens and
//! express-mode keys for Vertex AI ([`gcp`]), Azure ([`azure`]).

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
        (AuthScheme::Bearer, Some(u)) if u.express && u.key.is_some() => {
            "header x-goog-api-key (Vertex express mode)".into()
        }
        (AuthScheme::Bearer, Some(u)) if u.key.is_none() => match &u.gcp {
            Some(g) => format!("oauth2 {} (bearer, {})", g.kind(), g.source),
            None => "bearer".into(),
        },
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

/// What the engine reads to find Google credentials (the process environment and well-known files), gathered
/// once per router; empty without `read_env`.
#[derive(Debug, Default, Clone)]
pub(crate) struct GcpEnv {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    pub credentials: Option<String>,
    /// gcloud's application-default credentials file: `$CLOUDSDK_CONFIG/application_default_credentials.json`,
    /// else `~/.config/gcloud/application_default_credentials.json` (`%APPDATA%\gcloud\…` on Windows).
    pub adc_file: Option<std::path::PathBuf>,
    /// The metadata server's `host[:port]`: `GCE_METADATA_HOST`, else `metadata.google.internal` on a machine
    /// whose firmware says Google (`/sys/class/dmi/id/product_name`), else none.
    pub metadata_host: Option<String>,
    /// `GOOGLE_CLOUD_PROJECT`: the project when neither the settings nor the credentials name one.
    pub project: Option<String>,
}

impl GcpEnv {
    pub fn from_process(read_env: bool) -> Self {
        if !read_env {
            return Self::default();
        }
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let config_dir = var("CLOUDSDK_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                if cfg!(windows) {
                    var("APPDATA").map(|d| std::path::Path::new(&d).join("gcloud"))
                } else {
                    var("HOME").map(|h| std::path::Path::new(&h).join(".config").join("gcloud"))
                }
            });
        let on_gce = std::fs::read_to_string("/sys/class/dmi/id/product_name")
            .is_ok_and(|n| n.trim().starts_with("Google"));
        Self {
            credentials: var("GOOGLE_APPLICATION_CREDENTIALS"),
            adc_file: config_dir.map(|d| d.join("application_default_credentials.json")),
            metadata_host: var("GCE_METADATA_HOST")
                .or_else(|| on_gce.then(|| gcp::METADATA_HOST.to_string())),
            project: var("GOOGLE_CLOUD_PROJECT"),
        }
    }
}

/// Whether a Vertex provider runs in express mode: an API key and no project (no `project` setting, and a base
/// URL that names none: its `PROJECT-ID` placeholder left, or no `/projects/` at all), so requests go to the
/// global host without `/projects/…/locations/…` and carry the key in `x-goog-api-key`.
pub(crate) fn vertex_express(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
    has_key: bool,
    base: &str,
) -> bool {
    is_vertex(p.dialect)
        && has_key
        && s.project.as_deref().is_none_or(|p| p.trim().is_empty())
        && (base.contains("PROJECT-ID") || !base.contains("/projects/"))
}

/// The access-token source of a Vertex provider without a key, the first found of: the `credentials_file`
/// setting (an unusable one is an error), `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default
/// credentials file, the GCE metadata server. A file found but unusable is skipped with a warning naming it.
pub(crate) fn gcp_source(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
    env: &GcpEnv,
) -> polyroute_core::Result<Option<std::sync::Arc<gcp::TokenSource>>> {
    if !is_vertex(p.dialect) || s.api_key.is_some() {
        return Ok(None);
    }
    let token_uri = s.token_uri.as_deref();
    if let Some(f) = &s.credentials_file {
        return gcp::TokenSource::from_file(std::path::Path::new(f), token_uri)
            .map(|t| Some(std::sync::Arc::new(t)))
            .map_err(|message| polyroute_core::Error::Internal { message });
    }
    let files = [
        env.credentials
            .as_ref()
            .map(|f| (std::path::PathBuf::from(f), true)),
        env.adc_file.clone().map(|f| (f, false)),
    ];
    for (path, named) in files.into_iter().flatten() {
        // The well-known file is optional; a file named by the variable is expected to be there.
        if !named && !path.is_file() {
            continue;
        }
        match gcp::TokenSource::from_file(&path, token_uri) {
            Ok(t) => return Ok(Some(std::sync::Arc::new(t))),
            Err(e) => tracing::warn!(provider = %p.slug, "skipping Google credentials: {e}"),
        }
    }
    match &env.metadata_host {
        Some(host) => gcp::TokenSource::metadata(host)
            .map(|t| Some(std::sync::Arc::new(t)))
            .map_err(|message| polyroute_core::Error::Internal { message }),
        None => Ok(None),
    }
}

/// A Vertex provider's base URL: with its project and location, or the express-mode URL.
pub(crate) fn vertex_base(
    p: &polyroute_core::catalog::ProviderInfo,
    s: &crate::config::ProviderSettings,
    gcp: Option<&gcp::TokenSource>,
    env: &GcpEnv,
    express: bool,
    base: String,
) -> String {
    if !is_vertex(p.dialect) {
        return base;
    }
    if express {
        return gcp::express_url(&base);
    }
    let project = s
        .project
        .as_deref()
        .or_else(|| gcp.and_then(|g| g.project_id.as_deref()))
        .or(env.project.as_deref());
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
        g.token(self.http.reqwest()).await.map(Some).map_err(|m| {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use polyroute_core::catalog::ProviderInfo;
    use polyroute_core::providers::Dialect;

    fn vertex() -> ProviderInfo {
        ProviderInfo {
            slug: "google-vertex".into(),
            name: "Google Vertex".into(),
            dialect: Dialect::GeminiVertex,
            base_url: "https://aiplatform.googleapis.com/v1/projects/PROJECT-ID/locations/global"
                .into(),
            api_key_env: None,
        }
    }

    fn user_file(dir: &std::path::Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }

    #[test]
    fn google_credentials_are_looked_up_in_order() {
        let dir = std::env::temp_dir().join(format!("polyroute-gcp-order-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let user =
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#;
        let adc = user_file(&dir, "adc.json", user);
        let named = user_file(&dir, "named.json", user);
        let bad = user_file(&dir, "bad.json", r#"{"type":"external_account"}"#);
        let s = crate::config::ProviderSettings::default();
        let found = |env: &GcpEnv, s: &crate::config::ProviderSettings| {
            gcp_source(&vertex(), s, env)
                .unwrap()
                .map(|t| (t.kind(), t.source.clone()))
        };
        let full = GcpEnv {
            credentials: Some(named.clone()),
            adc_file: Some(adc.clone().into()),
            metadata_host: Some("127.0.0.1:9".into()),
            project: None,
        };
        assert_eq!(found(&full, &s), Some(("authorized user", named.clone())));
        // An unusable GOOGLE_APPLICATION_CREDENTIALS is skipped for gcloud's file.
        let env = GcpEnv {
            credentials: Some(bad.clone()),
            ..full.clone()
        };
        assert_eq!(found(&env, &s), Some(("authorized user", adc.clone())));
        // No file: the metadata server; a missing well-known file is no error.
        let env = GcpEnv {
            credentials: None,
            adc_file: Some(dir.join("absent.json")),
            ..full.clone()
        };
        assert_eq!(
            found(&env, &s),
            Some((
                "GCE metadata server",
                "GCE metadata server 127.0.0.1:9".into()
            ))
        );
        // Nothing at all: no source (the provider is left without credentials).
        assert_eq!(found(&GcpEnv::default(), &s), None);
        // The setting comes first, and an unusable one is a configuration error.
        let set = s.clone().credentials_file(adc.clone());
        assert_eq!(found(&full, &set), Some(("authorized user", adc)));
        assert!(gcp_source(&vertex(), &s.clone().credentials_file(bad), &full).is_err());
        // A key: no token source; express mode without a project, a bearer token with one.
        let keyed = crate::config::ProviderSettings::with_key("fake-key");
        assert_eq!(found(&full, &keyed), None);
        let base = vertex().base_url;
        assert!(vertex_express(&vertex(), &keyed, true, &base));
        assert!(vertex_express(
            &vertex(),
            &keyed,
            true,
            "http://127.0.0.1:9/v1"
        ));
        assert!(!vertex_express(
            &vertex(),
            &keyed.clone().project("p"),
            true,
            &base
        ));
        assert!(!vertex_express(
            &vertex(),
            &keyed,
            true,
            "http://127.0.0.1:9/v1/projects/p/locations/global"
        ));
        assert!(!vertex_express(&vertex(), &s, false, &base));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
