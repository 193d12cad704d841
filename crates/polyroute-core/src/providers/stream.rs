//! Stream translation: SSE bytes of any dialect → OpenAI `chat.completion.chunk`s.
//!
//! Contract of the emitted sequence: the first chunk of each choice carries `delta.role: "assistant"`; tool calls
//! are keyed by their position among tool calls (`index` 0, 1, …) with `id`, `type` and `function.name` in the
//! first fragment and argument fragments after; the chunk carrying `finish_reason` (normalized, with
//! `native_finish_reason`) comes last for its choice; then one usage chunk with `choices: []` when usage is known.
//! A provider error mid-stream becomes the final chunk, carrying `error` and `finish_reason: "error"`; a stream
//! that ends before a finish reason is such an error too. `[DONE]` is the engine's to write.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::common::{normalize_finish, usage_json};
use super::errors::{invalid_response, map_error_value};
use super::fast::{self, write_json, write_json_str};
use super::fast_event;
use super::json::Json;
use super::openai::{normalize_choice_finish, normalize_reasoning_field, normalize_usage};
use super::splice::Canon;
use super::{anthropic, bedrock, gemini, Dialect, ProviderFailure, ResponseContext};
use crate::outcome::OutcomeClass;
use crate::sse::{SseEventRef, SseParser};
use crate::types::Usage;

thread_local! {
    /// `{index, delta, finish_reason: null}`, cloned for every plain delta chunk.
    static CHOICE_TEMPLATE: Map<String, Value> = {
        let mut m = Map::with_capacity(3);
        m.insert("index".into(), Value::from(0u64));
        m.insert("delta".into(), Value::Null);
        m.insert("finish_reason".into(), Value::Null);
        m
    };
}

/// Where a state machine's chunks go: chunk objects, or their SSE encoding (`data: <json>\n\n` each) and the
/// count of events written, kept as they are written (so a reader need not count them in the bytes).
pub(crate) enum ChunkOut<'o> {
    Values(&'o mut Vec<Value>),
    Sse(&'o mut Vec<u8>, &'o mut u64),
}

impl ChunkOut<'_> {
    fn push(&mut self, chunk: Value) {
        match self {
            ChunkOut::Values(v) => v.push(chunk),
            ChunkOut::Sse(buf, n) => {
                **n += 1;
                buf.extend_from_slice(b"data: ");
                write_json(buf, &chunk);
                buf.extend_from_slice(b"\n\n");
            }
        }
    }
}

/// Append a choice index as JSON (the usual one digit without the general integer writer).
fn write_index(buf: &mut Vec<u8>, index: u64) {
    match u8::try_from(index) {
        Ok(d @ 0..=9) => buf.push(b'0' + d),
        _ => write_json(buf, &index),
    }
}

/// State shared by every dialect's state machine: identity, what was emitted, the outcome so far.
#[derive(Debug)]
pub(crate) struct StreamCore {
    /// The response context, its `id` and `model` moved out into the two fields below.
    pub ctx: ResponseContext,
    pub id: String,
    pub model: String,
    roles_sent: Vec<u64>,
    pub finish_reason: Option<&'static str>,
    pub native_finish: Option<String>,
    pub usage: Option<Usage>,
    pub content_emitted: bool,
    pub failure: Option<ProviderFailure>,
    /// No more chunks (error emitted, or finished).
    pub done: bool,
    /// The upstream `system_fingerprint`, when it sent one: chunks carry it then and omit it otherwise
    /// (OpenRouter's chunk schema types it as an optional string, not nullable).
    fingerprint: Option<String>,
    template: Option<Map<String, Value>>,
    /// `data: {"id":…,"choices":[` of the SSE encoding, built with the template.
    sse_prefix: Vec<u8>,
    /// The end leaves out the usage chunk (the engine sends the billed one).
    skip_usage_chunk: bool,
    /// The copier's key buffer, kept from one delta to the next.
    canon_keys: Vec<std::ops::Range<usize>>,
}

