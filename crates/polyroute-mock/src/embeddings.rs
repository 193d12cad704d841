//! The OpenAI embeddings responder (`POST …/embeddings`). It checks the request shape on its own terms (not with
//! polyroute's types): `model` a non-empty string; `input` a non-empty string, strings, a token array or token
//! arrays; `dimensions` a positive integer of at most 4096; `encoding_format` `float` or `base64`; no field outside
//! OpenAI's (`user`) and the provider extras it knows (`input_type`) — so a routing field leaking upstream
//! (`models`, `provider`, `stream`) is a 400. Vectors are deterministic: component `j` of an input is drawn from
//! an FNV-1a hash of the input and `j`, in [-1, 1); 8 components unless `dimensions` says otherwise.
//! `usage.prompt_tokens` counts whitespace-separated words (at least one per input) or the token ids.

use serde_json::{json, Value};

const KNOWN: &[&str] = &[
    "model",
    "input",
    "dimensions",
    "encoding_format",
    "user",
    "input_type",
];

fn bad(message: String) -> (u16, Value) {
    (
        400,
        json!({"error": {"message": message, "type": "invalid_request_error", "code": null}}),
    )
}

fn fnv(bytes: &[u8], j: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes.iter().chain(j.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The deterministic vector of an input's bytes.
#[must_use]
pub fn vector(input: &[u8], dims: u32) -> Vec<f32> {
    (0..dims)
        .map(|j| (fnv(input, j) % 2000) as f32 / 1000.0 - 1.0)
        .collect()
}

/// Base64 (standard alphabet, padded) of the little-endian `f32` bytes.
#[must_use]
pub fn base64_f32(v: &[f32]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Inputs as (bytes hashed, tokens counted).
fn inputs(v: &Value) -> Result<Vec<(Vec<u8>, u64)>, String> {
    let token_ids = |a: &[Value], at: &str| -> Result<(Vec<u8>, u64), String> {
        if a.is_empty() {
            return Err(format!("{at} is an empty token array"));
        }
        let mut bytes = Vec::new();
        for t in a {
            let n = t
                .as_u64()
                .ok_or_else(|| format!("{at} holds a token that is not a non-negative integer"))?;
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        Ok((bytes, a.len() as u64))
    };
    let words = |s: &str| (s.split_whitespace().count() as u64).max(1);
    match v {
        Value::String(s) if !s.is_empty() => Ok(vec![(s.as_bytes().to_vec(), words(s))]),
        Value::Array(a) if !a.is_empty() => match &a[0] {
            Value::Number(_) => Ok(vec![token_ids(a, "input")?]),
            Value::String(_) => a
                .iter()
                .enumerate()
                .map(|(i, x)| match x.as_str() {
                    Some(s) if !s.is_empty() => Ok((s.as_bytes().to_vec(), words(s))),
                    _ => Err(format!("input[{i}] is not a non-empty string")),
                })
                .collect(),
            Value::Array(_) => a
                .iter()
                .enumerate()
                .map(|(i, x)| match x.as_array() {
                    Some(t) => token_ids(t, &format!("input[{i}]")),
                    None => Err(format!("input[{i}] is not a token array")),
                })
                .collect(),
            _ => Err("input[0] is neither a string, a token nor a token array".into()),
        },
        _ => Err("input must be a non-empty string or array".into()),
    }
}

/// Answer one embeddings request body: the status and the JSON body.
#[must_use]
pub fn respond(body: &Value) -> (u16, Value) {
    let Some(obj) = body.as_object() else {
        return bad("the body is not a JSON object".into());
    };
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return bad(format!("Unrecognized request argument supplied: {k}"));
    }
    let Some(model) = obj
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return bad("model must be a non-empty string".into());
    };
    let dims = match obj.get("dimensions") {
        None => 8,
        Some(d) => match d.as_u64() {
            Some(n @ 1..=4096) => n as u32,
            _ => return bad("dimensions must be an integer from 1 to 4096".into()),
        },
    };
    let base64 = match obj.get("encoding_format").map(Value::as_str) {
        None | Some(Some("float")) => false,
        Some(Some("base64")) => true,
        _ => return bad("encoding_format must be float or base64".into()),
    };
    let items = match inputs(obj.get("input").unwrap_or(&Value::Null)) {
        Ok(i) => i,
        Err(e) => return bad(e),
    };
    let tokens: u64 = items.iter().map(|(_, t)| t).sum();
    let data: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (bytes, _))| {
            let v = vector(bytes, dims);
            let embedding = if base64 {
                json!(base64_f32(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    (
        200,
        json!({"object": "list", "data": data, "model": model,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// Answer a Gemini `batchEmbedContents` body for the model named in the path: `requests` non-empty, each with
/// `model: "models/{model}"`, `content.parts[].text` (non-empty, joined), an optional positive
/// `outputDimensionality` and `taskType`; nothing else. The answer is `{embeddings: [{values}]}` (Gemini reports no
/// usage), vectors as for the OpenAI responder.
#[must_use]
pub fn respond_gemini(model: &str, body: &Value) -> (u16, Value) {
    let Some(reqs) = body
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        return bad("requests must be a non-empty array".into());
    };
    if body.as_object().is_some_and(|o| o.len() != 1) {
        return bad("only `requests` is allowed at the top level".into());
    }
    let mut out = Vec::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        let Some(o) = r.as_object() else {
            return bad(format!("requests[{i}] is not an object"));
        };
        if let Some(k) = o.keys().find(|k| {
            ![
                "model",
                "content",
                "outputDimensionality",
                "taskType",
                "title",
            ]
            .contains(&k.as_str())
        }) {
            return bad(format!("requests[{i}]: unknown field {k}"));
        }
        if o.get("model").and_then(Value::as_str) != Some(&format!("models/{model}")) {
            return bad(format!("requests[{i}].model must be models/{model}"));
        }
        let texts: Option<Vec<&str>> = o
            .get("content")
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .and_then(|p| {
                p.iter()
                    .map(|x| x.get("text").and_then(Value::as_str))
                    .collect()
            });
        let Some(text) = texts.map(|t| t.concat()).filter(|t| !t.is_empty()) else {
            return bad(format!("requests[{i}].content.parts must hold text"));
        };
        let dims = match o.get("outputDimensionality") {
            None => 8,
            Some(d) => match d.as_u64() {
                Some(n @ 1..=4096) => n as u32,
                _ => {
                    return bad(format!(
                        "requests[{i}].outputDimensionality must be 1 to 4096"
                    ))
                }
            },
        };
        out.push(json!({"values": vector(text.as_bytes(), dims)}));
    }
    (200, json!({ "embeddings": out }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn gemini_shapes() {
        let ok = json!({"requests": [{"model": "models/g", "content": {"parts": [{"text": "hi"}]},
                                      "outputDimensionality": 3}]});
        let (s, b) = respond_gemini("g", &ok);
        assert_eq!(s, 200);
        assert_eq!(b["embeddings"][0]["values"], json!(vector(b"hi", 3)));
        for bad in [
            json!({"requests": []}),
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "hi"}]}}]}),
            json!({"requests": [{"model": "models/g", "content": {"parts": []}}]}),
            json!({"requests": [{"model": "models/g", "content": {"parts": [{"text": "a"}]}, "dimensions": 3}]}),
            json!({"requests": [{"model": "models/g", "content": {"parts": [{"text": "a"}]}}], "model": "x"}),
        ] {
            assert_eq!(respond_gemini("g", &bad).0, 400, "{bad}");
        }
    }

    #[test]
    fn shapes_and_determinism() {
        let (s, b) =
            respond(&json!({"model": "m", "input": ["hello world", "x"], "dimensions": 3}));
        assert_eq!(s, 200);
        assert_eq!(b["usage"]["prompt_tokens"], 3);
        assert_eq!(b["data"][0]["embedding"].as_array().unwrap().len(), 3);
        assert_eq!(b["data"][0]["embedding"], json!(vector(b"hello world", 3)));
        assert_ne!(b["data"][0]["embedding"], b["data"][1]["embedding"]);
        let (_, t) = respond(&json!({"model": "m", "input": [[1, 2], [3]]}));
        assert_eq!(t["usage"]["prompt_tokens"], 3);
        let (_, e) = respond(&json!({"model": "m", "input": "a", "encoding_format": "base64"}));
        assert_eq!(e["data"][0]["embedding"].as_str().unwrap().len(), 44);
        for bad in [
            json!({"model": "m"}),
            json!({"model": "m", "input": ""}),
            json!({"model": "m", "input": [""]}),
            json!({"model": "m", "input": "a", "dimensions": 0}),
            json!({"model": "m", "input": "a", "encoding_format": "int8"}),
            json!({"model": "m", "input": "a", "provider": {}}),
            json!({"model": "m", "input": "a", "models": []}),
            json!({"input": "a"}),
        ] {
            assert_eq!(respond(&bad).0, 400, "{bad}");
        }
    }
}
