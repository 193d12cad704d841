//! Dialect benchmarks: request translation (20 messages, 5 tools) to Anthropic and Gemini — `build_request` on a
//! parsed request, up to the serialized body text the engine sends — and Anthropic SSE → OpenAI chunk throughput
//! (as chunk objects, and SSE-encoded by `push_sse_into`). Beside them, the other surfaces: a Messages and a
//! Responses request of the same size translated to chat and on to the Anthropic body, and the same stream
//! relayed as Anthropic Messages events or Responses events (SSE text).
//!
//! `cargo bench -p polyroute-core --bench dialects -- --warm-up-time 1 --measurement-time 3`
//!
//! Every benchmark runs twice: `wall/…` measures wall time (criterion's default), `cpu/…` measures the thread's
//! CPU time, which stays meaningful when other processes compete for the cores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::measurement::{Measurement, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polyroute_core::providers::{
    build_request, Dialect, ResponseContext, StreamTranslator, TranslateOptions,
};
use polyroute_core::sse::SseParser;
use polyroute_core::surfaces::{messages, responses, Event, MessagesStream, ResponsesStream};
use polyroute_core::types::ChatRequest;
use serde_json::{json, Value};

#[path = "support/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpu;

fn request() -> ChatRequest {
    let tools: Vec<Value> = (0..5)
        .map(|i| {
            json!({"type": "function", "function": {"name": format!("tool_{i}"), "description": "Look something up in a system of record.",
                "parameters": {"type": "object", "properties": {
                    "query": {"type": "string", "description": "what to look for"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                    "filters": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}},
                    "mode": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                    "required": ["query"], "additionalProperties": false}}})
        })
        .collect();
    let mut messages = vec![
        json!({"role": "system", "content": "You are a careful assistant. Use the tools when useful."}),
    ];
    for i in 0..19 {
        let m = match i % 4 {
            0 => {
                json!({"role": "user", "content": format!("Question number {i}: please look up the status of order {i} and summarise it in two sentences.")})
            }
            1 => json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": format!("call_{i}"), "type": "function", "function": {"name": format!("tool_{}", i % 5), "arguments": "{\"query\":\"order status\",\"limit\":3}"}}]}),
            2 => {
                json!({"role": "tool", "tool_call_id": format!("call_{}", i - 1), "content": "{\"status\":\"shipped\",\"eta\":\"2 days\",\"carrier\":\"acme\"}"})
            }
            _ => {
                json!({"role": "assistant", "content": "The order has shipped and should arrive in two days with Acme."})
            }
        };
        messages.push(m);
    }
    ChatRequest::from_value(
        &json!({"model": "x/y", "messages": messages, "tools": tools, "tool_choice": "auto",
        "max_tokens": 4096, "temperature": 0.7, "stop": ["END"]}),
    )
    .unwrap()
}

/// The same conversation as [`request`], as a Messages request and as a Responses request.
fn surface_requests() -> (Value, Value) {
    let tools: Vec<Value> = (0..5)
        .map(|i| json!({"name": format!("tool_{i}"), "description": "Look something up in a system of record.",
            "input_schema": {"type": "object", "properties": {"query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50}}, "required": ["query"]}}))
        .collect();
    let rtools: Vec<Value> = tools
        .iter()
        .map(|t| json!({"type": "function", "name": t["name"], "description": t["description"], "parameters": t["input_schema"]}))
        .collect();
    let (mut turns, mut items) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let q = format!("Question number {i}: please look up the status of order {i} and summarise it in two sentences.");
        let id = format!("call_{i}");
        turns.push(json!({"role": "user", "content": q}));
        turns.push(json!({"role": "assistant", "content": [{"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": id, "name": format!("tool_{i}"), "input": {"query": "order status", "limit": 3}}]}));
        turns.push(
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
            "content": "{\"status\":\"shipped\",\"eta\":\"2 days\"}"}]}),
        );
        turns.push(json!({"role": "assistant", "content": "The order has shipped and should arrive in two days."}));
        items.push(json!({"role": "user", "content": q}));
        items.push(
            json!({"type": "function_call", "call_id": id, "name": format!("tool_{i}"),
            "arguments": "{\"query\":\"order status\",\"limit\":3}"}),
        );
        items.push(json!({"type": "function_call_output", "call_id": id, "output": "{\"status\":\"shipped\"}"}));
        items.push(json!({"role": "assistant", "content": "The order has shipped and should arrive in two days."}));
    }
    turns.push(json!({"role": "user", "content": "And the last one?"}));
    items.push(json!({"role": "user", "content": "And the last one?"}));
    (
        json!({"model": "x/y", "max_tokens": 4096, "system": "You are a careful assistant.", "messages": turns,
               "tools": tools, "tool_choice": {"type": "auto"}, "stop_sequences": ["END"]}),
        json!({"model": "x/y", "max_output_tokens": 4096, "instructions": "You are a careful assistant.",
               "input": items, "tools": rtools, "tool_choice": "auto"}),
    )
}