impl StreamCore {
    fn new(mut ctx: ResponseContext) -> Self {
        Self {
            id: std::mem::take(&mut ctx.id),
            model: std::mem::take(&mut ctx.model),
            ctx,
            roles_sent: Vec::new(),
            finish_reason: None,
            native_finish: None,
            usage: None,
            content_emitted: false,
            failure: None,
            done: false,
            fingerprint: None,
            template: None,
            sse_prefix: Vec::new(),
            skip_usage_chunk: false,
            canon_keys: Vec::new(),
        }
    }

    /// Adopt the upstream id/model when the context gives none.
    pub fn adopt(&mut self, id: Option<&str>, model: Option<&str>) {
        if self.id.is_empty() {
            if let Some(i) = id {
                self.id = i.to_string();
                self.invalidate();
            }
        }
        if self.model.is_empty() {
            if let Some(m) = model {
                self.model = m.to_string();
                self.invalidate();
            }
        }
    }

    /// Adopt the upstream `system_fingerprint` (a string; null or absent leaves it as is).
    pub fn adopt_fingerprint(&mut self, fp: Option<&str>) {
        if let Some(f) = fp {
            if self.fingerprint.as_deref() != Some(f) {
                self.fingerprint = Some(f.to_string());
                self.invalidate();
            }
        }
    }

    /// The chunk envelope; its fixed fields are built once and cloned (cloning skips re-hashing the keys).
    fn envelope(&mut self, choices: Vec<Value>) -> Value {
        self.ensure_template();
        let mut m = self.template.clone().unwrap_or_default();
        // `choices` is the template's last entry: set it by position (no key hashing).
        if let Some((_, slot)) = m.iter_mut().next_back() {
            *slot = Value::Array(choices);
        }
        Value::Object(m)
    }

    /// The envelope's fixed fields changed: rebuild the template and the SSE prefix when next needed.
    fn invalidate(&mut self) {
        self.template = None;
        self.sse_prefix.clear();
    }

    /// Build the envelope template unless it is current.
    fn ensure_template(&mut self) {
        if self.template.is_none() {
            let mut m = Map::with_capacity(7);
            m.insert("id".into(), Value::String(self.id.clone()));
            m.insert(
                "object".into(),
                Value::String("chat.completion.chunk".into()),
            );
            m.insert("created".into(), Value::from(self.ctx.created));
            m.insert("model".into(), Value::String(self.model.clone()));
            if !self.ctx.provider_name.is_empty() {
                m.insert(
                    "provider".into(),
                    Value::String(self.ctx.provider_name.clone()),
                );
            }
            if let Some(f) = &self.fingerprint {
                m.insert("system_fingerprint".into(), Value::String(f.clone()));
            }
            m.insert("choices".into(), Value::Null);
            self.template = Some(m);
        }
    }

    /// Write `data: {"id":…,"choices":[` (the template's serialization up to its `choices` value) unless it is
    /// current; written as text, the bytes of serializing the template.
    fn ensure_prefix(&mut self) {
        if self.sse_prefix.is_empty() {
            let b = &mut self.sse_prefix;
            // Sized once: the fixed text is under 128 bytes, the strings may grow by escaping.
            b.reserve(
                128 + self.id.len()
                    + self.model.len()
                    + self.ctx.provider_name.len()
                    + self.fingerprint.as_ref().map_or(0, String::len),
            );
            b.extend_from_slice(b"data: {\"id\":");
            write_json_str(b, &self.id);
            b.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
            write_json(b, &self.ctx.created);
            b.extend_from_slice(b",\"model\":");
            write_json_str(b, &self.model);
            if !self.ctx.provider_name.is_empty() {
                b.extend_from_slice(b",\"provider\":");
                write_json_str(b, &self.ctx.provider_name);
            }
            if let Some(f) = &self.fingerprint {
                b.extend_from_slice(b",\"system_fingerprint\":");
                write_json_str(b, f);
            }
            b.extend_from_slice(b",\"choices\":[");
        }
    }

    /// Start a chunk's SSE event in `buf`: `data: {"id":…,"choices":[{"index":N,"delta":` (the delta and the
    /// rest are the caller's).
    fn open_choice(&mut self, buf: &mut Vec<u8>, index: u64) {
        self.ensure_prefix();
        buf.extend_from_slice(&self.sse_prefix);
        buf.extend_from_slice(b"{\"index\":");
        write_index(buf, index);
        buf.extend_from_slice(b",\"delta\":");
    }

