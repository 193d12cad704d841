//! Chat chunks → Anthropic Messages stream events.
//!
//! `message_start` (and a `ping`) before anything else; each run of text, thinking or one tool call is a content
//! block (`content_block_start`, its deltas, `content_block_stop`), a new kind of content closing the open block;
//! the chat stream's last (usage) chunk gives `message_delta` with the stop reason and the billed usage, then
//! `message_stop`. An in-band error chunk closes the open block and ends the stream with an `error` event.

use serde_json::{json, Value};

use super::messages::{error_body, stop_reason, usage};
use super::At;
use super::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call: its chat `tool_calls[].index`.
    Tool(u64),
}

/// The translator of one stream. Feed every chat chunk to [`MessagesStream::push`], then call
/// [`MessagesStream::finish`] once when the chat stream ends.
#[derive(Debug, Default)]
pub struct MessagesStream {
    started: bool,
    ended: bool,
    /// The open block and its index.
    open: Option<(Open, u64)>,
    next_index: u64,
    /// Chat tool-call index → block index.
    tools: Vec<(u64, u64)>,
    finish: Option<String>,
    native: Option<String>,
    usage: Option<Value>,
}

fn ev(name: &'static str, data: Value) -> Event {
    Event { name, data }
}

impl MessagesStream {
    /// A new translator.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream has ended (a `message_stop` or an `error` was given).
    #[must_use]
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        let s = |k: &str| chunk.get(k).cloned().unwrap_or_else(|| json!(""));
        let mut message = json!({"id": s("id"), "type": "message", "role": "assistant", "model": s("model"),
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}});
        if let Some(p) = chunk.get("provider").filter(|p| p.is_string()) {
            message["provider"] = p.clone();
        }
        out.push(ev(
            "message_start",
            json!({"type": "message_start", "message": message}),
        ));
        out.push(ev("ping", json!({"type": "ping"})));
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((_, index)) = self.open.take() {
            out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// The open block of `kind`, opening it (and closing another) with `block` when needed.
    fn block(&mut self, kind: Open, block: impl FnOnce() -> Value, out: &mut Vec<Event>) -> u64 {
        if let Some((k, i)) = self.open {
            if k == kind {
                return i;
            }
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block()}),
        ));
        index
    }

    fn delta(out: &mut Vec<Event>, index: u64, delta: Value) {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }

    /// Translate one chat chunk.
    #[must_use]
    pub fn push(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.start(chunk, &mut out);
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            self.close(&mut out);
            let status = err
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(502);
            out.push(ev("error", error_body(status, &json!({"error": err}))));
            self.ended = true;
            return out;
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.at(&["choices", "0"]) else {
            return out;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        self.reasoning(delta, &mut out);
        if let Some(t) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let i = self.block(Open::Text, || json!({"type": "text", "text": ""}), &mut out);
            Self::delta(&mut out, i, json!({"type": "text_delta", "text": t}));
        }
        for tc in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call(tc, &mut out);
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
        if let Some(n) = choice.get("native_finish_reason").and_then(Value::as_str) {
            self.native = Some(n.to_string());
        }
        out
    }

    fn reasoning(&mut self, delta: &Value, out: &mut Vec<Event>) {
        let thinking_block = || json!({"type": "thinking", "thinking": "", "signature": ""});
        if let Some(Value::Array(details)) = delta.get("reasoning_details") {
            for d in details {
                match d.get("type").and_then(Value::as_str) {
                    Some("reasoning.text") => {
                        if let Some(t) = d
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            let i = self.block(Open::Thinking, thinking_block, out);
                            Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
                        }
                        if let Some(s) = d
                            .get("signature")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                        {
                            let i = self.block(Open::Thinking, thinking_block, out);
                            Self::delta(out, i, json!({"type": "signature_delta", "signature": s}));
                        }
                    }
                    Some("reasoning.encrypted") => {
                        let data = d.get("data").and_then(Value::as_str).unwrap_or("");
                        self.close(out);
                        let index = self.next_index;
                        self.next_index += 1;
                        out.push(ev("content_block_start", json!({"type": "content_block_start",
                            "index": index, "content_block": {"type": "redacted_thinking", "data": data}})));
                        out.push(ev(
                            "content_block_stop",
                            json!({"type": "content_block_stop", "index": index}),
                        ));
                    }
                    Some("reasoning.summary") => {
                        if let Some(t) = d
                            .get("summary")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            let i = self.block(Open::Thinking, thinking_block, out);
                            Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
                        }
                    }
                    _ => {}
                }
            }
            return;
        }
        if let Some(t) = delta
            .get("reasoning")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let i = self.block(Open::Thinking, thinking_block, out);
            Self::delta(out, i, json!({"type": "thinking_delta", "thinking": t}));
        }
    }

    fn tool_call(&mut self, tc: &Value, out: &mut Vec<Event>) {
        let ti = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let known = self.tools.iter().find(|(t, _)| *t == ti).map(|(_, b)| *b);
        let index = match known {
            Some(b) if tc.get("id").is_none_or(Value::is_null) => b,
            _ => {
                let id = tc
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let name = tc
                    .at(&["function", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                // A new call always opens a new block, even at the same chat index as the previous call.
                self.close(out);
                let b = self.block(
                    Open::Tool(ti),
                    || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
                self.tools.retain(|(t, _)| *t != ti);
                self.tools.push((ti, b));
                b
            }
        };
        if let Some(a) = tc
            .at(&["function", "arguments"])
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            Self::delta(
                out,
                index,
                json!({"type": "input_json_delta", "partial_json": a}),
            );
        }
    }

    /// End the stream: close the open block, then `message_delta` (stop reason, usage) and `message_stop`.
    /// Nothing when an error already ended it.
    #[must_use]
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.start(&Value::Null, &mut out);
        self.close(&mut out);
        let reason = stop_reason(self.finish.as_deref(), self.native.as_deref());
        out.push(ev(
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": reason, "stop_sequence": null},
                   "usage": usage(self.usage.as_ref().unwrap_or(&Value::Null))}),
        ));
        out.push(ev("message_stop", json!({"type": "message_stop"})));
        self.ended = true;
        out
    }
}
