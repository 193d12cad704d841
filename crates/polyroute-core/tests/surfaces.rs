#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)] // tests read vectors
//! The Messages and Responses surfaces against wire vectors: the recorded Anthropic SDK exchanges and streams in
//! `shared/data/wire/`, and vectors written from the providers' documentation under `tests/wire/surfaces/`.
//!
//! The strongest check is the round trip through the chat lifecycle's own translators: a Messages request
//! → chat → the Anthropic dialect must give back the request the client sent (so cache_control, thinking
//! signatures, documents and tool blocks survive), and a recorded Anthropic stream → chat chunks → Messages
//! events must accumulate to the message the original stream accumulates to.

use std::path::Path;

use polyroute_core::providers::{
    build_request, parse_response, Dialect, ResponseContext, StreamTranslator, TranslateOptions,
};
use polyroute_core::sse::SseParser;
use polyroute_core::surfaces::{
    messages, responses, tokens, Event, MessagesStream, ResponsesStream,
};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Value};

const WIRE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/wire");
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wire/surfaces");

fn read(dir: &str, name: &str) -> Option<String> {
    let p = Path::new(dir).join(name);
    if !p.exists() {
        eprintln!("skipping: {} not found", p.display());
        return None;
    }
    Some(std::fs::read_to_string(p).unwrap())
}

