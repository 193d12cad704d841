//! The first fast path of [`super::splice_response`]: the answer's text copied as it stands wherever it is already
//! what serializing its `Value` writes (compact, strings and numbers in serde_json's own spelling), and rewritten
//! token by token where it is not (whitespace dropped, other escapes and number spellings re-encoded through
//! serde_json), without building a tree. Only the top-level fields the engine sets and the choices' finish reasons
//! are touched. It declines ([`Decline`]) what it does not handle: invalid JSON, repeated keys (a `Value` keeps the
//! first position and the last value), deep nesting, host reasoning fields to rename; the tree path then decides.

use std::ops::Range;

use super::common::normalize_finish;
use super::fast::{normalize_usage, write_json, SplicedAnswer};
use super::json::Json;
use super::ResponseContext;
use crate::types::Usage;

/// The copier does not handle this text (the tree path decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decline;

type R<T> = Result<T, Decline>;

/// Nesting the copier follows (serde_json's own limit is 128; deeper text is left to the tree path).
const MAX_DEPTH: u32 = 100;

/// Objects with more keys than this are left to the tree path (repeated keys are found by comparing pairs).
const MAX_KEYS: usize = 64;

/// Bytes that end a plain run inside a string: `"`, `\` and control characters.
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A reader of JSON text that writes each value it reads in serde_json's compact form.
pub(crate) struct Canon<'a> {
    s: &'a [u8],
    pos: usize,
    depth: u32,
    /// The keys (ranges in the output) of the objects being read, innermost last.
    keys: Vec<Range<usize>>,
}

