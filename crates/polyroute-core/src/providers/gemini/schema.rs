//! JSON Schema → the OpenAPI-subset `Schema` Gemini accepts in `responseSchema` and function `parameters`.
//!
//! `$ref`s into `$defs`/`definitions` are inlined (recursion is cut at depth 24), `anyOf`/`oneOf` with a `null`
//! branch and `type: [X, "null"]` become `nullable: true`, `const` becomes a one-value `enum`, enums that are not
//! all non-empty strings are dropped, keywords outside the subset (`additionalProperties`, `$schema`,
//! `exclusiveMinimum`, `propertyNames`, …) are removed, objects without properties lose the empty `properties`,
//! arrays without `items` get `items: {type: STRING}`, and `propertyOrdering` keeps the declared key order.

use serde_json::{json, Map, Value};

const MAX_DEPTH: usize = 24;

/// Clean a JSON schema for Gemini.
#[must_use]
pub fn to_gemini_schema(schema: &Value) -> Value {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
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

fn convert(v: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(m) = v else {
        return json!({});
    };
    if depth > MAX_DEPTH {
        return json!({"type": "OBJECT"});
    }
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        let mut out = resolve(r, defs).map_or_else(
            || json!({"type": "OBJECT"}),
            |d| convert(d, defs, depth + 1),
        );
        if let (Some(o), Some(d)) = (out.as_object_mut(), m.get("description")) {
            o.insert("description".into(), d.clone());
        }
        return out;
    }
    if let Some(variants) = m
        .get("anyOf")
        .or_else(|| m.get("oneOf"))
        .and_then(Value::as_array)
    {
        let is_null = |x: &&Value| x.get("type").and_then(Value::as_str) == Some("null");
        let has_null = variants.iter().any(|x| is_null(&x));
        let rest: Vec<&Value> = variants.iter().filter(|x| !is_null(x)).collect();
        let mut out = if rest.len() == 1 {
            convert(rest[0], defs, depth + 1)
        } else {
            crate::providers::common::obj([(
                "anyOf",
                Value::Array(rest.iter().map(|x| convert(x, defs, depth + 1)).collect()),
            )])
        };
        if let Some(o) = out.as_object_mut() {
            if has_null {
                o.insert("nullable".into(), json!(true));
            }
            for k in ["description", "title"] {
                if let Some(d) = m.get(k) {
                    o.entry(k).or_insert_with(|| d.clone());
                }
            }
        }
        return out;
    }
    let mut out = Map::new();
    let mut ty: Option<String> = None;
    match m.get("type") {
        Some(Value::String(t)) if t == "null" => {
            out.insert("nullable".into(), json!(true));
        }
        Some(Value::String(t)) => ty = Some(t.clone()),
        Some(Value::Array(ts)) => {
            if ts.iter().any(|t| t == "null") {
                out.insert("nullable".into(), json!(true));
            }
            ty = ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .map(str::to_string);
        }
        _ => {}
    }
    if ty.is_none() {
        if m.contains_key("properties") {
            ty = Some("object".into());
        } else if m.contains_key("items") {
            ty = Some("array".into());
        } else if m.get("enum").or_else(|| m.get("const")).is_some_and(|e| {
            e.is_string() || e.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }) {
            ty = Some("string".into());
        }
    }
    if let Some(t) = &ty {
        out.insert("type".into(), Value::String(t.to_ascii_uppercase()));
    }
    for k in [
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
    ] {
        if let Some(x) = m.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    if let Some(f) = m.get("format").and_then(Value::as_str) {
        let keep = match ty.as_deref() {
            Some("string") => matches!(f, "enum" | "date-time"),
            Some("integer") => matches!(f, "int32" | "int64"),
            Some("number") => matches!(f, "float" | "double"),
            _ => false,
        };
        if keep {
            out.insert("format".into(), json!(f));
        }
    }
    let enum_vals = m
        .get("enum")
        .cloned()
        .or_else(|| m.get("const").map(|c| json!([c])));
    if let Some(Value::Array(e)) = enum_vals {
        if !e.is_empty() && e.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())) {
            out.insert("enum".into(), Value::Array(e));
        }
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        if !props.is_empty() {
            let conv: Map<String, Value> = props
                .iter()
                .map(|(k, p)| (k.clone(), convert(p, defs, depth + 1)))
                .collect();
            let order: Vec<Value> = props.keys().map(|k| json!(k)).collect();
            if let Some(Value::Array(req)) = m.get("required") {
                let req: Vec<Value> = req
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|r| conv.contains_key(r)))
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
    if ty.as_deref() == Some("array") {
        let items = m.get("items").map_or_else(
            || json!({"type": "STRING"}),
            |i| convert(i, defs, depth + 1),
        );
        out.insert("items".into(), items);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
