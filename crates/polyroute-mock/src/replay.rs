//! Replaying recorded payloads from the shared wire directory (read at run time, never copied).

use std::path::Path;

use serde_json::Value;

/// A recorded response ready to send.
#[derive(Debug, Clone)]
pub struct Canned {
    /// HTTP status.
    pub status: u16,
    /// Extra headers recorded with it (`retry-after`, `request-id`).
    pub headers: Vec<(String, String)>,
    /// A whole JSON body, or …
    pub body: Option<Vec<u8>>,
    /// … SSE events, each framed with its trailing blank line.
    pub events: Option<Vec<Vec<u8>>>,
}

/// Split a raw `text/event-stream` body into framed events.
#[must_use]
pub fn split_sse(text: &str) -> Vec<Vec<u8>> {
    let norm = text.replace("\r\n", "\n");
    norm.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| format!("{}\n\n", e.trim_start_matches('\n')).into_bytes())
        .collect()
}

/// Load `spec` (a path relative to `wire_dir`, optionally `#k` to pick exchange `k` of an `exchange.*.json`).
///
/// # Errors
/// A message when the file is missing or malformed.
pub fn load(wire_dir: &Path, spec: &str) -> Result<Canned, String> {
    let (rel, index) = match spec.rsplit_once('#') {
        Some((r, k)) => (
            r,
            k.parse::<usize>()
                .map_err(|_| format!("bad exchange index in {spec:?}"))?,
        ),
        None => (spec, 0),
    };
    if rel.split('/').any(|c| c == "..") {
        return Err(format!(
            "replay path {rel:?} must stay inside the wire directory"
        ));
    }
    let path = wire_dir.join(rel);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if rel.ends_with(".sse") {
        return Ok(Canned {
            status: 200,
            headers: vec![],
            body: None,
            events: Some(split_sse(&text)),
        });
    }
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let file = rel.rsplit('/').next().unwrap_or(rel);
    if file.starts_with("exchange.") {
        let ex = v
            .as_array()
            .and_then(|a| a.get(index))
            .ok_or_else(|| format!("{rel} has no exchange #{index}"))?;
        let resp = &ex["response"];
        let status = resp["status_code"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200);
        let mut headers = Vec::new();
        if let Some(h) = resp["headers"].as_object() {
            for (k, val) in h {
                let k = k.to_ascii_lowercase();
                if matches!(k.as_str(), "retry-after" | "request-id" | "x-request-id") {
                    if let Some(s) = val.as_str() {
                        headers.push((k, s.to_string()));
                    }
                }
            }
        }
        return Ok(match &resp["body"] {
            Value::String(sse) => Canned {
                status,
                headers,
                body: None,
                events: Some(split_sse(sse)),
            },
            other => Canned {
                status,
                headers,
                body: Some(other.to_string().into_bytes()),
                events: None,
            },
        });
    }
    let status = v
        .pointer("/error/code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(200);
    Ok(Canned {
        status,
        headers: vec![],
        body: Some(text.into_bytes()),
        events: None,
    })
}
