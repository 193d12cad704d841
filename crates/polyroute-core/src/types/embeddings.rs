//! The OpenAI embeddings request (`POST /v1/embeddings`) with OpenRouter's routing extensions (`models`,
//! `provider`), validated with the path of the bad field; the body sent to an OpenAI-compatible endpoint; and the
//! provider's answer checked and rewritten into the caller's shape (`encoding_format`, `model`, `usage`).
//!
//! Routing reuses the chat machinery through [`EmbeddingRequest::planning`]: a chat request with the same
//! `model`, `models` and `provider`, and one user message per input (its length stands for the input's size), so
//! provider preferences, fallbacks, limits and the worst-case hold work exactly as for chat.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::request::{ChatRequest, Message, Role};
use crate::error::{Error, Result};

/// Most inputs in one request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// What to embed: strings, or token arrays when the upstream accepts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingInput {
    /// One string or an array of strings.
    Text(Vec<String>),
    /// One token array or an array of token arrays.
    Tokens(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// Number of inputs (vectors the answer must hold).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Text(v) => v.len(),
            Self::Tokens(v) => v.len(),
        }
    }

    /// Whether there is no input.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated tokens of input `i` (exact for token arrays; about four bytes a token for text).
    #[must_use]
    pub fn estimate_tokens(&self, i: usize) -> u64 {
        match self {
            Self::Text(v) => v.get(i).map_or(0, |s| (s.len() as u64).div_ceil(4).max(1)),
            Self::Tokens(v) => v.get(i).map_or(0, |t| t.len() as u64),
        }
    }

    /// Estimated tokens of all inputs.
    #[must_use]
    pub fn estimate_total_tokens(&self) -> u64 {
        (0..self.len()).map(|i| self.estimate_tokens(i)).sum()
    }

    fn to_value(&self) -> Value {
        match self {
            Self::Text(v) => json!(v),
            Self::Tokens(v) => json!(v),
        }
    }
}

/// `encoding_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncodingFormat {
    /// Arrays of numbers.
    #[default]
    Float,
    /// Little-endian `f32` bytes, base64.
    Base64,
}

/// A validated embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    /// Model slug.
    pub model: Option<String>,
    /// Fallback models (at most 3, as for chat).
    pub models: Option<Vec<String>>,
    /// What to embed.
    pub input: EmbeddingInput,
    /// Requested vector length.
    pub dimensions: Option<u32>,
    /// How the caller wants the vectors.
    pub encoding_format: EncodingFormat,
    /// End-user id, forwarded.
    pub user: Option<String>,
    /// The routing fields (`provider`, …) as a validated chat request without messages.
    base: ChatRequest,
    /// Fields polyroute does not interpret (`input_type`, …), forwarded.
    pub extra: Map<String, Value>,
}

/// Fields that route the request (validated as in a chat request, never forwarded).
const ROUTING_FIELDS: &[&str] = &["model", "models", "provider", "route", "session_id"];

/// Provider-specific fields forwarded as given (Voyage, Cohere and NVIDIA endpoints read `input_type`).
const FORWARDED_FIELDS: &[&str] = &["input_type"];

/// Longest `user` (as for chat).
const MAX_USER_BYTES: usize = 256;

