//! One OpenAI-dialect stream event (`chat.completion.chunk`) as the fast path reads it ([`Event`]), and a
//! hand-written scanner for it. The scanner reads a strict subset of JSON (keys without escapes, integers without
//! sign, fraction or exponent, no repeated keys, bounded depth) straight into borrowed [`Json`]; for anything
//! outside that subset it gives up and the serde-derived parse decides. Where it accepts an event it yields what
//! that parse yields (tests compare the two), at a fraction of the cost.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer};
use serde_json::Number;

use super::json::Json;

/// A present field, `null` included (`Some(Json::Null)`), so "absent" and "null" can be told apart.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Json<'de>>, D::Error> {
    Json::deserialize(d).map(Some)
}

/// One `chat.completion.chunk` as the fast path reads it. Fields it does not name are skipped unparsed; a field
/// of another type or a repeated field fails the parse (the `Value` path then decides).
#[derive(serde::Deserialize, Debug, Default, PartialEq)]
pub(crate) struct Event<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub system_fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub usage: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub error: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub choices: Option<Vec<Choice<'a>>>,
}

#[derive(serde::Deserialize, Debug, Default, PartialEq)]
pub(crate) struct Choice<'a> {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(borrow, default)]
    pub delta: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    pub native_finish_reason: Option<Json<'a>>,
    #[serde(borrow, default)]
    pub logprobs: Option<Json<'a>>,
}

impl<'a> Event<'a> {
    /// Parse one event's data; `None` when the fast path does not handle it: not this shape, an error, a choice
    /// with `logprobs` or its own `native_finish_reason`, or a delta with host reasoning fields to rename.
    /// ([`Memo::parse`] is this, for a stream's events one after another.)
    #[cfg(test)]
    pub fn parse(data: &'a str) -> Option<Self> {
        let ev = match scan(data) {
            Some(ev) => ev,
            None => serde_json::from_str(data).ok()?,
        };
        ev.handled().then_some(ev)
    }

    /// Whether this event is a plain delta of one choice and nothing else (no usage, error, finish or
    /// logprobs): the shape a [`Memo`] remembers.
    fn plain_delta(&self) -> Option<u64> {
        if self.usage.is_some() || self.error.is_some() {
            return None;
        }
        match self.choices.as_deref() {
            Some(
                [Choice {
                    index,
                    delta: Some(Json::Object(_)),
                    finish_reason: None,
                    native_finish_reason: None,
                    logprobs: None,
                }],
            ) => Some(index.unwrap_or(0)),
            _ => None,
        }
    }

    /// The serde-derived parse alone (the scanner's reference).
    #[cfg(test)]
    pub fn parse_serde(data: &'a str) -> Option<Self> {
        let ev: Event<'a> = serde_json::from_str(data).ok()?;
        ev.handled().then_some(ev)
    }

    /// Whether the fast path handles this event.
    fn handled(&self) -> bool {
        if self
            .error
            .as_ref()
            .is_some_and(|e| !matches!(e, Json::Null))
        {
            return false;
        }
        !self.choices.iter().flatten().any(|c| {
            c.native_finish_reason.is_some()
                || c.logprobs
                    .as_ref()
                    .is_some_and(|l| !matches!(l, Json::Null))
                || c.delta
                    .as_ref()
                    .is_some_and(|d| d.get("reasoning_content").is_some())
        })
    }
}

