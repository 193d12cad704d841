//! Deserialization of [`ChatRequest`] and [`Message`], written out instead of derived: both keep every field they
//! do not name in `extra`, and a derived `#[serde(flatten)]` buffers the whole object into an intermediate tree
//! first (about twice the work of reading it directly). The behaviour is a JSON object's: a repeated key keeps
//! its last value (as when the body is first read into a [`Value`]), `extra` keeps first-seen order, and errors
//! word the fields as the derived code did (`missing field`, `invalid type`), so paths and messages do not change.
//!
//! [`ChatRequest::from_slice`] reads a body straight into the request, without a [`Value`] tree in between.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::request::{ChatRequest, Message};
use crate::error::{Error, Result};

/// An object key, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct K;
        impl<'de> Visitor<'de> for K {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                s: &'de str,
            ) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(K)
    }
}

/// Keep an unnamed field in `extra` (a repeated one keeps its first place and its last value).
fn keep<'de, A: MapAccess<'de>>(
    extra: &mut Map<String, Value>,
    key: Cow<'de, str>,
    m: &mut A,
) -> std::result::Result<(), A::Error> {
    let v: Value = m.next_value()?;
    extra.insert(key.into_owned(), v);
    Ok(())
}

impl<'de> Deserialize<'de> for ChatRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChatRequest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct ChatRequest")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<ChatRequest, A::Error> {
                let mut r = ChatRequest::default();
                let mut messages = None;
                while let Some(Key(k)) = m.next_key()? {
                    match k.as_ref() {
                        "model" => r.model = m.next_value()?,
                        "models" => r.models = m.next_value()?,
                        "route" => r.route = m.next_value()?,
                        "provider" => r.provider = m.next_value()?,
                        "messages" => messages = Some(m.next_value()?),
                        "tools" => r.tools = m.next_value()?,
                        "tool_choice" => r.tool_choice = m.next_value()?,
                        "response_format" => r.response_format = m.next_value()?,
                        "max_tokens" => r.max_tokens = m.next_value()?,
                        "max_completion_tokens" => r.max_completion_tokens = m.next_value()?,
                        "stream" => r.stream = m.next_value()?,
                        "session_id" => r.session_id = m.next_value()?,
                        "prompt_cache_key" => r.prompt_cache_key = m.next_value()?,
                        "service_tier" => r.service_tier = m.next_value()?,
                        "plugins" => r.plugins = m.next_value()?,
                        _ => keep(&mut r.extra, k, &mut m)?,
                    }
                }
                r.messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct Message")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Message, A::Error> {
                let mut role = None;
                let mut msg = Message {
                    role: super::request::Role::User,
                    content: None,
                    name: None,
                    tool_calls: None,
                    tool_call_id: None,
                    extra: Map::new(),
                };
                while let Some(Key(k)) = m.next_key()? {
                    match k.as_ref() {
                        "role" => role = Some(m.next_value()?),
                        "content" => msg.content = m.next_value()?,
                        "name" => msg.name = m.next_value()?,
                        "tool_calls" => msg.tool_calls = m.next_value()?,
                        "tool_call_id" => msg.tool_call_id = m.next_value()?,
                        _ => keep(&mut msg.extra, k, &mut m)?,
                    }
                }
                msg.role = role.ok_or_else(|| de::Error::missing_field("role"))?;
                Ok(msg)
            }
        }
        d.deserialize_map(V)
    }
}