fn parse_input(v: &Value) -> Result<EmbeddingInput> {
    let bad = |field: String, m: &str| Error::invalid(field, m.to_string());
    let token = |x: &Value, field: String| -> Result<u32> {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(field, "a token id must be a non-negative integer"))
    };
    match v {
        Value::String(s) => {
            if s.is_empty() {
                return Err(bad("input".into(), "must not be an empty string"));
            }
            Ok(EmbeddingInput::Text(vec![s.clone()]))
        }
        Value::Array(items) => {
            if items.is_empty() {
                return Err(bad("input".into(), "must not be an empty array"));
            }
            if items.len() > MAX_INPUTS {
                return Err(bad(
                    "input".into(),
                    &format!("at most {MAX_INPUTS} inputs per request"),
                ));
            }
            match &items[0] {
                Value::String(_) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, x) in items.iter().enumerate() {
                        match x.as_str() {
                            Some("") => {
                                return Err(bad(format!("input[{i}]"), "must not be empty"))
                            }
                            Some(s) => out.push(s.to_string()),
                            None => {
                                return Err(bad(
                                    format!("input[{i}]"),
                                    "expected a string like the other inputs",
                                ))
                            }
                        }
                    }
                    Ok(EmbeddingInput::Text(out))
                }
                Value::Number(_) => {
                    let t = items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| token(x, format!("input[{i}]")))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(EmbeddingInput::Tokens(vec![t]))
                }
                Value::Array(_) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, x) in items.iter().enumerate() {
                        let Some(arr) = x.as_array().filter(|a| !a.is_empty()) else {
                            return Err(bad(
                                format!("input[{i}]"),
                                "expected a non-empty array of token ids",
                            ));
                        };
                        out.push(
                            arr.iter()
                                .enumerate()
                                .map(|(j, t)| token(t, format!("input[{i}][{j}]")))
                                .collect::<Result<Vec<_>>>()?,
                        );
                    }
                    Ok(EmbeddingInput::Tokens(out))
                }
                _ => Err(bad(
                    "input[0]".into(),
                    "expected a string, a token id or an array of token ids",
                )),
            }
        }
        Value::Null => Err(bad("input".into(), "is required")),
        _ => Err(bad(
            "input".into(),
            "expected a string, an array of strings, or token arrays",
        )),
    }
}

