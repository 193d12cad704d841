//! Limits on what a client may send, checked when a request is validated: identifier lengths, numeric ranges,
//! and the set of top-level fields (an unknown one is a 400 naming it, as for every nested object).
//!
//! | field | allowed |
//! |---|---|
//! | `model`, `models[i]` | 1 to [`MAX_MODEL_ID`] bytes |
//! | `provider.order/only/ignore[i]` | at most [`MAX_PROVIDER_ID`] bytes, at most [`MAX_PROVIDER_LIST`] entries |
//! | `session_id`, `user` | at most [`MAX_SESSION_ID`] bytes |
//! | `prompt_cache_key` | at most [`MAX_CACHE_KEY`] bytes |
//! | `max_tokens`, `max_completion_tokens` | 1 to [`MAX_OUTPUT_TOKENS`] |
//! | `n` | 1 to [`MAX_N`] |
//! | the body as JSON | at most [`MAX_JSON_DEPTH`] levels deep and [`MAX_JSON_VALUES`] values ([`prescan_json`], before it is parsed) |

use serde_json::Value;

use super::ChatRequest;
use crate::error::{Error, Result};

/// The longest model id accepted (bytes).
pub const MAX_MODEL_ID: usize = 256;
/// The longest provider slug or tag accepted in `provider` lists (bytes).
pub const MAX_PROVIDER_ID: usize = 128;
/// The most entries in one `provider` list.
pub const MAX_PROVIDER_LIST: usize = 256;
/// The longest `session_id` or `user` (bytes).
pub const MAX_SESSION_ID: usize = 256;
/// The longest `prompt_cache_key` (bytes).
pub const MAX_CACHE_KEY: usize = 1024;
/// The largest output limit accepted (a 32-bit signed integer, what providers parse).
pub const MAX_OUTPUT_TOKENS: u64 = i32::MAX as u64;
/// The most choices (`n`) accepted.
pub const MAX_N: u64 = 128;

/// The deepest nesting of arrays and objects a request body may have.
pub const MAX_JSON_DEPTH: usize = 64;
/// The most JSON values (array elements and object members, counted by their openings and separators) a request
/// body may hold: a value tree costs tens of bytes per value whatever its text, so this bounds what parsing
/// a body can allocate (about 100 bytes a value) however the body is shaped. Long strings cost their length only.
pub const MAX_JSON_VALUES: usize = 200_000;

/// A single pass over a request body's bytes, before it is parsed into a value tree: refuses nesting deeper than
/// [`MAX_JSON_DEPTH`] and more than [`MAX_JSON_VALUES`] values, so a small body cannot make a large tree
/// (a 4 MB array of zeros would be two million values). Does not validate the JSON (the parser does); linear
/// time, no allocation.
///
/// # Errors
/// An [`Error::InvalidRequest`] naming the body (`field` = `body`) and the limit.
pub fn prescan_json(body: &[u8]) -> Result<()> {
    match scan(body, MAX_JSON_DEPTH, MAX_JSON_VALUES) {
        None => Ok(()),
        Some(Over::Depth) => Err(Error::invalid(
            "body",
            format!("The request body nests deeper than {MAX_JSON_DEPTH} levels"),
        )),
        Some(Over::Values) => Err(Error::invalid(
            "body",
            format!("The request body holds more than {MAX_JSON_VALUES} JSON values"),
        )),
    }
}

/// Which limit a body went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Depth,
    Values,
}

