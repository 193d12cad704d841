//! End to end through each provider dialect (OpenAI, Anthropic, Gemini) against the loopback mock: text,
//! streaming, tools, JSON schema and images, checking both what reached the provider and what came back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use polyroute::RequestContext;
use serde_json::{json, Value};

const DIALECTS: &[(&str, &str)] = &[("oai", "openai"), ("anth", "anthropic"), ("gem", "gemini")];

async fn setup() -> (polyroute_mock::MockServer, polyroute::Router) {
    let m = replay_mock().await;
    let r = rich_router(
        &[
            Rich("oai", "openai", base(&m, "openai"), &["structured_outputs"]),
            Rich(
                "anth",
                "anthropic",
                base(&m, "anthropic"),
                &["structured_outputs"],
            ),
            Rich("gem", "gemini", base(&m, "gemini"), &["structured_outputs"]),
        ],
        &[],
    );
    (m, r)
}

fn last_body(m: &polyroute_mock::MockServer) -> Value {
    m.received().last().unwrap().body.clone()
}

fn tools_req(provider: &str, text: &str) -> Value {
    let mut v = rich_req(provider, json!(text));
    v["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]);
    v
}

fn schema_req(provider: &str, text: &str) -> Value {
    let mut v = rich_req(provider, json!(text));
    v["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
        "schema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
                   "additionalProperties": false}}});
    v
}

fn streamed(mut v: Value) -> Value {
    v["stream"] = json!(true);
    v
}

/// The stream contract: role first, every chunk of one generation, one usage chunk with `choices: []` and cost
/// last, exactly one finish reason.
fn check_stream_shape(chunks: &[Value], provider_name: &str) -> String {
    assert!(chunks.len() >= 3, "{chunks:?}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("gen-"));
    assert!(chunks
        .iter()
        .all(|c| c["id"] == id && c["provider"] == provider_name));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{last}");
    assert!(last["usage"]["cost"].as_f64().unwrap() > 0.0, "{last}");
    let usage_chunks = chunks.iter().filter(|c| c.get("usage").is_some()).count();
    assert_eq!(usage_chunks, 1, "one usage chunk: {chunks:?}");
    let finishes: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finishes.len(), 1, "{chunks:?}");
    finishes[0].to_string()
}

#[tokio::test]
async fn text_through_each_dialect() {
    let (m, r) = setup().await;
    for (slug, dialect) in DIALECTS {
        let ctx = RequestContext {
            metadata: true,
            ..Default::default()
        };
        let text = format!("hello from {slug}");
        let v = r
            .chat_with(rich_req(slug, json!(text)), &ctx)
            .await
            .unwrap();
        assert_eq!(v["object"], "chat.completion", "{dialect}");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["message"]["content"], format!("m0: {text}"));
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{dialect}");
        let u = &v["usage"];
        let (p, c) = (
            u["prompt_tokens"].as_u64().unwrap(),
            u["completion_tokens"].as_u64().unwrap(),
        );
        assert!(p > 0 && c > 0, "{dialect}: {u}");
        let want = p as f64 * 1e-6 + c as f64 * 2e-6;
        assert!(
            (u["cost"].as_f64().unwrap() - want).abs() < 1e-12,
            "{dialect}: {u}"
        );
        let got = m.received().last().unwrap().clone();
        match *dialect {
            "openai" => {
                assert_eq!(got.path, "/v1/chat/completions");
                assert_eq!(
                    got.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
                assert_eq!(got.body["model"], "oai-upstream-model");
            }
            "anthropic" => {
                assert_eq!(got.path, "/v1/messages");
                assert_eq!(got.header("x-api-key"), Some(KEY));
                assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
                assert!(got.header("authorization").is_none());
                assert_eq!(got.body["max_tokens"], 200);
            }
            _ => {
                assert_eq!(
                    got.path,
                    "/v1beta/models/gem-upstream-model:generateContent"
                );
                assert_eq!(got.header("x-goog-api-key"), Some(KEY));
                assert!(got.header("authorization").is_none());
                assert_eq!(got.body["generationConfig"]["maxOutputTokens"], 200);
            }
        }
        assert!(
            got.body.get("provider").is_none(),
            "routing fields never go upstream"
        );
        let rec = r.generation(v["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(rec["provider"], *slug);
        assert_eq!(v["openrouter_metadata"]["dropped_params"], json!([]));
    }
}

#[tokio::test]
async fn streaming_through_each_dialect() {
    let (m, r) = setup().await;
    for (slug, dialect) in DIALECTS {
        let text = format!("stream through {dialect} please");
        let chunks = collect_ok(r.chat_stream(streamed(rich_req(slug, json!(text))))).await;
        let finish = check_stream_shape(&chunks, &format!("{} Cloud", slug.to_uppercase()));
        assert_eq!(finish, "stop", "{dialect}");
        assert_eq!(stream_text(&chunks), format!("m0: {text}"), "{dialect}");
        let got = m.received().last().unwrap().clone();
        match *dialect {
            "openai" => assert_eq!(got.body["stream_options"]["include_usage"], true),
            "anthropic" => assert_eq!(got.body["stream"], true),
            _ => assert_eq!(
                got.path,
                "/v1beta/models/gem-upstream-model:streamGenerateContent"
            ),
        }
        let id = chunks[0]["id"].as_str().unwrap();
        let rec = r.generation(id).await.unwrap();
        assert_eq!(rec["streamed"], true);
        assert_eq!(rec["finish_reason"], "stop");
        let last = chunks.last().unwrap();
        assert_eq!(
            rec["usage"]["completion_tokens"],
            last["usage"]["completion_tokens"]
        );
    }
}

fn check_tool_call(call: &Value, text: &str) {
    assert!(call["id"].as_str().is_some_and(|s| !s.is_empty()), "{call}");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"query": text}));
}

