//! The first fast path of [`super::splice_response`]: the answer's text copied as it stands wherever it is already
//! what serializing its `Value` writes (compact, strings and numbers in serde_json's own spelling), and rewritten
//! token by token where it is not (whitespace dropped, other escapes and number spellings re-encoded through
//! serde_json), without building a tree. Only the top-level fields the engine sets and the choices' finish reasons
//! are touched. It declines ([`Decline`]) what it does not handle: invalid JSON, repeated keys (a `Value` keeps the
//! first position and the last value), deep nesting, host reasoning fields to rename; the tree path then decides.

use std::ops::Range;

use super::common::normalize_finish;
use super::fast::{write_json, write_json_str, SplicedAnswer};
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
        Self::reusing(s, Vec::with_capacity(16))
    }

    /// A reader that keeps its keys in `keys` (emptied first; [`Canon::into_keys`] gives it back for the next).
    pub fn reusing(s: &'a [u8], mut keys: Vec<Range<usize>>) -> Self {
        keys.clear();
        Canon {
            s,
            pos: 0,
            depth: 0,
            keys,
        }
    }

    /// The keys buffer, for [`Canon::reusing`].
    pub fn into_keys(self) -> Vec<Range<usize>> {
        self.keys
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace (not consumed).
    pub fn peek(&mut self) -> R<u8> {
        match self.s.get(self.pos) {
            // Compact text: no whitespace to skip.
            Some(&c) if c > b' ' => Ok(c),
            _ => {
                self.ws();
                self.s.get(self.pos).copied().ok_or(Decline)
            }
        }
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
    /// `seen` holds a bit per key read in this object (of its length and last character): the earlier keys are
    /// compared only when the bit is already set.
    pub fn key(&mut self, out: &mut Vec<u8>, mark: usize, seen: &mut u64) -> R<Range<usize>> {
        if self.peek()? != b'"' || self.keys.len() - mark >= MAX_KEYS {
            return Err(Decline);
        }
        let k = self.string(out)?;
        let token = &out[k.clone()];
        let bit = 1u64 << ((token.len() * 7 + usize::from(token[token.len() - 2])) & 63);
        if *seen & bit != 0
            && self.keys[mark..]
                .iter()
                .any(|r| out[r.clone()] == out[k.clone()])
        {
            return Err(Decline);
        }
        *seen |= bit;
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
            i = plain_run(s, i);
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
        self.object_with(out, |c, out, _| c.value(out))
    }

    /// Read an object (at its `{`) into `out`; `field` reads each value, given the range of its key in `out`.
    fn object_with(
        &mut self,
        out: &mut Vec<u8>,
        mut field: impl FnMut(&mut Self, &mut Vec<u8>, Range<usize>) -> R<()>,
    ) -> R<()> {
        self.enter()?;
        self.eat(b'{')?;
        out.push(b'{');
        let mark = self.begin_keys();
        let mut seen = 0u64;
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                let k = self.key(out, mark, &mut seen)?;
                self.eat(b':')?;
                out.push(b':');
                field(self, out, k)?;
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

    /// Read an object (at its `{`) into `out`; `entry(key, value)` sees each entry's key and value tokens as
    /// written.
    pub fn object_entries(
        &mut self,
        out: &mut Vec<u8>,
        mut entry: impl FnMut(&[u8], &[u8]),
    ) -> R<()> {
        self.object_with(out, |c, out, k| {
            let v = out.len();
            c.value(out)?;
            entry(&out[k], &out[v..]);
            Ok(())
        })
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

/// The end of the run of plain string bytes (not `"`, `\\` or a control byte) from `i`.
#[inline]
fn plain_run(s: &[u8], i: usize) -> usize {
    s.get(i..)
        .and_then(super::fast_event::string_stop)
        .map_or(s.len().max(i), |n| i + n)
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

/// The keys the splice looks at (as compact JSON string tokens): the answer's own, a choice's and `usage`'s.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Model,
    Object,
    SystemFingerprint,
    Created,
    Provider,
    Choices,
    Usage,
    Error,
    FinishReason,
    NativeFinishReason,
    Message,
    PromptTokens,
    CompletionTokens,
    PromptCacheHitTokens,
    PromptTokensDetails,
    CompletionTokensDetails,
    CachedTokens,
    CacheWriteTokens,
    CacheWrite1hTokens,
    AudioTokens,
    ReasoningTokens,
    ImageTokens,
    Other,
}

impl Field {
    fn of(token: &[u8]) -> Field {
        match token {
            b"\"id\"" => Field::Id,
            b"\"model\"" => Field::Model,
            b"\"object\"" => Field::Object,
            b"\"system_fingerprint\"" => Field::SystemFingerprint,
            b"\"created\"" => Field::Created,
            b"\"provider\"" => Field::Provider,
            b"\"choices\"" => Field::Choices,
            b"\"usage\"" => Field::Usage,
            b"\"error\"" => Field::Error,
            b"\"finish_reason\"" => Field::FinishReason,
            b"\"native_finish_reason\"" => Field::NativeFinishReason,
            b"\"message\"" => Field::Message,
            b"\"prompt_tokens\"" => Field::PromptTokens,
            b"\"completion_tokens\"" => Field::CompletionTokens,
            b"\"prompt_cache_hit_tokens\"" => Field::PromptCacheHitTokens,
            b"\"prompt_tokens_details\"" => Field::PromptTokensDetails,
            b"\"completion_tokens_details\"" => Field::CompletionTokensDetails,
            b"\"cached_tokens\"" => Field::CachedTokens,
            b"\"cache_write_tokens\"" => Field::CacheWriteTokens,
            b"\"cache_write_1h_tokens\"" => Field::CacheWrite1hTokens,
            b"\"audio_tokens\"" => Field::AudioTokens,
            b"\"reasoning_tokens\"" => Field::ReasoningTokens,
            b"\"image_tokens\"" => Field::ImageTokens,
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

/// The number a compact value token holds, as `Value::as_u64` reads it: only a non-negative integer (the copier
/// writes integers out of `u64`'s range as floats, so digits alone always fit).
fn token_u64(t: &[u8]) -> Option<u64> {
    if t.is_empty() {
        return None;
    }
    t.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Append `n` in decimal, as serde_json writes a `u64` (with the same `itoa`).
fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Read the `usage` value into `out`, normalized as [`super::fast::normalize_usage`] normalizes its parsed tree (no tree built).
fn usage(c: &mut Canon<'_>, out: &mut Vec<u8>) -> R<Usage> {
    let mut u = Usage::default();
    if c.peek()? != b'{' {
        c.value(out)?;
        return Ok(u);
    }
    let (mut cached, mut hit) = (None, None);
    c.object_with(out, |c, out, k| {
        let key = Field::of(&out[k]);
        if matches!(
            key,
            Field::PromptTokensDetails | Field::CompletionTokensDetails
        ) && c.peek()? == b'{'
        {
            return c.object_with(out, |c, out, k| {
                let inner = Field::of(&out[k]);
                let at = out.len();
                c.value(out)?;
                let n = token_u64(&out[at..]);
                let (p, d) = (
                    &mut u.prompt_tokens_details,
                    &mut u.completion_tokens_details,
                );
                match (key, inner) {
                    (Field::PromptTokensDetails, Field::CachedTokens) => cached = n,
                    (Field::PromptTokensDetails, Field::CacheWriteTokens) => {
                        p.cache_write_tokens = n.unwrap_or(0);
                    }
                    (Field::PromptTokensDetails, Field::CacheWrite1hTokens) => {
                        p.cache_write_1h_tokens = n.unwrap_or(0);
                    }
                    (Field::PromptTokensDetails, Field::AudioTokens) => {
                        p.audio_tokens = n.unwrap_or(0);
                    }
                    (Field::CompletionTokensDetails, Field::ReasoningTokens) => {
                        d.reasoning_tokens = n.unwrap_or(0);
                    }
                    (Field::CompletionTokensDetails, Field::ImageTokens) => {
                        d.image_tokens = n.unwrap_or(0);
                    }
                    (Field::CompletionTokensDetails, Field::AudioTokens) => {
                        d.audio_tokens = n.unwrap_or(0);
                    }
                    _ => {}
                }
                Ok(())
            });
        }
        let at = out.len();
        c.value(out)?;
        let n = token_u64(&out[at..]);
        match key {
            Field::PromptTokens => u.prompt_tokens = n.unwrap_or(0),
            Field::CompletionTokens => u.completion_tokens = n.unwrap_or(0),
            Field::PromptCacheHitTokens => hit = n,
            _ => {}
        }
        Ok(())
    })?;
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    u.prompt_tokens_details.cached_tokens = cached.or(hit).unwrap_or(0);
    Ok(u)
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
    let mut first = true;
    loop {
        if c.peek()? == b'{' {
            let norm = choice(c, out)?;
            if first {
                finish = norm;
            }
        } else {
            c.value(out)?;
        }
        first = false;
        if c.more(b']')? {
            out.push(b',');
        } else {
            break;
        }
    }
    out.push(b']');
    Ok(finish)
}

/// Where a choice's native finish reason is: already in the output (normalizing left it as it was), or a copy.
enum Native {
    At(Range<usize>),
    Copy(Vec<u8>),
}

fn choice(c: &mut Canon<'_>, out: &mut Vec<u8>) -> R<Option<&'static str>> {
    let (mut norm, mut native, mut has_native) = (None, None, false);
    c.object_with(out, |c, out, k| {
        let key = Field::of(&out[k]);
        let at = out.len();
        c.value(out)?;
        match key {
            Field::FinishReason if out[at] == b'"' => {
                let n = normalize_finish(&decoded(&out[at..])?);
                norm = Some(n);
                if out[at + 1..out.len() - 1] == *n.as_bytes() {
                    native = Some(Native::At(at..out.len()));
                } else {
                    native = Some(Native::Copy(out[at..].to_vec()));
                    out.truncate(at);
                    write_json_str(out, n);
                }
            }
            Field::NativeFinishReason => has_native = true,
            Field::Message if contains(&out[at..], REASONING_KEY) => return Err(Decline),
            _ => {}
        }
        Ok(())
    })?;
    if let (Some(native), false) = (native, has_native) {
        // Before the closing brace.
        out.pop();
        out.extend_from_slice(b",\"native_finish_reason\":");
        match native {
            Native::At(r) => out.extend_from_within(r),
            Native::Copy(t) => out.extend_from_slice(&t),
        }
        out.push(b'}');
    }
    Ok(norm)
}

/// Which of the fields the engine sets the answer has (in place, where the `Value` path's `insert` keeps them).
#[derive(Default)]
struct Seen {
    id: bool,
    model: bool,
    object: bool,
    fingerprint: bool,
    created: bool,
    provider: bool,
    choices: bool,
}

/// Replace the string token at `out[at..]` with `set` when it is not empty, else keep it when it is a string and
/// write `""` when not (the `Value` path's `as_str().unwrap_or("")`).
fn set_string(out: &mut Vec<u8>, at: usize, set: &str) {
    if !set.is_empty() {
        out.truncate(at);
        write_json_str(out, set);
    } else if out.get(at) != Some(&b'"') {
        out.truncate(at);
        out.extend_from_slice(b"\"\"");
    }
}

/// [`super::splice_response`] by copying (see the module's note); [`Decline`] sends the answer to the tree path.
/// One pass writes the answer: the engine's fields replaced in place, the missing ones appended in the `Value`
/// path's order, and an empty `usage` slot.
pub(crate) fn splice(body: &[u8], ctx: &ResponseContext) -> R<SplicedAnswer> {
    std::str::from_utf8(body).map_err(|_| Decline)?;
    let mut c = Canon::new(body);
    if c.peek()? != b'{' {
        return Err(Decline);
    }
    // Room for the fields set here and the billed `usage` written later (`with_usage_from`).
    let mut out = Vec::with_capacity(body.len() + 640);
    let mut seen = Seen::default();
    let (mut finish, mut usage_norm, mut usage_at) = (None, Usage::default(), None);
    c.object_with(&mut out, |c, out, k| {
        let key = Field::of(&out[k]);
        let at = out.len();
        match key {
            Field::Choices => {
                finish = choices(c, out)?;
                seen.choices = true;
                return Ok(());
            }
            Field::Usage => {
                usage_norm = usage(c, out)?;
                out.truncate(at);
                usage_at = Some(at);
                return Ok(());
            }
            _ => c.value(out)?,
        }
        match key {
            Field::Error if out[at..] != *b"null" => return Err(Decline),
            Field::Id => {
                seen.id = true;
                set_string(out, at, &ctx.id);
            }
            Field::Model => {
                seen.model = true;
                set_string(out, at, &ctx.model);
            }
            Field::Object => {
                seen.object = true;
                out.truncate(at);
                out.extend_from_slice(b"\"chat.completion\"");
            }
            Field::SystemFingerprint => {
                seen.fingerprint = true;
                if out[at] != b'"' {
                    out.truncate(at);
                    out.extend_from_slice(b"null");
                }
            }
            Field::Created if ctx.created != 0 => {
                seen.created = true;
                out.truncate(at);
                write_u64(out, ctx.created);
            }
            Field::Provider if !ctx.provider_name.is_empty() => {
                seen.provider = true;
                out.truncate(at);
                write_json_str(out, &ctx.provider_name);
            }
            _ => {}
        }
        Ok(())
    })?;
    if !c.at_end() || !seen.choices {
        return Err(Decline);
    }
    // The fields the answer lacks go before the closing brace.
    out.pop();
    let add = |out: &mut Vec<u8>, key: &[u8]| {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(key);
    };
    if !seen.id {
        add(&mut out, b"\"id\":");
        write_json_str(&mut out, &ctx.id);
    }
    if !seen.model {
        add(&mut out, b"\"model\":");
        write_json_str(&mut out, &ctx.model);
    }
    if !seen.object {
        add(&mut out, b"\"object\":\"chat.completion\"");
    }
    if !seen.fingerprint {
        add(&mut out, b"\"system_fingerprint\":null");
    }
    if !seen.created && ctx.created != 0 {
        add(&mut out, b"\"created\":");
        write_u64(&mut out, ctx.created);
    }
    if !seen.provider && !ctx.provider_name.is_empty() {
        add(&mut out, b"\"provider\":");
        write_json_str(&mut out, &ctx.provider_name);
    }
    let usage_at = usage_at.unwrap_or_else(|| {
        add(&mut out, b"\"usage\":");
        out.len()
    });
    out.push(b'}');
    Ok(SplicedAnswer::new(out, usage_at, usage_norm, finish))
}

#[cfg(test)]
#[path = "splice_tests.rs"]
mod tests;
