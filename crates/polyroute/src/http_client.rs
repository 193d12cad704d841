//! The upstream HTTP client: an [`UpRequest`] (a `POST` with its URI, headers and body, written by
//! [`crate::attempt::prepare`]) goes through hyper's pooled client over rustls, which skips what an upstream call
//! never uses (redirect following, response decompression, parsing the URL again on every request). When the environment names a proxy
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, upper or lower case), every request goes through reqwest instead, which
//! honours those variables and `NO_PROXY`.
//!
//! Either way the caller gets one [`UpResponse`]: status, headers and a body read chunk by chunk.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use polyroute_core::Error;

type Direct = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<HttpConnector>,
    http_body_util::Full<Bytes>,
>;

/// The environment variables that name a proxy (reqwest's, which then sends every request).
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The `user-agent` every upstream request carries.
const USER_AGENT: &str = concat!("polyroute/", env!("CARGO_PKG_VERSION"));

/// Builds and sends upstream requests (cheap to clone; clones share the connection pool).
#[derive(Clone)]
pub(crate) struct HttpClient {
    /// Sends requests when `direct` is `None` (a proxy is configured); calls token endpoints.
    reqwest: reqwest::Client,
    direct: Option<Direct>,
}

/// A `POST` to send upstream.
#[derive(Debug)]
pub(crate) struct UpRequest {
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Why sending or reading failed.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// Sending through reqwest (proxied) or reading its body.
    Reqwest(reqwest::Error),
    /// Connecting or sending through hyper.
    Send(hyper_util::client::legacy::Error),
    /// Reading hyper's body.
    Body(hyper::Error),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let top: &dyn std::error::Error = match self {
            Self::Reqwest(e) => e,
            Self::Send(e) => e,
            Self::Body(e) => e,
        };
        // The whole chain: hyper's top-level messages alone ("client error (Connect)") do not say what failed.
        write!(f, "{top}")?;
        let mut cur = top.source();
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
        }
        Ok(())
    }
}

impl TransportError {
    /// Whether the failure is a timeout (of connecting or of the connection), anywhere in its chain.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_timeout(),
            Self::Send(e) => chain_timed_out(e),
            Self::Body(e) => e.is_timeout() || chain_timed_out(e),
        }
    }

    /// Whether the upstream could not be reached (refused, DNS, TLS).
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Body(_) => false,
            Self::Reqwest(e) => e.is_connect(),
            Self::Send(e) => e.is_connect(),
        }
    }
}

/// Whether any of [`PROXY_VARS`] is set and not empty (`get` reads a variable).
fn proxy_configured(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    PROXY_VARS
        .iter()
        .any(|v| get(v).is_some_and(|s| !s.is_empty()))
}

fn chain_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

impl HttpClient {
    /// A client connecting within `connect`: rustls with the webpki roots (HTTP/2 by ALPN), pooled keep-alive
    /// (90 s idle), `TCP_NODELAY`, TCP keep-alive.
    pub fn new(connect: Duration) -> Result<HttpClient, Error> {
        Self::build(connect, proxy_configured(|v| std::env::var_os(v)))
    }

