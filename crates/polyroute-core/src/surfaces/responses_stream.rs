//! Chat chunks → Responses stream events.
//!
//! `response.created` and `response.in_progress` first; each run of reasoning, text or one tool call is an
//! output item (`response.output_item.added`, its deltas — `response.reasoning_summary_text.delta`,
//! `response.output_text.delta`, `response.function_call_arguments.delta` — their `.done` events, then
//! `response.output_item.done`), a new kind of output closing the open item; the chat stream's end gives
//! `response.completed` (or `response.incomplete`) with every item and the billed usage. An in-band error chunk
//! ends the stream with `error` and `response.failed`. Every event carries a `sequence_number`.

use serde_json::{json, Map, Value};

use super::responses::{echo, item_id, status_of, usage, with_echo};
use super::Event;
use super::{write_json_str, At, Render, Sink, SseText};

/// A delta event's kind: its name and the field between `output_index` and `delta` (with its value 0).
#[derive(Debug, Clone, Copy)]
enum Delta {
    Reasoning,
    Text,
    Arguments,
}

impl Delta {
    fn name(self) -> &'static str {
        match self {
            Delta::Reasoning => "response.reasoning_summary_text.delta",
            Delta::Text => "response.output_text.delta",
            Delta::Arguments => "response.function_call_arguments.delta",
        }
    }
}

/// One event as the translator gives it: the deltas (most of a stream) in parts, so the SSE path writes them
/// without building a `Value`; the others as their [`Event`].
#[derive(Debug)]
enum Ev<'a> {
    Delta {
        kind: Delta,
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
        seq: u64,
    },
    /// An event carrying the response object (`response.created`, `.in_progress`, `.completed`, `.incomplete`,
    /// `.failed`): its own fields, then the request's echoed ones.
    Response {
        name: &'static str,
        head: Head<'a>,
        output: &'a [Value],
        error: &'a Value,
        incomplete: &'a Value,
        usage: &'a Value,
        echo: &'a Map<String, Value>,
        seq: u64,
    },
    Full(Event),
}

/// A response object's identity and status.
#[derive(Debug, Clone, Copy)]
struct Head<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
    status: &'static str,
}

impl Render for Ev<'_> {
    fn into_events(self, out: &mut Vec<Event>) {
        match self {
            Ev::Delta {
                kind,
                item_id,
                output_index,
                delta,
                seq,
            } => {
                let name = kind.name();
                let data = match kind {
                    Delta::Reasoning => json!({"item_id": item_id, "output_index": output_index,
                        "summary_index": 0, "delta": delta, "type": name, "sequence_number": seq}),
                    Delta::Text => json!({"item_id": item_id, "output_index": output_index,
                        "content_index": 0, "delta": delta, "logprobs": [], "type": name,
                        "sequence_number": seq}),
                    Delta::Arguments => json!({"item_id": item_id, "output_index": output_index,
                        "delta": delta, "type": name, "sequence_number": seq}),
                };
                out.push(Event { name, data });
            }
            Ev::Response {
                name,
                head,
                output,
                error,
                incomplete,
                usage,
                echo,
                seq,
            } => {
                let mut r = with_echo(head.id, head.created, head.model, head.status, echo.clone());
                r["output"] = Value::Array(output.to_vec());
                r["error"] = error.clone();
                r["incomplete_details"] = incomplete.clone();
                r["usage"] = usage.clone();
                let data = json!({"response": r, "type": name, "sequence_number": seq});
                out.push(Event { name, data });
            }
            Ev::Full(e) => out.push(e),
        }
    }

    fn write_sse(self, buf: &mut Vec<u8>) {
        match self {
            Ev::Delta {
                kind,
                item_id,
                output_index,
                delta,
                seq,
            } => {
                let name = kind.name();
                let mut n = itoa::Buffer::new();
                buf.extend_from_slice(b"event: ");
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(b"\ndata: {\"item_id\":");
                write_json_str(buf, item_id);
                buf.extend_from_slice(b",\"output_index\":");
                buf.extend_from_slice(n.format(output_index).as_bytes());
                buf.extend_from_slice(match kind {
                    Delta::Reasoning => b",\"summary_index\":0,\"delta\":".as_slice(),
                    Delta::Text => b",\"content_index\":0,\"delta\":".as_slice(),
                    Delta::Arguments => b",\"delta\":".as_slice(),
                });
                write_json_str(buf, delta);
                if let Delta::Text = kind {
                    buf.extend_from_slice(b",\"logprobs\":[]");
                }
                buf.extend_from_slice(b",\"type\":\"");
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(b"\",\"sequence_number\":");
                buf.extend_from_slice(n.format(seq).as_bytes());
                buf.extend_from_slice(b"}\n\n");
            }
            Ev::Response {
                name,
                head,
                output,
                error,
                incomplete,
                usage,
                echo,
                seq,
            } => {
                // Writing values into a `Vec` cannot fail.
                let mut n = itoa::Buffer::new();
                buf.extend_from_slice(b"event: ");
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(b"\ndata: {\"response\":{\"id\":");
                write_json_str(buf, head.id);
                buf.extend_from_slice(b",\"object\":\"response\",\"created_at\":");
                buf.extend_from_slice(n.format(head.created).as_bytes());
                buf.extend_from_slice(b",\"status\":");
                write_json_str(buf, head.status);
                buf.extend_from_slice(b",\"model\":");
                write_json_str(buf, head.model);
                buf.extend_from_slice(b",\"output\":");
                let _ = serde_json::to_writer(&mut *buf, output);
                buf.extend_from_slice(b",\"error\":");
                let _ = serde_json::to_writer(&mut *buf, error);
                buf.extend_from_slice(b",\"incomplete_details\":");
                let _ = serde_json::to_writer(&mut *buf, incomplete);
                buf.extend_from_slice(b",\"usage\":");
                let _ = serde_json::to_writer(&mut *buf, usage);
                // The echoed fields follow in the same object: the map's text without its braces.
                let at = buf.len();
                let _ = serde_json::to_writer(&mut *buf, echo);
                if buf.len() - at > 2 {
                    buf[at] = b',';
                    buf.pop();
                } else {
                    buf.truncate(at);
                }
                buf.extend_from_slice(b"},\"type\":\"");
                buf.extend_from_slice(name.as_bytes());
                buf.extend_from_slice(b"\",\"sequence_number\":");
                buf.extend_from_slice(n.format(seq).as_bytes());
                buf.extend_from_slice(b"}\n\n");
            }
            Ev::Full(e) => e.write_sse(buf),
        }
    }
}

