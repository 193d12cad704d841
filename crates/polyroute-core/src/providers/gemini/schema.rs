//! JSON Schema → the OpenAPI-subset `Schema` Gemini accepts in `responseSchema` and function `parameters`.
//!
//! `$ref`s into `$defs`/`definitions` are inlined (recursion is cut at depth 24), `anyOf`/`oneOf` with a `null`
//! branch and `type: [X, "null"]` become `nullable: true`, `const` becomes a one-value `enum`, enums that are not
//! all non-empty strings are dropped, keywords outside the subset (`additionalProperties`, `$schema`,
//! `exclusiveMinimum`, `propertyNames`, …) are removed, objects without properties lose the empty `properties`,
//! arrays without `items` get `items: {type: STRING}`, and `propertyOrdering` keeps the declared key order.

use serde_json::{Map, Value};

use crate::providers::common::{get_str, map_get};

const MAX_DEPTH: usize = 24;

/// Clean a JSON schema for Gemini.
#[must_use]
pub fn to_gemini_schema(schema: &Value) -> Value {
    let empty = Map::new();
    let defs = crate::providers::common::get(schema, "$defs")
        .or_else(|| crate::providers::common::get(schema, "definitions"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    convert(schema, defs, 0)
}

fn resolve<'a>(r: &str, defs: &'a Map<String, Value>) -> Option<&'a Value> {
    let name = r
        .strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))?;
    defs.get(name)
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

fn type_object() -> Value {
    let mut m = Map::with_capacity(1);
    m.insert("type".into(), Value::String("OBJECT".into()));
    Value::Object(m)
}

fn convert(v: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(m) = v else {
        return Value::Object(Map::new());
    };
    if depth > MAX_DEPTH {
        return type_object();
    }
    let k = Keys::scan(m);
    if let Some(r) = k.r#ref.and_then(Value::as_str) {
        let mut out = resolve(r, defs).map_or_else(type_object, |d| convert(d, defs, depth + 1));
        if let (Some(o), Some(d)) = (out.as_object_mut(), k.copied("description")) {
            o.insert("description".into(), d.clone());
        }
        return out;
    }
    if let Some(variants) = k.any_of.or(k.one_of).and_then(Value::as_array) {
        let is_null = |x: &Value| get_str(x, "type") == Some("null");
        let has_null = variants.iter().any(is_null);
        let mut rest = variants.iter().filter(|x| !is_null(x));
        let mut out = match (rest.next(), rest.next()) {
            (Some(only), None) => convert(only, defs, depth + 1),
            _ => crate::providers::common::obj([(
                "anyOf",
                Value::Array(
                    variants
                        .iter()
                        .filter(|x| !is_null(x))
                        .map(|x| convert(x, defs, depth + 1))
                        .collect(),
                ),
            )]),
        };
        if let Some(o) = out.as_object_mut() {
            if has_null {
                o.insert("nullable".into(), Value::Bool(true));
            }
            for key in ["description", "title"] {
                if let Some(d) = k.copied(key) {
                    o.entry(key).or_insert_with(|| d.clone());
                }
            }
        }
        return out;
    }
    let mut out = Map::with_capacity(8);
    let mut ty: Option<&str> = None;
    match k.ty {
        Some(Value::String(t)) if t == "null" => {
            out.insert("nullable".into(), Value::Bool(true));
        }
        Some(Value::String(t)) => ty = Some(t),
        Some(Value::Array(ts)) => {
            if ts.iter().any(|t| t == "null") {
                out.insert("nullable".into(), Value::Bool(true));
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
    if let Some(t) = ty {
        out.insert("type".into(), Value::String(t.to_ascii_uppercase()));
    }
    for (name, x) in COPIED.iter().zip(k.copied) {
        if let Some(x) = x {
            out.insert((*name).into(), x.clone());
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
            out.insert("format".into(), Value::String(f.into()));
        }
    }
    let enum_ok =
        |e: &[Value]| !e.is_empty() && e.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()));
    match (k.r#enum, k.r#const) {
        (Some(Value::Array(e)), _) if enum_ok(e) => {
            out.insert("enum".into(), Value::Array(e.clone()));
        }
        (None, Some(c)) if enum_ok(std::slice::from_ref(c)) => {
            out.insert("enum".into(), Value::Array(vec![c.clone()]));
        }
        _ => {}
    }
    if let Some(Value::Object(props)) = k.properties {
        if !props.is_empty() {
            let mut conv = Map::with_capacity(props.len());
            let mut order = Vec::with_capacity(props.len());
            for (name, p) in props {
                conv.insert(name.clone(), convert(p, defs, depth + 1));
                order.push(Value::String(name.clone()));
            }
            if let Some(Value::Array(req)) = k.required {
                let req: Vec<Value> = req
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|r| map_get(props, r).is_some()))
                    .cloned()
                    .collect();
                if !req.is_empty() {
                    out.insert("required".into(), Value::Array(req));
                }
            }
            out.insert("properties".into(), Value::Object(conv));
            out.insert("propertyOrdering".into(), Value::Array(order));
        }
    }
    if ty == Some("array") {
        let items = k.items.map_or_else(
            || {
                let mut m = Map::with_capacity(1);
                m.insert("type".into(), Value::String("STRING".into()));
                Value::Object(m)
            },
            |i| convert(i, defs, depth + 1),
        );
        out.insert("items".into(), items);
    }
    Value::Object(out)
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
