//! Deterministic, in-process task classification.
//!
//! [`classify`] looks at request *features* first and at *words* second:
//!
//! 1. tools offered (or tool calls / tool results in the conversation) → [`TaskType::Agentic`];
//! 2. an image or video part in the last user turn → [`TaskType::Vision`];
//! 3. `response_format` of type `json_schema` or `json_object` → [`TaskType::Extraction`];
//! 4. otherwise every category gets a score from keyword cues and a few structural cues, read from the last user
//!    turn (weight 1), the system prompt (weight 0.6) and the two user turns before the last one (weight 0.4). The
//!    best score wins if it reaches 1.0, else the request is [`TaskType::Chat`].
//!
//! Words are cut on Unicode word boundaries (and where a spaced and an unspaced script meet, so `Go语言` yields `go`),
//! lower-cased, and looked up by their first 8 bytes in a sorted table (one binary search per word; a table form
//! longer than 8 bytes acts as a stem: `summariz` matches `summarize`, `summarized`, `summarization`). Each cue
//! counts once per message. Scripts without spaces (Chinese, Japanese, Korean) and non-Latin scripts are matched by a
//! short substring list. Structural cues: code fences and code-shaped lines (coding), an equation shape — `=` or `^`
//! next to digits (math), three or more numbers in a short question (math), a long pasted text (summarization), a
//! language name after `into`/`to`/`in`/`en`/`al`/… (translation), and code fences in the previous assistant turn
//! (coding). The cue tables live in `cues.rs`. Only a bounded slice of each message is read (1,300 bytes of the last user turn, 400 of the others: head and tail), so the cost does not grow with the
//! length of the conversation.

use std::sync::OnceLock;

use serde_json::Value;

use super::cues::{CODE, LANGUAGES, MATH, PAIRS, PREPOSITIONS, SUBSTRINGS, SUMM, TRANS, WORDS};
use crate::types::{ChatRequest, Message, Role};

/// The task types the auto router distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskType {
    /// Writing, reviewing, debugging or explaining code; shell, SQL, build and deploy questions.
    Coding,
    /// Tool use: the request offers tools or carries tool calls and results.
    Agentic,
    /// Arithmetic, algebra, calculus, probability, proofs, quantitative puzzles.
    MathReasoning,
    /// Structured output: JSON / schema responses, entity and field extraction, classification into labels.
    Extraction,
    /// Summaries, TL;DRs, abstracts, meeting notes, condensing a long pasted text.
    Summarization,
    /// Translating or localizing text between languages.
    Translation,
    /// Everything else: conversation, advice, knowledge questions, creative writing.
    Chat,
    /// The last user turn carries an image or a video.
    Vision,
}

impl TaskType {
    /// Every task type, in documentation order.
    pub const ALL: [TaskType; 8] = [
        Self::Coding,
        Self::Agentic,
        Self::MathReasoning,
        Self::Extraction,
        Self::Summarization,
        Self::Translation,
        Self::Chat,
        Self::Vision,
    ];

    /// Stable snake_case name (`math_reasoning`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coding => "coding",
            Self::Agentic => "agentic",
            Self::MathReasoning => "math_reasoning",
            Self::Extraction => "extraction",
            Self::Summarization => "summarization",
            Self::Translation => "translation",
            Self::Chat => "chat",
            Self::Vision => "vision",
        }
    }

    /// Parse a stable name back.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for TaskType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const N: usize = 5;
/// Tie-break order and mapping of the scored categories.
const SCORED: [TaskType; N] = [
    TaskType::Coding,
    TaskType::MathReasoning,
    TaskType::Translation,
    TaskType::Summarization,
    TaskType::Extraction,
];

/// Bytes read from the head and the tail of the last user message.
const HEAD: usize = 1000;
const TAIL: usize = 300;
/// Bytes read from the head and the tail of the system prompt and of earlier user messages.
const CONTEXT_HEAD: usize = 300;
const CONTEXT_TAIL: usize = 100;

