//! Reaching a provider: its [`Upstream`] (base URL joined with the dialect's path, key, headers, timeouts), the
//! request built for one attempt with the dialect's auth, and failures that are not provider answers.

use std::time::Duration;

use polyroute_core::plan::{Attempt, OutcomeClass};
use polyroute_core::providers::{
    self, AuthScheme, Credential, ProviderFailure, ResponseContext, ResponseHints,
};
use polyroute_core::types::ChatRequest;
use polyroute_core::Error;

use crate::admission::Admission;
use crate::config::Timeouts;
use crate::http_client::UpRequest;
use crate::router::Router;
use crate::secret::{scrub, ApiKey};
use crate::wire;

/// A provider as the engine reaches it.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub base_url: String,
    /// `base_url` parsed once (None when it does not parse; the request then reports the bad URL).
    pub base: Option<reqwest::Url>,
    pub key: Option<ApiKey>,
    pub headers: Vec<(String, String)>,
    pub timeouts: Timeouts,
    /// AWS signer of a SigV4 provider (used when no bearer key is configured).
    pub aws: Option<std::sync::Arc<crate::auth::sigv4::AwsSigner>>,
    /// OAuth2 token source of a Vertex provider signing in with a service account.
    pub gcp: Option<std::sync::Arc<crate::auth::gcp::TokenSource>>,
    /// Vertex AI express mode: the key goes in `x-goog-api-key` (not as a bearer token).
    pub express: bool,
    /// API, deployments and Entra token of an Azure provider.
    pub azure: Option<std::sync::Arc<crate::auth::azure::AzureTarget>>,
    /// Several credentials, tried in turn on 401, 403 and 429 (`key` is the first).
    pub pool: Option<std::sync::Arc<crate::pool::CredentialPool>>,
    /// The URLs [`Upstream::endpoint`] joined, by path (shared by clones).
    pub endpoints: EndpointCache,
}

/// An endpoint's URL, and the same as the URI a request is sent to.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub url: reqwest::Url,
    pub uri: http::Uri,
}

impl Endpoint {
    /// `url` and the URI it spells (None when that is not a valid URI).
    fn new(url: reqwest::Url) -> Option<Endpoint> {
        let uri = http::Uri::try_from(url.as_str()).ok()?;
        Some(Endpoint { url, uri })
    }
}

/// Joined endpoint URLs by path, at most [`EndpointCache::MAX`] of them (joining costs more than a lookup).
#[derive(Debug, Clone, Default)]
pub(crate) struct EndpointCache(std::sync::Arc<std::sync::Mutex<Joined>>);

/// Endpoints by the path joined to the base URL.
type Joined = Vec<(String, std::sync::Arc<Endpoint>)>;

impl EndpointCache {
    const MAX: usize = 16;

    fn get_or(
        &self,
        path: &str,
        join: impl FnOnce() -> Option<Endpoint>,
    ) -> Option<std::sync::Arc<Endpoint>> {
        let lock = || {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((_, u)) = lock().iter().find(|(p, _)| p == path) {
            return Some(u.clone());
        }
        let u = std::sync::Arc::new(join()?);
        let mut m = lock();
        if m.len() < Self::MAX && !m.iter().any(|(p, _)| p == path) {
            m.push((path.to_string(), u.clone()));
        }
        Some(u)
    }
}

impl Upstream {
    /// `base_url` + `path` (which may carry a query, e.g. `?alt=sse`) without parsing the scheme and host again
    /// (joined once per path).
    pub fn endpoint(&self, path: &str) -> Option<std::sync::Arc<Endpoint>> {
        self.endpoints
            .get_or(path, || self.join(path).and_then(Endpoint::new))
    }

