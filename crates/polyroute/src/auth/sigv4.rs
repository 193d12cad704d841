//! AWS credentials for Bedrock and Signature Version 4 (the `aws-sigv4` crate).
//!
//! Credentials, first found wins: the provider's `aws_profile` setting (a profile of the shared files); the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the profile named by
//! `AWS_PROFILE` (else `default`) in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//! `~/.aws/credentials`) and the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`, sections `[profile
//! name]`). A Bedrock API key (`api_key`, or `AWS_BEARER_TOKEN_BEDROCK`) is sent as a bearer token instead and
//! takes precedence, as in the AWS SDKs.
//!
//! Region, first found: the provider's `region` setting, `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
//! `region`, the region in the base URL's host (`bedrock-runtime.{region}.amazonaws.com`), `us-east-1`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::secret::ApiKey;

/// A resolved AWS identity and where to sign for. Its `Debug` never shows the secrets.
#[derive(Clone)]
pub(crate) struct AwsSigner {
    pub access_key_id: String,
    pub secret: ApiKey,
    pub session_token: Option<ApiKey>,
    pub region: String,
    pub service: &'static str,
    /// Where the credentials came from (`environment`, `profile dev`), for `polyroute plan`.
    pub source: String,
}

impl std::fmt::Debug for AwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSigner")
            .field("region", &self.region)
            .field("service", &self.service)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl AwsSigner {
    /// The headers to add (`authorization`, `x-amz-date`, `x-amz-security-token`) to sign `method url` with
    /// `headers` and `body` at `now`.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let creds = Credentials::new(
            self.access_key_id.clone(),
            self.secret.expose().to_string(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "polyroute",
        );
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        let (hs, _) = instructions.into_parts();
        Ok(hs
            .into_iter()
            .map(|h| (h.name(), h.value().to_string()))
            .collect())
    }
}

/// What resolving needs from the environment (read once, so tests can pass their own).
pub(crate) struct AwsEnv {
    pub vars: HashMap<String, String>,
    pub home: Option<PathBuf>,
}

impl AwsEnv {
    pub fn from_process(read_env: bool) -> Self {
        let names = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONFIG_FILE",
        ];
        let vars = if read_env {
            names
                .iter()
                .filter_map(|n| {
                    std::env::var(n)
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| ((*n).to_string(), v))
                })
                .collect()
        } else {
            HashMap::new()
        };
        let home = read_env
            .then(|| std::env::var_os("HOME").map(PathBuf::from))
            .flatten();
        Self { vars, home }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }

    fn file(&self, var: &str, default: &str) -> Option<PathBuf> {
        self.get(var)
            .map(PathBuf::from)
            .or_else(|| self.home.as_ref().map(|h| h.join(".aws").join(default)))
    }
}

/// `[section] key = value` files; `#` and `;` comments.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// A profile's settings: the credentials file's `[name]` over the config file's `[profile name]` (`[default]`).
fn profile(env: &AwsEnv, name: &str) -> HashMap<String, String> {
    let mut merged = HashMap::new();
    if let Some(p) = env.file("AWS_CONFIG_FILE", "config") {
        if let Ok(t) = std::fs::read_to_string(p) {
            let ini = parse_ini(&t);
            let key = if name == "default" {
                "default".to_string()
            } else {
                format!("profile {name}")
            };
            if let Some(s) = ini.get(&key).or_else(|| ini.get(name)) {
                merged.extend(s.clone());
            }
        }
    }
    if let Some(p) = env.file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
        if let Ok(t) = std::fs::read_to_string(p) {
            if let Some(s) = parse_ini(&t).get(name) {
                merged.extend(s.clone());
            }
        }
    }
    merged
}

/// Region of a `bedrock-runtime.{region}.amazonaws.com` host.
fn region_of_url(base_url: &str) -> Option<String> {
    let host = reqwest::Url::parse(base_url).ok()?.host_str()?.to_string();
    let rest = host.strip_prefix("bedrock-runtime.")?;
    let region = rest.split('.').next()?;
    (!region.is_empty() && rest.contains("amazonaws")).then(|| region.to_string())
}

