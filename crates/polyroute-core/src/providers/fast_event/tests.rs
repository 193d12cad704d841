use super::*;
use proptest::prelude::*;

/// The serde-derived reading of `data` as an [`Event`] (before [`Event::handled`]).
fn serde_event(data: &str) -> Option<Event<'_>> {
    serde_json::from_str(data).ok()
}

/// Where the scanner accepts `data`, it reads what serde reads; returns whether it accepted.
fn agrees(data: &str) -> bool {
    let Some(fast) = scan(data) else {
        return false;
    };
    let slow = serde_event(data);
    assert_eq!(Some(&fast), slow.as_ref(), "{data}");
    assert_eq!(Event::parse(data), Event::parse_serde(data), "{data}");
    true
}

/// The events a stream usually carries: the scanner reads them itself (the point of it), as serde does.
#[test]
fn the_usual_events_are_scanned_as_serde_reads_them() {
    for data in [
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1727346173,"model":"gpt-4o","system_fingerprint":"fp_mock","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"caf\u00e9 \"q\" \n \ud83d\ude00 <&> \\ \/ \b\f\r\t"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
        r#"{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        r#" { "id" : "c" , "choices" : [ { "index" : 1 , "delta" : { "tool_calls" : [ { "index" : 0 , "id" : "t" , "type" : "function" , "function" : { "name" : "f" , "arguments" : "{\"x\":1}" } } ] } , "finish_reason" : null } ] } "#,
        r#"{"id":null,"model":null,"system_fingerprint":null,"usage":null,"error":null,"choices":null}"#,
        r#"{"choices":[{"index":null,"delta":null,"finish_reason":null,"logprobs":null,"extra":[true,false,null,{"a":[]}]}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"x"},"native_finish_reason":null}]}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"r"}}]}"#,
        r#"{"error":{"code":500,"message":"boom"}}"#,
        r#"{"choices":[{"logprobs":{"content":[]}}]}"#,
        r#"{"unknown":"\u00e9","choices":[]}"#,
        "{}",
    ] {
        assert!(agrees(data), "the scanner gave up on {data}");
    }
}

/// What the scanner leaves to serde: each of these it gives up on (serde then reads it, or fails).
#[test]
fn the_unusual_is_left_to_serde() {
    for data in [
        r#"{"id":"a","id":"b"}"#,
        r#"{"choices":[{"index":0,"index":1}]}"#,
        r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"ke\u0079":1}"#,
        r#"{"choices":[{"index":-1}]}"#,
        r#"{"choices":[{"index":1.0}]}"#,
        r#"{"created":1e3}"#,
        r#"{"created":-0}"#,
        r#"{"created":012}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
        r#"{"id":"\ud83d"}"#,
        r#"{"id":"\ude00"}"#,
        r#"{"id":"\ud83d\u0041"}"#,
        r#"{"id":"\x"}"#,
        "{\"id\":\"tab\there\"}",
        r#"{"id":1}"#,
        r#"{"choices":{}}"#,
        r#"{"choices":[1]}"#,
        r#"{"a":1,}"#,
        r#"{"a":1} x"#,
        r#"[]"#,
        r#"{"#,
        "",
    ] {
        assert!(scan(data).is_none(), "the scanner read {data}");
    }
    let deep = format!(
        "{{\"x\":{}{}}}",
        "[".repeat(MAX_DEPTH + 2),
        "]".repeat(MAX_DEPTH + 2)
    );
    assert!(scan(&deep).is_none());
    let wide = format!(
        "{{\"x\":{{{}}}}}",
        (0..=MAX_KEYS)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(scan(&wide).is_none());
}

/// Every event of the recorded OpenAI streams: where the scanner reads one, it reads what serde reads, and it
/// reads most of them.
#[test]
#[allow(clippy::disallowed_methods)] // test data; the core itself never reads files
fn recorded_events_agree() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/wire/openai"
    );
    let (mut seen, mut read) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("sse") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data.trim() == "[DONE]" {
                continue;
            }
            seen += 1;
            read += usize::from(agrees(data.trim()));
        }
    }
    assert!(seen >= 20, "only {seen} recorded events");
    assert!(read * 10 >= seen * 8, "the scanner read {read} of {seen}");
}