impl ChatRequest {
    /// Parse and validate a request body given as JSON text: the same request, and the same errors, as reading it
    /// into a [`Value`] and calling [`ChatRequest::from_value`], without building the tree. The caller checks the
    /// body's size and nesting first ([`super::limits::prescan_json`]).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`]: `$` for a body that is not JSON or not an object (the serde message), else
    /// the dotted path of the bad field, as [`ChatRequest::from_value`] names it.
    pub fn from_slice(body: &[u8]) -> Result<Self> {
        if let Some(r) = Self::try_from_slice(body) {
            return Ok(r);
        }
        // Not JSON, not an object, or a field that does not fit: the `Value` path decides, so the answer (and
        // the field the error names) is exactly that path's.
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Error::invalid("$", format!("body is not valid JSON: {e}")))?;
        Self::from_value(&v)
    }

    /// [`ChatRequest::from_slice`] when the body is a valid request, else `None` (without working out why: a
    /// caller with its own wording of the errors takes its `Value` path then).
    #[must_use]
    pub fn try_from_slice(body: &[u8]) -> Option<Self> {
        if body.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        serde_json::from_slice::<ChatRequest>(body)
            .ok()?
            .validated()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    // The test reads the conformance cases and the recorded requests; the core itself never does.
    #![allow(clippy::disallowed_methods)]
    use super::*;

    /// The `Value` path the typed parse must equal: read the body into a tree, then [`ChatRequest::from_value`].
    fn through_value(body: &[u8]) -> Result<ChatRequest> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Error::invalid("$", format!("body is not valid JSON: {e}")))?;
        ChatRequest::from_value(&v)
    }

    fn same(body: &[u8]) {
        let shown = String::from_utf8_lossy(body);
        let (a, b) = (ChatRequest::from_slice(body), through_value(body));
        match (&a, &b) {
            (Ok(x), Ok(y)) => {
                assert_eq!(x, y, "{shown}");
                // `extra` in the same order too (map equality ignores it).
                assert_eq!(
                    serde_json::to_string(x).unwrap(),
                    serde_json::to_string(y).unwrap(),
                    "{shown}"
                );
                assert!(ChatRequest::try_from_slice(body).is_some(), "{shown}");
            }
            (Err(x), Err(y)) => {
                assert_eq!(x.to_string(), y.to_string(), "{shown}");
                assert!(ChatRequest::try_from_slice(body).is_none(), "{shown}");
            }
            _ => panic!("{shown}: typed {a:?} but value path {b:?}"),
        }
    }

    #[test]
    fn the_typed_parse_equals_the_value_path() {
        let bodies: &[&str] = &[
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}]}"#,
            r#" {"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"}],"name":"n","cache_control":{"type":"ephemeral"}}],"model":"a/b","temperature":0.2,"top_p":1,"user":"u","seed":-3}"#,
            // Repeated keys: the last value wins, in the first key's place.
            r#"{"model":"a/b","model":"a/c","messages":[{"role":"user","content":"x","content":"y"}],"seed":1,"stop":"s","seed":2}"#,
            r#"{"model":null,"models":["a/b","a/c"],"messages":[{"role":"user","content":null,"tool_calls":null}]}"#,
            r#"{"model":"a/b","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"1"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","stream":true,"max_tokens":5,"max_completion_tokens":6,"session_id":"s","prompt_cache_key":"k","service_tier":"auto","plugins":[{"id":"web"}],"route":"fallback","response_format":{"type":"json_object"}}"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"provider":{"order":[" x "],"allow_fallbacks":false,"sort":"price","only":["y"],"ignore":["z"],"quantizations":["fp8"],"data_collection":"deny","zdr":true,"max_price":{"prompt":1,"completion":"2"}}}"#,
            // Errors: each names the same field with the same words.
            r#"{"model":"a/b"}"#,
            r#"{"model":"a/b","messages":[]}"#,
            r#"{"model":5,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"a/b","messages":[{"role":"robot","content":"hi"}]}"#,
            r#"{"model":"a/b","messages":[{"content":"hi"}]}"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"max_tokens":0}"#,
            r#"{"model":"a/b","models":["a","b","c","d"],"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"provider":{"sort":"fastest"}}"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"provider":{"nope":1}}"#,
            r#"{"model":"a/b","messages":{"role":"user"}}"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}],"stream":"yes"}"#,
            r#"[{"model":"a/b"}]"#,
            r#""text""#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}]"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"hi"}]} x"#,
            r#"{"model":"a/b","messages":[{"role":"user","content":"\ud800"}]}"#,
            r#"{"mod\u0065l":"a/\u0062","messages":[{"role":"user","content":"h\"i"}]}"#,
            "",
        ];
        for b in bodies {
            same(b.as_bytes());
        }
    }

    #[test]
    fn conformance_and_recorded_requests_parse_alike() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let cases: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{root}/tests/conformance/request/validation.json"))
                .unwrap(),
        )
        .unwrap();
        let mut n = 0;
        for c in cases.as_array().unwrap() {
            if let Some(r) = c.pointer("/input/request") {
                same(&serde_json::to_vec(r).unwrap());
                n += 1;
            }
        }
        assert!(n > 5, "{n} conformance requests");
        let wire = format!("{root}/../shared/data/wire/openai");
        let mut m = 0;
        for e in std::fs::read_dir(&wire).into_iter().flatten().flatten() {
            let p = e.path();
            if p.to_string_lossy().ends_with(".request.json") {
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                // A recorded exchange holds the request body as sent (or the body under `body`).
                let body = v.get("body").unwrap_or(&v);
                same(&serde_json::to_vec(body).unwrap());
                m += 1;
            }
        }
        assert!(m >= 2, "{m} recorded requests under {wire}");
    }
}