    fn build(connect: Duration, proxied: bool) -> Result<HttpClient, Error> {
        let fail = |e: &dyn std::fmt::Display| Error::Internal {
            message: format!("http client: {e}"),
        };
        let reqwest = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(connect)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(2048)
            .tcp_nodelay(true)
            .gzip(true)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| fail(&e))?;
        let direct = if proxied {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let mut tcp = HttpConnector::new();
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(Some(connect));
            tcp.set_keepalive(Some(Duration::from_secs(15)));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(tcp);
            Some(
                hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(2048)
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .build(https),
            )
        };
        Ok(HttpClient { reqwest, direct })
    }

    /// The reqwest client (token endpoints are called through it).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.reqwest
    }

    /// Whether requests go through reqwest (a proxy is configured).
    #[cfg(test)]
    pub fn proxied(&self) -> bool {
        self.direct.is_none()
    }

    /// Send a request and wait for its response headers.
    pub async fn send(&self, req: UpRequest) -> Result<UpResponse, TransportError> {
        let UpRequest {
            uri,
            mut headers,
            body,
        } = req;
        let Some(direct) = &self.direct else {
            let mut r = http::Request::new(body);
            *r.method_mut() = http::Method::POST;
            *r.uri_mut() = uri;
            *r.headers_mut() = headers;
            let r = reqwest::Request::try_from(r).map_err(TransportError::Reqwest)?;
            let resp = self
                .reqwest
                .execute(r)
                .await
                .map_err(TransportError::Reqwest)?;
            let (head, body) = http::Response::<reqwest::Body>::from(resp).into_parts();
            return Ok(UpResponse {
                status: head.status,
                headers: head.headers,
                body: UpBody::Proxied(body),
            });
        };
        if !headers.contains_key(http::header::USER_AGENT) {
            headers.insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(USER_AGENT),
            );
        }
        if !headers.contains_key(http::header::ACCEPT) {
            headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("*/*"));
        }
        let mut r = http::Request::new(http_body_util::Full::new(body));
        *r.method_mut() = http::Method::POST;
        *r.uri_mut() = uri;
        *r.headers_mut() = headers;
        let resp = direct.request(r).await.map_err(TransportError::Send)?;
        let (head, body) = resp.into_parts();
        Ok(UpResponse {
            status: head.status,
            headers: head.headers,
            body: UpBody::Direct(body),
        })
    }
}

/// An upstream response: status and headers, then the body.
pub(crate) struct UpResponse {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: UpBody,
}

/// The body of an [`UpResponse`], as a stream of its data chunks.
pub(crate) enum UpBody {
    Direct(hyper::body::Incoming),
    Proxied(reqwest::Body),
}

impl UpResponse {
    pub fn status(&self) -> http::StatusCode {
        self.status
    }

    pub fn headers(&self) -> &http::HeaderMap {
        &self.headers
    }

    /// The body's length when known in advance (`Content-Length`, undecoded).
    pub fn content_length(&self) -> Option<u64> {
        match &self.body {
            UpBody::Direct(b) => b.size_hint().exact(),
            UpBody::Proxied(b) => b.size_hint().exact(),
        }
    }

    /// The body.
    pub fn into_body(self) -> UpBody {
        self.body
    }
}

impl UpBody {
    /// The next data chunk, or `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        use futures::StreamExt as _;
        self.next().await.transpose()
    }
}