/// What [`Memo::parse`] read: a whole event, or only the delta text of an event that is the remembered one but
/// for its delta (for choice `index`).
pub(crate) enum Fast<'a> {
    Event(Event<'a>),
    Delta(u64, &'a str),
}

/// The text around the delta of the last plain delta event a stream scanned (its envelope, `{"id":…,
/// "choices":[{"index":0,"delta":` before and `,"finish_reason":null}]}` after). A provider repeats it in every
/// content event, so an event with the same text around its delta is read by scanning the delta alone: the
/// scanner reads identical text identically, so the whole scan would give the remembered event with this
/// delta. Applying such an event changes only what its delta changes (the identity it carries was adopted when
/// it was first read), so the memo is only valid while every event since it was taken was read through it
/// ([`Memo::forget`] otherwise).
#[derive(Debug)]
pub(crate) struct Memo {
    /// The fast path is used at all (off only in [`StreamTranslator::reference`](super::StreamTranslator::reference)).
    pub enabled: bool,
    head: Vec<u8>,
    tail: Vec<u8>,
    index: u64,
    valid: bool,
    /// The envelope of the last event scanned whole, for events that share it but not the delta's envelope (a
    /// finish, the usage event).
    envelope: Envelope,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            enabled: true,
            head: Vec::new(),
            tail: Vec::new(),
            index: 0,
            valid: false,
            envelope: Envelope::default(),
        }
    }
}

/// The text of an event before its `"choices"` key (`{"id":…,"model":…,` ), with what the scanner had read
/// from it: an event that starts with the same text is scanned from its `choices` key on, with the same
/// fields set (the strings borrowed from the new text at the same places), which is what the whole scan gives.
#[derive(Debug, Default)]
struct Envelope {
    text: Vec<u8>,
    /// The scanner's state at the `choices` key.
    at: EnvelopeAt,
    valid: bool,
}

/// Where the scanner stood at an event's `choices` key: which fields it had seen, and where the values of
/// `id`, `model` and `system_fingerprint` are (`None`: absent or `null`).
#[derive(Debug, Default, Clone, Copy)]
struct EnvelopeAt {
    end: usize,
    seen: [bool; 6],
    spans: [Option<(usize, usize)>; 3],
}

impl Memo {
    /// [`Event::parse`], reading only the delta when `data` is the remembered event but for it, or only what
    /// follows the remembered envelope; remembers a plain delta event it scans, and forgets any other (a
    /// caller forgets too for an event it reads otherwise).
    pub fn parse<'a>(&mut self, data: &'a str) -> Option<Fast<'a>> {
        if let Some(d) = self.delta(data) {
            return Some(Fast::Delta(self.index, d));
        }
        let mut s = Scanner::new(data);
        let resumed = self.envelope.valid && data.as_bytes().starts_with(&self.envelope.text);
        let scanned = if resumed {
            s.resume(self.envelope.at)
        } else {
            s.whole()
        };
        let Some(ev) = scanned else {
            self.valid = false;
            self.envelope.valid = false;
            let ev: Event<'a> = serde_json::from_str(data).ok()?;
            return ev.handled().then_some(Fast::Event(ev));
        };
        if !resumed {
            match s.envelope {
                Some(at) => {
                    self.envelope.text.clear();
                    self.envelope.text.extend_from_slice(&s.b[..at.end]);
                    self.envelope.at = at;
                    self.envelope.valid = true;
                }
                None => self.envelope.valid = false,
            }
        }
        if !ev.handled() {
            self.valid = false;
            self.envelope.valid = false;
            return None;
        }
        match (ev.plain_delta(), s.delta_span) {
            (Some(index), Some((start, end))) => {
                self.head.clear();
                self.head.extend_from_slice(&s.b[..start]);
                self.tail.clear();
                self.tail.extend_from_slice(&s.b[end..]);
                self.index = index;
                self.valid = true;
            }
            _ => self.valid = false,
        }
        Some(Fast::Event(ev))
    }

    /// [`parse`](Self::parse) of an event whose delta text the caller did not handle: forgets the memo, then
    /// reads the event whole (`None` when the fast path does not take it).
    pub fn reread<'a>(&mut self, data: &'a str) -> Option<Event<'a>> {
        self.forget();
        match self.parse(data)? {
            Fast::Event(ev) => Some(ev),
            Fast::Delta(..) => None,
        }
    }

    /// The event in hand was not read through the memo.
    pub fn forget(&mut self) {
        self.valid = false;
        self.envelope.valid = false;
    }

    /// The delta's text when `data` is the remembered text with another object as its delta (the caller reads
    /// it, and forgets the memo when it does not handle it).
    fn delta<'a>(&self, data: &'a str) -> Option<&'a str> {
        if !self.valid {
            return None;
        }
        let b = data.as_bytes();
        let end = b.len().checked_sub(self.tail.len())?;
        if end <= self.head.len()
            || b[self.head.len()] != b'{'
            || !b.starts_with(&self.head)
            || !b.ends_with(&self.tail)
        {
            return None;
        }
        // The head ends and the tail starts with ASCII (around a delta's braces), so both are char boundaries.
        data.get(self.head.len()..end)
    }
}