    fn join(&self, path: &str) -> Option<reqwest::Url> {
        let base = self.base.as_ref()?;
        if base.query().is_some() || base.cannot_be_a_base() {
            return None;
        }
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let mut u = base.clone();
        let mut full = String::with_capacity(base.path().len() + p.len());
        full.push_str(base.path().trim_end_matches('/'));
        full.push_str(p);
        u.set_path(&full);
        u.set_query(q);
        Some(u)
    }
}

/// A request ready to send, and what translating its answer needs.
pub(crate) struct Prepared {
    pub rb: UpRequest,
    pub hints: ResponseHints,
    pub dropped: Vec<String>,
}

pub(crate) fn internal(m: impl Into<String>) -> Error {
    Error::Internal { message: m.into() }
}

pub(crate) fn retry_after(h: &http::HeaderMap) -> Option<f64> {
    let v = h.get("retry-after")?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// The failure of a non-2xx answer; Bedrock names its exception in `x-amzn-errortype`.
pub(crate) fn status_failure(
    a: &Attempt,
    status: u16,
    ra: Option<f64>,
    error_type: Option<&str>,
    body: &[u8],
) -> ProviderFailure {
    let mut f = match (a.dialect, error_type) {
        (providers::Dialect::BedrockConverse, Some(t)) => {
            providers::bedrock::map_error(status, ra, Some(t), body, &a.provider_name)
        }
        _ => providers::map_error(a.dialect, status, ra, body, &a.provider_name),
    };
    f.outcome.retry_after = f.outcome.retry_after.or(ra);
    f
}

/// The `x-amzn-errortype` header.
pub(crate) fn error_type(h: &http::HeaderMap) -> Option<String> {
    h.get("x-amzn-errortype")?.to_str().ok().map(str::to_string)
}

/// `Bearer <key>` as a sensitive header value (None when the key has bytes a header cannot carry).
fn bearer(key: &str) -> Option<http::HeaderValue> {
    let mut v = Vec::with_capacity(7 + key.len());
    v.extend_from_slice(b"Bearer ");
    v.extend_from_slice(key.as_bytes());
    let mut h = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()?;
    h.set_sensitive(true);
    Some(h)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Router {
    /// The upstream of an attempt, or the transport failure saying none is configured.
    #[allow(clippy::result_large_err)]
    pub(crate) fn upstream(&self, a: &Attempt) -> std::result::Result<&Upstream, ProviderFailure> {
        self.inner.upstreams.get(&a.provider).ok_or_else(|| {
            wire::transport_failure(
                OutcomeClass::Overloaded,
                0,
                &format!("no upstream configured for provider {}", a.provider),
                &a.provider_name,
            )
        })
    }

    /// The upstream of an attempt with the pool credential the failover loop chose for it.
    #[allow(clippy::result_large_err)]
    pub(crate) fn upstream_for(
        &self,
        a: &Attempt,
        ad: &Admission,
    ) -> std::result::Result<std::borrow::Cow<'_, Upstream>, ProviderFailure> {
        let up = self.upstream(a)?;
        let chosen = match (&up.pool, ad.credential) {
            (Some(p), Some(i)) => p.key(i),
            _ => None,
        };
        Ok(match chosen {
            Some(k) if up.key.as_ref() != Some(k) => {
                let mut u = up.clone();
                u.key = Some(k.clone());
                std::borrow::Cow::Owned(u)
            }
            _ => std::borrow::Cow::Borrowed(up),
        })
    }

    #[allow(clippy::result_large_err)]
    pub(crate) fn prepare(
        &self,
        a: &Attempt,
        up: &Upstream,
        req: &ChatRequest,
        stream: bool,
        token: Option<&ApiKey>,
    ) -> std::result::Result<Prepared, ProviderFailure> {
        let mut opts = wire::translate_options(a, req, stream);
        // Azure: the body's model is the deployment, and the path depends on the configured API.
        let azure = up
            .azure
            .as_deref()
            .map(|az| (az, az.deployment_for(&a.model, &a.upstream_model)));
        if let Some((_, deployment)) = azure {
            opts.upstream_model = deployment;
        }
        // The endpoint's own dialect (Claude on Vertex speaks Anthropic on a Gemini-default provider).
        let dialect = a.dialect;
        let mut native = providers::build_request(dialect, req, &opts).map_err(|e| {
            wire::transport_failure(
                OutcomeClass::InvalidRequest,
                400,
                &e.to_string(),
                &a.provider_name,
            )
        })?;
        if let Some((az, deployment)) = azure {
            native.path = az.chat_path(deployment);
        }
        let rb = self.post_json(
            a,
            up,
            &native.path,
            native.body.into_bytes(),
            &native.headers,
            token,
        )?;
        Ok(Prepared {
            rb,
            hints: native.hints,
            dropped: native.dropped,
        })
    }

    /// A JSON `POST` of `body` to `path` under the upstream's base URL, with the dialect's auth (a bearer token,
    /// the key in its header or query, or a SigV4 signature), `headers`, then the upstream's own headers.
    #[allow(clippy::result_large_err)]
    pub(crate) fn post_json(
        &self,
        a: &Attempt,
        up: &Upstream,
        path: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
        token: Option<&ApiKey>,
    ) -> std::result::Result<UpRequest, ProviderFailure> {
        let dialect = a.dialect;
        // A request that cannot be written (a bad URL, header name or value) fails as transport errors do.
        let bad = |what: &str| {
            let keys: Vec<&ApiKey> = up.key.iter().chain(token).collect();
            wire::transport_failure(
                OutcomeClass::Overloaded,
                0,
                &scrub(&format!("transport error: {what}"), &keys),
                &a.provider_name,
            )
        };
        let endpoint = match up.endpoint(path) {
            Some(e) => e,
            None => std::sync::Arc::new(
                reqwest::Url::parse(&format!("{}{}", up.base_url, path))
                    .ok()
                    .and_then(Endpoint::new)
                    .ok_or_else(|| bad(&format!("invalid URL {}{}", up.base_url, path)))?,
            ),
        };
        let mut uri = endpoint.uri.clone();
        let mut h = http::HeaderMap::with_capacity(4 + headers.len() + up.headers.len());
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let auth = |key: &str| bearer(key).ok_or_else(|| bad("invalid authorization header value"));
        if let Some(t) = token {
            h.append(http::header::AUTHORIZATION, auth(t.expose())?);
        } else if let Some(k) = &up.key {
            // A key for a signed scheme is a bearer token (Bedrock API keys); otherwise the request is signed.
            let scheme = match dialect.auth_scheme() {
                _ if up.express => AuthScheme::Header("x-goog-api-key"),
                AuthScheme::SigV4 { .. } => AuthScheme::Bearer,
                s => s,
            };
            match scheme {
                // The common case, written without formatting or parsing the header name.
                AuthScheme::Bearer => {
                    h.append(http::header::AUTHORIZATION, auth(k.expose())?);
                }
                _ => match scheme.credential(k.expose()) {
                    Some(Credential::Header(name, value)) => {
                        let mut v = http::HeaderValue::try_from(value)
                            .map_err(|_| bad(&format!("invalid value of header {name}")))?;
                        v.set_sensitive(true);
                        let name = http::HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| bad(&format!("invalid header name {name:?}")))?;
                        h.append(name, v);
                    }
                    Some(Credential::Query(name, value)) => {
                        let mut url = endpoint.url.clone();
                        url.query_pairs_mut().append_pair(name, &value);
                        uri = http::Uri::try_from(url.as_str())
                            .map_err(|_| bad("invalid URL with the key's query parameter"))?;
                    }
                    None => {}
                },
            }
        }
        for (k, v) in headers.iter().chain(up.headers.iter()) {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad(&format!("invalid header name {k:?}")))?;
            let value = http::HeaderValue::try_from(v.as_str())
                .map_err(|_| bad(&format!("invalid value of header {k}")))?;
            h.append(name, value);
        }
        let mut req = UpRequest {
            uri,
            headers: h,
            body: bytes::Bytes::from(body),
        };
        if let (AuthScheme::SigV4 { .. }, None, Some(signer)) =
            (dialect.auth_scheme(), &up.key, &up.aws)
        {
            Self::sign(&mut req, signer, a)?;
        }
        Ok(req)
    }

