//! Synthetic tool-call and JSON answers of the mock, in each dialect's native shape (loopback only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use polyroute_mock::MockServer;
use serde_json::{json, Value};

async fn post(s: &MockServer, path: &str, body: &Value) -> (String, Value) {
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(format!("{}{path}", s.url()))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    if ctype.contains("event-stream") {
        let text = r.text().await.unwrap();
        let datas: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect();
        (ctype, Value::Array(datas))
    } else {
        (ctype, r.json().await.unwrap())
    }
}

#[tokio::test]
async fn tool_calls_in_each_dialect() {
    let s = MockServer::labeled("t").await.unwrap();
    let args = json!({"query": "weather?"});
    // OpenAI: whole, then streamed by index with id and name first.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]});
    let (_, v) = post(&s, "/v1/chat/completions", &body).await;
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let got: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(got, args);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let (_, chunks) = post(&s, "/v1/chat/completions", &sb).await;
    let frags: Vec<&Value> = chunks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(frags[0]["function"]["name"], "get_weather");
    let joined: String = frags
        .iter()
        .filter_map(|f| f["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), args);

    // Anthropic: a tool_use block; a forced tool_choice wins over the first tool.
    let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"name": "first", "input_schema": {"type": "object"}}, {"name": "forced", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "forced"}});
    let (_, v) = post(&s, "/v1/messages", &body).await;
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["name"], "forced");
    assert_eq!(v["content"][0]["input"], args);
    assert_eq!(v["stop_reason"], "tool_use");
    let mut sb = body.clone();
    sb["stream"] = json!(true);
    let (_, events) = post(&s, "/v1/messages", &sb).await;
    let partial: String = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), args);

    // Gemini: a functionCall part.
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]});
    let (_, v) = post(&s, "/v1beta/models/g:generateContent", &body).await;
    let part = &v["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(part["name"], "get_weather");
    assert_eq!(part["args"], args);

    // Gemini with `functionCallingConfig.mode = "NONE"`: text, no functionCall (as tool_choice "none" elsewhere).
    let mut none = body.clone();
    none["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    let (_, v) = post(&s, "/v1beta/models/g:generateContent", &none).await;
    let part = &v["candidates"][0]["content"]["parts"][0];
    assert!(part.get("functionCall").is_none(), "{v}");
    assert!(part["text"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
}

#[tokio::test]
async fn json_answers_in_each_dialect() {
    let s = MockServer::labeled("j").await.unwrap();
    let want = json!({"answer": "j: give json"});
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "give json"}],
        "response_format": {"type": "json_object"}});
    let (_, v) = post(&s, "/v1/chat/completions", &body).await;
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), want);
    let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "give json"}],
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}});
    let (_, v) = post(&s, "/v1/messages", &body).await;
    let text = v["content"][0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), want);
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "give json"}]}],
        "generationConfig": {"responseMimeType": "application/json"}});
    let (_, v) = post(&s, "/v1beta/models/g:generateContent", &body).await;
    let text = v["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), want);
}