/// A word's entry in the lookup index.
#[derive(Clone, Copy, Default)]
struct Info {
    /// Range of this key's cues in `Tables::words`.
    lo: u16,
    hi: u16,
    /// `LANG`, `PREP`, `PAIR_FIRST` bits.
    flags: u8,
}

const LANG: u8 = 1;
const PREP: u8 = 2;
const PAIR_FIRST: u8 = 4;
const SLOTS: usize = 2048;

struct Tables {
    /// (key, category, weight, cue id), sorted by key.
    words: Vec<(u64, usize, f32, u16)>,
    pairs: Vec<(u64, u64, usize, f32, u16)>,
    /// Open-addressing index from key to [`Info`]; key 0 marks an empty slot.
    slots: Vec<(u64, Info)>,
}

impl Tables {
    fn slot(&self, k: u64) -> usize {
        let mut h = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 53) as usize;
        while self.slots[h].0 != 0 && self.slots[h].0 != k {
            h = (h + 1) % SLOTS;
        }
        h
    }

    fn get(&self, k: u64) -> Info {
        let e = &self.slots[self.slot(k)];
        if e.0 == k {
            e.1
        } else {
            Info::default()
        }
    }

    fn entry(&mut self, k: u64) -> &mut Info {
        let h = self.slot(k);
        self.slots[h].0 = k;
        &mut self.slots[h].1
    }
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut words: Vec<(u64, usize, f32, u16)> = WORDS
            .iter()
            .enumerate()
            .map(|(i, (w, c, s))| (key_of(w), *c, *s, i as u16))
            .collect();
        // Forms sharing a stem and a category count once, at their highest weight.
        words.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then(b.2.total_cmp(&a.2))
                .then(a.3.cmp(&b.3))
        });
        words.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
        let base = WORDS.len() as u16;
        let pairs = PAIRS
            .iter()
            .enumerate()
            .map(|(i, (a, b, c, s))| (key_of(a), key_of(b), *c, *s, base + i as u16))
            .collect::<Vec<_>>();
        let mut t = Tables {
            words: Vec::new(),
            pairs,
            slots: vec![(0, Info::default()); SLOTS],
        };
        let mut i = 0;
        while i < words.len() {
            let k = words[i].0;
            let j = i + words[i..].iter().take_while(|e| e.0 == k).count();
            let info = t.entry(k);
            (info.lo, info.hi) = (i as u16, j as u16);
            i = j;
        }
        t.words = words;
        for w in LANGUAGES {
            t.entry(key_of(w)).flags |= LANG;
        }
        for w in PREPOSITIONS {
            t.entry(key_of(w)).flags |= PREP;
        }
        for p in PAIRS {
            t.entry(key_of(p.0)).flags |= PAIR_FIRST;
        }
        t
    })
}