/// Whether a delta field carries something (as the `Value` path judges content).
pub(crate) fn has_payload(v: &Json<'_>) -> bool {
    match v {
        Json::Null => false,
        Json::Str(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Ref(r) => match r {
            serde_json::Value::Null => false,
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            _ => true,
        },
        _ => true,
    }
}

/// The scanner's reading of `data` as an [`Event`] (before [`Event::handled`]); `None` when it gives up.
#[cfg(test)]
pub(crate) fn scan(data: &str) -> Option<Event<'_>> {
    Scanner::new(data).whole()
}

/// Nesting deeper than this is left to serde (whose own limit is 128).
const MAX_DEPTH: usize = 32;
/// Objects with more keys than this are left to serde (repeated keys are checked pairwise).
const MAX_KEYS: usize = 32;

/// Position of the first `"`, `\\` or control byte (what ends a plain run of string text), eight bytes at a time.
#[inline]
pub(crate) fn string_stop(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    const SPACE: u64 = LO * 0x20;
    let words = s.chunks_exact(8);
    let tail = words.remainder();
    for (w, bytes) in words.enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        let v = u64::from_le_bytes(b);
        let (q, e) = (v ^ QUOTE, v ^ BACKSLASH);
        // Flags a byte equal to `"` or `\`, or below 0x20; the lowest flagged byte is always a true match.
        let z =
            (q.wrapping_sub(LO) & !q) | (e.wrapping_sub(LO) & !e) | (v.wrapping_sub(SPACE) & !v);
        let z = z & HI;
        if z != 0 {
            return Some(w * 8 + (z.trailing_zeros() / 8) as usize);
        }
    }
    let base = s.len() - tail.len();
    tail.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| base + p)
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    /// Where the last choice's `delta` value starts and ends (for [`Memo`]).
    delta_span: Option<(usize, usize)>,
    /// Where the last object key read starts (its opening quote).
    key_at: usize,
    /// The scanner's state at the event's `choices` key, when what came before it can be remembered (no
    /// `usage` or `error` before it, and no escaped `id`, `model` or `system_fingerprint`).
    envelope: Option<EnvelopeAt>,
    /// What the envelope holds is not remembered (an escaped identity string).
    envelope_spoilt: bool,
}