#[tokio::test]
async fn tools_through_each_dialect() {
    let (m, r) = setup().await;
    for (slug, dialect) in DIALECTS {
        let text = format!("weather via {dialect}");
        let v = r.chat(tools_req(slug, &text)).await.unwrap();
        let msg = &v["choices"][0]["message"];
        assert_eq!(
            v["choices"][0]["finish_reason"], "tool_calls",
            "{dialect}: {v}"
        );
        assert_eq!(
            msg["tool_calls"].as_array().unwrap().len(),
            1,
            "{dialect}: {v}"
        );
        check_tool_call(&msg["tool_calls"][0], &text);
        let body = last_body(&m);
        match *dialect {
            "openai" => assert_eq!(body["tools"][0]["function"]["name"], "get_weather"),
            "anthropic" => {
                assert_eq!(body["tools"][0]["name"], "get_weather");
                assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
            }
            _ => assert_eq!(
                body["tools"][0]["functionDeclarations"][0]["name"],
                "get_weather"
            ),
        }

        // Streamed: one tool call at index 0, id/type/name in its first fragment, arguments after.
        let chunks = collect_ok(r.chat_stream(streamed(tools_req(slug, &text)))).await;
        let finish = check_stream_shape(&chunks, &format!("{} Cloud", slug.to_uppercase()));
        assert_eq!(finish, "tool_calls", "{dialect}");
        let frags: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
            .flatten()
            .collect();
        assert!(!frags.is_empty(), "{dialect}: {chunks:?}");
        assert!(
            frags.iter().all(|f| f["index"] == 0),
            "{dialect}: {frags:?}"
        );
        let first = frags[0];
        let args: String = frags
            .iter()
            .filter_map(|f| f["function"]["arguments"].as_str())
            .collect();
        let mut whole = first.clone();
        whole["function"]["arguments"] = json!(args);
        check_tool_call(&whole, &text);
        assert!(
            frags[1..].iter().all(|f| f.get("id").is_none()),
            "{dialect}: only the first fragment names the call: {frags:?}"
        );
    }
}

/// The mock answers a JSON request with `{"answer": …}`; the Anthropic fallback's forced tool is called with the
/// mock's tool arguments `{"query": …}`, which must come back as the message content.
fn check_json_answer(slug: &str, content: &str, text: &str) {
    let v: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content:?}"));
    let want = if slug == "anthtool" {
        json!({"query": text})
    } else {
        json!({"answer": format!("m0: {text}")})
    };
    assert_eq!(v, want, "{slug}");
}