    /// Emit a delta for choice `index` (adds the role to a choice's first delta), optionally with the finish
    /// reason (native value; normalized here) and extra choice fields (`logprobs`).
    pub fn emit(
        &mut self,
        out: &mut ChunkOut<'_>,
        index: u64,
        delta: Map<String, Value>,
        finish_native: Option<&str>,
        extra: Option<Map<String, Value>>,
    ) {
        let finish = finish_native.map(|n| (n, normalize_finish(n)));
        self.emit_inner(out, index, delta, finish, extra);
    }

    /// Emit the finish chunk of choice `index` with the native reason, optionally overriding the normalized one.
    pub fn emit_finish(
        &mut self,
        out: &mut ChunkOut<'_>,
        index: u64,
        delta: Map<String, Value>,
        native: &str,
        normalized: Option<&'static str>,
    ) {
        let norm = normalized.unwrap_or_else(|| normalize_finish(native));
        self.emit_inner(out, index, delta, Some((native, norm)), None);
    }

    fn emit_inner(
        &mut self,
        out: &mut ChunkOut<'_>,
        index: u64,
        mut delta: Map<String, Value>,
        finish: Option<(&str, &'static str)>,
        extra: Option<Map<String, Value>>,
    ) {
        if self.done {
            return;
        }
        if !self.roles_sent.contains(&index) {
            self.roles_sent.push(index);
            if !delta.contains_key("role") {
                let mut d = Map::with_capacity(delta.len() + 1);
                d.insert("role".into(), json!("assistant"));
                d.extend(delta);
                delta = d;
            }
        }
        if delta.iter().any(|(k, v)| k != "role" && has_payload(v)) {
            self.content_emitted = true;
        }
        if finish.is_none() && extra.is_none() {
            if let ChunkOut::Sse(buf, n) = out {
                // Hot path, SSE: write the chunk straight into the buffer.
                **n += 1;
                self.open_choice(buf, index);
                write_json(buf, &delta);
                buf.extend_from_slice(b",\"finish_reason\":null}]}\n\n");
                return;
            }
            // Hot path (a content or argument fragment): clone a prebuilt choice and fill it by position.
            let mut choice = CHOICE_TEMPLATE.with(Clone::clone);
            let mut slots = choice.iter_mut().map(|(_, v)| v);
            if let Some(v) = slots.next() {
                *v = Value::from(index);
            }
            if let Some(v) = slots.next() {
                *v = Value::Object(delta);
            }
            out.push(self.envelope(vec![Value::Object(choice)]));
            return;
        }
        let mut choice = Map::with_capacity(5);
        choice.insert("index".into(), Value::from(index));
        choice.insert("delta".into(), Value::Object(delta));
        match finish {
            Some((native, norm)) => {
                self.finish_reason = Some(norm);
                self.native_finish = Some(native.to_string());
                choice.insert("finish_reason".into(), json!(norm));
                choice.insert("native_finish_reason".into(), json!(native));
            }
            None => {
                choice.insert("finish_reason".into(), Value::Null);
            }
        }
        if let Some(extra) = extra {
            choice.extend(extra);
        }
        out.push(self.envelope(vec![Value::Object(choice)]));
    }

    /// Emit the error chunk and stop.
    pub fn fail(&mut self, out: &mut ChunkOut<'_>, failure: ProviderFailure) {
        if self.done {
            return;
        }
        let mut chunk = self.envelope(vec![json!({
            "index": 0,
            "delta": {"content": ""},
            "finish_reason": "error",
            "native_finish_reason": failure.outcome.provider_code.clone(),
        })]);
        if let (Some(obj), Some(err)) = (chunk.as_object_mut(), failure.envelope.get("error")) {
            obj.insert("error".into(), err.clone());
        }
        out.push(chunk);
        self.finish_reason = Some("error");
        self.failure = Some(failure);
        self.done = true;
    }

    /// The stream ended normally: the usage chunk (if usage is known), or an error if no finish reason came.
    pub fn end(&mut self, out: &mut ChunkOut<'_>) {
        if self.done {
            return;
        }
        if self.finish_reason.is_none() {
            let f = invalid_response(
                &self.ctx.provider_name,
                "upstream stream ended before a finish reason",
                b"",
            );
            self.fail(out, f);
            return;
        }
        if let (Some(u), false) = (self.usage, self.skip_usage_chunk) {
            let mut chunk = self.envelope(Vec::new());
            if let Some(obj) = chunk.as_object_mut() {
                obj.insert("usage".into(), usage_json(&u));
            }
            out.push(chunk);
        }
        self.done = true;
    }
}

impl StreamCore {
    /// What an event the fast path read says besides its choices: identity, fingerprint, usage.
    fn adopt_event(&mut self, ev: &fast_event::Event<'_>) {
        self.adopt(ev.id.as_deref(), ev.model.as_deref());
        self.adopt_fingerprint(ev.system_fingerprint.as_deref());
        if let Some(u) = ev.usage.as_ref().filter(|u| u.is_object()) {
            self.usage = Some(fast::normalize_usage(u));
        }
    }

