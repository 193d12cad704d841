//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`, run by cargo-fuzz on nightly) as plain functions,
//! so that a stable build can run the same checks over a corpus and its mutations (`scripts/fuzz --bounded`).
//! Each panics when the property it checks does not hold; none does I/O.

use crate::providers::{
    build_request as build, map_error, parse_response as parse, Dialect, ResponseContext,
    StreamTranslator, TranslateOptions,
};
use crate::sse::SseParser;
use crate::types::limits;
use crate::types::ChatRequest;

/// The SSE parser must not panic and must give the same events for any split of the input.
pub fn sse_parser(data: &[u8]) {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let mut p = SseParser::new();
    let mut whole = p.push(body);
    whole.extend(p.finish());
    let c = usize::from(cut) * body.len() / 255;
    let mut p = SseParser::new();
    let mut split = p.push(&body[..c]);
    split.extend(p.push(&body[c..]));
    split.extend(p.finish());
    assert_eq!(whole, split);
}

/// Every dialect's stream translator must not panic, must be split-invariant and must end the stream with a
/// finish, usage or error chunk.
pub fn stream_translate(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let d = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini][usize::from(sel % 3)];
    let mut ctx = ResponseContext::default();
    if sel & 4 != 0 {
        ctx.hints.json_tool = Some("json_tool_call".into());
        ctx.hints.json_tool_wrapped = sel & 8 != 0;
    }
    let mut t = StreamTranslator::new(d, ctx.clone());
    let mut whole = t.push(body);
    whole.extend(t.finish());
    assert!(!whole.is_empty());
    let c = usize::from(sel) * body.len() / 255;
    let mut t = StreamTranslator::new(d, ctx);
    let mut split = t.push(&body[..c]);
    split.extend(t.push(&body[c..]));
    split.extend(t.finish());
    assert_eq!(whole, split);
}

/// Any JSON body that parses as a request must translate (or be refused with an error) without panicking.
pub fn build_request(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(req) = ChatRequest::from_value(&v) else {
        return;
    };
    for (d, provider, model) in [
        (Dialect::OpenAi, "groq", "llama"),
        (Dialect::OpenAi, "openrouter", "x/y"),
        (Dialect::Anthropic, "anthropic", "claude-sonnet-4-5"),
        (Dialect::Gemini, "google-ai-studio", "gemini-2.5-flash"),
        (Dialect::Gemini, "google-ai-studio", "gemini-3-pro-preview"),
    ] {
        for strict in [false, true] {
            let mut o = TranslateOptions::new(provider, model);
            o.strict = strict;
            o.supports_native_structured_output = strict;
            if let Ok(n) = build(d, &req, &o) {
                assert!(n.body.is_object());
            }
        }
    }
}

/// Response and error parsing must not panic on any body or status.
pub fn parse_response(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 201, 400, 401, 404, 429, 500, 529][usize::from(sel % 8)];
    for d in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini] {
        let _ = parse(d, status, body, &ResponseContext::default());
        let f = map_error(d, status, Some(1.0), body, "p");
        assert!(f.envelope["error"]["code"].is_u64());
    }
}

