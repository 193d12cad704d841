//! The stored text of a [`GenerationRecord`]: exactly the bytes `serde_json::to_string` writes for it, written
//! directly (the durable ledger writes one per answer). Keys are constants, strings with nothing to escape are
//! copied as they are (serde_json looks every byte up in its escape table, keys included), decimals are written
//! from their mantissa in one integer formatting (rust_decimal divides the 96-bit mantissa once per digit),
//! floats by serde_json's own formatter. Each struct is taken apart field by field with no `..`, so a field
//! added to it does not compile until it is written here; the proptest below compares with serde_json.

use polyroute_core::cost::CostBreakdown;
use polyroute_core::error::AttemptRecord;
use polyroute_core::types::{CompletionTokensDetails, PromptTokensDetails};
use polyroute_core::Usage;
use rust_decimal::Decimal;

use super::decimal::push_decimal;
use super::{ApiType, CostDetails, GenerationRecord};

impl GenerationRecord {
    /// The record as JSON text: the same bytes as `serde_json::to_string(self)`, written several times faster
    /// (what the durable ledgers store).
    #[must_use]
    pub fn to_json_string(&self) -> String {
        let GenerationRecord {
            id,
            created_ms,
            model,
            provider,
            provider_name,
            endpoint,
            streamed,
            usage,
            cost,
            cost_details,
            finish_reason,
            attempts,
            app_referer,
            app_title,
            user,
            free,
            latency_ms,
            ttft_ms,
            dropped_params,
            cancelled,
            session_id,
            overhead_ms,
            api_type,
        } = self;
        let mut o = String::with_capacity(1024);
        o.push_str("{\"id\":");
        string(&mut o, id);
        o.push_str(",\"created_ms\":");
        o.push_str(itoa::Buffer::new().format(*created_ms));
        o.push_str(",\"model\":");
        string(&mut o, model);
        o.push_str(",\"provider\":");
        string(&mut o, provider);
        o.push_str(",\"provider_name\":");
        string(&mut o, provider_name);
        o.push_str(",\"endpoint\":");
        string(&mut o, endpoint);
        o.push_str(",\"streamed\":");
        boolean(&mut o, *streamed);
        o.push_str(",\"usage\":");
        write_usage(&mut o, usage);
        o.push_str(",\"cost\":");
        decimal(&mut o, cost);
        o.push_str(",\"cost_details\":");
        match cost_details {
            CostDetails::Breakdown(b) => write_breakdown(&mut o, b),
            // serde_json writes any `Value` (its map keys are strings); a cache hit's note, not the hot path.
            CostDetails::Json(v) => {
                o.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into()));
            }
        }
        o.push_str(",\"finish_reason\":");
        opt_string(&mut o, finish_reason.as_deref());
        o.push_str(",\"attempts\":[");
        for (i, a) in attempts.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            write_attempt(&mut o, a);
        }
        o.push_str("],\"app_referer\":");
        opt_string(&mut o, app_referer.as_deref());
        o.push_str(",\"app_title\":");
        opt_string(&mut o, app_title.as_deref());
        o.push_str(",\"user\":");
        opt_string(&mut o, user.as_deref());
        o.push_str(",\"free\":");
        boolean(&mut o, *free);
        o.push_str(",\"latency_ms\":");
        float(&mut o, *latency_ms);
        o.push_str(",\"ttft_ms\":");
        match ttft_ms {
            Some(v) => float(&mut o, *v),
            None => o.push_str("null"),
        }
        if !dropped_params.is_empty() {
            o.push_str(",\"dropped_params\":[");
            for (i, p) in dropped_params.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                string(&mut o, p);
            }
            o.push(']');
        }
        o.push_str(",\"cancelled\":");
        boolean(&mut o, *cancelled);
        if let Some(s) = session_id {
            o.push_str(",\"session_id\":");
            string(&mut o, s);
        }
        if let Some(v) = overhead_ms {
            o.push_str(",\"overhead_ms\":");
            float(&mut o, *v);
        }
        if *api_type != ApiType::Completions {
            o.push_str(",\"api_type\":");
            string(&mut o, api_type.as_str());
        }
        o.push('}');
        o
    }
}

