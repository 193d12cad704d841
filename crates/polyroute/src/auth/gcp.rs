//! Google Vertex AI: OAuth2 access tokens from a service-account key (the JWT-bearer grant, RFC 7523), cached and
//! refreshed before they expire; the project and location put into the base URL.
//!
//! The key file is the provider's `credentials_file` setting, else `GOOGLE_APPLICATION_CREDENTIALS`. The token
//! endpoint is the key's `token_uri` unless the provider's `token_uri` setting overrides it. An assertion is an
//! RS256 JWT (`iss` = the service account's email, `scope` = cloud-platform, `aud` = the token endpoint, one hour),
//! exchanged for an access token; the token is reused until less than a minute (or half its lifetime, when that
//! is shorter) is left. A 401 from Vertex drops the cached token so the next attempt gets a fresh one.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::secret::ApiKey;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: String,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct Cached {
    token: ApiKey,
    /// When to fetch a new one.
    refresh_at: Instant,
}

/// Access tokens of one service account. Its `Debug` never shows the key or a token.
pub(crate) struct TokenSource {
    email: String,
    key: jsonwebtoken::EncodingKey,
    key_id: Option<String>,
    token_uri: String,
    /// The key file's project, for the URL when the settings name none.
    pub project_id: Option<String>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("email", &self.email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Read a service-account key file.
    pub fn from_file(path: &Path, token_uri: Option<&str>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the Google credentials file {}: {e}",
                path.display()
            )
        })?;
        Self::from_json(&text, token_uri)
            .map_err(|e| format!("Google credentials file {}: {e}", path.display()))
    }

    pub fn from_json(text: &str, token_uri: Option<&str>) -> Result<Self, String> {
        let k: KeyFile = serde_json::from_str(text)
            .map_err(|_| "not a service-account key (client_email, private_key)".to_string())?;
        if !k.kind.is_empty() && k.kind != "service_account" {
            return Err(format!(
                "credentials of type {:?} are not supported (a service-account key is)",
                k.kind
            ));
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(k.private_key.as_bytes())
            .map_err(|_| "its private_key is not an RSA key in PEM form".to_string())?;
        Ok(Self {
            email: k.client_email,
            key,
            key_id: k.private_key_id,
            token_uri: token_uri
                .map(str::to_string)
                .or(k.token_uri)
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
            project_id: k.project_id,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one.
    pub async fn token(&self, http: &reqwest::Client) -> Result<ApiKey, String> {
        let mut g = self.cache.lock().await;
        if let Some(c) = g.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: &self.email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid.clone_from(&self.key_id);
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign the token request: {e}"))?;
        let t0 = Instant::now();
        let resp = http
            .post(&self.token_uri)
            .form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("token request to {} failed: {e}", self.token_uri))?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            // The token endpoint's error (`invalid_grant`, …) never holds a secret of ours.
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let what = v
                .get("error_description")
                .or_else(|| v.get("error"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no reason given");
            let skew = if what.contains("iat") || what.contains("exp") {
                " (check this machine's clock)"
            } else {
                ""
            };
            return Err(format!(
                "the token endpoint refused the service account ({status}): {what}{skew}"
            ));
        }
        let a: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| "the token endpoint's answer has no access_token".to_string())?;
        let life = Duration::from_secs(a.expires_in.unwrap_or(3600));
        let margin = Duration::from_secs(60).min(life / 2);
        let token = ApiKey::new(a.access_token);
        *g = Some(Cached {
            token: token.clone(),
            refresh_at: t0 + life.saturating_sub(margin),
        });
        Ok(token)
    }

    /// Forget the cached token (Vertex answered 401 with it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }
}

/// A Vertex base URL with the project and location put in: `PROJECT-ID` replaced, `locations/global` set to
/// `location`, and the regional host (`{location}-aiplatform.googleapis.com`) for a region.
pub(crate) fn vertex_url(base: &str, project: Option<&str>, location: Option<&str>) -> String {
    let mut u = base.to_string();
    if let Some(p) = project {
        u = u.replace("PROJECT-ID", p);
    }
    if let Some(l) = location.filter(|l| *l != "global") {
        u = u.replace("/locations/global", &format!("/locations/{l}"));
        u = u.replace(
            "https://aiplatform.googleapis.com",
            &format!("https://{l}-aiplatform.googleapis.com"),
        );
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_project_and_location() {
        let b = "https://aiplatform.googleapis.com/v1/projects/PROJECT-ID/locations/global";
        assert_eq!(
            vertex_url(b, Some("p1"), Some("us-east5")),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5"
        );
        assert_eq!(
            vertex_url(b, Some("p1"), None),
            "https://aiplatform.googleapis.com/v1/projects/p1/locations/global"
        );
        assert!(TokenSource::from_json("{}", None).is_err());
        let err = TokenSource::from_json(
            r#"{"type":"authorized_user","client_email":"a@b","private_key":"x"}"#,
            None,
        )
        .err()
        .unwrap_or_default();
        assert!(err.contains("authorized_user"), "{err}");
    }
}