/// The request parser with the gateway's limits: any body either is refused with an error naming a field, or
/// gives a request within every limit (identifier lengths, output and `n` ranges, known fields only).
pub fn request_limits(data: &[u8]) {
    if let Err(e) = limits::prescan_json(data) {
        assert!(
            matches!(&e, crate::Error::InvalidRequest { field, .. } if field == "body"),
            "{e:?}"
        );
        return;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match ChatRequest::from_value(&v) {
        Err(crate::Error::InvalidRequest { field, .. }) => {
            assert!(!field.is_empty() && field.len() <= 80, "field {field:?}");
        }
        Err(e) => panic!("a request is refused with invalid_request only, not {e:?}"),
        Ok(req) => {
            assert!(req
                .model
                .as_ref()
                .is_none_or(|m| m.len() <= limits::MAX_MODEL_ID));
            assert!(req
                .models
                .iter()
                .flatten()
                .all(|m| m.len() <= limits::MAX_MODEL_ID));
            assert!(req
                .output_limit()
                .is_none_or(|n| (1..=limits::MAX_OUTPUT_TOKENS).contains(&n)));
            assert!(req
                .extra
                .keys()
                .all(|k| limits::KNOWN_FIELDS.contains(&k.as_str())));
            // The context arithmetic of selection cannot overflow for an accepted request.
            assert!(req
                .output_limit()
                .unwrap_or(0)
                .checked_add(u64::from(u32::MAX))
                .is_some());
        }
    }
}

/// A field an error names must be short and non-empty (never the client's whole text).
fn named_field(e: &crate::Error) {
    match e {
        crate::Error::InvalidRequest { field, .. } => {
            assert!(!field.is_empty() && field.len() <= 120, "field {field:?}");
        }
        other => panic!("a surface request is refused with invalid_request only, not {other:?}"),
    }
}

/// The chat request a surface gave must either be refused with a named field or translate for every dialect.
fn chat_translates(chat: &serde_json::Value) {
    match ChatRequest::from_value(chat) {
        Err(e) => named_field(&e),
        Ok(req) => {
            for (d, provider, model) in [
                (Dialect::OpenAi, "openai", "gpt-4o-mini"),
                (Dialect::Anthropic, "anthropic", "claude-sonnet-4-5"),
                (Dialect::Gemini, "google-ai-studio", "gemini-2.5-flash"),
            ] {
                if let Ok(n) = build(d, &req, &TranslateOptions::new(provider, model)) {
                    assert!(n.body.is_object());
                }
            }
        }
    }
}

/// Any JSON body sent to `/messages` is refused naming a field, or becomes a chat request that translates;
/// count_tokens never panics either.
pub fn messages_request(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match crate::surfaces::messages::to_chat(&v) {
        Err(e) => named_field(&e),
        Ok(chat) => chat_translates(&chat),
    }
    let _ = crate::surfaces::tokens::count_messages(&v);
}

/// Any JSON body sent to `/responses` is refused naming a field, or becomes a chat request that translates.
pub fn responses_request(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match crate::surfaces::responses::to_chat(&v) {
        Err(e) => named_field(&e),
        Ok(chat) => chat_translates(&chat),
    }
}

/// Any provider stream, translated to chat chunks, gives well-formed Messages and Responses event streams: they
/// open with `message_start` / `response.created` and close with `message_stop` or `error` / a terminal
/// response event; any whole answer translates to both shapes.
pub fn surface_streams(data: &[u8]) {
    use crate::surfaces::{messages, responses, MessagesStream, ResponsesStream};
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let d = [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini][usize::from(sel % 3)];
    let mut t = StreamTranslator::new(d, ResponseContext::default());
    let mut chunks = t.push(body);
    chunks.extend(t.finish());
    let mut m = MessagesStream::new();
    let mut r = ResponsesStream::new(serde_json::Value::Null);
    let (mut me, mut re) = (Vec::new(), Vec::new());
    for c in &chunks {
        me.extend(m.push(c));
        re.extend(r.push(c));
    }
    me.extend(m.finish());
    re.extend(r.finish());
    assert_eq!(me.first().map(|e| e.name), Some("message_start"));
    assert!(matches!(
        me.last().map(|e| e.name),
        Some("message_stop" | "error")
    ));
    assert_eq!(re.first().map(|e| e.name), Some("response.created"));
    assert!(matches!(
        re.last().map(|e| e.name),
        Some("response.completed" | "response.incomplete" | "response.failed")
    ));
    if let Ok((answer, _)) = parse(d, 200, body, &ResponseContext::default()) {
        assert_eq!(messages::from_chat(&answer)["type"], "message");
        assert_eq!(
            responses::from_chat(&answer, &serde_json::Value::Null)["object"],
            "response"
        );
    }
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The account endpoints' query strings (`/generation`, `/activity`, `/key`, `/credits`, `/keys`): any query
/// either is refused with a message or gives parameters within their documented ranges; an accepted `date` is a
/// day's start; nothing panics (the first six bytes pick the clock).
pub fn account_queries(data: &[u8]) {
    use crate::account_query as aq;
    let (now_bytes, rest) = data.split_at(data.len().min(6));
    // A clock within ±2^47 ms (±4,000 years) of the epoch, from the input.
    let mut now: i64 = 0;
    for b in now_bytes {
        now = (now << 8) | i64::from(*b);
    }
    now -= 1 << 47;
    let text = String::from_utf8_lossy(rest);
    let q = aq::query_pairs(&text);
    assert!(q.len() <= text.len() + 1, "more pairs than bytes");
    match aq::activity_params(&q, now) {
        Ok(p) => {
            assert!((1..=aq::ACTIVITY_PAGE_MAX).contains(&p.limit), "{p:?}");
            assert!(p.since_ms >= now - 30 * 86_400_000, "{p:?}");
            match (&p.date, p.until_ms) {
                (None, None) => {}
                (Some(d), Some(until)) => {
                    let start = aq::parse_iso(d).unwrap_or_else(|| panic!("{d:?} was accepted"));
                    assert_eq!(until, start + 86_400_000, "{p:?}");
                    assert_eq!(start.rem_euclid(86_400_000), 0, "{p:?}");
                }
                _ => panic!("date and until go together: {p:?}"),
            }
        }
        Err(m) => assert!(m.contains("must be"), "{m}"),
    }
    if let Some(id) = aq::generation_id(&q) {
        assert!(!id.is_empty());
    }
    let k = aq::keys_list_params(&q);
    assert_eq!(
        k.include_disabled,
        q.get("include_disabled").is_some_and(|v| v == "true")
    );
    // Any text: parse_iso never panics, and a date without a time is a day's start.
    if let Some(t) = aq::parse_iso(&text) {
        if !text.trim().contains(['T', ' ']) {
            assert_eq!(t.rem_euclid(86_400_000), 0, "{text:?}");
        }
    }
}

/// Every target, by name (for the bounded stable runner).
pub const TARGETS: &[(&str, Target)] = &[
    ("sse_parser", sse_parser),
    ("stream_translate", stream_translate),
    ("build_request", build_request),
    ("parse_response", parse_response),
    ("request_limits", request_limits),
    ("messages_request", messages_request),
    ("responses_request", responses_request),
    ("surface_streams", surface_streams),
    ("account_queries", account_queries),
];
