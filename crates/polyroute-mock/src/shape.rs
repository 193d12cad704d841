//! The mock's own check of an Anthropic Messages request body, written from Anthropic's documented rules and
//! independent of polyroute's translators (it is what checks them): a body Anthropic would refuse gets Anthropic's
//! 400 `invalid_request_error` naming the problem, so a translation bug fails a test instead of passing unseen.
//!
//! Checked: `max_tokens` an integer; `messages` a non-empty list of `user`/`assistant` turns whose content is a
//! string or a list of typed blocks; text blocks non-empty; images with a `base64` (JPEG, PNG, GIF, WebP), `url`
//! or `file` source; `tool_use` (assistant only) with an id of `[A-Za-z0-9_-]` and an object `input`;
//! `tool_result` (user only) answering a `tool_use` of the turn just before; thinking blocks in assistant turns
//! only; `system` a string or text blocks; tool names `^[a-zA-Z0-9_-]{1,128}$` with an object `input_schema`;
//! `tool_choice` one of auto/any/tool/none; `thinking.budget_tokens` at least 1024 and below `max_tokens`.

use serde_json::Value;

fn id_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why Anthropic would refuse `body`, or None when it is a valid Messages request.
#[must_use]
pub fn anthropic_request_problem(body: &Value) -> Option<String> {
    let Some(b) = body.as_object() else {
        return Some("body: must be a JSON object".into());
    };
    let max_tokens = match b.get("max_tokens").and_then(Value::as_u64) {
        Some(n) => n,
        None => return Some("max_tokens: Field required".into()),
    };
    match b.get("system") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(a)) => {
            for (i, s) in a.iter().enumerate() {
                if s.get("type").and_then(Value::as_str) != Some("text")
                    || s.get("text")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    return Some(format!("system.{i}: must be a non-empty text block"));
                }
            }
        }
        Some(_) => return Some("system: must be a string or a list of text blocks".into()),
    }
    let Some(turns) = b.get("messages").and_then(Value::as_array) else {
        return Some("messages: Field required".into());
    };
    if turns.is_empty() {
        return Some("messages: at least one message is required".into());
    }
    let mut prev_tool_uses: Vec<String> = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        let role = t.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Some(format!("messages.{i}.role: must be user or assistant"));
        }
        let mut tool_uses = Vec::new();
        match t.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (j, blk) in blocks.iter().enumerate() {
                    let at = format!("messages.{i}.content.{j}");
                    if let Some(p) = block_problem(blk, role, &prev_tool_uses, &mut tool_uses) {
                        return Some(format!("{at}: {p}"));
                    }
                }
            }
            _ => {
                return Some(format!(
                    "messages.{i}.content: must be a string or a list of blocks"
                ))
            }
        }
        prev_tool_uses = tool_uses;
    }
    for (i, tool) in b
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool.get("type").is_some_and(|t| t != "custom") {
            continue; // server tools
        }
        if !tool
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| id_ok(n, 128))
        {
            return Some(format!(
                "tools.{i}.name: must match ^[a-zA-Z0-9_-]{{1,128}}$"
            ));
        }
        if tool.pointer("/input_schema/type").and_then(Value::as_str) != Some("object") {
            return Some(format!("tools.{i}.input_schema.type: must be object"));
        }
    }
    if let Some(tc) = b.get("tool_choice") {
        let ty = tc.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(ty, "auto" | "any" | "tool" | "none") {
            return Some("tool_choice.type: must be auto, any, tool or none".into());
        }
        if ty == "tool" && tc.get("name").and_then(Value::as_str).is_none() {
            return Some("tool_choice.name: Field required".into());
        }
    }
    if let Some(th) = b.get("thinking") {
        if th.get("type").and_then(Value::as_str) == Some("enabled") {
            let budget = th.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
            if budget < 1024 {
                return Some("thinking.budget_tokens: must be at least 1024".into());
            }
            if budget >= max_tokens {
                return Some("max_tokens: must be greater than thinking.budget_tokens".into());
            }
        }
    }
    None
}

fn block_problem(
    blk: &Value,
    role: &str,
    prev_tool_uses: &[String],
    tool_uses: &mut Vec<String>,
) -> Option<String> {
    let ty = blk.get("type").and_then(Value::as_str).unwrap_or("");
    match ty {
        "text"
            if blk
                .get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
        {
            return Some("text content blocks must be non-empty".into());
        }
        "image" => {
            let src = blk.get("source");
            let ok = match src.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("base64") => {
                    matches!(
                        src.and_then(|s| s.get("media_type"))
                            .and_then(Value::as_str),
                        Some("image/jpeg" | "image/png" | "image/gif" | "image/webp")
                    ) && src
                        .and_then(|s| s.get("data"))
                        .is_some_and(Value::is_string)
                }
                Some("url") => src.and_then(|s| s.get("url")).is_some_and(Value::is_string),
                Some("file") => true,
                _ => false,
            };
            if !ok {
                return Some("image.source: invalid".into());
            }
        }
        "document" if blk.get("source").and_then(|x| x.get("type")).is_none() => {
            return Some("document.source: Field required".into());
        }
        "tool_use" => {
            if role != "assistant" {
                return Some("tool_use blocks belong to assistant turns".into());
            }
            let id = blk.get("id").and_then(Value::as_str).unwrap_or("");
            if !id_ok(id, 256) {
                return Some("tool_use.id: must match ^[a-zA-Z0-9_-]+$".into());
            }
            if !blk.get("input").is_some_and(Value::is_object) || blk.get("name").is_none() {
                return Some("tool_use: name and an object input are required".into());
            }
            tool_uses.push(id.to_string());
        }
        "tool_result" => {
            if role != "user" {
                return Some("tool_result blocks belong to user turns".into());
            }
            let id = blk.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
            if !prev_tool_uses.iter().any(|u| u == id) {
                return Some(format!(
                    "unexpected tool_use_id found in tool_result blocks: {id}. Each tool_result block must have \
                     a corresponding tool_use block in the previous message."
                ));
            }
        }
        "thinking" | "redacted_thinking" if role != "assistant" => {
            return Some("thinking blocks belong to assistant turns".into());
        }
        "" => return Some("type: Field required".into()),
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_rules() {
        let ok = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(anthropic_request_problem(&ok), None);
        let orphan = json!({"max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]});
        assert!(anthropic_request_problem(&orphan)
            .is_some_and(|p| p.contains("unexpected tool_use_id")));
        let paired = json!({"max_tokens": 10, "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]});
        assert_eq!(anthropic_request_problem(&paired), None);
        let empty = json!({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]});
        assert!(anthropic_request_problem(&empty).is_some());
        let budget = json!({"max_tokens": 1000, "thinking": {"type": "enabled", "budget_tokens": 1024},
                            "messages": [{"role": "user", "content": "x"}]});
        assert!(anthropic_request_problem(&budget).is_some());
        assert!(anthropic_request_problem(&json!({"messages": []})).is_some());
    }
}
