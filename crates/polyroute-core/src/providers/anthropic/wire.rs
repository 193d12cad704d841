//! The Messages API request body as typed views that borrow from the canonical request and serialize straight
//! to JSON text (no intermediate `Value` tree). Key order matches what the SDKs send: `type` first, then the
//! block's fields, then `cache_control`.

use std::borrow::Cow;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::providers::json::Json;

/// A content block.
pub(super) struct Block<'r> {
    pub kind: Kind<'r>,
    /// `cache_control`, written last (replacing one a forwarded block already has, in place).
    pub cache: Option<&'r Value>,
}

/// What a [`Block`] holds.
pub(super) enum Kind<'r> {
    /// `{"type": "text", "text"}`.
    Text(Cow<'r, str>),
    /// `{"type": "tool_result", "tool_use_id", "content", "is_error"?}`.
    ToolResult {
        id: Cow<'r, str>,
        content: ToolContent<'r>,
        is_error: bool,
    },
    /// `{"type": "image" | "document", "source"}`.
    Media {
        kind: &'static str,
        source: Source<'r>,
    },
    /// `{"type": "thinking", "thinking", "signature"}` from an earlier answer.
    Thinking {
        thinking: &'r str,
        signature: &'r str,
    },
    /// `{"type": "redacted_thinking", "data"}` from an earlier answer.
    RedactedThinking(&'r str),
    /// `{"type": "tool_use", "id", "name", "input"}`.
    ToolUse {
        id: Cow<'r, str>,
        name: Cow<'r, str>,
        input: Json<'r>,
    },
    /// A block given in Anthropic's own shape, forwarded as it is.
    Raw(&'r Map<String, Value>),
}

/// `tool_result.content`.
pub(super) enum ToolContent<'r> {
    Text(&'r str),
    Blocks(Vec<Block<'r>>),
}

/// `source` of an image or document.
pub(super) enum Source<'r> {
    Base64 { media_type: &'r str, data: &'r str },
    Url(&'r str),
}

impl Block<'_> {
    pub fn is_tool_result(&self) -> bool {
        match &self.kind {
            Kind::ToolResult { .. } => true,
            Kind::Raw(m) => {
                super::map_get(m, "type").and_then(Value::as_str) == Some("tool_result")
            }
            _ => false,
        }
    }
}

impl Serialize for Block<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match &self.kind {
            Kind::Raw(src) => {
                let mut replaced = false;
                for (k, v) in *src {
                    match self.cache {
                        Some(cc) if k == "cache_control" => {
                            replaced = true;
                            m.serialize_entry(k, cc)?;
                        }
                        _ => m.serialize_entry(k, v)?,
                    }
                }
                if !replaced {
                    if let Some(cc) = self.cache {
                        m.serialize_entry("cache_control", cc)?;
                    }
                }
                return m.end();
            }
            Kind::Text(text) => {
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", text)?;
            }
            Kind::ToolResult {
                id,
                content,
                is_error,
            } => {
                m.serialize_entry("type", "tool_result")?;
                m.serialize_entry("tool_use_id", id)?;
                match content {
                    ToolContent::Text(t) => m.serialize_entry("content", t)?,
                    ToolContent::Blocks(b) => m.serialize_entry("content", b)?,
                }
                if *is_error {
                    m.serialize_entry("is_error", &true)?;
                }
            }
            Kind::Media { kind, source } => {
                m.serialize_entry("type", kind)?;
                m.serialize_entry("source", source)?;
            }
            Kind::Thinking {
                thinking,
                signature,
            } => {
                m.serialize_entry("type", "thinking")?;
                m.serialize_entry("thinking", thinking)?;
                m.serialize_entry("signature", signature)?;
            }
            Kind::RedactedThinking(data) => {
                m.serialize_entry("type", "redacted_thinking")?;
                m.serialize_entry("data", data)?;
            }
            Kind::ToolUse { id, name, input } => {
                m.serialize_entry("type", "tool_use")?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("input", input)?;
            }
        }
        if let Some(cc) = self.cache {
            m.serialize_entry("cache_control", cc)?;
        }
        m.end()
    }
}

