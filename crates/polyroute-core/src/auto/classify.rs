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
//! (coding). Only a bounded slice of each message is read (2,000 bytes of the last user turn, 800 of the others: head and tail), so the cost does not grow with the
//! length of the conversation.

use std::sync::OnceLock;

use serde_json::Value;

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

/// Categories scored from text (the feature-decided ones are not scored).
const CODE: usize = 0;
const MATH: usize = 1;
const TRANS: usize = 2;
const SUMM: usize = 3;
const EXTR: usize = 4;
const N: usize = 5;
/// Tie-break order and mapping of the scored categories.
const SCORED: [TaskType; N] = [
    TaskType::Coding,
    TaskType::MathReasoning,
    TaskType::Translation,
    TaskType::Summarization,
    TaskType::Extraction,
];

/// Word cues: (form, category, weight). Forms longer than 8 bytes are cut to 8 bytes and act as stems.
const WORDS: &[(&str, usize, f32)] = &[
    // coding
    ("code", CODE, 1.5),
    ("coding", CODE, 1.5),
    ("function", CODE, 1.5),
    ("functions", CODE, 1.5),
    ("method", CODE, 1.0),
    ("class", CODE, 1.0),
    ("variable", CODE, 1.0),
    ("compile", CODE, 2.0),
    ("compiler", CODE, 2.0),
    ("bug", CODE, 1.5),
    ("debug", CODE, 2.0),
    ("refactor", CODE, 3.0),
    ("script", CODE, 1.5),
    ("snippet", CODE, 2.0),
    ("python", CODE, 2.0),
    ("javascript", CODE, 2.5),
    ("typescript", CODE, 2.5),
    ("java", CODE, 2.0),
    ("rust", CODE, 1.5),
    ("golang", CODE, 2.5),
    ("kotlin", CODE, 2.5),
    ("swift", CODE, 1.0),
    ("cpp", CODE, 2.5),
    ("csharp", CODE, 2.5),
    ("sql", CODE, 2.5),
    ("regex", CODE, 3.0),
    ("regexp", CODE, 3.0),
    ("bash", CODE, 2.5),
    ("shell", CODE, 1.0),
    ("powershell", CODE, 2.5),
    ("dockerfile", CODE, 3.0),
    ("docker", CODE, 2.5),
    ("kubernetes", CODE, 2.5),
    ("kubectl", CODE, 3.0),
    ("git", CODE, 2.5),
    ("github", CODE, 1.5),
    ("npm", CODE, 2.5),
    ("pnpm", CODE, 2.5),
    ("pip", CODE, 1.5),
    ("api", CODE, 1.0),
    ("css", CODE, 2.5),
    ("html", CODE, 2.0),
    ("react", CODE, 1.5),
    ("django", CODE, 2.5),
    ("flask", CODE, 1.5),
    ("node", CODE, 1.0),
    ("nodejs", CODE, 2.5),
    ("pytest", CODE, 3.0),
    ("unittest", CODE, 3.0),
    ("traceback", CODE, 3.0),
    ("exception", CODE, 2.0),
    ("stacktrace", CODE, 3.0),
    ("segfault", CODE, 3.0),
    ("nullpointerexception", CODE, 3.0),
    ("array", CODE, 1.0),
    ("algorithm", CODE, 1.5),
    ("complexity", CODE, 1.0),
    ("implement", CODE, 1.5),
    ("implementation", CODE, 1.5),
    ("recursion", CODE, 2.0),
    ("repository", CODE, 1.5),
    ("repo", CODE, 1.5),
    ("commit", CODE, 1.5),
    ("binary", CODE, 1.0),
    ("traversal", CODE, 1.5),
    ("div", CODE, 1.0),
    ("json", CODE, 0.5),
    ("backend", CODE, 1.5),
    ("frontend", CODE, 1.5),
    ("endpoint", CODE, 1.0),
    ("http", CODE, 1.0),
    ("dependency", CODE, 1.5),
    ("pods", CODE, 1.5),
    ("yaml", CODE, 1.5),
    ("linux", CODE, 1.0),
    ("programming", CODE, 2.0),
    ("program", CODE, 1.0),
    ("fonction", CODE, 2.0),
    ("funktion", CODE, 2.0),
    ("función", CODE, 2.0),
    ("funzione", CODE, 2.0),
    ("klasse", CODE, 1.5),
    ("clase", CODE, 1.0),
    ("código", CODE, 2.0),
    ("codice", CODE, 2.0),
    ("csv", CODE, 1.0),
    ("postgres", CODE, 1.5),
    ("lru", CODE, 2.0),
    ("cache", CODE, 0.5),
    ("thread", CODE, 0.5),
    ("async", CODE, 2.0),
    ("await", CODE, 1.5),
    // math
    ("solve", MATH, 2.5),
    ("solving", MATH, 2.5),
    ("prove", MATH, 2.5),
    ("proof", MATH, 2.5),
    ("theorem", MATH, 3.0),
    ("lemma", MATH, 3.0),
    ("integral", MATH, 3.0),
    ("derivative", MATH, 3.0),
    ("equation", MATH, 2.5),
    ("equations", MATH, 2.5),
    ("polynomial", MATH, 3.0),
    ("matrix", MATH, 2.0),
    ("determinant", MATH, 3.0),
    ("eigenvalues", MATH, 3.0),
    ("eigenvectors", MATH, 3.0),
    ("probability", MATH, 2.5),
    ("dice", MATH, 1.5),
    ("prime", MATH, 2.0),
    ("irrational", MATH, 2.0),
    ("cyclic", MATH, 1.5),
    ("factorial", MATH, 3.0),
    ("modulo", MATH, 2.0),
    ("divisible", MATH, 2.5),
    ("sqrt", MATH, 2.5),
    ("logarithm", MATH, 3.0),
    ("percent", MATH, 1.5),
    ("percentage", MATH, 2.0),
    ("interest", MATH, 1.0),
    ("compounded", MATH, 2.0),
    ("divided", MATH, 2.0),
    ("multiply", MATH, 2.0),
    ("multiplied", MATH, 2.0),
    ("fraction", MATH, 2.0),
    ("triangle", MATH, 1.5),
    ("hypotenuse", MATH, 3.0),
    ("algebra", MATH, 3.0),
    ("arithmetic", MATH, 2.5),
    ("calculate", MATH, 2.0),
    ("compute", MATH, 1.5),
    ("simplify", MATH, 2.0),
    ("inequality", MATH, 2.5),
    ("variance", MATH, 1.5),
    ("combinations", MATH, 2.0),
    ("permutations", MATH, 2.5),
    ("frac", MATH, 2.5),
    ("infty", MATH, 2.5),
    ("geometry", MATH, 3.0),
    ("calculus", MATH, 3.0),
    ("limit", MATH, 1.0),
    ("rational", MATH, 1.5),
    ("résous", MATH, 2.5),
    ("résoudre", MATH, 2.5),
    ("calcula", MATH, 2.0),
    ("calcular", MATH, 2.0),
    ("calcule", MATH, 1.5),
    ("derivada", MATH, 3.0),
    ("beweise", MATH, 3.0),
    ("beweisen", MATH, 3.0),
    ("ecuación", MATH, 3.0),
    ("gleichung", MATH, 3.0),
    ("dimostra", MATH, 3.0),
    ("démontrer", MATH, 3.0),
    ("reasoning", MATH, 1.0),
    ("riddle", MATH, 2.0),
    ("puzzle", MATH, 2.0),
    // translation
    ("translate", TRANS, 3.0),
    ("translated", TRANS, 3.0),
    ("translation", TRANS, 3.0),
    ("translator", TRANS, 3.0),
    ("translating", TRANS, 3.0),
    ("localize", TRANS, 2.5),
    ("localise", TRANS, 2.5),
    ("traduce", TRANS, 3.0),
    ("traducir", TRANS, 3.0),
    ("traduis", TRANS, 3.0),
    ("traduire", TRANS, 3.0),
    ("traduza", TRANS, 3.0),
    ("traduzir", TRANS, 3.0),
    ("traduci", TRANS, 3.0),
    ("tradurre", TRANS, 3.0),
    ("übersetze", TRANS, 3.0),
    ("übersetzen", TRANS, 3.0),
    ("übersetzung", TRANS, 3.0),
    ("vertaal", TRANS, 3.0),
    ("vertalen", TRANS, 3.0),
    ("przetłumacz", TRANS, 3.0),
    // summarization
    ("summarize", SUMM, 3.0),
    ("summarise", SUMM, 3.0),
    ("summary", SUMM, 3.0),
    ("summaries", SUMM, 3.0),
    ("recap", SUMM, 3.0),
    ("takeaways", SUMM, 3.0),
    ("condense", SUMM, 3.0),
    ("shorten", SUMM, 2.5),
    ("abstract", SUMM, 1.5),
    ("gist", SUMM, 2.0),
    ("digest", SUMM, 1.5),
    ("brief", SUMM, 1.0),
    ("notes", SUMM, 1.0),
    ("résume", SUMM, 3.0),
    ("résumer", SUMM, 3.0),
    ("résumé", SUMM, 2.0),
    ("resume", SUMM, 2.0),
    ("resumen", SUMM, 3.0),
    ("resumir", SUMM, 3.0),
    ("resuma", SUMM, 3.0),
    ("zusammen", SUMM, 2.0),
    ("zusammenfassung", SUMM, 3.0),
    ("riassumi", SUMM, 3.0),
    ("riassunto", SUMM, 3.0),
    ("samenvatting", SUMM, 3.0),
    ("podsumuj", SUMM, 3.0),
    // extraction
    ("extract", EXTR, 3.0),
    ("extracts", EXTR, 3.0),
    ("extracted", EXTR, 3.0),
    ("extracting", EXTR, 3.0),
    ("extraction", EXTR, 3.0),
    ("extrae", EXTR, 3.0),
    ("extraer", EXTR, 3.0),
    ("extrais", EXTR, 3.0),
    ("extraire", EXTR, 3.0),
    ("extrahiere", EXTR, 3.0),
    ("extrahieren", EXTR, 3.0),
    ("estrai", EXTR, 3.0),
    ("parse", EXTR, 2.0),
    ("json", EXTR, 2.0),
    ("entities", EXTR, 3.0),
    ("fields", EXTR, 1.5),
    ("form", EXTR, 1.0),
    ("mentioned", EXTR, 1.0),
    ("identify", EXTR, 1.0),
    ("organizations", EXTR, 1.0),
    ("classify", EXTR, 2.0),
    ("categorize", EXTR, 2.0),
    ("label", EXTR, 1.0),
    ("tag", EXTR, 1.0),
    ("csv", EXTR, 0.5),
];