impl EmbeddingRequest {
    /// Parse and validate a request body; errors name the field (`input[2]`, `dimensions`, `provider.sort`).
    ///
    /// # Errors
    /// `invalid_request` naming the field.
    pub fn from_value(v: &Value) -> Result<Self> {
        let Some(obj) = v.as_object() else {
            return Err(Error::invalid(
                "$",
                "the request body must be a JSON object",
            ));
        };
        let input = parse_input(obj.get("input").unwrap_or(&Value::Null))?;
        let dimensions = match obj.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(d) => Some(
                d.as_u64()
                    .filter(|&n| n >= 1)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| Error::invalid("dimensions", "must be a positive integer"))?,
            ),
        };
        let encoding_format = match obj.get("encoding_format") {
            None | Some(Value::Null) => EncodingFormat::Float,
            Some(Value::String(s)) if s == "float" => EncodingFormat::Float,
            Some(Value::String(s)) if s == "base64" => EncodingFormat::Base64,
            Some(_) => {
                return Err(Error::invalid(
                    "encoding_format",
                    "must be \"float\" or \"base64\"",
                ))
            }
        };
        let user = match obj.get("user") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= MAX_USER_BYTES => Some(s.clone()),
            Some(Value::String(_)) => {
                return Err(Error::invalid(
                    "user",
                    format!("at most {MAX_USER_BYTES} bytes"),
                ))
            }
            Some(_) => return Err(Error::invalid("user", "must be a string")),
        };
        if let Some(s) = obj.get("stream") {
            if s.as_bool() == Some(true) {
                return Err(Error::invalid(
                    "stream",
                    "embeddings are not streamed; leave stream out",
                ));
            }
        }
        let mut routing = Map::new();
        let mut extra = Map::new();
        for (k, x) in obj {
            match k.as_str() {
                "input" | "dimensions" | "encoding_format" | "user" | "stream" => {}
                k if ROUTING_FIELDS.contains(&k) => {
                    routing.insert(k.to_string(), x.clone());
                }
                k if FORWARDED_FIELDS.contains(&k) => {
                    extra.insert(k.to_string(), x.clone());
                }
                _ => {
                    let mut shown: String = k.chars().take(64).collect();
                    if shown.len() < k.len() {
                        shown.push('…');
                    }
                    return Err(Error::invalid(
                        shown,
                        "unknown parameter of an embeddings request (known: model, models, input, dimensions, \
                         encoding_format, user, input_type, provider)",
                    ));
                }
            }
        }
        // `model`, `models` and `provider` are checked by the chat rules (same messages, same field paths).
        let mut probe = routing;
        probe.insert("messages".into(), json!([{"role": "user", "content": "x"}]));
        let mut chat = ChatRequest::from_value(&Value::Object(probe))?;
        chat.messages.clear();
        if chat.model.is_none() && chat.models.as_ref().is_none_or(Vec::is_empty) {
            return Err(Error::invalid("model", "is required"));
        }
        Ok(Self {
            model: chat.model.clone(),
            models: chat.models.clone(),
            input,
            dimensions,
            encoding_format,
            user,
            base: chat,
            extra,
        })
    }

    /// The chat request routing plans with: the same `model`, `models` and `provider`, one user message per
    /// input whose length stands for the input's size (so the context filter and the spend hold see it).
    #[must_use]
    pub fn planning(&self) -> ChatRequest {
        let mut chat = self.base.clone();
        chat.messages = (0..self.input.len())
            .map(|i| {
                let content = match &self.input {
                    EmbeddingInput::Text(v) => v[i].clone(),
                    // Four bytes a token, as the estimator counts.
                    EmbeddingInput::Tokens(_) => {
                        " ".repeat(usize::try_from(self.input.estimate_tokens(i) * 4).unwrap_or(0))
                    }
                };
                Message {
                    role: Role::User,
                    content: Some(Value::String(content)),
                    name: None,
                    tool_calls: None,
                    tool_call_id: None,
                    extra: Map::new(),
                }
            })
            .collect();
        chat.max_tokens = Some(0);
        chat
    }

    /// The body sent to an OpenAI-compatible endpoint (`POST {base}/embeddings`) for `upstream_model`. Vectors
    /// are always asked for as floats (re-encoded for the caller when base64 is wanted).
    #[must_use]
    pub fn upstream_body(&self, upstream_model: &str) -> Value {
        let mut b = Map::new();
        b.insert("model".into(), json!(upstream_model));
        b.insert("input".into(), self.input.to_value());
        if let Some(d) = self.dimensions {
            b.insert("dimensions".into(), json!(d));
        }
        b.insert("encoding_format".into(), json!("float"));
        if let Some(u) = &self.user {
            b.insert("user".into(), json!(u));
        }
        for (k, v) in &self.extra {
            b.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(b)
    }

    /// Check a provider's answer and write it in the caller's shape: `object: list`, one `embedding` per input in
    /// input order (floats, or base64 of little-endian `f32`), `model` = the catalog slug, `usage.prompt_tokens`
    /// (the provider's, else the estimate) and `total_tokens`. Returns the answer and the prompt tokens to bill.
    ///
    /// # Errors
    /// A message saying what is wrong with the provider's answer (the attempt then fails over).
    pub fn finish_response(
        &self,
        body: &[u8],
        model: &str,
    ) -> std::result::Result<(Value, u64), String> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| format!("embeddings answer is not JSON: {e}"))?;
        self.finish_value(&v, model)
    }

    /// The path and body of a Gemini API `batchEmbedContents` request for `upstream_model` (text inputs only; one
    /// request per input, `outputDimensionality` from `dimensions`). `None` for token-array input.
    #[must_use]
    pub fn gemini_request(&self, upstream_model: &str) -> Option<(String, Value)> {
        let EmbeddingInput::Text(texts) = &self.input else {
            return None;
        };
        let model = upstream_model.trim_start_matches("models/");
        let requests: Vec<Value> = texts
            .iter()
            .map(|t| {
                let mut r = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
                if let Some(d) = self.dimensions {
                    r["outputDimensionality"] = json!(d);
                }
                r
            })
            .collect();
        Some((
            format!("/v1beta/models/{model}:batchEmbedContents"),
            json!({ "requests": requests }),
        ))
    }

    /// [`EmbeddingRequest::finish_response`] for a Gemini `batchEmbedContents` answer (`embeddings[].values`, in
    /// input order; no usage, so the tokens billed are the estimate).
    ///
    /// # Errors
    /// As [`EmbeddingRequest::finish_response`].
    pub fn finish_gemini_response(
        &self,
        body: &[u8],
        model: &str,
    ) -> std::result::Result<(Value, u64), String> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| format!("embeddings answer is not JSON: {e}"))?;
        let list = v
            .get("embeddings")
            .and_then(Value::as_array)
            .ok_or("Gemini embeddings answer has no `embeddings` array")?;
        let data: Vec<Value> = list
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"index": i, "embedding": e.get("values").cloned().unwrap_or(Value::Null)}))
            .collect();
        self.finish_value(&json!({ "data": data }), model)
    }

    fn finish_value(&self, v: &Value, model: &str) -> std::result::Result<(Value, u64), String> {
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or("embeddings answer has no `data` array")?;
        if data.len() != self.input.len() {
            return Err(format!(
                "embeddings answer has {} vectors for {} inputs",
                data.len(),
                self.input.len()
            ));
        }
        let mut slots: Vec<Option<Value>> = vec![None; data.len()];
        for (pos, item) in data.iter().enumerate() {
            let index = item
                .get("index")
                .and_then(Value::as_u64)
                .map_or(pos, |i| usize::try_from(i).unwrap_or(usize::MAX));
            let vector = decode_vector(item.get("embedding"))
                .ok_or_else(|| format!("data[{pos}].embedding is not a vector"))?;
            if let Some(d) = self.dimensions {
                if vector.len() != d as usize {
                    return Err(format!(
                        "data[{pos}] has {} dimensions, {d} were requested",
                        vector.len()
                    ));
                }
            }
            let slot = slots
                .get_mut(index)
                .ok_or_else(|| format!("data[{pos}].index {index} is out of range"))?;
            if slot.is_some() {
                return Err(format!("data[{pos}].index {index} appears twice"));
            }
            let embedding = match self.encoding_format {
                EncodingFormat::Float => json!(vector),
                EncodingFormat::Base64 => json!(encode_base64(&vector)),
            };
            *slot = Some(json!({"object": "embedding", "index": index, "embedding": embedding}));
        }
        let data: Vec<Value> = slots.into_iter().flatten().collect();
        let prompt = v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| self.input.estimate_total_tokens());
        let out = json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        });
        Ok((out, prompt))
    }
}

