//! ConverseStream event-stream messages → OpenAI chunks.
//!
//! Each decoded message is rewritten into the Anthropic stream event it mirrors and handed to the Anthropic
//! stream state: `messageStart` → `message_start`; `contentBlockStart` (tool use) → `content_block_start`;
//! `contentBlockDelta` → `content_block_delta` (`text_delta`, `input_json_delta`, `thinking_delta`,
//! `signature_delta`; a text or reasoning block that had no start gets one); `contentBlockStop` →
//! `content_block_stop`. `messageStop` carries the stop reason and `metadata` the usage, which come after it, so
//! the finish (`message_delta`) is emitted at `metadata`, or when the body ends without one. An `exception` or
//! `error` message, or a corrupt frame, ends the stream with an error chunk.

use serde_json::{json, Value};

use super::response::{anthropic_usage_of, map_error};
use crate::eventstream::{Decoder, Message};
use crate::providers::anthropic;
use crate::providers::errors::invalid_response;
use crate::providers::stream::{ChunkOut, StreamCore};
use crate::sse::SseEventRef;

#[derive(Debug, Default)]
pub(crate) struct State {
    decoder: Decoder,
    inner: anthropic::stream::State,
    /// Blocks that have had a start event.
    started: Vec<u64>,
    stop_reason: Option<String>,
    finished: bool,
}

impl State {
    fn anthropic(&mut self, core: &mut StreamCore, ev: &Value, out: &mut ChunkOut<'_>) {
        let data = ev.to_string();
        let sse = SseEventRef {
            event: None,
            data: &data,
            raw: false,
        };
        self.inner.on_event(core, sse, out);
    }

    pub(crate) fn push(&mut self, core: &mut StreamCore, bytes: &[u8], out: &mut ChunkOut<'_>) {
        let (msgs, err) = self.decoder.push(bytes);
        for m in msgs {
            if core.done {
                return;
            }
            self.on_message(core, &m, out);
        }
        if let Some(e) = err {
            let f = invalid_response(&core.ctx.provider_name, &e.to_string(), b"");
            core.fail(out, f);
        }
    }

    fn on_message(&mut self, core: &mut StreamCore, m: &Message, out: &mut ChunkOut<'_>) {
        let payload: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        match m.header_str(":message-type").unwrap_or("event") {
            "exception" => {
                let name = m.header_str(":exception-type").unwrap_or("");
                let name = upper_first(name);
                let f = map_error(200, None, Some(&name), &m.payload, &core.ctx.provider_name);
                core.fail(out, f);
                return;
            }
            "error" => {
                let code = m.header_str(":error-code").unwrap_or("");
                let msg = m.header_str(":error-message").unwrap_or("");
                let body = json!({ "message": msg }).to_string();
                let f = map_error(
                    200,
                    None,
                    Some(code),
                    body.as_bytes(),
                    &core.ctx.provider_name,
                );
                core.fail(out, f);
                return;
            }
            _ => {}
        }
        let index = payload
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match m.header_str(":event-type").unwrap_or("") {
            "messageStart" => {
                self.anthropic(core, &json!({"type": "message_start", "message": {}}), out);
            }
            "contentBlockStart" => {
                if let Some(t) = payload.pointer("/start/toolUse") {
                    self.started.push(index);
                    let ev = json!({"type": "content_block_start", "index": index, "content_block": {
                        "type": "tool_use", "id": t.get("toolUseId"), "name": t.get("name"), "input": {}}});
                    self.anthropic(core, &ev, out);
                }
            }
            "contentBlockDelta" => self.delta(core, index, payload.get("delta"), out),
            "contentBlockStop" => {
                let ev = json!({"type": "content_block_stop", "index": index});
                self.anthropic(core, &ev, out);
            }
            "messageStop" => {
                self.stop_reason = payload
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            "metadata" => {
                let usage = payload.get("usage").map(anthropic_usage_of);
                self.finish(core, usage, out);
            }
            _ => {}
        }
    }

    fn delta(
        &mut self,
        core: &mut StreamCore,
        index: u64,
        d: Option<&Value>,
        out: &mut ChunkOut<'_>,
    ) {
        let Some(d) = d else { return };
        let (start, delta) = if let Some(t) = d.get("text") {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": t}),
            )
        } else if let Some(t) = d.pointer("/toolUse/input") {
            (
                Value::Null,
                json!({"type": "input_json_delta", "partial_json": t}),
            )
        } else if let Some(r) = d.get("reasoningContent") {
            if let Some(data) = r.get("redactedContent") {
                let ev = json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "redacted_thinking", "data": data}});
                self.started.push(index);
                self.anthropic(core, &ev, out);
                return;
            }
            let start = json!({"type": "thinking", "thinking": ""});
            if let Some(t) = r.get("text") {
                (start, json!({"type": "thinking_delta", "thinking": t}))
            } else if let Some(s) = r.get("signature") {
                (start, json!({"type": "signature_delta", "signature": s}))
            } else {
                return;
            }
        } else {
            return;
        };
        if !start.is_null() && !self.started.contains(&index) {
            self.started.push(index);
            let ev = json!({"type": "content_block_start", "index": index, "content_block": start});
            self.anthropic(core, &ev, out);
        }
        let ev = json!({"type": "content_block_delta", "index": index, "delta": delta});
        self.anthropic(core, &ev, out);
    }

    /// The finish (`message_delta`) once, with the usage when known.
    fn finish(&mut self, core: &mut StreamCore, usage: Option<Value>, out: &mut ChunkOut<'_>) {
        if self.finished {
            return;
        }
        let Some(stop) = self.stop_reason.clone() else {
            // Usage before the stop reason: keep it for the finish.
            if let Some(u) = usage {
                self.anthropic(core, &json!({"type": "message_delta", "usage": u}), out);
            }
            return;
        };
        self.finished = true;
        let mut ev = json!({"type": "message_delta", "delta": {"stop_reason": stop}});
        if let Some(u) = usage {
            ev["usage"] = u;
        }
        self.anthropic(core, &ev, out);
    }

    pub(crate) fn on_end(&mut self, core: &mut StreamCore, out: &mut ChunkOut<'_>) {
        if core.done {
            return;
        }
        if let Some(e) = self.decoder.finish() {
            let f = invalid_response(&core.ctx.provider_name, &e.to_string(), b"");
            core.fail(out, f);
            return;
        }
        self.finish(core, None, out);
    }
}

/// `throttlingException` (the stream's header) → `ThrottlingException` (the exception's name).
fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}