/// Two-word cues: (first, second, category, weight).
const PAIRS: &[(&str, &str, usize, f32)] = &[
    ("unit", "tests", CODE, 2.0),
    ("unit", "test", CODE, 2.0),
    ("how", "many", MATH, 0.5),
    ("many", "ways", MATH, 2.0),
    ("expected", "value", MATH, 2.5),
    ("tl", "dr", SUMM, 3.0),
    ("main", "points", SUMM, 2.0),
    ("key", "points", SUMM, 2.0),
    ("action", "items", SUMM, 1.0),
    ("pull", "out", EXTR, 2.0),
    ("key", "value", EXTR, 1.5),
    ("named", "entities", EXTR, 1.0),
    ("you", "say", TRANS, 1.0),
];

/// Substring cues for scripts without word spaces and for non-Latin scripts.
const SUBSTRINGS: &[(&str, usize, f32)] = &[
    ("翻译", TRANS, 3.0),
    ("翻譯", TRANS, 3.0),
    ("翻訳", TRANS, 3.0),
    ("译成", TRANS, 2.0),
    ("번역", TRANS, 3.0),
    ("перевед", TRANS, 3.0),
    ("перевод", TRANS, 3.0),
    ("ترجم", TRANS, 3.0),
    ("अनुवाद", TRANS, 3.0),
    ("总结", SUMM, 3.0),
    ("總結", SUMM, 3.0),
    ("摘要", SUMM, 3.0),
    ("要点", SUMM, 1.5),
    ("概括", SUMM, 3.0),
    ("要約", SUMM, 3.0),
    ("要旨", SUMM, 2.0),
    ("まとめ", SUMM, 2.5),
    ("요약", SUMM, 3.0),
    ("кратко", SUMM, 2.0),
    ("резюм", SUMM, 3.0),
    ("لخص", SUMM, 3.0),
    ("ملخص", SUMM, 3.0),
    ("代码", CODE, 2.5),
    ("代碼", CODE, 2.5),
    ("函数", CODE, 2.0),
    ("编程", CODE, 2.5),
    ("程序", CODE, 1.5),
    ("实现", CODE, 2.0),
    ("服务器", CODE, 1.0),
    ("コード", CODE, 2.5),
    ("関数", CODE, 2.0),
    ("プログラム", CODE, 2.0),
    ("実装", CODE, 2.0),
    ("코드", CODE, 2.5),
    ("함수", CODE, 2.0),
    ("код", CODE, 1.5),
    ("функци", CODE, 1.5),
    ("证明", MATH, 3.0),
    ("証明", MATH, 3.0),
    ("方程", MATH, 3.0),
    ("极限", MATH, 3.0),
    ("積分", MATH, 3.0),
    ("积分", MATH, 3.0),
    ("微分", MATH, 3.0),
    ("概率", MATH, 3.0),
    ("確率", MATH, 3.0),
    ("计算", MATH, 2.0),
    ("計算", MATH, 2.0),
    ("三角形", MATH, 1.5),
    ("증명", MATH, 3.0),
    ("доказ", MATH, 3.0),
    ("уравнен", MATH, 3.0),
    ("提取", EXTR, 3.0),
    ("抽出", EXTR, 3.0),
    ("抽取", EXTR, 3.0),
    ("추출", EXTR, 3.0),
    ("извлек", EXTR, 3.0),
];

