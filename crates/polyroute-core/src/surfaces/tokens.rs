//! A prompt-size estimate for `POST /v1/messages/count_tokens`.
//!
//! **An estimate, not a tokenizer.** Claude's tokenizer is not public, and polyroute ships no vocabulary files;
//! the count imitates byte-pair encoders on text: a word of up to 7 letters (with its leading space) is one
//! token, longer words one more per 7 letters, digits one per 3, each punctuation mark and each other
//! non-ASCII character one, a run of whitespace containing a line break or several spaces one. Each message
//! adds 3, each tool its JSON text, and a request with tools adds Anthropic's documented tool-use system prompt
//! (346 tokens for `auto`/`none`, 313 for `any`/`tool`). Images count 1,600 (Anthropic's cost of an image at
//! the largest size it keeps: about 1.15 megapixels / 750), documents 1,500 (one page; page counts are not
//! read).
//!
//! How exact: not measured against any provider's count (no reference tokenizer is available offline, and
//! Anthropic's `count_tokens` is a remote call). On polyroute's own README it gives 3.1 characters per token; the
//! usual figure for OpenAI's tokenizers on English prose is about 4, so it likely overcounts for OpenAI models,
//! errs towards more tokens generally (a safe side for context-fit checks), and images and PDFs are flat
//! allowances. Use the provider's own count when the exact number matters.

use super::At;
use serde_json::Value;

use crate::error::Result;

/// Tokens an image counts (Anthropic: `width * height / 750` at most about 1,600).
pub const IMAGE_TOKENS: u64 = 1600;
/// Tokens a document counts.
pub const DOCUMENT_TOKENS: u64 = 1500;
/// Per-message overhead.
pub const MESSAGE_TOKENS: u64 = 3;

/// The estimated tokens of `text`.
#[must_use]
pub fn estimate_text(text: &str) -> u64 {
    let mut tokens: u64 = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphabetic() {
            let mut n: u64 = 1;
            while chars.peek().is_some_and(char::is_ascii_alphabetic) {
                chars.next();
                n += 1;
            }
            tokens += n.div_ceil(7);
        } else if c.is_ascii_digit() {
            let mut n: u64 = 1;
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
                n += 1;
            }
            tokens += n.div_ceil(3);
        } else if c.is_whitespace() {
            let mut newline = c == '\n';
            let mut n = 1;
            while chars.peek().is_some_and(|x| x.is_whitespace()) {
                newline |= chars.next() == Some('\n');
                n += 1;
            }
            // A single space before a word merges with it.
            if newline || n > 1 {
                tokens += 1;
            }
        } else {
            tokens += 1;
        }
    }
    tokens
}

fn blocks(content: &Value) -> u64 {
    match content {
        Value::String(s) => estimate_text(s),
        Value::Array(blocks) => blocks.iter().map(block).sum(),
        _ => 0,
    }
}

fn block(b: &Value) -> u64 {
    match b.get("type").and_then(Value::as_str) {
        Some("image") => IMAGE_TOKENS,
        Some("document") => match b.at(&["source", "type"]).and_then(Value::as_str) {
            Some("text") => estimate_text(
                b.at(&["source", "data"])
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            ),
            _ => DOCUMENT_TOKENS,
        },
        Some("text") => estimate_text(b.get("text").and_then(Value::as_str).unwrap_or("")),
        Some("thinking") => estimate_text(b.get("thinking").and_then(Value::as_str).unwrap_or("")),
        Some("tool_use") => {
            estimate_text(b.get("name").and_then(Value::as_str).unwrap_or(""))
                + b.get("input").map_or(0, |i| estimate_text(&i.to_string()))
        }
        Some("tool_result") => 3 + b.get("content").map_or(0, blocks),
        _ => b
            .get("text")
            .and_then(Value::as_str)
            .map_or(0, estimate_text),
    }
}

/// The estimated input tokens of a Messages request (`{"input_tokens": n}` is the endpoint's answer). The
/// request is checked as `POST /v1/messages` checks it (except `max_tokens`, which count_tokens does not take).
///
/// # Errors
/// [`crate::Error::InvalidRequest`] for a malformed request, naming the field.
pub fn count_messages(body: &Value) -> Result<u64> {
    let mut check = body.clone();
    if let Some(m) = check.as_object_mut() {
        m.insert("max_tokens".into(), Value::from(1));
    }
    super::messages::to_chat(&check)?;
    let mut n: u64 = 0;
    if let Some(s) = body.get("system") {
        n += blocks(s) + MESSAGE_TOKENS;
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        n += MESSAGE_TOKENS + m.get("content").map_or(0, blocks);
    }
    let tools = body.get("tools").and_then(Value::as_array);
    if let Some(tools) = tools.filter(|t| !t.is_empty()) {
        let forced = matches!(
            body.at(&["tool_choice", "type"]).and_then(Value::as_str),
            Some("any" | "tool")
        );
        n += if forced { 313 } else { 346 };
        for t in tools {
            n += estimate_text(&t.to_string());
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_digits_and_punctuation() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("Hello, world!"), 4);
        assert_eq!(estimate_text("internationalization"), 3);
        assert_eq!(estimate_text("1234567"), 3);
        assert_eq!(estimate_text("a\n\nb"), 3);
        assert_eq!(estimate_text("日本語"), 3);
    }

    #[test]
    fn counts_a_request_and_refuses_a_bad_one() {
        let body = json!({"model": "anthropic/claude-sonnet-4.5", "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]});
        // system: 3 + 3, user: 3 + 2 + 1600
        assert_eq!(count_messages(&body).unwrap(), 1611);
        let with_tools = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}], "tool_choice": {"type": "any"}});
        assert!(count_messages(&with_tools).unwrap() > 313);
        let bad = json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]});
        let e = count_messages(&bad).unwrap_err();
        assert!(e.to_string().contains("messages[0].role"), "{e}");
    }
}
