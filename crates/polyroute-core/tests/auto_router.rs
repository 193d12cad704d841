//! Tests of the model-choosing routers: classification accuracy on the labelled set, tiers, globs, capability
//! filters, context fit, the pareto frontier, the free picker, stickiness, settings, and the conformance cases of
//! `tests/conformance/auto/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::collections::BTreeMap;
use std::path::Path;

use polyroute_core::auto::{
    self, apply_stickiness, classify, frontier_price, pick_free, supports_request, AutoIndex,
    PriceSource, TaskType,
};
use polyroute_core::catalog::Model;
use polyroute_core::types::ChatRequest;
use polyroute_core::{Catalog, Error};
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../../../tests/fixtures/auto-catalog.json");
const LABELLED: &str = include_str!("../../../tests/auto/labelled.jsonl");

fn catalog() -> Catalog {
    Catalog::from_json(FIXTURE).unwrap()
}

fn index() -> AutoIndex {
    AutoIndex::new(&catalog())
}

fn any(_: &Model) -> bool {
    true
}

fn req(v: Value) -> ChatRequest {
    let mut v = v;
    if v.get("model").is_none() {
        v["model"] = json!("openrouter/auto");
    }
    ChatRequest::from_value(&v).unwrap()
}

fn user(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

fn with_plugin(mut v: Value, plugin: Value) -> Value {
    v["plugins"] = json!([plugin]);
    v
}

fn auto_models(v: Value) -> Vec<String> {
    index()
        .route("openrouter/auto", &req(v), &any, 0, None)
        .unwrap()
        .models
}

#[test]
fn labelled_set_accuracy_is_at_least_90_percent() {
    let mut total = 0usize;
    let mut right = 0usize;
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in LABELLED.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).unwrap();
        let want = row["task_type"].as_str().unwrap();
        assert!(TaskType::parse(want).is_some(), "unknown label {want}");
        let got = classify(&ChatRequest::from_value(&row["request"]).unwrap());
        total += 1;
        let e = per.entry(want.to_string()).or_default();
        e.1 += 1;
        if got.as_str() == want {
            right += 1;
            e.0 += 1;
        } else {
            println!(
                "miss: want {want}, got {got}: {}",
                row["request"]["messages"]
            );
        }
    }
    let acc = right as f64 / total as f64;
    for (k, (r, n)) in &per {
        println!("  {k:<15} {r}/{n}");
    }
    println!(
        "classification accuracy: {right}/{total} = {:.1}%",
        acc * 100.0
    );
    assert!(total >= 150);
    assert!(acc >= 0.90, "accuracy {acc}");
}

#[test]
fn classification_features_take_precedence() {
    let tools =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let mut v = user("summarize this please");
    v["tools"] = tools;
    assert_eq!(classify(&req(v)), TaskType::Agentic);
    let mut v = user("Write a python function");
    v["response_format"] = json!({"type": "json_object"});
    assert_eq!(classify(&req(v)), TaskType::Extraction);
    let v = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "translate the sign"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]});
    assert_eq!(classify(&req(v)), TaskType::Vision);
    assert_eq!(classify(&req(user("hello there"))), TaskType::Chat);
}

#[test]
fn cost_tiers_are_price_percentile_bands() {
    // 12 paid text candidates for a plain request; bands by blended price (see the fixture).
    let tier = |t: &str| {
        auto_models(with_plugin(
            user("hello"),
            json!({"id": "auto-router", "cost_tier": t}),
        ))
    };
    assert_eq!(tier("low"), ["cheap/small", "cheap/tiny", "plain/nobench"]);
    assert_eq!(
        tier("medium"),
        ["mid/coder", "mid/vision-lite", "cheap/small"]
    );
    assert_eq!(
        tier("high"),
        ["pro/agent", "mid/generalist", "plain/longctx"]
    );
    assert_eq!(tier("xhigh"), ["pro/thinker", "top/coder-max", "pro/agent"]);
    assert_eq!(tier("max"), ["top/opus", "top/ultra", "pro/thinker"]);
    // Default is low.
    assert_eq!(auto_models(user("hello")), tier("low"));
    // cost_tier wins over the deprecated trade-off; the trade-off alone maps 8..10 to max.
    let both = json!({"id": "auto-router", "cost_tier": "low", "cost_quality_tradeoff": 10});
    assert_eq!(auto_models(with_plugin(user("hello"), both)), tier("low"));
    let old = json!({"id": "auto-router", "cost_quality_tradeoff": 9});
    assert_eq!(auto_models(with_plugin(user("hello"), old)), tier("max"));
    // A band, not a ceiling: nothing in `max` comes from the low band.
    assert!(!tier("max").iter().any(|m| m.starts_with("cheap/")));
}

