//! The other API surfaces clients speak, translated to and from the one internal request (the OpenAI Chat
//! Completions request with OpenRouter's extensions, [`crate::types::ChatRequest`]): Anthropic's Messages API
//! ([`messages`]) and OpenAI's Responses API ([`responses`]). Routing, limits, failover and billing stay the
//! chat lifecycle's; these modules only change the shape of what goes in and comes out.
//!
//! Pure code: each direction is a function over JSON values, and each stream translator a state machine fed the
//! chat chunks one at a time, returning the surface's events ([`Event`]). Bad input is an
//! [`crate::Error::InvalidRequest`] naming the field in the surface's own terms (`messages[1].content[0].source`).
//!
//! ```
//! use polyroute_core::surfaces::messages;
//! use serde_json::json;
//!
//! let chat = messages::to_chat(&json!({"model": "anthropic/claude-sonnet-4.5", "max_tokens": 64,
//!     "system": "Be brief.", "messages": [{"role": "user", "content": "Hi"}]}))?;
//! assert_eq!(chat["messages"][0], json!({"role": "system", "content": "Be brief."}));
//! assert_eq!(chat["max_tokens"], 64);
//! # Ok::<(), polyroute_core::Error>(())
//! ```

pub mod messages;
mod messages_stream;
pub mod responses;
mod responses_stream;
pub mod tokens;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub use messages_stream::MessagesStream;
pub use responses_stream::ResponsesStream;

/// One server-sent event of a surface stream: its `event:` name and its `data:` JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event type (`message_start`, `response.output_text.delta`, …).
    pub name: &'static str,
    /// The event's JSON (carries the same `type`).
    pub data: Value,
}

impl Event {
    /// Append `event: <name>\ndata: <json>\n\n`.
    pub fn write_sse(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(self.name.as_bytes());
        buf.extend_from_slice(b"\ndata: ");
        // Writing a `Value` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *buf, &self.data);
        buf.extend_from_slice(b"\n\n");
    }

    /// The events as SSE text.
    #[must_use]
    pub fn sse(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::with_capacity(events.len() * 128);
        for e in events {
            e.write_sse(&mut out);
        }
        out
    }
}

/// An event as a stream translator gives it, kept in parts where that is cheaper: made into [`Event`]s, or
/// written as SSE text directly (the bytes [`Event::write_sse`] writes for those events).
trait Render {
    fn into_events(self, out: &mut Vec<Event>);
    fn write_sse(self, buf: &mut Vec<u8>);
}

/// Where a stream translator's events go: [`Event`]s, or SSE text ([`SseText`]).
trait Sink {
    fn put<R: Render>(&mut self, e: R);
}

impl Sink for Vec<Event> {
    fn put<R: Render>(&mut self, e: R) {
        e.into_events(self);
    }
}

/// Append `s` as a JSON string (serde_json's bytes).
fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    // Writing a string into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *buf, s);
}

/// SSE text appended to a buffer.
struct SseText<'b>(&'b mut Vec<u8>);

impl Sink for SseText<'_> {
    fn put<R: Render>(&mut self, e: R) {
        e.write_sse(self.0);
    }
}

/// The body as an object, or an error saying it must be one.
fn object(body: &Value) -> Result<&Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| Error::invalid("$", "the request body must be a JSON object"))
}

/// A string field, if present; an error naming it when present with another type.
fn opt_str<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid(path, "must be a string")),
    }
}

/// A required string field.
fn req_str<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str> {
    opt_str(m, key, path)?.ok_or_else(|| Error::invalid(path, "required"))
}

/// An array field (absent → empty).
fn opt_array<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a [Value]> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Error::invalid(path, "must be an array")),
    }
}

/// A non-negative integer field.
fn opt_u64(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::invalid(path, "must be a non-negative integer")),
    }
}

/// Copy the OpenRouter routing additions and the fields both requests spell alike.
fn copy_common(src: &Map<String, Value>, out: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = src.get(*k).filter(|v| !v.is_null()) {
            out.insert((*k).to_string(), v.clone());
        }
    }
}

/// OpenRouter's additions every surface accepts, copied to the chat request unchanged.
const ROUTING_FIELDS: &[&str] = &[
    "models",
    "provider",
    "route",
    "plugins",
    "session_id",
    "transforms",
    "trace",
    "debug",
    "usage",
];

/// `serde_json::Value::pointer` for a path of plain tokens (no `~` escapes), without the allocations `pointer`
/// makes for every token: an object's member by name, an array's element by a decimal index.
pub(crate) trait At {
    fn at(&self, path: &[&str]) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(self, |v, k| match v {
            Value::Object(m) => m.get(*k),
            Value::Array(a) => {
                // As `pointer`: digits only, and no leading zero but for "0" itself.
                if k.is_empty()
                    || !k.bytes().all(|b| b.is_ascii_digit())
                    || (k.len() > 1 && k.starts_with('0'))
                {
                    return None;
                }
                a.get(k.parse::<usize>().ok()?)
            }
            _ => None,
        })
    }
}

/// A chat usage object's token counts: (prompt incl. cache, completion, cached reads, cache writes, reasoning).
fn usage_counts(u: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |p: &[&str]| u.at(p).and_then(Value::as_u64).unwrap_or(0);
    (
        n(&["prompt_tokens"]),
        n(&["completion_tokens"]),
        n(&["prompt_tokens_details", "cached_tokens"]),
        n(&["prompt_tokens_details", "cache_write_tokens"]),
        n(&["completion_tokens_details", "reasoning_tokens"]),
    )
}

/// The JSON text of a tool call's `input` / `arguments`: a string as it is, anything else serialized.
fn arguments_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The object a tool call's argument text holds (`{}` when empty or not an object).
fn arguments_object(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    }
}

/// The short id part of a generation id, for item ids (`gen-1700000000-ab12` → `1700000000ab12`).
fn id_tail(id: &str) -> String {
    id.chars().filter(char::is_ascii_alphanumeric).collect()
}

#[cfg(test)]
mod at_tests {
    use super::At;
    use serde_json::json;

    #[test]
    fn at_reads_what_pointer_reads() {
        let v = json!({"choices": [{"delta": {"content": "x"}}, 2], "a": {"0": 1, "01": 2, "b": null},
                       "u": {"prompt_tokens": 3}});
        for p in [
            "/choices/0",
            "/choices/1",
            "/choices/2",
            "/choices/01",
            "/choices/x",
            "/choices/-1",
            "/choices/+1",
            "/choices/",
            "/choices/0/delta/content",
            "/a/0",
            "/a/01",
            "/a/b",
            "/a/c",
            "/u/prompt_tokens",
            "/u/prompt_tokens/x",
            "/missing",
        ] {
            let parts: Vec<&str> = p[1..].split('/').collect();
            assert_eq!(v.at(&parts), v.pointer(p), "{p}");
        }
    }
}