/// A vector given as numbers or as base64 of little-endian `f32`.
fn decode_vector(v: Option<&Value>) -> Option<Vec<f32>> {
    match v? {
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<_>>>(),
        Value::String(s) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
            if bytes.is_empty() || bytes.len() % 4 != 0 {
                return None;
            }
            Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Base64 of the little-endian `f32` bytes (OpenAI's `encoding_format: base64`).
#[must_use]
pub fn encode_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn field(v: Value) -> String {
        match EmbeddingRequest::from_value(&v).unwrap_err() {
            Error::InvalidRequest { field, .. } => field,
            e => panic!("{e}"),
        }
    }

    #[test]
    fn inputs_of_every_shape() {
        let r = EmbeddingRequest::from_value(&json!({"model": "m", "input": "hi"})).unwrap();
        assert_eq!(r.input, EmbeddingInput::Text(vec!["hi".into()]));
        let r = EmbeddingRequest::from_value(&json!({"model": "m", "input": ["a", "b"]})).unwrap();
        assert_eq!(r.input.len(), 2);
        let r = EmbeddingRequest::from_value(&json!({"model": "m", "input": [1, 2, 3]})).unwrap();
        assert_eq!(r.input, EmbeddingInput::Tokens(vec![vec![1, 2, 3]]));
        assert_eq!(r.input.estimate_tokens(0), 3);
        let r =
            EmbeddingRequest::from_value(&json!({"model": "m", "input": [[1], [2, 3]]})).unwrap();
        assert_eq!(r.input.len(), 2);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(json!({"model": "m"})), "input");
        assert_eq!(field(json!({"model": "m", "input": ""})), "input");
        assert_eq!(field(json!({"model": "m", "input": []})), "input");
        assert_eq!(field(json!({"model": "m", "input": ["a", 1]})), "input[1]");
        assert_eq!(field(json!({"model": "m", "input": ["a", ""]})), "input[1]");
        assert_eq!(
            field(json!({"model": "m", "input": [[1], [-2]]})),
            "input[1][0]"
        );
        assert_eq!(field(json!({"model": "m", "input": [[1], []]})), "input[1]");
        assert_eq!(
            field(json!({"model": "m", "input": "a", "dimensions": 0})),
            "dimensions"
        );
        assert_eq!(
            field(json!({"model": "m", "input": "a", "dimensions": "8"})),
            "dimensions"
        );
        assert_eq!(
            field(json!({"model": "m", "input": "a", "encoding_format": "int8"})),
            "encoding_format"
        );
        assert_eq!(field(json!({"input": "a"})), "model");
        assert_eq!(
            field(json!({"model": "m", "input": "a", "stream": true})),
            "stream"
        );
        assert_eq!(
            field(json!({"model": "m", "input": "a", "temperature": 1})),
            "temperature"
        );
        assert_eq!(
            field(json!({"model": "m", "input": "a", "user": "u".repeat(300)})),
            "user"
        );
        assert_eq!(
            field(json!({"model": "m", "input": "a", "provider": {"sort": "cheapest"}})),
            "provider.sort"
        );
        let many: Vec<String> = (0..=MAX_INPUTS).map(|i| i.to_string()).collect();
        assert_eq!(field(json!({"model": "m", "input": many})), "input");
    }

    #[test]
    fn planning_view_and_upstream_body() {
        let r = EmbeddingRequest::from_value(&json!({"model": "a/b", "models": ["c/d"],
            "input": ["abcdefgh", "x"], "dimensions": 8, "encoding_format": "base64",
            "provider": {"order": ["openai"]}, "input_type": "query"}))
        .unwrap();
        let p = r.planning();
        assert_eq!(p.model.as_deref(), Some("a/b"));
        assert_eq!(p.models.as_deref(), Some(&["c/d".to_string()][..]));
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.provider.unwrap().order.unwrap(), ["openai"]);
        let b = r.upstream_body("text-embedding-3-small");
        assert_eq!(
            b,
            json!({"model": "text-embedding-3-small", "input": ["abcdefgh", "x"], "dimensions": 8,
                   "encoding_format": "float", "input_type": "query"})
        );
    }

    #[test]
    fn gemini_requests_and_answers() {
        let r = EmbeddingRequest::from_value(
            &json!({"model": "m", "input": ["a", "b"], "dimensions": 2, "input_type": "query"}),
        )
        .unwrap();
        let (path, body) = r.gemini_request("gemini-embedding-001").unwrap();
        assert_eq!(
            path,
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(
            body,
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 2},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 2}]})
        );
        let (out, tokens) = r
            .finish_gemini_response(
                br#"{"embeddings":[{"values":[0.5,1]},{"values":[2,3]}]}"#,
                "g/m",
            )
            .unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([2.0, 3.0]));
        assert_eq!(tokens, 2);
        assert!(r
            .finish_gemini_response(br#"{"embeddings":[{"values":[1,2]}]}"#, "m")
            .is_err());
        let t = EmbeddingRequest::from_value(&json!({"model": "m", "input": [1, 2]})).unwrap();
        assert!(t.gemini_request("x").is_none());
    }

    #[test]
    fn answers_are_checked_and_reencoded() {
        let r = EmbeddingRequest::from_value(
            &json!({"model": "m", "input": ["a", "b"], "encoding_format": "base64"}),
        )
        .unwrap();
        // Out of order, one vector as base64 already.
        let body = json!({"data": [
            {"index": 1, "embedding": encode_base64(&[0.5, -1.0])},
            {"index": 0, "embedding": [0.25, 2.0]}], "usage": {"prompt_tokens": 7}});
        let (out, tokens) = r
            .finish_response(body.to_string().as_bytes(), "x/m")
            .unwrap();
        assert_eq!(tokens, 7);
        assert_eq!(out["model"], "x/m");
        assert_eq!(out["data"][0]["index"], 0);
        assert_eq!(out["data"][0]["embedding"], encode_base64(&[0.25, 2.0]));
        assert_eq!(out["data"][1]["embedding"], encode_base64(&[0.5, -1.0]));
        assert_eq!(out["usage"]["total_tokens"], 7);
        // Wrong count, duplicate index, not a vector, wrong dimensions.
        let bad = |b: Value, r: &EmbeddingRequest| {
            r.finish_response(b.to_string().as_bytes(), "m")
                .unwrap_err()
        };
        assert!(bad(json!({"data": [{"embedding": [1.0]}]}), &r).contains("1 vectors for 2"));
        assert!(bad(
            json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}),
            &r
        )
        .contains("twice"));
        assert!(bad(
            json!({"data": [{"embedding": "!"}, {"embedding": [1.0]}]}),
            &r
        )
        .contains("data[0].embedding"));
        let d = EmbeddingRequest::from_value(&json!({"model": "m", "input": "a", "dimensions": 3}))
            .unwrap();
        assert!(bad(json!({"data": [{"embedding": [1.0, 2.0]}]}), &d).contains("3 were requested"));
        // No usage: the estimate (one token per four bytes).
        let f = EmbeddingRequest::from_value(&json!({"model": "m", "input": "abcdefgh"})).unwrap();
        let (out, tokens) = f
            .finish_response(br#"{"data":[{"embedding":[1,2]}]}"#, "m")
            .unwrap();
        assert_eq!(tokens, 2);
        assert_eq!(out["data"][0]["embedding"], json!([1.0, 2.0]));
    }
}