#[derive(Debug)]
enum Item {
    Reasoning {
        text: String,
    },
    Text {
        text: String,
    },
    Tool {
        index: u64,
        call_id: String,
        name: String,
        args: String,
    },
}

/// The translator of one stream. Feed every chat chunk to [`ResponsesStream::push`], then call
/// [`ResponsesStream::finish`] once when the chat stream ends.
#[derive(Debug)]
pub struct ResponsesStream {
    /// The request fields every response object echoes.
    echo: Map<String, Value>,
    id: String,
    model: String,
    created: u64,
    seq: u64,
    started: bool,
    ended: bool,
    open: Option<(Item, String)>,
    done: Vec<Value>,
    tools: usize,
    finish: Option<String>,
    usage: Option<Value>,
}

impl ResponsesStream {
    /// A translator for the Responses request `req` (its fields are echoed in the response object).
    #[must_use]
    pub fn new(req: Value) -> Self {
        Self {
            echo: echo(&req),
            id: String::new(),
            model: String::new(),
            created: 0,
            seq: 0,
            started: false,
            ended: false,
            open: None,
            done: Vec::new(),
            tools: 0,
            finish: None,
            usage: None,
        }
    }

    /// Whether the stream has ended.
    #[must_use]
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn ev(&mut self, out: &mut impl Sink, name: &'static str, mut data: Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.next_seq());
        out.put(Ev::Full(Event { name, data }));
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    /// An event carrying the response object with `status` and what is known so far.
    fn response(
        &mut self,
        out: &mut impl Sink,
        name: &'static str,
        status: &'static str,
        (error, incomplete, usage): (&Value, &Value, &Value),
    ) {
        let seq = self.next_seq();
        out.put(Ev::Response {
            name,
            head: Head {
                id: &self.id,
                created: self.created,
                model: &self.model,
                status,
            },
            output: &self.done,
            error,
            incomplete,
            usage,
            echo: &self.echo,
            seq,
        });
    }

    fn start(&mut self, chunk: &Value, out: &mut impl Sink) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = chunk
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.model = chunk
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.created = chunk.get("created").and_then(Value::as_u64).unwrap_or(0);
        let none = (&Value::Null, &Value::Null, &Value::Null);
        self.response(out, "response.created", "in_progress", none);
        self.response(out, "response.in_progress", "in_progress", none);
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    fn close(&mut self, out: &mut impl Sink) {
        let Some((item, id)) = self.open.take() else {
            return;
        };
        let oi = self.output_index();
        let done = match item {
            Item::Text { text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.ev(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": oi,
                    "content_index": 0, "text": text, "logprobs": []}),
                );
                self.ev(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": oi,
                    "content_index": 0, "part": part}),
                );
                json!({"type": "message", "id": id, "status": "completed", "role": "assistant",
                       "content": [part]})
            }
            Item::Reasoning { text } => {
                let part = json!({"type": "summary_text", "text": text});
                self.ev(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id,
                    "output_index": oi, "summary_index": 0, "text": text}),
                );
                self.ev(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id,
                    "output_index": oi, "summary_index": 0, "part": part}),
                );
                json!({"type": "reasoning", "id": id, "summary": [part]})
            }
            Item::Tool {
                call_id,
                name,
                args,
                ..
            } => {
                self.ev(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id,
                    "output_index": oi, "name": name, "arguments": args}),
                );
                json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
                       "arguments": args, "status": "completed"})
            }
        };
        self.ev(
            out,
            "response.output_item.done",
            json!({"output_index": oi, "item": done}),
        );
        self.done.push(done);
    }

    fn open_text(&mut self, out: &mut impl Sink) {
        if matches!(self.open, Some((Item::Text { .. }, _))) {
            return;
        }
        self.close(out);
        let id = item_id("msg", &self.id, self.output_index());
        let oi = self.output_index();
        self.ev(
            out,
            "response.output_item.added",
            json!({"output_index": oi, "item": {"type": "message",
            "id": id, "status": "in_progress", "role": "assistant", "content": []}}),
        );
        self.ev(
            out,
            "response.content_part.added",
            json!({"item_id": id, "output_index": oi,
            "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
        );
        self.open = Some((
            Item::Text {
                text: String::new(),
            },
            id,
        ));
    }

    fn open_reasoning(&mut self, out: &mut impl Sink) {
        if matches!(self.open, Some((Item::Reasoning { .. }, _))) {
            return;
        }
        self.close(out);
        let id = item_id("rs", &self.id, self.output_index());
        let oi = self.output_index();
        self.ev(
            out,
            "response.output_item.added",
            json!({"output_index": oi,
            "item": {"type": "reasoning", "id": id, "summary": []}}),
        );
        self.ev(
            out,
            "response.reasoning_summary_part.added",
            json!({"item_id": id, "output_index": oi,
            "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        );
        self.open = Some((
            Item::Reasoning {
                text: String::new(),
            },
            id,
        ));
    }

    /// Translate one chat chunk.
    #[must_use]
    pub fn push(&mut self, chunk: &Value) -> Vec<Event> {
        let mut out = Vec::new();
        self.push_to(chunk, &mut out);
        out
    }

    /// [`ResponsesStream::push`] written as SSE text at the end of `buf`: the bytes [`Event::write_sse`] writes
    /// for each event, without building the deltas as values.
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
            let code = err.get("code").cloned().unwrap_or(Value::Null);
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("provider error");
            let code_s = match &code {
                Value::String(s) => s.clone(),
                Value::Null => "server_error".to_string(),
                other => other.to_string(),
            };
            self.ev(
                out,
                "error",
                json!({"code": code_s, "message": message, "param": null}),
            );
            let error = json!({"code": "server_error", "message": message});
            self.response(
                out,
                "response.failed",
                "failed",
                (&error, &Value::Null, &Value::Null),
            );
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
        if let Some(r) = delta
            .get("reasoning")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.open_reasoning(out);
            let (output_index, seq) = (self.output_index(), self.seq);
            if let Some((Item::Reasoning { text }, id)) = &mut self.open {
                text.push_str(r);
                self.seq += 1;
                out.put(Ev::Delta {
                    kind: Delta::Reasoning,
                    item_id: id,
                    output_index,
                    delta: r,
                    seq,
                });
            }
        }
        if let Some(t) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.open_text(out);
            let (output_index, seq) = (self.output_index(), self.seq);
            if let Some((Item::Text { text }, id)) = &mut self.open {
                text.push_str(t);
                self.seq += 1;
                out.put(Ev::Delta {
                    kind: Delta::Text,
                    item_id: id,
                    output_index,
                    delta: t,
                    seq,
                });
            }
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
    }

    fn tool_call(&mut self, tc: &Value, out: &mut impl Sink) {
        let ti = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
        let is_new = tc.get("id").is_some_and(|v| !v.is_null())
            || !matches!(&self.open, Some((Item::Tool { index, .. }, _)) if *index == ti);
        if is_new {
            self.close(out);
            let call_id = tc
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let name = tc
                .at(&["function", "name"])
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let id = item_id("fc", &self.id, self.tools);
            self.tools += 1;
            let oi = self.output_index();
            self.ev(out, "response.output_item.added", json!({"output_index": oi, "item": {
                "type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": "",
                "status": "in_progress"}}));
            self.open = Some((
                Item::Tool {
                    index: ti,
                    call_id,
                    name,
                    args: String::new(),
                },
                id,
            ));
        }
        let Some(a) = tc
            .at(&["function", "arguments"])
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let (output_index, seq) = (self.output_index(), self.seq);
        if let Some((Item::Tool { args, .. }, id)) = &mut self.open {
            args.push_str(a);
            self.seq += 1;
            out.put(Ev::Delta {
                kind: Delta::Arguments,
                item_id: id,
                output_index,
                delta: a,
                seq,
            });
        }
    }

    /// End the stream: close the open item, then `response.completed` (or `response.incomplete`) with every
    /// output item and the usage. Nothing when an error already ended it.
    #[must_use]
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.finish_to(&mut out);
        out
    }

    /// [`ResponsesStream::finish`] written as SSE text at the end of `buf`.
    pub fn finish_sse(&mut self, buf: &mut Vec<u8>) {
        self.finish_to(&mut SseText(buf));
    }

    fn finish_to(&mut self, out: &mut impl Sink) {
        if self.ended {
            return;
        }
        self.start(&Value::Null, out);
        self.close(out);
        let (status, incomplete) = status_of(self.finish.as_deref());
        let usage = usage(self.usage.as_ref().unwrap_or(&Value::Null));
        let name = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.response(out, name, status, (&Value::Null, &incomplete, &usage));
        self.ended = true;
    }
}