/// Resolve the signer of a SigV4 provider; `None` when no credentials are found.
pub(crate) fn resolve(
    env: &AwsEnv,
    region: Option<&str>,
    profile_setting: Option<&str>,
    base_url: &str,
    service: &'static str,
) -> Option<AwsSigner> {
    let from_profile = |name: &str| {
        let p = profile(env, name);
        let ak = p.get("aws_access_key_id")?.clone();
        let sk = p.get("aws_secret_access_key")?.clone();
        Some((
            ak,
            sk,
            p.get("aws_session_token").cloned(),
            p.get("region").cloned(),
            format!("profile {name}"),
        ))
    };
    let found = profile_setting
        .and_then(from_profile)
        .or_else(|| {
            let ak = env.get("AWS_ACCESS_KEY_ID")?;
            let sk = env.get("AWS_SECRET_ACCESS_KEY")?;
            let profile_region = env
                .get("AWS_PROFILE")
                .and_then(|n| profile(env, n).get("region").cloned());
            Some((
                ak.to_string(),
                sk.to_string(),
                env.get("AWS_SESSION_TOKEN").map(str::to_string),
                profile_region,
                "environment".to_string(),
            ))
        })
        .or_else(|| from_profile(env.get("AWS_PROFILE").unwrap_or("default")))?;
    let (ak, sk, token, profile_region, source) = found;
    let region = region
        .map(str::to_string)
        .or_else(|| env.get("AWS_REGION").map(str::to_string))
        .or_else(|| env.get("AWS_DEFAULT_REGION").map(str::to_string))
        .or(profile_region)
        .or_else(|| region_of_url(base_url))
        .unwrap_or_else(|| "us-east-1".to_string());
    Some(AwsSigner {
        access_key_id: ak,
        secret: ApiKey::new(sk),
        session_token: token.filter(|t| !t.is_empty()).map(ApiKey::new),
        region,
        service,
        source,
    })
}

/// The Bedrock runtime URL of a region.
pub(crate) fn bedrock_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)], home: Option<PathBuf>) -> AwsEnv {
        AwsEnv {
            vars: pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            home,
        }
    }

    #[test]
    fn credentials_from_env_profiles_and_region_order() {
        let dir = std::env::temp_dir().join(format!("polyroute-aws-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIDDEFAULTFAKE\naws_secret_access_key = s1\n\n[dev]\naws_access_key_id=AKIDDEVFAKE\naws_secret_access_key=s2\naws_session_token=tok\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(".aws/config"),
            "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\n",
        )
        .unwrap();
        let url = "https://bedrock-runtime.us-west-2.amazonaws.com";
        let e = env(&[], Some(dir.clone()));
        let s = resolve(&e, None, None, url, "bedrock").unwrap();
        assert_eq!(
            (s.access_key_id.as_str(), s.region.as_str()),
            ("AKIDDEFAULTFAKE", "eu-west-1")
        );
        let s = resolve(&e, None, Some("dev"), url, "bedrock").unwrap();
        assert_eq!(s.access_key_id, "AKIDDEVFAKE");
        assert_eq!(s.session_token.as_ref().map(ApiKey::expose), Some("tok"));
        assert_eq!(s.region, "ap-south-1");
        let e = env(&[("AWS_PROFILE", "dev")], Some(dir.clone()));
        assert_eq!(
            resolve(&e, Some("ca-central-1"), None, url, "bedrock")
                .unwrap()
                .region,
            "ca-central-1"
        );
        let e = env(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENVFAKE"),
                ("AWS_SECRET_ACCESS_KEY", "s3"),
                ("AWS_REGION", "us-east-2"),
            ],
            Some(dir.clone()),
        );
        let s = resolve(&e, None, None, url, "bedrock").unwrap();
        assert_eq!(
            (
                s.access_key_id.as_str(),
                s.region.as_str(),
                s.source.as_str()
            ),
            ("AKIDENVFAKE", "us-east-2", "environment")
        );
        assert!(!format!("{s:?}").contains("s3"));
        let e = env(
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENVFAKE"),
                ("AWS_SECRET_ACCESS_KEY", "s3"),
            ],
            None,
        );
        assert_eq!(
            resolve(&e, None, None, url, "bedrock").unwrap().region,
            "us-west-2"
        );
        assert!(resolve(&env(&[], None), None, None, url, "bedrock").is_none());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// The AWS SigV4 test suite's `get-vanilla` case (credentials AKIDEXAMPLE, 20150830T123600Z, us-east-1,
    /// service `service`).
    #[test]
    fn signs_the_documented_vector() {
        let s = AwsSigner {
            access_key_id: "AKIDEXAMPLE".into(),
            secret: ApiKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
            region: "us-east-1".into(),
            service: "service",
            source: String::new(),
        };
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        let hs = s
            .sign("GET", "https://example.amazonaws.com/", &[], b"", now)
            .unwrap();
        let auth = hs.iter().find(|(k, _)| *k == "authorization").unwrap();
        assert_eq!(
            auth.1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