/// A struct field seen twice fails serde's derived parse: give up.
#[inline]
fn once<T>(slot: &mut Option<T>, seen: &mut bool, v: Option<T>) -> Option<()> {
    if std::mem::replace(seen, true) {
        return None;
    }
    *slot = v;
    Some(())
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            b: text.as_bytes(),
            text,
            i: 0,
            delta_span: None,
            key_at: 0,
            envelope: None,
            envelope_spoilt: false,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        if c > b' ' {
            // Compact text: no whitespace to skip.
            return Some(c);
        }
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    #[inline]
    fn lit(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// `null` (consumed) or not.
    #[inline]
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.lit(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    /// Iterate an object's keys: `f(self, key)` reads each value. Keys with escapes give up.
    fn object(&mut self, f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        self.members(f)
    }

    /// An object's members from a key on, through its closing brace.
    fn members(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        loop {
            self.peek()?;
            self.key_at = self.i;
            let k = self.key()?;
            self.eat(b':')?;
            f(self, k)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    #[inline]
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let n = string_stop(rest)?;
        if rest[n] != b'"' {
            return None;
        }
        self.i = start + n + 1;
        self.text.get(start..start + n)
    }

    /// A string; borrowed unless it has escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let n = string_stop(rest)?;
        match rest[n] {
            b'"' => {
                self.i = start + n + 1;
                self.text.get(start..start + n).map(Cow::Borrowed)
            }
            b'\\' => {
                let mut out = String::with_capacity(n + 16);
                out.push_str(self.text.get(start..start + n)?);
                self.i = start + n;
                self.escaped(&mut out)?;
                Some(Cow::Owned(out))
            }
            _ => None,
        }
    }

    /// The rest of a string from a backslash on, decoded into `out` (serde_json's escapes; a lone surrogate gives
    /// up).
    fn escaped(&mut self, out: &mut String) -> Option<()> {
        loop {
            let c = *self.b.get(self.i)?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1)?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = match hi {
                                0xD800..=0xDBFF => {
                                    self.lit(b"\\u")?;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return None;
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                }
                                0xDC00..=0xDFFF => return None,
                                _ => hi,
                            };
                            out.push(char::from_u32(cp)?);
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {
                    let rest = self.b.get(self.i..)?;
                    let n = string_stop(rest)?;
                    out.push_str(self.text.get(self.i..self.i + n)?);
                    self.i += n;
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        let mut v = 0u32;
        for &c in h {
            v = (v << 4) | char::from(c).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// An integer without sign, fraction or exponent that fits a `u64` (at most 19 digits; no leading zero).
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        self.ws();
        let rest = self.b.get(self.i..)?;
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 19 || (n > 1 && rest[0] == b'0') {
            return None;
        }
        if matches!(rest.get(n), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut v = 0u64;
        for &c in &rest[..n] {
            v = v * 10 + u64::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }

    /// `null` or a string.
    #[inline]
    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `null` (`None`) or any value, as an `Option<Json>` field reads it.
    #[inline]
    fn opt_value(&mut self) -> Option<Option<Json<'a>>> {
        if self.null()? {
            return Some(None);
        }
        self.value(0).map(Some)
    }

    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        Some(match self.peek()? {
            b'"' => Json::Str(self.string()?),
            b'{' => {
                let mut entries: Vec<(Cow<'a, str>, Json<'a>)> = Vec::new();
                self.object(|s, k| {
                    if entries.len() >= MAX_KEYS || entries.iter().any(|(e, _)| e == k) {
                        return None;
                    }
                    let v = s.value(depth + 1)?;
                    entries.push((Cow::Borrowed(k), v));
                    Some(())
                })?;
                Json::Object(entries)
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Json::Array(items)
            }
            b'n' => {
                self.lit(b"null")?;
                Json::Null
            }
            b't' => {
                self.lit(b"true")?;
                Json::Bool(true)
            }
            b'f' => {
                self.lit(b"false")?;
                Json::Bool(false)
            }
            _ => Json::Number(Number::from(self.uint()?)),
        })
    }

    /// The text as one event, nothing but whitespace after it.
    fn whole(&mut self) -> Option<Event<'a>> {
        let ev = self.event()?;
        self.ws();
        (self.i == self.b.len()).then_some(ev)
    }

    /// [`whole`](Self::whole) for a text that starts with a remembered envelope: the scan from its `choices`
    /// key on, with the fields the envelope set.
    fn resume(&mut self, at: EnvelopeAt) -> Option<Event<'a>> {
        let text = self.text;
        let borrowed = |span: Option<(usize, usize)>| -> Option<Option<Cow<'a, str>>> {
            match span {
                None => Some(None),
                Some((a, z)) => text.get(a..z).map(|t| Some(Cow::Borrowed(t))),
            }
        };
        let mut ev = Event {
            id: borrowed(at.spans[0])?,
            model: borrowed(at.spans[1])?,
            system_fingerprint: borrowed(at.spans[2])?,
            ..Event::default()
        };
        let mut seen = at.seen;
        self.i = at.end;
        self.envelope = Some(at);
        self.event_members(&mut ev, &mut seen)?;
        self.ws();
        (self.i == self.b.len()).then_some(ev)
    }

    fn event(&mut self) -> Option<Event<'a>> {
        let mut ev = Event::default();
        let mut seen = [false; 6];
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(ev);
        }
        self.event_members(&mut ev, &mut seen)?;
        Some(ev)
    }

    /// An identity string (`id`, `model`, `system_fingerprint`): its value, and where it stands for the
    /// envelope (`None` for `null`; an escaped string cannot be re-borrowed, so it spoils the envelope).
    fn identity(&mut self, span: &mut Option<(usize, usize)>) -> Option<Option<Cow<'a, str>>> {
        self.ws();
        let start = self.i;
        let v = self.opt_str()?;
        *span = match &v {
            None => None,
            Some(Cow::Borrowed(_)) => Some((start + 1, self.i - 1)),
            Some(Cow::Owned(_)) => {
                self.envelope_spoilt = true;
                None
            }
        };
        Some(v)
    }

    fn event_members(&mut self, ev: &mut Event<'a>, seen: &mut [bool; 6]) -> Option<()> {
        let mut spans: [Option<(usize, usize)>; 3] = [None; 3];
        if let Some(at) = &self.envelope {
            spans = at.spans;
        }
        self.members(|s, k| match k {
            "id" => {
                let v = s.identity(&mut spans[0])?;
                once(&mut ev.id, &mut seen[0], v)
            }
            "model" => {
                let v = s.identity(&mut spans[1])?;
                once(&mut ev.model, &mut seen[1], v)
            }
            "system_fingerprint" => {
                let v = s.identity(&mut spans[2])?;
                once(&mut ev.system_fingerprint, &mut seen[2], v)
            }
            "usage" => once(&mut ev.usage, &mut seen[3], s.opt_value()?),
            "error" => once(&mut ev.error, &mut seen[4], s.opt_value()?),
            "choices" => {
                if !seen[3] && !seen[4] && !seen[5] && !s.envelope_spoilt {
                    s.envelope = Some(EnvelopeAt {
                        end: s.key_at,
                        seen: *seen,
                        spans,
                    });
                }
                let v = if s.null()? { None } else { Some(s.choices()?) };
                once(&mut ev.choices, &mut seen[5], v)
            }
            _ => s.value(0).map(drop),
        })
    }

    fn choices(&mut self) -> Option<Vec<Choice<'a>>> {
        self.eat(b'[')?;
        let mut out = Vec::with_capacity(1);
        if self.peek()? == b']' {
            self.i += 1;
            return Some(out);
        }
        loop {
            out.push(self.choice()?);
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn choice(&mut self) -> Option<Choice<'a>> {
        let mut c = Choice::default();
        let mut seen = [false; 5];
        self.object(|s, k| match k {
            "index" => {
                let v = if s.null()? { None } else { Some(s.uint()?) };
                once(&mut c.index, &mut seen[0], v)
            }
            "delta" => {
                s.ws();
                let start = s.i;
                let v = s.opt_value()?;
                s.delta_span = Some((start, s.i));
                once(&mut c.delta, &mut seen[1], v)
            }
            "finish_reason" => once(&mut c.finish_reason, &mut seen[2], s.opt_str()?),
            "native_finish_reason" => {
                let v = s.value(0)?;
                once(&mut c.native_finish_reason, &mut seen[3], Some(v))
            }
            "logprobs" => once(&mut c.logprobs, &mut seen[4], s.opt_value()?),
            _ => s.value(0).map(drop),
        })?;
        Some(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests assert by unwrapping
mod tests;
