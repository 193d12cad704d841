//! The `generateContent` request body as typed views that borrow from the canonical request and serialize
//! straight to JSON text (no intermediate `Value` tree).

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::schema::Schema;
use crate::providers::json::Json;

/// A `Part`; `thoughtSignature` is written last.
pub(super) struct Part<'r> {
    pub kind: PartKind<'r>,
    pub sig: Option<&'r str>,
}

/// What a [`Part`] holds.
pub(super) enum PartKind<'r> {
    /// `{"text"}`.
    Text(Cow<'r, str>),
    /// `{"inlineData": {"mimeType", "data"}}`.
    Inline { mime: Cow<'r, str>, data: &'r str },
    /// `{"fileData": {"mimeType", "fileUri"}}`.
    File { mime: &'static str, uri: &'r str },
    /// `{"functionCall": {"name", "args", "id"?}}`.
    Call {
        name: Cow<'r, str>,
        args: Json<'r>,
        id: Option<&'r str>,
    },
    /// `{"functionResponse": {"name", "response", "id"?}}`.
    Response {
        name: Cow<'r, str>,
        response: Response<'r>,
        id: Option<&'r str>,
    },
}

/// `functionResponse.response`: a JSON object result as it is, anything else as `{"output": …}`.
pub(super) enum Response<'r> {
    Object(Json<'r>),
    Output(Json<'r>),
    Text(Cow<'r, str>),
}

impl<'r> Part<'r> {
    pub fn new(kind: PartKind<'r>) -> Self {
        Self { kind, sig: None }
    }

    pub fn text(t: &'r str) -> Self {
        Self::new(PartKind::Text(Cow::Borrowed(t)))
    }
}

/// A two-entry object `{a: {…}}` written from a closure.
struct Pair<'a, T: Serialize + ?Sized>(&'a str, &'a T);

impl<T: Serialize + ?Sized> Serialize for Pair<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, self.1)?;
        m.end()
    }
}

struct Named<'a, 'r, T: Serialize> {
    name: &'a str,
    key: &'static str,
    value: &'a T,
    id: Option<&'r str>,
}

impl<T: Serialize> Serialize for Named<'_, '_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", self.name)?;
        m.serialize_entry(self.key, self.value)?;
        if let Some(id) = self.id {
            m.serialize_entry("id", id)?;
        }
        m.end()
    }
}

struct Blob<'a>(&'static str, &'a str, &'static str, &'a str);

impl Serialize for Blob<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(self.0, self.1)?;
        m.serialize_entry(self.2, self.3)?;
        m.end()
    }
}

impl Serialize for Response<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Response::Object(v) => v.serialize(s),
            Response::Output(v) => Pair("output", v).serialize(s),
            Response::Text(t) => Pair("output", t.as_ref()).serialize(s),
        }
    }
}

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match &self.kind {
            PartKind::Text(t) => m.serialize_entry("text", t)?,
            PartKind::Inline { mime, data } => {
                m.serialize_entry("inlineData", &Blob("mimeType", mime, "data", data))?;
            }
            PartKind::File { mime, uri } => {
                m.serialize_entry("fileData", &Blob("mimeType", mime, "fileUri", uri))?;
            }
            PartKind::Call { name, args, id } => m.serialize_entry(
                "functionCall",
                &Named {
                    name,
                    key: "args",
                    value: args,
                    id: *id,
                },
            )?,
            PartKind::Response { name, response, id } => m.serialize_entry(
                "functionResponse",
                &Named {
                    name,
                    key: "response",
                    value: response,
                    id: *id,
                },
            )?,
        }
        if let Some(sig) = self.sig {
            m.serialize_entry("thoughtSignature", sig)?;
        }
        m.end()
    }
}

/// A `Content`: `{"role", "parts"}`.
pub(super) struct Turn<'r> {
    pub role: &'static str,
    pub parts: Vec<Part<'r>>,
}

impl Serialize for Turn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("role", self.role)?;
        m.serialize_entry("parts", &self.parts)?;
        m.end()
    }
}

/// A `FunctionDeclaration`.
pub(super) struct Decl<'r> {
    pub name: Cow<'r, str>,
    pub description: Option<&'r str>,
    pub parameters: Option<Schema<'r>>,
}

impl Serialize for Decl<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        if let Some(d) = self.description {
            m.serialize_entry("description", d)?;
        }
        if let Some(p) = &self.parameters {
            m.serialize_entry("parameters", p)?;
        }
        m.end()
    }
}

/// The request body.
pub(super) struct Body<'r> {
    pub contents: Vec<Turn<'r>>,
    pub system: Vec<Part<'r>>,
    pub decls: Vec<Decl<'r>>,
    pub tool_config: Option<Value>,
    pub generation_config: Map<String, Value>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("contents", &self.contents)?;
        if !self.system.is_empty() {
            m.serialize_entry("systemInstruction", &Pair("parts", &self.system))?;
        }
        if !self.decls.is_empty() {
            m.serialize_entry("tools", &[Pair("functionDeclarations", &self.decls)])?;
            if let Some(tc) = &self.tool_config {
                m.serialize_entry("toolConfig", tc)?;
            }
        }
        if !self.generation_config.is_empty() {
            m.serialize_entry("generationConfig", &self.generation_config)?;
        }
        m.end()
    }
}