/// [`prescan_json`]'s pass with the limits as arguments: the first limit gone over, if any.
fn scan(body: &[u8], max_depth: usize, max_values: usize) -> Option<Over> {
    let (mut depth, mut values) = (0usize, 1usize);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        i += 1;
        match b {
            // A string is skipped whole: to its closing quote, past escaped characters (most of a body's bytes
            // are in strings, so they are searched, not stepped through).
            b'"' => {
                i = string_end(body, i);
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                values += 1;
                if depth > max_depth {
                    return Some(Over::Depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => continue,
        }
        if values > max_values {
            return Some(Over::Values);
        }
    }
    None
}

/// The index just past the closing quote of the string whose contents start at `i` (the body's end when it is
/// not closed: the parser then refuses the body).
fn string_end(body: &[u8], mut i: usize) -> usize {
    while let Some(k) = memchr::memchr2(b'"', b'\\', body.get(i..).unwrap_or_default()) {
        let at = i + k;
        if body[at] == b'"' {
            return at + 1;
        }
        // A backslash and the character it escapes.
        i = at + 2;
    }
    body.len()
}

/// Every top-level field a chat request may carry: the OpenAI Chat Completions fields and OpenRouter's
/// extensions (current, deprecated and legacy ones that clients still send).
pub const KNOWN_FIELDS: &[&str] = &[
    // Typed by `ChatRequest`.
    "model",
    "models",
    "route",
    "provider",
    "messages",
    "tools",
    "tool_choice",
    "response_format",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "session_id",
    "prompt_cache_key",
    "service_tier",
    "plugins",
    // OpenAI sampling and output.
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "stop",
    "n",
    "parallel_tool_calls",
    "prediction",
    "stream_options",
    "modalities",
    "audio",
    "store",
    "metadata",
    "user",
    "safety_identifier",
    "functions",
    "function_call",
    // OpenRouter.
    "reasoning",
    "reasoning_effort",
    "include_reasoning",
    "verbosity",
    "web_search_options",
    "prompt_cache_options",
    "cache_control",
    "trace",
    "debug",
    "usage",
    "transforms",
    "image_config",
    "stop_server_tools_when",
    "prompt",
];

/// `field` as a string of at most `max` bytes (absent or not a string: nothing to check).
fn capped(field: &str, v: Option<&str>, max: usize) -> Result<()> {
    match v {
        Some(s) if s.len() > max => Err(Error::invalid(
            field,
            format!("must be at most {max} bytes long (got {})", s.len()),
        )),
        _ => Ok(()),
    }
}

/// A field name shortened for an error message (a hostile one may be megabytes long).
pub(crate) fn shown(name: &str) -> String {
    clip(name, 64)
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The checks above, on a deserialized request.
pub(crate) fn check(req: &ChatRequest) -> Result<()> {
    if let Some(name) = req
        .extra
        .keys()
        .find(|k| !KNOWN_FIELDS.contains(&k.as_str()))
    {
        return Err(Error::invalid(
            shown(name),
            "unknown field: not a Chat Completions or OpenRouter request parameter",
        ));
    }
    capped("model", req.model.as_deref(), MAX_MODEL_ID)?;
    for (i, m) in req.models.iter().flatten().enumerate() {
        capped(&format!("models[{i}]"), Some(m), MAX_MODEL_ID)?;
    }
    if let Some(p) = &req.provider {
        for (name, list) in [
            ("order", &p.order),
            ("only", &p.only),
            ("ignore", &p.ignore),
        ] {
            let Some(list) = list else { continue };
            if list.len() > MAX_PROVIDER_LIST {
                return Err(Error::invalid(
                    format!("provider.{name}"),
                    format!("must have at most {MAX_PROVIDER_LIST} entries"),
                ));
            }
            for (i, s) in list.iter().enumerate() {
                capped(&format!("provider.{name}[{i}]"), Some(s), MAX_PROVIDER_ID)?;
            }
        }
    }
    capped("session_id", req.session_id.as_deref(), MAX_SESSION_ID)?;
    capped(
        "user",
        req.extra.get("user").and_then(Value::as_str),
        MAX_SESSION_ID,
    )?;
    capped(
        "prompt_cache_key",
        req.prompt_cache_key.as_deref(),
        MAX_CACHE_KEY,
    )?;
    for (name, v) in [
        ("max_tokens", req.max_tokens),
        ("max_completion_tokens", req.max_completion_tokens),
    ] {
        if v.is_some_and(|n| n == 0 || n > MAX_OUTPUT_TOKENS) {
            return Err(Error::invalid(
                name,
                format!("must be an integer from 1 to {MAX_OUTPUT_TOKENS}"),
            ));
        }
    }
    if let Some(n) = req.extra.get("n") {
        if !n.as_u64().is_some_and(|n| (1..=MAX_N).contains(&n)) {
            return Err(Error::invalid(
                "n",
                format!("must be an integer from 1 to {MAX_N}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(v: Value) -> Option<String> {
        match ChatRequest::from_value(&v) {
            Err(Error::InvalidRequest { field, .. }) => Some(field),
            Err(e) => Some(format!("other: {e}")),
            Ok(_) => None,
        }
    }

    /// The byte-by-byte pass the string search replaced: the oracle.
    fn stepped(body: &[u8], max_depth: usize, max_values: usize) -> Option<Over> {
        let (mut depth, mut values) = (0usize, 1usize);
        let (mut in_str, mut escaped) = (false, false);
        for &b in body {
            if in_str {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    values += 1;
                    if depth > max_depth {
                        return Some(Over::Depth);
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b',' => values += 1,
                _ => continue,
            }
            if values > max_values {
                return Some(Over::Values);
            }
        }
        None
    }

    proptest::proptest! {
        #[test]
        fn the_string_search_counts_as_stepping_does(
            body in proptest::collection::vec(proptest::sample::select(b"\"\\[]{},a ".to_vec()), 0..200),
            max_depth in 0usize..6,
            // At least 1: a body is one value before any is counted (the real limit is far above).
            max_values in 1usize..12,
        ) {
            proptest::prop_assert_eq!(scan(&body, max_depth, max_values), stepped(&body, max_depth, max_values));
        }
    }

    #[test]
    fn prescan_counts_values_and_depth_outside_strings() {
        assert!(prescan_json(br#"{"a":[1,2,{"b":"[[[,,,"}]}"#).is_ok());
        let wide = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        assert!(
            matches!(prescan_json(wide.as_bytes()), Err(Error::InvalidRequest { field, .. }) if field == "body")
        );
        let ok = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES - 3));
        assert!(prescan_json(ok.as_bytes()).is_ok());
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(prescan_json(deep(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(prescan_json(deep(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
        // Brackets and commas inside strings, escaped quotes included, do not count.
        let s = format!(r#"{{"s":"\"{}"}}"#, "[,".repeat(MAX_JSON_VALUES));
        let r = prescan_json(s.as_bytes());
        assert!(r.is_ok(), "{r:?} {}", &s[..20]);
    }

    fn base() -> Value {
        json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    }

    fn with(k: &str, v: Value) -> Value {
        let mut b = base();
        b[k] = v;
        b
    }

    #[test]
    fn a_huge_model_id_is_a_400_naming_the_field() {
        assert_eq!(
            field_of(with("model", json!("a".repeat(1 << 20)))).as_deref(),
            Some("model")
        );
        assert_eq!(
            field_of(with("models", json!(["x/y", "b".repeat(300)]))).as_deref(),
            Some("models[1]")
        );
        assert_eq!(
            field_of(with("provider", json!({"order": ["c".repeat(200)]}))).as_deref(),
            Some("provider.order[0]")
        );
        assert_eq!(
            field_of(with("session_id", json!("s".repeat(257)))).as_deref(),
            Some("session_id")
        );
        assert_eq!(field_of(with("model", json!("m".repeat(256)))), None);
    }

    #[test]
    fn out_of_range_numbers_are_a_400_naming_the_field() {
        assert_eq!(
            field_of(with("max_tokens", json!(u64::MAX))).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            field_of(with("max_completion_tokens", json!(1u64 << 40))).as_deref(),
            Some("max_completion_tokens")
        );
        assert_eq!(
            field_of(with("n", json!(1_000_000_000u64))).as_deref(),
            Some("n")
        );
        assert_eq!(field_of(with("n", json!(0))).as_deref(), Some("n"));
        assert_eq!(field_of(with("n", json!(2))), None);
        assert_eq!(field_of(with("max_tokens", json!(MAX_OUTPUT_TOKENS))), None);
    }

    #[test]
    fn unknown_top_level_fields_are_a_400_naming_them() {
        assert_eq!(
            field_of(with("padding_field", json!(vec![0; 1000]))).as_deref(),
            Some("padding_field")
        );
        let long = "z".repeat(10_000);
        let f = field_of(with(&long, json!(1))).unwrap();
        assert!(f.len() < 80, "{}", f.len());
        // Found by `scripts/fuzz --bounded`: an unknown nested field echoed whole in the path and the message.
        let mut nested = serde_json::Map::new();
        nested.insert("a".repeat(100_000), json!("x"));
        match ChatRequest::from_value(&with("provider", Value::Object(nested))) {
            Err(Error::InvalidRequest { field, message }) => {
                assert!(
                    field.len() < 80 && message.len() < 600,
                    "{} / {}",
                    field.len(),
                    message.len()
                );
            }
            other => panic!("{other:?}"),
        }
        for k in [
            "temperature",
            "user",
            "metadata",
            "usage",
            "transforms",
            "stream_options",
        ] {
            let v = if k == "temperature" {
                json!(0.5)
            } else if k == "user" {
                json!("u")
            } else {
                json!({})
            };
            let v = if k == "transforms" { json!([]) } else { v };
            assert_eq!(field_of(with(k, v)), None, "{k}");
        }
    }
}