/// The first 8 bytes of a lower-cased word, packed into an integer.
fn key_of(word: &str) -> u64 {
    let mut buf = [0u8; 8];
    if word.is_ascii() {
        for (d, s) in buf.iter_mut().zip(word.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        return u64::from_be_bytes(buf);
    }
    let mut n = 0;
    for c in word.chars().flat_map(char::to_lowercase) {
        let mut tmp = [0u8; 4];
        for &b in c.encode_utf8(&mut tmp).as_bytes() {
            if n == 8 {
                return u64::from_be_bytes(buf);
            }
            buf[n] = b;
            n += 1;
        }
    }
    u64::from_be_bytes(buf)
}

/// A set of cue ids already counted in the current message.
struct Seen([u64; 8]);

impl Seen {
    fn first(&mut self, id: u16) -> bool {
        let (w, b) = ((id as usize / 64) % 8, id % 64);
        let fresh = self.0[w] & (1 << b) == 0;
        self.0[w] |= 1 << b;
        fresh
    }
}

/// Classify a request into a [`TaskType`]. Pure, allocation-light, and bounded in cost.
#[must_use]
pub fn classify(req: &ChatRequest) -> TaskType {
    let uses_tools = req.tools.as_ref().is_some_and(|t| !t.is_empty())
        || req
            .messages
            .iter()
            .any(|m| m.role == Role::Tool || m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()));
    if uses_tools {
        return TaskType::Agentic;
    }
    let last_user = req.messages.iter().rposition(|m| m.role == Role::User);
    if let Some(i) = last_user {
        if has_visual_part(&req.messages[i]) {
            return TaskType::Vision;
        }
    }
    if let Some(rf) = &req.response_format {
        if matches!(
            rf.get("type").and_then(Value::as_str),
            Some("json_schema" | "json_object")
        ) {
            return TaskType::Extraction;
        }
    }
    let mut scores = [0f32; N];
    if let Some(i) = last_user {
        score_message(&req.messages[i], 1.0, true, &mut scores);
        let earlier = req.messages[..i]
            .iter()
            .rev()
            .filter(|m| m.role == Role::User)
            .take(2);
        for m in earlier {
            score_message(m, 0.4, false, &mut scores);
        }
        let prev_assistant = req.messages[..i]
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant);
        if prev_assistant.is_some_and(|m| text_parts(m).any(|t| t.contains("```"))) {
            scores[CODE] += 1.0;
        }
    }
    for m in req
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .take(2)
    {
        score_message(m, 0.6, false, &mut scores);
    }
    let mut best = 0;
    for c in 1..N {
        if scores[c] > scores[best] {
            best = c;
        }
    }
    if scores[best] >= 1.0 {
        SCORED[best]
    } else {
        TaskType::Chat
    }
}

fn has_visual_part(m: &Message) -> bool {
    match &m.content {
        Some(Value::Array(parts)) => parts.iter().any(|p| {
            matches!(
                p.get("type").and_then(Value::as_str),
                Some("image_url" | "image" | "input_image" | "video_url" | "input_video" | "video")
            )
        }),
        _ => false,
    }
}

fn text_parts(m: &Message) -> impl Iterator<Item = &str> {
    let (single, parts) = match &m.content {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(parts)) => (
            None,
            Some(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str)),
            ),
        ),
        _ => (None, None),
    };
    single.into_iter().chain(parts.into_iter().flatten())
}

/// The head and tail of a text, cut on char boundaries.
fn bounded(text: &str, head: usize, tail: usize) -> (&str, &str) {
    if text.len() <= head + tail {
        return (text, "");
    }
    let mut h = head;
    while !text.is_char_boundary(h) {
        h -= 1;
    }
    let mut t = text.len() - tail;
    while !text.is_char_boundary(t) {
        t += 1;
    }
    (&text[..h], &text[t..])
}

fn score_message(m: &Message, weight: f32, is_last: bool, scores: &mut [f32; N]) {
    let mut local = [0f32; N];
    let mut seen = Seen([0; 8]);
    let mut total_len = 0usize;
    for text in text_parts(m) {
        total_len += text.len();
        let (head, tail) = if is_last {
            bounded(text, HEAD, TAIL)
        } else {
            bounded(text, CONTEXT_HEAD, CONTEXT_TAIL)
        };
        for part in [head, tail] {
            if !part.is_empty() {
                score_text(part, &mut seen, &mut local);
            }
        }
    }
    // A long pasted text with a short or no instruction is most often meant to be condensed.
    if is_last && total_len > 1200 && local[CODE] < 3.0 {
        local[SUMM] += 1.5;
    }
    for c in 0..N {
        scores[c] += local[c] * weight;
    }
}

