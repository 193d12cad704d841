//! A minimal HTTP/1.1 keep-alive request reader and single-send response writer.
//!
//! Only what the mock needs: `Content-Length` and chunked request bodies, no pipelining guarantees beyond
//! reading one request at a time. Every response (or the head plus first event of a stream) is written with
//! one `write_all` so loopback measurements do not hit the Nagle / delayed-ACK stall.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head or body the mock accepts.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 32 * 1024 * 1024;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Query string without `?` (empty when absent).
    pub query: String,
    /// Headers with lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// Whether the client asked to close after this request.
    pub close: bool,
}

impl Request {
    /// First header named `name` (lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A connection with a read buffer that survives between keep-alive requests.
pub struct Conn {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Read the next request; `Ok(None)` when the peer closed cleanly between requests.
    pub(crate) async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let (head_len, mut req, content_length, chunked) = loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut parsed = httparse::Request::new(&mut headers);
                match parsed.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let method = parsed.method.unwrap_or("GET").to_string();
                        let target = parsed.path.unwrap_or("/");
                        let (path, query) = match target.split_once('?') {
                            Some((p, q)) => (p.to_string(), q.to_string()),
                            None => (target.to_string(), String::new()),
                        };
                        let mut hs = Vec::with_capacity(parsed.headers.len());
                        let mut content_length = 0usize;
                        let mut chunked = false;
                        let mut close = parsed.version == Some(0);
                        for h in parsed.headers.iter() {
                            let name = h.name.to_ascii_lowercase();
                            let value = String::from_utf8_lossy(h.value).trim().to_string();
                            match name.as_str() {
                                "content-length" => content_length = value.parse().unwrap_or(0),
                                "transfer-encoding" => {
                                    chunked = value.to_ascii_lowercase().contains("chunked")
                                }
                                "connection" => {
                                    let v = value.to_ascii_lowercase();
                                    if v.contains("close") {
                                        close = true;
                                    } else if v.contains("keep-alive") {
                                        close = false;
                                    }
                                }
                                _ => {}
                            }
                            hs.push((name, value));
                        }
                        let req = Request {
                            method,
                            path,
                            query,
                            headers: hs,
                            body: Vec::new(),
                            close,
                        };
                        break (n, req, content_length, chunked);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                    }
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request head too large",
                    ));
                }
            }
            if self.fill().await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "eof inside request head",
                ));
            }
        };
        self.buf.drain(..head_len);
        if chunked {
            req.body = self.read_chunked().await?;
        } else {
            if content_length > MAX_BODY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request body too large",
                ));
            }
            while self.buf.len() < content_length {
                if self.fill().await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "eof inside request body",
                    ));
                }
            }
            req.body = self.buf.drain(..content_length).collect();
        }
        Ok(Some(req))
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..pos]).to_string());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk line too long",
                ));
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "eof inside chunked body",
                ));
            }
        }
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size_hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers until an empty line.
                loop {
                    if self.read_line().await?.is_empty() {
                        return Ok(body);
                    }
                }
            }
            if body.len() + size > MAX_BODY {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request body too large",
                ));
            }
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "eof inside chunk",
                    ));
                }
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    /// Write bytes in one call.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Wait until the peer closes (or errors); used by the `stall` fault.
    pub(crate) async fn wait_closed(&mut self) {
        let mut tmp = [0u8; 1024];
        loop {
            match self.stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Serialize a status line and headers (ending with the blank line) into `out`.
pub fn write_head(out: &mut Vec<u8>, status: u16, headers: &[(&str, String)]) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append one HTTP/1.1 chunk.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The chunked-encoding terminator.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