/// A JSON string: copied between quotes when no byte needs an escape (serde_json escapes `"`, `\` and the
/// control characters below U+0020, nothing else), else written by serde_json.
fn string(o: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        o.reserve(s.len() + 2);
        o.push('"');
        o.push_str(s);
        o.push('"');
    } else {
        // Serializing a `str` cannot fail.
        o.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

fn opt_string(o: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(o, s),
        None => o.push_str("null"),
    }
}

fn boolean(o: &mut String, b: bool) {
    o.push_str(if b { "true" } else { "false" });
}

fn uint(o: &mut String, v: u64) {
    o.push_str(itoa::Buffer::new().format(v));
}

/// As serde_json writes an `f64`: `null` when not finite, else its formatter's text (written by serde_json
/// itself, into a stack buffer: the shortest text that reads back as the same value, in serde_json's notation).
fn float(o: &mut String, v: f64) {
    use serde_json::ser::Formatter as _;
    if !v.is_finite() {
        o.push_str("null");
        return;
    }
    let mut buf = [0u8; 40];
    let mut rest = &mut buf[..];
    let room = rest.len();
    if serde_json::ser::CompactFormatter
        .write_f64(&mut rest, v)
        .is_ok()
    {
        let n = room - rest.len();
        if let Ok(t) = std::str::from_utf8(&buf[..n]) {
            o.push_str(t);
            return;
        }
    }
    // Not reached (an f64's text is ASCII and far shorter than the buffer); serde_json's own way then.
    o.push_str(&serde_json::to_string(&v).unwrap_or_else(|_| "null".into()));
}

/// A decimal as `rust_decimal::serde::str` writes it: its text as a JSON string (it never needs an escape).
fn decimal(o: &mut String, d: &Decimal) {
    o.push('"');
    push_decimal(o, d);
    o.push('"');
}

fn write_usage(o: &mut String, u: &Usage) {
    let Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens,
        prompt_tokens_details,
        completion_tokens_details,
        images,
        web_search_requests,
        requests,
    } = u;
    let PromptTokensDetails {
        cached_tokens,
        cache_write_tokens,
        cache_write_1h_tokens,
        audio_tokens: prompt_audio,
    } = prompt_tokens_details;
    let CompletionTokensDetails {
        reasoning_tokens,
        image_tokens,
        audio_tokens: completion_audio,
    } = completion_tokens_details;
    o.push_str("{\"prompt_tokens\":");
    uint(o, *prompt_tokens);
    o.push_str(",\"completion_tokens\":");
    uint(o, *completion_tokens);
    o.push_str(",\"total_tokens\":");
    uint(o, *total_tokens);
    o.push_str(",\"prompt_tokens_details\":{\"cached_tokens\":");
    uint(o, *cached_tokens);
    o.push_str(",\"cache_write_tokens\":");
    uint(o, *cache_write_tokens);
    if *cache_write_1h_tokens != 0 {
        o.push_str(",\"cache_write_1h_tokens\":");
        uint(o, *cache_write_1h_tokens);
    }
    if *prompt_audio != 0 {
        o.push_str(",\"audio_tokens\":");
        uint(o, *prompt_audio);
    }
    o.push_str("},\"completion_tokens_details\":{\"reasoning_tokens\":");
    uint(o, *reasoning_tokens);
    if *image_tokens != 0 {
        o.push_str(",\"image_tokens\":");
        uint(o, *image_tokens);
    }
    if *completion_audio != 0 {
        o.push_str(",\"audio_tokens\":");
        uint(o, *completion_audio);
    }
    o.push('}');
    if *images != 0 {
        o.push_str(",\"images\":");
        uint(o, *images);
    }
    if *web_search_requests != 0 {
        o.push_str(",\"web_search_requests\":");
        uint(o, *web_search_requests);
    }
    if *requests != 1 {
        o.push_str(",\"requests\":");
        uint(o, *requests);
    }
    o.push('}');
}

fn write_breakdown(o: &mut String, b: &CostBreakdown) {
    let CostBreakdown {
        prompt,
        cache_read,
        cache_write,
        completion,
        reasoning,
        request,
        image,
        web_search,
        total,
        insured,
        overrides_applied,
    } = b;
    o.push_str("{\"prompt\":");
    decimal(o, prompt);
    o.push_str(",\"cache_read\":");
    decimal(o, cache_read);
    o.push_str(",\"cache_write\":");
    decimal(o, cache_write);
    o.push_str(",\"completion\":");
    decimal(o, completion);
    o.push_str(",\"reasoning\":");
    decimal(o, reasoning);
    o.push_str(",\"request\":");
    decimal(o, request);
    o.push_str(",\"image\":");
    decimal(o, image);
    o.push_str(",\"web_search\":");
    decimal(o, web_search);
    o.push_str(",\"total\":");
    decimal(o, total);
    o.push_str(",\"insured\":");
    boolean(o, *insured);
    o.push_str(",\"overrides_applied\":[");
    for (i, n) in overrides_applied.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str(itoa::Buffer::new().format(*n));
    }
    o.push_str("]}");
}