fn score_text(text: &str, seen: &mut Seen, local: &mut [f32; N]) {
    let t = tables();
    let bytes = text.as_bytes();
    let mut words_seen = WordState {
        prev: 0,
        prev_flags: 0,
    };
    let (mut fences, mut code_lines) = (0usize, 0usize);
    let equation;
    if text.is_ascii() {
        // One pass: words are the maximal runs of ASCII letters and digits; lines end at `\n`; `=` and `^` are
        // checked for an equation shape until one is found.
        let mut eq = false;
        let n = bytes.len();
        let (mut i, mut line_start) = (0, 0);
        while i < n {
            let b = bytes[i];
            match byte_class(b) {
                OTHER => {}
                ALNUM => {
                    let start = i;
                    i += 1;
                    while i < n && byte_class(bytes[i]) == ALNUM {
                        i += 1;
                    }
                    words_seen.visit(t, ascii_key(bytes, start, i - start), seen, local);
                    continue;
                }
                _ if b == b'\n' => {
                    line_cue(&text[line_start..i], &mut fences, &mut code_lines);
                    line_start = i + 1;
                }
                _ => eq = eq || equation_at(bytes, i),
            }
            i += 1;
        }
        line_cue(&text[line_start..], &mut fences, &mut code_lines);
        equation = eq;
    } else {
        for line in text.lines() {
            line_cue(line, &mut fences, &mut code_lines);
        }
        equation =
            (0..bytes.len()).any(|i| matches!(bytes[i], b'=' | b'^') && equation_at(bytes, i));
        for word in words(text) {
            words_seen.visit(t, key_of(word), seen, local);
        }
        substrings(text, seen, local);
    }
    // Structural cues. Every weight is a multiple of 0.5, so the sums are exact whatever the order of the terms.
    if fences > 0 {
        local[CODE] += 3.0;
    }
    if code_lines >= 2 {
        local[CODE] += 2.0;
    }
    if fences == 0 && equation {
        local[MATH] += 1.0;
    }
    if text.len() < 400 && text.contains('?') && count_numbers(bytes) >= 3 {
        local[MATH] += 1.0;
    }
}

/// Counts a code fence or a code-shaped line (`line` without its `\n`).
fn line_cue(line: &str, fences: &mut usize, code_lines: &mut usize) {
    let l = line.trim_end();
    if l.starts_with("```") {
        *fences += 1;
    }
    let trimmed = l.trim_start();
    if l.ends_with(';')
        || l.ends_with('{')
        || trimmed == "}"
        || trimmed.starts_with("def ")
        || trimmed.starts_with("fn ")
        || trimmed.starts_with("import ")
        || trimmed.starts_with("#include")
        || trimmed.starts_with("return ")
        || trimmed.starts_with("File \"")
    {
        *code_lines += 1;
    }
}

/// An equation shape at `bytes[i]` (an `=` or a `^`): a digit within three bytes before or after.
fn equation_at(bytes: &[u8], i: usize) -> bool {
    bytes[i.saturating_sub(3)..(i + 4).min(bytes.len())]
        .iter()
        .any(u8::is_ascii_digit)
}

/// Runs of digits that do not continue a number after `.` or `,`.
fn count_numbers(bytes: &[u8]) -> usize {
    let mut numbers = 0usize;
    let mut prev_digit = false;
    for (i, &b) in bytes.iter().enumerate() {
        let digit = b.is_ascii_digit();
        if digit && !prev_digit && !(i > 0 && matches!(bytes[i - 1], b'.' | b',')) {
            numbers += 1;
        }
        prev_digit = digit;
    }
    numbers
}

const OTHER: u8 = 0;
const ALNUM: u8 = 1;
const SPECIAL: u8 = 2;

/// [`ALNUM`] for ASCII letters and digits, [`SPECIAL`] for `\n`, `=` and `^`, else [`OTHER`] (a table lookup).
fn byte_class(b: u8) -> u8 {
    const T: [u8; 256] = {
        let mut t = [OTHER; 256];
        let mut i = 0;
        while i < 256 {
            let b = i as u8;
            if b.is_ascii_alphanumeric() {
                t[i] = ALNUM;
            } else if b == b'\n' || b == b'=' || b == b'^' {
                t[i] = SPECIAL;
            }
            i += 1;
        }
        t
    };
    T[b as usize]
}