#[tokio::test]
async fn json_schema_through_each_dialect() {
    let (m, main) = setup().await;
    // An Anthropic endpoint without native structured output, alone (selection prefers endpoints that have it).
    let fallback = rich_router(
        &[Rich("anthtool", "anthropic", base(&m, "anthropic"), &[])],
        &[],
    );
    for slug in ["oai", "anth", "anthtool", "gem"] {
        let r = if slug == "anthtool" { &fallback } else { &main };
        let text = format!("json from {slug}");
        let v = r.chat(schema_req(slug, &text)).await.unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{slug}: {v}");
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        check_json_answer(slug, content, &text);
        let body = last_body(&m);
        match slug {
            "oai" => assert_eq!(body["response_format"]["type"], "json_schema"),
            "anth" => {
                assert_eq!(
                    body["output_config"]["format"]["type"], "json_schema",
                    "{body}"
                );
                assert!(body.get("tools").is_none());
            }
            "anthtool" => {
                // No native structured output on this endpoint: a forced tool carries the schema, and its input
                // comes back as the message content.
                let tool = body["tool_choice"]["name"].as_str().unwrap();
                assert_eq!(body["tools"][0]["name"], tool, "{body}");
                assert!(v["choices"][0]["message"]
                    .get("tool_calls")
                    .is_none_or(Value::is_null));
            }
            _ => {
                assert_eq!(
                    body["generationConfig"]["responseMimeType"],
                    "application/json"
                );
                assert!(
                    body["generationConfig"].get("responseSchema").is_some()
                        || body["generationConfig"].get("responseJsonSchema").is_some(),
                    "{body}"
                );
            }
        }
        let chunks = collect_ok(r.chat_stream(streamed(schema_req(slug, &text)))).await;
        let finish = check_stream_shape(&chunks, &format!("{} Cloud", slug.to_uppercase()));
        assert_eq!(finish, "stop", "{slug}");
        check_json_answer(slug, &stream_text(&chunks), &text);
    }
}

#[tokio::test]
async fn images_are_translated_per_dialect() {
    let (m, r) = setup().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let content = json!([{"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]);
    for (slug, dialect) in DIALECTS {
        let v = r.chat(rich_req(slug, content.clone())).await.unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"], "m0: what is this",
            "{dialect}"
        );
        let body = last_body(&m);
        match *dialect {
            "openai" => {
                let part = &body["messages"][0]["content"][1];
                assert_eq!(part["type"], "image_url");
                assert!(part["image_url"]["url"].as_str().unwrap().ends_with(png));
            }
            "anthropic" => {
                let part = &body["messages"][0]["content"][1];
                assert_eq!(part["type"], "image", "{body}");
                assert_eq!(part["source"]["type"], "base64");
                assert_eq!(part["source"]["media_type"], "image/png");
                assert_eq!(part["source"]["data"], png);
            }
            _ => {
                let part = &body["contents"][0]["parts"][1];
                assert_eq!(part["inlineData"]["mimeType"], "image/png", "{body}");
                assert_eq!(part["inlineData"]["data"], png);
            }
        }
    }
}

/// A catalog of Claude-like models on one Anthropic provider (`anth`) and one Vertex provider (`vtx`):
/// `test/claude-new` takes effort levels and lists no sampling parameter (as `claude-opus-4.7` does);
/// `test/claude-old` takes a thinking budget and lists `temperature`.
fn claude_catalog(m: &polyroute_mock::MockServer) -> String {
    let endpoint = |provider: &str, params: &[&str], dialect: Option<&str>| {
        let mut e = json!({"provider": provider, "provider_name": provider, "tag": provider,
            "provider_model_id": "claude-x", "context_length": 200_000, "max_completion_tokens": 8192,
            "pricing": {"prompt": "0.000005", "completion": "0.000025"}, "supported_parameters": params});
        if let Some(d) = dialect {
            e["dialect"] = json!(d);
        }
        e
    };
    let model = |id: &str, efforts: bool, params: &[&str]| {
        let mut m = json!({"id": id, "name": id, "created": 1_700_000_000, "context_length": 200_000,
            "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                             "tokenizer": "Claude"},
            "pricing": {"prompt": "0.000005", "completion": "0.000025"},
            "supported_parameters": params,
            "endpoints": [endpoint("anth", params, None), endpoint("vtx", params, Some("anthropic-vertex"))]});
        if efforts {
            m["reasoning"] =
                json!({"supported_efforts": ["max", "xhigh", "high", "medium", "low"]});
        }
        m
    };
    let new_params = ["max_tokens", "reasoning", "tools", "stream"];
    let old_params = [
        "max_tokens",
        "reasoning",
        "tools",
        "stream",
        "temperature",
        "top_p",
        "top_k",
    ];
    json!({"version": 1,
        "providers": [
            {"slug": "anth", "name": "Anth", "dialect": "anthropic", "base_url": m.url()},
            {"slug": "vtx", "name": "Vtx", "dialect": "gemini-vertex",
             "base_url": format!("{}/v1/projects/p/locations/global", m.url())}],
        "models": [model("test/claude-new", true, &new_params), model("test/claude-old", false, &old_params)]})
    .to_string()
}

fn claude_req(model: &str, provider: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "think"}], "max_tokens": 4000,
           "temperature": 0.5, "reasoning": {"effort": "high"},
           "provider": {"order": [provider], "allow_fallbacks": false}})
}