    /// [`openai_event`] for an event [`fast_event::Event::parse`] accepted, SSE-encoded: the same bytes.
    fn apply_fast(&mut self, buf: &mut Vec<u8>, n: &mut u64, ev: fast_event::Event<'_>) {
        self.adopt_event(&ev);
        for c in ev.choices.into_iter().flatten() {
            let delta = match c.delta {
                Some(Json::Object(d)) => d,
                _ => Vec::new(),
            };
            let finish = c.finish_reason.as_deref().map(|n| (n, normalize_finish(n)));
            self.emit_entries(buf, n, c.index.unwrap_or(0), &delta, finish);
        }
    }

    /// [`openai_event`] into chunk objects for an event the fast path reads (the content events of one
    /// envelope by their delta alone): the chunks the `Value` path builds, without parsing the event into a
    /// `Value`. False when the fast path does not read it (the memo forgotten; the `Value` path then decides).
    fn fast_values(
        &mut self,
        memo: &mut fast_event::Memo,
        data: &str,
        out: &mut ChunkOut<'_>,
    ) -> bool {
        let ev = match memo.parse(data) {
            Some(fast_event::Fast::Delta(index, text)) => {
                // The delta as the `Value` path reads it from the whole event.
                match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(delta)) if !delta.contains_key("reasoning_content") => {
                        self.emit(out, index, delta, None, None);
                        return true;
                    }
                    _ => match memo.reread(data) {
                        Some(ev) => ev,
                        None => return false,
                    },
                }
            }
            Some(fast_event::Fast::Event(ev)) => ev,
            None => return false,
        };
        self.adopt_event(&ev);
        for c in ev.choices.into_iter().flatten() {
            let delta = match c.delta {
                Some(Json::Object(d)) => Json::into_map(d),
                _ => Map::new(),
            };
            self.emit(
                out,
                c.index.unwrap_or(0),
                delta,
                c.finish_reason.as_deref(),
                None,
            );
        }
        true
    }

    /// [`StreamCore::emit_entries`] of a delta object given as its text, written in serde_json's compact form
    /// by the splice's copier as it is read; false, with nothing written, when the copier declines the text, the
    /// delta has host reasoning to rename, or the choice's first delta needs its role added.
    fn emit_delta_text(&mut self, buf: &mut Vec<u8>, n: &mut u64, index: u64, text: &str) -> bool {
        if self.done {
            return true;
        }
        if !self.roles_sent.contains(&index) {
            return false;
        }
        let mark = buf.len();
        buf.reserve(self.sse_prefix.len() + text.len() + 64);
        self.open_choice(buf, index);
        let (mut payload, mut reasoning) = (false, false);
        let mut c = Canon::reusing(text.as_bytes(), std::mem::take(&mut self.canon_keys));
        let read = c.object_entries(buf, |k, v| match k {
            b"\"role\"" => {}
            b"\"reasoning_content\"" => reasoning = true,
            // What `has_payload` says of the value.
            _ => payload |= !matches!(v, b"null" | b"\"\"" | b"[]"),
        });
        let whole = c.at_end();
        self.canon_keys = c.into_keys();
        if read.is_err() || !whole || reasoning {
            buf.truncate(mark);
            return false;
        }
        buf.extend_from_slice(b",\"finish_reason\":null}]}\n\n");
        *n += 1;
        self.content_emitted |= payload;
        true
    }

    /// [`StreamCore::emit`] of a delta held as parsed entries, written as its SSE event.
    fn emit_entries(
        &mut self,
        buf: &mut Vec<u8>,
        n: &mut u64,
        index: u64,
        delta: &[(Cow<'_, str>, Json<'_>)],
        finish: Option<(&str, &'static str)>,
    ) {
        if self.done {
            return;
        }
        let mut add_role = false;
        if !self.roles_sent.contains(&index) {
            self.roles_sent.push(index);
            add_role = !delta.iter().any(|(k, _)| k == "role");
        }
        if delta
            .iter()
            .any(|(k, v)| k != "role" && fast_event::has_payload(v))
        {
            self.content_emitted = true;
        }
        *n += 1;
        self.open_choice(buf, index);
        buf.push(b'{');
        let mut first = true;
        if add_role {
            buf.extend_from_slice(b"\"role\":\"assistant\"");
            first = false;
        }
        for (k, v) in delta {
            if !first {
                buf.push(b',');
            }
            first = false;
            write_json_str(buf, k);
            buf.push(b':');
            match v {
                Json::Str(s) => write_json_str(buf, s),
                _ => write_json(buf, v),
            }
        }
        match finish {
            None => buf.extend_from_slice(b"},\"finish_reason\":null}]}\n\n"),
            Some((native, norm)) => {
                self.finish_reason = Some(norm);
                self.native_finish = Some(native.to_string());
                buf.extend_from_slice(b"},\"finish_reason\":");
                write_json_str(buf, norm);
                buf.extend_from_slice(b",\"native_finish_reason\":");
                write_json_str(buf, native);
                buf.extend_from_slice(b"}]}\n\n");
            }
        }
    }
}

