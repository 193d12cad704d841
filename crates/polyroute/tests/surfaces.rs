//! The Messages and Responses surfaces through the one lifecycle, against loopback mocks: unary and streamed
//! answers, tools across two turns, structured output, `models` fallback past a failing provider, a stream cut
//! after content (billed, no failover) and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures::StreamExt;
use polyroute::{Error, RequestContext, Router};
use serde_json::{json, Value};

fn two(m: &[polyroute_mock::MockServer]) -> Router {
    builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "anthropic", base(&m[1], "anthropic")),
    ])
    .build()
    .unwrap()
}

fn mreq(order: &[&str], text: &str) -> Value {
    json!({"model": "test/model", "max_tokens": 100, "system": "Be brief.",
           "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
           "provider": {"order": order, "allow_fallbacks": false}})
}

async fn events(s: polyroute::SurfaceStream) -> Vec<(String, Value)> {
    s.map(|e| {
        let e = e.unwrap();
        (e.name.to_string(), e.data)
    })
    .collect()
    .await
}

fn names(ev: &[(String, Value)]) -> Vec<&str> {
    ev.iter().map(|(n, _)| n.as_str()).collect()
}

fn text_deltas(ev: &[(String, Value)], name: &str, key: &str) -> String {
    ev.iter()
        .filter(|(n, d)| n == name && (key != "text" || d["delta"]["type"] == "text_delta"))
        .filter_map(|(_, d)| d["delta"].get(key).or_else(|| d.get(key)))
        .filter_map(Value::as_str)
        .collect()
}

