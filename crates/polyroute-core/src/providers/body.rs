//! [`NativeBody`]: a translated request body as JSON text, readable as a [`Value`] on demand.
//!
//! The Anthropic and Gemini dialects serialize typed views that borrow from the canonical request straight to
//! text, so translating a request builds no `Value` tree; the engine sends [`NativeBody::into_bytes`]. Reading the
//! body as a `Value` (tests, tools, debugging) parses the text once and keeps the result.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};

/// The provider-native JSON request body.
///
/// Dereferences to the body as a [`Value`] (parsed on first use, then kept), so `body["messages"]` works;
/// [`NativeBody::as_bytes`] and [`NativeBody::into_bytes`] give the text to send without parsing anything.
#[derive(Clone, Default)]
pub struct NativeBody {
    /// Serialized JSON (always produced by `serde_json`, so valid JSON).
    json: String,
    value: OnceLock<Value>,
}

impl NativeBody {
    /// Serialize `body` to JSON text; `capacity` is a size guess for the output buffer.
    pub(crate) fn from_serialize<T: Serialize + ?Sized>(body: &T, capacity: usize) -> Result<Self> {
        let mut buf = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut buf, body)
            .map_err(|e| Error::invalid("body", format!("cannot serialize the request: {e}")))?;
        let json = String::from_utf8(buf)
            .map_err(|e| Error::invalid("body", format!("cannot serialize the request: {e}")))?;
        Ok(Self {
            json,
            value: OnceLock::new(),
        })
    }

    /// A body built as a [`Value`] (the OpenAI dialect edits the request as one).
    pub(crate) fn from_value(v: Value) -> Result<Self> {
        let json = serde_json::to_string(&v)
            .map_err(|e| Error::invalid("body", format!("cannot serialize the request: {e}")))?;
        Ok(Self {
            json,
            value: OnceLock::from(v),
        })
    }

    /// The JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// The JSON text as bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.json.as_bytes()
    }

    /// The JSON text as bytes, without copying.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.json.into_bytes()
    }

    /// The body as a JSON value (parsed on the first call, then kept).
    #[must_use]
    pub fn value(&self) -> &Value {
        self.value
            .get_or_init(|| serde_json::from_str(&self.json).unwrap_or(Value::Null))
    }
}

impl Deref for NativeBody {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for NativeBody {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl PartialEq<Value> for NativeBody {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl fmt::Debug for NativeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NativeBody").field(&self.json).finish()
    }
}

impl Serialize for NativeBody {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests assert by unwrapping
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_value_agree() {
        let b = NativeBody::from_serialize(&json!({"a": [1, "x"], "b": {"c": null}}), 8).unwrap();
        assert_eq!(b.as_str(), r#"{"a":[1,"x"],"b":{"c":null}}"#);
        assert_eq!(b["a"][1], "x");
        assert_eq!(b, json!({"a": [1, "x"], "b": {"c": null}}));
        assert_eq!(serde_json::to_value(&b).unwrap(), *b.value());
        let v = NativeBody::from_value(json!({"k": 1})).unwrap();
        assert_eq!(v.clone().into_bytes(), br#"{"k":1}"#.to_vec());
        assert_eq!(v["k"], 1);
    }
}
