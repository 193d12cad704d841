//! JSON Schema → the OpenAPI-subset `Schema` Gemini accepts in `responseSchema` and function `parameters`.
//!
//! `$ref`s into `$defs`/`definitions` are inlined (recursion is cut at depth 24), `anyOf`/`oneOf` with a `null`
//! branch and `type: [X, "null"]` become `nullable: true`, `const` becomes a one-value `enum`, enums that are not
//! all non-empty strings are dropped, keywords outside the subset (`additionalProperties`, `$schema`,
//! `exclusiveMinimum`, `propertyNames`, …) are removed, objects without properties lose the empty `properties`,
//! arrays without `items` get `items: {type: STRING}`, and `propertyOrdering` keeps the declared key order.

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::providers::common::{get, get_str, map_get};

const MAX_DEPTH: usize = 24;

/// Clean a JSON schema for Gemini.
#[must_use]
pub fn to_gemini_schema(schema: &Value) -> Value {
    serde_json::to_value(gemini_schema(schema)).unwrap_or_else(|_| Value::Object(Map::new()))
}

/// [`to_gemini_schema`] as a view that borrows from `schema` and serializes straight to JSON text.
pub(crate) fn gemini_schema(schema: &Value) -> Schema<'_> {
    let defs = get(schema, "$defs")
        .or_else(|| get(schema, "definitions"))
        .and_then(Value::as_object);
    convert(schema, defs, 0)
}

/// A cleaned schema object: keys in output order, values borrowed from the input where possible. `insert`
/// replaces a present key in place, like a JSON object that keeps insertion order.
#[derive(Default)]
pub(crate) struct Schema<'v> {
    entries: Vec<(&'v str, Node<'v>)>,
}

/// A value of a [`Schema`] key.
enum Node<'v> {
    Value(&'v Value),
    Bool(bool),
    Str(Cow<'v, str>),
    Values(Vec<&'v Value>),
    Names(Vec<&'v str>),
    Props(Vec<(&'v str, Schema<'v>)>),
    List(Vec<Schema<'v>>),
    Item(Box<Schema<'v>>),
}

impl<'v> Schema<'v> {
    fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    fn insert(&mut self, key: &'v str, node: Node<'v>) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = node,
            None => self.entries.push((key, node)),
        }
    }

    /// Add a key known to be absent.
    fn push(&mut self, key: &'v str, node: Node<'v>) {
        self.entries.push((key, node));
    }

    fn insert_if_absent(&mut self, key: &'v str, node: Node<'v>) {
        if !self.entries.iter().any(|(k, _)| *k == key) {
            self.entries.push((key, node));
        }
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| *k == key)
    }

    /// `properties` is present, or `type` is something other than `OBJECT`: a function declaration sends it.
    pub(crate) fn says_something(&self) -> bool {
        self.has("properties")
            || self.entries.iter().any(|(k, v)| {
                *k == "type"
                    && match v {
                        Node::Str(s) => s != "OBJECT",
                        Node::Value(v) => *v != "OBJECT",
                        _ => true,
                    }
            })
    }
}

impl Serialize for Schema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Value(v) => v.serialize(s),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Str(t) => s.serialize_str(t),
            Node::Values(v) => v.serialize(s),
            Node::Names(v) => v.serialize(s),
            Node::List(v) => v.serialize(s),
            Node::Item(x) => x.serialize(s),
            Node::Props(props) => {
                let mut m = s.serialize_map(Some(props.len()))?;
                for (k, v) in props {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// `{"type": "OBJECT"}` etc. without allocating for the JSON Schema type names.
fn upper(t: &str) -> Cow<'static, str> {
    Cow::Borrowed(match t {
        "string" => "STRING",
        "integer" => "INTEGER",
        "number" => "NUMBER",
        "boolean" => "BOOLEAN",
        "object" => "OBJECT",
        "array" => "ARRAY",
        _ => return Cow::Owned(t.to_ascii_uppercase()),
    })
}

fn resolve<'a>(r: &str, defs: Option<&'a Map<String, Value>>) -> Option<&'a Value> {
    let name = r
        .strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))?;
    defs?.get(name)
}