fn has_payload(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

#[derive(Debug)]
enum Inner {
    /// The envelope of its last content event, to read the next ones by their delta alone.
    OpenAi(fast_event::Memo),
    Anthropic(anthropic::stream::State),
    Gemini(gemini::stream::State),
    Bedrock(Box<bedrock::stream::State>),
}

/// Per-response stream state machine. Feed body bytes as they arrive with [`push`](Self::push); call
/// [`finish`](Self::finish) when the body ends.
#[derive(Debug)]
pub struct StreamTranslator {
    parser: SseParser,
    core: StreamCore,
    inner: Inner,
    /// SSE events written so far ([`sse_events`](Self::sse_events)).
    sse_events: u64,
}

impl StreamTranslator {
    /// A translator for one streamed answer.
    #[must_use]
    pub fn new(dialect: Dialect, ctx: ResponseContext) -> Self {
        let inner = match super::answer_family(dialect) {
            Dialect::Anthropic => Inner::Anthropic(anthropic::stream::State::default()),
            Dialect::Gemini => Inner::Gemini(gemini::stream::State::default()),
            Dialect::BedrockConverse => Inner::Bedrock(Box::default()),
            _ => Inner::OpenAi(fast_event::Memo::default()),
        };
        Self {
            parser: SseParser::new(),
            core: StreamCore::new(ctx),
            inner,
            sse_events: 0,
        }
    }

    /// A translator that reads every OpenAI-dialect event through the `Value` path (no fast path): the
    /// reference the fast paths are tested against. Not for production use.
    #[doc(hidden)]
    #[must_use]
    pub fn reference(dialect: Dialect, ctx: ResponseContext) -> Self {
        let mut t = Self::new(dialect, ctx);
        if let Inner::OpenAi(memo) = &mut t.inner {
            memo.enabled = false;
        }
        t
    }

    /// Feed body bytes (any split); returns the chunks completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Value> {
        let mut out = Vec::new();
        self.push_into(bytes, &mut out);
        out
    }

    /// Bytes of the upstream stream held for an event not yet complete ([`SseParser::buffered`]).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.parser.buffered()
    }

    /// Like [`push`](Self::push), appending to `out`.
    pub fn push_into(&mut self, bytes: &[u8], out: &mut Vec<Value>) {
        self.feed(bytes, &mut ChunkOut::Values(out));
    }

    /// Like [`push_into`](Self::push_into), but appends each chunk already encoded as an SSE event,
    /// `data: <json>\n\n`, exactly the bytes of `serde_json::to_vec(&chunk)` in that frame. Faster: the usual
    /// text and argument fragments are written straight into `out` without building chunk objects.
    pub fn push_sse_into(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut n = self.sse_events;
        self.feed(bytes, &mut ChunkOut::Sse(out, &mut n));
        self.sse_events = n;
    }

    fn feed(&mut self, bytes: &[u8], out: &mut ChunkOut<'_>) {
        if let Inner::Bedrock(s) = &mut self.inner {
            if !self.core.done {
                s.push(&mut self.core, bytes, out);
            }
            return;
        }
        let (core, inner) = (&mut self.core, &mut self.inner);
        self.parser.push_with(bytes, &mut |ev: SseEventRef<'_>| {
            on_event(core, inner, ev, out)
        });
    }

    /// The body ended: flush, then the finish/usage chunks (or an error chunk for a truncated stream).
    pub fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        self.end(&mut ChunkOut::Values(&mut out));
        out
    }

    /// [`finish`](Self::finish) with the chunks SSE-encoded as by [`push_sse_into`](Self::push_sse_into) (the
    /// engine still writes `data: [DONE]\n\n` after them).
    pub fn finish_sse_into(&mut self, out: &mut Vec<u8>) {
        let mut n = self.sse_events;
        self.end(&mut ChunkOut::Sse(out, &mut n));
        self.sse_events = n;
    }

    /// [`finish_sse_into`](Self::finish_sse_into) without the usage chunk (`choices: []` with `usage`); the
    /// usage stays readable in [`usage`](Self::usage).
    pub fn finish_sse_into_without_usage(&mut self, out: &mut Vec<u8>) {
        self.core.skip_usage_chunk = true;
        let mut n = self.sse_events;
        self.end(&mut ChunkOut::Sse(out, &mut n));
        self.sse_events = n;
    }

    fn end(&mut self, out: &mut ChunkOut<'_>) {
        let (core, inner) = (&mut self.core, &mut self.inner);
        self.parser
            .finish_with(&mut |ev: SseEventRef<'_>| on_event(core, inner, ev, out));
        match &mut self.inner {
            Inner::OpenAi(_) => {}
            Inner::Anthropic(s) => s.on_end(&mut self.core, out),
            Inner::Gemini(s) => s.on_end(&mut self.core, out),
            Inner::Bedrock(s) => s.on_end(&mut self.core, out),
        }
        self.core.end(out);
    }

    /// How many SSE events the `*_sse_into` methods have written so far (one per chunk).
    #[must_use]
    pub fn sse_events(&self) -> u64 {
        self.sse_events
    }

    /// Normalized usage, once the provider reported it.
    #[must_use]
    pub fn usage(&self) -> Option<&Usage> {
        self.core.usage.as_ref()
    }

    /// Normalized finish reason of the last finished choice (`error` after a failure).
    #[must_use]
    pub fn finish_reason(&self) -> Option<&'static str> {
        self.core.finish_reason
    }

    /// The provider's own finish reason.
    #[must_use]
    pub fn native_finish_reason(&self) -> Option<&str> {
        self.core.native_finish.as_deref()
    }

    /// Whether any content, reasoning or tool call was emitted (decides whether a failure may still fall back).
    #[must_use]
    pub fn content_emitted(&self) -> bool {
        self.core.content_emitted
    }

    /// The mid-stream failure, if the stream ended in one.
    #[must_use]
    pub fn failure(&self) -> Option<&ProviderFailure> {
        self.core.failure.as_ref()
    }

    /// Outcome class so far: the failure's class, or success.
    #[must_use]
    pub fn outcome_class(&self) -> OutcomeClass {
        self.core
            .failure
            .as_ref()
            .map_or(OutcomeClass::Success, |f| f.outcome.class)
    }
}

