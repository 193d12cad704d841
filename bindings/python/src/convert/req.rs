//! A request dict read field by field into a `ChatRequest`, for the requests most calls send.
//!
//! The serde path ([`super::de`]) hands every key to the request's visitor as an owned string and every value
//! through the deserializer's dispatch; here a key is matched as the borrowed text of its Python string and the
//! common values (`model`, each message's `role` and text `content`) are read directly. Every other value goes
//! through the same `Deserialize` impl on the same [`PyDe`] as on the serde path, and unnamed keys land in `extra`
//! in dict order as there. Anything that does not read cleanly gives `None`, and the caller takes the serde path,
//! which decides (and words any error) as before. Debug builds (the test suite's wheel) run both and raise if the
//! requests differ.

use polyroute::core::types::{Message, Role};
use polyroute::ChatRequest;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::de::PyDe;
use super::to_value;

/// `v` read by its own `Deserialize` impl, as the serde path reads it.
fn typed<T: DeserializeOwned>(v: &Bound<'_, PyAny>) -> Option<T> {
    T::deserialize(PyDe(v)).ok()
}

/// An optional string: None, a `str`, else what the serde path makes of it.
fn opt_string(v: &Bound<'_, PyAny>) -> Option<Option<String>> {
    if v.is_none() {
        return Some(None);
    }
    match v.cast_exact::<PyString>() {
        Ok(s) => Some(Some(s.to_str().ok()?.to_owned())),
        Err(_) => typed(v),
    }
}

/// A dict key as text (keys that are not `str` go to the serde path, which raises its `TypeError`).
fn key<'a>(k: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    k.cast_exact::<PyString>().ok()?.to_str().ok()
}

/// An unnamed field kept in `extra`, as the serde path keeps it (`to_value` reads as `Value`'s deserializer).
fn keep(extra: &mut Map<String, Value>, k: &str, v: &Bound<'_, PyAny>) -> Option<()> {
    extra.insert(k.to_owned(), to_value(v).ok()?);
    Some(())
}

fn role(v: &Bound<'_, PyAny>) -> Option<Role> {
    if let Ok(s) = v.cast_exact::<PyString>() {
        return match s.to_str().ok()? {
            "system" => Some(Role::System),
            "developer" => Some(Role::Developer),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        };
    }
    typed(v)
}

fn message(obj: &Bound<'_, PyAny>) -> Option<Message> {
    let d = obj.cast::<PyDict>().ok()?;
    let mut role_of = None;
    let mut m = Message {
        role: Role::User,
        content: None,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    };
    for (k, v) in d.iter() {
        match key(&k)? {
            "role" => role_of = Some(role(&v)?),
            "content" => {
                m.content = if v.is_none() {
                    None
                } else if let Ok(s) = v.cast_exact::<PyString>() {
                    Some(Value::String(s.to_str().ok()?.to_owned()))
                } else {
                    typed(&v)?
                };
            }
            "name" => m.name = opt_string(&v)?,
            "tool_calls" => m.tool_calls = typed(&v)?,
            "tool_call_id" => m.tool_call_id = opt_string(&v)?,
            other => keep(&mut m.extra, other, &v)?,
        }
    }
    m.role = role_of?;
    Some(m)
}

fn messages(v: &Bound<'_, PyAny>) -> Option<Vec<Message>> {
    match v.cast_exact::<PyList>() {
        Ok(l) => l.iter().map(|m| message(&m)).collect(),
        Err(_) => typed(v),
    }
}

/// Fill `r` (as [`empty`] makes it) with the request in `d`, before validation, in place (a request is a large
/// value to move); `None` when the serde path must decide (`r` is then partly filled).
pub(super) fn read(d: &Bound<'_, PyDict>, r: &mut ChatRequest) -> Option<()> {
    let mut msgs = None;
    for (k, v) in d.iter() {
        match key(&k)? {
            "model" => r.model = opt_string(&v)?,
            "messages" => msgs = Some(messages(&v)?),
            "models" => r.models = typed(&v)?,
            "route" => r.route = opt_string(&v)?,
            "provider" => r.provider = typed(&v)?,
            "tools" => r.tools = typed(&v)?,
            "tool_choice" => r.tool_choice = typed(&v)?,
            "response_format" => r.response_format = typed(&v)?,
            "max_tokens" => r.max_tokens = typed(&v)?,
            "max_completion_tokens" => r.max_completion_tokens = typed(&v)?,
            "stream" => r.stream = typed(&v)?,
            "session_id" => r.session_id = opt_string(&v)?,
            "prompt_cache_key" => r.prompt_cache_key = opt_string(&v)?,
            "service_tier" => r.service_tier = opt_string(&v)?,
            "plugins" => r.plugins = typed(&v)?,
            other => keep(&mut r.extra, other, &v)?,
        }
    }
    r.messages = msgs?;
    Some(())
}

/// Whether two parsed requests are the same, `extra`'s order included (map equality ignores it).
pub(super) fn same(a: &ChatRequest, b: &ChatRequest) -> bool {
    a == b && serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
}