impl<'a> Canon<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Canon {
            s,
            pos: 0,
            depth: 0,
            keys: Vec::with_capacity(16),
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace (not consumed).
    pub fn peek(&mut self) -> R<u8> {
        self.ws();
        self.s.get(self.pos).copied().ok_or(Decline)
    }

    /// Consume `b` (after whitespace).
    pub fn eat(&mut self, b: u8) -> R<()> {
        if self.peek()? == b {
            self.pos += 1;
            Ok(())
        } else {
            Err(Decline)
        }
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.pos == self.s.len()
    }

    /// Start an object's keys; returns the mark [`Canon::key`] and [`Canon::end_keys`] take.
    pub fn begin_keys(&self) -> usize {
        self.keys.len()
    }

    pub fn end_keys(&mut self, mark: usize) {
        self.keys.truncate(mark);
    }

    /// Read an object key into `out` (declines a key already read since `mark`); returns its range in `out`.
    pub fn key(&mut self, out: &mut Vec<u8>, mark: usize) -> R<Range<usize>> {
        if self.peek()? != b'"' || self.keys.len() - mark >= MAX_KEYS {
            return Err(Decline);
        }
        let k = self.string(out)?;
        if self.keys[mark..]
            .iter()
            .any(|r| out[r.clone()] == out[k.clone()])
        {
            return Err(Decline);
        }
        self.keys.push(k.clone());
        Ok(k)
    }

    /// Read a string (at a `"`) into `out`; returns its range in `out`.
    fn string(&mut self, out: &mut Vec<u8>) -> R<Range<usize>> {
        let s = self.s;
        let start = self.pos;
        let mut i = start + 1;
        let mut plain = true;
        loop {
            while i < s.len() && !STOP[s[i] as usize] {
                i += 1;
            }
            match s.get(i).ok_or(Decline)? {
                b'"' => break,
                b'\\' => match s.get(i + 1).ok_or(Decline)? {
                    b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'/' => {
                        plain = false;
                        i += 2;
                    }
                    b'u' => {
                        let hex = s.get(i + 2..i + 6).ok_or(Decline)?;
                        plain &= written_as_u_escape(hex);
                        i += 6;
                    }
                    _ => return Err(Decline),
                },
                // A raw control character: not JSON.
                _ => return Err(Decline),
            }
        }
        self.pos = i + 1;
        let o = out.len();
        if plain {
            out.extend_from_slice(&s[start..self.pos]);
        } else {
            let t: String = serde_json::from_slice(&s[start..self.pos]).map_err(|_| Decline)?;
            write_json(out, &t);
        }
        Ok(o..out.len())
    }

    fn number(&mut self, out: &mut Vec<u8>) -> R<()> {
        let s = self.s;
        let start = self.pos;
        let neg = s[start] == b'-';
        let digits = start + usize::from(neg);
        let mut i = digits;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - digits;
        if n == 0 || (s[digits] == b'0' && n > 1) {
            return Err(Decline);
        }
        let float = matches!(s.get(i), Some(b'.' | b'e' | b'E'));
        if float {
            while i < s.len() && matches!(s[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                i += 1;
            }
        }
        self.pos = i;
        let text = &s[start..i];
        // An integer a `Value` keeps as `u64`/`i64` is written back as it stands; `-0`, floats and integers out
        // of range become `f64`s, spelled as serde_json spells them.
        let kept = !float
            && if neg {
                s[digits] != b'0'
                    && (n < 19 || std::str::from_utf8(text).is_ok_and(|t| t.parse::<i64>().is_ok()))
            } else {
                n < 20 || std::str::from_utf8(text).is_ok_and(|t| t.parse::<u64>().is_ok())
            };
        if kept {
            out.extend_from_slice(text);
        } else {
            let v: serde_json::Value = serde_json::from_slice(text).map_err(|_| Decline)?;
            write_json(out, &v);
        }
        Ok(())
    }

    fn literal(&mut self, out: &mut Vec<u8>, lit: &[u8]) -> R<()> {
        if self.s.get(self.pos..self.pos + lit.len()) != Some(lit) {
            return Err(Decline);
        }
        self.pos += lit.len();
        out.extend_from_slice(lit);
        Ok(())
    }

    /// Read any value into `out`.
    pub fn value(&mut self, out: &mut Vec<u8>) -> R<()> {
        match self.peek()? {
            b'"' => self.string(out).map(drop),
            b'{' => self.object(out),
            b'[' => self.array(out),
            b't' => self.literal(out, b"true"),
            b'f' => self.literal(out, b"false"),
            b'n' => self.literal(out, b"null"),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => Err(Decline),
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Decline);
        }
        Ok(())
    }

    fn array(&mut self, out: &mut Vec<u8>) -> R<()> {
        self.enter()?;
        self.pos += 1;
        out.push(b'[');
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.value(out)?;
                if self.more(b']')? {
                    out.push(b',');
                } else {
                    break;
                }
            }
        }
        out.push(b']');
        self.depth -= 1;
        Ok(())
    }

    fn object(&mut self, out: &mut Vec<u8>) -> R<()> {
        self.enter()?;
        self.pos += 1;
        out.push(b'{');
        let mark = self.begin_keys();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.key(out, mark)?;
                self.eat(b':')?;
                out.push(b':');
                self.value(out)?;
                if self.more(b'}')? {
                    out.push(b',');
                } else {
                    break;
                }
            }
        }
        self.end_keys(mark);
        out.push(b'}');
        self.depth -= 1;
        Ok(())
    }

    /// After an element: `true` at a `,` (consumed), `false` at `close` (consumed).
    pub fn more(&mut self, close: u8) -> R<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Ok(true)
            }
            b if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Decline),
        }
    }
}

/// Whether serde_json writes the character of `\uXXXX` (`hex`) this way: control characters other than the five
/// with short escapes, as `\u00xx` in lowercase.
fn written_as_u_escape(hex: &[u8]) -> bool {
    let lower = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    hex.len() == 4
        && hex[0] == b'0'
        && hex[1] == b'0'
        && matches!(hex[2], b'0' | b'1')
        && lower(hex[3])
        && !(hex[2] == b'0' && matches!(hex[3], b'8' | b'9' | b'a' | b'c' | b'd'))
}

/// The string a canonical JSON string token (as [`Canon`] writes it) holds.
fn decoded(token: &[u8]) -> R<std::borrow::Cow<'_, str>> {
    let inner = token.get(1..token.len().saturating_sub(1)).ok_or(Decline)?;
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(token)
            .map(std::borrow::Cow::Owned)
            .map_err(|_| Decline)
    } else {
        std::str::from_utf8(inner)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| Decline)
    }
}