/// JSON-ish text built from the pieces events are made of (and some that break them).
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\n",
        "\"id\"",
        "\"model\"",
        "\"choices\"",
        "\"usage\"",
        "\"error\"",
        "\"index\"",
        "\"delta\"",
        "\"content\"",
        "\"role\"",
        "\"finish_reason\"",
        "\"native_finish_reason\"",
        "\"logprobs\"",
        "\"system_fingerprint\"",
        "\"reasoning_content\"",
        "\"tool_calls\"",
        "\"x\"",
        "\"a\\nb\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"caf\u{e9}\"",
        "\"\"",
        "0",
        "1",
        "42",
        "-1",
        "1.5",
        "1e2",
        "007",
        "18446744073709551616",
        "null",
        "true",
        "false",
        "nul",
        "\"stop\"",
    ])
}

fn event_text() -> impl Strategy<Value = String> {
    let base = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;
    prop_oneof![
        prop::collection::vec(token(), 0..40).prop_map(|t| t.concat()),
        // A valid event with one token spliced in somewhere.
        (0..base.len(), token()).prop_map(move |(at, t)| {
            let at = (0..=at)
                .rev()
                .find(|&i| base.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}{t}{}", &base[..at], &base[at..])
        }),
        // A valid event with a span cut out.
        (0..base.len(), 0usize..8).prop_map(move |(at, n)| {
            let end = (at + n).min(base.len());
            format!("{}{}", &base[..at], &base[end..])
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Whatever the text, an event the scanner reads is the event serde reads.
    #[test]
    fn scanned_events_are_serde_events(data in event_text()) {
        agrees(&data);
    }

    /// Valid events with random strings and numbers: the scanner reads them, as serde does.
    #[test]
    fn generated_events_agree(
        content in "\\PC{0,12}",
        id in "[a-z0-9-]{0,8}",
        index in 0u64..1_000_000,
        created in 0u64..1_000_000_000_000_000_000,
        finish in prop::option::of("[a-z_]{1,8}"),
    ) {
        let v = serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "choices": [{"index": index, "delta": {"content": content}, "finish_reason": finish}]});
        let data = serde_json::to_string(&v).unwrap();
        prop_assert!(agrees(&data), "{}", data);
    }
}

/// The eight-at-a-time search finds what a byte-by-byte search finds.
#[test]
fn string_stop_matches_a_scan() {
    let mut buf = vec![b'x'; 40];
    for i in 0..40 {
        for t in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            buf[i] = t;
            for start in 0..=i {
                assert_eq!(string_stop(&buf[start..]), Some(i - start), "{t} at {i}");
            }
            // Bytes around the stop that must not stop the search.
            buf[i] = [0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xc3, 0xff][i % 8];
        }
    }
    assert_eq!(string_stop(&buf), None);
}

/// In the usual stream, content events after the first are read by their delta alone, and each reading is the
/// whole event's: the remembered envelope around the new delta.
#[test]
fn content_events_in_one_envelope_are_read_by_their_delta() {
    let ev = |delta: &str, finish: &str| {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{{"index":2,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]}}"#
        )
    };
    let events = [
        ev(r#"{"role":"assistant","content":""}"#, "null"),
        ev(r#"{"content":"a"}"#, "null"),
        ev(r#"{"content":"b\n\u00e9"}"#, "null"),
        ev(r#"{"reasoning_content":"r"}"#, "null"),
        ev(r#"{"content":"c"}"#, "null"),
        ev("{}", r#""stop""#),
        ev(r#"{"content":"d"}"#, "null"),
    ];
    let mut memo = Memo::default();
    let mut kinds = String::new();
    for data in &events {
        let whole = Event::parse(data);
        match memo.parse(data) {
            Some(Fast::Delta(_, text)) if whole.is_none() => {
                // The reader declines it (here: reasoning to rename), forgets the memo and reads it whole.
                assert!(text.contains("reasoning_content"));
                kinds.push('x');
                assert!(memo.reread(data).is_none());
                kinds.push('-');
            }
            Some(Fast::Delta(index, text)) => {
                kinds.push('d');
                let whole = whole.unwrap();
                assert_eq!(whole.plain_delta(), Some(index));
                // The text is the whole event's delta.
                let c = &whole.choices.as_ref().unwrap()[0];
                let d: Json<'_> = serde_json::from_str(text).unwrap();
                assert_eq!(c.delta.as_ref(), Some(&d));
            }
            Some(Fast::Event(e)) => {
                kinds.push('e');
                assert_eq!(Some(e), whole);
            }
            None => {
                kinds.push('-');
                assert!(whole.is_none());
                memo.forget();
            }
        }
    }
    // The role event is scanned whole, the next two are given by their delta text; the reasoning one too, but
    // its reader declines it, so it is read whole (and left to the `Value` path) and the next is scanned whole
    // again; the finish is not a plain delta, so the one after it is scanned whole.
    assert_eq!(kinds, "eddx-eee");
}