fn anthropic_sse(target: usize) -> Vec<u8> {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":377,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n\
        event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    let mut i = 0;
    while s.len() < target {
        if i % 50 == 0 {
            s.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
        }
        s.push_str("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"The quick brown fox jumps over the lazy dog, \"}}\n\n");
        i += 1;
    }
    s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
        event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9000}}\n\n\
        event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

fn translate<M: Measurement + 'static>(c: &mut Criterion<M>, prefix: &str) {
    let req = request();
    let a = TranslateOptions::new("anthropic", "claude-sonnet-4-5");
    let g = TranslateOptions::new("google-ai-studio", "gemini-2.5-flash");
    c.bench_function(&format!("{prefix}/translate_20msg_5tools/anthropic"), |b| {
        b.iter(|| build_request(Dialect::Anthropic, black_box(&req), &a).unwrap());
    });
    c.bench_function(&format!("{prefix}/translate_20msg_5tools/gemini"), |b| {
        b.iter(|| build_request(Dialect::Gemini, black_box(&req), &g).unwrap());
    });
    let (m, r) = surface_requests();
    c.bench_function(
        &format!("{prefix}/translate_21msg_5tools/messages_to_anthropic"),
        |b| {
            b.iter(|| {
                let chat =
                    ChatRequest::from_value(&messages::to_chat(black_box(&m)).unwrap()).unwrap();
                build_request(Dialect::Anthropic, &chat, &a).unwrap()
            });
        },
    );
    c.bench_function(
        &format!("{prefix}/translate_21msg_5tools/responses_to_anthropic"),
        |b| {
            b.iter(|| {
                let chat =
                    ChatRequest::from_value(&responses::to_chat(black_box(&r)).unwrap()).unwrap();
                build_request(Dialect::Anthropic, &chat, &a).unwrap()
            });
        },
    );
}

fn stream<M: Measurement + 'static>(c: &mut Criterion<M>, prefix: &str) {
    let body = anthropic_sse(1 << 20);
    let mut group = c.benchmark_group(format!("{prefix}/anthropic_sse"));
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("to_openai_chunks", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
            let mut n = 0usize;
            let mut out = Vec::new();
            for piece in body.chunks(4096) {
                t.push_into(piece, &mut out);
                n += out.len();
                out.clear();
            }
            n += t.finish().len();
            black_box(n)
        });
    });
    group.bench_function("to_openai_sse_bytes", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
            let mut n = 0usize;
            let mut out = Vec::new();
            for piece in body.chunks(4096) {
                t.push_sse_into(piece, &mut out);
                n += out.len();
                out.clear();
            }
            t.finish_sse_into(&mut out);
            n += out.len();
            black_box(n)
        });
    });
    group.bench_function("to_messages_events_sse", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
            let mut m = MessagesStream::new();
            let (mut chunks, mut out) = (Vec::new(), Vec::new());
            for piece in body.chunks(4096) {
                t.push_into(piece, &mut chunks);
                for c in chunks.drain(..) {
                    for e in m.push(&c) {
                        e.write_sse(&mut out);
                    }
                }
            }
            for c in t.finish() {
                out.extend(Event::sse(&m.push(&c)));
            }
            out.extend(Event::sse(&m.finish()));
            black_box(out.len())
        });
    });
    group.bench_function("to_responses_events_sse", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(Dialect::Anthropic, ResponseContext::default());
            let mut r = ResponsesStream::new(Value::Null);
            let (mut chunks, mut out) = (Vec::new(), Vec::new());
            for piece in body.chunks(4096) {
                t.push_into(piece, &mut chunks);
                for c in chunks.drain(..) {
                    for e in r.push(&c) {
                        e.write_sse(&mut out);
                    }
                }
            }
            for c in t.finish() {
                out.extend(Event::sse(&r.push(&c)));
            }
            out.extend(Event::sse(&r.finish()));
            black_box(out.len())
        });
    });
    group.bench_function("sse_parse_only", |b| {
        b.iter(|| {
            let mut p = SseParser::new();
            let mut out = Vec::new();
            let mut n = 0usize;
            for piece in body.chunks(4096) {
                p.push_into(piece, &mut out);
                n += out.len();
                out.clear();
            }
            black_box(n)
        });
    });
    group.finish();
}

fn wall(c: &mut Criterion<WallTime>) {
    translate(c, "wall");
    stream(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    translate(c, "cpu");
    stream(c, "cpu");
}

criterion_group!(wall_benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = cpu
}
criterion_main!(wall_benches, cpu_benches);
