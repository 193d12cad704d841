//! Chat chunks → Responses stream events.
//!
//! `response.created` and `response.in_progress` first; each run of reasoning, text or one tool call is an
//! output item (`response.output_item.added`, its deltas — `response.reasoning_summary_text.delta`,
//! `response.output_text.delta`, `response.function_call_arguments.delta` — their `.done` events, then
//! `response.output_item.done`), a new kind of output closing the open item; the chat stream's end gives
//! `response.completed` (or `response.incomplete`) with every item and the billed usage. An in-band error chunk
//! ends the stream with `error` and `response.failed`. Every event carries a `sequence_number`.

use serde_json::{json, Value};

use super::responses::{item_id, skeleton, status_of, usage};
use super::At;
use super::Event;

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
    req: Value,
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
            req,
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

    fn ev(&mut self, out: &mut Vec<Event>, name: &'static str, mut data: Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(Event { name, data });
    }

    fn response(&self, status: &str) -> Value {
        skeleton(&self.id, self.created, &self.model, status, &self.req)
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<Event>) {
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
        let r = self.response("in_progress");
        self.ev(out, "response.created", json!({"response": r}));
        let r = self.response("in_progress");
        self.ev(out, "response.in_progress", json!({"response": r}));
    }

    fn output_index(&self) -> usize {
        self.done.len()
    }

    fn close(&mut self, out: &mut Vec<Event>) {
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

    fn open_text(&mut self, out: &mut Vec<Event>) {
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

    fn open_reasoning(&mut self, out: &mut Vec<Event>) {
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
        if self.ended {
            return out;
        }
        self.start(chunk, &mut out);
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            self.close(&mut out);
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
                &mut out,
                "error",
                json!({"code": code_s, "message": message, "param": null}),
            );
            let mut r = self.response("failed");
            r["output"] = Value::Array(self.done.clone());
            r["error"] = json!({"code": "server_error", "message": message});
            self.ev(&mut out, "response.failed", json!({"response": r}));
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
        if let Some(r) = delta
            .get("reasoning")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.open_reasoning(&mut out);
            if let Some((Item::Reasoning { text }, id)) = &mut self.open {
                text.push_str(r);
                let id = id.clone();
                let oi = self.output_index();
                self.ev(
                    &mut out,
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id,
                    "output_index": oi, "summary_index": 0, "delta": r}),
                );
            }
        }
        if let Some(t) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.open_text(&mut out);
            if let Some((Item::Text { text }, id)) = &mut self.open {
                text.push_str(t);
                let id = id.clone();
                let oi = self.output_index();
                self.ev(
                    &mut out,
                    "response.output_text.delta",
                    json!({"item_id": id,
                    "output_index": oi, "content_index": 0, "delta": t, "logprobs": []}),
                );
            }
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
        out
    }

    fn tool_call(&mut self, tc: &Value, out: &mut Vec<Event>) {
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
        if let Some((Item::Tool { args, .. }, id)) = &mut self.open {
            args.push_str(a);
            let id = id.clone();
            let oi = self.output_index();
            self.ev(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id,
                "output_index": oi, "delta": a}),
            );
        }
    }

    /// End the stream: close the open item, then `response.completed` (or `response.incomplete`) with every
    /// output item and the usage. Nothing when an error already ended it.
    #[must_use]
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.start(&Value::Null, &mut out);
        self.close(&mut out);
        let (status, incomplete) = status_of(self.finish.as_deref());
        let mut r = self.response(status);
        r["output"] = Value::Array(self.done.clone());
        r["incomplete_details"] = incomplete;
        r["usage"] = usage(self.usage.as_ref().unwrap_or(&Value::Null));
        let name = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.ev(&mut out, name, json!({"response": r}));
        self.ended = true;
        out
    }
}