#[test]
fn task_type_changes_the_order_within_a_tier() {
    let coding = auto_models(with_plugin(
        user("Refactor this python function and add pytest unit tests"),
        json!({"id": "auto-router", "cost_tier": "xhigh"}),
    ));
    assert_eq!(coding[0], "top/coder-max");
    let chat = auto_models(with_plugin(
        user("hello"),
        json!({"id": "auto-router", "cost_tier": "xhigh"}),
    ));
    assert_eq!(chat[0], "pro/thinker");
}

#[test]
fn globs_allow_and_exclude() {
    let p =
        json!({"id": "auto-router", "allowed_models": ["top/*", "pro/agent"], "cost_tier": "low"});
    let got = auto_models(with_plugin(user("hello"), p));
    // Bands are computed over the allowed set: pro/agent is its cheapest fifth.
    assert_eq!(got[0], "pro/agent");
    assert!(got
        .iter()
        .all(|m| m.starts_with("top/") || m == "pro/agent"));
    let p = json!({"id": "auto-router", "excluded_models": ["cheap/*", "*/nobench"]});
    let got = auto_models(with_plugin(user("hello"), p));
    assert!(
        got.iter()
            .all(|m| !m.starts_with("cheap/") && m != "plain/nobench"),
        "{got:?}"
    );
    let p = json!({"id": "auto-router", "allowed_models": ["nobody/*"]});
    let err = index()
        .route(
            "openrouter/auto",
            &req(with_plugin(user("hi"), p)),
            &any,
            0,
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), "no_endpoints");
    assert_eq!(err.http_status(), 404);
    assert_eq!(err.to_string(), auto::NO_MATCH_MESSAGE);
}

