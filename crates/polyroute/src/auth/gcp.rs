//! Google Vertex AI: OAuth2 access tokens, cached and refreshed before they expire; the project and location put
//! into the base URL, or the express-mode URL for an API key.
//!
//! A token comes from one of: a service-account key (the JWT-bearer grant, RFC 7523: an RS256 assertion with
//! `iss` = the account's email, `scope` = cloud-platform, `aud` = the token endpoint, one hour), gcloud's
//! application-default credentials of type `authorized_user` (the refresh-token grant), or the GCE metadata server.
//! Which one is found, and in what order, is [`super::gcp_source`]'s business. The token endpoint of a key file is
//! its `token_uri` unless the provider's `token_uri` setting overrides it. A token is reused until less than a
//! minute (or half its lifetime, when that is shorter) is left. A 401 from Vertex drops the cached token.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::secret::ApiKey;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The metadata server's host when `GCE_METADATA_HOST` names none.
pub(crate) const METADATA_HOST: &str = "metadata.google.internal";
const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    quota_project_id: Option<String>,
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

/// How a token is obtained.
enum Grant {
    /// A service-account key: a signed JWT exchanged at the token endpoint.
    ServiceAccount {
        email: String,
        key: jsonwebtoken::EncodingKey,
        key_id: Option<String>,
    },
    /// gcloud's user credentials: the refresh token exchanged at the token endpoint.
    AuthorizedUser {
        client_id: String,
        client_secret: ApiKey,
        refresh_token: ApiKey,
    },
    /// The GCE metadata server (`http://{host}`), asked with `Metadata-Flavor: Google` by a client that gives up
    /// connecting after a short while.
    Metadata { url: String, http: reqwest::Client },
}

/// Access tokens of one Google identity. Its `Debug` never shows a key, a refresh token or a token.
pub(crate) struct TokenSource {
    grant: Grant,
    /// Where the credentials came from (a file path, the metadata server), for `polyroute plan` and errors.
    pub source: String,
    token_uri: String,
    /// The credentials' project, for the URL when the settings name none.
    pub project_id: Option<String>,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("kind", &self.kind())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Read a key file (a service-account key or gcloud's `authorized_user` credentials).
    pub fn from_file(path: &Path, token_uri: Option<&str>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the Google credentials file {}: {}",
                path.display(),
                e.kind()
            )
        })?;
        let mut t = Self::from_json(&text, token_uri)
            .map_err(|e| format!("Google credentials file {}: {e}", path.display()))?;
        t.source = path.display().to_string();
        Ok(t)
    }

    pub fn from_json(text: &str, token_uri: Option<&str>) -> Result<Self, String> {
        let k: KeyFile = serde_json::from_str(text)
            .map_err(|_| "not a Google credentials file (a JSON object with a type)".to_string())?;
        let grant = match k.kind.as_str() {
            "" | "service_account" => {
                let (Some(email), Some(pem)) = (k.client_email, k.private_key) else {
                    return Err("not a service-account key (client_email, private_key)".to_string());
                };
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|_| "its private_key is not an RSA key in PEM form".to_string())?;
                Grant::ServiceAccount {
                    email,
                    key,
                    key_id: k.private_key_id,
                }
            }
            "authorized_user" => {
                let (Some(client_id), Some(secret), Some(refresh)) =
                    (k.client_id, k.client_secret, k.refresh_token)
                else {
                    return Err(
                        "authorized_user credentials need client_id, client_secret and \
                                refresh_token"
                            .to_string(),
                    );
                };
                Grant::AuthorizedUser {
                    client_id,
                    client_secret: ApiKey::new(secret),
                    refresh_token: ApiKey::new(refresh),
                }
            }
            other => {
                return Err(format!(
                    "credentials of type {other:?} are not supported (service_account and \
                     authorized_user are)"
                ))
            }
        };
        Ok(Self {
            grant,
            source: "credentials JSON".to_string(),
            token_uri: token_uri
                .map(str::to_string)
                .or(k.token_uri)
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
            project_id: k.project_id.or(k.quota_project_id),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The GCE metadata server at `host` (`host[:port]`, as in `GCE_METADATA_HOST`).
    pub fn metadata(host: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the metadata server client: {e}"))?;
        Ok(Self {
            grant: Grant::Metadata {
                url: format!("http://{host}{METADATA_TOKEN_PATH}"),
                http,
            },
            source: format!("GCE metadata server {host}"),
            token_uri: String::new(),
            project_id: None,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// What kind of credentials these are, as `polyroute plan` shows it.
    pub fn kind(&self) -> &'static str {
        match self.grant {
            Grant::ServiceAccount { .. } => "service account",
            Grant::AuthorizedUser { .. } => "authorized user",
            Grant::Metadata { .. } => "GCE metadata server",
        }
    }

    /// A valid access token: the cached one, or a new one.
    pub async fn token(&self, http: &reqwest::Client) -> Result<ApiKey, String> {
        let mut g = self.cache.lock().await;
        if let Some(c) = g.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let t0 = Instant::now();
        let resp = match &self.grant {
            Grant::ServiceAccount { email, key, key_id } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let claims = Claims {
                    iss: email,
                    scope: SCOPE,
                    aud: &self.token_uri,
                    iat: now,
                    exp: now + 3600,
                };
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.kid.clone_from(key_id);
                let assertion = jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|e| format!("cannot sign the token request: {e}"))?;
                http.post(&self.token_uri)
                    .form(&[
                        ("grant_type", JWT_BEARER),
                        ("assertion", assertion.as_str()),
                    ])
                    .send()
                    .await
            }
            Grant::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
            } => {
                http.post(&self.token_uri)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", client_id.as_str()),
                        ("client_secret", client_secret.expose()),
                        ("refresh_token", refresh_token.expose()),
                    ])
                    .send()
                    .await
            }
            Grant::Metadata { url, http } => {
                http.get(url)
                    .header("Metadata-Flavor", "Google")
                    .send()
                    .await
            }
        };
        let metadata = matches!(self.grant, Grant::Metadata { .. });
        let resp = resp.map_err(|e| {
            let what = if e.is_connect() {
                "cannot connect"
            } else if e.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            if metadata {
                format!(
                    "Google credentials from the {}: {what} (not on Google Cloud? name a credentials file, \
                     or the metadata host in GCE_METADATA_HOST)",
                    self.source
                )
            } else {
                format!(
                    "Google credentials ({} from {}): {what} to the token endpoint {}",
                    self.kind(),
                    self.source,
                    self.token_uri
                )
            }
        })?;
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let what = v
                .get("error_description")
                .or_else(|| v.get("error"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no reason given");
            // The endpoint's words are its own, but a secret of ours echoed back never gets further.
            let what = match &self.grant {
                Grant::AuthorizedUser {
                    client_secret,
                    refresh_token,
                    ..
                } => crate::secret::scrub(what, &[client_secret, refresh_token]),
                _ => what.to_string(),
            };
            let skew = if what.contains("iat") || what.contains("exp") {
                " (check this machine's clock)"
            } else {
                ""
            };
            return Err(if metadata {
                format!(
                    "the {} refused the token request ({status}): {what}",
                    self.source
                )
            } else {
                format!(
                    "the token endpoint refused the {} from {} ({status}): {what}{skew}",
                    self.kind(),
                    self.source
                )
            });
        }
        let a: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            format!(
                "the answer for the {} from {} has no access_token",
                self.kind(),
                self.source
            )
        })?;
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