#[tokio::test]
async fn messages_answer_from_openai_and_anthropic_endpoints_billed_and_recorded() {
    let m = mocks(2).await;
    let r = two(&m);
    for (slug, label) in [("alpha", "m0"), ("beta", "m1")] {
        let v = r
            .messages(mreq(&[slug], "hello there"), &RequestContext::default())
            .await
            .unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["content"][0]["text"], format!("{label}: hello there"));
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
        assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);
        let rec = r.generation(v["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(rec["provider"], slug);
    }
    // The OpenAI endpoint got a chat request; the Anthropic one a Messages body with the system prompt on top.
    let o = &m[0].received()[0].body;
    assert_eq!(
        o["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    let a = &m[1].received()[0];
    assert_eq!(a.path, "/v1/messages");
    assert_eq!(a.body["system"][0]["text"], "Be brief.");
    assert_eq!(a.body["messages"][0]["content"], "hello there");
}

#[tokio::test]
async fn messages_stream_gives_anthropic_events_with_billed_usage() {
    let m = mocks(2).await;
    let r = two(&m);
    for slug in ["alpha", "beta"] {
        let mut body = mreq(&[slug], "one two three");
        body["stream"] = json!(true);
        let ev = events(r.messages_stream(body, RequestContext::default()).unwrap()).await;
        let n = names(&ev);
        assert_eq!(
            &n[..3],
            ["message_start", "ping", "content_block_start"],
            "{slug}"
        );
        assert_eq!(
            &n[n.len() - 3..],
            ["content_block_stop", "message_delta", "message_stop"]
        );
        assert!(text_deltas(&ev, "content_block_delta", "text").ends_with("one two three"));
        let delta = &ev[ev.len() - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert!(delta["usage"]["cost"].as_f64().unwrap() > 0.0, "{delta}");
        let id = ev[0].1["message"]["id"].as_str().unwrap();
        let rec = r.generation(id).await.unwrap();
        assert_eq!(rec["streamed"], true);
    }
}

#[tokio::test]
async fn messages_tools_across_two_turns_on_both_dialects() {
    let m = mocks(2).await;
    let r = two(&m);
    let tools = json!([{"name": "lookup", "description": "Look it up",
                        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]);
    for (i, slug) in ["alpha", "beta"].into_iter().enumerate() {
        let mut body = mreq(&[slug], "find cats");
        body["tools"] = tools.clone();
        let first = r
            .messages(body.clone(), &RequestContext::default())
            .await
            .unwrap();
        assert_eq!(first["stop_reason"], "tool_use", "{slug}: {first}");
        let call = first["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .unwrap()
            .clone();
        assert_eq!(call["name"], "lookup");
        assert_eq!(call["input"]["query"], "find cats");
        // Turn two: the call and its result go back; the model answers in text.
        body["messages"] = json!([
            body["messages"][0],
            {"role": "assistant", "content": [call.clone()]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call["id"], "content": "cats are mammals"},
                {"type": "text", "text": "summarize"}]}]);
        body["tool_choice"] = json!({"type": "none"});
        let second = r.messages(body, &RequestContext::default()).await.unwrap();
        assert_eq!(second["stop_reason"], "end_turn", "{second}");
        assert!(second["content"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("summarize"));
        let got = &m[i].received()[1].body;
        if slug == "alpha" {
            assert_eq!(got["messages"][2]["tool_calls"][0]["id"], call["id"]);
            assert_eq!(
                got["messages"][3],
                json!({"role": "tool", "tool_call_id": call["id"], "content": "cats are mammals"})
            );
        } else {
            assert_eq!(got["messages"][1]["content"][0]["type"], "tool_use");
            assert_eq!(
                got["messages"][2]["content"][0],
                json!({"type": "tool_result", "tool_use_id": call["id"], "content": "cats are mammals"})
            );
        }
    }
}

#[tokio::test]
async fn responses_structured_output_and_tools_across_two_turns() {
    let m = mocks(2).await;
    let r = two(&m);
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    for slug in ["alpha", "beta"] {
        let body = json!({"model": "test/model", "input": "capital of France?", "instructions": "Answer in JSON.",
            "text": {"format": {"type": "json_schema", "name": "a", "schema": schema}},
            "provider": {"order": [slug], "allow_fallbacks": false}});
        let v = r.responses(body, &RequestContext::default()).await.unwrap();
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        let text = v["output"][0]["content"][0]["text"].as_str().unwrap();
        let parsed: Value = serde_json::from_str(text).unwrap();
        // The mock answers a JSON request with one field holding its reply (`answer`, or `query` when the
        // schema travels as Anthropic's forced tool).
        let reply = parsed
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert!(reply.ends_with("capital of France?"), "{slug}: {text}");
        assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);
        assert!(r.generation(v["id"].as_str().unwrap()).await.is_some());

        let tools = json!([{"type": "function", "name": "lookup", "parameters": {"type": "object",
            "properties": {"query": {"type": "string"}}}}]);
        let first = r
            .responses(
                json!({"model": "test/model", "input": "find dogs", "tools": tools,
            "provider": {"order": [slug], "allow_fallbacks": false}}),
                &RequestContext::default(),
            )
            .await
            .unwrap();
        let call = first["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap()
            .clone();
        assert_eq!(call["name"], "lookup");
        let second = r.responses(json!({"model": "test/model", "tools": tools, "tool_choice": "none",
            "input": [{"role": "user", "content": "find dogs"}, call,
                      {"type": "function_call_output", "call_id": call["call_id"], "output": "dogs bark"},
                      {"role": "user", "content": "and then?"}],
            "provider": {"order": [slug], "allow_fallbacks": false}}), &RequestContext::default()).await.unwrap();
        assert_eq!(second["output"][0]["type"], "message", "{second}");
        assert!(second["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("and then?"));
    }
}

#[tokio::test]
async fn responses_stream_with_a_tool_call_ends_completed_with_cost() {
    let m = mocks(2).await;
    let r = two(&m);
    for slug in ["alpha", "beta"] {
        let body = json!({"model": "test/model", "input": "find owls", "stream": true,
            "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
            "provider": {"order": [slug], "allow_fallbacks": false}});
        let ev = events(r.responses_stream(body, RequestContext::default()).unwrap()).await;
        let n = names(&ev);
        assert_eq!(
            &n[..3],
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added"
            ]
        );
        assert_eq!(*n.last().unwrap(), "response.completed", "{slug}: {n:?}");
        let args: String = ev
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"query": "find owls"})
        );
        let done = &ev.last().unwrap().1["response"];
        assert_eq!(done["output"][0]["arguments"], args);
        assert!(done["usage"]["cost"].as_f64().unwrap() > 0.0);
        let text = ev
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .count();
        assert_eq!(text, 0);
    }
    let ev = events(
        r.responses_stream(
            json!({"model": "test/model", "input": "plain words", "stream": true,
        "provider": {"order": ["beta"]}}),
            RequestContext::default(),
        )
        .unwrap(),
    )
    .await;
    let text: String = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "m1: plain words");
}

#[tokio::test]
async fn models_fallback_past_a_failing_first_provider() {
    let m = mocks(2).await;
    let r = two(&m);
    // test/free:free is served by alpha only, which fails; test/model then comes from beta.
    m[0].script(["503"]).unwrap();
    let body = json!({"models": ["test/free:free", "test/model"], "max_tokens": 50,
        "messages": [{"role": "user", "content": "fall back"}], "provider": {"order": ["beta", "alpha"]}});
    let v = r.messages(body, &RequestContext::default()).await.unwrap();
    assert_eq!(v["model"], "test/model");
    assert_eq!(v["content"][0]["text"], "m1: fall back");
    assert_eq!(m[0].calls(), 1);
    m[0].script(["503"]).unwrap();
    let v = r
        .responses(
            json!({"models": ["test/free:free", "test/model"], "input": "again",
        "provider": {"order": ["beta", "alpha"]}}),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(v["model"], "test/model");
    assert_eq!(v["output"][0]["content"][0]["text"], "m1: again");
}

#[tokio::test]
async fn a_stream_cut_after_content_is_billed_and_not_failed_over() {
    let m = mocks(2).await;
    let r = two(&m);
    for surface in ["messages", "responses"] {
        m[0].script(["cut"]).unwrap();
        let order = json!({"order": ["alpha", "beta"]});
        let ev = if surface == "messages" {
            let body = json!({"model": "test/model", "max_tokens": 100, "stream": true, "provider": order,
                "messages": [{"role": "user", "content": "one two three four five six"}]});
            events(r.messages_stream(body, RequestContext::default()).unwrap()).await
        } else {
            let body = json!({"model": "test/model", "stream": true, "provider": order,
                "input": "one two three four five six"});
            events(r.responses_stream(body, RequestContext::default()).unwrap()).await
        };
        let n = names(&ev);
        assert!(n.contains(&"error"), "{surface}: {n:?}");
        let id = if surface == "messages" {
            assert_eq!(*n.last().unwrap(), "error");
            ev[0].1["message"]["id"].as_str().unwrap().to_string()
        } else {
            assert_eq!(*n.last().unwrap(), "response.failed");
            ev[0].1["response"]["id"].as_str().unwrap().to_string()
        };
        assert_eq!(m[1].calls(), 0, "no failover after content");
        let rec = r.generation(&id).await.unwrap();
        assert_eq!(rec["finish_reason"], "error");
        assert!(
            rec["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
            "{rec}"
        );
    }
}

#[tokio::test]
async fn errors_name_the_field_or_come_before_content() {
    let m = mocks(2).await;
    let r = two(&m);
    let ctx = RequestContext::default();
    let e = r
        .messages(
            json!({"model": "test/model", "messages": [{"role": "user", "content": "x"}]}),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidRequest { field, .. } if field == "max_tokens"),
        "{e}"
    );
    let e = r
        .responses(
            json!({"model": "test/model", "input": "x", "previous_response_id": "resp_1"}),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("stateless"), "{e}");
    assert!(r
        .messages_stream(json!({"model": "test/model"}), RequestContext::default())
        .is_err());
    let e = r.messages(json!({"model": "acme/nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}), &ctx)
        .await.unwrap_err();
    assert_eq!(e.code(), "model_not_found");
    // Every provider fails before content: the stream's only item is the error.
    m[0].set_fault(Some("500")).unwrap();
    m[1].set_fault(Some("500")).unwrap();
    let mut s = r
        .responses_stream(
            json!({"model": "test/model", "input": "x", "stream": true}),
            RequestContext::default(),
        )
        .unwrap();
    let first = s.next().await.unwrap();
    assert!(first.is_err());
    assert!(s.next().await.is_none());
    m[0].set_fault(None).unwrap();
    m[1].set_fault(None).unwrap();
}