    /// Sign a `POST` with SigV4 (the signature covers method, URL, the headers set so far and the body).
    #[allow(clippy::result_large_err)]
    fn sign(
        req: &mut UpRequest,
        signer: &crate::auth::sigv4::AwsSigner,
        a: &Attempt,
    ) -> std::result::Result<(), ProviderFailure> {
        let fail = |m: String| {
            wire::transport_failure(OutcomeClass::InvalidRequest, 400, &m, &a.provider_name)
        };
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let add = signer
            .sign(
                "POST",
                &req.uri.to_string(),
                &headers,
                &req.body,
                std::time::SystemTime::now(),
            )
            .map_err(fail)?;
        for (k, v) in add {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| fail("cannot sign the request: bad header name".into()))?;
            let value = http::HeaderValue::from_str(&v)
                .map_err(|_| fail("cannot sign the request: bad header value".into()))?;
            req.headers.insert(name, value);
        }
        Ok(())
    }

    pub(crate) fn failure_from_transport(
        e: &crate::http_client::TransportError,
        a: &Attempt,
        up: &Upstream,
    ) -> ProviderFailure {
        // A provider that cannot be reached (refused, DNS, TLS) is named as such, not as overloaded.
        let class = if e.is_timeout() {
            OutcomeClass::Timeout
        } else if e.is_connect() {
            OutcomeClass::Unreachable
        } else {
            OutcomeClass::Overloaded
        };
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "unreachable (connection refused, DNS or TLS failure)"
        } else {
            "transport error"
        };
        // Transport errors carry the URL but never headers; scrub anyway.
        let keys: Vec<&ApiKey> = up.key.iter().collect();
        let msg = scrub(&format!("{what}: {e}"), &keys);
        wire::transport_failure(class, 0, &msg, &a.provider_name)
    }

    pub(crate) fn response_ctx(
        ad: &Admission,
        a: &Attempt,
        hints: ResponseHints,
    ) -> ResponseContext {
        ResponseContext {
            id: ad.gen_id.clone(),
            created: u64::try_from(ad.created_ms / 1000).unwrap_or(0),
            model: a.model.clone(),
            provider_name: a.provider_name.clone(),
            hints,
        }
    }

    /// [`Router::response_ctx`]'s names, borrowed (for the chunks the engine writes itself).
    pub(crate) fn chunk_ids<'a>(
        ad: &'a Admission,
        a: &'a Attempt,
    ) -> crate::chat_stream::ChunkIds<'a> {
        crate::chat_stream::ChunkIds {
            id: &ad.gen_id,
            created: u64::try_from(ad.created_ms / 1000).unwrap_or(0),
            model: &a.model,
            provider_name: &a.provider_name,
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn up(base: &str) -> Upstream {
        Upstream {
            base_url: base.trim_end_matches('/').to_string(),
            base: reqwest::Url::parse(base.trim_end_matches('/')).ok(),
            key: None,
            headers: Vec::new(),
            timeouts: Timeouts::default(),
            aws: None,
            gcp: None,
            express: false,
            azure: None,
            pool: None,
            endpoints: EndpointCache::default(),
        }
    }

    #[test]
    fn bearer_headers_are_the_formatted_ones() {
        for key in [
            "sk-test-1",
            "",
            "a b\tc",
            "bad\nkey",
            "caf\u{e9}",
            "del\u{7f}",
        ] {
            let new = bearer(key);
            let old = http::HeaderValue::from_str(&format!("Bearer {key}")).ok();
            assert_eq!(new, old, "{key:?}");
            assert!(new.is_none_or(|v| v.is_sensitive()), "{key:?}");
        }
    }

    #[test]
    fn endpoint_urls_match_plain_concatenation() {
        for base in [
            "http://127.0.0.1:8000/v1",
            "http://127.0.0.1:8000/v1/",
            "https://api.example.com",
            "https://generativelanguage.googleapis.com/v1beta",
            "http://[::1]:9/a%20b/v1",
        ] {
            let u = up(base);
            for path in [
                "/chat/completions",
                "/v1/messages",
                "/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            ] {
                let e = u.endpoint(path).expect("parsed base");
                let fast = e.url.to_string();
                // The URI sent is the URL joined.
                assert_eq!(e.uri.to_string(), fast);
                // The second time from the cache.
                assert_eq!(u.endpoint(path).expect("cached").url.to_string(), fast);
                let slow = reqwest::Url::parse(&format!("{}{}", u.base_url, path))
                    .expect("valid")
                    .to_string();
                assert_eq!(fast, slow, "{base} + {path}");
            }
        }
        assert!(up("not a url").endpoint("/chat/completions").is_none());
        assert!(up("http://h/v1?x=1").endpoint("/chat").is_none());
    }
}
