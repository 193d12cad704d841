//! Gemini `alt=sse` stream → OpenAI chunks.
//!
//! Each event is a partial response: text parts are deltas, a `functionCall` arrives whole and is emitted as one
//! complete tool-call fragment numbered by a counter that persists across events. `finishReason` and
//! `usageMetadata` are kept and emitted when the body ends (Gemini sends no terminator; some streams repeat
//! `finishReason` on every event). A bare JSON error object after the data events ends the stream with an error
//! chunk; a prompt block without candidates finishes with `content_filter`.

use serde_json::{json, Map, Value};

use super::response::{gemini_usage, part_out, PartOut};
use super::REASONING_FORMAT;
use crate::providers::errors::map_error_value;
use crate::providers::stream::{ChunkOut, StreamCore};
use crate::providers::Dialect;
use crate::sse::SseEventRef;

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Function calls seen (for synthetic ids).
    calls: u64,
    /// Per candidate: `(index, tool calls emitted, last finishReason)`.
    cands: Vec<(u64, u64, Option<String>)>,
    blocked: Option<String>,
    response_id: String,
}

fn parse_raw(raw: &str) -> Option<Value> {
    let t = raw
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim()
        .trim_end_matches(',');
    serde_json::from_str(t).ok()
}

impl State {
    pub(crate) fn on_event(
        &mut self,
        core: &mut StreamCore,
        ev: SseEventRef<'_>,
        out: &mut ChunkOut<'_>,
    ) {
        let parsed = if ev.raw {
            parse_raw(ev.data)
        } else {
            serde_json::from_str::<Value>(ev.data).ok()
        };
        let Some(v) = parsed else { return };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            let f = map_error_value(Dialect::Gemini, 200, &v, &core.ctx.provider_name);
            core.fail(out, f);
            return;
        }
        if let Some(id) = v.get("responseId").and_then(Value::as_str) {
            self.response_id = id.to_string();
        }
        core.adopt(
            v.get("responseId").and_then(Value::as_str),
            v.get("modelVersion").and_then(Value::as_str),
        );
        if let Some(u) = v.get("usageMetadata") {
            core.usage = Some(gemini_usage(u));
        }
        if let Some(r) = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
        {
            self.blocked = Some(r.to_string());
        }
        for (pos, c) in v
            .get("candidates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
            let slot = match self.cands.iter().position(|(i, _, _)| *i == index) {
                Some(s) => s,
                None => {
                    self.cands.push((index, 0, None));
                    self.cands.len() - 1
                }
            };
            for (i, p) in c
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let (po, sig) = part_out(p, i, &self.response_id, &mut self.calls, &core.ctx);
                let mut d = Map::new();
                match po {
                    PartOut::Text(t) if !t.is_empty() => {
                        d.insert("content".into(), json!(t));
                    }
                    PartOut::Thought(t) if !core.ctx.hints.exclude_reasoning && !t.is_empty() => {
                        d.insert("reasoning".into(), json!(t.clone()));
                        d.insert(
                            "reasoning_details".into(),
                            json!([{"type": "reasoning.text", "text": t, "format": REASONING_FORMAT, "index": i}]),
                        );
                    }
                    PartOut::Call {
                        id,
                        name,
                        arguments,
                    } => {
                        let ix = self.cands[slot].1;
                        self.cands[slot].1 += 1;
                        d.insert(
                            "tool_calls".into(),
                            json!([{"index": ix, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]),
                        );
                    }
                    _ => {}
                }
                if let Some(s) = sig.filter(|_| !core.ctx.hints.exclude_reasoning) {
                    match d.get_mut("reasoning_details").and_then(Value::as_array_mut) {
                        Some(a) => a.push(s),
                        None => {
                            d.insert("reasoning_details".into(), json!([s]));
                        }
                    }
                }
                if !d.is_empty() {
                    core.emit(out, index, d, None, None);
                }
            }
            if let Some(f) = c.get("finishReason").and_then(Value::as_str) {
                self.cands[slot].2 = Some(f.to_string());
            }
            if c.get("logprobsResult").is_some() {
                let mut extra = Map::new();
                extra.insert("logprobs".into(), super::response::logprobs(c));
                core.emit(out, index, Map::new(), None, Some(extra));
            }
        }
    }

    pub(crate) fn on_end(&mut self, core: &mut StreamCore, out: &mut ChunkOut<'_>) {
        if core.done {
            return;
        }
        if self.cands.is_empty() {
            if let Some(r) = self.blocked.take() {
                core.emit_finish(out, 0, Map::new(), &r, Some("content_filter"));
            }
            return;
        }
        for (index, tools, finish) in std::mem::take(&mut self.cands) {
            let Some(native) = finish else { continue };
            let norm = (tools > 0 && native == "STOP").then_some("tool_calls");
            core.emit_finish(out, index, Map::new(), &native, norm);
        }
    }
}
