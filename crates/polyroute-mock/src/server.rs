//! The listener, per-connection loop, state and control endpoints.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::dialect::{self, Call, Reply};
use crate::fault::Faults;
use crate::http::{write_chunk, write_head, Conn, Request, LAST_CHUNK};
use crate::replay::{self, Canned};

/// How a mock server behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Name used in synthetic answers (`"{label}: …"`) and the `x-mock-server` header.
    pub label: String,
    /// Directory of recorded payloads for `x-mock-replay` (None: replay disabled).
    pub wire_dir: Option<PathBuf>,
    /// Model ids listed by `GET /v1/models`.
    pub models: Vec<String>,
    /// Replay spec used for every generation call without an `x-mock-replay` header.
    pub replay: Option<String>,
    /// Number of content events in synthetic streams (None: one per word of the answer).
    pub chunks: Option<usize>,
    /// How many received requests are kept for inspection (older ones are dropped).
    pub keep_requests: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            label: "mock".to_string(),
            wire_dir: None,
            models: vec!["mock-model".to_string()],
            replay: None,
            chunks: None,
            keep_requests: 10_000,
        }
    }
}

/// One received request, as kept for inspection.
#[derive(Debug, Clone)]
pub struct Received {
    /// Sequence number (1-based, per server).
    pub seq: u64,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (a string when it was not JSON).
    pub body: Value,
    /// The fault spec applied (empty for none).
    pub fault: String,
}

impl Received {
    /// First header named `name` (lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn to_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({"seq": self.seq, "method": self.method, "path": self.path, "query": self.query,
               "headers": headers, "body": self.body, "fault": self.fault})
    }
}

#[derive(Default)]
struct Mutable {
    script: VecDeque<String>,
    standing: Option<String>,
    /// Fault per credential (the bearer token, `x-api-key`, `api-key` or `x-goog-api-key` value).
    by_key: BTreeMap<String, String>,
    by_path: BTreeMap<String, u64>,
    by_fault: BTreeMap<String, u64>,
    received: VecDeque<Received>,
}

struct State {
    cfg: MockConfig,
    seq: AtomicU64,
    generation_calls: AtomicU64,
    aborted_streams: AtomicU64,
    open_connections: AtomicU64,
    m: Mutex<Mutable>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.m
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running mock provider on `127.0.0.1`. Dropping it stops accepting connections.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("label", &self.state.cfg.label)
            .finish()
    }
}