#[test]
fn capability_filters() {
    let cat = catalog();
    let m = |id: &str| cat.model(id).unwrap().clone();
    let vision = req(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}));
    assert!(supports_request(&m("mid/vision-lite"), &vision));
    assert!(!supports_request(&m("cheap/small"), &vision));
    let tools = req(json!({"messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]}));
    assert!(supports_request(&m("cheap/tiny"), &tools));
    assert!(!supports_request(&m("mid/vision-lite"), &tools));
    let schema = req(json!({"messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}));
    assert!(supports_request(&m("cheap/small"), &schema));
    assert!(!supports_request(&m("cheap/tiny"), &schema));
    assert!(!supports_request(&m("img/painter"), &req(user("hi"))));
    for (r, ok) in [
        (&vision, "mid/vision-lite"),
        (&tools, "cheap/tiny"),
        (&schema, "cheap/small"),
    ] {
        let d = index().route("openrouter/auto", r, &any, 0, None).unwrap();
        assert!(
            d.models.iter().all(|id| supports_request(&m(id), r)),
            "{:?}",
            d.models
        );
        assert!(d.models.contains(&ok.to_string()), "{:?}", d.models);
    }
}

#[test]
fn context_fit() {
    // ~150k tokens of text: only models with a context of at least that size remain.
    let long = "word ".repeat(120_000);
    let d = index()
        .route("openrouter/auto", &req(user(&long)), &any, 0, None)
        .unwrap();
    let cat = catalog();
    for id in &d.models {
        assert!(
            cat.model(id).unwrap().context_length.unwrap() >= 150_000,
            "{id}"
        );
    }
    // A huge output limit rules out models whose output limit is smaller.
    let mut v = user("hello");
    v["max_tokens"] = json!(64_000);
    v["plugins"] = json!([{"id": "auto-router", "allowed_models": ["pro/agent", "mid/coder"]}]);
    assert_eq!(auto_models(v), ["mid/coder"]);
}

#[test]
fn eligible_predicate_is_applied() {
    let only_pro = |m: &Model| m.id.starts_with("pro/");
    let d = index()
        .route("openrouter/auto", &req(user("hello")), &only_pro, 0, None)
        .unwrap();
    assert_eq!(d.models, ["pro/agent", "pro/thinker"]);
    let none = |_: &Model| false;
    for r in auto::ROUTERS {
        let e = index()
            .route(r, &req(user("hello")), &none, 0, None)
            .unwrap_err();
        assert_eq!(e.code(), "no_endpoints", "{r}");
    }
}

#[test]
fn pareto_returns_only_frontier_models() {
    let idx = index();
    let facts = idx.facts();
    for score in [0.0, 0.2, 0.4, 0.5, 0.7, 0.9, 1.0] {
        for source in ["prompt", "weighted_avg"] {
            let p =
                json!({"id": "pareto-router", "min_coding_score": score, "price_source": source});
            let r = req(with_plugin(user("fix my code"), p));
            let d = idx
                .route("openrouter/pareto-code", &r, &any, 0, None)
                .unwrap();
            assert!(!d.models.is_empty() && d.models.len() <= 3);
            let ps = if source == "prompt" {
                PriceSource::Prompt
            } else {
                PriceSource::WeightedAvg
            };
            let cands: Vec<_> = facts
                .iter()
                .filter(|f| f.paid_candidate() && f.coding.is_some())
                .collect();
            for id in &d.models {
                let me = cands.iter().find(|f| &f.id == id).unwrap();
                let (s, pr) = (me.coding.unwrap(), frontier_price(me, ps));
                let dominated = cands.iter().any(|o| {
                    let (os, op) = (o.coding.unwrap(), frontier_price(o, ps));
                    os >= s && op <= pr && (os > s || op < pr)
                });
                assert!(!dominated, "{id} is dominated (score {score}, {source})");
            }
            // Cheapest first within the tier.
            let prices: Vec<f64> = d
                .models
                .iter()
                .map(|id| frontier_price(facts.iter().find(|f| &f.id == id).unwrap(), ps))
                .collect();
            assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
        }
    }
}

#[test]
fn pareto_tiers_and_budget() {
    let route = |plugin: Value| {
        let r = req(with_plugin(user("write code"), plugin));
        index().route("openrouter/pareto-code", &r, &any, 0, None)
    };
    // Coding normalized by the catalog maximum (78): frontier by input price is
    // tiny .19, small .45, coder .77, coder-max 1.0 (pro/agent .71 at $1 is dominated by mid/coder).
    let high = route(json!({"id": "pareto-router"})).unwrap();
    assert_eq!(high.models, ["mid/coder", "top/coder-max"]);
    assert_eq!(high.tier, Some("high"));
    let med = route(json!({"id": "pareto-router", "min_coding_score": 0.4})).unwrap();
    assert_eq!(med.models, ["cheap/small"]);
    let low = route(json!({"id": "pareto-router", "min_coding_score": 0.1})).unwrap();
    assert_eq!(low.models, ["cheap/tiny"]);
    let budget = route(json!({"id": "pareto-router", "max_price": 0.35})).unwrap();
    assert_eq!(budget.models, ["mid/coder", "cheap/small", "cheap/tiny"]);
    assert_eq!(budget.tier, None);
    let e = route(json!({"id": "pareto-router", "max_price": 0.01})).unwrap_err();
    assert_eq!(e.code(), "no_endpoints");
    // An empty tier steps to the neighbour: without the low model, `low` falls back to medium.
    let r = req(with_plugin(
        user("code"),
        json!({"id": "pareto-router", "min_coding_score": 0.0}),
    ));
    let no_tiny = |m: &Model| m.id != "cheap/tiny";
    let d = index()
        .route("openrouter/pareto-code", &r, &no_tiny, 0, None)
        .unwrap();
    assert_eq!(
        (d.models, d.tier),
        (vec!["cheap/small".to_string()], Some("medium"))
    );
}

#[test]
fn free_picker_is_uniform_and_seeded() {
    let cat = catalog();
    let r = req(user("hello"));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let n = 4000;
    for seed in 0..n {
        let picked = pick_free(&cat, &r, seed, &any).unwrap();
        assert!(picked.iter().all(|id| id.ends_with(":free")));
        *counts.entry(picked[0].clone()).or_default() += 1;
    }
    // Four free text models; the router row and the image model are never picked.
    assert_eq!(counts.len(), 4, "{counts:?}");
    let expected = n as f64 / 4.0;
    for (id, c) in &counts {
        assert!(
            (*c as f64 - expected).abs() < expected * 0.15,
            "{id}: {c} of {n}"
        );
    }
    assert_eq!(
        pick_free(&cat, &r, 7, &any).unwrap(),
        pick_free(&cat, &r, 7, &any).unwrap()
    );
    // Capability filter: tools leave only the free models with tools.
    let tools = req(json!({"messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]}));
    for seed in 0..50 {
        let p = pick_free(&cat, &tools, seed, &any).unwrap();
        assert!(
            p.iter()
                .all(|id| id == "cheap/small:free" || id == "free/tools:free"),
            "{p:?}"
        );
    }
}

#[test]
fn stickiness_keeps_a_top_candidate() {
    let ranked = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    assert_eq!(apply_stickiness(Some("c"), ranked.clone()), ["c", "a", "b"]);
    assert_eq!(apply_stickiness(Some("z"), ranked.clone()), ["a", "b", "c"]);
    assert_eq!(apply_stickiness(None, ranked), ["a", "b", "c"]);
    let idx = index();
    let d = idx
        .route(
            "openrouter/auto",
            &req(user("hello")),
            &any,
            0,
            Some("plain/nobench"),
        )
        .unwrap();
    assert_eq!(d.models, ["plain/nobench", "cheap/small", "cheap/tiny"]);
    let d = idx
        .route(
            "openrouter/auto",
            &req(user("hello")),
            &any,
            0,
            Some("top/opus"),
        )
        .unwrap();
    assert_eq!(d.models[0], "cheap/small");
}

#[test]
fn pin_model_reuses_the_last_assistant_model() {
    let v = json!({"messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi", "model": "top/opus"},
        {"role": "user", "content": "how are you"}],
        "plugins": [{"id": "auto-router", "pin_model": true}]});
    assert_eq!(auto_models(v.clone())[0], "top/opus");
    let mut off = v;
    off["plugins"][0]["pin_model"] = json!(false);
    assert_eq!(auto_models(off)[0], "cheap/small");
}

#[test]
fn settings_are_validated() {
    let bad = |p: Value, field: &str| {
        let e = index()
            .route(
                "openrouter/auto",
                &req(with_plugin(user("hi"), p)),
                &any,
                0,
                None,
            )
            .unwrap_err();
        match e {
            Error::InvalidRequest { field: f, message } => {
                assert_eq!(f, field, "{message}");
            }
            other => panic!("{other:?}"),
        }
    };
    bad(
        json!({"id": "auto-router", "cost_tier": "cheap"}),
        "plugins[0].cost_tier",
    );
    bad(
        json!({"id": "auto-router", "cost_quality_tradeoff": 11}),
        "plugins[0].cost_quality_tradeoff",
    );
    bad(
        json!({"id": "auto-router", "colour": 1}),
        "plugins[0].colour",
    );
    bad(
        json!({"id": "auto-router", "allowed_models": "anthropic/*"}),
        "plugins[0].allowed_models",
    );
    bad(
        json!({"id": "auto-router", "excluded_models": [3]}),
        "plugins[0].excluded_models[0]",
    );
    bad(
        json!({"id": "auto-router", "pin_model": "yes"}),
        "plugins[0].pin_model",
    );
    let many: Vec<String> = (0..1025).map(|i| format!("a/{i}")).collect();
    bad(
        json!({"id": "auto-router", "allowed_models": many}),
        "plugins[0].allowed_models",
    );
    bad(
        json!({"id": "auto-router", "allowed_models": ["x".repeat(1025)]}),
        "plugins[0].allowed_models[0]",
    );
    let e = index()
        .route(
            "openrouter/auto",
            &req(with_plugin(
                user("hi"),
                json!({"id": "auto-router", "cost_tier": "cheap"}),
            )),
            &any,
            0,
            None,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("low, medium, high, xhigh, max"),
        "{e}"
    );
    let pareto_bad = |p: Value, field: &str| {
        let r = req(with_plugin(user("hi"), p));
        match index()
            .route("openrouter/pareto-code", &r, &any, 0, None)
            .unwrap_err()
        {
            Error::InvalidRequest { field: f, .. } => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    };
    pareto_bad(
        json!({"id": "pareto-router", "min_coding_score": 2}),
        "plugins[0].min_coding_score",
    );
    pareto_bad(
        json!({"id": "pareto-router", "price_source": "mean"}),
        "plugins[0].price_source",
    );
    pareto_bad(
        json!({"id": "pareto-router", "max_price": -1}),
        "plugins[0].max_price",
    );
    // Other plugin ids are ignored, and so are the other router's settings.
    let v = json!({"messages": [{"role": "user", "content": "hi"}], "plugins": [
        {"id": "web", "max_results": 3}, {"id": "pareto-router", "bogus": true}]});
    assert!(index()
        .route("openrouter/auto", &req(v), &any, 0, None)
        .is_ok());
    // auto-beta reads its own plugin id only.
    let v = with_plugin(user("hi"), json!({"id": "auto-router", "cost_tier": "max"}));
    let d = index()
        .route("openrouter/auto-beta", &req(v), &any, 0, None)
        .unwrap();
    assert_eq!(d.tier, Some("low"));
    // enabled: false keeps the defaults.
    let v = with_plugin(
        user("hi"),
        json!({"id": "auto-router", "cost_tier": "max", "enabled": false}),
    );
    assert_eq!(
        index()
            .route("openrouter/auto", &req(v), &any, 0, None)
            .unwrap()
            .tier,
        Some("low")
    );
}

#[test]
fn decisions_are_deterministic() {
    let idx = index();
    let r = req(user("Summarize the following text: the quick brown fox."));
    let a = idx.route("openrouter/auto", &r, &any, 1, None).unwrap();
    for _ in 0..10 {
        assert_eq!(idx.route("openrouter/auto", &r, &any, 1, None).unwrap(), a);
    }
    assert_eq!(
        auto::route("openrouter/auto", &catalog(), &r, &any, 1, None).unwrap(),
        a
    );
    assert_eq!(a.task_type, Some(TaskType::Summarization));
}

fn conformance_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance/auto")
}

#[test]
fn conformance_cases_hold_through_route() {
    let mut files: Vec<_> = std::fs::read_dir(conformance_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let fixture = catalog();
    let mut n = 0;
    for file in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let text = String::from_utf8(std::fs::read(file).unwrap()).unwrap();
        let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
        for case in cases {
            let name = case["name"].as_str().unwrap();
            assert_eq!(case["op"], "plan", "{name}");
            let cat = match case["catalog"].as_str().unwrap() {
                "auto-catalog.json" => fixture.clone(),
                other => panic!("{name}: catalog {other} is not available to this test"),
            };
            let input = &case["input"];
            let r = ChatRequest::from_value(&input["request"]).unwrap();
            let seed = input["seed"].as_u64().unwrap_or(0);
            let slug = r.model.clone().unwrap();
            let got = auto::route(&slug, &cat, &r, &any, seed, None);
            let expect = &case["expect"];
            match (got, expect.get("error").and_then(Value::as_str)) {
                (Ok(d), None) => {
                    assert_eq!(json!(d.models), expect["models"], "{name}");
                    if let Some(t) = expect.get("task_type") {
                        assert_eq!(json!(d.task_type.map(TaskType::as_str)), *t, "{name}");
                    }
                }
                (Err(e), Some(code)) => assert_eq!(e.code(), code, "{name}"),
                (got, _) => panic!("{name}: got {got:?}, expected {expect}"),
            }
            n += 1;
        }
    }
    println!("{n} conformance cases");
    assert!(n >= 10);
}