impl Serialize for Source<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Source::Base64 { media_type, data } => {
                m.serialize_entry("type", "base64")?;
                m.serialize_entry("media_type", media_type)?;
                m.serialize_entry("data", data)?;
            }
            Source::Url(url) => {
                m.serialize_entry("type", "url")?;
                m.serialize_entry("url", url)?;
            }
        }
        m.end()
    }
}

/// A turn's `content`: one plain text block is sent as a string (what the official SDKs send).
pub(super) struct Content<'a, 'r>(pub &'a [Block<'r>]);

impl Serialize for Content<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            [Block {
                kind: Kind::Text(t),
                cache: None,
            }] => s.serialize_str(t),
            blocks => {
                let mut seq = s.serialize_seq(Some(blocks.len()))?;
                for b in blocks {
                    seq.serialize_element(b)?;
                }
                seq.end()
            }
        }
    }
}

/// One message of `messages`.
pub(super) struct Turn<'r> {
    pub role: &'static str,
    pub blocks: Vec<Block<'r>>,
}

impl Serialize for Turn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("role", self.role)?;
        m.serialize_entry("content", &Content(&self.blocks))?;
        m.end()
    }
}

/// A JSON schema whose root is an object, as `input_schema` requires: the given object without `$schema`, its
/// `type` set to `object` (in place, or added last); anything else becomes `{"type": "object", "properties": {}}`.
pub(super) struct InputSchema<'r>(pub Option<&'r Map<String, Value>>);

impl Serialize for InputSchema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Some(src) => {
                let mut typed = false;
                for (k, v) in src {
                    match k.as_str() {
                        "$schema" => {}
                        "type" => {
                            typed = true;
                            m.serialize_entry(k, "object")?;
                        }
                        _ => m.serialize_entry(k, v)?,
                    }
                }
                if !typed {
                    m.serialize_entry("type", "object")?;
                }
            }
            None => {
                m.serialize_entry("type", "object")?;
                m.serialize_entry("properties", &Map::new())?;
            }
        }
        m.end()
    }
}

/// An entry of `tools`.
pub(super) enum Tool<'r> {
    /// A function tool of the request.
    Function {
        name: Cow<'r, str>,
        description: Option<&'r str>,
        schema: InputSchema<'r>,
        cache: Option<&'r Value>,
    },
    /// A tool built here (the structured-output carrier).
    Built(Value),
}

impl Serialize for Tool<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tool::Built(v) => v.serialize(s),
            Tool::Function {
                name,
                description,
                schema,
                cache,
            } => {
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("name", name)?;
                if let Some(d) = description {
                    m.serialize_entry("description", d)?;
                }
                m.serialize_entry("input_schema", schema)?;
                if let Some(cc) = cache {
                    m.serialize_entry("cache_control", cc)?;
                }
                m.end()
            }
        }
    }
}

/// A top-level field after `messages`.
pub(super) enum Field<'r> {
    Owned(Value),
    Borrowed(&'r Value),
    Values(Vec<&'r Value>),
    Tools(Vec<Tool<'r>>),
    F64(f64),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Owned(v) => v.serialize(s),
            Field::Borrowed(v) => v.serialize(s),
            Field::Values(v) => v.serialize(s),
            Field::Tools(t) => t.serialize(s),
            Field::F64(x) => s.serialize_f64(*x),
        }
    }
}

/// The request body: `model`, `max_tokens`, `system`, `messages`, then the other fields in insertion order.
pub(super) struct Body<'r> {
    /// `None` on Vertex, where the model is in the path.
    pub model: Option<&'r str>,
    pub max_tokens: u64,
    pub system: Vec<Block<'r>>,
    pub turns: Vec<Turn<'r>>,
    pub fields: Vec<(&'static str, Field<'r>)>,
}

impl<'r> Body<'r> {
    /// Set a field: replaced in place when present, else added last.
    pub fn set(&mut self, key: &'static str, value: Field<'r>) {
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.fields.push((key, value)),
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Field<'r>> {
        self.fields
            .iter_mut()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(model) = self.model {
            m.serialize_entry("model", model)?;
        }
        m.serialize_entry("max_tokens", &self.max_tokens)?;
        if !self.system.is_empty() {
            m.serialize_entry("system", &self.system)?;
        }
        m.serialize_entry("messages", &self.turns)?;
        for (k, v) in &self.fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