/// A vector without its `_source` note.
fn vector(name: &str) -> Value {
    let mut v: Value = serde_json::from_str(&read(VECTORS, name).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("_source");
    v
}

/// Messages request → chat → the Anthropic dialect's body.
fn through_anthropic(body: &Value, stream: bool) -> Value {
    let chat = messages::to_chat(body).unwrap();
    let req = ChatRequest::from_value(&chat).unwrap();
    let mut o = TranslateOptions::new("anthropic", body["model"].as_str().unwrap());
    o.supports_native_structured_output = true;
    o.stream = stream;
    build_request(Dialect::Anthropic, &req, &o)
        .unwrap()
        .body
        .value()
        .clone()
}

/// Remove what the round trip does not keep: `caller` (set by the API on its own tool_use blocks), empty
/// descriptions (Anthropic treats absent and empty alike), empty text blocks (a refusal's; chat has no empty
/// content to carry them).
fn normalize(v: &mut Value) {
    if let Value::Array(a) = v {
        a.retain(|b| !(b["type"] == "text" && b["text"] == ""));
    }
    match v {
        Value::Object(m) => {
            m.remove("caller");
            if m.get("description") == Some(&json!("")) {
                m.remove("description");
            }
            m.values_mut().for_each(normalize);
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

#[test]
fn a_rich_messages_request_survives_the_round_trip_through_the_anthropic_dialect() {
    let body = vector("messages.rich.request.json");
    let sent = through_anthropic(&body, false);
    for k in [
        "system",
        "messages",
        "tools",
        "tool_choice",
        "thinking",
        "stop_sequences",
        "metadata",
        "max_tokens",
    ] {
        assert_eq!(sent[k], body[k], "{k} changed in the round trip");
    }
    // The routing additions reach the chat request, not the provider.
    let chat = messages::to_chat(&body).unwrap();
    assert_eq!(chat["models"], body["models"]);
    assert_eq!(chat["provider"], body["provider"]);
    assert!(sent.get("models").is_none());
}

#[test]
fn the_anthropic_sdk_requests_recorded_survive_the_round_trip() {
    let mut n = 0;
    for f in [
        "anthropic/exchange.tool_use_roundtrip.json",
        "anthropic/exchange.structured_output_output_config.json",
        "anthropic/exchange.stream_tool_use_roundtrip.json",
        "anthropic/exchange.stream_429_rate_limit_then_sse.json",
    ] {
        let Some(text) = read(WIRE, f) else { continue };
        let ex: Vec<Value> = serde_json::from_str(&text).unwrap();
        for e in ex {
            let mut body = e["request"]["body"].clone();
            let stream = body["stream"] == json!(true);
            let mut sent = through_anthropic(&body, stream);
            normalize(&mut body);
            normalize(&mut sent);
            for k in ["messages", "tools", "max_tokens", "stream"] {
                assert_eq!(sent.get(k), body.get(k), "{f}: {k}");
            }
            if let Some(fmt) = body.pointer("/output_config/format") {
                assert_eq!(sent.pointer("/output_config/format"), Some(fmt), "{f}");
            }
            n += 1;
        }
    }
    assert!(n == 0 || n >= 6, "{n} exchanges");
}

#[test]
fn recorded_anthropic_answers_come_back_as_the_same_message() {
    for f in [
        "anthropic/exchange.tool_use_roundtrip.json",
        "anthropic/exchange.structured_output_output_config.json",
    ] {
        let Some(text) = read(WIRE, f) else { continue };
        let ex: Vec<Value> = serde_json::from_str(&text).unwrap();
        for e in ex {
            let native = &e["response"]["body"];
            let ctx = ResponseContext {
                id: "gen-1-abc".into(),
                created: 1,
                model: "anthropic/claude".into(),
                ..Default::default()
            };
            let (mut chat, usage) =
                parse_response(Dialect::Anthropic, 200, native.to_string().as_bytes(), &ctx)
                    .unwrap();
            chat["usage"] = serde_json::to_value(usage).unwrap();
            let mut back = messages::from_chat(&chat);
            let mut want = native["content"].clone();
            normalize(&mut want);
            normalize(&mut back);
            assert_eq!(back["content"], want, "{f}");
            assert_eq!(back["stop_reason"], native["stop_reason"], "{f}");
            for k in ["input_tokens", "output_tokens", "cache_read_input_tokens"] {
                assert_eq!(back["usage"][k], native["usage"][k], "{f}: usage.{k}");
            }
            assert_eq!(back["id"], "gen-1-abc");
        }
    }
}

/// Accumulate Messages stream events the way the SDKs do: the final message.
fn accumulate(events: &[(String, Value)]) -> Value {
    let mut msg = Value::Null;
    let mut partial: Vec<String> = Vec::new();
    for (name, d) in events {
        match name.as_str() {
            "message_start" => msg = d["message"].clone(),
            "content_block_start" => {
                let i = d["index"].as_u64().unwrap() as usize;
                let blocks = msg["content"].as_array_mut().unwrap();
                assert_eq!(blocks.len(), i, "blocks start in index order");
                blocks.push(d["content_block"].clone());
                partial.push(String::new());
            }
            "content_block_delta" => {
                let i = d["index"].as_u64().unwrap() as usize;
                let b = &mut msg["content"][i];
                let dl = &d["delta"];
                match dl["type"].as_str().unwrap() {
                    "text_delta" => {
                        b["text"] = json!(format!(
                            "{}{}",
                            b["text"].as_str().unwrap(),
                            dl["text"].as_str().unwrap()
                        ))
                    }
                    "thinking_delta" => {
                        b["thinking"] = json!(format!(
                            "{}{}",
                            b["thinking"].as_str().unwrap(),
                            dl["thinking"].as_str().unwrap()
                        ))
                    }
                    "signature_delta" => b["signature"] = dl["signature"].clone(),
                    "input_json_delta" => partial[i].push_str(dl["partial_json"].as_str().unwrap()),
                    other => panic!("unknown delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = d["index"].as_u64().unwrap() as usize;
                if msg["content"][i]["type"] == "tool_use" && !partial[i].is_empty() {
                    msg["content"][i]["input"] = serde_json::from_str(&partial[i]).unwrap();
                }
            }
            "message_delta" => {
                msg["stop_reason"] = d["delta"]["stop_reason"].clone();
                for (k, v) in d["usage"].as_object().unwrap() {
                    msg["usage"][k] = v.clone();
                }
            }
            "message_stop" | "ping" => {}
            "error" => msg["error"] = d["error"].clone(),
            other => panic!("unknown event {other}"),
        }
    }
    msg
}

fn sse_events(text: &str) -> Vec<(String, Value)> {
    let mut p = SseParser::new();
    let mut evs = p.push(text.as_bytes());
    evs.extend(p.finish());
    evs.into_iter()
        .filter(|e| !e.data.trim().is_empty())
        .map(|e| {
            (
                e.event.unwrap_or_default(),
                serde_json::from_str(&e.data).unwrap(),
            )
        })
        .collect()
}

fn ours(evs: Vec<Event>) -> Vec<(String, Value)> {
    evs.into_iter()
        .map(|e| (e.name.to_string(), e.data))
        .collect()
}

/// Native SSE → chat chunks (the dialect's stream translator) → Messages events.
fn relay_messages(dialect: Dialect, native: &str) -> Vec<(String, Value)> {
    let ctx = ResponseContext {
        id: "gen-1-abc".into(),
        created: 1,
        model: "m".into(),
        ..Default::default()
    };
    let mut t = StreamTranslator::new(dialect, ctx);
    let mut chunks = t.push(native.as_bytes());
    chunks.extend(t.finish());
    let mut s = MessagesStream::new();
    let mut out = Vec::new();
    for c in &chunks {
        out.extend(s.push(c));
    }
    out.extend(s.finish());
    assert_eq!(
        String::from_utf8(messages_sse(&chunks)).unwrap(),
        String::from_utf8(Event::sse(&out)).unwrap(),
        "the SSE text path writes the events' bytes"
    );
    ours(out)
}

/// A Messages stream of `chunks` written by the SSE text path.
fn messages_sse(chunks: &[Value]) -> Vec<u8> {
    let mut s = MessagesStream::new();
    let mut buf = Vec::new();
    for c in chunks {
        s.push_sse(c, &mut buf);
    }
    s.finish_sse(&mut buf);
    buf
}

mod sse_text_path {
    use super::*;
    use proptest::prelude::*;

    /// Text with the characters JSON escapes (quote, backslash, controls), slashes and non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("a".to_string()),
                Just(" word".to_string()),
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("\n\t\r".to_string()),
                Just("\u{1}\u{1f}\u{7f}".to_string()),
                Just("/".to_string()),
                Just("é✓🦀".to_string()),
                Just("\u{2028}".to_string()),
            ],
            0..4,
        )
        .prop_map(|v| v.concat())
    }

    fn chunk() -> impl Strategy<Value = Value> {
        let delta = prop_oneof![
            text().prop_map(|t| json!({"content": t})),
            text().prop_map(|t| json!({"role": "assistant", "content": t})),
            text().prop_map(|t| json!({"reasoning": t})),
            (text(), text()).prop_map(|(t, s)| json!({"reasoning_details": [
                {"type": "reasoning.text", "text": t, "signature": s}]})),
            text().prop_map(
                |t| json!({"reasoning_details": [{"type": "reasoning.summary", "summary": t}]})
            ),
            text().prop_map(
                |d| json!({"reasoning_details": [{"type": "reasoning.encrypted", "data": d}]})
            ),
            (0u64..3, prop::option::of(text()), text(), text()).prop_map(|(i, id, name, args)| {
                let mut tc = json!({"index": i, "function": {"arguments": args}});
                if let Some(id) = id {
                    tc["id"] = json!(id);
                    tc["function"]["name"] = json!(name);
                }
                json!({"tool_calls": [tc]})
            }),
            Just(json!({})),
        ];
        let finish = prop::option::of(prop_oneof![
            Just("stop"),
            Just("length"),
            Just("tool_calls")
        ]);
        // Envelope fields as upstreams send them, and as they should not (absent, not strings).
        let field = prop_oneof![
            3 => text().prop_map(|t| Some(json!(format!("gen-{t}")))),
            1 => Just(None),
            1 => Just(Some(json!(42))),
            1 => Just(Some(Value::Null)),
        ];
        let cost = prop_oneof![
            Just(None),
            Just(Some(json!(0.0001))),
            Just(Some(Value::Null)),
            Just(Some(json!("0.5"))),
            Just(Some(json!(0))),
        ];
        prop_oneof![
            8 => (delta, finish, field.clone(), field.clone(), field).prop_map(|(d, f, id, model, provider)| {
                let mut c = json!({"choices": [{"index": 0, "delta": d, "finish_reason": f}]});
                for (k, v) in [("id", id), ("model", model), ("provider", provider)] {
                    if let Some(v) = v {
                        c[k] = v;
                    }
                }
                c
            }),
            1 => (0u64..100, 0u64..50, 0u64..10, 0u64..10, cost).prop_map(|(p, c, read, write, cost)| {
                let mut u = json!({"prompt_tokens": p, "completion_tokens": c,
                    "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write}});
                if let Some(cost) = cost {
                    u["cost"] = cost;
                }
                json!({"id": "gen-1", "choices": [], "usage": u})
            }),
            1 => text().prop_map(|m| json!({"id": "gen-1", "choices": [],
                "error": {"code": 502, "message": m}})),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn messages_and_responses_sse_text_equals_the_events_bytes(
            chunks in prop::collection::vec(chunk(), 0..12),
            req in prop_oneof![
                Just(json!({})),
                Just(json!({"model": "acme/m", "instructions": "be \"brief\"", "tools": []})),
                Just(json!({"model": "acme/m", "temperature": 0.5, "max_output_tokens": 64,
                    "metadata": {"k": "v"}, "text": {"format": {"type": "json_object"}},
                    "reasoning": {"effort": "low"}, "tool_choice": "required",
                    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]})),
            ],
        ) {
            let mut s = MessagesStream::new();
            let mut events = Vec::new();
            for c in &chunks {
                events.extend(s.push(c));
            }
            events.extend(s.finish());
            prop_assert_eq!(
                String::from_utf8(messages_sse(&chunks)).unwrap(),
                String::from_utf8(Event::sse(&events)).unwrap()
            );
            let mut r = ResponsesStream::new(req.clone());
            let mut events = Vec::new();
            for c in &chunks {
                events.extend(r.push(c));
            }
            events.extend(r.finish());
            let mut r = ResponsesStream::new(req);
            let mut buf = Vec::new();
            for c in &chunks {
                r.push_sse(c, &mut buf);
            }
            r.finish_sse(&mut buf);
            prop_assert_eq!(
                String::from_utf8(buf).unwrap(),
                String::from_utf8(Event::sse(&events)).unwrap()
            );
        }
    }
}

fn anthropic_streams() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in [
        "anthropic/stream.basic_text.sse",
        "anthropic/stream.tool_use.sse",
        "anthropic/stream.refusal_stop_details.sse",
        "anthropic/stream.thinking_signature_refusal_padded.sse",
    ] {
        if let Some(t) = read(WIRE, f) {
            out.push((f.to_string(), t));
        }
    }
    if let Some(t) = read(WIRE, "anthropic/exchange.stream_tool_use_roundtrip.json") {
        let ex: Vec<Value> = serde_json::from_str(&t).unwrap();
        for (i, e) in ex.iter().enumerate() {
            if let Some(b) = e["response"]["body"].as_str() {
                out.push((format!("stream_tool_use_roundtrip[{i}]"), b.to_string()));
            }
        }
    }
    out
}

#[test]
fn recorded_anthropic_streams_relayed_through_chat_accumulate_to_the_same_message() {
    for (name, text) in anthropic_streams() {
        let original = accumulate(&sse_events(&text));
        let relayed = relay_messages(Dialect::Anthropic, &text);
        assert_eq!(relayed[0].0, "message_start", "{name}");
        assert_eq!(relayed.last().unwrap().0, "message_stop", "{name}");
        let got = accumulate(&relayed);
        let mut want = original["content"].clone();
        let mut have = got["content"].clone();
        normalize(&mut want);
        normalize(&mut have);
        assert_eq!(have, want, "{name}: content");
        assert_eq!(got["stop_reason"], original["stop_reason"], "{name}");
        assert_eq!(
            got["usage"]["output_tokens"], original["usage"]["output_tokens"],
            "{name}"
        );
    }
}

#[test]
fn openai_streams_become_messages_and_responses_events() {
    let Some(text) = read(WIRE, "openai/stream.parallel_tool_calls.sse") else {
        return;
    };
    let msgs = accumulate(&relay_messages(Dialect::OpenAi, &text));
    let tools: Vec<&Value> = msgs["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(tools.len(), 2);
    assert!(!tools[0]["input"].as_object().unwrap().is_empty());
    assert_eq!(msgs["stop_reason"], "tool_use");

    let mut t = StreamTranslator::new(
        Dialect::OpenAi,
        ResponseContext {
            id: "gen-2-x".into(),
            ..Default::default()
        },
    );
    let mut chunks = t.push(text.as_bytes());
    chunks.extend(t.finish());
    let mut s = ResponsesStream::new(json!({"model": "m"}));
    let mut evs = Vec::new();
    for c in &chunks {
        evs.extend(s.push(c));
    }
    evs.extend(s.finish());
    let names: Vec<&str> = evs.iter().map(|e| e.name).collect();
    assert_eq!(&names[..2], ["response.created", "response.in_progress"]);
    assert_eq!(*names.last().unwrap(), "response.completed");
    let seq: Vec<u64> = evs
        .iter()
        .map(|e| e.data["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seq.windows(2).all(|w| w[1] == w[0] + 1));
    let done = &evs.last().unwrap().data["response"];
    let calls: Vec<&Value> = done["output"].as_array().unwrap().iter().collect();
    assert_eq!(calls.len(), 2);
    // The arguments the deltas carry add up to each item's arguments.
    for (oi, c) in calls.iter().enumerate() {
        let joined: String = evs
            .iter()
            .filter(|e| {
                e.name == "response.function_call_arguments.delta" && e.data["output_index"] == oi
            })
            .map(|e| e.data["delta"].as_str().unwrap())
            .collect();
        assert_eq!(joined, c["arguments"].as_str().unwrap());
        assert!(serde_json::from_str::<Value>(&joined).is_ok());
        assert_eq!(c["type"], "function_call");
    }
}

#[test]
fn a_responses_request_with_tools_reasoning_and_a_schema_becomes_chat() {
    let body = vector("responses.tools.request.json");
    let chat = responses::to_chat(&body).unwrap();
    let req = ChatRequest::from_value(&chat).unwrap();
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": "You are a weather bot."})
    );
    assert_eq!(
        chat["messages"][1]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "https://example.com/map.png", "detail": "low"}})
    );
    let a = &chat["messages"][2];
    assert_eq!(a["role"], "assistant");
    assert_eq!(
        a["tool_calls"].as_array().unwrap().len(),
        2,
        "consecutive calls share one assistant message"
    );
    assert_eq!(
        a["tool_calls"][1]["function"]["arguments"],
        "{\"location\":\"Bogotá\"}"
    );
    assert_eq!(a["reasoning_details"][1]["data"], "gAAAAB-opaque");
    assert_eq!(
        chat["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "15C"})
    );
    assert_eq!(chat["messages"][4]["tool_call_id"], "call_2");
    assert_eq!(chat["response_format"]["json_schema"]["name"], "weather");
    assert_eq!(chat["response_format"]["json_schema"]["strict"], true);
    assert_eq!(chat["reasoning"], json!({"effort": "low"}));
    assert_eq!(req.output_limit(), Some(500));
    assert_eq!(chat["tools"][0]["function"]["strict"], true);
    assert_eq!(chat["models"], body["models"]);
    // And on to Anthropic: the calls and results pair up.
    let mut o = TranslateOptions::new("anthropic", "claude-haiku-4-5");
    o.supports_native_structured_output = true;
    let sent = build_request(Dialect::Anthropic, &req, &o).unwrap();
    let turns = sent.body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[1]["content"][1]["type"], "tool_use");
    assert_eq!(turns[2]["content"][0]["tool_use_id"], "call_1");
    assert_eq!(turns[2]["content"][1]["tool_use_id"], "call_2");
}

#[test]
fn responses_answers_carry_items_status_and_usage_with_cost() {
    let answer = json!({"id": "gen-9-z", "object": "chat.completion", "created": 1700, "model": "openai/gpt-4o-mini",
        "provider": "OpenAI", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
        "content": "Checking.", "reasoning": "think", "tool_calls": [{"id": "call_a", "type": "function",
        "function": {"name": "f", "arguments": "{\"x\":1}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 2}, "cost": 0.00002}});
    let r = responses::from_chat(
        &answer,
        &json!({"model": "openai/gpt-4o-mini", "instructions": "hi"}),
    );
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["instructions"], "hi");
    let types: Vec<&str> = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(r["output"][2]["call_id"], "call_a");
    assert_eq!(r["output"][1]["content"][0]["text"], "Checking.");
    assert_eq!(r["usage"]["input_tokens"], 10);
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 4);
    assert_eq!(r["usage"]["output_tokens_details"]["reasoning_tokens"], 2);
    assert_eq!(r["usage"]["cost"], 0.00002);
    let m = messages::from_chat(&answer);
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["usage"]["input_tokens"], 6,
        "Anthropic input_tokens exclude cache reads"
    );
    assert_eq!(m["content"][2]["input"], json!({"x": 1}));

    let mut cut = answer.clone();
    cut["choices"][0]["finish_reason"] = json!("length");
    let r = responses::from_chat(&cut, &json!({}));
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(messages::from_chat(&cut)["stop_reason"], "max_tokens");
}

#[test]
fn stateful_responses_and_bad_input_are_refused_naming_the_field() {
    let base = json!({"model": "m", "input": "hi"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        responses::to_chat(&b).unwrap_err().to_string()
    };
    let e = with("previous_response_id", json!("resp_1"));
    assert!(
        e.contains("previous_response_id") && e.contains("stateless"),
        "{e}"
    );
    let e = with("store", json!(true));
    assert!(e.contains("store") && e.contains("stateless"), "{e}");
    assert!(responses::to_chat(&{
        let mut b = base.clone();
        b["store"] = json!(false);
        b
    })
    .is_ok());
    assert!(with("input", json!(5)).contains("input"));
    assert!(
        with("input", json!([{"type": "item_reference", "id": "x"}])).contains("input[0].type")
    );
    assert!(with("text", json!({"format": {"type": "json_schema"}})).contains("text.format.schema"));
    assert!(with("bogus", json!(1)).contains("bogus"));
    let e = responses::to_chat(
        &json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("input[0].call_id"), "{e}");

    let mbase =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    let mwith = |p: &str, v: Value| {
        let mut b = mbase.clone();
        *b.pointer_mut(p).unwrap_or_else(|| panic!("{p}")) = v;
        messages::to_chat(&b).unwrap_err().to_string()
    };
    assert!(mwith("/max_tokens", json!("ten")).contains("max_tokens"));
    assert!(mwith(
        "/messages/0/content",
        json!([{"type": "image", "source": 3}])
    )
    .contains("messages[0].content[0].source"));
    assert!(
        mwith("/messages/0/content", json!([{"type": "tool_result"}]))
            .contains("messages[0].content[0].tool_use_id")
    );
    assert!(mwith("/messages/0/role", json!("robot")).contains("messages[0].role"));
    assert!(mwith("/messages", json!([])).contains("messages"));
    let (status, body) =
        messages::error_of(&polyroute_core::Error::invalid("max_tokens", "required"));
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[test]
fn a_mid_stream_error_ends_both_streams_in_band() {
    let first = json!({"id": "gen-1", "model": "m", "choices": [{"index": 0, "delta": {"content": "par"}}]});
    let err = json!({"id": "gen-1", "error": {"code": 502, "message": "upstream went away"},
                     "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]});
    let mut m = MessagesStream::new();
    let mut evs = m.push(&first);
    evs.extend(m.push(&err));
    evs.extend(m.push(&json!({"choices": [], "usage": {"prompt_tokens": 1}})));
    evs.extend(m.finish());
    let names: Vec<&str> = evs.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "error"
        ]
    );
    assert_eq!(evs[5].data["error"]["type"], "api_error");
    assert!(m.ended());

    let mut r = ResponsesStream::new(json!({}));
    let mut evs = r.push(&first);
    evs.extend(r.push(&err));
    evs.extend(r.finish());
    let names: Vec<&str> = evs.iter().map(|e| e.name).collect();
    assert_eq!(names.last(), Some(&"response.failed"));
    assert!(names.contains(&"error") && names.contains(&"response.output_item.done"));
    let sse = String::from_utf8(Event::sse(&evs)).unwrap();
    assert!(sse.starts_with("event: response.created\ndata: {"));
}

#[test]
fn count_tokens_covers_the_rich_request() {
    let body = vector("messages.rich.request.json");
    let n = tokens::count_messages(&body).unwrap();
    // Two images (1,600 each), one PDF (1,500), the tool prompt (346): the rest is text.
    assert!(n > 2 * 1600 + 1500 + 346 && n < 6000, "{n}");
}
