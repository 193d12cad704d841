//! Anthropic SSE → OpenAI chunks.
//!
//! Tool calls are numbered by a running counter (`content_block_start.index` counts every block, not only tools).
//! Usage is cumulative and merged field by field (`message_delta` may omit what `message_start` sent). The
//! synthetic structured-output tool streams its JSON as `delta.content`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{anthropic_usage, REASONING_FORMAT};
use crate::providers::errors::map_error_value;
use crate::providers::stream::{ChunkOut, StreamCore};
use crate::providers::Dialect;
use crate::sse::SseEventRef;

/// One event, typed for the hot path (`content_block_delta` borrows its text from the input).
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(default)]
    index: u64,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    stop_details: Option<Value>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    tools: u64,
    /// `(block index, tool index)`.
    block_tool: Vec<(u64, u64)>,
    json_block: Option<u64>,
    usage: Map<String, Value>,
    real_tool: bool,
    /// Input of a wrapped structured-output tool, unwrapped when its block stops.
    json_buf: String,
}

fn delta1(key: &str, v: Value) -> Map<String, Value> {
    let mut m = Map::with_capacity(1);
    m.insert(key.into(), v);
    m
}

impl State {
    fn merge_usage(&mut self, core: &mut StreamCore, u: Option<&Value>) {
        let Some(Value::Object(u)) = u else { return };
        for (k, v) in u {
            if !v.is_null() {
                self.usage.insert(k.clone(), v.clone());
            }
        }
        core.usage = Some(anthropic_usage(&Value::Object(self.usage.clone())));
    }

    pub(crate) fn on_event(
        &mut self,
        core: &mut StreamCore,
        ev: SseEventRef<'_>,
        out: &mut ChunkOut<'_>,
    ) {
        let Ok(e) = serde_json::from_str::<Event<'_>>(ev.data) else {
            return;
        };
        let ty = e.ty.as_deref().or(ev.event).unwrap_or("");
        let index = e.index;
        match ty {
            "content_block_delta" => {
                if let Some(d) = &e.delta {
                    self.block_delta(core, index, d, out);
                }
            }
            "message_start" => {
                let msg = e.message.as_ref();
                core.adopt(
                    msg.and_then(|m| m.get("id")).and_then(Value::as_str),
                    msg.and_then(|m| m.get("model")).and_then(Value::as_str),
                );
                self.merge_usage(core, msg.and_then(|m| m.get("usage")));
                let mut d = delta1("role", json!("assistant"));
                d.insert("content".into(), json!(""));
                core.emit(out, 0, d, None, None);
            }
            "content_block_start" => self.block_start(core, index, e.content_block.as_ref(), out),
            "message_delta" => {
                self.merge_usage(core, e.usage.as_ref());
                let Some(d) = &e.delta else { return };
                if let Some(native) = d.stop_reason.as_deref() {
                    let mut delta = Map::new();
                    if native == "refusal" {
                        let expl = d
                            .stop_details
                            .as_ref()
                            .and_then(|s| s.get("explanation"))
                            .and_then(Value::as_str);
                        if let Some(x) = expl {
                            delta.insert("refusal".into(), json!(x));
                        }
                    }
                    let norm =
                        (self.json_block.is_some() && !self.real_tool && native == "tool_use")
                            .then_some("stop");
                    core.emit_finish(out, 0, delta, native, norm);
                }
            }
            "content_block_stop" if self.json_block == Some(index) && !self.json_buf.is_empty() => {
                let buf = std::mem::take(&mut self.json_buf);
                let answer = serde_json::from_str::<Value>(&buf)
                    .ok()
                    .and_then(|mut v| v.get_mut("value").map(Value::take))
                    .unwrap_or(Value::Null);
                core.emit(
                    out,
                    0,
                    delta1("content", json!(answer.to_string())),
                    None,
                    None,
                );
            }
            "error" => {
                let v: Value = serde_json::from_str(ev.data).unwrap_or(Value::Null);
                let f = map_error_value(Dialect::Anthropic, 200, &v, &core.ctx.provider_name);
                core.fail(out, f);
            }
            _ => {}
        }
    }

    fn block_start(
        &mut self,
        core: &mut StreamCore,
        index: u64,
        block: Option<&Value>,
        out: &mut ChunkOut<'_>,
    ) {
        let Some(b) = block else { return };
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = b
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    core.emit(out, 0, delta1("content", json!(t)), None, None);
                }
            }
            Some("tool_use") => {
                let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                if core.ctx.hints.json_tool.as_deref() == Some(name) {
                    self.json_block = Some(index);
                    return;
                }
                self.real_tool = true;
                let ix = self.tools;
                self.tools += 1;
                self.block_tool.push((index, ix));
                let call = json!([{
                    "index": ix,
                    "id": b.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {"name": core.ctx.hints.original_tool_name(name), "arguments": ""},
                }]);
                core.emit(out, 0, delta1("tool_calls", call), None, None);
            }
            Some("redacted_thinking") if !core.ctx.hints.exclude_reasoning => {
                let d = json!([{"type": "reasoning.encrypted", "data": b.get("data").cloned().unwrap_or(Value::Null), "format": REASONING_FORMAT, "index": index}]);
                core.emit(out, 0, delta1("reasoning_details", d), None, None);
            }
            _ => {}
        }
    }

    fn block_delta(
        &mut self,
        core: &mut StreamCore,
        index: u64,
        d: &Delta<'_>,
        out: &mut ChunkOut<'_>,
    ) {
        let exclude = core.ctx.hints.exclude_reasoning;
        match d.ty.as_deref() {
            Some("text_delta") => {
                if let Some(t) = d.text.as_deref().filter(|t| !t.is_empty()) {
                    core.emit(
                        out,
                        0,
                        delta1("content", Value::String(t.to_string())),
                        None,
                        None,
                    );
                }
            }
            Some("input_json_delta") => {
                let Some(frag) = d.partial_json.as_deref().filter(|f| !f.is_empty()) else {
                    return;
                };
                if self.json_block == Some(index) {
                    if core.ctx.hints.json_tool_wrapped {
                        self.json_buf.push_str(frag);
                    } else {
                        core.emit(out, 0, delta1("content", json!(frag)), None, None);
                    }
                } else if let Some(&(_, ix)) = self.block_tool.iter().find(|(b, _)| *b == index) {
                    let call = json!([{"index": ix, "function": {"arguments": frag}}]);
                    core.emit(out, 0, delta1("tool_calls", call), None, None);
                }
            }
            Some("thinking_delta") if !exclude => {
                if let Some(t) = d.thinking.as_deref().filter(|t| !t.is_empty()) {
                    let mut m = delta1("reasoning", json!(t));
                    m.insert(
                        "reasoning_details".into(),
                        json!([{"type": "reasoning.text", "text": t, "format": REASONING_FORMAT, "index": index}]),
                    );
                    core.emit(out, 0, m, None, None);
                }
            }
            Some("signature_delta") if !exclude => {
                let sig = d.signature.as_deref().unwrap_or("");
                let det = json!([{"type": "reasoning.text", "signature": sig, "format": REASONING_FORMAT, "index": index}]);
                core.emit(out, 0, delta1("reasoning_details", det), None, None);
            }
            _ => {}
        }
    }

    pub(crate) fn on_end(&mut self, _core: &mut StreamCore, _out: &mut ChunkOut<'_>) {}
}