fn on_event(core: &mut StreamCore, inner: &mut Inner, ev: SseEventRef<'_>, out: &mut ChunkOut<'_>) {
    if core.done {
        return;
    }
    match inner {
        Inner::OpenAi(memo) => openai_event(core, memo, ev, out),
        Inner::Anthropic(s) => s.on_event(core, ev, out),
        Inner::Gemini(s) => s.on_event(core, ev, out),
        // Fed by its own decoder, never through the SSE parser.
        Inner::Bedrock(_) => {}
    }
}

/// `data.trim()`, without its per-character look at each end when both ends are visible ASCII (the usual
/// event, `{…}`).
fn trimmed(data: &str) -> &str {
    match (data.as_bytes().first(), data.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => data,
        _ => data.trim(),
    }
}

fn openai_event(
    core: &mut StreamCore,
    memo: &mut fast_event::Memo,
    ev: SseEventRef<'_>,
    out: &mut ChunkOut<'_>,
) {
    let data = trimmed(ev.data);
    if data == "[DONE]" || data.is_empty() {
        return;
    }
    if !memo.enabled {
        // The reference translator: every event through the `Value` path.
    } else if let ChunkOut::Sse(buf, n) = out {
        // The usual event (content, role, finish, usage): parsed borrowed and written straight out; a content
        // event in the envelope of the one before has only its delta read.
        match memo.parse(data) {
            Some(fast_event::Fast::Delta(index, delta)) => {
                if core.emit_delta_text(buf, n, index, delta) {
                    return;
                }
                // Not handled by its delta alone: read whole.
                if let Some(ev) = memo.reread(data) {
                    core.apply_fast(buf, n, ev);
                    return;
                }
            }
            Some(fast_event::Fast::Event(ev)) => {
                core.apply_fast(buf, n, ev);
                return;
            }
            None => {}
        }
    } else if core.fast_values(memo, data, out) {
        return;
    }
    memo.forget();
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(data) else {
        return;
    };
    if obj.get("error").is_some_and(|e| !e.is_null()) {
        let f = map_error_value(
            Dialect::OpenAi,
            200,
            &Value::Object(obj),
            &core.ctx.provider_name,
        );
        core.fail(out, f);
        return;
    }
    core.adopt(
        obj.get("id").and_then(Value::as_str),
        obj.get("model").and_then(Value::as_str),
    );
    core.adopt_fingerprint(obj.get("system_fingerprint").and_then(Value::as_str));
    if let Some(u) = obj.get("usage").filter(|u| u.is_object()) {
        core.usage = Some(normalize_usage(u));
    }
    let Some(Value::Array(choices)) = obj.remove("choices") else {
        return;
    };
    for c in choices {
        let Value::Object(mut c) = c else { continue };
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
        let mut delta = match c.remove("delta") {
            Some(Value::Object(d)) => d,
            _ => Map::new(),
        };
        normalize_reasoning_field(&mut delta);
        normalize_choice_finish(&mut c);
        let native = c
            .get("native_finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        let has_finish = c.get("finish_reason").is_some_and(|f| !f.is_null());
        let extra = c.remove("logprobs").filter(|l| !l.is_null()).map(|l| {
            let mut m = Map::new();
            m.insert("logprobs".into(), l);
            m
        });
        core.emit(
            out,
            index,
            delta,
            if has_finish { native.as_deref() } else { None },
            extra,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests assert by unwrapping
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// A string is written as serde_json writes it, whatever it holds.
        #[test]
        fn strings_are_written_as_serde_writes_them(s in "\\PC{0,24}|[\\x00-\\x7f]{0,24}|[a-z\"\\\\\n\u{7f}\u{e9}]{0,24}") {
            let mut got = Vec::new();
            super::write_json_str(&mut got, &s);
            prop_assert_eq!(got, serde_json::to_vec(&s).unwrap());
        }

        /// An index is written as serde_json writes it.
        #[test]
        fn indexes_are_written_as_serde_writes_them(i in prop_oneof![0u64..20, proptest::num::u64::ANY]) {
            let mut got = Vec::new();
            super::write_index(&mut got, i);
            prop_assert_eq!(got, serde_json::to_vec(&i).unwrap());
        }

        /// Data is trimmed as `str::trim` trims it.
        #[test]
        fn data_is_trimmed_as_trim_does(s in "[ \\t\\n\u{a0}\u{2003}]{0,2}[{}a-z \u{e9}\u{a0}]{0,6}[ \\t\\r\u{85}\u{3000}]{0,2}") {
            prop_assert_eq!(super::trimmed(&s), s.trim());
        }
    }
}