/// The keys the splice looks at (as compact JSON string tokens).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Choices,
    Usage,
    Error,
    FinishReason,
    NativeFinishReason,
    Message,
    Other,
}

impl Field {
    fn of(token: &[u8]) -> Field {
        match token {
            b"\"choices\"" => Field::Choices,
            b"\"usage\"" => Field::Usage,
            b"\"error\"" => Field::Error,
            b"\"finish_reason\"" => Field::FinishReason,
            b"\"native_finish_reason\"" => Field::NativeFinishReason,
            b"\"message\"" => Field::Message,
            _ => Field::Other,
        }
    }
}

/// `"reasoning_content":`, a key of a message the `Value` path renames (found in the message's compact text; a
/// match inside a string only sends the answer to the tree path).
const REASONING_KEY: &[u8] = b"\"reasoning_content\":";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Read the `choices` array into `out`, normalizing each choice's `finish_reason` (the native one kept as
/// `native_finish_reason` when the choice has none); returns the first choice's normalized reason.
fn choices(c: &mut Canon<'_>, out: &mut Vec<u8>) -> R<Option<&'static str>> {
    c.eat(b'[')?;
    out.push(b'[');
    let mut finish = None;
    if c.peek()? == b']' {
        c.eat(b']')?;
        out.push(b']');
        return Ok(None);
    }
    let mut i = 0usize;
    loop {
        if c.peek()? == b'{' {
            let norm = choice(c, out)?;
            if i == 0 {
                finish = norm;
            }
        } else {
            c.value(out)?;
        }
        i += 1;
        if c.more(b']')? {
            out.push(b',');
        } else {
            break;
        }
    }
    out.push(b']');
    Ok(finish)
}

fn choice(c: &mut Canon<'_>, out: &mut Vec<u8>) -> R<Option<&'static str>> {
    c.eat(b'{')?;
    out.push(b'{');
    let mark = c.begin_keys();
    let (mut norm, mut native, mut has_native) = (None, None::<Vec<u8>>, false);
    if c.peek()? == b'}' {
        c.eat(b'}')?;
    } else {
        loop {
            let k = c.key(out, mark)?;
            c.eat(b':')?;
            out.push(b':');
            let at = out.len();
            c.value(out)?;
            let key = Field::of(&out[k]);
            match key {
                Field::FinishReason if out[at] == b'"' => {
                    let n = normalize_finish(&decoded(&out[at..])?);
                    native = Some(out[at..].to_vec());
                    norm = Some(n);
                    out.truncate(at);
                    write_json(out, n);
                }
                Field::NativeFinishReason => has_native = true,
                Field::Message if contains(&out[at..], REASONING_KEY) => return Err(Decline),
                _ => {}
            }
            if !c.more(b'}')? {
                break;
            }
            out.push(b',');
        }
    }
    c.end_keys(mark);
    if let (Some(native), false) = (native, has_native) {
        out.extend_from_slice(b",\"native_finish_reason\":");
        out.extend_from_slice(&native);
    }
    out.push(b'}');
    Ok(norm)
}

/// [`super::splice_response`] by copying (see the module's note); [`Decline`] sends the answer to the tree path.
pub(crate) fn splice(body: &[u8], ctx: &ResponseContext) -> R<SplicedAnswer> {
    std::str::from_utf8(body).map_err(|_| Decline)?;
    let mut c = Canon::new(body);
    c.eat(b'{')?;
    // Keys and values in compact form; `fields` holds their ranges in order.
    let mut vals = Vec::with_capacity(body.len() + 64);
    let mut fields: Vec<(Range<usize>, Range<usize>)> = Vec::with_capacity(12);
    let (mut finish, mut has_choices, mut usage) = (None, false, Usage::default());
    let mark = c.begin_keys();
    if c.peek()? == b'}' {
        c.eat(b'}')?;
    } else {
        loop {
            let k = c.key(&mut vals, mark)?;
            c.eat(b':')?;
            let at = vals.len();
            match Field::of(&vals[k.clone()]) {
                Field::Choices => {
                    finish = choices(&mut c, &mut vals)?;
                    has_choices = true;
                }
                Field::Usage => {
                    c.value(&mut vals)?;
                    let text = std::str::from_utf8(&vals[at..]).map_err(|_| Decline)?;
                    usage = normalize_usage(&Json::parse(text).ok_or(Decline)?);
                }
                Field::Error => {
                    c.value(&mut vals)?;
                    if &vals[at..] != b"null" {
                        return Err(Decline);
                    }
                }
                _ => c.value(&mut vals)?,
            }
            fields.push((k, at..vals.len()));
            if !c.more(b'}')? {
                break;
            }
        }
    }
    c.end_keys(mark);
    if !c.at_end() || !has_choices {
        return Err(Decline);
    }
    Ok(assemble(&vals, &fields, ctx, usage, finish))
}

/// The answer from its compact fields with the engine's own set (in place when present, else appended in the
/// `Value` path's order) and an empty `usage` slot.
fn assemble(
    vals: &[u8],
    fields: &[(Range<usize>, Range<usize>)],
    ctx: &ResponseContext,
    usage: Usage,
    finish: Option<&'static str>,
) -> SplicedAnswer {
    let mut out = Vec::with_capacity(vals.len() + 192);
    let mut usage_at = 0;
    let (mut seen_id, mut seen_model, mut seen_object, mut seen_fp) = (false, false, false, false);
    let (mut seen_created, mut seen_provider, mut seen_usage) = (false, false, false);
    // A field's string, written as the `Value` path writes `as_str().unwrap_or("")`.
    let string_or_empty = |out: &mut Vec<u8>, v: &[u8]| {
        if v.first() == Some(&b'"') {
            out.extend_from_slice(v);
        } else {
            out.extend_from_slice(b"\"\"");
        }
    };
    out.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (key, val) = (&vals[k.clone()], &vals[v.clone()]);
        out.extend_from_slice(key);
        out.push(b':');
        match key {
            b"\"id\"" => {
                seen_id = true;
                if ctx.id.is_empty() {
                    string_or_empty(&mut out, val);
                } else {
                    write_json(&mut out, &ctx.id);
                }
            }
            b"\"model\"" => {
                seen_model = true;
                if ctx.model.is_empty() {
                    string_or_empty(&mut out, val);
                } else {
                    write_json(&mut out, &ctx.model);
                }
            }
            b"\"object\"" => {
                seen_object = true;
                out.extend_from_slice(b"\"chat.completion\"");
            }
            b"\"system_fingerprint\"" => {
                seen_fp = true;
                if val.first() == Some(&b'"') {
                    out.extend_from_slice(val);
                } else {
                    out.extend_from_slice(b"null");
                }
            }
            b"\"created\"" if ctx.created != 0 => {
                seen_created = true;
                write_json(&mut out, &ctx.created);
            }
            b"\"provider\"" if !ctx.provider_name.is_empty() => {
                seen_provider = true;
                write_json(&mut out, &ctx.provider_name);
            }
            b"\"usage\"" => {
                seen_usage = true;
                usage_at = out.len();
            }
            _ => out.extend_from_slice(val),
        }
    }
    let add = |out: &mut Vec<u8>, key: &[u8]| {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(key);
    };
    if !seen_id {
        add(&mut out, b"\"id\":");
        let id = if ctx.id.is_empty() { "" } else { &ctx.id };
        write_json(&mut out, id);
    }
    if !seen_model {
        add(&mut out, b"\"model\":");
        let m = if ctx.model.is_empty() { "" } else { &ctx.model };
        write_json(&mut out, m);
    }
    if !seen_object {
        add(&mut out, b"\"object\":\"chat.completion\"");
    }
    if !seen_fp {
        add(&mut out, b"\"system_fingerprint\":null");
    }
    if !seen_created && ctx.created != 0 {
        add(&mut out, b"\"created\":");
        write_json(&mut out, &ctx.created);
    }
    if !seen_provider && !ctx.provider_name.is_empty() {
        add(&mut out, b"\"provider\":");
        write_json(&mut out, &ctx.provider_name);
    }
    if !seen_usage {
        add(&mut out, b"\"usage\":");
        usage_at = out.len();
    }
    out.push(b'}');
    SplicedAnswer::new(out, usage_at, usage, finish)
}

#[cfg(test)]
#[path = "splice_tests.rs"]
mod tests;