impl futures::Stream for UpBody {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let frame = match this {
                UpBody::Direct(b) => match std::task::ready!(Pin::new(b).poll_frame(cx)) {
                    None => return Poll::Ready(None),
                    Some(r) => r.map_err(TransportError::Body),
                },
                UpBody::Proxied(b) => match std::task::ready!(Pin::new(b).poll_frame(cx)) {
                    None => return Poll::Ready(None),
                    Some(r) => r.map_err(TransportError::Reqwest),
                },
            };
            match frame {
                Err(e) => return Poll::Ready(Some(Err(e))),
                // Trailers and empty frames carry no data.
                Ok(f) => match f.into_data() {
                    Ok(d) if !d.is_empty() => return Poll::Ready(Some(Ok(d))),
                    _ => {}
                },
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 answering every request with `answer` (in one
    /// send, `TCP_NODELAY`); the request heads it read go to the returned channel.
    async fn server(
        answer: &'static [u8],
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                s.set_nodelay(true).unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                // The head, then a body of its content-length.
                loop {
                    let n = s.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(str::to_string)
                            })
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        if buf.len() >= end + 4 + len {
                            tx.send(text).unwrap();
                            s.write_all(answer).await.unwrap();
                            buf.clear();
                        }
                    }
                }
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.split("\r\n\r\n")
            .next()?
            .lines()
            .skip(1)
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }

    fn post(url: &str, headers: &[(&'static str, &'static str)], body: &[u8]) -> UpRequest {
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        UpRequest {
            uri: url.parse().unwrap(),
            headers: h,
            body: Bytes::copy_from_slice(body),
        }
    }

    async fn body_of(resp: UpResponse) -> Vec<u8> {
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(c) = body.chunk().await.unwrap() {
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn a_proxy_variable_that_is_set_and_not_empty_sends_through_reqwest() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(!proxy_configured(env(&[])));
        assert!(!proxy_configured(env(&[
            ("HTTPS_PROXY", ""),
            ("NO_PROXY", "x")
        ])));
        for var in PROXY_VARS {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![(var, "http://127.0.0.1:3128")].into_boxed_slice());
            assert!(proxy_configured(env(pairs)), "{var}");
        }
        assert!(HttpClient::build(Duration::from_secs(1), true)
            .unwrap()
            .proxied());
        assert!(!HttpClient::build(Duration::from_secs(1), false)
            .unwrap()
            .proxied());
    }

    #[tokio::test]
    async fn both_paths_send_the_same_request_and_read_the_same_answer() {
        const JSON: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-test: yes\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
        const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
        for proxied in [false, true] {
            let c = HttpClient::build(Duration::from_secs(2), proxied).unwrap();
            let (url, mut heads) = server(JSON).await;
            let rb = post(
                &format!("{url}/v1/chat/completions?x=1"),
                &[
                    ("content-type", "application/json"),
                    ("authorization", "Bearer sk-test-fake"),
                ],
                b"{\"a\":1}",
            );
            let resp = c.send(rb).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["x-test"], "yes");
            assert_eq!(resp.content_length(), Some(11));
            assert_eq!(body_of(resp).await, b"{\"ok\":true}");
            let head = heads.recv().await.unwrap();
            assert!(
                head.starts_with("POST /v1/chat/completions?x=1 HTTP/1.1\r\n"),
                "{head}"
            );
            assert!(head.ends_with("\r\n\r\n{\"a\":1}"), "{head}");
            assert_eq!(header(&head, "content-length"), Some("7"));
            assert_eq!(header(&head, "authorization"), Some("Bearer sk-test-fake"));
            assert_eq!(header(&head, "user-agent"), Some(USER_AGENT));
            assert_eq!(header(&head, "accept"), Some("*/*"));
            assert_eq!(header(&head, "host"), url.strip_prefix("http://"));
            // Only reqwest asks for compressed answers (and undoes the compression).
            assert_eq!(
                header(&head, "accept-encoding").is_some(),
                proxied,
                "{head}"
            );

            let (url, mut heads) = server(CHUNKED).await;
            let resp = c.send(post(&format!("{url}/s"), &[], b"")).await.unwrap();
            assert_eq!(resp.content_length(), None);
            assert_eq!(body_of(resp).await, b"hello world");
            assert!(heads
                .recv()
                .await
                .unwrap()
                .starts_with("POST /s HTTP/1.1\r\n"));
        }
    }

    #[tokio::test]
    async fn refused_and_failed_tls_connections_are_connect_errors() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap();
        drop(l);
        // A plain HTTP server asked for TLS: it answers the hello with HTTP and closes, the handshake fails.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = format!("https://{}", plain.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = plain.accept().await {
                let mut tmp = [0u8; 4096];
                let _ = s.read(&mut tmp).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        for proxied in [false, true] {
            let c = HttpClient::build(Duration::from_secs(2), proxied).unwrap();
            for url in [format!("http://{closed}/v1"), format!("{tls}/v1")] {
                let Err(e) = c.send(post(&url, &[], b"")).await else {
                    panic!("{url} answered");
                };
                assert!(e.is_connect(), "{url}: {e}");
                assert!(!e.is_timeout(), "{url}: {e}");
            }
        }
        let c = HttpClient::build(Duration::from_secs(2), false).unwrap();
        let Err(e) = c.send(post(&format!("http://{closed}/v1"), &[], b"")).await else {
            panic!("answered");
        };
        // The message names the cause, not only hyper's "client error (Connect)".
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
    }

    #[test]
    fn a_timed_out_io_error_anywhere_in_the_chain_is_a_timeout() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let timed = Outer(std::io::Error::new(std::io::ErrorKind::TimedOut, "t"));
        let refused = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "r",
        ));
        assert!(chain_timed_out(&timed));
        assert!(!chain_timed_out(&refused));
    }
}