fn write_attempt(o: &mut String, a: &AttemptRecord) {
    let AttemptRecord {
        model,
        provider,
        endpoint,
        status,
        class,
        retry_after,
        latency_ms,
    } = a;
    o.push_str("{\"model\":");
    string(o, model);
    o.push_str(",\"provider\":");
    string(o, provider);
    o.push_str(",\"endpoint\":");
    string(o, endpoint);
    o.push_str(",\"status\":");
    o.push_str(itoa::Buffer::new().format(*status));
    o.push_str(",\"code\":");
    string(o, class.code());
    if let Some(v) = retry_after {
        o.push_str(",\"retry_after\":");
        float(o, *v);
    }
    if let Some(v) = latency_ms {
        o.push_str(",\"latency_ms\":");
        float(o, *v);
    }
    o.push('}');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use polyroute_core::outcome::OutcomeClass;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use serde_json::json;

    /// Decimals of every scale, sign (negative zero included) and size up to the 96-bit mantissa's limit.
    pub(crate) fn any_decimal() -> impl Strategy<Value = Decimal> {
        (
            prop_oneof![
                Just(0u128),
                0u128..1000,
                any::<u64>().prop_map(u128::from),
                0u128..(1u128 << 96),
                Just((1u128 << 96) - 1),
            ],
            any::<bool>(),
            0u32..=28,
        )
            .prop_map(|(m, neg, scale)| {
                let lo = u32::try_from(m & 0xffff_ffff).unwrap();
                let mid = u32::try_from((m >> 32) & 0xffff_ffff).unwrap();
                let hi = u32::try_from(m >> 64).unwrap();
                // from_parts drops the sign of a zero; set_sign_negative keeps it (negative zero reaches Display).
                let mut d = Decimal::from_parts(lo, mid, hi, false, scale);
                d.set_sign_negative(neg);
                d
            })
    }

    /// Text with quotes, backslashes, every control character, DEL, non-ASCII and astral characters.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9/_.:-]{0,24}",
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just('"'),
                    Just('\\'),
                    Just('\u{7f}'),
                    Just('é'),
                    Just('\u{2028}'),
                    Just('😀'),
                    (0u8..0x20).prop_map(char::from),
                    proptest::char::range('a', 'z'),
                ],
                0..12,
            )
            .prop_map(|v| v.into_iter().collect()),
        ]
    }

    fn any_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            0.0f64..100_000.0,
            Just(0.0),
            Just(-0.0),
            Just(1.0),
            Just(1e21),
            Just(1e-7),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
        ]
    }

    fn small_or_zero() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), Just(1u64), any::<u64>(), 0u64..100_000]
    }

    fn any_usage() -> impl Strategy<Value = Usage> {
        (
            (small_or_zero(), small_or_zero(), small_or_zero()),
            (
                small_or_zero(),
                small_or_zero(),
                small_or_zero(),
                small_or_zero(),
            ),
            (small_or_zero(), small_or_zero(), small_or_zero()),
            (small_or_zero(), small_or_zero(), small_or_zero()),
        )
            .prop_map(
                |((p, c, t), (cr, cw, cw1, pa), (r, im, ca), (i, w, q))| Usage {
                    prompt_tokens: p,
                    completion_tokens: c,
                    total_tokens: t,
                    prompt_tokens_details: PromptTokensDetails {
                        cached_tokens: cr,
                        cache_write_tokens: cw,
                        cache_write_1h_tokens: cw1,
                        audio_tokens: pa,
                    },
                    completion_tokens_details: CompletionTokensDetails {
                        reasoning_tokens: r,
                        image_tokens: im,
                        audio_tokens: ca,
                    },
                    images: i,
                    web_search_requests: w,
                    requests: q,
                },
            )
    }

    fn any_details() -> impl Strategy<Value = CostDetails> {
        prop_oneof![
            (
                proptest::collection::vec(any_decimal(), 9),
                any::<bool>(),
                proptest::collection::vec(any::<usize>(), 0..4),
            )
                .prop_map(|(d, insured, overrides_applied)| {
                    CostDetails::Breakdown(CostBreakdown {
                        prompt: d[0],
                        cache_read: d[1],
                        cache_write: d[2],
                        completion: d[3],
                        reasoning: d[4],
                        request: d[5],
                        image: d[6],
                        web_search: d[7],
                        total: d[8],
                        insured,
                        overrides_applied,
                    })
                }),
            Just(CostDetails::Json(serde_json::Value::Null)),
            any_text()
                .prop_map(|t| CostDetails::Json(json!({"cached": true, "note": t, "n": 1.5}))),
        ]
    }

    fn any_attempt() -> impl Strategy<Value = AttemptRecord> {
        (
            (any_text(), any_text(), any_text()),
            any::<u16>(),
            0..OutcomeClass::ALL.len(),
            proptest::option::of(any_float()),
            proptest::option::of(any_float()),
        )
            .prop_map(
                |((model, provider, endpoint), status, c, retry_after, latency_ms)| AttemptRecord {
                    model,
                    provider,
                    endpoint,
                    status,
                    class: OutcomeClass::ALL[c],
                    retry_after,
                    latency_ms,
                },
            )
    }

    fn any_record() -> impl Strategy<Value = GenerationRecord> {
        (
            (
                any_text(),
                any::<i64>(),
                any_text(),
                any_text(),
                any_text(),
                any_text(),
                any::<bool>(),
            ),
            (any_usage(), any_decimal(), any_details()),
            (
                proptest::option::of(any_text()),
                proptest::collection::vec(any_attempt(), 0..3),
                proptest::option::of(any_text()),
                proptest::option::of(any_text()),
                proptest::option::of(any_text()),
            ),
            (
                any::<bool>(),
                any_float(),
                proptest::option::of(any_float()),
                proptest::collection::vec(any_text(), 0..3),
                any::<bool>(),
                proptest::option::of(any_text()),
                proptest::option::of(any_float()),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (id, created_ms, model, provider, provider_name, endpoint, streamed),
                    (usage, cost, cost_details),
                    (finish_reason, attempts, app_referer, app_title, user),
                    (
                        free,
                        latency_ms,
                        ttft_ms,
                        dropped_params,
                        cancelled,
                        session_id,
                        overhead_ms,
                        emb,
                    ),
                )| GenerationRecord {
                    id,
                    created_ms,
                    model,
                    provider,
                    provider_name,
                    endpoint,
                    streamed,
                    usage,
                    cost,
                    cost_details,
                    finish_reason,
                    attempts,
                    app_referer,
                    app_title,
                    user,
                    free,
                    latency_ms,
                    ttft_ms,
                    dropped_params,
                    cancelled,
                    session_id,
                    overhead_ms,
                    api_type: if emb {
                        ApiType::Embeddings
                    } else {
                        ApiType::Completions
                    },
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn record_text_is_serde_jsons(rec in any_record()) {
            prop_assert_eq!(rec.to_json_string(), serde_json::to_string(&rec).unwrap());
        }
    }

    /// The generators reach what the writer treats apart (a strategy that never produced an escaped string, a
    /// skipped field or a breakdown would let the property pass without testing those paths).
    #[test]
    fn generators_reach_every_path() {
        let mut runner = TestRunner::deterministic();
        let (mut escaped, mut plain_id, mut breakdown, mut json_details) =
            (false, false, false, false);
        let (mut session, mut dropped, mut emb, mut requests, mut nan) =
            (false, false, false, false, false);
        for _ in 0..2000 {
            let r = any_record().new_tree(&mut runner).unwrap().current();
            let text = r.to_json_string();
            escaped |= text.contains("\\\"") || text.contains("\\u00");
            plain_id |= r.id.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
            breakdown |= matches!(r.cost_details, CostDetails::Breakdown(_));
            json_details |= matches!(r.cost_details, CostDetails::Json(_));
            session |= r.session_id.is_some();
            dropped |= !r.dropped_params.is_empty();
            emb |= r.api_type == ApiType::Embeddings;
            requests |= r.usage.requests != 1;
            nan |= r.latency_ms.is_nan();
        }
        assert!(escaped && plain_id && breakdown && json_details);
        assert!(session && dropped && emb && requests && nan);
    }
}