/// Keywords copied as they are, in output order.
const COPIED: [&str; 14] = [
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
];

/// The keywords [`convert`] reads, found in one pass over the schema object (no key hashing).
#[derive(Default)]
struct Keys<'v> {
    r#ref: Option<&'v Value>,
    any_of: Option<&'v Value>,
    one_of: Option<&'v Value>,
    ty: Option<&'v Value>,
    properties: Option<&'v Value>,
    items: Option<&'v Value>,
    r#enum: Option<&'v Value>,
    r#const: Option<&'v Value>,
    format: Option<&'v Value>,
    required: Option<&'v Value>,
    copied: [Option<&'v Value>; 14],
}

impl<'v> Keys<'v> {
    fn scan(m: &'v Map<String, Value>) -> Self {
        let mut k = Keys::default();
        for (name, v) in m {
            let slot = match name.as_str() {
                "$ref" => &mut k.r#ref,
                "anyOf" => &mut k.any_of,
                "oneOf" => &mut k.one_of,
                "type" => &mut k.ty,
                "properties" => &mut k.properties,
                "items" => &mut k.items,
                "enum" => &mut k.r#enum,
                "const" => &mut k.r#const,
                "format" => &mut k.format,
                "required" => &mut k.required,
                other => match COPIED.iter().position(|c| *c == other) {
                    Some(i) => &mut k.copied[i],
                    None => continue,
                },
            };
            *slot = Some(v);
        }
        k
    }

    fn copied(&self, name: &str) -> Option<&'v Value> {
        COPIED
            .iter()
            .position(|c| *c == name)
            .and_then(|i| self.copied[i])
    }
}

fn type_object<'v>() -> Schema<'v> {
    let mut m = Schema::with_capacity(1);
    m.entries.push(("type", Node::Str(Cow::Borrowed("OBJECT"))));
    m
}