/// The express-mode base URL (an API key, no project): the base without its `/projects/…/locations/…` part, so
/// a model is `{base}/publishers/google/models/{model}:generateContent`.
pub(crate) fn express_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let Some(i) = base.find("/projects/") else {
        return base.to_string();
    };
    let rest = &base[i + 1..];
    // projects/{p}/locations/{l}[/…]
    let segs: Vec<&str> = rest.splitn(5, '/').collect();
    let tail = match segs.as_slice() {
        [_, _, "locations", _, tail] => format!("/{tail}"),
        [_, _, "locations", _] | [_, _] => String::new(),
        _ => return base.to_string(),
    };
    format!("{}{tail}", &base[..i])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
        let err = TokenSource::from_json(r#"{"type":"external_account"}"#, None)
            .err()
            .unwrap_or_default();
        assert!(err.contains("external_account"), "{err}");
        let user = TokenSource::from_json(
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r",
                "quota_project_id":"qp"}"#,
            None,
        )
        .unwrap();
        assert_eq!(user.kind(), "authorized user");
        assert_eq!(user.project_id.as_deref(), Some("qp"));
        assert_eq!(user.token_uri, DEFAULT_TOKEN_URI);
        let err = TokenSource::from_json(r#"{"type":"authorized_user","client_id":"c"}"#, None)
            .err()
            .unwrap_or_default();
        assert!(err.contains("refresh_token"), "{err}");
    }

    #[test]
    fn express_urls_drop_project_and_location() {
        assert_eq!(
            express_url(
                "https://aiplatform.googleapis.com/v1/projects/PROJECT-ID/locations/global"
            ),
            "https://aiplatform.googleapis.com/v1"
        );
        assert_eq!(
            express_url("http://127.0.0.1:9/v1/projects/p/locations/us-east5/"),
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(
            express_url("http://127.0.0.1:9/v1"),
            "http://127.0.0.1:9/v1"
        );
    }
}