/// Language names that, after a preposition, signal a translation target.
const LANGUAGES: &[&str] = &[
    "english",
    "french",
    "german",
    "spanish",
    "italian",
    "portuguese",
    "japanese",
    "chinese",
    "mandarin",
    "korean",
    "russian",
    "arabic",
    "polish",
    "czech",
    "dutch",
    "hindi",
    "turkish",
    "swedish",
    "greek",
    "hebrew",
    "vietnamese",
    "thai",
    "indonesian",
    "ukrainian",
    "danish",
    "finnish",
    "norwegian",
    "inglés",
    "ingles",
    "anglais",
    "englisch",
    "englische",
    "inglese",
    "inglês",
    "engels",
    "español",
    "espagnol",
    "spanisch",
    "français",
    "francés",
    "französisch",
    "alemán",
    "allemand",
    "deutsch",
    "italiano",
    "italien",
    "portugués",
    "portugais",
    "japonais",
    "japonés",
    "chinois",
    "chino",
];
const PREPOSITIONS: &[&str] = &[
    "into", "to", "in", "en", "al", "ins", "para", "o", "naar", "nach", "auf", "het",
];

/// Bytes read from the head and the tail of the last user message.
const HEAD: usize = 1600;
const TAIL: usize = 400;
/// Bytes read from the head and the tail of the system prompt and of earlier user messages.
const CONTEXT_HEAD: usize = 600;
const CONTEXT_TAIL: usize = 200;