/// [`key_of`] for a run of ASCII letters and digits `bytes[start..start + len]`: one 8-byte load, lower-cased by
/// setting bit 5 of every byte (which letters gain and digits already have), masked to the word.
fn ascii_key(bytes: &[u8], start: usize, len: usize) -> u64 {
    let m = len.min(8);
    let raw = match bytes
        .get(start..start + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
    {
        Some(a) => u64::from_be_bytes(a),
        None => {
            let mut buf = [0u8; 8];
            buf[..m].copy_from_slice(&bytes[start..start + m]);
            u64::from_be_bytes(buf)
        }
    };
    let mask = if m == 8 {
        u64::MAX
    } else {
        !(u64::MAX >> (8 * m))
    };
    (raw | 0x2020_2020_2020_2020) & mask
}

/// The previous word of the text being scored (pairs and `into <language>`).
struct WordState {
    prev: u64,
    prev_flags: u8,
}

impl WordState {
    fn visit(&mut self, t: &Tables, k: u64, seen: &mut Seen, local: &mut [f32; N]) {
        let info = t.get(k);
        for e in &t.words[info.lo as usize..info.hi as usize] {
            if seen.first(e.3) {
                local[e.1] += e.2;
            }
        }
        if self.prev_flags & PAIR_FIRST != 0 {
            for p in t.pairs.iter().filter(|p| p.0 == self.prev && p.1 == k) {
                if seen.first(p.4) {
                    local[p.2] += p.3;
                }
            }
        }
        if info.flags & LANG != 0 && self.prev != 0 {
            let after_prep = self.prev_flags & PREP != 0;
            let id = if after_prep { 500 } else { 501 };
            if seen.first(id) {
                local[TRANS] += if after_prep { 2.5 } else { 0.5 };
            }
        }
        self.prev = k;
        self.prev_flags = info.flags;
    }
}

/// Cues of the scripts matched by substring, on the lower-cased text.
fn substrings(text: &str, seen: &mut Seen, local: &mut [f32; N]) {
    let lower = text.to_lowercase();
    for (i, (s, c, w)) in SUBSTRINGS.iter().enumerate() {
        if lower.contains(s) && seen.first(400 + i as u16) {
            local[*c] += *w;
        }
    }
}

/// Whether a char belongs to the scripts written without spaces (CJK, kana, hangul).
fn unspaced(c: char) -> bool {
    c >= '\u{2E80}'
}

/// Words: maximal runs of alphanumeric chars, also cut where a spaced and an unspaced script meet.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let b = rest.as_bytes();
        let mut i = 0;
        while i < b.len() && b[i].is_ascii() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        if j > i && (j == b.len() || (b[j].is_ascii() && !b[j].is_ascii_alphanumeric())) {
            let w = &rest[i..j];
            rest = &rest[j..];
            return Some(w);
        }
        let start = i + rest[i..].find(char::is_alphanumeric)?;
        let s = &rest[start..];
        let first = s.chars().next().is_some_and(unspaced);
        let end = s
            .char_indices()
            .find(|&(_, c)| !c.is_alphanumeric() || unspaced(c) != first)
            .map_or(s.len(), |(i, _)| i);
        let (w, r) = s.split_at(end);
        rest = r;
        Some(w)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixes() {
        assert_eq!(key_of("Summarization"), key_of("summariz"));
        assert_ne!(key_of("code"), key_of("codes"));
    }

    #[test]
    fn words_split_scripts() {
        let w: Vec<&str> = words("用Go语言 x^2, tl;dr").collect();
        assert_eq!(w, vec!["用", "Go", "语言", "x", "2", "tl", "dr"]);
        let w: Vec<&str> = words("Résume ça").collect();
        assert_eq!(w, vec!["Résume", "ça"]);
    }

    #[test]
    fn cue_ids_fit_the_seen_set() {
        assert!(WORDS.len() + PAIRS.len() < 400);
        assert!(WORDS.len() + LANGUAGES.len() + PREPOSITIONS.len() < SLOTS / 2);
        assert!(400 + SUBSTRINGS.len() < 500);
    }

    #[test]
    fn names_round_trip() {
        for t in TaskType::ALL {
            assert_eq!(TaskType::parse(t.as_str()), Some(t));
        }
    }
}
