//! Chat chunks → Anthropic Messages stream events.
//!
//! `message_start` (and a `ping`) before anything else; each run of text, thinking or one tool call is a content
//! block (`content_block_start`, its deltas, `content_block_stop`), a new kind of content closing the open block;
//! the chat stream's last (usage) chunk gives `message_delta` with the stop reason and the billed usage, then
//! `message_stop`. An in-band error chunk closes the open block and ends the stream with an `error` event.

use serde_json::{json, Value};

use super::messages::{error_body, stop_reason, usage};
use super::Event;
use super::{usage_counts, write_json_str, At, Render, Sink, SseText};

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

/// A delta's kind: its `type` and the field carrying its text.
#[derive(Debug, Clone, Copy)]
enum Delta {
    Text,
    Thinking,
    Signature,
    InputJson,
}

impl Delta {
    fn parts(self) -> (&'static str, &'static str) {
        match self {
            Delta::Text => ("text_delta", "text"),
            Delta::Thinking => ("thinking_delta", "thinking"),
            Delta::Signature => ("signature_delta", "signature"),
            Delta::InputJson => ("input_json_delta", "partial_json"),
        }
    }
}

/// One event as the translator gives it. The frequent ones (a ping, a text or thinking block's start, a delta, a
/// block's stop) keep their parts, so the SSE path writes their text without building a `Value`; the others are
/// their [`Event`] already.
#[derive(Debug)]
enum Ev<'a> {
    /// `message_start` with the first chunk's `id`, `model` and `provider` (a string).
    Start(Option<&'a Value>, Option<&'a Value>, Option<&'a Value>),
    Ping,
    /// A text (or thinking: true) block opens at this index.
    Opens(u64, bool),
    Delta(u64, Delta, &'a str),
    Stop(u64),
    /// `message_delta` with the stop reason and the chat usage, then `message_stop`.
    End(&'static str, Option<&'a Value>),
    Full(Event),
}

/// `s`, or `""` when absent.
fn or_empty(v: Option<&Value>) -> Value {
    v.cloned().unwrap_or_else(|| json!(""))
}

impl Render for Ev<'_> {
    /// The event as [`Event`]s (`End` is two).
    fn into_events(self, out: &mut Vec<Event>) {
        match self {
            Ev::Start(id, model, provider) => {
                let mut message = json!({"id": or_empty(id), "type": "message", "role": "assistant",
                    "model": or_empty(model), "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0}});
                if let Some(p) = provider {
                    message["provider"] = p.clone();
                }
                out.push(ev(
                    "message_start",
                    json!({"type": "message_start", "message": message}),
                ));
            }
            Ev::End(reason, u) => {
                out.push(ev(
                    "message_delta",
                    json!({"type": "message_delta",
                           "delta": {"stop_reason": reason, "stop_sequence": null},
                           "usage": usage(u.unwrap_or(&Value::Null))}),
                ));
                out.push(ev("message_stop", json!({"type": "message_stop"})));
            }
            Ev::Ping => out.push(ev("ping", json!({"type": "ping"}))),
            Ev::Opens(index, thinking) => {
                let block = if thinking {
                    json!({"type": "thinking", "thinking": "", "signature": ""})
                } else {
                    json!({"type": "text", "text": ""})
                };
                out.push(ev(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index, "content_block": block}),
                ));
            }
            Ev::Delta(index, kind, text) => {
                let (ty, field) = kind.parts();
                let mut delta = serde_json::Map::with_capacity(2);
                delta.insert("type".into(), Value::from(ty));
                delta.insert(field.into(), Value::from(text));
                out.push(ev(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                ));
            }
            Ev::Stop(index) => out.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            )),
            Ev::Full(e) => out.push(e),
        }
    }

    /// The event as SSE text: the bytes [`Event::write_sse`] writes for [`Ev::into_events`].
    fn write_sse(self, buf: &mut Vec<u8>) {
        let index = |buf: &mut Vec<u8>, i: u64| {
            buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        };
        let value = |buf: &mut Vec<u8>, v: Option<&Value>| match v {
            Some(Value::String(s)) => write_json_str(buf, s),
            // Writing a `Value` into a `Vec` cannot fail.
            Some(v) => drop(serde_json::to_writer(&mut *buf, v)),
            None => buf.extend_from_slice(b"\"\""),
        };
        match self {
            Ev::Start(id, model, provider) => {
                buf.extend_from_slice(
                    b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":",
                );
                value(buf, id);
                buf.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
                value(buf, model);
                buf.extend_from_slice(
                    b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\
                      \"usage\":{\"input_tokens\":0,\"output_tokens\":0}",
                );
                if let Some(p) = provider {
                    buf.extend_from_slice(b",\"provider\":");
                    value(buf, Some(p));
                }
                buf.extend_from_slice(b"}}\n\n");
            }
            Ev::End(reason, u) => {
                let u = u.unwrap_or(&Value::Null);
                let (prompt, completion, read, write, _) = usage_counts(u);
                buf.extend_from_slice(
                    b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":",
                );
                write_json_str(buf, reason);
                buf.extend_from_slice(b",\"stop_sequence\":null},\"usage\":{\"input_tokens\":");
                let mut n = itoa::Buffer::new();
                buf.extend_from_slice(
                    n.format(prompt.saturating_sub(read).saturating_sub(write))
                        .as_bytes(),
                );
                buf.extend_from_slice(b",\"output_tokens\":");
                buf.extend_from_slice(n.format(completion).as_bytes());
                buf.extend_from_slice(b",\"cache_creation_input_tokens\":");
                buf.extend_from_slice(n.format(write).as_bytes());
                buf.extend_from_slice(b",\"cache_read_input_tokens\":");
                buf.extend_from_slice(n.format(read).as_bytes());
                if let Some(c) = u.get("cost").filter(|c| !c.is_null()) {
                    buf.extend_from_slice(b",\"cost\":");
                    value(buf, Some(c));
                }
                buf.extend_from_slice(
                    b"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                );
            }
            Ev::Ping => buf.extend_from_slice(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
            Ev::Opens(i, thinking) => {
                buf.extend_from_slice(
                    b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":",
                );
                index(buf, i);
                buf.extend_from_slice(if thinking {
                    b",\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
                        .as_slice()
                } else {
                    b",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".as_slice()
                });
            }
            Ev::Delta(i, kind, text) => {
                let (ty, field) = kind.parts();
                buf.extend_from_slice(
                    b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
                );
                index(buf, i);
                buf.extend_from_slice(b",\"delta\":{\"type\":\"");
                buf.extend_from_slice(ty.as_bytes());
                buf.extend_from_slice(b"\",\"");
                buf.extend_from_slice(field.as_bytes());
                buf.extend_from_slice(b"\":");
                write_json_str(buf, text);
                buf.extend_from_slice(b"}}\n\n");
            }
            Ev::Stop(i) => {
                buf.extend_from_slice(
                    b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
                );
                index(buf, i);
                buf.extend_from_slice(b"}\n\n");
            }
            Ev::Full(e) => e.write_sse(buf),
        }
    }
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

    fn start(&mut self, chunk: &Value, out: &mut impl Sink) {
        if self.started {
            return;
        }
        self.started = true;
        let provider = chunk.get("provider").filter(|p| p.is_string());
        out.put(Ev::Start(chunk.get("id"), chunk.get("model"), provider));
        out.put(Ev::Ping);
    }

    fn close(&mut self, out: &mut impl Sink) {
        if let Some((_, index)) = self.open.take() {
            out.put(Ev::Stop(index));
        }
    }

    /// The open block of `kind`, opening it (and closing another) with `opens` (given the new index) when
    /// needed.
    fn block<'a>(
        &mut self,
        kind: Open,
        opens: impl FnOnce(u64) -> Ev<'a>,
        out: &mut impl Sink,
    ) -> u64 {
        if let Some((k, i)) = self.open {
            if k == kind {
                return i;
            }
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        out.put(opens(index));
        index
    }

    /// Translate one chat chunk.
    #[must_use]
    pub fn push(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        self.push_to(chunk, &mut out);
        out
    }

    /// [`MessagesStream::push`] written as SSE text (`event: …\ndata: …\n\n` per event) at the end of `buf`:
    /// the bytes [`Event::write_sse`] writes for each event, without building the frequent ones as values.
    pub fn push_sse(&mut self, chunk: &Value, buf: &mut Vec<u8>) {
        self.push_to(chunk, &mut SseText(buf));
    }

    fn push_to(&mut self, chunk: &Value, out: &mut impl Sink) {
        if self.ended {
            return;
        }
        self.start(chunk, out);
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            self.close(out);
            let status = err
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(502);
            out.put(Ev::Full(ev(
                "error",
                error_body(status, &json!({"error": err})),
            )));
            self.ended = true;
            return;
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.at(&["choices", "0"]) else {
            return;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        self.reasoning(delta, out);
        if let Some(t) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let i = self.block(Open::Text, |i| Ev::Opens(i, false), out);
            out.put(Ev::Delta(i, Delta::Text, t));
        }
        for tc in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call(tc, out);
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
        }
        if let Some(n) = choice.get("native_finish_reason").and_then(Value::as_str) {
            self.native = Some(n.to_string());
        }
    }

    fn reasoning(&mut self, delta: &Value, out: &mut impl Sink) {
        let thinking = |i| Ev::Opens(i, true);
        if let Some(Value::Array(details)) = delta.get("reasoning_details") {
            for d in details {
                match d.get("type").and_then(Value::as_str) {
                    Some("reasoning.text") => {
                        if let Some(t) = d
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            let i = self.block(Open::Thinking, thinking, out);
                            out.put(Ev::Delta(i, Delta::Thinking, t));
                        }
                        if let Some(s) = d
                            .get("signature")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                        {
                            let i = self.block(Open::Thinking, thinking, out);
                            out.put(Ev::Delta(i, Delta::Signature, s));
                        }
                    }
                    Some("reasoning.encrypted") => {
                        let data = d.get("data").and_then(Value::as_str).unwrap_or("");
                        self.close(out);
                        let index = self.next_index;
                        self.next_index += 1;
                        out.put(Ev::Full(ev("content_block_start", json!({"type": "content_block_start",
                            "index": index, "content_block": {"type": "redacted_thinking", "data": data}}))));
                        out.put(Ev::Stop(index));
                    }
                    Some("reasoning.summary") => {
                        if let Some(t) = d
                            .get("summary")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            let i = self.block(Open::Thinking, thinking, out);
                            out.put(Ev::Delta(i, Delta::Thinking, t));
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
            let i = self.block(Open::Thinking, thinking, out);
            out.put(Ev::Delta(i, Delta::Thinking, t));
        }
    }

    fn tool_call(&mut self, tc: &Value, out: &mut impl Sink) {
        let ti = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let known = self.tools.iter().find(|(t, _)| *t == ti).map(|(_, b)| *b);
        let index = match known {
            Some(b) if tc.get("id").is_none_or(Value::is_null) => b,
            _ => {
                let id = tc.get("id").and_then(Value::as_str).unwrap_or("");
                let name = tc
                    .at(&["function", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                // A new call always opens a new block, even at the same chat index as the previous call.
                self.close(out);
                let b = self.block(
                    Open::Tool(ti),
                    |index| {
                        Ev::Full(ev(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                        ))
                    },
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
            out.put(Ev::Delta(index, Delta::InputJson, a));
        }
    }

    /// End the stream: close the open block, then `message_delta` (stop reason, usage) and `message_stop`.
    /// Nothing when an error already ended it.
    #[must_use]
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.finish_to(&mut out);
        out
    }

    /// [`MessagesStream::finish`] written as SSE text at the end of `buf`.
    pub fn finish_sse(&mut self, buf: &mut Vec<u8>) {
        self.finish_to(&mut SseText(buf));
    }

    fn finish_to(&mut self, out: &mut impl Sink) {
        if self.ended {
            return;
        }
        self.start(&Value::Null, out);
        self.close(out);
        let reason = stop_reason(self.finish.as_deref(), self.native.as_deref());
        out.put(Ev::End(reason, self.usage.as_ref()));
        self.ended = true;
    }
}