fn convert<'v>(v: &'v Value, defs: Option<&'v Map<String, Value>>, depth: usize) -> Schema<'v> {
    let Value::Object(m) = v else {
        return Schema::default();
    };
    if depth > MAX_DEPTH {
        return type_object();
    }
    let k = Keys::scan(m);
    if let Some(r) = k.r#ref.and_then(Value::as_str) {
        let mut out = resolve(r, defs).map_or_else(type_object, |d| convert(d, defs, depth + 1));
        if let Some(d) = k.copied("description") {
            out.insert("description", Node::Value(d));
        }
        return out;
    }
    if let Some(variants) = k.any_of.or(k.one_of).and_then(Value::as_array) {
        let is_null = |x: &Value| get_str(x, "type") == Some("null");
        let has_null = variants.iter().any(is_null);
        let mut rest = variants.iter().filter(|x| !is_null(x));
        let mut out = match (rest.next(), rest.next()) {
            (Some(only), None) => convert(only, defs, depth + 1),
            _ => {
                let mut o = Schema::with_capacity(3);
                o.entries.push((
                    "anyOf",
                    Node::List(
                        variants
                            .iter()
                            .filter(|x| !is_null(x))
                            .map(|x| convert(x, defs, depth + 1))
                            .collect(),
                    ),
                ));
                o
            }
        };
        if has_null {
            out.insert("nullable", Node::Bool(true));
        }
        for key in ["description", "title"] {
            if let Some(d) = k.copied(key) {
                out.insert_if_absent(key, Node::Value(d));
            }
        }
        return out;
    }
    let mut out = Schema::with_capacity(8);
    let mut ty: Option<&str> = None;
    match k.ty {
        Some(Value::String(t)) if t == "null" => {
            out.insert("nullable", Node::Bool(true));
        }
        Some(Value::String(t)) => ty = Some(t),
        Some(Value::Array(ts)) => {
            if ts.iter().any(|t| t == "null") {
                out.insert("nullable", Node::Bool(true));
            }
            ty = ts.iter().filter_map(Value::as_str).find(|t| *t != "null");
        }
        _ => {}
    }
    if ty.is_none() {
        if k.properties.is_some() {
            ty = Some("object");
        } else if k.items.is_some() {
            ty = Some("array");
        } else if k.r#enum.or(k.r#const).is_some_and(|e| {
            e.is_string() || e.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }) {
            ty = Some("string");
        }
    }
    // Only `nullable` may be present already (it is also a copied keyword); every other key is new.
    if let Some(t) = ty {
        out.push("type", Node::Str(upper(t)));
    }
    for (name, x) in COPIED.iter().zip(k.copied) {
        if let Some(x) = x {
            if *name == "nullable" {
                out.insert(name, Node::Value(x));
            } else {
                out.push(name, Node::Value(x));
            }
        }
    }
    if let Some(f) = k.format.and_then(Value::as_str) {
        let keep = match ty {
            Some("string") => matches!(f, "enum" | "date-time"),
            Some("integer") => matches!(f, "int32" | "int64"),
            Some("number") => matches!(f, "float" | "double"),
            _ => false,
        };
        if keep {
            out.push("format", Node::Str(Cow::Borrowed(f)));
        }
    }
    let enum_ok =
        |e: &[Value]| !e.is_empty() && e.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()));
    match (k.r#enum, k.r#const) {
        (Some(e @ Value::Array(a)), _) if enum_ok(a) => {
            out.push("enum", Node::Value(e));
        }
        (None, Some(c)) if enum_ok(std::slice::from_ref(c)) => {
            out.push("enum", Node::Values(vec![c]));
        }
        _ => {}
    }
    if let Some(Value::Object(props)) = k.properties {
        if !props.is_empty() {
            let mut conv = Vec::with_capacity(props.len());
            let mut order = Vec::with_capacity(props.len());
            for (name, p) in props {
                conv.push((name.as_str(), convert(p, defs, depth + 1)));
                order.push(name.as_str());
            }
            if let Some(Value::Array(req)) = k.required {
                let req: Vec<&Value> = req
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|r| map_get(props, r).is_some()))
                    .collect();
                if !req.is_empty() {
                    out.push("required", Node::Values(req));
                }
            }
            out.push("properties", Node::Props(conv));
            out.push("propertyOrdering", Node::Names(order));
        }
    }
    if ty == Some("array") {
        let items = k.items.map_or_else(
            || {
                let mut m = Schema::with_capacity(1);
                m.entries.push(("type", Node::Str(Cow::Borrowed("STRING"))));
                m
            },
            |i| convert(i, defs, depth + 1),
        );
        out.push("items", Node::Item(Box::new(items)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_nullable_and_unsupported_keywords() {
        let s = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "a": {"$ref": "#/$defs/A"},
                "b": {"type": ["string", "null"], "const": "x"},
                "c": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}]},
                "d": {"type": "object", "properties": {}},
                "e": {"type": "array"}
            },
            "required": ["a", "zz"],
            "$defs": {"A": {"type": "string", "enum": ["p", "q"]}}
        });
        let g = to_gemini_schema(&s);
        assert_eq!(g["type"], "OBJECT");
        assert!(g.get("additionalProperties").is_none() && g.get("$schema").is_none());
        assert_eq!(
            g["properties"]["a"],
            json!({"type": "STRING", "enum": ["p", "q"]})
        );
        assert_eq!(
            g["properties"]["b"],
            json!({"nullable": true, "type": "STRING", "enum": ["x"]})
        );
        assert_eq!(
            g["properties"]["c"],
            json!({"type": "INTEGER", "nullable": true})
        );
        assert_eq!(g["properties"]["d"], json!({"type": "OBJECT"}));
        assert_eq!(g["properties"]["e"]["items"], json!({"type": "STRING"}));
        assert_eq!(g["required"], json!(["a"]));
        assert_eq!(g["propertyOrdering"], json!(["a", "b", "c", "d", "e"]));
    }

    #[test]
    fn cyclic_ref_terminates() {
        let s = json!({"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}});
        let g = to_gemini_schema(&s);
        assert_eq!(g["type"], "OBJECT");
    }
}