fn claude_router(m: &polyroute_mock::MockServer) -> polyroute::Router {
    polyroute::Router::builder()
        .catalog_json(claude_catalog(m))
        .options(polyroute::Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            ..polyroute::Options::default()
        })
        .provider("anth", polyroute::ProviderSettings::with_key(KEY))
        .provider("vtx", polyroute::ProviderSettings::with_key(KEY))
        .build()
        .unwrap()
}

#[tokio::test]
async fn catalog_facts_set_thinking_and_sampling_for_the_engine() {
    let m = polyroute_mock::MockServer::start().await.unwrap();
    let r = claude_router(&m);

    // A model that rejects budget thinking and lists no sampling parameter: adaptive thinking, temperature dropped.
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let v = r
        .chat_with(claude_req("test/claude-new", "anth"), &ctx)
        .await
        .unwrap();
    let got = m.received().last().unwrap().body.clone();
    assert_eq!(got["thinking"]["type"], "adaptive", "{got}");
    assert!(got["thinking"].get("budget_tokens").is_none(), "{got}");
    assert_eq!(got["output_config"]["effort"], "high", "{got}");
    assert!(got.get("temperature").is_none(), "{got}");
    let dropped = v
        .pointer("/openrouter_metadata/dropped_params")
        .cloned()
        .unwrap_or_default();
    assert!(
        dropped
            .as_array()
            .is_some_and(|d| d.contains(&json!("temperature"))),
        "temperature is reported as dropped: {v}"
    );

    // A model with a thinking budget that lists temperature: budget thinking (temperature 1 is all thinking
    // allows, so the request's 0.5 is dropped by the dialect's own rule, not by the catalog).
    r.chat(claude_req("test/claude-old", "anth")).await.unwrap();
    let got = m.received().last().unwrap().body.clone();
    assert_eq!(got["thinking"]["type"], "enabled", "{got}");
    assert!(
        got["thinking"]["budget_tokens"].as_u64().unwrap() > 0,
        "{got}"
    );
    let mut plain = claude_req("test/claude-old", "anth");
    plain.as_object_mut().unwrap().remove("reasoning");
    r.chat(plain).await.unwrap();
    let got = m.received().last().unwrap().body.clone();
    assert_eq!(
        got["temperature"], 0.5,
        "a model that lists temperature gets it: {got}"
    );
}

/// What one captured request looked like: path, lowercase headers, JSON body.
type Captured = (String, Vec<(String, String)>, Value);

/// A one-request HTTP capture on 127.0.0.1 (the loopback mock has no Vertex routes): answers `reply` as JSON and
/// hands back the request it got.
async fn capture_once(reply: Value) -> (String, tokio::task::JoinHandle<Captured>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the request head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed before the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Value = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
        let out = reply.to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}",
            out.len()
        );
        s.write_all(resp.as_bytes()).await.unwrap();
        s.shutdown().await.ok();
        (path, headers, body)
    });
    (url, task)
}

#[tokio::test]
async fn claude_on_vertex_is_sent_the_anthropic_vertex_form() {
    let m = polyroute_mock::MockServer::start().await.unwrap();
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "from vertex"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 7, "output_tokens": 3}});
    let (vertex, captured) = capture_once(answer).await;
    let catalog = claude_catalog(&m).replace(
        &format!("{}/v1/projects/p/locations/global", m.url()),
        &format!("{vertex}/v1/projects/p/locations/global"),
    );
    let r = polyroute::Router::builder()
        .catalog_json(catalog)
        .options(polyroute::Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            ..polyroute::Options::default()
        })
        .provider("anth", polyroute::ProviderSettings::with_key(KEY))
        .provider("vtx", polyroute::ProviderSettings::with_key(KEY))
        .build()
        .unwrap();
    let v = r.chat(claude_req("test/claude-new", "vtx")).await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from vertex");
    assert_eq!(v["provider"], "vtx");
    let (path, headers, body) = captured.await.unwrap();
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        path,
        "/v1/projects/p/locations/global/publishers/anthropic/models/claude-x:rawPredict"
    );
    assert_eq!(
        header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(header("x-api-key").is_none());
    assert!(header("anthropic-version").is_none());
    assert!(body.get("model").is_none(), "{body}");
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(
        body.get("contents").is_none(),
        "never a Gemini body: {body}"
    );
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["thinking"]["type"], "adaptive");
    assert_eq!(m.calls(), 0, "nothing went to the Anthropic provider");
}