impl MockServer {
    /// Bind `127.0.0.1:0` with the default configuration and start serving.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(MockConfig::default(), 0).await
    }

    /// Start with a label (used in answers) and otherwise default settings.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn labeled(label: &str) -> io::Result<Self> {
        Self::start_with(
            MockConfig {
                label: label.to_string(),
                ..MockConfig::default()
            },
            0,
        )
        .await
    }

    /// Bind `127.0.0.1:port` (0 = any free port) and start serving.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start_with(cfg: MockConfig, port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            cfg,
            seq: AtomicU64::new(0),
            generation_calls: AtomicU64::new(0),
            aborted_streams: AtomicU64::new(0),
            open_connections: AtomicU64::new(0),
            m: Mutex::new(Mutable::default()),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    st.open_connections.fetch_add(1, Ordering::Relaxed);
                    let _ = serve_conn(Conn::new(sock), &st).await;
                    st.open_connections.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>` (append `/v1` for an OpenAI or Anthropic base URL, `/v1beta` for Gemini).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queue faults for the next generation calls, one entry per call (`"ok"` for a clean answer).
    ///
    /// # Errors
    /// When an entry does not parse; nothing is queued then.
    pub fn script<S: AsRef<str>>(&self, faults: impl IntoIterator<Item = S>) -> Result<(), String> {
        let specs: Vec<String> = faults.into_iter().map(|s| s.as_ref().to_string()).collect();
        for s in &specs {
            Faults::parse(s)?;
        }
        self.state.lock().script.extend(specs);
        Ok(())
    }

    /// Set (or clear) a fault applied to every generation call that has no header or script entry.
    ///
    /// # Errors
    /// When the spec does not parse.
    pub fn set_fault(&self, spec: Option<&str>) -> Result<(), String> {
        if let Some(s) = spec {
            Faults::parse(s)?;
        }
        self.state.lock().standing = spec.map(str::to_string);
        Ok(())
    }

    /// Answer every generation call that carries `key` (as a bearer token, `x-api-key`, `api-key` or
    /// `x-goog-api-key`) with the fault `spec` (`401` for a revoked key, `429=3` for a rate-limited one), before
    /// the `x-mock-fault` header and the script.
    ///
    /// # Errors
    /// When the spec does not parse.
    pub fn fault_for_key(&self, key: &str, spec: &str) -> Result<(), String> {
        Faults::parse(spec)?;
        self.state
            .lock()
            .by_key
            .insert(key.to_string(), spec.to_string());
        Ok(())
    }

    /// Number of generation calls received (chat completions, messages, generateContent).
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.state.generation_calls.load(Ordering::Relaxed)
    }

    /// Streams whose client went away before the last event was written.
    #[must_use]
    pub fn aborted_streams(&self) -> u64 {
        self.state.aborted_streams.load(Ordering::Relaxed)
    }

    /// Currently open client connections.
    #[must_use]
    pub fn open_connections(&self) -> u64 {
        self.state.open_connections.load(Ordering::Relaxed)
    }

    /// The kept received requests, oldest first.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().received.iter().cloned().collect()
    }

    /// The `GET /__mock/calls` document.
    #[must_use]
    pub fn stats(&self) -> Value {
        stats(&self.state)
    }

    /// Clear counters, kept requests, the script and the standing fault.
    pub fn reset(&self) {
        reset(&self.state);
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn stats(st: &State) -> Value {
    let m = st.lock();
    json!({
        "label": st.cfg.label,
        "total": st.generation_calls.load(Ordering::Relaxed),
        "aborted_streams": st.aborted_streams.load(Ordering::Relaxed),
        "open_connections": st.open_connections.load(Ordering::Relaxed),
        "by_path": m.by_path,
        "by_fault": m.by_fault,
        "script_remaining": m.script.len(),
        "requests": m.received.iter().map(Received::to_json).collect::<Vec<_>>(),
    })
}

fn reset(st: &State) {
    st.generation_calls.store(0, Ordering::Relaxed);
    st.aborted_streams.store(0, Ordering::Relaxed);
    *st.lock() = Mutable::default();
}

async fn serve_conn(mut conn: Conn, st: &State) -> io::Result<()> {
    while let Some(req) = conn.read_request().await? {
        let keep = handle(&mut conn, st, &req).await?;
        if !keep || req.close {
            return Ok(());
        }
    }
    Ok(())
}

fn json_response(status: u16, body: &Value, extra: &[(&str, String)], close: bool) -> Vec<u8> {
    let bytes = body.to_string().into_bytes();
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", "application/json".to_string()),
        ("content-length", bytes.len().to_string()),
    ];
    if close {
        headers.push(("connection", "close".to_string()));
    }
    headers.extend(extra.iter().cloned());
    let mut out = Vec::with_capacity(bytes.len() + 256);
    write_head(&mut out, status, &headers);
    out.extend_from_slice(&bytes);
    out
}

/// Handle one request; `Ok(false)` closes the connection.
async fn handle(conn: &mut Conn, st: &State, req: &Request) -> io::Result<bool> {
    let path = req.path.as_str();
    if path.starts_with("/__mock/") {
        return control(conn, st, req).await;
    }
    if req.method == "GET" && (path.ends_with("/models") || path == "/health") {
        let body = if path == "/health" {
            json!({"ok": true})
        } else {
            dialect::models_list(&st.cfg.models)
        };
        conn.send(&json_response(200, &body, &[], false)).await?;
        return Ok(true);
    }
    let Some(call) = dialect::classify(&req.method, path, &req.query, &req.body) else {
        let body = json!({"error": {"message": format!("polyroute-mock: no route for {} {path}", req.method),
                                    "type": "not_found"}});
        conn.send(&json_response(404, &body, &[], false)).await?;
        return Ok(true);
    };
    let seq = st.seq.fetch_add(1, Ordering::Relaxed) + 1;
    st.generation_calls.fetch_add(1, Ordering::Relaxed);
    let spec = {
        let mut m = st.lock();
        let credential = req
            .header("authorization")
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
            .or_else(|| req.header("x-api-key"))
            .or_else(|| req.header("api-key"))
            .or_else(|| req.header("x-goog-api-key"));
        let by_key = credential.and_then(|k| m.by_key.get(k).cloned());
        let spec = match by_key.as_deref().or(req.header("x-mock-fault")) {
            Some(h) => h.to_string(),
            None => m
                .script
                .pop_front()
                .or_else(|| m.standing.clone())
                .unwrap_or_default(),
        };
        *m.by_path.entry(path.to_string()).or_default() += 1;
        *m.by_fault
            .entry(if spec.is_empty() {
                "ok".to_string()
            } else {
                spec.clone()
            })
            .or_default() += 1;
        if st.cfg.keep_requests > 0 {
            if m.received.len() >= st.cfg.keep_requests {
                m.received.pop_front();
            }
            let body = if call.body.is_null() {
                Value::String(String::from_utf8_lossy(&req.body).to_string())
            } else {
                call.body.clone()
            };
            m.received.push_back(Received {
                seq,
                method: req.method.clone(),
                path: req.path.clone(),
                query: req.query.clone(),
                headers: req.headers.clone(),
                body,
                fault: spec.clone(),
            });
        }
        spec
    };
    let faults = match Faults::parse(&spec) {
        Ok(f) => f,
        Err(e) => {
            conn.send(&json_response(
                400,
                &json!({"error": {"message": e, "type": "mock_fault"}}),
                &[],
                false,
            ))
            .await?;
            return Ok(true);
        }
    };
    respond(conn, st, req, &call, &faults, seq).await
}

async fn respond(
    conn: &mut Conn,
    st: &State,
    req: &Request,
    call: &Call,
    f: &Faults,
    seq: u64,
) -> io::Result<bool> {
    if let Some(d) = f.first_byte_delay {
        tokio::time::sleep(d).await;
    }
    if f.close {
        return Ok(false);
    }
    if f.stall {
        let _ = tokio::time::timeout(Duration::from_secs(300), conn.wait_closed()).await;
        return Ok(false);
    }
    let label = [("x-mock-server", st.cfg.label.clone())];
    if let Some(status) = f.status {
        let mut extra = label.to_vec();
        if status == 429 {
            extra.push(("retry-after", f.retry_after.unwrap_or(1).to_string()));
        } else if let Some(r) = f.retry_after {
            extra.push(("retry-after", r.to_string()));
        }
        conn.send(&json_response(
            status,
            &dialect::error_body(call.dialect, status),
            &extra,
            false,
        ))
        .await?;
        return Ok(true);
    }
    if f.wrong_content_type {
        let body = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
        let mut out = Vec::new();
        write_head(
            &mut out,
            200,
            &[
                ("content-type", "text/html; charset=utf-8".to_string()),
                ("content-length", body.len().to_string()),
            ],
        );
        out.extend_from_slice(body);
        conn.send(&out).await?;
        return Ok(true);
    }
    if req.path.ends_with("/embeddings") || req.path.ends_with(":batchEmbedContents") {
        let (status, body) = if call.dialect == dialect::Dialect::Gemini {
            crate::embeddings::respond_gemini(&call.model, &call.body)
        } else {
            crate::embeddings::respond(&call.body)
        };
        conn.send(&json_response(status, &body, &label, false))
            .await?;
        return Ok(true);
    }
    let replay_spec = req
        .header("x-mock-replay")
        .map(str::to_string)
        .or_else(|| st.cfg.replay.clone());
    let canned = match (&replay_spec, &st.cfg.wire_dir) {
        (Some(spec), Some(dir)) => match replay::load(dir, spec) {
            Ok(c) => Some(c),
            Err(e) => {
                let body = json!({"error": {"message": e, "type": "mock_replay"}});
                conn.send(&json_response(500, &body, &[], false)).await?;
                return Ok(true);
            }
        },
        (Some(_), None) => {
            let body = json!({"error": {"message": "replay requested but the mock has no wire dir", "type": "mock_replay"}});
            conn.send(&json_response(500, &body, &[], false)).await?;
            return Ok(true);
        }
        _ => None,
    };
    let chunks = req
        .header("x-mock-chunks")
        .and_then(|c| c.parse().ok())
        .or(st.cfg.chunks);
    let (status, extra, body, events) = match canned {
        Some(Canned {
            status,
            headers,
            body,
            events,
        }) => (status, headers, body, events),
        None => {
            // A synthetic answer is only given to a request the provider would accept.
            if call.dialect == dialect::Dialect::Anthropic {
                if let Some(problem) = crate::shape::anthropic_request_problem(&call.body) {
                    let body = json!({"type": "error", "request_id": "req_mock",
                                      "error": {"type": "invalid_request_error", "message": problem}});
                    conn.send(&json_response(400, &body, &label, false)).await?;
                    return Ok(true);
                }
            }
            let reply = Reply::new(call, &st.cfg.label, chunks, seq, req.body.len());
            if call.stream {
                (
                    200,
                    vec![],
                    None,
                    Some(dialect::stream_events(call, &reply)),
                )
            } else {
                (
                    200,
                    vec![],
                    Some(dialect::unary(call, &reply).to_string().into_bytes()),
                    None,
                )
            }
        }
    };
    let mut hdrs: Vec<(&str, String)> = label.to_vec();
    for (k, v) in &extra {
        hdrs.push((k.as_str(), v.clone()));
    }
    if let Some(mut events) = events {
        if f.garbage {
            events = vec![b"data: {\"id\": \"chatcmpl-garbage\", \"choices\": [{\"delta\": {\"content\"\n\n".to_vec(); 3];
        }
        let cut_after = if f.cut {
            Some((events.len() / 2).max(1))
        } else {
            None
        };
        if let Some(n) = f.endless_line {
            events.truncate(2);
            let mut line = b"data: ".to_vec();
            line.resize(line.len() + n, b'x');
            events.push(line);
        }
        return send_stream(conn, st, status, hdrs, events, f, cut_after).await;
    }
    let mut body = body.unwrap_or_default();
    if f.garbage {
        body = b"{\"id\": \"chatcmpl-garbage\", \"choices\": [{\"message\": <<not json>>".to_vec();
    }
    hdrs.push(("content-type", "application/json".to_string()));
    hdrs.push(("content-length", body.len().to_string()));
    let mut out = Vec::with_capacity(body.len() + 256);
    write_head(&mut out, status, &hdrs);
    if f.cut {
        out.extend_from_slice(&body[..body.len() / 2]);
        conn.send(&out).await?;
        return Ok(false);
    }
    if let Some(d) = f.body_delay {
        let half = body.len() / 2;
        out.extend_from_slice(&body[..half]);
        conn.send(&out).await?;
        tokio::time::sleep(d).await;
        conn.send(&body[half..]).await?;
        return Ok(true);
    }
    out.extend_from_slice(&body);
    conn.send(&out).await?;
    Ok(true)
}

async fn send_stream(
    conn: &mut Conn,
    st: &State,
    status: u16,
    mut hdrs: Vec<(&str, String)>,
    events: Vec<Vec<u8>>,
    f: &Faults,
    cut_after: Option<usize>,
) -> io::Result<bool> {
    let delay = f.chunk_delay;
    hdrs.push(("content-type", "text/event-stream".to_string()));
    hdrs.push(("cache-control", "no-cache".to_string()));
    hdrs.push(("transfer-encoding", "chunked".to_string()));
    let mut out = Vec::with_capacity(1024);
    write_head(&mut out, status, &hdrs);
    let n = events.len();
    for (i, ev) in events.iter().enumerate() {
        if cut_after == Some(i) {
            // Whatever is buffered goes out, then the connection dies without the terminating chunk.
            let _ = conn.send(&out).await;
            return Ok(false);
        }
        if f.stall_after == Some(i) {
            let _ = conn.send(&out).await;
            let _ = tokio::time::timeout(Duration::from_secs(300), conn.wait_closed()).await;
            return Ok(false);
        }
        if i > 0 {
            if let Some(d) = delay {
                if !out.is_empty() {
                    if conn.send(&out).await.is_err() {
                        st.aborted_streams.fetch_add(1, Ordering::Relaxed);
                        return Ok(false);
                    }
                    out.clear();
                }
                tokio::time::sleep(d).await;
            }
        }
        write_chunk(&mut out, ev);
        if i + 1 == n {
            out.extend_from_slice(LAST_CHUNK);
        }
        // Head + first event go together; then one send per event (the last with the terminator).
        if delay.is_none() || i + 1 == n {
            if conn.send(&out).await.is_err() {
                st.aborted_streams.fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
            out.clear();
        }
    }
    if n == 0 {
        out.extend_from_slice(LAST_CHUNK);
        conn.send(&out).await?;
    }
    Ok(true)
}

async fn control(conn: &mut Conn, st: &State, req: &Request) -> io::Result<bool> {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let (status, out) = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/__mock/calls") => (200, stats(st)),
        ("POST", "/__mock/reset") => {
            reset(st);
            (200, json!({"ok": true}))
        }
        ("POST", "/__mock/key-fault") => {
            let key = body.get("key").and_then(Value::as_str).unwrap_or("");
            let spec = body.get("fault").and_then(Value::as_str).unwrap_or("");
            match Faults::parse(spec) {
                Err(e) => (400, json!({"error": {"message": e}})),
                Ok(_) if key.is_empty() => (400, json!({"error": {"message": "key is empty"}})),
                Ok(_) => {
                    st.lock().by_key.insert(key.to_string(), spec.to_string());
                    (200, json!({"ok": true}))
                }
            }
        }
        ("POST", "/__mock/script") => {
            let list = body.get("faults").unwrap_or(&body);
            let specs: Vec<String> = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            match specs.iter().map(|s| Faults::parse(s)).find_map(Result::err) {
                Some(e) => (400, json!({"error": {"message": e}})),
                None => {
                    let mut m = st.lock();
                    if body
                        .get("replace")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                    {
                        m.script.clear();
                    }
                    m.script.extend(specs);
                    (200, json!({"queued": m.script.len()}))
                }
            }
        }
        ("POST", "/__mock/fault") => {
            let spec = body
                .get("fault")
                .and_then(Value::as_str)
                .map(str::to_string);
            match spec.as_deref().map(Faults::parse) {
                Some(Err(e)) => (400, json!({"error": {"message": e}})),
                _ => {
                    st.lock().standing = spec;
                    (200, json!({"ok": true}))
                }
            }
        }
        _ => (
            404,
            json!({"error": {"message": "unknown control endpoint"}}),
        ),
    };
    conn.send(&json_response(status, &out, &[], false)).await?;
    Ok(true)
}