struct Tables {
    /// (key, category, weight, cue id), sorted by key.
    words: Vec<(u64, usize, f32, u16)>,
    pairs: Vec<(u64, u64, usize, f32, u16)>,
    languages: Vec<u64>,
    prepositions: Vec<u64>,
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
            .collect();
        let mut languages: Vec<u64> = LANGUAGES.iter().map(|w| key_of(w)).collect();
        languages.sort_unstable();
        let mut prepositions: Vec<u64> = PREPOSITIONS.iter().map(|w| key_of(w)).collect();
        prepositions.sort_unstable();
        Tables {
            words,
            pairs,
            languages,
            prepositions,
        }
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
    // Structural cues, one pass over the bytes.
    let bytes = text.as_bytes();
    let mut fences = 0usize;
    let mut code_lines = 0usize;
    let mut numbers = 0usize;
    let mut equation = false;
    let mut non_ascii = false;
    let mut prev_digit = false;
    for line in text.lines() {
        let l = line.trim_end();
        if l.starts_with("```") {
            fences += 1;
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
            code_lines += 1;
        }
    }
    for (i, &b) in bytes.iter().enumerate() {
        let digit = b.is_ascii_digit();
        if digit && !prev_digit && !(i > 0 && matches!(bytes[i - 1], b'.' | b',')) {
            numbers += 1;
        }
        if (b == b'=' || b == b'^') && !equation {
            let lo = i.saturating_sub(3);
            let hi = (i + 4).min(bytes.len());
            equation = bytes[lo..hi].iter().any(u8::is_ascii_digit);
        }
        non_ascii |= b >= 0x80;
        prev_digit = digit;
    }
    if fences > 0 {
        local[CODE] += 3.0;
    }
    if code_lines >= 2 {
        local[CODE] += 2.0;
    }
    if equation && fences == 0 {
        local[MATH] += 1.0;
    }
    if numbers >= 3 && text.len() < 400 && text.contains('?') {
        local[MATH] += 1.0;
    }
    // Words.
    let mut prev: u64 = 0;
    for word in words(text) {
        let k = key_of(word);
        let lo = t.words.partition_point(|e| e.0 < k);
        for e in t.words[lo..].iter().take_while(|e| e.0 == k) {
            if seen.first(e.3) {
                local[e.1] += e.2;
            }
        }
        if prev != 0 {
            for p in t.pairs.iter().filter(|p| p.0 == prev && p.1 == k) {
                if seen.first(p.4) {
                    local[p.2] += p.3;
                }
            }
            if t.languages.binary_search(&k).is_ok() {
                let after_prep = t.prepositions.binary_search(&prev).is_ok();
                let id = if after_prep { 500 } else { 501 };
                if seen.first(id) {
                    local[TRANS] += if after_prep { 2.5 } else { 0.5 };
                }
            }
        }
        prev = k;
    }
    if non_ascii {
        let lower = text.to_lowercase();
        for (i, (s, c, w)) in SUBSTRINGS.iter().enumerate() {
            if lower.contains(s) && seen.first(400 + i as u16) {
                local[*c] += *w;
            }
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
        assert!(400 + SUBSTRINGS.len() < 500);
    }

    #[test]
    fn names_round_trip() {
        for t in TaskType::ALL {
            assert_eq!(TaskType::parse(t.as_str()), Some(t));
        }
    }
}
